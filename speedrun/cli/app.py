"""The Typer application and what every command shares: the database option and errors.

Command modules (`runs.py`, `imports.py`, `train.py`, ...) register themselves
on `app`; they stay thin: parse options, call the library, print (messages to
stderr through `notify`).

Errors have one path: the commands and everything below them raise
`SpeedrunError` (or a subclass) for a problem the user can act on, and
`SpeedrunGroup` turns it into one `Error: ...` line (through `fail`, which no
command calls) and the error's exit code: 1, or 2 for a `UsageError` (a command
line the command cannot take); so is an `OSError` (a file name too long, a
disk full, a permission denied: the user's environment, never a bug). Any other
exception is a bug: one line that says so, and the traceback under `--debug` or
`SPEEDRUN_DEBUG=1`.

What a user types is checked once, here, before any command sees it: every
argument must be UTF-8 text (`_check_arguments`), and every integer option and
argument of every command takes 64-bit values only (`_bounded_ints`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

import typer
from typer.core import TyperGroup

from speedrun import outputs
from speedrun.errors import SpeedrunError


def _control_flow_exceptions() -> tuple[type[BaseException], ...]:
    """Exits, aborts and usage errors that Typer (or the click it wraps) reports itself."""
    kinds = [typer.Exit, typer.Abort] + [typer.TyperException] * hasattr(typer, "TyperException")
    if importlib.util.find_spec("typer._click") is None:  # Typer releases before 0.20 are built on click
        import click

        kinds += [click.exceptions.Exit, click.exceptions.Abort, click.ClickException]
    return tuple(kinds)


_CONTROL_FLOW = _control_flow_exceptions()

# The integers a user may type: what the database stores (BIGINT) and the libraries compute with.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _click_types():
    """The parameter types Typer builds commands from: its own copy of click from 0.20 on, click before."""
    try:
        from typer._click import types
    except ImportError:  # Typer releases before 0.20
        from click import types
    return types


class _Fits64Bits:
    """Mixed into an integer parameter type: a number past 64 bits is a usage error."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
            self.fail(f"{value!r} is too large: numbers here fit 64 bits (up to {INT64_MAX:,})", param, ctx)
        return number


@functools.cache
def _bounded_class(base: type) -> type:
    """`base` (INT, or an IntRange) that also refuses what does not fit 64 bits."""
    return type(f"Bounded{base.__name__}", (_Fits64Bits, base), {})


def _bounded_ints(command) -> None:
    """Every integer option and argument of `command` and the commands under it takes 64-bit values
    only: a larger number is a usage error naming the option, not an OverflowError deep inside
    (SQLite, `range`, torch's seed). The types keep their own ranges and help texts."""
    int_type = _click_types().IntParamType
    for param in command.params:
        if isinstance(param.type, int_type) and not isinstance(param.type, _Fits64Bits):
            bounded = object.__new__(_bounded_class(type(param.type)))
            bounded.__dict__.update(vars(param.type))
            param.type = bounded
    for sub in (getattr(command, "commands", None) or {}).values():
        _bounded_ints(sub)


def _check_arguments(args: list[str]) -> None:
    """Every argument is UTF-8 text. Bytes that are not arrive as lone surrogates (Python's
    surrogateescape), which no database, file or terminal can take: one Error line names them."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(arg)
            shown = raw if len(raw) <= 60 else raw[:57] + b"..."
            fail(f"argument {shown!r} is not UTF-8 text; speedrun takes its arguments (file names too) in UTF-8")


def _os_error_text(exc: OSError) -> str:
    """`NAME: File name too long`: an OSError as the user's environment says it."""
    reason = exc.strerror or str(exc)
    name = exc.filename
    if name is None:
        return reason
    return f"{os.fsdecode(name) if isinstance(name, bytes) else name}: {reason}"


class SpeedrunGroup(TyperGroup):
    """Commands listed in the order of the workflow; every error through one path; what the
    user types checked once (`_check_arguments`, `_bounded_ints`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _bounded_ints(self)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        _check_arguments(args)
        state.args = [arg for arg in args if "://" in arg]  # URLs typed: `fail` scrubs their credentials
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        order = {name: i for i, name in enumerate(WORKFLOW_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: (order.get(name, len(order)), name))

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except _CONTROL_FLOW:
            raise
        except SpeedrunError as exc:
            fail(str(exc), code=exc.exit_code, details=getattr(exc, "details", ()))
        except OSError as exc:  # the user's environment: a name too long, a disk full, a permission
            fail(_os_error_text(exc))
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

class LazyConsole:
    """A Rich console made when it is first used: a command that prints JSON, or nothing, never
    imports Rich (25 ms of every start-up). Attributes read and set go to the console."""

    def __init__(self, make: Callable[[], Any]):
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_made", None)

    def rich(self) -> Any:
        """The Rich console itself, made now if it was not."""
        made = object.__getattribute__(self, "_made")
        if made is None:
            made = object.__getattribute__(self, "_make")()
            object.__setattr__(self, "_made", made)
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.rich(), name, value)


def _stdout_console():
    from rich.console import Console

    # Piped output (files, Colab cells, tests) gets wide tables instead of truncated cells.
    # emoji=False: a group named b printed "g:b vs g:smile" as "g🅱 vs …" (":b:" is an emoji code)
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200, emoji=False)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, emoji=False)  # messages stay one line, greppable


console = LazyConsole(_stdout_console)
err_console = LazyConsole(_stderr_console)


def notify(message: str) -> None:
    """A message for the user on stderr, as it is (no markup, no highlighting), on one line."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)

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


_LONG_WORD = re.compile(r"\S{201,}")


def _shortened(match: re.Match) -> str:
    word = match.group()
    return f"{word[:120]}...({len(word):,} characters)...{word[-40:]}"


def fail(message: str, code: int = 1, details: Sequence[str] = ()) -> NoReturn:
    """One clear line on stderr and a non-zero exit; `details` (a query echoed with a caret
    under the fault) follow it as they are, made terminal-safe."""
    from speedrun.text import terminal_safe
    from speedrun.tracking.db import scrub

    # Whatever a library quoted, no credential of a URL the user gave (--db, SPEEDRUN_DB, an
    # argument: merge's source, an -o) is ever shown.
    message = scrub(message, state.db, *state.args)
    # One line, whatever the underlying library put into its message, and of a readable length
    # whatever the user typed (a 5,000-digit run number, a 10 MB title).
    message = _LONG_WORD.sub(_shortened, " ".join(message.split()))
    notify(f"Error: {terminal_safe(message)}")
    for line in details:
        notify(terminal_safe(line))
    raise typer.Exit(code)


def open_store(*, migrate: bool = True):
    """The store for `--db`, upgraded to the current schema (with a notice when it was).

    A command that fails after this leaves the database it created in place, empty or not:
    another process may have opened it meanwhile (a second `train` on the same new file),
    and no lock tells a speedrun command when none has. Commands check their inputs before
    opening the database, so that a bad argument creates nothing."""
    from speedrun.tracking.store import Store

    state.store = Store.open(state.db, migrate=migrate, notify=notify)
    return state.store


def _close_store() -> None:
    """Every command ends with its database closed, whatever happened: the program does not
    leave it to the interpreter's exit (see `speedrun.cli.run`), nor a SQLite log beside it."""
    store, state.store = state.store, None
    if store is not None:
        store.close()

