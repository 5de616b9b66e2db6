"""What a run may hold, checked before anything is written.

`merge` takes runs from files and databases that anyone may have edited. Each
run is checked here, field by field, against the shape of `RunRecord` (types),
the schema (lengths of the columns that will hold it), and the vocabularies
(statuses, sources, label characters); one bad value refuses the whole merge
with an error that names the field. The rules are derived from the record and
the schema, so a new field is checked the day it is added.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

from speedrun.errors import SpeedrunError
from speedrun.tracking.models import Environment, Param, Run, Series, Tag
from speedrun.domain.records import RUN_NUMBER_MAX, SOURCES, STATUSES, EpochRecord, RunRecord, SeriesRecord

# Sizes: a run's texts are notes and logs; a 100,000-line log is about 10 MB.
MAX_TEXT = 64 * 1024 * 1024
MAX_ITEMS = {"tags": 1_000, "params": 10_000, "epochs": 1_000_000, "extra": 10_000}
MAX_DEPTH = 16  # nesting of the free-form `extra` values
INT64 = 2**63 - 1

# Labels are what the user types to name a run: "7a", "9-log2", "15".
LABEL = re.compile(r"[\w.\-]{1,64}")
UUID = re.compile(r"[\w\-]{1,36}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")

PERCENT = {"final_val_acc", "peak_val_acc", "target_acc", "val_acc", "train_acc"}
MAY_BE_NON_FINITE = {"train_loss", "val_loss"}  # a diverged training's loss
INT_RANGES = {"number": (1, RUN_NUMBER_MAX), "source_line": (1, RUN_NUMBER_MAX)}
# RunRecord fields stored under another column name.
COLUMN_OF = {"group": "group_name", "final_val_acc": "stated_final_val_acc", "train_time_s": "stated_train_time_s"}


class InvalidRun(SpeedrunError):
    """A run that may not be stored; the message names the field."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}" if field else problem)


def check_name(value: str, what: str) -> str:
    """A tag, group name or title the user types: not blank, no control characters, fits its column."""
    field = {"tag": "tags", "group name": "group", "title": "title"}.get(what, what)
    if not value.strip():
        raise SpeedrunError(f"{what} cannot be empty")
    if what != "title" and _CONTROL.search(value):
        raise SpeedrunError(f"{what} {_shown(value)} holds control characters")
    limit = _LENGTHS.get(field, MAX_TEXT)
    if len(value) > limit:
        raise SpeedrunError(f"{what} is {len(value):,} characters long; at most {limit:,} are allowed")
    return value


def run_from_json(data: Any) -> RunRecord:
    """A checked `RunRecord` from its JSON form (`exchange.record_to_json`); InvalidRun otherwise."""
    if not isinstance(data, dict):
        raise InvalidRun("", f"expected an object, got {_kind(data)}")
    values = _check_object(data, _RUN_HINTS, path="")
    if "source" not in values:
        raise InvalidRun("source", "missing")
    return RunRecord(**values)


def series_from_json(data: Any) -> SeriesRecord:
    """A checked `SeriesRecord` (without members) from its JSON form; InvalidRun otherwise."""
    if not isinstance(data, dict):
        raise InvalidRun("", f"expected an object, got {_kind(data)}")
    values = _check_object(data, _SERIES_HINTS, path="")
    name = values.get("name")
    if not name:
        raise InvalidRun("name", "missing")
    limit = Series.__table__.c.name.type.length
    if len(name) > limit or _CONTROL.search(name):
        raise InvalidRun("name", f"{_shown(name)} is not a series name (at most {limit} characters, no control characters)")
    return SeriesRecord(**values)


def _check_object(data: dict, hints: dict[str, Any], *, path: str) -> dict[str, Any]:
    unknown = sorted(str(k) for k in data if k not in hints)
    if unknown:
        raise InvalidRun(path + unknown[0], "unknown field" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    return {name: _check(path + name, name, value, hints[name]) for name, value in data.items()}


def _check(path: str, name: str, value: Any, hint: Any) -> Any:
    optional, hint = _unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        raise InvalidRun(path, "missing (null)")
    origin = typing.get_origin(hint)
    if hint is str:
        return _check_str(path, name, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise InvalidRun(path, f"expected true or false, got {_shown(value)}")
    if hint is int:
        return _check_int(path, name, value)
    if hint is float:
        return _check_float(path, name, value)
    if hint is datetime:
        return _check_datetime(path, value)
    if origin is list:
        (item,) = typing.get_args(hint)
        items = _check_list(path, name, value)
        if item is EpochRecord:
            return _check_epochs(path, items)
        return [_check(f"{path}[{i}]", name, v, item) for i, v in enumerate(items)]
    if origin is dict:
        return _check_dict(path, name, value)
    raise TypeError(f"no rule for {path}: {hint}")  # a new kind of field: teach this module


def _check_str(path: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRun(path, f"expected text, got {_shown(value)}")
    limit = _LENGTHS.get(name, MAX_TEXT)
    if len(value) > limit:
        raise InvalidRun(path, f"{len(value):,} characters, more than the {limit:,} allowed")
    _check_unicode(path, value)
    if name == "status" and value not in STATUSES:
        raise InvalidRun(path, f"{_shown(value)} is not a status ({', '.join(STATUSES)})")
    if name == "source" and value not in SOURCES:
        raise InvalidRun(path, f"{_shown(value)} is not a source ({', '.join(SOURCES)})")
    if name == "label" and not LABEL.fullmatch(value):
        raise InvalidRun(path, f"{_shown(value)} is not a label (letters, digits, '.', '-' and '_', at most 64)")
    if name == "uuid" and not UUID.fullmatch(value):
        raise InvalidRun(path, f"{_shown(value)} is not a UUID")
    if name in ("tags", "group") and (not value.strip() or _CONTROL.search(value)):
        raise InvalidRun(path, f"{_shown(value)}: empty or with control characters")
    return value


def _check_unicode(path: str, value: str) -> None:
    """Text is Unicode characters: JSON's `\\ud800` (half a pair) is none, and no database stores it."""
    if _SURROGATE.search(value):
        raise InvalidRun(path, f"{_shown(value)} holds a lone surrogate (not a character; not UTF-8 text)")


def _check_int(path: str, name: str, value: Any) -> int:
    if type(value) is not int:
        raise InvalidRun(path, f"expected a whole number, got {_shown(value)}")
    low, high = INT_RANGES.get(name, (0, RUN_NUMBER_MAX))
    if not low <= value <= high:
        raise InvalidRun(path, f"{_shown(value)} is out of range ({low} to {high})")
    return value


def _check_float(path: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRun(path, f"expected a number, got {_shown(value)}")
    if isinstance(value, int) and abs(value) > INT64:
        raise InvalidRun(path, f"{_shown(value)} is out of range")
    value = float(value)
    if not math.isfinite(value):
        if name in MAY_BE_NON_FINITE:
            return value
        raise InvalidRun(path, f"{value} is not a finite number")
    if name in PERCENT and not 0 <= value <= 100:
        raise InvalidRun(path, f"{value} is not a percentage (0 to 100)")
    if name not in PERCENT and name not in MAY_BE_NON_FINITE and value < 0:
        raise InvalidRun(path, f"{value} is negative")
    return value


def _check_datetime(path: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRun(path, f"{_shown(value)} is not a date and time (ISO 8601)") from None
    else:
        raise InvalidRun(path, f"expected a date and time (ISO 8601), got {_shown(value)}")
    if parsed.tzinfo is not None:  # the database keeps naive UTC
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _check_list(path: str, name: str, value: Any) -> list:
    if not isinstance(value, list):
        raise InvalidRun(path, f"expected a list, got {_shown(value)}")
    limit = MAX_ITEMS.get(name, MAX_ITEMS["extra"])
    if len(value) > limit:
        raise InvalidRun(path, f"{len(value):,} items, more than the {limit:,} allowed")
    return value


def _check_epochs(path: str, items: list) -> list[EpochRecord]:
    epochs, seen = [], set()
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if isinstance(item, EpochRecord):
            item = {f.name: getattr(item, f.name) for f in fields(EpochRecord)}
        if not isinstance(item, dict):
            raise InvalidRun(where, f"expected an object, got {_kind(item)}")
        if "epoch" not in item:
            raise InvalidRun(where + ".epoch", "missing")
        values = _check_object(item, _EPOCH_HINTS, path=where + ".")
        if values["epoch"] in seen:
            raise InvalidRun(where + ".epoch", f"epoch {values['epoch']} appears twice")
        seen.add(values["epoch"])
        epochs.append(EpochRecord(**values))
    return epochs


def _check_dict(path: str, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRun(path, f"expected an object, got {_shown(value)}")
    limit = MAX_ITEMS.get(name, MAX_ITEMS["extra"])
    if len(value) > limit:
        raise InvalidRun(path, f"{len(value):,} entries, more than the {limit:,} allowed")
    checked = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not key.strip() or len(key) > _LENGTHS["param_name"]:
            raise InvalidRun(where, "a name must be non-empty text of at most 128 characters")
        if name == "env":
            if key not in _ENV_HINTS:
                raise InvalidRun(where, "unknown field")
            checked[key] = _check(where, key, item, _ENV_HINTS[key])
        elif name == "params":
            checked[key] = _check_scalar(where, item)
        else:
            checked[key] = _check_json(where, item, depth=1)
    return checked


def _check_scalar(path: str, value: Any) -> Any:
    """A parameter value: text, a number, true/false or null (as `params.value_type` names them)."""
    if value is None or isinstance(value, (bool, str)):
        return _check_json(path, value, depth=1)
    if isinstance(value, (int, float)):
        return _check_json(path, value, depth=1)
    raise InvalidRun(path, f"expected text, a number, true/false or null, got {_kind(value)}")


def _check_json(path: str, value: Any, *, depth: int) -> Any:
    """Free-form JSON, as every backend stores it: finite numbers, bounded depth and sizes."""
    if depth > MAX_DEPTH:
        raise InvalidRun(path, f"nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > INT64:
            raise InvalidRun(path, f"{_shown(value)} is out of range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRun(path, f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InvalidRun(path, f"{len(value):,} characters, more than the {MAX_TEXT:,} allowed")
        _check_unicode(path, value)
        return value
    if isinstance(value, list):
        _check_list(path, "extra", value)
        return [_check_json(f"{path}[{i}]", v, depth=depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        _check_dict_size(path, value)
        return {str(k): _check_json(f"{path}.{k}", v, depth=depth + 1) for k, v in value.items()}
    raise InvalidRun(path, f"not JSON: {_kind(value)}")


def _check_dict_size(path: str, value: dict) -> None:
    if len(value) > MAX_ITEMS["extra"]:
        raise InvalidRun(path, f"{len(value):,} entries, more than the {MAX_ITEMS['extra']:,} allowed")
    for key in value:
        if not isinstance(key, str):
            raise InvalidRun(path, "names must be text")
        _check_unicode(path, key)


# ------------------------------------------------------------------ derived rules
def _unwrap_optional(hint: Any) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return True, args[0]
    return False, hint


def _lengths() -> dict[str, int]:
    """Column lengths of the schema, by record field name: PostgreSQL enforces them."""
    lengths = {"tags": Tag.__table__.c.tag.type.length, "param_name": Param.__table__.c.name.type.length}
    for table in (Run.__table__, Environment.__table__):
        for column in table.columns:
            length = getattr(column.type, "length", None)
            if length:
                lengths[column.name] = length
    for field_name, column in COLUMN_OF.items():
        if column in lengths:
            lengths[field_name] = lengths[column]
    return lengths


_LENGTHS = _lengths()
_RUN_HINTS = {name: hint for name, hint in typing.get_type_hints(RunRecord).items() if name != "warnings"}
_SERIES_HINTS = {name: hint for name, hint in typing.get_type_hints(SeriesRecord).items()
                 if name not in ("members", "parent_label")}
_EPOCH_HINTS = typing.get_type_hints(EpochRecord)
_ENV_HINTS = {"hardware": str | None} | {
    column.name: (column.type.python_type | None)
    for column in Environment.__table__.columns
    if column.name not in ("id", "fingerprint", "hardware_class", "hardware")
}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _shown(value: Any) -> str:
    """A value for an error message: short, one line, control characters visible."""
    if isinstance(value, (dict, list)):
        return _kind(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a number of more than 30 digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
