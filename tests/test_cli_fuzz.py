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
from speedrun.domain.records import EpochRecord
from speedrun.tracking.store import Store
from tests.helpers import add_run
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
    add_run(store, make_record(tags=["bs"]))
    add_run(store, make_record(title="second", params={"model": "resnet9", "lr": 0.04, "epochs": 3}))
    add_run(store, make_record(number=7, label="7a", epochs=[EpochRecord(1, val_acc=50.0)]))
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


# --------------------------------------------------------------------------- every command (issue 24)


def _commands() -> list[tuple[list[str], object]]:
    """Every command of the app as a user reaches it (`list`, `sweep show`, `db current`, `sweep`
    itself), found in the app, so that a command added tomorrow is fuzzed too."""
    import typer.main

    found = []

    def walk(group, path):
        for name, command in sorted(group.commands.items()):
            found.append(([*path, name], command))
            if getattr(command, "commands", None):
                walk(command, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()
# What a user can type: any text (controls, bidi, emoji), numbers of any size, bytes that are not
# UTF-8 (they arrive as lone surrogates), long names. Not NUL: no program's argv can hold one.
TYPED = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
    NUMBERS,
    st.text(alphabet="0123456789-,.:g ", max_size=30),
    st.sampled_from([
        "a" * 300, "9" * 5000, str(2**64), str(-(2**63) - 1), str(2**63 - 1), "-", "--", "g:", "²", "٣",
        "\x1b[2J\x1b]0;x\x07", "\u202eevil", "\x9b31m", "a\udcffb", "\udc80", "x.png", "plots", "1-3,5", "nan",
    ]),
)


def _safe(value: str) -> str:
    """Relative paths only: a fuzzed `-o /usr/...` run as root must not land outside the test's folder."""
    return "x" + value if value.startswith(("/", "~")) else value


@st.composite
def invocations(draw) -> list[str]:
    """A command with random values in a random choice of its arguments and options."""
    path, command = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    for param in command.params:
        if param.param_type_name == "argument":
            if not param.required and draw(st.booleans()):
                continue
            count = 1 if param.nargs == 1 else draw(st.integers(1, 3))
            argv += [_safe(draw(TYPED)) for _ in range(count)]
        elif draw(st.integers(0, 3)) == 0:  # an option, now and then
            if param.is_flag:
                argv.append(draw(st.sampled_from([*param.opts, *param.secondary_opts])))
            else:
                for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
                    argv += [draw(st.sampled_from(param.opts)), _safe(draw(TYPED))]
    return argv


def _no_training(*args, **kwargs):
    from speedrun.errors import SpeedrunError

    raise SpeedrunError("the fuzz trains nothing")


def test_every_command_is_fuzzed():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"train", "sweep", "sweep show", "sweep list", "db current", "db upgrade", "report", "merge", "ui"} <= names


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=invocations())
def test_random_arguments_to_every_command_end_in_success_or_one_error_line(seeded, tmp_path_factory, monkeypatch,
                                                                            argv):
    """Issue 24's closing test: digits, unicode, control bytes, non-UTF-8 bytes and long names in every
    argument and option of every command: never "internal error". Training is replaced by a
    failure (a fuzz must not train), so train and sweep run everything up to it; `ui` runs up to
    its server, which serves nothing."""
    from speedrun.sweep import runner
    from speedrun.training import repeats

    monkeypatch.setattr(repeats, "train_runs", _no_training)
    monkeypatch.setattr(runner, "run_worker", _no_training)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # `ui` checks all it is given, then serves nothing
    folder = tmp_path_factory.mktemp("cmd")
    monkeypatch.chdir(folder)  # outputs with fuzzed names land here
    db = folder / "runs.db"
    shutil.copy(seeded, db)
    result = CliRunner().invoke(app, ["--db", str(db), *argv], input="n\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "internal error" not in result.output and "Traceback" not in result.output, (argv, result.output)
    if result.exit_code != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        if result.exit_code == 2 and not errors:  # a group without its command: its help
            assert result.output.startswith("Usage:"), (argv, result.output)
            return
        assert result.exit_code in (1, 2) and len(errors) == 1, (argv, result.output)
