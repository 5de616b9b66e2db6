"""`speedrun compare`: runs side by side with an honest verdict (issue: report and compare)."""

from __future__ import annotations

import json

import pytest

from speedrun.domain.records import EpochRecord, RunRecord
from tests.helpers import add_run
from tests.test_report import trained


@pytest.fixture
def pair(store):
    """Run 1: 85.50% final, 85% at 120 s. Run 2: lr 0.04, 86.25% final, 85% at 80 s."""
    add_run(store, trained([60.0, 80.0, 86.0, 85.5]))
    add_run(store,
        trained([70.0, 85.0, 86.0, 86.25], params={"model": "resnet9", "lr": 0.04, "batch_size": 64, "epochs": 4,
                                                 "cosine": True, "seed": 0})
    )
    return store


def test_json_holds_the_aligned_data(pair, cli):
    result = cli("compare", "1", "2", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["name"] for s in data["sides"]] == ["Run 1", "Run 2"]
    assert data["params"]["differing"] == [{"name": "lr", "values": ["0.02", "0.04"]}]
    assert {p["name"] for p in data["params"]["equal"]} == {"model", "batch_size", "epochs", "cosine", "seed"}
    final = next(m for m in data["metrics"] if m["name"] == "Final accuracy")
    assert final["values"] == ["85.50%", "86.25%"] and final["best"] == [1]
    to85 = next(m for m in data["metrics"] if m["name"] == "Time to 85%")
    assert to85["raw"] == [120.0, 80.0] and to85["best"] == [1]
    rows = data["curve"]["rows"]
    assert [r["at"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["val_acc"] == [80.0, 85.0] and rows[1]["diff"] == [0.0, 5.0]
    assert rows[3]["diff"][1] == pytest.approx(0.75)


def test_single_runs_are_judged_by_the_gap_in_run_to_run_spreads(pair, cli):
    data = json.loads(cli("compare", "1", "2", "--json").stdout)
    assert [v["metric"] for v in data["verdicts"]] == ["final_accuracy", "training_time", "time_to_85"]
    final, time, to85 = (v["line"] for v in data["verdicts"])
    # 86.25 − 85.50 = 0.75 points at 85.875%: the 10,000 test images err by √(0.85875 · 0.14125 / 10,000)
    # = 0.35 points, a run by √(0.35² + 0.2²) = 0.40, the difference of two single runs by 0.57: 1.3
    # standard errors, under √2: noise (the old "likely real" measured it in 0.20 alone).
    assert final == ("Final accuracy: Run 2 − Run 1 = 0.75 points: within run-to-run noise (n=1 vs 1; 1.3× the "
                     "standard error of the difference, 0.57 points; spread 0.40 points per run, a default: the "
                     "binomial error of 10,000 test images at 85.88% (0.35) with seed-to-seed 0.20; no repeats on "
                     "T4 measure it yet)")
    # Both trained 4 × 40 s: a ratio of 1.00.
    assert time == ("Training time: Run 2 − Run 1 = 0.0 s, 1.00× the time: within run-to-run noise (n=1 vs 1; "
                    "0.0× the standard error of the difference, 4.2%; spread 3.0% of the mean per run, a default: "
                    "no repeats on T4 measure it yet)")
    # 85% after 120 s (epoch 3) vs 80 s (epoch 2): ln 1.5 = 0.405 against 10% · √2 = 14.1%: 2.9.
    assert to85 == ("Time to 85%: Run 2 is faster by 40.0 s, 0.67× the time: likely real (n=1 vs 1; 2.9× the "
                    "standard error of the difference, 14.1%; spread 10.0% of the mean per run, a default: no "
                    "repeats on T4 measure it yet; confirm with repeats)")
    assert [v["winner_name"] for v in data["verdicts"]] == [None, None, "Run 2"]


def test_terminal_table_hides_equal_params_and_marks_the_best(pair, cli):
    out = cli("compare", "1", "2").stdout
    assert "5 equal parameters hidden; --all to show" in out
    assert "86.25% ★" in out and "85.50% ★" not in out
    assert "▁" in out  # sparkline of the val-accuracy curves
    assert "likely real" in out
    shown = cli("compare", "1", "2", "--all").stdout
    assert "equal parameters hidden" not in shown and "resnet9" in shown


def test_markdown_table(pair, cli):
    out = cli("compare", "1", "2", "--format", "md").stdout
    assert out.startswith("| | Run 1 (T4) | Run 2 (T4) |\n|---|---:|---:|\n| **lr** | 0.02 | 0.04 |\n")
    assert "| Final accuracy | 85.50% | **86.25%** |" in out
    assert "| 2 | 80.00 / 0.6000 | 85.00 (+5.00) / 0.6000 |" in out


def test_groups_compare_means_and_declare_a_clear_winner(store, cli):
    for seed, final in enumerate([93.0, 93.1, 92.9, 93.05]):
        add_run(store, trained([80.0, 90.0, final], seed=seed, group="baseline"))
    for seed, final in enumerate([94.0, 94.1, 93.9, 94.05]):
        add_run(store, trained([80.0, 91.0, final], seed=seed, group="tricks"))
    data = json.loads(cli("compare", "g:baseline", "g:tricks", "--json").stdout)
    assert [s["runs"] for s in data["sides"]] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    final = data["verdicts"][0]
    assert final["kind"] == "significant" and final["winner_name"] == "g:tricks"
    assert final["line"].startswith("Final accuracy: g:tricks is ahead by 1.00 points")
    # Both groups vary the seed the same way, so it is not a difference between them.
    assert {"name": "seed", "value": "varies (0, 1, 2, 3)"} in data["params"]["equal"]
    metrics = {m["name"]: m["values"] for m in data["metrics"]}
    assert metrics["Final accuracy"][0].startswith("93.01% ± ") and metrics["Final accuracy"][0].endswith("(95% CI, n=4)")


def test_identical_results_are_not_shown_to_differ(store, cli):
    for seed, final in enumerate([93.0, 93.2, 92.9]):
        add_run(store, trained([80.0, final], seed=seed, group="a"))
    for seed, final in enumerate([93.1, 92.95, 93.05]):
        add_run(store, trained([80.0, final], seed=seed, group="b"))
    data = json.loads(cli("compare", "g:a", "g:b", "--json", "--target", "80").stdout)
    assert data["verdicts"][0]["kind"] == "noise"
    # Not significant, which is not shown to be noise: the interval is said, and both ends of what it allows.
    assert data["verdicts"][0]["line"].endswith("not shown to be real: the interval holds both no difference and "
                                                "\u22120.32 points")


def test_by_time_takes_the_nearest_earlier_epoch(pair, cli):
    data = json.loads(cli("compare", "1", "2", "--by", "time", "--json").stdout)
    assert data["curve"]["key"] == "elapsed_s"
    rows = {r["at"]: r["val_acc"] for r in data["curve"]["rows"]}
    # Both runs log every 40 s, so every time point has both.
    assert rows[80.0] == [80.0, 85.0]
    slow = trained([50.0, 70.0], title="slow")
    slow.epochs = [EpochRecord(epoch=1, val_acc=50.0, elapsed_s=100.0), EpochRecord(epoch=2, val_acc=70.0, elapsed_s=200.0)]
    add_run(pair, slow)
    data = json.loads(cli("compare", "1", "3", "--by", "time", "--json").stdout)
    rows = {r["at"]: r["val_acc"] for r in data["curve"]["rows"]}
    assert rows[40.0] == [60.0, None]
    assert rows[120.0] == [86.0, 50.0]  # run 3 at 120 s still shows its 100 s epoch
    assert rows[200.0] == [85.5, 70.0]


def test_plot_file_is_written(pair, cli, tmp_path):
    png = tmp_path / "curves.png"
    assert cli("compare", "1", "2", "--plot", str(png)).exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, message",
    [
        (["1"], "needs at least two runs"),
        (["1", "99"], "no run '99'"),
        (["1", "g:nobody"], "no runs in group 'nobody'"),
        (["1", "1"], "Run 1 is given twice"),
    ],
)
def test_errors_are_one_clear_line(pair, cli, args, message):
    add_run(pair, RunRecord(source="notebook", title="summary only", final_val_acc=70.0))
    result = cli("compare", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_choice_outside_the_list_is_a_usage_error_naming_the_choices(pair, cli):
    result = cli("compare", "1", "2", "--by", "step")
    assert result.exit_code == 2
    assert "'step' is not one of 'epoch', 'time'" in result.stderr


@pytest.mark.parametrize("command", ["report", "compare"])
def test_commands_have_help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "--format" in result.stdout and "--target" in result.stdout


def test_two_runs_that_share_a_label_are_compared_by_their_numbers(store, cli):
    # A notebook with a second "Run 16" section (batch 16 where the first had 32) stores it as run 2,
    # labelled 16. `compare '#1' '#2'` said "Error: Run 16 is given twice" and `stats '#1' '#2'` showed
    # two sets both named "Run 16": the names now carry the numbers where labels collide.
    from tests.test_verdicts import noted

    for batch, final in ((32, 87.18), (16, 87.16)):
        add_run(store, noted(None, final, 534.0, label="16",
                             params={"model": "ResNet-9", "batch_size": batch, "lr": 0.02, "epochs": 10}))
    assert [r.label for r in store.list_runs()] == ["16", "16"]
    compared = cli("compare", "#1", "#2", "--json")
    assert compared.exit_code == 0, compared.output
    assert [side["name"] for side in json.loads(compared.stdout)["sides"]] == ["Run #1 (16)", "Run #2 (16)"]
    stats = json.loads(cli("stats", "#1", "#2", "--json").stdout)
    assert [s["name"] for s in stats["sets"]] == ["Run #1 (16)", "Run #2 (16)"]
    assert "is given twice" in cli("compare", "#1", "#1").output  # the same run twice still is


def test_each_sparkline_gives_its_own_range(pair, cli):
    # Both lines ended "60.0–86.2%", the shared scale's range, as if each run had spanned it.
    out = cli("compare", "1", "2").stdout
    assert "60.0–86.0%" in out and "70.0–86.2%" in out
