"""The classic training loop (the user's ResNets): data on the device, whole-batch augmentation.

The loop holds the training only; speedrun.training.recording prints the
user's log lines, records every epoch and times it. Timing: "Duration" and
"Total" count training only (the user's logs, and time-to-target, use the
cumulative training time); evaluation is timed separately. With --compile
(or on a GPU, for cudnn's autotuning) every shape is warmed up before the
clock starts, and no step reads a value back from the device.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from speedrun.domain.records import RunRecord
from speedrun.training.augment import Preprocess
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10
from speedrun.training.device import (autocast_for, compiled, fused, grad_scaler_for, needs_warm_up, setup_torch,
                                      synchronize, timed, untouched)
from speedrun.training.flops import count_flops
from speedrun.training.graphed import GraphedEpochs
from speedrun.training.nets import build_model, count_parameters
from speedrun.training.recording import Recorder, Reporter, Setup, TrainResult, recording

EVAL_BATCH = 500
# Shown on the `Config:` line after the user's own keys (LR, BATCH_SIZE, EPOCHS, COSINE, AMP).
EXTRA_CONFIG_KEYS = ("model", "optimizer", "momentum", "weight_decay", "bn", "graph", "val_subset", "eval_every")


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


def graphed_epochs(parts: Parts, data: Cifar10, batch_size: int, *, capture: bool) -> GraphedEpochs:
    """The loop's steps over static buffers (training.graphed), captured as CUDA graphs when `capture`.
    Same math as `train_epoch`: the same augmentation, forward, loss and optimizer, in the same order."""
    return GraphedEpochs(parts.model, parts.net, parts.optimizer, parts.autocast, parts.prep.train,
                         data.train_images, data.train_labels, batch_size, capture=capture)


def batch_sizes(n: int, batch: int) -> list[int]:
    """The distinct batch sizes a pass over n items in batches of `batch` meets: full and last."""
    return sorted({min(batch, n), n % batch or min(batch, n)}, reverse=True)


def warm_up(parts: Parts, data: Cifar10, batch_size: int, device: torch.device, *, train: bool = True) -> float:
    """Every shape and mode once (compilation, cudnn autotuning), then the state put back; seconds taken.

    Training steps at the full and the last partial batch size (unless `train`
    is False: a graphed step warms itself up when it is captured), and the
    evaluation at its full and last batch sizes: with static compiled graphs,
    each is its own graph, and none may be compiled while the clock runs.
    """
    start = time.perf_counter()
    images, labels = data.train_images, data.train_labels
    with untouched(parts.model, parts.optimizer, *([parts.scaler] if parts.scaler else []), device=device):
        parts.net.train()
        for size in batch_sizes(data.num_train, batch_size) if train else ():
            train_step(parts, parts.prep.train(images[:size]), labels[:size])
        n_test = len(data.test_labels)
        for size in batch_sizes(n_test, EVAL_BATCH):
            evaluate(parts.net, data.test_images[:size], data.test_labels[:size],
                     parts.prep, parts.autocast)
    synchronize(device)
    return time.perf_counter() - start


def train_resnet(config: TrainConfig, recorder: Recorder, *, record: RunRecord | None = None,
                 reporter: Reporter | None = None) -> TrainResult:
    """Train a resolved config of the ResNet recipe (resnet18, resnet9), epoch by epoch, into `recorder`
    (see training.recording).

    `record` carries what the caller knows (title, tags, env, command, git).
    """
    started = time.perf_counter()
    device = setup_torch(config)
    data, data_load_s = timed(lambda: load_cifar10(config.data_dir, device, subset=config.subset,
                                                   val_subset=config.val_subset), device)
    parts = build_parts(config, device)
    warmup_s = warm_up(parts, data, config.batch_size, device, train=not config.graph) \
        if needs_warm_up(config, device) else 0.0
    graphed = None
    if config.graph:  # captured before the clock starts, as compilation is
        graphed, capture_s = timed(lambda: graphed_epochs(parts, data, config.batch_size, capture=True), device)
        warmup_s += capture_s
    setup = Setup(device, count_parameters(parts.model), data_load_s, started, warmup_s, EXTRA_CONFIG_KEYS,
                  flops=count_flops(parts.model, (config.model, config.bn)))
    batches = -(-data.num_train // config.batch_size)

    with recording(recorder, config, setup, record=record, reporter=reporter) as run:
        for epoch in range(1, config.epochs + 1):
            lr = config.lr_at(epoch - 1)
            if graphed is not None:
                graphed.set_lr(lr)
            else:
                for group in parts.optimizer.param_groups:
                    group["lr"] = lr
            with run.training(epoch, config.epochs, batches) as after_batch:
                if graphed is not None:
                    parts.net.train()
                    order = torch.randperm(data.num_train, device=device)
                    train_loss, train_acc = graphed.epoch(order, after_batch)
                else:
                    train_loss, train_acc = train_epoch(parts, data, config.batch_size, after_batch)
            val_loss = val_acc = None
            if config.evaluates_after(epoch, config.epochs):
                with run.evaluating():
                    val_loss, val_acc = evaluate(parts.net, data.test_images, data.test_labels, parts.prep,
                                                 parts.autocast)
            run.epoch(epoch, config.epochs, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                      val_acc=val_acc, lr=lr, images=data.num_train)
        run.summary()
        run.line(f"Evaluation time (not in training time): {run.eval_time_s:.2f} seconds")
    return run.result
