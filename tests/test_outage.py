"""A database that is away, locked or slow (issues 24 and 27): nothing lost, the training never waits.

What a training could not write waits in the local spool (tracking/spool.py) and
`speedrun sync` sends it; these tests cover the spool on both backends, an
orphaned record, a locked or slow database, and the trainer's clock.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.tracking.spool import Spool
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
