"""Read the user's experiments.md (and speedrun's own report) into runs and series.

The notebook is split the way CommonMark reads it (`syntax.scan`): each run
heading outside code starts a run section, and `### Run 7a` under `## Run 7`
is a sub-run of the series 7. Every section keeps its text as written, so that
`speedrun report` can give it back line for line; from it are read the metadata
bullets, the configuration, per-epoch data (fenced logs, read by parse_log's
grammar, and any table with an Epoch column) and stated results. Text copied
from a terminal arrives wrapped and indented; that damage is undone in the
fields only, never in the kept text.

ParseError is raised for input that contradicts itself, and only for that:
any other exception is a bug and must show as one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from speedrun.errors import ParseError
from speedrun.notebook import syntax
from speedrun.domain.hardware import UNKNOWN_HARDWARE, hardware_class
from speedrun.domain.memo import per_text
from speedrun.notebook.logs import (
    EPOCH_FIELD_NAMES,
    FINAL,
    FINAL_TTA,
    classify,
    content_hash,
    epoch_field_key,
    number,
    parse_log_lines,
    split_assignments,
    split_lines,
)
from speedrun.domain.params import CANONICAL, canonical_augment, canonical_name, canonical_value, model_name, parse_value
from speedrun.domain.records import STATUSES, EpochRecord, RunRecord, SeriesRecord


@dataclass
class NotebookParse:
    runs: list[RunRecord]  # in notebook order; `position` numbers the runs and series heads from 1
    series: list[SeriesRecord]
    warnings: list[str]
    preamble: str  # the text before the first run


# Patterns below meet every line of a notebook: bounded, unambiguous, never restarting
# a search inside a long run of one character (see tests/test_parse_properties.py).
_NON_RUN_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
_SERIES_LABEL = re.compile(r" {0,3}\*\*Series\b", re.IGNORECASE)
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]")
_BULLET = re.compile(r"([ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+(.*)")
_BOLD_START = re.compile(r"[ \t]*\*\*[^*\s]")
_BOLD_LABEL = re.compile(r"\*\*([^*]{1,80}?)[ \t]{0,8}(?::[ \t]{0,8}\*\*|\*\*[ \t]{0,8}:)[ \t]*(.*)")
_BOLD_ONLY = re.compile(r"\*\*([^*]{1,80}?)\*\*[ \t]*")
_PLAIN_LABEL = re.compile(r"([A-Za-z][\w .()/&+-]{0,60}?)[ \t]{0,8}:(?:[ \t]+(.*)|[ \t]*$)")
_ASSIGNMENT = re.compile(r"(?<![\w.])[A-Za-z_][\w.]{0,60}[ \t]{0,8}=[ \t]{0,8}[^\s=]")
_TABLE_SEPARATOR = re.compile(r":?-{1,}:?")
_FIRST_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)", re.I)
_PARAM_COUNT_REMARK = re.compile(r"\([ \t]*([\d,]{1,30})[ \t]*(?:parameters|params)[ \t]*\)", re.I)
_REMARK = re.compile(r"(\S+)\s+\(.*\)\s*")
_TRAILING_REMARK = re.compile(r"\(([^()]{0,80})\)[ \t]*$")
_OPTIMIZER_CALL = re.compile(r"([A-Za-z][\w\-]{0,40})[ \t]*(?:\((.*)\))?[ \t]*,?[ \t]*(.*)")
_AT_EPOCH = re.compile(r"epoch\s+(\d{1,7})", re.I)
_WORD_OPTIMIZER = re.compile(r"(\w[\w\-]{0,40})[ \t]+optimi[sz]er", re.I)
_OPTIMIZER_WORD = re.compile(r"optimi[sz]er[ \t]*(?::[ \t]*)?(\w[\w\-]{0,40})", re.I)
_OPTIMIZERS = re.compile(r"(sgd|adam|adamw|rmsprop|lamb|lars|lion|muon|adagrad|nadam)\b[ \t]*(?:\((.*)\))?", re.I)
_MODEL_WORDS = r"(?:resnet|preact|wrn|wide.?resnet|vgg|densenet|mobilenet|efficientnet|vit|convnet|airbench|\w{0,20}cnn|lenet|mlp)"
_MODELS = re.compile(rf"{_MODEL_WORDS}[\w\-]{{0,30}}", re.I)
_MODEL_IN_TEXT = re.compile(rf"\b({_MODEL_WORDS}[\w\-]{{0,30}})", re.I)
_PARAM_COUNT_WORDS = re.compile(r"([\d,]{1,30})[ \t]*(?:parameters|params)", re.I)
_BATCHNORM = re.compile(r"\b(?:batch[ \-_]?norm(?:alization)?(?:[123]d)?|bn)\b", re.I)
_NEGATION = re.compile(r"\b(?:no|without|w/o|disabled?|removed?|off|false|not used)\b|=\s*false", re.I)
_BATCHNORM_ONLY = re.compile(
    r"(?:(?:with|use[sd]?|using|no|without)[ \t]+)?(?:batch[ \-_]?norm(?:alization)?(?:[123]d)?|bn)(?:[ \t]+layers?)?", re.I
)
_TRANSFORM_WORD = re.compile(
    r"(?:[A-Za-z_]\w{0,30}\.){0,3}(?:Random\w{1,40}|TrivialAugment\w{0,10}|AutoAugment|RandAugment|AugMix|"
    r"ColorJitter|Cutout|CutMix|Mix[Uu]p)(?:\(.{0,200}\))?"
)
_TAG = re.compile(r"(?:&#?\w{1,31};|[^,;&]|&)+")  # tags split at `,` and `;`, not inside `&#44;`
_COSINE = re.compile(r"\bcosine\b", re.I)
_AMP = re.compile(r"\b(?:amp|mixed precision)\b", re.I)
_NO = re.compile(r"(?:no|without)\b", re.I)

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
_GENERIC_HEADER_CELLS = {"parameter", "param", "setting", "hyperparameter", "name", "key", "config", "value", "values"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _is_rule(text: str) -> bool:
    """A thematic break: three or more of one of `-*_`, spaces and tabs between.

    Counted with str methods, not a pattern: a repeated group with a backreference
    costs the regex engine ~190 bytes of backtracking stack per character."""
    bare = text.replace(" ", "").replace("\t", "")
    return len(bare) >= 3 and bare[0] in "-*_" and not bare.strip(bare[0])


@per_text
def _norm_key(text: str) -> str:
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


# --- blocks of one section --------------------------------------------------------

BLANK, FENCE, TABLE, ITEM, HEADING, HRULE, HTML = "blank", "fence", "table", "item", "heading", "hrule", "html"


@dataclass
class _Block:
    kind: str
    lineno: int
    lines: list[str]  # the block's lines as written (dedented)
    start: int = 0  # index of its first line in the section body
    indent: int = 0
    bullet: bool = False
    text: str = ""  # ITEM: content after the bullet marker, wrapped lines joined
    first_text: str = ""  # ITEM: content of the first line only
    closed: bool = True  # FENCE: whether a closing fence was found

    @property
    def end(self) -> int:
        return self.start + len(self.lines)


@dataclass(slots=True)  # one per line of the notebook
class _Line:
    lineno: int
    text: str
    state: int = syntax.TEXT


def _starts_block(line: _Line) -> bool:
    if line.state != syntax.TEXT:
        return True
    text = line.text
    first = text.lstrip()[:1]
    if first in ("|", ">"):
        return True
    if first == "<":
        return text.lstrip().startswith("<!--")
    if first == "#":
        return bool(_HEADING.match(text))
    if first in "-*_+0123456789" and (_is_rule(text) or _BULLET.match(text) or _BOLD_START.match(text)):
        return True
    return _is_known_label(text)


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
        or key in ("tags", "tag", "status", "analysis", "date")
        or bool(_FINAL_KEY.fullmatch(key) or _PEAK_KEY.fullmatch(key) or _TIME_KEY.fullmatch(key))
        or canonical_name(key) in CANONICAL
    )


def _blocks(body: list[_Line]) -> list[_Block]:
    """Group a section's lines into Markdown blocks; lines that start no block continue an item."""
    blocks: list[_Block] = []
    index = 0
    while index < len(body):
        start = index
        line = body[index]
        index += 1
        text = line.text
        if line.state == syntax.FENCE_OPEN:
            end, CODE = index, syntax.CODE
            while end < len(body) and body[end].state == CODE:
                end += 1
            closed = end < len(body) and body[end].state == syntax.FENCE_CLOSE
            end += closed
            lines = [text, *(inner.text for inner in body[index:end])]
            index = end
            blocks.append(_Block(FENCE, line.lineno, lines, start, closed=closed))
            continue
        if line.state != syntax.TEXT:  # an HTML block (or code cut off from its fence)
            lines = [text]
            while index < len(body) and body[index].state == line.state:
                lines.append(body[index].text)
                index += 1
            blocks.append(_Block(HTML, line.lineno, lines, start))
            continue
        first = text.lstrip()[:1]
        if not first:
            blocks.append(_Block(BLANK, line.lineno, [text], start))
            continue
        if first == "|":
            lines = [text]
            while index < len(body) and body[index].state == syntax.TEXT and body[index].text.lstrip().startswith("|"):
                lines.append(body[index].text)
                index += 1
            blocks.append(_Block(TABLE, line.lineno, lines, start))
            continue
        if first in "-*_" and _is_rule(text):
            blocks.append(_Block(HRULE, line.lineno, [text], start))
            continue
        if first == "#" and _HEADING.match(text):
            blocks.append(_Block(HEADING, line.lineno, [text], start, text=text.strip().lstrip("#").strip()))
            continue
        bullet = _BULLET.match(text) if first in "-*+0123456789" else None
        if bullet:
            content = bullet.group(2).strip()
            item = _Block(ITEM, line.lineno, [text], start, indent=len(bullet.group(1)), bullet=True,
                          text=content, first_text=content)
        else:
            indent = len(text) - len(text.lstrip())
            item = _Block(ITEM, line.lineno, [text], start, indent=indent, text=text.strip(), first_text=text.strip())
        # A copied terminal wraps long lines: following lines that start no block continue this one.
        while index < len(body) and body[index].text.strip() and not _starts_block(body[index]):
            continuation = body[index].text
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
    match = _BOLD_ONLY.fullmatch(text)
    if match:
        return match.group(1).strip().rstrip(":"), ""
    return None


# --- one section --------------------------------------------------------------------


@dataclass
class _Section:
    """What one run section says, gathered block by block."""

    source: str
    warnings: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    date: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    unparsed: list[str] = field(default_factory=list)  # configuration text no rule understood
    stated: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    candidates: list[RunRecord] = field(default_factory=list)  # per-epoch data, in order of appearance
    loose_results: list[tuple[int, str]] = field(default_factory=list)  # fenced summaries without epoch lines
    pre_analysis: list[str] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)
    # Where things are, as indices into the section body: for rewriting a field in place.
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    metadata_end: int = 0  # after the last metadata block
    analysis_start: int | None = None
    analysis_label: int | None = None  # the `**Analysis**:` block, when there is one
    inherited: set[str] = field(default_factory=set)  # parameters taken from the series' parent

    @property
    def has_results(self) -> bool:
        return bool(self.candidates) or "final_val_acc" in self.stated or "train_time_s" in self.stated

    # --- configuration ---

    def config_text(self, text: str, lineno: int) -> None:
        """One configuration line: `Key: value`, `KEY=VALUE, ...`, inline code or free text."""
        text = text.replace("`", "").strip().rstrip(";")
        if not text:
            return
        pairs = split_assignments(text)
        stated = [p for p in pairs if p[0] or _label_with_value(p[1])]
        if len(stated) > 1 and any(not key for key, _ in stated):
            # `Model: resnet18, optimizer: sgd, lr=0.02`: several statements on one line.
            for key, value in pairs:
                if key:
                    self.set_param(canonical_name(key), value, lineno)
                else:
                    self.config_text(value, lineno)
            return
        label = _PLAIN_LABEL.match(text)
        if label and "=" not in label.group(1):
            key, value = label.group(1), (label.group(2) or "")
            if _norm_key(key) in _CONFIG_KEYS:
                self.config_text(value, lineno)
            elif not value.strip():
                self.unparsed.append(text)
            else:
                self.set_param(canonical_name(key), value, lineno)
            return
        keyed = [key for key, _ in pairs if key]
        if len(keyed) == 1 and pairs[0][0] and isinstance(_typed(pairs[0][1]), str):
            # `note=a, b`: one text value that holds commas (as our report writes string params).
            key, _, value = text.partition("=")
            self.set_param(canonical_name(key), value, lineno)
            return
        for key, value in pairs:
            if key:
                self.set_param(canonical_name(key), value, lineno)
            elif not self.free_text_param(value, lineno):
                self.unparsed.append(" ".join(value.split()))

    def set_param(self, key: str, value_text: str, lineno: int) -> None:
        value_text = syntax.decode_inline(value_text.strip().replace("`", ""))
        if not key or not value_text:
            return
        if key == "optimizer":
            call = _OPTIMIZER_CALL.fullmatch(value_text)
            if call and call.group(2) is not None:
                self.params["optimizer"] = canonical_value("optimizer", call.group(1))
                for inner_key, inner_value in split_assignments(call.group(2)):
                    if inner_key:
                        self.set_param(canonical_name(inner_key), inner_value, lineno)
                    elif inner_value.strip():
                        self.unparsed.append(f"{call.group(1)}({inner_value.strip()})")
                self.config_text(call.group(3), lineno)
                return
        if key == "model":
            self.model(value_text)
            return
        if key == "augment":
            self.params[key] = canonical_value(key, parse_value(value_text))
            return
        value = _typed(value_text)
        if key in _NUMERIC_PARAMS:
            problem = _numeric_problem(key, value)
            if problem:
                self.warnings.append(f"line {lineno}: {key}={value_text[:40]!r} ignored: {problem}")
                return
        self.params[key] = canonical_value(key, value)

    def model(self, value_text: str) -> None:
        """`ResNet-18 (11,173,962 parameters)`, `Plain SimpleCNN (no BN)`: the model, its size,
        what a remark says of BatchNorm; the whole statement is kept when more was said."""
        understood = True
        core = value_text
        count = _PARAM_COUNT_REMARK.search(core)
        if count:
            self.stated["param_count"] = int(count.group(1).replace(",", ""))
            core = (core[: count.start()] + core[count.end() :]).strip() or core
        remark = _TRAILING_REMARK.search(core)
        if remark:
            core = core[: remark.start()].strip() or core
            if _BATCHNORM.search(remark.group(1)):
                self.params["bn"] = not _NEGATION.search(remark.group(1))
            else:
                understood = False
        if _MODELS.fullmatch(core):
            self.params["model"] = model_name(core)
        else:
            found = _MODEL_IN_TEXT.search(core)
            self.params["model"] = model_name(found.group(1) if found else core)
            understood = understood and found is None and " " not in core.strip()
        if not understood:
            self.unparsed.append(f"model: {' '.join(value_text.split())}")

    def free_text_param(self, piece: str, lineno: int) -> bool:
        """Parameters written as words (`Adam optimizer`, `SGD(lr=0.1)`, `cosine schedule`,
        `ResNet-18`, `BatchNorm2d after conv1`, `TrivialAugmentWide`). True when the whole
        piece was understood; whatever is read from a piece that was not is still kept."""
        piece = piece.strip().rstrip(".")
        if match := _WORD_OPTIMIZER.fullmatch(piece):
            self.params["optimizer"] = canonical_value("optimizer", match.group(1))
        elif match := _OPTIMIZER_WORD.fullmatch(piece):
            self.params["optimizer"] = canonical_value("optimizer", match.group(1))
        elif _OPTIMIZERS.fullmatch(piece):
            self.set_param("optimizer", piece, lineno)
        elif _MODELS.fullmatch(piece):
            self.params["model"] = model_name(piece)
        elif match := _PARAM_COUNT_WORDS.fullmatch(piece):
            self.stated["param_count"] = int(match.group(1).replace(",", ""))
        elif _TRANSFORM_WORD.fullmatch(piece):
            self.add_augment(piece)
        elif _BATCHNORM_ONLY.fullmatch(piece):
            self.params["bn"] = not _NEGATION.search(piece)
        elif _COSINE.search(piece) and len(piece.split()) <= 4:
            self.params["cosine"] = not _NO.match(piece)
        elif _AMP.search(piece) and len(piece.split()) <= 4:
            self.params["amp"] = not _NO.match(piece)
        else:
            self.read_in_passing(piece)
            return False
        return True

    def read_in_passing(self, piece: str) -> None:
        """What a sentence says about the model and BatchNorm (`Plain SimpleCNN (no BN)`)."""
        if _BATCHNORM.search(piece):
            self.params["bn"] = not _NEGATION.search(piece)
        model = _MODEL_IN_TEXT.search(piece)
        if model and "model" not in self.params:
            self.params["model"] = model_name(model.group(1))

    def add_augment(self, piece: str) -> None:
        current = self.params.get("augment")
        combined = f"{current},{piece}" if isinstance(current, str) and current != "none" else piece
        self.params["augment"] = canonical_augment(combined) or combined

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
            amount = number(match.group()[:400].replace(",", ""), name, source=self.source, line=lineno)
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

    def epoch_table(self, block: _Block) -> bool:
        """Read a table with an Epoch column as per-epoch data; False for any other table."""
        rows = _table_rows(block)
        if len(rows) < 2 or not _is_separator(rows[1]):
            return False
        header = rows[0]
        columns = [EPOCH_FIELD_NAMES.get(epoch_field_key(cell)) for cell in header]
        if "epoch" not in columns:
            return False
        body = [(block.lineno + i, row) for i, row in enumerate(rows) if i > 1 and not _is_separator(row)]
        self.candidates.append(self._epochs_of(header, columns, body, block.lineno))
        return True

    def config_table(self, block: _Block) -> bool:
        """Read a two-column table of settings; False for any other table."""
        rows = [(block.lineno + i, row) for i, row in enumerate(_table_rows(block)) if not _is_separator(row)]
        if not rows or not all(len(row) == 2 for _, row in rows):
            return False
        if len(block.lines) > 1 and _is_separator(_table_rows(block)[1]):
            header = rows[0][1]
            if {_norm_key(c) for c in header} <= _GENERIC_HEADER_CELLS:
                rows = rows[1:]
        for lineno, (key, value) in rows:
            self.label(key.replace("*", "").strip(), value, lineno, nested_config=True)
        return True

    def _epochs_of(self, header: list[str], columns: list[str | None], rows: list[tuple[int, list[str]]], lineno: int) -> RunRecord:
        epoch_column = columns.index("epoch")
        records: dict[int, EpochRecord] = {}
        for row_lineno, row in rows:
            cell = row[epoch_column].replace("*", "").strip() if epoch_column < len(row) else ""
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
            self.texts[_TEXT_KEYS[norm]] = syntax.decode_inline(value)
            return _TEXT_KEYS[norm]
        if norm in ("tags", "tag"):
            self.tags = [
                syntax.decode_inline(tag.strip().lstrip("#"))
                for tag in _TAG.findall(value.replace("`", ""))
                if tag.strip()
            ]
            return "tags"
        if norm == "status":
            status = value.strip().strip("*`").lower()
            if status in STATUSES:
                self.status = status
            else:
                self.warnings.append(f"line {lineno}: unknown status {value[:40]!r} ignored")
            return "status"
        if norm == "date":
            date = _read_date(value)
            if date is None:
                self.extra["date"] = value
            else:
                self.date = date
            return "date"
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


def _label_with_value(piece: str) -> bool:
    match = _PLAIN_LABEL.match(piece.strip())
    return bool(match and match.group(2))


def _read_date(value: str) -> datetime | None:
    text = value.strip().strip("*`").strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _table_rows(block: _Block) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in block.lines]


def _is_separator(row: list[str]) -> bool:
    """`|---|:--:|`, the line under a table's header."""
    cells = [cell for cell in row if cell]
    return bool(cells) and all(_TABLE_SEPARATOR.fullmatch(cell) for cell in cells)


@per_text
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


def _cell_number(cell: str, name: str, source: str, lineno: int) -> float | None:
    text = cell.replace("*", "").replace("`", "").strip()
    if text.lower() in ("", "-", "—", "–", "n/a", "na", "?"):
        return None
    match = _FIRST_NUMBER.search(text)
    if not match:
        return None
    return number(match.group()[:400].replace(",", ""), name, source=source, line=lineno)


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


# --- section walk -------------------------------------------------------------------


def _read_section(blocks: list[_Block], section: _Section) -> None:
    """Walk the blocks: metadata, configuration and data first, then analysis to the end.

    Any table with an Epoch column is per-epoch data, wherever it stands; its text
    stays where it was.
    """
    in_analysis = False
    seen_label = False
    parent: tuple[int, str | None] | None = None  # (indent, kind) of the last top-level item

    def start_analysis(block: _Block) -> None:
        nonlocal in_analysis
        in_analysis = True
        if section.analysis_start is None:
            section.analysis_start = block.start

    for block in blocks:
        if block.kind == TABLE and section.epoch_table(block):
            if in_analysis:
                section.analysis.extend(block.lines)
            else:
                section.metadata_end = block.end
            continue
        if in_analysis:
            late_label = None if seen_label else _analysis_label(block)
            if late_label is not None:
                # Text between the data and a late `**Analysis**:` label is kept, the label is not.
                seen_label = True
                section.analysis_label = block.start
                while section.analysis and not section.analysis[-1].strip():
                    section.analysis.pop()
                section.pre_analysis.extend(section.analysis + [""])
                section.analysis = late_label
                continue
            section.analysis.extend(_render(block))
            if block.kind == FENCE:
                found = _log_candidates(block, section)
                section.candidates.extend(found)
                if not found:
                    section.loose_results.extend(_results_without_epochs(block))
            continue
        if block.kind in (BLANK, HRULE):
            continue
        if block.kind == FENCE:
            found = _log_candidates(block, section)
            if found:
                section.candidates.extend(found)
                section.metadata_end = block.end
            else:
                section.pre_analysis.extend(block.lines + [""])
                section.loose_results.extend(_results_without_epochs(block))
            continue
        if block.kind == TABLE:
            if section.config_table(block):
                section.metadata_end = block.end
            else:
                start_analysis(block)
                section.analysis.extend(block.lines)
            continue
        if block.kind == HEADING:
            start_analysis(block)
            seen_label = _norm_key(block.text) == "analysis"
            if seen_label:
                section.analysis_label = block.start
            else:
                section.analysis.extend(block.lines)
            continue
        if block.kind == HTML or (block.kind == ITEM and block.text.startswith("<!--")):
            continue
        # An item nested under a metadata bullet belongs to it.
        if parent is not None and block.bullet and block.indent > parent[0] and parent[1] is not None:
            _nested_item(section, parent[1], block)
            _extend_span(section, parent[1], block)
            continue
        analysis = _analysis_label(block)
        if analysis is not None:
            start_analysis(block)
            seen_label = True
            section.analysis_label = block.start
            section.analysis.extend(analysis)
            continue
        label = _label(block.text)
        kind: str | None = None
        if label:
            kind = section.label(label[0], label[1], block.lineno)
            if kind is None and block.bullet and not section.candidates:
                key = _norm_key(label[0]).replace(" ", "_")
                section.extra[key] = label[1]
                kind = "extra:" + key
        elif _ASSIGNMENT.search(block.text):
            section.config_text(block.text, block.lineno)
            kind = "config"
        if kind is None:
            start_analysis(block)
            section.analysis.extend(_render(block))
            continue
        if kind in ("hypothesis", "description", "hardware", "tags", "status", "date"):
            section.spans[kind] = (block.start, block.end)
        section.metadata_end = block.end
        parent = (block.indent, kind)


def _extend_span(section: _Section, kind: str, block: _Block) -> None:
    if kind in section.spans:
        section.spans[kind] = (section.spans[kind][0], block.end)
    section.metadata_end = max(section.metadata_end, block.end)


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
    else:  # under tags, status or date: not metadata, so keep it as text
        section.pre_analysis.extend(_render(block))


def _fence_body(block: _Block) -> list[str]:
    """The lines inside a fenced block, without its fences (an unclosed one runs to the section's end)."""
    return block.lines[1:-1] if block.closed else block.lines[1:]


def _log_candidates(block: _Block, section: _Section) -> list[RunRecord]:
    """Runs in a fenced block; [] when it holds no epoch lines (then it is just code)."""
    inner = _fence_body(block)
    # An unclosed block may end in a line cut off mid-number.
    return parse_log_lines(inner, section.source, block.lineno + 1, last_line_complete=block.closed)


def _results_without_epochs(block: _Block) -> list[tuple[int, str]]:
    """(line, text) of each final-accuracy line in a fenced block that holds no epoch lines: a result
    (a re-run, a check on other hardware) that no log backs, so no run is made of it."""
    return [(lineno, " ".join(line.split())[:80]) for lineno, line in enumerate(_fence_body(block), block.lineno + 1)
            if classify(line.strip()).kind in (FINAL, FINAL_TTA)]


def _analysis_text(lines: list[str]) -> str | None:
    """Joined analysis without the blank lines around it, a trailing `---` separator or escapes."""
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and _is_rule(lines[-1]):
        lines.pop()
        while lines and not lines[-1].strip():
            lines.pop()
    text = syntax.canonical_text("\n".join(syntax.unescape_line(line) for line in lines))
    return text or None


# --- records --------------------------------------------------------------------------


def _build_record(raw: _RawSection, section: _Section) -> RunRecord:
    """The run a section describes: its own statements, then the log with most epochs."""
    heading = raw.heading
    text = raw.text
    record = RunRecord(
        source="notebook",
        number=heading.number,
        label=heading.label if heading.suffix else None,
        title=heading.title,
        hypothesis=section.texts.get("hypothesis") or None,
        description=section.texts.get("description") or None,
        hardware=section.texts.get("hardware") or None,
        analysis=_analysis_text(section.pre_analysis + section.analysis),
        tags=list(section.tags),
        params=dict(section.params),
        extra=dict(section.extra),
        source_file=section.source,
        source_line=raw.lineno,
        started_at=section.date,
        warnings=list(section.warnings),
        unparsed_config="\n".join(dict.fromkeys(section.unparsed)) or None,
        section_text=text,
        uuid=raw.identity.get("uuid"),
        reported_id=_reported_id(raw.identity),
        content_hash=content_hash(comparable_text(text)),
    )
    for name in ("final_val_acc", "peak_val_acc", "peak_epoch", "train_time_s", "param_count"):
        if name in section.stated:
            setattr(record, name, section.stated[name])

    for lineno, line in section.loose_results:
        record.warnings.append(f"line {lineno}: a result without epoch lines ({line}) is kept as text, not as a "
                               f"run (give it a heading of its own, such as a sub-run's, to record it)")
    candidates = section.candidates
    if not candidates:
        record.status = section.status or "completed"
        if record.final_val_acc is None and record.train_time_s is None:
            record.warnings.append("run has no epochs and no stated results")
        return record
    # The run is the log (or table) with most epochs, the first on a tie; others stay text.
    main = max(range(len(candidates)), key=lambda i: (len(candidates[i].epochs), -i))
    _merge_data(record, candidates[main], section)
    for i, other in enumerate(candidates):
        if i != main:
            record.warnings.append(
                f"line {other.source_line}: another log of {len(other.epochs)} epochs in this section is kept "
                f"as text, not as a run (give it a heading of its own to make it one)"
            )
    return record


def _check_hardware_text(record: RunRecord) -> None:
    """A warning where the run's hardware text names no machine ("same as Run 15."): its class then
    comes from its log alone ("cuda": a GPU nothing names), so it is compared with no class's runs."""
    text = record.hardware
    if text and hardware_class(text) == UNKNOWN_HARDWARE:
        device = record.env.get("device_type")
        found = hardware_class(text, device)
        record.warnings.append(
            f"hardware {text[:60]!r} names no machine, so the run is classed {found!r}"
            + (f" from its log's device ({device})" if device else "")
            + ": write the GPU or CPU (e.g. 'Colab, T4 GPU') to compare it with runs of its class")


def _reported_id(identity: dict[str, str]) -> int | None:
    value = identity.get("run", "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _merge_data(record: RunRecord, data: RunRecord, section: _Section) -> None:
    """Per-epoch data and what the log states; the log wins a disagreement with the notebook."""
    record.epochs = data.epochs
    for key, value in data.params.items():
        if key in record.params and record.params[key] != value and key not in section.inherited:
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
    record.status = section.status or data.status
    record.warnings.extend(data.warnings)


# --- the whole notebook ---------------------------------------------------------------


@dataclass
class _RawSection:
    """A run heading and the lines up to the next run heading, computed blocks left out."""

    heading: syntax.RunHeading
    lineno: int
    heading_line: str
    body: list[_Line] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)  # from the computed marker
    own_end: int = 0  # body[:own_end] is the run's; the rest is free text after it
    parent: _RawSection | None = None
    children: list[_RawSection] = field(default_factory=list)
    section: _Section | None = None

    def lines(self, start: int = 0, end: int | None = None) -> list[str]:
        return [line.text for line in self.body[start:end]]

    @property
    def text(self) -> str:
        """The section as written; the last sub-run leaves its tail to the series."""
        end = self.own_end if self.closes_series else None
        return "\n".join([self.heading_line, *self.lines(0, end)])

    @property
    def closes_series(self) -> bool:
        return self.parent is not None and self.parent.children[-1] is self


def comparable_text(text: str | None) -> str:
    """Text as compared between imports (and hashed): trailing whitespace aside."""
    return "\n".join(line.rstrip() for line in (text or "").split("\n")).rstrip("\n")


def _split(lines: list[str], states: list[int], source: str, warnings: list[str]) -> tuple[list[str], list[_RawSection]]:
    """(preamble lines, run sections); computed blocks are left out, their identity kept."""
    preamble: list[str] = []
    sections: list[_RawSection] = []
    current: _RawSection | None = None
    inside_since: int | None = None
    TEXT, HTML = syntax.TEXT, syntax.HTML
    for index, line in enumerate(lines):
        lineno = index + 1
        state = states[index]
        if inside_since is None and state != TEXT and state != HTML:  # code: the commonest line, and plain
            if current is None:
                preamble.append(line)
            else:
                current.body.append(_Line(lineno, line, state))
            continue
        heading = syntax.read_run_heading(line) if state == TEXT and "#" in line[:4] else None
        markup = (state == TEXT or state == HTML) and "<!--" in line[:8]  # a marker is a one-line HTML comment
        if inside_since is not None:
            if markup and syntax.is_computed_close(line):
                inside_since = None
                continue
            if heading is None:
                continue
            warnings.append(f"{source}:{inside_since}: computed block not closed before the next run")
            inside_since = None
        if heading is not None:
            current = _RawSection(heading, lineno, line)
            sections.append(current)
            continue
        identity = syntax.read_computed_open(line) if markup else None
        if identity is not None:
            inside_since = lineno
            if current is not None and not current.identity:
                current.identity = identity
            continue
        if current is None:
            preamble.append(line)
        else:
            current.body.append(_Line(lineno, line, state))
    if inside_since is not None:
        warnings.append(f"{source}:{inside_since}: computed block never closed")
    return preamble, sections


def _nest(sections: list[_RawSection]) -> None:
    """`### Run 7a` below `## Run 7` is a sub-run of the series 7."""
    stack: list[_RawSection] = []
    for raw in sections:
        while stack and stack[-1].heading.level >= raw.heading.level:
            stack.pop()
        above = stack[-1] if stack else None
        if above is not None and above.parent is None and above.heading.number == raw.heading.number:
            raw.parent = above
            above.children.append(raw)
        stack.append(raw)


def _find_own_end(raw: _RawSection) -> None:
    """Where the run's text ends: at a heading that is no run, at the run's level or above
    (`## Summary`, `### Series analysis` after `### Run 7c`), or at a `**Series ...**` label.
    What follows is free text that stays where it is, and for the last sub-run the series'."""
    raw.own_end = len(raw.body)
    for index, line in enumerate(raw.body):
        if line.state != syntax.TEXT:
            continue
        heading = _NON_RUN_HEADING.match(line.text)
        if heading and len(heading.group(1)) <= raw.heading.level:
            raw.own_end = index
            return
        if raw.parent is not None and _SERIES_LABEL.match(line.text):
            raw.own_end = index
            return


def _dedent(body: list[_Line]) -> list[_Line]:
    """Remove the indentation a terminal copy gave the section's lines.

    The first content line sets it: a `---` separator or a wrapped line written
    at column 0 must not stop the rest from being dedented.
    """
    first = next((line.text for line in body if line.text.strip() and not _is_rule(line.text)), "")
    cut = len(first) - len(first.lstrip(" "))
    if not cut:
        return body
    return [
        _Line(line.lineno, line.text[cut:] if line.text[:cut].strip() == "" else line.text.lstrip(" "), line.state)
        for line in body
    ]


def _read(raw: _RawSection, source: str) -> _Section:
    section = _Section(source)
    _read_section(_blocks(_dedent(raw.body[: raw.own_end])), section)
    return section


def _inherit(child: _Section, parent: _Section) -> None:
    """A sub-run takes the parent's hardware, configuration and texts that it does not state itself."""
    for name in ("hardware", "hypothesis", "description"):
        if name in parent.texts and name not in child.texts:
            child.texts[name] = parent.texts[name]
    child.inherited = {key for key in parent.params if key not in child.params}
    child.params = {**parent.params, **child.params}
    child.unparsed = [*parent.unparsed, *child.unparsed]


def _series_record(raw: _RawSection, parent_is_run: bool, source: str) -> SeriesRecord:
    section = raw.section
    last = raw.children[-1]
    closing = last.lines(last.own_end)
    return SeriesRecord(
        name=raw.heading.label,
        title=raw.heading.title,
        hypothesis=section.texts.get("hypothesis") or None,
        description=section.texts.get("description") or None,
        hardware=section.texts.get("hardware") or None,
        analysis=_closing_analysis(closing),
        section_text=None if parent_is_run else raw.text,
        closing_text="\n".join(closing) if closing else None,
        parent_label=raw.heading.label if parent_is_run else None,
        uuid=raw.identity.get("series") or (None if parent_is_run else raw.identity.get("uuid")),
        source_file=source,
        source_line=raw.lineno,
    )


def _closing_analysis(lines: list[str]) -> str | None:
    """The series' analysis: what follows the last sub-run, without the heading or label that opens it."""
    lines = list(lines)
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and _NON_RUN_HEADING.match(lines[0]):
        lines.pop(0)
    elif lines:
        label = _label(lines[0].strip())
        if label is not None and _SERIES_LABEL.match(lines[0]):
            lines[0] = label[1]
    return _analysis_text(lines)


def parse_notebook(text: str, source: str = "experiments.md") -> NotebookParse:
    """Every run and series of a notebook, in notebook order. ParseError for data that contradicts itself."""
    warnings: list[str] = []
    lines = split_lines(text)
    scanned = syntax.scan(lines)
    for index in scanned.unclosed:
        warnings.append(
            f"{source}:{index + 1}: block never closed; read up to the next run, but Markdown viewers "
            f"show everything after it as code"
        )
    preamble, sections = _split(lines, scanned.states, source, warnings)
    _nest(sections)
    for raw in sections:
        _find_own_end(raw)
        raw.section = _read(raw, source)
    for raw in sections:
        if raw.parent is not None:
            _inherit(raw.section, raw.parent.section)

    runs: list[RunRecord] = []
    series: list[SeriesRecord] = []
    by_parent: dict[int, SeriesRecord] = {}
    position = 0
    first: RunRecord | SeriesRecord | None = None
    for raw in sections:
        position += 1
        is_run = not raw.children or raw.section.has_results
        if raw.children:
            record = _series_record(raw, is_run, source)
            by_parent[id(raw)] = record
            series.append(record)
            if not is_run:
                record.position = position
                first = first or record
                continue
        run = _build_record(raw, raw.section)
        _check_hardware_text(run)
        run.position = position
        if raw.children:
            run.series = by_parent[id(raw)].name
            by_parent[id(raw)].members.append(run)
        elif raw.parent is not None:
            run.series = raw.parent.heading.label
            by_parent[id(raw.parent)].members.append(run)
        runs.append(run)
        first = first or run

    preamble_text = "\n".join(preamble)
    if first is not None and preamble_text.strip():
        first.preamble = preamble_text
    _warn_duplicates(runs)
    for run in runs:
        for warning in run.warnings:
            warnings.append(f"{source}:{run.source_line}: run {run.label or run.number}: {warning}")
    return NotebookParse(runs=runs, series=series, warnings=warnings, preamble=preamble_text.strip("\n"))


def _warn_duplicates(runs: list[RunRecord]) -> None:
    seen: dict[str, int | None] = {}
    for run in runs:
        name = run.label or str(run.number)
        if name in seen:
            run.warnings.append(f"run {name} also appears at line {seen[name]}; both kept")
        else:
            seen[name] = run.source_line


# --- rewriting a section ----------------------------------------------------------------

_LABEL_PREFIX = re.compile(
    r"([ \t]*(?:[-*+][ \t]+)?(?:\*\*[^*]{1,80}\*\*[ \t]*:|\*\*[^*]{1,80}:\*\*|[A-Za-z][\w .]{0,40}:)[ \t]*)"
)
_FIELD_LABELS = {"hypothesis": "Hypothesis", "description": "Description", "tags": "Tags"}


def rewrite_section(section_text: str, **changes: Any) -> str:
    """The section with some of the run's fields written anew, everything else as it was.

    For `speedrun note` and `speedrun tag` on an imported run: `title` rewrites the
    heading, `hypothesis`, `description` and `tags` their bullet (in the user's own
    label style, or a new bullet after the metadata), `analysis` the text after the
    metadata (logs and tables in it stay). A value of None leaves the field alone.
    """
    lines = section_text.split("\n")
    heading = syntax.read_run_heading(lines[0])
    if heading is None:
        return section_text
    states = syntax.scan(lines).states
    raw = _RawSection(heading, 1, lines[0], [_Line(i + 1, line, states[i]) for i, line in enumerate(lines) if i])
    _find_own_end(raw)
    blocks = _blocks(_dedent(raw.body[: raw.own_end]))
    section = _Section("section")
    _read_section(blocks, section)
    body = raw.lines()
    indent = next((line[: len(line) - len(line.lstrip(" "))] for line in body if line.strip()), "")
    edits: list[tuple[int, int, list[str]]] = []  # (start, end, new lines) in body indices

    analysis = changes.get("analysis")
    if analysis is not None:
        start = section.analysis_label if section.analysis_label is not None else section.analysis_start
        end = raw.own_end
        while end > (start or 0) and (not body[end - 1].strip() or _is_rule(body[end - 1])):
            end -= 1
        kept = [line for b in blocks if start is not None and b.start >= start and b.kind in (FENCE, TABLE)
                for line in (*b.lines, "")]
        text = [f"{indent}{line}" if line else "" for line in ["**Analysis**:", *syntax.escape_block(analysis).split("\n")]]
        if start is None:
            edits.append((end, end, ["", *text]))
        else:
            edits.append((start, end, text + ([""] + kept[:-1] if kept else [])))
    for name, label in _FIELD_LABELS.items():
        value = changes.get(name)
        if value is None:
            continue
        text = ", ".join(syntax.encode_tag(t) for t in value) if name == "tags" else syntax.encode_inline(value)
        if name in section.spans:
            start, end = section.spans[name]
            prefix = _LABEL_PREFIX.match(body[start])
            first = (prefix.group(1).rstrip() + " ") if prefix else f"{indent}- **{label}**: "
            edits.append((start, end, [first + text] if text else []))
        elif text:
            at = section.metadata_end
            edits.append((at, at, [f"{indent}- **{label}**: {text}"]))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        body[start:end] = new
    first_line = lines[0]
    if changes.get("title") is not None:
        lead = first_line[: len(first_line) - len(first_line.lstrip(" "))]
        first_line = lead + syntax.run_heading(heading.level, heading.label, changes["title"])
    return "\n".join([first_line, *body])
