"""`speedrun db upgrade` and `speedrun db current`."""

from __future__ import annotations

from speedrun.tracking import db as dbmod
from speedrun.cli.app import console, db_app, open_store


@db_app.command()
def upgrade() -> None:
    """Upgrade the database to the newest schema (safe while others write to it).

    Example:

    \b
        speedrun db upgrade
        speedrun --db colab.db db upgrade
    """
    store = open_store(migrate=False)
    applied = dbmod.upgrade(store.engine, store.url, label=store.label)
    head = dbmod.head_revision(store.url)
    console.print(f"{store.label}: " + (f"upgraded to {head}" if applied else f"already at {head}"), markup=False)


@db_app.command()
def current() -> None:
    """Print the database's schema revision and the newest this speedrun knows.

    Example:

    \b
        speedrun db current
    """
    store = open_store(migrate=False)
    revision = store.current_revision()
    head = dbmod.head_revision(store.url)
    state = "up to date" if revision == head else ("empty" if revision is None else f"behind head {head}")
    console.print(f"{store.label}: revision {revision or '(none)'} ({state}; head {head})", markup=False)
