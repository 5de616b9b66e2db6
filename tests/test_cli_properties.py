"""Whatever a user pastes or types, import ends in a correct import or one clear error: no traceback, no partial write."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.tracking.store import Store

VALID = "\n".join(
    header_lines("cuda", 11_173_962, {"lr": 0.04, "batch_size": 64, "epochs": 3, "cosine": True}, 1.5)
    + [epoch_line(e, 3, 1.0 / e, 50.0 + e, 40.0, 40.0 * e) for e in (1, 2, 3)]
    + footer_lines(120.0, 53.0)
)
WEIRD_NUMBERS = st.sampled_from(["nan", "inf", "-inf", "-3", "1e308", "1e999", "0", "99999999999999999999", "-0.0"])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def import_log(db: Path, data: bytes, *args: str):
    source = db.parent / "pasted.txt"
    source.write_bytes(data)
    before = Store.open(str(db)).count_runs()
    result = CliRunner().invoke(app, ["--db", str(db), "import-log", str(source), "--force", *args])
    return before, result


def assert_clean_outcome(db: Path, before: int, result) -> None:
    # Only Typer's own exit may end the command: anything else is a traceback for the user.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    after = Store.open(str(db)).count_runs()
    if result.exit_code == 0:
        assert after > before
        assert "Run " in result.stdout
    else:
        assert result.exit_code == 1
        assert after == before  # nothing half-written
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "Traceback" not in result.output


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_random_bytes(tmp_path, data):
    db = tmp_path / "p.db"
    before, result = import_log(db, data)
    assert_clean_outcome(db, before, result)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=len(VALID)), junk=st.binary(max_size=50))
def test_truncated_logs_with_junk(tmp_path, cut, junk):
    db = tmp_path / "t.db"
    before, result = import_log(db, VALID[:cut].encode() + junk)
    assert_clean_outcome(db, before, result)


@SETTINGS
@given(number=WEIRD_NUMBERS, field=st.sampled_from(["Loss: 1.0000", "Val Accuracy: 51.00%", "Total: 40.0s", "[1/3]"]))
def test_weird_numbers_in_epoch_lines(tmp_path, number, field):
    db = tmp_path / "n.db"
    broken = VALID.replace(field, field.split(":")[0] + f": {number}" if ":" in field else f"[{number}/3]", 1)
    before, result = import_log(db, broken.encode())
    assert_clean_outcome(db, before, result)


@SETTINGS
@given(key=st.text(max_size=30), value=st.text(max_size=30) | WEIRD_NUMBERS)
def test_param_values(tmp_path, key, value):
    db = tmp_path / "k.db"
    before, result = import_log(db, VALID.encode(), "--param", f"{key}={value}")
    assert_clean_outcome(db, before, result)


def test_ten_megabyte_line(tmp_path):
    db = tmp_path / "big.db"
    before, result = import_log(db, VALID.encode() + b"\n" + b"x" * 10_000_000 + b"\n")
    assert_clean_outcome(db, before, result)


def test_notebook_random_text(tmp_path):
    db = tmp_path / "md.db"
    notebook = tmp_path / "n.md"
    notebook.write_bytes(b"## Run 3: \xff\xfe broken\n- **Hardware**: T4\n```\n" + VALID.encode()[:300] + b"\n")
    result = CliRunner().invoke(app, ["--db", str(db), "import-md", str(notebook)])
    assert_clean_outcome(db, 0, result)
