"""Hyperparameter names and values: one vocabulary for every source of runs.

Logs say `BATCH_SIZE=64`, notebooks say `| Batch Size | 64 |`, the trainer says
`batch_size`. Everything is mapped to the canonical names below so that runs
from any source can be listed, filtered and diffed side by side.
"""

from __future__ import annotations

import math
import re
from typing import Any

from speedrun.domain.hyperparams import HYPERS
from speedrun.domain.memo import per_text

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
    "compile": "compile",
    "torch_compile": "compile",
    "use_compile": "compile",
}

# The augmentations `speedrun train` knows, in the order it records them (training.augment
# takes its list from here), and the torchvision names notebooks write for them.
AUGMENTATIONS = ("crop", "flip", "cutout", "jitter", "altflip", "translate")
_AUGMENT_NAMES = {
    "randomcrop": "crop",
    "crop": "crop",
    "randomhorizontalflip": "flip",
    "horizontalflip": "flip",
    "hflip": "flip",
    "flip": "flip",
    "cutout": "cutout",
    "colorjitter": "jitter",
    "jitter": "jitter",
    "altflip": "altflip",
    "translate": "translate",
}
# Arguments that are the recipe's own (RandomCrop(32, padding=4), RandomHorizontalFlip(p=0.5)).
_DEFAULT_ARGS = {"", "32,padding=4", "32,4", "size=32,padding=4", "p=0.5", "0.5"}
_TRANSFORM = re.compile(r"(?:[A-Za-z_]\w{0,40}\.){0,3}([A-Za-z_]\w{0,60})(?:\((.{0,200})\))?")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


# Every hyperparameter `speedrun train` declares (domain.hyperparams), by its name and by each
# spelling of its flag, so a log or notebook that names one (`LR_PER_1024=11.5`, `--bs`) reads it.
for _h in HYPERS:
    for _spelling in (_h.name, *(f.lstrip("-") for f in _h.flags_all)):
        _ALIASES.setdefault(_key(_spelling), _h.name)


@per_text
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
# Unambiguous alternatives: a failing fullmatch on a long digit run stays linear.
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?", re.IGNORECASE)
_MAX_DIGITS = 19  # an int beyond this is no hyperparameter (and beyond SQLite's integers)


@per_text
def parse_value(text: str) -> Any:
    """Type a value written as text: bool, int, float or the stripped string.

    `11,173,962` is an int; `nan`/`inf` stay strings because they are never a
    meaningful hyperparameter and would not survive JSON.
    """
    value = text.strip().strip("`").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()  # amp='True' is amp=True
    if value.endswith(".") and not value.endswith(".."):
        # A sentence's full stop after a value (`EPOCHS=10.`, `amp='True.'`) is no part of it.
        head = value[:-1].rstrip()
        if head.lower() in _BOOL_WORDS or _INT.fullmatch(head) or _FLOAT.fullmatch(head):
            value = head
    low = value.lower()
    if low in _BOOL_WORDS:
        return _BOOL_WORDS[low]
    if len(value) > 400:
        return value  # no number a person writes; float() of it would only cost time
    if _INT.fullmatch(value) and ("," not in value or re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", value)):
        digits = value.replace(",", "").replace("_", "")
        return int(digits) if len(digits.lstrip("+-")) <= _MAX_DIGITS else value
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
    """Canonical names for every key; string values typed and in their canonical spelling."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        key = canonical_name(name)
        out[key] = canonical_value(key, parse_value(value) if isinstance(value, str) else value)
    return out


def canonical_value(name: str, value: Any) -> Any:
    """The value as `speedrun train` records it: `ResNet-18` is `resnet18`, `SGD` is `sgd`,
    `RandomCrop(32, padding=4), RandomHorizontalFlip()` is `crop,flip`. Values no rule
    understands are returned as given."""
    if not isinstance(value, str):
        return value
    if name == "model":
        return model_name(value)
    if name == "optimizer":
        return value.strip().lower()
    if name == "augment":
        return canonical_augment(value) or value
    return value


@per_text
def model_name(text: str) -> str:
    """`ResNet-18`, `ResNet 18`, `resnet_18` → `resnet18`; separators between digits stay (`wrn16-4`)."""
    name = text.strip().lower()
    return re.sub(r"(?<![0-9])[-_ ]+|[-_ ]+(?![0-9])", "", name)


@per_text
def canonical_augment(text: str) -> str | None:
    """`RandomCrop(32, padding=4), RandomHorizontalFlip()` → `crop,flip`; None if it is not a list of transforms.

    The recipe's names come first in the recipe's order; other transforms follow,
    lower-cased, with their arguments when they have any.
    """
    if text.strip().lower() in ("none", "no", "false", "off"):
        return "none"
    known: list[str] = []
    other: list[str] = []
    for piece in _split_calls(text):
        # A parenthetical after a transform is a remark, not its arguments: `RandomRotation(15) (No ColorJitter)`.
        piece = _REMARK.sub("", piece)
        match = _TRANSFORM.fullmatch(piece)
        if match is None:
            return None
        name = match.group(1).lower()
        args = re.sub(r"\s+", "", match.group(2) or "")
        recipe_name = _AUGMENT_NAMES.get(name)
        if recipe_name and args in _DEFAULT_ARGS:
            known.append(recipe_name)
        elif name in ("totensor", "normalize"):
            continue  # preprocessing, not augmentation
        else:
            other.append(f"{name}({args})" if args else name)
    if not known and not other:
        return None
    ordered = [name for name in AUGMENTATIONS if name in known] + list(dict.fromkeys(other))
    return ",".join(ordered)


_REMARK = re.compile(r"\s+\([^()]{0,200}\)$")


def _split_calls(text: str) -> list[str]:
    """Split on commas and `+` outside parentheses."""
    return [p.strip() for p in split_outside_brackets(text, ",+") if p.strip()]


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


_BRACKETS_AND_SEPARATORS = {sep: re.compile(rf"[()\[\]{{}}{re.escape(sep)}]") for sep in (",", ",+")}


def split_outside_brackets(text: str, separators: str = ",") -> list[str]:
    """`a(1, 2), b` → [`a(1, 2)`, ` b`]: split at separators that no bracket encloses.
    One pass over the brackets and separators only, not over every character."""
    if "(" not in text and "[" not in text and "{" not in text:
        if len(separators) == 1:
            return text.split(separators)
        if not any(sep in text for sep in separators):
            return [text]
    pattern = _BRACKETS_AND_SEPARATORS.get(separators) or re.compile(rf"[()\[\]{{}}{re.escape(separators)}]")
    pieces: list[str] = []
    depth = start = 0
    for match in pattern.finditer(text):
        char = match.group()
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0:
            pieces.append(text[start : match.start()])
            start = match.end()
    pieces.append(text[start:])
    return pieces
