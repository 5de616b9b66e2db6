"""The database schema as SQLAlchemy 2 typed ORM classes.

A run is the unit. Hyperparameters are name → typed value rows so runs of
different recipes can be diffed; environments are shared by fingerprint so a
laptop's hundredth run does not store the laptop again. Schema changes go
through Alembic revisions in migrations/, never through `create_all`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Double, ForeignKey, Index, String, Text, TypeDecorator, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from speedrun.domain.params import typed_value


class JSONType(TypeDecorator):
    """JSON columns: JSONB on PostgreSQL, JSON text on SQLite (never indexed with a btree: see 0003_store).

    `JSON().with_variant(JSONB(), "postgresql")` says the same, but imports SQLAlchemy's
    PostgreSQL dialect (and asyncio with it) at every start, 30 ms of each command;
    here it is imported only when a PostgreSQL database is opened.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps does with a str


def json_text(value: Any) -> str:
    """A JSON value as stored: `json.dumps(value)`, character for character, without its machinery
    for the scalars that nearly every parameter is (a 2,000-run notebook has 24,000)."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return json.dumps(value)


def is_json(column) -> bool:
    """Whether a column holds JSON (a `JSONType`, or plain JSON in a migration's table)."""
    return isinstance(column.type, (JSONType, JSON))


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType(), float: Double}


class Environment(Base):
    """Where a run ran. Identical environments are stored once (`fingerprint`)."""

    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    hardware_class: Mapped[str] = mapped_column(String(32), index=True)  # "T4", "A100", "CPU", ...
    hardware: Mapped[Optional[str]] = mapped_column(Text)  # free text, e.g. "Google Colab, T4 GPU"
    device_type: Mapped[Optional[str]] = mapped_column(String(16))  # cuda | cpu | mps
    gpu_name: Mapped[Optional[str]] = mapped_column(String(128))
    gpu_count: Mapped[Optional[int]]
    gpu_memory_gb: Mapped[Optional[float]]
    cuda_version: Mapped[Optional[str]] = mapped_column(String(32))
    driver_version: Mapped[Optional[str]] = mapped_column(String(32))
    cpu_model: Mapped[Optional[str]] = mapped_column(String(256))
    cpu_cores: Mapped[Optional[int]]
    ram_gb: Mapped[Optional[float]]
    os: Mapped[Optional[str]] = mapped_column(String(256))
    python_version: Mapped[Optional[str]] = mapped_column(String(32))
    torch_version: Mapped[Optional[str]] = mapped_column(String(64))
    torchvision_version: Mapped[Optional[str]] = mapped_column(String(64))
    hostname: Mapped[Optional[str]] = mapped_column(String(256))
    is_colab: Mapped[Optional[bool]]

    runs: Mapped[list[Run]] = relationship(back_populates="environment")


class Series(Base):
    """A notebook's `## Run 7` with sub-runs `### Run 7a`, ... below it: a named group
    (`g:7`) with the parent's texts. A parent without results of its own is only this
    row, never an empty run; `section_text` then holds its notebook section."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(128), index=True)  # the parent's label, "7"
    title: Mapped[Optional[str]] = mapped_column(Text)
    hypothesis: Mapped[Optional[str]] = mapped_column(Text)
    description: Mapped[Optional[str]] = mapped_column(Text)
    hardware: Mapped[Optional[str]] = mapped_column(Text)
    analysis: Mapped[Optional[str]] = mapped_column(Text)  # what the notebook says after the last sub-run
    section_text: Mapped[Optional[str]] = mapped_column(Text)
    closing_text: Mapped[Optional[str]] = mapped_column(Text)
    preamble: Mapped[Optional[str]] = mapped_column(Text)
    position: Mapped[Optional[float]] = mapped_column(index=True)
    source_file: Mapped[Optional[str]] = mapped_column(Text)
    source_line: Mapped[Optional[int]]
    created_at: Mapped[datetime]

    runs: Mapped[list[Run]] = relationship(
        back_populates="series", primaryjoin="Run.series_id == Series.id", foreign_keys="Run.series_id"
    )


class RunLabels:
    """What every view of a run shows: its label and its parameters as a dict.
    Shared by the ORM `Run` and the store's plain `RunView`."""

    @property
    def display_label(self) -> str:
        return self.label or str(self.id)

    @property
    def number_and_label(self) -> str:
        """`37 (24)` where the label differs from the number, else the label: what `list` shows."""
        if self.label and self.label != str(self.id):
            return f"{self.id} ({self.label})"
        return str(self.id)

    @property
    def param_dict(self) -> dict[str, Any]:
        return {p.name: typed_value(p.value, p.type) for p in self.params}


class Run(RunLabels, Base):
    """One training, imported log or notebook section. `id` is the run number the user types."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_final_val_acc", "final_val_acc"),
        Index("ix_runs_content_hash", "content_hash"),
        Index("ix_runs_label", "label"),
        Index("ix_runs_group", "group_name"),
        Index("ix_runs_target_time_s", "target_time_s"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    label: Mapped[Optional[str]] = mapped_column(String(64))  # sub-run label such as "7a"
    title: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    started_at: Mapped[Optional[datetime]]
    finished_at: Mapped[Optional[datetime]]
    heartbeat_at: Mapped[Optional[datetime]]
    # Who records a live run: see speedrun.tracking.liveness for how `died` is decided from these.
    pid: Mapped[Optional[int]]
    host: Mapped[Optional[str]] = mapped_column(String(256))
    process_start: Mapped[Optional[str]] = mapped_column(String(64))  # boot id / start tick of `pid`

    hypothesis: Mapped[Optional[str]] = mapped_column(Text)
    description: Mapped[Optional[str]] = mapped_column(Text)
    analysis: Mapped[Optional[str]] = mapped_column(Text)
    group_name: Mapped[Optional[str]] = mapped_column(String(128))
    # Edits that travel (`merge`): when the user's texts or tags last changed (`note`, `tag`), and
    # the edit time both databases agreed on at the last merge (a change on both sides since: a conflict).
    edited_at: Mapped[Optional[datetime]]
    merged_edit_at: Mapped[Optional[datetime]]

    # Summary numbers, derived from the epochs (records.RunningSummary) whenever epochs are written.
    epochs_planned: Mapped[Optional[int]]
    epochs_completed: Mapped[int] = mapped_column(default=0)
    final_val_acc: Mapped[Optional[float]]
    peak_val_acc: Mapped[Optional[float]]
    peak_epoch: Mapped[Optional[int]]
    train_time_s: Mapped[Optional[float]]
    mean_epoch_s: Mapped[Optional[float]]
    wall_time_s: Mapped[Optional[float]]
    data_load_s: Mapped[Optional[float]]
    param_count: Mapped[Optional[int]]
    target_acc: Mapped[Optional[float]]  # `train --target`: the accuracy aimed at
    target_time_s: Mapped[Optional[float]]  # training seconds until val accuracy first reached it
    # The source's own statements (the log's Finished/Final lines), kept so the
    # summary can be re-derived when epochs change.
    stated_final_val_acc: Mapped[Optional[float]]
    stated_train_time_s: Mapped[Optional[float]]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # other facts: eval time, how the final accuracy was measured
    error: Mapped[Optional[str]] = mapped_column(Text)

    # Provenance.
    command: Mapped[Optional[str]] = mapped_column(Text)
    git_commit: Mapped[Optional[str]] = mapped_column(String(64))
    git_dirty: Mapped[Optional[bool]]
    source_file: Mapped[Optional[str]] = mapped_column(Text)
    source_line: Mapped[Optional[int]]
    content_hash: Mapped[Optional[str]] = mapped_column(String(64))
    log_text: Mapped[Optional[str]] = mapped_column(Text)

    # The notebook (speedrun.notebook): the section as written, so a report gives it back
    # line for line; what its configuration says that no rule understood; notebook order.
    section_text: Mapped[Optional[str]] = mapped_column(Text)
    preamble: Mapped[Optional[str]] = mapped_column(Text)
    unparsed_config: Mapped[Optional[str]] = mapped_column(Text)
    position: Mapped[Optional[float]] = mapped_column(index=True)
    # No foreign key: SQLite adds one only by rebuilding `runs` (see migration 0004).
    series_id: Mapped[Optional[int]] = mapped_column(index=True)
    series: Mapped[Optional[Series]] = relationship(
        back_populates="runs", primaryjoin="Run.series_id == Series.id", foreign_keys="Run.series_id"
    )

    @property
    def series_name(self) -> str | None:
        return self.series.name if self.series is not None else None

    environment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("environments.id"), index=True)
    environment: Mapped[Optional[Environment]] = relationship(back_populates="runs")
    params: Mapped[list[Param]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Param.position"
    )
    epochs: Mapped[list[EpochMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="EpochMetric.epoch"
    )
    tags: Mapped[list[Tag]] = relationship(back_populates="run", cascade="all, delete-orphan", order_by="Tag.tag")


class Param(Base):
    """One hyperparameter of a run: canonical name, JSON value, and its type name."""

    __tablename__ = "params"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        Index("ix_params_name", "name"),
        # `--where` (tracking.where, migration 0007): parameters by name and value. On PostgreSQL
        # numbers and booleans only (see `postgresql_indexes`).
        Index("ix_params_lookup", "name", "value", "run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSONType())
    type: Mapped[str] = mapped_column(String(8))  # int | float | bool | str | null
    position: Mapped[int] = mapped_column(default=0)  # order as given, for display

    run: Mapped[Run] = relationship(back_populates="params")


class EpochMetric(Base):
    """Metrics of one epoch. Any of them may be missing for imported runs."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("run_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    train_loss: Mapped[Optional[float]]
    train_acc: Mapped[Optional[float]]
    val_loss: Mapped[Optional[float]]
    val_acc: Mapped[Optional[float]]
    duration_s: Mapped[Optional[float]]
    elapsed_s: Mapped[Optional[float]]
    lr: Mapped[Optional[float]]
    images_per_s: Mapped[Optional[float]]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    run: Mapped[Run] = relationship(back_populates="epochs")


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("run_id", "tag"), Index("ix_tags_tag", "tag"))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(128))

    run: Mapped[Run] = relationship(back_populates="tags")


# The partial index's condition on PostgreSQL: a btree entry holds a third of a page at most, and
# a long text value would make inserting its run fail. As migration 0007 creates it.
PARAMS_LOOKUP_WHERE = "jsonb_typeof(value) IN ('number', 'boolean')"


def postgresql_indexes() -> None:
    """Give the models their PostgreSQL-only index options. Called when a PostgreSQL engine is made
    (db.make_engine): a `postgresql_where` in the class body would import SQLAlchemy's PostgreSQL
    dialect at every start, on SQLite too (see JSONType)."""
    for index in Param.__table__.indexes:
        if index.name == "ix_params_lookup":
            index.dialect_options["postgresql"]["where"] = text(PARAMS_LOOKUP_WHERE)
