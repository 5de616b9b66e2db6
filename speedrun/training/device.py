"""What runs where: device set-up, precision, optimizer kernels, compilation, warm-up and timing.

Both training loops share these, so the rules that keep a GPU busy live in one
place: no host synchronisation inside a step (fused optimizer kernels when a
GradScaler is in play), static compiled graphs warmed up before the clock
starts, and timestamps that wait for the device.
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any, Callable, Iterator, TypeVar

import torch
from torch import nn

from speedrun.training.config import TrainConfig

# Where `fused=True` optimizer kernels are used. With a GradScaler, a fused optimizer checks for
# inf/NaN gradients inside its kernel; any other optimizer makes GradScaler.step call .item() on
# every step, a host sync. On the CPU the fused kernels measured slower, and no scaler runs there.
FUSED_DEVICES = ("cuda",)
# The torch.compile backend; tests swap in a counting one.
COMPILE_BACKEND: Any = "inductor"

T = TypeVar("T")


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that a timestamp means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def setup_torch(config: TrainConfig) -> torch.device:
    """Threads, seed and kernel choices for a resolved config."""
    if config.threads:
        torch.set_num_threads(config.threads)  # one per physical core: no oversubscription, no idle core
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once (in the warm-up)
    return device


def amp_dtype(config: TrainConfig) -> torch.dtype | None:
    """The autocast dtype of a resolved config (None: full precision)."""
    if not config.amp:
        return None
    return torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16


def autocast_for(config: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts: fp16 on CUDA/MPS, bf16 on CPU, nothing without AMP."""
    dtype = amp_dtype(config)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def fused(device: torch.device) -> bool:
    """Whether optimizers on `device` use their fused kernels (see FUSED_DEVICES)."""
    return device.type in FUSED_DEVICES


def grad_scaler_for(config: TrainConfig, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 autocast (its small range needs loss scaling); bf16 and fp32 need none."""
    if amp_dtype(config) is not torch.float16 or device.type == "mps":
        return None
    return torch.amp.GradScaler(device.type)


def compiled(fn: Callable) -> Callable:
    """torch.compile (of a model or a function) with static shapes, each warmed up before timing.

    dynamic=False keeps a differing batch (the last partial one, the evaluation
    batch) from turning every later step into a slower dynamic-shape graph.
    """
    return torch.compile(fn, dynamic=False, backend=COMPILE_BACKEND)


def compiles(config: TrainConfig, device: torch.device) -> bool:
    """Whether helper kernels (Muon's Newton–Schulz) are compiled: with --compile, and on a GPU as the reference."""
    return bool(config.compile) or device.type == "cuda"


def needs_warm_up(config: TrainConfig, device: torch.device) -> bool:
    """Compiled graphs and cudnn's autotuning cost their first call: pay it before the clock starts."""
    return bool(config.compile) or device.type == "cuda"


@contextlib.contextmanager
def untouched(model: nn.Module, *stateful: Any, device: torch.device) -> Iterator[None]:
    """Warm-up work on the real model and optimizers, then their state and the RNG put back.

    The weights are copied back in place (the compiled graphs stay valid), the
    optimizers lose the state of their warm-up steps, and the random streams
    continue as if nothing had run: a warmed-up run is the same run.
    """
    weights = copy.deepcopy(model.state_dict())
    states = [copy.deepcopy(s.state_dict()) for s in stateful]
    trainable = [p.requires_grad for p in model.parameters()]
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
    model.load_state_dict(weights)
    for obj, state in zip(stateful, states):
        obj.load_state_dict(state)
    for p, flag in zip(model.parameters(), trainable):
        p.requires_grad_(flag)
    model.zero_grad(set_to_none=True)


def timed(work: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """(result, seconds) of `work`, the device synchronized before the clock stops."""
    start = time.perf_counter()
    result = work()
    synchronize(device)
    return result, time.perf_counter() - start


class Stopwatch:
    """Sums the duration of timed sections: CUDA events on a GPU, perf_counter after a sync elsewhere."""

    def __init__(self, device: torch.device):
        self.device, self.total, self.last = device, 0.0, 0.0

    @contextlib.contextmanager
    def section(self) -> Iterator[None]:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            torch.cuda.synchronize(self.device)
            self.last = start.elapsed_time(end) / 1000
        else:
            synchronize(self.device)
            start_s = time.perf_counter()
            yield
            synchronize(self.device)
            self.last = time.perf_counter() - start_s
        self.total += self.last
