"""The run a practitioner would compare a run with, and the "versus" lines of the report.

A run's baseline is the run its own text names ("Same as Run 20", "vs Run
15", "Building on Run 15's success"); else, for a member of a series, the
series' previous member; else the nearest earlier run (notebook, then creation
order: `groups.order_key`) of the same model and hardware class that differs
from it in the fewest settings (`groups.differences`), completed on the full
data and not one of its repeats. A run of another model or hardware class is
never chosen unless the run's text names it. The lines give the accuracy and
time deltas together, say every setting that differs, and give the verdicts
(`metrics.verdict`, the same sentences `compare` and `stats` print for the
same runs).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from speedrun.analysis import groups, metrics
from speedrun.domain.hardware import UNKNOWN_HARDWARE, hardware_class_of
from speedrun.text import fmt_num

# "Same as Run 14 but ...", "vs Run 15", "compared to Run 7a", "Building on Run 15's success".
_NAMED = re.compile(
    r"\b(?:same\s+as|vs\.?|versus|compared\s+(?:to|with)|relative\s+to|building\s+on|based\s+on|"
    r"on\s+top\s+of|against|baseline(?:\s+is|:)?)\s+run\s+#?(\d+[a-z]?)\b",
    re.IGNORECASE,
)


def named_label(run: Any) -> str | None:
    """The run label the run's own words compare it with, if any (description first)."""
    for text in (run.description, run.hypothesis, run.title):
        if text and (match := _NAMED.search(text)):
            return match.group(1)
    return None


# Earlier runs of the same model and hardware a baseline is looked for among (the nearest ones).
_NEAREST_CONSIDERED = 200


class Baselines:
    """Baselines and versus lines for a set of runs (those of one report)."""

    def __init__(self, runs: Sequence[Any], *, alpha: float = metrics.ALPHA, pool: metrics.NoisePool | None = None):
        self.alpha = alpha
        self.pool = pool if pool is not None else metrics.NoisePool(runs)
        self.ordered = sorted(runs, key=groups.order_key)
        self.index = groups.Repeats(r for r in self.ordered if groups.counts(r))
        self.by_label: dict[str, Any] = {}
        for run in self.ordered:  # a label shared by several runs names none of them
            for label in {run.display_label, str(run.id)}:
                self.by_label[label] = None if label in self.by_label else run
        self.position = {r.id: i for i, r in enumerate(self.ordered)}
        self._verdicts: dict[tuple, list[str]] = {}  # every run of a set-up shares its set's verdicts

    def repeats(self, run: Any) -> list[Any]:
        """The run and its true repeats among the runs that count."""
        return self.index.of(run) if groups.counts(run) else [run]

    def _usable(self, candidate: Any, run: Any) -> bool:
        """Whether `candidate` can stand as `run`'s baseline: another set-up that counts, with a result."""
        return (candidate.id != run.id and candidate.final_val_acc is not None and groups.counts(candidate)
                and (self.index.key(candidate) is None or self.index.key(candidate) != self.index.key(run)))

    def _earlier(self, run: Any) -> list[Any]:
        position = self.position.get(run.id)
        return self.ordered[:position] if position is not None else []

    def _series_previous(self, run: Any) -> Any | None:
        """The previous member of the run's series that can stand as its baseline."""
        series = getattr(run, "series_id", None)
        if series is None:
            return None
        members = [r for r in self._earlier(run) if getattr(r, "series_id", None) == series]
        return next((r for r in reversed(members) if self._usable(r, run)), None)

    def _nearest(self, run: Any) -> Any | None:
        """The nearest earlier run of the same model and hardware class with the fewest differing
        settings (`groups.differences`); ties go to the nearer run."""
        hardware, model = hardware_class_of(run), groups.recipe_of(run)
        if hardware == UNKNOWN_HARDWARE:
            return None
        candidates = [r for r in self._earlier(run)
                      if hardware_class_of(r) == hardware and groups.recipe_of(r) == model and self._usable(r, run)]
        candidates = candidates[-_NEAREST_CONSIDERED:]
        if not candidates:
            return None
        distance = {r.id: len(groups.differences([r], [run])) for r in candidates}
        return min(reversed(candidates), key=lambda r: distance[r.id])

    def baseline(self, run: Any) -> tuple[Any | None, str]:
        """(baseline, why it was chosen) for `run`."""
        label = named_label(run)
        named = self.by_label.get(label) if label else None
        if named is not None and named.id != run.id and named.final_val_acc is not None and groups.counts(named):
            return named, "named in its text"
        previous = self._series_previous(run)
        if previous is not None:
            return previous, "the previous run of its series"
        nearest = self._nearest(run)
        model = groups.setup_of(run).get("model")
        what = f"{model} run" if model else "run (neither states its model)"
        return nearest, f"the nearest earlier {what} on {hardware_class_of(run)} with the fewest differing settings"

    def versus_lines(self, run: Any) -> list[str]:
        """"vs Run 20 (only amp differs): −0.24 points, −29% time — …", then the verdicts."""
        if run.final_val_acc is None:
            return []
        why_not = groups.exclusion(run)
        if why_not:
            return [f"Not compared: {why_not}, so its numbers do not stand for its set-up"]
        hardware = hardware_class_of(run)
        base, why = self.baseline(run)
        if base is None:
            if hardware == UNKNOWN_HARDWARE:
                return ["No baseline: the hardware is unknown, so no run is known to be comparable"]
            mine = self.repeats(run)
            if mine[0].id != run.id:
                return [f"Repeat of Run {mine[0].display_label} ({len(mine)} runs of this set-up)"]
            model = groups.setup_of(run).get("model")
            return [f"First run{f' of {model}' if model else ''} with a final accuracy on {hardware}"]
        return [self._delta_line(run, base, why), *self.verdict_lines(run, base)]

    def _delta_line(self, run: Any, base: Any, why: str) -> str:
        parts = [fmt_num(run.final_val_acc - base.final_val_acc, "+.2f", " points")]
        if run.train_time_s is not None and base.train_time_s:
            parts.append(fmt_num(100 * (run.train_time_s / base.train_time_s - 1), "+.0f", "% time"))
        differs = groups.differences([base], [run])
        what = groups.differences_text(differs)
        return f"vs Run {base.display_label} ({what}): {', '.join(parts)} \u2014 {why}"

    def verdict_lines(self, run: Any, base: Any) -> list[str]:
        """The verdicts on final accuracy and training time, over both runs' repeats."""
        mine, theirs = self.repeats(run), self.repeats(base)
        names = (groups.set_name(base, theirs), groups.set_name(run, mine))
        memo = (names, len(theirs), len(mine))
        if memo not in self._verdicts:
            lines = []
            for metric in (metrics.FINAL_ACCURACY, metrics.TRAINING_TIME):
                if metrics.values(metric, theirs) and metrics.values(metric, mine):
                    lines.append(metrics.verdict(metric, theirs, mine, names=names, alpha=self.alpha, pool=self.pool).line)
            self._verdicts[memo] = lines
        return self._verdicts[memo]
