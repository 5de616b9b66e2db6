"""Time `speedrun import-log` on a 100,000-line log and `speedrun import-md` on a 2,000-run notebook.

End to end, as a user runs them (a fresh process each, into an empty database),
and split into parsing and storing in-process, so a regression shows where.
Target: each under 2 s on the 2-core development machine. The process's CPU time
(user + system) is printed beside the wall time: on a machine shared with other
work, the wall time says as much about the neighbours as about speedrun.

`import-md again` imports the same notebook into the database it just filled:
the update path (every section matched, none changed).

Each command runs --repeat times (into a fresh database, or the filled one for
`again`); the verdict is on the median. The package's bytecode is compiled first,
as `pip install` compiles it: with PYTHONDONTWRITEBYTECODE set (as in the
development container) an editable install would otherwise compile speedrun's
own modules on every start, a tenth of a second that no installed copy pays.

    .venv/bin/python benchmarks/bench_import.py [--log-lines N] [--runs N] [--repeat N]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_parse import synthetic_log, synthetic_notebook

import speedrun
from speedrun.cli.imports import stored_runs
from speedrun.notebook import parse_log, parse_notebook
from speedrun.notebook.overrides import fill_content_hash
from speedrun.notebook.sync import plan_import
from speedrun.tracking.store import Store


def end_to_end(command: str, path: Path, db: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the command in a process of its own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "speedrun", "--db", str(db), command, str(path)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command} failed: {result.stderr[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def split(parse, text: str, db: Path) -> tuple[float, float, int]:
    """(parse seconds, store seconds, runs), in this process, as the command does them."""
    start = time.perf_counter()
    parsed = parse(text)
    parsed_at = time.perf_counter()
    store = Store.open(str(db))
    opened_at = time.perf_counter()
    if isinstance(parsed, list):
        for record in parsed:
            fill_content_hash(record)
        store.add_runs(parsed)
        count = len(parsed)
    else:
        plan = plan_import(parsed, stored_runs(store))
        store.apply_notebook(add=plan.add, update=plan.update, series=plan.series,
                             positions=plan.positions, series_positions=plan.series_positions)
        count = len(parsed.runs)
    stored_at = time.perf_counter()
    store.close()
    return parsed_at - start, stored_at - opened_at, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5, help="end-to-end runs per command (median and best shown)")
    args = parser.parse_args()
    compileall.compile_dir(Path(speedrun.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log, notebook = tmp / "colab.txt", tmp / "experiments.md"
        log.write_text(synthetic_log(args.log_lines))
        notebook.write_text(synthetic_notebook(args.runs))
        print(f"end to end: median (best) of {args.repeat} runs, each in a process of its own")
        print(f"{'input':<34}{'runs':>7}{'parse s':>9}{'store s':>9}{'end-to-end s':>16}{'cpu s':>14}  target")
        for name, command, path, parse, again in [
            (f"import-log, {args.log_lines:,} lines", "import-log", log, parse_log, False),
            (f"import-md, {args.runs:,} runs", "import-md", notebook, parse_notebook, False),
            (f"import-md again, {args.runs:,} runs", "import-md", notebook, parse_notebook, True),
        ]:
            parse_s, store_s, runs = split(parse, path.read_text(), tmp / f"split-{command}-{again}.db")
            filled = tmp / "filled.db"
            if again:
                end_to_end(command, path, filled)
            times = []
            for i in range(args.repeat):
                db = tmp / f"e2e-{command}-{i}.db"
                if again:
                    shutil.copy(filled, db)
                times.append(end_to_end(command, path, db))
            total = statistics.median(t for t, _ in times)
            cpu = statistics.median(c for _, c in times)
            best, best_cpu = min(t for t, _ in times), min(c for _, c in times)
            verdict = "ok" if total < 2.0 else "SLOW"
            print(f"{name:<34}{runs:>7}{parse_s:>9.2f}{store_s:>9.2f}{total:>9.2f} ({best:.2f}){cpu:>7.2f} ({best_cpu:.2f})"
                  f"  < 2 s {verdict}")


if __name__ == "__main__":
    main()
