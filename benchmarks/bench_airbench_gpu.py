"""Our airbench94 recipe against the published reference, alternately, on one CUDA GPU.

    pip install --no-deps airbench==0.1.8      # the reference; NOT a dependency of speedrun
    python benchmarks/bench_airbench_gpu.py [--runs 5] [--recipe airbench94] [--compile] [--data-dir ./data]

The reference is Keller Jordan's `airbench` package (PyPI 0.1.8, `train94`),
fed the same local CIFAR-10 (written once into the `train.pt`/`test.pt` files
its loader reads, in a temporary folder; nothing is downloaded). Runs
alternate reference, ours, reference, ... after one untimed warm-up of each,
so clock and thermal drift hit both alike.

Both times are the same "speedrun time": CUDA-event time of the whitening
init, the training epochs and the final TTA evaluation, without the per-epoch
evaluations: for the reference, the `total_time_seconds` it prints on its
final `eval` row; for ours, the run's recorded train_time_s. Wall times
(everything, incl. our data loading and warm-up) are printed too, labelled.
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


def reference_warmup(airbench, folder: Path) -> None:
    """The reference's own warm-up (run=-1: one training step, for cudnn's autotuning)."""
    with contextlib.redirect_stdout(io.StringIO()):
        airbench.train94(train_loader=reference_loader(airbench, folder), run=-1, verbose=True)


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
    from speedrun.training.loop import MemoryRecorder, Reporter

    recipe = get_recipe(recipe_name)
    config = recipe.configure(device="cuda", seed=seed, data_dir=data_dir, compile=compile_model).resolve()
    recorder = MemoryRecorder()
    quiet = Reporter(Console(file=io.StringIO()), progress=False)
    result = recipe.train(config, recorder, reporter=quiet)
    return result.final_val_acc, result.train_time_s, result.wall_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (after one warm-up each)")
    parser.add_argument("--recipe", default="airbench94", help="our recipe to compare (airbench94)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (warm-up not timed)")
    parser.add_argument("--data-dir", default="./data", help="folder holding cifar-10-batches-py")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        fail("no CUDA device: this benchmark times both trainers on one NVIDIA GPU; run it on a GPU machine "
             "(the CPU figures are in benchmarks/bench_airbench_cpu.py)")
    try:
        import airbench
    except ImportError:
        fail("the reference is not installed: pip install --no-deps airbench==0.1.8 "
             "(needs torchvision; it is not a dependency of speedrun)")
    from speedrun.analysis.stats import describe, fmt_mean_ci

    data_dir = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar10"  # train94 reads its test set from ./cifar10, so we run from tmp
        write_reference_data(data_dir, folder)
        os.chdir(tmp)
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, airbench {airbench.__file__}")
        print("warm-up: one untimed run of each")
        reference_warmup(airbench, folder)
        our_run(args.recipe, data_dir, seed=0, compile_model=args.compile)
        ref, ours = [], []
        for i in range(args.runs):
            ref.append(reference_run(airbench, folder, run=i + 1))
            ours.append(our_run(args.recipe, data_dir, seed=i + 1, compile_model=args.compile))
            print(f"run {i + 1}: reference {ref[-1][0]:.2f}% in {ref[-1][1]:.3f}s | "
                  f"ours {ours[-1][0]:.2f}% in {ours[-1][1]:.3f}s", flush=True)

    def mean(rows, k):
        return statistics.fmean(r[k] for r in rows)

    print(f"reference airbench94 (airbench 0.1.8): accuracy {fmt_mean_ci(describe(r[0] for r in ref))}, "
          f"speedrun time {mean(ref, 1):.3f}s, wall {mean(ref, 2):.2f}s")
    print(f"ours ({args.recipe}{', compiled' if args.compile else ''}): accuracy {fmt_mean_ci(describe(r[0] for r in ours))}, "
          f"speedrun time {mean(ours, 1):.3f}s, wall {mean(ours, 2):.2f}s (incl. data load and warm-up)")
    print(f"time ratio ours/reference (speedrun time): {mean(ours, 1) / mean(ref, 1):.2f}")


if __name__ == "__main__":
    main()
