"""The answer of a sweep: its trials ranked by the objective, the winner's verdict, what mattered.

`summarize` takes a sweep's spec and trials (speedrun.sweep.runner reads them
from the study) and returns plain data, what `sweep show --json` prints and
what `sweep show` and the report lay out (`sweep_section`). The verdict on the best setting
against the runner-up is the one `metrics.verdict`, over the trials' runs: a
t-test where both have repeats, run-to-run spreads where not. Both were
picked after the results were seen, so the sentence says that its p-value is
optimistic, and how to confirm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from speedrun.analysis import metrics
from speedrun.analysis.metrics import Metric
from speedrun.text import counted, fmt_num

# The order of trials that have no value: how far they got.
_STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "interrupted": 4, "died": 5, "returned": 6,
                "fail": 7}
_STATE_TEXT = {"fail": "failed", "running": "training", "waiting": "queued", "interrupted": "interrupted",
               "died": "died (its worker stopped)", "returned": "given back (the machine's error)"}


@dataclass
class TrialInfo:
    """One trial as the sweep recorded it: its setting, how it ended, its runs and value."""

    number: int
    state: str  # complete | pruned | fail | running | waiting (Optuna's, lower case) | interrupted | died | returned
    params: dict[str, Any]
    value: float | None
    runs: list[Any] = field(default_factory=list)  # RunViews, in order
    pruned_at: int | None = None  # the last epoch reported before it was pruned
    label: str = ""  # how the user counts it: "2", or "2, retry 1" (sweep.runner.trial_label); "" is the number
    refused: str | None = None  # why the recipe refused its setting (it is never tried again)
    failed: str | None = None  # why it failed otherwise (out of memory, no value to report)

    def __post_init__(self):
        self.label = self.label or str(self.number)


def _setting(params: dict[str, Any], names: Sequence[str]) -> str:
    from speedrun.sweep.space import setting_text

    return setting_text({n: params[n] for n in names if n in params})


def _rank(trial: TrialInfo, higher_is_better: bool) -> tuple:
    value = trial.value if trial.state == "complete" and trial.value is not None else None
    if value is None or math.isnan(value):
        return (1, _STATE_ORDER.get(trial.state, 5), trial.number)
    return (0, -value if higher_is_better else value, trial.number)


def importance_gap(names: Sequence[str], settings: Sequence[dict[str, Any]], values: Sequence[float]) -> str | None:
    """Why the completed trials (their `settings` and `values`) cannot rank the searched options, or None
    when they can. Ranking needs two options or more; each seen at two values or more among the
    completed trials (an option that never varied has no effect to measure, yet Optuna hands it a
    share); trials that differ in score; and two completed trials per option, four at the least
    (fewer, and the numbers are the accident of which few trials happened to finish)."""
    if len(names) < 2:
        return f"{', '.join(names) or 'nothing'} is the only option searched"
    needed = max(4, 2 * len(names))
    if len(settings) < needed:
        return (f"ranking {len(names)} options needs {needed} completed trials; "
                f"{len(settings)} {'has' if len(settings) == 1 else 'have'} completed")
    fixed = [n for n in names if len({repr(s.get(n)) for s in settings}) < 2]
    if fixed:
        return f"{', '.join(fixed)} took one value only among the completed trials"
    if len(set(values)) < 2:
        return "the completed trials all scored the same"
    return None


def importance_quantile(completed: int) -> float:
    """The top share of the completed trials whose settings PED-ANOVA explains: five trials' worth (what
    Optuna advises), between the top half and Optuna's default top tenth. At the default, a sweep of
    fewer than 20 trials has one or two trials in its top: every option that differs from the
    winner's looks equally important (2×2 grid: lr 0.5, batch_size 0.5 whatever the scores)."""
    return min(0.5, max(0.1, 5 / completed))


def summarize(spec: Any, trials: Sequence[TrialInfo], *, importances: dict[str, float] | None,
              importance_note: str | None = None, alpha: float = metrics.ALPHA,
              pool: metrics.NoisePool | None = None) -> dict[str, Any]:
    """The table, the best setting with its verdict against the runner-up, and the importances."""
    metric: Metric = spec.metric
    names = spec.space.names
    ranked = sorted(trials, key=lambda t: _rank(t, metric.higher_is_better))
    rows = [_row(t, metric, names) for t in ranked]
    scored = [t for t in ranked if t.state == "complete" and t.value is not None and math.isfinite(t.value)]
    best = scored[0] if scored else None
    data: dict[str, Any] = {
        "name": spec.name,
        "recipe": spec.recipe,
        "sampler": spec.sampler,
        "objective": metric.key,
        "objective_name": metric.name,
        "direction": "maximize" if metric.higher_is_better else "minimize",
        "planned": spec.trials,
        "repeat": spec.repeat,
        "searched": spec.space.searched(),
        "fixed": spec.space.fixed,
        "counts": {state: sum(t.state == state for t in trials) for state in _STATE_ORDER},
        "trials": rows,
        "best": None,
        "verdict": None,
        "importances": importances,
        "importance_note": importance_note if importances is None else None,
    }
    if best is None:
        return data
    data["best"] = {"trial": best.number, "label": best.label, "setting": _setting(best.params, names), "params": best.params,
                    "value": best.value, "text": metrics.mean_text(metric, metrics.values(metric, best.runs))}
    runner = scored[1] if len(scored) > 1 else None
    if runner is not None:
        result = metrics.verdict(metric, runner.runs, best.runs,
                                 names=(_setting(runner.params, names), _setting(best.params, names)),
                                 alpha=alpha, pool=pool)
        data["verdict"] = {
            **result.as_dict(),
            "runner_up": runner.number,
            "runner_up_label": runner.label,
            "caveat": (f"Best and runner-up were picked from {len(scored)} trials after the results were seen, "
                       f"so the evidence is optimistic; confirm the winner with fresh repeats "
                       f"(`speedrun train ... --repeat 5`)."),
        }
    return data


def _row(t: TrialInfo, metric: Metric, names: Sequence[str]) -> dict[str, Any]:
    values = metrics.values(metric, t.runs)
    if t.state == "complete" and t.value is not None and not math.isfinite(t.value):
        result = "not reached"
    elif t.state == "complete":
        result = metrics.mean_text(metric, values) if values else fmt_num(t.value, f".{metric.digits}f")
    elif t.state == "pruned":
        result = f"pruned after epoch {t.pruned_at}" if t.pruned_at is not None else "pruned"
    elif t.refused is not None:
        result = "refused"
    else:
        result = _STATE_TEXT.get(t.state, t.state)
    return {
        "trial": t.number,
        "label": t.label,
        "state": t.state,
        "params": {n: t.params.get(n) for n in names},
        "setting": _setting(t.params, names),
        "cells": [_cell(t.params.get(n)) for n in names],
        "value": t.value if t.value is None or math.isfinite(t.value) else None,
        "result": result,
        "why": t.refused or t.failed,  # what a refused or failed trial's error said
        "runs": [r.display_label for r in t.runs],
    }


def _cell(value: Any) -> str:
    from speedrun.sweep.space import value_text

    return value_text(value) if value is not None else fmt_num(None)


def searched_text(searched: dict[str, str]) -> str:
    """`lr: 0.02, 0.04; batch_size: 64, 128`: the options a sweep searched and their values."""
    return "; ".join(f"{k}: {v}" for k, v in searched.items())


def heading(data: dict[str, Any]) -> str:
    """`lr: 0.02, 0.04 (grid, 2 runs per trial), highest final accuracy wins`."""
    searched = searched_text(data["searched"])
    runs = f"{counted(data['repeat'], 'run')} per trial"
    wins = "highest" if data["direction"] == "maximize" else "lowest"
    return f"{searched} ({data['sampler']}, {runs}), {wins} {data['objective_name']} wins"


def answer_lines(data: dict[str, Any]) -> list[str]:
    """Why trials were refused or failed, then the answer in sentences: the best setting, its verdict
    against the runner-up, the caveat, and the importances. The same lines in `sweep show` and in the report."""
    best, verdict = data["best"], data["verdict"]
    lines = [f"Trial {row['label']} {row['result']}: {row['why']}" for row in data["trials"] if row["why"]]
    if best is None:
        lines += ["No trial has finished yet."]
    else:
        lines += [f"Best: {best['setting']} (trial {best['label']}), {best['text']}"]
        if verdict is not None:
            lines += [f"Against the runner-up: {verdict['text']}", verdict["caveat"]]
    return lines + ["Importance: " + "; ".join(importance_lines(data))]


def importance_lines(data: dict[str, Any]) -> list[str]:
    """`lr: 0.83` per searched option, most important first; or why there are none."""
    if data["importances"] is None:
        return [f"not shown: {data.get('importance_note') or 'no completed trials yet'}."]
    return [f"{name}: {value:.2f}" for name, value in
            sorted(data["importances"].items(), key=lambda kv: -kv[1])]


def sweep_section(spec: Any, trials: Sequence[Any], answer: dict[str, Any], folder: Path | None,
                   link: str | None, inline: bool) -> dict[str, Any]:
    """A sweep in the report: its table, its answer in sentences, and its pictures (linked PNGs
    with --plots; inline in HTML)."""
    import base64
    import tempfile

    from speedrun.analysis.plots import link_to

    section = {
        "name": answer["name"],
        "heading": heading(answer),
        "columns": list(answer["searched"]),
        "objective": spec.metric.title,
        "rows": answer["trials"],
        "lines": answer_lines(answer),
        "plots": [],
        "images": [],
    }
    if folder is None and not inline:
        return section
    with tempfile.TemporaryDirectory() as tmp:  # drawn once: into --plots, else a folder that goes away
        pngs = plot_pngs(spec, trials, folder if folder is not None else Path(tmp))
        if folder is not None:
            link = link if link is not None else str(folder)
            section["plots"] = [link_to(link, p.name) for p in pngs]
        if inline:
            section["images"] = ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
                                 for p in pngs]
    return section


# --------------------------------------------------------------------------- pictures


def plot_pngs(spec: Any, trials: Sequence[TrialInfo], folder: Path) -> list[Path]:
    """The objective against each searched option (each run a dot, each trial's mean a cross),
    and for a two-option grid a heatmap of the trials' means. PNGs in `folder`."""
    from speedrun.analysis.plots import pyplot, save_figure, safe_name
    from speedrun.outputs import make_folder

    plt = pyplot()
    metric: Metric = spec.metric
    make_folder(folder)
    done = [t for t in trials if t.state == "complete" and metrics.values(metric, t.runs)]
    written: list[Path] = []
    for dim in spec.space.dimensions:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [str(c) for c in dim.choices] if dim.choices is not None else None
        for t in done:
            x = labels.index(str(t.params[dim.name])) if labels else t.params[dim.name]
            ys = metrics.values(metric, t.runs)
            ax.scatter([x] * len(ys), ys, color="#1f77b4", alpha=0.6, s=18)
            ax.scatter([x], [sum(ys) / len(ys)], color="#d62728", marker="x", s=60)
        if labels:
            ax.set_xticks(range(len(labels)), labels)
        elif dim.log:
            ax.set_xscale("log")
        ax.set_xlabel(dim.name)
        ax.set_ylabel(f"{metric.name} ({metric.unit})" if metric.unit else metric.name)
        ax.set_title(f"{spec.name}: {metric.name} by {dim.name}")
        path = folder / f"sweep-{safe_name(spec.name)}-{safe_name(dim.name)}.png"
        save_figure(fig, path)
        plt.close(fig)
        written.append(path)
    if spec.space.is_grid and len(spec.space.dimensions) == 2:
        written.append(_heatmap(plt, spec, done, folder))
    return written


def _heatmap(plt, spec: Any, done: Sequence[TrialInfo], folder: Path) -> Path:
    from speedrun.analysis.plots import save_figure, safe_name

    metric: Metric = spec.metric
    rows_dim, cols_dim = spec.space.dimensions
    grid = [[math.nan] * len(cols_dim.choices) for _ in rows_dim.choices]
    for t in done:
        ys = metrics.values(metric, t.runs)
        i, j = rows_dim.choices.index(t.params[rows_dim.name]), cols_dim.choices.index(t.params[cols_dim.name])
        grid[i][j] = sum(ys) / len(ys)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    image = ax.imshow(grid, cmap="viridis" if metric.higher_is_better else "viridis_r", aspect="auto")
    ax.set_xticks(range(len(cols_dim.choices)), [str(c) for c in cols_dim.choices])
    ax.set_yticks(range(len(rows_dim.choices)), [str(c) for c in rows_dim.choices])
    ax.set_xlabel(cols_dim.name)
    ax.set_ylabel(rows_dim.name)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(j, i, f"{value:.{metric.digits}f}", ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=ax, label=metric.name)
    ax.set_title(f"{spec.name}: mean {metric.name}")
    path = folder / f"sweep-{safe_name(spec.name)}-heatmap.png"
    save_figure(fig, path)
    plt.close(fig)
    return path
