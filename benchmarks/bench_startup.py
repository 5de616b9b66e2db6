"""What every command pays before it does anything: `speedrun --help`, `--version` and
`list --json` on an empty database, each a fresh process as a user runs it.

Issue 28's targets (process wall time, median of 10, quiet machine): `--help` <= 0.25 s,
`list --json` on an empty database <= 0.4 s. The commands run in turn (A B C, C B A, ...);
each line gives the median wall time, its range and the median CPU time (user + system) of
the process. The package's bytecode is compiled first, as `pip install` compiles it: with
PYTHONDONTWRITEBYTECODE set (as in the development container) an editable install would
otherwise compile speedrun's own modules on every start, which no installed copy pays.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS_S = {"--help": 0.25, "list --json, empty database": 0.4}


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="processes per command (the median is printed)")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "speedrun", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "empty.db")
        speedrun = [sys.executable, "-m", "speedrun"]
        commands = {
            "--help": [*speedrun, "--help"],
            "--version": [*speedrun, "--version"],
            "list --json, empty database": [*speedrun, "--db", db, "list", "--json"],
        }
        timed(commands["list --json, empty database"])  # creates the database: not a start-up
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for i in range(args.repeat):
            for name in (list(commands) if i % 2 == 0 else list(reversed(commands))):
                figures[name].append(timed(commands[name]))
    print(f"{'command':<30} {'wall':>8} {'range':>15} {'CPU':>8} {'target':>8}  status")
    for name, runs in figures.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        median = statistics.median(walls)
        target = TARGETS_S.get(name)
        status = "" if target is None else ("met" if median <= target else "NOT met")
        print(f"{name:<30} {median:>7.3f}s {min(walls):>6.3f}–{max(walls):>6.3f}s {statistics.median(cpus):>7.3f}s "
              f"{f'{target:.2f}s' if target else '':>8}  {status}")


if __name__ == "__main__":
    main()
