"""The fast trainer of the airbench-style recipes: whitening init, per-step schedules, lookahead, TTA.

A recipe supplies its network and optimizers (`FastParts`); everything else is
shared: data on the device, alternating-flip + translate augmentation, the
step loop, evaluation and recording (the same Recorder/Reporter as loop.py,
so runs land in the store and the user's log format like any other).

Timing follows the reference (airbench): the "speedrun time" counts the
whitening initialisation, every training epoch and the final TTA evaluation,
timed with CUDA events on a GPU and perf_counter elsewhere; the warm-up
(compilation, cudnn autotuning, first calls) and the per-epoch evaluations
without TTA are excluded. Both the speedrun time and the full wall time are
recorded, labelled.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import torch
import torch.nn.functional as F

from speedrun.errors import SpeedrunError
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.training import loop
from speedrun.training.augment import AlternatingFlipTranslate, normalize
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10
from speedrun.training.device import (Stopwatch, amp_dtype, autocast_for, compiled, needs_warm_up, setup_torch,
                                      synchronize, untouched)
from speedrun.training.loop import batch_sizes
from speedrun.training.nets import AirbenchNet, count_parameters
from speedrun.training.optim import Lookahead, set_lrs
from speedrun.training.schedules import lookahead_decay
from speedrun.training.tta import TTA_LEVELS, evaluate_tta

WHITEN_IMAGES = 5000  # enough patches for a stable 12×12 covariance, cheap to compute
LOOKAHEAD_EVERY = 5  # steps between lookahead syncs
EVAL_BATCH = {"cuda": 2000, "mps": 1000, "cpu": 500}
EXTRA_CONFIG_KEYS = ("recipe", "model", "optimizer", "momentum", "weight_decay", "label_smoothing", "tta")


@dataclass(frozen=True)
class Steps:
    """A run's length in optimizer steps: a fractional epoch budget stops inside the last epoch.

    The reference's 9.9 epochs of 48 steps are ceil(9.9 × 48) = 476 steps:
    nine full epochs and a tenth cut short after 44.
    """

    per_epoch: int
    total: int

    @classmethod
    def of(cls, images: int, batch_size: int, epochs: float) -> "Steps":
        per_epoch = images // batch_size  # the last partial batch is dropped
        return cls(per_epoch, math.ceil(per_epoch * epochs))

    @property
    def epochs(self) -> int:
        """Epochs begun (the last may be partial)."""
        return -(-self.total // self.per_epoch)

    def in_epoch(self, epoch: int) -> int:
        """Steps in 0-based `epoch`."""
        return min(self.per_epoch, self.total - epoch * self.per_epoch)


@dataclass(frozen=True)
class FastParts:
    """What a fast recipe brings: its network, and its optimizers for the steps of a run.

    Param groups must carry `initial_lr` and `schedule` (see training.optim.group).
    """

    build_model: Callable[[TrainConfig], AirbenchNet]
    make_optimizers: Callable[[AirbenchNet, TrainConfig, Steps], list[torch.optim.Optimizer]]


def storage_dtype(config: TrainConfig) -> torch.dtype:
    """Keep the augmented images in the autocast dtype: half the memory traffic, no per-batch cast."""
    return amp_dtype(config) or torch.float32


def prepare_images(train_images: torch.Tensor, config: TrainConfig) -> AlternatingFlipTranslate:
    return AlternatingFlipTranslate(train_images, pad=2 if "translate" in config.augment else 0,
                                    flip="altflip" in config.augment, dtype=storage_dtype(config))


def train_step(net, optimizers, inputs: torch.Tensor, targets: torch.Tensor, config: TrainConfig,
               autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of every optimizer; (summed loss, outputs) stay on the device."""
    with autocast():
        outputs = net(inputs)
    # Summed, not averaged: the decoupled lrs are per image (airbench's convention).
    loss = F.cross_entropy(outputs.float(), targets, label_smoothing=config.label_smoothing or 0.0,
                           reduction="sum")
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    net.zero_grad(set_to_none=True)
    return loss, outputs


def train_epoch(net, optimizers, lookahead: Lookahead | None, images: AlternatingFlipTranslate,
                labels: torch.Tensor, config: TrainConfig, epoch: int, step: int, steps: Steps, autocast,
                after_batch: Callable[[int], None]) -> tuple[int, float, float]:
    """One pass, cut short where the step budget ends; returns (step, mean loss, accuracy %), read back once."""
    net.train()
    device = labels.device
    n_batches = steps.in_epoch(epoch)
    order = torch.randperm(len(labels), device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for b in range(n_batches):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        targets = labels[idx]
        set_lrs(optimizers, step, steps.total)
        loss, outputs = train_step(net, optimizers, images.batch(idx, epoch), targets, config, autocast)
        step += 1
        if lookahead is not None:
            if step % LOOKAHEAD_EVERY == 0:
                lookahead.update(lookahead_decay(step, steps.total))
            if step == steps.total:
                lookahead.update(1.0)  # finish on the slow weights
        loss_sum += loss.detach()
        correct += (outputs.argmax(1) == targets).sum()
        after_batch(len(idx))
    seen = n_batches * config.batch_size
    return step, loss_sum.item() / seen, 100.0 * correct.item() / seen


def warm_up(net, model: AirbenchNet, optimizers, config: TrainConfig, device: torch.device, autocast,
            data: Cifar10, eval_batch: int) -> float:
    """Everything the timed span runs, once, on the real model; then its state put back. Seconds taken.

    Compiled graphs (static shapes: training with the whitening bias trainable
    and frozen, evaluation at each batch size in both states), cudnn's
    autotuning, and the first calls outside the model: the augmentation's
    normalize, pad and gather, the whitening's eigendecomposition, a step of
    every optimizer (Muon's compiled Newton–Schulz included) and a lookahead update.
    """
    start = time.perf_counter()
    batch = config.batch_size
    with untouched(model, *optimizers, device=device):
        images = prepare_images(data.train_images[:batch], config)
        model.init_whitening(normalize(data.train_images[:batch]))
        lookahead = Lookahead(model)
        idx, labels = torch.arange(batch, device=device), data.train_labels[:batch]
        for bias_trains in (True, False):  # the whitening bias freezes mid-run: one graph per mode and state
            model.whiten.bias.requires_grad_(bias_trains)
            set_lrs(optimizers, 0, 1)
            net.train()
            train_step(net, optimizers, images.batch(idx, 1), labels, config, autocast)
            lookahead.update(0.5)
            for size in batch_sizes(len(data.test_labels), eval_batch):
                evaluate_tta(net, data.test_images[:size], data.test_labels[:size], normalize,
                             level=config.tta or 0, batch_size=size, autocast=autocast)
    synchronize(device)
    return time.perf_counter() - start


def train_fast(config: TrainConfig, recorder: loop.Recorder, *, parts: FastParts, record: RunRecord | None = None,
               reporter: loop.Reporter | None = None) -> loop.TrainResult:
    """Train a resolved fast-recipe config; errors and Ctrl-C are recorded, then re-raised (as loop.train)."""
    reporter = reporter or loop.Reporter()
    wall_start = time.perf_counter()
    device = setup_torch(config)

    load_start = time.perf_counter()
    data = load_cifar10(config.data_dir, device, subset=config.subset)
    synchronize(device)
    data_load_s = time.perf_counter() - load_start
    if data.num_train < config.batch_size:
        raise SpeedrunError(f"--batch-size {config.batch_size} is larger than the {data.num_train} training images")
    steps = Steps.of(data.num_train, config.batch_size, config.epochs)

    model = parts.build_model(config).to(device, memory_format=torch.channels_last)
    param_count = count_parameters(model)
    net = compiled(model) if config.compile else model
    autocast = autocast_for(config, device)
    eval_batch = EVAL_BATCH.get(device.type, 500)
    optimizers = parts.make_optimizers(model, config, steps)
    warmup_s = 0.0
    if needs_warm_up(config, device):
        warmup_s = warm_up(net, model, optimizers, config, device, autocast, data, eval_batch)
    lookahead = Lookahead(model) if config.lookahead else None
    params = config.to_params()

    # The log's EPOCHS is the number of epoch lines; a fractional budget is stated on its own line.
    for text in header_lines(str(device), param_count, {**params, "epochs": steps.epochs}, data_load_s,
                             amp=bool(config.amp), seed=config.seed, extra_config_keys=EXTRA_CONFIG_KEYS):
        reporter.line(text)
    if steps.total != steps.per_epoch * steps.epochs:
        reporter.line(f"Epoch budget: {config.epochs} epochs = {steps.total} steps of {config.batch_size} images; "
                      f"epoch {steps.epochs} stops after {steps.in_epoch(steps.epochs - 1)} of {steps.per_epoch}")
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
            train_images = prepare_images(data.train_images, config)
            model.init_whitening(normalize(data.train_images[:WHITEN_IMAGES]))
        whiten_s = watch.last
        step = 0
        for epoch in range(steps.epochs):
            model.whiten.bias.requires_grad_(epoch < (config.whiten_bias_epochs or 0))
            with reporter.epoch(epoch + 1, steps.epochs, steps.in_epoch(epoch)) as advance, watch.section():
                step, train_loss, train_acc = train_epoch(net, optimizers, lookahead, train_images,
                                                          data.train_labels, config, epoch, step, steps,
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
                              images_per_s=steps.in_epoch(epoch) * config.batch_size / duration)
            epochs.append(row)
            reporter.line(epoch_line(epoch + 1, steps.epochs, train_loss, val_acc, duration, watch.total))
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
