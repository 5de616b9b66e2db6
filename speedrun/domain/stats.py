"""Statistics for comparing runs: means with intervals, Welch's test, record checks.

Why this module exists: CIFAR-10 runs of one configuration spread by 0.1-0.5
points from seed to seed, yet single runs that differ by 0.06 points were being
called winners. The numbers here answer "is this difference real?" with the
data that is actually there:

* `describe` gives a mean with a t-interval, so one number never stands alone;
* `welch` runs Welch's t-test between two groups of repeats;
* `required_runs` sizes the repeats a difference needs;
* `target_test` checks a record claim ("94% reached") with a one-sided test.

Statistics only: the metrics and the wording of verdicts live in
`speedrun.analysis.metrics`, which repeats are in `speedrun.analysis.groups`.
The module is pure: no database, no CLI, no printing.

Degenerate data are handled explicitly rather than left to produce NaN: when
every run on the relevant side(s) has the same value, the observed spread is
zero and says nothing about run-to-run noise, so no significance is claimed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from speedrun.errors import InsufficientData
from speedrun.text import fmt_num

__all__ = [
    "Description",
    "TargetTest",
    "Welch",
    "describe",
    "fmt_mean_ci",
    "format_p",
    "pooled_sd",
    "required_runs",
    "target_test",
    "t_quantile",
    "welch",
]

# Differences smaller than this fraction of sigma are float rounding, not data.
_ROUNDING = 1e-9


def _special():
    """scipy.special, for Student's t (lighter than scipy.stats), imported on first use: with numpy
    it costs 0.23 s, which `compare` of two single runs never needs (the normal quantiles are the
    standard library's `NormalDist`)."""
    from scipy import special

    return special


def t_quantile(q: float, df: float) -> float:
    """Quantile of Student's t with `df` degrees of freedom."""
    return float(_special().stdtrit(df, q))


def _t_sf(x: float, df: float) -> float:
    """P(T > x) for Student's t (by symmetry, the CDF at −x)."""
    return float(_special().stdtr(df, -x))


# --------------------------------------------------------------------------- #
# Description of one sample
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Description:
    """Summary of one group of runs.

    `std` and the interval are None with fewer than two values: a single run
    has no measurable spread, and pretending otherwise is what this module is
    meant to stop. `mean`, `min` and `max` are None only for an empty group.
    """

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    min: float | None
    max: float | None
    confidence: float = 0.95

    @property
    def ci_half_width(self) -> float | None:
        """Half the width of the t-interval (the "± x" part), None when n < 2."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def _clean(values: Iterable[float | int | None]) -> list[float]:
    """Drop missing values (None, NaN) and reject infinities.

    NaN counts as missing because that is how a run without the metric shows
    up after float conversion; an infinite metric is a bug upstream and must
    not silently turn every statistic into inf.
    """
    out: list[float] = []
    for v in values:
        if v is None:
            continue
        x = float(v)
        if math.isnan(x):
            continue
        if math.isinf(x):
            raise ValueError(f"infinite value in sample: {v!r}")
        out.append(x)
    return out


def _check_prob(name: str, p: float) -> None:
    if not (0.0 < p < 1.0):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {p!r}")


def _mean_var(xs: list[float]) -> tuple[float, float]:
    """Mean and sample variance (ddof=1; 0.0 for a single value).

    Identical values get exactly zero variance: a two-pass formula can leave
    ~1e-30 of rounding noise, which a t-test would then read as infinite
    precision and call any difference significant.
    """
    n = len(xs)
    lo, hi = min(xs), max(xs)
    if lo == hi:
        return lo, 0.0
    # fsum keeps the mean exact-ish; clamping guards the last ulp so the mean
    # can never fall outside the data (or its own interval).
    mean = min(max(math.fsum(xs) / n, lo), hi)
    if n < 2:
        return mean, 0.0
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, var


def describe(values: Iterable[float | int | None], *, confidence: float = 0.95) -> Description:
    """Mean, sample std (ddof=1) and a two-sided Student-t interval for the mean.

    The t-interval (not mean ± 2·std) is used because speedrun groups are
    small, typically 3-10 seeds, where the normal approximation is too narrow.
    None and NaN values are ignored; an empty input gives n=0 with all fields None.
    """
    _check_prob("confidence", confidence)
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return Description(0, None, None, None, None, None, None, confidence)
    mean, var = _mean_var(xs)
    if n < 2:
        return Description(n, mean, None, None, None, xs[0], xs[0], confidence)
    std = math.sqrt(var)
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Description(n, mean, std, mean - half, mean + half, min(xs), max(xs), confidence)


# --------------------------------------------------------------------------- #
# Formatting helpers (pure: they return strings, never print)
# --------------------------------------------------------------------------- #


def _num(x: float, digits: int = 2) -> str:
    """Fixed-point number with a typographic minus and no "-0.00"."""
    return fmt_num(x, f".{digits}f")


def format_p(p: float, alpha: float | None = None) -> str:
    """Format a p-value as "p=0.58", "p=0.002" or "p<0.001".

    Two decimals (three below 0.01) are enough to read, but rounding must not
    carry a value across the significance threshold: p=0.0098 at alpha=0.01
    is shown as "p=0.0098", never as a contradictory "p=0.01".
    """
    if p < 0.001 and (alpha is None or alpha > 0.001):
        return "p<0.001"
    digits = 2 if p >= 0.01 else 3
    s = f"{p:.{digits}f}"
    if alpha is not None:
        while digits < 8 and (float(s) == alpha or (float(s) < alpha) != (p < alpha)):
            digits += 1
            s = f"{p:.{digits}f}"
    return f"p={s}"


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def fmt_mean_ci(desc: Description, digits: int = 2) -> str:
    """Mean with its interval half-width and n: "94.03 ± 0.12 (n=25)".

    A single run shows no "±" at all, since it has no interval.
    """
    if desc.mean is None:
        return "\u2014 (n=0)"
    half = desc.ci_half_width
    if half is None:
        return f"{_num(desc.mean, digits)} (n={desc.n})"
    return f"{_num(desc.mean, digits)} \u00b1 {_num(half, digits)} (n={desc.n})"


# --------------------------------------------------------------------------- #
# Sample size
# --------------------------------------------------------------------------- #


def required_runs(
    delta: float, sigma: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Runs per side for a two-sided two-sample test to detect `delta` with `power`.

    Starts from the normal-approximation formula

        n = ceil(2 * ((z_{1-alpha/2} + z_{power}) * sigma / delta)^2)

    and then applies the usual t-correction: the smallest n for which the
    same formula with Student-t quantiles at df = 2n - 2 asks for no more
    than n. The correction matters for the small numbers this tool deals
    with: for delta = sigma the normal formula says 16, but a t-test needs 17
    runs per side to reach 80% power (Cohen's table). Never less than 2, the
    fewest runs per side a t-test can use. None when delta is 0 (or mere
    float rounding, e.g. mean(88.1, 88.3) - 88.2): there is no difference to
    detect, and "1e27 repeats" would be noise of a different kind.
    """
    _check_prob("alpha", alpha)
    _check_prob("power", power)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    delta = abs(delta)
    if delta <= _ROUNDING * sigma:
        return None
    ratio = sigma / delta

    def runs_for(q: float) -> int:
        return max(2, math.ceil(2 * (q * ratio) ** 2))

    def t_runs(n: int) -> int:
        df = float(2 * n - 2)
        return runs_for(t_quantile(1 - alpha / 2, df) + t_quantile(power, df))

    lo = runs_for(NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power))
    hi = t_runs(lo)
    if hi <= lo:
        return lo
    # t_runs decreases as n grows, so the smallest n with t_runs(n) <= n lies
    # in (lo, hi]; bisect for it (usually a step or two).
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if t_runs(mid) <= mid:
            hi = mid
        else:
            lo = mid
    return hi


# --------------------------------------------------------------------------- #
# Two-sample comparison
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of B − A: the difference, its (1 − alpha) interval, p and df."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float


def welch(da: Description, db: Description, alpha: float = 0.05) -> Welch | None:
    """Welch's t-test (no equal-variance assumption: a new trick may change the spread as
    well as the mean) for two groups with n >= 2.

    None when the standard error is zero (every run on both sides identical, or
    a spread so small its square underflows): the t statistic means nothing
    then. The Welch-Satterthwaite df is computed from variance ratios so that
    tiny variances cannot underflow to 0/0.
    """
    _check_prob("alpha", alpha)
    if da.n < 2 or db.n < 2 or da.std is None or db.std is None:
        return None
    assert da.mean is not None and db.mean is not None
    wa = da.std**2 / da.n
    wb = db.std**2 / db.n
    if wa + wb == 0:
        return None
    se = math.sqrt(wa + wb)
    m = max(wa, wb)
    ra, rb = wa / m, wb / m
    df = (ra + rb) ** 2 / (ra**2 / (da.n - 1) + rb**2 / (db.n - 1))
    # Mathematically df lies in [min(n)-1, n_a+n_b-2]; clamp away rounding.
    df = min(max(df, min(da.n, db.n) - 1), da.n + db.n - 2)
    diff = db.mean - da.mean
    p = min(1.0, 2 * _t_sf(abs(diff / se), df))
    half = t_quantile(1 - alpha / 2, df) * se
    return Welch(diff, diff - half, diff + half, p, df)


def pooled_sd(descs: Iterable[Description]) -> float:
    """Pooled standard deviation of the groups that have n >= 2 (0.0 if none)."""
    num = 0.0
    den = 0
    for d in descs:
        if d.n >= 2 and d.std is not None:
            num += (d.n - 1) * d.std**2
            den += d.n - 1
    return math.sqrt(num / den) if den else 0.0


# --------------------------------------------------------------------------- #
# Record claims
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class TargetTest:
    """Result of `target_test`: does the mean beat `target`, beyond noise?

    `half_width` is the half-width of the two-sided `confidence` t-interval
    (the "± x" shown next to the mean), independent of the test's `alpha`.
    `p_value` and `half_width` are None for a single run.
    """

    target: float
    mean: float
    half_width: float | None
    n: int
    p_value: float | None
    holds: bool
    text: str
    alpha: float
    higher_is_better: bool


def _fmt_target(target: float, unit: str) -> str:
    """94 -> "94.0%", 94.25 -> "94.25%": keep the precision the claim was made with."""
    s = f"{target:g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return _with_unit(s, unit)


def target_test(
    values: Iterable[float | int | None],
    target: float,
    *,
    alpha: float = 0.01,
    higher_is_better: bool = True,
    unit: str = "%",
    confidence: float = 0.95,
    digits: int = 2,
) -> TargetTest:
    """One-sided one-sample t-test that the mean beats `target` (record claims).

    H1 is "mean > target" (or "mean < target" for times). The default alpha
    is 0.01 because a record is a claim others will build on, and being
    lucky once in twenty tries is common when people run many seeds.

    A single run is never a record: it is reported as unconfirmed. When all
    runs are identical the spread is unknown, so a mean beyond the target is
    still "unconfirmed"; a mean at or behind the target gives p=1 (the data
    do not support the claim under any spread).
    """
    _check_prob("alpha", alpha)
    desc = describe(values, confidence=confidence)
    if desc.n == 0 or desc.mean is None:
        raise InsufficientData("no values to test against the target")
    mean, n = desc.mean, desc.n
    goal = _fmt_target(target, unit)
    common = dict(target=target, mean=mean, n=n, alpha=alpha, higher_is_better=higher_is_better)

    claim = f"{goal} claimed" if higher_is_better else f"under {goal} claimed"  # the claim tested, not its answer
    if n < 2:
        shown = _with_unit(_num(mean, digits), unit)
        text = f"{claim}: a single run at {shown} \u2014 unconfirmed (needs repeats)"
        return TargetTest(half_width=None, p_value=None, holds=False, text=text, **common)

    half = desc.ci_half_width
    assert half is not None and desc.std is not None
    summary = f"mean {_num(mean, digits)} \u00b1 {_num(half, digits)} ({confidence * 100:g}% CI), n={n}"
    beyond = mean > target if higher_is_better else mean < target

    if desc.std == 0:
        if beyond:
            text = (
                f"{claim}: all {n} runs gave {_num(mean, digits)} \u2014 no run-to-run "
                "spread to test against; unconfirmed (needs varied seeds)"
            )
            return TargetTest(half_width=0.0, p_value=None, holds=False, text=text, **common)
        p = 1.0
    else:
        t_stat = (mean - target) / (desc.std / math.sqrt(n))
        if not higher_is_better:
            t_stat = -t_stat
        p = _t_sf(t_stat, n - 1)

    holds = p < alpha
    level = f"p<{alpha:g}"
    if holds:
        verdict = f"a record at {level}"
    else:  # "not yet" only where the mean is on the claim's side of it
        verdict = f"not yet a record at {level}" if beyond else f"not a record: the mean is not past {goal}"
    text = f"{claim}: {summary}, {format_p(p, alpha)} \u2014 {verdict}"
    return TargetTest(half_width=half, p_value=p, holds=holds, text=text, **common)


# --------------------------------------------------------------------------- #
# Probability of improvement
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Improvement:
    """P(a run of B beats a run of A), with a bootstrap interval: the probability-of-improvement
    measure recommended beside a test for few-seed comparisons (Agarwal et al., "Deep RL at the
    edge of the statistical precipice", 2021)."""

    p: float
    ci_low: float
    ci_high: float


def probability_of_improvement(
    a: Iterable[float], b: Iterable[float], *, higher_is_better: bool = True, confidence: float = 0.95,
    resamples: int = 2000,
) -> Improvement | None:
    """P(B > A) over every pair of runs (ties count half), with a percentile bootstrap interval
    resampling each side; None unless both sides have at least two runs. The resampling is
    seeded so that the same runs get the same interval in every output."""
    import numpy as np
    from scipy import stats as sps

    xa, xb = np.asarray(_clean(a)), np.asarray(_clean(b))
    if len(xa) < 2 or len(xb) < 2:
        return None
    if not higher_is_better:
        xa, xb = -xa, -xb

    def statistic(x: Any, y: Any, axis: int = -1) -> Any:
        # The Mann-Whitney U of B over n·m: average ranks count a tie half. O((n+m) log(n+m)) per
        # resample, where comparing every pair cost n·m (seconds at a few hundred runs a side).
        x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
        n, m = x.shape[-1], y.shape[-1]
        ranks = sps.rankdata(np.concatenate([x, y], axis=-1), axis=-1)
        return (ranks[..., n:].sum(axis=-1) - m * (m + 1) / 2) / (n * m)

    p = float(statistic(xa, xb))
    if p in (0.0, 1.0):  # every pair agrees: every resample does too
        return Improvement(p, p, p)
    result = sps.bootstrap((xa, xb), statistic, vectorized=True, paired=False, n_resamples=resamples,
                           confidence_level=confidence, method="percentile", random_state=0)
    low, high = result.confidence_interval
    return Improvement(p, float(low), float(high))
