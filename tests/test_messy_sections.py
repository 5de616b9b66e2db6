"""Issue 26, item 8 on a notebook in the user's style (tests/data/messy-sections.md): a sentence after a
value on the configuration line, sub-runs that restate only some settings, a summary-only run, and a
second result inside a section. Each failed before its fix."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DATA

NOTEBOOK = DATA / "messy-sections.md"


@pytest.fixture
def imported(cli):
    result = cli("import-md", str(NOTEBOOK))
    assert result.exit_code == 0, result.output
    return result


def params(cli, ref):
    result = cli("show", ref, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["params"]


def test_a_sentence_after_a_value_ends_the_value_and_is_read(cli, imported):
    # `AMP=True. Without BatchNorm.` was amp='True. Without BatchNorm.' and BatchNorm stayed unread.
    assert params(cli, "2") == {"lr": 0.04, "batch_size": 64, "epochs": 2, "cosine": True, "amp": True, "bn": False}


def test_sub_runs_inherit_what_they_do_not_restate_and_keep_what_they_do(cli, imported):
    assert params(cli, "2a")["amp"] is True and params(cli, "2a")["bn"] is False  # inherited, typed
    assert params(cli, "2a")["batch_size"] == 128
    assert params(cli, "2b")["bn"] is True  # restated: BatchNorm back on


def test_a_summary_only_run_shows_no_epochs_on_record_not_zero(cli, imported):
    listing = cli("list")
    row = next(line for line in listing.output.splitlines() if line.startswith("1 "))
    assert "—/10" in row and "0/10" not in row
    shown = cli("show", "1").output
    assert "Epochs         — of 10 (none logged: the notebook states only the results)" in shown
    assert json.loads(cli("list", "--json").stdout)[0]["epochs_text"] == "—/10"


def test_a_second_result_in_a_section_is_reported_not_folded_silently(cli, imported):
    assert "line 63: a result without epoch lines (Final Validation Accuracy: 59.10%) is kept as text" in imported.output
    assert json.loads(cli("show", "3", "--json").stdout)["final_val_acc"] == 60.0  # the T4 log's, not the CPU check's


def test_the_report_reads_back_as_the_same_settings(cli, imported, tmp_path):
    out = tmp_path / "back.md"
    assert cli("report", "-o", str(out)).exit_code == 0
    again = tmp_path / "again.db"
    assert cli("import-md", str(out), db=again).exit_code == 0
    for ref in ("1", "2", "2a", "2b", "3"):
        shown = json.loads(cli("show", ref, "--json", db=again).stdout)
        assert shown["params"] == params(cli, ref), ref
