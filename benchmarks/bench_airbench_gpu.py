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

Fair on any GPU, and measured as a comparison of pairs (speedrun.analysis.timing):
both sides run on the same device in one process; each is warmed up the same way,
by one full untimed run; before every timed run the allocator is reset
(empty_cache, peak statistics) and the card rests for --cool-down seconds. The
runs then go in pairs, ABBA-counterbalanced (neither side always runs second).
The verdict is the paired t-test on the pairs' log time ratios (the ratio's 95%
interval, and the one-sided test of ratio <= 0.95 at p<0.01), not Welch's
test, which would count the card's drift between pairs as noise. Two controls
say whether the harness can be trusted: an A/A control (--aa N pairs of the
reference against itself, run first: its interval must hold 1) and each side's
drift over run order (Spearman's rho). The GPU's clocks, power limit and
temperature are printed before and after (nvidia-smi).

Both times are the same "speedrun time": CUDA-event time of the whitening
init, the training epochs and the final TTA evaluation, without the per-epoch
evaluations: for the reference, the `total_time_seconds` it prints on its
final `eval` row; for ours, the run's recorded train_time_s, printed with its
phases (whitening, epochs, TTA). Accuracy is compared with the one verdict
speedrun's compare and stats give.
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


class FinishRecorder:
    """A Recorder (speedrun.training.recording) that keeps nothing but how the last run finished."""

    label = "memory"

    def __init__(self) -> None:
        self.finish_args: dict = {}

    def begin_run(self, record) -> int:
        return 1

    def add_epoch(self, run_id: int, epoch) -> None:
        pass

    def heartbeat(self, run_id: int) -> None:
        pass

    def finish_run(self, run_id: int, status: str, **kwargs) -> None:
        self.finish_args = kwargs


def our_run(recipe_name: str, data_dir: str, seed: int, compile_model: bool) -> tuple[float, float, float, dict]:
    """(TTA accuracy %, speedrun time s, wall s, phases s) of one run of our recipe."""
    from rich.console import Console

    from speedrun.recipes import get_recipe
    from speedrun.training.recording import Reporter

    recipe = get_recipe(recipe_name)
    config = recipe.configure(device="cuda", seed=seed, data_dir=data_dir, compile=compile_model).resolve()
    recorder = FinishRecorder()
    quiet = Reporter(Console(file=io.StringIO()), progress=False)
    result = recipe.train(config, recorder, reporter=quiet)
    extra = recorder.finish_args.get("extra") or {}
    whiten, tta = extra.get("whiten_init_s", 0.0), extra.get("tta_time_s", 0.0)
    phases = {"whitening": whiten, "epochs": result.train_time_s - whiten - tta, "tta": tta}
    return result.final_val_acc, result.train_time_s, result.wall_time_s, phases


def settle(cool_down: float) -> None:
    """The same start for every timed run: the allocator emptied, its statistics reset, a short rest."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    time.sleep(cool_down)


def gpu_state() -> str:
    """Clocks, power limit and temperature as nvidia-smi reports them (or why not)."""
    import subprocess

    fields = "name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.limit,power.draw,temperature.gpu"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi unavailable ({exc})"
    return f"{fields}: {out.stdout.strip() or out.stderr.strip()}"


def summary(label: str, values: list[float], unit: str) -> str:
    """"94.01 ± 0.05 (n=25), interval width 0.10, std 0.13" for one side."""
    from speedrun.domain.stats import describe, fmt_mean_ci

    desc = describe(values)
    width = f", interval width {2 * desc.ci_half_width:.3f}{unit}" if desc.ci_half_width is not None else ""
    spread = f", std {desc.std:.3f}{unit}" if desc.std is not None else ""
    return f"{label}: {fmt_mean_ci(desc, digits=3)}{unit}{width}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", type=int, default=25, help="timed pairs (after one untimed full run each)")
    parser.add_argument("--aa", type=int, default=6, help="A/A control pairs: the reference against itself, first")
    parser.add_argument("--cool-down", type=float, default=2.0, help="seconds of rest before every timed run")
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
    from speedrun.analysis.metrics import FINAL_ACCURACY, verdict
    from speedrun.analysis.timing import drift, pair_orders, paired_ratio, stationary
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
        print(f"before: {gpu_state()}")
        print("warm-up: one full untimed run of each", flush=True)
        reference_run(airbench, folder, run=0)
        our_run(args.recipe, data_dir, seed=0, compile_model=args.compile)

        def timed_reference(run: int):
            settle(args.cool_down)
            return reference_run(airbench, folder, run=run)

        def timed_ours(seed: int):
            settle(args.cool_down)
            return our_run(args.recipe, data_dir, seed=seed, compile_model=args.compile)

        aa_first, aa_second = [], []
        for i, order in enumerate(pair_orders(args.aa)):
            pair = [None, None]
            for side in order:
                pair[side] = timed_reference(run=1000 + 2 * i + side)[1]
            aa_first.append(pair[0])
            aa_second.append(pair[1])
        ref, ours = [], []
        for i, order in enumerate(pair_orders(args.runs)):
            for side in order:
                if side == 0:
                    ref.append(timed_reference(run=i + 1))
                else:
                    ours.append(timed_ours(seed=i + 1))
            phases = ", ".join(f"{k} {v:.3f}s" for k, v in ours[-1][3].items())
            print(f"pair {i + 1} ({'reference first' if order[0] == 0 else 'ours first'}): "
                  f"reference {ref[-1][0]:.2f}% in {ref[-1][1]:.3f}s | ours {ours[-1][0]:.2f}% in "
                  f"{ours[-1][1]:.3f}s ({phases})", flush=True)
        print(f"after: {gpu_state()}")

    ours_label = f"ours ({args.recipe}{', compiled' if args.compile else ''})"
    for label, rows in (("reference airbench94 (airbench 0.1.8)", ref), (ours_label, ours)):
        print(summary(f"{label} accuracy", [r[0] for r in rows], "%"))
        print(summary(f"{label} speedrun time", [r[1] for r in rows], " s"))
        print(f"{label} wall time: {statistics.fmean(r[2] for r in rows):.2f} s mean"
              + (" (incl. data load and warm-up)" if rows is ours else ""))
    for phase in ours[0][3]:
        print(f"{ours_label} {phase}: {statistics.fmean(r[3][phase] for r in ours):.3f} s mean")
    # The harness: an A/A control and drift over run order.
    if len(aa_first) >= 2:
        aa = paired_ratio(aa_first, aa_second)
        state = "stationary" if stationary(aa) else "NOT stationary: the comparison below is not to be trusted"
        print(f"A/A control: {aa.line('reference', 'reference')}: {state}")
    print(drift([r[1] for r in ref]).line("reference time drift"))
    print(drift([r[1] for r in ours]).line("ours time drift"))
    # Accuracy: the one verdict speedrun's report, compare and stats give; time: the paired test.
    names = ("reference", "ours")
    as_runs = lambda rows: [SimpleNamespace(final_val_acc=r[0], train_time_s=r[1]) for r in rows]  # noqa: E731
    print("accuracy:", verdict(FINAL_ACCURACY, as_runs(ref), as_runs(ours), names=names).line)
    print("time:", paired_ratio([r[1] for r in ours], [r[1] for r in ref], target=0.95).line("ours", "reference"))


if __name__ == "__main__":
    main()
