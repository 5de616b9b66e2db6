"""The GPU benchmark's statistics (analysis.timing), checked on synthetic timings with known answers."""

from __future__ import annotations

import math
import random

import pytest

from speedrun.analysis.timing import drift, pair_orders, paired_ratio, stationary


def phases(n: int, seed: int, spread: float = 0.08) -> list[float]:
    """Per-pair machine phases: the card's speed wanders by ±8% between pairs (as seen on the H200)."""
    rng = random.Random(seed)
    return [1 + rng.uniform(-spread, spread) for _ in range(n)]


def jitter(rng: random.Random, sd: float = 0.003) -> float:
    return math.exp(rng.gauss(0, sd))


def test_a_real_speed_up_is_shown_below_its_target_by_the_paired_test():
    rng = random.Random(1)
    phase = phases(25, seed=2)
    reference = [3.0 * p * jitter(rng) for p in phase]
    ours = [0.90 * 3.0 * p * jitter(rng) for p in phase]
    result = paired_ratio(ours, reference, target=0.95)
    assert result.n == 25
    assert 0.895 < result.ratio < 0.905 and result.low < 0.90 < result.high
    assert result.below_target() and result.p_below_target < 1e-6
    assert "ratio <= 0.95 shown at p<0.01" in result.line("ours", "reference")


def test_pairing_sees_what_welch_cannot_when_the_machine_wanders():
    """A 2% gain under ±8% phase drift: the paired test finds it, Welch's test drowns it in the drift."""
    from scipy import stats

    rng = random.Random(3)
    phase = phases(25, seed=4)
    reference = [3.0 * p * jitter(rng) for p in phase]
    ours = [0.98 * 3.0 * p * jitter(rng) for p in phase]
    assert paired_ratio(ours, reference).p_equal < 1e-6
    assert stats.ttest_ind(ours, reference, equal_var=False).pvalue > 0.05


def test_an_aa_control_of_one_trainer_holds_one_and_passes_as_stationary():
    rng = random.Random(5)
    phase = phases(25, seed=6)
    first = [3.0 * p * jitter(rng) for p in phase]
    second = [3.0 * p * jitter(rng) for p in phase]
    aa = paired_ratio(first, second)
    assert aa.holds_one() and stationary(aa)


def test_an_aa_control_with_an_order_effect_fails():
    """The side that always runs second is 3% faster (a warmed cache): the harness is not fit to compare."""
    rng = random.Random(7)
    phase = phases(25, seed=8)
    first = [3.0 * p * jitter(rng) for p in phase]
    second = [0.97 * 3.0 * p * jitter(rng) for p in phase]
    assert not stationary(paired_ratio(first, second))


def test_drift_over_run_order_is_found_and_a_flat_series_is_not():
    rng = random.Random(9)
    warming = [3.0 * (1 - 0.01 * i) * jitter(rng, 0.005) for i in range(10)]  # the reference's rho = -0.92
    result = drift(warming)
    assert result.rho < -0.9 and result.drifting()
    assert "drifting" in result.line("reference")
    flat = [3.0 * jitter(rng, 0.005) for _ in range(10)]
    assert not drift(flat).drifting()
    assert drift([3.0, 3.0, 3.0]).p == 1.0


def test_exact_ratios_and_bad_input():
    exact = paired_ratio([2.0, 4.0], [4.0, 8.0], target=0.95)
    assert exact.ratio == pytest.approx(0.5) and exact.p_equal == 0.0 and exact.below_target()
    with pytest.raises(ValueError, match="equal lengths"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_ratio([1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0])


def test_pairs_are_counterbalanced():
    orders = pair_orders(8)
    assert orders == [(0, 1), (1, 0), (1, 0), (0, 1)] * 2
    assert sum(first == 0 for first, _ in orders) == 4
