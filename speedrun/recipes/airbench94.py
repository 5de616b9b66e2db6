"""airbench94 (Jordan 2024, arXiv 2404.00498): 94% on CIFAR-10 in 9.9 epochs of a small whitened net.

Network: frozen 2×2 patch-whitening conv (its bias starts at zero), three conv
groups 64/256/256 with identity-initialised convs and scale-frozen fast
BatchNorm, head scaled 1/9. Optimizer: Nesterov SGD with lr and weight decay
decoupled from batch size and momentum (both given per 1024 images),
BatchNorm biases at 64× lr, triangular schedule, label smoothing 0.2,
lookahead. Data: alternating flip + 2-pixel reflect translation. Evaluation:
TTA with mirror + 1-pixel translations. Length: the reference's budget of 9.9
epochs, ceil(9.9 × 48) = 476 steps of 1024 images (the tenth epoch stops
after 44 of its 48 steps).
"""

from __future__ import annotations

from functools import partial

import torch

from speedrun.recipes.recipe import Recipe
from speedrun.training.config import TrainConfig
from speedrun.training.device import fused
from speedrun.training.fastloop import FastParts, Steps, train_fast
from speedrun.training.nets import AirbenchNet, FrozenScaleBatchNorm
from speedrun.training.optim import group
from speedrun.training.schedules import triangle


TRIANGLE = {"start": 0.2, "peak": 0.23, "end": 0.07}  # of the peak lr, at the start, at 23% of the steps, at the end


def build_model(config: TrainConfig) -> AirbenchNet:
    return AirbenchNet(bn_momentum=config.bn_momentum, head_scale=1 / 9)


def bn_biases(model: AirbenchNet) -> list[torch.nn.Parameter]:
    return [m.bias for m in model.modules() if isinstance(m, FrozenScaleBatchNorm)]


def on_fused_device(model: torch.nn.Module) -> bool:
    return fused(next(model.parameters()).device)


def make_optimizers(model: AirbenchNet, config: TrainConfig, steps: Steps) -> list[torch.optim.Optimizer]:
    # With Nesterov momentum m a constant gradient moves the weights 1 + 1/(1-m) times per step;
    # dividing by that (and by 1024 images) makes `lr` a per-image step size that survives changes of m.
    kilostep_scale = 1024 * (1 + 1 / (1 - config.momentum))
    lr = config.lr_per_1024 / kilostep_scale
    wd = config.weight_decay * config.batch_size / kilostep_scale
    schedule = partial(triangle, **TRIANGLE)
    biases = bn_biases(model)
    bias_ids = {id(p) for p in biases}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in bias_ids]  # incl. whitening bias
    groups = [group(others, lr, schedule, wd), group(biases, lr * config.bias_lr_scale, schedule, wd)]
    return [torch.optim.SGD(groups, momentum=config.momentum, nesterov=config.nesterov,
                            fused=on_fused_device(model) or None)]


RECIPE = Recipe(
    name="airbench94",
    summary="Jordan's airbench94: whitened 64/256/256 net, Nesterov SGD + lookahead, alt-flip, TTA; ~94% in 9.9 epochs.",
    config=TrainConfig(
        recipe="airbench94", model="airbench94", batch_size=1024, lr_per_1024=11.5, epochs=9.9, momentum=0.85,
        weight_decay=0.0153, nesterov=True, optimizer="sgd", cosine=False,
        augment=("altflip", "translate"), label_smoothing=0.2, tta=2, lookahead=True, whiten_bias_epochs=3,
        bn_momentum=0.6, bias_lr_scale=64.0,
    ),
    train=partial(train_fast, parts=FastParts(build_model, make_optimizers)),
    models=("airbench94",),
    optimizers=("sgd",),
    augmentations=("altflip", "translate"),
    options=("model", "optimizer", "batch_size", "lr_per_1024", "epochs", "momentum", "weight_decay", "nesterov", "amp", "compile",
             "augment", "label_smoothing", "tta", "lookahead", "whiten_bias_epochs", "bn_momentum",
             "bias_lr_scale"),
    fixed=("model: airbench94 (whitened 64/256/256 net, head scaled 1/9); optimizer: Nesterov SGD",
           "learning rate: triangular per step, {start:g}× the peak at the start, the peak at {peak:.0%} of the steps, "
           "{end:g}× at the end".format(**TRIANGLE),
           "weight decay: given per 1,024 images (× batch / (1024 × (1 + 1/(1 − momentum))))",
           "loss: label-smoothed cross-entropy summed over the batch; BatchNorm in every conv group"),
)
