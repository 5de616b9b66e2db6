"""The search space as the user types it: `--lr 0.02,0.04,0.08`, `--lr 0.01:0.1:log`, `--aug crop,flip|none`.

Every option of `speedrun train` can be swept. A value with commas is a list
(a grid axis); `LOW:HIGH` or `LOW:HIGH:log` is a range (random or TPE search
only); a single value is a fixed setting. Strings whose values hold commas
themselves (augmentations) list their alternatives with `|`. Values are
checked against the training field's type here, before any trial starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from speedrun.errors import SpeedrunError

# How a field's text becomes a value: int, float, bool, str, or a custom parser (augmentations).
Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Axis:
    """One swept setting: a list of values (grid) or a numeric range."""

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
        """The Optuna distribution of this axis."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"not true or false: {text!r}")


def _number(kind: type) -> Parser:
    def parse(text: str):
        value = kind(text.strip())
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a finite number: {text!r}")
        return value

    return parse


PARSERS: dict[type, Parser] = {int: _number(int), float: _number(float), bool: _bool, str: str.strip}


def parse_axis(option: str, name: str, text: str, parse: Parser, *, numeric: bool, integer: bool = False,
               list_separator: str = ",") -> Axis | Any:
    """An Axis for a list or range, else the single fixed value; SpeedrunError naming the option otherwise."""
    text = text.strip()
    try:
        if numeric and ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip().lower() != "log"):
                raise ValueError("a range is LOW:HIGH or LOW:HIGH:log")
            low, high = parse(parts[0]), parse(parts[1])
            log = len(parts) == 3
            if not low < high:
                raise ValueError(f"LOW must be below HIGH in {text!r}")
            if log and low <= 0:
                raise ValueError(f"a log range needs LOW > 0 in {text!r}")
            return Axis(name, low=low, high=high, log=log, integer=integer)
        values = [parse(part) for part in text.split(list_separator)] if list_separator in text else None
        if values is None:
            return parse(text)
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"a value is listed twice in {text!r}")
        return Axis(name, choices=tuple(values))
    except ValueError as exc:
        raise SpeedrunError(f"{option} {text!r}: {exc}") from None


def grid_size(axes: list[Axis]) -> int:
    """The number of settings in a full grid of `axes` (all lists)."""
    return math.prod(len(axis.choices) for axis in axes)


def grid_space(axes: list[Axis]) -> dict[str, list[Any]]:
    """The search space of Optuna's GridSampler; ranges cannot be gridded."""
    ranges = [axis.name for axis in axes if axis.is_range]
    if ranges:
        raise SpeedrunError(
            f"a grid sweep needs lists, but {', '.join(ranges)} {'is a range' if len(ranges) == 1 else 'are ranges'}: "
            "give values such as 0.02,0.04 or use --sampler random / tpe"
        )
    return {axis.name: list(axis.choices) for axis in axes}
