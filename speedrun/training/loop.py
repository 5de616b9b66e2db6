"""The training loop: data on the device, whole-batch augmentation, honest timing.

It knows nothing about the database. It reports to a `Recorder` (the CLI's
wraps the Store, tests use `MemoryRecorder`) and prints through a `Reporter`
in the user's log format, so the output reads back with `import-log`.

Timing: the device is synchronized before every timestamp. "Duration" and
"Total" count training only (the user's logs, and time-to-target, use the
cumulative training time); evaluation is timed separately.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.training.augment import Preprocess
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10
from speedrun.training.device import (Stopwatch, autocast_for, compiled, fused, grad_scaler_for, needs_warm_up,
                                      setup_torch, synchronize, untouched)
from speedrun.training.nets import build_model, count_parameters

HEARTBEAT_S = 10.0
REFRESH_S = 0.5  # progress bar redraws at most this often
EVAL_BATCH = 500
# Shown on the `Config:` line after the user's own keys (LR, BATCH_SIZE, EPOCHS, COSINE, AMP).
EXTRA_CONFIG_KEYS = ("model", "optimizer", "momentum", "weight_decay", "bn")


class Recorder(Protocol):
    """Where a run's progress goes. `begin` returns the run number, if it has one."""

    def begin(self, record: RunRecord) -> int | None: ...

    def epoch(self, record: EpochRecord) -> None: ...

    def heartbeat(self) -> None: ...

    def finish(self, status: str, *, error: str | None = None, train_time_s: float | None = None,
               wall_time_s: float | None = None, final_val_acc: float | None = None,
               final_from: str | None = None, extra: dict[str, Any] | None = None) -> None: ...


@dataclass
class MemoryRecorder:
    """A Recorder that keeps everything in memory (tests, benchmarks, `--dry-run`-like uses)."""

    run: RunRecord | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    heartbeats: int = 0
    status: str | None = None
    finish_args: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    location: str = "memory"

    def begin(self, record: RunRecord) -> int:
        self.run, self.status, self.run_id = record, record.status, 1
        return self.run_id

    def epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record)

    def heartbeat(self) -> None:
        self.heartbeats += 1

    def finish(self, status: str, **kwargs: Any) -> None:
        self.status, self.finish_args = status, kwargs


class Reporter:
    """Prints log lines through one Console; on a terminal, a transient progress bar per epoch."""

    def __init__(self, console: Console | None = None, progress: bool | None = None):
        self.console = console or Console()
        self.progress = self.console.is_terminal if progress is None else progress

    def line(self, text: str) -> None:
        # soft_wrap: a long Config line must stay one line to read back.
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def epoch(self, epoch: int, epochs: int, batches: int) -> Iterator[Callable[[int], None]]:
        """Yields `advance(images)`, to be called after each batch.

        The bar is started and cleared outside the timed span (enter this before
        the stopwatch), it has no refresh thread competing with the training
        for the interpreter, and a batch costs a clock read: it is drawn at
        most every REFRESH_S.
        """
        if not self.progress:
            yield lambda images: None
            return
        columns = (TextColumn("Epoch {task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True, auto_refresh=False) as bar:
            task = bar.add_task("train", total=batches, label=f"{epoch}/{epochs}", rate="-")
            start = drawn = time.perf_counter()
            seen = done = 0

            def advance(images: int) -> None:
                nonlocal seen, done, drawn
                seen, done = seen + images, done + 1
                now = time.perf_counter()
                if now - drawn >= REFRESH_S:
                    rate = seen / max(now - start, 1e-9)  # unsynchronized: a display estimate
                    bar.update(task, completed=done, rate=f"{rate:,.0f}", refresh=True)
                    drawn = now

            yield advance


@dataclass
class TrainResult:
    run_id: int | None
    status: str
    epochs: list[EpochRecord]
    param_count: int
    data_load_s: float
    train_time_s: float
    eval_time_s: float
    wall_time_s: float
    target_time_s: float | None = None
    measured_final_val_acc: float | None = None  # measured after the last epoch (TTA), when it was

    @property
    def final_val_acc(self) -> float | None:
        if self.measured_final_val_acc is not None:
            return self.measured_final_val_acc
        return self.epochs[-1].val_acc if self.epochs else None


@dataclass
class Parts:
    """What the classic loop trains with, built once per run (and by the benchmark, the same way)."""

    model: nn.Module  # the module itself: weights, parameter count, state
    net: nn.Module  # what the steps call: the model, or its compiled wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    autocast: Callable[[], contextlib.AbstractContextManager]
    prep: Preprocess


def make_optimizer(config: TrainConfig, params, *, fused: bool = False) -> torch.optim.Optimizer:
    """The configured optimizer; `fused` selects the one-kernel implementation (see device.FUSED_DEVICES)."""
    kernel = {"fused": True} if fused else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.nesterov, **kernel)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **kernel)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **kernel)


def build_parts(config: TrainConfig, device: torch.device) -> Parts:
    """Model, optimizer, GradScaler, autocast and preprocessing exactly as `speedrun train` uses them."""
    model = build_model(config.model, bn=config.bn).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model.parameters(), fused=fused(device))
    net = compiled(model) if config.compile else model
    return Parts(model, net, optimizer, grad_scaler_for(config, device), autocast_for(config, device),
                 Preprocess(config.augment, device))


def train_step(parts: Parts, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step; (loss, outputs) stay on the device."""
    with parts.autocast():
        outputs = parts.net(inputs)
        loss = F.cross_entropy(outputs, labels)
    parts.optimizer.zero_grad(set_to_none=True)
    if parts.scaler is not None:
        # A fused optimizer unscales and skips inf/NaN steps in its kernel: no .item() per step.
        parts.scaler.scale(loss).backward()
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
    else:
        loss.backward()
        parts.optimizer.step()
    return loss, outputs


def train_epoch(parts: Parts, data: Cifar10, batch_size: int,
                after_batch: Callable[[int], None]) -> tuple[float, float]:
    """One pass over the shuffled training set; (mean loss, accuracy %) read back once at the end."""
    parts.net.train()
    device = data.train_labels.device
    n = data.num_train
    order = torch.randperm(n, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        labels = data.train_labels[idx]
        loss, outputs = train_step(parts, parts.prep.train(data.train_images[idx]), labels)
        # Accumulate on the device: a .item() here would stall the pipeline every batch.
        loss_sum += loss.detach().float() * len(idx)
        correct += (outputs.argmax(1) == labels).sum()
        after_batch(len(idx))
    return loss_sum.item() / n, 100.0 * correct.item() / n


@torch.no_grad()
def evaluate(net, images: torch.Tensor, labels: torch.Tensor, prep: Preprocess, autocast) -> tuple[float, float]:
    """(mean loss, accuracy %) on the test set, without augmentation."""
    net.eval()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        x, y = prep.normalize(images[start:start + EVAL_BATCH]), labels[start:start + EVAL_BATCH]
        with autocast():
            outputs = net(x)
        loss_sum += F.cross_entropy(outputs.float(), y, reduction="sum")
        correct += (outputs.argmax(1) == y).sum()
    return loss_sum.item() / len(labels), 100.0 * correct.item() / len(labels)


def batch_sizes(n: int, batch: int) -> list[int]:
    """The distinct batch sizes a pass over n items in batches of `batch` meets: full and last."""
    return sorted({min(batch, n), n % batch or min(batch, n)}, reverse=True)


def warm_up(parts: Parts, data: Cifar10, batch_size: int, device: torch.device) -> float:
    """Every shape and mode once (compilation, cudnn autotuning), then the state put back; seconds taken.

    Training steps at the full and the last partial batch size, and the
    evaluation at its full and last batch sizes: with static compiled graphs,
    each is its own graph, and none may be compiled while the clock runs.
    """
    start = time.perf_counter()
    images, labels = data.train_images, data.train_labels
    with untouched(parts.model, parts.optimizer, *([parts.scaler] if parts.scaler else []), device=device):
        parts.net.train()
        for size in batch_sizes(data.num_train, batch_size):
            train_step(parts, parts.prep.train(images[:size]), labels[:size])
        n_test = len(data.test_labels)
        for size in batch_sizes(n_test, EVAL_BATCH):
            evaluate(parts.net, data.test_images[:size], data.test_labels[:size],
                     parts.prep, parts.autocast)
    synchronize(device)
    return time.perf_counter() - start


def train(config: TrainConfig, recorder: Recorder, *, record: RunRecord | None = None,
          reporter: Reporter | None = None) -> TrainResult:
    """Train a resolved config, reporting every epoch; KeyboardInterrupt and errors are recorded, then re-raised.

    `record` carries what the caller knows (title, tags, env, command, git); the
    loop fills in params, parameter count, load time and start time.
    """
    reporter = reporter or Reporter()
    wall_start = time.perf_counter()
    device = setup_torch(config)

    load_start = time.perf_counter()
    data = load_cifar10(config.data_dir, device, subset=config.subset)
    synchronize(device)
    data_load_s = time.perf_counter() - load_start

    parts = build_parts(config, device)
    param_count = count_parameters(parts.model)
    warmup_s = warm_up(parts, data, config.batch_size, device) if needs_warm_up(config, device) else 0.0
    params = config.to_params()

    for text in header_lines(str(device), param_count, params, data_load_s, amp=bool(config.amp),
                             seed=config.seed, extra_config_keys=EXTRA_CONFIG_KEYS):
        reporter.line(text)
    if warmup_s:
        reporter.line(f"Warm-up (compile/cudnn, not timed): {warmup_s:.2f} seconds")

    record = record or RunRecord(source="train")
    record.source, record.status = "train", "running"
    record.params, record.param_count, record.data_load_s = params, param_count, data_load_s
    record.target_acc = config.target
    record.pid = os.getpid()
    record.started_at = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as the store keeps times
    run_id = recorder.begin(record)

    watch = Stopwatch(device)
    epochs: list[EpochRecord] = []
    eval_time = 0.0
    target_time: float | None = None
    batches = -(-data.num_train // config.batch_size)
    last_beat = time.monotonic()

    def after_batch(advance: Callable[[int], None]) -> Callable[[int], None]:
        def hook(images: int) -> None:
            nonlocal last_beat
            advance(images)
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                recorder.heartbeat()
                last_beat = time.monotonic()
        return hook

    def summary() -> dict[str, Any]:
        extra: dict[str, Any] = {"eval_time_s": eval_time}
        if warmup_s:
            extra["warmup_s"] = warmup_s
        if config.target is not None:
            extra.update(target_acc=config.target, target_time_s=target_time)
        return extra

    try:
        for epoch in range(1, config.epochs + 1):
            lr = config.lr_at(epoch - 1)
            for group in parts.optimizer.param_groups:
                group["lr"] = lr
            with reporter.epoch(epoch, config.epochs, batches) as advance, watch.section():
                train_loss, train_acc = train_epoch(parts, data, config.batch_size, after_batch(advance))
            duration = watch.last

            eval_start = time.perf_counter()
            val_loss, val_acc = evaluate(parts.net, data.test_images, data.test_labels, parts.prep, parts.autocast)
            synchronize(device)
            eval_time += time.perf_counter() - eval_start

            if config.target is not None and target_time is None and val_acc >= config.target:
                target_time = watch.total
            row = EpochRecord(epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                              val_acc=val_acc, duration_s=duration, elapsed_s=watch.total, lr=lr,
                              images_per_s=data.num_train / duration)
            epochs.append(row)
            reporter.line(epoch_line(epoch, config.epochs, train_loss, val_acc, duration, watch.total))
            recorder.epoch(row)
            last_beat = time.monotonic()
    except KeyboardInterrupt:
        recorder.finish("interrupted", train_time_s=watch.total, wall_time_s=time.perf_counter() - wall_start,
                        extra=summary())
        raise
    except Exception as exc:
        recorder.finish("failed", error=f"{type(exc).__name__}: {exc}", train_time_s=watch.total,
                        wall_time_s=time.perf_counter() - wall_start, extra=summary())
        raise

    train_time = watch.total
    for text in footer_lines(train_time, epochs[-1].val_acc):
        reporter.line(text)
    if config.target is not None:
        reached = f"after {target_time:.1f}s of training" if target_time is not None else "not reached"
        reporter.line(f"Target {config.target:.2f}%: {reached}")
    reporter.line(f"Evaluation time (not in training time): {eval_time:.2f} seconds")
    wall_time = time.perf_counter() - wall_start
    recorder.finish("completed", train_time_s=train_time, wall_time_s=wall_time, extra=summary())
    return TrainResult(run_id, "completed", epochs, param_count, data_load_s, train_time, eval_time,
                       wall_time, target_time)
