"""Nothing the user types can destroy the database or end in a traceback (issue 14, items 1-4 and 8-10).

Each test is one reproduction from the issue, run as the user ran it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from speedrun.domain.records import EpochRecord
from speedrun.tracking.store import Store, utcnow
from tests.helpers import add_run
from tests.test_store_cli import make_record


def one_error(result, *, containing: str = "") -> str:
    """The command failed with exactly one `Error:` line that is not a bug report, and no traceback."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "internal error" not in errors[0] and "Traceback" not in result.output
    assert containing in errors[0], errors[0]
    return errors[0]


def digest(path: Path) -> str:
    """What a database holds, independent of its file layout."""
    con = sqlite3.connect(path)
    try:
        return hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
    finally:
        con.close()


@pytest.fixture
def filled(db_path):
    store = Store.open(str(db_path))
    add_run(store, make_record(tags=["bs"]))
    add_run(store, make_record(title="second", params={"model": "resnet9", "lr": 0.02, "epochs": 3}))
    store.close()
    return db_path


# --------------------------------------------------------------------------- 1. -o never lands on a database


@pytest.mark.parametrize("command", [("report",), ("export",)])
def test_output_onto_the_open_database_is_refused(cli, filled, command):
    before = digest(filled)
    one_error(cli(*command, "-o", str(filled)), containing="database")
    one_error(cli(*command, "-o", str(filled), "--force"), containing="database")
    assert digest(filled) == before
    assert cli("list", "--json").exit_code == 0


@pytest.mark.parametrize("command", [("report",), ("export",)])
def test_output_onto_any_sqlite_file_or_existing_file(cli, filled, tmp_path, command):
    other = tmp_path / "other.db"
    Store.open(str(other)).close()
    one_error(cli(*command, "-o", str(other), "--force"), containing="SQLite")
    existing = tmp_path / "notes.md"
    existing.write_text("my own notes\n")
    one_error(cli(*command, "-o", str(existing)), containing="--force")
    assert existing.read_text() == "my own notes\n"
    assert cli(*command, "-o", str(existing), "--force").exit_code == 0
    assert existing.read_text() != "my own notes\n"
    one_error(cli(*command, "-o", str(tmp_path)), containing="directory")


def test_output_is_written_through_a_temporary_file(cli, filled, tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("old\n")

    def no_rename(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    one_error(cli("report", "-o", str(target), "--force"), containing="No space left")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []


# --------------------------------------------------------------------------- 2. merge validates everything first


def export_with(cli, tmp_path, change) -> Path:
    """An export of the filled database with one hand edit."""
    path = tmp_path / "edited.json"
    assert cli("export", "-o", str(path)).exit_code == 0
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def run0(key, value):
    def change(data):
        data["runs"][0][key] = value
    return change


@pytest.mark.parametrize(
    "change, field",
    [
        (run0("label", "[/]"), "label"),
        (lambda d: d["runs"][0]["epochs"][0].__setitem__("epoch", "x"), "epochs[0].epoch"),
        (run0("status", "pwned"), "status"),
        (run0("env", "x"), "env"),
        (run0("params", [1, 2]), "params"),
        (run0("number", 1e30), "number"),
        (run0("number", 10**40), "number"),
        (run0("extra", {"a": json.loads("[" * 40 + "]" * 40)}), "extra.a"),
        (run0("created_at", "yesterday"), "created_at"),
        (run0("tags", ["ok", ""]), "tags[1]"),
        (run0("final_val_acc", 250.0), "final_val_acc"),
        (run0("surprise", 1), "surprise"),
        (lambda d: d["runs"][0]["epochs"].append(dict(d["runs"][0]["epochs"][0])), "epoch 1 appears twice"),
    ],
)
def test_merge_refuses_a_bad_value_naming_run_and_field(cli, filled, tmp_path, change, field):
    edited = export_with(cli, tmp_path, change)
    target = tmp_path / "target.db"
    Store.open(str(target)).close()
    before = digest(target)
    error = one_error(cli("merge", str(edited), db=target), containing=field)
    assert "run " in error and "edited.json" in error
    assert digest(target) == before  # nothing written


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"format": "speedrun-export", "version": 99, "runs": []}', "newer"),
        ('{"format": "speedrun-export", "version": 1, "runs": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested"),
        ('{"format": "speedrun-export", "version": 1, "runs": [{"number": ' + "9" * 5000 + "}]}", "export"),
        ('{"format": "speedrun-export", "version": 1, "runs": {"a": 1}}', "list"),
        ('{"format": "speedrun-export", "version": 1, "runs": [7]}', "run #1"),
    ],
)
def test_merge_refuses_malformed_exports(cli, tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    one_error(cli("merge", str(path)), containing=reason)


def test_merge_refuses_a_damaged_value_in_another_database(cli, filled, tmp_path):
    con = sqlite3.connect(filled)
    con.execute("update runs set status = 'pwned' where id = 2")
    con.commit()
    con.close()
    target = tmp_path / "target.db"
    one_error(cli("merge", str(filled), db=target), containing="run 2")
    assert not target.exists() or Store.open(str(target)).count_runs() == 0


def test_merge_of_a_newer_database_names_the_users_file(cli, filled, tmp_path):
    con = sqlite3.connect(filled)
    con.execute("update speedrun_version set version_num = '9999_future'")
    con.commit()
    con.close()
    error = one_error(cli("merge", str(filled), db=tmp_path / "t.db"), containing=str(filled))
    assert "/tmp" not in error.replace(str(filled), "") and "other.db" not in error


@pytest.mark.parametrize(
    "damage, field",
    [
        ("update runs set extra = '{bad' where id = 1", "extra"),
        ("update runs set created_at = 'garbage' where id = 1", "created_at"),
        ("update runs set final_val_acc = 'x' where id = 1", "final_val_acc"),
        ("update epoch_metrics set epoch = 'x' where run_id = 1 and epoch = 2", "epochs"),
        ("update epoch_metrics set val_acc = 'high' where run_id = 1 and epoch = 2", "epoch 2: val_acc"),
        ("update params set value = '[oops' where run_id = 1 and name = 'lr'", "params.lr"),
        ("update runs set title = cast(x'41ff42' as text) where id = 1", "title"),
        ("update environments set gpu_count = 'many' where id = 1", "environment.gpu_count"),
    ],
)
def test_reads_survive_a_damaged_stored_value(cli, filled, damage, field):
    con = sqlite3.connect(filled)
    con.execute("update runs set environment_id = null where id = 2")  # so that damage stays in run 1
    con.execute(damage)
    con.commit()
    con.close()
    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert "damaged" not in rows[2] and rows[2]["title"] == "second"  # the rest list normally
    assert cli("list").exit_code == 0
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert any(field in name for name in shown["damaged"]), shown["damaged"]
    assert "Damaged:" in cli("show", "1").stdout
    assert cli("show", "2").exit_code == 0
    assert cli("report").exit_code == 0
    compared = cli("compare", "1", "2")
    if compared.exit_code:  # e.g. "no final accuracy values for Run 1": a clear word, not a crash
        one_error(compared, containing="Run 1")


# --------------------------------------------------------------------------- 3, 4. died, decided one way


def live_run(db_path, *, pid: int, beat_age: timedelta, forget_start: bool = False) -> int:
    """A `running` run whose process is now `pid`, with its last heartbeat `beat_age` ago."""
    store = Store.open(str(db_path))
    run_id = store.begin_run(make_record(source="train", status="running", epochs=[], pid=os.getpid()))
    for epoch in (1, 2):
        store.add_epoch(run_id, EpochRecord(epoch=epoch, val_acc=50.0 + epoch, elapsed_s=10.0 * epoch))
    store.close()
    con = sqlite3.connect(db_path)
    beat = (utcnow() - beat_age).isoformat(sep=" ")
    con.execute("update runs set pid = ?, heartbeat_at = ? where id = ?", (pid, beat, run_id))
    if forget_start:  # recorded by a speedrun that did not know process start times
        con.execute("update runs set process_start = null where id = ?", (run_id,))
    con.commit()
    con.close()
    return run_id


@pytest.mark.parametrize("forget_start", [False, True])
def test_a_reused_pid_is_not_mistaken_for_the_run(cli, db_path, forget_start):
    run_id = live_run(db_path, pid=1, beat_age=timedelta(days=3), forget_start=forget_start)
    assert json.loads(cli("show", str(run_id), "--json").stdout)["status"] == "died"


def test_our_own_live_process_is_running_whatever_its_heartbeat_age(cli, db_path):
    run_id = live_run(db_path, pid=os.getpid(), beat_age=timedelta(days=3))
    assert json.loads(cli("show", str(run_id), "--json").stdout)["status"] == "running"


def test_died_is_the_same_in_every_command_and_nothing_is_written(cli, db_path, tmp_path):
    run_id = live_run(db_path, pid=1, beat_age=timedelta(days=3))
    other = Store.open(str(db_path))
    add_run(other, make_record())
    other.close()
    before = digest(db_path)
    assert json.loads(cli("list", "--json").stdout)[0]["status"] == "died"
    assert [r["id"] for r in json.loads(cli("list", "--json", "--status", "died").stdout)] == [run_id]
    assert json.loads(cli("list", "--json", "--status", "running").stdout) == []
    exported = json.loads(cli("export").stdout)["runs"]
    assert exported[0]["status"] == "died"
    report = cli("report", "--runs", str(run_id)).stdout
    assert "died" in report
    from speedrun.analysis.compare import load_sides
    from speedrun.analysis.groups import resolve

    store = Store.open(str(db_path))
    assert load_sides(store, [str(run_id), "2"])[0].runs[0].status == "died"  # compare
    assert resolve(store, [str(run_id)])[0].runs[0].status == "died"  # stats
    assert cli("stats", str(run_id)).exit_code == 0
    assert digest(db_path) == before


def test_rm_of_a_live_run_refuses_without_force(cli, db_path):
    run_id = live_run(db_path, pid=os.getpid(), beat_age=timedelta(seconds=1))
    one_error(cli("rm", str(run_id), "--yes"), containing="still training")
    assert cli("show", str(run_id)).exit_code == 0
    assert cli("rm", str(run_id), "--yes", "--force").exit_code == 0
    one_error(cli("show", str(run_id)), containing="no run")


def read_only(path: Path) -> str:
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def test_read_only_database_with_a_dead_running_run_reads(cli, db_path):
    run_id = live_run(db_path, pid=1, beat_age=timedelta(days=3))
    before = digest(db_path)
    listed = cli("list", "--json", db=read_only(db_path))
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["status"] == "died"
    assert cli("show", str(run_id), db=read_only(db_path)).exit_code == 0
    assert digest(db_path) == before


def test_read_only_database_at_schema_0001_reads_through_a_memory_upgrade(cli, tmp_path):
    from tests.test_migrations import build_at, insert_0001_run

    path = tmp_path / "old.db"
    build_at("0001", path)
    con = sqlite3.connect(path)
    insert_0001_run(con)
    con.close()
    before = path.read_bytes()
    listed = cli("list", "--json", db=read_only(path))
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.stdout)] == [15]
    assert "read-only" in listed.stderr and "unchanged" in listed.stderr
    shown = json.loads(cli("show", "15", "--json", db=read_only(path)).stdout)
    assert shown["target_time_s"] == 85.0  # 0002's move of the target, applied in memory
    one_error(cli("note", "15", "--title", "x", db=read_only(path)), containing="read-only")
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- 8. one Error: line, never a traceback


@pytest.mark.parametrize(
    "args",
    [
        ("--db", "sqlite+pysqlite://:::", "list"),
        ("show", "99999999999999999999999"),
        ("show", "²"),
        ("report", "--runs", "99999999999999999999"),
        ("compare", "1", "2", "--plot", "x.txt"),
    ],
)
def test_former_tracebacks_are_one_error_line(cli, filled, tmp_path, monkeypatch, args):
    from typer.testing import CliRunner

    from speedrun.cli import app

    monkeypatch.chdir(tmp_path)
    argv = list(args) if args[0] == "--db" else ["--db", str(filled), *args]
    result = CliRunner().invoke(app, argv)
    if args[0] == "report":  # no such run: an empty notebook, or one clear error
        assert result.exit_code in (0, 1) and "internal error" not in result.output
        return
    one_error(result)


def test_invalid_utf8_in_the_stored_schema_revision_is_one_error(cli, filled):
    con = sqlite3.connect(filled)
    con.execute("update speedrun_version set version_num = cast(x'30ff' as text)")
    con.commit()
    con.close()
    one_error(cli("list"), containing="schema")


# --------------------------------------------------------------------------- 9. no leaks


def test_passwords_never_appear_in_messages(cli):
    for url in ("postgresql+psycopg://speedrun:s3cret-pw@127.0.0.1:1/nowhere", "mysql://me:s3cret-pw@:::/x"):
        result = cli("list", db=url)
        assert result.exit_code == 1
        assert "s3cret-pw" not in result.output and "Traceback" not in result.output


def test_control_characters_reach_the_terminal_escaped_and_the_database_intact(cli, filled, tmp_path):
    hostile = "pwned \x1b[2J\x1b]0;title\x07 [bold]x[/bold] [/]"
    assert cli("note", "1", "--title", hostile, "--analysis", hostile).exit_code == 0
    assert cli("tag", "1", "t\x1b[31m").exit_code == 1  # tags may not hold control characters
    for args in (("show", "1"), ("list",), ("compare", "1", "2")):
        out = cli(*args).stdout
        assert "\x1b" not in out and "\x07" not in out, args
    assert "\\x1b[2J" in cli("show", "1").stdout
    assert json.loads(cli("show", "1", "--json").stdout)["title"] == hostile
    assert json.loads(cli("export").stdout)["runs"][0]["analysis"] == hostile
    con = sqlite3.connect(filled)
    assert con.execute("select title from runs where id = 1").fetchone()[0] == hostile


# --------------------------------------------------------------------------- 10. small things


def test_empty_db_option_is_an_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from speedrun.cli import app

    monkeypatch.chdir(tmp_path)
    one_error(CliRunner().invoke(app, ["--db", "", "list"]), containing="--db")
    assert not (tmp_path / "runs.db").exists()


def test_a_failed_import_creates_no_database(cli, db_path, tmp_path):
    missing = tmp_path / "nothing-here.txt"
    one_error(cli("import-log", str(missing)))
    assert not db_path.exists()


def test_list_with_a_filter_that_matches_nothing_says_so(cli, filled):
    assert cli("list", "--status", "died").stdout.strip() == "No runs match."


@pytest.mark.parametrize(
    "args", [("tag", "1", ""), ("tag", "1", "  "), ("group", "", "1"), ("note", "1", "--title", " ")]
)
def test_empty_tags_group_names_and_titles_are_refused(cli, filled, args):
    before = digest(filled)
    one_error(cli(*args), containing="empty")
    assert digest(filled) == before


def test_compare_plot_into_a_folder_or_a_database_is_refused(cli, filled, tmp_path):
    folder = tmp_path / "plots"
    folder.mkdir()
    one_error(cli("compare", "1", "2", "--plot", str(folder)))  # not a .png: read as a run, which it is not
    assert not (tmp_path / "plots.png").exists()
    png_folder = tmp_path / "curves.png"
    png_folder.mkdir()
    one_error(cli("compare", "1", "2", str(png_folder), "--plot"), containing="directory")
    database = tmp_path / "sneaky.png"
    Store.open(str(database)).close()
    one_error(cli("compare", "1", "2", str(database), "--plot"), containing="SQLite")
    written = tmp_path / "ok.png"
    assert cli("compare", "1", "2", str(written), "--plot").exit_code == 0 and written.stat().st_size > 0
