"""The expression tree of a `--where` query: plain, immutable dataclasses.

`parse` builds it with names as written and values as text (`Literal`);
`fields.resolve` returns the same shapes with each condition's `field` set and
its values typed. Conditions are kept in a few positive forms: `!=`, `not in`,
`not between` and `not like` are `negated` conditions, which hold where the run
has a value for the name and the positive condition does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

# The positive operators a condition can have after parsing.
COMPARISONS = ("=", "<", "<=", ">", ">=")
OPERATORS = (*COMPARISONS, "in", "between", "like", "has")


@dataclass(frozen=True)
class Literal:
    """A value as written: `text`, whether it was quoted, and where it starts in the query."""

    text: str
    quoted: bool
    pos: int


@dataclass(frozen=True)
class Cond:
    """`name op values`: one test of one name. `op` is one of OPERATORS; `like` holds a
    SQL LIKE pattern (`%`, `_`, backslash escapes); `has` has no values."""

    name: str
    op: str
    values: tuple[Any, ...]
    pos: int
    negated: bool = False
    field: Any = None  # a fields.Field once resolved
    bare: bool = False  # written as the name alone (`cosine`): `= true`


@dataclass(frozen=True)
class Not:
    item: "Expr"


@dataclass(frozen=True)
class And:
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Expr", ...]


Expr = Union[Cond, Not, And, Or]


def conditions(expr: Expr):
    """Every condition of a tree, in the order written."""
    if isinstance(expr, Cond):
        yield expr
    elif isinstance(expr, Not):
        yield from conditions(expr.item)
    else:
        for item in expr.items:
            yield from conditions(item)
