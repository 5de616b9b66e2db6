"""How `speedrun report` and `speedrun compare` scale with the size of the database.

Builds synthetic databases of 100, 1,000 and 10,000 runs (20 epochs each, the
shape of real trainings: params, environment, tags, texts, every epoch field)
and times, in process, what the commands do: load the runs, build the data,
render the output. Run it from the repository root:

    .venv/bin/python benchmarks/bench_report.py            # 100, 1000, 10000 runs
    .venv/bin/python benchmarks/bench_report.py 100 1000   # chosen sizes
    .venv/bin/python benchmarks/bench_report.py --keep DIR # keep the databases

The "command" column is `speedrun report` run as a user runs it, in a child process: its
CPU includes the start-up.

Targets (issue 28) on the 2-core development machine: the report of 10,000
runs in 1 s of CPU with its time per run flat from 1,000 to 10,000 runs (the
"ms/run" column), and `compare` of 4 runs (the median of 7) at 10,000 runs
within 0.1 s of the same at 100 runs (the noise pool reads each hardware class's latest
`metrics.POOL_LATEST` runs, so its cost stops growing there).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 20
BATCH = 2_000  # runs per add_runs transaction
COMPARE_REPEAT = 7  # compare is short: the median of this many
HARDWARE = [
    ("Google Colab, T4 GPU", {"device_type": "cuda", "gpu_name": "Tesla T4", "gpu_count": 1}),
    ("Lambda A100", {"device_type": "cuda", "gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_count": 1}),
    ("Colab L4", {"device_type": "cuda", "gpu_name": "NVIDIA L4", "gpu_count": 1}),
    ("AMD Ryzen 7 5700U, WSL (CPU)", {"device_type": "cpu", "cpu_model": "AMD Ryzen 7 5700U"}),
]


def synthetic_record(i: int, rng: random.Random) -> RunRecord:
    """One trained-like run: a configuration out of a few dozen, noisy curves."""
    hardware, env = HARDWARE[i % len(HARDWARE)]
    batch_size = rng.choice([32, 64, 128, 256])
    lr = rng.choice([0.01, 0.02, 0.04])
    cosine = rng.random() < 0.5
    epoch_s = {"cuda": 40.0, "cpu": 750.0}[env["device_type"]] * (64 / batch_size) ** 0.3
    ceiling = 88.0 + (2.0 if cosine else 0.0) + rng.gauss(0, 0.3)
    elapsed = 0.0
    epochs = []
    for e in range(1, EPOCHS + 1):
        duration = epoch_s * rng.uniform(0.97, 1.03)
        elapsed += duration
        acc = ceiling - 35.0 * 0.75**e + rng.gauss(0, 0.4)
        epochs.append(
            EpochRecord(
                epoch=e,
                train_loss=1.6 * 0.88**e,
                train_acc=acc + 2.0,
                val_loss=1.4 * 0.9**e,
                val_acc=round(acc, 2),
                duration_s=round(duration, 2),
                elapsed_s=round(elapsed, 1),
                lr=lr * (0.5 + 0.5 * (1 - e / EPOCHS)),
                images_per_s=50_000 / duration,
            )
        )
    return RunRecord(
        source="train",
        title=f"ResNet-9 bs {batch_size} lr {lr}{' cosine' if cosine else ''}",
        hypothesis="Smaller batches generalise better." if i % 3 == 0 else None,
        analysis=f"Synthetic run {i}: nothing to see." if i % 2 == 0 else None,
        tags=["synthetic", f"bs{batch_size}"],
        params={
            "model": "resnet9", "optimizer": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4,
            "batch_size": batch_size, "epochs": EPOCHS, "cosine": cosine, "amp": True, "bn": True,
            "seed": i,
        },
        hardware=hardware,
        env=dict(env, python_version="3.11.9", torch_version="2.4.1"),
        epochs=epochs,
        param_count=6_573_130,
        data_load_s=1.7,
        created_at=datetime(2026, 1, 1) + timedelta(minutes=i),
        group="baseline" if i % 50 == 0 else None,
    )


def build(path: Path, n: int, seed: int = 0) -> Store:
    rng = random.Random(seed)
    store = Store.open(str(path))
    for start in range(0, n, BATCH):
        store.add_runs([synthetic_record(i, rng) for i in range(start, min(n, start + BATCH))], force=True)
    return store


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result)."""
    cpu = time.process_time()
    wall, result = timed(fn)
    return wall, time.process_time() - cpu, result


def bench(store: Store, n: int, path: Path) -> dict[str, float]:
    from speedrun.analysis.compare import build_comparison, load_sides, render_markdown as compare_md
    from speedrun.analysis.report import build_context, load_runs, render

    from speedrun.domain.memo import collector_paused

    with collector_paused():  # as `speedrun report` builds it
        load_s, load_cpu, runs = cpu_timed(lambda: load_runs(store))
        context_s, context_cpu, context = cpu_timed(lambda: build_context(runs))
        render_s, render_cpu, text = cpu_timed(lambda: render(context, "md"))
    refs = [str(i) for i in (1, 2, 3, n)]

    def compare_once():
        from speedrun.analysis.metrics import NoisePool

        sides = load_sides(store, refs)
        # As the CLI does: spreads from every run's repeats, loaded when a gap needs one.
        pool = NoisePool.from_store(store)
        return compare_md(build_comparison(sides, pool=pool))

    compare_once()  # warm the import of stats/scipy out of the timing
    compare_s = statistics.median(timed(compare_once)[0] for _ in range(COMPARE_REPEAT))
    return {
        "load": load_s,
        "context": context_s,
        "render": render_s,
        "report": load_s + context_s + render_s,
        "report_cpu": load_cpu + context_cpu + render_cpu,
        "compare": compare_s,
        "bytes": len(text.encode()),
        "command_cpu": command_cpu(str(path)),
    }


def command_cpu(db: str) -> float:
    """Process CPU of `speedrun report` as a user runs it (start-up included), in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "speedrun", "--db", db, "report"], check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1_000, 10_000])
    parser.add_argument("--keep", type=Path, help="Directory to keep the databases in.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'runs':>7} {'build':>7} {'load':>7} {'context':>8} {'render':>7} {'report':>7} {'CPU':>7} "
              f"{'ms/run':>7} {'compare':>8} {'MB out':>7} {'command':>8}")
        results: dict[int, dict[str, float]] = {}
        for n in args.sizes:
            path = folder / f"bench-{n}.db"
            path.unlink(missing_ok=True)
            build_s, store = timed(lambda: build(path, n))
            r = results[n] = bench(store, n, path)
            store.close()
            print(
                f"{n:>7,} {build_s:>6.2f}s {r['load']:>6.2f}s {r['context']:>7.2f}s {r['render']:>6.2f}s "
                f"{r['report']:>6.2f}s {r['report_cpu']:>6.2f}s {1000 * r['report'] / n:>7.3f} "
                f"{r['compare']:>7.3f}s {r['bytes'] / 1e6:>7.1f} {r['command_cpu']:>7.2f}s"
            )
        print_targets(results)


def print_targets(results: dict[int, dict[str, float]]) -> None:
    """Issue 28's targets, with this run's figures, where the sizes measured allow."""
    def status(met: bool) -> str:
        return "met" if met else "NOT met"

    if 10_000 in results:
        cpu, command = results[10_000]["report_cpu"], results[10_000]["command_cpu"]
        print(f"report of 10,000 runs: {cpu:.2f} s of CPU in process, {command:.2f} s as the command "
              f"(start-up included; target 1.0 s): {status(command <= 1.0)}")
    if 1_000 in results and 10_000 in results:
        per_run = [1000 * results[n]["report"] / n for n in (1_000, 10_000)]
        print(f"time per run: {per_run[0]:.3f} ms at 1,000 runs, {per_run[1]:.3f} ms at 10,000 "
              f"(target: flat): {status(per_run[1] <= 1.1 * per_run[0])}")
    if 100 in results and 10_000 in results:
        gap = results[10_000]["compare"] - results[100]["compare"]
        print(f"compare at 10,000 runs minus at 100: {gap:+.3f} s (target 0.1 s): {status(gap <= 0.1)}")


if __name__ == "__main__":
    main()
