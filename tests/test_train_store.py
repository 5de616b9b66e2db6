"""`speedrun train` into a real database: what a run leaves behind, also when it is killed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from speedrun.notebook import parse_log
from speedrun.training.data import write_synthetic_cifar10
from tests.conftest import ROOT
from tests.tinynets import tiny_param_count


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar10(root, n_train=128, n_test=64)
    return root


def test_trained_run_is_recorded_completely(cli, fake_data, tiny_nets):
    result = cli(
        "train", "--data-dir", str(fake_data), "--device", "cpu", "--epochs", "2", "--bs", "32",
        "--cosine", "--seed", "7", "--title", "tiny", "--tag", "smoke", "--target", "1",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("Run 1 recorded in")
    rows = json.loads(cli("list", "--json").stdout)
    assert [(r["id"], r["status"], r["source"], r["epochs_completed"]) for r in rows] == [(1, "completed", "train", 2)]
    run = json.loads(cli("show", "1", "--json").stdout)
    assert run["title"] == "tiny" and run["tags"] == ["smoke"]
    assert run["params"]["batch_size"] == 32 and run["params"]["cosine"] is True and run["params"]["seed"] == 7
    assert run["params"]["model"] == "resnet18" and run["param_count"] == tiny_param_count()
    assert run["env"]["device_type"] == "cpu" and run["env"]["torch_version"]
    assert run["command"] and run["data_load_s"] is not None
    for epoch in run["epoch_metrics"]:
        for field in ("train_loss", "train_acc", "val_loss", "val_acc", "duration_s", "elapsed_s", "lr", "images_per_s"):
            assert epoch[field] is not None, field
    assert run["final_val_acc"] == run["epoch_metrics"][-1]["val_acc"]
    assert run["train_time_s"] == pytest.approx(run["epoch_metrics"][-1]["elapsed_s"], rel=0.05)
    assert run["target_acc"] == 1.0 and run["target_time_s"] == run["epoch_metrics"][0]["elapsed_s"]

    # What it printed reads back through import-log with the same numbers.
    logged = parse_log(result.stdout)[0]
    assert [(e.epoch, e.val_acc) for e in logged.epochs] == [
        (e["epoch"], round(e["val_acc"], 2)) for e in run["epoch_metrics"]
    ]


def test_sigkill_mid_epoch_leaves_a_clean_database_and_a_died_run(tmp_path, fake_data, cli):
    db = tmp_path / "killed.db"
    env = {**os.environ, "SPEEDRUN_DB": str(db), "PYTHONPATH": str(ROOT)}
    # The speedrun program with the tiny nets (tests/tinynets.py): epochs of milliseconds, killed long before the last.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tinynets", "train", "--data-dir", str(fake_data), "--device", "cpu",
         "--epochs", "100000", "--bs", "16", "--subset", "32", "--no-amp"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 240
        epochs = 0
        while time.time() < deadline and epochs < 2:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if db.exists():
                try:
                    epochs = sqlite3.connect(db).execute("select count(*) from epoch_metrics").fetchone()[0]
                except sqlite3.OperationalError:
                    pass  # schema not created yet
        assert epochs >= 2, "training did not record two epochs in time"
        time.sleep(0.3)  # now somewhere inside a later epoch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sqlite3.connect(db).execute("pragma integrity_check").fetchone()[0] == "ok"
    committed = sqlite3.connect(db).execute("select count(*) from epoch_metrics").fetchone()[0]
    run = json.loads(cli("show", "1", "--json", db=db).stdout)
    assert run["status"] == "died"
    assert len(run["epoch_metrics"]) == committed >= 2
    assert run["final_val_acc"] == run["epoch_metrics"][-1]["val_acc"]
