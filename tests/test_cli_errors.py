"""Rules of the CLI code, kept by scanning it, and the error lines they give. Errors have one path: a command
raises SpeedrunError (UsageError for a command line it cannot take), and `SpeedrunGroup.invoke` prints it as one
`Error:` line with the error's exit code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / "speedrun" / "cli"


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "fail":
            found.append(f"{path.name}:{node.lineno}: fail(...) (raise SpeedrunError instead)")
        named = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if named == "BadParameter":
            found.append(f"{path.name}:{node.lineno}: BadParameter (raise UsageError instead)")
    return found


def test_commands_raise_speedrun_errors_and_only_the_app_prints_them():
    files = sorted(p for p in CLI.glob("*.py") if p.name != "app.py")
    assert len(files) > 5
    offences = [line for path in files for line in _offences(path)]
    assert offences == []


def test_the_scan_finds_what_it_forbids(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import typer\nfail('x')\nraise typer.BadParameter('y')\nself.fail('click param')\n")
    assert [line.split(": ", 1)[0] for line in _offences(sample)] == ["sample.py:2", "sample.py:3"]


def _one_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Created database ")]
    assert lines == [f"Error: {message}"]


@pytest.mark.parametrize("args, code, message", [
    (["list", "--all", "--limit", "3"], 2, "give --all or --limit N, not both"),
    (["list", "--since", "yesterday"], 1,
     "--since wants a date such as 2026-11-01 or 2026-11-01T12:00, got 'yesterday'"),
    (["report", "--since", "soon"], 1, "--since wants a date such as 2026-11-01 or 2026-11-01T12:00, got 'soon'"),
    (["report", "--runs", "15-x"], 1, "--runs: not a run, range or label: '15-x' (expected e.g. 15-18,20,7a)"),
    (["note", "1"], 2, "nothing to change: give --hypothesis, --description, --analysis or --title"),
    (["import-log", "-", "--param", "lr"], 1, "--param: expected KEY=VALUE, got 'lr'"),
    (["compare", "1", "2", "--by", "step"], 2, "--by: 'step' is not one of 'epoch', 'time' (or, with --where, "
                                               "a parameter such as batch_size to make one side per value)"),
    (["sweep", "--budget", "0"], 2, "--budget must be positive, got 0"),
    (["sweep", "--resume", "a", "--name", "b"], 2, "--resume a names another sweep than --name b"),
])
def test_a_refused_command_line_is_one_error_line_with_its_exit_code(cli, args, code, message):
    _one_error(cli(*args), code, message)


def test_declining_rm_is_an_error_line(cli, store):
    from speedrun.domain.records import RunRecord
    from tests.helpers import add_run

    add_run(store, RunRecord(source="log", title="kept"))
    _one_error(cli("rm", "1", input="n\n"), 1, "not deleted")
    assert cli("show", "1").exit_code == 0


def test_each_cli_helper_is_defined_once():
    """One message printer (`app.notify`), one of each helper: no module keeps a copy of another's."""
    homes: dict[str, list[str]] = {}
    for path in sorted(CLI.glob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                homes.setdefault(node.name, []).append(path.name)
    assert {name: files for name, files in homes.items() if len(files) > 1} == {}
