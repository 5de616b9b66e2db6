"""Stress: many processes training and importing into one database at once (SQLite file or PostgreSQL URL).

Half the processes record a run the way `speedrun train` does (begin_run, then
one committed transaction per epoch, then finish_run); the other half import
runs the way `import-md` does (several runs per transaction, asking for run
numbers, one number asked for by every importer so that they clash). Prints
writes/s and checks that every row arrived and every run number is unique.

    python benchmarks/concurrent_writers.py --writers 16 --epochs 500 [--db PATH_OR_URL]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IMPORT_BATCHES = 5  # transactions per importer
RUNS_PER_BATCH = 4
EPOCHS_PER_IMPORTED_RUN = 10
SHARED_NUMBER = 7  # every importer's first run asks for it: one gets it, the others are relabelled


def trainer(db: str, index: int, epochs: int, start_at: float) -> None:
    from speedrun.domain.records import EpochRecord, RunRecord
    from speedrun.tracking.store import Store

    store = Store.open(db)
    while time.time() < start_at:  # start together, to collide as much as possible
        time.sleep(0.001)
    run_id = store.begin_run(
        RunRecord(source="train", status="running", title=f"trainer {index}", params={"seed": index}, pid=os.getpid())
    )
    for epoch in range(1, epochs + 1):
        store.add_epoch(run_id, EpochRecord(epoch=epoch, val_acc=epoch % 100, train_loss=1.0 / epoch, elapsed_s=epoch))
    store.finish_run(run_id, "completed")
    store.close()


def importer(db: str, index: int, epochs: int, start_at: float) -> None:
    from speedrun.domain.records import EpochRecord, RunRecord
    from speedrun.tracking.store import Store

    store = Store.open(db)
    while time.time() < start_at:
        time.sleep(0.001)
    for batch in range(IMPORT_BATCHES):
        records = []
        for k in range(RUNS_PER_BATCH):
            number = SHARED_NUMBER if batch == k == 0 else 1000 * (index + 1) + batch * RUNS_PER_BATCH + k
            records.append(RunRecord(
                source="notebook", number=number, title=f"import {index}.{batch}.{k}",
                epochs=[EpochRecord(epoch=e, val_acc=50.0 + e) for e in range(1, EPOCHS_PER_IMPORTED_RUN + 1)],
                content_hash=f"hash-{index}-{batch}-{k}", hardware="Colab T4",
            ))
        store.add_runs(records)
    store.close()


def writer(db: str, index: int, epochs: int, start_at: float) -> None:
    (trainer if index % 2 == 0 else importer)(db, index, epochs, start_at)


def count(db: str) -> dict:
    from sqlalchemy import text

    from speedrun.tracking.store import Store

    store = Store.open(db)
    with store.engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).scalar()  # noqa: E731
        found = {
            "runs": one("select count(*) from runs"),
            "distinct_run_numbers": one("select count(distinct id) from runs"),
            "epoch_rows": one("select count(*) from epoch_metrics"),
            "completed": one("select count(*) from runs where status = 'completed'"),
            "holding_shared_number": one(f"select count(*) from runs where id = {SHARED_NUMBER}"),
            "labelled_shared_number": one(f"select count(*) from runs where label = '{SHARED_NUMBER}'"),
            "environments": one("select count(*) from environments"),
        }
    store.close()
    return found


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
    trainers, importers = (writers + 1) // 2, writers // 2
    imported_runs = importers * IMPORT_BATCHES * RUNS_PER_BATCH
    transactions = trainers * (epochs + 2) + importers * IMPORT_BATCHES
    return {
        "backend": "sqlite" if "://" not in db else db.split(":", 1)[0],
        "writers": writers,
        "trainers": trainers,
        "importers": importers,
        "epochs_per_trainer": epochs,
        "failed_writers": len(failed),
        **count(db),
        "expected_runs": trainers + imported_runs,
        "expected_epoch_rows": trainers * epochs + imported_runs * EPOCHS_PER_IMPORTED_RUN,
        "expected_completed": trainers + imported_runs,
        "seconds": round(elapsed, 3),
        "write_transactions_per_s": round(transactions / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--db", help="database file or URL (default: a temporary SQLite file)")
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
        and result["runs"] == result["expected_runs"] == result["distinct_run_numbers"]
        and result["epoch_rows"] == result["expected_epoch_rows"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
