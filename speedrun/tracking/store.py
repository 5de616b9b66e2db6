"""The storage layer: a speedrun database's runs, read and written.

Callers hand in plain `RunRecord`/`EpochRecord`s and get plain `RunView`s back.
Every method works through one session helper (`Store._session`): a transaction that
is committed when the block ends, rolled back when it fails, and whose SQLAlchemy
errors become speedrun's DatabaseError kinds. Writes take the write lock up front
(SQLite: BEGIN IMMEDIATE, see db.py; PostgreSQL: an advisory lock where run numbers
are chosen), so concurrent trainings and imports queue instead of failing.

The store decides nothing about what a run *means*: which number and label a run
gets is `numbering`'s, the converters between records and rows are `rows`', titles
come from whoever makes the record, whether a `running` run still runs from
`liveness`, the summary rules from `records`. Reads survive a damaged stored value
(`salvage`): the run is returned with the value left out and its name in `RunView.damaged`.

SQL lives here, and also where it belongs to one job: `where` compiles `--where` queries,
`db` makes engines, migrates and copies databases, `salvage` finds damaged values, and
`spool` keeps the records a training could not write (its own SQLite file).
"""

from __future__ import annotations

import copy
import hashlib
import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import String, Text, cast, delete, func, insert, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from speedrun.errors import (
    DatabaseError,
    DatabaseUnreachable,
    DuplicateImport,
    ReadOnlyDatabase,
    RunNotFound,
    SpeedrunError,
)
from speedrun.domain.hardware import hardware_class
from speedrun.domain.params import typed_value, value_type
from speedrun.tracking import db as dbmod
from speedrun.tracking import liveness, numbering, salvage
from speedrun.tracking.numbering import Stored, ambiguous_label
from speedrun.tracking.orders import SORTABLE_COLUMNS
from speedrun.tracking.models import Environment, EpochMetric, Param, Run, Series, Tag, json_text
from speedrun.tracking.rows import (
    ENV_FIELDS,
    EPOCH_COLUMNS,
    EpochView,
    ParamView,
    RunView,
    TagView,
    as_int,
    epoch_row,
    epoch_tuple,
    json_value,
    new_series_row,
    run_row,
    set_series,
    summary_columns,
)
from speedrun.tracking.validation import check_name
from speedrun.domain.records import (
    FINAL_MEASURED_AFTER_EPOCHS,
    RUN_NUMBER_MAX,
    run_number,
    EpochRecord,
    RunningSummary,
    RunRecord,
    RunUpdate,
    SeriesRecord,
    summarize,
    utcnow,
)

SORTABLE = {name: getattr(Run, column) for name, column in SORTABLE_COLUMNS.items()}
# The orders of `page_runs` (speedrun ui's runs table): notebook order, then the SORTABLE columns.
PAGE_ORDERS = {
    "notebook": (Run.position, Run.id),
    "title": (Run.title,),
    "label": (Run.label,),
    **{name: (column,) for name, column in SORTABLE.items()},
}
# Key of the PostgreSQL advisory lock held while run numbers are chosen ("runs" in ASCII).
_RUN_NUMBERS_LOCK = 0x72756E73


class Runs(list):
    """The runs `list_runs` returns, and how many matched before `limit` kept the last ones
    (`speedrun list` shows a page and says how many more there are, without reading them)."""

    def __init__(self, runs: Iterable[RunView] = (), matching: int | None = None):
        super().__init__(runs)
        self.matching = len(self) if matching is None else matching


class Store:
    """A speedrun database. Open with `Store.open(path_or_url)`.

    A training run records into it directly: `label`, `begin_run`, `add_epoch`,
    `heartbeat` and `finish_run` are the training loops' Recorder protocol
    (speedrun.training.recording).
    """

    def __init__(self, engine, url: str, label: str, *, read_only: str | None = None):
        self.engine = engine
        self.url = url
        self.label = label  # how messages name it: the path as typed, or the URL without password
        self.read_only = read_only  # why writes are refused, when they are
        self._writer = engine.execution_options(sqlite_immediate=True)
        # A read sees one snapshot from its first statement to its last: SQLite's read transactions
        # do; PostgreSQL's default (read committed) would let a run's summary and epochs disagree.
        self._reader = (
            engine.execution_options(isolation_level="REPEATABLE READ") if engine.dialect.name == "postgresql" else engine
        )
        self._tolerate_bad_text = False
        # Runs this process records epoch by epoch: their summary so far, so the next
        # epoch updates it instead of reading every earlier one back.
        self._running: dict[int, RunningSummary] = {}
        self._companions: list[Store] = []  # stores on the same database made by `with_timeout`

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        db: str,
        *,
        migrate: bool = True,
        notify: Callable[[str], None] | None = None,
        label: str | None = None,
    ) -> Store:
        """Open (and create, and upgrade) the database at a path or SQLAlchemy URL.

        A read-only SQLite file at an older schema is read through an upgraded
        in-memory copy; writing to it is refused.
        """
        label = label or dbmod.display_name(db)
        url = dbmod.resolve_url(db)
        engine = dbmod.make_engine(url, label=label)
        store = cls(engine, url, label)
        if not migrate:
            with store._errors("read"):
                dbmod.check_revision(engine, url, label=label)
            return store
        try:
            dbmod.upgrade(engine, url, notify, label=label)
        except ReadOnlyDatabase:
            if engine.dialect.name != "sqlite":
                raise
            with store._errors("read"):
                revision = dbmod.current_revision(engine)
                copy_engine = dbmod.memory_copy(engine)
            engine.dispose()
            dbmod.upgrade(copy_engine, "sqlite://", label=label)
            if notify:
                notify(f"Database {label} is read-only at schema revision {revision}: read through an "
                       f"upgraded copy in memory; the file is unchanged.")
            return cls(copy_engine, "sqlite://", label, read_only=f"it is read-only (at schema revision {revision})")
        return store

    @classmethod
    def open_read_only(cls, db: str, *, label: str | None = None) -> Store:
        """The database for reading only (`speedrun ui`): never created, upgraded or written. The
        connections themselves refuse writes (SQLite's query_only; PostgreSQL read-only transactions)."""
        store = cls.open(db, migrate=False, label=label)
        dbmod.refuse_writes(store.engine)
        store.read_only = "it is open for reading only"
        return store

    @classmethod
    def snapshot(cls, path: Path, *, label: str | None = None) -> Store:
        """Another SQLite database file, copied into memory as one consistent snapshot and
        upgraded there: read without writing a byte to it, even while others write to it."""
        label = label or str(path)
        try:
            engine = dbmod.memory_copy_of_file(path)
        except Exception as exc:  # sqlite3's errors: not a database, unreadable
            raise DatabaseError(f"cannot read database {label}: {exc}") from None
        dbmod.upgrade(engine, "sqlite://", label=label)
        return cls(engine, "sqlite://", label, read_only="it is a snapshot")

    def with_timeout(self, seconds: float) -> Store:
        """The same database through an engine of its own whose every wait is bounded by `seconds`
        (a training's recorder: a locked or slow database sends its records to the spool instead
        of holding up the training). A store in memory (a read-only file's copy) is itself."""
        if self.read_only or dbmod.sqlite_file(self.url) is None and self.engine.dialect.name == "sqlite":
            return self
        bounded = Store(dbmod.make_engine(self.url, label=self.label, timeout_s=seconds), self.url, self.label)
        self._companions.append(bounded)  # closed with this one
        return bounded

    def close(self) -> None:
        """Release the database: every connection closed, so SQLite folds its write-ahead
        log into the file (and removes it) as the last connection goes."""
        for companion in self._companions:
            companion.close()
        self.engine.dispose()

    def current_revision(self) -> str | None:
        with self._errors("read"):
            return dbmod.current_revision(self.engine)

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """The one way to the tables: a session in one transaction, committed when the block
        ends and rolled back when it fails (a write is all of it, or none of it), its database
        failures turned into speedrun's DatabaseError kinds (`_errors`). A write takes the
        write lock up front; a read sees one snapshot from its first statement to its last."""
        if write and self.read_only:
            raise ReadOnlyDatabase(f"cannot write to database {self.label}: {self.read_only}")
        bind = self._writer if write else self._reader
        with self._errors("write to" if write else "read"), Session(bind, expire_on_commit=False) as session:
            with session.begin():
                if self._tolerate_bad_text and self.engine.dialect.name == "sqlite":
                    dbmod.read_text_tolerantly(session.connection().connection)
                yield session

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database failures become one DatabaseError naming the database (the CLI prints it)."""
        try:
            yield
        except SpeedrunError:
            raise
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc)
            if salvage.undecodable(reason):
                raise salvage.UndecodableText from None
            reason = dbmod.scrub(reason, self.url)
            kind = DatabaseUnreachable if _unreachable(exc, self.engine) else DatabaseError
            raise kind(f"cannot {action} database {self.label}: {' '.join(reason.split())}") from None

    def has_table(self, name: str) -> bool:
        """Whether the database holds table `name` (another library's, such as Optuna's `studies`)."""
        from sqlalchemy import inspect

        with self._errors("read"), self.engine.connect() as conn:
            return inspect(conn).has_table(name)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the lock called `name` among every process that uses this database.

        PostgreSQL: a session advisory lock, so processes on other machines wait too.
        An SQLite file is only ever shared on one machine: an `flock` on a file in the
        temporary directory named after the database's path. Other writes to the
        database go on meanwhile (the lock guards a decision, not the tables).
        """
        file = dbmod.sqlite_file(self.url)
        where = str(file.resolve()) if file is not None else self.url  # one file, however it was named
        key = hashlib.blake2b(f"{where}\0{name}".encode(), digest_size=8).digest()
        if self.engine.dialect.name == "postgresql":
            number = int.from_bytes(key, "big", signed=True)
            with self._errors("lock"), self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": number})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": number})
                    conn.commit()
            return
        import fcntl
        import tempfile

        folder = Path(tempfile.gettempdir()) / "speedrun-locks"
        folder.mkdir(exist_ok=True)
        with open(folder / f"{key.hex()}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ----------------------------------------------------------------- writing
    def begin_run(self, record: RunRecord) -> int:
        """Record a run that is starting now (status from the record, normally `running`)."""
        now = utcnow()
        live = {"started_at": record.started_at or now, "heartbeat_at": now, **liveness.identity(record.pid)}
        with self._session(write=True) as session:
            self._lock_run_numbers(session)
            stored = self._insert_records(session, [record], label_clashes=False, live=live)[0]
        self._running[stored.number] = RunningSummary.of(record.epochs)
        return stored.number

    @salvage.tolerant
    def add_runs(
        self,
        records: Sequence[RunRecord],
        *,
        force: bool = False,
        label_clashes: bool = True,
        skip_known: bool = False,
        series: Sequence[SeriesRecord] = (),
    ) -> list[Stored]:
        """Record several runs atomically: all of them or none. Returns what was decided for each, in order.

        Content already imported (same content hash) is refused unless `force`.
        With `skip_known`, a run whose UUID is already here is skipped (merges).
        A run keeps the number it asks for (`record.number`) when that is free;
        otherwise it gets a new one, labelled with the requested number when
        `label_clashes` (as notebooks want). The records are not changed.
        `series`: the notebook series the runs name (`record.series`), found here
        by UUID or added as they are (merges).
        """
        with self._session(write=True) as session:
            self._lock_run_numbers(session)
            if not force:
                self._refuse_duplicates(session, records)
            series_ids = self._bring_series(session, series) if series else None
            return self._insert_records(session, records, label_clashes=label_clashes, skip_known=skip_known,
                                        series_ids=series_ids)

    @staticmethod
    def _bring_series(session: Session, series: Sequence[SeriesRecord]) -> dict[str, int]:
        """Series by name -> id: the one here with the same UUID (left as it is), else a new one."""
        ids: dict[str, int] = {}
        for record in series:
            row = session.scalar(select(Series).where(Series.uuid == record.uuid)) if record.uuid else None
            ids[record.name] = (row or _add_series(session, record)).id
        return ids

    def _insert_records(
        self,
        session: Session,
        records: Sequence[RunRecord],
        *,
        label_clashes: bool,
        skip_known: bool = False,
        live: dict[str, Any] | None = None,
        series_ids: dict[str, int] | None = None,
    ) -> list[Stored]:
        """Bulk-insert runs with their params, tags and epochs: one executemany per table.

        Numbers and labels are decided here (`numbering.decide`), under the write lock
        (`_lock_run_numbers`), so no other writer can take them between choosing and inserting.
        """
        known: dict[str, int] | None = None
        if skip_known:
            uuids = [r.uuid for r in records if r.uuid]
            known = dict(session.execute(select(Run.uuid, Run.id).where(Run.uuid.in_(uuids))).all()) if uuids else {}
        wanted = numbering.wanted_numbers(records)
        taken = session.scalars(select(Run.id).where(Run.id.in_(wanted))).all() if wanted else ()
        decisions = numbering.decide(records, taken=taken, next_free=self._next_run_id(session),
                                     label_clashes=label_clashes, known=known)
        new = [(d, r) for d, r in zip(decisions, records) if not d.skipped]

        environments: dict[Any, Environment] = {}
        envs = [self._environment(session, record, environments) for _, record in new]
        session.flush()  # environment ids
        next_position = self._next_position(session)
        run_rows, param_rows, tag_rows, epoch_rows = [], [], [], []
        for (decision, record), env in zip(new, envs):
            run_id = decision.number
            series_id = (series_ids or {}).get(record.series) if record.series else None
            row = run_row(record, run_id, decision.label, env.id if env else None, series_id)
            if row["position"] is None:  # new runs follow the notebook, in the order they were made
                row["position"], next_position = next_position, next_position + 1
            run_rows.append({**row, **(live or {})})
            param_rows += [
                {"run_id": run_id, "name": name, "value": value, "type": value_type(value), "position": i}
                for i, (name, value) in enumerate(record.params.items())
            ]
            tag_rows += [{"run_id": run_id, "tag": tag} for tag in dict.fromkeys(record.tags)]
            epoch_rows += [epoch_tuple(run_id, e) for e in record.epochs]
        # Core inserts: executemany without the ORM's per-row bookkeeping.
        for model, rows in ((Run, run_rows), (Tag, tag_rows)):
            if rows:
                session.execute(insert(model.__table__), rows)
        if param_rows:
            _insert_params(session, param_rows)
        if epoch_rows:
            _insert_epochs(session.connection(), epoch_rows)
        if run_rows:
            self._remember_largest(session, max(row["id"] for row in run_rows))
        return decisions

    @staticmethod
    def _lock_run_numbers(session: Session) -> None:
        """Writers that create runs take turns. SQLite's BEGIN IMMEDIATE already holds the
        database's write lock; on PostgreSQL, a transaction-wide advisory lock, released at
        commit, so that run numbers, labels and duplicate checks see every committed run."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RUN_NUMBERS_LOCK})

    @staticmethod
    def _next_run_id(session: Session) -> int:
        """The next automatic run number: never one that was used before, even if deleted."""
        largest = session.scalar(select(func.max(Run.id))) or 0
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            sequence = session.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'runs'")).scalar()
            largest = max(largest, sequence or 0)
        elif dialect == "postgresql":
            row = session.execute(text("SELECT last_value, is_called FROM runs_id_seq")).first()
            if row is not None and row.is_called:
                largest = max(largest, row.last_value)
        return largest + 1

    @staticmethod
    def _next_position(session: Session) -> float:
        """A place after every run and series in notebook order."""
        largest = max(
            session.scalar(select(func.max(Run.position))) or 0.0,
            session.scalar(select(func.max(Series.position))) or 0.0,
        )
        return float(int(largest) + 1)

    @staticmethod
    def _remember_largest(session: Session, largest: int) -> None:
        """PostgreSQL's sequence does not see numbers given explicitly; SQLite's AUTOINCREMENT does."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT setval('runs_id_seq', GREATEST(:n, (SELECT last_value FROM runs_id_seq)))"),
                {"n": largest},
            )

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
        self, session: Session, record: RunRecord, known: dict[Any, Environment]
    ) -> Environment | None:
        """The shared environment row for this record (created once per fingerprint)."""
        fields = {k: record.env.get(k) for k in ENV_FIELDS}
        hardware = record.hardware or record.env.get("hardware")
        if hardware is None and not any(v is not None for v in fields.values()):
            return None
        # A batch of 2,000 runs from one notebook names a handful of machines: each is
        # fingerprinted and looked up once, then known by its values.
        values = (hardware, *map(repr, fields.values()))
        if values in known:
            return known[values]
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
        known[fingerprint] = known[values] = env
        return env

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        """Record one finished epoch at once, with the run's summary and heartbeat.

        The summary is updated from the one new epoch (constant time per epoch);
        only a rewritten or out-of-order epoch reads the run's epochs back.
        """
        with self._session(write=True) as session:
            conn = session.connection()  # Core statements: the per-epoch hot path builds no ORM objects
            row = conn.execute(
                select(Run.epochs_completed, Run.stated_final_val_acc, Run.stated_train_time_s, Run.extra)
                .where(Run.id == run_id)
            ).first()
            if row is None:
                raise RunNotFound(f"no run {run_id} in {self.label}")
            known = self._running.get(run_id)
            if known is not None and known.count == row.epochs_completed and (
                known.last_epoch is None or epoch.epoch > known.last_epoch
            ):
                running = copy.copy(known)
                running.add(epoch)
            else:  # first epoch this process records for the run, or one written again
                conn.execute(delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.epoch == epoch.epoch))
                running = None
            _insert_epochs(conn, [epoch_tuple(run_id, epoch)])
            if running is None:
                running = RunningSummary.of(
                    conn.execute(
                        select(EpochMetric.epoch, EpochMetric.duration_s, EpochMetric.elapsed_s, EpochMetric.val_acc)
                        .where(EpochMetric.run_id == run_id)
                    ).all()
                )
            # A live run states no peak of its own: its peak is its epochs' (even when a rewrite took it away).
            summary = running.summary(
                stated_final=row.stated_final_val_acc,
                stated_train_time=row.stated_train_time_s,
                final_after_epochs=FINAL_MEASURED_AFTER_EPOCHS in (row.extra or {}),
            )
            conn.execute(
                update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow(), **summary_columns(summary))
            )
        self._running[run_id] = running

    def heartbeat(self, run_id: int) -> None:
        with self._session(write=True) as session:
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
        self._running.pop(run_id, None)
        with self._session(write=True) as session:
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
            run.peak_val_acc = run.peak_epoch = None  # a live run states no peak: its epochs' is derived
            self._refresh_summary(run)

    @salvage.tolerant
    def update_texts(self, ref: str | int, **texts: str | None) -> Run:
        allowed = set(EDITABLE_TEXTS)
        with self._session(write=True) as session:
            run = self._resolve(session, ref)
            for name, value in texts.items():
                if name not in allowed:
                    raise ValueError(name)
                if name == "title" and value is not None:
                    check_name(value, "title")
                if value is not None and getattr(run, name) != value:
                    setattr(run, name, value)
                    run.edited_at = utcnow()
            return run

    @salvage.tolerant
    def add_tags(self, ref: str | int, tags: Iterable[str], *, remove: bool = False) -> list[str]:
        tags = [check_name(tag, "tag") for tag in tags] if not remove else list(tags)
        with self._session(write=True) as session:
            run = self._resolve(session, ref)
            current = {t.tag: t for t in run.tags}
            for tag in tags:
                if remove and tag in current:
                    run.tags.remove(current.pop(tag))
                    run.edited_at = utcnow()
                elif not remove and tag not in current:
                    current[tag] = Tag(tag=tag)
                    run.tags.append(current[tag])
                    run.edited_at = utcnow()
            return sorted(current)

    @salvage.tolerant
    def carry_edits(self, records: Sequence[RunRecord]) -> tuple[list[int], list[int]]:
        """The user's texts and tags of runs already here, as another database's copies (`records`,
        by UUID) have them where those were edited later. A run edited here too, since the edit
        both sides last shared, is a conflict: reported (returned), not overwritten. Epochs are
        never touched. Returns (runs updated, runs in conflict)."""
        incoming = {r.uuid: r for r in records if r.uuid and r.edited_at is not None}
        updated: list[int] = []
        conflicts: list[int] = []
        if not incoming:
            return updated, conflicts
        with self._session(write=True) as session:
            runs = session.scalars(select(Run).where(Run.uuid.in_(list(incoming))).options(selectinload(Run.tags)))
            for run in runs:
                theirs = incoming[run.uuid]
                if run.edited_at == theirs.edited_at or not _later(theirs.edited_at, run.merged_edit_at):
                    continue  # nothing this database has not taken in already
                if run.edited_at is not None and _later(run.edited_at, run.merged_edit_at) and \
                        _later(run.edited_at, theirs.merged_edit_at):
                    conflicts.append(run.id)  # edited here too, and the other side never saw it
                    continue
                for name in EDITABLE_TEXTS:
                    setattr(run, name, getattr(theirs, name))
                run.section_text = theirs.section_text  # the notebook section shows the texts: it travels with them
                run.tags.clear()
                session.flush()
                run.tags.extend(Tag(tag=tag) for tag in dict.fromkeys(theirs.tags))
                run.edited_at = run.merged_edit_at = theirs.edited_at
                updated.append(run.id)
        return sorted(updated), sorted(conflicts)

    @salvage.tolerant
    def set_group(self, refs: Iterable[str | int], group: str | None) -> list[int]:
        if group is not None:
            check_name(group, "group name")
        with self._session(write=True) as session:
            ids = [self._resolve_id(session, ref) for ref in refs]
            session.execute(update(Run).where(Run.id.in_(ids)).values(group_name=group))
            return ids

    @salvage.tolerant
    def delete_run(self, ref: str | int) -> int:
        with self._session(write=True) as session:
            run_id = self._resolve_id(session, ref)
            session.execute(delete(Run).where(Run.id == run_id))
            self._running.pop(run_id, None)
            return run_id

    # ----------------------------------------------------------------- the notebook
    def list_series(self) -> list[Series]:
        """Every notebook series, detached from the session, in notebook order."""
        with self._session() as session:
            return list(session.scalars(select(Series).order_by(Series.position, Series.id)))

    def apply_notebook(
        self,
        *,
        add: Sequence[RunRecord],
        update: Sequence[RunUpdate],
        series: Sequence[tuple[int | None, SeriesRecord]],
        positions: dict[int, float],
        series_positions: dict[int, float],
    ) -> list[Stored]:
        """One import of a notebook, in one transaction: new series and runs added, matched
        ones updated in place (`series`: (id or None for a new one, record)), and the
        positions of existing runs and series changed to the notebook's order.
        Returns what was decided for each added run, in order."""
        with self._session(write=True) as session:
            self._lock_run_numbers(session)
            series_ids = {}
            for series_id, record in series:
                row = session.get(Series, series_id) if series_id is not None else None
                if row is None:
                    row = _add_series(session, record)
                else:
                    set_series(row, record)
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
        if _edits(run, (t.tag for t in run.tags)) != _edits(record, record.tags):
            run.edited_at = utcnow()  # the user's words changed in the notebook: an edit `merge` carries
        if item.texts_only:
            for name in (*EDITABLE_TEXTS, "preamble"):
                setattr(run, name, getattr(record, name))
            if record.position is not None:
                run.position = record.position
            run.tags.clear()
            session.flush()
            run.tags.extend(Tag(tag=tag) for tag in dict.fromkeys(record.tags))
            return
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
            run.epochs.extend(epoch_row(e) for e in record.epochs)
            run.log_text = record.log_text
            run.stated_final_val_acc = record.final_val_acc
            run.stated_train_time_s = record.train_time_s
            run.param_count = record.param_count if record.param_count is not None else run.param_count
            run.data_load_s = record.data_load_s if record.data_load_s is not None else run.data_load_s
            run.epochs_planned = as_int(record.params.get("epochs"))
            session.flush()
            self._refresh_summary(run, stated_peak=record.peak_val_acc, stated_peak_epoch=record.peak_epoch)

    def set_section_text(self, ref: str | int, text: str | None) -> None:
        """Replace a run's notebook section (after its fields were edited with `note` or `tag`)."""
        with self._session(write=True) as session:
            self._resolve(session, ref).section_text = text

    # ----------------------------------------------------------------- reading
    def get_run(self, ref: str | int) -> RunView:
        """A run by its number or label, with everything loaded."""
        return self.get_runs([ref])[0]

    @salvage.tolerant
    def get_runs(self, refs: Iterable[str | int]) -> list[RunView]:
        with self._session() as session:
            ids = [self._resolve_id(session, ref) for ref in refs]
            views = self._views(session, ids, with_epochs=True)
            return [views[i] for i in ids]

    @salvage.tolerant
    def list_runs(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        hardware: str | None = None,
        hardware_class: str | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        source: str | None = None,
        group: str | None = None,
        ids: Sequence[int] | None = None,
        where: str | None = None,
        sort: str = "id",
        descending: bool = False,
        limit: int | None = None,
        first: bool = False,
        with_epochs: bool = False,
    ) -> Runs:
        """Runs matching every given filter, sorted; `limit` keeps the last ones of that order, or
        the first ones with `first` (the top of a ranking), and the result's `matching` says how
        many matched in all (counted only when there are more).
        `where` is a query of speedrun.query (`lr < 0.05 and cosine`), run in the database.
        `hardware` is the user's filter (a piece of any hardware text: "a10" finds A100s too);
        `hardware_class` is one class exactly ("A10"), read through its index.

        Status is the status a run reads as: a `running` run whose process is
        gone is listed as `died` (see `liveness`), so those two are filtered after reading.
        """
        if sort not in SORTABLE:
            raise SpeedrunError(f"cannot sort by {sort!r}; choose from {', '.join(sorted(SORTABLE))}")
        live_status = status in ("running", "died")
        query = select(Run.id).where(*_filters(status=status, model=model, hardware=hardware,
                                               hardware_class=hardware_class, tag=tag, since=since,
                                               source=source, group=group, ids=ids))
        column = SORTABLE[sort]
        # NULLs last whatever the direction, then the run number for a stable order.
        order = [column.is_(None), column.desc() if descending else column.asc(), Run.id]
        sql_limit = limit if not live_status else None
        if sql_limit is not None and first:
            query = query.order_by(*order).limit(sql_limit)
        elif sql_limit is not None:  # the last ones: the order reversed, limited, then turned back
            reverse = [column.is_not(None), column.asc() if descending else column.desc(), Run.id.desc()]
            query = query.order_by(*reverse).limit(sql_limit)
        else:
            query = query.order_by(*order)
        with self._session() as session:
            if where is not None:
                query = query.where(self._where(session, where))
            ordered = list(session.scalars(query))
            matching = len(ordered)
            if not ordered:  # nothing to read (an empty database: every command's first call)
                return Runs([], 0)
            if sql_limit is not None:
                if not first:
                    ordered.reverse()
                if matching == sql_limit:  # perhaps more: count them, reading none
                    every = query.order_by(None).limit(None).subquery()
                    matching = session.scalar(select(func.count()).select_from(every)) or 0
            # A `--where` query, or a page, is run once: the views read the matching numbers, not the query
            # (a scan of every run to find the latest few) again per table.
            views = self._views(session, query if where is None and sql_limit is None else ordered,
                                with_epochs=with_epochs)
        runs = [views[i] for i in ordered]
        if live_status:
            runs = [r for r in runs if r.status == status]
            matching = len(runs)
            if limit is not None:
                runs = (runs[:limit] if first else runs[-limit:]) if limit else []
        return Runs(runs, matching)

    def where_query(self, text: str):
        """A `--where` query parsed and checked against the names this database holds
        (speedrun.query.resolve); QueryError when it is not one."""
        with self._session() as session:
            return self._resolved(session, text)

    @staticmethod
    def _resolved(session: Session, text: str):
        from speedrun.query import parse, resolve

        return resolve(parse(text), text, _StoredParams(session))

    def _where(self, session: Session, text: str):
        """The WHERE clause of a `--where` query, compiled by tracking.where."""
        from speedrun.query.ast import conditions
        from speedrun.tracking.where import compile_where

        expr = self._resolved(session, text)
        died: list[int] = []
        if any(c.field.key == "status" for c in conditions(expr)):  # `running` runs read as `died` once gone
            running = select(Run.id).where(Run.status == "running")
            died = [i for i, view in self._views(session, running, with_epochs=False).items() if view.status == "died"]
        return compile_where(expr, session.get_bind().dialect.name, died=died)

    def _views(self, session: Session, run_ids, *, with_epochs: bool) -> dict[int, RunView]:
        """Plain views of the runs whose ids `run_ids` (a list or a SELECT of ids) names.

        One query per table, whatever the number of runs: reports over 10,000
        runs would spend most of their time building ORM objects otherwise.
        Runs holding a value their column cannot hold (found by `salvage.damaged_ids`,
        or by a failure to decode) are read value by value instead.
        """
        conn = session.connection()  # Core rows: the ORM's result machinery would cost more than the query
        damaged = salvage.damaged_ids(conn, run_ids, with_epochs=with_epochs)
        try:
            views = self._plain_views(conn, run_ids, damaged, with_epochs=with_epochs)
        except (ValueError, TypeError, KeyError):  # a damage the checks did not foresee: read all carefully
            damaged = set(conn.scalars(select(Run.id).where(Run.id.in_(run_ids))))
            views = {}
        if damaged:
            views.update(salvage.careful_views(conn, sorted(damaged), with_epochs=with_epochs))
        if self._tolerate_bad_text:
            for view in views.values():
                salvage.note_damaged_text(view)
        now = utcnow()
        for view in views.values():
            if view.status == "running":
                view.status = liveness.effective_status(view, now)
                if view.status == "died" and view.finished_at is None:
                    view.finished_at = view.heartbeat_at
        return views

    def _plain_views(self, conn, run_ids, skip: set[int], *, with_epochs: bool) -> dict[int, RunView]:
        selected = Run.id.in_(run_ids)
        if skip:
            selected = selected & Run.id.not_in(skip)
        result = conn.execute(select(Run.__table__).where(selected))
        names = tuple(result.keys())  # once: a row's own mapping builds its keys anew (30 µs a run)
        runs = result.all()
        present = [r.id for r in runs]
        if not present:
            return {}

        def in_runs(column):
            return column.in_(run_ids) & column.not_in(skip) if skip else column.in_(run_ids)

        params: dict[int, list] = {}
        for run_id, name, raw, kind, position in conn.execute(
            select(Param.run_id, Param.name, cast(Param.value, Text), Param.type, Param.position)
            .where(in_runs(Param.run_id))
            .order_by(Param.run_id, Param.position)
        ):
            params.setdefault(run_id, []).append(ParamView(name, typed_value(json_value(raw), kind), kind, position))
        tags: dict[int, list] = {}
        for row in conn.execute(select(Tag.run_id, Tag.tag).where(in_runs(Tag.run_id)).order_by(Tag.tag)):
            tags.setdefault(row.run_id, []).append(TagView(*row))
        epochs: dict[int, list] = {}
        if with_epochs:
            columns = [getattr(EpochMetric, name) for name in EPOCH_COLUMNS[:-1]]
            for row in conn.execute(
                select(*columns, cast(EpochMetric.extra, Text))
                .where(in_runs(EpochMetric.run_id))
                .order_by(EpochMetric.run_id, EpochMetric.epoch)
            ):
                epochs.setdefault(row[0], []).append(EpochView(*row[:-1], json_value(row[-1])))
        environments = self._environments(conn, {r.environment_id for r in runs})
        series_ids = {r.series_id for r in runs if r.series_id is not None}
        series_names = (
            dict(conn.execute(select(Series.id, Series.name).where(Series.id.in_(series_ids))).all())
            if series_ids
            else {}
        )
        return {
            r.id: RunView(
                zip(names, r),
                params.get(r.id, []),
                tags.get(r.id, []),
                epochs.get(r.id, []),
                environments.get(r.environment_id),
                series_name=series_names.get(r.series_id),
            )
            for r in runs
        }

    @staticmethod
    def _environments(conn, env_ids: set) -> dict[int, Any]:
        env_ids.discard(None)
        if not env_ids:
            return {}
        return {e.id: e for e in conn.execute(select(Environment.__table__).where(Environment.id.in_(env_ids)))}

    # ----------------------------------------------------------------- pages (speedrun ui)
    @salvage.tolerant
    def page_runs(self, *, sort: str = "notebook", descending: bool = False, offset: int = 0, limit: int = 50,
                  ids: Sequence[int] | None = None, where: str | None = None) -> tuple[list[RunView], int]:
        """One page of runs in an order (`PAGE_ORDERS`), and how many runs match in all; `where` is a
        `--where` query (run in the database, as by `list_runs`).

        Only the page's runs are read: a page of 10,000 runs costs what a page of 100 does.
        """
        if sort not in PAGE_ORDERS:
            raise SpeedrunError(f"cannot sort by {sort!r}; choose from {', '.join(sorted(PAGE_ORDERS))}")
        columns = PAGE_ORDERS[sort]
        order = []
        for column in columns:
            order += [column.is_(None), column.desc() if descending else column.asc()]
        query = select(Run.id)
        if ids is not None:
            query = query.where(Run.id.in_([i for i in ids if 0 < i <= RUN_NUMBER_MAX]))
        with self._session() as session:
            if where is not None:
                query = query.where(self._where(session, where))
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = list(session.scalars(query.order_by(*order, Run.id).offset(max(offset, 0)).limit(max(limit, 0))))
            views = self._views(session, page, with_epochs=False)
        return [views[i] for i in page if i in views], total

    def data_version(self) -> tuple:
        """A cheap fingerprint of what the runs hold: it changes when a run is added, removed or
        renumbered, records an epoch, finishes, beats, or has its texts edited (a long-lived reader
        such as `speedrun ui` keeps what it derived from all runs until this changes)."""
        with self._session() as session:
            return tuple(session.execute(select(
                func.count(Run.id), func.max(Run.id), func.sum(Run.id), func.sum(Run.epochs_completed),
                func.max(Run.heartbeat_at), func.max(Run.finished_at), func.max(Run.edited_at),
                func.max(Run.created_at))).one())

    def param_names(self) -> list[str]:
        """Every parameter name some run records, sorted (the UI's column picker)."""
        with self._session() as session:
            return sorted(session.scalars(select(Param.name).distinct()))

    @salvage.tolerant
    def live_state(self, ref: str | int, *, after_epoch: int = 0) -> tuple[RunView, list[EpochView]]:
        """A run without its epochs, and its epochs numbered above `after_epoch`: what a page that
        watches a run needs every few seconds, without reading the run's whole history again."""
        with self._session() as session:
            run_id = self._resolve_id(session, ref)
            view = self._views(session, [run_id], with_epochs=False)[run_id]
            columns = [getattr(EpochMetric, name) for name in EPOCH_COLUMNS[:-1]]
            rows = session.connection().execute(
                select(*columns, cast(EpochMetric.extra, Text))
                .where(EpochMetric.run_id == run_id, EpochMetric.epoch > after_epoch)
                .order_by(EpochMetric.epoch)
            ).all()
        return view, [EpochView(*row[:-1], json_value(row[-1])) for row in rows]

    # ----------------------------------------------------------------- other reads
    def count_runs(self) -> int:
        with self._session() as session:
            return session.scalar(select(func.count(Run.id))) or 0

    def runs_by_uuid(self, uuids: Iterable[str]) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(select(Run.uuid, Run.id).where(Run.uuid.in_(list(uuids))))
            return {u: i for u, i in rows}

    # ----------------------------------------------------------------- helpers
    def _get_for_update(self, session: Session, run_id: int) -> Run:
        run = session.get(Run, run_id, options=[selectinload(Run.epochs)])
        if run is None:
            raise RunNotFound(f"no run {run_id} in {self.label}")
        return run

    def _resolve_id(self, session: Session, ref: str | int) -> int:
        """The run number that `ref` names, by the one identity rule (`numbering.reference`).
        Two runs answering to one label are an error that lists them, never a silent pick."""
        wanted = numbering.reference(ref)
        if wanted.label is None:
            if wanted.number is not None and session.scalar(select(Run.id).where(Run.id == wanted.number)) is not None:
                return wanted.number
            raise RunNotFound(f"no run {wanted.shown} in {self.label}")
        label = wanted.label
        candidates = self._labelled(session, [label]).get(label, [])
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise RunNotFound(ambiguous_label(label, candidates))
        if (number := run_number(label)) is not None:
            other = session.scalar(select(Run.label).where(Run.id == number))
            if other is not None:
                raise RunNotFound(f"no run labelled {label!r} in {self.label}; run #{label} is Run {other}: "
                                  f"write #{label} for it")
        members = list(session.execute(
            select(Run.id, Run.label).join(Series, Run.series_id == Series.id).where(Series.name == label)
            .order_by(Run.position, Run.id)))
        if members:  # a series' parent heading (`## Run 7` over 7a, 7b) is no run of its own
            shown = ", ".join(member or str(run_id) for run_id, member in members)
            raise RunNotFound(f"no run {label!r} in {self.label}: {label} is a series (runs {shown}); "
                              f"name one of them, or the whole series as g:{label} (compare, stats)")
        raise RunNotFound(f"no run {label!r} in {self.label}")

    @staticmethod
    def _labelled(session: Session, labels: Sequence[str]) -> dict[str, list[int]]:
        """The runs each label names: those carrying it, and the unlabelled run whose number it is."""
        labelled: list = []
        unlabelled: list[int] = []
        wanted = list(dict.fromkeys(labels))
        for start in range(0, len(wanted), numbering.LABELS_PER_QUERY):
            chunk = wanted[start:start + numbering.LABELS_PER_QUERY]
            labelled += session.execute(select(Run.id, Run.label).where(Run.label.in_(chunk))).all()
            if numbers := numbering.label_numbers(chunk):
                unlabelled += session.scalars(select(Run.id).where(Run.id.in_(numbers), Run.label.is_(None))).all()
        return numbering.answering(labelled, unlabelled)

    @salvage.tolerant
    def resolve_numbers(self, numbers: Sequence[int]) -> list[int]:
        """Run numbers as a user typed them in a range (`15-18`), by the identity rule: each is the
        run labelled so; a number no run answers to is kept as it is (it selects nothing). One
        answer per number, in order."""
        with self._session() as session:
            named = self._labelled(session, [str(n) for n in numbers])
        return numbering.one_each(numbers, named)

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
        for name, value in summary_columns(summary).items():
            setattr(run, name, value)


class _StoredParams(Mapping):
    """The parameter names a database holds, with the type of their values (query.fields.stored_type):
    asked name by name (one indexed lookup), listed whole only for a "did you mean"."""

    def __init__(self, session: Session):
        self._session = session
        self._types: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str:
        from speedrun.query.fields import stored_type

        if name not in self._types:
            kinds = dict(self._session.execute(
                select(Param.type, func.count()).where(Param.name == name).group_by(Param.type)).all())
            self._types[name] = stored_type(kinds) if kinds else None
        if self._types[name] is None:
            raise KeyError(name)
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._session.scalars(select(Param.name).distinct()).all())

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _filters(*, status, model, hardware, hardware_class, tag, since, source, group, ids) -> list:
    """The WHERE conditions of `list_runs`' filters. A `running` or `died` run is read as either:
    which it is, `liveness` decides after reading."""
    conditions = []
    if status:
        live_status = status in ("running", "died")
        conditions.append(Run.status.in_(("running", "died")) if live_status else Run.status == status)
    if source:
        conditions.append(Run.source == source)
    if group:  # a group of runs, or a notebook series (`g:7`)
        conditions.append((Run.group_name == group) | Run.series_id.in_(select(Series.id).where(Series.name == group)))
    if ids is not None:
        # Numbers no run can have (beyond any integer column) cannot match: leave them out of the SQL.
        conditions.append(Run.id.in_([i for i in ids if 0 < i <= RUN_NUMBER_MAX]))
    if since:
        conditions.append(Run.created_at >= since)
    if tag:
        conditions.append(Run.tags.any(Tag.tag == tag))
    if model:
        conditions.append(
            Run.params.any((Param.name == "model") & func.lower(cast(Param.value, String)).contains(model.lower()))
        )
    if hardware:
        needle = f"%{hardware.lower()}%"
        conditions.append(
            Run.environment.has(
                func.lower(Environment.hardware_class).like(needle)
                | func.lower(func.coalesce(Environment.hardware, "")).like(needle)
                | func.lower(func.coalesce(Environment.gpu_name, "")).like(needle)
                | func.lower(func.coalesce(Environment.cpu_model, "")).like(needle)
            )
        )
    if hardware_class:
        conditions.append(Run.environment_id.in_(
            select(Environment.id).where(Environment.hardware_class == hardware_class)))
    return conditions


def _unreachable(exc: SQLAlchemyError, engine) -> bool:
    """A database we cannot use now but may later: a server that cannot be reached (connecting
    failed, the connection broke, a statement or lock timed out), or an SQLite file that another
    writer held locked past the busy timeout."""
    if engine.dialect.name == "sqlite":
        reason = str(getattr(exc, "orig", None) or exc)
        return isinstance(exc, OperationalError) and ("database is locked" in reason or "busy" in reason)
    return bool(getattr(exc, "connection_invalidated", False)) or isinstance(exc, (OperationalError, InterfaceError))


_INSERT_EPOCHS = (
    f"INSERT INTO epoch_metrics ({', '.join(EPOCH_COLUMNS)}) VALUES ({', '.join('?' * len(EPOCH_COLUMNS))})"
)


def _insert_epochs(conn, rows: list[tuple]) -> None:
    """Epoch rows (`rows.epoch_tuple`s) straight to the driver: a 100,000-line log has as
    many epochs, and SQLAlchemy's per-row parameter processing would cost more than
    SQLite's own insert."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_INSERT_EPOCHS, rows)
        return
    dicts = [dict(zip(EPOCH_COLUMNS, row)) for row in rows]
    for row in dicts:
        row["extra"] = json.loads(row["extra"])
    conn.execute(insert(EpochMetric.__table__), dicts)


_INSERT_PARAMS = "INSERT INTO params (run_id, name, value, type, position) VALUES (?, ?, ?, ?, ?)"


def _insert_params(session: Session, rows: list[dict[str, Any]]) -> None:
    """Parameter rows straight to the driver on SQLite (a 2,000-run notebook has 20,000 of them),
    their JSON values encoded as SQLAlchemy's JSON type encodes them."""
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(Param.__table__), rows)
        return
    session.connection().exec_driver_sql(
        _INSERT_PARAMS,
        [(r["run_id"], r["name"], json_text(r["value"]), r["type"], r["position"]) for r in rows],
    )


# The user's texts of a run (`note`): with its tags, what a merge carries as an edit.
EDITABLE_TEXTS = ("title", "hypothesis", "description", "analysis")


def _edits(run: Any, tags: Iterable[str]) -> tuple:
    """What `merge` carries of a run's (or record's) edits (`carry_edits`): its texts, notebook section and tags."""
    return (*(getattr(run, name) for name in EDITABLE_TEXTS), run.section_text, tuple(sorted(set(tags))))


def _later(when, than) -> bool:
    """`when` is after `than` (no time: never edited, before everything)."""
    return when is not None and (than is None or when > than)


def _add_series(session: Session, record: SeriesRecord) -> Series:
    """A new series row for `record` (its UUID, or a new one), with its id."""
    row = new_series_row(record)
    session.add(row)
    session.flush()
    return row
