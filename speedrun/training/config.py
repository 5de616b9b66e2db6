"""What one training run does: the options, their defaults, and how they resolve on this machine.

The defaults replay the user's current main.py (ResNet-18, SGD lr 0.04 momentum
0.9, batch 64, 10 epochs, cosine per epoch, crop+flip): the `resnet18` recipe.
Other recipes (speedrun.recipes) start from other values; the fields after
`threads` are theirs and stay None (unrecorded) in the default recipe. `resolve()` turns
"auto" choices (device, AMP) into facts and rejects bad values with one
clear SpeedrunError; `to_params()` is what the store records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from speedrun.domain.hyperparams import HYPER, flag
from speedrun.errors import SpeedrunError
from speedrun.training.augment import DEFAULT_AUGMENT
from speedrun.training.nets import MODELS
from speedrun.training.tta import TTA_LEVELS

ALL_MODELS = (*MODELS, "airbench94")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
DEVICES = ("auto", "cuda", "mps", "cpu")
MAX_EPOCHS = 100_000  # far beyond any CIFAR-10 training; a typo such as 1e308 is refused, not trained (or stored)


NOT_A_PARAM = {"param": False}  # field metadata: how the run is done, not what it trains (device, paths)


@dataclass
class TrainConfig:
    """One run's options. Every field is a recorded param, in this order (None: not recorded), except
    those marked NOT_A_PARAM; see `to_params`."""

    model: str = "resnet18"
    optimizer: str = "sgd"
    lr: float = 0.04
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int | float = 10  # the fast recipes take a fractional budget (9.9: the tenth epoch stops early)
    cosine: bool = True
    amp: bool | None = None  # None: on where it is fast (CUDA; CPUs with native bf16)
    bn: bool = True
    augment: tuple[str, ...] = DEFAULT_AUGMENT
    seed: int | None = None  # None: a random seed, drawn and recorded so the run can be repeated
    nesterov: bool = False
    warmup: int = 0  # epochs of linear warm-up before the cosine decay
    compile: bool = False
    graph: bool | None = None  # the step as one CUDA graph (resnet loop on CUDA; None elsewhere: not recorded)
    subset: int | None = None
    val_subset: int | None = None  # evaluate on a fixed, seeded N of the 10,000 test images (quick trials)
    eval_every: int | None = None  # evaluate every K epochs, and always after the last (None: every epoch)
    # Fields of the fast recipes (None: not used, not recorded):
    recipe: str | None = None  # None: the default recipe (resnet18), recorded as before
    lr_per_1024: float | None = None  # airbench94: peak lr per 1,024 images, decoupled from batch and momentum
    muon_lr: float | None = None  # airbench94-muon: Muon's peak lr on the conv filters
    label_smoothing: float | None = None
    tta: int | None = None  # test-time augmentation level of the final evaluation (0, 1, 2)
    lookahead: bool | None = None
    whiten_bias_epochs: int | None = None  # epochs the whitening bias trains before it is frozen
    bn_momentum: float | None = None  # weight of the old BatchNorm statistics (airbench convention)
    bias_lr_scale: float | None = None  # lr multiplier of the BatchNorm biases
    bias_lr: float | None = None  # muon recipe: SGD lr of the biases
    head_lr: float | None = None  # muon recipe: SGD lr of the linear head
    sgd_momentum: float | None = None  # muon recipe: momentum of the SGD part
    # Not params:
    device: str = field(default="auto", metadata=NOT_A_PARAM)  # recorded with the environment
    data_dir: str = field(default="./data", metadata=NOT_A_PARAM)
    target: float | None = field(default=None, metadata=NOT_A_PARAM)  # val accuracy (%) whose first crossing is timed; a column of the run
    # Facts of the machine, decided by resolve() and recorded with the run's environment, not as params:
    threads: int | None = field(default=None, compare=False, metadata=NOT_A_PARAM)
    amp_dtype: str | None = field(default=None, compare=False, metadata=NOT_A_PARAM)  # the autocast dtype used
    tf32: bool | None = field(default=None, compare=False, metadata=NOT_A_PARAM)  # fp32 convs on TF32 cores (CUDA)
    # The hyperparameters the recipe's loop reads (Recipe.configure); only those are recorded.
    # None: every field (a bare TrainConfig, as the tests build them).
    reads: frozenset[str] | None = field(default=None, compare=False, repr=False, metadata=NOT_A_PARAM)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, float) and self.epochs.is_integer():
            self.epochs = int(self.epochs)  # `--epochs 10` is recorded as the integer it means

    def validate(self) -> None:
        """Raise SpeedrunError naming the first bad option."""
        checks = [
            (self.model in ALL_MODELS, f"--model must be one of {', '.join(ALL_MODELS)}, not {self.model!r}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}"),
            (self.batch_size >= 2, f"--batch-size must be at least 2 (BatchNorm needs two images), not {self.batch_size}"),
            (math.isfinite(self.epochs) and 0 < self.epochs <= MAX_EPOCHS,
             f"--epochs must be positive and at most {MAX_EPOCHS:,}, not "
             f"{self.epochs:{',' if abs(self.epochs) < 1e12 else 'g'}}"),
            (self.recipe is not None or isinstance(self.epochs, int),
             f"--epochs must be a whole number in the resnet recipes (fractional budgets are for the fast "
             f"recipes), not {self.epochs}"),
            *((v is None or (math.isfinite(v) and v > 0), f"{flag(name)} must be a positive number, not {v}")
              for name, v in (("lr", self.lr), ("lr_per_1024", self.lr_per_1024), ("muon_lr", self.muon_lr))),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), not {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must not be negative, not {self.weight_decay}"),
            (0 <= self.warmup < self.epochs, f"--warmup must be in [0, epochs), not {self.warmup}"),
            (not self.nesterov or (self.optimizer in ("sgd", "muon") and self.momentum > 0),
             "--nesterov needs --optimizer sgd or muon with a positive --momentum"),
            (self.subset is None or self.subset >= 2, f"--subset must be at least 2 images, not {self.subset}"),
            (self.val_subset is None or self.val_subset >= 1,
             f"--val-subset must be at least 1 image, not {self.val_subset}"),
            (self.eval_every is None or self.eval_every >= 1, f"--eval-every must be at least 1, not {self.eval_every}"),
            # The fast recipes drop the last partial batch: fewer images than a batch would train nothing.
            (self.recipe is None or self.subset is None or self.batch_size <= self.subset,
             f"--batch-size {self.batch_size} is larger than the {self.subset} images of --subset"),
            (self.target is None or 0 < self.target <= 100, f"--target is a val accuracy in (0, 100], not {self.target}"),
            (self.label_smoothing is None or 0 <= self.label_smoothing < 1,
             f"--label-smoothing must be in [0, 1), not {self.label_smoothing}"),
            (self.tta is None or self.tta in TTA_LEVELS, f"--tta must be one of 0, 1, 2, not {self.tta}"),
            (self.whiten_bias_epochs is None or self.whiten_bias_epochs >= 0,
             f"--whiten-bias-epochs must not be negative, not {self.whiten_bias_epochs}"),
            (self.bn_momentum is None or 0 <= self.bn_momentum < 1, f"bn_momentum must be in [0, 1), not {self.bn_momentum}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SpeedrunError(message)

    def resolve(self) -> "TrainConfig":
        """A copy with device, AMP, seed and thread count decided for this machine."""
        from speedrun.tracking.environment import best_device_type, cpu_has_native_bf16, physical_cores

        self.validate()
        device = best_device_type() if self.device == "auto" else self.device
        _check_device(device)
        amp = self.amp
        if amp is None:  # the fast default: measured, bf16 autocast only pays off with native bf16
            amp = device == "cuda" or (device == "cpu" and cpu_has_native_bf16())
        # bf16 on CPUs, and for the resnet recipes on GPUs with native bf16 (no GradScaler, a graphable
        # step); the fast recipes keep the reference's fp16, which their tuning assumes.
        bf16 = device == "cpu" or (self.recipe is None and _cuda_bf16(device))
        amp_dtype = None if not amp else ("bfloat16" if bf16 else "float16")
        seed = self.seed if self.seed is not None else random_seed()
        return replace(self, device=device, amp=amp, amp_dtype=amp_dtype, seed=seed, threads=physical_cores(),
                       graph=self._graph(device, amp_dtype), tf32=_tf32(device) if not amp else None)

    def _graph(self, device: str, amp_dtype: str | None) -> bool | None:
        """Whether the resnet loop captures its step as a CUDA graph (training.graphed): on by default on
        CUDA, except with fp16 autocast (its GradScaler skips steps by data) or --compile; None where no
        graph can run, so CPU runs record nothing about it."""
        if self.recipe is not None or device != "cuda":
            if self.graph:
                raise SpeedrunError("--graph captures the resnet recipes' training step on a CUDA GPU "
                                    + ("(the fast recipes have their own loop)" if self.recipe is not None
                                       else "and needs --device cuda"))
            return None
        if self.graph is None:
            return amp_dtype != "float16" and not self.compile
        if self.graph and amp_dtype == "float16":
            raise SpeedrunError("--graph cannot capture fp16 autocast, whose GradScaler skips steps by the data: "
                                "this GPU has no native bf16; use --no-amp or --no-graph")
        return self.graph

    def lr_at(self, epoch: int) -> float:
        """Learning rate for 0-based `epoch`: linear warm-up, then cosine to zero (stepped per epoch) or flat."""
        if epoch < self.warmup:
            return self.lr * (epoch + 1) / self.warmup
        if not self.cosine:
            return self.lr
        progress = (epoch - self.warmup) / (self.epochs - self.warmup)
        return self.lr * 0.5 * (1 + math.cos(math.pi * progress))

    def evaluates_after(self, epoch: int, epochs: int) -> bool:
        """Whether 1-based `epoch` of `epochs` is evaluated: every `eval_every`-th, and always the last."""
        return epoch == epochs or epoch % (self.eval_every or 1) == 0

    def machine(self) -> dict[str, Any]:
        """What resolve() decided about this machine, recorded with the run (its `extra`), not as params."""
        facts = (("threads", self.threads), ("amp_dtype", self.amp_dtype), ("tf32", self.tf32))
        return {k: v for k, v in facts if v is not None}

    def to_params(self) -> dict[str, Any]:
        """The fields as recorded params: canonical names (speedrun.domain.params), typed values, None
        left out, and of the hyperparameters only those the recipe reads (`reads`)."""
        params: dict[str, Any] = {}
        for f in fields(self):
            if self.reads is not None and f.name in HYPER and f.name not in self.reads:
                continue
            value = getattr(self, f.name)
            if f.name == "augment":
                value = ",".join(value) or "none"
            elif f.name == "amp":
                value = bool(value)  # unresolved (None) means off until resolve() decides
            if f.metadata.get("param", True) and value is not None:
                params[f.name] = value
        return params


def _cuda_bf16(device: str) -> bool:
    """Whether autocast on this CUDA GPU uses bf16 (Ampere and newer: native bf16, no GradScaler needed)."""
    if device != "cuda":
        return False
    import torch

    return torch.cuda.is_bf16_supported(including_emulation=False)


def _tf32(device: str) -> bool | None:
    """Whether fp32 convolutions run on TF32 tensor cores here: a CUDA GPU of compute capability 8
    or more with cuDNN's TF32 allowed (PyTorch's default); None off CUDA."""
    if device != "cuda":
        return None
    import torch

    return bool(torch.backends.cudnn.allow_tf32 and torch.cuda.get_device_capability()[0] >= 8)


def _check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SpeedrunError("--device cuda was asked for, but no CUDA GPU is available (try --device auto)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SpeedrunError("--device mps was asked for, but Apple MPS is not available (try --device auto)")


def random_seed() -> int:
    import random

    return random.SystemRandom().randrange(2**31)
