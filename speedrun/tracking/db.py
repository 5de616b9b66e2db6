"""Opening the database: URL resolution, SQLite settings for concurrent writers, migrations.

Several trainings write to one runs.db at once, so SQLite runs in WAL mode with
a busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`: a
writer waits for the lock up front instead of failing with "database is
locked" when it upgrades a read lock half way through.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from speedrun.errors import DatabaseError, ReadOnlyDatabase

BUSY_TIMEOUT_S = 60
# The newest revision in migrations/versions. Every command compares the database with
# it; importing Alembic to find it would cost a third of a second per command, so it
# is written here and a test checks it against Alembic's own head.
SCHEMA_HEAD = "0004_notebook"
_PACKAGE = Path(__file__).resolve().parent.parent  # speedrun/


def resource_dir(name: str) -> Path:
    """`migrations/` or `templates/`: inside the wheel, else at the repository root."""
    packaged = _PACKAGE / f"_{name}"
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def display_name(db: str) -> str:
    """How a database is named in messages: the path as typed, or the URL without its password."""
    if "://" not in db:
        return db
    try:
        return make_url(db).render_as_string(hide_password=True)
    except Exception:  # not even a URL: mask what looks like user:password@
        return _PASSWORD_IN_URL.sub(r"\1***@", db)


def password_of(db: str) -> str | None:
    """The password inside a database URL, so that messages can be scrubbed of it."""
    if "://" not in db:
        return None
    try:
        return make_url(db).password or None
    except Exception:
        match = _PASSWORD_IN_URL.search(db)
        return match.group(0)[len(match.group(1)):-1] if match else None


_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def resolve_url(db: str) -> str:
    """A file path or any SQLAlchemy URL → an SQLAlchemy URL."""
    if not db.strip():
        raise DatabaseError("no database given (--db is empty); give a file path or a URL")
    if "://" in db:
        try:
            make_url(db)
        except (ArgumentError, ValueError) as exc:
            raise DatabaseError(f"not a valid database URL: {display_name(db)} ({_scrub(str(exc), db)})") from None
        return db
    path = Path(db).expanduser()
    if path.is_dir():
        raise DatabaseError(f"{db} is a directory, not a database file")
    if not path.parent.exists():
        raise DatabaseError(f"cannot create database {db}: directory {path.parent} does not exist")
    return f"sqlite:///{path.resolve()}"


def _scrub(message: str, db: str) -> str:
    password = password_of(db)
    return message.replace(password, "***") if password else message


def sqlite_file(url: str) -> Path | None:
    """The file behind an SQLite URL (None for other databases and in-memory ones)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    name = parsed.database
    if name.startswith("file:"):  # URI form: file:path?mode=ro
        name = name[len("file:"):].split("?", 1)[0]
    return Path(name).expanduser().resolve()


# A server that cannot be reached fails in seconds, not minutes: connecting, and noticing a
# connection whose network went away (libpq's TCP keepalives), so a training spools instead of hanging.
POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
                         "keepalives_count": 3}


def make_engine(url: str, *, label: str | None = None, timeout_s: float | None = None) -> Engine:
    """The engine for `url`. `timeout_s` (a training's recorder) bounds every wait on the database:
    SQLite's busy timeout, and PostgreSQL's connect, statement and lock timeouts; without it a
    command waits for SQLite's lock as long as BUSY_TIMEOUT_S and for a statement as long as it takes."""
    label = label or display_name(url)
    try:
        backend = make_url(url).get_backend_name()
        if backend == "sqlite":
            engine = create_engine(url, connect_args={"timeout": timeout_s or BUSY_TIMEOUT_S})
        elif backend == "postgresql":
            engine = create_engine(url, connect_args=postgres_connect_args(timeout_s), pool_pre_ping=True)
            if timeout_s is not None:
                _bound_statements(engine, timeout_s)
        else:
            engine = create_engine(url)
    except ImportError as exc:
        raise DatabaseError(_missing_driver(url, exc)) from None
    except (ArgumentError, ValueError, SQLAlchemyError) as exc:
        raise DatabaseError(f"cannot use database {label}: {_scrub(str(exc), url)}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_s=timeout_s or BUSY_TIMEOUT_S)
    return engine


def postgres_connect_args(timeout_s: float | None = None) -> dict:
    """libpq's settings: keepalives always; with `timeout_s`, connecting gives up after that long
    (libpq counts whole seconds, at least 2)."""
    if timeout_s is None:
        return dict(POSTGRES_CONNECT_ARGS)
    return {**POSTGRES_CONNECT_ARGS, "connect_timeout": max(2, math.ceil(timeout_s))}


def _bound_statements(engine: Engine, timeout_s: float) -> None:
    """Every statement, and every lock it waits for, gives up after `timeout_s` on this engine's
    connections: set per session once connected (a connection pooler such as PgBouncer refuses
    them as startup options)."""
    ms = max(1, round(timeout_s * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {ms}")
            cursor.execute(f"SET lock_timeout = {ms}")
        dbapi_conn.commit()


def _missing_driver(url: str, exc: ImportError) -> str:
    if make_url(url).get_backend_name() == "postgresql":
        return "a PostgreSQL database needs psycopg: pip install 'speedrun[postgres]'"
    return f"cannot use database {display_name(url)}: its driver is not installed ({exc})"


class DamagedText(str):
    """Text read from a column that did not hold valid UTF-8 (shown with U+FFFD)."""


def _tolerant_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return DamagedText(raw.decode("utf-8", errors="replace"))


def read_text_tolerantly(connection) -> None:
    """Let an SQLite connection read text that is not valid UTF-8 (as DamagedText) instead of failing."""
    driver = getattr(connection, "driver_connection", None)
    if driver is not None and hasattr(driver, "text_factory"):
        driver.text_factory = _tolerant_text


def _configure_sqlite(engine: Engine, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control from the driver so `begin` below decides the mode.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {round(busy_timeout_s * 1000)}")
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


def memory_copy(engine: Engine) -> Engine:
    """A private in-memory copy of an SQLite database: a consistent snapshot that can be
    upgraded and read without writing a byte to the original (read-only files)."""
    source = engine.raw_connection()
    try:
        return _copy_into_memory(source.driver_connection)
    finally:
        source.close()


def memory_copy_of_file(path: Path) -> Engine:
    """`memory_copy` of an SQLite file opened read-only (another machine's runs.db, for merge)."""
    import sqlite3

    source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return _copy_into_memory(source)
    finally:
        source.close()


def _copy_into_memory(source) -> Engine:
    copy = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    _configure_sqlite(copy)
    target = copy.raw_connection()
    try:
        source.backup(target.driver_connection)
    finally:
        target.close()
    return copy


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


def upgrade(engine: Engine, url: str, notify: Callable[[str], None] | None = None, *, label: str = "",
            through_migrations: bool = False) -> bool:
    """Bring the schema to head. Returns True when anything was applied.

    Runs inside one write transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: with an
    advisory lock), so concurrent openers and live writers wait for each other
    instead of racing the DDL. A database that cannot be written raises
    `ReadOnlyDatabase`: the caller may read it through an in-memory upgrade.

    A database without a schema is created at head from the models and stamped,
    as Alembic's documentation recommends for new databases (a fifth of a second
    less than replaying every revision; tests/test_migrations.py checks both give
    the models' schema). `through_migrations` replays the revisions instead.
    """
    label = label or display_name(url)
    try:
        # Most opens find the schema current: check without the write lock (and without
        # Alembic), so read-only files can be read and readers never queue behind a writer.
        with engine.connect() as conn:
            if stored_revision(conn) == SCHEMA_HEAD:
                return False
        with engine.execution_options(sqlite_immediate=True).connect() as conn:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                current = stored_revision(conn)
                if current == SCHEMA_HEAD:
                    return False
                _refuse_unknown(url, current, label)
                if current is None and not through_migrations:
                    _create_at_head(conn)
                else:
                    from alembic import command

                    config = alembic_config(url)
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc)
        if "readonly" in reason.replace("-", "").replace(" ", "").lower():
            raise ReadOnlyDatabase(f"database {label} is read-only: {reason}") from None
        if "Could not decode to UTF-8" in reason:
            raise DatabaseError(f"cannot open database {label}: its stored schema revision is damaged "
                                f"(not UTF-8 text); it was not written by speedrun") from None
        raise DatabaseError(f"cannot open database {label}: {_scrub(reason, url)}") from None
    if notify:
        what = "Created" if current is None else f"Upgraded (from {current})"
        notify(f"{what} database {label} at schema revision {SCHEMA_HEAD}.")
    return True


def _create_at_head(conn) -> None:
    """The models' tables, and Alembic's version table stamped with the head revision."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    from speedrun.tracking.models import Base

    Base.metadata.create_all(conn)
    version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
    version.create(conn)
    conn.execute(version.insert().values(version_num=SCHEMA_HEAD))


# Key of the PostgreSQL advisory lock that serialises schema upgrades ("speedrun" in ASCII).
_MIGRATION_LOCK = 0x7370656564


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
            f"database {label or display_name(url)} has schema revision {revision!r}, newer than this "
            f"speedrun knows (head {SCHEMA_HEAD}) or damaged; upgrade speedrun to use it"
        )


def check_revision(engine: Engine, url: str, *, label: str = "") -> None:
    """For read-only use without migrating: refuse a schema this speedrun does not know."""
    _refuse_unknown(url, current_revision(engine), label)
