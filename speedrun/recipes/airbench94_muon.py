"""airbench94 with Muon: the same network and data, the conv filters trained by Muon; batch 2000, 8 epochs.

Muon (momentum, then Newton–Schulz orthogonalisation of each filter bank's
update; compiled on a GPU, as the reference, and with --compile) on the 3×3
conv filters; Nesterov SGD on the BatchNorm biases, the whitening bias and the
head. Linear decay to zero, no lookahead; the whitening bias keeps PyTorch's
default init, as the reference, and decays to zero over its 3 epochs. Head
scaled 1/256 on a unit-std init.
"""

from __future__ import annotations

from functools import partial

import torch

from speedrun.recipes.recipe import Recipe
from speedrun.recipes.airbench94 import bn_biases, on_fused_device
from speedrun.training.config import TrainConfig
from speedrun.training.device import compiled, compiles
from speedrun.training.fastloop import FastParts, Steps, train_fast
from speedrun.training.nets import AirbenchNet
from speedrun.training.optim import Muon, group, orthogonalize
from speedrun.training.schedules import linear_decay


def build_model(config: TrainConfig) -> AirbenchNet:
    model = AirbenchNet(bn_momentum=config.bn_momentum, head_scale=1 / 256, zero_whiten_bias=False)
    with torch.no_grad():
        model.head.weight /= model.head.weight.std()  # unit-std head, its size set by head_scale
    return model


def make_optimizers(model: AirbenchNet, config: TrainConfig, steps: Steps) -> list[torch.optim.Optimizer]:
    whiten_steps = max(1, (config.whiten_bias_epochs or 0) * steps.per_epoch)
    whiten_schedule = lambda step, total: linear_decay(step, whiten_steps)  # noqa: E731
    wd = config.weight_decay
    filters = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
    sgd_groups = [group([model.whiten.bias], config.bias_lr, whiten_schedule, wd),
                  group(bn_biases(model), config.bias_lr, linear_decay, wd),
                  group([model.head.weight], config.head_lr, linear_decay, wd)]
    device = next(model.parameters()).device
    newton_schulz = compiled(orthogonalize) if compiles(config, device) else orthogonalize
    muon = Muon([group(filters, config.muon_lr, linear_decay)], lr=config.muon_lr, momentum=config.momentum,
                nesterov=config.nesterov, orthogonalize=newton_schulz)
    return [muon, torch.optim.SGD(sgd_groups, momentum=config.sgd_momentum, nesterov=True,
                                  fused=on_fused_device(model) or None)]


RECIPE = Recipe(
    name="airbench94-muon",
    summary="airbench94 with Muon on the conv filters (Newton–Schulz), batch 2000, 8 epochs, linear decay.",
    config=TrainConfig(
        recipe="airbench94-muon", model="airbench94", batch_size=2000, muon_lr=0.24, epochs=8, momentum=0.6,
        weight_decay=2e-6 * 2000, nesterov=True, optimizer="muon", cosine=False,
        augment=("altflip", "translate"), label_smoothing=0.2, tta=2, lookahead=False, whiten_bias_epochs=3,
        bn_momentum=0.6, bias_lr=0.053, head_lr=0.67, sgd_momentum=0.85,
    ),
    train=partial(train_fast, parts=FastParts(build_model, make_optimizers)),
    models=("airbench94",),
    optimizers=("muon",),
    augmentations=("altflip", "translate"),
    options=("model", "optimizer", "batch_size", "muon_lr", "epochs", "momentum", "weight_decay", "nesterov", "amp", "compile", "augment",
             "label_smoothing", "tta", "lookahead", "whiten_bias_epochs", "bn_momentum", "bias_lr", "head_lr",
             "sgd_momentum"),
    fixed=("model: airbench94 (head scaled 1/256 on a unit-std init); optimizers: Muon on the conv filters, "
           "Nesterov SGD on the biases and the head",
           "learning rates: linear decay to zero per step; the whitening bias decays over its epochs",
           "loss: label-smoothed cross-entropy summed over the batch; BatchNorm in every conv group"),
)
