"""The Typer application and what every command shares: the database option and errors.

Command modules (`runs.py`, `imports.py`, `train.py`, ...) register themselves
on `app`; they stay thin: parse options, call the library, print.

Errors have one path: anything below the CLI raises `SpeedrunError` (or a
subclass) for a problem the user can act on, and `SpeedrunGroup` turns it into
one `Error: ...` line and exit 1. Any other exception is a bug: one line that
says so, and the traceback under `--debug` or `SPEEDRUN_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional, Sequence

import typer
from rich.console import Console
from typer.core import TyperGroup

from speedrun import outputs
from speedrun.errors import SpeedrunError


def _control_flow_exceptions() -> tuple[type[BaseException], ...]:
    """Exits, aborts and usage errors that Typer (or the click it wraps) reports itself."""
    kinds = [typer.Exit, typer.Abort] + [typer.TyperException] * hasattr(typer, "TyperException")
    try:  # Typer releases before 0.20 are built on click
        import click

        kinds += [click.exceptions.Exit, click.exceptions.Abort, click.ClickException]
    except ImportError:
        pass
    return tuple(kinds)


_CONTROL_FLOW = _control_flow_exceptions()


class SpeedrunGroup(TyperGroup):
    """Commands listed in the order of the workflow; every error through one path."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        order = {name: i for i, name in enumerate(WORKFLOW_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: (order.get(name, len(order)), name))

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        state.args = [arg for arg in args if "://" in arg]  # URLs typed: `fail` scrubs their credentials
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except _CONTROL_FLOW:
            raise
        except SpeedrunError as exc:
            fail(str(exc), details=getattr(exc, "details", ()))
        except Exception as exc:  # a bug, not the user's input
            if state.debug or os.environ.get("SPEEDRUN_DEBUG") not in (None, "", "0"):
                raise
            fail(f"internal error (a bug in speedrun, please report it): {type(exc).__name__}: {exc} "
                 "(run with --debug for the traceback)")
        finally:
            _close_store()


# `speedrun --help` lists commands in the order a user meets them.
WORKFLOW_ORDER = (
    "train", "sweep", "import-log", "import-md", "list", "show", "report", "compare", "stats", "group",
    "note", "tag", "rm", "ui", "recipes", "export", "merge", "sync", "db",
)

app = typer.Typer(
    cls=SpeedrunGroup,
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
    debug: bool = False
    store = None  # the store `open_store` opened for this command
    args: list[str] = []  # the URLs among the command's arguments


state = State()


def _print_version(wanted: bool) -> None:
    """`speedrun --version`: answered before anything else is parsed or opened."""
    if wanted:
        from speedrun import __version__

        typer.echo(f"speedrun {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", is_eager=True, expose_value=False, callback=_print_version,
                                 help="Print speedrun's version and exit."),
    db: Optional[str] = typer.Option(
        None,
        "--db",
        envvar="SPEEDRUN_DB",
        help="Database: a file path or any SQLAlchemy URL. [env: SPEEDRUN_DB; default: ./runs.db]",
        show_envvar=False,
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error. [env: SPEEDRUN_DEBUG=1]"),
) -> None:
    """Train CIFAR-10 speedruns and record every run in SQLite."""
    state.db = DEFAULT_DB if db is None else db  # an empty --db is refused when the database is opened
    outputs.guard(state.db)  # no file a command writes may land on it
    state.debug = debug
    state.store = None


def fail(message: str, code: int = 1, details: Sequence[str] = ()) -> NoReturn:
    """One clear line on stderr and a non-zero exit; `details` (a query echoed with a caret
    under the fault) follow it as they are, made terminal-safe."""
    from speedrun.text import terminal_safe
    from speedrun.tracking.db import scrub

    # Whatever a library quoted, no credential of a URL the user gave (--db, SPEEDRUN_DB, an
    # argument: merge's source, an -o) is ever shown.
    message = scrub(message, state.db, *state.args)
    # One line, whatever the underlying library put into its message.
    err_console.print(f"Error: {terminal_safe(' '.join(message.split()))}", markup=False, highlight=False,
                      soft_wrap=True)
    for line in details:
        err_console.print(terminal_safe(line), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_store(*, migrate: bool = True):
    """The store for `--db`, upgraded to the current schema (with a notice when it was).

    A command that fails after this leaves the database it created in place, empty or not:
    another process may have opened it meanwhile (a second `train` on the same new file),
    and no lock tells a speedrun command when none has. Commands check their inputs before
    opening the database, so that a bad argument creates nothing."""
    from speedrun.tracking.store import Store

    state.store = Store.open(state.db, migrate=migrate, notify=lambda msg: err_console.print(msg, markup=False))
    return state.store


def _close_store() -> None:
    """Every command ends with its database closed, whatever happened: the program does not
    leave it to the interpreter's exit (see `speedrun.cli.run`), nor a SQLite log beside it."""
    store, state.store = state.store, None
    if store is not None:
        store.close()

