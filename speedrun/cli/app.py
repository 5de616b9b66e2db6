"""The Typer application and what every command shares: the database option and errors.

Command modules (`runs.py`, `imports.py`, `train.py`, ...) register themselves
on `app`; they stay thin: parse options, call the library, print.
"""

from __future__ import annotations

import sys
from typing import NoReturn, Optional

import typer
from rich.console import Console

from speedrun.errors import SpeedrunError

app = typer.Typer(
    name="speedrun",
    help="Train CIFAR-10 speedruns and keep the lab notebook in SQLite.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Inspect and upgrade the database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Piped output (files, Colab cells, tests) gets wide tables instead of truncated cells.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)  # messages stay one line, greppable

DEFAULT_DB = "runs.db"


class State:
    db: str = DEFAULT_DB


state = State()


@app.callback()
def main(
    db: Optional[str] = typer.Option(
        None,
        "--db",
        envvar="SPEEDRUN_DB",
        help="Database: a file path or any SQLAlchemy URL. [env: SPEEDRUN_DB; default: ./runs.db]",
        show_envvar=False,
    ),
) -> None:
    """Train CIFAR-10 speedruns and record every run in SQLite."""
    state.db = db or DEFAULT_DB


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr and a non-zero exit."""
    # One line, whatever the underlying library put into its message.
    err_console.print(f"Error: {' '.join(message.split())}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_store(*, migrate: bool = True):
    """The store for `--db`, upgraded to the current schema (with a notice when it was)."""
    from speedrun.tracking.store import Store

    try:
        return Store.open(state.db, migrate=migrate, notify=lambda msg: err_console.print(msg, markup=False))
    except SpeedrunError as exc:
        fail(str(exc))
