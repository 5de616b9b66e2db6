"""Opening the database: URL resolution, SQLite settings for concurrent writers, migrations.

Several trainings write to one runs.db at once, so SQLite runs in WAL mode with
a busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`: a
writer waits for the lock up front instead of failing with "database is
locked" when it upgrades a read lock half way through.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from speedrun.errors import DatabaseError, ReadOnlyDatabase

BUSY_TIMEOUT_S = 60
# The newest revision in migrations/versions. Every command compares the database with
# it; importing Alembic to find it would cost a third of a second per command, so it
# is written here and a test checks it against Alembic's own head.
SCHEMA_HEAD = "0009_sweep_recipe_params"
_PACKAGE = Path(__file__).resolve().parent.parent  # speedrun/


def resource_dir(name: str) -> Path:
    """`migrations/` or `templates/`: inside the wheel, else at the repository root."""
    packaged = _PACKAGE / f"_{name}"
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def display_name(db: str) -> str:
    """How a database is named wherever it surfaces (messages, recorded command lines, the
    spool): the path as typed, or the URL as typed with every credential masked.

    This is the one function that strips secrets from a URL: the password of its user
    part, split at the *last* '@' before the host (a password may hold an unencoded '@'),
    and the values of query keys that carry secrets (`password=`, `sslpassword=`, ...).
    """
    if "://" not in db:
        return db
    scheme, rest = db.split("://", 1)
    userinfo, tail = _split_userinfo(rest)
    shown = f"{scheme}://"
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        shown += f"{user}:***@" if colon else f"{user}@"
    base, question, query = tail.partition("?")
    if question:
        base += "?" + "&".join(f"{key}=***" if _secret_key(key) and sep else f"{key}{sep}{value}"
                               for key, sep, value in (part.partition("=") for part in query.split("&")))
    return shown + base


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """(user[:password], host and the rest) of what follows `scheme://`; None without a user part."""
    if rest.startswith("/"):  # sqlite:///path, file URLs: no user part
        return None, rest
    # The last '@' before the path or query; failing that (a password with '/', '?' or '#'),
    # the last '@' of all after something that looks like `user:` (not `host:port/`).
    found = re.match(r"([^/?#]*)@(.*)\Z", rest, re.S) or re.match(r"([^/?#@:]*:(?!\d*/).*)@([^@]*)\Z", rest, re.S)
    return (found.group(1), found.group(2)) if found else (None, rest)


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential")  # password, passfile, sslpassword, ...
# A URL in running text: up to the next space, less the punctuation that ends a sentence or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*[^\s:;,.)'\"\]]")


def mask_urls(text: str | None) -> str | None:
    """`text` (a recorded command line, a message) with every URL in it as `display_name` shows it."""
    if not text or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: display_name(found.group(0)), text)


def secrets_of(db: str) -> list[str]:
    """The credentials inside a database URL (as typed and decoded), longest first, so that
    messages quoting them in any form can be scrubbed."""
    if "://" not in db:
        return []
    from urllib.parse import unquote

    userinfo, tail = _split_userinfo(db.split("://", 1)[1])
    found = [userinfo.partition(":")[2]] if userinfo is not None else []
    _, _, query = tail.partition("?")
    found += [value for key, _, value in (part.partition("=") for part in query.split("&")) if _secret_key(key)]
    found += [unquote(value) for value in found]
    return sorted({value for value in found if value}, key=len, reverse=True)


def password_of(db: str) -> str | None:
    """The longest credential inside a database URL (messages go through `scrub`, which takes all)."""
    found = secrets_of(db)
    return found[0] if found else None


def scrub(message: str, *dbs: str) -> str:
    """A message with no credential of `dbs` in it: URLs masked as `display_name` shows them, and
    whatever a library quoted of a password (parts of a URL, a connection string) replaced by ***.
    The last line of defence: every message the user sees passes it."""
    message = mask_urls(message) or ""
    secrets = sorted({s for db in dbs if db for s in secrets_of(db)}, key=len, reverse=True)
    if not secrets:
        return message
    # Masked URLs are kept as they are (a password such as "postgres" must not eat "postgresql://").
    pieces = re.split(r"(\S+://\S+)", message)
    for i in range(0, len(pieces), 2):
        for secret in secrets:
            pieces[i] = pieces[i].replace(secret, "***")
    return "".join(pieces)


def _driver_url(db: str) -> str:
    """`postgres://` and `postgresql://` (what hosted providers hand out) name the installed
    driver, and a password with an unencoded '@', '/', '?' or '#' is encoded, so that
    SQLAlchemy reads the URL as the user meant it."""
    scheme, rest = db.split("://", 1)
    if scheme.lower() in ("postgres", "postgresql"):
        scheme = _postgres_dialect()
    userinfo, tail = _split_userinfo(rest)
    if userinfo is not None and any(c in userinfo for c in "@/?#"):
        from urllib.parse import quote

        user, colon, password = userinfo.partition(":")
        userinfo = quote(user, safe="%") + colon + quote(password, safe="%")
        rest = f"{userinfo}@{tail}"
    base, question, query = rest.rpartition("?") if "?" in tail else (rest, "", "")
    if "@" in query:  # `?password=a@b`: SQLAlchemy would take the '@' for the host's
        rest = f"{base}{question}{query.replace('@', '%40')}"
    return f"{scheme}://{rest}"


def _postgres_dialect() -> str:
    """SQLAlchemy's name for PostgreSQL through the driver installed here (psycopg 3 first)."""
    import importlib.util

    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect
    return "postgresql+psycopg"  # none: the "needs psycopg" error names the one to install


def resolve_url(db: str) -> str:
    """A file path or any SQLAlchemy URL → an SQLAlchemy URL."""
    if not db.strip():
        raise DatabaseError("no database given (--db is empty); give a file path or a URL")
    if "://" in db:
        url = _driver_url(db)
        try:
            make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise DatabaseError(f"not a valid database URL: {display_name(db)} ({scrub(str(exc), db)})") from None
        return _readable(url)
    path = Path(db).expanduser()
    if path.is_dir():
        raise DatabaseError(f"{db} is a directory, not a database file")
    if not path.parent.exists():
        raise DatabaseError(f"cannot create database {db}: directory {path.parent} does not exist")
    return _readable(f"sqlite:///{path.resolve()}")


def _readable(url: str) -> str:
    """An SQLite file on a read-only filesystem (a read-only Drive or container mount) opened
    as immutable: a WAL-mode database is otherwise unreadable there, since SQLite cannot
    create its shared-memory file (https://sqlite.org/wal.html#readonly). Only where neither
    the file nor its folder can be written and no write-ahead log lies beside it."""
    file = sqlite_file(url)
    if file is None or make_url(url).database.startswith("file:") or not file.is_file():
        return url
    if _writable(file) or _writable(file.parent) or Path(f"{file}-wal").exists():
        return url
    return f"sqlite:///{file.as_uri()}?mode=ro&immutable=1&uri=true"


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


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
            from speedrun.tracking.models import postgresql_indexes

            postgresql_indexes()
        else:
            engine = create_engine(url)
    except ImportError as exc:
        raise DatabaseError(_missing_driver(url, exc)) from None
    except (ArgumentError, ValueError, SQLAlchemyError) as exc:
        raise DatabaseError(f"cannot use database {label}: {scrub(str(exc), url)}") from None
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
            if _speedrun_or_empty(cursor):  # another program's file is left in its own journal mode
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        except Exception:
            pass  # a read-only file keeps its journal mode; reads still work
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _speedrun_or_empty(cursor) -> bool:
    """Whether an SQLite file is speedrun's (stamped) or still empty: only such files go to WAL."""
    tables = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return not tables or VERSION_TABLE in tables or {LEGACY_VERSION_TABLE, "runs"} <= tables


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


# speedrun's schema revision lives in a version table of its own: Optuna's tables share the
# database (sweeps) and keep their revision in Alembic's default `alembic_version`, which
# Optuna's own tools (load_study, optuna-dashboard) check.
VERSION_TABLE = "speedrun_version"
LEGACY_VERSION_TABLE = "alembic_version"  # where speedrun stamped its revision before 0005
_OUR_REVISION = re.compile(r"\d{4}_\w*\Z")  # speedrun's revisions: 0004_notebook; Optuna's: v3.2.0.a


def _stamp(conn) -> tuple[str | None, bool]:
    """(the revision recorded in the database, whether it still sits in `alembic_version`);
    (None, False) for a database without speedrun's schema yet."""
    inspector = inspect(conn)
    if inspector.has_table(VERSION_TABLE):
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar(), False
    if inspector.has_table(LEGACY_VERSION_TABLE):
        for revision in conn.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalars():
            if revision is not None and _OUR_REVISION.match(revision):
                return revision, True
    return None, False


def stored_revision(conn) -> str | None:
    """The revision recorded in the database; None for a database without a schema yet."""
    return _stamp(conn)[0]


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
    the models' schema). `through_migrations` replays the revisions instead. A
    database holding tables of another program (or speedrun's spool) is refused,
    never migrated. A stamp in `alembic_version` (speedrun before 0005) moves to
    `speedrun_version` first, in the same transaction.
    """
    label = label or display_name(url)
    try:
        # Most opens find the schema current: check without the write lock (and without
        # Alembic), so read-only files can be read and readers never queue behind a writer.
        with engine.connect() as conn:
            if _stamp(conn) == (SCHEMA_HEAD, False):
                return False
        with engine.execution_options(sqlite_immediate=True).connect() as conn:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                current, legacy = _stamp(conn)
                if (current, legacy) == (SCHEMA_HEAD, False):
                    return False
                _refuse_unknown(url, current, label)
                if current is None:
                    _refuse_foreign(conn, label)
                if legacy:
                    _move_stamp(conn, current)
                if current is None and not through_migrations:
                    _create_at_head(conn)
                elif current != SCHEMA_HEAD:
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
        raise DatabaseError(f"cannot open database {label}: {scrub(reason, url)}") from None
    if notify:
        if current == SCHEMA_HEAD:
            notify(f"Database {label}: schema revision {SCHEMA_HEAD} moved from {LEGACY_VERSION_TABLE} to "
                   f"{VERSION_TABLE} (Optuna's tools open its sweeps).")
        else:
            what = "Created" if current is None else f"Upgraded (from {current})"
            notify(f"{what} database {label} at schema revision {SCHEMA_HEAD}.")
    return True


def _version_table():
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    return Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))


def _create_at_head(conn) -> None:
    """The models' tables, and speedrun's version table stamped with the head revision."""
    from speedrun.tracking.models import Base

    Base.metadata.create_all(conn)
    version = _version_table()
    version.create(conn)
    conn.execute(version.insert().values(version_num=SCHEMA_HEAD))


def _move_stamp(conn, revision: str) -> None:
    """speedrun's revision from `alembic_version` to its own table; `alembic_version` keeps
    whatever else it holds (Optuna's revision), and goes when nothing is left in it."""
    version = _version_table()
    version.create(conn)
    conn.execute(version.insert().values(version_num=revision))
    conn.execute(text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :revision"), {"revision": revision})
    if conn.execute(text(f"SELECT count(*) FROM {LEGACY_VERSION_TABLE}")).scalar() == 0:
        conn.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


def _refuse_foreign(conn, label: str) -> None:
    """A database without speedrun's stamp but with tables belongs to something else (another
    program, an Optuna study, speedrun's own spool): refused, never given speedrun's schema."""
    tables = sorted(set(inspect(conn).get_table_names()) - {"sqlite_sequence"})
    if not tables:
        return
    if tables == ["pending"]:
        what = "speedrun's spool (records waiting for a database server), not a runs database"
    elif {"studies", "trials", "version_info"} <= set(tables):
        what = "an Optuna study database, not a speedrun runs database"
    else:
        shown = ", ".join(tables[:6]) + (f" and {len(tables) - 6} more" if len(tables) > 6 else "")
        what = f"a database of another program (tables {shown}), not a speedrun runs database"
    raise DatabaseError(f"database {label} is {what}; speedrun leaves it as it is "
                        f"(give --db a new file or a speedrun database)")


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
    """For read-only use without migrating: refuse a schema this speedrun does not know, and a
    database that is not speedrun's."""
    with engine.connect() as conn:
        revision = stored_revision(conn)
        if revision is None:
            _refuse_foreign(conn, label or display_name(url))
    _refuse_unknown(url, revision, label)


def refuse_writes(engine: Engine) -> None:
    """Make every connection of `engine` refuse writes at the database itself (a reader such as
    `speedrun ui` cannot change a byte, whatever its code does): SQLite's query_only pragma, and
    read-only transactions on PostgreSQL. Connections already pooled are dropped."""
    from sqlalchemy import event

    def read_only(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_connection.commit()
        cursor.close()

    event.listen(engine, "connect", read_only)
    engine.dispose()


def read_only_connection(url: str, engine_kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(url, engine options) of an engine another library opens on a read-only store (Optuna's
    storage under `speedrun ui`): its connections refuse writes as the store's do (`refuse_writes`)."""
    file = sqlite_file(url)
    if file is not None:
        return f"sqlite:///file:{file.resolve()}?mode=ro&uri=true", engine_kwargs
    if make_url(url).get_backend_name() == "postgresql":
        args = dict(engine_kwargs.get("connect_args", {}))
        args["options"] = (args.get("options", "") + " -c default_transaction_read_only=on").strip()
        return url, {**engine_kwargs, "connect_args": args}
    return url, engine_kwargs
