"""The database and the commands that list, show and edit runs (issue: package and database)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from speedrun.tracking import db as dbmod
from speedrun.errors import DatabaseError, DuplicateImport, RunNotFound
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store
from tests.helpers import add_run


def make_record(**overrides) -> RunRecord:
    epochs = [
        EpochRecord(epoch=1, train_loss=1.5, val_acc=55.0, duration_s=40.0, elapsed_s=40.0),
        EpochRecord(epoch=2, train_loss=1.0, val_acc=70.5, duration_s=42.0, elapsed_s=82.0),
        EpochRecord(epoch=3, train_loss=0.8, val_acc=68.25, duration_s=41.0, elapsed_s=123.0),
    ]
    fields = dict(
        source="log",
        title="Batch 64 (T4)",
        params={"model": "resnet18", "lr": 0.04, "batch_size": 64, "epochs": 3, "cosine": True},
        hardware="Google Colab, T4 GPU",
        env={"device_type": "cuda"},
        epochs=epochs,
        param_count=11_173_962,
    )
    fields.update(overrides)
    return RunRecord(**fields)


# --------------------------------------------------------------------------- schema


@pytest.mark.sqlite_only
def test_new_file_is_created_through_alembic_at_head(db_path):
    store = Store.open(str(db_path))
    assert store.current_revision() == dbmod.head_revision()
    tables = {r[0] for r in sqlite3.connect(db_path).execute("select name from sqlite_master where type='table'")}
    assert {"runs", "params", "epoch_metrics", "environments", "tags", "speedrun_version"} <= tables


@pytest.mark.sqlite_only
def test_empty_existing_file_is_upgraded_with_a_notice(db_path, cli):
    db_path.touch()
    result = cli("list")
    assert result.exit_code == 0
    assert "schema revision" in result.stderr
    assert Store.open(str(db_path)).current_revision() == dbmod.head_revision()
    # A second open says nothing.
    assert "schema revision" not in cli("list").stderr


@pytest.mark.sqlite_only
def test_sqlite_settings_allow_concurrent_writers(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


@pytest.mark.sqlite_only
def test_database_from_a_newer_speedrun_is_refused(db_path, cli):
    Store.open(str(db_path)).close()
    con = sqlite3.connect(db_path)
    con.execute("update speedrun_version set version_num = '9999_future'")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match="newer than this speedrun"):
        Store.open(str(db_path))
    result = cli("list")
    assert result.exit_code == 1
    assert "newer than this speedrun" in result.stderr
    assert "Traceback" not in result.output


def test_db_current_and_upgrade_commands(cli):
    result = cli("db", "current")
    assert result.exit_code == 0 and "(none)" in result.stdout  # not created by looking
    assert "upgraded to " + dbmod.head_revision() in cli("db", "upgrade").stdout
    assert "already at" in cli("db", "upgrade").stdout
    assert "up to date" in cli("db", "current").stdout


# --------------------------------------------------------------------------- database location


def test_db_option_wins_over_env_which_wins_over_default(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from speedrun.cli import app

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    env_db, opt_db = tmp_path / "env.db", tmp_path / "opt.db"
    monkeypatch.setenv("SPEEDRUN_DB", str(env_db))
    runner.invoke(app, ["--db", str(opt_db), "list"])
    assert opt_db.exists() and not env_db.exists()
    runner.invoke(app, ["list"])
    assert env_db.exists()
    monkeypatch.delenv("SPEEDRUN_DB")
    runner.invoke(app, ["list"])
    assert (tmp_path / "runs.db").exists()


def test_sqlalchemy_url_is_accepted(tmp_path, cli):
    url = f"sqlite:///{tmp_path / 'url.db'}"
    assert cli("list", "--json", db=url).exit_code == 0
    assert (tmp_path / "url.db").exists()


@pytest.mark.parametrize(
    "db, message",
    [("/no/such/dir/runs.db", "does not exist"), ("nosuchdialect://x", "cannot use database")],
)
def test_bad_database_location_is_one_clear_error(cli, db, message):
    result = cli("list", db=db)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_database_file_is_a_clear_error(tmp_path, cli):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    result = cli("list", db=garbage)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:")


# --------------------------------------------------------------------------- store


def test_summary_is_derived_from_epochs(store):
    run = store.get_run(add_run(store, make_record()))
    assert (run.final_val_acc, run.peak_val_acc, run.peak_epoch) == (68.25, 70.5, 2)
    assert run.train_time_s == 123.0
    assert run.mean_epoch_s == pytest.approx(41.0)
    assert run.epochs_completed == 3 and run.epochs_planned == 3


def test_identical_environments_are_stored_once(store):
    add_run(store, make_record())
    add_run(store, make_record(title="again"))
    add_run(store, make_record(hardware="laptop CPU", env={"device_type": "cpu"}))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from environments").scalar() == 2
    classes = [r.environment.hardware_class for r in store.list_runs()]
    assert classes == ["T4", "T4", "CPU"]


def test_whole_floats_stay_floats(store):
    # SQLite's NUMERIC affinity would hand 0.0 and 1.0 back as integers.
    run = store.get_run(add_run(store, make_record(params={"weight_decay": 0.0, "lr": 1.0, "epochs": 10})))
    assert [(k, type(v)) for k, v in run.param_dict.items()] == [("weight_decay", float), ("lr", float), ("epochs", int)]


def test_params_keep_their_types(store):
    run = store.get_run(add_run(store, make_record(params={"lr": 0.04, "batch_size": 64, "cosine": True, "optimizer": "sgd"})))
    assert run.param_dict == {"lr": 0.04, "batch_size": 64, "cosine": True, "optimizer": "sgd"}
    assert {p.name: p.type for p in run.params} == {"lr": "float", "batch_size": "int", "cosine": "bool", "optimizer": "str"}


def test_notebook_run_numbers_are_kept_and_clashes_relabelled(store):
    first = add_run(store, make_record(number=15))
    assert first == 15
    record = make_record(number=15, title="same number again")
    (stored,) = store.add_runs([record])
    assert stored.number != 15 and stored.renumbered and (stored.requested, stored.label) == (15, "15")
    assert store.get_run(stored.number).label == "15"
    # The store says what it decided; the record it was handed is left as it was.
    assert (record.label, record.warnings) == (None, [])
    assert add_run(store, make_record()) > 15  # numbering continues after the largest


def test_sub_run_label_resolves(store):
    run_id = add_run(store, make_record(number=7, label="7a"))
    assert store.get_run("7a").id == run_id
    with pytest.raises(RunNotFound):
        store.get_run("7b")


def test_duplicate_content_is_refused_unless_forced(store):
    add_run(store, make_record(content_hash="abc", source_file="colab.txt"))
    with pytest.raises(DuplicateImport, match="run 1 from colab.txt"):
        store.add_runs([make_record(content_hash="abc")])
    assert store.count_runs() == 1
    store.add_runs([make_record(content_hash="abc")], force=True)
    assert store.count_runs() == 2


def test_add_runs_is_all_or_nothing(store):
    good = make_record()
    bad = make_record(status="x" * 10_000)  # too long? SQLite accepts; use a broken epoch instead
    bad.epochs = [EpochRecord(epoch=1, val_acc=1.0), EpochRecord(epoch=1, val_acc=2.0)]  # violates unique(run, epoch)
    with pytest.raises(DatabaseError):
        store.add_runs([good, bad])
    assert store.count_runs() == 0


def test_live_run_lifecycle(store):
    run_id = store.begin_run(make_record(source="train", status="running", epochs=[], pid=None))
    store.add_epoch(run_id, EpochRecord(epoch=1, val_acc=50.0, elapsed_s=10.0, duration_s=10.0))
    assert store.get_run(run_id).final_val_acc == 50.0
    store.add_epoch(run_id, EpochRecord(epoch=2, val_acc=60.0, elapsed_s=20.0, duration_s=10.0))
    store.finish_run(run_id, "completed", train_time_s=20.5, extra={"eval_time_s": 3.0})
    run = store.get_run(run_id)
    assert run.status == "completed" and run.train_time_s == 20.5 and run.extra["eval_time_s"] == 3.0
    assert run.finished_at is not None


def test_final_accuracy_measured_after_training_wins_and_survives_a_merge(store, tmp_path):
    run_id = store.begin_run(make_record(source="train", status="running", epochs=[]))
    store.add_epoch(run_id, EpochRecord(epoch=1, val_acc=92.0, elapsed_s=10.0))
    store.add_epoch(run_id, EpochRecord(epoch=2, val_acc=93.28, elapsed_s=20.0))
    store.finish_run(run_id, "completed", final_val_acc=94.10, final_from="tta")
    run = store.get_run(run_id)
    assert [e.val_acc for e in run.epochs] == [92.0, 93.28]  # as measured (and printed) during training
    assert (run.final_val_acc, run.peak_val_acc, run.peak_epoch) == (94.10, 94.10, 2)
    assert run.extra["final_val_acc_from"] == "tta"

    from speedrun.tracking.exchange import Loaded, export_runs, merge_records, record_from_json

    other = Store.open(str(tmp_path / "other.db"))
    merge_records(other, Loaded([record_from_json(r) for r in export_runs(store)["runs"]], []))
    assert other.get_run(run_id).final_val_acc == 94.10


def test_running_run_of_a_dead_process_is_reported_died(store):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = store.begin_run(make_record(source="train", status="running", epochs=[], pid=proc.pid))
    alive_id = store.begin_run(make_record(source="train", status="running", epochs=[], pid=__import__("os").getpid()))
    assert store.get_run(run_id).status == "died"
    assert store.get_run(alive_id).status == "running"
    assert [r.id for r in store.list_runs(status="died")] == [run_id]
    with store.engine.connect() as conn:  # decided when reading; nothing was written
        assert conn.exec_driver_sql("select count(*) from runs where status = 'running'").scalar() == 2


# --------------------------------------------------------------------------- CLI


def seed(cli_db):
    store = Store.open(str(cli_db))
    ids = [
        add_run(store, make_record(tags=["bs"])),
        add_run(store,
            make_record(
                title="CPU baseline",
                hardware="AMD Ryzen 7 5700U (CPU)",
                env={"device_type": "cpu"},
                params={"model": "resnet9", "lr": 0.02, "batch_size": 128, "epochs": 3},
                hypothesis="CPU is *slow*",
            )
        ),
        add_run(store, make_record(number=7, label="7a", status="incomplete", epochs=[])),
    ]
    store.close()
    return ids


def test_list_json_contract(cli, db_path):
    seed(db_path)
    result = cli("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # newest last
    first = rows[0]
    for key, kind in {
        "id": int, "label": str, "title": str, "status": str, "source": str, "model": str, "hardware": str,
        "created_at": str, "epochs": int, "epochs_completed": int, "final_val_acc": float,
        "peak_val_acc": float, "peak_epoch": int, "train_time_s": float, "params": dict,
    }.items():
        assert isinstance(first[key], kind), key
    assert first["label"] == str(first["id"])
    assert first["params"] == {"model": "resnet18", "lr": 0.04, "batch_size": 64, "epochs": 3, "cosine": True}
    assert first["final_val_acc"] == 68.25  # percent, not a fraction
    assert rows[2]["label"] == "7a"


def test_list_filters_and_sort(cli, db_path):
    seed(db_path)

    def ids(*args):
        return [r["id"] for r in json.loads(cli("list", "--json", *args).stdout)]

    assert ids("--model", "resnet9") == [2]
    assert ids("--hardware", "t4") == [1, 3]
    assert ids("--hardware", "ryzen") == [2]
    assert ids("--tag", "bs") == [1]
    assert ids("--status", "incomplete") == [3]
    assert ids("--limit", "2") == [2, 3]
    assert ids("--since", "2000-01-01") == [1, 2, 3]
    assert ids("--since", "2999-01-01") == []
    assert ids("--sort", "final", "--desc")[:2] == [1, 2]
    # Fixed choices are checked by Typer as usage errors (exit 2), naming the allowed values.
    for option in ("--sort", "--status"):
        bad = cli("list", option, "nonsense")
        assert bad.exit_code == 2 and "nonsense" in bad.output
    assert cli("list", "--since", "yesterday").exit_code == 1


def test_list_table_shows_runs(cli, db_path):
    seed(db_path)
    out = cli("list").stdout
    assert "7a" in out and "resnet9" in out and "68.25%" in out and "T4" in out


def test_show_json_contract(cli, db_path):
    seed(db_path)
    data = json.loads(cli("show", "2", "--json").stdout)
    assert data["hypothesis"] == "CPU is *slow*"
    assert data["env"]["device_type"] == "cpu" and data["env"]["hardware"] == "AMD Ryzen 7 5700U (CPU)"
    assert data["tags"] == []
    assert [e["epoch"] for e in data["epoch_metrics"]] == [1, 2, 3]
    assert set(data["epoch_metrics"][0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "duration_s", "elapsed_s", "lr"}
    assert data["epoch_metrics"][0]["train_acc"] is None
    assert json.loads(cli("show", "7a", "--json").stdout)["status"] == "incomplete"


def test_show_table(cli, db_path):
    seed(db_path)
    out = cli("show", "1").stdout
    assert "Batch 64 (T4)" in out and "70.50" in out and "resnet18" in out


def test_note_tag_rm(cli, db_path):
    seed(db_path)
    assert cli("note", "1", "--hypothesis", "Smaller batches help", "--analysis", "It did **not**.").exit_code == 0
    assert cli("tag", "1", "t4", "bs").exit_code == 0
    data = json.loads(cli("show", "1", "--json").stdout)
    assert data["hypothesis"] == "Smaller batches help" and data["analysis"] == "It did **not**."
    assert data["tags"] == ["bs", "t4"]
    assert cli("tag", "1", "--remove", "bs").exit_code == 0
    assert json.loads(cli("show", "1", "--json").stdout)["tags"] == ["t4"]
    assert cli("note", "1").exit_code == 2  # nothing to change: a usage error
    result = cli("rm", "1", input="n\n")
    assert result.exit_code == 1 and cli("show", "1").exit_code == 0
    assert cli("rm", "1", input="y\n").exit_code == 0
    assert cli("rm", "2", "--yes").exit_code == 0
    assert [r["id"] for r in json.loads(cli("list", "--json").stdout)] == [3]


@pytest.mark.parametrize("args", [("show", "99"), ("note", "99", "--title", "x"), ("tag", "99", "a"), ("rm", "99", "--yes")])
def test_unknown_run_is_one_clear_error(cli, db_path, args):
    seed(db_path)
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: no run '99' in {db_path}"


def test_every_command_has_help(cli):
    from speedrun.cli import app
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert command.help or command.short_help, name
