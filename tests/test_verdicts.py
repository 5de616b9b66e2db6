"""Honest comparisons through the CLI: the right repeats, baselines, records and one verdict.

Every expected sentence below is worked out by hand in the comment above it:
the default spread of accuracy is 0.20 points, of training time 3% of the mean
and of a time to target 10%; a single-run gap of 3 spreads or more is "likely
real", 2 or less "within run-to-run noise" (speedrun.analysis.metrics).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from speedrun.analysis import groups
from speedrun.domain.records import RunRecord
from tests.conftest import SEED_LOGS
from tests.helpers import add_run
from tests.test_report import curve, section, trained

COLAB = "Google Colab, T4 GPU"
START = datetime(2025, 6, 1, 12, 0)


def noted(number, final, time, *, params, label=None, title=None, description=None, status="completed",
          group=None, minutes=None, hardware=COLAB) -> RunRecord:
    """A notebook run with a summary only (no per-epoch data), created in notebook order."""
    order = minutes if minutes is not None else (number or 0)
    return RunRecord(
        source="notebook", number=None if label else number, label=label, title=title or f"Run {label or number}",
        description=description, hardware=hardware, params=params, final_val_acc=final, train_time_s=time,
        status=status, group=group, created_at=START + timedelta(minutes=order),
    )


def resnet(**overrides):
    return {"model": "ResNet-9", "batch_size": 64, "lr": 0.02, "epochs": 10, **overrides}


def lines(cli, *args) -> list[str]:
    return [v["line"] for v in json.loads(cli(*args, "--json").stdout)["verdicts"]]


def versus(report: str, label: str) -> list[str]:
    """The baseline lines of a run's computed block: from "vs Run …" (or why there is none) on."""
    found = re.search(rf"^###? Run {re.escape(label)}:.*?(?=^###? |\Z)", report, re.M | re.S)
    assert found, f"no section for run {label}"
    block = re.search(r"<!-- speedrun:computed[^>]*-->\n(.*?)<!-- /speedrun:computed -->", found[0], re.S)[1]
    found = [line[2:] for line in block.splitlines()]
    starts = ("vs Run ", "First run ", "Not compared: ", "Repeat of ", "No baseline: ")
    return found[next(i for i, line in enumerate(found) if line.startswith(starts)):]


# --------------------------------------------------------------------------- single runs


def test_a_twelve_point_gap_between_single_runs_is_likely_real(store, cli):
    add_run(store, noted(8, 72.77, 300.0, params=resnet(model="SimpleCNN"), title="SimpleCNN baseline"))
    add_run(store, noted(19, 84.98, 450.0, params=resnet()))
    # 84.98 − 72.77 = 12.21 points at a mean of 78.875%: the test set errs by √(0.78875 · 0.21125 / 10,000)
    # = 0.41 points, with seed-to-seed 0.20 a run by 0.45, the difference of two single runs by 0.64:
    # 19 standard errors. 450 s is +50% of 300 s.
    expected = ("Final accuracy: Run 19 is ahead by 12.21 points: likely real (n=1 vs 1; 19× the standard error "
                "of the difference, 0.64 points; spread 0.45 points per run, a default: the binomial error of 10,000 "
                "test images at 78.88% (0.41) with seed-to-seed 0.20; no repeats on T4 measure it yet; "
                "confirm with repeats)")
    assert lines(cli, "compare", "8", "19")[0] == expected
    # The report never picks a run of another model as the baseline unless the text names it.
    assert versus(cli("report").stdout, "19") == ["First run of ResNet-9 with a final accuracy on T4"]


def test_a_six_hundredths_gap_is_within_noise_and_the_users_repeats_never_go_below_the_test_sets_error(store, cli):
    add_run(store, noted(1, 88.08, 400.0, params=resnet(augment="crop,flip")))
    add_run(store, noted(2, 88.14, 400.0, params=resnet(augment="crop,flip,jitter")))
    # Without repeats: at 88.11% the test set errs by 0.32 points, a run by √(0.32² + 0.2²) = 0.38, the
    # difference of two single runs by 0.54; 0.06 points is 0.1 of that.
    assert lines(cli, "compare", "1", "2")[0] == (
        "Final accuracy: Run 2 − Run 1 = 0.06 points: within run-to-run noise (n=1 vs 1; 0.1× the standard error "
        "of the difference, 0.54 points; spread 0.38 points per run, a default: the binomial error of 10,000 test "
        "images at 88.11% (0.32) with seed-to-seed 0.20; no repeats on T4 measure it yet)"
    )
    # Two groups of repeats of ResNet-9 on T4: 88.0/88.2/88.1 (sd 0.1) and 87.5/87.7 (sd 0.1414):
    # pooled sd √((2·0.01 + 1·0.02)/3) = 0.115, less than the test set's own 0.32: the spread is 0.32, the
    # difference's 0.46; 0.06 / 0.46 = 0.1.
    for i, final in enumerate([88.0, 88.2, 88.1]):
        add_run(store, noted(10 + i, final, 400.0, params=resnet(lr=0.05, seed=i)))
    for i, final in enumerate([87.5, 87.7]):
        add_run(store, noted(20 + i, final, 400.0, params=resnet(lr=0.1, seed=i)))
    assert lines(cli, "compare", "1", "2")[0] == (
        "Final accuracy: Run 2 − Run 1 = 0.06 points: within run-to-run noise (n=1 vs 1; 0.1× the standard error "
        "of the difference, 0.46 points; spread 0.32 points per run, the binomial error of 10,000 test images at "
        "88.11%, above the 0.12 points from your 2 groups of repeats of the same model, epochs and precision on T4)"
    )


# --------------------------------------------------------------------------- repeats


@pytest.fixture
def two_setups(store):
    """Runs 1-3: lr 0.02 (88.0, 88.2, 88.1); runs 4-6: lr 0.04 (88.6, 88.8, 88.7); all T4, 10 epochs."""
    for i, final in enumerate([88.0, 88.2, 88.1]):
        add_run(store, noted(1 + i, final, 400.0 + i, params=resnet(seed=i)))
    for i, final in enumerate([88.6, 88.8, 88.7]):
        add_run(store, noted(4 + i, final, 410.0 + i, params=resnet(lr=0.04, seed=i)))
    return store


# Means 88.1 and 88.7, sd 0.1 each: se = √(0.01/3 + 0.01/3) = 0.0816, t = 7.35 with 4 df,
# p = 0.0018 (scipy: 0.00183); 95% CI 0.6 ± 2.776 · 0.0816 = 0.37 to 0.83.
WELCH = ("Final accuracy: Run 4 and repeats is ahead by 0.60 points (95% CI 0.37 to 0.83, p=0.002, Welch's t-test; "
         "n=3 vs 3; spread 0.10 points per run, from the runs' own repeats)")


def test_a_gap_with_repeats_on_both_sides_gets_welchs_test_everywhere(two_setups, cli):
    assert lines(cli, "stats", "1", "4")[0] == WELCH
    # Run 4's baseline is the nearest earlier ResNet-9 run with the fewest differing settings that is not
    # its repeat: Run 3 (88.1), with its repeats; a set of repeats is named by its first run everywhere.
    report = cli("report").stdout
    mine = versus(report, "4")
    assert mine[0] == ("vs Run 3 (only lr differs): +0.50 points, +2% time — the nearest earlier ResNet-9 run on T4 "
                       "with the fewest differing settings")
    assert mine[1] == WELCH
    assert versus(report, "6")[1] == WELCH
    assert lines(cli, "stats", "2", "5")[0] == WELCH
    assert lines(cli, "compare", "2", "6", "--repeats")[0] == WELCH
    # p = 0.0018 < 0.01: the record rule confirms lr 0.04's record over lr 0.02.
    row = next(r for r in report.splitlines() if "| Best final accuracy |" in r)
    assert row.startswith("| T4 | 10 epochs | Best final accuracy | 88.80% | Run 5 |")
    assert row.endswith("| 88.70% ± 0.10 (n=3) | confirmed |")
    assert "- Repeat of Run 1 (3 runs of this set-up)" in section(report, "2")


def test_stats_shows_each_set_once(two_setups, cli):
    data = json.loads(cli("stats", "1", "2", "3", "--json").stdout)
    assert [s["name"] for s in data["sets"]] == ["Run 1 and repeats"]
    assert data["notes"] == ["Run 1 and repeats was asked for 3 times; shown once"]
    assert data["verdicts"] == []


def test_the_same_pair_gets_the_same_verdict_from_report_compare_and_stats(store, cli):
    add_run(store, noted(19, 90.30, 610.0, params=resnet(lr=0.03)))
    add_run(store, noted(20, 90.10, 600.0, params=resnet(lr=0.03, amp=False)))
    add_run(store, noted(21, 89.86, 426.0, params=resnet(lr=0.03, amp=True),
                        description="Same as Run 20 but with mixed precision."))
    from_report = versus(cli("report").stdout, "21")[1:]
    assert from_report == lines(cli, "compare", "20", "21") == lines(cli, "stats", "20", "21")


# --------------------------------------------------------------------------- baselines


def test_a_speed_experiment_names_its_baseline_and_gets_time_and_accuracy_deltas(store, cli):
    add_run(store, noted(19, 90.30, 610.0, params=resnet(lr=0.03)))
    add_run(store, noted(20, 90.10, 600.0, params=resnet(lr=0.03, amp=False)))
    add_run(store, noted(21, 89.86, 426.0, params=resnet(lr=0.03, amp=True),
                        description="Same as Run 20 but with mixed precision."))
    # Run 19 is the best earlier run, but Run 21's text names Run 20. 89.86 − 90.10 = −0.24 points; at 89.98%
    # the test set errs by 0.30, a run by √(0.30² + 0.2²) = 0.36, the difference by 0.51: 0.5 standard errors.
    # 426 / 600 = 0.71: −29% time; ln 0.71 = −0.342 against 3% · √2 = 4.2%: 8.1 standard errors.
    assert versus(cli("report").stdout, "21") == [
        "vs Run 20 (only amp differs): −0.24 points, −29% time — named in its text",
        "Final accuracy: Run 21 − Run 20 = −0.24 points: within run-to-run noise (n=1 vs 1; 0.5× the standard error "
        "of the difference, 0.51 points; spread 0.36 points per run, a default: the binomial error of 10,000 test "
        "images at 89.98% (0.30) with seed-to-seed 0.20; no repeats on T4 measure it yet)",
        "Training time: Run 21 is faster by 174.0 s, 0.71× the time: likely real (n=1 vs 1; 8.1× the standard "
        "error of the difference, 4.2%; spread 3.0% of the mean per run, a default: no repeats on T4 measure it "
        "yet; confirm with repeats)",
    ]


def test_a_20_epoch_run_does_not_hide_the_10_epoch_records(store, cli):
    add_run(store, noted(15, 85.69, 436.99, params=resnet()))
    add_run(store, noted(16, 87.18, 534.28, params=resnet(batch_size=32)))
    add_run(store, noted(18, 90.68, 884.88, params=resnet(epochs=20, cosine=True),
                        description="Building on Run 15's success, test longer training."))
    add_run(store, noted(20, 86.00, 440.0, params=resnet(lr=0.03)))
    report = cli("report").stdout
    rows = [r for r in report.splitlines() if "| Best final accuracy |" in r]
    assert rows[0].startswith("| T4 | 10 epochs | Best final accuracy | 87.18% | Run 16 |")
    assert rows[1].startswith("| T4 | 20 epochs | Best final accuracy | 90.68% | Run 18 |")
    # Run 20's baseline is the earlier run that differs in the fewest settings: Run 15 (only lr), not
    # Run 16 (batch size too) nor Run 18 (epochs and cosine): +0.31 points, 440 / 436.99: +1% time.
    assert versus(report, "20")[0] == ("vs Run 15 (only lr differs): +0.31 points, +1% time — "
                                         "the nearest earlier ResNet-9 run on T4 with the fewest differing settings")
    # Run 18 names Run 15; Run 18 added cosine, which Run 15 does not state: both differ (the old "only
    # epochs differs" credited cosine's gain to the epochs).
    assert versus(report, "18")[0] == ("vs Run 15 (epochs differs; cosine stated by one only): +4.99 points, +102% time — "
                                         "named in its text")


# --------------------------------------------------------------------------- runs that do not count


def test_an_incomplete_run_and_a_subset_run_do_not_win(store, cli):
    complete = trained([60.0, 80.0, 86.0, 85.5], title="complete")
    add_run(store, complete)  # run 1: 4 epochs, 160 s
    stopped = trained([60.0, 80.0, 88.0], title="stopped", params={**complete.params, "seed": 1})
    add_run(store, stopped)  # run 2: 3 of 4 epochs, recorded as completed
    add_run(store, trained([60.0, 81.0, 89.0, 89.5], seed=2, title="died", status="died"))  # run 3
    subset = trained([70.0, 86.0, 89.0, 90.0], title="subset", epochs=curve([70.0, 86.0, 89.0, 90.0], epoch_s=2.0))
    subset.params = {**subset.params, "subset": 500}
    add_run(store, subset)  # run 4: 500 images, 8 s
    report = cli("report").stdout
    board = [r for r in report.splitlines() if r.startswith("| T4 |")]
    assert board and all("| Run 1 |" in r for r in board)
    assert versus(report, "2")[-1] == "Not compared: stopped after 3 of 4 epochs, so its numbers do not stand for its set-up"
    assert versus(report, "3")[-1] == "Not compared: died, so its numbers do not stand for its set-up"
    assert versus(report, "4")[-1] == "Not compared: a 500-image subset, so its numbers do not stand for its set-up"
    assert "## Groups" not in report  # runs 2 and 3 share run 1's set-up, but do not count
    data = json.loads(cli("compare", "1", "4", "--json").stdout)
    assert [s["status"] for s in data["sides"]] == ["completed", "a 500-image subset"]
    time = next(m for m in data["metrics"] if m["key"] == "training_time")
    assert time["raw"] == [160.0, 8.0] and time["best"] == [0]  # the subset's 8 s gets no ★
    final = next(m for m in data["metrics"] if m["key"] == "final_accuracy")
    assert final["best"] == [0]


def machine(hardware_class, hardware=None):
    return SimpleNamespace(hardware_class=hardware_class, hardware=hardware, gpu_name=None, gpu_count=None,
                           cpu_model=None, device_type=None)


def test_repeats_need_the_same_set_up_and_completed_runs():
    def run(i, **kw):
        fields = dict(id=i, status="completed", epochs=[], epochs_completed=10, epochs_planned=10,
                      created_at=START, source_line=None, param_dict={"model": "resnet9", "seed": i, "epochs": 10},
                      environment=machine("T4"), unparsed_config=None)
        fields.update(kw)
        return SimpleNamespace(**fields)

    base = run(1)
    assert groups.repeat_key(base) == groups.repeat_key(run(2))  # only the seed differs
    assert groups.repeat_key(run(3, unparsed_config="BatchNorm2d after conv1/conv2")) != groups.repeat_key(base)
    assert groups.repeat_key(run(4, param_dict={"model": "ResNet9", "seed": 4, "epochs": 10})) == groups.repeat_key(base)
    assert groups.repeat_key(run(5, status="incomplete")) is None
    assert groups.repeat_key(run(6, epochs_completed=4)) is None
    assert groups.repeat_key(run(7, environment=machine("CPU"))) != groups.repeat_key(base)
    assert groups.repeat_key(run(8, environment=None)) is None  # unknown hardware: no one's repeat
    assert groups.repeat_key(run(9, param_dict={"model": "resnet9", "epochs": 10, "subset": 500})) is None
    assert groups.repeat_sets([base, run(2), run(5, status="incomplete"), run(6, epochs_completed=4)]) == [[base, run(2)]]


def test_runs_that_state_no_setting_or_no_gpu_model_are_no_ones_repeats():
    # Three of the user's logs have no Config line (batch 64, 32 and 16): their params were {"epochs": 10},
    # their hardware "GPU" ("Using device: cuda"), and they read as three repeats of "the same settings",
    # their 1.5-point gap as seed noise. Nothing says they trained alike, nor on one GPU.
    def run(i, params=None, env=None):
        return SimpleNamespace(id=i, status="completed", epochs=[], epochs_completed=10, epochs_planned=10,
                               created_at=START, source_line=None, unparsed_config=None,
                               param_dict=params or {"model": "resnet9", "batch_size": 64, "seed": i, "epochs": 10},
                               environment=env or machine("T4"))

    assert groups.repeat_key(run(1)) == groups.repeat_key(run(2)) is not None
    assert groups.repeat_key(run(3, params={"epochs": 10})) is None  # no setting stated
    assert groups.repeat_key(run(4, env=machine("GPU"))) is None  # a GPU nothing names
    laptop, other = machine("CPU", "AMD Ryzen 7 5700U (CPU)"), machine("CPU", "Intel Core i7-1185G7 (CPU)")
    assert groups.repeat_key(run(5, env=laptop)) == groups.repeat_key(run(6, env=laptop)) is not None
    assert groups.repeat_key(run(7, env=other)) != groups.repeat_key(run(5, env=laptop))  # two machines
    nothing = [run(8, params={"epochs": 10}), run(9, params={"epochs": 10})]
    assert groups.differences_text(groups.differences(nothing[:1], nothing[1:])) == (
        "neither states its settings, so they are not known to be the same")


def test_a_group_the_user_made_stays_as_made_with_a_warning(two_setups, cli):
    assert cli("group", "mixed", "1", "4").exit_code == 0
    report = cli("report").stdout
    # Members that differ in set-up are shown side by side: a mean ± std over them would pass for noise.
    assert "| T4 | 10 epochs | mixed | 1, 4 | 88.00% / 88.60% |" in report
    assert "- mixed: members differ in lr: not repeats of one set-up\n" in report
    stats = json.loads(cli("stats", "g:mixed", "--json").stdout)
    assert stats["sets"][0]["notes"] == ["members differ in lr: not repeats of one set-up"]
    assert "g:mixed: members differ in lr: not repeats of one set-up" in cli("compare", "g:mixed", "2").stdout


# --------------------------------------------------------------------------- compare without epochs


def test_compare_three_summary_only_runs_of_a_series(store, cli):
    base = {"model": "SimpleCNN", "epochs": 10}
    add_run(store, noted(None, 62.35, 95.2, label="26a", params={**base, "bn": False}, group="26", minutes=1))
    add_run(store, noted(None, 71.20, 101.7, label="26b", params={**base, "bn": True}, group="26", minutes=2))
    add_run(store, noted(None, 74.85, 103.1, label="26c", params={**base, "bn": True, "augment": "flip"},
                        group="26", minutes=3))
    result = cli("compare", "26a", "26b", "26c", "--format", "md")
    assert result.exit_code == 0, result.stderr
    # 26b − 26a: +8.85 points at 66.775%: binomial 0.47, a run 0.51, the difference 0.72: 12 standard errors.
    # 101.7 / 95.2 = 1.068: ln 1.068 = 0.066 against 3% · √2 = 4.2%: 1.6 standard errors, inconclusive; a
    # two-sided test at 0.05 with 80% power needs 5 runs per side.
    # 26c − 26a: +12.50 points at 68.6%: binomial 0.46, a run 0.51, the difference 0.71: 17 standard errors;
    # 103.1 / 95.2 = 1.083: ln 1.083 = 0.080, 1.9 standard errors; 4 runs per side.
    assert result.stdout == """\
| | Run 26a (T4) | Run 26b (T4) | Run 26c (T4) |
|---|---:|---:|---:|
| **bn** | False | True | True |
| augment | not stated | not stated | flip |
| _2 equal parameters hidden; --all to show_ |  |  |  |
| Hardware | Google Colab, T4 GPU | Google Colab, T4 GPU | Google Colab, T4 GPU |
| Status | completed | completed | completed |
| Epochs | 10 (not logged) | 10 (not logged) | 10 (not logged) |
| Final accuracy | 62.35% | 71.20% | **74.85%** |
| Peak accuracy | 62.35% | 71.20% | **74.85%** |
| Training time | **95.2 s** | 101.7 s | 103.1 s |

- Run 26b vs Run 26a: only bn differs
- Run 26c vs Run 26a: bn differs; augment stated by one only
- Final accuracy: Run 26b is ahead by 8.85 points: likely real (n=1 vs 1; 12× the standard error of the difference, 0.72 points; spread 0.51 points per run, a default: the binomial error of 10,000 test images at 66.78% (0.47) with seed-to-seed 0.20; no repeats on T4 measure it yet; confirm with repeats)
- Training time: Run 26b − Run 26a = 6.5 s, 1.07× the time: inconclusive (n=1 vs 1; 1.6× the standard error of the difference, 4.2%; spread 3.0% of the mean per run, a default: no repeats on T4 measure it yet; about 5 runs per side would settle it 80% of the time)
- Final accuracy: Run 26c is ahead by 12.50 points: likely real (n=1 vs 1; 17× the standard error of the difference, 0.71 points; spread 0.51 points per run, a default: the binomial error of 10,000 test images at 68.60% (0.46) with seed-to-seed 0.20; no repeats on T4 measure it yet; confirm with repeats)
- Training time: Run 26c − Run 26a = 7.9 s, 1.08× the time: inconclusive (n=1 vs 1; 1.9× the standard error of the difference, 4.2%; spread 3.0% of the mean per run, a default: no repeats on T4 measure it yet; about 4 runs per side would settle it 80% of the time)
"""


def test_compare_shows_curves_only_for_the_runs_that_have_them_and_labels_the_loss(store, cli):
    add_run(store, trained([60.0, 80.0, 86.0, 85.5]))
    add_run(store, noted(None, 84.0, 150.0, label="7a", params=resnet(epochs=4)))
    log = trained([61.0, 81.0, 86.5, 86.0], title="from a log")
    for e in log.epochs:
        e.val_loss = None  # console logs print the training loss only
    add_run(store, log)
    data = json.loads(cli("compare", "1", "7a", "3", "--json").stdout)
    assert data["curve"]["sides"] == [0, 2]
    assert data["curve"]["loss"] == "train loss"
    out = cli("compare", "1", "7a", "3").stdout
    assert "Val accuracy / train loss by epoch" in out
    assert "Val accuracy / val loss" not in out
    both = cli("compare", "1", "7a", "--format", "md").stdout
    assert "Val accuracy / val loss by epoch:" in both and "| 2 | 80.00 / 0.6000 |" in both


# --------------------------------------------------------------------------- options and intervals


@pytest.mark.parametrize(
    "args, message",
    [
        (["stats", "1", "--alpha", "2"], "--alpha must be between 0 and 1"),
        (["stats", "1", "--alpha", "0"], "--alpha must be between 0 and 1"),
        (["stats", "1", "--claim", "nan"], "--claim must be a percentage between 0 and 100"),
        (["stats", "1", "--claim", "150"], "--claim must be a percentage between 0 and 100"),
        (["stats", "1", "--target", "nan"], "--target must be a percentage between 0 and 100"),
        (["stats", "1", "--target", "-5"], "--target must be a percentage between 0 and 100"),
        (["compare", "1", "2", "--alpha", "1"], "--alpha must be between 0 and 1"),
        (["compare", "1", "2", "--target", "inf"], "--target must be a percentage between 0 and 100"),
        (["report", "--alpha", "nan"], "--alpha must be between 0 and 1"),
        (["compare", "1", "2", "x.png"], "x.png is not a run; write --plot x.png"),
    ],
)
def test_every_numeric_option_is_checked_with_one_clear_error(two_setups, cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_compare_plot_without_a_path_writes_one_named_by_the_runs(store, cli, tmp_path, monkeypatch):
    add_run(store, trained([60.0, 80.0]))
    add_run(store, trained([61.0, 82.0], seed=1))
    monkeypatch.chdir(tmp_path)
    result = cli("compare", "1", "2", "--plot")
    assert result.exit_code == 0, result.stderr
    assert "Wrote compare-1-2.png" in result.stderr
    assert (tmp_path / "compare-1-2.png").read_bytes().startswith(b"\x89PNG")
    result = cli("compare", "1", "2", "--plot", "mine.png")
    assert "Wrote mine.png" in result.stderr and (tmp_path / "mine.png").is_file()


def test_intervals_stay_inside_what_the_metric_can_be(store, cli):
    add_run(store, noted(1, 40.0, 10.0, params=resnet(seed=1)))
    add_run(store, noted(2, 90.0, 1000.0, params=resnet(seed=2)))
    data = json.loads(cli("stats", "1", "--json").stdout)
    rows = {m["key"]: m for m in data["sets"][0]["metrics"]}
    # Two runs 50 points apart: mean 65 ± 12.71 · 35.4 / √2 would run from −253 to 383.
    assert rows["final_accuracy"]["ci"] == "2 runs cannot bound it"
    assert rows["final_accuracy"]["ci_low"] is None and rows["final_accuracy"]["ci_high"] is None
    assert rows["training_time"]["ci"] == "2 runs cannot bound it"
    out = cli("stats", "1").stdout
    assert not re.search(r"−\d+\.\d to", out)


def test_times_to_a_target_take_their_spread_from_the_users_repeats(store, cli):
    # Three repeats reach 85% at epoch 2 after 80, 82 and 84 s: sd 2 s, 2.44% of their mean 82 s.
    for seed, epoch_s in enumerate([40.0, 41.0, 42.0]):
        add_run(store, trained([80.0, 86.0], seed=seed, epochs=curve([80.0, 86.0], epoch_s=epoch_s)))
    base = trained([80.0, 86.0]).params
    add_run(store, trained([86.0, 87.0], params={**base, "lr": 0.04}))  # run 4: 85% after 40 s
    add_run(store, trained([80.0, 86.0], params={**base, "lr": 0.08}))  # run 5: 85% after 80 s
    # 40 / 80 = 0.5: ln 2 = 0.69 against 2.44% · √2 = 3.45% for two single runs: 20 standard errors.
    assert lines(cli, "compare", "4", "5")[-1] == (
        "Time to 85%: Run 4 is faster by 40.0 s, 0.50× the time: likely real (n=1 vs 1; 20× the standard error of "
        "the difference, 3.4%; spread 2.4% of the mean per run, from your 1 group of repeats of the same model, "
        "epochs and precision on T4; confirm with repeats)"
    )


# --------------------------------------------------------------------------- what differs: one function


def test_report_compare_and_stats_say_the_same_thing_differs(store, cli):
    # Run 21 turned AMP on; Run 20 never states amp. Before, the report said "(no stated setting differs)"
    # while compare's table showed amp: the two paths disagreed. All say now that only one states it (Run 20
    # may have run without AMP, or with it and not said so: "only amp differs" claimed to know).
    add_run(store, noted(20, 90.10, 600.0, params=resnet(lr=0.03)))
    add_run(store, noted(21, 89.86, 426.0, params=resnet(lr=0.03, amp=True),
                        description="Same as Run 20 but with mixed precision."))
    assert versus(cli("report").stdout, "21")[0] == "vs Run 20 (amp stated by one only): −0.24 points, −29% time — named in its text"
    assert [d["line"] for d in json.loads(cli("compare", "20", "21", "--json").stdout)["differences"]] == [
        "Run 21 vs Run 20: amp stated by one only"]
    assert [d["line"] for d in json.loads(cli("stats", "20", "21", "--json").stdout)["differences"]] == [
        "Run 21 vs Run 20: amp stated by one only"]
    assert "- Run 21 vs Run 20: amp stated by one only" in cli("compare", "20", "21", "--format", "md").stdout
    assert "Run 21 vs Run 20: amp stated by one only" in cli("stats", "20", "21").stdout


def test_prose_that_changes_what_trains_makes_runs_no_repeats(store, cli):
    # Same parsed settings; the second run's text moved the data onto the device (1.7x faster). Before,
    # the two were repeats, and their 1.7x "noise" set the timing spread of every T4 run.
    add_run(store, noted(5, 88.0, 700.0, params=resnet(seed=0)))
    add_run(store, noted(6, 88.1, 410.0, params=resnet(seed=1),
                        description="Same set-up, but the data now lives on the device: no DataLoader."))
    data = json.loads(cli("stats", "5", "--json").stdout)
    assert [s["name"] for s in data["sets"]] == ["Run 5"]  # not "Run 5 and repeats"
    compared = json.loads(cli("compare", "5", "6", "--json").stdout)
    assert compared["differences"][0]["line"] == "Run 6 vs Run 5: data_on_device stated by one only"
    assert "## Groups" not in cli("report").stdout


def test_prose_settings_read_only_what_the_configuration_does_not_state():
    def run(text, **params):
        return SimpleNamespace(title=None, hypothesis=None, description=text, param_dict=params)

    assert groups.prose_settings(run("The data now lives on the GPU.")) == {"data_on_device": True}
    assert groups.prose_settings(run("Removed BatchNorm from every block.")) == {"bn": False}
    assert groups.prose_settings(run("Same, with BatchNorm after each conv.")) == {"bn": True}
    assert groups.prose_settings(run("A plain CNN without BatchNorm.", bn=True)) == {}  # stated: the table wins
    assert groups.prose_settings(run("Switched the model to torchvision's ResNet-18.")) == {"model": "ResNet-18"}
    assert groups.prose_settings(run("Without BatchNorm, then with BatchNorm.")) == {}  # both ways: neither
    assert groups.prose_settings(run("Tried lr 0.04 instead.")) == {}


# --------------------------------------------------------------------------- the table: one sentence everywhere

NOTEBOOK = Path(__file__).resolve().parent / "data" / "verdicts-notebook.md"
SINGLE = ("a default: the binomial error of 10,000 test images at {acc} ({binomial}) with seed-to-seed 0.20; "
          "no repeats on {hw} measure it yet")

# Each pair: (report section, its baseline line, the compare/stats references, the verdict lines), worked by hand.
TABLE = {
    # Run 4 (A100) names Run 2 (T4). Accuracy at 88.20%: binomial √(0.882 · 0.118 / 10,000) = 0.32, a run
    # √(0.32² + 0.2²) = 0.38, the difference 0.54; 0.20 is 0.4 of it. Time: 163.90 / 442.49 = 0.37 —
    # a ratio of machines, never "within noise".
    "hardware differs": ("4", "vs Run 2 (only hardware differs): +0.20 points, −63% time — named in its text",
                         ("2", "4"), [
        "Final accuracy: Run 4 − Run 2 = 0.20 points: within run-to-run noise (n=1 vs 1; 0.4× the standard error "
        "of the difference, 0.54 points; spread 0.38 points per run, "
        + SINGLE.format(acc="88.20%", binomial="0.32", hw="A100, T4") + ")",
        "Training time: Run 4 − Run 2 = −278.6 s, 0.37× the time: the hardware differs (Run 4 on A100, Run 2 on T4), so this is "
        "a ratio of machines, not a verdict on the set-up (n=1 vs 1)",
    ]),
    # The ResNet-18 pair: 0.40 points between single runs at 88.30%. The user's two groups of ResNet-18
    # repeats on T4 at 10 epochs spread by 0.10, less than the test set's binomial error √(0.883 · 0.117 /
    # 10,000) = 0.32: the spread is 0.32, the difference's 0.45, and 0.40 is 0.9 of it: noise, not "likely
    # real". Time: ln(443.0 / 442.49) = 0.0012 against the groups' 0.23% · √2 = 0.32%: 0.4.
    "single runs 0.4 points apart": ("14", "vs Run 2 (only lr differs): +0.40 points, +0% time — named in its text",
                                     ("2", "14"), [
        "Final accuracy: Run 14 − Run 2 = 0.40 points: within run-to-run noise (n=1 vs 1; 0.9× the standard error "
        "of the difference, 0.45 points; spread 0.32 points per run, the binomial error of 10,000 test images at "
        "88.30%, above the 0.10 points from your 2 groups of repeats of the same model, epochs and precision on T4)",
        "Training time: Run 14 − Run 2 = 0.5 s, 1.00× the time: within run-to-run noise (n=1 vs 1; 0.4× the "
        "standard error of the difference, 0.3%; spread 0.2% of the mean per run, from your 2 groups of repeats "
        "of the same model, epochs and precision on T4)",
    ]),
    # Runs 6-8 (88.6, 88.8, 88.7; 440-442 s) and 9-11 (87.9, 88.1, 88.0; 430-432 s), sd 0.1 and 1.0 s each:
    # se √(0.01/3 · 2) = 0.0816, t = 8.57 with 4 df, p = 0.001, 95% CI 0.7 ± 2.776 · 0.0816 = 0.47 to 0.93;
    # times 10 ± 2.776 · 0.816 = 7.7 to 12.3 s, t = 12.2, p < 0.001. Run 9's nearest earlier run with the
    # fewest differing settings is Run 8 (only lr).
    "repeats n=3 vs 3": ("9", "vs Run 8 (only lr differs): −0.80 points, −3% time — the nearest earlier resnet18 "
                              "run on T4 with the fewest differing settings", ("6", "9"), [
        "Final accuracy: Run 6 and repeats is ahead by 0.70 points (95% CI 0.47 to 0.93, p=0.001, Welch's t-test; "
        "n=3 vs 3; spread 0.10 points per run, from the runs' own repeats)",
        "Training time: Run 9 and repeats is faster by 10.0 s, 0.98× the time (95% CI 7.7 to 12.3, p<0.001, "
        "Welch's t-test; n=3 vs 3; spread 1.0 s per run, from the runs' own repeats)",
    ]),
    # A series: 12b's baseline is the series' previous member, 12a. At 86.65% the binomial error (0.34) is above
    # the 0.10 the user's two groups of ResNet-18 repeats on T4 measure, so it is the spread; the difference
    # 0.48: 0.90 points is 1.9 standard errors, between √2 and 2.1; 4 runs a side would settle it.
    # 451.3 / 450.1 = 1.003: the groups' timing spread is 1.0 / 441 and 1.0 / 431 s, 0.2%.
    "a series": ("12b", "vs Run 12a (only lr differs): +0.90 points, +0% time — the previous run of its series",
                 ("12a", "12b"), [
        "Final accuracy: Run 12b − Run 12a = 0.90 points: inconclusive (n=1 vs 1; 1.9× the standard error of the "
        "difference, 0.48 points; spread 0.34 points per run, the binomial error of 10,000 test images at 86.65%, "
        "above the 0.10 points from your 2 groups of repeats of the same model, epochs and precision on T4; about "
        "4 runs per side would settle it 80% of the time)",
        "Training time: Run 12b − Run 12a = 1.2 s, 1.00× the time: within run-to-run noise (n=1 vs 1; 0.8× the "
        "standard error of the difference, 0.3%; spread 0.2% of the mean per run, from your 2 groups of repeats "
        "of the same model, epochs and precision on T4)",
    ]),
}


@pytest.fixture
def notebook(cli):
    result = cli("import-md", str(NOTEBOOK))
    assert result.exit_code == 0, result.stderr
    return cli


@pytest.mark.parametrize("case", list(TABLE))
def test_each_pair_gets_one_sentence_from_report_compare_and_stats(notebook, case):
    label, baseline, refs, expected = TABLE[case]
    mine = versus(notebook("report").stdout, label)
    assert mine[0] == baseline
    assert mine[1:] == expected
    compare = [*refs, "--repeats"] if case == "repeats n=3 vs 3" else list(refs)
    assert lines(notebook, "compare", *compare)[:2] == expected
    assert lines(notebook, "stats", *refs)[:2] == expected


def test_subset_runs_are_judged_on_their_own_test_set_and_never_likely_real_without_repeats(store, cli):
    # Two 500-image trials at 13.0% and 19.5%: at 16.25% the 10,000 test images err by
    # √(0.1625 · 0.8375 / 10,000) = 0.37 points, the difference by 0.52: 6.5 points is 12 standard errors, yet
    # nothing measures how a 500-image training spreads from seed to seed (the old verdict: "likely real, 33×").
    add_run(store, noted(1, 13.0, 8.0, params=resnet(subset=500, lr=0.01)))
    add_run(store, noted(2, 19.5, 8.1, params=resnet(subset=500, lr=0.02)))
    expected = ("Final accuracy: Run 2 − Run 1 = 6.50 points: inconclusive (n=1 vs 1; 12× the standard error of the "
                "difference, 0.52 points; spread 0.37 points per run, the binomial error of 10,000 test images at "
                "16.25% alone: no repeats measure the seed-to-seed spread of a run that trained on a 500-image subset; "
                "only repeats can settle it)")
    assert lines(cli, "compare", "1", "2")[0] == lines(cli, "stats", "1", "2")[0] == expected


def test_a_resnet_run_is_never_compared_with_a_simplecnn_run_unless_named(notebook):
    report = notebook("report").stdout
    assert versus(report, "2") == ["First run of resnet18 with a final accuracy on T4"]
    assert versus(report, "5") == ["First run of resnet18 with a final accuracy on CPU"]
    # Run 3 differs from Run 2 only in what its prose says: the data now lives on the device.
    assert versus(report, "3")[0].startswith("vs Run 2 (data_on_device stated by one only): +0.04 points, −41% time")


def test_full_stops_after_values_are_no_part_of_them(notebook):
    shown = json.loads(notebook("show", "1", "--json").stdout)
    assert shown["params"]["epochs"] == 10


# --------------------------------------------------------------------------- identity


def test_labels_name_runs_in_every_command_after_an_import_into_a_database_with_runs(store, cli):
    # Three trained runs hold numbers 1-3; the notebook's Runs 1-3 are stored under other numbers and keep
    # their labels. Before, `show 2`, `compare 2 14` and `report --runs 2` silently took the trained Run #2.
    for seed in range(3):
        add_run(store, trained([60.0, 80.0], seed=seed, title=f"trained {seed}"))
    assert cli("import-md", str(NOTEBOOK)).exit_code == 0
    notebook_2 = next(r for r in json.loads(cli("list", "--json").stdout)
                      if r["label"] == "2" and r["title"].startswith("ResNet-18 baseline"))
    assert notebook_2["id"] > 3
    # A label two runs answer to is an error listing both; `#2` is the database number.
    for args in (("show", "2"), ("compare", "2", "14"), ("stats", "2"), ("report", "--runs", "2"), ("rm", "2", "--yes")):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert f"Run 2 is ambiguous: runs #2, #{notebook_2['id']} answer to it" in result.stderr, args
    assert json.loads(cli("show", "#2", "--json").stdout)["title"] == "trained 1"
    # A label only the notebook uses names the notebook's run wherever it is stored.
    assert json.loads(cli("show", "14", "--json").stdout)["title"].startswith("lr 0.03")
    assert json.loads(cli("compare", "#" + str(notebook_2["id"]), "14", "--json").stdout)["differences"][0]["line"] \
        == "Run 14 vs Run 2: only lr differs"
    assert re.findall(r"^## Run (\S+?):", cli("report", "--runs", "14").stdout, re.M) == ["14"]
    assert cli("rm", "#2", "--yes").exit_code == 0
    assert json.loads(cli("show", "2", "--json").stdout)["id"] == notebook_2["id"]  # now one run answers


@pytest.mark.parametrize("text, value", [
    ("10.", 10), ("True.", True), ("'True.'", True), ("0.02.", 0.02), ("resnet.", "resnet."), ("1.5", 1.5),
])
def test_a_sentences_full_stop_after_a_value_is_no_part_of_it(text, value):
    from speedrun.domain.params import parse_value

    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_a_remark_in_brackets_after_a_transform_is_not_its_arguments():
    from speedrun.domain.params import canonical_augment

    assert canonical_augment("RandomCrop(32, padding=4), RandomRotation(15) (No ColorJitter)") == "crop,randomrotation(15)"
    assert canonical_augment("RandomCrop(32, padding=4), TrivialAugmentWide (default)") == "crop,trivialaugmentwide"


# --------------------------------------------------------------------------- cost at scale


def _four_setups(count: int) -> list[RunRecord]:
    """`count` runs of four set-ups (lr × batch size) in turn, each a repeat of the one four before."""
    return [noted(i + 1, 88.0 + (i % 7) / 10, 400.0 + i % 5,
                  params=resnet(lr=(0.02, 0.04)[i % 2], batch_size=(64, 128)[i // 2 % 2], seed=i))
            for i in range(count)]


@pytest.mark.parametrize("count", [120, 480])
def test_a_reports_baselines_cost_per_distinct_set_up_not_per_pair_of_runs(store, monkeypatch, count):
    # A 10,000-run report took 160 s: every run measured its differences against the 200 earlier
    # runs before it, and ran a 2,000-resample bootstrap for a P(B > A) the report never prints.
    from speedrun.analysis.report import build_context, load_runs
    from speedrun.domain import stats

    store.add_runs(_four_setups(count))
    calls = {"differences": 0, "bootstrap": 0}
    differences, bootstrap = groups.differences, stats.probability_of_improvement

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(groups, "differences", counted("differences", differences))
    monkeypatch.setattr(stats, "probability_of_improvement", counted("bootstrap", bootstrap))
    context = build_context(load_runs(store))
    assert len(context["runs"]) == count
    # 4 set-ups: 12 ordered pairs of distinct ones, whatever the number of runs.
    assert calls == {"differences": 12, "bootstrap": 0}
    last = context["runs"][-1]["computed"]
    assert any(line.startswith("vs Run ") and "only lr differs" in line for line in last)


@pytest.mark.parametrize("window", [3, 8, 200])
def test_the_nearest_baseline_is_the_one_its_definition_names(store, monkeypatch, window):
    # The search for a baseline walked up to 200 earlier runs for every run (a second of a 10,000-run
    # report); it now looks up the nearest run of each set-up. Whatever the window, it must choose
    # what the plain definition chooses: among the `window` nearest earlier runs of the model and
    # class that are not the run's own repeats, the fewest differing settings, ties to the nearer.
    import random

    from speedrun.analysis import baselines
    from speedrun.analysis.report import load_runs

    rng = random.Random(7)
    records = []
    for i in range(90):
        params = resnet(lr=rng.choice((0.01, 0.02, 0.04)), batch_size=rng.choice((64, 128)),
                        amp=rng.choice((True, False)), seed=i)
        if i % 7 == 3:
            params = {}  # states nothing: no one's repeat, a candidate of its own
        elif i % 5 == 1:
            params = {key: params[key] for key in ("model", "lr")}
        records.append(noted(i + 1, 88.0 + rng.random(), 400.0 + i, params=params,
                             hardware=rng.choice((COLAB, "Lambda A100"))))
    store.add_runs(records)
    runs = load_runs(store)
    monkeypatch.setattr(baselines, "_NEAREST_CONSIDERED", window)
    chosen = baselines.Baselines(runs)
    ordered = sorted(runs, key=groups.order_key)

    def by_definition(run):
        kind = (groups.hardware_class_of(run), groups.recipe_of(run))
        own = chosen.index.key(run)
        earlier = [r for r in ordered[:ordered.index(run)] if r.final_val_acc is not None and groups.counts(r)
                   and (groups.hardware_class_of(r), groups.recipe_of(r)) == kind
                   and (own is None or chosen.index.key(r) != own)][-window:]
        nearest_first = sorted(enumerate(reversed(earlier)),
                               key=lambda pair: (len(groups.differences([pair[1]], [run])), pair[0]))
        return nearest_first[0][1] if nearest_first else None

    picked = [(run.id, getattr(chosen._nearest(run), "id", None)) for run in runs]
    assert picked == [(run.id, getattr(by_definition(run), "id", None)) for run in runs]
    assert sum(base is not None for _, base in picked) > 60


def test_the_noise_pool_reads_a_classs_latest_runs_first_and_says_so(store):
    # A verdict at 10,000 runs read every run of the hardware class to pool its spread (1.8 s); the pool
    # now reads the latest ones, and all of them only when those hold too few repeats of the kind compared.
    from speedrun.analysis import metrics

    times = {1: 400, 2: 404, 3: 400, 4: 402, 5: 404, 6: 410, 7: 412, 8: 414, 9: 420, 10: 430}
    lrs = {1: 0.01, 2: 0.01, 3: 0.02, 4: 0.02, 5: 0.02, 6: 0.03, 7: 0.03, 8: 0.03, 9: 0.3, 10: 0.4}
    for n, time in times.items():
        add_run(store, noted(n, 88.0, float(time), params=resnet(lr=lrs[n], seed=n)))
    nine, ten = store.get_runs(["9", "10"])

    def source(latest):
        pool = metrics.NoisePool.from_store(store, latest=latest)
        return metrics.verdict(metrics.TRAINING_TIME, [nine], [ten], names=("Run 9", "Run 10"), pool=pool).spread_source

    same = "from your {} groups of repeats of the same model, epochs and precision on T4"
    # Runs 3-10 hold two sets (3-5 and 6-8): 4 degrees of freedom, enough.
    assert source(8) == same.format(2) + " (among your latest 8 runs on T4)"
    # Runs 7-10 hold one pair (1 degree of freedom): too few, so every run is read, and nothing is left out.
    assert source(4) == same.format(3)
    assert source(None) == same.format(3)


def test_the_noise_pool_reads_its_own_hardware_class_not_every_name_that_contains_it(store):
    # The pool read "the latest runs on A10" with the user's text filter, which also finds every A100
    # ("a10" is in "A100"): newer A100 runs filled the 8 it read, no A10 repeat was among them, and the
    # spread fell back to reading every run; had some been among them, "your latest 8 runs on A10"
    # would have counted A100s. It now reads the class exactly.
    from speedrun.analysis import metrics

    times = {1: 400, 2: 404, 3: 400, 4: 402, 5: 404, 6: 410, 7: 412, 8: 414, 9: 420, 10: 430}
    lrs = {1: 0.01, 2: 0.01, 3: 0.02, 4: 0.02, 5: 0.02, 6: 0.03, 7: 0.03, 8: 0.03, 9: 0.3, 10: 0.4}
    for n, time in times.items():
        add_run(store, noted(n, 88.0, float(time), params=resnet(lr=lrs[n], seed=n), hardware="Lambda A10"))
    for n in range(11, 19):  # newer runs on A100s, each its own set-up
        add_run(store, noted(n, 90.0, 300.0, params=resnet(lr=n / 100), hardware="Lambda A100"))
    nine, ten = store.get_runs(["9", "10"])
    pool = metrics.NoisePool.from_store(store, latest=8)
    found = metrics.verdict(metrics.TRAINING_TIME, [nine], [ten], names=("Run 9", "Run 10"), pool=pool)
    assert found.spread_source == ("from your 2 groups of repeats of the same model, epochs and precision on A10 "
                                   "(among your latest 8 runs on A10)")
    assert [r.id for r in store.list_runs(hardware_class="A10")] == list(range(1, 11))
    assert len(store.list_runs(hardware="a10")) == 18  # the user's filter keeps finding any text that holds it


def test_a_runs_late_swing_is_its_seed_noise_where_it_exceeds_the_default():
    from speedrun.analysis import metrics

    def run(accuracies):
        return SimpleNamespace(epochs=[SimpleNamespace(epoch=i + 1, val_acc=a) for i, a in enumerate(accuracies)])

    # The user's batch-64 log: 83.17, 83.43, 85.72, 86.47, 85.69 at the end bend by 2.03, -1.54, -1.53.
    still_swinging = run([55.88, 64.28, 75.63, 73.42, 79.93, 83.17, 83.43, 85.72, 86.47, 85.69])
    assert metrics.late_swing(still_swinging) == pytest.approx(0.8403, abs=1e-4)
    levelling_off = run([60, 70, 76, 80, 83, 85, 86.5, 87.5, 88.0, 88.2])  # a curve that bends evenly: no swing
    assert metrics.late_swing(levelling_off) < 0.05
    assert metrics.late_swing(run([60.0, 80.0, 86.0, 85.5])) is None  # four epochs: all steep start, no tail


def test_single_runs_whose_accuracy_still_swings_are_not_called_apart_by_a_gap_inside_the_swing(cli):
    # Batch 64 vs 32 (the user's runs 15 and 16, 85.69% vs 87.18%): "likely real, 2.7x the standard error"
    # against 0.2 points of seed noise, while each run's accuracy moved by 1 to 2 points between its last
    # epochs. Measured in their own late swing (0.84 and 0.74), 1.49 points is within the noise.
    from tests.conftest import SEED_LOGS

    for name in ("run15-bs64-t4.txt", "run16-bs32-t4.txt"):
        assert cli("import-log", str(SEED_LOGS / name), "--hardware", "Colab T4").exit_code == 0
    final = lines(cli, "compare", "1", "2")[0]
    assert final.startswith("Final accuracy: Run 2 − Run 1 = 1.49 points: within run-to-run noise (n=1 vs 1; 1.2×")
    assert "with seed-to-seed 0.79, the swing of their accuracy over their last 5 epochs (more than the usual 0.20)" in final


def test_a_side_whose_own_runs_spread_more_than_the_default_is_measured_in_their_spread(store, cli):
    # `compare --where … --by batch_size`: the batch-64 side held a 10-epoch run (85.69%) and a 20-epoch
    # cosine run (90.68%), one degree of freedom, so its spread was not used and the gap to batch 16 was
    # measured in a default of 0.38 points: "likely real". Two runs of a side 5 points apart say more.
    add_run(store, noted(1, 85.69, 437.0, params=resnet(batch_size=64)))
    add_run(store, noted(2, 87.16, 690.0, params=resnet(batch_size=16)))
    add_run(store, noted(3, 90.68, 885.0, params=resnet(batch_size=64, epochs=20, cosine=True)))
    final = lines(cli, "compare", "--where", "hardware = T4", "--by", "batch_size")[0]
    assert final.startswith("Final accuracy: batch_size=64 − batch_size=16 = 1.03 points: within run-to-run noise")
    assert "spread 3.53 points per run, from the 2 runs of batch_size=64, more than the 0.38 points of a default" in final


def test_a_log_imported_twice_is_one_training_not_two_repeats(store, cli):
    # The user's notebook edited (a heading renamed) and imported again under another name: the batch-32
    # run came back as a second run with the same log, and the report grouped "16, 16 | … (n=2)" with
    # durations "± 0.0": one training counted as two runs that agree to the last digit (a spread of 0
    # that makes every later gap on this set-up look real). Every number is the same: counted once.
    from tests.test_report import log_run

    for label, title in (("16", "Batch 32"), ("16b", "Batch 32, the heading renamed")):
        run = log_run("run16-bs32-t4.txt", "Google Colab, T4 GPU")
        run.label, run.title, run.content_hash, run.params = label, title, None, {"batch_size": 32, "epochs": 10}
        add_run(store, run)
    report = cli("report").stdout
    assert ("- A copy of Run 16: the same per-epoch numbers to the last digit, so one training stored twice, "
            "counted once") in report
    assert "16, 16b" not in report and "(n=2)" not in report
    # Asked for by name, the copy says what it is: `stats` named "Run 16b" a set whose runs were "16",
    # and `compare` weighed the copy against its original, "within run-to-run noise (… 0.0×…)".
    data = json.loads(cli("stats", "16b", "16", "--json").stdout)
    assert data["notes"] == ["Run 16b is a copy of Run 16 (the same per-epoch numbers to the last digit, so one "
                             "training stored twice), so it stands as Run 16", "Run 16 was asked for 2 times; shown once"]
    assert [s["name"] for s in data["sets"]] == ["Run 16"] and data["verdicts"] == []
    data = json.loads(cli("compare", "16", "16b", "--json").stdout)
    assert data["verdicts"] == []
    assert data["differences"][0]["line"] == ("Run 16b vs Run 16: same settings; the same per-epoch numbers to the "
                                              "last digit, so one training stored twice: nothing to compare")
    assert "nothing to compare" in cli("compare", "16", "16b").stdout


# --------------------------------------------------------------------------- a second hostile review


def _five_seeds(start, final, time, **params):
    return [noted(start + i, final + (-0.1, 0.1, 0.0, 0.05, -0.05)[i], time + i, params=resnet(seed=start + i, **params))
            for i in range(5)]


def test_a_run_stopped_early_is_never_likely_real_nor_faster(store, cli):
    # Run 6 stopped at epoch 6 of 10. With the spread from the user's repeats (not the default), compare
    # said "Run 1 is ahead by 3.57 points: likely real" and "Run 6 is faster by 173.9 s: likely real":
    # its accuracy is an early epoch's and it is faster because it stopped; the report said "Not compared".
    store.add_runs(_five_seeds(1, 88.0, 400.0))
    store.add_runs([noted(6, 84.5, 240.0, params=resnet(seed=6), status="incomplete")])
    final, time = lines(cli, "compare", "1", "6")[:2]
    assert final.startswith("Final accuracy: Run 6 − Run 1 = −3.40 points: inconclusive (n=1 vs 1; ")
    assert final.endswith("; Run 6 is incomplete, so its numbers do not stand for its set-up)")
    assert time == ("Training time: Run 6 − Run 1 = −160.0 s, 0.60× the time: not a verdict: Run 6 is incomplete, "
                    "so its total time is not its set-up's (n=1 vs 1)")
    assert "likely real" not in cli("compare", "1", "6").stdout
    # A small gap to a stopped run offered "about 5 runs per side would settle it": more stopped runs
    # would settle nothing, so the caveat stands instead, on every path.
    store.add_runs([noted(7, 87.5, 240.0, params=resnet(seed=7, batch_size=128), status="incomplete")])
    final = lines(cli, "compare", "1", "7")[0]
    assert final.endswith("; Run 7 is incomplete, so its numbers do not stand for its set-up)")
    assert "would settle it" not in final


def test_a_time_against_a_run_on_no_stated_machine_is_no_verdict(store, cli):
    # A laptop CPU run against a run that states no machine: "Run 2 is faster by 333.5 s, 0.27× the time:
    # likely real", a ratio of machines read as a verdict on the set-up.
    add_run(store, noted(1, 70.3, 120.0, params=resnet(), hardware="AMD Ryzen 7 5700U (CPU)"))
    add_run(store, noted(2, 72.1, 453.5, params=resnet(lr=0.04), hardware=None))
    time = lines(cli, "compare", "1", "2")[1]
    assert time == ("Training time: Run 2 − Run 1 = 333.5 s, 3.78× the time: the hardware is not known to be the "
                    "same (Run 2 on unknown, Run 1 on CPU), so this is a ratio of machines, not a verdict on the set-up "
                    "(n=1 vs 1)")


def test_a_run_whose_settings_make_it_a_repeat_of_the_run_its_text_names_is_not_weighed_against_itself(store, cli):
    # "Same as Run 1 but with label smoothing", the smoothing never stated as a setting: Run 7 is one of
    # Run 1's repeats, and the report printed "Run 1 and repeats − Run 1 and repeats = 0.00 points (… p=1.00)".
    store.add_runs(_five_seeds(1, 88.0, 400.0))
    store.add_runs([noted(7, 88.9, 404.0, params=resnet(seed=7), description="Same as Run 1 but with label smoothing.")])
    assert versus(cli("report").stdout, "7") == [
        "vs Run 1 (same settings): +1.00 points, +1% time \u2014 named in its text",
        "Counted as a repeat of Run 1: its stated settings are the same, so its gap is part of their spread, not a "
        "verdict; a change its text names counts once it is stated as a setting",
    ]


def test_the_report_names_runs_that_share_a_label_apart(store, cli):
    # A notebook's second "Run 24": its baseline is the first, and the report read "vs Run 24 (…)" and
    # "Run 24 − Run 24 = −1.00 points" where compare and stats say "Run #32 (24) − Run #24".
    add_run(store, noted(24, 84.66, 440.0, params=resnet(), label="24"))
    add_run(store, noted(None, 83.66, 441.9, params=resnet(label_smoothing=0.2), label="24", minutes=30))
    found = versus(cli("report").stdout.split("## Run 24", 2)[2].join(["## Run 24", ""]), "24")
    assert found[0].startswith("vs Run #1 (24) (label_smoothing stated by one only): −1.00 points")
    assert found[1].startswith("Final accuracy: Run #2 (24) − Run #1 (24) = −1.00 points")


def test_a_copy_is_no_runner_up_to_its_original_whatever_settings_it_states(store, cli):
    # The notebook's Run 18 and its console log imported again with `--hardware "Colab T4"`: the log
    # states fewer settings, so they were two set-ups, and the report's records read "Run 18 − Run 23 =
    # 0.00 points: within run-to-run noise" while compare said "one training stored twice". The
    # per-epoch numbers alone make a copy.
    from tests.test_report import log_run

    first = log_run("run18-bs64-20ep-cosine-t4.txt", "Google Colab, T4 GPU")
    first.params, first.content_hash, first.source = {**first.params, "compile": False}, None, "notebook"
    add_run(store, first)
    assert cli("import-log", str(SEED_LOGS / "run18-bs64-20ep-cosine-t4.txt"), "--hardware", "Colab T4").exit_code == 0
    report = cli("report").stdout
    assert "Run 1 − Run 2" not in report and "Run 2 − Run 1" not in report
    assert "the only set-up on T4 at 20 epochs with a final accuracy" in report
    assert "- A copy of Run 1: the same per-epoch numbers to the last digit" in report


def test_a_time_to_a_target_is_never_judged_on_the_runs_that_reached_it_alone(store, cli):
    # Two of set a's five runs never reached 90%: `stats --target 90` gave "time to 90% │ 3 │ …" and a
    # Welch test of those 3 against b's 5, and compare starred a as the faster: survivors only, the runs
    # that never got there being the slowest of all.
    for seed, accs in enumerate([[80.0, 90.5, 90.6], [80.0, 90.2, 90.4], [80.0, 90.1, 90.3],
                                 [80.0, 89.5, 89.8], [80.0, 89.6, 89.7]]):
        add_run(store, trained(accs, seed=seed, group="a"))
    for seed, accs in enumerate([[80.0, 89.0, 90.4], [80.0, 89.05, 90.42], [80.0, 89.02, 90.38],
                                 [80.0, 89.1, 90.5], [80.0, 89.2, 90.3]]):
        run = trained(accs, seed=seed, group="b")
        run.params["lr"] = 0.04
        add_run(store, run)
    data = json.loads(cli("stats", "g:a", "g:b", "--target", "90", "--json").stdout)
    assert ("90% reached in 3 of 5 runs: the time to it is of those 3, and no verdict is given on it"
            in data["sets"][0]["notes"])
    assert not any(v["metric"] == "time_to_90" for v in data["verdicts"])
    compared = json.loads(cli("compare", "g:a", "g:b", "--target", "90", "--json").stdout)
    row = next(m for m in compared["metrics"] if m["name"] == "Time to 90%")
    assert row["best"] == [1]  # b, every run of which got there; a's mean is over its 3 survivors


def test_a_spread_measured_on_few_repeats_needs_students_t_to_call_a_gap_likely_real(store, cli):
    # Three repeats (2 degrees of freedom) against one run: the gap was 3.0 standard errors, "likely
    # real" at the normal 1.96 (or 3/√2 = 2.12); with the spread itself estimated from 3 runs the gap
    # over it is a t statistic, and t on 2 degrees of freedom needs 4.30 at α=0.05 (p=0.095 here).
    import scipy.stats as sps

    for seed, final in enumerate([88.0, 88.3, 88.6]):
        add_run(store, noted(seed + 1, final, 400.0 + seed, params=resnet(seed=seed)))
    add_run(store, noted(4, 89.4, 401.0, params=resnet(batch_size=128)))
    final = lines(cli, "compare", "1", "4", "--repeats")[0]
    # σ: the 3 runs spread by 0.30; the binomial error, 0.32, wins (so the runs' own
    # 0.30 is not used, but their 2 degrees of freedom still are); the gap 1.10 over 0.32·√(1/3 + 1).
    floor = 100 * (0.88575 * 0.11425 / 10_000) ** 0.5  # at the mean of the four runs, 88.575%
    se = floor * (1 / 3 + 1) ** 0.5
    assert 2.12 < 1.1 / se < sps.t.ppf(0.975, 2)
    assert final.startswith(f"Final accuracy: Run 4 − Run 1 and repeats = 1.10 points: inconclusive (n=3 for Run 1 "
                            f"and repeats, 1 for Run 4; {1.1 / se:.1f}× the standard error of the difference")


@pytest.mark.parametrize("description, warned", [
    ("Same as Run 1 but with label smoothing.", True),
    ("Building on Run 1: warmup of 2 epochs.", True),
    ("Same as Run 1, another seed.", False),
])
def test_compare_says_when_a_runs_text_names_a_change_its_settings_do_not_hold(store, cli, description, warned):
    # "Same as Run 1 but with label smoothing", the smoothing written nowhere else: compare said "same
    # settings" and weighed the gap as if the two were seeds of one set-up.
    add_run(store, noted(1, 88.0, 400.0, params=resnet(seed=1)))
    add_run(store, noted(2, 88.9, 404.0, params=resnet(seed=2), description=description))
    line = json.loads(cli("compare", "1", "2", "--json").stdout)["differences"][0]["line"]
    said = ("Run 2 vs Run 1: same settings; but Run 2's text says it changed something of Run 1: the settings "
            "cannot show that change")
    assert line == (said if warned else "Run 2 vs Run 1: same settings")


def test_an_accuracy_record_goes_to_the_best_set_up_not_the_luckiest_seed(store, cli):
    # Five seeds of batch 64 average 90.04% with one at 90.60%; five of batch 128 average 90.40% within
    # 0.04. The record read "Best final accuracy | 90.60% | Run 5", the maximum of five seeds.
    for i, final in enumerate([89.6, 89.7, 90.0, 90.3, 90.6]):
        add_run(store, noted(i + 1, final, 400.0 + i, params=resnet(seed=i)))
    for i, final in enumerate([90.35, 90.4, 90.45, 90.38, 90.42]):
        add_run(store, noted(i + 6, final, 400.0 + i, params=resnet(batch_size=128, seed=i)))
    report = cli("report").stdout
    row = next(line for line in report.splitlines() if "| Best final accuracy |" in line)
    assert "| 90.45% | Run 8 |" in row and "| 90.40% ± 0.04 (n=5) |" in row


def test_a_time_record_goes_to_a_set_up_whose_every_run_reached_the_target(store, cli):
    # Three of five seeds of set-up a reached 90% (at 80 s); all of b's did, later (120 s). The record
    # "Fastest to 90%" went to a's fastest seed, its group column "(n=3)": the two seeds that never got
    # there left out of a set-up's time.
    for seed, accs in enumerate([[80.0, 90.5, 90.6], [80.0, 90.2, 90.4], [80.0, 90.1, 90.3],
                                 [80.0, 89.5, 89.8], [80.0, 89.6, 89.7]]):
        add_run(store, trained(accs, seed=seed))
    for seed, accs in enumerate([[80.0, 89.0, 90.4], [80.0, 89.05, 90.42], [80.0, 89.02, 90.38],
                                 [80.0, 89.1, 90.5], [80.0, 89.2, 90.3]]):
        run = trained(accs, seed=seed)
        run.params["lr"] = 0.04
        add_run(store, run)
    report = cli("report", "--target", "90").stdout
    row = next(line for line in report.splitlines() if "| Fastest to 90% |" in line)
    assert "| 120.0 s (90.40% at epoch 3) | Run 6 |" in row and "| 120.0 s ± 0.0 (n=5) |" in row


def test_a_group_is_not_weighed_against_one_of_its_own_runs(store, cli):
    # `compare g:all 2` with run 2 in g:all: "Run 2 − g:all = 0.20 points: within run-to-run noise".
    for n, final in ((1, 88.0), (2, 88.2), (3, 88.1)):
        add_run(store, noted(n, final, 400.0 + n, params=resnet(seed=n), group="all"))
    data = json.loads(cli("compare", "g:all", "2", "--json").stdout)
    assert data["verdicts"] == []
    assert data["differences"][0]["line"].endswith(
        "; they share 1 run (2): a set is not weighed against its own runs, so there is nothing to compare")
    assert json.loads(cli("stats", "g:all", "2", "--json").stdout)["verdicts"] == []


def test_stats_names_a_copys_own_original_and_a_group_named_b_stays_text(store, cli):
    # Run 3 repeats Run 2's log under Run 1's set-up: stats said "a copy of Run 1" (the first of the
    # set it joined), the report "a copy of Run 2". And a group named b printed "g:b" as "g🅱".
    from tests.test_report import log_run

    for label in ("1", "2"):
        run = log_run(f"run1{5 if label == '1' else 6}-bs{64 if label == '1' else 32}-t4.txt", "Google Colab, T4 GPU")
        run.label, run.content_hash, run.params = label, None, {"batch_size": 64, "epochs": 10}
        add_run(store, run)
    copy = log_run("run16-bs32-t4.txt", "Google Colab, T4 GPU")
    copy.label, copy.content_hash, copy.params = "3", None, {"batch_size": 64, "epochs": 10}
    add_run(store, copy)
    notes = json.loads(cli("stats", "3", "--json").stdout)["notes"]
    assert notes[0].startswith("Run 3 is a copy of Run 2 (")
    # compare --repeats put the original's set in the copy's place without a word.
    add_run(store, noted(4, 85.0, 400.0, params=resnet(batch_size=128)))
    sides = json.loads(cli("compare", "3", "4", "--repeats", "--json").stdout)["sides"]
    assert sides[0]["warning"].startswith("Run 3 is a copy of Run 2 (")
    assert cli("group", "b", "1").exit_code == 0 and cli("group", "smile", "2").exit_code == 0
    out = cli("stats", "g:b", "g:smile").stdout
    assert "g:smile vs g:b" in out and "\U0001f171" not in out
