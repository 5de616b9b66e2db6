"""The fast trainer of the airbench-style recipes: whitening init, per-step schedules, lookahead, TTA.

A recipe supplies its network and optimizers (`FastParts`); everything else is
shared: data on the device, alternating-flip + translate augmentation, the
step loop, evaluation and recording (the same Recorder/Reporter as loop.py,
so runs land in the store and the user's log format like any other).

Timing follows the reference (airbench): the "speedrun time" counts the
whitening initialisation, every training epoch and the final TTA evaluation,
timed with CUDA events on a GPU and perf_counter elsewhere; compile/cudnn
warm-up and the per-epoch evaluations without TTA are excluded. Both the
speedrun time and the full wall time are recorded, labelled.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from speedrun.errors import SpeedrunError
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.training import loop
from speedrun.training.augment import AlternatingFlipTranslate, normalize
from speedrun.training.config import TrainConfig
from speedrun.training.data import load_cifar10
from speedrun.training.nets import AirbenchNet, count_parameters
from speedrun.training.optim import Lookahead, set_lrs
from speedrun.training.schedules import lookahead_decay
from speedrun.training.tta import TTA_LEVELS, evaluate_tta

WHITEN_IMAGES = 5000  # enough patches for a stable 12×12 covariance, cheap to compute
LOOKAHEAD_EVERY = 5  # steps between lookahead syncs
EVAL_BATCH = {"cuda": 2000, "mps": 1000, "cpu": 500}
EXTRA_CONFIG_KEYS = ("recipe", "model", "optimizer", "momentum", "weight_decay", "label_smoothing", "tta")


@dataclass(frozen=True)
class FastParts:
    """What a fast recipe brings: its network and its optimizers for `total_steps` steps.

    Param groups must carry `initial_lr` and `schedule` (see training.optim.group).
    """

    build_model: Callable[[TrainConfig], AirbenchNet]
    make_optimizers: Callable[[AirbenchNet, TrainConfig, int], list[torch.optim.Optimizer]]


class Stopwatch:
    """Sums the duration of timed sections: CUDA events on a GPU (no sync inside), perf_counter elsewhere."""

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
            loop.synchronize(self.device)
            start_s = time.perf_counter()
            yield
            loop.synchronize(self.device)
            self.last = time.perf_counter() - start_s
        self.total += self.last


def storage_dtype(config: TrainConfig) -> torch.dtype:
    """Keep the augmented images in the autocast dtype: half the memory traffic, no per-batch cast."""
    if not config.amp:
        return torch.float32
    return torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16


def train_epoch(model, optimizers, lookahead: Lookahead | None, images: AlternatingFlipTranslate,
                labels: torch.Tensor, config: TrainConfig, epoch: int, step: int, total_steps: int, autocast,
                after_batch: Callable[[int], None]) -> tuple[int, float, float]:
    """One pass (last partial batch dropped); returns (step, mean loss, accuracy %), read back once."""
    model.train()
    device = labels.device
    n_batches = len(labels) // config.batch_size
    order = torch.randperm(len(labels), device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for b in range(n_batches):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        inputs, targets = images.batch(idx, epoch), labels[idx]
        set_lrs(optimizers, step, total_steps)
        with autocast():
            outputs = model(inputs)
        # Summed, not averaged: the decoupled lrs are per image (airbench's convention).
        loss = F.cross_entropy(outputs.float(), targets, label_smoothing=config.label_smoothing or 0.0,
                               reduction="sum")
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        step += 1
        if lookahead is not None:
            if step % LOOKAHEAD_EVERY == 0:
                lookahead.update(lookahead_decay(step, total_steps))
            if step == total_steps:
                lookahead.update(1.0)  # finish on the slow weights
        loss_sum += loss.detach()
        correct += (outputs.argmax(1) == targets).sum()
        after_batch(len(idx))
    seen = n_batches * config.batch_size
    return step, loss_sum.item() / seen, 100.0 * correct.item() / seen


def warm_up(model, config: TrainConfig, device: torch.device, autocast, eval_batch: int, n_test: int) -> float:
    """Run every shape once (compile, cudnn autotuning) on random data, then restore the weights."""
    start = time.perf_counter()
    state = copy.deepcopy(model.state_dict())
    images = torch.randint(0, 256, (config.batch_size, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (config.batch_size,), device=device)
    x = normalize(images, storage_dtype(config))
    for bias_trains in (True, False):  # both graphs: the whitening bias freezes mid-run
        model.whiten.bias.requires_grad_(bias_trains)
        model.train()
        with autocast():
            loss = F.cross_entropy(model(x).float(), labels)
        loss.backward()
        model.zero_grad(set_to_none=True)
    for size in {min(eval_batch, n_test), n_test % eval_batch or eval_batch}:  # full and last eval batches
        evaluate_tta(model, images[:1].expand(size, -1, -1, -1), labels[:1].expand(size), normalize,
                     level=config.tta or 0, batch_size=size, autocast=autocast)
    model.whiten.bias.requires_grad_(True)
    model.load_state_dict(state)
    loop.synchronize(device)
    return time.perf_counter() - start


def train_fast(config: TrainConfig, recorder: loop.Recorder, *, parts: FastParts, record: RunRecord | None = None,
               reporter: loop.Reporter | None = None) -> loop.TrainResult:
    """Train a resolved fast-recipe config; errors and Ctrl-C are recorded, then re-raised (as loop.train)."""
    reporter = reporter or loop.Reporter()
    wall_start = time.perf_counter()
    device = loop.setup_torch(config)

    load_start = time.perf_counter()
    data = load_cifar10(config.data_dir, device, subset=config.subset)
    loop.synchronize(device)
    data_load_s = time.perf_counter() - load_start
    steps_per_epoch = data.num_train // config.batch_size
    if steps_per_epoch == 0:
        raise SpeedrunError(f"--batch-size {config.batch_size} is larger than the {data.num_train} training images")
    total_steps = steps_per_epoch * config.epochs

    model = parts.build_model(config).to(device, memory_format=torch.channels_last)
    param_count = count_parameters(model)
    net = torch.compile(model) if config.compile else model
    autocast = loop.autocast_for(config, device)
    eval_batch = EVAL_BATCH.get(device.type, 500)
    warmup_s = 0.0
    if config.compile or device.type == "cuda":
        warmup_s = warm_up(net, config, device, autocast, eval_batch, len(data.test_labels))
        torch.manual_seed(config.seed)  # the run itself does not depend on whether it was warmed up
    optimizers = parts.make_optimizers(model, config, total_steps)
    lookahead = Lookahead(model) if config.lookahead else None
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
    record.started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    run_id = recorder.begin(record)

    watch = Stopwatch(device)
    epochs: list[EpochRecord] = []
    eval_time = whiten_s = 0.0
    target_time: float | None = None
    last_beat = time.monotonic()
    prepare = normalize  # eval batches in float32; autocast casts them

    def after_batch(advance: Callable[[int], None]) -> Callable[[int], None]:
        def hook(images: int) -> None:
            nonlocal last_beat
            advance(images)
            if time.monotonic() - last_beat >= loop.HEARTBEAT_S:
                recorder.heartbeat()
                last_beat = time.monotonic()
        return hook

    def summary(**more: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {"speedrun_time_s": watch.total, "eval_time_s": eval_time,
                                 "whiten_init_s": whiten_s, "warmup_s": warmup_s, **more}
        if config.target is not None:
            extra.update(target_acc=config.target, target_time_s=target_time)
        return extra

    try:
        # Timed like the reference: preparing the augmented images and the whitening init count.
        with watch.section():
            train_images = AlternatingFlipTranslate(data.train_images, pad=2 if "translate" in config.augment else 0,
                                                    flip="altflip" in config.augment, dtype=storage_dtype(config))
            model.init_whitening(normalize(data.train_images[:WHITEN_IMAGES]))
        whiten_s = watch.last
        step = 0
        for epoch in range(config.epochs):
            model.whiten.bias.requires_grad_(epoch < (config.whiten_bias_epochs or 0))
            with watch.section(), reporter.epoch(epoch + 1, config.epochs, steps_per_epoch) as advance:
                step, train_loss, train_acc = train_epoch(net, optimizers, lookahead, train_images,
                                                          data.train_labels, config, epoch, step, total_steps,
                                                          autocast, after_batch(advance))
            duration = watch.last
            eval_start = time.perf_counter()
            val_loss, val_acc = evaluate_tta(net, data.test_images, data.test_labels, prepare, level=0,
                                             batch_size=eval_batch, autocast=autocast)
            eval_time += time.perf_counter() - eval_start
            if config.target is not None and target_time is None and val_acc >= config.target:
                target_time = watch.total
            row = EpochRecord(epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                              val_acc=val_acc, duration_s=duration, elapsed_s=watch.total,
                              lr=optimizers[0].param_groups[0]["lr"],
                              images_per_s=steps_per_epoch * config.batch_size / duration)
            epochs.append(row)
            reporter.line(epoch_line(epoch + 1, config.epochs, train_loss, val_acc, duration, watch.total))
            recorder.epoch(row)
            last_beat = time.monotonic()

        level = config.tta or 0
        with watch.section():
            tta_loss, tta_acc = evaluate_tta(net, data.test_images, data.test_labels, prepare, level=level,
                                             batch_size=eval_batch, autocast=autocast)
        tta_s = watch.last
    except KeyboardInterrupt:
        recorder.finish("interrupted", train_time_s=watch.total, wall_time_s=time.perf_counter() - wall_start,
                        extra=summary())
        raise
    except Exception as exc:
        recorder.finish("failed", error=f"{type(exc).__name__}: {exc}", train_time_s=watch.total,
                        wall_time_s=time.perf_counter() - wall_start, extra=summary())
        raise

    # The run's final accuracy is the TTA one (finish_run's final_val_acc); the epochs keep what
    # was measured without TTA, as their log lines print it.
    speedrun_time = watch.total
    no_tta = epochs[-1].val_acc
    for text in footer_lines(speedrun_time, tta_acc):
        reporter.line(text)
    reporter.line(f"Final accuracy above is with test-time augmentation ({TTA_LEVELS[level]}); "
                  f"without TTA: {no_tta:.2f}%")
    if config.target is not None:
        reached = f"after {target_time:.1f}s of training" if target_time is not None else "not reached"
        reporter.line(f"Target {config.target:.2f}% (without TTA): {reached}")
    wall_time = time.perf_counter() - wall_start
    reporter.line(f"Speedrun time (whitening init {whiten_s:.2f}s + training + final TTA {tta_s:.2f}s): "
                  f"{speedrun_time:.2f} seconds; wall time {wall_time:.2f} seconds "
                  f"(incl. data load, warm-up, per-epoch evaluation {eval_time:.2f}s)")
    recorder.finish("completed", train_time_s=speedrun_time, wall_time_s=wall_time,
                    final_val_acc=tta_acc, final_from="tta",
                    extra=summary(tta_val_acc=tta_acc, tta_val_loss=tta_loss, val_acc_no_tta=no_tta,
                                  tta_level=level, tta_time_s=tta_s))
    return loop.TrainResult(run_id, "completed", epochs, param_count, data_load_s, speedrun_time, eval_time,
                            wall_time, target_time, measured_final_val_acc=tta_acc)
