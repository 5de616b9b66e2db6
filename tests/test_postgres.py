"""PostgreSQL as a team store (issue 15): what only a server can show.

The store, import, report, compare, stats, exchange, migration and concurrency
tests run on both backends already (conftest.BOTH_BACKENDS); these cover the
rest: the same notebook reported byte for byte on both, runs moving both ways,
a server that goes away mid-training, passwords, and a missing driver.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.spool import Spool, SpooledRecorder, Synced, sync
from speedrun.tracking.store import Store
from tests.conftest import SEED_NOTEBOOK
from tests.helpers import add_run
from tests.test_hostile_input import one_error
from tests.test_store_cli import make_record


def invoke(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), *args])


def without_uuids(text: str) -> str:

    return re.sub(r"uuid=[0-9a-f-]{36}", "uuid=…", text)


def test_a_notebook_reports_byte_for_byte_the_same_on_both_backends(pg_url, tmp_path):
    lite = tmp_path / "lite.db"
    for db in (lite, pg_url):
        result = invoke(db, "import-md", str(SEED_NOTEBOOK))
        assert result.exit_code == 0, result.output
    for args in (("report",), ("report", "--format", "html"), ("compare", "15", "18", "--json"),
                 ("compare", "15", "16", "--format", "md"), ("stats", "15", "16", "--json")):
        on_sqlite, on_postgres = invoke(lite, *args), invoke(pg_url, *args)
        assert on_sqlite.exit_code == on_postgres.exit_code == 0, (args, on_postgres.output)
        # Each database gives its runs their own identity (the report's computed markers carry it).
        assert without_uuids(on_postgres.stdout) == without_uuids(on_sqlite.stdout), args

    def listed(db):
        return [{k: v for k, v in r.items() if k != "created_at"} for r in json.loads(invoke(db, "list", "--json").stdout)]

    assert listed(pg_url) == listed(lite)


def test_runs_move_both_ways_once(pg_url, tmp_path):
    laptop = tmp_path / "laptop.db"
    store = Store.open(str(laptop))
    for i in range(3):
        add_run(store, make_record(title=f"laptop {i}"))
    store.close()
    assert "Merged 3 runs" in invoke(pg_url, "merge", str(laptop)).stdout
    assert "Merged 0 runs" in invoke(pg_url, "merge", str(laptop)).stdout  # a history goes up once

    add_run(Store.open(pg_url), make_record(title="from colab"))
    export = tmp_path / "server.json"
    assert invoke(pg_url, "export", "-o", str(export)).exit_code == 0
    assert "Merged 1 run" in invoke(laptop, "merge", str(export)).stdout  # only the run the laptop lacks
    assert "Merged 0 runs" in invoke(laptop, "merge", str(export)).stdout

    def shown(db, run):
        data = json.loads(invoke(db, "show", str(run), "--json").stdout)
        return {k: v for k, v in data.items() if k != "id"}

    for run in (1, 2, 3, 4):
        assert shown(pg_url, run) == shown(laptop, run)
    other = tmp_path / "other.db"  # straight from the server's URL, no file in between
    assert "Merged 4 runs" in invoke(other, "merge", pg_url).stdout
    assert "Merged 0 runs" in invoke(other, "merge", pg_url).stdout


def test_passwords_never_appear(pg_server, pg_url):
    with_password = pg_url.replace("postgres@", "postgres:hunter2-secret@")
    assert invoke(with_password, "import-md", str(SEED_NOTEBOOK)).exit_code == 0  # trust auth ignores it
    for args in (("show", "99"), ("note", "99", "--title", "x"), ("db", "current"), ("list", "--json")):
        result = invoke(with_password, *args)
        assert "hunter2-secret" not in result.output, args
    missing = with_password.rsplit("/", 1)[0] + "/no_such_database"
    error = one_error(invoke(missing, "list"), containing="no_such_database")
    assert "hunter2-secret" not in error and "***" in error


def test_a_postgresql_url_without_psycopg_is_one_clear_error(pg_url, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "psycopg", None)  # as if `pip install speedrun` without the extra
        one_error(invoke(pg_url, "list"), containing="pip install 'speedrun[postgres]'")


# --------------------------------------------------------------------------- the network drops


@pytest.fixture
def own_server(pg_server):
    """A server of this test's own, which the test may stop and start again."""
    from tests.pgserver import PostgresServer

    server = PostgresServer(pg_server.bindir).start()
    yield server
    server.remove()


def epoch(n: int) -> EpochRecord:
    return EpochRecord(n, train_loss=1.0 / n, val_acc=50.0 + n, duration_s=10.0, elapsed_s=10.0 * n)


def test_a_training_keeps_recording_while_the_server_is_down(own_server, tmp_path, monkeypatch):
    url = own_server.create_database()
    monkeypatch.setenv("SPEEDRUN_SPOOL", str(tmp_path / "spool.db"))
    notes: list[str] = []
    recorder = SpooledRecorder(Store.open(url), Spool.default(), notify=notes.append, retry_after_s=0.0)
    run_id = recorder.begin_run(RunRecord(source="train", status="running", title="colab", pid=os.getpid()))
    recorder.add_epoch(run_id, epoch(1))
    recorder.add_epoch(run_id, epoch(2))

    own_server.stop()  # the network drops
    for n in (3, 4, 5):
        recorder.add_epoch(run_id, epoch(n))
        recorder.heartbeat(run_id)
    recorder.finish_run(run_id, "completed", train_time_s=50.0)
    assert any("cannot be reached" in n for n in notes) and any("waiting to sync" in n for n in notes)

    own_server.start()  # back: `list` on this machine says what is still on its way
    listed = invoke(url, "list")
    assert "completed (3 epochs waiting to sync)" in listed.stdout, listed.output
    assert json.loads(invoke(url, "show", str(run_id), "--json").stdout)["waiting_to_sync"] == {
        "epochs": 3, "status": "completed"}
    synced = invoke(url, "sync")
    assert "Sent 3 epochs and 1 run ends" in synced.stdout, synced.output
    run = Store.open(url).get_run(run_id)
    assert [e.epoch for e in run.epochs] == [1, 2, 3, 4, 5]
    assert (run.status, run.train_time_s, run.final_val_acc) == ("completed", 50.0, 55.0)
    assert not (tmp_path / "spool.db").exists()  # emptied, removed
    assert "Nothing waits" in invoke(url, "sync").stdout


def test_waiting_records_go_first_when_the_server_is_back_mid_run(own_server, tmp_path):
    url = own_server.create_database()
    spool = Spool(tmp_path / "spool.db")
    recorder = SpooledRecorder(Store.open(url), spool, retry_after_s=0.0)
    run_id = recorder.begin_run(RunRecord(source="train", status="running"))
    recorder.add_epoch(run_id, epoch(1))
    own_server.stop()
    recorder.add_epoch(run_id, epoch(2))
    own_server.start()
    recorder.add_epoch(run_id, epoch(3))  # sends epoch 2 first, then 3
    recorder.finish_run(run_id, "completed")
    run = Store.open(url).get_run(run_id)
    assert ([e.epoch for e in run.epochs], run.status) == ([1, 2, 3], "completed")
    assert sync(Store.open(url), spool) == Synced(0, 0)


def test_train_command_survives_a_server_stopped_mid_run(own_server, tmp_path, monkeypatch, tiny_nets):
    """`speedrun train` into a server that is stopped after epoch 1 and started again after the run."""
    from speedrun.training import loop
    from speedrun.training.data import write_synthetic_cifar10

    data = tmp_path / "cifar"
    write_synthetic_cifar10(data, n_train=48, n_test=16)
    url = own_server.create_database()
    monkeypatch.setenv("SPEEDRUN_SPOOL", str(tmp_path / "spool.db"))
    monkeypatch.setattr("speedrun.tracking.spool.RETRY_AFTER_S", 0.0)
    original, calls = loop.evaluate, []

    def evaluate_then_drop(*args):
        calls.append(1)
        if len(calls) == 2:  # epoch 2 is being evaluated: the server goes away
            own_server.stop()
        return original(*args)

    monkeypatch.setattr(loop, "evaluate", evaluate_then_drop)
    result = invoke(url, "train", "--model", "resnet9", "--bs", "16", "--epochs", "3", "--device", "cpu",
                    "--no-amp", "--seed", "1", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert "waiting to sync" in result.stderr
    own_server.start()
    assert "Sent 2 epochs and 1 run ends" in invoke(url, "sync").stdout
    run = Store.open(url).get_run(1)
    assert ([e.epoch for e in run.epochs], run.status) == ([1, 2, 3], "completed")


@pytest.mark.usefixtures("pg_server")  # skipped, or failed under CI=true, as every PostgreSQL test: no psycopg, no initdb
def test_the_hand_started_server_stops_and_cleans_up_on_sigterm():
    # `python -m tests.pgserver` stopped with SIGTERM (kill, a service manager, a closing terminal's
    # job control) left its server running and its folder behind (issue 27): only Ctrl-C cleaned up.
    import glob
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    import psycopg

    from tests import pgserver
    from tests.conftest import ROOT

    folder = None
    process = subprocess.Popen([sys.executable, "-m", "tests.pgserver"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = process.stdout.readline()
        url = re.search(r"SPEEDRUN_DB='([^']+)'", line).group(1)
        port = int(re.search(r":(\d+)/", url).group(1))
        # The server's folder: the temporary one whose postmaster.pid names this port (4th line).
        [folder] = [Path(p).parent.parent for p in glob.glob(f"{tempfile.gettempdir()}/speedrun-pg-*/data/postmaster.pid")
                    if Path(p).read_text().splitlines()[3:4] == [str(port)]]
        assert folder.is_dir()
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
        if folder is not None and folder.exists():  # what the failure left: stopped and removed here
            left = pgserver.PostgresServer(pgserver.find_bin())
            left.folder.rmdir()
            left.folder, left.data = folder, folder / "data"
            left.remove()
            pytest.fail("the server and its folder were left behind")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=5).close()
