"""Shared test fixtures. No test ever touches the repository's own runs.db."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
# Copies of the user's five console logs and notebook page (../shared/fixtures), so the
# tests pass from a clone with nothing beside it.
DATA = Path(__file__).resolve().parent / "data"
SEED_LOGS = DATA / "seed-logs"
SEED_NOTEBOOK = DATA / "seed-notebook.md"

# Keep torch from fighting over the two cores when tests run alongside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _private_database(tmp_path, monkeypatch):
    """Point the default database at a temporary file for every test."""
    monkeypatch.setenv("SPEEDRUN_DB", str(tmp_path / "default.db"))
    monkeypatch.delenv("SPEEDRUN_DATA_DIR", raising=False)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def cli(db_path):
    """Run the CLI as a user would, against a temporary database: cli("list", "--json")."""
    from speedrun.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, db: Path | str | None = None):
        return runner.invoke(app, ["--db", str(db or db_path), *args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def store(db_path):
    from speedrun.tracking.store import Store

    s = Store.open(str(db_path))
    yield s
    s.close()


@pytest.fixture
def ctrl_c_in_second_evaluation(monkeypatch):
    """The user presses Ctrl-C while epoch 2 is being evaluated."""
    from speedrun.training import loop

    original, calls = loop.evaluate, []

    def evaluate_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(loop, "evaluate", evaluate_then_interrupt)
