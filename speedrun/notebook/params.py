"""Hyperparameter names and values: one vocabulary for every source of runs.

Logs say `BATCH_SIZE=64`, notebooks say `| Batch Size | 64 |`, the trainer says
`batch_size`. Everything is mapped to the canonical names below so that runs
from any source can be listed, filtered and diffed side by side.
"""

from __future__ import annotations

import math
import re
from typing import Any

CANONICAL = (
    "model",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "epochs",
    "cosine",
    "amp",
    "bn",
    "augment",
    "seed",
)

# Spellings seen in the user's logs and notebooks, normalised by `_key` first.
_ALIASES = {
    "lr": "lr",
    "learning_rate": "lr",
    "learningrate": "lr",
    "batch_size": "batch_size",
    "batchsize": "batch_size",
    "bs": "batch_size",
    "batch": "batch_size",
    "epochs": "epochs",
    "epoch": "epochs",
    "num_epochs": "epochs",
    "cosine": "cosine",
    "use_cosine": "cosine",
    "cosine_lr_scheduling": "cosine",
    "cosine_lr_schedule": "cosine",
    "cosine_scheduling": "cosine",
    "cosine_annealing": "cosine",
    "lr_schedule": "cosine",
    "amp": "amp",
    "use_amp": "amp",
    "mixed_precision": "amp",
    "automatic_mixed_precision": "amp",
    "bn": "bn",
    "use_bn": "bn",
    "batchnorm": "bn",
    "batch_norm": "bn",
    "batch_normalization": "bn",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "wd": "weight_decay",
    "weightdecay": "weight_decay",
    "optimizer": "optimizer",
    "optim": "optimizer",
    "model": "model",
    "architecture": "model",
    "arch": "model",
    "augmentation": "augment",
    "augmentations": "augment",
    "augment": "augment",
    "aug": "augment",
    "data_augmentation": "augment",
    "seed": "seed",
    "random_seed": "seed",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def canonical_name(name: str) -> str:
    """Map any spelling of a parameter name to its canonical name.

    Unknown names are kept as given, lower-cased (spaces become underscores).
    """
    key = _key(name)
    return _ALIASES.get(key, key)


_BOOL_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "enabled": True,
    "false": False,
    "no": False,
    "off": False,
    "disabled": False,
}
_INT = re.compile(r"[+-]?\d[\d,_]*")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)


def parse_value(text: str) -> Any:
    """Type a value written as text: bool, int, float or the stripped string.

    `11,173,962` is an int; `nan`/`inf` stay strings because they are never a
    meaningful hyperparameter and would not survive JSON.
    """
    value = text.strip().strip("`").strip()
    low = value.lower()
    if low in _BOOL_WORDS:
        return _BOOL_WORDS[low]
    if _INT.fullmatch(value) and ("," not in value or re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", value)):
        return int(value.replace(",", "").replace("_", ""))
    if _FLOAT.fullmatch(value):
        number = float(value)
        if math.isfinite(number):
            return number
    return value


def value_type(value: Any) -> str:
    """The type name stored beside each parameter value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    return "str"


def normalize(params: dict[str, Any]) -> dict[str, Any]:
    """Canonical names for every key; string values typed."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        out[canonical_name(name)] = parse_value(value) if isinstance(value, str) else value
    return out


def parse_assignment(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line (`--param lr=0.04`)."""
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    if not key.strip():
        raise ValueError(f"empty parameter name in {text!r}")
    return canonical_name(key), parse_value(value)


def typed_value(value: Any, kind: str) -> Any:
    """A parameter value as its recorded type. The JSON column has NUMERIC affinity in
    SQLite, which stores 0.0 or 1.0 as the integers 0 and 1; the type column says better."""
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
