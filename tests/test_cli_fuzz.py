"""Every command, driven with arbitrary text and numbers: success, or one `Error:` line and the database unchanged.

Complements test_cli_properties.py (arbitrary *input files* to import-log):
here the arguments and options themselves are hostile (issue 14).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.tracking.records import EpochRecord
from speedrun.tracking.store import Store
from tests.test_hostile_input import digest
from tests.test_store_cli import make_record

A = object()  # a slot for an arbitrary argument
TEMPLATES = [
    ["list", "--status", A], ["list", "--model", A], ["list", "--hardware", A], ["list", "--tag", A],
    ["list", "--since", A], ["list", "--limit", A], ["list", "--sort", A, "--json"],
    ["show", A], ["show", A, "--json"],
    ["note", A, "--title", A], ["note", "1", "--hypothesis", A, "--analysis", A],
    ["tag", A, A], ["tag", "1", A, "--remove"],
    ["rm", A, "--yes"],
    ["group", A, A], ["group", A, "1", "2"], ["group", A, "1", "--clear"],
    ["stats", A], ["stats", "1", "2", "--alpha", A], ["stats", "1", "--claim", A], ["stats", "1", "--target", A],
    ["compare", A, A], ["compare", "1", "2", "--target", A], ["compare", "1", "2", "--by", A],
    ["compare", "1", "2", "--alpha", A], ["compare", "1", "2", "--format", A],
    ["report", "--runs", A], ["report", "--since", A], ["report", "--tag", A], ["report", "--target", A],
    ["report", "--alpha", A], ["report", "--format", A], ["report", "--hardware", A],
    ["export", A],
    ["db", "current"],
]
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1", "2", "3", "7a", "1-3", "3-1", "1,,2", "g:x", "g:", "²", "٣", "1e999", "-0"]),
)
ARGUMENT = st.one_of(st.text(max_size=40), NUMBERS, st.text(alphabet="0123456789-,.:g ", max_size=30))
# Derandomized: the same examples on every run, so a failure here is a finding, not flakiness.
SETTINGS = settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "seed.db"
    store = Store.open(str(path))
    store.add_run(make_record(tags=["bs"]))
    store.add_run(make_record(title="second", params={"model": "resnet9", "lr": 0.04, "epochs": 3}))
    store.add_run(make_record(number=7, label="7a", epochs=[EpochRecord(1, val_acc=50.0)]))
    store.close()
    return path


@SETTINGS
@given(template=st.sampled_from(TEMPLATES), values=st.lists(ARGUMENT, min_size=3, max_size=3))
def test_any_arguments_end_in_success_or_one_error_line(seeded, tmp_path_factory, template, values):
    db = tmp_path_factory.mktemp("run") / "runs.db"
    shutil.copy(seeded, db)
    args = [values.pop() if part is A else part for part in template]
    before = digest(db)
    result = CliRunner().invoke(app, ["--db", str(db), *args], input="n\n")
    # Only Typer's own exit may end the command: any other exception is a traceback for the user.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        return
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code in (1, 2), result.output  # 2: a usage error, reported by Typer
    assert len(errors) == 1 and "internal error" not in errors[0], (args, result.stderr)
    assert "Traceback" not in result.output
    assert digest(db) == before, args
