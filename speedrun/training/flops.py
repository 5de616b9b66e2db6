"""FLOPs of a network per image: one trained image (forward + backward) and one evaluated image.

Counted once per network and input shape with PyTorch's own `FlopCounterMode`
(it counts what the dispatcher executes: 2 FLOPs per multiply-add of every
convolution and matrix product; elementwise work is not counted, as in every
published MFU figure), on a copy of the model on the `meta` device: shapes
only, no arithmetic, so counting costs well under a second, never touches the
GPU being timed, and leaves the model's weights and BatchNorm statistics alone.
Cached for the process.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Hashable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

IMAGE_SHAPE = (3, 32, 32)
_BATCH = 2  # BatchNorm in training mode wants more than one value per channel

# Trainable-parameter counts of the networks `speedrun train` builds, so a log that only
# prints "Model parameters: 11,173,962" tells which network it trained. tests/test_efficiency.py
# checks each count against the network itself.
MODELS_BY_PARAMETERS = {
    11_173_962: ("resnet18", True),   # the user's ResNet-18 ("ResNet-9" in their notebook), BatchNorm on
    11_164_362: ("resnet18", False),  # the same without BatchNorm (USE_BN=False)
    6_573_120: ("resnet9", True),
}


@dataclass(frozen=True)
class FlopCount:
    """FLOPs per image: `train` forward + backward, `evaluate` forward (times the TTA views)."""

    train: int
    evaluate: int


_cache: dict[Hashable, FlopCount] = {}


def count_flops(model: nn.Module, key: Hashable, *, eval_views: int = 1) -> FlopCount:
    """FLOPs per trained and per evaluated image of `model`, cached under `key` (name and settings).

    `eval_views` is the number of forward passes an evaluated image gets
    (test-time augmentation: 1, 2 with mirroring, 6 with translations).
    """
    cache_key = (key, eval_views)
    if cache_key not in _cache:
        probe = copy.deepcopy(model).to("meta")
        x = torch.zeros(_BATCH, *IMAGE_SHAPE, device="meta").contiguous(memory_format=torch.channels_last)
        probe.train()
        with FlopCounterMode(display=False) as train_counter:
            probe(x).float().sum().backward()
        probe.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as eval_counter:
            probe(x)
        _cache[cache_key] = FlopCount(
            train=train_counter.get_total_flops() // _BATCH,
            evaluate=eval_views * eval_counter.get_total_flops() // _BATCH,
        )
    return _cache[cache_key]

