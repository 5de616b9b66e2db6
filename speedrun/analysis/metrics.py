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

Both sides with repeats: Welch's t-test, and "significant" only with at least
3 runs a side (`MIN_REPEATS`): two runs a side are "inconclusive" whatever p
says, since two runs cannot show how a set-up spreads. Otherwise the gap is
measured in standard errors of the difference, √(σ²/n_a + σ²/n_b), with σ the
spread of one run, taken in this order:

1. the sides' own repeats, when they hold at least 2 degrees of freedom
   (`MIN_DOF`: the sd of two runs is a guess);
2. the user's repeats of the same kind of run (`groups.noise_kind`: hardware
   class, model, epoch budget and precision; never another model's);
3. a default: for accuracy the test set's binomial error √(p(1 − p)/n) at
   that accuracy and test size with a seed-to-seed spread on top (the default,
   or the runs' own swing over their last epochs where larger: `late_swing`);
   for a subset or stopped run, whose seed-to-seed spread nothing measures, the
   binomial error alone, and such a gap is never "likely real".

An accuracy spread is never below the binomial error: 10,000 test images at
88% are uncertain by 0.32 points whatever the seed. Times (and MFU) are
compared as a ratio, their spread a fraction of the mean, and only within one
hardware class: across classes the sentence gives the ratio and says the
hardware differs. A gap of `likely_real_spreads(alpha)` standard errors or
more (3/√2 = 2.1 at α=0.05, the gap of three spreads between two single runs;
Student's t on the spread's degrees of freedom where repeats measured it, 4.3
on two) is "likely real (…; confirm with repeats)", one of √2 or less "within
run-to-run noise", anything between "inconclusive". Every sentence states n,
the spread per run and where it came from, in the same words everywhere.

Default spreads, used only when no repeats measure one:

* accuracy: 0.2 points of seed-to-seed spread, on top of the binomial error.
  Seed-to-seed spread of CIFAR-10 test accuracy for a
  fixed recipe is about 0.1–0.2 points for well-tuned short trainings (Jordan,
  "Calibrated chaos", arXiv:2304.01910: tens of thousands of identically
  trained ResNets); the upper end is taken, since the user's shorter,
  noisier trainings spread more rather than less. Where the runs' accuracy
  still swings at their end (a learning rate that never decayed: the user's
  10-epoch T4 runs move 1-2 points between their last epochs), the swing is
  measured instead (`late_swing`, about 0.8 points there): a run could as
  well have stopped anywhere in it;
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
from functools import cached_property
from statistics import NormalDist
from typing import Any, Callable, Iterable, Literal, Sequence

from speedrun.errors import InsufficientData, SpeedrunError
from speedrun.analysis import groups
from speedrun.domain.efficiency import run_efficiency
from speedrun.domain.hardware import UNKNOWN_HARDWARE, UNNAMED_GPU, hardware_class_of
from speedrun.domain.memo import per_run
from speedrun.domain.records import times_to_targets
from speedrun.text import MINUS, counted, fmt_num, fmt_target

from speedrun.analysis.levels import ALPHA, RECORD_ALPHA  # defined apart: the CLI shows them at start-up
DEFAULT_TARGETS = (85.0, 90.0, 94.0)
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


def seconds_to(run: Any, target: float) -> float | None:
    """Training seconds until the run's val accuracy first reached `target` (`times_to_targets`): the
    default targets in one pass over its epochs, once per run; another target once per run too."""
    known = per_run(run, "times_to", lambda r: times_to_targets(r.epochs, DEFAULT_TARGETS))
    if target not in known:
        known[target] = times_to_targets(run.epochs, [target])[target]
    return known[target]


def time_to(target: float) -> Metric:
    """Training seconds until val accuracy first reached `target` percent."""
    return Metric(
        f"time_to_{target:g}", f"time to {fmt_target(target)}", "s", False, 1,
        lambda r: seconds_to(r, target),
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
    seconds = seconds_to(run, target)
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
    """One run: its value. Several: "93.01% ± 0.12 (95% CI, n=4)", the ± a 95% interval's half-width,
    or "(n=2; 2 runs cannot bound it)" when that interval leaves the metric's range."""
    from speedrun.domain.stats import describe

    if not runs_values:
        return fmt_num(None)
    if len(runs_values) == 1:
        return metric.text(runs_values[0])
    d = describe(runs_values)
    if d.ci_half_width is None:
        return f"{metric.text(d.mean)} (n={d.n})"
    if not bounded(metric, d):
        return f"{metric.text(d.mean)} (n={d.n}; {d.n} runs cannot bound it)"
    # "± 0.10 (95% CI, n=5)": the report's group tables give a standard deviation after their ±.
    return f"{metric.text(d.mean)} \u00b1 {fmt_num(d.ci_half_width, f'.{metric.digits}f')} (95% CI, n={d.n})"


# --------------------------------------------------------------------------- noise

# Default seed-to-seed spread of accuracy on top of the test set's binomial error (the module
# docstring has the source); used only when no repeats of the set-up measure one.
SEED_SPREAD = 0.2
# A spread is measured on at least 3 runs (2 degrees of freedom): the sd of two runs is a guess.
MIN_DOF = 2


@dataclass(frozen=True)
class Spread:
    """A run-to-run spread per run, and where it comes from (said in every sentence).

    `sigma` is in the metric's unit, or a fraction of the mean for relative metrics (times,
    MFU). `conclusive` is False when nothing measures the seed-to-seed part (a subset or a
    stopped run without repeats): such a spread cannot make a gap "likely real".
    """

    sigma: float
    source: str
    kind: Literal["observed", "groups", "floor", "default"]
    conclusive: bool = True
    dof: int | None = None  # degrees of freedom of a spread measured on repeats; None: taken as known


def binomial_error(accuracy: float, images: int) -> float:
    """The test set's own standard error of an accuracy, in points: √(p(1 − p)/n). A single
    evaluation on 10,000 images at 88% is uncertain by 0.32 points whatever the seed."""
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / images)


def _pooled(groups_values: Iterable[Sequence[float]], relative: bool) -> tuple[float, int, int] | None:
    """Pooled standard deviation (or coefficient of variation) over groups with a spread:
    (spread, groups used, degrees of freedom)."""
    from speedrun.domain.stats import describe

    num, dof, used = 0.0, 0, 0
    for vals in groups_values:
        d = describe(vals)
        if d.std is None or d.std == 0 or (relative and not d.mean):
            continue
        s = d.std / d.mean if relative else d.std
        num += (d.n - 1) * s * s
        dof += d.n - 1
        used += 1
    return (math.sqrt(num / dof), used, dof) if dof else None


# The stored runs per hardware class a noise pool reads (the latest ones): see `NoisePool.from_store`.
POOL_LATEST = 200


class NoisePool:
    """Run-to-run spreads measured on the user's own repeats of the same kind of run.

    `runs` is every run that may hold repeats: a list, or a function
    `runs(hardware, latest)` that loads the latest `latest` runs of one hardware
    class (None: all of them; more is fine: they are filtered), called only when
    a spread on that class is needed. Only true repeats (`groups.Repeats`)
    count, and only those of the same hardware class, model, epoch budget and
    precision as the runs compared (`groups.noise_kind`): a spread measured on
    SimpleCNN says nothing about ResNet-18, nor a T4's timing about a CPU's.
    """

    def __init__(
        self,
        runs: Iterable[Any] | Callable[[str, int | None], Iterable[Any]] = (),
        *,
        with_epochs: Callable[[list[int]], Iterable[Any]] | None = None,
        latest: int | None = None,
    ):
        self._source = runs if callable(runs) else list(runs)
        self._with_epochs = with_epochs  # loads runs by id with their epochs, for times to targets
        self._latest = latest  # how many of a class's latest runs `runs(hardware, latest)` is asked for first
        self._sets: dict[tuple[str, bool], dict[tuple, list[list[Any]]]] = {}
        self._capped: dict[str, int] = {}  # classes whose older runs the first read left out: how many it kept
        self._pooled: dict[tuple, tuple[tuple[float, int, int], list[str]] | None] = {}
        self._loaded: dict[int, Any] = {}

    @classmethod
    def from_store(cls, store: Any, *, latest: int | None = POOL_LATEST) -> NoisePool:
        """The stored runs of a hardware class, listed when a spread on it is first needed: the
        latest `latest` of them first, all of them only when those hold too few repeats of the
        kind compared. So a verdict costs the same however large the database grows (hundreds of
        runs give a spread hundreds of degrees of freedom), and its sentence says when older runs
        were left out. Epochs are read only for the repeats whose times to a target are asked for."""
        return cls(lambda hardware, limit: store.list_runs(hardware_class=hardware, limit=limit),
                   with_epochs=lambda ids: store.list_runs(ids=ids, with_epochs=True), latest=latest)

    def _epochs_for(self, sets: list[list[Any]]) -> list[list[Any]]:
        missing = [r.id for s in sets for r in s if not r.epochs and r.id not in self._loaded]
        if missing and self._with_epochs is not None:
            self._loaded.update((r.id, r) for r in self._with_epochs(missing))
        return [[self._loaded.get(r.id, r) for r in s] for s in sets]

    def _sets_on(self, hardware: str, *, complete: bool) -> dict[tuple, list[list[Any]]]:
        """The sets of true repeats on one hardware class, by kind of run: among its latest runs,
        or (`complete`) among all of them."""
        if complete and hardware not in self._capped:
            complete = False  # the first read left nothing out
        if (hardware, complete) not in self._sets:
            if callable(self._source):
                runs = self._source(hardware, None if complete else self._latest)
                matching = getattr(runs, "matching", None)
                if not complete and matching is not None and matching > len(runs):
                    self._capped[hardware] = len(runs)
            else:
                runs = self._source
            by_kind: dict[tuple, list[list[Any]]] = {}
            for members in groups.repeat_sets(r for r in runs if hardware_class_of(r) == hardware):
                by_kind.setdefault(groups.noise_kind(members[0]), []).append(members)
            self._sets[hardware, complete] = by_kind
        return self._sets[hardware, complete]

    def _pool(self, metric: Metric, kinds: set[tuple], *, complete: bool) -> tuple[float, int, int] | None:
        per_kind = [self._sets_on(kind[0], complete=complete).get(kind, []) for kind in kinds]
        sets = [s for found in per_kind for s in found]
        if metric.needs_epochs:
            sets = self._epochs_for(sets)
        pooled = _pooled((values(metric, s) for s in sets), metric.relative_noise)
        return pooled if pooled and all(per_kind) and pooled[2] >= MIN_DOF else None

    def spread(self, metric: Metric, runs: Sequence[Any]) -> Spread | None:
        """The pooled spread of `metric` over the user's repeats of every kind among `runs`; None
        unless each kind has repeats and they hold at least `MIN_DOF` degrees of freedom."""
        kinds = {groups.noise_kind(r) for r in runs}
        if any(kind[0] == UNKNOWN_HARDWARE for kind in kinds):
            return None
        memo = (metric.key, frozenset(kinds))
        if memo not in self._pooled:
            pooled = self._pool(metric, kinds, complete=False)
            capped = sorted({kind[0] for kind in kinds} & set(self._capped))
            if pooled is None and capped:  # too few among the latest runs: look at every run
                pooled, capped = self._pool(metric, kinds, complete=True), []
            self._pooled[memo] = None if pooled is None else (pooled, capped)
        if self._pooled[memo] is None:
            return None
        (sigma, used, dof), capped = self._pooled[memo]
        classes = ", ".join(sorted({kind[0] for kind in kinds}))
        latest = " and ".join(f"{self._capped[c]:,} runs on {c}" for c in capped)
        among = f" (among your latest {latest})" if latest else ""
        return Spread(sigma, f"from your {counted(used, 'group')} of repeats of the same model, epochs and "
                             f"precision on {classes}{among}", "groups", dof=dof)


def _hardware_text(runs: Sequence[Any]) -> str:
    known = sorted({hardware_class_of(r) for r in runs} - {UNKNOWN_HARDWARE})
    return f" on {', '.join(known)}" if known else ""


# The last epochs whose swings show how far a final accuracy moves with the seed (`late_swing`).
LATE_EPOCHS = 5


def late_swing(run: Any) -> float | None:
    """How far the run's val accuracy swung about its own trend over its last `LATE_EPOCHS`
    epochs, in points: the standard deviation of the second differences over √6 (a swing of σ
    per epoch gives second differences of variance 6σ²; a steady rise or an even bend, a curve
    levelling off, gives none). Only for a run with at least twice `LATE_EPOCHS` epochs with an
    accuracy, so the epochs read are its second half, past the steep start; None otherwise. A
    run that ends while its accuracy still swings (a learning rate that never decayed) could as
    well have ended anywhere in the swing: another seed moves its final accuracy that much."""
    return per_run(run, "late_swing", _late_swing)


def _late_swing(run: Any) -> float | None:
    accuracies = [e.val_acc for e in sorted(run.epochs, key=lambda e: e.epoch) if e.val_acc is not None]
    if len(accuracies) < 2 * LATE_EPOCHS:
        return None
    last = accuracies[-LATE_EPOCHS:]
    bends = [a - 2 * b + c for a, b, c in zip(last, last[1:], last[2:])]
    mean = sum(bends) / len(bends)
    return math.sqrt(sum((x - mean) ** 2 for x in bends) / (len(bends) - 1) / 6)


def _seed_spread(metric: Metric, runs: Sequence[Any]) -> tuple[float, str]:
    """The seed-to-seed part of an accuracy's default spread, and its words: the usual default, or
    the runs' own late swing (`late_swing`, pooled) where that is larger."""
    swings = [s for r in runs if (s := late_swing(r)) is not None]
    digits = f".{metric.digits}f"
    swing = math.sqrt(sum(s * s for s in swings) / len(swings)) if swings else 0.0
    if swing <= metric.noise:
        return metric.noise, f"seed-to-seed {fmt_num(metric.noise, digits)}"
    whose = "its" if len(swings) == 1 else "their"
    return swing, (f"seed-to-seed {fmt_num(swing, digits)}, the swing of {whose} accuracy over {whose} last "
                   f"{LATE_EPOCHS} epochs (more than the usual {fmt_num(metric.noise, digits)})")


def default_spread(metric: Metric, runs: Sequence[Any], accuracy: float | None = None) -> Spread:
    """The spread when no repeats measure one. Accuracy: the test set's binomial error at that
    accuracy and test size with a seed-to-seed spread on top (√(b² + s²)): the default, or the
    runs' own late swing where larger (`late_swing`: an accuracy that still swings 1 point from
    epoch to epoch at the end has more than 0.2 points of seed noise); for a subset or a stopped
    run nothing measures the seed-to-seed part, so the binomial error alone, and the spread
    cannot make a gap likely real. Other metrics: their documented default."""
    if metric.unit == "%" and not metric.relative_noise and accuracy is not None:
        images = min(groups.evaluated_on(r) for r in runs)
        floor = binomial_error(accuracy, images)
        binomial = f"the binomial error of {images:,} test images at {fmt_num(accuracy, '.2f', '%')}"
        odd = list(dict.fromkeys(f"a run that {groups.exclusion_words(r)}" for r in runs if groups.exclusion(r)))
        if odd:
            return Spread(floor, f"{binomial} alone: no repeats measure the seed-to-seed spread of "
                                 f"{' or '.join(odd)}", "floor", conclusive=False)
        seed, seed_words = _seed_spread(metric, runs)
        return Spread(math.hypot(floor, seed),
                      f"a default: {binomial} ({fmt_num(floor, f'.{metric.digits}f')}) with {seed_words}; "
                      f"no repeats{_hardware_text(runs)} measure it yet", "floor")
    return Spread(metric.noise, f"a default: no repeats{_hardware_text(runs)} measure it yet", "default")


# --------------------------------------------------------------------------- the verdict

Kind = Literal["significant", "likely_real", "noise", "inconclusive", "hardware"]


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
    spread: float | None = None  # the run-to-run spread per run (a fraction of the mean for times)
    spread_source: str | None = None
    spreads: float | None = None  # the gap in standard errors of the difference
    needed_n: int | None = None
    ratio: float | None = None  # B / A, for times
    # The two sides' values for P(a run of B beats a run of A), computed when first asked (a bootstrap
    # of a few milliseconds, too dear for every versus line of a 10,000-run report that never shows it)
    improvement_of: tuple[tuple[float, ...], tuple[float, ...], bool, float] | None = field(
        default=None, repr=False, compare=False)

    @cached_property
    def _improvement(self) -> Any:
        from speedrun.domain import stats

        if self.improvement_of is None:
            return None
        a, b, higher_is_better, confidence = self.improvement_of
        return stats.probability_of_improvement(a, b, higher_is_better=higher_is_better, confidence=confidence)

    @property
    def p_improvement(self) -> float | None:
        """P(a run of B beats a run of A), beside Welch's test (`stats.probability_of_improvement`)."""
        return None if self._improvement is None else self._improvement.p

    @property
    def p_improvement_ci(self) -> tuple[float, float] | None:
        """Its bootstrap interval."""
        return None if self._improvement is None else (self._improvement.ci_low, self._improvement.ci_high)

    @property
    def line(self) -> str:
        return f"{self.title}: {self.text}"

    @property
    def winner_name(self) -> str | None:
        return None if self.winner is None else self.names[0 if self.winner == "a" else 1]

    def confirms_record(self) -> bool:
        """The record rule: B beats A with p < RECORD_ALPHA (Welch, so repeats on both sides)."""
        return (self.kind == "significant" and self.winner == "b" and self.p_value is not None
                and self.p_value < RECORD_ALPHA)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["improvement_of"]
        data["p_improvement"], data["p_improvement_ci"] = self.p_improvement, self.p_improvement_ci
        data["line"] = self.line
        data["winner_name"] = self.winner_name
        return data


# Repeats a side needs before Welch's test may call a difference real.
MIN_REPEATS = 3
# A gap of at most √2 standard errors of the difference (two spreads of one run) is noise.
NOISE_SPREADS = math.sqrt(2.0)


def likely_real_spreads(alpha: float, dof: int | None = None) -> float:
    """Standard errors of the difference a gap must reach to be "likely real": the two-sided
    quantile at `alpha` (Student's t with the spread's degrees of freedom where repeats measured
    it, since an estimated spread makes the gap over it a t statistic: 4.30 on 2 degrees of
    freedom, not 1.96), and never fewer than 3/√2 (three spreads of one run)."""
    if dof:
        from speedrun.domain.stats import t_quantile

        quantile = t_quantile(1 - alpha / 2, dof)
    else:
        quantile = NormalDist().inv_cdf(1 - alpha / 2)
    return max(_SEVERAL_SPREADS / math.sqrt(2.0), quantile)


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "many"
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"


def _percent(fraction: float) -> str:
    """A fraction as a percentage, with the digits that stop a non-zero one reading as 0.0%."""
    digits = 1
    while digits < 6 and fraction != 0 and round(100 * fraction, digits) == 0:
        digits += 1
    return f"{100 * fraction:.{digits}f}%"


def _hardware_apart(a: Sequence[Any], b: Sequence[Any], names: tuple[str, str]) -> str | None:
    """Why a time of one side is not one of the other's set-up, if it is not: their hardware
    classes differ, or only some runs name their machine (a laptop CPU against a run that states
    none read "Run 2 is faster, 0.27× the time: likely real"; a GPU nothing names may be any).
    Where no run names one, the runs are taken to share their unstated machine. The classes are
    named side by side, B's first as in "B − A" ("the hardware differs (T4 vs A100)" after
    "Run 15 − Run 1" read as Run 15 on T4)."""
    ha = {hardware_class_of(r) for r in a}
    hb = {hardware_class_of(r) for r in b}
    unnamed = {UNKNOWN_HARDWARE, UNNAMED_GPU}
    if ha == hb and (not ha & unnamed or len(ha) == 1):
        return None
    classes = f"({names[1]} on {', '.join(sorted(hb))}, {names[0]} on {', '.join(sorted(ha))})"
    if (ha | hb) & unnamed:
        return f"the hardware is not known to be the same {classes}"
    return f"the hardware differs {classes}"


def _not_standing(a: Sequence[Any], b: Sequence[Any]) -> tuple[str, bool] | None:
    """The runs compared whose final numbers are not their set-up's (stopped early, died, still
    running; a subset's are its own set-up's, measured on fewer images), in words, and whether
    they are several. None when all stand."""
    odd = [f"Run {r.display_label} {groups.exclusion_words(r)}" for r in (*a, *b)
           if groups.exclusion(r) and groups.subset_of(r) is None]
    if not odd:
        return None
    return ", ".join(odd[:2]) + (f" and {len(odd) - 2} more" if len(odd) > 2 else ""), len(odd) > 1


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

    Times (and MFU) are compared as a ratio, and only on one hardware class: across classes the
    sentence gives the ratio and says the hardware differs. Both sides with repeats: Welch's
    t-test at `alpha`, "significant" only with `MIN_REPEATS` runs a side. Else the gap is
    measured in standard errors of the difference, √(σ²/n_a + σ²/n_b), σ the spread per run
    (`_spread`). Every sentence states n, the spread and where it came from.
    """
    from speedrun.domain import stats

    check_alpha(alpha)
    va, vb = values(metric, a), values(metric, b)
    for name, vals in zip(names, (va, vb)):
        if not vals:
            raise InsufficientData(f"no {metric.name} values for {name}: nothing to compare")
    da, db = stats.describe(va, confidence=1 - alpha), stats.describe(vb, confidence=1 - alpha)
    diff = db.mean - da.mean
    if abs(diff) <= 1e-9 * max(1.0, abs(da.mean), abs(db.mean)):
        diff = 0.0  # float rounding (mean(88.1, 88.3) is 88.19999999999999), not a difference
    relative = metric.relative_noise and da.mean > 0 and db.mean > 0
    ratio = db.mean / da.mean if relative else None
    common = dict(metric=metric.key, title=metric.title, names=names, diff=diff, n_a=da.n, n_b=db.n, ratio=ratio)
    name_a, name_b = names
    # Unequal counts name their sides: "(n=1 vs 5)" after "B − A" reads as B's 1 run.
    counts = f"n={da.n} vs {db.n}" if da.n == db.n else f"n={da.n} for {name_a}, {db.n} for {name_b}"
    times = f", {ratio:.2f}\u00d7 the time" if ratio is not None and metric.unit == "s" else ""
    diff_text = f"{name_b} {MINUS} {name_a} = {metric.amount(diff)}{times}"
    better_b = (diff > 0) == metric.higher_is_better
    winner: Literal["a", "b"] = "b" if better_b else "a"
    who = name_b if better_b else name_a
    if times and not better_b:
        times = f", {1 / ratio:.2f}\u00d7 the time"  # the winner's time over the other's
    ahead = f"{who} is {metric.better_word} by {metric.amount(abs(diff))}{times}"

    if metric.relative_noise and (apart := _hardware_apart(a, b, names)):
        text = f"{diff_text}: {apart}, so this is a ratio of machines, not a verdict on the set-up ({counts})"
        return Verdict(kind="hardware", winner=None, text=text, **common)
    # A stopped run's final numbers are an early epoch's: never "significant" or "likely real".
    unsettled = None
    if standing := _not_standing(a, b):
        stopped, several = standing
        its, set_up, set_ups = ("their", "set-ups", "set-ups'") if several else ("its", "set-up", "set-up's")
        if metric is TRAINING_TIME:  # it is faster because it stopped
            text = f"{diff_text}: not a verdict: {stopped}, so {its} total time is not {its} {set_ups} ({counts})"
            return Verdict(kind="inconclusive", winner=None, text=text, **common)
        unsettled = f"{stopped}, so {its} numbers do not stand for {its} {set_up}"

    welch = stats.welch(da, db, alpha) if da.n >= 2 and db.n >= 2 else None
    if welch is not None:
        ci = f"{(1 - alpha) * 100:g}% CI"
        p_text = stats.format_p(welch.p_value, alpha)
        sd = stats.pooled_sd((da, db))
        measured = f"{counts}; spread {metric.amount(sd)} per run, from the runs' own repeats"
        found = dict(p_value=welch.p_value, ci_low=welch.ci_low, ci_high=welch.ci_high, spread=sd,
                     spread_source="from the runs' own repeats",
                     improvement_of=(tuple(va), tuple(vb), metric.higher_is_better, 1 - alpha))
        interval = f"{fmt_num(welch.ci_low, f'.{metric.digits}f')} to {fmt_num(welch.ci_high, f'.{metric.digits}f')}"
        if welch.p_value < alpha and unsettled:
            text = f"{diff_text}: inconclusive ({ci} {interval}, {p_text}, Welch's t-test; {measured}; {unsettled})"
            return Verdict(kind="inconclusive", winner=None, text=text, **found, **common)
        if welch.p_value < alpha and min(da.n, db.n) >= MIN_REPEATS:
            lo, hi = (welch.ci_low, welch.ci_high) if diff > 0 else (-welch.ci_high, -welch.ci_low)
            text = (f"{ahead} ({ci} {fmt_num(lo, f'.{metric.digits}f')} to {fmt_num(hi, f'.{metric.digits}f')}, "
                    f"{p_text}, Welch's t-test; {measured})")
            return Verdict(kind="significant", winner=winner, text=text, **found, **common)
        if welch.p_value < alpha:
            needed = MIN_REPEATS - min(da.n, db.n)
            text = (f"{diff_text}: inconclusive ({ci} {interval}, {p_text}, Welch's t-test; {measured}; "
                    f"fewer than {MIN_REPEATS} runs a side cannot settle it: {needed} more on the smaller side)")
            return Verdict(kind="inconclusive", winner=None, text=text, **found, **common)
        # Not significant is not shown to be noise: 0.36 points with an interval of −0.10 to 0.81 may be real.
        far = max(welch.ci_low, welch.ci_high, key=abs)
        text = (f"No significant difference: {diff_text} ({ci} {interval}, {p_text}, Welch's t-test; {measured}); "
                f"not shown to be real: the interval holds both no difference and {metric.amount(far)}"
                + (f"; {unsettled}" if unsettled else ""))
        return Verdict(kind="noise", winner=None, text=text, **found, **common)
    if da.n >= 2 and db.n >= 2 and diff == 0:
        text = f"No significant difference: {diff_text} (all runs identical, {counts}); within run-to-run noise"
        return Verdict(kind="noise", winner=None, text=text, p_value=1.0, **common)

    spread = _spread(metric, (da, db), names, a, b, pool)
    scale = math.sqrt(1 / da.n + 1 / db.n)
    if relative:
        gap, se = abs(math.log(db.mean / da.mean)), spread.sigma * scale
        spread_text, se_text = f"{_percent(spread.sigma)} of the mean", _percent(se)
    else:
        gap, se = abs(diff), spread.sigma * scale
        spread_text, se_text = metric.amount(spread.sigma), metric.amount(se)
    z = gap / se if se > 0 else (0.0 if gap == 0 else math.inf)
    measured = (f"{counts}; {_times(z)}\u00d7 the standard error of the difference, {se_text}; "
                f"spread {spread_text} per run, {spread.source}")
    found = dict(spread=spread.sigma, spread_source=spread.source, spreads=z, **common)
    if z <= NOISE_SPREADS:
        said = f"{measured}; {unsettled}" if unsettled else measured
        return Verdict(kind="noise", winner=None, text=f"{diff_text}: within run-to-run noise ({said})", **found)
    threshold = likely_real_spreads(alpha, spread.dof)
    if unsettled:  # more stopped runs would settle nothing: no count of runs is offered
        text = f"{diff_text}: inconclusive ({measured}; {unsettled})"
        return Verdict(kind="inconclusive", winner=None, text=text, **found)
    if z >= threshold and spread.conclusive:
        text = f"{ahead}: likely real ({measured}; confirm with repeats)"
        return Verdict(kind="likely_real", winner=winner, text=text, **found)
    if not spread.conclusive:
        text = f"{diff_text}: inconclusive ({measured}; only repeats can settle it)"
        return Verdict(kind="inconclusive", winner=None, text=text, **found)
    needed = stats.required_runs(gap, spread.sigma, alpha=alpha, power=POWER)
    text = f"{diff_text}: inconclusive ({measured}; about {needed:,} runs per side would settle it {POWER:.0%} of the time)"
    return Verdict(kind="inconclusive", winner=None, text=text, needed_n=needed, **found)


def _spread(metric: Metric, descs: Sequence[Any], names: Sequence[str], a: Sequence[Any], b: Sequence[Any],
            pool: NoisePool | None) -> Spread:
    """The spread per run a gap is measured in, in order: the sides' own repeats (at least
    `MIN_DOF` degrees of freedom), the user's repeats of the same kind of run (`NoisePool`),
    the default (`default_spread`). An accuracy spread is never smaller than the test set's
    binomial error at that accuracy and test size, nor than the sides' own runs show with
    fewer degrees of freedom: two runs of a side 5 points apart are not measured in a default
    of 0.4 (a side of a `--by` that mixes a 10- and a 20-epoch run read "likely real")."""
    from speedrun.domain.stats import pooled_sd

    runs = [*a, *b]
    total = sum(d.n for d in descs)
    mean = sum(d.mean * d.n for d in descs) / total
    accuracy = mean if metric.unit == "%" and not metric.relative_noise else None
    floor = binomial_error(accuracy, min(groups.evaluated_on(r) for r in runs)) if accuracy is not None else 0.0
    repeated = [(name, d) for name, d in zip(names, descs) if d.n >= 2 and d.std]
    observed: Spread | None = None
    if repeated:
        sigma = pooled_sd([d for _, d in repeated]) / (mean if metric.relative_noise else 1.0)
        observed = Spread(sigma, f"from the {sum(d.n for _, d in repeated)} runs of "
                                 f"{' and '.join(name for name, _ in repeated)}", "observed",
                          dof=sum(d.n - 1 for _, d in repeated))
    found = observed if sum(d.n - 1 for _, d in repeated) >= MIN_DOF else None
    if found is None and pool is not None:
        found = pool.spread(metric, runs)
    if found is None:
        found = default_spread(metric, runs, accuracy)  # never below the binomial error it holds
    if observed is not None and observed.sigma > found.sigma:  # the runs themselves spread more
        return Spread(observed.sigma, f"{observed.source}, more than the {metric.amount(found.sigma)} of "
                                      f"{found.source}", "observed", dof=observed.dof)
    if found.sigma < floor:
        images = min(groups.evaluated_on(r) for r in runs)
        return Spread(floor, f"the binomial error of {images:,} test images at {fmt_num(accuracy, '.2f', '%')}, "
                             f"above the {metric.amount(found.sigma)} {found.source}", "floor",
                      dof=found.dof)  # the repeats that measured less are still few: their t holds
    return found
