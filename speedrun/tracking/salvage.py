"""Reading runs whose stored values are damaged: the run is returned, the value left out and named.

Only SQLite lets a column hold a value of another kind (text in a number column, JSON that does
not parse, a date that is not one, a status nobody writes) or text that is not UTF-8; PostgreSQL
refuses such values on the way in. The store reads every run the fast way (`Store._views`)
except those `damaged_ids` finds, which `careful_views` reads value by value; a read that meets
text that is not UTF-8 is made again tolerantly (`tolerant`), and `note_damaged_text` names
what it found.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache, wraps
from typing import Any, Callable

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, and_, cast, func, not_, or_, select, type_coerce
from sqlalchemy.types import NullType

from speedrun.domain.params import typed_value
from speedrun.domain.records import SOURCES, STATUSES
from speedrun.errors import DatabaseError
from speedrun.tracking import db as dbmod
from speedrun.tracking.models import Environment, EpochMetric, Param, Run, Series, Tag, is_json
from speedrun.tracking.rows import EnvironmentView, EpochView, ParamView, RunView, TagView, json_value


class UndecodableText(Exception):
    """SQLite handed back text that is not UTF-8: read again, tolerantly."""


def undecodable(reason: str) -> bool:
    """Whether a database error's text says SQLite met text that is not UTF-8."""
    return "Could not decode to UTF-8" in reason


def tolerant(method: Callable) -> Callable:
    """Run a store method again, reading damaged text as such, when SQLite finds bytes that are not UTF-8."""

    @wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except UndecodableText:
            self._tolerate_bad_text = True
            try:
                return method(self, *args, **kwargs)
            except UndecodableText:
                raise DatabaseError(f"cannot read database {self.label}: text that is not UTF-8") from None

    return wrapper


# ------------------------------------------------------------------- what a column may hold
_DICT_COLUMNS = {("runs", "extra"), ("epoch_metrics", "extra")}
_VOCABULARIES = {("runs", "status"): STATUSES, ("runs", "source"): SOURCES}


def _healthy_column(column) -> Any:
    """SQL that is true when an SQLite column holds a value of its declared kind."""
    kind = func.typeof(column)
    table_column = (column.table.name, column.name)
    if is_json(column):
        ok = func.json_valid(column) == 1
        if table_column in _DICT_COLUMNS:
            ok = ok & (func.json_type(column) == "object")
    elif isinstance(column.type, Boolean):
        ok = (kind == "integer") & column.in_((0, 1))
    elif isinstance(column.type, Integer):
        ok = kind == "integer"
    elif isinstance(column.type, Float):
        ok = kind.in_(("real", "integer"))
    elif isinstance(column.type, DateTime):
        ok = (kind == "text") & func.datetime(column).is_not(None) & func.length(column).in_((10, 19, 26))
    else:
        ok = kind == "text"
        if table_column in _VOCABULARIES:
            ok = ok & column.in_(_VOCABULARIES[table_column])
    return or_(column.is_(None), ok) if column.nullable else ok


@cache
def _unhealthy(model) -> Any:
    """SQL that is true when a row of `model`'s table holds a value its column cannot hold: built
    once (the checks read several tables per listing, and a new expression is compiled anew)."""
    return not_(and_(*[_healthy_column(c) for c in model.__table__.columns]))


def _raw(table) -> list:
    """Every column of `table` as the driver returns it, JSON as text: nothing decoded on the way."""
    return [
        (cast(c, Text) if is_json(c) else type_coerce(c, NullType())).label(c.name)
        for c in table.columns
    ]


def _decode(column, value: Any) -> Any:
    """A raw value as its column's kind; ValueError when it is not one."""
    if value is None:
        if not column.nullable:
            raise ValueError("missing")
        return None
    if is_json(column):
        decoded = json_value(value) if isinstance(value, str) else value
        if (column.table.name, column.name) in _DICT_COLUMNS and not isinstance(decoded, dict):
            raise ValueError("not an object")
        return decoded
    if isinstance(column.type, Boolean):
        if value in (0, 1):
            return bool(value)
    elif isinstance(column.type, Integer):
        if type(value) is int:
            return value
    elif isinstance(column.type, Float):
        if type(value) in (int, float):
            return float(value)
    elif isinstance(column.type, DateTime):
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed
    elif isinstance(value, str) and not isinstance(value, dbmod.DamagedText):
        allowed = _VOCABULARIES.get((column.table.name, column.name))
        if allowed is None or value in allowed:
            return value
    raise ValueError("wrong kind")


# What a damaged required value reads as (it is also named in `RunView.damaged`).
_STAND_INS = {"extra": {}, "epochs_completed": 0}


def _decode_row(table, raw: Any) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    bad: list[str] = []
    for column in table.columns:
        value = raw[column.name]
        try:
            values[column.name] = _decode(column, value)
        except (ValueError, TypeError):
            bad.append(column.name)
            # Text that is not in the vocabulary is still shown (escaped), so the user can see what is wrong.
            keep = isinstance(value, str) and isinstance(column.type, String) and not is_json(column)
            values[column.name] = value if keep else _STAND_INS.get(column.name)
    return values, bad


# ------------------------------------------------------------------- finding and reading damaged runs
def damaged_ids(conn, run_ids, *, with_epochs: bool) -> set[int]:
    """Runs holding a value their column cannot hold: text in a number column, JSON
    that does not parse, a date that is not one, a status nobody writes.

    Only SQLite lets a column hold another type; PostgreSQL refuses such values
    on the way in, so there is nothing to look for there.
    """
    if conn.dialect.name != "sqlite":
        return set()
    damaged = set(conn.scalars(select(Run.id).where(Run.id.in_(run_ids), _unhealthy(Run))))
    damaged |= set(
        conn.scalars(
            select(Run.id).where(
                Run.id.in_(run_ids),
                Run.environment_id.in_(select(Environment.id).where(_unhealthy(Environment))),
            )
        )
    )
    for table, column in ((Param, Param.run_id), (Tag, Tag.run_id)) + (
        ((EpochMetric, EpochMetric.run_id),) if with_epochs else ()
    ):
        damaged |= set(
            conn.scalars(select(column).where(column.in_(run_ids), _unhealthy(table)).distinct())
        )
    return damaged


def careful_views(conn, run_ids: list[int], *, with_epochs: bool) -> dict[int, RunView]:
    """Views of damaged runs, read value by value: what cannot be read is left out and named."""
    views: dict[int, RunView] = {}
    raw_runs = conn.execute(select(*_raw(Run.__table__)).where(Run.id.in_(run_ids))).all()
    params: dict[int, list] = {}
    broken: dict[int, list[str]] = {}
    for row in conn.execute(
        select(*_raw(Param.__table__)).where(Param.run_id.in_(run_ids)).order_by(Param.run_id, Param.position)
    ):
        try:
            value = typed_value(json_value(row.value), row.type) if isinstance(row.value, str) else row.value
            if not isinstance(row.name, str) or not isinstance(row.position, int):
                raise ValueError
            params.setdefault(row.run_id, []).append(ParamView(row.name, value, row.type, row.position))
        except (ValueError, TypeError):
            broken.setdefault(row.run_id, []).append(f"params.{row.name}")
    tags: dict[int, list] = {}
    for row in conn.execute(select(*_raw(Tag.__table__)).where(Tag.run_id.in_(run_ids))):
        if isinstance(row.tag, str):
            tags.setdefault(row.run_id, []).append(TagView(row.run_id, row.tag))
        else:
            broken.setdefault(row.run_id, []).append("tags")
    epochs: dict[int, list] = {}
    if with_epochs:
        for row in conn.execute(
            select(*_raw(EpochMetric.__table__)).where(EpochMetric.run_id.in_(run_ids))
        ):
            values, bad = _decode_row(EpochMetric.__table__, row._mapping)
            if "epoch" in bad:
                broken.setdefault(row.run_id, []).append("epochs")
                continue
            broken.setdefault(row.run_id, []).extend(f"epoch {values['epoch']}: {name}" for name in bad)
            epochs.setdefault(row.run_id, []).append(
                EpochView(**{name: values[name] for name in EpochView._fields})
            )
    for run_epochs in epochs.values():
        run_epochs.sort(key=lambda e: e.epoch)
    env_ids = {r.environment_id for r in raw_runs if isinstance(r.environment_id, int)}
    environments, env_damage = {}, {}
    if env_ids:
        for row in conn.execute(select(*_raw(Environment.__table__)).where(Environment.id.in_(env_ids))):
            values, bad = _decode_row(Environment.__table__, row._mapping)
            environments[row.id] = EnvironmentView(**values)
            env_damage[row.id] = [f"environment.{name}" for name in bad]
    series_ids = {r.series_id for r in raw_runs if isinstance(r.series_id, int)}
    series_names = (
        dict(conn.execute(select(Series.id, Series.name).where(Series.id.in_(series_ids))).all()) if series_ids else {}
    )
    for row in raw_runs:
        values, bad = _decode_row(Run.__table__, row._mapping)
        tags.get(row.id, []).sort(key=lambda t: t.tag)
        env_id = values["environment_id"]
        views[row.id] = RunView(
            values,
            params.get(row.id, []),
            tags.get(row.id, []),
            epochs.get(row.id, []),
            environments.get(env_id),
            damaged=bad + broken.get(row.id, []) + env_damage.get(env_id, []),
            series_name=series_names.get(values.get("series_id")),
        )
    return views


def note_damaged_text(view: RunView) -> None:
    """After a tolerant read: name the text columns that held bytes that are not UTF-8."""
    for name, value in list(vars(view).items()):
        if isinstance(value, dbmod.DamagedText) and name not in view.damaged:
            view.damaged.append(name)
    for param in view.params:
        if isinstance(param.value, dbmod.DamagedText) or isinstance(param.name, dbmod.DamagedText):
            view.damaged.append(f"params.{param.name}")
    if any(isinstance(t.tag, dbmod.DamagedText) for t in view.tags):
        view.damaged.append("tags")
