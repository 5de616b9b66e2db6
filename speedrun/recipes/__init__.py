"""Recipes: named, complete training set-ups (model, optimizer, schedule, augmentation, evaluation, precision).

Each recipe is one small module built from the shared pieces in
speedrun.training; `speedrun train --recipe NAME` starts from its config and
every other option overrides one field of it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from speedrun.errors import SpeedrunError
from speedrun.training.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str  # one line, shown by `speedrun recipes`
    config: TrainConfig  # the recipe's defaults
    train: Callable[..., Any]  # train(config, recorder, *, record=None, reporter=None) -> TrainResult
    models: tuple[str, ...]  # what its trainer can build
    optimizers: tuple[str, ...]
    augmentations: tuple[str, ...]

    def configure(self, **overrides: Any) -> TrainConfig:
        """The recipe's config with every non-None override applied (unknown names are a programming error)."""
        names = {f.name for f in fields(TrainConfig)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"not TrainConfig fields: {', '.join(sorted(unknown))}")
        config = replace(self.config, **{k: v for k, v in overrides.items() if v is not None})
        config.validate()  # the generic errors first, then what this recipe cannot do
        if config.model not in self.models:
            raise SpeedrunError(f"--model {config.model} is not available in recipe {self.name} "
                                f"(choose {', '.join(self.models)})")
        if config.optimizer not in self.optimizers:
            raise SpeedrunError(f"--optimizer {config.optimizer} is not available in recipe {self.name} "
                                f"(choose {', '.join(self.optimizers)})")
        unsupported = [a for a in config.augment if a not in self.augmentations]
        if unsupported:
            raise SpeedrunError(f"--aug {','.join(unsupported)} is not available in recipe {self.name} "
                                f"(choose from {', '.join(self.augmentations)})")
        return config

    def defaults(self) -> dict[str, Any]:
        """The recipe's settings as recorded params (seed and machine-dependent choices left out)."""
        params = self.config.to_params()
        if self.config.amp is None:
            params["amp"] = "auto"  # decided per machine by resolve()
        return params


def _load() -> dict[str, Recipe]:
    from speedrun.recipes import airbench94, airbench94_muon, resnet18

    return {r.name: r for r in (resnet18.RECIPE, airbench94.RECIPE, airbench94_muon.RECIPE)}


DEFAULT_RECIPE = "resnet18"


def all_recipes() -> dict[str, Recipe]:
    return _load()


def get_recipe(name: str) -> Recipe:
    recipes = _load()
    if name not in recipes:
        raise SpeedrunError(f"--recipe must be one of {', '.join(recipes)}, not {name!r}")
    return recipes[name]
