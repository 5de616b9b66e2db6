"""Evaluation with test-time augmentation: the logits of several views of each image, weighted.

Level 0 is the image alone; level 1 averages it with its mirror image; level 2
(airbench's) gives the image and its mirror weight 1/4 each and the four
views translated by one pixel up-left or down-right (each also mirrored) 1/8
each: the weights are the probabilities of those views under training-time
augmentation, so the average estimates the expected prediction.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

TTA_LEVELS = {0: "none", 1: "mirror", 2: "mirror + 1-pixel translations"}


def tta_views(x: torch.Tensor, level: int) -> list[tuple[float, torch.Tensor]]:
    """(weight, view) pairs whose weights sum to 1."""
    if level == 0:
        return [(1.0, x)]
    mirrored = [(0.5, x), (0.5, x.flip(3))]
    if level == 1:
        return mirrored
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[:, :, :h, :w], padded[:, :, 2:2 + h, 2:2 + w]]
    views = [(0.25, x), (0.25, x.flip(3))]
    for view in shifted:
        views += [(0.125, view), (0.125, view.flip(3))]
    return views


def view_count(level: int) -> int:
    """Forward passes an evaluated image gets at `level` (1, 2 or 6): what its FLOPs multiply by."""
    return len(tta_views(torch.zeros(1, 3, 2, 2), level))


def tta_logits(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, level: int) -> torch.Tensor:
    """The weighted average of the model's logits over the views of `x` (in float32)."""
    total = None
    for weight, view in tta_views(x, level):
        logits = weight * model(view.contiguous(memory_format=torch.channels_last)).float()
        total = logits if total is None else total + logits
    return total


@torch.no_grad()
def evaluate_tta(model, images: torch.Tensor, labels: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
                 *, level: int, batch_size: int, autocast) -> tuple[float, float]:
    """(mean loss, accuracy %) over uint8 `images`; `prepare` normalizes a batch."""
    model.eval()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.int64)
    for start in range(0, len(labels), batch_size):
        x, y = prepare(images[start:start + batch_size]), labels[start:start + batch_size]
        with autocast():
            logits = tta_logits(model, x, level)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(labels), 100.0 * correct.item() / len(labels)
