"""Every metric speedrun compares, defined once, and the one verdict on a difference.

`report`, `compare` and `stats` all read runs through the `Metric`s below and
word differences with `verdict`, so the same two sets of runs get the same
sentence everywhere. Two significance levels, each with one job:

* `ALPHA` (0.05, `--alpha`): "is this difference real?" — Welch's t-test when
  both sides have repeats;
* `RECORD_ALPHA` (0.01, fixed): confirming a record. The public CIFAR-10
  speedrun record tables (airbench) accept a record only when the mean over
  repeats beats the bar with p<0.01; `report` holds its records and `stats
  --claim` its claims to that rule.

Without repeats on a side there is no test. The gap is then measured in
run-to-run spreads: the spread observed on the side that has repeats, else the
spread of the user's own groups of repeats on the same hardware class and
recipe ("from your 3 groups of repeats on T4"), else the metric's documented
default, and the sentence says which. A gap of `likely_real_spreads(alpha)`
spreads or more (3 at α=0.05) is "likely real (…; confirm with repeats)", one
of `NOISE_SPREADS` (2) or less "within run-to-run noise", anything between
"inconclusive". Why these sizes: two single runs differ by σ·√2 from noise
alone, so a gap of 2σ is about 1.4 standard deviations of that difference,
common by chance (p≈0.16), while 3σ is about 2.1 (p≈0.03, under α=0.05) —
and since σ itself is only estimated, "several" is held to at least 3.

Default spreads, used only when no repeats measure one:

* accuracy: 0.2 points. Seed-to-seed spread of CIFAR-10 test accuracy for a
  fixed recipe is about 0.1–0.2 points for well-tuned short trainings (Jordan,
  "Calibrated chaos", arXiv:2304.01910: tens of thousands of identically
  trained ResNets); the upper end is taken, since the user's shorter,
  noisier trainings spread more rather than less;
* training time, seconds per epoch: 3% of the mean. The same job on a shared
  cloud GPU (Colab) varies by a few percent from session to session; the
  user's own T4 logs vary by about 2% from epoch to epoch within one run;
* time to a target: 10% of the mean. Besides the timing noise, the epoch at
  which a target is first reached moves by about one from seed to seed, which
  at 10 epochs is a tenth of the time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Literal, Sequence

from speedrun.errors import InsufficientData, SpeedrunError
from speedrun.analysis import groups
from speedrun.analysis.efficiency import run_efficiency
from speedrun.tracking.records import times_to_targets
from speedrun.text import MINUS, fmt_num, fmt_target

from speedrun.analysis.levels import ALPHA, RECORD_ALPHA  # defined apart: the CLI shows them at start-up
DEFAULT_TARGETS = (85.0, 90.0, 94.0)
NOISE_SPREADS = 2.0
_SEVERAL_SPREADS = 3.0
# Power of a two-sided test when sizing the repeats an inconclusive gap needs.
POWER = 0.8


# --------------------------------------------------------------------------- options


def check_alpha(alpha: float, option: str = "--alpha") -> float:
    """The one check of a significance level: strictly between 0 and 1."""
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 < alpha < 1):
        raise SpeedrunError(f"{option} must be between 0 and 1 (exclusive), got {alpha:g}")
    return float(alpha)


def check_accuracy(value: float, option: str) -> float:
    """An accuracy a user typed (`--target`, `--claim`): a finite percentage in (0, 100]."""
    if not (math.isfinite(value) and 0 < value <= 100):
        raise SpeedrunError(f"{option} must be a percentage between 0 and 100, got {value:g}")
    return float(value)


def check_targets(targets: Iterable[float], option: str = "--target") -> list[float]:
    """Distinct, checked accuracy targets in the order given."""
    return [check_accuracy(t, option) for t in dict.fromkeys(float(t) for t in targets)]


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """One measured quantity of a run, and everything needed to compare it honestly."""

    key: str  # stable name in JSON: "final_accuracy", "time_to_85"
    name: str  # in sentences: "final accuracy"
    unit: str  # "%", "s" or "" (a count)
    higher_is_better: bool
    digits: int
    read: Callable[[Any], float | None] = field(repr=False, compare=False)
    noise: float  # default run-to-run spread: in the unit, or a fraction of the mean if relative
    relative_noise: bool
    noise_basis: str  # where the default comes from (the module docstring has the sources)
    low: float | None = None  # what the metric can be: accuracy in [0, 100], times >= 0
    high: float | None = None
    needs_epochs: bool = False
    target: float | None = None

    @property
    def title(self) -> str:
        """"Final accuracy": the name at the start of a row or a line."""
        return self.name[0].upper() + self.name[1:]

    def value(self, run: Any) -> float | None:
        return self.read(run)

    def text(self, value: float | None) -> str:
        """A value with its unit: "85.50%", "120.0 s"."""
        suffix = "%" if self.unit == "%" else f" {self.unit}" if self.unit else ""
        return fmt_num(value, f".{self.digits}f" if self.unit else ",.0f", suffix)

    def amount(self, diff: float) -> str:
        """A difference with its unit: percentages differ by "points". A non-zero amount keeps
        the digits that stop it reading as zero (a spread of 0.016 s is "0.02 s", not "0.0 s")."""
        unit = "points" if self.unit == "%" else self.unit
        digits = self.digits
        while digits < 6 and diff != 0 and round(abs(diff), digits) == 0:
            digits += 1
        return fmt_num(diff, f".{digits}f", f" {unit}" if unit else "")

    @property
    def better_word(self) -> str:
        return "faster" if self.unit == "s" and not self.higher_is_better else "ahead"


def _mean_images_per_s(run: Any) -> float | None:
    known = [e.images_per_s for e in run.epochs if e.images_per_s is not None]
    return sum(known) / len(known) if known else None


_ACCURACY_BASIS = "the default spread of CIFAR-10 accuracy between seeds"
_TIME_BASIS = "the default timing spread (3% of the mean)"

FINAL_ACCURACY = Metric(
    "final_accuracy", "final accuracy", "%", True, 2, lambda r: r.final_val_acc,
    0.2, False, _ACCURACY_BASIS, 0.0, 100.0,
)
PEAK_ACCURACY = Metric(
    "peak_accuracy", "peak accuracy", "%", True, 2, lambda r: r.peak_val_acc,
    0.2, False, _ACCURACY_BASIS, 0.0, 100.0,
)
TRAINING_TIME = Metric(
    "training_time", "training time", "s", False, 1, lambda r: r.train_time_s,
    0.03, True, _TIME_BASIS, 0.0,
)
SECONDS_PER_EPOCH = Metric(
    "seconds_per_epoch", "seconds per epoch", "s", False, 2, lambda r: r.mean_epoch_s,
    0.03, True, _TIME_BASIS, 0.0,
)
IMAGES_PER_SECOND = Metric(
    "images_per_second", "images per second", "", True, 0, _mean_images_per_s,
    0.03, True, _TIME_BASIS, 0.0, needs_epochs=True,
)

_MFU_BASIS = "the default timing spread (3% of the mean), which an MFU shares"


def _mfu_percent(run: Any) -> float | None:
    e = run_efficiency(run)
    return 100.0 * e.mfu if e is not None and e.mfu is not None else None


MFU = Metric(
    "mfu", "share of peak (MFU)", "%", True, 1, _mfu_percent,
    0.03, True, _MFU_BASIS, 0.0, 100.0,
)


def time_to(target: float) -> Metric:
    """Training seconds until val accuracy first reached `target` percent."""
    return Metric(
        f"time_to_{target:g}", f"time to {fmt_target(target)}", "s", False, 1,
        lambda r: times_to_targets(r.epochs, [target])[target],
        0.10, True, "the default spread of a time to target (10% of the mean)", 0.0,
        needs_epochs=True, target=target,
    )


# What `--objective` accepts, besides `time_to:ACC`: each metric by its key, and the run columns' names.
OBJECTIVES = {
    "final_accuracy": FINAL_ACCURACY, "final_val_acc": FINAL_ACCURACY,
    "peak_accuracy": PEAK_ACCURACY, "peak_val_acc": PEAK_ACCURACY,
    "training_time": TRAINING_TIME, "train_time_s": TRAINING_TIME,
    "seconds_per_epoch": SECONDS_PER_EPOCH,
    "mfu": MFU,
}


def metric_named(text: str, option: str = "--objective") -> Metric:
    """A metric by name: `final_accuracy` (or `final_val_acc`), `training_time`, `time_to:94`, ..."""
    name = text.strip().lower()
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    for prefix in ("time_to:", "time_to_"):
        if name.startswith(prefix):
            try:
                target = float(name[len(prefix):])
            except ValueError:
                break
            return time_to(check_accuracy(target, option))
    known = ", ".join(dict.fromkeys(m.key for m in OBJECTIVES.values()))
    raise SpeedrunError(f"{option} must be one of {known} or time_to:ACC (e.g. time_to:94), not {text!r}")


def reached(run: Any, target: float) -> tuple[float, float, int] | None:
    """(seconds, accuracy, epoch) when the run first reached `target`; None if it never did
    or its time is unknown. The accuracy is the one of that moment, not the final one."""
    seconds = times_to_targets(run.epochs, [target])[target]
    if seconds is None:
        return None
    first = min((e for e in run.epochs if e.val_acc is not None and e.val_acc >= target), key=lambda e: e.epoch)
    return seconds, first.val_acc, first.epoch


def values(metric: Metric, runs: Iterable[Any]) -> list[float]:
    """The metric's known values over `runs`."""
    return [v for r in runs if (v := metric.value(r)) is not None]


# --------------------------------------------------------------------------- intervals


def interval_text(metric: Metric, desc: Any) -> str:
    """The (1 − α) interval of a mean, or why there is none.

    An interval that leaves what the metric can be (above 100% accuracy,
    below 0 s) says the runs are too few to bound the mean, not that the mean
    could be 112%: then say so.
    """
    if desc.ci_low is None:
        return MISSING_INTERVAL if desc.n < 2 else "no spread to bound it"
    if not bounded(metric, desc):
        return f"{desc.n} runs cannot bound it"
    return f"{fmt_num(desc.ci_low, f'.{metric.digits}f')} to {fmt_num(desc.ci_high, f'.{metric.digits}f')}"


MISSING_INTERVAL = "\u2014"


def bounded(metric: Metric, desc: Any) -> bool:
    """True when the interval of `desc` lies within what the metric can be."""
    if desc.ci_low is None:
        return False
    return (metric.low is None or desc.ci_low >= metric.low) and (metric.high is None or desc.ci_high <= metric.high)


def mean_text(metric: Metric, runs_values: Sequence[float]) -> str:
    """One run: its value. Several: "93.01% ± 0.12 (n=4)", the ± a 95% interval's half-width,
    or "(n=2; 2 runs cannot bound it)" when that interval leaves the metric's range."""
    from speedrun.analysis.stats import describe

    if not runs_values:
        return fmt_num(None)
    if len(runs_values) == 1:
        return metric.text(runs_values[0])
    d = describe(runs_values)
    if d.ci_half_width is None:
        return f"{metric.text(d.mean)} (n={d.n})"
    if not bounded(metric, d):
        return f"{metric.text(d.mean)} (n={d.n}; {d.n} runs cannot bound it)"
    return f"{metric.text(d.mean)} \u00b1 {fmt_num(d.ci_half_width, f'.{metric.digits}f')} (n={d.n})"


# --------------------------------------------------------------------------- noise


@dataclass(frozen=True)
class Spread:
    """A run-to-run spread in the metric's unit, and where it comes from (said in sentences)."""

    sigma: float
    source: str
    kind: Literal["observed", "groups", "default"]


def _pooled(groups_values: Iterable[Sequence[float]], relative: bool) -> tuple[float, int] | None:
    """Pooled standard deviation (or coefficient of variation) over groups with a spread."""
    from speedrun.analysis.stats import describe

    num, dof, used = 0.0, 0, 0
    for vals in groups_values:
        d = describe(vals)
        if d.std is None or d.std == 0 or (relative and not d.mean):
            continue
        s = d.std / d.mean if relative else d.std
        num += (d.n - 1) * s * s
        dof += d.n - 1
        used += 1
    return (math.sqrt(num / dof), used) if dof else None


class NoisePool:
    """Run-to-run spreads measured on the user's own repeats, per hardware class and recipe.

    `runs` is every run that may hold repeats: a list, or a function that loads
    the runs of one hardware class (more is fine: they are filtered), called only
    when a spread on that class is needed. Only true repeats (`groups.Repeats`)
    count: a group the user made of different set-ups measures the set-ups,
    not the noise.
    """

    def __init__(
        self,
        runs: Iterable[Any] | Callable[[str], Iterable[Any]] = (),
        *,
        with_epochs: Callable[[list[int]], Iterable[Any]] | None = None,
    ):
        self._source = runs if callable(runs) else list(runs)
        self._with_epochs = with_epochs  # loads runs by id with their epochs, for times to targets
        self._sets: dict[str, dict[str | None, list[list[Any]]]] = {}
        self._pooled: dict[tuple, tuple[float, int] | None] = {}
        self._loaded: dict[int, Any] = {}

    @classmethod
    def from_store(cls, store: Any) -> NoisePool:
        """The stored runs of a hardware class, listed when a spread on it is first needed; epochs
        are read only for the repeats whose times to a target are asked for."""
        return cls(lambda hardware: store.list_runs(hardware=hardware),
                   with_epochs=lambda ids: store.list_runs(ids=ids, with_epochs=True))

    def _epochs_for(self, sets: list[list[Any]]) -> list[list[Any]]:
        missing = [r.id for s in sets for r in s if not r.epochs and r.id not in self._loaded]
        if missing and self._with_epochs is not None:
            self._loaded.update((r.id, r) for r in self._with_epochs(missing))
        return [[self._loaded.get(r.id, r) for r in s] for s in sets]

    def _sets_on(self, hardware: str) -> dict[str | None, list[list[Any]]]:
        """The sets of true repeats on one hardware class, by recipe."""
        if hardware not in self._sets:
            runs = self._source(hardware) if callable(self._source) else self._source
            by_recipe: dict[str | None, list[list[Any]]] = {}
            for members in groups.repeat_sets(r for r in runs if groups.hardware_of(r) == hardware):
                by_recipe.setdefault(groups.recipe_of(members[0]), []).append(members)
            self._sets[hardware] = by_recipe
        return self._sets[hardware]

    def spread(self, metric: Metric, runs: Sequence[Any], scale: float) -> Spread | None:
        """The pooled spread of `metric` over the groups of repeats of the kinds of `runs`."""
        kinds = {(groups.hardware_of(r), groups.recipe_of(r)) for r in runs}
        kinds = {(h, recipe) for h, recipe in kinds if h != groups.UNKNOWN_HARDWARE}
        memo = (metric.key, frozenset(kinds))
        if memo not in self._pooled:
            sets = [s for h, recipe in kinds for s in self._sets_on(h).get(recipe, [])]
            if metric.needs_epochs:
                sets = self._epochs_for(sets)
            self._pooled[memo] = _pooled((values(metric, s) for s in sets), metric.relative_noise)
        pooled = self._pooled[memo]
        if pooled is None:
            return None
        sigma, used = pooled
        hardware = ", ".join(sorted({h for h, _ in kinds}))
        plural = "s" if used > 1 else ""
        return Spread(sigma * scale if metric.relative_noise else sigma,
                      f"from your {used} group{plural} of repeats on {hardware}", "groups")


def default_spread(metric: Metric, scale: float, runs: Sequence[Any]) -> Spread:
    known = sorted({groups.hardware_of(r) for r in runs} - {groups.UNKNOWN_HARDWARE})
    where = f" on {', '.join(known)}" if known else ""
    sigma = metric.noise * abs(scale) if metric.relative_noise else metric.noise
    return Spread(sigma, f"a default: no repeats{where} measure it yet", "default")


# --------------------------------------------------------------------------- the verdict

Kind = Literal["significant", "likely_real", "noise", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    """Is B − A real? `text` is the sentence; `line` puts the metric in front of it."""

    metric: str
    title: str
    names: tuple[str, str]
    kind: Kind
    winner: Literal["a", "b"] | None
    diff: float
    text: str
    n_a: int
    n_b: int
    p_value: float | None = None  # Welch's test, when both sides have repeats
    ci_low: float | None = None
    ci_high: float | None = None
    spread: float | None = None  # the run-to-run spread a gap was measured in
    spread_source: str | None = None
    spreads: float | None = None  # the gap in spreads
    needed_n: int | None = None

    @property
    def line(self) -> str:
        return f"{self.title}: {self.text}"

    @property
    def winner_name(self) -> str | None:
        return None if self.winner is None else self.names[0 if self.winner == "a" else 1]

    def confirms_record(self) -> bool:
        """The record rule: B beats A with p < RECORD_ALPHA (Welch, so repeats on both sides)."""
        return self.winner == "b" and self.p_value is not None and self.p_value < RECORD_ALPHA

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["line"] = self.line
        data["winner_name"] = self.winner_name
        return data


def likely_real_spreads(alpha: float) -> float:
    """Spreads a single-run gap must reach to be "likely real": the gap of two single runs
    that a two-sided test at `alpha` would call real (z·√2), and never fewer than 3."""
    from scipy import special

    return max(_SEVERAL_SPREADS, float(special.ndtri(1 - alpha / 2)) * math.sqrt(2))


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "many"
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"


def verdict(
    metric: Metric,
    a: Sequence[Any],
    b: Sequence[Any],
    *,
    names: tuple[str, str] = ("A", "B"),
    alpha: float = ALPHA,
    pool: NoisePool | None = None,
) -> Verdict:
    """The one verdict on B − A for `metric`, over two sets of runs.

    Both sides with repeats (and some spread): Welch's t-test at `alpha`. Else
    the gap is measured in run-to-run spreads (see the module docstring).
    """
    from speedrun.analysis import stats

    check_alpha(alpha)
    va, vb = values(metric, a), values(metric, b)
    for name, vals in zip(names, (va, vb)):
        if not vals:
            raise InsufficientData(f"no {metric.name} values for {name}: nothing to compare")
    da, db = stats.describe(va, confidence=1 - alpha), stats.describe(vb, confidence=1 - alpha)
    diff = db.mean - da.mean
    if abs(diff) <= 1e-9 * max(1.0, abs(da.mean), abs(db.mean)):
        diff = 0.0  # float rounding (mean(88.1, 88.3) is 88.19999999999999), not a difference
    common = dict(metric=metric.key, title=metric.title, names=names, diff=diff, n_a=da.n, n_b=db.n)
    name_a, name_b = names
    counts = f"n={da.n} vs {db.n}"
    diff_text = f"{name_b} {MINUS} {name_a} = {metric.amount(diff)}"
    better_b = (diff > 0) == metric.higher_is_better
    winner: Literal["a", "b"] = "b" if better_b else "a"
    who = name_b if better_b else name_a

    welch = stats.welch(da, db, alpha) if da.n >= 2 and db.n >= 2 else None
    if welch is not None:
        ci = f"{(1 - alpha) * 100:g}% CI"
        p_text = stats.format_p(welch.p_value, alpha)
        if welch.p_value < alpha:
            lo, hi = (welch.ci_low, welch.ci_high) if diff > 0 else (-welch.ci_high, -welch.ci_low)
            text = (f"{who} is {metric.better_word} by {metric.amount(abs(diff))} "
                    f"({ci} {fmt_num(lo, f'.{metric.digits}f')} to {fmt_num(hi, f'.{metric.digits}f')}, "
                    f"{p_text}, {counts})")
            return Verdict(kind="significant", winner=winner, text=text, p_value=welch.p_value,
                           ci_low=welch.ci_low, ci_high=welch.ci_high, **common)
        text = (f"No significant difference: {diff_text} ({ci} {fmt_num(welch.ci_low, f'.{metric.digits}f')} "
                f"to {fmt_num(welch.ci_high, f'.{metric.digits}f')}, {p_text}, {counts}); within run-to-run noise")
        return Verdict(kind="noise", winner=None, text=text, p_value=welch.p_value,
                       ci_low=welch.ci_low, ci_high=welch.ci_high, **common)
    if da.n >= 2 and db.n >= 2 and diff == 0:
        text = f"No significant difference: {diff_text} (all runs identical, {counts}); within run-to-run noise"
        return Verdict(kind="noise", winner=None, text=text, p_value=1.0, **common)

    spread = _spread(metric, (da, db), names, a, b, pool)
    ratio = abs(diff) / spread.sigma if spread.sigma > 0 else (0.0 if diff == 0 else math.inf)
    measured = f"{_times(ratio)}\u00d7 the typical run-to-run spread of {metric.amount(spread.sigma)}, {spread.source}"
    gap = dict(spread=spread.sigma, spread_source=spread.source, spreads=ratio, **common)
    if ratio >= likely_real_spreads(alpha):
        text = f"{who} is {metric.better_word} by {metric.amount(abs(diff))}: likely real ({measured}; confirm with repeats)"
        return Verdict(kind="likely_real", winner=winner, text=text, **gap)
    if ratio <= NOISE_SPREADS:
        return Verdict(kind="noise", winner=None, text=f"{diff_text}: within run-to-run noise ({measured})", **gap)
    needed = stats.required_runs(diff, spread.sigma, alpha=alpha, power=POWER)
    text = f"{diff_text}: inconclusive ({measured}; about {needed:,} runs per side would settle it)"
    return Verdict(kind="inconclusive", winner=None, text=text, needed_n=needed, **gap)


def _spread(metric: Metric, descs: Sequence[Any], names: Sequence[str], a: Sequence[Any], b: Sequence[Any],
            pool: NoisePool | None) -> Spread:
    """The spread a gap is measured in: the sides' own repeats, the user's groups, the default."""
    from speedrun.analysis.stats import pooled_sd

    observed = pooled_sd(descs)
    if observed > 0:
        sides = [name for name, d in zip(names, descs) if d.n >= 2 and d.std]
        runs = sum(d.n for d in descs if d.n >= 2 and d.std)
        return Spread(observed, f"from the {runs} runs of {' and '.join(sides)}", "observed")
    scale = sum(d.mean * d.n for d in descs) / sum(d.n for d in descs)
    found = pool.spread(metric, [*a, *b], scale) if pool is not None else None
    return found or default_spread(metric, scale, [*a, *b])


def verdict_line(metric: Metric, a: Sequence[Any], b: Sequence[Any], **kwargs: Any) -> str:
    """`verdict(...).line`: "Final accuracy: Run 2 − Run 1 = …"."""
    return verdict(metric, a, b, **kwargs).line
