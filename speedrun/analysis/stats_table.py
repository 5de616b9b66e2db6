"""The numbers behind `speedrun stats`: statistics.py applied to sets of stored runs.

Returns plain data (also the `--json` output); the CLI only lays it out.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from speedrun.analysis import stats
from speedrun.analysis.groups import RunSet
from speedrun.tracking.records import times_to_targets


def _metrics(targets: Sequence[float]) -> list[tuple[str, str, bool, Callable[[Any], float | None]]]:
    """(name, unit, higher is better, value of a run) for every metric shown."""
    metrics = [
        ("final accuracy", "%", True, lambda r: r.final_val_acc),
        ("peak accuracy", "%", True, lambda r: r.peak_val_acc),
        ("training time", "s", False, lambda r: r.train_time_s),
    ]
    for target in targets:
        metrics.append(
            (f"time to {target:g}%", "s", False, lambda r, t=target: times_to_targets(r.epochs, [t])[t])
        )
    return metrics


def _cells(desc: stats.Description, unit: str) -> list[str]:
    digits = 2 if unit == "%" else 1

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    interval = "—" if desc.ci_low is None else f"{num(desc.ci_low)} to {num(desc.ci_high)}"
    return [str(desc.n), num(desc.mean), num(desc.std), interval, num(desc.min), num(desc.max)]


def _default_spread(unit: str, values: Sequence[float | None]) -> float:
    """Run-to-run spread assumed when no repeats show it: 0.2 points of accuracy
    (typical for CIFAR-10), or 3% of the mean for times (a shared GPU varies that much)."""
    if unit == "%":
        return 0.2
    known = [v for v in values if v is not None]
    return 0.03 * sum(known) / len(known)


def summarize_sets(
    sets: Sequence[RunSet],
    *,
    targets: Sequence[float] = (),
    claim: float | None = None,
    alpha: float | None = None,
) -> dict[str, Any]:
    """Per set: n, mean, std, 95% CI, min, max of each metric; verdicts of every set against the first."""
    metrics = _metrics(targets)
    result: dict[str, Any] = {"sets": [], "verdicts": []}
    for run_set in sets:
        entry: dict[str, Any] = {
            "name": run_set.name,
            "runs": [r.display_label for r in run_set.runs],
            "metrics": [],
        }
        for name, unit, _, value in metrics:
            desc = stats.describe(value(r) for r in run_set.runs)
            entry["metrics"].append(
                {
                    "metric": name,
                    "unit": unit,
                    "n": desc.n,
                    "mean": desc.mean,
                    "std": desc.std,
                    "ci_low": desc.ci_low,
                    "ci_high": desc.ci_high,
                    "min": desc.min,
                    "max": desc.max,
                    "cells": _cells(desc, unit),
                }
            )
        if claim is not None:
            finals = [r.final_val_acc for r in run_set.runs if r.final_val_acc is not None]
            if finals:
                test = stats.target_test(finals, claim, alpha=alpha if alpha is not None else 0.01)
                entry["claim"] = test.text
                entry["claim_p_value"] = test.p_value
                entry["claim_holds"] = test.holds
        result["sets"].append(entry)

    base = sets[0] if sets else None
    for other in sets[1:]:
        for name, unit, higher, value in metrics:
            if name == "peak accuracy":  # the final accuracy is what a run delivers
                continue
            a = [value(r) for r in base.runs]
            b = [value(r) for r in other.runs]
            if not any(v is not None for v in a) or not any(v is not None for v in b):
                continue
            comparison = stats.compare(
                a,
                b,
                default_std=_default_spread(unit, a + b),
                alpha=alpha if alpha is not None else 0.05,
                higher_is_better=higher,
                metric=name,
                unit=unit,
                names=(base.name, other.name),
            )
            result["verdicts"].append(f"{name}: {comparison.verdict}")
    return result
