"""The classic loop's training step over static buffers, captured once as a CUDA graph.

At batch 64 a ResNet-18 step on a large GPU is bound by the host: some 250
kernel launches of a few microseconds of arithmetic each. Captured as one CUDA
graph, the whole step (the augmentation's gather from the on-device training
set, forward, loss, backward, the fused optimizer step, and the epoch's loss
and accuracy sums) is replayed by a single launch.

What makes a step replayable:
- Static buffers. The batch is named by a static index buffer into the training
  set that stays on the device; each step copies the next slice of the epoch's
  permutation into it (a device-to-device copy) and replays.
- The learning rate is a 0-d device tensor in every param group, written once
  per epoch (`set_lr`): a Python float would be baked into the graph.
- Optimizer state exists before capture. SGD creates its momentum buffers on
  the first step, a branch a graph would replay forever; `prime_state` creates
  them as zeros, which gives the first step exactly what the lazy branch gives
  (buffer = gradient, as dampening is 0).
- No GradScaler: its step-skipping is data-dependent. The graph is used with
  bf16 autocast (Ampere and newer) or full precision; fp16 with a scaler (a T4)
  keeps the eager step (`graphable`).
- The last, partial batch of an epoch has its own graph (its shapes differ).

Off CUDA the same object runs the same step eagerly over the same buffers, so
everything but the capture itself is tested on a CPU (tests/test_graphed.py).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def graphable(scaler: object | None, device: torch.device) -> bool:
    """Whether the step can be captured on `device`: CUDA, and no GradScaler in the step."""
    return device.type == "cuda" and scaler is None


def lr_tensor(optimizer: torch.optim.Optimizer, lr: float, device: torch.device) -> torch.Tensor:
    """Put one 0-d lr tensor into every param group (shared), so a captured step reads its current value."""
    shared = torch.tensor(float(lr), device=device)
    for group in optimizer.param_groups:
        group["lr"] = shared
    return shared


def prime_state(optimizer: torch.optim.Optimizer) -> None:
    """Create SGD's momentum buffers as zeros before capture (see the module's docstring)."""
    if not isinstance(optimizer, torch.optim.SGD):
        return
    for group in optimizer.param_groups:
        if group["momentum"] == 0:
            continue
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


class StaticStep:
    """One training step of a fixed batch size over static buffers; captured on CUDA, eager elsewhere.

    `images`/`labels` are the whole training set on the device; `augment` maps a
    uint8 batch to the network's input; `net`, `optimizer` and `autocast` are the
    loop's. After `__call__(indices)` the step's loss and correct count have been
    added to `loss_sum` and `correct` (device tensors, zeroed by `reset`).
    """

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, autocast: Callable,
                 augment: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                 batch_size: int, *, loss_sum: torch.Tensor, correct: torch.Tensor, capture: bool):
        self.net, self.optimizer, self.autocast, self.augment = net, optimizer, autocast, augment
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.index = torch.zeros(batch_size, dtype=torch.int64, device=labels.device)
        self.loss_sum, self.correct = loss_sum, correct
        self.graph: torch.cuda.CUDAGraph | None = None
        if capture:
            self.graph = self._capture()

    def _step(self) -> None:
        labels = self.labels[self.index]
        inputs = self.augment(self.images[self.index])
        with self.autocast():
            outputs = self.net(inputs)
            loss = F.cross_entropy(outputs, labels)
        # Gradients are overwritten, not accumulated: set_to_none=False keeps their memory static.
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach().float() * self.batch_size)
        self.correct.add_((outputs.argmax(1) == labels).sum())

    def _capture(self) -> torch.cuda.CUDAGraph:
        """Capture `_step` (after the warm-up the capture API asks for, on a side stream), as PyTorch's
        whole-network capture recipe does. The caller puts weights and sums back afterwards."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        return graph

    def __call__(self, indices: torch.Tensor) -> None:
        """Train on the images at `indices` (exactly `batch_size` of them)."""
        self.index.copy_(indices, non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._step()


@torch.no_grad()
def _restore(model: torch.nn.Module, weights: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """Undo the capture's warm-up steps in place: a graph holds the addresses of the weights, BatchNorm
    statistics and momentum buffers, so they are overwritten, never replaced (load_state_dict on an
    optimizer would replace them)."""
    for name, tensor in model.state_dict().items():
        tensor.copy_(weights[name])
    for state in optimizer.state.values():
        if (buffer := state.get("momentum_buffer")) is not None:
            buffer.zero_()


class GraphedEpochs:
    """The steps of an epoch as static steps: one for full batches, one for the last partial batch.

    `set_lr` writes the epoch's rate into the shared lr tensor; `epoch(order,
    after_batch)` runs the steps over a permutation and returns (mean loss,
    accuracy %), read back once.
    """

    def __init__(self, model: torch.nn.Module, net, optimizer, autocast, augment, images: torch.Tensor,
                 labels: torch.Tensor, batch_size: int, *, capture: bool):
        device = labels.device
        self.n, self.batch_size = len(labels), min(batch_size, len(labels))
        self.lr = lr_tensor(optimizer, optimizer.param_groups[0]["lr"], device)
        prime_state(optimizer)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        sizes = [self.batch_size] + ([self.n % self.batch_size] if self.n % self.batch_size else [])
        weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
        # The capture trains a few warm-up steps: the random streams continue as if it had not run, and
        # the weights, statistics and momentum go back to where they were.
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model.train()
            self.steps = {size: StaticStep(net, optimizer, autocast, augment, images, labels, size,
                                           loss_sum=self.loss_sum, correct=self.correct, capture=capture)
                          for size in sizes}
        if capture:
            _restore(model, weights, optimizer)

    @property
    def captured(self) -> bool:
        return all(step.graph is not None for step in self.steps.values())

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def epoch(self, order: torch.Tensor, after_batch: Callable[[int], None]) -> tuple[float, float]:
        self.reset()
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            self.steps[len(idx)](idx)
            after_batch(len(idx))
        return self.loss_sum.item() / self.n, 100.0 * self.correct.item() / self.n
