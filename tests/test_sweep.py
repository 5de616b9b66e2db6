"""`speedrun sweep`: trials as recorded runs in one group, resume after Ctrl-C, pruning, several workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speedrun.errors import SpeedrunError
from speedrun.sweep.space import parse_space
from tests.conftest import ROOT

# One epoch of resnet9 on 64 synthetic images, the net a thousand-parameter stand-in (tests/tinynets.py):
# what a sweep records and decides does not depend on what its trials learn.
TINY = ("--model", "resnet9", "--epochs", "1", "--bs", "32", "--device", "cpu", "--amp", "off")
pytestmark = pytest.mark.usefixtures("tiny_nets")


@pytest.fixture
def data(tmp_path):
    from speedrun.training.data import write_synthetic_cifar10

    write_synthetic_cifar10(tmp_path / "data", n_train=64, n_test=32)
    return str(tmp_path / "data")


def runs_of(cli) -> list[dict]:
    return json.loads(cli("list", "--json").output)


# --- the search space, as typed --------------------------------------------------------------------------

def test_lists_ranges_switches_and_alternatives():
    space = parse_space({"lr": "0.02,0.04", "batch_size": "64", "weight_decay": "1e-5:1e-3:log",
                         "cosine": "on,off", "augment": "crop,flip|crop,flip,jitter", "warmup": "0:2"})
    assert space.fixed == {"batch_size": 64}
    dims = {d.name: d for d in space.dimensions}
    assert dims["lr"].choices == (0.02, 0.04)
    assert (dims["weight_decay"].low, dims["weight_decay"].high, dims["weight_decay"].log) == (1e-5, 1e-3, True)
    assert dims["warmup"].integer and not dims["warmup"].log
    assert dims["cosine"].choices == (True, False)
    assert dims["augment"].choices == ("crop,flip", "crop,flip,jitter")
    assert not space.is_grid


def test_a_grid_is_every_combination_first_option_slowest():
    space = parse_space({"lr": "0.02,0.04", "batch_size": "32,64,128"})
    assert space.grid() == [{"lr": lr, "batch_size": bs} for lr in (0.02, 0.04) for bs in (32, 64, 128)]


@pytest.mark.parametrize("options, message", [
    ({"lr": "0.02,0.02"}, "distinct"),
    ({"lr": "0.1:0.01"}, "low end must be below"),
    ({"lr": "0:0.1:log"}, "log-scale range must be positive"),
    ({"lr": "fast"}, "is not a number"),
    ({"batch_size": "32.5,64"}, "whole numbers"),
    ({"cosine": "maybe"}, "on, off"),
    ({"augment": "crop|wobble"}, "unknown augmentation"),
    ({"lr": "0.04"}, "nothing to sweep"),
    ({"lr": "0.01:0.1:cubic"}, "LOW:HIGH"),
])
def test_bad_search_options_are_refused_by_name(options, message):
    with pytest.raises(SpeedrunError, match=message):
        parse_space(options)


def test_a_grid_refuses_ranges(cli):
    result = cli("sweep", "--lr", "0.01:0.1", "--sampler", "grid", "--epochs", "1")
    assert result.exit_code == 1 and "a grid needs lists" in result.output


# --- sweeps through the CLI -------------------------------------------------------------------------------

def test_a_grid_sweep_records_every_trial_as_a_run_in_one_group(cli, data, tmp_path):
    result = cli("sweep", "--name", "lr-grid", "--lr", "0.02,0.04,0.08", *TINY, "--data-dir", data, "--no-prune")
    assert result.exit_code == 0, result.output
    runs = runs_of(cli)
    assert len(runs) == 3 and {r["group"] for r in runs} == {"lr-grid"}
    assert sorted(r["params"]["lr"] for r in runs) == [0.02, 0.04, 0.08]
    assert {r["params"]["seed"] for r in runs} == {0}  # every trial the same seed: differences are the setting's
    shown = json.loads(cli("sweep", "show", "lr-grid", "--json").output)
    assert [t["state"] for t in shown["trials"]] == ["complete"] * 3
    values = [t["value"] for t in shown["trials"]]
    assert values == sorted(values, reverse=True)  # best first
    assert shown["best"]["trial"] == shown["trials"][0]["trial"]
    assert shown["verdict"]["metric"] == "final_accuracy" and "picked from 3 trials" in shown["verdict"]["caveat"]
    assert set(shown["searched"]) == {"lr"}
    listed = json.loads(cli("sweep", "list", "--json").output)
    assert [(s["name"], s["complete"], s["planned"]) for s in listed] == [("lr-grid", 3, 3)]
    text = cli("sweep", "show", "lr-grid", "--plots", str(tmp_path / "plots")).output
    assert "Best: lr=" in text and "Against the runner-up:" in text
    assert "Importance: not shown: lr is the only option searched." in text
    assert (tmp_path / "plots" / "sweep-lr-grid-lr.png").stat().st_size > 1000


def test_repeats_give_a_tested_verdict(cli, data):
    result = cli("sweep", "--name", "rep", "--lr", "0.02,0.08", "--repeat", "2", *TINY, "--data-dir", data,
                 "--no-prune", "--seed", "5")
    assert result.exit_code == 0, result.output
    runs = runs_of(cli)
    assert len(runs) == 4 and sorted(r["params"]["seed"] for r in runs) == [5, 5, 6, 6]
    shown = json.loads(cli("sweep", "show", "rep", "--json").output)
    assert all(len(t["runs"]) == 2 for t in shown["trials"])
    verdict = shown["verdict"]
    assert verdict["n_a"] == verdict["n_b"] == 2
    assert verdict["kind"] in ("significant", "inconclusive", "noise") and verdict["p_value"] is not None  # Welch's test ran


def test_the_objective_is_named_as_the_metric_names_itself(cli, data):
    # `sweep show` capitalised the metric's name with str.capitalize, which lowers the rest:
    # "Share of peak (mfu)" under a column the report headed "Share of peak (MFU)".
    result = cli("sweep", "--name", "eff", "--lr", "0.02,0.04", "--objective", "mfu", *TINY, "--data-dir", data,
                 "--no-prune")
    assert result.exit_code == 0, result.output
    assert "Share of peak (MFU)" in cli("sweep", "show", "eff").output
    assert "| Trial | lr | Share of peak (MFU) | Runs |" in cli("report").output


def test_a_tpe_sweep_runs_the_trials_asked_for(cli, data):
    result = cli("sweep", "--name", "tpe", "--lr", "0.01:0.1:log", "--trials", "3", *TINY, "--data-dir", data,
                 "--no-prune")
    assert result.exit_code == 0, result.output
    runs = runs_of(cli)
    assert len(runs) == 3 and {r["group"] for r in runs} == {"tpe"}
    assert all(0.01 <= r["params"]["lr"] <= 0.1 for r in runs)
    # The same command again is a worker of the finished sweep: nothing more to do.
    again = cli("sweep", "--name", "tpe", "--lr", "0.01:0.1:log", "--trials", "3", *TINY, "--data-dir", data,
                "--no-prune")
    assert again.exit_code == 0 and len(runs_of(cli)) == 3


def test_a_different_search_under_a_taken_name_is_refused(cli, data):
    assert cli("sweep", "--name", "s", "--lr", "0.02,0.04", *TINY, "--data-dir", data).exit_code == 0
    result = cli("sweep", "--name", "s", "--lr", "0.02,0.08", *TINY, "--data-dir", data)
    assert result.exit_code == 1 and "already exists with a different space" in result.output


def test_ctrl_c_keeps_finished_trials_and_resume_runs_only_the_missing(cli, data, ctrl_c_in_second_evaluation):
    result = cli("sweep", "--name", "cc", "--lr", "0.02,0.04,0.08", *TINY, "--data-dir", data, "--no-prune")
    assert result.exit_code == 130
    assert "speedrun sweep --resume cc" in result.output
    runs = runs_of(cli)
    assert [r["status"] for r in runs] == ["completed", "interrupted"]
    # The trial ended as its run did: interrupted, not failed (issue 27).
    [listed] = json.loads(cli("sweep", "list", "--json").output)
    assert (listed["interrupted"], listed["failed"]) == (1, 0)
    ctrl_c_in_second_evaluation()  # the key released

    resumed = cli("sweep", "--resume", "cc", "--data-dir", data, "--device", "cpu")
    assert resumed.exit_code == 0, resumed.output
    assert "1 given back to the queue" in resumed.output
    # The retry is numbered as a retry of trial 1, not as a fourth trial of three planned (issue 27).
    assert "Trial 1, retry 1 of sweep cc (3 planned): lr=0.04" in resumed.output
    assert "Trial 3" not in resumed.output
    runs = runs_of(cli)
    assert len(runs) == 4  # the interrupted trial again, and the one never started; the first not twice
    done = [r for r in runs if r["status"] == "completed"]
    assert sorted(r["params"]["lr"] for r in done) == [0.02, 0.04, 0.08]
    assert any(r["title"] == "cc trial 1, retry 1: lr=0.04" for r in done)
    shown = json.loads(cli("sweep", "show", "cc", "--json").output)
    assert shown["counts"]["complete"] == 3 and shown["counts"]["interrupted"] == 1 and shown["counts"]["fail"] == 0
    assert sorted(t["label"] for t in shown["trials"]) == ["0", "1", "1, retry 1", "2"]
    assert {t["label"]: t["result"] for t in shown["trials"]}["1"] == "interrupted"


def test_hopeless_trials_are_pruned_and_recorded_as_pruned(cli, data, monkeypatch):
    import optuna

    from speedrun.sweep import runner

    # A pruner that stops every trial after its first reported epoch: the mechanism, made certain.
    monkeypatch.setattr(runner, "make_pruner", lambda spec: optuna.pruners.ThresholdPruner(lower=101.0))
    result = cli("sweep", "--name", "pr", "--lr", "0.02,0.04", "--model", "resnet9", "--epochs", "2", "--bs", "32",
                 "--device", "cpu", "--amp", "off", "--data-dir", data)
    assert result.exit_code == 0, result.output
    runs = runs_of(cli)
    assert [r["status"] for r in runs] == ["pruned", "pruned"]
    assert [r["epochs_completed"] for r in runs] == [1, 1]
    shown = json.loads(cli("sweep", "show", "pr", "--json").output)
    assert [t["result"] for t in shown["trials"]] == ["pruned after epoch 1"] * 2
    assert shown["best"] is None
    detail = json.loads(cli("show", str(runs[0]["id"]), "--json").output)
    assert "pruned after epoch 1" in detail["error"]


def test_show_of_an_unknown_sweep_names_the_known_ones(cli, data):
    assert cli("sweep", "--name", "known", "--lr", "0.02,0.04", *TINY, "--data-dir", data).exit_code == 0
    result = cli("sweep", "show", "nope")
    assert result.exit_code == 1 and "no sweep named 'nope'" in result.output and "known" in result.output


# --- several workers --------------------------------------------------------------------------------------

def test_three_workers_split_a_grid_with_no_trial_run_twice(db_path, data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tests.tinynets", "--db", str(db_path), "sweep", "--name", "team",
               "--lr", "0.01,0.02,0.03,0.04,0.05,0.06", *TINY, "--data-dir", data, "--no-prune"]
    workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-2000:]
    # Every worker closed the database, Optuna's connections too: no write-ahead log left beside it.
    assert not Path(f"{db_path}-wal").exists()
    from speedrun.tracking.store import Store

    store = Store.open(str(db_path))
    runs = store.list_runs()
    lrs = sorted(r.param_dict["lr"] for r in runs)
    assert lrs == [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]  # every point once, none twice
    assert all(r.status == "completed" and r.group_name == "team" for r in runs)
    hosts = {r.pid for r in runs}
    assert len(hosts) >= 2  # the work was shared
    store.close()


def test_two_workers_share_a_four_trial_sweep_that_prunes_and_optunas_own_tools_open(db_path, data, tmp_path):
    """Issue 27: a 4-trial sweep run by two workers prunes its hopeless trial, and Optuna's own
    `load_study` opens the study they shared, with the states the runs have."""
    import optuna

    from tests.test_migrations import url_of

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TINYNETS_SCORE_BY_LR": "flat"}
    # The hopeless lr comes last: whichever worker takes it has finished a trial, and the other is on one at
    # most, so two trials have completed and the pruner (2 start-up trials for 4) judges it after epoch 1.
    # The others score alike: in whatever order the workers finish them, none falls below the median.
    command = [sys.executable, "-m", "tests.tinynets", "--db", str(db_path), "sweep", "--name", "pair",
               "--lr", "0.02,0.04,0.08,10", "--model", "resnet9", "--epochs", "2", "--bs", "32", "--subset", "32",
               "--device", "cpu", "--amp", "off", "--data-dir", data]
    workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
    from speedrun.tracking.store import Store

    store = Store.open(str(db_path))
    runs = {r.param_dict["lr"]: r for r in store.list_runs()}
    store.close()
    assert sorted(runs) == [0.02, 0.04, 0.08, 10]  # every point once
    assert (runs[10].status, runs[10].epochs_completed) == ("pruned", 1)
    assert [runs[lr].status for lr in (0.02, 0.04, 0.08)] == ["completed"] * 3
    study = optuna.load_study(study_name="pair", storage=url_of(db_path))
    states = {t.params["lr"]: t.state.name for t in study.trials}
    assert states == {0.02: "COMPLETE", 0.04: "COMPLETE", 0.08: "COMPLETE", 10: "PRUNED"}


# --- the report -------------------------------------------------------------------------------------------

def test_the_report_has_a_section_per_sweep_and_reads_back_unchanged(cli, data, tmp_path):
    assert cli("sweep", "--name", "lr", "--lr", "0.02,0.04", *TINY, "--data-dir", data).exit_code == 0
    report = cli("report").output
    section = report.split("## Sweeps", 1)[1].split("<!-- /speedrun:computed -->", 1)[0]
    assert "### Sweep lr\n" in section and "| Trial | lr | Final accuracy | Runs |" in section
    assert "- Best: lr=" in section and "- Against the runner-up: " in section and "- Importance: " in section
    # The section is speedrun's own (inside the computed block): importing the report adds no run.
    (tmp_path / "notebook.md").write_text(report)
    before = len(runs_of(cli))
    assert cli("import-md", str(tmp_path / "notebook.md")).exit_code == 0
    assert len(runs_of(cli)) == before
    page = cli("report", "--format", "html").output
    assert "<h3>Sweep lr</h3>" in page and 'src="data:image/png;base64,' in page


def test_reading_a_database_without_sweeps_creates_no_tables(cli, store):
    assert cli("list").exit_code == 0 and cli("report").exit_code == 0
    assert json.loads(cli("sweep", "list", "--json").output) == []
    assert not store.has_table("studies")


def test_the_database_lock_is_one_lock_however_the_database_is_named(db_path, tmp_path, monkeypatch):
    import threading
    import time

    from speedrun.tracking.store import Store

    first = Store.open(str(db_path))
    if first.engine.dialect.name == "sqlite":  # the same file by a relative name, from its folder
        monkeypatch.chdir(tmp_path)
        second = Store.open(os.path.relpath(db_path, tmp_path))
    else:
        second = Store.open(str(db_path))
    held, order = threading.Event(), []

    def holder():
        with first.exclusive("sweep x"):
            held.set()
            time.sleep(0.5)
            order.append("released")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with second.exclusive("sweep x"):
        order.append("acquired")
    with second.exclusive("sweep y"):  # another name is another lock
        pass
    thread.join()
    assert order == ["released", "acquired"]
    first.close()
    second.close()


def test_a_trial_run_carries_no_note_the_user_did_not_write(cli, data):
    # Strings in a run's extra are the notebook's own bullets; the sweep is the run's group, the trial its title.
    assert cli("sweep", "--name", "n", "--lr", "0.02,0.04", *TINY, "--data-dir", data).exit_code == 0
    detail = json.loads(cli("show", "1", "--json").output)
    assert detail["group"] == "n" and detail["title"].startswith("n trial 0: lr=")
    assert not [k for k, v in detail["extra"].items() if isinstance(v, str)]
    assert "Notes" not in cli("show", "1").output


def test_an_epoch_range_is_whole_epochs_where_the_recipe_trains_whole_epochs():
    assert parse_space({"epochs": "1:3"}, whole_epochs=True).dimensions[0].integer
    assert not parse_space({"epochs": "1:3"}).dimensions[0].integer  # the fast recipes take fractional budgets
    with pytest.raises(SpeedrunError, match="whole numbers"):
        parse_space({"epochs": "2.5,4"}, whole_epochs=True)


def test_a_setting_the_recipe_refuses_fails_once_and_is_not_tried_again(cli, data):
    # --warmup 1 with one epoch is refused by the recipe (warm-up must be shorter than the run).
    result = cli("sweep", "--name", "bad", "--warmup", "0,1", *TINY, "--data-dir", data, "--no-prune")
    assert result.exit_code == 0, result.output
    assert "--warmup must be in [0, epochs)" in result.output
    assert len(runs_of(cli)) == 1
    resumed = cli("sweep", "--resume", "bad", "--data-dir", data, "--device", "cpu")
    assert resumed.exit_code == 0 and "given back" not in resumed.output
    assert len(runs_of(cli)) == 1
    shown = json.loads(cli("sweep", "show", "bad", "--json").output)
    assert shown["counts"]["complete"] == 1 and shown["counts"]["fail"] == 1


@pytest.mark.sqlite_only
def test_a_read_only_database_shows_its_sweeps(cli, data, db_path):
    assert cli("sweep", "--name", "ro", "--lr", "0.02,0.04", *TINY, "--data-dir", data).exit_code == 0
    read_only = f"sqlite:///file:{db_path}?mode=ro&uri=true"
    shown = cli("sweep", "show", "ro", "--json", db=read_only)
    assert shown.exit_code == 0 and len(json.loads(shown.output)["trials"]) == 2
    assert "### Sweep ro" in cli("report", db=read_only).output


# --- what a sweep must not lose or leave (issue 24) -------------------------------------------------------

def tables_of(store) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(store.engine).get_table_names())


def test_resuming_a_sweep_that_does_not_exist_creates_nothing(cli, store):
    # `sweep --resume nope` failed but added Optuna's 12 tables to the database (C5).
    assert cli("list").exit_code == 0
    before = tables_of(store)
    result = cli("sweep", "--resume", "nope")
    assert result.exit_code == 1 and "no sweep named 'nope'" in result.output
    assert tables_of(store) == before


def no_download(monkeypatch):
    """No network in a test: a missing data set is missing at once (as offline)."""
    from speedrun.training import data as data_module

    def offline(data_dir):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data_module, "_download", offline)


def test_a_worker_without_data_takes_no_trial_from_the_sweep(cli, data, tmp_path, monkeypatch):
    # One worker without data marked every grid point invalid; `--resume` with good data then trained
    # nothing (D5). A missing data set is the machine's problem, not the setting's: the worker stops
    # with one Error line and the trial goes back to the queue.
    no_download(monkeypatch)
    missing = str(tmp_path / "nowhere")
    result = cli("sweep", "--name", "nodata", "--lr", "0.02,0.04,0.08", *TINY, "--data-dir", missing, "--no-prune")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "CIFAR-10 not found" in errors[0] and "back in the queue" in errors[0]
    assert "Traceback" not in result.output and result.output.count("Trial ") == 1  # stopped at once
    assert runs_of(cli) == []
    shown = json.loads(cli("sweep", "show", "nodata", "--json").output)
    assert shown["counts"]["fail"] == 0 and [t["state"] for t in shown["trials"]] == ["waiting"] * 3

    resumed = cli("sweep", "--resume", "nodata", "--data-dir", data, "--device", "cpu")
    assert resumed.exit_code == 0, resumed.output
    runs = runs_of(cli)
    assert sorted(r["params"]["lr"] for r in runs) == [0.02, 0.04, 0.08]
    assert all(r["status"] == "completed" for r in runs)
    shown = json.loads(cli("sweep", "show", "nodata", "--json").output)
    assert [t["state"] for t in shown["trials"]] == ["complete"] * 3
    assert sorted(t["label"] for t in shown["trials"]) == ["0", "1", "2"]  # the returned trial keeps its number


# --- sweeps at the size people run them (issue 27) ---------------------------------------------------------

def test_a_four_trial_sweep_prunes_a_hopeless_trial(cli, data, monkeypatch):
    # Optuna's median pruner waits for 5 finished trials by default: a 4-trial sweep never pruned.
    from speedrun.training.recording import Recording
    from tests.tinynets import scored_by_lr

    monkeypatch.setattr(Recording, "epoch", scored_by_lr(Recording.epoch))  # lr 10 diverges, for certain
    result = cli("sweep", "--name", "four", "--lr", "0.02,0.04,10,0.08", "--model", "resnet9", "--epochs", "2",
                 "--bs", "32", "--subset", "32", "--device", "cpu", "--amp", "off", "--data-dir", data)
    assert result.exit_code == 0, result.output
    runs = {r["params"]["lr"]: r for r in runs_of(cli)}
    assert (runs[10]["status"], runs[10]["epochs_completed"]) == ("pruned", 1)  # stopped after 1 of 2 epochs
    assert [runs[lr]["status"] for lr in (0.02, 0.04, 0.08)] == ["completed"] * 3  # above the median: kept
    shown = json.loads(cli("sweep", "show", "four", "--json").output)
    assert {t["label"]: t["result"] for t in shown["trials"]}["2"] == "pruned after epoch 1"
    assert shown["best"]["setting"] == "lr=0.08"


def test_a_refused_setting_says_why_in_sweep_show(cli, data):
    # `sweep show` said "failed" and nothing more; the reason was kept only in Optuna's attributes.
    result = cli("sweep", "--name", "opt", "--optimizer", "sgd,adam", "--momentum", "0.9", *TINY, "--subset", "32",
                 "--data-dir", data, "--no-prune")
    assert result.exit_code == 0, result.output
    why = "recipe resnet18 does not read --momentum with --optimizer adam (only sgd has momentum here)"
    shown = cli("sweep", "show", "opt")
    assert "refused" in shown.stdout and f"Trial 1 refused: {why}" in shown.stdout.splitlines()
    rows = {row["label"]: row for row in json.loads(cli("sweep", "show", "opt", "--json").stdout)["trials"]}
    assert (rows["1"]["result"], rows["1"]["why"]) == ("refused", why)
    assert (rows["0"]["state"], rows["0"]["why"]) == ("complete", None)


def test_the_pruner_waits_for_a_quarter_of_the_sweep_between_two_and_five_trials():
    from speedrun.sweep.runner import startup_trials

    assert [startup_trials(n) for n in (1, 2, 4, 8, 12, 16, 20, 100)] == [2, 2, 2, 2, 3, 4, 5, 5]


def completed_study(spec, rows):
    """An in-memory study of completed trials: (params, value) rows."""
    import optuna

    study = optuna.create_study(direction=spec.direction)
    distributions = spec.space.distributions()
    for params, value in rows:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
    return study


def test_importances_are_shown_only_when_the_completed_trials_can_rank_the_options():
    from speedrun.sweep import runner

    spec = runner.plan("imp", "resnet18", parse_space({"lr": "0.02,0.04", "batch_size": "32,64"}), sampler=None,
                       trials=None, repeat=1, objective="final_accuracy", prune=True, seed=0)
    # Two trials that differ only in lr gave "lr 0.89, batch_size 0.11".
    two = completed_study(spec, [({"lr": 0.02, "batch_size": 32}, 50.0), ({"lr": 0.04, "batch_size": 32}, 60.0)])
    assert runner.importances(two, spec) == (None, "ranking 2 options needs 4 completed trials; 2 have completed")
    same_bs = completed_study(spec, [({"lr": lr, "batch_size": 32}, v) for lr, v in
                                     ((0.02, 50.0), (0.04, 60.0), (0.02, 51.0), (0.04, 61.0))])
    assert runner.importances(same_bs, spec) == (None, "batch_size took one value only among the completed trials")
    grid = completed_study(spec, [({"lr": lr, "batch_size": bs}, 50.0 + 10 * (lr == 0.04) + (bs == 64))
                                  for lr in (0.02, 0.04) for bs in (32, 64)])
    values, why = runner.importances(grid, spec)
    assert why is None and set(values) == {"lr", "batch_size"} and values["lr"] > values["batch_size"]
    from speedrun.sweep.summary import importance_lines

    assert importance_lines({"importances": None, "importance_note": "x took one value only"}) == \
        ["not shown: x took one value only."]


def test_a_killed_workers_trial_shows_as_died_and_comes_back_as_a_retry(cli, store):
    # A killed worker's trial still showed "training" in `sweep show`.
    from tests.test_store_cli import make_record

    from speedrun.sweep import runner

    spec = runner.plan("k", "resnet18", parse_space({"lr": "0.02,0.04"}), sampler=None, trials=None, repeat=1,
                       objective="final_accuracy", prune=True, seed=0)
    study, spec = runner.open_sweep(store, spec, "k", lambda message: None)
    trial = study.ask(spec.space.distributions())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id = store.begin_run(make_record(source="train", status="running", epochs=[], pid=gone.pid, group="k"))
    trial.set_user_attr(runner.RUNS_ATTR, [run_id])
    shown = json.loads(cli("sweep", "show", "k", "--json").output)
    assert {t["label"]: t["result"] for t in shown["trials"]}["0"] == "died (its worker stopped)"
    assert shown["counts"]["died"] == 1 and shown["counts"]["running"] == 0
    [listed] = json.loads(cli("sweep", "list", "--json").output)
    assert (listed["died"], listed["failed"]) == (1, 0)
    # The next worker gives it back: the same trial again, numbered as its retry.
    notes = []
    study, _ = runner.open_sweep(store, None, "k", notes.append)
    assert "1 given back to the queue" in notes[0]
    infos = {t.label: t.state for t in runner.trial_infos(store, study)}
    assert infos == {"0": "died", "1": "waiting", "0, retry 1": "waiting"}


def test_every_trial_evaluates_the_same_fixed_val_subset(cli, data):
    """Quick sweeps: --val-subset and --eval-every are fixed for every trial, recorded with each run."""
    result = cli("sweep", "--name", "quick", "--lr", "0.02,0.04", *TINY, "--epochs", "2", "--data-dir", data,
                 "--val-subset", "8", "--eval-every", "2")
    assert result.exit_code == 0, result.output
    runs = [r for r in runs_of(cli) if r["group"] == "quick"]
    assert len(runs) == 2
    for run in runs:
        assert run["params"]["val_subset"] == 8 and run["params"]["eval_every"] == 2
        detail = json.loads(cli("show", str(run["id"]), "--json").output)
        assert [e["val_acc"] is None for e in detail["epoch_metrics"]] == [True, False]
        assert all(float(e["val_acc"]) * 8 / 100 == round(float(e["val_acc"]) * 8 / 100)
                   for e in detail["epoch_metrics"] if e["val_acc"] is not None)  # a count out of 8 images


def test_an_airbench_sweep_begun_before_the_rates_were_renamed_resumes_under_the_new_name(db_path, cli, data):
    # Revision 0008 renamed airbench94's `lr` (a rate per 1,024 images) to `lr_per_1024` in the runs, but
    # not in a sweep's stored search: resumed, every trial it had left was refused ("recipe airbench94 does
    # not read --lr") and marked never to be tried again. 0009 renames it in the sweep too.
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from tests.test_migrations import build_at, url_of

    url = url_of(db_path)
    build_at("0008_recipe_params", url)
    storage = optuna.storages.RDBStorage(url)  # as speedrun's sweep stored it, in the same database
    choices = CategoricalDistribution([5.0, 10.0, 11.5])
    spec = {"name": "old", "recipe": "airbench94", "space": {
        "fixed": {"epochs": 1, "batch_size": 32, "amp": "off", "tta": 0, "whiten_bias_epochs": 0},
        "dimensions": [{"name": "lr", "choices": [5.0, 10.0, 11.5], "low": None, "high": None, "log": False,
                        "integer": False}]},
        "sampler": "grid", "trials": 3, "repeat": 1, "objective": "final_accuracy", "prune": False, "seed": 0}
    study = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    study.set_user_attr("speedrun", spec)
    study.enqueue_trial({"lr": 5.0})
    study.enqueue_trial({"lr": 10.0})
    study.add_trial(create_trial(  # what a resume under 0008 made of the last one
        params={"lr": 11.5}, distributions={"lr": choices}, state=TrialState.FAIL,
        user_attrs={"invalid": "recipe airbench94 does not read --lr; --lr is an option of recipe resnet18."}))
    storage.engine.dispose()

    resumed = cli("sweep", "--resume", "old", "--data-dir", data, "--device", "cpu")  # migrates first
    assert resumed.exit_code == 0, resumed.output
    assert "does not read" not in resumed.output and "given back to the queue" in resumed.output
    shown = json.loads(cli("sweep", "show", "old", "--json").stdout)
    assert shown["counts"]["complete"] == 3
    assert {json.dumps(t["params"]) for t in shown["trials"] if t["state"] == "complete"} == {
        '{"lr_per_1024": 5.0}', '{"lr_per_1024": 10.0}', '{"lr_per_1024": 11.5}'}
    trained = [r["params"] for r in runs_of(cli)]
    assert sorted(p["lr_per_1024"] for p in trained) == [5.0, 10.0, 11.5] and not any("lr" in p for p in trained)
    optuna_study = optuna.load_study(study_name="old", storage=url)
    assert {name for t in optuna_study.trials for name in t.params} == {"lr_per_1024"}
