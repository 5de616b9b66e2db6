"""`speedrun db upgrade`, `speedrun db current`, and `speedrun sync` (what waits for a server)."""

from __future__ import annotations

from speedrun.cli.app import app, console, db_app, notify, open_store
from speedrun.text import counted


@db_app.command()
def upgrade() -> None:
    """Upgrade the database to the newest schema (safe while others write to it).

    Example:

    \b
        speedrun db upgrade
        speedrun --db colab.db db upgrade
    """
    from speedrun.tracking import db as dbmod

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
    from speedrun.tracking import db as dbmod

    store = open_store(migrate=False)
    revision = store.current_revision()
    head = dbmod.head_revision(store.url)
    state = "up to date" if revision == head else ("empty" if revision is None else f"behind head {head}")
    console.print(f"{store.label}: revision {revision or '(none)'} ({state}; head {head})", markup=False)


@app.command()
def sync() -> None:
    """Send a database server what trainings recorded while it could not be reached.

    Trainings recording into a server keep going when the network drops: their
    epochs wait in ./speedrun-spool.db (or $SPEEDRUN_SPOOL) and are sent when
    the server answers again, at the end of the run, or by this command.

    Example:

    \b
        speedrun sync
        SPEEDRUN_DB=postgresql+psycopg://me@db.example.org/speedrun speedrun sync
    """
    from speedrun.tracking.spool import Spool
    from speedrun.tracking.spool import sync as send_waiting

    store = open_store()
    with Spool.default() as spool:
        synced = send_waiting(store, spool)
    for orphan in synced.orphans:
        notify(f"Warning: {orphan.describe(store.label)}")
    if synced.begun:
        console.print(f"Recorded {counted(synced.begun, 'run')} that began offline.", markup=False)
    if synced.epochs or synced.finished:
        left = "nothing else waits now" if synced.orphans else "nothing waits now"
        console.print(f"Sent {synced.epochs} epochs and {synced.finished} run ends to {store.label}; {left}.",
                      markup=False)
    elif not synced.orphans and not synced.begun:
        console.print(f"Nothing waits for {store.label} in {spool.path}.", markup=False)
