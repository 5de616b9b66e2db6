"""The names a query can use, and the type of each one's values.

Three families: the run's own fields (`status`, `hardware`, `final_val_acc`, ...:
the names `list --json` prints and the stored metrics of analysis.metrics under
their keys), the parameters (the canonical names of domain.params, those
`speedrun train` records, and any other name a run in the database holds), and
names that are computed when shown (MFU, time to a target), which are refused
with a reason rather than matching nothing.

`resolve` checks a parsed tree against them: unknown names get a "did you mean",
values are typed as the name's values are (`lr = 4e-2` is the float 0.04,
`hardware = a100` the class A100, `model = ResNet-18` the model resnet18).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, Mapping

from speedrun.errors import QueryError
from speedrun.domain.hardware import hardware_class
from speedrun.domain.params import canonical_name, canonical_value, parse_value
from speedrun.query.ast import And, Cond, Expr, Literal, Not, Or

NUMBER, BOOL, TEXT, DATE = "number", "bool", "text", "date"
_TYPE_WORDS = {NUMBER: "a number", BOOL: "true or false", TEXT: "text", DATE: "a date such as 2026-11-01"}


@dataclass(frozen=True)
class Field:
    """A name a query can test: its canonical `key`, `family` ("run" or "param") and value type."""

    key: str
    family: str
    type: str
    many: bool = False  # a run has several (tags): a test holds when one of them passes


# The run's own fields, by the name a query uses (aliases point at the same field).
_RUN = {
    "id": NUMBER, "label": TEXT, "title": TEXT, "status": TEXT, "source": TEXT,
    "hardware": TEXT, "hardware_text": TEXT, "series": TEXT, "group": TEXT, "tag": TEXT,
    "date": DATE, "created_at": DATE,
    "final_val_acc": NUMBER, "peak_val_acc": NUMBER, "peak_epoch": NUMBER, "train_time_s": NUMBER,
    "mean_epoch_s": NUMBER, "epochs_completed": NUMBER, "wall_time_s": NUMBER, "data_load_s": NUMBER,
    "param_count": NUMBER, "target_acc": NUMBER, "target_time_s": NUMBER,
    "imported": BOOL, "trained": BOOL,
}
RUN_ALIASES = {
    "number": "id", "run": "id", "hardware_class": "hardware", "hw": "hardware", "tags": "tag",
    "sweep": "group",  # a sweep's trials are the runs of its group (speedrun.sweep.runner)
    # analysis.metrics' keys of the stored metrics (and list's column names)
    "final_accuracy": "final_val_acc", "final": "final_val_acc", "accuracy": "final_val_acc",
    "peak_accuracy": "peak_val_acc", "best_accuracy": "peak_val_acc", "peak": "peak_val_acc", "best": "peak_val_acc",
    "training_time": "train_time_s", "time": "train_time_s",
    "seconds_per_epoch": "mean_epoch_s", "epoch_time": "mean_epoch_s",
    "time_to_target": "target_time_s", "target": "target_acc",
}
# Parameters every database may hold: domain.params' canonical names and what `speedrun train`
# records (training.config.TrainConfig.to_params; tests/test_where.py keeps the two in step).
PARAMS = {
    "model": TEXT, "optimizer": TEXT, "lr": NUMBER, "momentum": NUMBER, "weight_decay": NUMBER,
    "batch_size": NUMBER, "epochs": NUMBER, "cosine": BOOL, "amp": BOOL, "bn": BOOL, "augment": TEXT,
    "seed": NUMBER, "nesterov": BOOL, "warmup": NUMBER, "compile": BOOL, "graph": BOOL,
    "subset": NUMBER, "val_subset": NUMBER, "eval_every": NUMBER,
    "recipe": TEXT, "lr_per_1024": NUMBER, "muon_lr": NUMBER, "label_smoothing": NUMBER, "tta": NUMBER,
    "lookahead": BOOL, "whiten_bias_epochs": NUMBER, "bn_momentum": NUMBER, "bias_lr_scale": NUMBER,
    "bias_lr": NUMBER, "head_lr": NUMBER, "sgd_momentum": NUMBER,
}
# Computed when a run is shown, not stored: a filter on them would have to load every run.
COMPUTED = {
    "mfu": "MFU", "efficiency": "the efficiency", "images_per_second": "images per second",
    "images_per_s": "images per second", "tflops": "achieved TFLOP/s",
}
_STORED_TYPES = {"int": NUMBER, "float": NUMBER, "bool": BOOL, "str": TEXT}


def stored_type(kinds: Mapping[str, int]) -> str:
    """A stored parameter's type from how many of its values are of each stored kind."""
    totals: dict[str, int] = {}
    for kind, count in kinds.items():
        if kind in _STORED_TYPES:
            totals[_STORED_TYPES[kind]] = totals.get(_STORED_TYPES[kind], 0) + count
    return max(totals, key=lambda t: (totals[t], t)) if totals else TEXT


def field_named(name: str, stored: Mapping[str, str]) -> Field | None:
    """The field a query's name means; `stored` holds the database's parameter names and types."""
    low = name.lower()
    key = RUN_ALIASES.get(low, low)
    if key in _RUN and key not in PARAMS:
        return Field(key, "run", _RUN[key], many=key == "tag")
    param = canonical_name(name)
    if param in PARAMS:  # declared: no need to ask the database
        return Field(param, "param", PARAMS[param])
    if param in stored:
        return Field(param, "param", stored[param])
    return None


def known_names(stored: Mapping[str, str]) -> list[str]:
    return sorted({*_RUN, *RUN_ALIASES, *PARAMS, *stored})


def resolve(expr: Expr, query: str, stored: Mapping[str, str]) -> Expr:
    """The tree with every name checked and every value typed; QueryError at the first that is not."""
    if isinstance(expr, Not):
        return Not(resolve(expr.item, query, stored))
    if isinstance(expr, (And, Or)):
        return type(expr)(tuple(resolve(item, query, stored) for item in expr.items))
    field = field_named(expr.name, stored)
    if field is None:
        raise QueryError(_unknown(expr.name, stored), query=query, position=expr.pos)
    op = _checked_op(expr, field, query)
    return replace(expr, field=field, op=op, values=tuple(_typed(expr, field, v, query) for v in expr.values))


def _unknown(name: str, stored: Mapping[str, str]) -> str:
    low = name.lower()
    if low in COMPUTED or low.startswith("time_to_"):
        what = COMPUTED.get(low, "a time to a target")
        return (f"{name} ({what}) is computed from the epochs when a run is shown, not stored, so it cannot "
                f"be filtered on; stored ones: final_val_acc, peak_val_acc, train_time_s, target_time_s")
    close = difflib.get_close_matches(low, known_names(stored), n=3, cutoff=0.6)
    hint = (f"; did you mean {' or '.join(close)}?" if close else
            "; names are parameters (lr, batch_size, ...) and run fields (status, hardware, final_val_acc, ...)")
    return f"unknown name {name!r}{hint}"


def _checked_op(cond: Cond, field: Field, query: str) -> str:
    op, kind = cond.op, field.type
    if cond.bare and kind != BOOL:  # a name alone (`cosine`) is a yes/no test
        raise QueryError(f"{cond.name} takes {_TYPE_WORDS[kind]}, not yes or no; compare it, e.g. "
                         f"{_example(cond.name, kind)}", query=query, position=cond.pos)
    allowed = {
        NUMBER: ("=", "<", "<=", ">", ">=", "in", "between", "has"),
        DATE: ("=", "<", "<=", ">", ">=", "in", "between", "has"),
        BOOL: ("=", "in", "has"),
        TEXT: ("=", "in", "like", "has"),
    }[kind]
    if op not in allowed:
        symbol = {"like": "~ / like"}.get(op, op)
        raise QueryError(f"{cond.name} takes {_TYPE_WORDS[kind]}: {symbol} does not apply; use "
                         f"{', '.join(a for a in allowed if a != 'has')}", query=query, position=cond.pos)
    return op


def _example(name: str, kind: str) -> str:
    return {NUMBER: f"{name} < 0.05", DATE: f"{name} >= 2026-11-01", TEXT: f'{name} = "..." or {name} ~ "abc*"'}.get(
        kind, name)


def _typed(cond: Cond, field: Field, literal: Literal, query: str) -> Any:
    """A value as the field's values are typed; QueryError saying the type otherwise."""
    text, kind = literal.text, field.type
    if cond.op == "like":  # only text takes it (_checked_op)
        if (len(text) - len(text.rstrip("\\"))) % 2:
            raise QueryError("a like pattern cannot end with a lone backslash (write \\\\ for one)",
                             query=query, position=literal.pos)
        return text
    value: Any = parse_value(text) if text.strip() == text else text
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise QueryError(f"{cond.name} takes a number, not {text!r}", query=query, position=literal.pos)
        return value if abs(value) < 2**63 else float(value)  # beyond a database's integers: compared as a float
    if kind == BOOL:
        if not isinstance(value, bool):
            raise QueryError(f"{cond.name} takes true or false, not {text!r}", query=query, position=literal.pos)
        return value
    if kind == DATE:
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text)  # runs keep naive UTC (domain.records.utcnow)
            return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
        except ValueError:
            raise QueryError(f"{cond.name} takes a date such as 2026-11-01 or 2026-11-01T12:00, not {text!r}",
                             query=query, position=literal.pos) from None
    if field.key == "hardware":
        known = hardware_class(text)
        return known if known != "unknown" else text
    if field.family == "param":
        return canonical_value(field.key, text)
    return text
