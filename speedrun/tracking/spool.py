"""Nothing lost when the network drops: what a training could not send waits in a local file.

A `train` recording into a database server (a Colab session into the team's
PostgreSQL) keeps training when the server cannot be reached: each epoch, and
the end of the run, goes to a small SQLite queue beside the data
(`./speedrun-spool.db`, or `$SPEEDRUN_SPOOL`), in order. What waits is sent
before the next record whenever the server answers again, at the end of the
run, or by `speedrun sync`. Meanwhile `list` and `show` say what is waiting.

The queue holds the recorder's calls (epoch rows, the finish) as JSON, keyed
by the server (its URL without password) and the run's UUID; it is not a
speedrun database and is never migrated: a row leaves it when the server took it.
"""

from __future__ import annotations

import json
import os
import time
import uuid as uuidlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from speedrun.errors import DatabaseError, DatabaseUnreachable, RunNotFound
from speedrun.tracking.records import EpochRecord, RunRecord

DEFAULT_PATH = "speedrun-spool.db"
RETRY_AFTER_S = 30.0  # after a failure, records go straight to the spool for this long

_metadata = MetaData()
_pending = Table(
    "pending",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("server", Text, nullable=False),
    Column("run_uuid", String(36), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # "epoch" | "finish"
    Column("payload", Text, nullable=False),
    Column("queued_at", Integer, nullable=False),
)


@dataclass(frozen=True)
class Waiting:
    """What waits for one run: its epochs, and the status its finish will set (None: still running)."""

    run_id: int
    epochs: int
    status: str | None

    def describe(self, status: str) -> str:
        """'completed (3 epochs waiting to sync)' for a run that the server shows as `status`."""
        what = f"{self.epochs} epoch{'s' * (self.epochs != 1)}" if self.epochs else "its end"
        return f"{self.status or status} ({what} waiting to sync)"


class Spool:
    """The local queue file. Created on the first record that needs it; removed when emptied."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._engine = None

    @classmethod
    def default(cls) -> Spool:
        return cls(os.environ.get("SPEEDRUN_SPOOL") or DEFAULT_PATH)

    def _db(self):
        if self._engine is None:
            self._engine = create_engine(f"sqlite:///{self.path.resolve()}", connect_args={"timeout": 60})
            _metadata.create_all(self._engine)
        return self._engine

    def add(self, server: str, run_uuid: str, run_id: int, kind: str, payload: dict[str, Any]) -> None:
        with self._errors(), self._db().begin() as conn:
            conn.execute(insert(_pending).values(server=server, run_uuid=run_uuid, run_id=run_id, kind=kind,
                                                 payload=json.dumps(payload), queued_at=int(time.time())))

    def pending(self, server: str, run_uuid: str | None = None) -> list[Any]:
        """What waits for `server` (and one run), oldest first."""
        if not self.path.exists():
            return []
        query = select(_pending).where(_pending.c.server == server).order_by(_pending.c.seq)
        if run_uuid is not None:
            query = query.where(_pending.c.run_uuid == run_uuid)
        with self._errors(), self._db().connect() as conn:
            return list(conn.execute(query))

    def done(self, seq: int) -> None:
        with self._errors(), self._db().begin() as conn:
            conn.execute(delete(_pending).where(_pending.c.seq == seq))

    def waiting(self, server: str) -> dict[str, Waiting]:
        """By run UUID: what waits for `server`."""
        found: dict[str, Waiting] = {}
        for row in self.pending(server):
            known = found.get(row.run_uuid, Waiting(row.run_id, 0, None))
            if row.kind == "epoch":
                known = Waiting(known.run_id, known.epochs + 1, known.status)
            else:
                known = Waiting(known.run_id, known.epochs, json.loads(row.payload)["status"])
            found[row.run_uuid] = known
        return found

    def remove_if_empty(self) -> None:
        if not self.path.exists():
            return
        with self._errors(), self._db().connect() as conn:
            left = conn.execute(select(_pending.c.seq).limit(1)).first()
        if left is None:
            self.close()
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _errors(self):
        return _SpoolErrors(self.path)


class _SpoolErrors:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, SQLAlchemyError):
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"cannot use the spool {self.path}: {reason}") from None
        return False


def replay(store, row, *, run_id: int | None = None) -> None:
    """Send one spooled record to the server (raises DatabaseUnreachable while it is away).

    Another process than the training (`speedrun sync`) finds the run by its UUID."""
    payload = json.loads(row.payload)
    run_id = run_id or store.runs_by_uuid([row.run_uuid]).get(row.run_uuid)
    if run_id is None:
        raise RunNotFound(f"run {row.run_id} ({row.run_uuid}) is no longer in {store.label}; its spooled records "
                          f"stay in the spool")
    if row.kind == "epoch":
        store.add_epoch(run_id, EpochRecord(**payload))
    else:
        store.finish_run(run_id, **payload)


@dataclass(frozen=True)
class Orphan:
    """Records waiting for a run that the server no longer holds (deleted there since)."""

    run_id: int
    run_uuid: str
    records: int

    def describe(self, label: str) -> str:
        return (f"run {self.run_id} ({self.run_uuid}) is no longer in {label}: its {self.records} spooled "
                f"record{'s' * (self.records != 1)} stay in the spool")


@dataclass(frozen=True)
class Synced:
    """What `sync` did: epochs sent, run ends sent, and the orphans it left in the spool."""

    epochs: int
    finished: int
    orphans: tuple[Orphan, ...] = ()


def sync(store, spool: Spool) -> Synced:
    """Send everything waiting for `store`'s server, in order.

    A run the server no longer holds keeps its records in the spool and is
    reported; every other run's are sent (one orphan blocks nobody)."""
    epochs = finished = 0
    rows = spool.pending(store.label)
    known = store.runs_by_uuid({row.run_uuid for row in rows}) if rows else {}
    orphans: dict[str, Orphan] = {}
    for row in rows:
        if row.run_uuid not in known:
            seen = orphans.get(row.run_uuid)
            orphans[row.run_uuid] = Orphan(row.run_id, row.run_uuid, (seen.records if seen else 0) + 1)
            continue
        replay(store, row, run_id=known[row.run_uuid])
        spool.done(row.seq)
        epochs += row.kind == "epoch"
        finished += row.kind == "finish"
    spool.remove_if_empty()
    return Synced(epochs, finished, tuple(orphans.values()))


class SpooledRecorder:
    """The store's recording methods, made to survive a server that goes away mid-run.

    `begin_run` needs the server (a run that cannot start is better refused at
    once); after that, what the server does not take waits in the spool, in
    order, and is sent before the next record once the server answers again.
    Every other attribute is the store's own.
    """

    def __init__(self, store, spool: Spool, *, notify: Callable[[str], None] | None = None,
                 retry_after_s: float = RETRY_AFTER_S):
        self.store, self.spool, self.notify = store, spool, notify
        self.retry_after_s = retry_after_s
        self._uuids: dict[int, str] = {}
        self._quiet_until = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    # ---------------------------------------------------------------- recording
    def begin_run(self, record: RunRecord) -> int:
        record.uuid = record.uuid or str(uuidlib.uuid4())  # the name the spool knows the run by
        run_id = self.store.begin_run(record)
        self._uuids[run_id] = record.uuid
        return run_id

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        self._record(run_id, "epoch", asdict(epoch))

    def heartbeat(self, run_id: int) -> None:
        if self._server_may_answer() and self._send_waiting(run_id):
            try:
                self.store.heartbeat(run_id)
            except DatabaseUnreachable:
                self._went_away()

    def finish_run(self, run_id: int, status: str, **details: Any) -> None:
        self._record(run_id, "finish", {"status": status, **details})
        left = self.spool.pending(self.store.label, self._uuid(run_id))
        if left and self.notify:
            epochs = sum(row.kind == "epoch" for row in left)
            self.notify(f"Run {run_id}: {status}; {epochs} epochs and its end are waiting to sync in "
                        f"{self.spool.path} ({self.store.label} cannot be reached); `speedrun sync` sends them.")

    # ---------------------------------------------------------------- helpers
    def _uuid(self, run_id: int) -> str:
        if run_id not in self._uuids:
            self._uuids[run_id] = self.store.get_run(run_id).uuid
        return self._uuids[run_id]

    def _record(self, run_id: int, kind: str, payload: dict[str, Any]) -> None:
        if self._server_may_answer() and self._send_waiting(run_id):
            row = _Row(self._uuid(run_id), run_id, kind, json.dumps(payload))
            try:
                replay(self.store, row, run_id=run_id)
                return
            except DatabaseUnreachable:
                self._went_away()
        self.spool.add(self.store.label, self._uuid(run_id), run_id, kind, payload)

    def _send_waiting(self, run_id: int) -> bool:
        """Send what waits for this run, oldest first; False when the server went away meanwhile."""
        try:
            for row in self.spool.pending(self.store.label, self._uuid(run_id)):
                replay(self.store, row, run_id=run_id)
                self.spool.done(row.seq)
        except DatabaseUnreachable:
            self._went_away()
            return False
        return True

    def _server_may_answer(self) -> bool:
        return time.monotonic() >= self._quiet_until

    def _went_away(self) -> None:
        if self.notify and self._quiet_until == 0.0:
            self.notify(f"{self.store.label} cannot be reached; training goes on, and its records wait in "
                        f"{self.spool.path} until the server is back.")
        self._quiet_until = time.monotonic() + self.retry_after_s


@dataclass(frozen=True)
class _Row:
    run_uuid: str
    run_id: int
    kind: str
    payload: str


def spooled(store, *, notify: Callable[[str], None] | None = None):
    """The store to record a training into: spooled when it is a server, as it is when it is a local file."""
    if store.engine.dialect.name == "sqlite":
        return store
    return SpooledRecorder(store, Spool.default(), notify=notify)
