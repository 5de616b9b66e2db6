"""What a sweep searches: each `train` option given a list, a range, or one value.

    --lr 0.02,0.04,0.08     a list: the grid's values (a categorical choice for random/TPE)
    --lr 0.01:0.1:log       a range, searched on a log scale (random/TPE only)
    --bs 64:512             an integer range (random/TPE only)
    --aug crop,flip|crop,flip,jitter   alternatives of a list-valued option, split on `|`
    --cosine on,off         a switch, both ways
    --momentum 0.9          one value: fixed, not searched

A `SearchSpace` holds the fixed options and the searched dimensions; it is
stored with the study (as JSON), so `sweep --resume NAME` and every worker of
a sweep search exactly the same space. Values are kept as Optuna can store
them (numbers, strings, booleans); `config_values` turns them back into
`TrainConfig` fields (an augmentation list is the string "crop,flip").
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from speedrun.domain.hyperparams import HYPERS, flag
from speedrun.errors import SpeedrunError

SAMPLERS = ("grid", "random", "tpe")  # how a sweep walks its space: every point, or Optuna's samplers

# TrainConfig fields a sweep can search, by the kind of value each takes (speedrun.domain.hyperparams).
_KINDS = {"float": float, "int": int}
NUMERIC: dict[str, type] = {h.name: _KINDS[h.kind] for h in HYPERS if h.searchable and h.kind in _KINDS}
SWITCHES = tuple(h.name for h in HYPERS if h.searchable and h.kind == "bool")
WORDS = tuple(h.name for h in HYPERS if h.searchable and h.kind == "word")
AUGMENT = "augment"
SEARCHABLE = (*NUMERIC, *SWITCHES, *WORDS, AUGMENT)
_ON, _OFF = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


@dataclass(frozen=True)
class Dimension:
    """One searched option: a list of `choices`, or a numeric range [low, high] (`log`: on a log scale)."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def text(self) -> str:
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        return f"{self.low:g} to {self.high:g}" + (" (log scale)" if self.log else "")


@dataclass
class SearchSpace:
    """Fixed options (TrainConfig fields) and the dimensions searched, in the order given."""

    fixed: dict[str, Any] = field(default_factory=dict)
    dimensions: list[Dimension] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @property
    def is_grid(self) -> bool:
        """Every searched option is a list: the grid can be walked point by point."""
        return all(not d.is_range for d in self.dimensions)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the listed values, first option slowest."""
        if not self.is_grid:
            ranges = ", ".join(flag(d.name) for d in self.dimensions if d.is_range)
            raise SpeedrunError(f"a grid needs lists, not ranges ({ranges}); use --sampler random or tpe")
        combos = itertools.product(*(d.choices for d in self.dimensions))
        return [dict(zip(self.names, combo)) for combo in combos]

    def searched(self) -> dict[str, str]:
        """Each searched option and its values in words: {"lr": "0.02, 0.04"}."""
        return {d.name: d.text() for d in self.dimensions}

    def distributions(self) -> dict[str, Any]:
        return {d.name: d.distribution() for d in self.dimensions}

    def to_json(self) -> dict[str, Any]:
        return {
            "fixed": self.fixed,
            "dimensions": [
                {"name": d.name, "choices": list(d.choices) if d.choices is not None else None, "low": d.low,
                 "high": d.high, "log": d.log, "integer": d.integer}
                for d in self.dimensions
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSpace:
        dims = [Dimension(d["name"], tuple(d["choices"]) if d["choices"] is not None else None, d["low"], d["high"],
                          d["log"], d["integer"]) for d in data["dimensions"]]
        return cls(dict(data["fixed"]), dims)


def parse_space(options: dict[str, str | None], *, whole_epochs: bool = False) -> SearchSpace:
    """The space of the options as typed (None: not given). Raises SpeedrunError naming the bad option.

    `whole_epochs`: the recipe trains whole epochs only (the resnet recipes), so an epoch range
    is a range of integers."""
    space = SearchSpace()
    for name, text in options.items():
        if text is None:
            continue
        if name not in SEARCHABLE:
            raise SpeedrunError(f"{flag(name)} cannot be swept")
        values, dimension = _parse(name, text.strip(), int if whole_epochs and name == "epochs" else None)
        if dimension is not None:
            space.dimensions.append(dimension)
        elif len(values) == 1:
            space.fixed[name] = values[0]
        else:
            space.dimensions.append(Dimension(name, tuple(values)))
    if not space.dimensions:
        raise SpeedrunError("nothing to sweep: give an option a list (--lr 0.02,0.04) or a range (--lr 0.01:0.1:log)")
    return space


def _parse(name: str, text: str, kind: type | None = None) -> tuple[list[Any], Dimension | None]:
    if not text:
        raise SpeedrunError(f"{flag(name)}: empty value")
    if name == AUGMENT:
        from speedrun.training.augment import parse_augment  # torch: only when an augmentation is swept

        alternatives = [",".join(parse_augment(part)) or "none" for part in text.split("|")]
        return _distinct(name, alternatives), None
    parts = [p.strip() for p in text.split(",")]
    if name in SWITCHES:
        return _distinct(name, [_switch(name, p) for p in parts]), None
    if name in WORDS:
        return _distinct(name, [p.lower() for p in parts if p]), None
    kind = kind or NUMERIC[name]
    if ":" in text:
        return [], _range(name, text, kind)
    return _distinct(name, [_number(name, p, kind) for p in parts]), None


def _distinct(name: str, values: list[Any]) -> list[Any]:
    if not values or len(set(values)) != len(values):
        raise SpeedrunError(f"{flag(name)} must list distinct values, not {', '.join(map(str, values)) or 'nothing'}")
    return values


def _switch(name: str, word: str) -> bool:
    if word.lower() in _ON:
        return True
    if word.lower() in _OFF:
        return False
    raise SpeedrunError(f"{flag(name)} takes on, off or on,off, not {word!r}")


def _number(name: str, text: str, kind: type) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise SpeedrunError(f"{flag(name)}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpeedrunError(f"{flag(name)}: {text!r} is not a finite number")
    if kind is int:
        if not value.is_integer():
            raise SpeedrunError(f"{flag(name)} takes whole numbers, not {text}")
        return int(value)
    return int(value) if name == "epochs" and value.is_integer() else value


def _range(name: str, text: str, kind: type) -> Dimension:
    parts = text.split(":")
    scale = parts[2].strip().lower() if len(parts) == 3 else "linear"
    if len(parts) not in (2, 3) or scale not in ("log", "linear"):
        raise SpeedrunError(f"{flag(name)}: a range is LOW:HIGH or LOW:HIGH:log, not {text!r}")
    low, high = (_number(name, p.strip(), kind) for p in parts[:2])
    if not low < high:
        raise SpeedrunError(f"{flag(name)}: the range's low end must be below its high end, not {text!r}")
    if scale == "log" and low <= 0:
        raise SpeedrunError(f"{flag(name)}: a log-scale range must be positive, not {text!r}")
    return Dimension(name, None, low, high, log=scale == "log", integer=kind is int)


def config_values(values: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig overrides from stored values: an augmentation string becomes its tuple."""
    from speedrun.training.augment import parse_augment

    convert: dict[str, Callable[[Any], Any]] = {AUGMENT: lambda v: parse_augment("" if v == "none" else v)}
    return {k: convert.get(k, lambda v: v)(v) for k, v in values.items()}


def setting_text(values: dict[str, Any]) -> str:
    """`lr=0.04, batch_size=64`: a trial named by what it searched."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in values.items())


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
