"""`--where` queries compiled to SQL: the tree of speedrun.query, run in the database.

Every condition becomes a test on one of the run's columns or a semi-join
(`runs.id IN (SELECT run_id FROM params WHERE name = ... AND ...)`), so the
database filters 10,000 runs with its indexes (migration 0007) and only the
matching runs are read. The meaning of each condition is speedrun.query.evaluate's
(the reference the tests hold this to); this module only spells it in SQL.

Parameter values are JSON: on SQLite a number is stored as a number (the column's
NUMERIC affinity), a boolean as the text `true`/`false`, a string as its JSON text;
on PostgreSQL they are JSONB and compared as JSONB, which orders numbers numerically.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Collection

from sqlalchemy import Float, String, and_, case, cast, func, literal, not_, or_, select, true, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from speedrun.query.ast import And, Cond, Expr, Not, Or
from speedrun.query.evaluate import ascii_lower, atoms, holds
from speedrun.query.fields import BOOL, NUMBER, TEXT
from speedrun.tracking.models import Environment, Param, Run, Series, Tag, json_text

_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


def compile_where(expr: Expr, dialect: str, *, died: Collection[int] = ()) -> ColumnElement:
    """A WHERE clause on `runs` for a resolved query. `died`: runs stored as `running` whose
    process is gone (liveness), which read as `died`."""
    return _Compiler(dialect, died).expr(expr)


class _Compiler:
    def __init__(self, dialect: str, died: Collection[int]):
        self.postgres = dialect == "postgresql"
        self.died = sorted(died)

    def expr(self, expr: Expr) -> ColumnElement:
        if isinstance(expr, Not):
            return not_(self.expr(expr.item))
        if isinstance(expr, And):
            return and_(*[self.expr(item) for item in expr.items])
        if isinstance(expr, Or):
            return or_(*[self.expr(item) for item in expr.items])
        has, positive = self.cond(expr)
        if expr.op == "has":
            return has
        return and_(has, not_(positive)) if expr.negated else positive

    # ------------------------------------------------------------ conditions
    def cond(self, cond: Cond) -> tuple[ColumnElement, ColumnElement]:
        """(the run has a value for the name, the positive condition holds)."""
        field = cond.field
        if field.family == "param":
            return self.param(cond)
        key = field.key
        if key == "tag":
            return Run.id.in_(select(Tag.run_id)), Run.id.in_(select(Tag.run_id).where(self.test(Tag.tag, cond)))
        # Nullable references: `x IN (...)` is NULL where x is, which `not` would keep NULL (never true).
        if key == "series":
            return (_among(Run.series_id, select(Series.id)),
                    _among(Run.series_id, select(Series.id).where(self.test(Series.name, cond))))
        if key == "hardware":
            known = _among(Run.environment_id,
                           select(Environment.id).where(self.test(Environment.hardware_class, cond)))
            unknown = holds(cond, "unknown") if cond.op != "has" else False
            return true(), or_(known, Run.environment_id.is_(None)) if unknown else known
        if key == "hardware_text":
            text = Environment.hardware
            return (_among(Run.environment_id, select(Environment.id).where(text.is_not(None))),
                    _among(Run.environment_id, select(Environment.id).where(text.is_not(None), self.test(text, cond))))
        if key in ("imported", "trained"):
            trained = Run.source == "train"
            if cond.op == "has":
                return true(), true()
            wanted = {value == (key == "trained") for value in cond.values}
            return true(), or_(*[trained if w else not_(trained) for w in wanted])
        column = self.column(key)
        return column.is_not(None), and_(column.is_not(None), self.test(column, cond))

    def column(self, key: str) -> ColumnElement:
        if key == "label":
            return func.coalesce(Run.label, cast(Run.id, String))
        if key == "date":
            return func.coalesce(Run.started_at, Run.created_at)
        if key == "group":
            return Run.group_name
        if key == "status" and self.died:
            return case((Run.id.in_(self.died), literal("died")), else_=Run.status)
        return getattr(Run, key)

    def test(self, value: ColumnElement, cond: Cond) -> ColumnElement:
        """The positive condition on a non-null SQL value (OR of ANDs of comparisons)."""
        if cond.op == "has":
            return true()
        if _plain_list(cond):  # one IN, not an OR per value: databases limit how deep expressions nest
            return value.in_([_bindable(v) for v in cond.values])
        return or_(*[and_(*[self.compare(value, op, operand) for op, operand in branch]) for branch in atoms(cond)])

    def compare(self, value: ColumnElement, op: str, operand: Any) -> ColumnElement:
        operand = _bindable(operand)
        if op == "like":
            lowered = func.translate(value, _UPPER, _LOWER) if self.postgres else func.lower(value)
            return lowered.like(ascii_lower(operand), escape="\\")
        return value.op(op)(operand) if op != "=" else value == operand

    # ------------------------------------------------------------ parameters
    def param(self, cond: Cond) -> tuple[ColumnElement, ColumnElement]:
        key = cond.field.key
        has = Run.id.in_(select(Param.run_id).where(Param.name == key))
        if cond.op == "has":
            return has, has
        kind = cond.field.type
        guard, value = (self._pg_value if self.postgres else self._sqlite_value)(kind)
        if _plain_list(cond):
            if self.postgres and kind in (NUMBER, BOOL):
                from sqlalchemy.dialects.postgresql import JSONB

                listed = value.in_([cast(literal(_json(v), String), JSONB) for v in cond.values])
            elif kind == BOOL:
                listed = value.in_(["true" if v else "false" for v in cond.values])
            else:
                listed = value.in_(cond.values)
            return has, Run.id.in_(select(Param.run_id).where(Param.name == key, guard, listed))
        tests = []
        for branch in atoms(cond):
            parts = []
            for op, operand in branch:
                if self.postgres and kind in (NUMBER, BOOL):  # JSONB against JSONB: numbers compare as numbers
                    from sqlalchemy.dialects.postgresql import JSONB

                    parts.append(value.op(op)(cast(literal(_json(operand), String), JSONB)))
                elif kind == BOOL:
                    parts.append(value == ("true" if operand else "false"))
                else:
                    parts.append(self.compare(value, op, operand))
            tests.append(and_(*parts))
        return has, Run.id.in_(select(Param.run_id).where(Param.name == key, guard, or_(*tests)))

    @staticmethod
    def _sqlite_value(kind: str) -> tuple[ColumnElement, ColumnElement]:
        raw = Param.value
        if kind == NUMBER:
            return func.typeof(raw).in_(("integer", "real")), type_coerce(raw, Float)
        text = type_coerce(raw, String)
        if kind == BOOL:
            return text.in_(("true", "false")), text
        # A JSON string: text starting with a quote that parses (damaged JSON never reaches json_extract).
        string = case((and_(func.typeof(raw) == "text", func.substr(text, 1, 1) == '"'),
                       case((func.json_valid(text) == 1, func.json_extract(text, "$")))))
        return string.is_not(None), type_coerce(string, String)

    @staticmethod
    def _pg_value(kind: str) -> tuple[ColumnElement, ColumnElement]:
        raw = Param.value
        if kind == TEXT:
            from sqlalchemy import literal_column

            return func.jsonb_typeof(raw) == "string", raw.op("#>>", return_type=String)(literal_column("'{}'"))
        return func.jsonb_typeof(raw) == ("number" if kind == NUMBER else "boolean"), raw


def _bindable(value: Any) -> Any:
    """An int beyond an INTEGER column (PostgreSQL's has 32 bits) is compared as the number it is, a float."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**31:
        return literal(float(value), Float)  # typed, so the column's type does not turn it back into an int
    return value


def _plain_list(cond: Cond) -> bool:
    """`in (...)` of values compared as they are (dates are whole days: ranges)."""
    return cond.op == "in" and not any(isinstance(v, date) for v in cond.values)


def _among(reference: ColumnElement, ids) -> ColumnElement:
    """`reference IN (ids)`, false (not NULL) where the reference is NULL."""
    return and_(reference.is_not(None), reference.in_(ids))


def _json(value: Any) -> str:
    return json_text(value)
