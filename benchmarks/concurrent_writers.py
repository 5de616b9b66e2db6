"""Stress: many processes recording into one runs.db at once.

Each writer process records a run the way `speedrun train` does (begin_run,
then one committed transaction per epoch, then finish_run); half of them also
import a log-like run in one transaction. Prints writes/s and checks that
every row arrived.

    python benchmarks/concurrent_writers.py --writers 16 --epochs 500
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path


def writer(db: str, index: int, epochs: int, start_at: float) -> None:
    from speedrun.tracking.records import EpochRecord, RunRecord
    from speedrun.tracking.store import Store

    store = Store.open(db)
    while time.time() < start_at:  # start together, to collide as much as possible
        time.sleep(0.001)
    run_id = store.begin_run(
        RunRecord(source="train", status="running", title=f"writer {index}", params={"seed": index}, pid=os.getpid())
    )
    for epoch in range(1, epochs + 1):
        store.add_epoch(run_id, EpochRecord(epoch=epoch, val_acc=epoch % 100, train_loss=1.0 / epoch, elapsed_s=epoch))
    store.finish_run(run_id, "completed")
    if index % 2:
        store.add_run(
            RunRecord(
                source="log",
                title=f"import {index}",
                epochs=[EpochRecord(epoch=e, val_acc=50.0) for e in range(1, 11)],
                content_hash=f"hash-{index}",
            )
        )
    store.close()


def run(db: str, writers: int, epochs: int) -> dict:
    from speedrun.tracking.store import Store

    Store.open(db).close()  # create the schema once, before the crowd arrives
    start_at = time.time() + 1.0
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=writer, args=(db, i, epochs, start_at)) for i in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.time() - start_at
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    con = sqlite3.connect(db)
    runs = con.execute("select count(*) from runs").fetchone()[0]
    epoch_rows = con.execute("select count(*) from epoch_metrics").fetchone()[0]
    completed = con.execute("select count(*) from runs where status = 'completed'").fetchone()[0]
    con.close()
    transactions = writers * (epochs + 2) + writers // 2
    return {
        "writers": writers,
        "epochs_per_writer": epochs,
        "failed_writers": len(failed),
        "runs": runs,
        "expected_runs": writers + writers // 2,
        "epoch_rows": epoch_rows,
        "expected_epoch_rows": writers * epochs + (writers // 2) * 10,
        "completed": completed,
        "seconds": round(elapsed, 3),
        "write_transactions_per_s": round(transactions / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--db", help="database file (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "stress.db")
        result = run(db, args.writers, args.epochs)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
    ok = (
        result["failed_writers"] == 0
        and result["runs"] == result["expected_runs"]
        and result["epoch_rows"] == result["expected_epoch_rows"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
