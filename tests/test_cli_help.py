"""The command line as a newcomer meets it: help in workflow order, an example everywhere, one error path."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.cli.app import WORKFLOW_ORDER


def _commands(group=None, prefix=()):
    """Every leaf command as its argv prefix, e.g. ("db", "upgrade")."""
    import typer.main

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


ALL_COMMANDS = sorted(_commands())


def test_help_lists_train_first_and_in_workflow_order():
    result = CliRunner().invoke(app, ["--help"])
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed[0] == "train"
    assert listed == [name for name in WORKFLOW_ORDER if name in listed]
    assert set(listed) == {c[0] for c in ALL_COMMANDS}


@pytest.mark.parametrize("argv", ALL_COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(argv):
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    example = result.output.split("Example:")[1]
    assert f"speedrun {' '.join(argv)}" in example or "speedrun " in example


def test_choices_are_listed_and_checked(cli):
    help_text = CliRunner().invoke(app, ["list", "--help"]).output
    assert "running|completed" in help_text
    result = cli("list", "--status", "pwned")
    assert result.exit_code == 2 and "pwned" in result.output


def test_user_error_is_one_line(cli):
    cli("list")  # the database exists; opening it says nothing more
    result = cli("show", "42")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("Error: no run '42'")


def test_a_bug_is_one_line_that_says_so(cli, monkeypatch):
    from speedrun.tracking.store import Store

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Store, "open", broken)
    result = cli("list")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: internal error (a bug in speedrun, please report it): RuntimeError: boom "
        "(run with --debug for the traceback)"
    )


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(db_path, monkeypatch, how):
    from speedrun.tracking.store import Store

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Store, "open", broken)
    argv = ["--db", str(db_path), *(["--debug"] if how == "flag" else []), "list"]
    env = {"SPEEDRUN_DEBUG": "1"} if how == "env" else {}
    result = CliRunner().invoke(app, argv, env=env)
    assert isinstance(result.exception, RuntimeError)


def test_commands_that_read_import_neither_torch_nor_optuna():
    # torch costs two seconds at start-up: only a training may pay it. The sweep module once
    # imported it for every command (a search space's augmentation names live beside torch code).
    # SQLAlchemy's PostgreSQL dialect (25 ms) came with the models' JSONB column, on SQLite too.
    import subprocess
    import sys

    heavy = ("torch", "optuna", "matplotlib", "sqlalchemy.dialects.postgresql")
    code = f"import sys, speedrun.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# The modules a start-up must not pay for: the database layer, the training stack, the statistics.
HEAVY_AT_START = ("sqlalchemy", "torch", "scipy", "matplotlib", "numpy", "optuna")


def _imported_modules(*argv: str) -> tuple[set[str], str]:
    """The modules `python -X importtime -m speedrun ARGV` imported (as `import time:` lines name them)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "speedrun", *argv],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return names - {"package"}, result.stdout


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("list", "--help")], ids=" ".join)
def test_help_and_version_import_nothing_heavy(argv):
    # `speedrun --help` once took half a second of CPU: SQLAlchemy came with the `db` command's
    # module, the sort keys (tracking.store) and `--alpha`'s default (analysis.metrics).
    imported, _ = _imported_modules(*argv)
    assert "typer" in imported  # the measurement itself works
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY_AT_START)
    assert heavy == []
    # Nor the store, the notebook parsers or the statistics: each command loads those itself.
    assert sorted(m for m in imported if m.startswith(("speedrun.tracking.store", "speedrun.notebook.",
                                                       "speedrun.analysis.metrics"))) == []


def test_comparing_two_single_runs_imports_no_scipy(tmp_path):
    # `compare 15 16` on the user's notebook took 0.8 s, 0.23 s of it importing scipy and numpy for
    # one normal quantile (the standard library has it) and Student's t, which no single run needs.
    from speedrun.tracking.store import Store

    from tests.test_report import trained

    db = tmp_path / "runs.db"
    store = Store.open(str(db))
    for number, last, batch in ((15, 85.7, 64), (16, 87.2, 32)):  # two set-ups, one run each, as in the notebook
        run = trained([60.0, 80.0, last], number=number)
        run.params["batch_size"] = batch
        store.add_runs([run])
    store.close()
    imported, out = _imported_modules("--db", str(db), "compare", "15", "16")
    assert "Final accuracy: Run 16 " in out  # a verdict was given
    assert sorted(m for m in imported if m.split(".")[0] in ("scipy", "numpy")) == []


def test_version_prints_the_package_version():
    from importlib.metadata import version

    import speedrun

    _, out = _imported_modules("--version")
    assert out == f"speedrun {speedrun.__version__}\n"
    assert speedrun.__version__ == version("speedrun")  # the one in pyproject.toml
    assert CliRunner().invoke(app, ["--version"]).output == out
