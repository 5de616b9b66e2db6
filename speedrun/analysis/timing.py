"""Timing two trainers against each other on one machine: paired ratios, an A/A control, drift.

Benchmarks run the two sides alternately, one pair at a time, so both meet the
same clock, thermal and load phases. The pairs are then compared as pairs: the
statistic is the log of each pair's time ratio, whose mean is the log of the
geometric-mean ratio, tested with a one-sample t-test (the paired t-test on log
times). Welch's test would throw the pairing away and count the phases' drift
as noise.

Two checks say whether the harness itself can be trusted:
- an A/A control, the same trainer on both sides of the pairs: its ratio's
  interval must hold 1 (`AA_TOLERANCE` bounds how far from 1 it may sit);
- drift: each side's times against run order (Spearman's rho). A strong trend
  (times falling as the card warms, or rising as it throttles) means the pairs
  are not exchangeable, and the first and last pairs' ratios disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

ALPHA = 0.01  # the benchmark's claims are one-sided tests at this level
AA_TOLERANCE = 0.02  # an A/A ratio further than 2% from 1 means the harness is not stationary


@dataclass(frozen=True)
class PairedRatio:
    """The geometric-mean ratio first/second over n pairs, with its interval and tests."""

    n: int
    ratio: float
    low: float  # confidence interval of the ratio
    high: float
    p_equal: float  # two-sided p of "the ratio is 1"
    target: float | None = None
    p_below_target: float | None = None  # one-sided p of "the ratio is at least target"

    def holds_one(self) -> bool:
        return self.low <= 1.0 <= self.high

    def below_target(self, alpha: float = ALPHA) -> bool:
        """Whether the ratio is shown to be below `target` at `alpha` (one-sided)."""
        return self.p_below_target is not None and self.p_below_target < alpha

    def line(self, first: str, second: str) -> str:
        text = (f"{first}/{second} time ratio {self.ratio:.3f} (95% CI {self.low:.3f} to {self.high:.3f}, "
                f"paired t-test on log ratios, n={self.n} pairs, p={self.p_equal:.2g} for a ratio of 1)")
        if self.target is not None and self.p_below_target is not None:
            verdict = "shown" if self.below_target() else "not shown"
            text += (f"; ratio <= {self.target:g} {verdict} at p<{ALPHA:g} "
                     f"(one-sided p={self.p_below_target:.2g})")
        return text


def paired_ratio(first: Sequence[float], second: Sequence[float], *, target: float | None = None,
                 confidence: float = 0.95) -> PairedRatio:
    """Compare paired times (first[i] was run beside second[i]); `target`: test ratio < target one-sided."""
    from scipy import stats

    if len(first) != len(second):
        raise ValueError(f"paired times need equal lengths, not {len(first)} and {len(second)}")
    if len(first) < 2:
        raise ValueError("a paired comparison needs at least 2 pairs")
    if min(*first, *second) <= 0:
        raise ValueError("times must be positive")
    logs = [math.log(a / b) for a, b in zip(first, second)]
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    se = sd / math.sqrt(n)
    df = n - 1
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    if se == 0:  # identical ratios in every pair: the ratio is exact
        p_equal = 1.0 if mean == 0 else 0.0
        p_target = None if target is None else (0.0 if mean < math.log(target) else 1.0)
    else:
        p_equal = float(2 * stats.t.sf(abs(mean / se), df))
        p_target = None if target is None else float(stats.t.cdf((mean - math.log(target)) / se, df))
    return PairedRatio(n, math.exp(mean), math.exp(mean - half), math.exp(mean + half), p_equal, target, p_target)


@dataclass(frozen=True)
class Drift:
    """Times against run order: Spearman's rho and its p."""

    n: int
    rho: float
    p: float

    def drifting(self, alpha: float = ALPHA) -> bool:
        return self.n >= 5 and self.p < alpha

    def line(self, label: str) -> str:
        state = "drifting" if self.drifting() else "no trend"
        return f"{label}: Spearman rho {self.rho:+.2f} over run order (p={self.p:.2g}, n={self.n}): {state}"


def drift(times: Sequence[float]) -> Drift:
    """Whether `times`, in the order they were measured, trend (Spearman's rank correlation with order)."""
    from scipy import stats

    if len(times) < 3 or len(set(times)) == 1:
        return Drift(len(times), 0.0, 1.0)
    result = stats.spearmanr(range(len(times)), times)
    return Drift(len(times), float(result.statistic), float(result.pvalue))


def stationary(aa: PairedRatio, tolerance: float = AA_TOLERANCE) -> bool:
    """Whether an A/A control (the same trainer on both sides) shows a harness fit to compare with:
    its interval holds 1 and its ratio is within `tolerance` of 1."""
    return aa.holds_one() and abs(aa.ratio - 1) <= tolerance


def pair_orders(n: int) -> list[tuple[int, int]]:
    """Which side runs first in each of n pairs: ABBA counterbalancing, so neither side always follows
    the other (a cache or clock state left by one run favours whoever comes next)."""
    return [(0, 1) if i % 4 in (0, 3) else (1, 0) for i in range(n)]
