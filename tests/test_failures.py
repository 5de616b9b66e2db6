"""A read-only or full database gives a clear error and keeps what it had."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from speedrun.errors import DatabaseError
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store
from tests.helpers import add_run
from tests.test_store_cli import make_record


def test_read_only_database_can_be_read_and_refuses_writes_clearly(cli, db_path):
    store = Store.open(str(db_path))
    add_run(store, make_record())
    store.close()
    url = f"sqlite:///file:{db_path}?mode=ro&uri=true"
    listed = cli("list", "--json", db=url)
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 1
    result = cli("note", "1", "--title", "changed", db=url)
    assert result.exit_code == 1
    assert "readonly" in result.stderr.replace("-", "").lower()
    assert "Traceback" not in result.output
    assert json.loads(cli("show", "1", "--json").stdout)["title"] == "Batch 64 (T4)"


def test_full_disk_fails_cleanly_and_loses_nothing(db_path):
    store = Store.open(str(db_path))
    first = add_run(store, make_record())
    run_id = store.begin_run(RunRecord(source="train", status="running"))
    store.add_epoch(run_id, EpochRecord(epoch=1, val_acc=50.0))
    pages = store.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn, _):  # a disk with no room left beyond the current file
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()
    with pytest.raises(DatabaseError, match="full"):
        add_run(store, make_record(analysis="x" * 2_000_000))
    with pytest.raises(DatabaseError, match="full"):
        store.add_epoch(run_id, EpochRecord(epoch=2, val_acc=60.0, extra={"blob": "y" * 2_000_000}))
    reopened = Store.open(str(db_path))
    assert reopened.count_runs() == 2
    assert reopened.get_run(first).final_val_acc == 68.25
    assert [e.epoch for e in reopened.get_run(run_id).epochs] == [1]


# --------------------------------------------------------------------------- D2 (issue 24): a shared new database


HOLD_OPEN = """
import sys, time
from speedrun.tracking.store import Store
store = Store.open(sys.argv[1])  # the database another command just created: open, no run yet
print("open", flush=True)
sys.stdin.readline()  # ... until the test says: now record a run
run = store.begin_run(__import__("speedrun.domain.records", fromlist=["RunRecord"]).RunRecord(source="train",
                      status="running"))
store.finish_run(run, "completed")
print(run, flush=True)
"""


def test_a_failing_command_never_deletes_a_database_another_process_opened(tmp_path, monkeypatch):
    """Command A creates race.db and fails early; process B opened it meanwhile and records into it later."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from speedrun.cli import app
    from speedrun.errors import SpeedrunError
    from speedrun.training import repeats
    from tests.test_hostile_input import one_error

    race = tmp_path / "race.db"
    other: list[subprocess.Popen] = []

    def fail_after_another_process_opened(*args, **kwargs):
        process = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(race)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        other.append(process)
        assert process.stdout.readline().strip() == "open"
        raise SpeedrunError("no training data in /nonexistent")

    monkeypatch.setattr(repeats, "train_runs", fail_after_another_process_opened)
    result = CliRunner().invoke(app, ["--db", str(race), "train", "--subset", "64", "--device", "cpu"])
    one_error(result, containing="no training data")
    process = other[0]
    out, _ = process.communicate("go\n", timeout=60)
    assert process.returncode == 0 and out.strip() == "1"
    assert race.exists()  # B's run went into the file that is there, not into an unlinked one
    assert Store.open(str(race)).get_run(1).status == "completed"
