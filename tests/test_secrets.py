"""No secret stored or printed (issues 24 S2/S6 and 27), and the databases users have (issue 27).

A password reaches speedrun inside a database URL: in the user part (encoded, or with an
unencoded '@'), or in the query string (`?password=`). Whatever a command records, shows,
exports, merges or fails with, and whatever a database or the spool keeps, holds it
nowhere: `speedrun.tracking.db.display_name` is the one function that masks it. The real
test is on a PostgreSQL server with a role that must give its password (scram-sha-256).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.tracking import db as dbmod
from speedrun.tracking.spool import Spool
from speedrun.tracking.store import Store
from tests.conftest import ROOT
from tests.helpers import add_run
from tests.test_hostile_input import one_error
from tests.test_store_cli import make_record

# The password: an unencoded '@' in it (S6), and two halves that must not show up either.
SECRET = "Zq7@pw-SECRET"
LEAKS = ("Zq7", "pw-SECRET", "Zq7%40pw")


def invoke(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), *args])


def assert_clean(text: str, where: str = "") -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} in {where}: {text[:2000]}"


def stored_text(url: str) -> str:
    """Every row of every table of a database, as text: what a grep of its columns sees."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in inspect(conn).get_table_names()
                             for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the one function


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://alice:PW@host/db", "postgresql+psycopg://alice:***@host/db"),
    ("postgresql+psycopg://alice:Zq7@pw-SECRET@host:5432/db", "postgresql+psycopg://alice:***@host:5432/db"),
    ("postgresql://alice:Zq7%40pw-SECRET@host/db", "postgresql://alice:***@host/db"),
    ("postgres://alice:p/w?x#y@host/db", "postgres://alice:***@host/db"),
    ("postgresql://alice@host/db?password=Zq7@pw-SECRET&sslmode=require",
     "postgresql://alice@host/db?password=***&sslmode=require"),
    ("postgresql://host/db?sslpassword=k1&passfile=/home/a/.pgpass&user=alice",
     "postgresql://host/db?sslpassword=***&passfile=***&user=alice"),
    ("postgresql://alice@host:5432/db", "postgresql://alice@host:5432/db"),
    ("postgresql://host:5432/db?options=a@b", "postgresql://host:5432/db?options=a@b"),
    ("sqlite:////tmp/me@home/runs.db", "sqlite:////tmp/me@home/runs.db"),
    ("runs.db", "runs.db"),
])
def test_display_name_masks_every_credential_and_nothing_else(url, shown):
    assert dbmod.display_name(url) == shown


def test_command_lines_are_recorded_without_credentials():
    from speedrun.tracking.environment import command_line

    argv = ["speedrun", "--db", f"postgresql+psycopg://alice:{SECRET}@h/db", "train", "--title", "a b",
            f"--db=postgres://bob@h/db?password={SECRET}"]
    recorded = command_line(argv)
    assert_clean(recorded)
    assert recorded == ("speedrun --db postgresql+psycopg://alice:***@h/db train --title a b "
                        "--db=postgres://bob@h/db?password=***")


def test_a_password_with_an_unencoded_at_sign_reaches_the_driver_whole():
    """S6: split at the last '@' before the host, and encoded for SQLAlchemy."""
    from sqlalchemy.engine import make_url

    url = make_url(dbmod.resolve_url(f"postgresql+psycopg://alice:{SECRET}@db.example.org:5433/runs"))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "alice", SECRET, "db.example.org", 5433, "runs")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_as_providers_hand_them_out_name_the_installed_driver(scheme):
    assert dbmod.resolve_url(f"{scheme}://u@h/db") == "postgresql+psycopg://u@h/db"


# --------------------------------------------------------------------------- SQLite: merge, migrate, errors


def test_a_merged_run_keeps_no_password_of_its_command_line(tmp_path):
    """An export from an older speedrun carries the password in its command line: the merge drops it."""
    record = make_record(command=f"speedrun --db postgresql+psycopg://alice:{SECRET}@h/db train --lr 0.1")
    source = tmp_path / "old.db"
    add_run(Store.open(str(source)), record)
    con = sqlite3.connect(source)  # as an older speedrun stored it
    con.execute("update runs set command = ?", (record.command,))
    con.commit()
    con.close()
    exported = tmp_path / "old.json"
    exported.write_text(json.dumps({"format": "speedrun-export", "version": 1, "runs": [
        {**json.loads(invoke(source, "export").stdout)["runs"][0], "command": record.command}]}))
    assert SECRET in exported.read_text()

    target = tmp_path / "target.db"
    merged = invoke(target, "merge", str(exported))
    assert "Merged 1 run" in merged.stdout, merged.output
    outputs = [merged.output, invoke(target, "show", "1").output, invoke(target, "show", "1", "--json").output,
               invoke(target, "export").output, invoke(target, "list", "--json").output]
    for output in outputs:
        assert_clean(output, "an output")
    assert "alice:***@h/db train --lr 0.1" in json.loads(outputs[2])["command"]
    assert_clean(stored_text(f"sqlite:///{target}"), "target.db")


def test_an_old_database_is_cleaned_and_its_stamp_moved(tmp_path):
    """A database of the speedrun before: revision 0004 in `alembic_version`, a password in a command line."""
    from tests.test_migrations import _as_an_older_speedrun_left_it, build_at, insert_0001_run

    path = tmp_path / "old.db"
    build_at("0004_notebook", path)
    con = sqlite3.connect(path)
    insert_0001_run(con)
    con.execute("update runs set command = ?", (f"speedrun --db=postgresql://alice:{SECRET}@h/db train",))
    con.commit()
    con.close()
    _as_an_older_speedrun_left_it(f"sqlite:///{path}", "0004_notebook")

    result = invoke(path, "show", "15", "--json")
    assert result.exit_code == 0, result.output
    assert "Upgraded (from 0004_notebook)" in result.stderr
    assert json.loads(result.stdout)["command"] == "speedrun --db=postgresql://alice:***@h/db train"
    assert_clean(path.read_bytes().decode("latin-1"), "the file")  # the page that held it was rewritten
    tables = {row[0] for row in sqlite3.connect(path).execute("select name from sqlite_master where type='table'")}
    assert "speedrun_version" in tables and "alembic_version" not in tables


@pytest.mark.parametrize("args", [
    ("merge", f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:9/db"),
    ("merge", f"postgres://alice@127.0.0.1:9/db?password={SECRET}"),
    ("export", "-o", f"postgresql+psycopg://alice:{SECRET}@host/db"),
    ("export", "-o", f"postgresql+psycopg://alice:{SECRET}@host/db", "--force"),
])
def test_errors_never_show_a_password_typed_in_an_argument(tmp_path, args):
    assert_clean(one_error(invoke(tmp_path / "runs.db", *args)), "the error")


@pytest.mark.parametrize("db", [
    f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:9/db",
    f"postgresql://alice@127.0.0.1:9/db?password={SECRET}",
    f"postgresql+psycopg://alice:{SECRET}@no-such-host.invalid/db",
    f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:9/db?sslmode=bogus",
])
@pytest.mark.parametrize("args", [("list",), ("db", "current"), ("sync",)])
def test_errors_never_show_the_databases_password(db, args, monkeypatch):
    monkeypatch.setenv("SPEEDRUN_DB", db)
    result = CliRunner().invoke(app, list(args))
    assert_clean(one_error(result), "the error")


def test_a_spool_keyed_by_a_url_with_a_password_forgets_the_password(tmp_path):
    """S2: the spool's `server` column of an older speedrun held the query-string password."""
    url = f"postgresql+psycopg://alice@h/db?password={SECRET}"
    spool = Spool(tmp_path / "spool.db")
    spool.add(url, "uuid-1", 1, "epoch", {"epoch": 1})  # as the label used to read
    spool.close()
    assert [row.run_uuid for row in Spool(tmp_path / "spool.db").pending(dbmod.display_name(url))] == ["uuid-1"]
    assert_clean(stored_text(f"sqlite:///{tmp_path / 'spool.db'}"), "the spool")


# --------------------------------------------------------------------------- databases that are not speedrun's


def test_a_database_of_another_program_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "contacts.db"
    con = sqlite3.connect(path)
    con.execute("create table contacts (name text)")
    con.execute("insert into contacts values ('ada')")
    con.commit()
    con.close()
    before = path.read_bytes()
    for args in (("list",), ("import-md", str(ROOT / "tests" / "data" / "seed-notebook.md")), ("db", "current"),
                 ("db", "upgrade")):
        one_error(invoke(path, *args), containing="tables contacts")
    one_error(invoke(f"sqlite:///{path}", "list"), containing="another program")
    one_error(invoke(tmp_path / "runs.db", "merge", str(path)), containing="another program")
    assert path.read_bytes() == before


def test_the_spool_is_no_runs_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Spool(tmp_path / "speedrun-spool.db").add("postgresql://h/db", "u", 1, "epoch", {"epoch": 1})
    before = {row[0] for row in sqlite3.connect("speedrun-spool.db").execute("select name from sqlite_master")}
    one_error(invoke("sqlite:///speedrun-spool.db", "list"), containing="spool")
    one_error(invoke("speedrun-spool.db", "list"), containing="spool")
    one_error(invoke("runs.db", "merge", "speedrun-spool.db"), containing="spool")
    assert {row[0] for row in sqlite3.connect("speedrun-spool.db").execute("select name from sqlite_master")} == before


# --------------------------------------------------------------------------- a read-only mount


def _wal_database(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "runs.db"
    store = Store.open(str(path))
    add_run(store, make_record(title="on the drive"))
    store.close()
    con = sqlite3.connect(path)
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    con.close()
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    return path


def test_a_wal_database_on_a_read_only_mount_is_read(tmp_path):
    """C4, for real: the folder bind-mounted read-only in a mount namespace of its own (`unshare -m`)."""
    path = _wal_database(tmp_path / "drive")
    folder = path.parent
    script = (f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
              f"! touch {folder}/probe 2>/dev/null && "
              f"{sys.executable} -m speedrun --db {path} list --json && "
              f"{sys.executable} -m speedrun --db {path} show 1")
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "unshare:" in done.stderr or "mount:" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on the drive" in done.stdout and "Error" not in done.stderr


def test_a_file_that_cannot_be_written_is_opened_immutable(tmp_path, monkeypatch):
    """The choice behind the test above, where a read-only mount cannot be made (root writes anyway)."""
    path = _wal_database(tmp_path / "drive")
    monkeypatch.setattr(dbmod, "_writable", lambda _path: False)
    url = dbmod.resolve_url(str(path))
    assert "immutable=1" in url and dbmod.sqlite_file(url) == path
    result = invoke(path, "list", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["title"] == "on the drive"
    one_error(invoke(path, "note", "1", "--title", "x"), containing="readonly")
    Path(f"{path}-wal").write_bytes(b"")  # a log beside it may hold commits: never immutable then
    assert "immutable" not in dbmod.resolve_url(str(path))


# --------------------------------------------------------------------------- a real server, a real password


@pytest.fixture
def alice(pg_server):
    """A fresh database owned by `alice`, who must give her password (scram-sha-256); returns the
    URL without the password (host, port, database) to put it in as each test types it."""
    import psycopg

    admin = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'alice'").fetchone() is None:
            conn.execute(f"CREATE ROLE alice LOGIN PASSWORD '{SECRET}'")
        name = f"alice_{os.getpid()}_{time.monotonic_ns()}"
        conn.execute(f'CREATE DATABASE "{name}" OWNER alice STRATEGY FILE_COPY')
    hba = pg_server.data / "pg_hba.conf"
    rule = "host all alice 127.0.0.1/32 scram-sha-256\n"
    if rule not in hba.read_text():
        hba.write_text(rule + hba.read_text())
        pg_server._run("pg_ctl", "-D", str(pg_server.data), "reload")
    wrong = f"host=127.0.0.1 port={pg_server.port} user=alice dbname={name} password=wrong"
    for _ in range(50):  # the reload takes effect within moments: then a wrong password is refused
        try:
            psycopg.connect(wrong).close()
        except psycopg.OperationalError as exc:
            assert "password authentication failed" in str(exc)
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server does not ask alice for her password")
    yield f"127.0.0.1:{pg_server.port}/{name}"
    pg_server.drop_database(f"x/{name}")


def test_a_password_is_never_stored_or_printed_on_a_real_server(alice, tmp_path, monkeypatch, tiny_nets):
    """Issue 27's grep: train, show, export, merge and fail with a password-bearing URL (scram)."""
    from speedrun.training.data import write_synthetic_cifar10

    encoded = f"postgresql+psycopg://alice:{SECRET.replace('@', '%40')}@{alice}"
    typed = f"postgresql+psycopg://alice:{SECRET}@{alice}"  # the '@' unencoded, as users type it (S6)
    in_query = f"postgres://alice@{alice}?password={SECRET.replace('@', '%40')}"  # S2
    write_synthetic_cifar10(tmp_path / "data", n_train=32, n_test=16)
    monkeypatch.setenv("SPEEDRUN_SPOOL", str(tmp_path / "spool.db"))
    argv = ["speedrun", "--db", encoded, "train", "--model", "resnet9", "--epochs", "1", "--bs", "16", "--device", "cpu",
            "--no-amp", "--data-dir", str(tmp_path / "data"), "--title", "with a secret"]
    monkeypatch.setattr(sys, "argv", argv)  # the command line as the shell hands it over
    trained = CliRunner().invoke(app, argv[1:])
    assert trained.exit_code == 0, trained.output
    outputs = {"train": trained.output}
    recorded = json.loads(invoke(encoded, "show", "1", "--json").stdout)["command"]
    assert_clean(recorded, "the recorded command line")
    assert f"--db postgresql+psycopg://alice:***@{alice} train --model resnet9" in recorded

    laptop = tmp_path / "laptop.db"
    exported = tmp_path / "server.json"
    for db in (encoded, typed, in_query):
        for args in (("list",), ("list", "--json"), ("show", "1"), ("show", "1", "--json"), ("export",),
                     ("export", "-o", str(exported), "--force"), ("db", "current"), ("db", "upgrade"), ("sync",),
                     ("report",), ("note", "1", "--analysis", "seen")):
            result = invoke(db, *args)
            assert result.exit_code == 0, (args, result.output)
            outputs[f"{db} {args}"] = result.output
        outputs[f"merge {db}"] = invoke(laptop, "merge", db).output
    outputs["export file"] = exported.read_text()
    assert "Merged 1 run from postgresql+psycopg://alice:***@127.0.0.1" in outputs[f"merge {encoded}"]
    assert "Merged 0 runs from postgresql+psycopg://alice:***@127.0.0.1" in outputs[f"merge {typed}"]
    assert "Merged 0 runs from postgres://alice@127.0.0.1" in outputs[f"merge {in_query}"]
    assert "alice:***@" in json.loads(outputs[f"{typed} ('show', '1', '--json')"])["command"]
    outputs["merge back"] = invoke(typed, "merge", str(laptop)).output
    outputs["wrong password"] = one_error(invoke(typed.replace("pw-SECRET", "pw-SECRET-not"), "list"),
                                          containing="password authentication failed")
    outputs["no such database"] = one_error(invoke(typed + "_gone", "list"))
    outputs["export to a URL"] = one_error(invoke(typed, "export", "-o", typed))
    outputs["merge a bad URL"] = one_error(invoke(laptop, "merge", typed.replace(alice, "127.0.0.1:9/x")))
    for where, output in outputs.items():
        assert_clean(output, where)

    admin = f"postgresql+psycopg://postgres@{alice}"
    for where, stored in (("the server", stored_text(admin)), ("the laptop", stored_text(f"sqlite:///{laptop}"))):
        assert "alice:***@" in stored and "with a secret" in stored  # the grep reads the runs themselves
        assert_clean(stored, where)
    if (tmp_path / "spool.db").exists():
        assert_clean(stored_text(f"sqlite:///{tmp_path / 'spool.db'}"), "the spool")
