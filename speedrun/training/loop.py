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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.training.augment import Preprocess
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10
from speedrun.training.nets import build_model, count_parameters

HEARTBEAT_S = 10.0
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
        """Yields `advance(images)`, to be called after each batch."""
        if not self.progress:
            yield lambda images: None
            return
        columns = (TextColumn("Epoch {task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task("train", total=batches, label=f"{epoch}/{epochs}", rate="-")
            start, seen = time.perf_counter(), 0

            def advance(images: int) -> None:
                nonlocal seen
                seen += images
                rate = seen / max(time.perf_counter() - start, 1e-9)  # unsynchronized: a display estimate
                bar.update(task, advance=1, rate=f"{rate:,.0f}")

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
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    return device


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.nesterov)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def autocast_for(config: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts: fp16 on CUDA/MPS, bf16 on CPU, nothing without AMP."""
    if not config.amp:
        return contextlib.nullcontext
    dtype = torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def train_epoch(model, optimizer, scaler, data: Cifar10, prep: Preprocess, batch_size: int, autocast,
                after_batch: Callable[[int], None]) -> tuple[float, float]:
    """One pass over the shuffled training set; (mean loss, accuracy %) read back once at the end."""
    model.train()
    device = data.train_labels.device
    n = data.num_train
    order = torch.randperm(n, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        inputs, labels = prep.train(data.train_images[idx]), data.train_labels[idx]
        with autocast():
            outputs = model(inputs)
            loss = F.cross_entropy(outputs, labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        # Accumulate on the device: a .item() here would stall the pipeline every batch.
        loss_sum += loss.detach().float() * len(idx)
        correct += (outputs.argmax(1) == labels).sum()
        after_batch(len(idx))
    return loss_sum.item() / n, 100.0 * correct.item() / n


@torch.no_grad()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, prep: Preprocess, autocast) -> tuple[float, float]:
    """(mean loss, accuracy %) on the test set, without augmentation."""
    model.eval()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        x, y = prep.normalize(images[start:start + EVAL_BATCH]), labels[start:start + EVAL_BATCH]
        with autocast():
            outputs = model(x)
        loss_sum += F.cross_entropy(outputs.float(), y, reduction="sum")
        correct += (outputs.argmax(1) == y).sum()
    return loss_sum.item() / len(labels), 100.0 * correct.item() / len(labels)


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

    model = build_model(config.model, bn=config.bn).to(device, memory_format=torch.channels_last)
    param_count = count_parameters(model)
    optimizer = make_optimizer(config, model.parameters())
    if config.compile:
        model = torch.compile(model)
    scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
    autocast = autocast_for(config, device)
    prep = Preprocess(config.augment, device)
    params = config.to_params()

    for text in header_lines(str(device), param_count, params, data_load_s, amp=bool(config.amp),
                             seed=config.seed, extra_config_keys=EXTRA_CONFIG_KEYS):
        reporter.line(text)

    record = record or RunRecord(source="train")
    record.source, record.status = "train", "running"
    record.params, record.param_count, record.data_load_s = params, param_count, data_load_s
    record.target_acc = config.target
    record.pid = os.getpid()
    record.started_at = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as the store keeps times
    run_id = recorder.begin(record)

    epochs: list[EpochRecord] = []
    train_time = eval_time = 0.0
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
        if config.target is not None:
            extra.update(target_acc=config.target, target_time_s=target_time)
        return extra

    try:
        for epoch in range(1, config.epochs + 1):
            lr = config.lr_at(epoch - 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            synchronize(device)
            start = time.perf_counter()
            with reporter.epoch(epoch, config.epochs, batches) as advance:
                train_loss, train_acc = train_epoch(model, optimizer, scaler, data, prep, config.batch_size,
                                                    autocast, after_batch(advance))
            synchronize(device)
            duration = time.perf_counter() - start
            train_time += duration

            eval_start = time.perf_counter()
            val_loss, val_acc = evaluate(model, data.test_images, data.test_labels, prep, autocast)
            synchronize(device)
            eval_time += time.perf_counter() - eval_start

            if config.target is not None and target_time is None and val_acc >= config.target:
                target_time = train_time
            row = EpochRecord(epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                              val_acc=val_acc, duration_s=duration, elapsed_s=train_time, lr=lr,
                              images_per_s=data.num_train / duration)
            epochs.append(row)
            reporter.line(epoch_line(epoch, config.epochs, train_loss, val_acc, duration, train_time))
            recorder.epoch(row)
            last_beat = time.monotonic()
    except KeyboardInterrupt:
        recorder.finish("interrupted", train_time_s=train_time, wall_time_s=time.perf_counter() - wall_start,
                        extra=summary())
        raise
    except Exception as exc:
        recorder.finish("failed", error=f"{type(exc).__name__}: {exc}", train_time_s=train_time,
                        wall_time_s=time.perf_counter() - wall_start, extra=summary())
        raise

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
