"""Nothing lost, and no training held up, when the database is away, locked or slow.

A `train` keeps training whatever its database does: a PostgreSQL server that
cannot be reached (a Colab session into the team's server), one that hangs, or
an SQLite file another writer keeps locked. Every record goes to the database
through one courier thread, and the training waits for it at most WAIT_S; what
the database did not take by then (the run's beginning, each epoch, the run's
end) goes to a small SQLite queue beside the data (`./speedrun-spool.db`, or
`$SPEEDRUN_SPOOL`), in order. What waits is sent before the next record whenever
the database answers again, or by `speedrun sync`. Meanwhile `list` and `show`
say what is waiting. A server that cannot be reached at all at the start: the
whole run goes to the queue (`OfflineRecorder`), and `sync` records it.

The queue holds the recorder's calls (begin, epoch rows, the finish) as JSON,
keyed by the database (a server's URL without password, an SQLite file's full
path) and the run's UUID; it is not a speedrun database and is never migrated: a
row leaves it when the database took it.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid as uuidlib
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from speedrun.errors import DatabaseError, DatabaseUnreachable, RunNotFound
from speedrun.tracking.db import sqlite_file
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.text import counted

DEFAULT_PATH = "speedrun-spool.db"
RETRY_AFTER_S = 30.0  # after a failure, records go straight to the spool for this long
WAIT_S = 5.0  # a training waits this long at most for the database to take a record

_metadata = MetaData()
_pending = Table(
    "pending",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("server", Text, nullable=False),
    Column("run_uuid", String(36), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # "begin" (a run that began offline) | "epoch" | "finish"
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
        what = counted(self.epochs, "epoch") if self.epochs else "its end"
        return f"{self.status or status} ({what} waiting to sync)"


class Spool:
    """The local queue file. Created on the first record that needs it; removed when emptied, but
    only when no other process has it open: every process that uses the file holds a shared
    `flock` on it, and the one that removes it an exclusive one (a training still spooling into
    the file keeps it, whatever a `sync` beside it sends)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._engine = None
        self._fd: int | None = None  # the open file our shared lock is on

    @classmethod
    def default(cls) -> Spool:
        return cls(os.environ.get("SPEEDRUN_SPOOL") or DEFAULT_PATH)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _db(self):
        if self._engine is None:
            with self._errors():
                self._hold()
                self._engine = create_engine(f"sqlite:///{self.path.resolve()}", connect_args={"timeout": 60})
                _metadata.create_all(self._engine)
                _mask_servers(self._engine)
        return self._engine

    def _hold(self) -> None:
        """Open the file (created when missing) under a shared lock; a file removed while we waited
        for the lock is opened again, so what we write never goes into a removed file."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                if not self.path.exists():
                    raise
                fd = os.open(self.path, os.O_RDONLY)  # a read-only file or folder: still readable
            if not _flock(fd, shared=True):
                self._fd = fd  # a filesystem without flock: held without a lock, never removed
                return
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)

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
            elif row.kind == "finish":
                known = Waiting(known.run_id, known.epochs, json.loads(row.payload)["status"])
            found[row.run_uuid] = known
        return found

    def remove_if_empty(self) -> None:
        """Remove the file when nothing waits in it and no other process has it open."""
        if not self.path.exists():
            return
        self._db()
        try:
            # A failed upgrade may have dropped our shared lock too (flock converts in two steps):
            # we close either way, and the next use opens the file afresh.
            if not _flock(self._fd, shared=False, wait=False):
                return  # another process uses it (or no flock here): it stays
            with self._errors(), self._db().connect() as conn:
                left = conn.execute(select(_pending.c.seq).limit(1)).first()
            if left is None:
                self.path.unlink(missing_ok=True)  # under the exclusive lock: nobody else has it open
        finally:
            self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._fd is not None:
            os.close(self._fd)  # and with it our lock
            self._fd = None

    def _errors(self):
        return _SpoolErrors(self.path)


def _mask_servers(engine) -> None:
    """Servers recorded by an older speedrun with a password in the URL's query string: keyed
    by their masked name now (`display_name`), so the password leaves the file and what
    waits is still found."""
    from sqlalchemy import update

    from speedrun.tracking.db import display_name

    with engine.begin() as conn:
        for server in conn.execute(select(_pending.c.server).distinct()).scalars().all():
            if display_name(server) != server:
                conn.execute(update(_pending).where(_pending.c.server == server).values(server=display_name(server)))


def _flock(fd: int, *, shared: bool, wait: bool = True) -> bool:
    """Take an flock on `fd`; False when it is held elsewhere (not waiting) or flock is unsupported."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the spool is then never removed
        return False
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, mode)
    except OSError:
        return False
    return True


class _SpoolErrors:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, (SQLAlchemyError, OSError)):
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"cannot use the spool {self.path}: {reason}") from None
        return False


def replay(store, row, *, run_id: int | None = None) -> int | None:
    """Send one spooled record to the server (raises DatabaseUnreachable while it is away).

    Another process than the training (`speedrun sync`) finds the run by its UUID."""
    payload = json.loads(row.payload)
    if row.kind == "begin":
        return begin_again(store, row.run_uuid, payload)
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
    """What `sync` did: epochs sent, run ends sent, the orphans it left in the spool, runs begun."""

    epochs: int
    finished: int
    orphans: tuple[Orphan, ...] = ()
    begun: int = 0  # runs that began offline, recorded now


def begin_again(store, run_uuid: str, payload: dict[str, Any]) -> int:
    """The server's number for a run that began offline: recorded now (once: a begin sent twice
    finds the run by its UUID). Its pid is kept only when this is the process that trains it."""
    from speedrun.tracking.exchange import record_from_json

    known = store.runs_by_uuid([run_uuid]).get(run_uuid)
    if known is not None:
        return known
    record = record_from_json(payload)
    if record.pid != os.getpid():
        record.pid = None  # a pid of this machine's process table would name another process
    return store.begin_run(record)


def sync(store, spool: Spool) -> Synced:
    """Send everything waiting for `store`'s server, in order.

    A run the server no longer holds keeps its records in the spool and is
    reported; every other run's are sent (one orphan blocks nobody)."""
    epochs = finished = begun = 0
    rows = spool.pending(key_of(store))
    known = store.runs_by_uuid({row.run_uuid for row in rows}) if rows else {}
    orphans: dict[str, Orphan] = {}
    for row in rows:
        if row.kind == "begin":
            known[row.run_uuid] = begin_again(store, row.run_uuid, json.loads(row.payload))
            spool.done(row.seq)
            begun += 1
            continue
        if row.run_uuid not in known:
            seen = orphans.get(row.run_uuid)
            orphans[row.run_uuid] = Orphan(row.run_id, row.run_uuid, (seen.records if seen else 0) + 1)
            continue
        replay(store, row, run_id=known[row.run_uuid])
        spool.done(row.seq)
        epochs += row.kind == "epoch"
        finished += row.kind == "finish"
    spool.remove_if_empty()
    return Synced(epochs, finished, tuple(orphans.values()), begun)


class Courier:
    """One thread that carries the recorder's calls to the database, so that the training waits
    for none longer than it chooses to: a locked file or a stopped server (where no timeout of the
    driver fires) holds up the courier, not the training. A daemon: a call stuck at the exit is dropped
    (what it carried is in the spool)."""

    def __init__(self):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._count = threading.Lock()
        self._under_way = 0  # calls sent and not yet done
        self._thread = threading.Thread(target=self._serve, name="speedrun-courier", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a call is under way (or queued): another one would wait behind it."""
        return self._under_way > 0

    def send(self, call: Callable[[], Any]) -> Future:
        done: Future = Future()
        with self._count:
            self._under_way += 1
        self._jobs.put((call, done))
        return done

    def _serve(self) -> None:
        while True:
            call, done = self._jobs.get()
            try:
                result = call()
            except BaseException as exc:  # handed to whoever waits; the courier goes on
                outcome = (done.set_exception, exc)
            else:
                outcome = (done.set_result, result)
            with self._count:
                self._under_way -= 1
            outcome[0](outcome[1])


class SpooledRecorder:
    """The store's recording methods, made to survive a database that is away, locked or slow.

    Every record, the run's beginning included, goes through the `Courier` and the
    training waits for it at most `wait_s`: what the database did not take by then
    waits in the spool, in order, and is sent before the next record once it answers
    again. A run whose beginning waits has a provisional (negative) number here
    until the database gives it its own.
    A heartbeat never waits at all (it is sent from inside the timed span): it is
    handed to the courier when the courier is free, and skipped when it is not.
    Sending a record twice (a call that timed out here but landed later) writes the
    same values again. Every other attribute is the store's own.
    """

    def __init__(self, store, spool: Spool, *, notify: Callable[[str], None] | None = None,
                 retry_after_s: float = RETRY_AFTER_S, wait_s: float = WAIT_S):
        self.store, self.spool, self.notify = store, spool, notify
        self.retry_after_s, self.wait_s = retry_after_s, wait_s
        self.key = key_of(store)
        self._uuids: dict[int, str] = {}
        self._quiet_until = 0.0
        self._courier = Courier()
        self._stuck: Future | None = None  # a record's call that did not return in time
        self._numbers: dict[int, int] = {}  # provisional run id -> the database's, once it took the run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    # ---------------------------------------------------------------- recording
    def begin_run(self, record: RunRecord) -> int:
        from speedrun.tracking.exchange import record_to_json

        record.uuid = record.uuid or str(uuidlib.uuid4())  # the name the spool knows the run by
        if self._server_may_answer() and not self._is_stuck():
            sent = self._courier.send(lambda: self.store.begin_run(record))
            try:
                run_id = sent.result(timeout=self.wait_s)
                self._uuids[run_id] = record.uuid
                return run_id
            except FutureTimeout:
                self._stuck = sent
                self._went_away(f"{self.store.label} did not answer within {self.wait_s:g} s")
            except DatabaseUnreachable as exc:
                self._went_away(str(exc))
        run_id = -(sum(n < 0 for n in self._uuids) + 1)
        self._uuids[run_id] = record.uuid
        self.spool.add(self.key, record.uuid, run_id, "begin", record_to_json(record))
        return run_id

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        self._record(run_id, "epoch", asdict(epoch))

    def heartbeat(self, run_id: int) -> None:
        if not self._server_may_answer() or self._courier.busy:
            return
        uuid = self._uuid(run_id)

        def beat() -> None:
            self._send_waiting(run_id, uuid)
            if self._number(run_id) is not None:
                self.store.heartbeat(self._number(run_id))

        self._courier.send(beat).add_done_callback(self._note_failure)

    def finish_run(self, run_id: int, status: str, **details: Any) -> None:
        self._record(run_id, "finish", {"status": status, **details})
        left = self.spool.pending(self.key, self._uuid(run_id))
        if not self._courier.busy:  # let go of the spool (a `sync` may remove it once it is empty)
            self.spool.close() if left else self.spool.remove_if_empty()
        if left and self.notify:
            epochs = sum(row.kind == "epoch" for row in left)
            self.notify(f"{self._name(run_id)}: {status}; {epochs} epochs and its end are waiting to sync in "
                        f"{self.spool.path} ({self.store.label} cannot be reached); `speedrun sync` sends them.")

    def recorded(self, run_id: int) -> str:
        """The training's last word on the run, in the words `list` uses while records wait here."""
        left = self.spool.pending(self.key, self._uuid(run_id))
        if not self._courier.busy:
            self.spool.close()
        if not left:
            return f"{self._name(run_id)} recorded in {self.store.label}"
        if any(row.kind == "begin" for row in left):
            return (f"Run recorded in {self.spool.path}, waiting to sync: {self.store.label} did not take its "
                    f"beginning; `speedrun sync` records it there (and gives it its number)")
        epochs = sum(row.kind == "epoch" for row in left)
        ends = any(row.kind == "finish" for row in left)
        what = " and ".join(filter(None, [counted(epochs, "epoch") if epochs else "",
                                          "its end" if ends else ""]))
        return (f"{self._name(run_id)} recorded in {self.store.label}, but for {what}: waiting to sync in "
                f"{self.spool.path} (`speedrun sync` sends them)")

    # ---------------------------------------------------------------- helpers
    def _uuid(self, run_id: int) -> str:
        if run_id not in self._uuids:
            self._uuids[run_id] = self.store.get_run(run_id).uuid
        return self._uuids[run_id]

    def _number(self, run_id: int) -> int | None:
        """The database's number of a run (None: its beginning still waits in the spool)."""
        return run_id if run_id > 0 else self._numbers.get(run_id)

    def _name(self, run_id: int) -> str:
        number = self._number(run_id)
        return f"Run {number}" if number is not None else "The run"

    def _is_stuck(self) -> bool:
        return self._stuck is not None and not self._stuck.done()

    def _record(self, run_id: int, kind: str, payload: dict[str, Any]) -> None:
        uuid = self._uuid(run_id)
        if self._server_may_answer() and not self._is_stuck():
            row = _Row(uuid, run_id, kind, json.dumps(payload))

            def send() -> None:
                self._send_waiting(run_id, uuid)
                replay(self.store, row, run_id=self._number(run_id))

            sent = self._courier.send(send)  # behind a heartbeat under way, if one is
            try:
                sent.result(timeout=self.wait_s)
                return
            except FutureTimeout:
                self._stuck = sent  # records go to the spool until it returns
                self._went_away(f"{self.store.label} did not answer within {self.wait_s:g} s")
            except DatabaseUnreachable as exc:
                self._went_away(str(exc))
        self.spool.add(self.key, uuid, run_id, kind, payload)

    def _send_waiting(self, run_id: int, uuid: str) -> None:
        """Send what waits for this run, oldest first (on the courier, the one thread that sends)."""
        for row in self.spool.pending(self.key, uuid):
            number = replay(self.store, row, run_id=self._number(run_id))
            if row.kind == "begin":
                self._numbers[run_id] = number
            self.spool.done(row.seq)

    def _note_failure(self, done: Future) -> None:
        if isinstance(done.exception(), DatabaseUnreachable):
            self._went_away(str(done.exception()))

    def _server_may_answer(self) -> bool:
        return time.monotonic() >= self._quiet_until

    def _went_away(self, why: str) -> None:
        if self.notify and self._quiet_until == 0.0:
            self.notify(f"{self.store.label} cannot be used now ({why}); training goes on, and its records "
                        f"wait in {self.spool.path} until the database answers again.")
        self._quiet_until = time.monotonic() + self.retry_after_s


class OfflineRecorder:
    """A training that starts while its database server cannot be reached: the run, its epochs and
    its end all go to the spool, and `speedrun sync` records them (the run gets its number then).
    Nothing is sent meanwhile; the notice says so once."""

    def __init__(self, label: str, spool: Spool, *, notify: Callable[[str], None] | None = None):
        self.label, self.spool, self.notify = label, spool, notify
        self._uuids: dict[int, str] = {}  # provisional (negative) run ids

    def begin_run(self, record: RunRecord) -> int:
        from speedrun.tracking.exchange import record_to_json

        record.uuid = record.uuid or str(uuidlib.uuid4())
        run_id = -(len(self._uuids) + 1)
        self._uuids[run_id] = record.uuid
        self.spool.add(self.label, record.uuid, run_id, "begin", record_to_json(record))
        if self.notify and run_id == -1:
            self.notify(f"{self.label} cannot be reached: training goes on, recorded in {self.spool.path}; "
                        f"`speedrun sync` sends it when the server answers (--no-spool refuses to start instead).")
        return run_id

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        self.spool.add(self.label, self._uuids[run_id], run_id, "epoch", asdict(epoch))

    def heartbeat(self, run_id: int) -> None:
        pass  # nobody to tell

    def finish_run(self, run_id: int, status: str, **details: Any) -> None:
        self.spool.add(self.label, self._uuids[run_id], run_id, "finish", {"status": status, **details})
        self.spool.close()

    def recorded(self, run_id: int) -> str:
        return (f"Run recorded in {self.spool.path}, waiting to sync: {self.label} could not be reached at its "
                f"start; `speedrun sync` records it there (and gives it its number)")


def unreachable(db: str) -> bool:
    """Whether `db` names a database server that does not answer now: refused, timed out, no route.
    An SQLite file never is; a server that answers with an error (a wrong password, no such
    database) is not unreachable but wrong."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import InterfaceError, OperationalError

    from speedrun.tracking.db import make_engine, resolve_url

    url = resolve_url(db)
    if make_url(url).get_backend_name() == "sqlite":
        return False
    engine = make_engine(url, timeout_s=WAIT_S)
    try:
        with engine.connect():
            return False
    except (OperationalError, InterfaceError) as exc:
        return getattr(exc.orig, "sqlstate", None) is None
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def offline(db: str, *, notify: Callable[[str], None] | None = None) -> OfflineRecorder:
    """The recorder of a training whose database server cannot be reached at its start."""
    from speedrun.tracking.db import display_name

    return OfflineRecorder(display_name(db), Spool.default(), notify=notify)


@dataclass(frozen=True)
class _Row:
    run_uuid: str
    run_id: int
    kind: str
    payload: str


def key_of(store) -> str:
    """The name the spool files a database's records under: an SQLite file's full path (however it
    was typed), a server's URL without its password."""
    file = sqlite_file(store.url)
    return str(file) if file is not None else store.label


def spooled(store, *, notify: Callable[[str], None] | None = None) -> SpooledRecorder:
    """The recorder of a training into `store`: its own connections, each wait bounded by WAIT_S,
    and whatever the database does not take in time kept in the local spool (`Spool.default()`)."""
    return SpooledRecorder(store.with_timeout(WAIT_S), Spool.default(), notify=notify, retry_after_s=RETRY_AFTER_S,
                           wait_s=WAIT_S)
