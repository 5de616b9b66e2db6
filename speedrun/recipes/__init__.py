"""Recipes: named, complete training set-ups (model, optimizer, schedule, augmentation, evaluation, precision).

Each recipe is one small module built from the shared pieces in
speedrun.training; `speedrun train --recipe NAME` starts from its config and
every other option overrides one field of it. A recipe owns its options: it
names the hyperparameters (speedrun.domain.hyperparams) its loop reads, only
those are accepted on the command line and recorded, and what it fixes (a
schedule's shape) is described with the recipe, not recorded as a free knob.
"""

from __future__ import annotations

from speedrun.errors import SpeedrunError
from speedrun.recipes.recipe import Recipe, set_registry


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


set_registry(all_recipes)
