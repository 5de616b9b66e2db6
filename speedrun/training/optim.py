"""Optimizer pieces of the fast recipes: decoupled SGD groups, lookahead, and Muon.

Every param group carries `initial_lr` and a `schedule(step, total)` multiplier;
`set_lrs` applies them each step, so recipes with several optimizers and
schedules share one training loop.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

Schedule = Callable[[int, int], float]


def group(params: Iterable[nn.Parameter], lr: float, schedule: Schedule, weight_decay: float = 0.0) -> dict:
    """A param group whose decay per step is `weight_decay` × the schedule (decoupled from lr).

    PyTorch's SGD multiplies its weight decay by the lr; dividing by the lr
    here keeps the decay independent of it, as in airbench.
    """
    return {"params": list(params), "lr": lr, "initial_lr": lr, "schedule": schedule,
            "weight_decay": weight_decay / lr}


def set_lrs(optimizers: list[torch.optim.Optimizer], step: int, total: int) -> None:
    for optimizer in optimizers:
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * g["schedule"](step, total)


class Lookahead:
    """A slow copy of the weights (and BatchNorm statistics) that the fast ones are pulled back to.

    `update(decay)` moves the slow copy towards the fast weights by 1 − decay
    and copies it back into the model; decay 1.0 at the end installs it. The
    model's tensors are held directly, so a compiled wrapper works too, and
    each update is two multi-tensor kernels, not two per tensor.
    """

    def __init__(self, model: nn.Module):
        self.fast = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.fast]

    @torch.no_grad()
    def update(self, decay: float) -> None:
        torch._foreach_lerp_(self.slow, self.fast, 1 - decay)
        torch._foreach_copy_(self.fast, self.slow)


def orthogonalize(g: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """Approximately U·Vᵀ of g = U·S·Vᵀ by a quintic Newton–Schulz iteration in bf16.

    The coefficients push small singular values up fast; the result has
    singular values roughly in [0.5, 1.5] rather than exactly 1, which trains
    as well and needs only a few matrix products.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    x = x / (x.norm() + eps)  # top singular value at most 1: inside the iteration's basin
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Momentum, then the update of each filter bank replaced by its orthogonalization.

    For the conv filters (out × in·k·k matrices): every direction of the update
    gets a similar step, so rare directions are not drowned by dominant ones.
    Weights are renormalized to norm √out first, since BatchNorm follows them
    and only their direction matters. `orthogonalize` may be a compiled
    version of the function of that name (the reference compiles it on a GPU).
    """

    def __init__(self, params, lr: float, momentum: float = 0.6, nesterov: bool = True,
                 orthogonalize: Callable[[torch.Tensor], torch.Tensor] = orthogonalize):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})
        self.orthogonalize = orthogonalize

    @torch.no_grad()
    def step(self) -> None:
        for g_ in self.param_groups:
            for p in g_["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:  # allocated once, on the first step
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buf = state["momentum_buffer"]
                buf.mul_(g_["momentum"]).add_(p.grad)
                grad = p.grad.add(buf, alpha=g_["momentum"]) if g_["nesterov"] else buf
                p.mul_(len(p) ** 0.5 / p.norm())
                update = self.orthogonalize(grad.reshape(len(grad), -1)).view(grad.shape)
                p.add_(update.to(p.dtype), alpha=-g_["lr"])
