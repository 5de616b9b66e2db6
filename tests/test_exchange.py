"""export and merge: runs travel between databases with their identity."""

from __future__ import annotations

import json

from speedrun.tracking.store import Store
from tests.helpers import add_run
from tests.test_store_cli import make_record


def fill(path, n=2, **kw):
    store = Store.open(str(path))
    ids = [add_run(store, make_record(title=f"run {i}", tags=["colab"], hypothesis="h", **kw)) for i in range(n)]
    store.close()
    return ids


def test_export_writes_everything(cli, db_path, tmp_path):
    fill(db_path)
    out = tmp_path / "runs.json"
    result = cli("export", "-o", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["format"] == "speedrun-export"
    run = data["runs"][0]
    assert run["number"] == 1 and run["uuid"] and run["title"] == "run 0"
    assert run["params"]["lr"] == 0.04 and run["hardware"] == "Google Colab, T4 GPU"
    assert run["env"]["device_type"] == "cuda"
    assert [e["val_acc"] for e in run["epochs"]] == [55.0, 70.5, 68.25]
    assert run["tags"] == ["colab"] and run["hypothesis"] == "h"
    assert len(json.loads(cli("export", "2").stdout)["runs"]) == 1


def test_merge_database_twice_adds_nothing_the_second_time(cli, db_path, tmp_path):
    colab = tmp_path / "colab.db"
    fill(colab, 3)
    result = cli("merge", str(colab))
    assert result.exit_code == 0, result.output
    assert "Merged 3 runs" in result.stdout
    again = cli("merge", str(colab))
    assert "Merged 0 runs" in again.stdout and "3 already here" in again.stdout
    mine = json.loads(cli("list", "--json").stdout)
    assert [r["id"] for r in mine] == [1, 2, 3]


def test_merge_renumbers_only_on_a_clash_and_says_so(cli, db_path, tmp_path):
    fill(db_path, 1)  # run 1 exists here
    colab = tmp_path / "colab.db"
    fill(colab, 2)  # runs 1 and 2 there
    result = cli("merge", str(colab))
    assert "Run 1 of" in result.stdout and "is run 3 here" in result.stdout
    rows = json.loads(cli("list", "--json").stdout)
    assert [(r["id"], r["label"], r["title"]) for r in rows] == [
        (1, "1", "run 0"),  # ours
        (2, "2", "run 1"),  # theirs, kept its number
        (3, "3", "run 0"),  # theirs, renumbered, no label added
    ]


def test_export_then_merge_round_trip_is_exact(cli, db_path, tmp_path):
    fill(db_path, 2)
    export = tmp_path / "e.json"
    cli("export", "-o", str(export))
    other = tmp_path / "other.db"
    assert cli("merge", str(export), db=other).exit_code == 0
    for run in ("1", "2"):
        a = json.loads(cli("show", run, "--json").stdout)
        b = json.loads(cli("show", run, "--json", db=other).stdout)
        assert a == b


def test_merge_bad_input_is_a_clear_error(cli, tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    for target in (str(junk), str(tmp_path / "missing.db")):
        result = cli("merge", target)
        assert result.exit_code == 1 and result.stderr.splitlines()[-1].startswith("Error:")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "other"}))
    assert "not a speedrun export" in cli("merge", str(wrong)).stderr


def test_a_notebook_merged_elsewhere_keeps_its_series(cli, db_path, tmp_path):
    # The user's notebook (series 26 without results of its own, series with a parent run) imported here,
    # then carried to another database by export and by merging the database itself: the same notebook.
    from tests.test_import_cli import USER_NOTEBOOK

    assert cli("import-md", str(USER_NOTEBOOK)).exit_code == 0
    report = cli("report").stdout
    export = tmp_path / "notebook.json"
    assert cli("export", "-o", str(export)).exit_code == 0
    assert {s["name"] for s in json.loads(export.read_text())["series"]} >= {"26"}
    for source, other in ((str(export), tmp_path / "from-json.db"), (str(db_path), tmp_path / "from-db.db")):
        assert cli("merge", source, db=other).exit_code == 0
        assert cli("report", db=other).stdout == report
        assert "26 is a series" in " ".join(cli("show", "26", db=other).output.split())
        # Merging again adds neither runs nor series.
        assert cli("merge", source, db=other).exit_code == 0
        assert cli("report", db=other).stdout == report


def test_an_export_with_a_bad_series_is_refused_before_anything_is_written(cli, db_path, tmp_path):
    fill(db_path, 1)
    export = tmp_path / "e.json"
    cli("export", "-o", str(export))
    data = json.loads(export.read_text())
    data["series"] = [{"name": "7\n## Run 99", "uuid": None}]
    export.write_text(json.dumps(data))
    other = tmp_path / "other.db"
    result = cli("merge", str(export), db=other)
    assert result.exit_code == 1 and "series #1 in the file: name" in result.output
    assert not other.exists() or json.loads(cli("list", "--json", db=other).stdout) == []


def test_edits_travel_and_an_edit_on_both_sides_is_a_conflict(cli, db_path, tmp_path):
    """Issue 27: `note` and `tag` in Colab after a merge reach the server by the next merge, and back;
    an edit on both sides since the last merge is reported and nothing is overwritten."""
    colab = tmp_path / "colab.db"
    fill(colab, 2)
    assert "Merged 2 runs" in cli("merge", str(colab)).stdout

    def on_colab(*args):
        result = cli(*args, db=colab)
        assert result.exit_code == 0, result.output
        return result

    def shown(run, db=None):
        data = json.loads(cli("show", str(run), "--json", db=db).stdout)
        return data["analysis"], data["tags"], data["title"], data["epochs"]

    on_colab("note", "1", "--analysis", "lr too high")
    on_colab("tag", "1", "t4")
    merged = cli("merge", str(colab))
    assert "Merged 0 runs" in merged.stdout and "1 run updated" in merged.stdout, merged.output
    assert shown(1) == ("lr too high", ["colab", "t4"], "run 0", 3) == shown(1, colab)
    assert "updated" not in cli("merge", str(colab)).stdout  # once

    cli("note", "1", "--title", "renamed on the server")  # back the other way, through an export
    exported = tmp_path / "server.json"
    assert cli("export", "-o", str(exported)).exit_code == 0
    back = on_colab("merge", str(exported))
    assert "1 run updated" in back.stdout and shown(1, colab)[2] == "renamed on the server"

    on_colab("note", "2", "--analysis", "colab's view")
    cli("note", "2", "--analysis", "the server's view")
    clash = cli("merge", str(colab))
    assert clash.exit_code == 0 and "1 in conflict" in clash.stdout and "Conflict: run 2" in clash.stderr
    assert shown(2)[0] == "the server's view" and shown(2, colab)[0] == "colab's view"
    assert all(shown(run)[3] == 3 for run in (1, 2))  # epochs untouched


NOTEBOOK = """# Experiments

## Run 1: baseline

**Hypothesis:** batch 64 works.

Config: model=ResNet-18, batch_size=64, lr=0.04, epochs=10

**Hardware:** Google Colab, T4 GPU

**Final Validation Accuracy:** 88.10%.

**Analysis:** Fine.
"""


def test_an_edit_travels_whole_whether_made_with_note_or_in_the_notebook(cli, db_path, tmp_path):
    """A `note` on the laptop reached the server's `show` but not its report (the notebook section
    that shows the texts stayed behind), and a text edited in experiments.md and imported again
    never travelled at all ("1 already here")."""
    notebook = tmp_path / "experiments.md"
    notebook.write_text(NOTEBOOK)
    laptop = tmp_path / "laptop.db"
    assert cli("import-md", str(notebook), db=laptop).exit_code == 0
    assert "Merged 1 run from" in cli("merge", str(laptop)).stdout

    def analysis_in_report(db=None):
        return [line for line in cli("report", db=db).stdout.splitlines() if "Analysis" in line or "than" in line]

    assert cli("note", "1", "--analysis", "Better than expected.", db=laptop).exit_code == 0
    assert "1 run updated" in cli("merge", str(laptop)).stdout
    assert cli("report").stdout == cli("report", db=laptop).stdout
    assert analysis_in_report() == ["**Analysis**:", "Better than expected."]

    notebook.write_text(NOTEBOOK.replace("Fine.", "Edited in the notebook."))
    assert "1 updated" in cli("import-md", str(notebook), db=laptop).stdout
    assert "1 run updated" in cli("merge", str(laptop)).stdout
    assert analysis_in_report() == ["**Analysis:** Edited in the notebook."]
    assert json.loads(cli("show", "1", "--json").stdout)["analysis"] == "Edited in the notebook."
    assert "updated" not in cli("merge", str(laptop)).stdout  # once
