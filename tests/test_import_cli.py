"""import-log and import-md through the CLI, as a user runs them."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import SEED_LOGS, SEED_NOTEBOOK

ALL_FORMS = """\x1b[32m$ python main.py --fast\x1b[0m\r
Using device: cuda\r
Using Automatic Mixed Precision (AMP).\r
Setting random seed: 42\r
Pre-loading data to GPU...\r
100% 170M/170M [00:04<00:00, 38.8MB/s]\r
Data pre-loaded in 2.31 seconds.\r
Model parameters: 11,173,962\r
Config: LR=0.04, BATCH_SIZE=64, EPOCHS=3, COSINE=True, AMP=True, WARMUP=1\r
/usr/lib/python3/warnings.py:12: UserWarning: something\r
  warnings.warn(msg)\r
 10%|#         | 78/782 [00:04<00:40]\r 50%|#####     | 391/782 [00:20<00:20]\rEpoch [1/3], Loss: 1.2000, Val Accuracy: 60.00%, Duration: 10.00s, Total: 10.0s\r
Epoch [2/3], Loss: 0.9000, Val Accuracy: 70.00%\r
Epoch [3/3], Loss: 0.8000, Val Accuracy: 69.50%, Duration: 10.50s\r
^C\r
Finished Training. Total time: 31.20 seconds\r
Final Validation Accuracy: 69.50%\r
"""


def runs(cli, *args, db=None):
    return json.loads(cli("list", "--json", *args, db=db).stdout)


def test_every_line_form_through_the_cli(cli, tmp_path):
    log = tmp_path / "colab.txt"
    log.write_bytes(ALL_FORMS.encode())
    result = cli("import-log", str(log))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Run 1: 3 epochs, final 69.50%, completed"
    run = json.loads(cli("show", "1", "--json").stdout)
    assert run["params"] == {"amp": True, "seed": 42, "lr": 0.04, "batch_size": 64, "epochs": 3, "cosine": True, "warmup": 1}
    assert run["param_count"] == 11_173_962 and run["data_load_s"] == 2.31
    assert [e["val_acc"] for e in run["epoch_metrics"]] == [60.0, 70.0, 69.5]
    assert run["epoch_metrics"][1]["duration_s"] is None
    assert (run["final_val_acc"], run["peak_val_acc"], run["peak_epoch"]) == (69.5, 70.0, 2)
    assert run["train_time_s"] == 31.2  # the Finished line wins
    assert run["env"]["device_type"] == "cuda" and run["source"] == "log"


@pytest.mark.parametrize("name", sorted(p.name for p in SEED_LOGS.glob("*.txt")))
def test_seed_logs_import_with_their_numbers(cli, name):
    text = (SEED_LOGS / name).read_text()
    result = cli("import-log", str(SEED_LOGS / name))
    assert result.exit_code == 0, result.output
    run = json.loads(cli("show", "1", "--json").stdout)
    final = float(text.split("Final Validation Accuracy: ")[1].split("%")[0])
    loop = float(text.split("Training loop time: ")[1].split(" ")[0])
    assert run["final_val_acc"] == final and run["train_time_s"] == loop
    lines = [line for line in text.splitlines() if line.startswith("Epoch [")]
    assert len(run["epoch_metrics"]) == len(lines)
    assert run["epoch_metrics"][-1]["elapsed_s"] == float(lines[-1].split("Total: ")[1].rstrip("s"))


def test_run15_in_detail(cli):
    cli("import-log", str(SEED_LOGS / "run15-bs64-t4.txt"), "--hardware", "Colab T4", "--title", "bs 64")
    run = json.loads(cli("show", "1", "--json").stdout)
    assert (run["peak_val_acc"], run["peak_epoch"], run["final_val_acc"]) == (86.47, 9, 85.69)
    assert run["hardware"] == "T4" and run["title"] == "bs 64" and run["data_load_s"] == 1.69
    assert run["mean_epoch_s"] == pytest.approx(sum([42.57, 42.40, 42.85, 44.31, 44.02, 43.79, 44.88, 43.83, 43.87, 44.45]) / 10)


def test_several_runs_in_one_file_and_stdin(cli):
    both = (SEED_LOGS / "run15-bs64-t4.txt").read_text() + (SEED_LOGS / "run18-bs64-20ep-cosine-t4.txt").read_text()
    result = cli("import-log", "-", input=both)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Run 1: 10 epochs, final 85.69%, completed",
        "Run 2: 20 epochs, final 90.68%, completed",
    ]


def test_incomplete_log_is_kept_with_a_warning(cli, tmp_path):
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join((SEED_LOGS / "run16-bs32-t4.txt").read_text().splitlines()[:9]) + "\n")
    result = cli("import-log", str(cut))
    assert result.exit_code == 0
    assert "incomplete" in result.stdout and "Warning" in result.stderr
    assert runs(cli)[0]["epochs_completed"] == 4


def test_flags_fill_in_and_contradictions_are_errors(cli):
    log = str(SEED_LOGS / "run19-bs64-cpu.txt")
    bad = cli("import-log", log, "--param", "lr=0.05")
    assert bad.exit_code == 1
    assert "lr=0.05" in bad.stderr and "lr=0.02" in bad.stderr and "run19-bs64-cpu.txt:" in bad.stderr
    assert cli("import-log", log, "--hardware", "Colab T4").exit_code == 1  # the log says cpu
    ok = cli("import-log", log, "--param", "optimizer=sgd", "--param", "momentum=0.9", "--tag", "cpu",
             "--hypothesis", "CPU baseline", "--notes", "slow", "--hardware", "Ryzen laptop CPU")
    assert ok.exit_code == 0, ok.output
    run = json.loads(cli("show", "1", "--json").stdout)
    assert run["params"]["optimizer"] == "sgd" and run["params"]["momentum"] == 0.9 and run["params"]["lr"] == 0.02
    assert run["tags"] == ["cpu"] and run["hypothesis"] == "CPU baseline" and run["analysis"] == "slow"
    assert run["hardware"] == "CPU"


def test_reimport_is_refused_unless_forced(cli):
    log = str(SEED_LOGS / "run17-bs16-t4.txt")
    cli("import-log", log)
    again = cli("import-log", log)
    assert again.exit_code == 1 and "already imported as run 1" in again.stderr
    assert cli("import-log", log, "--force").exit_code == 0
    assert len(runs(cli)) == 2


@pytest.mark.parametrize(
    "content, message",
    [(b"Using device: cuda\nnothing else\n", "no epoch lines"), (None, "no such file")],
)
def test_bad_files_are_one_clear_error_and_write_nothing(cli, tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    result = cli("import-log", str(path))
    assert result.exit_code == 1
    assert message in result.stderr and "bad.txt" in result.stderr
    assert runs(cli) == []


def test_several_files_are_imported_all_or_nothing(cli, tmp_path):
    """`import-log good.txt bad.log` wrote good.txt's run and exited 1; after fixing bad.log the
    rerun failed on good.txt as a duplicate (D9). Now a bad file among several writes nothing."""
    good = tmp_path / "good.txt"
    good.write_bytes((SEED_LOGS / "run15-bs64-t4.txt").read_bytes())
    bad = tmp_path / "bad.log"
    bad.write_text("Using device: cuda\nno epochs here\n")
    result = cli("import-log", str(good), str(bad))
    assert result.exit_code == 1 and "bad.log" in result.stderr and "no epoch lines" in result.stderr
    assert runs(cli) == []
    bad.write_bytes((SEED_LOGS / "run17-bs16-t4.txt").read_bytes())
    again = cli("import-log", str(good), str(bad))
    assert again.exit_code == 0, again.output
    assert [r["epochs_completed"] for r in runs(cli)] == [10, 10]


def test_the_same_log_twice_in_one_import_is_a_duplicate(cli, tmp_path):
    log = str(SEED_LOGS / "run15-bs64-t4.txt")
    result = cli("import-log", log, log)
    assert result.exit_code == 1 and "--force" in result.stderr and runs(cli) == []
    assert cli("import-log", log, log, "--force").exit_code == 0 and len(runs(cli)) == 2


def test_import_md_seed_notebook(cli):
    result = cli("import-md", str(SEED_NOTEBOOK))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "seed-notebook.md: 5 added, 0 updated, 0 unchanged."
    rows = runs(cli)
    assert [r["id"] for r in rows] == [15, 16, 17, 18, 19]
    assert [r["final_val_acc"] for r in rows] == [85.69, 87.18, 87.16, 90.68, 84.08]
    assert [r["hardware"] for r in rows] == ["T4", "T4", "T4", "T4", "CPU"]
    assert all(r["source"] == "notebook" for r in rows)
    run18 = json.loads(cli("show", "18", "--json").stdout)
    assert run18["params"]["cosine"] is True and run18["params"]["epochs"] == 20
    assert run18["hypothesis"].startswith("Extend optimal batch size 64 to 20 epochs")
    assert run18["analysis"].startswith("- **New record achieved**")
    # Importing is an update: the same file twice changes nothing.
    again = cli("import-md", str(SEED_NOTEBOOK))
    assert again.exit_code == 0 and again.stdout == "seed-notebook.md: 0 added, 0 updated, 5 unchanged.\n"
    assert runs(cli) == rows


def test_import_md_dry_run_writes_nothing(cli):
    result = cli("import-md", str(SEED_NOTEBOOK), "--dry-run")
    assert result.exit_code == 0 and "would add Run 15" in result.stdout
    assert "Nothing written (--dry-run)" in result.stdout
    assert runs(cli) == []


def test_import_md_variants(cli):
    from tests.conftest import ROOT

    result = cli("import-md", str(ROOT / "tests" / "data" / "notebook_variants.md"))
    assert result.exit_code == 0, result.output
    rows = runs(cli)
    labels = {r["label"] for r in rows}
    assert {"7a", "7b"} <= labels and "9-log2" not in labels  # a second log in a section stays text
    assert sum(1 for r in rows if r["label"] == "8" or r["id"] == 8) == 2  # the same number twice: both kept
    assert "Warning" in result.stderr


def test_fast_recipe_log_keeps_its_tta_final_accuracy(cli, tmp_path):
    log = tmp_path / "airbench.txt"
    log.write_text(
        "Using device: cpu\n"
        "Config: LR=11.5, BATCH_SIZE=1024, EPOCHS=2, COSINE=False, AMP=True, RECIPE=airbench94\n"
        "Epoch [1/2], Loss: 1.1000, Val Accuracy: 90.00%, Duration: 100.00s, Total: 100.0s\n"
        "Epoch [2/2], Loss: 0.9500, Val Accuracy: 93.28%, Duration: 97.21s, Total: 197.2s\n"
        "Finished Training. Training loop time: 233.20 seconds\n"
        "Final Validation Accuracy: 94.10%\n"
        "Final accuracy above is with test-time augmentation (mirror + 1-pixel translations); without TTA: 93.28%\n"
    )
    result = cli("import-log", str(log))
    assert result.stdout.strip() == "Run 1: 2 epochs, final 94.10%, completed"
    run = json.loads(cli("show", "1", "--json").stdout)
    assert run["final_val_acc"] == 94.10 and run["epoch_metrics"][-1]["val_acc"] == 93.28


# --------------------------------------------------------------------------- the notebook round trip (issue 12)

USER_NOTEBOOK = SEED_NOTEBOOK.parent / "user-notebook.md"
_MARKER = re.compile(r" {0,3}<!-- (/?)speedrun:computed[^>]*-->\s*")


def strip_computed(text: str) -> list[str]:
    """The report's lines without what speedrun added (the computed blocks), trailing whitespace aside."""
    kept, inside = [], False
    for line in text.split("\n"):
        marker = _MARKER.fullmatch(line)
        if marker:
            inside = not marker.group(1)
            continue
        if not inside:
            kept.append(line.rstrip())
    while kept and not kept[-1]:
        kept.pop()
    return kept


def lines_of(path) -> list[str]:
    lines = [line.rstrip() for line in path.read_text().split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def everything(cli, db=None) -> list[dict]:
    """Every run as `show --json` has it, minus what differs between databases by nature."""
    listed = json.loads(cli("list", "--json", db=db).stdout)
    shown = [json.loads(cli("show", f"#{r['id']}", "--json", db=db).stdout) for r in listed]
    for run in shown:
        for key in ("created_at", "date", "source_file", "content_hash"):
            run.pop(key, None)
    return shown


@pytest.fixture
def user_db(cli):
    result = cli("import-md", str(USER_NOTEBOOK))
    assert result.exit_code == 0, result.output
    return result


def test_user_notebook_comes_back_line_for_line(user_db, cli):
    """Imported and reported, with the computed parts stripped, the notebook is the input, line for line."""
    report = cli("report").stdout
    assert strip_computed(report) == lines_of(USER_NOTEBOOK)


def test_report_is_commonmark_with_every_heading_and_balanced_fences(user_db, cli):
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")

    def headings(text: str) -> list[str]:
        tokens = md.parse(text)
        return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]

    report = cli("report").stdout
    found = headings(report)
    # What the notebook had, plus the report's own sections at the top (in its computed block).
    assert found[1] == "Leaderboard"
    own = ("Leaderboard", "Distance from the hardware's limit", "Groups", "Sweeps")
    assert "Distance from the hardware's limit" in found  # the T4 runs' ResNet-18 is known by its parameters
    assert [h for h in found if h not in own] == headings(USER_NOTEBOOK.read_text())
    runs = [h for h in found if h.startswith("Run ")]
    listed = json.loads(cli("list", "--json").stdout)
    assert len(runs) == len(listed) + 1  # every run, and the series 26 whose parent is no run
    assert "Run 26: BatchNorm ablation (Google Colab, T4 GPU)" in runs
    # Fences balance: no code block swallows a heading, and the fence count is even.
    fences = [t for t in md.parse(report) if t.type == "fence"]
    assert not any("## Run" in t.content for t in fences)
    assert sum(1 for t in fences) == sum(1 for t in md.parse(USER_NOTEBOOK.read_text()) if t.type == "fence")


def test_series_runs_inherit_and_the_parent_is_no_run(user_db, cli):
    rows = {r["label"]: r for r in runs(cli)}
    assert "26" not in rows  # the parent without results is the series, not an empty run
    assert cli("show", "26").exit_code == 1
    for label in ("26a", "26b", "26c"):
        assert rows[label]["series"] == "26" and rows[label]["hardware"] == "T4"
        assert rows[label]["params"]["model"] == "resnet9" and rows[label]["params"]["batch_size"] == 64
    assert (rows["26a"]["params"]["bn"], rows["26c"]["params"]["bn"]) == (True, False)
    # A parent with a log of its own is a run and the series at once.
    assert rows["30"]["series"] == "30" and rows["30a"]["series"] == "30" and rows["30"]["epochs_completed"] == 20
    assert rows["30a"]["params"]["epochs"] == 15 and rows["30a"]["params"]["cosine"] is True
    stats = json.loads(cli("stats", "g:26", "--json").stdout)
    assert stats["sets"][0]["runs"] == ["26a", "26b", "26c"]
    table = cli("list").stdout
    assert re.search(r"33 \(26a\) │ imported \d{4}-\d\d-\d\d │ 26 ", table)
    # The analysis after the last sub-run is the series', and the report puts it after them.
    run26c = json.loads(cli("show", "26c", "--json").stdout)
    assert "worth 14 points" not in (run26c["analysis"] or "")
    report = cli("report").stdout
    assert report.index("### Run 26c") < report.index("### Series analysis") < report.index("## Run 30:")


def test_tables_bullets_settings_as_the_issue_lists(user_db, cli):
    run4 = json.loads(cli("show", "4", "--json").stdout)
    # An epoch table under a bold label is the run's epochs; its text stays where it was.
    assert [e["val_acc"] for e in run4["epoch_metrics"]][:3] == [44.12, 55.9, 62.41]
    assert run4["params"]["augment"] == "crop,flip,trivialaugmentwide"
    assert run4["extra"]["observation"].startswith("the first epoch is noticeably slower")
    assert "Observation: the first epoch" in cli("show", "4").stdout
    run1 = json.loads(cli("show", "1", "--json").stdout)
    assert run1["params"]["model"] == "simplecnn" and run1["params"]["bn"] is False
    assert run1["unparsed_config"] == "model: Plain SimpleCNN (no BN)"
    run26b = json.loads(cli("show", "26b", "--json").stdout)
    assert run26b["unparsed_config"] == "BatchNorm2d after conv1/conv2" and run26b["params"]["bn"] is True
    run2 = json.loads(cli("show", "2", "--json").stdout)
    assert (run2["params"]["model"], run2["params"]["optimizer"], run2["params"]["augment"]) == ("resnet18", "sgd", "crop,flip")
    run5 = json.loads(cli("show", "5", "--json").stdout)
    assert "8 worker processes" in run5["analysis"] and run5["extra"]["warning"].startswith("PyTorch printed")
    assert run5["status"] == "incomplete" and run5["epochs_completed"] == 4


def test_duplicate_labels_and_dates(user_db, cli, tmp_path):
    rows = runs(cli)
    twice = [r for r in rows if r["label"] == "24"]
    assert [r["id"] for r in twice] == [24, 32]
    assert "32 (24)" in cli("list").stdout
    # Two runs answer to "Run 24": an error that lists them, never a silent pick (it used to be #24).
    shown = cli("show", "24", "--json")
    assert shown.exit_code == 1 and "Run 24 is ambiguous: runs #24, #32 answer to it" in shown.stderr
    assert json.loads(cli("show", "#32", "--json").stdout)["id"] == 32  # the database number, by #
    assert all(r["date"].startswith("imported ") for r in rows)  # no date of their own
    assert "Run 24 is ambiguous" in cli("report", "--runs", "24,26a").stderr
    out = cli("report", "--runs", "#24,#32,26a,26b,26c,30-31")
    assert re.findall(r"^#{2,3} Run (\S+?):", out.stdout, re.M) == ["24", "24", "26", "26a", "26b", "26c", "30", "31"]
    plots = tmp_path / "plots"
    assert cli("report", "--plots", str(plots), "-o", str(tmp_path / "r.md")).exit_code == 0
    text = (tmp_path / "r.md").read_text()
    assert "](plots/run-24.png)" in text and "](plots/run-32.png)" in text
    assert (plots / "run-24.png").is_file() and (plots / "run-32.png").is_file()


def test_same_database_nothing_changes(user_db, cli, tmp_path):
    before = everything(cli)
    report = tmp_path / "experiments.md"
    assert cli("report", "-o", str(report)).exit_code == 0
    again = cli("import-md", str(report))
    assert again.exit_code == 0 and again.stdout == "experiments.md: 0 added, 0 updated, 14 unchanged.\n"
    assert everything(cli) == before
    assert cli("import-md", str(USER_NOTEBOOK)).stdout == "user-notebook.md: 0 added, 0 updated, 14 unchanged.\n"
    assert cli("report").stdout == report.read_text()


def test_fresh_database_gets_identical_runs(user_db, cli, tmp_path):
    report = tmp_path / "experiments.md"
    cli("report", "-o", str(report))
    fresh = tmp_path / "fresh.db"
    assert cli("import-md", str(report), db=fresh).exit_code == 0
    assert everything(cli, fresh) == everything(cli)
    assert strip_computed(cli("report", db=fresh).stdout) == strip_computed(report.read_text())


def test_grown_notebook_adds_exactly_the_new_run(user_db, cli, tmp_path):
    grown = tmp_path / "user-notebook.md"
    grown.write_text(USER_NOTEBOOK.read_text() + "\n## Run 40: Mixed precision\n- **Final accuracy**: 91.5%\n")
    result = cli("import-md", str(grown))
    assert result.stdout.splitlines()[-1] == "user-notebook.md: 1 added, 0 updated, 14 unchanged."
    assert len(runs(cli)) == 15
    # The same from the report: a section written by hand among the report's.
    report = tmp_path / "experiments.md"
    cli("report", "-o", str(report))
    report.write_text(report.read_text() + "\n## Run 41: Warmup\n- **Final accuracy**: 91.7%\n")
    assert cli("import-md", str(report)).stdout.splitlines()[-1] == "experiments.md: 1 added, 0 updated, 15 unchanged."
    assert [r["label"] for r in runs(cli)][-2:] == ["40", "41"]


def test_hand_edit_flows_back(user_db, cli, tmp_path):
    report = tmp_path / "experiments.md"
    cli("report", "-o", str(report))
    text = report.read_text().replace("About the same as without smoothing.", "Within noise of Run 2; needs repeats.")
    report.write_text(text)
    result = cli("import-md", str(report))
    assert result.stdout.splitlines()[-1] == "experiments.md: 0 added, 1 updated, 13 unchanged."
    assert json.loads(cli("show", "#24", "--json").stdout)["analysis"] == "Within noise of Run 2; needs repeats."
    assert cli("report").stdout == text  # the edit, as written


def test_user_text_that_looks_like_structure_round_trips(cli, tmp_path):
    """Titles, notes and hypotheses holding newlines, run headings, fences and pipes come back as the same text."""
    from speedrun.tracking.store import Store
    from tests.test_report import trained

    store = Store.open(str(tmp_path / "a.db"))
    add_run(store, trained([60.0, 70.0], title="two\nlines ## Run 77: x", hypothesis="a | b\n## Run 78: y",
                          analysis="```\n## Run 79: z\n| Epoch | Acc |\n|---|---|\n| 1 | 99 |\n<!-- speedrun:computed -->"))
    store.close()
    report = tmp_path / "r.md"
    assert cli("report", "-o", str(report), db=tmp_path / "a.db").exit_code == 0
    assert cli("import-md", str(report), db=tmp_path / "b.db").exit_code == 0
    assert len(runs(cli, db=tmp_path / "b.db")) == 1
    run = json.loads(cli("show", "1", "--json", db=tmp_path / "b.db").stdout)
    assert run["title"] == "two\nlines ## Run 77: x"
    assert run["hypothesis"] == "a | b\n## Run 78: y"
    assert run["analysis"] == "```\n## Run 79: z\n| Epoch | Acc |\n|---|---|\n| 1 | 99 |\n<!-- speedrun:computed -->"
    assert [e["val_acc"] for e in run["epoch_metrics"]] == [60.0, 70.0]


# --------------------------------------------------------------------------- inputs with limits (issue 14)

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from tests.conftest import ROOT  # noqa: E402
from tests.helpers import add_run


def speedrun_process(args, tmp_path, **kwargs):
    """speedrun in a process of its own, with a deadline: a hang fails the test instead of stalling it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "speedrun", "--db", str(tmp_path / "p.db"), *args],
        capture_output=True, text=True, timeout=60, env=env, **kwargs,
    )


@pytest.mark.parametrize("command", ["import-log", "import-md"])
def test_a_fifo_without_writer_is_refused_at_once(tmp_path, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = speedrun_process([command, str(fifo)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: {fifo}: not a regular file (a FIFO, device or socket); to read a stream, pipe it to '-'"]


def test_a_device_is_refused_at_once(tmp_path):
    result = speedrun_process(["import-log", "/dev/zero"], tmp_path)
    assert result.returncode == 1 and "Error: /dev/zero: not a regular file" in result.stderr
    with open("/dev/zero", "rb") as zero:
        result = speedrun_process(["import-log", "-"], tmp_path, stdin=zero)
    assert result.returncode == 1 and result.stderr.strip() == "Error: standard input is a device, not a file or a pipe"


def test_closed_standard_input_is_one_error(tmp_path):
    result = speedrun_process(["import-log", "-"], tmp_path, stdin=None, preexec_fn=lambda: os.close(0))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: standard input is closed; give a file name, or pipe the text to '-'"]


def test_inputs_over_the_size_limit_are_refused(cli, tmp_path, monkeypatch):
    log = tmp_path / "big.txt"
    log.write_text((SEED_LOGS / "run15-bs64-t4.txt").read_text() * 3)
    monkeypatch.setenv("SPEEDRUN_MAX_INPUT", "1k")
    for args, where in (([str(log)], "big.txt"), (["-"], "standard input")):
        result = cli("import-log", *args, input=log.read_text() if args == ["-"] else None)
        assert result.exit_code == 1
        assert result.stderr.strip().endswith(
            "is larger than 1 kB, the most speedrun reads at once (set SPEEDRUN_MAX_INPUT, e.g. SPEEDRUN_MAX_INPUT=4G, to allow more)"
        ) and where in result.stderr
    assert runs(cli) == []
    monkeypatch.setenv("SPEEDRUN_MAX_INPUT", "10M")
    assert cli("import-log", str(log)).exit_code == 0
    monkeypatch.setenv("SPEEDRUN_MAX_INPUT", "lots")
    assert "SPEEDRUN_MAX_INPUT='lots' is not a size" in cli("import-log", str(log)).stderr


def test_a_directory_is_one_error(cli, tmp_path):
    result = cli("import-md", str(tmp_path))
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {tmp_path}: is a directory, not a file"


def test_note_and_tag_edit_an_imported_section_in_place(user_db, cli, tmp_path):
    """`note` and `tag` on an imported run write into its section; the rest stays as the user wrote it."""
    assert cli("note", "#24", "--analysis", "Within noise.\n## Run 99: not a run", "--title", "Smoothing 0.1").exit_code == 0
    assert cli("note", "3", "--description", "Written later").exit_code == 0
    assert cli("tag", "26b", "bn").exit_code == 0
    report = cli("report").stdout
    section = report[report.index("## Run 24: Smoothing 0.1\n") : report.index("## Run 24: Label smoothing 0.2")]
    assert "**Analysis**:\nWithin noise.\n\\## Run 99: not a run\n" in section
    assert "About the same as without smoothing." not in section
    assert "- **Configuration**: `LR=0.02`, `BATCH_SIZE=64`, `EPOCHS=10`, `LABEL_SMOOTHING=0.1`\n" in section
    assert "- **Description**: Written later\n" in report and "- **Tags**: bn\n" in report
    notes = tmp_path / "experiments.md"
    notes.write_text(report)
    assert cli("import-md", str(notes)).stdout == "experiments.md: 0 added, 0 updated, 14 unchanged.\n"
    assert json.loads(cli("show", "#24", "--json").stdout)["analysis"] == "Within noise.\n## Run 99: not a run"
    assert len(runs(cli)) == 14


def test_hand_edit_of_the_hand_written_notebook_flows_back(user_db, cli, tmp_path):
    """Without identities in the file, an edited section is known by its label in the same file."""
    edited = tmp_path / "user-notebook.md"
    edited.write_text(USER_NOTEBOOK.read_text().replace("- Worth retrying with longer training.", "- Retried in Run 30."))
    result = cli("import-md", str(edited))
    assert result.stdout.splitlines()[-1] == "user-notebook.md: 0 added, 1 updated, 13 unchanged."
    assert json.loads(cli("show", "4", "--json").stdout)["analysis"].endswith("- Retried in Run 30.")
    assert len(runs(cli)) == 14 and strip_computed(cli("report").stdout) == lines_of(edited)


def test_a_series_parent_is_no_run_but_the_error_says_how_to_name_it(cli, tmp_path):
    notebook = tmp_path / "series.md"
    notebook.write_text("# N\n\n## Run 7: Series\nintro\n\n### Run 7a: first\n- **Hardware**: T4\n"
                        "- **Configuration**: lr=0.1\n\n### Run 7b: second\n- **Hardware**: T4\n"
                        "- **Configuration**: lr=0.2\n")
    assert cli("import-md", str(notebook)).exit_code == 0
    result = cli("show", "7")
    assert result.exit_code == 1
    assert "7 is a series (runs 7a, 7b); name one of them, or the whole series as g:7" in " ".join(result.output.split())


# --------------------------------------------------------------------------- third hostile round (issue 24)

# What Notepad saves: a byte-order mark, CRLF line ends, and the first run right at the top.
BOM_NOTEBOOK = (
    "## Run 1: Baseline (Windows laptop, CPU)\r\n"
    "- **Hypothesis**: bs 128 fits in memory\r\n"
    "- **Configuration**: LR=0.1, BATCH_SIZE=128, EPOCHS=2\r\n"
    "\r\n"
    "```\r\n"
    "Epoch [1/2], Loss: 1.9000, Val Accuracy: 41.20%, Duration: 80.10s\r\n"
    "Epoch [2/2], Loss: 1.5000, Val Accuracy: 52.75%, Duration: 79.90s\r\n"
    "```\r\n"
    "\r\n"
    "## Run 2: bs 64\r\n"
    "- **Final accuracy**: 55.1%\r\n"
)


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_byte_order_mark_is_skipped_and_the_first_run_stays_a_run(cli, tmp_path, stdin):
    """A UTF-8 BOM made the first heading preamble text (D10). It is dropped on reading, so the
    report gives back the notebook as it reads, without the mark."""
    path = tmp_path / "experiments.md"
    path.write_bytes(b"\xef\xbb\xbf" + BOM_NOTEBOOK.encode())
    if stdin:
        result = cli("import-md", "-", input=path.read_bytes().decode("utf-8"))
    else:
        result = cli("import-md", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith(": 2 added, 0 updated, 0 unchanged.")
    rows = runs(cli)
    assert [(r["id"], r["final_val_acc"]) for r in rows] == [(1, 52.75), (2, 55.1)]
    assert json.loads(cli("show", "1", "--json").stdout)["title"] == "Baseline (Windows laptop, CPU)"
    report = cli("report").stdout
    assert "\ufeff" not in report
    assert strip_computed(report) == [line.rstrip() for line in BOM_NOTEBOOK.split("\n")][:-1]


def test_a_log_with_a_byte_order_mark_keeps_its_first_line(cli, tmp_path):
    log = tmp_path / "colab.txt"
    log.write_bytes("\ufeffEpoch [1/2], Loss: 1.9000, Val Accuracy: 41.20%\r\n"
                    "Epoch [2/2], Loss: 1.5000, Val Accuracy: 52.75%\r\n".encode())
    result = cli("import-log", str(log))
    assert result.exit_code == 0, result.output
    assert [r["epochs_completed"] for r in runs(cli)] == [2]


@pytest.fixture
def trained_uuid(db_path):
    """A run recorded by training (source "train") as run 1; its UUID."""
    from speedrun.tracking.store import Store
    from tests.test_report import trained

    store = Store.open(str(db_path))
    try:
        add_run(store, trained([60.0, 70.0], hypothesis="bs 64 is enough", analysis="fine"))
        return store.get_run(1).uuid
    finally:
        store.close()


def shown(cli, run: str = "#1") -> dict:
    """`show --json` of a run by its database number (a notebook section labelled 1 may also answer to 1)."""
    return json.loads(cli("show", run, "--json").stdout)


FORGED_EPOCH = "```\nEpoch [1/1], Loss: 0.0100, Val Accuracy: 99.99%, Duration: 1.00s\n```"


@pytest.mark.parametrize("heading, marker_run", [("42", "1"), ("1", "7"), ("7", "7"), ("1", "")],
                         ids=["label", "number", "both", "no-number"])
def test_a_forged_identity_marker_does_not_rewrite_a_trained_run(cli, tmp_path, trained_uuid, heading, marker_run):
    """`## Run 42` carrying run 1's marker and one epoch line replaced the trained run's accuracy,
    parameters, tags, analysis and hardware (D3). A marker whose number and UUID disagree with
    each other or with the heading makes a hand-written section: a new run."""
    before = shown(cli)
    number = f" run={marker_run}" if marker_run else ""
    notebook = tmp_path / "notes.md"
    notebook.write_text(
        "# My runs\n\nNotes from the weekend.\n\n"
        f"## Run {heading}\n<!-- speedrun:computed{number} uuid={trained_uuid} -->\n<!-- /speedrun:computed -->\n"
        "- **Hardware**: RTX 4090\n- **Tags**: forged\n- **Configuration**: LR=0.5, BATCH_SIZE=8\n\n"
        f"{FORGED_EPOCH}\n\n**Analysis**: rewritten\n"
    )
    result = cli("import-md", str(notebook))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "notes.md: 1 added, 0 updated, 0 unchanged (1 other runs in the database left alone)."
    assert shown(cli) == before
    new = [r for r in runs(cli) if r["id"] != 1]
    assert len(new) == 1 and new[0]["final_val_acc"] == 99.99 and new[0]["source"] == "notebook"
    assert shown(cli, f"#{new[0]['id']}")["uuid"] != trained_uuid


def test_a_trained_runs_own_marker_updates_only_its_texts_and_tags(cli, tmp_path, trained_uuid):
    """With the marker as a report writes it, a trained run takes the section's title, texts and
    tags; its epochs, parameters and hardware differ and are reported, not written."""
    before = shown(cli)
    notebook = tmp_path / "notes.md"
    notebook.write_text(
        f"## Run 1: bs 64, seed 0\n<!-- speedrun:computed run=1 uuid={trained_uuid} -->\n<!-- /speedrun:computed -->\n"
        "- **Hypothesis**: bs 64 is enough   \n- **Hardware**: RTX 4090\n- **Tags**: baseline, keeper\n"
        f"- **Configuration**: LR=0.5, BATCH_SIZE=8\n\n{FORGED_EPOCH}\n\n**Analysis**:\nbetter than I thought\n"
    )
    result = cli("import-md", str(notebook))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "notes.md: 0 added, 1 updated, 0 unchanged."
    warning = " ".join(result.stderr.split())
    assert "run 1 was recorded by training" in warning and "not written" in warning
    for what in ("epochs", "parameters (lr, batch_size, epochs)", "hardware"):
        assert what in warning
    after = shown(cli)
    assert (after["title"], after["analysis"], after["tags"]) == ("bs 64, seed 0", "better than I thought", ["baseline", "keeper"])
    unchanged = ("final_val_acc", "params", "hardware", "env", "epoch_metrics", "status", "hypothesis", "uuid", "source")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    again = cli("import-md", str(notebook))
    assert again.stdout.splitlines()[-1] == "notes.md: 0 added, 0 updated, 1 unchanged."
    assert "not written" in again.stderr  # still said: the file still differs


def test_a_report_edited_by_hand_updates_a_trained_run_without_complaint(cli, tmp_path, trained_uuid):
    report = tmp_path / "experiments.md"
    assert cli("report", "-o", str(report)).exit_code == 0
    text = report.read_text()
    assert "\nfine\n" in text
    report.write_text(text.replace("\nfine\n", "\nfine, but\nonly one seed\n").replace("- **Tags**: baseline", "- **Tags**: baseline, seed0"))
    result = cli("import-md", str(report))
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.output
    assert result.stdout.splitlines()[-1] == "experiments.md: 0 added, 1 updated, 0 unchanged."
    assert (shown(cli)["analysis"], shown(cli)["tags"]) == ("fine, but\nonly one seed", ["baseline", "seed0"])
    assert cli("report").stdout == report.read_text()
    again = cli("import-md", str(report))
    assert again.stdout == "experiments.md: 0 added, 0 updated, 1 unchanged.\n" and "Warning" not in again.stderr


def test_a_merged_trained_run_is_kept_as_recorded_too(cli, tmp_path):
    from speedrun.tracking.store import Store
    from tests.test_report import trained

    colab = Store.open(str(tmp_path / "colab.db"))
    add_run(colab, trained([55.0, 66.0], analysis="from colab"))
    uuid = colab.get_run(1).uuid
    colab.close()
    assert cli("merge", str(tmp_path / "colab.db")).exit_code == 0
    notebook = tmp_path / "notes.md"
    notebook.write_text(f"## Run 1: colab run\n<!-- speedrun:computed run=1 uuid={uuid} -->\n<!-- /speedrun:computed -->\n"
                        f"{FORGED_EPOCH}\n\n**Analysis**: merged, then annotated\n")
    result = cli("import-md", str(notebook))
    assert result.stdout.splitlines()[-1] == "notes.md: 0 added, 1 updated, 0 unchanged."
    assert "not written" in result.stderr
    after = shown(cli)
    assert (after["analysis"], after["final_val_acc"], after["epochs_completed"]) == ("merged, then annotated", 66.0, 2)


def test_the_users_logs_without_a_config_line_are_not_read_as_repeats(cli):
    # Runs 15-17 (batch 64, 32, 16) were logged without a Config line on "cuda": imported as they are,
    # compare called them "same settings", the report "Repeat of Run 1 (3 runs of this set-up)", and
    # their batch-size gap became the noise every later verdict on that GPU was measured against.
    for name in ("run15-bs64-t4.txt", "run16-bs32-t4.txt", "run17-bs16-t4.txt"):
        assert cli("import-log", str(SEED_LOGS / name)).exit_code == 0
    compared = cli("compare", "1", "2")
    assert "Run 2 vs Run 1: neither states its settings, so they are not known to be the same" in compared.stdout
    assert "from your 1 group of repeats" not in compared.stdout
    report = cli("report").stdout
    assert "Repeat of Run" not in report and "1, 2, 3 |" not in report
