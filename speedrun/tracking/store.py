"""The storage layer: every SQL statement of speedrun lives here.

Callers hand in plain `RunRecord`/`EpochRecord`s and get ORM `Run`s back.
Writes are short transactions that start with BEGIN IMMEDIATE (see db.py),
so concurrent trainings and imports queue for the lock instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid as uuidlib
from collections import namedtuple
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import String, Text, cast, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from speedrun.tracking import db as dbmod
from speedrun.errors import DatabaseError, DuplicateImport, RunNotFound, SpeedrunError
from speedrun.notebook.hardware import hardware_class
from speedrun.tracking.models import Environment, EpochMetric, Param, Run, RunLabels, Series, Tag
from speedrun.notebook.params import typed_value, value_type
from speedrun.tracking.records import (
    EPOCH_FIELDS,
    FINAL_MEASURED_AFTER_EPOCHS,
    EpochRecord,
    RunRecord,
    RunUpdate,
    SeriesRecord,
    summarize,
    summarize_record,
)

ENV_FIELDS = (
    "device_type",
    "gpu_name",
    "gpu_count",
    "gpu_memory_gb",
    "cuda_version",
    "driver_version",
    "cpu_model",
    "cpu_cores",
    "ram_gb",
    "os",
    "python_version",
    "torch_version",
    "torchvision_version",
    "hostname",
    "is_colab",
)
SORTABLE = {
    "id": Run.id,
    "created": Run.created_at,
    "created_at": Run.created_at,
    "status": Run.status,
    "epochs": Run.epochs_completed,
    "final": Run.final_val_acc,
    "final_val_acc": Run.final_val_acc,
    "peak": Run.peak_val_acc,
    "peak_val_acc": Run.peak_val_acc,
    "time": Run.train_time_s,
    "train_time_s": Run.train_time_s,
    "epoch_time": Run.mean_epoch_s,
    "mean_epoch_s": Run.mean_epoch_s,
}
# A run whose process is on another machine is declared dead only after this long without a heartbeat.
STALE_AFTER = timedelta(minutes=15)


class RunView(RunLabels):
    """A stored run as plain data, with the attribute names of `models.Run`.

    Reads return these rather than ORM objects: they are cheap to build in bulk
    and cannot lazily touch the database after the session is gone.
    `params`, `tags`, `epochs` and `environment` hold plain rows.
    """

    def __init__(self, columns, params: list, tags: list, epochs: list, environment, series_name: str | None = None) -> None:
        self.__dict__.update(columns)
        self.params = params
        self.tags = tags
        self.epochs = epochs
        self.environment = environment
        self.series_name = series_name  # the notebook series (`g:NAME`) the run belongs to


# Rows of a RunView. Reading 200,000 epochs, decoding JSON through SQLAlchemy's
# type machinery cost more than the query; these decode once per distinct text.
ParamView = namedtuple("ParamView", "name value type position")
EpochView = namedtuple("EpochView", ("run_id", "epoch", *EPOCH_FIELDS, "extra"))


@lru_cache(maxsize=65536)
def _json(raw: str | None) -> Any:
    """Decoded JSON of a column, shared between equal texts: views are read-only."""
    return None if raw is None else json.loads(raw)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def default_title(params: dict[str, Any], hw_class: str | None) -> str:
    """A title in the user's style for runs recorded without one."""
    parts = [str(params.get("model", "run"))]
    if "batch_size" in params:
        parts.append(f"bs {params['batch_size']}")
    if "lr" in params:
        parts.append(f"lr {params['lr']}")
    if "epochs" in params:
        parts.append(f"{params['epochs']} epochs")
    if params.get("cosine") is True:
        parts.append("cosine")
    title = ", ".join(parts)
    return f"{title} ({hw_class})" if hw_class and hw_class != "unknown" else title


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Store:
    """A speedrun database. Open with `Store.open(path_or_url)`.

    A training run records into it directly: `label`, `begin_run`, `add_epoch`,
    `heartbeat` and `finish_run` are the training loops' Recorder protocol
    (speedrun.training.recording).
    """

    def __init__(self, engine, url: str, label: str):
        self.engine = engine
        self.url = url
        self.label = label
        self._writer = engine.execution_options(sqlite_immediate=True)

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, db: str, *, migrate: bool = True, notify: Callable[[str], None] | None = None) -> Store:
        url = dbmod.resolve_url(db)
        engine = dbmod.make_engine(url)
        store = cls(engine, url, db)
        if migrate:
            dbmod.upgrade(engine, url, notify, label=db)
        else:
            with store._errors("read"):
                dbmod.check_revision(engine, url, label=db)
        return store

    def close(self) -> None:
        self.engine.dispose()

    def current_revision(self) -> str | None:
        with self._errors("read"):
            return dbmod.current_revision(self.engine)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database failures become one DatabaseError naming the file (the CLI prints it)."""
        try:
            yield
        except SpeedrunError:
            raise
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"cannot {action} database {self.label}: {reason}") from None

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction: all of it is committed, or none of it."""
        with self._errors("write to"), Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._errors("read"), Session(self.engine, expire_on_commit=False) as session:
            yield session

    # ----------------------------------------------------------------- writing
    def begin_run(self, record: RunRecord) -> int:
        """Record a run that is starting now (status from the record, normally `running`)."""
        record.started_at = record.started_at or utcnow()
        with self._write() as session:
            return self._insert_records(
                session, [record], label_clashes=False, live={"heartbeat_at": utcnow(), "host": socket.gethostname()}
            )[0]

    def add_run(self, record: RunRecord) -> int:
        """Record a finished run (imports, merges) with its epochs, in one transaction."""
        return self.add_runs([record])[0]

    def add_runs(self, records: Sequence[RunRecord], *, force: bool = False, label_clashes: bool = True) -> list[int]:
        """Record several runs atomically: all of them or none. Returns their numbers, in order.

        Content already imported (same content hash) is refused unless `force`.
        A run keeps the number it asks for (`record.number`) when that is free;
        otherwise it gets a new one, labelled with the requested number when
        `label_clashes` (as notebooks want).
        """
        with self._write() as session:
            if not force:
                self._refuse_duplicates(session, records)
            return self._insert_records(session, records, label_clashes=label_clashes)

    def _insert_records(
        self,
        session: Session,
        records: Sequence[RunRecord],
        *,
        label_clashes: bool,
        live: dict[str, Any] | None = None,
        series_ids: dict[str, int] | None = None,
    ) -> list[int]:
        """Bulk-insert runs with their params, tags and epochs: one executemany per table.

        Numbers are assigned here, under the write lock that BEGIN IMMEDIATE
        holds, so no other writer can take them between choosing and inserting.
        """
        wanted = {r.number for r in records if r.number is not None and not r.label}
        wanted |= {r.reported_id for r in records if r.reported_id is not None}
        claimed = set(session.scalars(select(Run.id).where(Run.id.in_(wanted)))) if wanted else set()
        ids: list[int | None] = [None] * len(records)
        # A number a report gave the run first (its marker), then the number of its heading.
        for i, record in enumerate(records):
            if record.reported_id is not None and record.reported_id not in claimed:
                claimed.add(record.reported_id)
                ids[i] = record.reported_id
        for i, record in enumerate(records):
            if ids[i] is None and record.number is not None and not record.label and record.number not in claimed:
                claimed.add(record.number)
                ids[i] = record.number
        # Runs without a number of their own follow every number asked for, in the order given.
        next_id = max([self._next_run_id(session), *(n + 1 for n in wanted if n is not None)])
        for i, record in enumerate(records):
            if ids[i] is not None:
                if label_clashes and record.number is not None and not record.label and ids[i] != record.number:
                    record.label = str(record.number)  # the heading's number, kept under the reported one
                continue
            if record.number is not None and not record.label and label_clashes:
                record.warnings.append(
                    f"run number {record.number} is taken; stored as a new run labelled {record.number}"
                )
                record.label = str(record.number)
            while next_id in claimed:
                next_id += 1
            ids[i] = next_id
            claimed.add(next_id)

        environments: dict[str, Environment] = {}
        envs = [self._environment(session, record, environments) for record in records]
        session.flush()  # environment ids
        next_position = self._next_position(session)
        run_rows, param_rows, tag_rows, epoch_rows = [], [], [], []
        for run_id, record, env in zip(ids, records, envs):
            row = _run_row(record, run_id, env)
            if row["position"] is None:  # new runs follow the notebook, in the order they were made
                row["position"], next_position = next_position, next_position + 1
            row["series_id"] = (series_ids or {}).get(record.series) if record.series else None
            run_rows.append({**row, **(live or {})})
            param_rows += [
                {"run_id": run_id, "name": name, "value": value, "type": value_type(value), "position": i}
                for i, (name, value) in enumerate(record.params.items())
            ]
            tag_rows += [{"run_id": run_id, "tag": tag} for tag in dict.fromkeys(record.tags)]
            epoch_rows += [_epoch_tuple(run_id, e) for e in record.epochs]
        # Core inserts: executemany without the ORM's per-row bookkeeping.
        for model, rows in ((Run, run_rows), (Tag, tag_rows)):
            if rows:
                session.execute(insert(model.__table__), rows)
        if param_rows:
            _insert_params(session, param_rows)
        if epoch_rows:
            _insert_epochs(session, epoch_rows)
        return ids

    @staticmethod
    def _next_run_id(session: Session) -> int:
        """The next automatic run number: never one that was used before, even if deleted."""
        largest = session.scalar(select(func.max(Run.id))) or 0
        if session.get_bind().dialect.name == "sqlite":
            sequence = session.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'runs'")).scalar()
            largest = max(largest, sequence or 0)
        return largest + 1

    @staticmethod
    def _next_position(session: Session) -> float:
        """A place after every run and series in notebook order."""
        largest = max(
            session.scalar(select(func.max(Run.position))) or 0.0,
            session.scalar(select(func.max(Series.position))) or 0.0,
        )
        return float(int(largest) + 1)

    def _refuse_duplicates(self, session: Session, records: Sequence[RunRecord]) -> None:
        hashes = [r.content_hash for r in records if r.content_hash]
        if not hashes:
            return
        existing = session.execute(
            select(Run.id, Run.content_hash, Run.source_file).where(Run.content_hash.in_(hashes))
        ).first()
        if existing:
            source = f" from {existing.source_file}" if existing.source_file else ""
            raise DuplicateImport(
                f"this content was already imported as run {existing.id}{source}; use --force to import it again"
            )

    def _environment(
        self, session: Session, record: RunRecord, known: dict[str, Environment]
    ) -> Environment | None:
        """The shared environment row for this record (created once per fingerprint)."""
        fields = {k: record.env.get(k) for k in ENV_FIELDS}
        hardware = record.hardware or record.env.get("hardware")
        if hardware is None and not any(v is not None for v in fields.values()):
            return None
        fingerprint = hashlib.sha256(
            json.dumps({**fields, "hardware": hardware}, sort_keys=True, default=str).encode()
        ).hexdigest()
        env = known.get(fingerprint) or session.scalar(select(Environment).where(Environment.fingerprint == fingerprint))
        if env is None:
            description = hardware or fields.get("gpu_name") or fields.get("cpu_model")
            env = Environment(
                fingerprint=fingerprint,
                hardware=hardware,
                hardware_class=hardware_class(fields.get("gpu_name") or description, fields.get("device_type")),
                **fields,
            )
            session.add(env)
        known[fingerprint] = env
        return env

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        """Record one finished epoch at once, with the run's summary and heartbeat."""
        with self._write() as session:
            run = self._get_for_update(session, run_id)
            existing = {e.epoch: e for e in run.epochs}
            if epoch.epoch in existing:
                run.epochs.remove(existing[epoch.epoch])
                session.flush()
            run.epochs.append(_epoch_row(epoch))
            run.heartbeat_at = utcnow()
            self._refresh_summary(run)

    def heartbeat(self, run_id: int) -> None:
        with self._write() as session:
            self._get_for_update(session, run_id).heartbeat_at = utcnow()

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        train_time_s: float | None = None,
        wall_time_s: float | None = None,
        final_val_acc: float | None = None,
        final_from: str | None = None,
        target_time_s: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """End a live run. `final_val_acc` measured after the last epoch (e.g. with
        test-time augmentation, `final_from="tta"`) becomes the run's final accuracy;
        the epochs keep what was measured during training. `target_time_s`: when
        the run's target accuracy was first reached (its target_acc was recorded
        at begin_run)."""
        with self._write() as session:
            run = self._get_for_update(session, run_id)
            run.status = status
            if final_val_acc is not None:
                run.stated_final_val_acc = final_val_acc
                extra = {**(extra or {}), FINAL_MEASURED_AFTER_EPOCHS: final_from or "after training"}
            run.finished_at = utcnow()
            run.heartbeat_at = run.finished_at
            run.error = error
            if train_time_s is not None:
                run.stated_train_time_s = train_time_s
            if wall_time_s is not None:
                run.wall_time_s = wall_time_s
            if target_time_s is not None:
                run.target_time_s = target_time_s
            if extra:
                run.extra = {**(run.extra or {}), **extra}
            self._refresh_summary(run)

    def update_texts(self, ref: str | int, **texts: str | None) -> Run:
        allowed = {"hypothesis", "description", "analysis", "title"}
        with self._write() as session:
            run = self._resolve(session, ref)
            for name, value in texts.items():
                if name not in allowed:
                    raise ValueError(name)
                if value is not None:
                    setattr(run, name, value)
            return run

    def add_tags(self, ref: str | int, tags: Iterable[str], *, remove: bool = False) -> list[str]:
        with self._write() as session:
            run = self._resolve(session, ref)
            current = {t.tag: t for t in run.tags}
            for tag in tags:
                if remove and tag in current:
                    run.tags.remove(current.pop(tag))
                elif not remove and tag not in current:
                    current[tag] = Tag(tag=tag)
                    run.tags.append(current[tag])
            return sorted(current)

    def set_group(self, refs: Iterable[str | int], group: str | None) -> list[int]:
        with self._write() as session:
            runs = [self._resolve(session, ref) for ref in refs]
            for run in runs:
                run.group_name = group
            return [r.id for r in runs]

    def delete_run(self, ref: str | int) -> int:
        with self._write() as session:
            run = self._resolve(session, ref)
            session.delete(run)
            return run.id

    def reap_dead(self) -> list[int]:
        """Mark `running` runs whose process is clearly gone as `died`."""
        now = utcnow()
        host = socket.gethostname()
        with self._read() as session:
            candidates = session.execute(
                select(Run.id, Run.pid, Run.host, Run.heartbeat_at).where(Run.status == "running")
            ).all()
        def gone(c) -> bool:
            if c.host == host and c.pid is not None:
                return not _pid_alive(c.pid)
            return c.heartbeat_at is None or now - c.heartbeat_at > STALE_AFTER

        dead = [c.id for c in candidates if gone(c)]
        if dead:
            with self._write() as session:
                for run in session.scalars(select(Run).where(Run.id.in_(dead), Run.status == "running")):
                    run.status = "died"
                    run.finished_at = run.heartbeat_at
        return dead

    # ----------------------------------------------------------------- the notebook
    def list_series(self) -> list[Series]:
        """Every notebook series, detached from the session, in notebook order."""
        with self._read() as session:
            return list(session.scalars(select(Series).order_by(Series.position, Series.id)))

    def apply_notebook(
        self,
        *,
        add: Sequence[RunRecord],
        update: Sequence[RunUpdate],
        series: Sequence[tuple[int | None, SeriesRecord]],
        positions: dict[int, float],
        series_positions: dict[int, float],
    ) -> list[int]:
        """One import of a notebook, in one transaction: new series and runs added, matched
        ones updated in place (`series`: (id or None for a new one, record)), and the
        positions of existing runs and series changed to the notebook's order.
        Returns the numbers of the added runs, in order."""
        with self._write() as session:
            series_ids = {}
            for series_id, record in series:
                row = session.get(Series, series_id) if series_id is not None else None
                if row is None:
                    row = Series(uuid=record.uuid or str(uuidlib.uuid4()), created_at=utcnow())
                    session.add(row)
                _set_series(row, record)
                session.flush()
                series_ids[record.name] = row.id
            for item in update:
                self._update_run(session, item, series_ids)
            for run_id, position in positions.items():
                session.execute(Run.__table__.update().where(Run.id == run_id).values(position=position))
            for series_id, position in series_positions.items():
                session.execute(Series.__table__.update().where(Series.id == series_id).values(position=position))
            return self._insert_records(session, add, label_clashes=True, series_ids=series_ids) if add else []

    def _update_run(self, session: Session, item: RunUpdate, series_ids: dict[str, int]) -> None:
        """A stored run takes what its notebook section now says; its identity, date of
        recording and live state stay. Epochs change only when the section's differ."""
        record = item.record
        run = session.get(Run, item.run_id, options=[selectinload(Run.epochs), selectinload(Run.params), selectinload(Run.tags)])
        if run is None:
            raise RunNotFound(f"no run {item.run_id} in {self.label}")
        # Its source file stays: where the run came from, and what a hand-written section is matched by.
        for name in ("title", "hypothesis", "description", "analysis", "status", "section_text", "preamble",
                     "unparsed_config", "content_hash"):
            setattr(run, name, getattr(record, name))
        if record.started_at is not None:
            run.started_at = record.started_at
        if record.position is not None:
            run.position = record.position
        run.series_id = series_ids.get(record.series) if record.series else None
        run.extra = {**(run.extra or {}), **record.extra}
        # Old rows go first: the ORM would insert the new ones before deleting (unique names, tags, epochs).
        run.params.clear()
        run.tags.clear()
        if item.replace_epochs:
            run.epochs.clear()
        session.flush()
        run.params.extend(
            Param(name=name, value=value, type=value_type(value), position=i)
            for i, (name, value) in enumerate(record.params.items())
        )
        run.tags.extend(Tag(tag=tag) for tag in dict.fromkeys(record.tags))
        if item.replace_hardware:
            run.environment = self._environment(session, record, {})
        if item.replace_epochs:
            run.epochs.extend(_epoch_row(e) for e in record.epochs)
            run.log_text = record.log_text
            run.stated_final_val_acc = record.final_val_acc
            run.stated_train_time_s = record.train_time_s
            run.param_count = record.param_count if record.param_count is not None else run.param_count
            run.data_load_s = record.data_load_s if record.data_load_s is not None else run.data_load_s
            run.epochs_planned = _as_int(record.params.get("epochs"))
            session.flush()
            self._refresh_summary(run, stated_peak=record.peak_val_acc, stated_peak_epoch=record.peak_epoch)

    def set_section_text(self, ref: str | int, text: str | None) -> None:
        """Replace a run's notebook section (after its fields were edited with `note` or `tag`)."""
        with self._write() as session:
            self._resolve(session, ref).section_text = text

    # ----------------------------------------------------------------- reading
    def get_run(self, ref: str | int) -> RunView:
        """A run by its number or label, with everything loaded."""
        return self.get_runs([ref])[0]

    def get_runs(self, refs: Iterable[str | int]) -> list[RunView]:
        with self._read() as session:
            ids = [self._resolve_id(session, ref) for ref in refs]
            views = self._views(session, ids, with_epochs=True)
            return [views[i] for i in ids]

    def list_runs(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        hardware: str | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        source: str | None = None,
        group: str | None = None,
        ids: Sequence[int] | None = None,
        sort: str = "id",
        descending: bool = False,
        limit: int | None = None,
        with_epochs: bool = False,
    ) -> list[RunView]:
        """Runs matching every given filter, sorted; `limit` keeps the last ones of that order."""
        if sort not in SORTABLE:
            raise SpeedrunError(f"cannot sort by {sort!r}; choose from {', '.join(sorted(SORTABLE))}")
        query = select(Run.id)
        if status:
            query = query.where(Run.status == status)
        if source:
            query = query.where(Run.source == source)
        if group:  # a group of runs, or a notebook series (`g:7`)
            query = query.where(
                (Run.group_name == group) | Run.series_id.in_(select(Series.id).where(Series.name == group))
            )
        if ids is not None:
            query = query.where(Run.id.in_(list(ids)))
        if since:
            query = query.where(Run.created_at >= since)
        if tag:
            query = query.where(Run.tags.any(Tag.tag == tag))
        if model:
            query = query.where(
                Run.params.any(
                    (Param.name == "model") & func.lower(cast(Param.value, String)).contains(model.lower())
                )
            )
        if hardware:
            needle = f"%{hardware.lower()}%"
            query = query.where(
                Run.environment.has(
                    func.lower(Environment.hardware_class).like(needle)
                    | func.lower(func.coalesce(Environment.hardware, "")).like(needle)
                    | func.lower(func.coalesce(Environment.gpu_name, "")).like(needle)
                    | func.lower(func.coalesce(Environment.cpu_model, "")).like(needle)
                )
            )
        column = SORTABLE[sort]
        # NULLs last whatever the direction, then the run number for a stable order.
        order = [column.is_(None), column.desc() if descending else column.asc(), Run.id]
        if limit is not None:
            reverse = [column.is_not(None), column.asc() if descending else column.desc(), Run.id.desc()]
            query = query.order_by(*reverse).limit(limit)
        else:
            query = query.order_by(*order)
        with self._read() as session:
            ordered = list(session.scalars(query))
            if limit is not None:
                ordered.reverse()
            views = self._views(session, query, with_epochs=with_epochs)
            return [views[i] for i in ordered]

    def _views(self, session: Session, run_ids, *, with_epochs: bool) -> dict[int, RunView]:
        """Plain views of the runs whose ids `run_ids` (a list or a SELECT of ids) names.

        One query per table, whatever the number of runs: reports over 10,000
        runs would spend most of their time building ORM objects otherwise.
        """
        selected = Run.id.in_(run_ids)
        runs = session.execute(select(Run.__table__).where(selected)).all()
        params: dict[int, list] = {}
        for run_id, name, raw, kind, position in session.execute(
            select(Param.run_id, Param.name, cast(Param.value, Text), Param.type, Param.position)
            .where(Param.run_id.in_(run_ids))
            .order_by(Param.run_id, Param.position)
        ):
            params.setdefault(run_id, []).append(ParamView(name, typed_value(_json(raw), kind), kind, position))
        tags: dict[int, list] = {}
        for row in session.execute(select(Tag.run_id, Tag.tag).where(Tag.run_id.in_(run_ids)).order_by(Tag.tag)):
            tags.setdefault(row.run_id, []).append(row)
        epochs: dict[int, list] = {}
        if with_epochs:
            columns = [getattr(EpochMetric, name) for name in _EPOCH_COLUMNS[:-1]]
            for row in session.execute(
                select(*columns, cast(EpochMetric.extra, Text))
                .where(EpochMetric.run_id.in_(run_ids))
                .order_by(EpochMetric.run_id, EpochMetric.epoch)
            ):
                epochs.setdefault(row[0], []).append(EpochView(*row[:-1], _json(row[-1])))
        series_ids = {r.series_id for r in runs if r.series_id is not None}
        series_names = (
            dict(session.execute(select(Series.id, Series.name).where(Series.id.in_(series_ids))).all())
            if series_ids
            else {}
        )
        env_ids = {r.environment_id for r in runs if r.environment_id is not None}
        environments = (
            {e.id: e for e in session.execute(select(Environment.__table__).where(Environment.id.in_(env_ids)))}
            if env_ids
            else {}
        )
        return {
            r.id: RunView(
                r._mapping,
                params.get(r.id, []),
                tags.get(r.id, []),
                epochs.get(r.id, []),
                environments.get(r.environment_id),
                series_names.get(r.series_id),
            )
            for r in runs
        }

    def count_runs(self) -> int:
        with self._read() as session:
            return session.scalar(select(func.count(Run.id))) or 0

    def runs_by_uuid(self, uuids: Iterable[str]) -> dict[str, int]:
        with self._read() as session:
            rows = session.execute(select(Run.uuid, Run.id).where(Run.uuid.in_(list(uuids))))
            return {u: i for u, i in rows}

    # ----------------------------------------------------------------- helpers
    def _get_for_update(self, session: Session, run_id: int) -> Run:
        run = session.get(Run, run_id, options=[selectinload(Run.epochs)])
        if run is None:
            raise RunNotFound(f"no run {run_id} in {self.label}")
        return run

    def _resolve_id(self, session: Session, ref: str | int) -> int:
        """The run number that `ref` (a number or a label) names."""
        wanted = str(ref).strip()
        if wanted.isdigit() and session.get(Run, int(wanted)) is not None:
            return int(wanted)
        matches = list(session.scalars(select(Run.id).where(Run.label == wanted)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFound(f"label {wanted!r} is ambiguous: runs {', '.join(map(str, matches))}; use the run number")
        raise RunNotFound(f"no run {wanted!r} in {self.label}")

    def _resolve(self, session: Session, ref: str | int) -> Run:
        """The ORM run that `ref` names, for changing it."""
        return session.get(Run, self._resolve_id(session, ref), options=[selectinload(Run.tags)])

    @staticmethod
    def _refresh_summary(run: Run, *, stated_peak: float | None = None, stated_peak_epoch: int | None = None) -> None:
        summary = summarize(
            run.epochs,
            stated_final=run.stated_final_val_acc,
            stated_train_time=run.stated_train_time_s,
            stated_peak=stated_peak if stated_peak is not None else run.peak_val_acc,
            stated_peak_epoch=stated_peak_epoch if stated_peak_epoch is not None else run.peak_epoch,
            final_after_epochs=FINAL_MEASURED_AFTER_EPOCHS in (run.extra or {}),
        )
        run.final_val_acc = summary.final_val_acc
        run.peak_val_acc = summary.peak_val_acc
        run.peak_epoch = summary.peak_epoch
        run.train_time_s = summary.train_time_s
        run.mean_epoch_s = summary.mean_epoch_s
        run.epochs_completed = summary.epochs_completed


_EPOCH_COLUMNS = ("run_id", "epoch", *EPOCH_FIELDS, "extra")
_INSERT_EPOCHS = (
    f"INSERT INTO epoch_metrics ({', '.join(_EPOCH_COLUMNS)}) VALUES ({', '.join('?' * len(_EPOCH_COLUMNS))})"
)


def _epoch_tuple(run_id: int, e: EpochRecord) -> tuple:
    extra = json.dumps(e.extra) if e.extra else "{}"
    return (run_id, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.duration_s, e.elapsed_s, e.lr,
            e.images_per_s, extra)


def _insert_epochs(session: Session, rows: list[tuple]) -> None:
    """Epoch rows (`_epoch_tuple`s) straight to the driver: a 100,000-line log has as
    many epochs, and SQLAlchemy's per-row parameter processing would cost more than
    SQLite's own insert."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql(_INSERT_EPOCHS, rows)
        return
    dicts = [dict(zip(_EPOCH_COLUMNS, row)) for row in rows]
    for row in dicts:
        row["extra"] = json.loads(row["extra"])
    session.execute(insert(EpochMetric.__table__), dicts)


_INSERT_PARAMS = "INSERT INTO params (run_id, name, value, type, position) VALUES (?, ?, ?, ?, ?)"


def _insert_params(session: Session, rows: list[dict[str, Any]]) -> None:
    """Parameter rows straight to the driver on SQLite (a 2,000-run notebook has 20,000 of them),
    their JSON values encoded as SQLAlchemy's JSON type encodes them."""
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(Param.__table__), rows)
        return
    session.connection().exec_driver_sql(
        _INSERT_PARAMS,
        [(r["run_id"], r["name"], json.dumps(r["value"]), r["type"], r["position"]) for r in rows],
    )


def _epoch_row(epoch: EpochRecord) -> EpochMetric:
    values = dict(zip(_EPOCH_COLUMNS[1:-1], _epoch_tuple(0, epoch)[1:-1]))
    return EpochMetric(**values, extra=dict(epoch.extra))


def _run_row(record: RunRecord, run_id: int, env: Environment | None) -> dict[str, Any]:
    """The `runs` row of a record, with its summary derived from its epochs."""
    summary = summarize_record(record)
    return {
        "id": run_id,
        "uuid": record.uuid or str(uuidlib.uuid4()),
        "label": record.label,
        "title": record.title or default_title(record.params, env.hardware_class if env else None),
        "status": record.status,
        "source": record.source,
        "created_at": record.created_at or utcnow(),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "pid": record.pid,
        "hypothesis": record.hypothesis,
        "description": record.description,
        "analysis": record.analysis,
        "group_name": record.group,
        "epochs_planned": _as_int(record.params.get("epochs")),
        "epochs_completed": summary.epochs_completed,
        "final_val_acc": summary.final_val_acc,
        "peak_val_acc": summary.peak_val_acc,
        "peak_epoch": summary.peak_epoch,
        "train_time_s": summary.train_time_s,
        "mean_epoch_s": summary.mean_epoch_s,
        "wall_time_s": record.wall_time_s,
        "data_load_s": record.data_load_s,
        "param_count": record.param_count,
        "target_acc": record.target_acc,
        "target_time_s": record.target_time_s,
        "stated_final_val_acc": record.final_val_acc,
        "stated_train_time_s": record.train_time_s,
        "extra": dict(record.extra),
        "error": record.error,
        "command": record.command,
        "git_commit": record.git_commit,
        "git_dirty": record.git_dirty,
        "source_file": record.source_file,
        "source_line": record.source_line,
        "content_hash": record.content_hash,
        "log_text": record.log_text,
        "environment_id": env.id if env else None,
        "section_text": record.section_text,
        "preamble": record.preamble,
        "unparsed_config": record.unparsed_config,
        "position": record.position,
    }


def _set_series(row: Series, record: SeriesRecord) -> None:
    for name in ("name", "title", "hypothesis", "description", "hardware", "analysis", "section_text",
                 "closing_text", "preamble", "source_file", "source_line"):
        setattr(row, name, getattr(record, name))
    if record.position is not None:
        row.position = record.position


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_from_run(run: Run | RunView) -> RunRecord:
    """The plain record of a stored run (for export, merge and round trips)."""
    env = run.environment
    return RunRecord(
        source=run.source,
        status=run.status,
        label=run.label,
        title=run.title,
        hypothesis=run.hypothesis,
        description=run.description,
        analysis=run.analysis,
        tags=[t.tag for t in run.tags],
        params=run.param_dict,
        hardware=env.hardware if env else None,
        env={k: getattr(env, k) for k in ENV_FIELDS} if env else {},
        epochs=[
            EpochRecord(epoch=e.epoch, extra=dict(e.extra or {}), **{f: getattr(e, f) for f in EPOCH_FIELDS})
            for e in run.epochs
        ],
        final_val_acc=run.stated_final_val_acc,
        peak_val_acc=run.peak_val_acc if not run.epochs else None,
        peak_epoch=run.peak_epoch if not run.epochs else None,
        train_time_s=run.stated_train_time_s,
        wall_time_s=run.wall_time_s,
        data_load_s=run.data_load_s,
        param_count=run.param_count,
        target_acc=run.target_acc,
        target_time_s=run.target_time_s,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        command=run.command,
        git_commit=run.git_commit,
        git_dirty=run.git_dirty,
        source_file=run.source_file,
        source_line=run.source_line,
        content_hash=run.content_hash,
        uuid=run.uuid,
        group=run.group_name,
        log_text=run.log_text,
        extra=dict(run.extra or {}),
        unparsed_config=run.unparsed_config,
        section_text=run.section_text,
        preamble=run.preamble,
        position=run.position,
        series=getattr(run, "series_name", None),
    )


def record_to_json(record: RunRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("created_at", "started_at", "finished_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    data.pop("warnings", None)
    return data
