"""Time `speedrun import-log` on a 100,000-line log and `speedrun import-md` on a 2,000-run notebook.

End to end, as a user runs them (a fresh process each, into an empty database),
and split into parsing and storing in-process, so a regression shows where.
Target: each under 2 s on the 2-core development machine.

    .venv/bin/python benchmarks/bench_import.py [--log-lines N] [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_parse import synthetic_log, synthetic_notebook

from speedrun.notebook.overrides import fill_content_hash
from speedrun.notebook import parse_log, parse_notebook
from speedrun.tracking.store import Store


def end_to_end(command: str, path: Path, db: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "speedrun", "--db", str(db), command, str(path)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command} failed: {result.stderr[-500:]}")
    return elapsed


def split(parse, text: str, db: Path) -> tuple[float, float, int]:
    start = time.perf_counter()
    parsed = parse(text)
    records = parsed if isinstance(parsed, list) else parsed.runs
    for record in records:
        fill_content_hash(record)
    parsed_at = time.perf_counter()
    store = Store.open(str(db))
    opened_at = time.perf_counter()
    store.add_runs(records)
    stored_at = time.perf_counter()
    store.close()
    return parsed_at - start, stored_at - opened_at, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log, notebook = tmp / "colab.txt", tmp / "experiments.md"
        log.write_text(synthetic_log(args.log_lines))
        notebook.write_text(synthetic_notebook(args.runs))
        print(f"{'input':<34}{'runs':>7}{'parse s':>9}{'store s':>9}{'end-to-end s':>14}  target")
        for name, command, path, parse in [
            (f"import-log, {args.log_lines:,} lines", "import-log", log, parse_log),
            (f"import-md, {args.runs:,} runs", "import-md", notebook, parse_notebook),
        ]:
            parse_s, store_s, runs = split(parse, path.read_text(), tmp / f"split-{command}.db")
            total = end_to_end(command, path, tmp / f"e2e-{command}.db")
            verdict = "ok" if total < 2.0 else "SLOW"
            print(f"{name:<34}{runs:>7}{parse_s:>9.2f}{store_s:>9.2f}{total:>14.2f}  < 2 s {verdict}")


if __name__ == "__main__":
    main()
