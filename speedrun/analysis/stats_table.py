"""What `speedrun stats` shows: each set of runs described, the verdicts between them, a claim.

The statistics are `speedrun.domain.stats`, the metrics and verdicts
`speedrun.analysis.metrics`; this module applies them to the sets the user
named. It returns plain data (also the `--json` output); the CLI only lays it
out. A set is described over the runs that count (completed, full data, every
epoch); the others are named and left out.
"""

from __future__ import annotations

from typing import Any, Sequence

from speedrun.analysis import groups, metrics
from speedrun.domain import stats
from speedrun.analysis.groups import RunSet
from speedrun.analysis.metrics import Metric
from speedrun.text import fmt_num, fmt_target


def _metrics(targets: Sequence[float]) -> list[Metric]:
    return [metrics.FINAL_ACCURACY, metrics.PEAK_ACCURACY, metrics.TRAINING_TIME, *map(metrics.time_to, targets)]


def distinct_sets(sets: Sequence[RunSet]) -> tuple[list[RunSet], list[str]]:
    """Each set of runs once: `stats 1 2 3` on three repeats is one set, not three."""
    seen: dict[tuple[int, ...], RunSet] = {}
    asked: dict[tuple[int, ...], int] = {}
    for run_set in sets:
        ids = tuple(sorted(r.id for r in run_set.runs))
        seen.setdefault(ids, run_set)
        asked[ids] = asked.get(ids, 0) + 1
    notes = list(dict.fromkeys(s.note for s in sets if s.note))
    notes += [f"{seen[ids].name} was asked for {n} times; shown once" for ids, n in asked.items() if n > 1]
    return list(seen.values()), notes


def counted(run_set: RunSet) -> tuple[list[Any], list[str]]:
    """The runs statistics use, and a note for each one left out (or why all are kept)."""
    if not any(groups.counts(r) for r in run_set.runs):
        return list(run_set.runs), [f"no run of {run_set.name} completed on the full data; "
                                    "its numbers do not stand for its set-up"]
    notes = [f"Run {r.display_label} ({groups.exclusion(r)}) is left out" for r in run_set.runs if not groups.counts(r)]
    if len(run_set.runs) > 1 and (differs := groups.setup_difference(run_set.runs)):
        notes.insert(0, differs)
    return groups.counting(run_set.runs), notes


def _row(metric: Metric, runs: Sequence[Any]) -> dict[str, Any]:
    desc = stats.describe(metrics.values(metric, runs))
    bounded = metrics.bounded(metric, desc)
    spec = f".{metric.digits}f"
    interval = metrics.interval_text(metric, desc)
    return {
        "metric": metric.name,
        "key": metric.key,
        "unit": metric.unit,
        "n": desc.n,
        "mean": desc.mean,
        "std": desc.std,
        "ci_low": desc.ci_low if bounded else None,
        "ci_high": desc.ci_high if bounded else None,
        "ci": interval,
        "min": desc.min,
        "max": desc.max,
        "cells": [str(desc.n), fmt_num(desc.mean, spec), fmt_num(desc.std, spec), interval,
                  fmt_num(desc.min, spec), fmt_num(desc.max, spec)],
    }


def summarize_sets(
    sets: Sequence[RunSet],
    *,
    targets: Sequence[float] = (),
    claim: float | None = None,
    alpha: float = metrics.ALPHA,
    pool: metrics.NoisePool | None = None,
) -> dict[str, Any]:
    """Per set: n, mean, std, 95% CI, min, max of each metric; verdicts of every set against the
    first at `alpha`; with `claim`, the record check of the mean final accuracy (p<0.01)."""
    metrics.check_alpha(alpha)
    targets = metrics.check_targets(targets)
    if claim is not None:
        metrics.check_accuracy(claim, "--claim")
    shown, notes = distinct_sets(sets)
    chosen = _metrics(targets)
    pool = pool if pool is not None else metrics.NoisePool([r for s in shown for r in s.runs])
    result: dict[str, Any] = {"alpha": alpha, "record_alpha": metrics.RECORD_ALPHA, "notes": notes,
                              "sets": [], "differences": [], "verdicts": []}
    used: list[list[Any]] = []
    for run_set in shown:
        runs, left_out = counted(run_set)
        used.append(runs)
        for metric in chosen:  # the runs that never reached a target are no faster ones left out
            if metric.target is not None and 0 < (reached := len(metrics.values(metric, runs))) < len(runs):
                left_out.append(f"{fmt_target(metric.target)} reached in {reached} of {len(runs)} runs: the time to it "
                                f"is of those {reached}, and no verdict is given on it")
        entry: dict[str, Any] = {
            "name": run_set.name,
            "runs": [r.display_label for r in run_set.runs],
            "notes": left_out,
            "metrics": [_row(m, runs) for m in chosen],
        }
        if claim is not None:
            finals = metrics.values(metrics.FINAL_ACCURACY, runs)
            if finals:
                test = stats.target_test(finals, claim, alpha=metrics.RECORD_ALPHA)
                entry.update(claim=test.text, claim_p_value=test.p_value, claim_holds=test.holds)
        result["sets"].append(entry)

    for other, other_runs in zip(shown[1:], used[1:]):
        result["differences"].append(groups.differs_entry(shown[0].name, shown[0].runs, other.name, other.runs))
        if result["differences"][-1]["no_verdict"]:
            continue
        for metric in chosen:
            if metric is metrics.PEAK_ACCURACY:  # the final accuracy is what a run delivers
                continue
            if not metrics.values(metric, used[0]) or not metrics.values(metric, other_runs):
                continue
            if metric.target is not None and not all(metric.value(r) is not None for r in (*used[0], *other_runs)):
                continue  # survivors only: the runs that never got there would have been the slowest
            result["verdicts"].append(
                metrics.verdict(metric, used[0], other_runs, names=(shown[0].name, other.name),
                                alpha=alpha, pool=pool).as_dict()
            )
    return result
