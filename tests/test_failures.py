"""A read-only or full database gives a clear error and keeps what it had."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from speedrun.errors import DatabaseError
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store
from tests.test_store_cli import make_record


def test_read_only_database_can_be_read_and_refuses_writes_clearly(cli, db_path):
    store = Store.open(str(db_path))
    store.add_run(make_record())
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
    first = store.add_run(make_record())
    run_id = store.begin_run(RunRecord(source="train", status="running"))
    store.add_epoch(run_id, EpochRecord(epoch=1, val_acc=50.0))
    pages = store.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn, _):  # a disk with no room left beyond the current file
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()
    with pytest.raises(DatabaseError, match="full"):
        store.add_run(make_record(analysis="x" * 2_000_000))
    with pytest.raises(DatabaseError, match="full"):
        store.add_epoch(run_id, EpochRecord(epoch=2, val_acc=60.0, extra={"blob": "y" * 2_000_000}))
    reopened = Store.open(str(db_path))
    assert reopened.count_runs() == 2
    assert reopened.get_run(first).final_val_acc == 68.25
    assert [e.epoch for e in reopened.get_run(run_id).epochs] == [1]
