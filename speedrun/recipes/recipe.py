"""A recipe: a named, complete training set-up and the options its loop reads (see speedrun.recipes).

The registry of recipes (speedrun.recipes) imports the recipe modules, which import
this one; to name which other recipe reads an option, `Recipe` asks the registry it
is given (`set_registry`), so no import runs back up to the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping

from speedrun.domain.hyperparams import HYPER, flag
from speedrun.errors import SpeedrunError, UsageError
from speedrun.training.config import ALL_MODELS, OPTIMIZERS, TrainConfig

_registry: Callable[[], Mapping[str, "Recipe"]] = dict


def set_registry(recipes: Callable[[], Mapping[str, "Recipe"]]) -> None:
    """Where `Recipe.check_options` finds the other recipes (speedrun.recipes sets it)."""
    global _registry
    _registry = recipes


def _nothing_unread(config: TrainConfig) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str  # one line, shown by `speedrun recipes`
    config: TrainConfig  # the recipe's defaults
    train: Callable[..., Any]  # train(config, recorder, *, record=None, reporter=None) -> TrainResult
    models: tuple[str, ...]  # what its trainer can build
    optimizers: tuple[str, ...]
    augmentations: tuple[str, ...]
    options: tuple[str, ...]  # the hyperparameters its loop reads, in the order they are shown
    fixed: tuple[str, ...] = ()  # what the recipe fixes, in words (shown by `speedrun recipes NAME`)
    # Of `options`, those a given config leaves unread, each with why (momentum under Adam): refused
    # when given, not recorded.
    unread: Callable[[TrainConfig], Mapping[str, str]] = _nothing_unread

    def configure(self, **overrides: Any) -> TrainConfig:
        """The recipe's config with every non-None override applied. A hyperparameter the recipe does not
        read is refused (UsageError, naming its options and the recipe that reads it); unknown names
        are a programming error."""
        names = {f.name for f in fields(TrainConfig)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"not TrainConfig fields: {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        self.check_options(list(given))
        config = replace(self.config, **given)
        self.check_options(list(given), config)
        config = replace(config, reads=frozenset(self.options) - set(self.unread(config)))
        # A model or optimizer speedrun has but this recipe does not: said so before the generic checks
        # (which assume the recipe's own); an unknown name gets the generic list of every one.
        if config.model in ALL_MODELS and config.model not in self.models:
            raise SpeedrunError(f"--model {config.model} is not available in recipe {self.name} "
                                f"(choose {', '.join(self.models)})")
        if config.optimizer in OPTIMIZERS and config.optimizer not in self.optimizers:
            raise SpeedrunError(f"--optimizer {config.optimizer} is not available in recipe {self.name} "
                                f"(choose {', '.join(self.optimizers)})")
        unsupported = [a for a in config.augment if a not in self.augmentations]
        if unsupported:
            raise SpeedrunError(f"--aug {','.join(unsupported)} is not available in recipe {self.name} "
                                f"(choose from {', '.join(self.augmentations)})")
        config.validate()
        return config

    def check_options(self, given: list[str], config: TrainConfig | None = None) -> None:
        """UsageError when any hyperparameter named in `given` is one this recipe does not read (with
        `config`: does not read with that config's choices, as momentum under Adam)."""
        names = [n for n in given if n in HYPER and n not in self.options]
        if names:
            flags = ", ".join(flag(n) for n in names)
            elsewhere = [r.name for r in _registry().values() if r is not self and all(n in r.options for n in names)]
            where = f"; {flags} {'is an option' if len(names) == 1 else 'are options'} of recipe " \
                    f"{' and '.join(elsewhere)}" if elsewhere else ""
            raise UsageError(f"recipe {self.name} does not read {flags}{where}. Its options: "
                             f"{', '.join(flag(n) for n in self.options)} (see `speedrun recipes {self.name}`)")
        unread = self.unread(config) if config is not None else {}
        refused = [n for n in given if n in unread]
        if refused:
            raise UsageError(f"recipe {self.name} does not read {', '.join(flag(n) for n in refused)} "
                             f"{unread[refused[0]]}")

    def defaults(self) -> dict[str, Any]:
        """The recipe's settings as recorded params (seed and machine-dependent choices left out)."""
        params = replace(self.config, reads=frozenset(self.options) - set(self.unread(self.config))).to_params()
        if self.config.amp is None:
            params["amp"] = "auto"  # decided per machine by resolve()
        return params
