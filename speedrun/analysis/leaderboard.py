"""The top of the report: records per hardware class and epoch budget, and the groups.

A record goes to the set-up (a set of true repeats, or a run alone) with the
best mean, shown by its best run; a time to a target only to a set-up whose
every run reached it. Records are held only by runs that completed on the
full data with every planned epoch (`groups.counts`): an interrupted run's accuracy is an early
epoch's and a `--subset` trial's time is no training time. A 20-epoch run
does not compete with 10-epoch runs: each hardware class and epoch budget has
its own records. A record is confirmed by the one record rule
(`metrics.RECORD_ALPHA`, p<0.01): an accuracy record when its repeats beat the
runner-up's repeats by Welch's test at that level, a time-to-target record
when its repeats reach the target at that level (the public speedrun tables'
rule). Evidence sentences are `metrics.verdict`'s, at the report's α.
"""

from __future__ import annotations

from typing import Any, Sequence

from speedrun.analysis import groups, metrics
from speedrun.domain import stats
from speedrun.domain.hardware import UNKNOWN_HARDWARE, hardware_class_of
from speedrun.analysis.metrics import Metric
from speedrun.text import configuration_text, fmt_num, fmt_target

# A group lists at most this many run numbers; the count is always given.
MAX_LISTED_RUNS = 12


def record_metrics(targets: Sequence[float]) -> list[Metric]:
    return [metrics.FINAL_ACCURACY, metrics.PEAK_ACCURACY, *map(metrics.time_to, targets)]


def record_title(metric: Metric) -> str:
    return f"Fastest to {fmt_target(metric.target)}" if metric.target is not None else f"Best {metric.name}"


def budget_text(budget: int | None) -> str:
    return f"{budget} epochs" if budget else "epochs not stated"


def mean_std_text(metric: Metric, values: Sequence[float]) -> str:
    """"90.41% ± 0.20 (n=3)": mean and sample standard deviation; a single value has no ±."""
    d = stats.describe(values)
    if d.mean is None:
        return fmt_num(None)
    if d.std is None:
        return f"{metric.text(d.mean)} (n={d.n})"
    return f"{metric.text(d.mean)} \u00b1 {fmt_num(d.std, f'.{metric.digits}f')} (n={d.n})"


def _best(runs: Sequence[Any], metric: Metric) -> Any | None:
    """The run with the best value; ties go to the earliest (runs come in order)."""
    best, best_value = None, None
    for run in runs:
        value = metric.value(run)
        if value is None:
            continue
        if best is None or (value > best_value if metric.higher_is_better else value < best_value):
            best, best_value = run, value
    return best


def _best_set(runs: Sequence[Any], metric: Metric, index: groups.Repeats) -> Any | None:
    """The best run of the set of repeats (a run alone where it has none) whose mean of `metric`
    is best, among the sets whose every run has a value (a time to a target that two of five seeds
    never reached is no set-up's time); ties go to the earliest set. Five seeds of one set-up at
    90.04% on average, one of them 90.60%, do not beat five of another at 90.40% within 0.04."""
    best, best_mean, seen = None, None, set()
    present = {r.id for r in runs}
    for run in runs:
        if run.id in seen:
            continue
        members = [m for m in index.of(run) if m.id in present] or [run]
        seen.update(m.id for m in members)
        found = metrics.values(metric, members)
        if not found or len(found) < len(members):
            continue
        mean = sum(found) / len(found)
        if best is None or (mean > best_mean if metric.higher_is_better else mean < best_mean):
            best, best_mean = _best(members, metric), mean
    return best


def _name(run: Any, members: Sequence[Any]) -> str:
    return groups.set_name(run, members)


def record_row(
    metric: Metric, hardware: str, budget: int | None, runs: Sequence[Any], alpha: float, pool: metrics.NoisePool,
    index: groups.Repeats,
) -> dict[str, Any] | None:
    """The record of `metric` among `runs` (one hardware class and epoch budget, all counting)."""
    runs = [r for r in runs if index.copy_of(r) is None]  # a copy is its original's training, never its rival
    holder = _best_set(runs, metric, index)  # the set-up with the best mean, not the luckiest seed
    if holder is None:
        return None
    mates = index.of(holder)
    mate_ids = {r.id for r in mates}
    rival = _best_set([r for r in runs if r.id not in mate_ids], metric, index)
    value = metric.value(holder)
    where = f"{hardware} at {budget_text(budget)}"
    if metric.target is not None:
        status, evidence, shown = _time_record(metric, holder, mates, rival, index, alpha, pool)
    else:
        shown = metric.text(value)
        status, evidence = _accuracy_record(metric, holder, mates, rival, index, alpha, pool, where)
    group_values = metrics.values(metric, mates)
    return {
        "hardware": hardware,
        "epochs": budget_text(budget),
        "record": record_title(metric),
        "value": shown,
        "run": f"Run {holder.display_label}",
        "run_id": holder.id,
        "title": holder.title or "",
        "configuration": configuration_text(holder.param_dict),
        "group": mean_std_text(metric, group_values) if len(group_values) > 1 else "",
        "status": status,
        "evidence": evidence,
    }


def _accuracy_record(metric, holder, mates, rival, index, alpha, pool, where) -> tuple[str, str]:
    if rival is None:
        status = "uncontested" if len(mates) > 1 else "unconfirmed"
        return status, f"the only set-up on {where} with a {metric.name}"
    rivals = index.of(rival)
    result = metrics.verdict(metric, rivals, mates, names=(_name(rival, rivals), _name(holder, mates)),
                             alpha=alpha, pool=pool)
    if result.confirms_record():
        status = "confirmed"
    else:
        status = "not confirmed" if result.p_value is not None else "unconfirmed"
    return status, result.text


def _time_record(metric, holder, mates, rival, index, alpha, pool) -> tuple[str, str, str]:
    """A time to a target: the time and the accuracy at that moment; confirmed when the holder's
    runs reach the target at p<0.01."""
    seconds, accuracy, epoch = metrics.reached(holder, metric.target)
    shown = f"{metric.text(seconds)} ({fmt_num(accuracy, '.2f', '%')} at epoch {epoch})"
    finals = metrics.values(metrics.FINAL_ACCURACY, mates)
    if len(finals) < 2:
        status = "unconfirmed"
        check = (f"a single run; a record needs repeats whose final accuracy reaches {fmt_target(metric.target)} "
                 f"at p<{metrics.RECORD_ALPHA:g}")
    else:
        test = stats.target_test(finals, metric.target, alpha=metrics.RECORD_ALPHA)
        status = "confirmed" if test.holds else "not confirmed"
        check = f"record check: {test.text}"
    evidence = f"{fmt_target(metric.target)} after {shown}; {check}"
    if rival is not None:
        rivals = index.of(rival)
        result = metrics.verdict(metric, rivals, mates, names=(_name(rival, rivals), _name(holder, mates)),
                                 alpha=alpha, pool=pool)
        evidence += f"; versus the runner-up: {result.text}"
    return status, evidence, shown


def leaderboard(
    runs: Sequence[Any], targets: Sequence[float], alpha: float = metrics.ALPHA, pool: metrics.NoisePool | None = None
) -> list[dict[str, Any]]:
    """Record rows per hardware class and epoch budget, from the runs that count."""
    counted = sorted((r for r in runs if groups.counts(r)), key=groups.order_key)
    pool = pool if pool is not None else metrics.NoisePool(runs)
    classes = groups.group_runs(counted, lambda r: (hardware_class_of(r), groups.epoch_budget(r)))
    index = groups.Repeats(counted)
    rows = []
    for hardware, budget in sorted(classes, key=lambda k: (k[0] == UNKNOWN_HARDWARE, k[0], k[1] is None, k[1] or 0)):
        for metric in record_metrics(targets):
            row = record_row(metric, hardware, budget, classes[(hardware, budget)], alpha, pool, index)
            if row is not None:
                rows.append(row)
    return rows


# --------------------------------------------------------------------------- groups


def run_list(members: Sequence[Any]) -> str:
    """"1, 2, 7a": the runs' labels, the first MAX_LISTED_RUNS of a longer list and how many there are."""
    labels = [m.display_label for m in members]
    if len(labels) <= MAX_LISTED_RUNS:
        return ", ".join(labels)
    return ", ".join(labels[:MAX_LISTED_RUNS]) + f", … ({len(labels)} runs)"


def group_sets(runs: Sequence[Any]) -> list[tuple[str, bool, list[Any]]]:
    """(name, made by the user, members): the groups the user made, as made, then every set of
    true repeats that no such group already holds whole."""
    ordered = sorted(runs, key=groups.order_key)
    explicit = groups.group_runs((r for r in ordered if r.group_name), lambda r: r.group_name)
    out = [(name, True, members) for name, members in explicit.items()]
    for members in groups.repeat_sets(ordered):
        ids = {r.id for r in members}
        if any(ids <= {r.id for r in made} for made in explicit.values()):
            continue
        out.append((configuration_text(members[0].param_dict), False, members))
    return out


def group_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per group: its runs, and mean ± std of the members that count; a group the user made
    whose members differ in set-up (a series) shows its members' values side by side instead."""
    rows = []
    for name, made, members in group_sets(runs):
        counted = [m for m in members if groups.counts(m)]
        side_by_side = made and groups.setup_difference(members) is not None
        if side_by_side:  # a series, an ablation: its members differ on purpose, so no mean ± std
            def summary(metric: Metric, members: Sequence[Any] = members) -> str:
                return " / ".join(metric.text(metric.value(m)) for m in members)
        else:
            def summary(metric: Metric, counted: Sequence[Any] = counted) -> str:
                return mean_std_text(metric, metrics.values(metric, counted))
        hardware = ", ".join(dict.fromkeys(hardware_class_of(m) for m in members))
        budgets = list(dict.fromkeys(groups.epoch_budget(m) for m in members))
        rows.append({
            "key": name,
            "name": name,
            "made_by_user": made,
            "hardware": hardware,
            "epochs": ", ".join(budget_text(b) for b in budgets),
            "configuration": configuration_text(members[0].param_dict),
            "runs": run_list(members),
            "n": len(counted),
            "side_by_side": side_by_side,
            "final": summary(metrics.FINAL_ACCURACY),
            "peak": summary(metrics.PEAK_ACCURACY),
            "time": summary(metrics.TRAINING_TIME),
            "warnings": groups.setup_warnings(members) if made else [],
            "members": members,
            "plot": None,
            "svg": None,
        })
    rows.sort(key=lambda g: (not g["made_by_user"], g["hardware"], g["name"]))
    return rows
