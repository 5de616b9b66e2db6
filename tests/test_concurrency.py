"""Several processes writing one runs.db at once: no "database is locked", no lost row."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.conftest import ROOT


def test_eight_processes_each_writing_200_epochs_lose_nothing(tmp_path):
    db = tmp_path / "shared.db"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "concurrent_writers.py"), "--writers", "8", "--epochs", "200",
         "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["failed_writers"] == 0
    assert figures["runs"] == 12 and figures["completed"] == 12
    assert figures["epoch_rows"] == 8 * 200 + 4 * 10
    assert "locked" not in result.stderr


def test_readers_see_consistent_data_while_a_writer_writes(tmp_path):
    from speedrun.tracking.records import EpochRecord, RunRecord
    from speedrun.tracking.store import Store

    db = str(tmp_path / "rw.db")
    writer_store = Store.open(db)
    run_id = writer_store.begin_run(RunRecord(source="train", status="running"))
    done = threading.Event()

    def write():
        for epoch in range(1, 151):
            writer_store.add_epoch(run_id, EpochRecord(epoch=epoch, val_acc=float(epoch % 90), elapsed_s=float(epoch)))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    reader = Store.open(db)
    checks = 0
    while not done.is_set() or checks == 0:
        run = reader.get_run(run_id)
        # The summary is written in the same transaction as the epoch: they always agree.
        assert run.epochs_completed == len(run.epochs)
        if run.epochs:
            assert run.final_val_acc == run.epochs[-1].val_acc
            assert run.train_time_s == run.epochs[-1].elapsed_s
        checks += 1
    thread.join()
    assert reader.get_run(run_id).epochs_completed == 150
    assert checks > 1
