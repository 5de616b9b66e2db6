"""Our airbench94 recipe against the published reference, alternately, on one CUDA GPU.

    pip install --no-deps airbench==0.1.8      # the reference; NOT a dependency of speedrun
    python benchmarks/bench_airbench_gpu.py [--runs 25] [--recipe airbench94] [--compile] [--data-dir ./data]

Options: --runs N timed runs of each side (default 25: a 95% interval of about
±0.06 points on the mean accuracy at the reference's spread of ~0.14);
--recipe our recipe (airbench94, airbench94-muon); --compile to torch.compile
ours (warm-up not timed); --data-dir the folder holding cifar-10-batches-py.

The reference is Keller Jordan's `airbench` package (PyPI 0.1.8, `train94`),
fed the same local CIFAR-10 (written once into the `train.pt`/`test.pt` files
its loader reads, in a temporary folder that becomes the working directory
before `airbench` is imported: `train94` reads its test set from ./cifar10,
and a missing file there would start a download).

Fair on any GPU: both sides run on the same device in one process; each is
warmed up the same way, by one full untimed run (cudnn autotuning, kernel
loading, and for ours its own untimed compile/warm-up); then runs alternate
reference, ours, reference, ... so clock and thermal drift hit both alike.
Ours runs exactly as `speedrun train --recipe NAME` runs it (the recipe's own
trainer, optimizers and precision), only recording into memory.

Both times are the same "speedrun time": CUDA-event time of the whitening
init, the training epochs and the final TTA evaluation, without the per-epoch
evaluations: for the reference, the `total_time_seconds` it prints on its
final `eval` row; for ours, the run's recorded train_time_s. Each side's
accuracy and time are printed as mean ± 95% CI half-width (n) with the
interval's full width, and Welch's test says whether the difference is
beyond run-to-run noise. Wall times (everything, incl. our data loading and
warm-up) are printed too, labelled.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runs from a checkout without installing


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def write_reference_data(data_dir: str, folder: Path) -> None:
    """The files airbench's CifarLoader reads: {'images': N×32×32×3 uint8, 'labels', 'classes'}."""
    import torch

    from speedrun.training.data import locate_cifar10, read_cifar10

    train_x, train_y, test_x, test_y = read_cifar10(locate_cifar10(data_dir, download=False))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, x, y in (("train.pt", train_x, train_y), ("test.pt", test_x, test_y)):
        torch.save({"images": torch.from_numpy(x.transpose(0, 2, 3, 1).copy()), "labels": torch.from_numpy(y),
                    "classes": classes}, folder / name)


def reference_loader(airbench, folder: Path):
    return airbench.CifarLoader(str(folder), train=True, batch_size=1024, aug=dict(flip=True, translate=2),
                                altflip=True)


def reference_run(airbench, folder: Path, run: int) -> tuple[float, float, float]:
    """(TTA accuracy %, the reference's own printed time s, wall s) of one train94 run."""
    import torch

    loader = reference_loader(airbench, folder)
    out = io.StringIO()
    torch.cuda.synchronize()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        airbench.train94(train_loader=loader, run=run, verbose=True)
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    for line in out.getvalue().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and cells[1] == "eval":
            return 100 * float(cells[5]), float(cells[6]), wall
    fail("could not find the reference's final 'eval' row in its output:\n" + out.getvalue())
    raise AssertionError


def our_run(recipe_name: str, data_dir: str, seed: int, compile_model: bool) -> tuple[float, float, float]:
    """(TTA accuracy %, speedrun time s, wall s) of one run of our recipe."""
    from rich.console import Console

    from speedrun.recipes import get_recipe
    from speedrun.training.recording import MemoryRecorder, Reporter

    recipe = get_recipe(recipe_name)
    config = recipe.configure(device="cuda", seed=seed, data_dir=data_dir, compile=compile_model).resolve()
    recorder = MemoryRecorder()
    quiet = Reporter(Console(file=io.StringIO()), progress=False)
    result = recipe.train(config, recorder, reporter=quiet)
    return result.final_val_acc, result.train_time_s, result.wall_time_s


def summary(label: str, values: list[float], unit: str) -> str:
    """"94.01 ± 0.05 (n=25), interval width 0.10, std 0.13" for one side."""
    from speedrun.analysis.stats import describe, fmt_mean_ci

    desc = describe(values)
    width = f", interval width {2 * desc.ci_half_width:.3f}{unit}" if desc.ci_half_width is not None else ""
    spread = f", std {desc.std:.3f}{unit}" if desc.std is not None else ""
    return f"{label}: {fmt_mean_ci(desc, digits=3)}{unit}{width}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each (after one untimed full run each)")
    parser.add_argument("--recipe", default="airbench94", help="our recipe to compare (airbench94, airbench94-muon)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (warm-up not timed)")
    parser.add_argument("--data-dir", default="./data", help="folder holding cifar-10-batches-py")
    args = parser.parse_args()
    if args.runs < 2:
        fail("--runs must be at least 2: one run has no interval")

    import torch

    if not torch.cuda.is_available():
        fail("no CUDA device: this benchmark times both trainers on one NVIDIA GPU; run it on a GPU machine "
             "(the CPU figures are in benchmarks/bench_airbench_cpu.py)")
    from speedrun.analysis.metrics import FINAL_ACCURACY, TRAINING_TIME, verdict
    from speedrun.recipes import get_recipe

    from speedrun.errors import SpeedrunError

    try:  # a bad name fails now, and speedrun is imported before the working directory moves
        get_recipe(args.recipe)
    except SpeedrunError as exc:
        fail(str(exc))
    data_dir = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar10"  # train94 reads its test set from ./cifar10
        write_reference_data(data_dir, folder)
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import airbench
        except ImportError:
            fail("the reference is not installed: pip install --no-deps airbench==0.1.8 "
                 "(needs torchvision; it is not a dependency of speedrun)")
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, airbench {airbench.__file__}")
        print("warm-up: one full untimed run of each", flush=True)
        reference_run(airbench, folder, run=0)
        our_run(args.recipe, data_dir, seed=0, compile_model=args.compile)
        ref, ours = [], []
        for i in range(args.runs):
            ref.append(reference_run(airbench, folder, run=i + 1))
            ours.append(our_run(args.recipe, data_dir, seed=i + 1, compile_model=args.compile))
            print(f"run {i + 1}: reference {ref[-1][0]:.2f}% in {ref[-1][1]:.3f}s | "
                  f"ours {ours[-1][0]:.2f}% in {ours[-1][1]:.3f}s", flush=True)

    ours_label = f"ours ({args.recipe}{', compiled' if args.compile else ''})"
    for label, rows in (("reference airbench94 (airbench 0.1.8)", ref), (ours_label, ours)):
        print(summary(f"{label} accuracy", [r[0] for r in rows], "%"))
        print(summary(f"{label} speedrun time", [r[1] for r in rows], " s"))
        print(f"{label} wall time: {statistics.fmean(r[2] for r in rows):.2f} s mean"
              + (" (incl. data load and warm-up)" if rows is ours else ""))
    # The one verdict speedrun's report, compare and stats give (Welch's test with repeats on both sides).
    names = ("reference", "ours")
    as_runs = lambda rows: [SimpleNamespace(final_val_acc=r[0], train_time_s=r[1]) for r in rows]  # noqa: E731
    print("accuracy:", verdict(FINAL_ACCURACY, as_runs(ref), as_runs(ours), names=names).line)
    print("time:", verdict(TRAINING_TIME, as_runs(ref), as_runs(ours), names=names).line)
    ratio = statistics.fmean(r[1] for r in ours) / statistics.fmean(r[1] for r in ref)
    print(f"time ratio ours/reference (speedrun time): {ratio:.3f} (target <= 1.0)")


if __name__ == "__main__":
    main()
