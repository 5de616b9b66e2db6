"""Real CIFAR-10 (slow; skipped when ./data has no copy): `pytest -m slow`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from speedrun.training.data import read_cifar10
from tests.conftest import ROOT

DATA = Path(os.environ.get("SPEEDRUN_TEST_DATA", ROOT / "data"))
FOLDER = DATA / "cifar-10-batches-py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FOLDER.is_dir(), reason=f"no CIFAR-10 at {FOLDER}"),
]


def test_real_data_has_the_published_shape_and_statistics():
    x_train, y_train, x_test, y_test = read_cifar10(FOLDER)
    assert x_train.shape[0] == 50_000 and x_test.shape[0] == 10_000
    assert np.bincount(np.asarray(y_train), minlength=10).tolist() == [5000] * 10
    pixels = np.asarray(x_train).reshape(50_000, 3, -1).astype(np.float64)
    assert pixels.mean(axis=(0, 2)) == pytest.approx([125.307, 122.950, 113.865], abs=0.01)


def test_short_training_on_real_data_learns(cli):
    result = cli("train", "--data-dir", str(DATA), "--subset", "2000", "--epochs", "2", "--bs", "64", "--cosine")
    assert result.exit_code == 0, result.output
    run = json.loads(cli("show", "1", "--json").stdout)
    assert run["status"] == "completed" and run["epochs_completed"] == 2
    assert run["final_val_acc"] > 25.0  # ten classes: chance is 10%
