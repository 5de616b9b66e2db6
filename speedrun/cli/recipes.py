"""`speedrun recipes`: the training set-ups `speedrun train --recipe NAME` can start from."""

from __future__ import annotations

import json

import typer

from speedrun.cli.app import app, console
from speedrun.text import fmt_value


@app.command("recipes")
def recipes_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of text."),
) -> None:
    """List the recipes with a one-line description and their defaults.

    Example:

    \b
        speedrun recipes
        speedrun recipes --json
    """
    from speedrun.recipes import DEFAULT_RECIPE, all_recipes

    recipes = list(all_recipes().values())
    if as_json:
        typer.echo(json.dumps(
            [
                {
                    "name": r.name,
                    "default": r.name == DEFAULT_RECIPE,
                    "summary": r.summary,
                    "defaults": {k: v for k, v in r.defaults().items() if k != "recipe"},
                }
                for r in recipes
            ],
            indent=2,
        ))
        return
    for recipe in recipes:
        marker = " (default)" if recipe.name == DEFAULT_RECIPE else ""
        console.print(f"{recipe.name}{marker}: {recipe.summary}", markup=False, highlight=False, soft_wrap=True)
        defaults = ", ".join(f"{k}={fmt_value(v)}" for k, v in recipe.defaults().items() if k != "recipe")
        console.print(f"    {defaults}", markup=False, highlight=False, soft_wrap=True)
