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
from pathlib import Path

from speedrun.notebook.hardware import hardware_class

HALF, FP32 = "fp16/bf16", "fp32"


@dataclass(frozen=True)
class Peak:
    """The most FLOP/s a device can do, in TFLOP/s, for half precision and for fp32."""

    device: str
    half_tflops: float | None
    fp32_tflops: float | None
    source: str  # "published (vendor datasheet, dense)" or "measured (torch.matmul probe)"

    def for_precision(self, precision: str) -> float | None:
        return self.half_tflops if precision == HALF else self.fp32_tflops


_PUBLISHED = "published (vendor datasheet, dense)"

# (hardware class, a pattern the GPU name must match too or None, peak). Most specific first.
# Half precision is the dense tensor-core rate with fp32 accumulation, what autocast runs.
PUBLISHED_PEAKS: tuple[tuple[str, str | None, Peak], ...] = (
    ("H200", r"nvl", Peak("NVIDIA H200 NVL", 835.5, 60.0, _PUBLISHED)),
    ("H200", None, Peak("NVIDIA H200 SXM", 989.4, 66.9, _PUBLISHED)),
    ("H100", r"pcie", Peak("NVIDIA H100 PCIe", 756.0, 51.2, _PUBLISHED)),
    ("H100", None, Peak("NVIDIA H100 SXM", 989.4, 66.9, _PUBLISHED)),
    ("A100", None, Peak("NVIDIA A100 (40 or 80 GB)", 312.0, 19.5, _PUBLISHED)),
    ("A10", None, Peak("NVIDIA A10", 125.0, 31.2, _PUBLISHED)),
    ("L40S", None, Peak("NVIDIA L40S", 362.1, 91.6, _PUBLISHED)),
    ("L4", None, Peak("NVIDIA L4", 121.0, 30.3, _PUBLISHED)),
    ("T4", None, Peak("NVIDIA T4", 65.0, 8.1, _PUBLISHED)),
    ("V100", None, Peak("NVIDIA V100 SXM2", 125.0, 15.7, _PUBLISHED)),
    ("RTX 4090", None, Peak("NVIDIA GeForce RTX 4090", 165.2, 82.6, _PUBLISHED)),
    ("RTX 3090", None, Peak("NVIDIA GeForce RTX 3090", 71.0, 35.6, _PUBLISHED)),
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


def _matmul_tflops(dtype, n: int = 1024, seconds: float = 0.5) -> float:
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # kernel selection and page faults, not timed
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or reps < 2:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def measured_cpu_peak(cpu: str, threads: int, *, refresh: bool = False) -> Peak:
    """The machine's matmul peak in bf16 and fp32 (about a second), cached per CPU model and thread count."""
    import torch

    key = f"{cpu} | {threads} threads | torch {torch.__version__}"
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not refresh and isinstance(known.get(key), dict):
        try:
            return Peak(**known[key])
        except TypeError:
            pass
    peak = Peak(cpu, round(_matmul_tflops(torch.bfloat16), 4), round(_matmul_tflops(torch.float32), 4),
                "measured (torch.matmul probe)")
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

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation: achieved FLOP/s over the peak, a fraction."""
        return self.tflops / self.peak_tflops if self.peak_tflops else None


def efficiency(images: int, seconds: float, flops_per_image: int, *, peak: Peak | None, precision: str,
               derived: bool = False) -> Efficiency | None:
    """Images/s, TFLOP/s and MFU of `images` trained in `seconds`; None without a usable duration."""
    if not seconds or seconds <= 0 or images <= 0:
        return None
    rate = images / seconds
    return Efficiency(
        images_per_s=rate,
        tflops=rate * flops_per_image / 1e12,
        peak_tflops=peak.for_precision(precision) if peak else None,
        precision=precision,
        peak_source=peak.source if peak else None,
        derived=derived,
    )


def precision_of(amp: bool | None) -> str:
    """The precision whose peak a run is measured against: AMP trains in fp16/bf16, else fp32."""
    return HALF if amp else FP32


def fmt_efficiency(e: Efficiency | None) -> str:
    """`15.9 TFLOP/s, 5.1% of 312 TFLOP/s fp16/bf16 peak (published)` — one sentence, one home."""
    if e is None:
        return "—"
    text = f"{e.images_per_s:,.0f} img/s, {e.tflops:.3g} TFLOP/s"
    if e.mfu is not None:
        kind = (e.peak_source or "").split(" ")[0]
        text += f", {e.mfu:.1%} of the {e.peak_tflops:g} TFLOP/s {e.precision} peak ({kind})"
    return text + (" [derived from logged durations]" if e.derived else "")
