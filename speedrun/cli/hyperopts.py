"""The hyperparameter options of `train` and `sweep`, generated from speedrun.domain.hyperparams.

`@hyperparameter_options("train")` adds one option per declared hyperparameter to a
command and hands the command their values as one dict, `hyper` (None: not given),
so adding a hyperparameter is one declaration, not an edit of every command.
`train` takes typed values; `sweep` takes text (one value, a list or a range) for
those a sweep may search.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Literal, Optional

import typer

from speedrun.domain.hyperparams import HYPERS, Hyper

RECIPE_DEFAULT = "[default: from the recipe]"
LIST_OR_RANGE = "one value, a list (A,B,C) or a range (LOW:HIGH, LOW:HIGH:log)"
_TYPES = {"float": float, "int": int, "bool": bool, "word": str, "augment": str}
_METAVARS = {"float": "X", "int": "N", "word": "NAME", "augment": "A,B"}


def _unit(h: Hyper) -> str:
    return f" Unit: {h.unit}." if h.unit else ""


def _train_option(h: Hyper) -> tuple[Any, Any]:
    flags = (f"{h.flag}/--no-{h.flag[2:]}",) if h.kind == "bool" else h.flags_all
    default = "" if "[default:" in h.help else f" {RECIPE_DEFAULT}"
    option = typer.Option(None, *flags, help=f"{h.help}{_unit(h)}{default}", metavar=h.metavar or _METAVARS.get(h.kind),
                          show_default=False)
    return Optional[_TYPES[h.kind]], option


def _sweep_option(h: Hyper) -> tuple[Any, Any]:
    if h.kind == "bool":
        what = "on, off or on,off"
    elif h.kind == "word":
        what = "one or a list (A,B)"
    elif h.kind == "augment":
        what = "alternatives split by |: 'crop,flip|crop,flip,jitter'"
    else:
        what = LIST_OR_RANGE
    help_text = h.help.split(" [default:")[0]
    return Optional[str], typer.Option(None, *h.flags_all, help=f"{help_text}{_unit(h)} Swept: {what}.",
                                       show_default=False)


def hyperparameter_options(command: Literal["train", "sweep"]) -> Callable[[Callable], Callable]:
    """Give the decorated command (which takes `hyper: dict`) one option per hyperparameter, after
    its `--recipe`."""
    chosen = [h for h in HYPERS if command == "train" or h.searchable]
    make = _train_option if command == "train" else _sweep_option

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "hyper"]
        at = next((i + 1 for i, p in enumerate(own) if p.name == "recipe"), 0)
        added = []
        for h in chosen:
            annotation, option = make(h)
            added.append(inspect.Parameter(h.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                           annotation=annotation))
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        parameters = [*own[:at], *added, *own[at:]]

        @functools.wraps(func)
        def command_function(**kwargs: Any) -> Any:
            hyper = {h.name: kwargs.pop(h.name) for h in chosen}
            return func(hyper=hyper, **kwargs)

        command_function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        command_function.__annotations__ = {p.name: p.annotation for p in parameters}
        return command_function

    return decorate
