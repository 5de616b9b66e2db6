"""Opening the database: URL resolution, SQLite settings for concurrent writers, migrations.

Several trainings write to one runs.db at once, so SQLite runs in WAL mode with
a busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`: a
writer waits for the lock up front instead of failing with "database is
locked" when it upgrades a read lock half way through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from speedrun.errors import DatabaseError

BUSY_TIMEOUT_S = 60
_PACKAGE = Path(__file__).resolve().parent


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


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(url: str = "sqlite://") -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, url: str, notify: Callable[[str], None] | None = None, *, label: str = "") -> bool:
    """Bring the schema to head. Returns True when anything was applied.

    Runs inside one `BEGIN IMMEDIATE` transaction, so concurrent openers and
    live writers wait for each other instead of racing the DDL.
    """
    config = alembic_config(url)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    try:
        # Most opens find the schema current: check without the write lock, so read-only
        # files can be read and readers never queue behind a long writer.
        with engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return False
        with engine.execution_options(sqlite_immediate=True).connect() as conn:
            with conn.begin():
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return False
                if current is not None and _unknown_revision(script, current):
                    raise DatabaseError(
                        f"database {label or url} has schema revision {current}, newer than this "
                        f"speedrun knows (head {head}); upgrade speedrun to use it"
                    )
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"cannot open database {label or url}: {reason}") from None
    if notify:
        what = "Created" if current is None else f"Upgraded (from {current})"
        notify(f"{what} database {label or url} at schema revision {head}.")
    return True


def _unknown_revision(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is None
    except Exception:
        return True


def check_revision(engine: Engine, url: str, *, label: str = "") -> None:
    """For read-only use without migrating: refuse a schema this speedrun does not know."""
    script = ScriptDirectory.from_config(alembic_config(url))
    current = current_revision(engine)
    if current is not None and _unknown_revision(script, current):
        raise DatabaseError(
            f"database {label or url} has schema revision {current}, newer than this speedrun knows "
            f"(head {script.get_current_head()}); upgrade speedrun to use it"
        )
