"""`speedrun list --where` on 10,000 runs: the query in the database, and the whole command.

Builds a synthetic database of 10,000 trained-like runs (bench_report's runs: four
hardware classes, a few dozen configurations), then times, for a query of three
conditions and an `or`:

- the query alone: the SQL that selects the matching run numbers (target: 50 ms or less);
- `Store.list_runs(where=...)`: the query and reading the matching runs;
- the whole process `speedrun list --where QUERY --json` against `speedrun list --tag
  match --json`, which lists the same runs (tagged beforehand) without a query (target:
  no slower).

The same filter through MLflow's `search_runs` (without the `or`, which MLflow's syntax lacks) is
measured side by side on the same runs by `benchmarks/bench_peers.py` (its "filter" rows), where
MLflow runs in a virtual environment of its own.

Run it from the repository root:

    .venv/bin/python benchmarks/bench_where.py            # 10,000 runs
    .venv/bin/python benchmarks/bench_where.py --runs 1000 --keep DIR
    .venv/bin/python benchmarks/bench_where.py --db postgresql+psycopg://...   # a PostgreSQL database
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_report  # noqa: E402  (the synthetic runs of the report benchmark)

from sqlalchemy import select  # noqa: E402

from speedrun.tracking.models import Run, Tag  # noqa: E402
from speedrun.tracking.store import Store  # noqa: E402

QUERY = "hardware = T4 and batch_size <= 64 and (cosine or lr < 0.02)"
REPEATS = 7


def build(path: Path | str, n: int) -> Store:
    bench_report.EPOCHS = 5  # `list` reads no epochs; fewer make the database quicker to build
    rng = random.Random(0)
    store = Store.open(str(path))
    for start in range(0, n, bench_report.BATCH):
        store.add_runs([bench_report.synthetic_record(i, rng) for i in range(start, min(n, start + 2000))],
                       force=True)
    return store


def median_ms(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def query_ids(store: Store) -> list[int]:
    with store._read() as session:
        return sorted(session.scalars(select(Run.id).where(store._where(session, QUERY))))


def tag_matches(store: Store, ids: list[int]) -> None:
    with store.engine.begin() as conn:
        conn.execute(Tag.__table__.insert(), [{"run_id": i, "tag": "match"} for i in ids])


def processes_ms(db: Path | str, *commands: tuple[str, ...], repeats: int = 7) -> list[tuple[float, float, int]]:
    """(median, best, output bytes) of each `speedrun list --json ...` process, run in turns so
    that a busy machine slows each alike."""
    env = dict(os.environ, SPEEDRUN_DB=str(db))
    times: list[list[float]] = [[] for _ in commands]
    sizes = [0] * len(commands)
    for _ in range(repeats):
        for i, args in enumerate(commands):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "speedrun", "list", "--json", *args], env=env,
                                 capture_output=True, check=True).stdout
            times[i].append((time.perf_counter() - start) * 1000)
            sizes[i] = len(out)
    return [(statistics.median(t), min(t), size) for t, size in zip(times, sizes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="build the database in this directory and keep it")
    parser.add_argument("--db", help="a database URL to use instead (built there when it holds no runs)")
    args = parser.parse_args()
    if args.db:
        db = args.db
        fresh = Store.open(db)
        empty = fresh.count_runs() == 0
        fresh.close()
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-where-"))
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / f"where-{args.runs}.db"
        empty = not db.exists()
    if empty:
        started = time.perf_counter()
        build(db, args.runs).close()
        print(f"built {args.runs:,} runs in {time.perf_counter() - started:.1f} s")
    store = Store.open(str(db))
    query, ids = median_ms(lambda: query_ids(store))
    listed, runs = median_ms(lambda: store.list_runs(where=QUERY), repeats=3)
    if not store.list_runs(tag="match", limit=1):
        tag_matches(store, ids)
    plain, same = median_ms(lambda: store.list_runs(tag="match"), repeats=3)
    assert [r.id for r in runs] == [r.id for r in same] == ids
    store.close()
    (with_where, where_best, where_bytes), (with_tag, tag_best, tag_bytes) = processes_ms(
        db, ("--where", QUERY), ("--tag", "match"))
    print(f"{store_label(db)}: {args.runs:,} runs; --where {QUERY!r} matches {len(ids):,}")
    print(f"  query (SQL, run numbers):        {query:7.1f} ms   target <= 50 ms: {'ok' if query <= 50 else 'MISSED'}")
    print(f"  Store.list_runs(where=...):      {listed:7.1f} ms   (list_runs(tag=...) of the same runs: {plain:.1f} ms)")
    print(f"  speedrun list --where ... --json {with_where:7.0f} ms median, {where_best:.0f} best ({where_bytes:,} bytes)")
    print(f"  speedrun list --tag match --json {with_tag:7.0f} ms median, {tag_best:.0f} best ({tag_bytes:,} bytes)")
    print(f"  target: --where no slower: {'ok' if with_where <= with_tag * 1.05 else 'MISSED'} "
          f"({with_where / with_tag:.2f}x the median, {where_best / tag_best:.2f}x the best)")


def store_label(db: Path | str) -> str:
    return "PostgreSQL" if str(db).startswith("postgresql") else "SQLite"


if __name__ == "__main__":
    main()
