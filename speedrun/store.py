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
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import String, cast, delete, func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from speedrun import db as dbmod
from speedrun.errors import DatabaseError, DuplicateImport, RunNotFound, SpeedrunError
from speedrun.hardware import hardware_class
from speedrun.models import Environment, EpochMetric, Param, Run, Tag
from speedrun.params import value_type
from speedrun.records import EPOCH_FIELDS, EpochRecord, RunRecord, summarize

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
    """A speedrun database. Open with `Store.open(path_or_url)`."""

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
            store._guard(lambda: dbmod.check_revision(engine, url, label=db))
        return store

    def close(self) -> None:
        self.engine.dispose()

    def current_revision(self) -> str | None:
        return self._guard(lambda: dbmod.current_revision(self.engine))

    def _guard(self, fn):
        try:
            return fn()
        except SpeedrunError:
            raise
        except OperationalError as exc:
            raise DatabaseError(f"database {self.label}: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise DatabaseError(f"database {self.label}: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction; errors become a DatabaseError with nothing half-written."""
        try:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                yield session
        except SpeedrunError:
            raise
        except OperationalError as exc:
            raise DatabaseError(f"cannot write to database {self.label}: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot write to database {self.label}: {exc}") from None

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SpeedrunError:
            raise
        except OperationalError as exc:
            raise DatabaseError(f"cannot read database {self.label}: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read database {self.label}: {exc}") from None

    # ----------------------------------------------------------------- writing
    def begin_run(self, record: RunRecord) -> int:
        """Record a run that is starting now (status from the record, normally `running`)."""
        record.started_at = record.started_at or utcnow()
        with self._write() as session:
            run = self._insert(session, record)
            run.heartbeat_at = utcnow()
            run.host = socket.gethostname()
            return run.id

    def add_run(self, record: RunRecord) -> int:
        """Record a finished run (imports, merges) with its epochs, in one transaction."""
        return self.add_runs([record])[0]

    def add_runs(self, records: Sequence[RunRecord], *, force: bool = False, label_clashes: bool = True) -> list[int]:
        """Record several runs atomically: all of them or none. Returns their numbers, in order.

        Content already imported (same content hash) is refused unless `force`.
        A run whose requested number is taken gets a new one (labelled with the
        requested number when `label_clashes`, as notebooks want).
        """
        with self._write() as session:
            if not force:
                self._refuse_duplicates(session, records)
            # Runs that keep their number go first, so a renumbered run cannot take a number
            # that a later run of the same batch asked for.
            wanted = {r.number for r in records if r.number is not None and not r.label}
            taken = set(session.scalars(select(Run.id).where(Run.id.in_(wanted)))) if wanted else set()
            order = sorted(
                range(len(records)),
                key=lambda i: records[i].number is None or records[i].number in taken or bool(records[i].label),
            )
            ids: dict[int, int] = {}
            for i in order:
                ids[i] = self._insert(session, records[i], label_clash=label_clashes).id
            return [ids[i] for i in range(len(records))]

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

    def _insert(self, session: Session, record: RunRecord, *, label_clash: bool = True) -> Run:
        env = self._environment(session, record)
        hw = env.hardware_class if env else None
        run_id = None
        if record.number is not None and not record.label:
            taken = session.get(Run, record.number)
            if taken is None:
                run_id = record.number
            elif label_clash:
                record.warnings.append(
                    f"run number {record.number} is taken; stored as a new run labelled {record.number}"
                )
                record.label = str(record.number)
        run = Run(
            id=run_id,
            uuid=record.uuid or str(uuidlib.uuid4()),
            label=record.label,
            title=record.title or default_title(record.params, hw),
            status=record.status,
            source=record.source,
            created_at=record.created_at or utcnow(),
            started_at=record.started_at,
            finished_at=record.finished_at,
            pid=record.pid,
            hypothesis=record.hypothesis,
            description=record.description,
            analysis=record.analysis,
            group_name=record.group,
            epochs_planned=_as_int(record.params.get("epochs")),
            wall_time_s=record.wall_time_s,
            data_load_s=record.data_load_s,
            param_count=record.param_count,
            target_acc=record.target_acc,
            target_time_s=record.target_time_s,
            stated_final_val_acc=record.final_val_acc,
            stated_train_time_s=record.train_time_s,
            extra=dict(record.extra),
            error=record.error,
            command=record.command,
            git_commit=record.git_commit,
            git_dirty=record.git_dirty,
            source_file=record.source_file,
            source_line=record.source_line,
            content_hash=record.content_hash,
            log_text=record.log_text,
            environment=env,
        )
        run.params = [
            Param(name=name, value=value, type=value_type(value), position=i)
            for i, (name, value) in enumerate(record.params.items())
        ]
        run.tags = [Tag(tag=t) for t in dict.fromkeys(record.tags)]
        run.epochs = [_epoch_row(e) for e in record.epochs]
        self._refresh_summary(run, stated_peak=record.peak_val_acc, stated_peak_epoch=record.peak_epoch)
        session.add(run)
        session.flush()
        return run

    def _environment(self, session: Session, record: RunRecord) -> Environment | None:
        fields = {k: record.env.get(k) for k in ENV_FIELDS}
        hardware = record.hardware or record.env.get("hardware")
        if hardware is None and not any(v is not None for v in fields.values()):
            return None
        fingerprint = hashlib.sha256(
            json.dumps({**fields, "hardware": hardware}, sort_keys=True, default=str).encode()
        ).hexdigest()
        env = session.scalar(select(Environment).where(Environment.fingerprint == fingerprint))
        if env is None:
            description = hardware or fields.get("gpu_name") or fields.get("cpu_model")
            env = Environment(
                fingerprint=fingerprint,
                hardware=hardware,
                hardware_class=hardware_class(
                    fields.get("gpu_name") or description, fields.get("device_type")
                ),
                **fields,
            )
            session.add(env)
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
        extra: dict[str, Any] | None = None,
    ) -> None:
        with self._write() as session:
            run = self._get_for_update(session, run_id)
            run.status = status
            run.finished_at = utcnow()
            run.heartbeat_at = run.finished_at
            run.error = error
            if train_time_s is not None:
                run.stated_train_time_s = train_time_s
            if wall_time_s is not None:
                run.wall_time_s = wall_time_s
            extra = dict(extra or {})
            # The target is a column since schema 0002; callers may still pass it with the rest.
            run.target_acc = extra.pop("target_acc", run.target_acc)
            run.target_time_s = extra.pop("target_time_s", run.target_time_s)
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

    # ----------------------------------------------------------------- reading
    def get_run(self, ref: str | int) -> Run:
        """A run by its number or label, with everything loaded."""
        with self._read() as session:
            return self._resolve(session, ref, full=True)

    def get_runs(self, refs: Iterable[str | int]) -> list[Run]:
        with self._read() as session:
            return [self._resolve(session, ref, full=True) for ref in refs]

    def find_by_hash(self, content_hash: str) -> Run | None:
        with self._read() as session:
            return session.scalar(select(Run).where(Run.content_hash == content_hash).limit(1))

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
    ) -> list[Run]:
        """Runs matching every given filter, sorted; `limit` keeps the last ones of that order."""
        if sort not in SORTABLE:
            raise SpeedrunError(f"cannot sort by {sort!r}; choose from {', '.join(sorted(SORTABLE))}")
        query = select(Run).options(
            selectinload(Run.params), selectinload(Run.tags), selectinload(Run.environment)
        )
        if with_epochs:
            query = query.options(selectinload(Run.epochs))
        if status:
            query = query.where(Run.status == status)
        if source:
            query = query.where(Run.source == source)
        if group:
            query = query.where(Run.group_name == group)
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
            inner = query.order_by(*reverse).limit(limit)
            with self._read() as session:
                runs = list(session.scalars(inner))
            return list(reversed(runs))
        with self._read() as session:
            return list(session.scalars(query.order_by(*order)))

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

    def _resolve(self, session: Session, ref: str | int, *, full: bool = False) -> Run:
        options = (
            [
                selectinload(Run.params),
                selectinload(Run.tags),
                selectinload(Run.environment),
                selectinload(Run.epochs),
            ]
            if full
            else [selectinload(Run.tags)]
        )
        text = str(ref).strip()
        if text.isdigit():
            run = session.get(Run, int(text), options=options)
            if run is not None:
                return run
        matches = list(session.scalars(select(Run).where(Run.label == text).options(*options)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            numbers = ", ".join(str(r.id) for r in matches)
            raise RunNotFound(f"label {text!r} is ambiguous: runs {numbers}; use the run number")
        raise RunNotFound(f"no run {text!r} in {self.label}")

    @staticmethod
    def _refresh_summary(run: Run, *, stated_peak: float | None = None, stated_peak_epoch: int | None = None) -> None:
        summary = summarize(
            run.epochs,
            stated_final=run.stated_final_val_acc,
            stated_train_time=run.stated_train_time_s,
            stated_peak=stated_peak if stated_peak is not None else run.peak_val_acc,
            stated_peak_epoch=stated_peak_epoch if stated_peak_epoch is not None else run.peak_epoch,
        )
        run.final_val_acc = summary.final_val_acc
        run.peak_val_acc = summary.peak_val_acc
        run.peak_epoch = summary.peak_epoch
        run.train_time_s = summary.train_time_s
        run.mean_epoch_s = summary.mean_epoch_s
        run.epochs_completed = summary.epochs_completed


def _epoch_row(epoch: EpochRecord) -> EpochMetric:
    values = {name: getattr(epoch, name) for name in EPOCH_FIELDS}
    return EpochMetric(epoch=epoch.epoch, extra=dict(epoch.extra), **values)


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_from_run(run: Run) -> RunRecord:
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
    )


def record_to_json(record: RunRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("created_at", "started_at", "finished_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    data.pop("warnings", None)
    return data
