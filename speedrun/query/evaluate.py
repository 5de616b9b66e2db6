"""What a resolved query means, in plain Python: the reference the SQL is held to.

The storage layer compiles the same tree to SQL (speedrun.tracking.where) and runs
it in the database; `matches` evaluates it on one run read into memory. The two
must select the same runs (tests/test_where.py checks it on random runs and
queries). The rules, shared by both:

- a test on a name the run has no value for is false (`lr < 0.05` leaves out runs
  without an lr); `not` is plain negation, so `not lr < 0.05` keeps them;
- a negated test (`!=`, `not in`, `not between`, `not like`, `!~`) holds where the
  run has a value for the name and the positive test does not hold;
- a parameter's value counts only if it is of the name's type (a string lr matches
  no number); a run with several tags passes a tag test when one of its tags does;
- a date (`2026-11-01`) is that whole day: `date = 2026-11-01` is any time of it,
  `date <= 2026-11-01` includes it; text matching ignores ASCII case.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from speedrun.query.ast import And, Cond, Expr, Not, Or
from speedrun.query.fields import BOOL, DATE, NUMBER, TEXT, Field

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower case as SQLite's lower() and LIKE know it: A-Z only."""
    return text.translate(_ASCII_LOWER)


def atoms(cond: Cond) -> list[list[tuple[str, Any]]]:
    """A positive condition as OR of ANDs of plain comparisons (`=`, `<`, `<=`, `>`, `>=`, `like`)
    on one value: the one place where `in`, `between` and whole days are spelled out."""
    op, values = cond.op, cond.values
    if op == "in":
        return [branch for v in values for branch in _compare("=", v)]
    if op == "between":
        low, high = values
        return [a + b for a in _compare(">=", low) for b in _compare("<=", high)]
    return _compare(op, values[0])


def _compare(op: str, value: Any) -> list[list[tuple[str, Any]]]:
    if isinstance(value, date) and not isinstance(value, datetime):  # the whole day
        start = datetime(value.year, value.month, value.day)
        end = start + timedelta(days=1) if value < date.max else datetime.max
        return {
            "=": [[(">=", start), ("<", end)]],
            "<": [[("<", start)]],
            "<=": [[("<", end)]],
            ">": [[(">=", end)]],
            ">=": [[(">=", start)]],
        }[op]
    return [[(op, value)]]


def typed(field: Field, value: Any) -> bool:
    """Whether a stored value is of the field's type (only those take part in tests)."""
    if field.type == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if field.type == BOOL:
        return isinstance(value, bool)
    if field.type == TEXT:
        return isinstance(value, str)
    if field.type == DATE:
        return isinstance(value, datetime)
    return False


def holds(cond: Cond, value: Any) -> bool:
    """Whether one value (of the field's type) passes the positive condition."""
    return any(all(_passes(op, value, operand) for op, operand in branch) for branch in atoms(cond))


def _passes(op: str, value: Any, operand: Any) -> bool:
    if op == "like":
        return _like(operand).fullmatch(ascii_lower(value)) is not None
    if op == "=":
        return value == operand
    if op == "<":
        return value < operand
    if op == "<=":
        return value <= operand
    if op == ">":
        return value > operand
    return value >= operand


@lru_cache(maxsize=256)
def _like(pattern: str) -> re.Pattern:
    """A LIKE pattern (`%`, `_`, backslash escapes) as a regex, ASCII case folded."""
    out, i = [], 0
    pattern = ascii_lower(pattern)
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def run_values(run: Any, field: Field) -> tuple[bool, list]:
    """(whether the run has a value for the field, its values) of a stored run as read (store.RunView)."""
    if field.family == "param":
        params = run.param_dict
        return (field.key in params, [params[field.key]] if field.key in params else [])
    key = field.key
    if key == "tag":
        tags = [t.tag for t in run.tags]
        return (bool(tags), tags)
    env = run.environment
    value = {
        "label": lambda: run.display_label,
        "hardware": lambda: env.hardware_class if env else "unknown",
        "hardware_text": lambda: env.hardware if env else None,
        "series": lambda: run.series_name,
        "group": lambda: run.group_name,
        "date": lambda: run.started_at or run.created_at,
        "imported": lambda: run.source != "train",
        "trained": lambda: run.source == "train",
    }.get(key, lambda: getattr(run, key))()
    return (value is not None, [] if value is None else [value])


def matches(expr: Expr, run: Any) -> bool:
    """Whether a run passes a resolved query."""
    if isinstance(expr, Not):
        return not matches(expr.item, run)
    if isinstance(expr, And):
        return all(matches(item, run) for item in expr.items)
    if isinstance(expr, Or):
        return any(matches(item, run) for item in expr.items)
    present, values = run_values(run, expr.field)
    if expr.op == "has":
        return present
    positive = any(holds(expr, v) for v in values if typed(expr.field, v))
    return present and not positive if expr.negated else positive
