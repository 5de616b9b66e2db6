"""Honest numbers for comparing runs: means with intervals, verdicts, record checks.

Why this module exists: CIFAR-10 runs of one configuration spread by 0.1-0.5
points from seed to seed, yet single runs that differ by 0.06 points were being
called winners. Everything here answers "is this difference real?" with the
data that is actually there:

* `describe` gives a mean with a t-interval, so one number never stands alone;
* `compare` runs Welch's t-test (no equal-variance assumption: a new trick may
  change the spread as well as the mean) and words the verdict so that a
  difference inside run-to-run noise is never reported as a win; with a single
  run on a side it refuses to judge and says how many repeats would be needed;
* `target_test` checks a record claim ("94% reached") with a one-sided test;
* `config_key` / `group_runs` collect the repeats that belong together.

The module is pure: no database, no CLI, no printing. Results are frozen
dataclasses whose text fields are ready to show; templates only display them.

Degenerate data are handled explicitly rather than left to produce NaN: when
every run on the relevant side(s) has the same value, the observed spread is
zero and says nothing about run-to-run noise, so no significance is claimed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from scipy import special as _special  # the t and normal quantiles; lighter to import than scipy.stats

from speedrun.errors import SpeedrunError

__all__ = [
    "Comparison",
    "Description",
    "InsufficientData",
    "TargetTest",
    "compare",
    "config_key",
    "describe",
    "fmt_mean_ci",
    "format_p",
    "group_runs",
    "required_runs",
    "target_test",
]

MINUS = "\u2212"  # typographic minus, as in "B − A = −0.18"

# Differences smaller than this fraction of sigma are float rounding, not data.
_ROUNDING = 1e-9

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def _t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t with `df` degrees of freedom."""
    return float(_special.stdtrit(df, q))


def _t_sf(x: float, df: float) -> float:
    """P(T > x) for Student's t (by symmetry, the CDF at −x)."""
    return float(_special.stdtr(df, -x))


class InsufficientData(SpeedrunError, ValueError):
    """A statistic was asked for with no usable values (e.g. an empty group).

    A `SpeedrunError` so the CLI prints it as a one-line user error; also a
    `ValueError` so pure callers can catch it without knowing the project.
    """


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
    half = _t_ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Description(n, mean, std, mean - half, mean + half, min(xs), max(xs), confidence)


# --------------------------------------------------------------------------- #
# Formatting helpers (pure: they return strings, never print)
# --------------------------------------------------------------------------- #


def _num(x: float, digits: int = 2) -> str:
    """Fixed-point number with a typographic minus and no "-0.00"."""
    s = f"{x:.{digits}f}"
    if s.startswith("-"):
        s = s[1:] if float(s) == 0 else MINUS + s[1:]
    return s


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


def _amount_unit(unit: str) -> str:
    """Unit for a difference: differences of percentages are percentage points."""
    return "points" if unit == "%" else unit


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _conf_label(alpha: float) -> str:
    return f"{(1 - alpha) * 100:g}%"


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
        return runs_for(_t_ppf(1 - alpha / 2, df) + _t_ppf(power, df))

    lo = runs_for(float(_special.ndtri(1 - alpha / 2) + _special.ndtri(power)))
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

Kind = Literal["ahead", "noise", "no_verdict"]


@dataclass(frozen=True)
class Comparison:
    """Result of `compare`: B − A with its interval, a p-value and a verdict.

    `diff`, `ci_low`, `ci_high` are always B − A in the metric's unit; the
    verdict text re-expresses them as the winner's advantage. `p_value` and
    the interval are None when no test was possible (`kind == "no_verdict"`).
    `needed_n` is the estimated runs per side to detect a difference of the
    observed size (None when not applicable, e.g. a clear difference or a
    zero difference); `sigma` is the per-run spread it used and
    `sigma_source` says where that came from ("known", "observed", "default").
    """

    diff: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_a: int
    n_b: int
    verdict: str
    kind: Kind
    needed_n: int | None
    winner: Literal["a", "b"] | None
    a: Description
    b: Description
    df: float | None
    sigma: float | None
    sigma_source: Literal["known", "observed", "default"] | None
    alpha: float
    metric: str
    unit: str


def _welch(da: Description, db: Description, alpha: float) -> tuple[float, float, float, float]:
    """Welch's t-test for two groups with n >= 2 and a non-zero standard error.

    Returns (p_value, ci_low, ci_high, df) for B − A. The Welch-Satterthwaite
    df is computed from variance ratios so that tiny variances cannot
    underflow to 0/0.
    """
    assert da.mean is not None and db.mean is not None and da.std is not None and db.std is not None
    wa = da.std**2 / da.n
    wb = db.std**2 / db.n
    se = math.sqrt(wa + wb)
    m = max(wa, wb)
    ra, rb = wa / m, wb / m
    df = (ra + rb) ** 2 / (ra**2 / (da.n - 1) + rb**2 / (db.n - 1))
    # Mathematically df lies in [min(n)-1, n_a+n_b-2]; clamp away rounding.
    df = min(max(df, min(da.n, db.n) - 1), da.n + db.n - 2)
    diff = db.mean - da.mean
    t_stat = diff / se
    p = min(1.0, 2 * _t_sf(abs(t_stat), df))
    half = _t_ppf(1 - alpha / 2, df) * se
    return p, diff - half, diff + half, df


def _pooled_sd(descs: Iterable[Description]) -> float:
    """Pooled standard deviation of the groups that have n >= 2 (0.0 if none)."""
    num = 0.0
    den = 0
    for d in descs:
        if d.n >= 2 and d.std is not None:
            num += (d.n - 1) * d.std**2
            den += d.n - 1
    return math.sqrt(num / den) if den else 0.0


def compare(
    a: Iterable[float | int | None],
    b: Iterable[float | int | None],
    *,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    known_std: float | None = None,
    default_std: float = 0.2,
    metric: str = "final accuracy",
    unit: str = "%",
    power: float = 0.8,
    names: tuple[str, str] = ("A", "B"),
    digits: int = 2,
) -> Comparison:
    """Compare runs of configuration B against A and word an honest verdict.

    Three outcomes (`kind`):

    * "ahead": Welch's t-test rejects equal means at `alpha`; the verdict
      names the better side (by `higher_is_better`) and its advantage with a
      (1 − alpha) Welch interval, e.g. "B is ahead by 0.42 points (95% CI 0.21
      to 0.63, p=0.002, n=5 vs 5)". For times (unit "s",
      `higher_is_better=False`) the word is "faster" instead of "ahead".
    * "noise": the test does not reject; the verdict gives B − A with its
      interval and says it is within run-to-run noise.
    * "no_verdict": a side has a single run (or every run on both sides has
      the same value, so the noise is unknown). No test is run; the verdict
      gives B − A and the runs per side needed to detect a difference of that
      size (see `required_runs`).

    The per-run spread for `needed_n` is `known_std` when given (e.g. measured
    on many seeds of a baseline), else the pooled sd of the sides with n >= 2,
    else `default_std` (0.2 points is typical for CIFAR-10 speedruns).
    `metric` is carried on the result for display; `names` label the sides.
    Counts in the text are always "n=<n_a> vs <n_b>".
    """
    _check_prob("alpha", alpha)
    _check_prob("power", power)
    if known_std is not None and not known_std > 0:
        raise ValueError(f"known_std must be positive, got {known_std!r}")
    if not default_std > 0:
        raise ValueError(f"default_std must be positive, got {default_std!r}")
    name_a, name_b = names
    da, db = describe(a, confidence=1 - alpha), describe(b, confidence=1 - alpha)
    for name, d in ((name_a, da), (name_b, db)):
        if d.n == 0:
            raise InsufficientData(f"no {metric} values for {name}: nothing to compare")
    assert da.mean is not None and db.mean is not None
    diff = db.mean - da.mean
    amount_unit = _amount_unit(unit)

    def amount(x: float) -> str:
        return _with_unit(_num(x, digits), amount_unit)

    diff_text = f"{name_b} {MINUS} {name_a} = {amount(diff)}"
    counts = f"n={da.n} vs {db.n}"
    common = dict(n_a=da.n, n_b=db.n, a=da, b=db, alpha=alpha, metric=metric, unit=unit)

    # Zero standard error (all runs identical on both sides, or a spread so
    # small its square underflows) makes the t statistic meaningless.
    se_zero = (
        da.n >= 2
        and db.n >= 2
        and (da.std or 0.0) ** 2 / da.n + (db.std or 0.0) ** 2 / db.n == 0
    )
    if da.n >= 2 and db.n >= 2 and not se_zero:
        p, lo, hi, df = _welch(da, db, alpha)
        ci = f"{_conf_label(alpha)} CI"
        stats_text = f"{format_p(p, alpha)}, {counts}"
        if p < alpha:
            b_better = (diff > 0) == higher_is_better
            winner: Literal["a", "b"] = "b" if b_better else "a"
            # Express the interval as the winner's advantage so it reads naturally.
            adv_lo, adv_hi = (lo, hi) if diff > 0 else (-hi, -lo)
            who = name_b if winner == "b" else name_a
            # For times the better side is the faster one; say so.
            word = "faster" if unit == "s" and not higher_is_better else "ahead"
            verdict = (
                f"{who} is {word} by {amount(abs(diff))} "
                f"({ci} {_num(adv_lo, digits)} to {_num(adv_hi, digits)}, {stats_text})"
            )
            return Comparison(
                diff=diff, ci_low=lo, ci_high=hi, p_value=p, verdict=verdict, kind="ahead",
                needed_n=None, winner=winner, df=df, sigma=None, sigma_source=None, **common,
            )
        if known_std is not None:
            sigma, source = known_std, "known"
        else:
            sigma, source = _pooled_sd((da, db)), "observed"
        needed = required_runs(diff, sigma, alpha=alpha, power=power)
        verdict = (
            f"No significant difference: {diff_text} "
            f"({ci} {_num(lo, digits)} to {_num(hi, digits)}, {stats_text}); "
            "within run-to-run noise"
        )
        return Comparison(
            diff=diff, ci_low=lo, ci_high=hi, p_value=p, verdict=verdict, kind="noise",
            needed_n=needed, winner=None, df=df, sigma=sigma, sigma_source=source, **common,
        )

    if se_zero and diff == 0:
        # Every run on both sides gave the same value: nothing differs at all.
        verdict = (
            f"No significant difference: {diff_text} "
            f"(all runs identical, p=1.00, {counts}); within run-to-run noise"
        )
        return Comparison(
            diff=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, verdict=verdict, kind="noise",
            needed_n=None, winner=None, df=None, sigma=None, sigma_source=None, **common,
        )

    # No test possible: single run(s), or zero observed spread on both sides.
    sigma_source: Literal["known", "observed", "default"]
    if known_std is not None:
        sigma, sigma_source = known_std, "known"
    else:
        sigma, sigma_source = _pooled_sd((da, db)), "observed"
        if sigma == 0:
            sigma, sigma_source = default_std, "default"
    needed = required_runs(diff, sigma, alpha=alpha, power=power)

    if se_zero:
        why = (
            "No verdict possible: every run on each side gave the same value, "
            "so run-to-run noise is unknown. "
        )
        why += diff_text
    elif da.n < 2 and db.n < 2:
        why = f"No verdict possible from single runs: {diff_text}"
    else:
        single = name_a if da.n < 2 else name_b
        why = f"No verdict possible from a single run of {single}: {diff_text}"
    spread = f"with a spread of {amount(sigma)} per run"
    if needed is None:
        tail = f"{spread}, no difference was observed to size repeats for"
    else:
        tail = (
            f"{spread}, about {needed:,} repeats per side are needed to detect a difference "
            f"of this size (\u03b1={alpha:g}, power {power:g})"
        )
    return Comparison(
        diff=diff, ci_low=None, ci_high=None, p_value=None, verdict=f"{why}; {tail}",
        kind="no_verdict", needed_n=needed, winner=None, df=None, sigma=sigma,
        sigma_source=sigma_source, **common,
    )


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

    if n < 2:
        shown = _with_unit(_num(mean, digits), unit)
        text = f"single run: {shown} \u2014 unconfirmed (needs repeats)"
        return TargetTest(half_width=None, p_value=None, holds=False, text=text, **common)

    claim = f"{goal} reached" if higher_is_better else f"under {goal}"
    half = desc.ci_half_width
    assert half is not None and desc.std is not None
    summary = f"mean {_num(mean, digits)} \u00b1 {_num(half, digits)}, n={n}"
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
    verdict = f"a record at {level}" if holds else f"not yet a record at {level}"
    text = f"{claim}: {summary}, {format_p(p, alpha)} \u2014 {verdict}"
    return TargetTest(half_width=half, p_value=p, holds=holds, text=text, **common)


# --------------------------------------------------------------------------- #
# Grouping repeats of one configuration
# --------------------------------------------------------------------------- #


def _normalise(value: Any) -> Any:
    """Make equal settings serialise equally: 10.0 epochs is 10 epochs."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def config_key(
    params: Mapping[str, Any], hardware_class: str, ignore: Iterable[str] = ("seed",)
) -> str:
    """Stable key for "same configuration on the same class of hardware".

    Runs with equal keys are repeats of each other, so their spread is the
    run-to-run noise the comparisons need. The seed is ignored by default
    because varying it is exactly what a repeat is. Keys are canonical JSON
    (sorted keys, no whitespace); None-valued params count as unset, and
    integral floats equal their ints, so logs that write "10.0" and
    trainers that write 10 group together. Values JSON cannot encode are
    stringified.
    """
    skip = set(ignore)
    clean = {
        str(k): _normalise(v) for k, v in params.items() if k not in skip and v is not None
    }
    payload = {"hardware": hardware_class, "params": clean}
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def group_runs(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Group items by `key(item)`, keeping first-seen key order and item order.

    Order is preserved so that listings stay chronological within a group.
    """
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
