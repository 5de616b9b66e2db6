"""A database that is away, locked or slow (issues 24 and 27): nothing lost, the training never waits.

What a training could not write waits in the local spool (tracking/spool.py) and
`speedrun sync` sends it; these tests cover the spool on both backends, an
orphaned record, a locked or slow database, and the trainer's clock.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.spool import Spool, spooled
from speedrun.tracking.store import Store


def invoke(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), *args])


def epoch(n: int) -> EpochRecord:
    return EpochRecord(n, train_loss=1.0 / n, val_acc=50.0 + n, duration_s=10.0, elapsed_s=10.0 * n)


def test_an_orphaned_spool_record_does_not_block_the_other_runs(db_path, tmp_path, monkeypatch):
    """D6: run 1 was deleted on the server while its epoch waited; run 2's records still go."""
    monkeypatch.setenv("SPEEDRUN_SPOOL", str(tmp_path / "spool.db"))
    store = Store.open(str(db_path))
    runs = [RunRecord(source="train", status="running", uuid=f"0000000{i}-0000-4000-8000-000000000000")
            for i in (1, 2)]
    ids = [store.begin_run(r) for r in runs]
    spool = Spool.default()
    for run, run_id in zip(runs, ids):
        spool.add(store.label, run.uuid, run_id, "epoch", epoch(1).__dict__)
        spool.add(store.label, run.uuid, run_id, "finish", {"status": "completed", "train_time_s": 10.0})
    spool.close()
    store.delete_run(ids[0])
    store.close()

    result = invoke(db_path, "sync")
    assert result.exit_code == 0, result.output
    assert "Sent 1 epochs and 1 run ends" in result.stdout
    assert f"Warning: run {ids[0]} ({runs[0].uuid}) is no longer in" in result.stderr
    run = Store.open(str(db_path)).get_run(ids[1])
    assert (run.status, [e.epoch for e in run.epochs]) == ("completed", [1])
    again = invoke(db_path, "sync")  # the orphan stays in the spool, reported again; nothing else is sent
    assert "Sent" not in again.stdout and "no longer in" in again.stderr
    assert json.loads(invoke(db_path, "list", "--json").stdout)[0]["status"] == "completed"


# --------------------------------------------------------------------------- a locked, slow or hung database


def fake_training(recorder, *, epochs: int = 3, batches: int = 3, between=None):
    """A run through `recording()` with fake epochs (no model): `between(epoch)` runs before each epoch."""
    import torch

    from speedrun.training.config import TrainConfig
    from speedrun.training.recording import Reporter, Setup, recording

    setup = Setup(torch.device("cpu"), param_count=1, data_load_s=0.0, started=time.perf_counter())
    lines: list[str] = []
    reporter = Reporter(Console(file=io.StringIO()), progress=False)
    reporter.line = lines.append
    record = RunRecord(source="train", status="running", pid=os.getpid())
    with recording(recorder, TrainConfig(device="cpu", seed=1, epochs=epochs), setup, record=record,
                   reporter=reporter) as run:
        for n in range(1, epochs + 1):
            if between:
                between(n)
            with run.training(n, epochs, batches) as after_batch:
                for _ in range(batches):
                    time.sleep(0.02)
                    after_batch(8)
            run.epoch(n, epochs, train_loss=1.0, train_acc=10.0, val_loss=1.0, val_acc=50.0 + n, lr=0.1, images=24)
    return run, lines


def stored_run(db_path, recorder, run):
    """The run as the database holds it, found by its UUID (on a busy machine even its beginning may
    have waited in the spool, under a provisional number)."""
    store = Store.open(str(db_path))
    number = store.runs_by_uuid([recorder._uuid(run.run_id)])[recorder._uuid(run.run_id)]
    return store.get_run(number)


@pytest.fixture
def quick(monkeypatch, tmp_path):
    """Short waits, no CPU peak probe, a spool of the test's own."""
    from speedrun.tracking import spool
    from speedrun.training import recording

    monkeypatch.setattr(spool, "WAIT_S", 1.0)
    monkeypatch.setattr(spool, "RETRY_AFTER_S", 0.0)
    monkeypatch.setattr(recording, "device_peak", lambda device, threads: None)
    monkeypatch.setenv("SPEEDRUN_SPOOL", str(tmp_path / "spool.db"))


@contextlib.contextmanager
def write_lock_held(db, seconds: float):
    """Another connection holds the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: LOCK
    TABLE runs) for `seconds`, from now."""
    if getattr(db, "backend", "sqlite") == "postgresql":
        import psycopg

        conn = psycopg.connect(str(db).replace("+psycopg", ""))
        conn.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    else:
        conn = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(seconds, conn.rollback)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        conn.close()


def test_a_database_locked_by_another_writer_sends_the_epochs_to_the_spool(db_path, quick):
    """D7: another connection holds the write lock for 3 s during epoch 2; the training does not wait
    for it (nor die), and every epoch arrives."""
    notes: list[str] = []
    recorder = spooled(Store.open(str(db_path)), notify=notes.append)
    waits: list[float] = []
    holding = contextlib.ExitStack()

    def between(n):
        if n == 2:
            holding.enter_context(write_lock_held(db_path, 3.0))
        if n == 3:
            holding.close()  # the other writer commits: the lock is free again

    original = recorder.add_epoch

    def timed_add_epoch(run_id, epoch):
        start = time.monotonic()
        original(run_id, epoch)
        waits.append(time.monotonic() - start)

    recorder.add_epoch = timed_add_epoch
    run, _ = fake_training(recorder, between=between)
    assert run.result.status == "completed"
    assert waits[1] < 2.0, waits  # epoch 2 did not wait for the lock
    assert any("training goes on" in n for n in notes), notes
    stored = stored_run(db_path, recorder, run)
    assert ([e.epoch for e in stored.epochs], stored.status) == ([1, 2, 3], "completed")
    assert not Path(os.environ["SPEEDRUN_SPOOL"]).exists()  # everything was sent: the spool is gone


def test_database_time_is_never_training_time(db_path, quick, monkeypatch):
    """D8: heartbeats that take 0.3 s each (a slow server) are not in the timed span."""
    from speedrun.training import recording

    monkeypatch.setattr(recording, "HEARTBEAT_S", 0.0)
    beats: list[int] = []

    def slow_heartbeat(self, run_id):
        time.sleep(0.3)
        beats.append(run_id)

    monkeypatch.setattr(Store, "heartbeat", slow_heartbeat)
    recorder = spooled(Store.open(str(db_path)))
    run, _ = fake_training(recorder, epochs=2, batches=4)
    assert run.train_time_s < 0.9, run.train_time_s  # 8 batches of 0.02 s; each beat would add 0.3 s
    assert beats  # heartbeats were sent meanwhile
    stored = stored_run(db_path, recorder, run)
    assert ([e.epoch for e in stored.epochs], stored.status) == ([1, 2], "completed")


def test_a_hung_server_does_not_stall_the_training(db_path, quick, monkeypatch):
    """D8: epoch 2's write never returns while the server is stopped (no driver timeout fires); the
    training goes on, and once the server answers again everything arrives, in order."""
    hung = threading.Event()
    original = Store.add_epoch

    def add_epoch(self, run_id, epoch):
        if epoch.epoch == 2 and not hung.is_set():
            hung.wait(30)
        return original(self, run_id, epoch)

    monkeypatch.setattr(Store, "add_epoch", add_epoch)
    started = time.monotonic()
    notes: list[str] = []
    recorder = spooled(Store.open(str(db_path)), notify=notes.append)
    run, _ = fake_training(recorder, between=lambda n: n == 3 or None, epochs=3)
    assert time.monotonic() - started < 10
    assert any("did not answer within 1 s" in n for n in notes), notes
    hung.set()  # the server answers again
    synced = invoke(db_path, "sync")
    assert synced.exit_code == 0, synced.output
    stored = stored_run(db_path, recorder, run)
    assert ([e.epoch for e in stored.epochs], stored.status) == ([1, 2, 3], "completed")


def test_the_training_and_list_tell_one_story_until_the_sync(db_path, quick, monkeypatch):
    """Issue 27: while its last epochs wait, the run's final line says so, as `list` does; not
    'Run 1 recorded in …' next to 'completed (2 epochs waiting to sync)'."""
    from speedrun.errors import DatabaseUnreachable
    from speedrun.training.recording import recorded_line

    away = threading.Event()
    for name in ("add_epoch", "finish_run", "heartbeat"):
        original = getattr(Store, name)

        def failing(self, *args, _original=original, **kwargs):
            if away.is_set():
                raise DatabaseUnreachable("cannot write to database: connection refused")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, failing)
    recorder = spooled(Store.open(str(db_path)))
    run, _ = fake_training(recorder, between=lambda n: n == 2 and away.set())
    line = recorded_line(recorder, run.run_id)
    number = stored_run(db_path, recorder, run).id
    assert line.startswith(f"Run {number} recorded in ") and "but for 2 epochs and its end: waiting to sync" in line
    away.clear()
    assert "completed (2 epochs waiting to sync)" in invoke(db_path, "list").stdout
    assert "Sent 2 epochs and 1 run ends" in invoke(db_path, "sync").stdout
    assert recorded_line(recorder, run.run_id) == f"Run {number} recorded in {recorder.label}"


# --------------------------------------------------------------------------- issue 27: an offline start


@pytest.fixture
def server_not_yet_started(pg_server):
    """A PostgreSQL server that is down when the training starts (its port closed), started later."""
    from tests.pgserver import PostgresServer

    server = PostgresServer(pg_server.bindir)
    yield server
    server.remove()


def test_a_training_started_while_the_server_is_down_is_recorded_by_sync(server_not_yet_started, tmp_path,
                                                                          monkeypatch, tiny_nets):
    from speedrun.training.data import write_synthetic_cifar10

    monkeypatch.chdir(tmp_path)  # the spool is ./speedrun-spool.db
    data = tmp_path / "cifar"
    write_synthetic_cifar10(data, n_train=48, n_test=16)
    url = server_not_yet_started.url("postgres")
    train = ("train", "--model", "resnet9", "--bs", "16", "--epochs", "2", "--device", "cpu", "--no-amp",
             "--seed", "1", "--data-dir", str(data), "--title", "offline")
    refused = invoke(url, *train, "--no-spool")
    assert refused.exit_code == 1 and refused.stderr.count("Error:") == 1, refused.output
    assert not (tmp_path / "speedrun-spool.db").exists()

    result = invoke(url, *train)
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stderr.splitlines() if "cannot be reached" in line]
    assert len(notices) == 1 and "speedrun-spool.db" in notices[0] and "--no-spool" in notices[0], result.stderr
    assert "waiting to sync" in result.stdout.splitlines()[-1]
    assert "Error" not in result.output

    server_not_yet_started.start()
    synced = invoke(url, "sync")
    assert synced.exit_code == 0, synced.output
    assert "Recorded 1 run that began offline" in synced.stdout and "Sent 2 epochs and 1 run ends" in synced.stdout
    run = Store.open(url).get_run(1)
    assert (run.title, run.status, [e.epoch for e in run.epochs]) == ("offline", "completed", [1, 2])
    assert run.param_dict["batch_size"] == 16 and run.train_time_s > 0
    assert "Nothing waits" in invoke(url, "sync").stdout
    assert not (tmp_path / "speedrun-spool.db").exists()


def test_a_database_locked_when_the_run_begins_takes_the_run_once_it_is_free(db_path, quick):
    """D7 at the start: the lock is held for 2 s as the run begins; the training starts at once, and
    its beginning, epochs and end arrive once the lock is free (the run gets its number then)."""
    from speedrun.training.recording import recorded_line

    notes: list[str] = []
    recorder = spooled(Store.open(str(db_path)), notify=notes.append)
    started = time.monotonic()
    with write_lock_held(db_path, 2.0):
        run, lines = fake_training(recorder, between=lambda n: n == 2 and time.sleep(2.5))
    assert run.run_id < 0  # provisional: the database had not taken the run when it began
    assert time.monotonic() - started < 9
    assert any("training goes on" in n for n in notes), notes
    stored = Store.open(str(db_path)).list_runs()
    assert len(stored) == 1 and stored[0].uuid == recorder._uuid(run.run_id)
    full = Store.open(str(db_path)).get_run(stored[0].id)
    assert ([e.epoch for e in full.epochs], full.status) == ([1, 2, 3], "completed")
    assert recorded_line(recorder, run.run_id) == f"Run {stored[0].id} recorded in {recorder.label}"
