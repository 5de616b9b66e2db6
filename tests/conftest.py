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


# Test modules whose every test that takes `db_path` runs twice: on SQLite and on a real PostgreSQL server.
BOTH_BACKENDS = {
    "test_store_cli", "test_import_cli", "test_report", "test_compare", "test_stats_cli", "test_exchange",
    "test_concurrency", "test_recording", "test_migrations", "test_sweep", "test_ui", "test_where", "test_outage",
}
NO_POSTGRES = ("the PostgreSQL half of the tests cannot run: {why} (set up: `apt install postgresql` and "
               "`pip install 'speedrun[postgres]'`)")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite itself (files, pragmas); not run on PostgreSQL")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        both = module in BOTH_BACKENDS and not metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite", "postgresql"] if both else ["sqlite"], indirect=True)


@pytest.fixture
def backend(request) -> str:
    return request.param


class PostgresURL(str):
    """The URL of a fresh PostgreSQL database, where a test would take an SQLite path."""

    backend = "postgresql"


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL cluster for the session (tests/pgserver.py)."""
    from tests import pgserver

    bindir = pgserver.find_bin()
    why = None if bindir else "initdb and pg_ctl not found"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        why = why or "psycopg is not installed"
    if why:
        message = NO_POSTGRES.format(why=why)
        if os.environ.get("CI") == "true":  # CI runs both backends or fails
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"skipped: {message}")
    server = pgserver.PostgresServer(bindir).start()
    yield server
    server.remove()


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the session's PostgreSQL server, dropped afterwards."""
    url = PostgresURL(pg_server.create_database())
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def db_path(tmp_path, backend, request):
    """The test's database: a file path on SQLite, a fresh database's URL on PostgreSQL."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_url")
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
def tiny_nets(monkeypatch):
    """Trainings build thousand-parameter stand-ins for the networks (tests/tinynets.py): for tests of what a
    training records and prints, not of what it learns (with FLOP counts of their own, dropped afterwards)."""
    from tests import tinynets

    tinynets.install(monkeypatch.setattr)


@pytest.fixture
def ctrl_c_in_second_evaluation(monkeypatch):
    """The user presses Ctrl-C while epoch 2 is being evaluated (of a run, or of two one-epoch runs).
    Returns what takes the finger off the key: evaluations after it run as usual."""
    from speedrun.training import loop

    original, calls = loop.evaluate, []

    def evaluate_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(loop, "evaluate", evaluate_then_interrupt)
    return lambda: monkeypatch.setattr(loop, "evaluate", original)


@pytest.fixture
def compilations(monkeypatch):
    """torch.compile through a backend that notes, per compiled graph, whether the clock was running."""
    import contextlib

    import torch

    from speedrun.training import device

    events, timing = [], []
    original = device.Stopwatch.section

    @contextlib.contextmanager
    def section(self):
        timing.append(True)
        try:
            with original(self):
                yield
        finally:
            timing.pop()

    def backend(graph_module, example_inputs):
        events.append("timed" if timing else "untimed")
        return graph_module.forward

    monkeypatch.setattr(device.Stopwatch, "section", section)
    monkeypatch.setattr(device, "COMPILE_BACKEND", backend)
    torch._dynamo.reset()
    yield events
    torch._dynamo.reset()


HOST_READS = ("item", "cpu", "tolist")  # each one waits for the device: a sync


@pytest.fixture
def host_reads(monkeypatch):
    """Every Tensor.item/.cpu/.tolist call, by name."""
    import torch

    calls = []
    for name in HOST_READS:
        def counting(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls
