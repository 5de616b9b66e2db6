"""The fast trainer of the airbench-style recipes: whitening init, per-step schedules, lookahead, TTA.

A recipe supplies its network and optimizers (`FastParts`); everything else is
shared: data on the device, alternating-flip + translate augmentation, the
step loop and evaluation. speedrun.training.recording does the bookkeeping
(log lines, records, timing), as for the classic loop.

Timing follows the reference (airbench): the "speedrun time" counts the
whitening initialisation, every training step and the final TTA evaluation,
timed with CUDA events on a GPU and perf_counter elsewhere (with --tta 0 there is no final
evaluation: the last epoch's is the final accuracy); the warm-up
(compilation, cudnn autotuning, first calls) and the per-epoch evaluations
without TTA are excluded. Both the speedrun time and the full wall time are
recorded, labelled.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from speedrun.errors import SettingRefused
from speedrun.domain.records import RunRecord
from speedrun.training.augment import AlternatingFlipTranslate, normalize
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10
from speedrun.training.device import (amp_dtype, autocast_for, compiled, needs_warm_up, setup_torch, synchronize,
                                      timed, untouched)
from speedrun.training.loop import batch_sizes
from speedrun.training.nets import AirbenchNet, count_parameters
from speedrun.training.optim import Lookahead, set_lrs
from speedrun.training.recording import Recorder, Reporter, Setup, TrainResult, recording
from speedrun.training.schedules import lookahead_decay
from speedrun.training.flops import count_flops
from speedrun.training.tta import TTA_LEVELS, evaluate_tta, view_count

WHITEN_IMAGES = 5000  # enough patches for a stable 12×12 covariance, cheap to compute
LOOKAHEAD_EVERY = 5  # steps between lookahead syncs
EVAL_BATCH = {"cuda": 2000, "mps": 1000, "cpu": 500}
EXTRA_CONFIG_KEYS = ("recipe", "lr_per_1024", "muon_lr", "model", "optimizer", "momentum", "weight_decay", "label_smoothing", "tta",
                     "val_subset", "eval_every")


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


def train_fast(config: TrainConfig, recorder: Recorder, *, parts: FastParts, record: RunRecord | None = None,
               reporter: Reporter | None = None) -> TrainResult:
    """Train a resolved fast-recipe config into `recorder` (see training.recording), timed as the reference."""
    started = time.perf_counter()
    device = setup_torch(config)
    data, data_load_s = timed(lambda: load_cifar10(config.data_dir, device, subset=config.subset,
                                                   val_subset=config.val_subset), device)
    if data.num_train < config.batch_size:
        raise SettingRefused(f"--batch-size {config.batch_size} is larger than the {data.num_train} training images")
    steps = Steps.of(data.num_train, config.batch_size, config.epochs)
    model = parts.build_model(config).to(device, memory_format=torch.channels_last)
    net = compiled(model) if config.compile else model
    autocast = autocast_for(config, device)
    eval_batch = EVAL_BATCH.get(device.type, 500)
    optimizers = parts.make_optimizers(model, config, steps)
    warmup_s = warm_up(net, model, optimizers, config, device, autocast, data, eval_batch) \
        if needs_warm_up(config, device) else 0.0
    lookahead = Lookahead(model) if config.lookahead else None
    setup = Setup(device, count_parameters(model), data_load_s, started, warmup_s, EXTRA_CONFIG_KEYS,
                  log_epochs=steps.epochs, notes=budget_note(config, steps),
                  flops=count_flops(model, (config.model, "fast"), eval_views=view_count(config.tta or 0)))
    level = config.tta or 0

    with recording(recorder, config, setup, record=record, reporter=reporter) as run:
        with run.timed():  # as the reference: preparing the augmented images and the whitening init count
            train_images = prepare_images(data.train_images, config)
            model.init_whitening(normalize(data.train_images[:WHITEN_IMAGES]))
        run.extra["whiten_init_s"] = whiten_s = run.watch.last
        step = 0
        for epoch in range(steps.epochs):
            model.whiten.bias.requires_grad_(epoch < (config.whiten_bias_epochs or 0))
            with run.training(epoch + 1, steps.epochs, steps.in_epoch(epoch)) as after_batch:
                step, train_loss, train_acc = train_epoch(net, optimizers, lookahead, train_images,
                                                          data.train_labels, config, epoch, step, steps,
                                                          autocast, after_batch)
            val_loss = val_acc = None
            if config.evaluates_after(epoch + 1, steps.epochs):
                with run.evaluating():
                    val_loss, val_acc = evaluate_tta(net, data.test_images, data.test_labels, normalize, level=0,
                                                     batch_size=eval_batch, autocast=autocast)
            run.epoch(epoch + 1, steps.epochs, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                      val_acc=val_acc, lr=optimizers[0].param_groups[0]["lr"],
                      images=steps.in_epoch(epoch) * config.batch_size)
        if level:
            final_tta(run, net, data, level, eval_batch, autocast, whiten_s)
        else:  # the last epoch's evaluation is the final one: nothing more to run or to time
            run.extra.update(speedrun_time_s=run.train_time_s, tta_level=0)
            run.summary()
            run.line(f"Speedrun time (whitening init {whiten_s:.2f}s + training): {run.train_time_s:.2f} seconds; "
                     f"wall time {run.wall_time_s:.2f} seconds (incl. data load, warm-up, per-epoch evaluation "
                     f"{run.eval_time_s:.2f}s)")
    return run.result


def final_tta(run, net, data: Cifar10, level: int, eval_batch: int, autocast, whiten_s: float) -> None:
    """The timed final evaluation with test-time augmentation: the run's final accuracy."""
    with run.timed():
        tta_loss, tta_acc = evaluate_tta(net, data.test_images, data.test_labels, normalize, level=level,
                                         batch_size=eval_batch, autocast=autocast)
    tta_s = run.watch.last

    # The run's final accuracy is the TTA one; the epochs keep what was measured without TTA,
    # as their log lines print it.
    no_tta = run.epochs[-1].val_acc
    run.extra.update(speedrun_time_s=run.train_time_s, tta_val_acc=tta_acc, tta_val_loss=tta_loss,
                     val_acc_no_tta=no_tta, tta_level=level, tta_time_s=tta_s)
    run.summary(final_val_acc=tta_acc, final_from="tta")
    run.line(f"Final accuracy above is with test-time augmentation ({TTA_LEVELS[level]}); "
             f"without TTA: {no_tta:.2f}%")
    run.line(f"Speedrun time (whitening init {whiten_s:.2f}s + training + final TTA {tta_s:.2f}s): "
             f"{run.train_time_s:.2f} seconds; wall time {run.wall_time_s:.2f} seconds "
             f"(incl. data load, warm-up, per-epoch evaluation {run.eval_time_s:.2f}s)")


def budget_note(config: TrainConfig, steps: Steps) -> tuple[str, ...]:
    """A header line for a fractional epoch budget (the log's EPOCHS counts the epochs begun)."""
    if steps.total == steps.per_epoch * steps.epochs:
        return ()
    return (f"Epoch budget: {config.epochs} epochs = {steps.total} steps of {config.batch_size} images; "
            f"epoch {steps.epochs} stops after {steps.in_epoch(steps.epochs - 1)} of {steps.per_epoch}",)
