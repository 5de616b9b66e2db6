"""How `speedrun list` scales: the default page and `--all`, at 1,000 and 10,000 runs, side by side.

Each figure is a fresh `python -m speedrun list` process, as a user runs it, its output
piped away (so the table is laid out at the piped width, as in a file or a notebook cell);
the median of --repeat runs. The process's CPU time (user + system) is printed beside the
wall time: on a machine shared with other work, the wall time says as much about the
neighbours as about speedrun. The databases are bench_report.py's synthetic runs.

The default page should cost the same at any size (it lays out 50 rows); `--all` should
grow linearly with a small constant: the last column is its CPU time beyond the page's,
per run beyond the page. Before this renderer `list` laid out every run with Rich:
10.8 CPU s at 10,000 runs (1.5 at 1,000) on the loaded 2-core development machine.

    .venv/bin/python benchmarks/bench_list.py                # 1,000 and 10,000 runs
    .venv/bin/python benchmarks/bench_list.py 1000 --repeat 5
    .venv/bin/python benchmarks/bench_list.py --keep DIR     # keep (and reuse) the databases
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import build  # noqa: E402  (the same synthetic runs as the report's benchmark)

from speedrun.cli.runs import PAGE  # noqa: E402

VARIANTS = {"page": [], "--all": ["--all"], "--all --json": ["--all", "--json"]}


def run_once(db: Path, extra: list[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one `speedrun list` process, and the lines it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "speedrun", "--db", str(db), "list", *extra],
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"speedrun list {' '.join(extra)} failed: {result.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, result.stdout.count("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=3, help="Processes per figure (the median is printed).")
    parser.add_argument("--keep", type=Path, help="Directory to keep the databases in (reused when present).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'runs':>7} " + " ".join(f"{name + ' wall':>17} {'cpu':>6}" for name in VARIANTS)
              + f" {'--all cpu/run':>14}")
        for n in args.sizes:
            path = folder / f"bench-list-{n}.db"
            if not path.exists():
                build(path, n).close()
            cells, cpu_of = [], {}
            for name, extra in VARIANTS.items():
                run_once(path, extra)  # warm the page cache and the bytecode
                samples = [run_once(path, extra) for _ in range(args.repeat)]
                wall = statistics.median(s[0] for s in samples)
                cpu = statistics.median(s[1] for s in samples)
                cells.append(f"{wall:>16.2f}s {cpu:>5.2f}s")
                cpu_of[name] = cpu
            per_run = (cpu_of["--all"] - cpu_of["page"]) / max(n - PAGE, 1)
            print(f"{n:>7,} " + " ".join(cells) + f" {per_run * 1e3:>11.3f} ms", flush=True)


if __name__ == "__main__":
    main()
