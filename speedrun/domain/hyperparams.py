"""The hyperparameters: every training option a recipe can read, declared once.

Each `Hyper` is one `TrainConfig` field and one recorded param of the same
name: its type, its unit, its help, and whether a sweep may search it. The
options of `speedrun train` and `speedrun sweep`, the sweep's search space, the
`recipes` listing and the refusal of an option a recipe does not read are all
built from this table; a recipe names the ones its loop reads
(speedrun.recipes.Recipe.options).

Run options (seed, subset, val_subset, eval_every, device, data, target) are not
here: every recipe reads them, and they are declared with the command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hyper:
    name: str  # the TrainConfig field and the recorded param
    kind: str  # "float", "int", "bool" (a --x/--no-x switch), "word" (one of a set), "augment" (a list)
    help: str
    unit: str = ""  # what the number counts, shown by `speedrun recipes NAME` and --dry-run
    flags: tuple[str, ...] = ()  # extra spellings, e.g. --bs for --batch-size
    searchable: bool = True  # `speedrun sweep` may search it
    metavar: str | None = None
    spelling: str | None = None  # the flag, where it is not the name with dashes (--aug)

    @property
    def flag(self) -> str:
        """How the option is spelt on the command line: --batch-size."""
        return self.spelling or "--" + self.name.replace("_", "-")

    @property
    def flags_all(self) -> tuple[str, ...]:
        return (self.flag, *self.flags)


HYPERS: tuple[Hyper, ...] = (
    Hyper("model", "word", "Network: resnet18 (the user's, 11,173,962 parameters), resnet9 (Page's DAWNBench net) "
          "or airbench94, as the recipe allows."),
    Hyper("optimizer", "word", "Optimizer: sgd, adam, adamw or muon, as the recipe allows."),
    Hyper("batch_size", "int", "Training batch size.", unit="images", flags=("--bs",)),
    Hyper("lr", "float", "Peak learning rate of SGD, Adam or AdamW: the step size itself.", unit="per step"),
    Hyper("lr_per_1024", "float", "Peak learning rate per 1,024 images, decoupled from batch size and momentum "
          "(airbench's convention: the step is lr / (1024 × (1 + 1/(1 − momentum)))).", unit="per 1,024 images"),
    Hyper("muon_lr", "float", "Peak learning rate of Muon on the conv filters (an orthogonalised update's size).",
          unit="per step"),
    Hyper("epochs", "float", "Number of epochs; the fast recipes take a fractional budget (9.9: the tenth epoch "
          "stops early).", unit="epochs"),
    Hyper("momentum", "float", "Momentum of SGD (or of Muon, in the Muon recipe)."),
    Hyper("weight_decay", "float", "Weight decay: L2 for sgd and adam, decoupled for adamw and the fast recipes.",
          flags=("--wd",)),
    Hyper("nesterov", "bool", "Nesterov momentum (sgd, muon)."),
    Hyper("cosine", "bool", "Cosine learning-rate decay to zero, stepped per epoch."),
    Hyper("warmup", "int", "Epochs of linear learning-rate warm-up before the decay.", unit="epochs",
          metavar="EPOCHS"),
    Hyper("bn", "bool", "BatchNorm after every convolution."),
    Hyper("amp", "bool", "Mixed precision: bf16 on CPUs and GPUs with native bf16 (Ampere and newer), else fp16 "
          "with a GradScaler. [default: on for CUDA and CPUs with native bf16]"),
    Hyper("graph", "bool", "Capture the whole training step (augmentation, forward, backward, optimizer) as one "
          "CUDA graph, replayed per batch (CUDA only). [default: on for CUDA without fp16 GradScaler or --compile]",
          searchable=False),
    Hyper("compile", "bool", "Compile the model with torch.compile (slow start, faster steps; warm-up not timed)."),
    Hyper("augment", "augment", "Augmentations, comma-separated (crop, flip, cutout, jitter; altflip, translate in "
          "the fast recipes), or none.", spelling="--aug"),
    Hyper("label_smoothing", "float", "Label smoothing of the loss."),
    Hyper("tta", "int", "Test-time augmentation of the final evaluation: 0 none, 1 mirror, 2 mirror + 1-pixel "
          "translations.", metavar="LEVEL"),
    Hyper("lookahead", "bool", "Lookahead (slow weights) with the cubic schedule."),
    Hyper("whiten_bias_epochs", "int", "Epochs the whitening bias trains before it is frozen.", unit="epochs",
          metavar="EPOCHS"),
    Hyper("bn_momentum", "float", "Weight of the old BatchNorm running statistics (airbench's convention)."),
    Hyper("bias_lr_scale", "float", "Learning-rate multiplier of the BatchNorm biases.", unit="× lr"),
    Hyper("bias_lr", "float", "SGD learning rate of the biases (Muon recipe).", unit="per step"),
    Hyper("head_lr", "float", "SGD learning rate of the linear head (Muon recipe).", unit="per step"),
    Hyper("sgd_momentum", "float", "Momentum of the SGD part (Muon recipe)."),
)
HYPER = {h.name: h for h in HYPERS}
BY_FLAG = {f: h for h in HYPERS for f in h.flags_all}


def flag(name: str) -> str:
    """The command-line spelling of a hyperparameter (or run option) named `name`."""
    return HYPER[name].flag if name in HYPER else "--" + name.replace("_", "-")
