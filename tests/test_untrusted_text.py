"""User text and typed arguments from anywhere end on the screen harmless (issue 24: S4, C1, C3).

S4: escape sequences, C1 controls and bidirectional overrides in titles, hardware, parameters and
tags never reach a terminal raw, while the database, JSON and the notebook's round trip keep them.
C1: `show` is linear in a long title. C3: every number, name and byte sequence a user can type ends
in success or one `Error:` line, never "internal error".
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.tracking.store import Store
from tests.helpers import add_run
from tests.test_hostile_input import digest, one_error
from tests.test_store_cli import make_record

OSC = "\x1b]0;pwned\x07"  # sets the terminal's title
CSI = "\x1b[2J"  # clears the screen
C1_CSI = "\x9b31m"  # the one-character CSI
RLO = "\u202e"  # right-to-left override: "txt.exe" shows as "exe.txt"
HOSTILE = f"a{OSC}b{CSI}c{C1_CSI}d{RLO}e"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def raw_in(text: str) -> list[str]:
    return [c for c in RAW if c in text]


@pytest.fixture
def hostile_db(tmp_path):
    """Run 1 carries hostile text in every field a user or a merged file can fill; run 2 is plain."""
    path = tmp_path / "runs.db"
    store = Store.open(str(path))
    add_run(store, make_record(
        source="train", title=HOSTILE, hypothesis=HOSTILE, description=HOSTILE, analysis=f"line one\n{HOSTILE}",
        hardware=f"T4 {HOSTILE}", tags=[f"tag{RLO}x"],
        params={"model": "resnet18", "lr": 0.04, "epochs": 3, "optimizer": HOSTILE, HOSTILE: 1},
    ))
    add_run(store, make_record(title="plain"))
    store.close()
    return path


def invoke(db, *args, **kwargs):
    return CliRunner().invoke(app, ["--db", str(db), *args], catch_exceptions=False, **kwargs)


@pytest.mark.parametrize("args", [("report",), ("report", "--format", "html"), ("compare", "1", "2", "--format", "md"),
                                  ("compare", "1", "2"),
                                  ("show", "1"), ("list",), ("stats", "1", "2")])
def test_terminal_outputs_show_escapes_instead_of_obeying_them(hostile_db, args):
    result = invoke(hostile_db, *args)
    assert result.exit_code == 0, result.output
    assert raw_in(result.stdout) == [], args


@pytest.mark.parametrize("args", [("list", "--json"), ("show", "1", "--json"), ("export",), ("export", "1"),
                                  ("compare", "1", "2", "--json")])
def test_json_outputs_keep_the_text_exactly_as_escapes(hostile_db, args):
    result = invoke(hostile_db, *args)
    assert result.exit_code == 0, result.output
    assert raw_in(result.stdout) == [], args
    assert "\\u009b" in result.stdout or "\\u202e" in result.stdout
    json.loads(result.stdout)  # still valid JSON


def test_json_and_database_keep_every_character(hostile_db):
    shown = json.loads(invoke(hostile_db, "show", "1", "--json").stdout)
    assert shown["title"] == HOSTILE and shown["params"]["optimizer"] == HOSTILE
    assert shown["tags"] == [f"tag{RLO}x"]
    exported = json.loads(invoke(hostile_db, "export").stdout)["runs"][0]
    assert exported["title"] == HOSTILE and exported["analysis"] == f"line one\n{HOSTILE}"
    con = sqlite3.connect(hostile_db)
    assert con.execute("select title from runs where id = 1").fetchone()[0] == HOSTILE


def test_export_to_a_file_merges_back_exactly(hostile_db, tmp_path):
    out = tmp_path / "runs.json"
    assert invoke(hostile_db, "export", "-o", str(out)).exit_code == 0
    assert raw_in(out.read_text()) == []
    other = tmp_path / "other.db"
    assert invoke(other, "merge", str(out)).exit_code == 0
    assert json.loads(invoke(other, "show", "1", "--json").stdout)["title"] == HOSTILE


def test_the_report_reads_back_as_the_same_text(hostile_db, tmp_path):
    report = invoke(hostile_db, "report").stdout
    assert raw_in(report) == []
    notebook = tmp_path / "experiments.md"
    notebook.write_text(report)
    fresh = tmp_path / "fresh.db"
    assert invoke(fresh, "import-md", str(notebook)).exit_code == 0
    run = json.loads(invoke(fresh, "show", "1", "--json").stdout)
    assert run["title"] == HOSTILE
    assert run["hypothesis"] == HOSTILE and run["description"] == HOSTILE
    assert run["analysis"] == f"line one\n{HOSTILE}"
    assert run["tags"] == [f"tag{RLO}x"]
    # and the unchanged report, imported over the database it came from, changes nothing
    before = digest(hostile_db)
    assert "0 updated" in invoke(hostile_db, "import-md", str(notebook)).stdout
    assert digest(hostile_db) == before


def test_a_typed_reference_in_an_analysis_reads_back_as_typed(tmp_path):
    from speedrun.notebook.syntax import escape_block, unescape_line

    for text in ("R&amp;D &#27; &amp;#27; &#", f"{HOSTILE}\n## Run 5", "&#55296; &#0;"):
        lines = escape_block(text).split("\n")
        assert raw_in("\n".join(lines)) == []
        assert "\n".join(unescape_line(line) for line in lines) == text


# --------------------------------------------------------------------------- C1: show is linear


def test_show_of_a_one_megabyte_title_is_quick(tmp_path):
    path = tmp_path / "big.db"
    store = Store.open(str(path))
    add_run(store, make_record(title="x" * 1_000_000, analysis="(1) 'a' 0x1f " * 100_000))
    store.close()
    start = time.perf_counter()
    result = invoke(path, "show", "1")
    assert result.exit_code == 0
    assert time.perf_counter() - start < 5  # quadratic (Rich's highlighter): minutes
    assert "x" * 1_000_000 in result.stdout


# --------------------------------------------------------------------------- C3: one Error line


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "runs.db"
    store = Store.open(str(path))
    add_run(store, make_record(tags=["bs"]))
    add_run(store, make_record(title="second"))
    store.close()
    return path


HUGE = "9" * 5000
PAST_64_BITS = str(2**64)


@pytest.mark.parametrize("args", [
    ("show", HUGE), ("note", HUGE, "--title", "x"), ("tag", HUGE, "x"), ("rm", HUGE, "--yes"), ("stats", HUGE),
    ("compare", "1", HUGE), ("report", "--runs", HUGE), ("report", "--runs", "²"), ("export", HUGE),
    ("group", "g", "1", HUGE), ("list", "--limit", PAST_64_BITS), ("train", "--repeat", PAST_64_BITS, "--dry-run"),
    ("train", "--seed", PAST_64_BITS, "--dry-run"), ("train", "--repeat", str(2**62), "--dry-run"),
    ("train", "--seeds", ",".join(map(str, range(20_000))), "--dry-run"),
    ("export", "-o", "a" * 300), ("report", "-o", "a" * 300), ("import-log", "a" * 300),
    ("note", "1", "--title", "a\udcffb"), ("tag", "1", "\udcff"), ("show", "\udcff"), ("list", "--model", "\udcff"),
    ("import-log", "/tmp/\udcff"), ("report", "--tag", "\udcff"),
])
def test_what_a_user_types_ends_in_one_error_line(filled, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    before = digest(filled)
    result = CliRunner().invoke(app, ["--db", str(filled), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code in (1, 2) and len(errors) == 1, result.output
    assert "internal error" not in errors[0] and "Traceback" not in result.output
    assert len(errors[0]) < 600  # a 5,000-digit number is not repeated back in full
    assert digest(filled) == before


def test_a_lone_surrogate_in_a_merged_title_is_refused_naming_the_field(filled, tmp_path):
    out = tmp_path / "runs.json"
    assert invoke(filled, "export", "1", "-o", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    data["runs"][0]["title"] = "a\ud800b"
    out.write_text(json.dumps(data))
    target = tmp_path / "target.db"
    one_error(CliRunner().invoke(app, ["--db", str(target), "merge", str(out)]), containing="title")
    assert not target.exists()


def test_a_64_bit_seed_still_works(filled):
    result = invoke(filled, "train", "--seed", str(2**63 - 1), "--dry-run")
    assert result.exit_code == 0 and str(2**63 - 1) in result.stdout


def test_stats_shows_a_group_name_with_a_bidi_override_escaped(hostile_db):
    name = f"g{RLO}x"
    assert invoke(hostile_db, "group", name, "1", "2").exit_code == 0
    result = invoke(hostile_db, "stats", f"g:{name}")
    assert result.exit_code == 0, result.output
    assert raw_in(result.stdout) == [] and "\\u202e" in result.stdout


def test_import_md_dry_run_shows_titles_escaped(tmp_path):
    notebook = tmp_path / "n.md"
    notebook.write_text(f"## Run 3: {HOSTILE}\n- **Hardware**: T4\n\nFinal Validation Accuracy: 50.00%\n")
    result = invoke(tmp_path / "n.db", "import-md", str(notebook), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would add Run 3" in result.stdout and raw_in(result.stdout) == []
