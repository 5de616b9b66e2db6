"""What the program does around every command, and the shortcuts a 2,000-run import takes.

Each shortcut must give exactly what the long way gives; the program must leave
the database closed, whatever the interpreter does at exit.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import speedrun.cli
from speedrun.cli import app
from speedrun.domain.memo import MAX_CACHED_TEXT, per_text
from speedrun.domain.params import split_outside_brackets
from speedrun.tracking.models import json_text
from speedrun.tracking.store import Store

NOTEBOOK = """# Experiments

## Run 1: baseline (Colab T4)
- **Hardware**: Google Colab, T4 GPU
- **Configuration**: ResNet-18, SGD(lr=0.04, momentum=0.9), BATCH_SIZE=64
- **Final accuracy**: 85.1%

## Run 2: same machine
- **Hardware**: Google Colab, T4 GPU
- **Configuration**: ResNet-18, SGD(lr=0.02, momentum=0.9), BATCH_SIZE=64
- **Final accuracy**: 84.0%

## Run 3: the laptop
- **Hardware**: laptop CPU
- **Configuration**: ResNet-18, SGD(lr=0.04, momentum=0.9), BATCH_SIZE=64
- **Final accuracy**: 60.2%
"""


def _speedrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speedrun", *args], cwd=cwd, capture_output=True, text=True)


# --- the program ----------------------------------------------------------------------


def test_a_command_leaves_no_write_ahead_log_beside_the_database(tmp_path):
    # The program keeps the interpreter's collector away from what it imported (`run`); the
    # database was then never closed at exit, and runs.db-wal stayed beside runs.db holding the
    # import: a copy of runs.db alone (or the one committed to a repository) had none of it.
    (tmp_path / "experiments.md").write_text(NOTEBOOK)
    result = _speedrun("--db", "runs.db", "import-md", "experiments.md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.md", "runs.db"]
    listed = _speedrun("--db", "runs.db", "list", "--json", cwd=tmp_path)
    assert [run["id"] for run in json.loads(listed.stdout)] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.md", "runs.db"]


def test_a_failing_command_closes_the_database_too(tmp_path):
    (tmp_path / "experiments.md").write_text(NOTEBOOK)
    assert _speedrun("--db", "runs.db", "import-md", "experiments.md", cwd=tmp_path).returncode == 0
    result = _speedrun("--db", "runs.db", "show", "99", cwd=tmp_path)
    assert result.returncode == 1 and "Error:" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.md", "runs.db"]


def test_the_program_freezes_what_it_imported_but_the_app_does_not(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(speedrun.cli, "app", lambda **kwargs: calls.append("app"))
    speedrun.cli.run()
    assert calls == ["freeze", "app"]

    monkeypatch.undo()
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "runs.db"), "list"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen  # tests run the app many times in one process


def test_the_console_script_is_the_program():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["speedrun"] == "speedrun.cli:run"


# --- the shortcuts --------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text()
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3)))
def test_json_text_is_json_dumps_character_for_character(value):
    assert json_text(value) == json.dumps(value)


def _split_slowly(text: str, separators: str) -> list[str]:
    """The definition: split at separators outside every bracket, one character at a time."""
    pieces, depth, current = [], 0, ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char in separators and depth == 0:
            pieces.append(current)
            current = ""
            continue
        current += char
    return [*pieces, current]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab ,+()[]{}=", max_size=30), st.sampled_from([",", ",+"]))
def test_splitting_outside_brackets_agrees_with_its_definition(text, separators):
    assert split_outside_brackets(text, separators) == _split_slowly(text, separators)


def test_per_text_remembers_short_texts_only():
    seen = []

    @per_text
    def shout(text: str) -> str:
        seen.append(text)
        return text.upper()

    long = "x" * (MAX_CACHED_TEXT + 1)
    assert [shout("resnet"), shout("resnet"), shout(long), shout(long)] == ["RESNET", "RESNET", long.upper(), long.upper()]
    assert seen == ["resnet", long, long]


def test_runs_on_one_machine_share_one_environment_row(tmp_path):
    (tmp_path / "experiments.md").write_text(NOTEBOOK)
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(app, ["--db", str(db), "import-md", str(tmp_path / "experiments.md")])
    assert result.exit_code == 0, result.output
    store = Store.open(str(db))
    try:
        runs = {run.id: run for run in store.list_runs()}
        assert runs[1].environment_id == runs[2].environment_id != runs[3].environment_id
    finally:
        store.close()


def test_importing_a_notebook_again_loads_neither_the_report_nor_scipy(tmp_path):
    # Every matched section is compared with what the report prints for its run, which for a
    # run with a section of its own is that section: the report module, and scipy under it
    # (a quarter of a second), were loaded all the same.
    (tmp_path / "experiments.md").write_text(NOTEBOOK)
    assert _speedrun("--db", "runs.db", "import-md", "experiments.md", cwd=tmp_path).returncode == 0
    code = (
        "import sys; from typer.testing import CliRunner; from speedrun.cli import app; "
        "result = CliRunner().invoke(app, ['--db', 'runs.db', 'import-md', 'experiments.md']); "
        "assert result.exit_code == 0, result.output; assert '0 added, 0 updated, 3 unchanged' in result.output, result.output; "
        "print(sorted(m for m in ('scipy', 'speedrun.analysis.report') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
