"""Tests for speedrun.domain.stats, and for the verdict wording of speedrun.analysis.metrics.

Every number is checked against a reference computed independently of the
module: hand-worked arithmetic for small samples, scipy.stats' own tests
(ttest_ind with equal_var=False, ttest_1samp with a one-sided alternative,
t.interval) and, for sample sizes, Cohen's power tables and an exact
noncentral-t power calculation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from types import SimpleNamespace

from speedrun.errors import InsufficientData, SpeedrunError
from speedrun.analysis.groups import config_key, group_runs
from speedrun.analysis.metrics import FINAL_ACCURACY, TRAINING_TIME, Metric, Verdict, binomial_error, verdict
from speedrun.domain.stats import (
    Description,
    describe,
    fmt_mean_ci,
    format_p,
    required_runs,
    target_test,
    welch,
)

MINUS = "\u2212"

# Two groups of 5 seeds, spread ~0.13 points, like real CIFAR-10 repeats.
BASE = [88.02, 88.21, 88.10, 87.93, 88.15]
CLOSE = [88.10, 88.31, 88.02, 88.18, 88.25]  # +0.09 points: inside noise
BETTER = [88.51, 88.66, 88.49, 88.42, 88.60]  # +0.45 points: clearly ahead


# --------------------------------------------------------------------------- #
# describe
# --------------------------------------------------------------------------- #


def test_describe_hand_worked():
    d = describe([1, 2, 3, 4, 5])
    # mean 3; sum of squares 4+1+0+1+4 = 10 -> var 10/4 = 2.5
    assert d.n == 5
    assert d.mean == 3
    assert d.std == pytest.approx(math.sqrt(2.5))
    # t_{0.975, 4} = 2.7764451051977987 (table value); half = t * s / sqrt(n)
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert d.ci_low == pytest.approx(3 - half)
    assert d.ci_high == pytest.approx(3 + half)
    assert d.ci_half_width == pytest.approx(half)
    assert (d.min, d.max) == (1, 5)
    assert d.confidence == 0.95


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_describe_matches_scipy_interval(confidence):
    d = describe(BETTER, confidence=confidence)
    x = np.array(BETTER)
    ref = sps.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert d.mean == pytest.approx(x.mean())
    assert d.std == pytest.approx(x.std(ddof=1))
    assert (d.ci_low, d.ci_high) == pytest.approx(ref)


def test_describe_ignores_none_and_nan():
    d = describe([None, 2.0, float("nan"), 4.0, None])
    assert d.n == 2
    assert d.mean == 3
    assert d.std == pytest.approx(math.sqrt(2))


def test_describe_single_value_has_no_spread():
    d = describe([94.05])
    assert d == Description(1, 94.05, None, None, None, 94.05, 94.05, 0.95)
    assert d.ci_half_width is None


def test_describe_empty():
    d = describe([None])
    assert d.n == 0
    assert d.mean is d.std is d.ci_low is d.ci_high is d.min is d.max is None


def test_describe_identical_values_zero_std_exactly():
    # 88.1 * 3 / 3 is not exactly 88.1 in floats; the module must not invent spread.
    d = describe([88.1, 88.1, 88.1])
    assert d.mean == 88.1
    assert d.std == 0.0
    assert d.ci_low == d.ci_high == 88.1


def test_describe_rejects_infinity_and_bad_confidence():
    with pytest.raises(ValueError):
        describe([1.0, float("inf")])
    with pytest.raises(ValueError):
        describe([1.0, 2.0], confidence=1.0)


def test_describe_is_frozen():
    d = describe([1, 2])
    with pytest.raises(AttributeError):
        d.mean = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- #
# formatting
# --------------------------------------------------------------------------- #


def test_fmt_mean_ci():
    d = describe([1, 2, 3, 4, 5])
    assert fmt_mean_ci(d) == "3.00 \u00b1 1.96 (n=5)"
    assert fmt_mean_ci(d, digits=3) == "3.000 \u00b1 1.963 (n=5)"
    assert fmt_mean_ci(describe([94.05])) == "94.05 (n=1)"
    assert fmt_mean_ci(describe([])) == "\u2014 (n=0)"
    assert fmt_mean_ci(describe([88.1, 88.1])) == "88.10 \u00b1 0.00 (n=2)"


@pytest.mark.parametrize(
    "p, alpha, text",
    [
        (0.58, None, "p=0.58"),
        (0.0023, None, "p=0.002"),
        (0.0004, 0.05, "p<0.001"),
        (0.0, 0.05, "p<0.001"),
        (1.0, 0.05, "p=1.00"),
        # Rounding must not cross the threshold in either direction.
        (0.0498, 0.05, "p=0.0498"),
        (0.0502, 0.05, "p=0.0502"),
        (0.0098, 0.01, "p=0.0098"),
        (0.0104, 0.01, "p=0.0104"),
    ],
)
def test_format_p(p, alpha, text):
    assert format_p(p, alpha) == text


# --------------------------------------------------------------------------- #
# required_runs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("d, n", [(0.2, 394), (0.5, 64), (0.8, 26), (1.0, 17)])
def test_required_runs_matches_cohen_table(d, n):
    # Cohen (1988), two-sided alpha=0.05, power 0.8, n per group.
    assert required_runs(d, 1.0) == n
    assert required_runs(-d * 0.2, 0.2) == n  # scale- and sign-free


def _exact_power(n: int, delta: float, sigma: float, alpha: float = 0.05) -> float:
    df = 2 * n - 2
    nc = delta / (sigma * math.sqrt(2 / n))
    crit = sps.t.ppf(1 - alpha / 2, df)
    return sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc)


@pytest.mark.parametrize("delta", [0.06, 0.1, 0.25, 0.4])
def test_required_runs_reaches_power_exactly(delta):
    n = required_runs(delta, 0.2)
    assert n is not None
    assert _exact_power(n, delta, 0.2) >= 0.8
    assert _exact_power(n - 1, delta, 0.2) < 0.8


def test_required_runs_normal_formula_is_lower_bound():
    # n = ceil(2 * ((z_.975 + z_.8) * sigma / delta)^2) = ceil(174.37) = 175 for 0.06/0.2
    z = 1.959963984540054 + 0.8416212335729143
    normal = math.ceil(2 * (z * 0.2 / 0.06) ** 2)
    assert normal == 175
    assert required_runs(0.06, 0.2) == 176


def test_required_runs_edges():
    assert required_runs(0.0, 0.2) is None
    assert required_runs(5.0, 0.2) == 2  # never fewer than a t-test can use
    with pytest.raises(ValueError):
        required_runs(0.1, 0.0)
    with pytest.raises(ValueError):
        required_runs(0.1, 0.2, power=1.0)


# --------------------------------------------------------------------------- #
# welch: numbers
# --------------------------------------------------------------------------- #


def test_welch_hand_worked():
    a, b = [1, 2, 3], [4, 5, 6, 7]
    w = welch(describe(a), describe(b))
    # var_a = 1, var_b = 5/3; se^2 = 1/3 + 5/12 = 3/4
    se2 = 1 / 3 + 5 / 12
    df = se2**2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert w.diff == pytest.approx(3.5)
    assert w.df == pytest.approx(df)
    assert df == pytest.approx(4.959183673469389)
    t = 3.5 / math.sqrt(se2)
    assert w.p_value == pytest.approx(2 * sps.t.sf(t, df))
    half = sps.t.ppf(0.975, df) * math.sqrt(se2)
    assert (w.ci_low, w.ci_high) == pytest.approx((3.5 - half, 3.5 + half))


@pytest.mark.parametrize(
    "a, b",
    [(BASE, CLOSE), (BASE, BETTER), (BETTER, BASE), ([1.0, 1.5], [0.2, 3.0, 4.4, 1.1])],
)
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_welch_matches_scipy(a, b, alpha):
    w = welch(describe(a), describe(b), alpha)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(1 - alpha)
    assert w.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert w.p_value == pytest.approx(ref.pvalue)
    assert w.df == pytest.approx(ref.df)
    assert (w.ci_low, w.ci_high) == pytest.approx((ci.low, ci.high))
    c = compare(a, b, alpha=alpha)
    assert c.kind == ("significant" if ref.pvalue < alpha else "noise")
    assert (c.n_a, c.n_b) == (len(a), len(b))


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy's, on the constant side
def test_welch_one_side_constant_other_not():
    # Zero variance on one side only is a valid Welch test (df = n_b - 1).
    w = welch(describe([88.0, 88.0, 88.0]), describe([88.1, 88.3, 88.2]))
    ref = sps.ttest_ind([88.1, 88.3, 88.2], [88.0, 88.0, 88.0], equal_var=False)
    assert w.p_value == pytest.approx(ref.pvalue)
    assert w.df == pytest.approx(2.0)


def test_welch_needs_two_runs_and_a_spread_per_side():
    assert welch(describe([88.0]), describe([88.1, 88.3])) is None
    assert welch(describe([88.1, 88.1]), describe([88.2, 88.2])) is None


# --------------------------------------------------------------------------- #
# verdicts (speedrun.analysis.metrics.verdict) on plain values
# --------------------------------------------------------------------------- #


def runs(values, metric=FINAL_ACCURACY):
    """Runs of unknown hardware that carry only the metric's value."""
    attr = {"final_accuracy": "final_val_acc", "training_time": "train_time_s"}.get(metric.key, "value")
    return [SimpleNamespace(environment=None, status="completed", param_dict={}, epochs=[], epochs_completed=None,
                            epochs_planned=None, **{attr: v}) for v in values]


def pooled(*samples):
    """The pooled sd of samples of one size: √(mean of the variances)."""
    return math.sqrt(np.mean([np.var(x, ddof=1) for x in samples]))


def compare(a, b, *, metric=FINAL_ACCURACY, alpha=0.05, names=("A", "B")) -> Verdict:
    return verdict(metric, runs(a, metric), runs(b, metric), names=names, alpha=alpha)


LOSS = Metric("loss", "loss", "", False, 2, lambda r: r.value, 0.01, False, "a test default")


def test_verdict_clear_difference():
    c = compare(BASE, BETTER)
    ref = sps.ttest_ind(BETTER, BASE, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.kind == "significant"
    assert c.winner == "b"
    assert c.needed_n is None
    diff = np.mean(BETTER) - np.mean(BASE)
    assert c.text == (
        f"B is ahead by {diff:.2f} points (95% CI {ci.low:.2f} to {ci.high:.2f}, "
        f"p<0.001, Welch's t-test; n=5 vs 5; spread {pooled(BASE, BETTER):.2f} points per run, "
        "from the runs' own repeats)"
    )
    assert c.line == "Final accuracy: " + c.text
    # p < 0.001 also meets the record rule (p < 0.01)
    assert c.confirms_record()


def test_verdict_clear_difference_with_p_shown():
    a = [88.0, 88.2, 88.1, 87.9, 88.2]
    b = [88.2, 88.4, 88.3, 88.2, 88.5]
    c = compare(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert 0.001 < ref.pvalue < 0.05
    ci = ref.confidence_interval(0.95)
    assert (round(ci.low, 2), round(ci.high, 2), round(ref.pvalue, 2)) == (0.05, 0.43, 0.02)
    # Both sides have variance 0.068 / 4 = 0.017: a spread of 0.13 points.
    assert c.text == ("B is ahead by 0.24 points (95% CI 0.05 to 0.43, p=0.02, Welch's t-test; n=5 vs 5; "
                      "spread 0.13 points per run, from the runs' own repeats)")
    # Real at α=0.05, but p=0.02 does not confirm a record (p<0.01).
    assert not c.confirms_record()


def test_verdict_a_ahead_reports_its_advantage_positively():
    c = compare(BETTER, BASE)
    assert c.winner == "a"
    assert c.diff < 0
    ci = sps.ttest_ind(BETTER, BASE, equal_var=False).confidence_interval(0.95)
    assert c.text.startswith(
        f"A is ahead by {-c.diff:.2f} points (95% CI {ci.low:.2f} to {ci.high:.2f}"
    )
    assert MINUS not in c.text


def test_verdict_within_noise():
    c = compare(BASE, CLOSE)
    ref = sps.ttest_ind(CLOSE, BASE, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.kind == "noise"
    assert c.winner is None
    low = f"{ci.low:.2f}".replace("-", MINUS)
    assert c.text == (
        f"No significant difference: B {MINUS} A = {c.diff:.2f} points "
        f"(95% CI {low} to {ci.high:.2f}, p={ref.pvalue:.2f}, Welch's t-test; n=5 vs 5; "
        f"spread {pooled(BASE, CLOSE):.2f} points per run, from the runs' own repeats); not shown to be real: the "
        f"interval holds both no difference and {max(ci.low, ci.high, key=abs):.2f} points".replace("-0", f"{MINUS}0")
    )


def test_verdict_single_runs_issue_example():
    # "ColorJitter is a winner: 88.14% vs 88.08%". At their mean 88.11% the 10,000 test images alone
    # err by √(0.8811 · 0.1189 / 10,000) = 0.324 points; with the default seed-to-seed 0.20 a run spreads
    # by √(0.324² + 0.2²) = 0.380, and the difference of two single runs by 0.380 · √2 = 0.538:
    # 0.06 points is 0.1 of that.
    c = compare([88.08], [88.14], names=("baseline", "ColorJitter"))
    assert c.kind == "noise"
    assert c.winner is None
    assert c.p_value is c.ci_low is c.ci_high is None
    assert c.diff == pytest.approx(0.06)
    assert c.spread == pytest.approx(0.3805, abs=1e-4) and c.spreads == pytest.approx(0.1115, abs=1e-3)
    assert c.text == (
        f"ColorJitter {MINUS} baseline = 0.06 points: within run-to-run noise (n=1 vs 1; 0.1\u00d7 the standard "
        "error of the difference, 0.54 points; spread 0.38 points per run, a default: the binomial error of "
        "10,000 test images at 88.11% (0.32) with seed-to-seed 0.20; no repeats measure it yet)"
    )


def test_the_binomial_error_of_a_test_set():
    assert binomial_error(88.0, 10_000) == pytest.approx(0.325, abs=1e-3)  # the issue's "about 0.3 points"
    assert binomial_error(13.0, 500) == pytest.approx(1.504, abs=1e-3)
    assert binomial_error(100.0, 10_000) == 0.0


def test_verdict_twelve_points_between_single_runs_is_likely_real():
    # 12.21 points between single runs at a mean of 78.875%: binomial √(0.78875 · 0.21125 / 10,000) = 0.408,
    # per run √(0.408² + 0.2²) = 0.455, the difference 0.643: 19 standard errors.
    c = compare([72.77], [84.98], names=("Run 8f", "Run 19"))
    assert c.kind == "likely_real" and c.winner == "b"
    assert c.text == (
        "Run 19 is ahead by 12.21 points: likely real (n=1 vs 1; 19\u00d7 the standard error of the difference, "
        "0.64 points; spread 0.45 points per run, a default: the binomial error of 10,000 test images at 78.88% "
        "(0.41) with seed-to-seed 0.20; no repeats measure it yet; confirm with repeats)"
    )
    assert not c.confirms_record()  # a single run is never a record


def test_verdict_between_noise_and_likely_real_is_inconclusive():
    c = compare([88.0], [89.0])
    # At 88.5%: binomial 0.319, per run 0.377, the difference 0.532: 1.0 / 0.532 = 1.9 standard errors,
    # between √2 (noise) and 3/√2 (likely real).
    assert c.kind == "inconclusive"
    assert c.needed_n == required_runs(1.0, c.spread) == 4
    assert c.text == (
        f"B {MINUS} A = 1.00 points: inconclusive (n=1 vs 1; 1.9\u00d7 the standard error of the difference, "
        "0.53 points; spread 0.38 points per run, a default: the binomial error of 10,000 test images at 88.50% "
        "(0.32) with seed-to-seed 0.20; no repeats measure it yet; about 4 runs per side would settle it 80% of the time)"
    )


def test_single_runs_four_tenths_apart_are_within_noise():
    # The issue's ResNet-18 pair: 0.43 points between single runs at 88% is 0.8 standard errors (0.537).
    assert compare([88.0], [88.43]).kind == "noise"


def test_likely_real_follows_alpha():
    # 1.25 points at 88.625%: 2.36 standard errors of 0.531, real at α=0.05 (3/√2 = 2.12), not at
    # α=0.01 (z = 2.58).
    assert compare([88.0], [89.25]).kind == "likely_real"
    assert compare([88.0], [89.25], alpha=0.01).kind == "inconclusive"


def test_verdict_single_run_on_one_side_never_goes_below_the_binomial_error():
    c = compare(BASE, [88.5])
    sd = np.std(BASE, ddof=1)
    mean = (sum(BASE) + 88.5) / 6
    floor = binomial_error(mean, 10_000)
    # The 5 runs of A spread by 0.11 points, less than the test set's own error at 88.15%: 0.32.
    assert sd < floor and c.spread == pytest.approx(floor)
    gap = 88.5 - np.mean(BASE)
    se = floor * math.sqrt(1 / 5 + 1)
    assert c.kind == "noise"  # 0.42 points is 1.2 standard errors, under √2
    assert c.text == (
        f"B {MINUS} A = {gap:.2f} points: within run-to-run noise (n=5 for A, 1 for B; {gap / se:.1f}\u00d7 the standard error of the "
        f"difference, {se:.2f} points; spread {floor:.2f} points per run, the binomial error of 10,000 test images "
        f"at {mean:.2f}%, above the {sd:.2f} points from the 5 runs of A)"
    )


def test_a_spread_from_two_runs_is_not_a_measurement():
    # One repeat is one degree of freedom: its sd is a guess, so the default is used.
    c = compare([88.0, 88.02], [88.5])
    assert "a default" in c.spread_source


def test_verdict_single_runs_no_difference():
    c = compare([88.1], [88.1])
    assert c.kind == "noise"
    assert c.needed_n is None
    assert "nan" not in c.text.lower() and "inf" not in c.text.lower()
    assert c.text.startswith(f"B {MINUS} A = 0.00 points: within run-to-run noise (n=1 vs 1; 0.0\u00d7")


def test_float_rounding_difference_is_no_difference():
    # mean(88.1, 88.3) is 88.19999999999999, not 88.2
    c = compare([88.1, 88.3], [88.2])
    assert c.diff == 0.0
    assert c.text.startswith(f"B {MINUS} A = 0.00 points: within run-to-run noise")


def test_tiny_spreads_keep_their_digits():
    c = compare([3.001, 3.02, 3.011], [3.0], metric=TRAINING_TIME)
    # sd 0.0095 s over a mean of 3.008 s
    assert "spread 0.3% of the mean per run" in c.text
    c = compare([3.0001, 3.0002, 3.0003], [3.0], metric=TRAINING_TIME)
    assert "spread 0.003% of the mean per run" in c.text and "0.0%" not in c.text


# --------------------------------------------------------------------------- #
# verdicts: time metrics (lower is better)
# --------------------------------------------------------------------------- #

SLOW = [3.52, 3.61, 3.55, 3.58]
FAST = [3.11, 3.20, 3.14, 3.17]


def test_time_metric_b_faster():
    c = compare(SLOW, FAST, metric=TRAINING_TIME)
    assert c.kind == "significant"
    assert c.winner == "b"
    assert c.diff < 0
    ci = sps.ttest_ind(SLOW, FAST, equal_var=False).confidence_interval(0.95)
    ratio = np.mean(FAST) / np.mean(SLOW)
    assert c.text.startswith(f"B is faster by {-c.diff:.1f} s, {ratio:.2f}\u00d7 the time "
                             f"(95% CI {ci.low:.1f} to {ci.high:.1f}, ")
    assert c.metric == "training_time" and c.title == "Training time"


def test_time_metric_a_faster():
    c = compare(FAST, SLOW, metric=TRAINING_TIME)
    assert c.winner == "a"
    assert c.diff > 0
    assert c.text.startswith(f"A is faster by {c.diff:.1f} s, ")


def test_lower_is_better_generic_unit_says_ahead():
    c = compare([0.52, 0.55, 0.53], [0.40, 0.42, 0.41], metric=LOSS)
    assert c.winner == "b"
    assert c.text.startswith("B is ahead by 0.12 (")


def test_time_metric_noise_and_single_runs():
    c = compare([3.5, 3.7, 3.6], [3.55, 3.65, 3.62], metric=TRAINING_TIME)
    assert c.kind == "noise"
    assert f"B {MINUS} A = 0.01 s" in c.text
    # 3.4 / 3.5 = 0.971: ln 0.971 = −0.029 against 3% · √2 = 4.2% for two single runs: 0.7 standard errors.
    c = compare([3.5], [3.4], metric=TRAINING_TIME)
    assert c.text == (
        f"B {MINUS} A = {MINUS}0.1 s, 0.97\u00d7 the time: within run-to-run noise (n=1 vs 1; 0.7\u00d7 the "
        "standard error of the difference, 4.2%; spread 3.0% of the mean per run, a default: no repeats measure "
        "it yet)"
    )


# --------------------------------------------------------------------------- #
# verdicts: degenerate input
# --------------------------------------------------------------------------- #


def test_identical_values_both_sides_equal():
    c = compare([88.1, 88.1, 88.1], [88.1, 88.1])
    assert c.kind == "noise"
    assert c.p_value == 1.0
    assert "nan" not in c.text.lower()
    assert c.text == f"No significant difference: B {MINUS} A = 0.00 points (all runs identical, n=3 for A, 2 for B); " \
        "within run-to-run noise"


def test_identical_values_both_sides_different():
    # Zero spread on both sides: the t statistic would be infinite. The observed
    # spread says nothing, so the gap is measured in the default spread.
    c = compare([88.1, 88.1], [88.2, 88.2, 88.2])
    assert c.p_value is None
    assert c.spread == pytest.approx(math.hypot(binomial_error(88.16, 10_000), 0.2))
    assert "a default" in c.spread_source
    assert c.kind == "noise"
    assert "nan" not in c.text.lower() and "inf" not in c.text.lower()


def test_compare_empty_side_raises_user_error():
    with pytest.raises(InsufficientData, match="B"):
        compare([88.1], [None])
    with pytest.raises(SpeedrunError):
        compare([], [88.1])


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, float("nan")])
def test_verdict_rejects_bad_alpha(alpha):
    with pytest.raises(SpeedrunError, match="--alpha must be between 0 and 1"):
        compare([1, 2], [3, 4], alpha=alpha)


def test_compare_alpha_changes_ci_label():
    c = compare(BASE, BETTER, alpha=0.01)
    assert "(99% CI " in c.text


# --------------------------------------------------------------------------- #
# target_test
# --------------------------------------------------------------------------- #


def test_target_test_not_yet_a_record():
    x = [94.1, 93.9, 94.2, 94.05, 93.95]
    r = target_test(x, 94.0)
    ref = sps.ttest_1samp(x, 94.0, alternative="greater")
    half = sps.t.ppf(0.975, 4) * sps.sem(x)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.mean == pytest.approx(np.mean(x))
    assert r.half_width == pytest.approx(half)
    assert r.n == 5
    assert r.holds is False
    assert r.text == (
        f"94.0% claimed: mean {np.mean(x):.2f} \u00b1 {half:.2f} (95% CI), n=5, "
        f"p={ref.pvalue:.2f} \u2014 not yet a record at p<0.01"
    )


def test_target_test_record():
    x = [94.1, 94.3, 94.2, 94.25, 94.15]
    r = target_test(x, 94)
    ref = sps.ttest_1samp(x, 94.0, alternative="greater")
    assert ref.pvalue < 0.01
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.holds is True
    assert r.text.startswith("94.0% claimed: mean 94.20 \u00b1 ")
    assert r.text.endswith(" \u2014 a record at p<0.01")


def test_target_test_hand_worked():
    # mean 2, s = 1, n = 3: t = (2 - 1) / (1 / sqrt 3) = sqrt 3
    r = target_test([1, 2, 3], 1, alpha=0.05, unit="")
    assert r.p_value == pytest.approx(sps.t.sf(math.sqrt(3), 2))
    assert r.p_value == pytest.approx(0.1127016653792583)
    assert r.holds is False


def test_target_test_lower_is_better():
    x = [3.40, 3.45, 3.42, 3.38, 3.41]
    r = target_test(x, 3.5, higher_is_better=False, unit="s")
    ref = sps.ttest_1samp(x, 3.5, alternative="less")
    assert r.p_value == pytest.approx(ref.pvalue)
    assert ref.pvalue < 0.001
    assert r.holds is True
    assert r.text == "under 3.5 s claimed: mean 3.41 \u00b1 0.03 (95% CI), n=5, p<0.001 \u2014 a record at p<0.01"


def test_target_test_single_run():
    r = target_test([94.05], 94.0)
    assert r.holds is False and r.p_value is None and r.half_width is None
    assert r.text == "94.0% claimed: a single run at 94.05% \u2014 unconfirmed (needs repeats)"


def test_target_test_identical_runs():
    r = target_test([94.05, 94.05, 94.05], 94.0)
    assert r.holds is False and r.p_value is None
    assert "unconfirmed" in r.text and "nan" not in r.text.lower()
    r = target_test([93.9, 93.9], 94.0)
    assert r.holds is False and r.p_value == 1.0
    # Below the claim is not "not yet a record" (stats --claim 95 on a mean of 89.30 said so).
    assert r.text.endswith("p=1.00 \u2014 not a record: the mean is not past 94.0%")


def test_target_test_empty_raises():
    with pytest.raises(InsufficientData):
        target_test([None], 94.0)


def test_target_test_target_formatting():
    assert target_test([94.3, 94.4], 94.25).text.startswith("94.25% claimed")


# --------------------------------------------------------------------------- #
# config_key / group_runs
# --------------------------------------------------------------------------- #


def test_config_key_ignores_seed_and_order():
    k1 = config_key({"lr": 0.1, "epochs": 10, "seed": 1}, "A100")
    k2 = config_key({"seed": 7, "epochs": 10, "lr": 0.1}, "A100")
    assert k1 == k2
    assert k1 == '{"hardware":"A100","params":{"epochs":10,"lr":0.1}}'


def test_config_key_distinguishes_hardware_and_params():
    base = {"lr": 0.1, "epochs": 10}
    assert config_key(base, "A100") != config_key(base, "T4")
    assert config_key(base, "A100") != config_key({**base, "lr": 0.2}, "A100")
    assert config_key({"amp": True}, "A100") != config_key({"amp": 1}, "A100")


def test_config_key_normalises_equal_values():
    assert config_key({"epochs": 10.0, "augment": None}, "T4") == config_key({"epochs": 10}, "T4")
    with_seed = config_key({"lr": 0.1, "seed": 1}, "T4", ignore=())
    assert with_seed != config_key({"lr": 0.1}, "T4", ignore=())
    assert config_key({"lr": 0.1, "model": "x"}, "T4", ignore=("seed", "model")) == config_key(
        {"lr": 0.1}, "T4"
    )


def test_group_runs_preserves_order():
    runs = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]
    g = group_runs(runs, key=lambda r: r[0])
    assert list(g) == ["a", "b", "c"]
    assert g["a"] == [("a", 1), ("a", 3)]
    assert g["b"] == [("b", 2), ("b", 5)]


def test_group_runs_with_config_key():
    runs = [
        {"id": 1, "params": {"lr": 0.1, "seed": 1}, "hw": "T4"},
        {"id": 2, "params": {"lr": 0.1, "seed": 2}, "hw": "T4"},
        {"id": 3, "params": {"lr": 0.1, "seed": 1}, "hw": "A100"},
    ]
    g = group_runs(runs, key=lambda r: config_key(r["params"], r["hw"]))
    assert [[r["id"] for r in v] for v in g.values()] == [[1, 2], [3]]


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #

accuracy = st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False)
wide = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
sample = st.lists(st.one_of(accuracy, wide), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(sample, st.floats(min_value=0.5, max_value=0.999))
def test_property_describe_ci_contains_mean(xs, confidence):
    d = describe(xs, confidence=confidence)
    assert d.min <= d.mean <= d.max
    if d.n >= 2:
        assert d.ci_low <= d.mean <= d.ci_high
        assert d.std >= 0
    else:
        assert d.ci_low is None


@settings(max_examples=200, deadline=None)
@given(sample, sample, st.sampled_from([0.01, 0.05, 0.1]), st.booleans())
def test_property_verdict_is_well_formed(a, b, alpha, higher):
    metric = FINAL_ACCURACY if higher else LOSS
    c = compare(a, b, alpha=alpha, metric=metric)
    assert "nan" not in c.text.lower()
    if c.p_value is not None and c.ci_low is not None:
        assert 0.0 <= c.p_value <= 1.0
        assert c.ci_low <= c.diff <= c.ci_high
        if c.kind == "significant":
            assert c.p_value < alpha
            assert c.winner == ("b" if (c.diff > 0) == higher else "a")
        else:
            assert c.winner is None
    elif c.p_value is None:
        assert c.kind in ("likely_real", "noise", "inconclusive")
        assert (c.winner is not None) == (c.kind == "likely_real")
    if c.needed_n is not None:
        assert c.needed_n >= 2


@settings(max_examples=200, deadline=None)
@given(st.lists(accuracy, min_size=2, max_size=12), accuracy, st.booleans())
def test_property_target_test(xs, target, higher):
    r = target_test(xs, target, higher_is_better=higher)
    if r.p_value is not None:
        assert 0.0 <= r.p_value <= 1.0
        assert r.holds == (r.p_value < r.alpha)
    assert r.half_width is not None and r.half_width >= 0
    assert "nan" not in r.text.lower()


def test_welch_needs_three_runs_a_side_to_call_a_difference_real():
    # 88.0/88.1 vs 89.0/89.1: t = 1.0 / 0.0707 = 14 with 2 df, p = 0.005; two runs a side are too few.
    c = compare([88.0, 88.1], [89.0, 89.1])
    assert c.p_value < 0.05 and c.kind == "inconclusive" and c.winner is None
    assert c.text.endswith("fewer than 3 runs a side cannot settle it: 1 more on the smaller side)")
    assert compare([88.0, 88.1, 88.05], [89.0, 89.1, 89.05]).kind == "significant"


def test_probability_of_improvement_beside_welchs_test():
    # Every run of B beats every run of A: P = 1 in every resample.
    c = compare([88.0, 88.2, 88.1], [88.6, 88.8, 88.7])
    assert c.p_improvement == 1.0 and c.p_improvement_ci == (1.0, 1.0)
    # 4 × 4 pairs: B wins 7 and ties 3 (88.0, 88.1, 88.2 on both sides): (7 + 0.5 · 3) / 16 = 0.53125.
    c = compare([88.0, 88.2, 88.1, 88.3], [88.1, 88.4, 88.2, 88.0])
    wins = sum((b > a) + 0.5 * (b == a) for a in [88.0, 88.2, 88.1, 88.3] for b in [88.1, 88.4, 88.2, 88.0])
    assert c.p_improvement == pytest.approx(wins / 16)
    low, high = c.p_improvement_ci
    assert 0.0 <= low < c.p_improvement < high <= 1.0
    # Times: lower is better.
    assert compare([3.5, 3.6, 3.55], [3.3, 3.2, 3.25], metric=TRAINING_TIME).p_improvement == 1.0
    assert compare([88.0], [88.5]).p_improvement is None  # no repeats, no bootstrap
