"""The `speedrun` command line. Importing a command module registers its commands on `app`."""

import gc

from speedrun.cli.app import app
from speedrun.cli import dbcmd, exchange, imports, recipes, report, runs, stats, sweep, train, ui  # noqa: F401  (registration)

__all__ = ["app", "run"]


def run() -> None:
    """The `speedrun` program (console script and `python -m speedrun`).

    Everything imported so far lives until the process ends, so it is moved out of the
    cyclic collector's sight: the collector stops walking it again and again while a
    command allocates (a 2,000-run import makes millions of objects), and at exit
    (a tenth of a second for every command). Only the program does this, not `app`
    itself, which tests invoke many times in one process.
    """
    gc.freeze()
    app(prog_name="speedrun")
