"""`speedrun compare`: runs (or groups of runs) side by side, and an honest verdict.

`build_comparison` returns plain data (dicts, lists, str, numbers; what
`compare --json` prints); `render_table`/`render_markdown` only lay it out.
A side is one run, or a set of runs (`g:NAME`, or a run with its repeats): a
set shows means with their interval, and its verdicts use all its runs, so
noise is measured instead of guessed. Runs without per-epoch data (a notebook's
summary-only runs) compare on their settings and results; curves and
per-epoch rows are shown for the sides that have them.

    {
      "align": "epoch" | "time", "alpha": 0.05,
      "targets": ["85%", ...],
      "sides": [{"name": "Run 15", "runs": [15], "hardware": "T4", "title": str,
                 "status": "completed" | "interrupted" | "a 500-image subset" | ..., "counts": bool,
                 "warning": "members differ in lr: not repeats of one set-up" | None}],
      "params": {"differing": [{"name", "values": [str, ...]}],
                 "not_stated": [{"name", "values": [str, ...]}],   # stated by some sides only
                 "equal": [{"name", "value": str}]},
      "environment": [{"name", "values": [str, ...]}],
      "runs": [{"name": "Status" | "Epochs", "values": [str, ...]}],
      "metrics": [{"key", "name", "values": [str, ...], "raw": [float|None, ...], "best": [int, ...]}],
      "curve": {"key": "epoch" | "elapsed_s", "sides": [int, ...], "loss": "val loss" | "train loss" | None,
                "rows": [{"at": float, "val_acc": [float|None], "diff": [float|None], "loss": [float|None]}]}
               | None,
      "differences": [{"side", "against", "names", "line"}],   # groups.differences, one per other side
      "verdicts": [{"metric", "title", "side", "kind", "winner_name", "text", "line", ...}],
    }
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Sequence

from speedrun.analysis import groups, metrics
from speedrun.analysis.metrics import Metric
from speedrun.errors import SpeedrunError
from speedrun.domain.hardware import hardware_class_of, hardware_text
from speedrun.text import MISSING, fmt_num, fmt_target, fmt_value, md_cell

NOT_STATED = "not stated"
UNPARSED_ROW = "configuration text (not parsed)"
ENV_ROWS = (
    ("Hardware", None),
    ("Device", "device_type"),
    ("GPU", "gpu_name"),
    ("CPU", "cpu_model"),
    ("Python", "python_version"),
    ("torch", "torch_version"),
    ("torchvision", "torchvision_version"),
    ("CUDA", "cuda_version"),
    ("Driver", "driver_version"),
    ("OS", "os"),
    ("Threads", "machine:threads"),  # what the run decided on its machine (run.extra["machine"])
    ("Autocast", "machine:amp_dtype"),
    ("TF32", "machine:tf32"),
)
# Rows of the results, in order; time-to-target rows follow.
RESULT_METRICS = (
    metrics.FINAL_ACCURACY,
    metrics.PEAK_ACCURACY,
    metrics.TRAINING_TIME,
    metrics.SECONDS_PER_EPOCH,
    metrics.IMAGES_PER_SECOND,
    metrics.MFU,
)


@dataclass
class Side:
    """One column: a run, or a set of runs."""

    name: str
    runs: list[Any]
    note: str | None = None  # what the reference stands for, where that is not what it names (a copy)

    @property
    def has_epochs(self) -> bool:
        return any(r.epochs for r in self.runs)


# --------------------------------------------------------------------------- loading


def load_sides(store: Any, refs: Sequence[str], *, repeats: bool = False) -> list[Side]:
    """Resolve `15`, `7a` or `g:NAME` references (with `repeats`, a run stands for it and its
    true repeats)."""
    if len(refs) < 2:
        raise SpeedrunError("compare needs at least two runs (or two g:GROUP groups)")
    return as_sides(groups.resolve(store, refs, expand=repeats))


def as_sides(sets: Sequence[Any]) -> list[Side]:
    """Sides from sets of runs (groups.RunSet): at least two, each named once."""
    if len(sets) < 2:
        raise SpeedrunError(f"compare needs at least two sides; only {', '.join(s.name for s in sets)} was given")
    sides = [Side(s.name, s.runs, getattr(s, "note", None)) for s in sets]
    seen = set()
    for side in sides:
        if side.name in seen:
            raise SpeedrunError(f"{side.name} is given twice")
        seen.add(side.name)
    return sides


def default_plot_path(sides: Sequence[Side]) -> Path:
    """`compare-15-18.png` for `compare 15 18 --plot`: named by the sides, in the current folder."""
    parts = []
    for side in sides:
        label = side.name[2:] if side.name.startswith("g:") else side.runs[0].display_label
        parts.append(re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "run")
    return Path(f"compare-{'-'.join(parts)}.png")


# --------------------------------------------------------------------------- the comparison


def build_comparison(
    sides: Sequence[Side],
    *,
    targets: Sequence[float] = metrics.DEFAULT_TARGETS,
    alpha: float = metrics.ALPHA,
    by: str = "epoch",
    pool: metrics.NoisePool | None = None,
) -> dict[str, Any]:
    """Everything `compare` shows, as plain data. `pool` holds the user's repeats, for the spread
    a gap between single runs is measured in (default: only these sides' runs)."""
    if by not in ("epoch", "time"):
        raise SpeedrunError(f"--by must be epoch or time, got {by!r}")
    metrics.check_alpha(alpha)
    targets = metrics.check_targets(targets)
    pool = pool if pool is not None else metrics.NoisePool([r for s in sides for r in s.runs])
    differences = [groups.differs_entry(sides[0].name, sides[0].runs, s.name, s.runs) for s in sides[1:]]
    no_verdict = {d["side"] for d in differences if d["no_verdict"]}  # said in its line instead
    return {
        "align": by,
        "alpha": alpha,
        "targets": [fmt_target(t) for t in targets],
        "sides": [_side_info(s) for s in sides],
        "params": _params(sides),
        "environment": _environment(sides),
        "runs": _run_rows(sides),
        "metrics": _metrics(sides, targets),
        "curve": _curve(sides, by),
        "differences": differences,
        "verdicts": _verdicts(sides, targets, alpha, pool, skip=no_verdict),
    }


def _side_info(side: Side) -> dict[str, Any]:
    reasons = list(dict.fromkeys(why for r in side.runs if (why := groups.exclusion(r))))
    return {
        "name": side.name,
        "runs": [r.id for r in side.runs],
        "hardware": ", ".join(dict.fromkeys(hardware_class_of(r) for r in side.runs)),
        "title": side.runs[0].title if len(side.runs) == 1 else f"{len(side.runs)} runs",
        "status": "; ".join(reasons) or "completed",
        "counts": not reasons,
        "warning": "; ".join(w for w in (side.note, groups.setup_difference(side.runs) if len(side.runs) > 1 else None)
                             if w) or None,
    }


def _side_values(runs: Sequence[Any], name: str) -> tuple[str, set[str]]:
    """(text, canonical values) of setting `name` over a side's runs."""
    shown: dict[str, str] = {}
    for run in runs:
        if name == UNPARSED_ROW:
            raw = groups.unparsed_config(run)
            value = "(none)" if raw is None else raw
        else:
            raw = run.param_dict.get(name)
            value = NOT_STATED if raw is None else fmt_value(raw)
        key = value if raw is None or name == UNPARSED_ROW else json.dumps(groups.setting_key(raw), default=str)
        shown.setdefault(key, value)
    text = next(iter(shown.values())) if len(shown) == 1 else "varies (" + ", ".join(shown.values()) + ")"
    return text, set(shown)


def _params(sides: Sequence[Side]) -> dict[str, list[dict[str, Any]]]:
    """Settings compared on canonical values; one never stated by a side is no difference."""
    names = list(dict.fromkeys(name for s in sides for r in s.runs for name in r.param_dict))
    if any(groups.unparsed_config(r) for s in sides for r in s.runs):
        names.append(UNPARSED_ROW)
    differing, not_stated, equal = [], [], []
    for name in names:
        texts, keys = zip(*(_side_values(s.runs, name) for s in sides))
        stated = [k - {NOT_STATED} for k in keys]
        known = [k for k in stated if k]
        if any(k != known[0] for k in known):
            differing.append({"name": name, "values": list(texts)})
        elif any(NOT_STATED in k for k in keys):
            not_stated.append({"name": name, "values": list(texts)})
        else:
            equal.append({"name": name, "value": texts[0]})
    return {"differing": differing, "not_stated": not_stated, "equal": equal}


def _environment(sides: Sequence[Side]) -> list[dict[str, Any]]:
    rows = []
    for title, attr in ENV_ROWS:
        values = []
        for s in sides:
            texts = []
            for r in s.runs:
                if attr is None:
                    texts.append(hardware_text(r) or hardware_class_of(r))
                elif attr.startswith("machine:"):
                    machine = (getattr(r, "extra", None) or {}).get("machine")
                    value = machine.get(attr[len("machine:"):]) if isinstance(machine, dict) else None
                    texts.append(MISSING if value is None else str(value))
                else:
                    value = getattr(r.environment, attr, None) if r.environment else None
                    texts.append(MISSING if value is None else str(value))
            distinct = list(dict.fromkeys(texts))
            values.append(distinct[0] if len(distinct) == 1 else "varies")
        if any(v != MISSING for v in values):
            rows.append({"name": title, "values": values})
    return rows


def _run_rows(sides: Sequence[Side]) -> list[dict[str, Any]]:
    """Status and epochs: what says whether a side's numbers stand for its set-up."""
    def epochs(run: Any) -> str:
        done = max((e.epoch for e in run.epochs), default=run.epochs_completed or 0)
        budget = groups.epoch_budget(run)
        if not done:
            return f"{budget} (not logged)" if budget else MISSING
        return f"{done}/{budget}" if budget else str(done)

    status = [_side_info(s)["status"] for s in sides]
    epoch_texts = [", ".join(dict.fromkeys(epochs(r) for r in s.runs)) for s in sides]
    return [{"name": "Status", "values": status}, {"name": "Epochs", "values": epoch_texts}]


def _metric_row(metric: Metric, sides: Sequence[Side], cells: list[str] | None = None) -> dict[str, Any]:
    """A metric per side; the best side is marked among those whose runs all count."""
    used = [groups.counting(s.runs) for s in sides]
    per_side = [metrics.values(metric, runs) for runs in used]
    raw = [sum(v) / len(v) if v else None for v in per_side]
    # A side whose every run counts, and (for a time to a target) reached it: a mean over the runs
    # that got there is no faster side's.
    eligible = [i for i, s in enumerate(sides) if raw[i] is not None and all(groups.counts(r) for r in s.runs)
                and len(per_side[i]) == len(used[i])]
    best: list[int] = []
    if len([v for v in raw if v is not None]) > 1 and eligible:
        pick = max if metric.higher_is_better else min
        best_value = pick(raw[i] for i in eligible)
        best = [i for i in eligible if raw[i] == best_value]
    return {
        "key": metric.key,
        "name": metric.title,
        "values": cells or [metrics.mean_text(metric, v) for v in per_side],
        "raw": raw,
        "best": best,
    }


def _metrics(sides: Sequence[Side], targets: Sequence[float]) -> list[dict[str, Any]]:
    rows = []
    for metric in RESULT_METRICS:
        row = _metric_row(metric, sides)
        if any(v is not None for v in row["raw"]):
            rows.append(row)
    peak_epochs = [
        ", ".join(dict.fromkeys(str(r.peak_epoch) for r in s.runs if r.peak_epoch is not None)) or MISSING
        for s in sides
    ]
    peak = next((i for i, row in enumerate(rows) if row["key"] == "peak_accuracy"), None)
    if peak is not None and any(v != MISSING for v in peak_epochs):
        rows.insert(peak + 1, {"key": "peak_epoch", "name": "Peak at epoch", "values": peak_epochs,
                               "raw": [None] * len(sides), "best": []})
    if any(s.has_epochs for s in sides):
        for t in targets:
            metric = metrics.time_to(t)
            row = _metric_row(metric, sides)
            row["values"] = [
                v if v != MISSING else ("not reached" if s.has_epochs else MISSING)
                for v, s in zip(row["values"], sides)
            ]
            rows.append(row)
    return rows


def _elapsed(run: Any) -> list[tuple[float, Any]]:
    """(elapsed seconds, epoch) per epoch: the logged total, else the running sum of durations."""
    out = []
    running = 0.0
    for e in run.epochs:
        if e.duration_s is not None:
            running += e.duration_s
        if e.elapsed_s is not None:
            out.append((e.elapsed_s, e))
        elif e.duration_s is not None:
            out.append((running, e))
        else:
            raise SpeedrunError(f"run {run.display_label} has epochs without times; cannot align --by time")
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _side_curve(side: Side, by: str, at: Sequence[float], loss: str | None) -> list[dict[str, float | None]]:
    """Per time point, the side's mean val acc and loss (nearest earlier epoch for --by time)."""
    per_run = []
    for run in side.runs:
        if not run.epochs:
            continue
        if by == "epoch":
            rows = {e.epoch: e for e in run.epochs}
            per_run.append([rows.get(int(x)) for x in at])
        else:
            timeline = _elapsed(run)
            picked, i, current = [], 0, None
            for x in at:
                while i < len(timeline) and timeline[i][0] <= x:
                    current = timeline[i][1]
                    i += 1
                picked.append(current)
            per_run.append(picked)
    out = []
    for k in range(len(at)):
        epochs = [col[k] for col in per_run]
        accs = [e.val_acc for e in epochs if e is not None and e.val_acc is not None]
        out.append({
            "val_acc": _mean(accs),
            "val_acc_std": statistics.stdev(accs) if len(accs) > 1 else None,  # a group's band
            "loss": _mean([getattr(e, loss) if e is not None else None for e in epochs]) if loss else None,
        })
    return out


def _loss_kind(sides: Sequence[Side]) -> str | None:
    """The loss the curve shows: validation loss if every side with epochs has it, else training
    loss if every one has that, else none (a label must say what the column shows)."""
    with_epochs = [s for s in sides if s.has_epochs]
    for attr in ("val_loss", "train_loss"):
        if all(any(getattr(e, attr) is not None for r in s.runs for e in r.epochs) for s in with_epochs):
            return attr
    return None


def _curve(sides: Sequence[Side], by: str) -> dict[str, Any] | None:
    shown = [i for i, s in enumerate(sides) if s.has_epochs]
    if not shown:
        return None
    if by == "epoch":
        at = sorted({float(e.epoch) for s in sides for r in s.runs for e in r.epochs})
    else:
        at = sorted({t for s in sides for r in s.runs for t, _ in _elapsed(r)})
    loss = _loss_kind(sides)
    columns = [_side_curve(sides[i], by, at, loss) for i in shown]
    rows = []
    for k, x in enumerate(at):
        accs = [col[k]["val_acc"] for col in columns]
        first = accs[0]
        rows.append({
            "at": int(x) if by == "epoch" else x,
            "val_acc": accs,
            "val_acc_std": [col[k]["val_acc_std"] for col in columns],
            "diff": [None if (a is None or first is None) else a - first for a in accs],
            "loss": [col[k]["loss"] for col in columns],
        })
    return {
        "key": "epoch" if by == "epoch" else "elapsed_s",
        "sides": shown,
        "loss": {"val_loss": "val loss", "train_loss": "train loss"}.get(loss or ""),
        "rows": rows,
    }


def _verdicts(sides: Sequence[Side], targets: Sequence[float], alpha: float,
              pool: metrics.NoisePool, *, skip: Collection[str] = ()) -> list[dict[str, Any]]:
    """Each side against the first, over the runs that count: final accuracy, training time, and
    the time to the highest target every run reached. Sides named in `skip` get none (their
    `differences` line says why)."""
    reached_by_all = [
        t for t in targets
        if all(metrics.time_to(t).value(r) is not None for s in sides for r in s.runs)
    ]
    compared = [metrics.FINAL_ACCURACY, metrics.TRAINING_TIME]
    if reached_by_all:
        compared.append(metrics.time_to(max(reached_by_all)))
    compared.append(metrics.MFU)  # only where repeats measure it: a single MFU restates the time
    base, base_runs = sides[0], groups.counting(sides[0].runs)
    out = []
    for other in sides[1:]:
        if other.name in skip:
            continue
        other_runs = groups.counting(other.runs)
        for metric in compared:
            base_values, other_values = metrics.values(metric, base_runs), metrics.values(metric, other_runs)
            if not base_values or not other_values:
                continue
            if metric is metrics.MFU and max(len(base_values), len(other_values)) < 2:
                continue
            result = metrics.verdict(metric, base_runs, other_runs, names=(base.name, other.name),
                                     alpha=alpha, pool=pool)
            out.append({"side": other.name, **result.as_dict()})
    return out


# --------------------------------------------------------------------------- rendering


def _diff(value: float | None) -> str:
    return "" if value is None or value == 0 else f" ({fmt_num(value, '+.2f')})"


def curve_cells(data: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """Val acc per side that has epochs, with the difference to the first of them, and the loss."""
    cells = []
    for i, acc in enumerate(row["val_acc"]):
        text = fmt_num(acc, ".2f")
        if i and acc is not None:
            text += _diff(row["diff"][i])
        if row["loss"][i] is not None:
            text += f" / {row['loss'][i]:.4f}"
        cells.append(text)
    return cells


def _at_text(data: dict[str, Any], row: dict[str, Any]) -> str:
    return str(row["at"]) if data["align"] == "epoch" else f"{row['at']:.1f} s"


def curve_title(data: dict[str, Any]) -> str:
    """"Val accuracy / val loss by epoch": exactly what the cells show."""
    curve = data["curve"]
    what = "Val accuracy" + (f" / {curve['loss']}" if curve["loss"] else "")
    return f"{what} by {'epoch' if data['align'] == 'epoch' else 'elapsed time'}"


def sparklines(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(side name, sparkline of val acc and its own range) on one shared scale, for the sides with
    epochs: the bars compare the sides, the numbers are each side's (the shared scale's range was
    printed beside every side, as if each had spanned it)."""
    from speedrun.analysis.plots import sparkline

    curve = data["curve"]
    if curve is None:
        return []
    rows = curve["rows"]
    values = [v for row in rows for v in row["val_acc"] if v is not None]
    if not values:
        return []
    low, high = min(values), max(values)
    lines = []
    for i, side in enumerate(curve["sides"]):
        own = [row["val_acc"][i] for row in rows]
        known = [v for v in own if v is not None]
        span = f"  {min(known):.1f}–{max(known):.1f}%" if known else ""
        lines.append((data["sides"][side]["name"], sparkline(own, low, high) + span))
    return lines


def _hidden_note(data: dict[str, Any]) -> str | None:
    equal = len(data["params"]["equal"])
    return f"{equal} equal parameters hidden; --all to show" if equal else None


def render_table(data: dict[str, Any], *, show_all: bool = False):
    """A Rich renderable: parameters, environment, results, curves, verdicts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    n = len(data["sides"])
    table = Table(show_edge=False, header_style="bold", show_lines=False)
    table.add_column("")
    for side in data["sides"]:
        table.add_column(Text(f"{side['name']}\n{side['hardware']}"), justify="right")  # user text, not markup

    def section(title: str) -> None:
        table.add_row(Text(title, style="bold underline"), *[""] * n)

    section("Parameters")
    for p in data["params"]["differing"]:
        table.add_row(Text(p["name"], style="bold yellow"), *[Text(v, style="yellow") for v in p["values"]])
    for p in data["params"]["not_stated"]:  # not a difference: nothing says it differs
        table.add_row(Text(p["name"]), *[Text(v, style="dim" if v == NOT_STATED else "") for v in p["values"]])
    if show_all:
        for p in data["params"]["equal"]:
            table.add_row(Text(p["name"], style="dim"), *[Text(p["value"], style="dim")] * n)
    elif note := _hidden_note(data):
        table.add_row(Text(note, style="dim"), *[""] * n)
    section("Environment")
    for row in data["environment"]:
        differs = len(set(row["values"])) > 1
        table.add_row(
            Text(row["name"], style="yellow" if differs else ""),
            *[Text(v, style="yellow" if differs else "") for v in row["values"]],
        )
    section("Results")
    for row in data["runs"]:
        table.add_row(Text(row["name"]), *[Text(v) for v in row["values"]])
    for row in data["metrics"]:
        cells = [
            Text(v + (" ★" if i in row["best"] else ""), style="bold green" if i in row["best"] else "")
            for i, v in enumerate(row["values"])
        ]
        table.add_row(Text(row["name"]), *cells)
    if data["curve"] is not None:
        section(curve_title(data))
        shown = data["curve"]["sides"]
        for row in data["curve"]["rows"]:
            cells = dict(zip(shown, curve_cells(data, row)))
            table.add_row(Text(_at_text(data, row)), *[Text(cells.get(i, "")) for i in range(n)])

    parts: list[Any] = [table, Text("")]
    for name, line in sparklines(data):
        parts.append(Text(f"{name:>12}  {line}"))
    parts.append(Text(""))
    for side in data["sides"]:
        if side["warning"]:
            parts.append(Text(f"{side['name']}: {side['warning']}", style="yellow"))
    for d in data["differences"]:
        parts.append(Text(d["line"]))
    for v in data["verdicts"]:
        parts.append(Text(v["line"], style="bold" if v["kind"] == "significant" else ""))
    return Group(*parts)


def render_markdown(data: dict[str, Any], *, show_all: bool = False) -> str:
    n = len(data["sides"])
    head = "| | " + " | ".join(md_cell(f"{s['name']} ({s['hardware']})") for s in data["sides"]) + " |"
    lines = [head, "|---|" + "---:|" * n]

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(md_cell(c) for c in cells) + " |")

    for p in data["params"]["differing"]:
        row(f"**{md_cell(p['name'])}**", p["values"])
    for p in data["params"]["not_stated"]:
        row(md_cell(p["name"]), p["values"])
    if show_all:
        for p in data["params"]["equal"]:
            row(md_cell(p["name"]), [p["value"]] * n)
    elif note := _hidden_note(data):
        row(f"_{note}_", [""] * n)
    for e in data["environment"]:
        row(e["name"], e["values"])
    for r in data["runs"]:
        row(r["name"], r["values"])
    for m in data["metrics"]:
        row(m["name"], [f"**{v}**" if i in m["best"] else v for i, v in enumerate(m["values"])])
    curve = data["curve"]
    if curve is not None:
        names = [data["sides"][i]["name"] for i in curve["sides"]]
        lines += ["", f"{curve_title(data)}:", "",
                  f"| {'Epoch' if data['align'] == 'epoch' else 'Time'} | " + " | ".join(md_cell(x) for x in names) + " |",
                  "|---:|" + "---:|" * len(names)]
        for r in curve["rows"]:
            row(_at_text(data, r), curve_cells(data, r))
    lines.append("")
    lines += [f"- {s['name']}: {s['warning']}" for s in data["sides"] if s["warning"]]
    lines += [f"- {d['line']}" for d in data["differences"]]
    lines += [f"- {v['line']}" for v in data["verdicts"]]
    return "\n".join(lines) + "\n"


def plot_png(sides: Sequence[Side], path: Path, by: str = "epoch") -> Path:
    """The val-accuracy curves of the sides that have epochs, in one PNG; returns its path."""
    from speedrun.analysis.plots import overlay_png

    runs = [r for s in sides for r in s.runs if r.epochs]
    if not runs:
        raise SpeedrunError("--plot: none of these runs has per-epoch data to plot")
    overlay_png(runs, Path(path), title=" vs ".join(s.name for s in sides), x="epoch" if by == "epoch" else "elapsed_s")
    return Path(path)
