"""The `speedrun` command line. Importing a command module registers its commands on `app`."""

from speedrun.cli.app import app
from speedrun.cli import dbcmd, exchange, imports, recipes, report, runs, stats, sweep, train  # noqa: F401  (registration)

__all__ = ["app"]
