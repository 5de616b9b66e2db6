"""`group` and `stats` through the CLI: repeats, intervals, verdicts and record claims."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats as sps

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store
from tests.helpers import add_run

LR04 = [93.9, 94.1, 94.0, 94.2, 93.95]
LR08 = [94.6, 94.8, 94.7, 94.9, 94.65]


def run(final: float, lr: float, seed: int, **kw) -> RunRecord:
    return RunRecord(
        source="train",
        params={"model": "airbench94", "lr": lr, "seed": seed, "epochs": 2},
        env={"device_type": "cuda", "gpu_name": "NVIDIA A100-SXM4-40GB"},
        epochs=[
            EpochRecord(epoch=1, val_acc=final - 2, duration_s=1.5, elapsed_s=1.5),
            EpochRecord(epoch=2, val_acc=final, duration_s=1.5, elapsed_s=3.0 + seed / 100),
        ],
        **kw,
    )


@pytest.fixture
def repeats_db(db_path):
    store = Store.open(str(db_path))
    store.add_runs([run(v, 0.04, i) for i, v in enumerate(LR04)] + [run(v, 0.08, i) for i, v in enumerate(LR08)])
    add_run(store, run(94.3, 0.02, 0))  # a single run
    store.close()
    return db_path


def test_stats_of_a_run_covers_its_repeats(cli, repeats_db):
    data = json.loads(cli("stats", "1", "--json").stdout)
    entry = data["sets"][0]
    assert entry["runs"] == ["1", "2", "3", "4", "5"]
    final = entry["metrics"][0]
    assert final["metric"] == "final accuracy" and final["n"] == 5
    ref_mean = sum(LR04) / 5
    low, high = sps.t.interval(0.95, 4, loc=ref_mean, scale=sps.sem(LR04))
    assert final["mean"] == pytest.approx(ref_mean)
    assert final["std"] == pytest.approx(sps.tstd(LR04))
    assert (final["ci_low"], final["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert (final["min"], final["max"]) == (93.9, 94.2)


def test_stats_verdict_between_groups(cli, repeats_db):
    data = json.loads(cli("stats", "1", "6", "--json").stdout)
    verdict = next(v["line"] for v in data["verdicts"] if v["metric"] == "final_accuracy")
    from speedrun.domain.stats import format_p

    p = sps.ttest_ind(LR08, LR04, equal_var=False).pvalue
    diff = sum(LR08) / 5 - sum(LR04) / 5
    assert verdict.startswith(f"Final accuracy: Run 6 and repeats is ahead by {diff:.2f} points")
    assert format_p(p, 0.05) in verdict and "n=5 vs 5" in verdict


def test_stats_single_run_side_is_measured_in_the_other_sides_spread_never_below_the_test_sets_error(
        cli, repeats_db):
    out = cli("stats", "11", "1", "--json")
    # 94.03 − 94.30 = −0.27 points; the five lr=0.04 repeats spread by 0.12, less than the 10,000 test images'
    # own error at the six runs' mean (0.24): that is the spread, and the difference's √(1/5 + 1) times it.
    gap = sum(LR04) / 5 - 94.3
    spread = sps.tstd(LR04)
    mean = (sum(LR04) + 94.3) / 6
    floor = 100 * math.sqrt(mean / 100 * (1 - mean / 100) / 10_000)
    se = floor * math.sqrt(1 / 5 + 1)
    assert spread < floor and abs(gap) / se < math.sqrt(2)
    line = json.loads(out.stdout)["verdicts"][0]["line"]
    assert line == (f"Final accuracy: Run 1 and repeats − Run 11 = −{abs(gap):.2f} points: within run-to-run noise "
                    f"(n=1 for Run 11, 5 for Run 1 and repeats; {abs(gap) / se:.1f}× the standard error of the difference, {se:.2f} points; "
                    f"spread {floor:.2f} points per run, the binomial error of 10,000 test images at {mean:.2f}%, "
                    f"above the {spread:.2f} points from the 5 runs of Run 1 and repeats)")


def test_record_claim(cli, repeats_db):
    data = json.loads(cli("stats", "6", "--claim", "94.0", "--json").stdout)
    entry = data["sets"][0]
    p = sps.ttest_1samp(LR08, 94.0, alternative="greater").pvalue
    assert entry["claim_p_value"] == pytest.approx(p)
    assert p < 0.01 and entry["claim_holds"] is True
    weak = json.loads(cli("stats", "1", "--claim", "94.0", "--json").stdout)["sets"][0]
    assert weak["claim_holds"] is False and "not yet a record" in weak["claim"]


def test_group_by_hand_and_by_name(cli, repeats_db):
    assert cli("group", "mixed", "1", "6").exit_code == 0
    data = json.loads(cli("stats", "g:mixed", "--json").stdout)
    assert data["sets"][0]["runs"] == ["1", "6"]
    assert json.loads(cli("show", "1", "--json").stdout)["group"] == "mixed"
    assert cli("group", "mixed", "1", "--clear").exit_code == 0
    assert json.loads(cli("show", "1", "--json").stdout)["group"] is None


def test_stats_time_to_target_and_table(cli, repeats_db):
    out = cli("stats", "1", "--target", "93").stdout
    assert "time to 93%" in out and "final accuracy" in out


def test_stats_errors(cli, repeats_db):
    assert cli("stats", "99").exit_code == 1
    assert cli("stats", "g:nothing").exit_code == 1
