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

from bisect import bisect_left
from typing import Any, Sequence

from speedrun.analysis import groups, metrics
from speedrun.domain.hardware import UNKNOWN_HARDWARE, hardware_class_of
from speedrun.text import fmt_num

# Earlier runs of the same model and hardware a baseline is looked for among (the nearest ones).
_NEAREST_CONSIDERED = 200


class Baselines:
    """Baselines and versus lines for a set of runs (those of one report).

    Every choice costs the same at 10,000 runs as at 100: the candidates are
    indexed once by model and hardware class (and by series), and the number
    of differing settings is computed once per pair of distinct set-ups, not
    per pair of runs.
    """

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
        # Runs that can stand as someone's baseline, in order, by (hardware class, model) and by series.
        self._kinds: dict[tuple, list[Any]] = {}
        self._series: dict[Any, list[Any]] = {}
        for run in self.ordered:
            if run.final_val_acc is None or not groups.counts(run):
                continue
            hardware = hardware_class_of(run)
            if hardware != UNKNOWN_HARDWARE:
                self._kinds.setdefault((hardware, groups.recipe_of(run)), []).append(run)
            if getattr(run, "series_id", None) is not None:
                self._series.setdefault(run.series_id, []).append(run)
        self._kind_keys = {kind: [self.index.key(r) for r in members] for kind, members in self._kinds.items()}
        # Per kind, where each set-up's members stand in it (those no one repeats stand alone, under None).
        self._kind_positions: dict[tuple, dict[str | None, list[int]]] = {}
        for kind, keys in self._kind_keys.items():
            positions = self._kind_positions[kind] = {}
            for i, key in enumerate(keys):
                positions.setdefault(key, []).append(i)
        # A run's set-up -> {a baseline's set-up: (the settings that differ, those stated by one only)}.
        self._distances: dict[str, dict[str, tuple[list[str], list[str]]]] = {}

    def repeats(self, run: Any) -> list[Any]:
        """The run and its true repeats among the runs that count."""
        return self.index.of(run) if groups.counts(run) else [run]

    def _earlier(self, members: list[Any], run: Any) -> int:
        """How many of the members (in order) come before `run`."""
        position = self.position.get(run.id)
        if position is None:
            return 0
        return bisect_left(members, position, key=lambda r: self.position[r.id])

    def _series_previous(self, run: Any) -> Any | None:
        """The previous member of the run's series that can stand as its baseline."""
        series = getattr(run, "series_id", None)
        own = self.index.key(run)
        members = self._series.get(series, []) if series is not None else []
        earlier = members[:self._earlier(members, run)]
        return next((r for r in reversed(earlier) if own is None or self.index.key(r) != own), None)

    def _differences(self, base: Any, run: Any, base_key: str | None = None,
                     own_key: str | None = None) -> tuple[list[str], list[str]]:
        """(`groups.differences` of two runs, those of them `groups.stated_by_one`), once per pair of
        distinct set-ups (the runs' repeat keys, looked up unless given)."""
        base_key = base_key if base_key is not None else self.index.key(base)
        own_key = own_key if own_key is not None else self.index.key(run)
        if base_key is None or own_key is None:  # no one's repeat: measured alone
            names = groups.differences([base], [run])
            return names, groups.stated_by_one([base], [run], names)
        row = self._distances.setdefault(own_key, {})
        if base_key not in row:
            names = groups.differences([base], [run])
            row[base_key] = names, groups.stated_by_one([base], [run], names)
        return row[base_key]

    def _nearest(self, run: Any) -> Any | None:
        """The nearest earlier run of the same model and hardware class with the fewest differing
        settings (`groups.differences`), among the `_NEAREST_CONSIDERED` nearest that are not its
        own repeats; ties go to the nearer run."""
        hardware = hardware_class_of(run)
        if hardware == UNKNOWN_HARDWARE:
            return None
        kind = (hardware, groups.recipe_of(run))
        members = self._kinds.get(kind)
        if not members:
            return None
        own = self.index.key(run)
        keys = self._kind_keys[kind]
        known = self._distances.setdefault(own, {}) if own is not None else {}
        best, best_distance = None, None
        for i in self._candidates(kind, self._earlier(members, run), own):
            entry = known.get(keys[i]) if keys[i] is not None else None  # (inlined: 240,000 asks at 10,000 runs)
            distance = len((entry or self._differences(members[i], run, keys[i], own))[0])
            if best_distance is None or distance < best_distance:
                best, best_distance = members[i], distance
                if distance == 0:
                    break
        return best

    def _candidates(self, kind: tuple, end: int, own: str | None) -> list[int]:
        """Where, among the kind's first `end` members, the baseline is looked for, nearest first:
        of the `_NEAREST_CONSIDERED` nearest that are not the run's own repeats, the nearest of
        each set-up (a farther run of a set-up is never nearer nor closer), and every run that
        stands alone. Found by set-up rather than run by run: a report asks 10,000 times."""
        positions = self._kind_positions[kind]
        mine = positions.get(own, []) if own is not None else []
        start = max(end - _NEAREST_CONSIDERED, 0)  # widened past the run's own repeats, which do not count
        while start > 0:
            wider = max(end - _NEAREST_CONSIDERED - (bisect_left(mine, end) - bisect_left(mine, start)), 0)
            if wider == start:
                break
            start = wider
        if len(positions) > _NEAREST_CONSIDERED:  # every run its own set-up: the window is the shorter walk
            keys = self._kind_keys[kind]
            seen: set[str] = set()
            found = []
            for i in range(end - 1, start - 1, -1):
                key = keys[i]
                if key is None:
                    found.append(i)
                elif key != own and key not in seen:
                    seen.add(key)
                    found.append(i)
            return found
        found = []
        for key, where in positions.items():
            if key is not None and key == own:
                continue
            if key is None:
                found.extend(i for i in where[bisect_left(where, start):bisect_left(where, end)])
            elif (last := bisect_left(where, end) - 1) >= 0 and where[last] >= start:
                found.append(where[last])
        found.sort(reverse=True)
        return found

    def baseline(self, run: Any) -> tuple[Any | None, str]:
        """(baseline, why it was chosen) for `run`."""
        label = groups.named_label(run)
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
        original = self.index.copy_of(run)
        if original is not None:
            return [f"A copy of Run {original.display_label}: {groups.STORED_TWICE}, counted once"]
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
        what = groups.differences_text(*self._differences(base, run))
        # A label two runs share names neither: "vs Run #24" under the notebook's second "Run 24".
        name = base.display_label if self.by_label.get(base.display_label) is not None else f"#{base.number_and_label}"
        return f"vs Run {name} ({what}): {', '.join(parts)} \u2014 {why}"

    def verdict_lines(self, run: Any, base: Any) -> list[str]:
        """The verdicts on final accuracy and training time, over both runs' repeats."""
        mine, theirs = self.repeats(run), self.repeats(base)
        if mine is theirs or mine[0].id == theirs[0].id:  # one set (no two sets share their first run)
            # Its text names a run its settings make it a repeat of ("Same as Run 1 but with label
            # smoothing"): a set is not weighed against itself (it read "Run 1 and repeats − Run 1 and
            # repeats = 0.00"); the change the words name is one the settings do not hold.
            return [f"Counted as a repeat of Run {base.display_label}: its stated settings are the same, so its "
                    f"gap is part of their spread, not a verdict; a change its text names counts once it is "
                    f"stated as a setting"]
        names = (groups.set_name(base, theirs), groups.set_name(run, mine))
        if names[0] == names[1]:  # a notebook's second "Run 24" is "Run #32 (24)", never "Run 24 − Run 24"
            sets = groups.named_apart([groups.RunSet(names[0], theirs), groups.RunSet(names[1], mine)])
            names = (sets[0].name, sets[1].name)
        memo = (names, len(theirs), len(mine))
        if memo not in self._verdicts:
            lines = []
            for metric in (metrics.FINAL_ACCURACY, metrics.TRAINING_TIME):
                if metrics.values(metric, theirs) and metrics.values(metric, mine):
                    lines.append(metrics.verdict(metric, theirs, mine, names=names, alpha=self.alpha, pool=self.pool).line)
            self._verdicts[memo] = lines
        return self._verdicts[memo]
