"""How far a run is from the hardware's limit: achieved FLOP/s against the device's peak (MFU).

Peaks of GPUs are the vendors' published dense figures (no structured
sparsity) for the two precisions a run can train in: fp16/bf16 on the tensor
cores (what AMP uses) and plain fp32. A CPU has no published figure that
means anything for PyTorch, so its peak is measured: the best square
`torch.matmul` of a short probe, cached per machine. Every peak says which
it is ("published" or "measured"), and every figure derived from a logged
epoch duration rather than recorded while training says so too.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Any
from pathlib import Path

from speedrun.domain.hardware import hardware_class, hardware_class_of
from speedrun.domain.memo import per_run

HALF, FP32, TF32 = "fp16/bf16", "fp32", "tf32"  # TF32: fp32 math on the tensor cores (Ampere and newer)
# An imported run that does not state whether it trained with AMP: one flag moves its MFU by 8-16x,
# so its figure is the range between the two peaks, and it is no candidate for "most efficient".
UNKNOWN_PRECISION = "precision not stated"
# An imported run that states it trained without AMP on a GPU with TF32 tensor cores (Ampere and newer):
# PyTorch runs fp32 convolutions there in TF32 by default (cudnn.allow_tf32), unless the script turned it
# off, which no log says. Its figure is the range between the TF32 and fp32 peaks (8x apart on an A100).
FP32_OR_TF32 = "fp32 without AMP: TF32 unless turned off"
# The precisions whose peak is one of two: (the faster peak's, the slower peak's).
RANGED_PRECISIONS = {UNKNOWN_PRECISION: (HALF, FP32), FP32_OR_TF32: (TF32, FP32)}


@dataclass(frozen=True)
class Peak:
    """The most FLOP/s a device can do, in TFLOP/s, for half precision and for fp32."""

    device: str
    half_tflops: float | None
    fp32_tflops: float | None
    source: str  # "published (vendor datasheet, dense)" or "measured (torch.matmul probe)"
    tf32_tflops: float | None = None  # GPUs with TF32 tensor cores (Ampere and newer)

    def for_precision(self, precision: str) -> float | None:
        if precision in RANGED_PRECISIONS:
            return None
        if precision == TF32:
            return self.tf32_tflops or self.fp32_tflops
        return self.half_tflops if precision == HALF else self.fp32_tflops


_PUBLISHED = "published (vendor datasheet, dense)"

# (hardware class, a pattern the GPU name must match too or None, peak). Most specific first.
# Half precision is the dense tensor-core rate with fp32 accumulation, what autocast runs; TF32 the
# dense TF32 tensor-core rate, what fp32 convolutions run at by PyTorch's default (cudnn.allow_tf32).
PUBLISHED_PEAKS: tuple[tuple[str, str | None, Peak], ...] = (
    ("H200", r"nvl", Peak("NVIDIA H200 NVL", 835.5, 60.0, _PUBLISHED, tf32_tflops=417.5)),
    ("H200", None, Peak("NVIDIA H200 SXM", 989.4, 66.9, _PUBLISHED, tf32_tflops=494.7)),
    ("H100", r"pcie", Peak("NVIDIA H100 PCIe", 756.0, 51.2, _PUBLISHED, tf32_tflops=378.0)),
    ("H100", None, Peak("NVIDIA H100 SXM", 989.4, 66.9, _PUBLISHED, tf32_tflops=494.7)),
    ("A100", None, Peak("NVIDIA A100 (40 or 80 GB)", 312.0, 19.5, _PUBLISHED, tf32_tflops=156.0)),
    ("A10", None, Peak("NVIDIA A10", 125.0, 31.2, _PUBLISHED, tf32_tflops=62.5)),
    ("L40S", None, Peak("NVIDIA L40S", 362.1, 91.6, _PUBLISHED, tf32_tflops=183.0)),
    ("L4", None, Peak("NVIDIA L4", 121.0, 30.3, _PUBLISHED, tf32_tflops=60.0)),
    ("T4", None, Peak("NVIDIA T4", 65.0, 8.1, _PUBLISHED)),
    ("V100", None, Peak("NVIDIA V100 SXM2", 125.0, 15.7, _PUBLISHED)),
    ("RTX 4090", None, Peak("NVIDIA GeForce RTX 4090", 165.2, 82.6, _PUBLISHED, tf32_tflops=82.6)),
    ("RTX 3090", None, Peak("NVIDIA GeForce RTX 3090", 71.0, 35.6, _PUBLISHED, tf32_tflops=35.6)),
)


def published_peak(hardware: str | None) -> Peak | None:
    """The published peak of the GPU a name or free text describes ("Tesla T4", "Colab, A100 GPU")."""
    cls = hardware_class(hardware)
    for name, variant, peak in PUBLISHED_PEAKS:
        if cls == name and (variant is None or re.search(variant, hardware or "", re.IGNORECASE)):
            return peak
    return None


# --- CPUs: measured ----------------------------------------------------------------------------------------

def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "speedrun" / "cpu-peak.json"


def _matmul_tflops(dtype, n: int = 1024, seconds: float = 0.3, rounds: int = 3) -> float:
    """The best of `rounds` timings of square matmuls: a busy moment lowers one round, not the peak."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # kernel selection and page faults, not timed
    best = 0.0
    for _ in range(rounds):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or reps < 2:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e12)
    return best


def measured_cpu_peak(cpu: str, threads: int, *, refresh: bool = False) -> Peak:
    """The machine's matmul peak in bf16 and fp32 (about two seconds), cached per CPU model and
    thread count. Measuring again (`refresh`) keeps the higher figure of each: a probe can only
    be slowed by other work, never sped up."""
    import torch

    key = f"{cpu} | {threads} threads | torch {torch.__version__}"
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    cached = None
    if isinstance(known.get(key), dict):
        try:
            cached = Peak(**known[key])
        except TypeError:
            pass
    if cached is not None and not refresh:
        return cached
    half, fp32 = _matmul_tflops(torch.bfloat16), _matmul_tflops(torch.float32)
    if cached is not None:
        half, fp32 = max(half, cached.half_tflops or 0.0), max(fp32, cached.fp32_tflops or 0.0)
    peak = Peak(cpu, round(half, 4), round(fp32, 4), "measured (torch.matmul probe)")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        known[key] = asdict(peak)
        cache.write_text(json.dumps(known, indent=1))
    except OSError:
        pass  # a read-only home: measure again next time
    return peak


# --- achieved FLOP/s and MFU -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Efficiency:
    """Throughput of one epoch or run and its share of the device's peak."""

    images_per_s: float
    tflops: float
    peak_tflops: float | None
    precision: str
    peak_source: str | None
    derived: bool  # True: from a logged duration (imported), not measured while training
    peak_range: tuple[float, float] | None = None  # the two peaks of a precision in RANGED_PRECISIONS

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation: achieved FLOP/s over the peak, a fraction; None when the
        precision, so the peak, is unknown (see `mfu_range`)."""
        return self.tflops / self.peak_tflops if self.peak_tflops else None

    @property
    def mfu_range(self) -> tuple[float, float] | None:
        """(against the faster peak, against the slower) when the precision is one of two
        (RANGED_PRECISIONS: fp16/bf16 or fp32 when not stated, TF32 or fp32 without AMP on Ampere)."""
        if self.peak_range is None:
            return None
        return self.tflops / self.peak_range[0], self.tflops / self.peak_range[1]


def efficiency(images: int, seconds: float, flops_per_image: int, *, peak: Peak | None, precision: str,
               derived: bool = False) -> Efficiency | None:
    """Images/s, TFLOP/s and MFU of `images` trained in `seconds`; None without a usable duration."""
    if not seconds or seconds <= 0 or images <= 0:
        return None
    return at_rate(images / seconds, flops_per_image, peak=peak, precision=precision, derived=derived)


def at_rate(images_per_s: float, flops_per_image: int, *, peak: Peak | None, precision: str,
            derived: bool = False) -> Efficiency:
    """The figures of a training rate of `images_per_s`."""
    return Efficiency(
        images_per_s=images_per_s,
        tflops=images_per_s * flops_per_image / 1e12,
        peak_tflops=peak.for_precision(precision) if peak else None,
        precision=precision,
        peak_source=peak.source if peak else None,
        derived=derived,
        peak_range=_peak_range(peak, precision),
    )


def _peak_range(peak: Peak | None, precision: str) -> tuple[float, float] | None:
    if peak is None or precision not in RANGED_PRECISIONS:
        return None
    fast, slow = (peak.for_precision(p) for p in RANGED_PRECISIONS[precision])
    return (fast, slow) if fast and slow else None


def precision_of(amp: bool | None, *, stated: bool = True, tf32: bool = False, tf32_cores: bool = False) -> str:
    """The precision whose peak a run is measured against: AMP trains in fp16/bf16, else fp32, or
    TF32 where the fp32 math ran on TF32 tensor cores (`tf32`, as the training recorded it).
    A run that does not state `amp` (`stated=False`: an imported log or notebook) has none; one that
    states it trained without AMP on a GPU with TF32 cores (`tf32_cores`) ran at one of two peaks."""
    if amp is None and not stated:
        return UNKNOWN_PRECISION
    if not amp and not stated and tf32_cores:
        return FP32_OR_TF32
    return HALF if amp else TF32 if tf32 else FP32


def efficiency_json(e: Efficiency | None) -> dict[str, Any] | None:
    """The figures as `show --json` and `list --json` give them."""
    if e is None:
        return None
    return {"images_per_s": e.images_per_s, "tflops": e.tflops, "peak_tflops": e.peak_tflops, "mfu": e.mfu,
            "mfu_range": list(e.mfu_range) if e.mfu_range else None,
            "precision": e.precision, "peak_source": e.peak_source, "derived": e.derived}


def fmt_efficiency(e: Efficiency | None) -> str:
    """`15.9 TFLOP/s, 5.1% of 312 TFLOP/s fp16/bf16 peak (published)` — one sentence, one home."""
    if e is None:
        return "—"
    text = f"{e.images_per_s:,.0f} img/s, {e.tflops:.3g} TFLOP/s"
    kind = (e.peak_source or "").split(" ")[0]
    if e.mfu is not None:
        text += f", {e.mfu:.1%} of the {e.peak_tflops:g} TFLOP/s {e.precision} peak ({kind})"
    elif e.mfu_range is not None:
        low, high = e.mfu_range
        fast, slow = RANGED_PRECISIONS[e.precision]
        text += (f", {low:.1%} to {high:.1%} of the peak ({e.peak_range[0]:g} TFLOP/s {fast} to "
                 f"{e.peak_range[1]:g} {slow}, {kind}; {e.precision})")
    return text + (" [derived from logged durations]" if e.derived else "")


# --- a run's figures -----------------------------------------------------------------------------------------

# FLOPs per trained image (forward + backward) of the networks `speedrun train` builds, as
# speedrun.training.flops counts them (tests/test_efficiency.py checks each against the count),
# written out so that reading a run needs no torch.
FLOPS_PER_TRAINED_IMAGE = {"resnet18": 3_328_997_376, "resnet9": 2_272_032_768, "airbench94": 707_777_088}
CIFAR10_TRAIN_IMAGES = 50_000
_PARAMETER_COUNTS = {11_173_962: "resnet18", 11_164_362: "resnet18", 6_573_120: "resnet9"}


def network_of(run: Any) -> str | None:
    """The network a run trained: known by its parameter count where the count is one of ours,
    else by its model parameter. The count wins: the user's logs print "Model parameters:
    11,173,962" (our resnet18) and their notebook calls that net "ResNet-9"."""
    by_count = _PARAMETER_COUNTS.get(run.param_count)
    if by_count is not None:
        return by_count
    model = str((run.param_dict or {}).get("model") or "").lower().replace("-", "").replace("_", "")
    return model if model in FLOPS_PER_TRAINED_IMAGE else None


def flops_per_trained_image(run: Any) -> int | None:
    """FLOPs per trained image: as the training counted and recorded them, else by the network."""
    recorded = ((run.extra or {}).get("flops") or {})
    if isinstance(recorded, dict) and isinstance(recorded.get("train"), int) and recorded["train"] > 0:
        return recorded["train"]
    network = network_of(run)
    return FLOPS_PER_TRAINED_IMAGE[network] if network else None


def run_peak(run: Any) -> Peak | None:
    """The peak a run is measured against: the one recorded when it trained (a CPU's probe, a GPU's
    published figure), else the published peak of its recorded GPU or hardware text."""
    try:
        return Peak(**(run.extra or {})["peak"])
    except (KeyError, TypeError):  # none recorded (or not as written)
        env = run.environment
        return published_peak((env.gpu_name or env.hardware) if env is not None else None)


@dataclass(frozen=True)
class _Basis:
    """What every figure of a run is computed from, read once per run."""

    flops: int  # per trained image
    peak: Peak | None
    precision: str
    derived: bool  # imported: from logged durations


def _basis(run: Any) -> _Basis | None:
    flops = flops_per_trained_image(run)
    if flops is None:
        return None
    amp = (run.param_dict or {}).get("amp")
    machine = (run.extra or {}).get("machine")
    tf32 = isinstance(machine, dict) and machine.get("tf32") is True
    peak = run_peak(run)
    precision = precision_of(amp, stated=run.source == "train", tf32=tf32,
                             tf32_cores=peak is not None and peak.tf32_tflops is not None)
    return _Basis(flops, peak, precision, run.source != "train")


def run_efficiency(run: Any) -> Efficiency | None:
    """Images/s, TFLOP/s and MFU of a run's mean epoch, or None where the network or the duration is unknown.

    Figures of imported runs are derived from the logged epoch durations
    (which may include evaluation), and say so. Computed once per run object (`memo.per_run`).
    """
    return per_run(run, "efficiency", _run_efficiency)


def _run_efficiency(run: Any) -> Efficiency | None:
    basis, seconds = _basis(run), run.mean_epoch_s
    if basis is None or not seconds:
        return None
    return efficiency(_epoch_images(run), seconds, basis.flops, peak=basis.peak, precision=basis.precision,
                      derived=basis.derived)


def epoch_efficiencies(run: Any) -> list[Efficiency | None]:
    """The same figures for each epoch, from its images/s (measured while training) or its logged duration."""
    basis = _basis(run)
    if basis is None:
        return [None] * len(run.epochs)
    figures: list[Efficiency | None] = []
    for epoch in run.epochs:
        if epoch.images_per_s:
            figures.append(at_rate(epoch.images_per_s, basis.flops, peak=basis.peak, precision=basis.precision,
                                   derived=basis.derived))
        else:
            figures.append(efficiency(_epoch_images(run), epoch.duration_s or 0.0, basis.flops, peak=basis.peak,
                                      precision=basis.precision, derived=True))
    return figures


def _epoch_images(run: Any) -> int:
    """Images in one epoch of a run: as the training recorded them, else its subset, else all of CIFAR-10."""
    recorded = (run.extra or {}).get("train_images")
    return int(recorded if isinstance(recorded, int) else (run.param_dict or {}).get("subset") or CIFAR10_TRAIN_IMAGES)


# --- the report's line per hardware class ------------------------------------------------------------------

def best_by_hardware(runs: Any) -> list[dict[str, Any]]:
    """Per hardware class, the run that came closest to the device's peak: how close, and which run.

    Only runs with an MFU compete (a known network, duration, precision and peak):
    a run whose precision is not known for certain has a range, not a figure. A class
    none of whose runs has a known precision names its fastest run, with the range.
    """
    best: dict[str, tuple[Any, Efficiency]] = {}
    ranged: dict[str, tuple[Any, Efficiency]] = {}  # classes where no run's precision is known
    for run in runs:
        e = run_efficiency(run)
        if e is None:
            continue
        cls = hardware_class_of(run)
        if e.mfu is not None:
            if cls not in best or e.mfu > best[cls][1].mfu:
                best[cls] = (run, e)
        elif e.mfu_range is not None and (cls not in ranged or e.tflops > ranged[cls][1].tflops):
            ranged[cls] = (run, e)
    rows = {cls: {"hardware": cls, "run": run.display_label, "run_id": run.id, "mfu": e.mfu,
                  "text": f"Run {run.display_label}, {fmt_efficiency(e)}"}
            for cls, (run, e) in best.items()}
    for cls, (run, e) in ranged.items():
        if cls not in rows:  # the fastest, by achieved FLOP/s: its share of the peak is only a range
            rows[cls] = {"hardware": cls, "run": run.display_label, "run_id": run.id, "mfu": None,
                         "text": f"no run's precision is known for certain; the fastest, Run {run.display_label}, "
                                 f"{fmt_efficiency(e)}"}
    order = list(dict.fromkeys(hardware_class_of(r) for r in runs))
    return [rows[cls] for cls in order if cls in rows]
