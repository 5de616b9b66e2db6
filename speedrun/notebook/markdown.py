"""Read the user's experiments.md (and our own generated report) into RunRecords.

Each `## Run N: title` (or `### Run 7a: title`) section is one run: metadata
bullets, a configuration, per-epoch data from fenced logs (read by parse_log's
grammar) or Markdown tables, stated summary numbers, then free analysis text.
Text copied from a terminal arrives wrapped and indented; that damage is undone.

The only exception that leaves this module is ParseError.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from speedrun.errors import ParseError
from speedrun.notebook.params import CANONICAL, canonical_name, parse_value
from speedrun.notebook.logs import content_hash, number, parse_log_lines, split_assignments, split_lines
from speedrun.tracking.records import STATUSES, EpochRecord, RunRecord


@dataclass
class NotebookParse:
    runs: list[RunRecord]
    warnings: list[str]
    preamble: str


_RUN_HEADING = re.compile(
    r"\s{0,8}#{1,4}\s+Run\s+(\d{1,9})((?:[A-Za-z]|-)[\w.\-]{0,30})?\s*(?:[:.\-–—]\s*(.*?))?\s*$"
)
_OTHER_TOP_HEADING = re.compile(r"\s{0,3}#{1,2}\s+\S")
_COMPUTED_START = "<!-- speedrun:computed -->"
_COMPUTED_END = "<!-- /speedrun:computed -->"

_FENCE = re.compile(r"\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"\s*#{1,6}\s")
_HRULE = re.compile(r"\s*([-*_])(?:\s*\1){2,}\s*$")
_BULLET = re.compile(r"(\s*)(?:[-*+]|\d{1,3}[.)])\s+(.*)$")
_BOLD_START = re.compile(r"\s*\*\*[^*\s]")
_BOLD_LABEL = re.compile(r"\*\*([^*]{1,80}?)\s*(?::\s*\*\*|\*\*\s*:)\s*(.*)$")
_BOLD_ONLY = re.compile(r"\*\*([^*]{1,80}?)\*\*\s*$")
_PLAIN_LABEL = re.compile(r"([A-Za-z][\w .()/&+-]{0,60}?)\s*:(?:\s+(.*)|$)")
_ASSIGNMENT = re.compile(r"(?<![\w.])[A-Za-z_][\w.]{0,60}\s*=\s*[^\s=]")
_TABLE_SEPARATOR = re.compile(r":?-{1,}:?")
_FIRST_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)", re.I)
_PARAM_COUNT_REMARK = re.compile(r"\(\s*([\d,]{1,30})\s*(?:parameters|params)\s*\)", re.I)
_REMARK = re.compile(r"(\S+)\s+\(.*\)\s*$")
_OPTIMIZER_CALL = re.compile(r"([A-Za-z][\w\-]*)\s*(?:\((.*)\))?\s*,?\s*(.*)$")
_AT_EPOCH = re.compile(r"epoch\s+(\d{1,7})", re.I)

_TEXT_KEYS = {
    "hypothesis": "hypothesis",
    "description": "description",
    "hardware": "hardware",
    "environment": "hardware",
    "platform": "hardware",
}
_CONFIG_KEYS = {"configuration", "config", "hyperparameters", "settings", "setup", "params", "parameters"}
_RESULT_KEYS = {"results", "result", "summary", "metrics"}
_FINAL_KEY = re.compile(r"final( validation| val| test)? acc(uracy)?")
_TIME_KEY = re.compile(r"(total )?(training|train)( loop)? time|total time|time")
_PEAK_KEY = re.compile(r"(peak|best)( validation| val)? acc(uracy)?")
_NUMERIC_PARAMS = {"lr", "momentum", "weight_decay", "batch_size", "epochs", "seed"}
_INT_PARAMS = {"batch_size", "epochs", "seed"}
_USED_WORDS = {"not used": False, "unused": False, "used": True}
_OPTIMIZERS = re.compile(r"(sgd|adam|adamw|rmsprop|lamb|lars|lion|muon|adagrad|nadam)\b\s*(?:\((.*)\))?$", re.I)
_MODELS = re.compile(r"(resnet|preact|wrn|wide.?resnet|vgg|densenet|mobilenet|efficientnet|vit|convnet|airbench)[\w\-]*$", re.I)

# Epoch-table columns (lower-cased, units removed) to EpochRecord fields.
_EPOCH_COLUMNS = {
    "epoch": "epoch",
    "ep": "epoch",
    "loss": "train_loss",
    "train loss": "train_loss",
    "training loss": "train_loss",
    "accuracy": "val_acc",
    "acc": "val_acc",
    "val accuracy": "val_acc",
    "val acc": "val_acc",
    "validation accuracy": "val_acc",
    "test accuracy": "val_acc",
    "train accuracy": "train_acc",
    "train acc": "train_acc",
    "val loss": "val_loss",
    "validation loss": "val_loss",
    "duration": "duration_s",
    "time": "duration_s",
    "epoch time": "duration_s",
    "time per epoch": "duration_s",
    "total": "elapsed_s",
    "total time": "elapsed_s",
    "elapsed": "elapsed_s",
    "elapsed time": "elapsed_s",
    "cumulative time": "elapsed_s",
    "lr": "lr",
    "learning rate": "lr",
}
_GENERIC_HEADER_CELLS = {"parameter", "param", "setting", "hyperparameter", "name", "key", "config", "value", "values"}


def _norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# --- blocks -----------------------------------------------------------------

BLANK, FENCE, TABLE, ITEM, HEADING, HRULE = "blank", "fence", "table", "item", "heading", "hrule"


@dataclass
class _Block:
    kind: str
    lineno: int
    lines: list[str]  # the block's lines as written (dedented)
    indent: int = 0
    bullet: bool = False
    text: str = ""  # ITEM: content after the bullet marker, wrapped lines joined
    first_text: str = ""  # ITEM: content of the first line only
    closed: bool = True  # FENCE: whether a closing fence was found


def _starts_block(line: str) -> bool:
    return bool(
        _FENCE.match(line)
        or line.lstrip().startswith(("|", "<!--", ">"))
        or _HEADING.match(line)
        or _HRULE.match(line)
        or _BULLET.match(line)
        or _BOLD_START.match(line)
        or _is_known_label(line)
    )


def _is_known_label(line: str) -> bool:
    """`Final accuracy: 71.2%` on its own line is a new statement, not a wrapped continuation."""
    match = _PLAIN_LABEL.match(line.strip())
    if not match:
        return False
    key = _norm_key(match.group(1))
    return (
        key in _TEXT_KEYS
        or key in _CONFIG_KEYS
        or key in _RESULT_KEYS
        or key in ("tags", "tag", "status", "analysis")
        or bool(_FINAL_KEY.fullmatch(key) or _PEAK_KEY.fullmatch(key) or _TIME_KEY.fullmatch(key))
        or canonical_name(key) in CANONICAL
    )


def _blocks(body: list[tuple[int, str]]) -> list[_Block]:
    """Group a section's lines into Markdown blocks; lines that start no block continue an item."""
    blocks: list[_Block] = []
    index = 0
    while index < len(body):
        lineno, line = body[index]
        index += 1
        if not line.strip():
            blocks.append(_Block(BLANK, lineno, [line]))
            continue
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            lines = [line]
            closed = False
            while index < len(body):
                inner = body[index][1]
                index += 1
                lines.append(inner)
                stripped = inner.strip()
                if stripped.startswith(marker[0] * len(marker)) and not stripped.strip(marker[0]):
                    closed = True
                    break
            blocks.append(_Block(FENCE, lineno, lines, closed=closed))
            continue
        if line.lstrip().startswith("|"):
            lines = [line]
            while index < len(body) and body[index][1].lstrip().startswith("|"):
                lines.append(body[index][1])
                index += 1
            blocks.append(_Block(TABLE, lineno, lines))
            continue
        if _HRULE.match(line):
            blocks.append(_Block(HRULE, lineno, [line]))
            continue
        if _HEADING.match(line):
            blocks.append(_Block(HEADING, lineno, [line], text=line.strip().lstrip("#").strip()))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            content = bullet.group(2).strip()
            item = _Block(ITEM, lineno, [line], indent=len(bullet.group(1)), bullet=True, text=content, first_text=content)
        else:
            indent = len(line) - len(line.lstrip())
            item = _Block(ITEM, lineno, [line], indent=indent, text=line.strip(), first_text=line.strip())
        # A copied terminal wraps long lines: following lines that start no block continue this one.
        while index < len(body) and body[index][1].strip() and not _starts_block(body[index][1]):
            continuation = body[index][1]
            item.lines.append(continuation)
            item.text = f"{item.text.rstrip()} {continuation.strip()}"
            index += 1
        blocks.append(item)
    return blocks


def _render(block: _Block) -> list[str]:
    """A block's text for the analysis: as written, but terminal wraps (a line ending in one space) joined."""
    if block.kind != ITEM:
        return list(block.lines)
    out = [block.lines[0]]
    for line in block.lines[1:]:
        previous = out[-1]
        if previous.endswith(" ") and not previous.endswith("  "):
            out[-1] = f"{previous.rstrip()} {line.strip()}"
        else:
            out.append(line)
    return out


def _label(text: str) -> tuple[str, str] | None:
    """(key, value) of `**Key**: value`, `**Key:** value` or `Key: value`."""
    match = _BOLD_LABEL.match(text) or _PLAIN_LABEL.match(text)
    if match:
        return match.group(1).strip(), (match.group(2) or "").strip()
    match = _BOLD_ONLY.match(text)
    if match:
        return match.group(1).strip().rstrip(":"), ""
    return None


# --- one section ------------------------------------------------------------


@dataclass
class _Section:
    """What one run section says, gathered block by block."""

    source: str
    warnings: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stated: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    candidates: list[RunRecord] = field(default_factory=list)  # per-epoch data, in order of appearance
    pre_analysis: list[str] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)

    # --- configuration ---

    def config_text(self, text: str, lineno: int) -> None:
        """One configuration line: `Key: value`, `KEY=VALUE, ...`, inline code or free text."""
        text = text.replace("`", "").strip().rstrip(";")
        if not text:
            return
        label = _PLAIN_LABEL.match(text)
        if label and "=" not in label.group(1):
            key, value = label.group(1), (label.group(2) or "")
            if _norm_key(key) in _CONFIG_KEYS:
                self.config_text(value, lineno)
            else:
                self.set_param(canonical_name(key), value, lineno)
            return
        pairs = split_assignments(text)
        keyed = [key for key, _ in pairs if key]
        if len(keyed) == 1 and pairs[0][0] and isinstance(_typed(pairs[0][1]), str):
            # `note=a, b`: one text value that holds commas (as our report writes string params).
            key, _, value = text.partition("=")
            self.set_param(canonical_name(key), value, lineno)
            return
        for key, value in pairs:
            if key:
                self.set_param(canonical_name(key), value, lineno)
            else:
                self.free_text_param(value, lineno)

    def set_param(self, key: str, value_text: str, lineno: int) -> None:
        value_text = value_text.strip().replace("`", "")
        if not key or not value_text:
            return
        if key == "optimizer":
            call = _OPTIMIZER_CALL.match(value_text)
            if call and call.group(2) is not None:
                self.params["optimizer"] = call.group(1)
                for inner_key, inner_value in split_assignments(call.group(2)):
                    if inner_key:
                        self.set_param(canonical_name(inner_key), inner_value, lineno)
                self.config_text(call.group(3), lineno)
                return
        if key == "model":
            count = _PARAM_COUNT_REMARK.search(value_text)
            if count:
                self.stated["param_count"] = int(count.group(1).replace(",", ""))
                value_text = value_text[: count.start()].strip() or value_text
        if key == "augment":
            self.params[key] = parse_value(value_text)
            return
        value = _typed(value_text)
        if key in _NUMERIC_PARAMS:
            problem = _numeric_problem(key, value)
            if problem:
                self.warnings.append(f"line {lineno}: {key}={value_text!r} ignored: {problem}")
                return
        self.params[key] = value

    def free_text_param(self, piece: str, lineno: int) -> None:
        """Parameters written as words: `Adam optimizer`, `SGD(lr=0.1)`, `cosine schedule`, `ResNet-18`."""
        piece = piece.strip().rstrip(".")
        if match := re.fullmatch(r"(\w[\w\-]*)\s+optimi[sz]er", piece, re.I):
            self.params["optimizer"] = match.group(1)
        elif match := re.fullmatch(r"optimi[sz]er\s*:?\s*(\w[\w\-]*)", piece, re.I):
            self.params["optimizer"] = match.group(1)
        elif match := _OPTIMIZERS.fullmatch(piece):
            self.set_param("optimizer", piece, lineno)
        elif match := _MODELS.fullmatch(piece):
            self.params["model"] = piece
        elif match := re.fullmatch(r"([\d,]{1,30})\s*(?:parameters|params)", piece, re.I):
            self.stated["param_count"] = int(match.group(1).replace(",", ""))
        elif re.search(r"\bcosine\b", piece, re.I):
            self.params["cosine"] = not re.match(r"(no|without)\b", piece, re.I)
        elif re.search(r"\b(amp|mixed precision)\b", piece, re.I):
            self.params["amp"] = not re.match(r"(no|without)\b", piece, re.I)

    # --- stated results ---

    def summary_label(self, key: str, value: str, lineno: int) -> bool:
        """Stated results such as `Final accuracy: 69.39%`; False when `key` is no such label."""
        norm = _norm_key(key)
        if _FINAL_KEY.fullmatch(norm):
            self.stated_number("final_val_acc", value, lineno, percent=True)
        elif _PEAK_KEY.fullmatch(norm):
            self.stated_number("peak_val_acc", value, lineno, percent=True)
            at = _AT_EPOCH.search(value)
            if at:
                self.stated["peak_epoch"] = int(at.group(1))
        elif _TIME_KEY.fullmatch(norm):
            self.stated_number("train_time_s", value, lineno, seconds=True)
        else:
            return False
        return True

    def stated_number(self, name: str, value: str, lineno: int, *, percent: bool = False, seconds: bool = False) -> None:
        match = _FIRST_NUMBER.search(value)
        if not match:
            self.warnings.append(f"line {lineno}: no number in {name} {value[:40]!r}")
            return
        try:
            amount = number(match.group().replace(",", ""), name, source=self.source, line=lineno)
        except ParseError as exc:
            self.warnings.append(f"line {lineno}: {exc.reason}")
            return
        if percent and amount > 100:
            self.warnings.append(f"line {lineno}: {name} above 100% ignored")
            return
        if seconds:
            unit = value[match.end() :].strip().lower()
            if unit.startswith(("min", "m ")) or unit == "m":
                amount *= 60
            elif unit.startswith(("h", "hour")):
                amount *= 3600
        self.stated[name] = amount

    # --- tables ---

    def table(self, block: _Block) -> bool:
        """Read an epoch table or a two-column configuration table; False if it is neither."""
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in block.lines]
        numbered = list(zip(range(block.lineno, block.lineno + len(rows)), rows))
        body = [(n, row) for n, row in numbered if not _is_separator(row)]
        header = rows[0] if len(rows) > 1 and _is_separator(rows[1]) else None
        if header and any(_column_name(cell) in ("epoch", "ep") for cell in header):
            self.candidates.append(self.epoch_table(header, body[1:], block.lineno))
            return True
        if all(len(row) == 2 for _, row in body):
            if header and {_norm_key(c) for c in header} <= _GENERIC_HEADER_CELLS:
                body = body[1:]
            for lineno, (key, value) in body:
                self.label(key.replace("*", "").strip(), value, lineno, nested_config=True)
            return True
        return False

    def epoch_table(self, header: list[str], rows: list[tuple[int, list[str]]], lineno: int) -> RunRecord:
        columns = [_EPOCH_COLUMNS.get(_column_name(cell)) for cell in header]
        epoch_column = columns.index("epoch")
        records: dict[int, EpochRecord] = {}
        for row_lineno, row in rows:
            cell = row[epoch_column] if epoch_column < len(row) else ""
            if not re.fullmatch(r"[-+]?\d{1,9}", cell):
                continue  # e.g. a "Final" or "Mean" row
            epoch = int(cell)
            if epoch < 1:
                raise ParseError(f"epoch number must be positive: {epoch}", source=self.source, line=row_lineno)
            record = EpochRecord(epoch=epoch)
            for column, name, value in zip(columns, header, row):
                if column is None or column == "epoch":
                    continue
                amount = _cell_number(value, name, self.source, row_lineno)
                if amount is not None and column in ("val_acc", "train_acc") and amount > 100:
                    raise ParseError(f"{name} above 100%: {value}", source=self.source, line=row_lineno)
                setattr(record, column, amount)
            if epoch in records and records[epoch] != record:
                raise ParseError(f"epoch {epoch} appears twice with different numbers", source=self.source, line=row_lineno)
            records[epoch] = record
        epochs = sorted(records.values(), key=lambda e: e.epoch)
        _fractions_to_percent(epochs, header, columns)
        return RunRecord(source="notebook", epochs=epochs, source_line=lineno)

    # --- labels ---

    def label(self, key: str, value: str, lineno: int, *, nested_config: bool = False) -> str | None:
        """Handle `key: value`; returns the kind of parent it makes for nested bullets, or None if unknown."""
        norm = _norm_key(key)
        if norm in _TEXT_KEYS:
            self.texts[_TEXT_KEYS[norm]] = value
            return _TEXT_KEYS[norm]
        if norm in ("tags", "tag"):
            self.tags = [tag.strip().lstrip("#") for tag in re.split(r"[,;]", value.replace("`", "")) if tag.strip()]
            return "tags"
        if norm == "status":
            status = value.strip().strip("*`").lower()
            if status in STATUSES:
                self.status = status
            else:
                self.warnings.append(f"line {lineno}: unknown status {value[:40]!r} ignored")
            return "status"
        if norm in _CONFIG_KEYS:
            self.config_text(value, lineno)
            return "config"
        if norm in _RESULT_KEYS:
            self.summary_text(value, lineno)
            self.extra["results"] = value
            return "results"
        if self.summary_label(key, value, lineno):
            return "results"
        if nested_config or canonical_name(key) in CANONICAL:
            self.set_param(canonical_name(key), value, lineno)
            return "config"
        return None

    def summary_text(self, text: str, lineno: int) -> None:
        label = _label(text)
        if label:
            self.summary_label(label[0], label[1], lineno)


def _is_separator(row: list[str]) -> bool:
    """`|---|:--:|`, the line under a table's header."""
    cells = [cell for cell in row if cell]
    return bool(cells) and all(_TABLE_SEPARATOR.fullmatch(cell) for cell in cells)


def _typed(text: str) -> Any:
    """A value as written, minus a trailing remark: `64 (128/2)` -> 64, `Not used` -> False."""
    low = text.lower()
    if low in _USED_WORDS:
        return _USED_WORDS[low]
    value = parse_value(text)
    if isinstance(value, str):
        remark = _REMARK.fullmatch(text)
        if remark:
            head = parse_value(remark.group(1))
            if not isinstance(head, str):
                return head
    return value


def _numeric_problem(key: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "not a number"
    if not math.isfinite(value) or value < 0:
        return "not a finite non-negative number"
    if key in _INT_PARAMS and not isinstance(value, int):
        return "not a whole number"
    if key == "epochs" and value < 1:
        return "needs at least one epoch"
    if isinstance(value, int) and value > 2**63 - 1:
        return "too large"
    return None


def _column_name(cell: str) -> str:
    name = cell.replace("*", "").lower()
    name = re.sub(r"\((?:%|s|sec|seconds)\)|%", "", name)
    return _norm_key(name).replace(" s", "").strip()


def _cell_number(cell: str, name: str, source: str, lineno: int) -> float | None:
    text = cell.replace("*", "").replace("`", "").strip()
    if text.lower() in ("", "-", "—", "–", "n/a", "na", "?"):
        return None
    match = _FIRST_NUMBER.search(text)
    if not match:
        return None
    return number(match.group().replace(",", ""), name, source=source, line=lineno)


def _fractions_to_percent(epochs: list[EpochRecord], header: list[str], columns: list[str | None]) -> None:
    """Accuracy columns written as fractions (0.8827) become percent, as everywhere else."""
    for name, column in zip(header, columns):
        if column not in ("val_acc", "train_acc") or "%" in name:
            continue
        values = [getattr(e, column) for e in epochs if getattr(e, column) is not None]
        if values and max(values) <= 1.0:
            for e in epochs:
                if getattr(e, column) is not None:
                    setattr(e, column, round(getattr(e, column) * 100, 6))


# --- section walk -----------------------------------------------------------


def _read_section(blocks: list[_Block], section: _Section) -> None:
    """Walk the blocks: metadata, configuration and data first, then analysis to the end."""
    in_analysis = False
    seen_label = False
    parent: tuple[int, str | None] | None = None  # (indent, kind) of the last top-level item

    for block in blocks:
        if in_analysis:
            late_label = None if seen_label else _analysis_label(block)
            if late_label is not None:
                # Text between the data and a late `**Analysis**:` label is kept, the label is not.
                seen_label = True
                while section.analysis and not section.analysis[-1].strip():
                    section.analysis.pop()
                section.pre_analysis.extend(section.analysis + [""])
                section.analysis = late_label
                continue
            section.analysis.extend(_render(block))
            if block.kind == FENCE:
                section.candidates.extend(_log_candidates(block, section))
            continue
        if block.kind in (BLANK, HRULE):
            continue
        if block.kind == FENCE:
            found = _log_candidates(block, section)
            if found:
                section.candidates.extend(found)
            else:
                section.pre_analysis.extend(block.lines + [""])
            continue
        if block.kind == TABLE:
            if not section.table(block):
                in_analysis = True
                section.analysis.extend(block.lines)
            continue
        if block.kind == HEADING:
            in_analysis = True
            seen_label = _norm_key(block.text) == "analysis"
            if not seen_label:
                section.analysis.extend(block.lines)
            continue
        if block.kind == ITEM and block.text.startswith("<!--"):
            continue
        # An item nested under a metadata bullet belongs to it.
        if parent is not None and block.bullet and block.indent > parent[0] and parent[1] is not None:
            _nested_item(section, parent[1], block)
            continue
        analysis = _analysis_label(block)
        if analysis is not None:
            in_analysis = seen_label = True
            section.analysis.extend(analysis)
            continue
        label = _label(block.text)
        kind: str | None = None
        if label:
            kind = section.label(label[0], label[1], block.lineno)
            if kind is None and block.bullet and not section.candidates:
                section.extra[_norm_key(label[0]).replace(" ", "_")] = label[1]
                kind = "extra:" + _norm_key(label[0]).replace(" ", "_")
        elif _ASSIGNMENT.search(block.text):
            section.config_text(block.text, block.lineno)
            kind = "config"
        if kind is None:
            in_analysis = True
            section.analysis.extend(_render(block))
            continue
        parent = (block.indent, kind)


def _analysis_label(block: _Block) -> list[str] | None:
    """The lines of an `**Analysis**: text` item without its label; None for other blocks."""
    if block.kind == HEADING:
        return [] if _norm_key(block.text) == "analysis" else None
    if block.kind != ITEM or block.indent:
        return None
    label = _label(block.first_text)
    if not label or _norm_key(label[0]) != "analysis":
        return None
    rest = _Block(ITEM, block.lineno, [label[1]] + block.lines[1:])
    lines = _render(rest)
    return lines if label[1] else lines[1:]


def _nested_item(section: _Section, parent_kind: str, block: _Block) -> None:
    if parent_kind == "config":
        section.config_text(block.text, block.lineno)
    elif parent_kind == "results":
        label = _label(block.text)
        if label is None or section.label(label[0], label[1], block.lineno) is None:
            section.extra["results"] = (str(section.extra.get("results", "")) + "\n" + block.text).strip()
    elif parent_kind in ("hypothesis", "description", "hardware"):
        section.texts[parent_kind] = (section.texts.get(parent_kind, "") + "\n- " + block.text).strip()
    elif parent_kind.startswith("extra:"):
        key = parent_kind[len("extra:") :]
        section.extra[key] = (str(section.extra.get(key, "")) + "\n- " + block.text).strip()
    else:  # under tags or status: not metadata, so keep it as text
        section.pre_analysis.extend(_render(block))


def _log_candidates(block: _Block, section: _Section) -> list[RunRecord]:
    """Runs in a fenced block; [] when it holds no epoch lines (then it is just code)."""
    inner = block.lines[1:-1] if block.closed else block.lines[1:]
    if not block.closed:
        section.warnings.append(f"line {block.lineno}: code block is never closed")
    # An unclosed block may end in a line cut off mid-number.
    return parse_log_lines(inner, section.source, block.lineno + 1, last_line_complete=block.closed)


def _analysis_text(lines: list[str]) -> str | None:
    """Joined analysis with surrounding blank lines and a trailing `---` separator removed."""
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and _HRULE.match(lines[-1]) and lines[-1].strip().startswith(("-", "*", "_")):
        lines.pop()
        while lines and not lines[-1].strip():
            lines.pop()
    text = "\n".join(lines).strip("\n")
    return text.strip() or None


def _build_records(heading: re.Match, lineno: int, section: _Section, section_text: str) -> list[RunRecord]:
    number_ = int(heading.group(1))
    label = f"{number_}{heading.group(2)}" if heading.group(2) else None
    title = (heading.group(3) or "").strip() or None
    base = RunRecord(
        source="notebook",
        number=number_,
        label=label,
        title=title,
        hypothesis=section.texts.get("hypothesis") or None,
        description=section.texts.get("description") or None,
        hardware=section.texts.get("hardware") or None,
        analysis=_analysis_text(section.pre_analysis + section.analysis),
        tags=list(section.tags),
        params=dict(section.params),
        extra=dict(section.extra),
        source_file=section.source,
        source_line=lineno,
        warnings=list(section.warnings),
    )
    for name in ("final_val_acc", "peak_val_acc", "peak_epoch", "train_time_s", "param_count"):
        if name in section.stated:
            setattr(base, name, section.stated[name])

    candidates = section.candidates
    if not candidates:
        base.status = section.status or "completed"
        base.content_hash = content_hash(section_text)
        if base.final_val_acc is None and base.train_time_s is None:
            base.warnings.append("run has no epochs and no stated results")
        return [base]

    # The run is the log with most epochs (the first on a tie); other logs are kept as extra runs.
    main_index = max(range(len(candidates)), key=lambda i: (len(candidates[i].epochs), -i))
    others = [c for i, c in enumerate(candidates) if i != main_index]
    main = _copy_record(base)
    _merge_data(main, candidates[main_index], section.status)
    main.content_hash = content_hash(section_text)
    records = [main]
    for k, other in enumerate(others, start=2):
        extra = _copy_record(base)
        extra.label = f"{label or number_}-log{k}"
        extra.title = f"{title or f'Run {number_}'} (log {k})"
        _merge_data(extra, other, section.status)
        extra.source_line = other.source_line or lineno
        extra.content_hash = content_hash(f"{section_text}\n<log {k}>")
        note = f"section holds another log of {len(other.epochs)} epochs (line {other.source_line}); kept as run {extra.label}"
        extra.warnings.append(note)
        main.warnings.append(note)
        records.append(extra)
    return records


def _copy_record(record: RunRecord) -> RunRecord:
    """A copy whose lists and dicts can change without touching `record`."""
    return dataclasses.replace(
        record,
        params=dict(record.params),
        tags=list(record.tags),
        extra=dict(record.extra),
        warnings=list(record.warnings),
    )


def _merge_data(record: RunRecord, data: RunRecord, explicit_status: str | None) -> None:
    """Per-epoch data and what the log states; the log wins a disagreement with the notebook."""
    record.epochs = data.epochs
    for key, value in data.params.items():
        if key in record.params and record.params[key] != value:
            record.warnings.append(f"{key}: notebook says {record.params[key]!r}, log says {value!r}; kept the log's")
        record.params[key] = value
    for name in ("final_val_acc", "train_time_s", "data_load_s", "param_count"):
        logged = getattr(data, name)
        stated = getattr(record, name)
        if logged is None:
            continue
        if stated is not None and stated != logged:
            record.warnings.append(f"{name}: notebook says {stated}, log says {logged}; kept the log's")
        setattr(record, name, logged)
    record.env = dict(data.env)
    record.extra.update(data.extra)  # e.g. a final accuracy measured with TTA
    record.log_text = data.log_text
    record.command = data.command
    record.status = explicit_status or data.status
    record.warnings.extend(data.warnings)


# --- whole notebook ---------------------------------------------------------


def _without_computed(lines: list[str], warnings: list[str], source: str) -> list[tuple[int, str]]:
    """Numbered lines with our report's computed blocks left out."""
    kept: list[tuple[int, str]] = []
    inside_since: int | None = None
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        if inside_since is not None:
            if stripped == _COMPUTED_END:
                inside_since = None
                continue
            if not _RUN_HEADING.match(line):
                continue
            warnings.append(f"{source}:{inside_since}: computed block not closed before the next run")
            inside_since = None
        if stripped == _COMPUTED_START:
            inside_since = lineno
            continue
        kept.append((lineno, line))
    if inside_since is not None:
        warnings.append(f"{source}:{inside_since}: computed block never closed")
    return kept


def _dedent(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Remove the indentation a terminal copy gave the section's lines.

    The first content line sets it: a `---` separator or a wrapped line written
    at column 0 must not stop the rest from being dedented.
    """
    first = next((line for _, line in body if line.strip() and not _HRULE.match(line)), "")
    cut = len(first) - len(first.lstrip(" "))
    if not cut:
        return [(n, line.rstrip("\n")) for n, line in body]
    return [(n, line[cut:] if line[:cut].strip() == "" else line.lstrip(" ")) for n, line in body]


def _sections(numbered: list[tuple[int, str]], warnings: list[str], source: str):
    """(preamble lines, [(heading match, heading line number, body lines)])."""
    preamble: list[str] = []
    sections: list[tuple[re.Match, int, list[tuple[int, str]]]] = []
    current: list[tuple[int, str]] | None = None
    for lineno, line in numbered:
        heading = _RUN_HEADING.match(line)
        if heading:
            current = []
            sections.append((heading, lineno, current))
        elif current is None:
            preamble.append(line)
        elif _OTHER_TOP_HEADING.match(line):
            # A top-level heading that is not a run ends the run; its text is no run's.
            warnings.append(f"{source}:{lineno}: section {line.strip()[:60]!r} is not a run; ignored")
            current = []
        else:
            current.append((lineno, line))
    return preamble, sections


def _parse_notebook(text: str, source: str) -> NotebookParse:
    warnings: list[str] = []
    numbered = _without_computed(split_lines(text), warnings, source)
    preamble, sections = _sections(numbered, warnings, source)
    runs: list[RunRecord] = []
    seen: dict[str, int] = {}
    for heading, lineno, body in sections:
        body = _dedent(body)
        section = _Section(source)
        _read_section(_blocks(body), section)
        section_text = "\n".join([heading.group(0).strip()] + [line.rstrip() for _, line in body]).strip()
        records = _build_records(heading, lineno, section, section_text)
        name = records[0].label or str(records[0].number)
        if name in seen:
            note = f"run {name} also appears at line {seen[name]}; both kept"
            records[0].warnings.append(note)
        else:
            seen[name] = lineno
        runs.extend(records)
    for run in runs:
        for warning in run.warnings:
            warnings.append(f"{source}:{run.source_line}: run {run.label or run.number}: {warning}")
    return NotebookParse(runs=runs, warnings=warnings, preamble="\n".join(preamble).strip("\n"))


def parse_notebook(text: str, source: str = "experiments.md") -> NotebookParse:
    """Every run section of a notebook. ParseError for data that contradicts itself."""
    try:
        return _parse_notebook(text, source)
    except ParseError:
        raise
    except Exception as exc:  # a parser bug must still reach the user as a readable error
        raise ParseError(f"cannot read notebook: {type(exc).__name__}: {exc}", source=source, line=None) from exc
