"""Read console logs of the user's trainer (see speedrun.notebook.logformat) into RunRecords.

Logs arrive pasted from terminals, notebooks and Colab: with ANSI colours,
Windows line endings, tqdm bars joined by carriage returns, shell prompts,
warnings and indentation. Anything that is not one of the trainer's lines is
noise and skipped. One text may hold several runs back to back.

ParseError is raised for input that cannot be read or contradicts itself, and only for that.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from speedrun.errors import ParseError
from speedrun.domain.memo import per_text
from speedrun.domain.params import normalize, parse_value, split_outside_brackets
from speedrun.domain.records import FINAL_MEASURED_AFTER_EPOCHS, EpochRecord, RunRecord

MAX_EPOCHS = 1_000_000
MAX_INT = 2**63 - 1  # what SQLite can store
# Noise lines longer than this are left out of log_text (a 10 MB progress dump is not a log).
MAX_KEPT_LINE = 10_000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# Patterns here meet every line of a pasted log, so none of them may backtrack on a long
# run of one character class (digits, spaces, `%`, `|`): alternatives are unambiguous,
# repeats are bounded or anchored, and a searched pattern cannot restart inside a run.
_NUMBER = re.compile(
    r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?))[ \t]*(?:%|s|sec|seconds?)?",
    re.IGNORECASE,
)
_EPOCH = re.compile(r"Epoch\s*\[\s*([-+]?\d{1,30})\s*/\s*([-+]?\d{1,30})\s*\]")
# One `, Name: value` field after the epoch counter; bounded so long lines stay linear.
_FIELD = re.compile(r"\s*,\s*([A-Za-z][A-Za-z /()%_.-]{0,40}?)[ \t]{0,8}:\s*([^,\s]{1,64})(?=[,\s]|$)")
# The trainer's own epoch line (logformat.epoch_line), read without the general field loop:
# most lines of a long log are exactly this, and plain digits are always finite.
_NUM = r"(\d{1,20}(?:\.\d{1,20})?)"
_FAST_EPOCH = re.compile(
    rf"Epoch \[(\d{{1,9}})/(\d{{1,9}})\], Loss: {_NUM}, Val Accuracy: {_NUM}%(?:, Duration: {_NUM}s)?(?:, Total: {_NUM}s)?"
)
_FIELD_START = re.compile(r"\s*,\s*([A-Za-z][A-Za-z /()%_.-]{0,40}?)[ \t]{0,8}:")
# tqdm's bar. `(?<!\d)` keeps a search from restarting inside a run of digits (quadratic otherwise).
_PROGRESS = re.compile(
    r"(?<!\d)\d{1,20}%(?:\||[ \t]{1,20}[\d.]{1,20}[kMGT]?(?:i?B)?/)|\[\d{1,9}:\d{1,9}<|it/s\]|s/it\]"
    r"|\|[█▏▎▍▌▋▊▉ #]{1,200}\|"
)
_DEVICE = re.compile(r"Using device:\s*([A-Za-z]+)")
_AMP = re.compile(r"Using (?:Automatic )?Mixed Precision|Using AMP\b")
_SEED = re.compile(r"Setting (?:random )?seed:?\s*([-+]?\d{1,30})\b")
_PRELOAD = re.compile(r"Pre-loading data")
_DATA_TIME = re.compile(r"Data (?:pre-loaded|loaders created|loaded)(?: to \w+)? in\s*(\S{1,64}?)\s*seconds?\b")
_PARAM_COUNT = re.compile(r"Model parameters:\s*([\d,_]{1,40})\b")
_CONFIG = re.compile(r"Config:\s*(.*)")
_FINISHED = re.compile(r"Finished Training\b")
_FINISHED_TIME = re.compile(r"time:\s*([-+\w.]{1,64})")
_FINAL = re.compile(r"Final Validation Accuracy:\s*([^\s%]{1,64})")
# speedrun's fast recipes say so when the final accuracy comes from test-time augmentation.
_FINAL_TTA = re.compile(r"Final accuracy above is with test-time augmentation")
_PROMPT = re.compile(r"(?:\$|!|%|>>>)\s*(\S.*)?$")
_NON_FINITE_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}

# Line kinds. Header kinds open a new run when the current one already has epochs.
EPOCH, DEVICE, AMP, SEED, PRELOAD, DATA_TIME, PARAM_COUNT, CONFIG, PROMPT = range(9)
FINISHED, FINAL, NOISE, PROGRESS, BLANK, FINAL_TTA = range(9, 15)
_HEADER_KINDS = frozenset({DEVICE, AMP, SEED, PRELOAD, DATA_TIME, PARAM_COUNT, CONFIG, PROMPT})

# The trainer's lines dispatched on their first four characters: a dict lookup
# instead of trying every pattern on every line keeps 100k-line logs fast.
_BY_PREFIX = {
    "Usin": ((DEVICE, _DEVICE), (AMP, _AMP)),
    "Sett": ((SEED, _SEED),),
    "Pre-": ((PRELOAD, _PRELOAD),),
    "Data": ((DATA_TIME, _DATA_TIME),),
    "Mode": ((PARAM_COUNT, _PARAM_COUNT),),
    "Conf": ((CONFIG, _CONFIG),),
    "Fini": ((FINISHED, _FINISHED),),
    "Fina": ((FINAL, _FINAL), (FINAL_TTA, _FINAL_TTA)),
}

# Names of per-epoch columns, in log lines (`Val Accuracy: 85.7%`) and notebook tables
# (`| Epoch | Loss | Accuracy (%) |`) alike, after `epoch_field_key` (lower case, no unit).
EPOCH_FIELD_NAMES = {
    "epoch": "epoch",
    "ep": "epoch",
    "loss": "train_loss",
    "train loss": "train_loss",
    "training loss": "train_loss",
    "val accuracy": "val_acc",
    "val acc": "val_acc",
    "validation accuracy": "val_acc",
    "valid accuracy": "val_acc",
    "test accuracy": "val_acc",
    "test acc": "val_acc",
    "accuracy": "val_acc",
    "acc": "val_acc",
    "train accuracy": "train_acc",
    "train acc": "train_acc",
    "training accuracy": "train_acc",
    "val loss": "val_loss",
    "validation loss": "val_loss",
    "test loss": "val_loss",
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
    "images/s": "images_per_s",
    "img/s": "images_per_s",
}
_UNIT = re.compile(r"\((?:%|s|sec|secs|seconds)\)|%")


def epoch_field_key(name: str) -> str:
    """`Val Accuracy (%)`, `**Train_Loss**`, `Time (s)` → `val accuracy`, `train loss`, `time`."""
    key = _UNIT.sub("", name.replace("*", "").replace("`", "").lower()).replace("_", " ")
    return " ".join(key.split())


_PERCENT_FIELDS = {"val_acc", "train_acc"}


def number(token: str, what: str, *, source: str, line: int, allow_negative: bool = False) -> float:
    """A finite float from `token` (a trailing % or s unit is allowed), else ParseError."""
    match = _NUMBER.fullmatch(token.strip())
    if not match:
        raise ParseError(f"{what}: not a number: {token[:40]!r}", source=source, line=line)
    text = match.group(1)
    if text.lower() in _NON_FINITE_WORDS:
        raise ParseError(f"{what} is not a finite number: {text}", source=source, line=line)
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"{what} is too large: {text[:40]}", source=source, line=line)
    if value < 0 and not allow_negative:
        raise ParseError(f"{what} is negative: {text[:40]}", source=source, line=line)
    return value


def _bounded_int(text: str, what: str, *, source: str, line: int, low: int = 0, high: int = MAX_INT) -> int:
    digits = text.replace(",", "").replace("_", "")
    # Bounded by the regexes to 40 characters, so int() cannot hit Python's digit limit.
    value = int(digits)
    if not low <= value <= high:
        raise ParseError(f"{what} out of range: {text[:40]}", source=source, line=line)
    return value


@per_text
def split_assignments(text: str) -> tuple[tuple[str, str], ...]:
    """`LR=0.04, AUG=Crop(32, padding=4), Flip(), EPOCHS=10` -> [(LR, 0.04), (AUG, Crop(..), Flip()), ...].

    Splits on commas outside parentheses; a piece without `KEY=` continues the
    previous value when that value is a call list (ends with `)`), else it is
    returned with an empty key so callers can read it as free text.
    """
    pieces = split_outside_brackets(text, ",")

    pairs: list[tuple[str, str]] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        key = key.strip()
        if sep and _ASSIGN_KEY.fullmatch(key):
            sentence = _VALUE_THEN_SENTENCE.fullmatch(value.strip())
            if sentence and not isinstance(parse_value(sentence.group(1)), str):
                # `AMP=True. Without BatchNorm.`: the value ends at the full stop; the next sentence is free text.
                pairs += [(key, sentence.group(1)), ("", sentence.group(2))]
                continue
            pairs.append((key, value.strip()))
        elif pairs and pairs[-1][0] and pairs[-1][1].endswith(")"):
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]}, {piece}")
        else:
            pairs.append(("", piece))
    return tuple(pairs)


_ASSIGN_KEY = re.compile(r"[A-Za-z_][\w.\-]{0,60}")
_VALUE_THEN_SENTENCE = re.compile(r"(['\"]?[\w.+-]{1,40}?['\"]?)\.\s+([A-Z(].*)", re.DOTALL)



@dataclass
class _Line:
    kind: int
    text: str
    match: Any = None
    fast: bool = False  # an EPOCH line in exactly the trainer's format


def classify(text: str) -> _Line:
    """What one cleaned line (or carriage-return segment) of a log is."""
    if not text:
        return _Line(BLANK, text)
    for kind, pattern in _BY_PREFIX.get(text[:4], ()):
        match = pattern.match(text)
        if match:
            return _Line(kind, text, match)
    if "Epoch" in text:
        match = _FAST_EPOCH.fullmatch(text)
        if match:
            return _Line(EPOCH, text, match, fast=True)
        match = _EPOCH.search(text)
        if match and _FIELD.match(text, match.end()):
            return _Line(EPOCH, text, match)
    if text[0] in "$!%>":
        match = _PROMPT.match(text)
        if match:
            return _Line(PROMPT, text, match)
    if _PROGRESS.search(text):
        return _Line(PROGRESS, text)
    return _Line(NOISE, text)


def clean_segments(raw: str) -> list[_Line]:
    """The meaningful pieces of one physical line: colours and indentation removed.

    A tqdm bar redraws itself with carriage returns, so a pasted line may hold
    many segments; keep every one the trainer printed, else the last non-blank one.
    """
    if "\x1b" in raw:
        raw = _ANSI.sub("", raw)
    if "\r" not in raw:
        return [classify(raw.strip())]
    lines = [classify(part.strip()) for part in raw.split("\r")]
    meaningful = [line for line in lines if line.kind not in (NOISE, PROGRESS, BLANK)]
    if meaningful:
        return meaningful
    rest = [line for line in lines if line.kind != BLANK]
    return rest[-1:] or [_Line(BLANK, "")]


@dataclass
class _RunBuilder:
    """A run being read; becomes a RunRecord once complete."""

    source: str
    first_line: int | None = None
    lines: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    epochs: dict[int, EpochRecord] = field(default_factory=dict)
    total: int | None = None
    last_epoch: int = 0
    last_epoch_line: _Line | None = None  # to tell a cut-off last line by its fewer fields
    first_epoch_text: str | None = None
    finished: bool = False
    final_val_acc: float | None = None
    train_time_s: float | None = None
    data_load_s: float | None = None
    param_count: int | None = None
    command: str | None = None
    final_from: str | None = None  # the final accuracy was measured after the epochs (TTA)
    warnings: list[str] = field(default_factory=list)

    def keep(self, lineno: int, text: str) -> None:
        if self.first_line is None:
            self.first_line = lineno
        if len(text) > MAX_KEPT_LINE:
            self.warnings.append(f"line {lineno}: {len(text)}-character line left out of the log text")
            return
        self.lines.append(text)

    def starts_new_run(self, line: _Line) -> bool:
        """Whether `line` belongs to the next run rather than this one."""
        if line.kind in _HEADER_KINDS:
            return bool(self.epochs) or self.finished
        if line.kind == EPOCH and self.epochs:
            epoch, total = line.match.group(1), line.match.group(2)
            if total.lstrip("+") != str(self.total):
                return True
            # Back to epoch 1: a restart, unless it is the same first line pasted twice.
            return epoch.lstrip("+") == "1" and (self.last_epoch > 1 or line.text != self.first_epoch_text)
        return False


def _apply(run: _RunBuilder, line: _Line, lineno: int) -> None:
    """Record what one trainer line says about the run."""
    source = run.source
    kind, match = line.kind, line.match
    if kind == EPOCH:
        _apply_epoch(run, line, lineno)
    elif kind == DEVICE:
        run.env["device_type"] = match.group(1).lower()
    elif kind == AMP:
        if run.params.get("amp") is False:
            run.warnings.append(f"line {lineno}: log says AMP is used but Config says AMP=False")
        else:
            run.params["amp"] = True
    elif kind == SEED:
        run.params["seed"] = _bounded_int(match.group(1), "seed", source=source, line=lineno)
    elif kind == DATA_TIME:
        # The trainer times loading from the start, so the last such line is the total.
        run.data_load_s = number(match.group(1), "data load time", source=source, line=lineno)
    elif kind == PARAM_COUNT:
        run.param_count = _bounded_int(match.group(1), "parameter count", source=source, line=lineno)
    elif kind == CONFIG:
        run.params.update(_config_params(match.group(1), source, lineno))
    elif kind == PROMPT:
        run.command = (match.group(1) or "").strip() or run.command
    elif kind == FINISHED:
        run.finished = True
        time_match = _FINISHED_TIME.search(line.text, match.end())
        if time_match:
            run.train_time_s = number(time_match.group(1), "training time", source=source, line=lineno)
    elif kind == FINAL:
        run.final_val_acc = _percent(match.group(1), "final accuracy", source, lineno)
    elif kind == FINAL_TTA:
        run.final_from = "tta"


def _percent(token: str, what: str, source: str, lineno: int) -> float:
    value = number(token, what, source=source, line=lineno)
    if value > 100:
        raise ParseError(f"{what} above 100%: {token[:40]}", source=source, line=lineno)
    return value


def _config_params(body: str, source: str, lineno: int) -> dict[str, Any]:
    raw = {key: value for key, value in split_assignments(body) if key}
    params = normalize(raw)
    for key, value in params.items():
        if isinstance(value, str) and value.strip().lower() in _NON_FINITE_WORDS:
            raise ParseError(f"Config {key} is not a finite number: {value}", source=source, line=lineno)
    epochs = params.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= MAX_EPOCHS):
        raise ParseError(f"Config EPOCHS is not a valid epoch count: {epochs!r}", source=source, line=lineno)
    for key in ("lr", "batch_size", "momentum", "weight_decay", "seed"):
        value = params.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < 0:
                raise ParseError(f"Config {key} is negative: {value}", source=source, line=lineno)
            if isinstance(value, int) and value > MAX_INT:
                raise ParseError(f"Config {key} out of range: {value}", source=source, line=lineno)
    return params


def _apply_epoch(run: _RunBuilder, line: _Line, lineno: int) -> None:
    source = run.source
    match = line.match
    if line.fast:  # at most 9 plain digits each
        epoch, total = int(match.group(1)), int(match.group(2))
    else:
        epoch = _bounded_int(match.group(1), "epoch number", source=source, line=lineno, low=-MAX_INT, high=MAX_INT)
        total = _bounded_int(match.group(2), "epoch total", source=source, line=lineno, low=-MAX_INT, high=MAX_INT)
    if epoch < 1 or total < 1:
        raise ParseError(f"epoch numbers must be positive: [{epoch}/{total}]", source=source, line=lineno)
    if total > MAX_EPOCHS:
        raise ParseError(f"epoch total too large: {total}", source=source, line=lineno)
    if epoch > total:
        raise ParseError(f"epoch {epoch} is beyond the epoch total {total}", source=source, line=lineno)
    configured = run.params.get("epochs")
    if configured is not None and configured != total:
        raise ParseError(
            f"Config says EPOCHS={configured} but this line says epoch {epoch} of {total}", source=source, line=lineno
        )

    if line.fast:
        record = _fast_epoch_record(epoch, match, source, lineno)
    else:
        record = _epoch_record(epoch, line, source, lineno)

    previous = run.epochs.get(epoch)
    if previous is not None:
        if previous != record:
            raise ParseError(f"epoch {epoch} appears twice with different numbers", source=source, line=lineno)
        return  # the same line pasted twice
    run.epochs[epoch] = record
    if epoch == 1:
        run.first_epoch_text = line.text
    run.total = total
    run.last_epoch = epoch
    run.last_epoch_line = line


def _fast_epoch_record(epoch: int, match: re.Match, source: str, lineno: int) -> EpochRecord:
    loss, acc, duration, total = match.group(3, 4, 5, 6)
    val_acc = float(acc)
    if val_acc > 100:
        raise ParseError(f"Val Accuracy above 100%: {acc}", source=source, line=lineno)
    return EpochRecord(
        epoch=epoch,
        train_loss=float(loss),
        val_acc=val_acc,
        duration_s=float(duration) if duration is not None else None,
        elapsed_s=float(total) if total is not None else None,
    )


def _epoch_record(epoch: int, line: _Line, source: str, lineno: int) -> EpochRecord:
    """An epoch line in any spelling: `, Name: value` fields in any order, units optional."""
    record = EpochRecord(epoch=epoch)
    pos = line.match.end()
    while field_match := _FIELD.match(line.text, pos):
        pos = field_match.end()
        name = epoch_field_key(field_match.group(1))
        attr = EPOCH_FIELD_NAMES.get(name)
        if attr == "epoch":
            continue  # the counter `Epoch [3/10]` already said which epoch
        if attr is None:
            # Other numeric per-epoch measurements are kept; other text is noise.
            if _NUMBER.fullmatch(field_match.group(2)):
                value = number(field_match.group(2), name, source=source, line=lineno, allow_negative=True)
                record.extra[re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "value"] = value
            continue
        if attr in _PERCENT_FIELDS:
            value = _percent(field_match.group(2), field_match.group(1), source, lineno)
        else:
            value = number(field_match.group(2), field_match.group(1), source=source, line=lineno)
        setattr(record, attr, value)
    unread = _FIELD_START.match(line.text, pos)
    if unread and epoch_field_key(unread.group(1)) in EPOCH_FIELD_NAMES:
        raise ParseError(f"unreadable {unread.group(1)} value", source=source, line=lineno)
    return record


_UNITS = {"val_acc": "%", "train_acc": "%", "duration_s": "s", "elapsed_s": "s"}


def _field_count(line: _Line) -> int:
    if line.fast:
        return sum(1 for value in line.match.groups()[2:] if value is not None)
    count, pos = 0, line.match.end()
    while field_match := _FIELD.match(line.text, pos):
        count, pos = count + 1, field_match.end()
    return count


def _previous_field_count(run: _RunBuilder) -> int:
    return _field_count(run.last_epoch_line) if run.last_epoch_line is not None else 0


def looks_cut(run: _RunBuilder, line: _Line) -> bool:
    """Whether the text's last line (no newline after it) was cut off mid-way.

    A cut `Total: 884.9s` reads as `Total: 88`; rather than store a wrong
    number, such a line is dropped. Complete lines end with their unit and have
    as many fields as the run's previous epoch line.
    """
    text = line.text
    if line.kind == EPOCH and line.fast:
        return _field_count(line) < _previous_field_count(run)
    if line.kind == EPOCH:
        pos, last_attr, last_value = line.match.end(), None, ""
        while field_match := _FIELD.match(text, pos):
            pos = field_match.end()
            last_attr = EPOCH_FIELD_NAMES.get(epoch_field_key(field_match.group(1)))
            last_value = field_match.group(2)
        if text[pos:].strip() or _field_count(line) < _previous_field_count(run):
            return True
        unit = _UNITS.get(last_attr or "")
        if not unit:
            # Only a unit shows where a number ends; with no earlier line to compare, demand one.
            return not run.epochs and not last_value.endswith(("%", "s"))
        return not last_value.endswith(unit)
    if line.kind == FINAL:
        return not text.rstrip().endswith("%")
    if line.kind == FINISHED:
        return "time" in text and not re.search(r"\d\s*(?:seconds?|s)\.?\s*$", text)
    return False


def _finish(run: _RunBuilder) -> RunRecord:
    epochs = sorted(run.epochs.values(), key=lambda e: e.epoch)
    params = dict(run.params)
    params.setdefault("epochs", run.total)
    warnings = list(run.warnings)
    status = "completed"
    if not run.finished:
        status = "incomplete"
        warnings.append(f"run stops before 'Finished Training' after {len(epochs)} of {run.total} epochs")
    missing = len(epochs) != epochs[-1].epoch
    if missing:
        seen = {e.epoch for e in epochs}
        gaps = [n for n in range(1, epochs[-1].epoch) if n not in seen]
        shown = ", ".join(map(str, gaps[:10])) + (" ..." if len(gaps) > 10 else "")
        warnings.append(f"epochs missing from the log: {shown}")
    log_text = "\n".join(run.lines)
    return RunRecord(
        source="log",
        status=status,
        params=params,
        env=dict(run.env),
        epochs=epochs,
        final_val_acc=run.final_val_acc,
        train_time_s=run.train_time_s,
        data_load_s=run.data_load_s,
        param_count=run.param_count,
        command=run.command,
        source_file=run.source,
        source_line=run.first_line,
        content_hash=content_hash(log_text),
        log_text=log_text,
        extra={FINAL_MEASURED_AFTER_EPOCHS: run.final_from} if run.final_from else {},
        warnings=warnings,
    )


def content_hash(text: str) -> str:
    """sha256 hex of already-normalised text (surrogates from odd input hash too)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def split_lines(text: str) -> list[str]:
    """Physical lines; a lone \\r stays inside its line (it is a tqdm redraw, not a line end)."""
    return text.replace("\r\n", "\n").split("\n")


def parse_log_lines(
    lines: list[str], source: str, first_lineno: int = 1, *, last_line_complete: bool = True
) -> list[RunRecord]:
    """Runs in `lines` (numbered from `first_lineno`); [] when there are no epoch lines.

    `last_line_complete=False` says the text stops without a newline, so its last
    line may be cut off mid-number.
    """
    last_lineno = first_lineno + len(lines) - 1
    records: list[RunRecord] = []
    loose_warnings: list[str] = []  # about text that belongs to no run
    run = _RunBuilder(source)
    pending: list[tuple[int, str]] = []  # noise not yet known to belong to a run

    def close(current: _RunBuilder) -> None:
        if current.epochs:
            record = _finish(current)
            record.warnings[:0] = loose_warnings
            loose_warnings.clear()
            records.append(record)
        elif current.first_line is not None and (current.finished or current.final_val_acc is not None):
            loose_warnings.append(f"line {current.first_line}: run without epoch lines ignored")

    for lineno, raw in enumerate(lines, first_lineno):
        # Most lines are one plain segment: classified without building a list for them.
        segments = clean_segments(raw) if "\r" in raw or "\x1b" in raw else (classify(raw.strip()),)
        for line in segments:
            if line.kind in (BLANK, PROGRESS):
                continue
            if not last_line_complete and lineno == last_lineno and looks_cut(run, line):
                run.warnings.append(f"line {lineno}: last line looks cut off; its numbers are ignored")
                # A cut `Finished Training` line still says that training finished.
                line = _Line(FINISHED, "Finished Training", _FINISHED.match("Finished Training")) if line.kind == FINISHED else _Line(NOISE, line.text)
            if line.kind == NOISE:
                pending.append((lineno, line.text))
                continue
            if run.starts_new_run(line):
                close(run)
                run = _RunBuilder(source)
            for noise_lineno, noise in pending:
                run.keep(noise_lineno, noise)
            pending.clear()
            run.keep(lineno, line.text)
            _apply(run, line, lineno)
    close(run)
    if records and loose_warnings:
        records[-1].warnings.extend(loose_warnings)
    return records


def parse_log(text: str, source: str = "<stdin>") -> list[RunRecord]:
    """Every run in a console log, in order. ParseError when there is none or it contradicts itself.

    Only bad input raises ParseError; any other exception is a bug, and reaches the
    CLI as one (its "internal error" line), never disguised as the user's mistake.
    """
    lines = split_lines(text)
    records = parse_log_lines(lines, source, last_line_complete=text.endswith(("\n", "\r")))
    if not records:
        raise ParseError("no epoch lines found", source=source, line=1)
    return records
