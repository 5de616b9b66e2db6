"""SQLite and PostgreSQL side by side: the same work, the same machine, one run.

    .venv/bin/python benchmarks/bench_backends.py [--runs 10000] [--log-lines 100000] [--epochs 1000] [--pg URL]

For each backend (a temporary SQLite file; a throwaway PostgreSQL server on the
loopback, started here with tests/pgserver.py unless --pg names one):

- recording: `add_epoch` per epoch over one 1,000-epoch run (benchmarks/bench_record.py);
- import: `speedrun import-log` of a 100,000-line log, end to end (a fresh process);
- report and list: `speedrun report` and `speedrun list --json` of 10,000 runs of
  20 epochs (benchmarks/bench_report.py's synthetic runs), end to end.

Targets (issue 15): report and list of 10,000 runs within 1.5x of SQLite;
recording under 5 ms per epoch on the loopback.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_parse import synthetic_log  # noqa: E402
from bench_record import record_run  # noqa: E402
from bench_report import build  # noqa: E402

REPORT_RATIO, LIST_RATIO, RECORD_MS = 1.5, 1.5, 5.0


def cli_seconds(db: str, *args: str, repeat: int = 3) -> float:
    """The best of `repeat` end-to-end runs of one command (a fresh process each)."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "speedrun", "--db", db, *args], capture_output=True,
                                text=True, env=env)
        best = min(best, time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"speedrun {' '.join(args)} failed on {db}: {result.stderr[-800:]}")
    return best


def measure(fresh_db, log: Path, runs: int, epochs: int) -> dict[str, float]:
    """Figures for one backend; `fresh_db()` names a new, empty database on it."""
    timings = record_run(fresh_db(), epochs)
    figures = {
        "record_mean_ms": statistics.mean(timings) * 1e3,
        "record_median_ms": statistics.median(timings) * 1e3,
        "record_last_over_first": statistics.mean(timings[-100:]) / statistics.mean(timings[:100]),
    }
    figures["import_s"] = cli_seconds(fresh_db(), "import-log", str(log), "--force", repeat=1)
    db = fresh_db()
    start = time.perf_counter()
    build(db, runs).close()
    figures["build_s"] = time.perf_counter() - start
    figures["report_s"] = cli_seconds(db, "report")
    figures["list_json_s"] = cli_seconds(db, "list", "--json")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=1_000)
    parser.add_argument("--pg", help="a PostgreSQL server URL whose databases may be created (default: start one)")
    args = parser.parse_args()

    from tests.pgserver import PostgresServer, find_bin

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "big.log"
        log.write_text(synthetic_log(args.log_lines))
        names = iter(range(1, 100))
        sqlite = measure(lambda: str(folder / f"bench-{next(names)}.db"), log, args.runs, args.epochs)
        server = None
        if args.pg:
            import psycopg

            base = args.pg.rsplit("/", 1)[0]

            def fresh_pg() -> str:
                name = f"bench_{os.getpid()}_{next(names)}"
                with psycopg.connect(args.pg.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
                return f"{base}/{name}"
        else:
            bindir = find_bin()
            if bindir is None:
                raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl): install postgresql or pass --pg URL")
            server = PostgresServer(bindir).start()
            fresh_pg = server.create_database
        try:
            postgres = measure(fresh_pg, log, args.runs, args.epochs)
        finally:
            if server is not None:
                server.remove()

    rows = [
        ("recording: add_epoch mean (ms)", "record_mean_ms", ".2f"),
        ("recording: add_epoch median (ms)", "record_median_ms", ".2f"),
        ("recording: last 100 / first 100", "record_last_over_first", ".2f"),
        (f"import-log, {args.log_lines:,} lines (s)", "import_s", ".2f"),
        (f"building {args.runs:,} runs in-process (s)", "build_s", ".2f"),
        (f"report, {args.runs:,} runs (s)", "report_s", ".2f"),
        (f"list --json, {args.runs:,} runs (s)", "list_json_s", ".2f"),
    ]
    print(f"{'':40} {'SQLite':>9} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for name, key, fmt in rows:
        a, b = sqlite[key], postgres[key]
        print(f"{name:40} {a:>9{fmt}} {b:>11{fmt}} {b / a:>9.2f}x")
    print()
    checks = [
        (f"report within {REPORT_RATIO}x of SQLite", postgres["report_s"] / sqlite["report_s"] <= REPORT_RATIO),
        (f"list --json within {LIST_RATIO}x of SQLite", postgres["list_json_s"] / sqlite["list_json_s"] <= LIST_RATIO),
        (f"recording under {RECORD_MS} ms per epoch on PostgreSQL", postgres["record_mean_ms"] < RECORD_MS),
    ]
    for name, ok in checks:
        print(f"target {name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
