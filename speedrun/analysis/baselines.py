"""The run a practitioner would compare a run with, and the "versus" lines of the report.

A run's baseline is the run its own text names ("Same as Run 20", "vs Run
15", "Building on Run 15's success"), else the best earlier run (notebook,
then creation order: `groups.order_key`) on the same hardware class and epoch
budget that completed on the full data and is not one of its repeats. The
lines give the accuracy and time deltas together, say what differs, and give
the verdicts (`metrics.verdict`, the same sentences `compare` and `stats`
print for the same runs).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from speedrun.analysis import groups, metrics
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


def _budget_text(budget: int | None) -> str:
    return f" at {budget} epochs" if budget else ""


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
        self._earlier = self._best_earlier_all()
        self._verdicts: dict[tuple, list[str]] = {}  # every run of a set-up shares its set's verdicts

    def repeats(self, run: Any) -> list[Any]:
        """The run and its true repeats among the runs that count."""
        return self.index.of(run) if groups.counts(run) else [run]

    def _best_earlier_all(self) -> dict[int, Any]:
        """For every run, the best final accuracy among earlier runs of its hardware class and epoch
        budget that count and are not its repeats (ties: the earliest). One pass in order: per class,
        the best run of each set-up so far and the two best of different set-ups."""
        found: dict[int, Any] = {}
        classes: dict[tuple, dict[str, Any]] = {}
        for run in self.ordered:
            hardware = groups.hardware_of(run)
            if hardware == groups.UNKNOWN_HARDWARE:
                continue
            state = classes.setdefault((hardware, groups.epoch_budget(run)), {"top": []})
            key = self.index.key(run) or f"run {run.id}"
            top = state["top"]
            found[run.id] = next((r for k, r in top if k != key), None)
            if not groups.counts(run) or run.final_val_acc is None:
                continue
            ranked = [(k, r) for k, r in top if k != key]
            mine = next((r for k, r in top if k == key), None)
            if mine is None or run.final_val_acc > mine.final_val_acc:
                mine = run
            ranked.append((key, mine))
            # Best first; ties go to the earlier run.
            ranked.sort(key=lambda kr: (-kr[1].final_val_acc, groups.order_key(kr[1])))
            state["top"] = ranked[:2]
        return found

    def best_earlier(self, run: Any) -> Any | None:
        """The best final accuracy among earlier runs of the same hardware class and epoch
        budget that count and are not the run's repeats (ties: the earliest)."""
        return self._earlier.get(run.id)

    def baseline(self, run: Any) -> tuple[Any | None, str]:
        """(baseline, why it was chosen) for `run`."""
        label = named_label(run)
        named = self.by_label.get(label) if label else None
        if named is not None and named.id != run.id and named.final_val_acc is not None and groups.counts(named):
            return named, "named in its text"
        earlier = self.best_earlier(run)
        why = f"the best earlier run on {groups.hardware_of(run)}{_budget_text(groups.epoch_budget(run))}"
        return earlier, why

    def versus_lines(self, run: Any) -> list[str]:
        """"vs Run 20 (only amp differs): −0.24 points, −29% time — …", then the verdicts."""
        if run.final_val_acc is None:
            return []
        why_not = groups.exclusion(run)
        if why_not:
            return [f"Not compared: {why_not}, so its numbers do not stand for its set-up"]
        hardware, budget = groups.hardware_of(run), groups.epoch_budget(run)
        base, why = self.baseline(run)
        if base is None:
            if hardware == groups.UNKNOWN_HARDWARE:
                return ["No baseline: the hardware is unknown, so no run is known to be comparable"]
            mine = self.repeats(run)
            if mine[0].id != run.id:
                return [f"Repeat of Run {mine[0].display_label} ({len(mine)} runs of this set-up)"]
            return [f"First run with a final accuracy on {hardware}{_budget_text(budget)}"]
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
