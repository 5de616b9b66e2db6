"""`speedrun recipes`: the training set-ups `speedrun train --recipe NAME` can start from."""

from __future__ import annotations

import json
from typing import Optional

import typer

from speedrun.cli.app import app, console
from speedrun.text import fmt_value


def _options(recipe) -> list[dict]:
    """The hyperparameters `recipe` reads: flag, default, unit, whether a sweep may search it."""
    from speedrun.domain.hyperparams import HYPER

    defaults = recipe.defaults()
    return [{"name": n, "flag": HYPER[n].flag, "default": defaults.get(n), "unit": HYPER[n].unit or None,
             "searchable": HYPER[n].searchable, "help": HYPER[n].help} for n in recipe.options]


@app.command("recipes")
def recipes_command(
    name: Optional[str] = typer.Argument(None, help="A recipe: print the options it reads, with defaults and units, and what it fixes."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of text."),
) -> None:
    """List the recipes with a one-line description and their defaults; with NAME, the options that recipe reads.

    Example:

    \b
        speedrun recipes
        speedrun recipes airbench94
        speedrun recipes --json
    """
    from speedrun.recipes import DEFAULT_RECIPE, all_recipes, get_recipe

    recipes = [get_recipe(name.lower())] if name is not None else list(all_recipes().values())
    if as_json:
        typer.echo(json.dumps(
            [
                {
                    "name": r.name,
                    "default": r.name == DEFAULT_RECIPE,
                    "summary": r.summary,
                    "defaults": {k: v for k, v in r.defaults().items() if k != "recipe"},
                    "options": _options(r),
                    "fixed": list(r.fixed),
                }
                for r in recipes
            ],
            indent=2,
        ))
        return
    for recipe in recipes:
        marker = " (default)" if recipe.name == DEFAULT_RECIPE else ""
        _print(f"{recipe.name}{marker}: {recipe.summary}")
        if name is None:
            defaults = ", ".join(f"{k}={fmt_value(v)}" for k, v in recipe.defaults().items() if k != "recipe")
            _print(f"    {defaults}")
            continue
        _print("Options (any other is refused):")
        rows = [(o["flag"], fmt_value(o["default"]) if o["default"] is not None else "", o["unit"] or "",
                 "" if o["searchable"] else "not swept") for o in _options(recipe)]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            _print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + (f"  ({row[3]})" if row[3] else ""))
        if recipe.fixed:
            _print("Fixed by the recipe:")
            for line in recipe.fixed:
                _print(f"  {line}")


def _print(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)
