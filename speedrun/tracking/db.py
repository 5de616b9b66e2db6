"""Opening the database: URL resolution, SQLite settings for concurrent writers, migrations.

Several trainings write to one runs.db at once, so SQLite runs in WAL mode with
a busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`: a
writer waits for the lock up front instead of failing with "database is
locked" when it upgrades a read lock half way through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from speedrun.errors import DatabaseError

BUSY_TIMEOUT_S = 60
# The newest revision in migrations/versions. Every command compares the database with
# it; importing Alembic to find it would cost a third of a second per command, so it
# is written here and a test checks it against Alembic's own head.
SCHEMA_HEAD = "0003_notebook"
_PACKAGE = Path(__file__).resolve().parent.parent  # speedrun/


def resource_dir(name: str) -> Path:
    """`migrations/` or `templates/`: inside the wheel, else at the repository root."""
    packaged = _PACKAGE / f"_{name}"
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def resolve_url(db: str) -> str:
    """A file path or any SQLAlchemy URL → an SQLAlchemy URL."""
    if "://" in db:
        try:
            make_url(db)
        except ArgumentError as exc:
            raise DatabaseError(f"not a valid database URL: {db!r} ({exc})") from None
        return db
    path = Path(db).expanduser()
    if path.is_dir():
        raise DatabaseError(f"{db} is a directory, not a database file")
    if not path.parent.exists():
        raise DatabaseError(f"cannot create database {db}: directory {path.parent} does not exist")
    return f"sqlite:///{path.resolve()}"


def make_engine(url: str) -> Engine:
    try:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S} if url.startswith("sqlite") else {})
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise DatabaseError(f"cannot use database {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control from the driver so `begin` below decides the mode.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        except Exception:
            pass  # a read-only file keeps its journal mode; reads still work
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(url: str = "sqlite://") -> str:
    """Alembic's head, read from the revision scripts (the slow, authoritative answer)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def stored_revision(conn) -> str | None:
    """The revision recorded in the database; None for a database without a schema yet."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return stored_revision(conn)


def upgrade(engine: Engine, url: str, notify: Callable[[str], None] | None = None, *, label: str = "") -> bool:
    """Bring the schema to head. Returns True when anything was applied.

    Runs inside one `BEGIN IMMEDIATE` transaction, so concurrent openers and
    live writers wait for each other instead of racing the DDL.
    """
    try:
        # Most opens find the schema current: check without the write lock (and without
        # Alembic), so read-only files can be read and readers never queue behind a writer.
        with engine.connect() as conn:
            if stored_revision(conn) == SCHEMA_HEAD:
                return False
        from alembic import command

        config = alembic_config(url)
        with engine.execution_options(sqlite_immediate=True).connect() as conn:
            with conn.begin():
                current = stored_revision(conn)
                if current == SCHEMA_HEAD:
                    return False
                _refuse_unknown(url, current, label)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"cannot open database {label or url}: {reason}") from None
    if notify:
        what = "Created" if current is None else f"Upgraded (from {current})"
        notify(f"{what} database {label or url} at schema revision {SCHEMA_HEAD}.")
    return True


def _refuse_unknown(url: str, revision: str | None, label: str) -> None:
    """A revision that no script here knows comes from a newer speedrun: never touch it."""
    if revision is None or revision == SCHEMA_HEAD:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    try:
        known = script.get_revision(revision) is not None
    except Exception:
        known = False
    if not known:
        raise DatabaseError(
            f"database {label or url} has schema revision {revision}, newer than this "
            f"speedrun knows (head {SCHEMA_HEAD}); upgrade speedrun to use it"
        )


def check_revision(engine: Engine, url: str, *, label: str = "") -> None:
    """For read-only use without migrating: refuse a schema this speedrun does not know."""
    _refuse_unknown(url, current_revision(engine), label)
