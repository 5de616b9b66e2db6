"""A run's shapes in the store, and one converter each way between a record and its rows.

Reads hand out `RunView`s (plain data with the attribute names of `models.Run`); writes take
`RunRecord`s (speedrun.domain.records). What goes from one to the other is derived from the
dataclasses' fields and the tables' columns, not listed by hand: a field and a column of the
same name (or one of the few renamed in `_COLUMN_OF`) carry the same fact. Only what is
decided or transformed on the way is named here.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections import namedtuple
from dataclasses import fields
from functools import lru_cache
from operator import attrgetter
from typing import Any

from speedrun.domain.records import (
    RUN_NUMBER_MAX,
    EpochRecord,
    RunRecord,
    SeriesRecord,
    Summary,
    summarize_record,
    utcnow,
)
from speedrun.tracking import db as dbmod
from speedrun.tracking.models import Environment, EpochMetric, Run, RunLabels, Series


@lru_cache(maxsize=65536)
def json_value(raw: str | None) -> Any:
    """Decoded JSON of a column, shared between equal texts: views are read-only."""
    return None if raw is None else json.loads(raw)


class RunView(RunLabels):
    """A stored run as plain data, with the attribute names of `models.Run`.

    Reads return these rather than ORM objects: they are cheap to build in bulk
    and cannot lazily touch the database after the session is gone.
    `params`, `tags`, `epochs` and `environment` hold plain rows. `damaged`
    names the stored values that could not be read (left out of the view).
    """

    def __init__(  # `columns`: the `runs` row, a mapping or (name, value) pairs
        self, columns, params: list, tags: list, epochs: list, environment, damaged=(), series_name: str | None = None
    ) -> None:
        self.__dict__.update(columns)
        self.params = params
        self.tags = tags
        self.epochs = epochs
        self.environment = environment
        self.damaged = list(damaged)
        self.series_name = series_name  # the notebook series (`g:NAME`) the run belongs to
        self.derived: dict[str, Any] = {}  # what analysis derives from the view (`memo.per_run`)
        self._param_dict: dict[str, Any] | None = None

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as typed values, decoded once (a view is never edited); a fresh copy each time."""
        if self._param_dict is None:
            self._param_dict = RunLabels.param_dict.fget(self)
        return dict(self._param_dict)


def _columns(model, *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(name for name in model.__table__.columns.keys() if name not in without)


# Rows of a RunView. Reading 200,000 epochs, decoding JSON through SQLAlchemy's
# type machinery cost more than the query; these decode once per distinct text.
ParamView = namedtuple("ParamView", "name value type position")
EpochView = namedtuple("EpochView", _columns(EpochMetric, without=("id",)))  # run_id, epoch, metrics..., extra
TagView = namedtuple("TagView", "run_id tag")
EnvironmentView = namedtuple("EnvironmentView", _columns(Environment))

# What a record's `env` holds: the environment's detected facts (its identity and
# hardware class are the store's, its free-text `hardware` the record's own field).
ENV_FIELDS = _columns(Environment, without=("id", "fingerprint", "hardware_class", "hardware"))
# The columns of `epoch_metrics` an epoch fills, in insert order (`epoch_tuple`).
EPOCH_COLUMNS = EpochView._fields
_EPOCH_METRICS = EPOCH_COLUMNS[1:-1]  # epoch, train_loss, ..., images_per_s: an EpochRecord's own names
_epoch_values = attrgetter(*_EPOCH_METRICS)
SUMMARY_COLUMNS = tuple(f.name for f in fields(Summary))

# A record's field -> the `runs` column holding it, where the names differ: a record's final
# accuracy and training time are what its source states; the run's own are derived (SUMMARY_COLUMNS).
_COLUMN_OF = {"group": "group_name", "final_val_acc": "stated_final_val_acc", "train_time_s": "stated_train_time_s"}
# Every record field with a `runs` column, and that column.
_SHARED = {
    f.name: _COLUMN_OF.get(f.name, f.name)
    for f in fields(RunRecord)
    if _COLUMN_OF.get(f.name, f.name) in Run.__table__.columns
}
# Columns a stored run's values are decided or transformed for (`run_row`), not copied from the record.
_DECIDED = {"id", "uuid", "label", "created_at", "command", "extra", "merged_edit_at", *SUMMARY_COLUMNS}
# A process id names a process on the machine that recorded the run: it never leaves the database.
_NOT_CARRIED = {"pid"}
# The facts of a notebook series a record sets on its row (its identity and place are decided apart).
SERIES_FIELDS = tuple(
    f.name for f in fields(SeriesRecord)
    if f.name in Series.__table__.columns and f.name not in ("id", "uuid", "position", "created_at")
)


def summary_columns(summary: Summary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in SUMMARY_COLUMNS}


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= RUN_NUMBER_MAX else None


# ------------------------------------------------------------------- record -> rows
def run_row(
    record: RunRecord, run_id: int, label: str | None, environment_id: int | None, series_id: int | None
) -> dict[str, Any]:
    """The `runs` row of a record, with its summary derived from its epochs."""
    row = {column: getattr(record, name) for name, column in _SHARED.items() if column not in _DECIDED}
    row.update(
        id=run_id,
        uuid=record.uuid or str(uuidlib.uuid4()),
        label=label,
        created_at=record.created_at or utcnow(),
        command=dbmod.mask_urls(record.command),  # a URL's password is never stored
        extra=dict(record.extra),
        merged_edit_at=record.edited_at,  # as merged: both databases agree on this edit
        epochs_planned=as_int(record.params.get("epochs")),
        environment_id=environment_id,
        series_id=series_id,
        **summary_columns(summarize_record(record)),
    )
    return row


def epoch_tuple(run_id: int, e: EpochRecord) -> tuple:
    """An epoch's `epoch_metrics` row as a tuple of EPOCH_COLUMNS, its `extra` as JSON text."""
    extra = json.dumps(e.extra) if e.extra else "{}"
    return (run_id, *_epoch_values(e), extra)


def epoch_row(epoch: EpochRecord) -> EpochMetric:
    return EpochMetric(**dict(zip(_EPOCH_METRICS, _epoch_values(epoch))), extra=dict(epoch.extra))


def new_series_row(record: SeriesRecord) -> Series:
    """A new series row for `record` (its UUID, or a new one)."""
    row = Series(uuid=record.uuid or str(uuidlib.uuid4()), created_at=utcnow())
    set_series(row, record)
    return row


def set_series(row: Series, record: SeriesRecord) -> None:
    for name in SERIES_FIELDS:
        setattr(row, name, getattr(record, name))
    if record.position is not None:
        row.position = record.position


# ------------------------------------------------------------------- rows -> record
def record_from_run(run: Run | RunView) -> RunRecord:
    """The plain record of a stored run (for export, merge and round trips)."""
    values = {name: getattr(run, column) for name, column in _SHARED.items() if name not in _NOT_CARRIED}
    env = run.environment
    values.update(
        tags=[t.tag for t in run.tags],
        params=run.param_dict,
        hardware=env.hardware if env else None,
        env={k: getattr(env, k) for k in ENV_FIELDS} if env else {},
        epochs=[
            EpochRecord(**{name: getattr(e, name) for name in _EPOCH_METRICS}, extra=dict(e.extra or {}))
            for e in run.epochs
        ],
        # A run without epochs states its peak; one with epochs derives it from them again.
        peak_val_acc=run.peak_val_acc if not run.epochs else None,
        peak_epoch=run.peak_epoch if not run.epochs else None,
        command=dbmod.mask_urls(run.command),  # whatever an older speedrun left, exported without a password
        extra=dict(run.extra or {}),
        series=getattr(run, "series_name", None),
    )
    return RunRecord(**values)
