"""`speedrun recipes`: the training set-ups `speedrun train --recipe NAME` can start from."""

from __future__ import annotations

from speedrun.cli.app import app, console


def _value(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@app.command("recipes")
def recipes_command() -> None:
    """List the recipes with a one-line description and their defaults."""
    from speedrun.recipes import DEFAULT_RECIPE, all_recipes

    for recipe in all_recipes().values():
        marker = " (default)" if recipe.name == DEFAULT_RECIPE else ""
        console.print(f"{recipe.name}{marker}: {recipe.summary}", markup=False, highlight=False, soft_wrap=True)
        defaults = ", ".join(f"{k}={_value(v)}" for k, v in recipe.defaults().items() if k != "recipe")
        console.print(f"    {defaults}", markup=False, highlight=False, soft_wrap=True)
