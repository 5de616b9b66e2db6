"""`speedrun compare`: runs (or groups of runs) side by side, and an honest verdict.

`build_comparison` returns plain data (dicts, lists, str, numbers; what
`compare --json` prints); `render_table`/`render_markdown` only lay it out.
A side is one run, or every run of a `group_name` (`g:NAME`): a group shows
means with their interval and its verdicts use all its runs, so noise is
measured instead of guessed.

    {
      "align": "epoch" | "time",
      "targets": ["85%", ...],
      "sides": [{"name": "Run 15", "runs": [15], "hardware": "T4", "title": str}],
      "params": {"differing": [{"name", "values": [str, ...]}],
                 "equal": [{"name", "value": str}]},
      "environment": [{"name", "values": [str, ...]}],
      "metrics": [{"name", "values": [str, ...], "raw": [float|None, ...], "best": [int, ...]}],
      "curve": {"key": "epoch" | "elapsed_s", "rows": [{"at": float,
                "val_acc": [float|None], "diff": [float|None], "val_loss": [...], "train_loss": [...]}]},
      "verdicts": [{"metric": "final accuracy", "side": "Run 16", "kind": "ahead" | "noise" | "no_verdict",
                    "winner": str | None, "text": str}],
    }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from speedrun.errors import SpeedrunError
from speedrun.tracking.records import time_to_target
from speedrun.analysis.report import DEFAULT_TARGETS, fmt_target, hardware_text
from speedrun.text import fmt_value, md_cell
from speedrun.analysis.groups import resolve
from speedrun.analysis.views import hardware_class_of

DEFAULT_ALPHA = 0.05
# Timing noise assumed when a side has a single run: 2% of the mean time.
TIME_NOISE = 0.02
MISSING = "—"
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
)


@dataclass
class Side:
    """One column: a run, or the runs of a group."""

    name: str
    runs: list[Any]

    @property
    def is_group(self) -> bool:
        return self.name.startswith("g:")


# --------------------------------------------------------------------------- loading


def load_sides(store: Any, refs: Sequence[str], *, repeats: bool = False) -> list[Side]:
    """Resolve `15`, `7a` or `g:NAME` references (with `repeats`, a run stands for it and its
    repeats); every side must have per-epoch data."""
    if len(refs) < 2:
        raise SpeedrunError("compare needs at least two runs (or two g:GROUP groups)")
    sides = [Side(s.name, s.runs) for s in resolve(store, refs, expand=repeats)]
    for side in sides:
        empty = [r for r in side.runs if not r.epochs]
        if empty:
            which = ", ".join(r.display_label for r in empty)
            raise SpeedrunError(f"run {which} has no per-epoch data; compare needs epochs")
    seen = set()
    for side in sides:
        if side.name in seen:
            raise SpeedrunError(f"{side.name} is given twice")
        seen.add(side.name)
    return sides


# --------------------------------------------------------------------------- helpers


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _value_text(values: Sequence[Any]) -> str:
    """The parameter value of a side: shared by every run, else "varies"."""
    distinct = list(dict.fromkeys(repr(v) for v in values))
    if len(distinct) == 1:
        return fmt_value(values[0])
    return "varies (" + ", ".join(dict.fromkeys(fmt_value(v) for v in values)) + ")"


def _stat_text(values: Sequence[float | None], digits: int, unit: str) -> str:
    """One run: its value. A group: mean ± CI half-width (n)."""
    from speedrun.analysis.stats import describe

    known = [v for v in values if v is not None]
    if not known:
        return MISSING
    suffix = "%" if unit == "%" else f" {unit}" if unit else ""
    if len(values) == 1:
        return f"{known[0]:.{digits}f}{suffix}"
    d = describe(known)
    if d.ci_half_width is None:
        return f"{d.mean:.{digits}f}{suffix} (n={d.n})"
    return f"{d.mean:.{digits}f}{suffix} ± {d.ci_half_width:.{digits}f} (n={d.n})"


def _images_per_s(run: Any) -> float | None:
    return _mean([e.images_per_s for e in run.epochs])


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


# --------------------------------------------------------------------------- the comparison


def build_comparison(
    sides: Sequence[Side],
    *,
    targets: Sequence[float] = DEFAULT_TARGETS,
    alpha: float = DEFAULT_ALPHA,
    by: str = "epoch",
) -> dict[str, Any]:
    if by not in ("epoch", "time"):
        raise SpeedrunError(f"--by must be epoch or time, got {by!r}")
    if not 0 < alpha < 1:
        raise SpeedrunError(f"--alpha must be between 0 and 1, got {alpha:g}")
    targets = list(dict.fromkeys(float(t) for t in targets))
    return {
        "align": by,
        "targets": [fmt_target(t) for t in targets],
        "sides": [
            {
                "name": s.name,
                "runs": [r.id for r in s.runs],
                "hardware": ", ".join(dict.fromkeys(hardware_class_of(r) for r in s.runs)),
                "title": s.runs[0].title if len(s.runs) == 1 else f"{len(s.runs)} runs",
            }
            for s in sides
        ],
        "params": _params(sides),
        "environment": _environment(sides),
        "metrics": _metrics(sides, targets),
        "curve": _curve(sides, by),
        "verdicts": _verdicts(sides, targets, alpha),
    }


def _params(sides: Sequence[Side]) -> dict[str, list[dict[str, Any]]]:
    dicts = [[r.param_dict for r in s.runs] for s in sides]
    names = list(dict.fromkeys(name for per_side in dicts for params in per_side for name in params))
    differing, equal = [], []
    for name in names:
        values = [_value_text([p.get(name, MISSING) for p in per_side]) for per_side in dicts]
        if len(set(values)) == 1:
            equal.append({"name": name, "value": values[0]})
        else:
            differing.append({"name": name, "values": values})
    return {"differing": differing, "equal": equal}


def _environment(sides: Sequence[Side]) -> list[dict[str, Any]]:
    rows = []
    for title, attr in ENV_ROWS:
        values = []
        for s in sides:
            texts = []
            for r in s.runs:
                if attr is None:
                    texts.append(hardware_text(r) or hardware_class_of(r))
                else:
                    value = getattr(r.environment, attr, None) if r.environment else None
                    texts.append(MISSING if value is None else str(value))
            distinct = list(dict.fromkeys(texts))
            values.append(distinct[0] if len(distinct) == 1 else "varies")
        if any(v != MISSING for v in values):
            rows.append({"name": title, "values": values})
    return rows


def _metric_row(name: str, per_side: list[list[float | None]], digits: int, unit: str, higher: bool) -> dict:
    raw = [_mean(v) for v in per_side]
    known = [v for v in raw if v is not None]
    best_value = (max(known) if higher else min(known)) if known else None
    best = [i for i, v in enumerate(raw) if v is not None and v == best_value] if len(known) > 1 else []
    return {
        "name": name,
        "values": [_stat_text(v, digits, unit) for v in per_side],
        "raw": raw,
        "best": best,
    }


def _metrics(sides: Sequence[Side], targets: Sequence[float]) -> list[dict[str, Any]]:
    def each(fn):
        return [[fn(r) for r in s.runs] for s in sides]

    rows = [
        _metric_row("Final accuracy", each(lambda r: r.final_val_acc), 2, "%", True),
        _metric_row("Peak accuracy", each(lambda r: r.peak_val_acc), 2, "%", True),
    ]
    peak_epochs = [
        ", ".join(dict.fromkeys(str(r.peak_epoch) for r in s.runs if r.peak_epoch is not None)) or MISSING
        for s in sides
    ]
    rows.append({"name": "Peak at epoch", "values": peak_epochs, "raw": [None] * len(sides), "best": []})
    rows += [
        _metric_row("Training time", each(lambda r: r.train_time_s), 1, "s", False),
        _metric_row("Seconds per epoch", each(lambda r: r.mean_epoch_s), 2, "s", False),
        _metric_row("Images per second", each(_images_per_s), 0, "", True),
    ]
    rows = [r for r in rows if any(v != MISSING for v in r["values"])]
    for t in targets:
        row = _metric_row(f"Time to {fmt_target(t)}", each(lambda r: time_to_target(r.epochs, t)), 1, "s", False)
        row["values"] = [v if v != MISSING else "not reached" for v in row["values"]]
        rows.append(row)
    return rows


def _side_curve(side: Side, by: str, at: Sequence[float]) -> list[dict[str, float | None]]:
    """Per time point, the side's mean val acc / losses (nearest earlier epoch for --by time)."""
    per_run = []
    for run in side.runs:
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
        out.append(
            {
                attr: _mean([getattr(e, attr) if e is not None else None for e in epochs])
                for attr in ("val_acc", "val_loss", "train_loss")
            }
        )
    return out


def _curve(sides: Sequence[Side], by: str) -> dict[str, Any]:
    if by == "epoch":
        at = sorted({float(e.epoch) for s in sides for r in s.runs for e in r.epochs})
    else:
        at = sorted({t for s in sides for r in s.runs for t, _ in _elapsed(r)})
    columns = [_side_curve(s, by, at) for s in sides]
    rows = []
    for k, x in enumerate(at):
        accs = [col[k]["val_acc"] for col in columns]
        first = accs[0]
        rows.append(
            {
                "at": int(x) if by == "epoch" else x,
                "val_acc": accs,
                "diff": [None if (a is None or first is None) else a - first for a in accs],
                "val_loss": [col[k]["val_loss"] for col in columns],
                "train_loss": [col[k]["train_loss"] for col in columns],
            }
        )
    return {"key": "epoch" if by == "epoch" else "elapsed_s", "rows": rows}


def _verdicts(sides: Sequence[Side], targets: Sequence[float], alpha: float) -> list[dict[str, Any]]:
    """Each side against the first: final accuracy, and time to the highest target all runs reached."""
    from speedrun.analysis.stats import compare

    base = sides[0]
    reached_by_all = [
        t for t in targets if all(time_to_target(r.epochs, t) is not None for s in sides for r in s.runs)
    ]
    target = max(reached_by_all) if reached_by_all else None
    out = []
    for other in sides[1:]:
        names = (base.name, other.name)
        final = compare(
            [r.final_val_acc for r in base.runs], [r.final_val_acc for r in other.runs],
            alpha=alpha, metric="final accuracy", unit="%", names=names,
        )
        out.append(_verdict("final accuracy", other, final, names))
        if target is None:
            out.append({
                "metric": "time to target", "side": other.name, "kind": "no_verdict", "winner": None,
                "text": "Time to target: no target of " + ", ".join(fmt_target(t) for t in targets)
                + " was reached by every run",
            })
            continue
        times_a = [time_to_target(r.epochs, target) for r in base.runs]
        times_b = [time_to_target(r.epochs, target) for r in other.runs]
        everything = times_a + times_b
        timing = compare(
            times_a, times_b, alpha=alpha, higher_is_better=False, metric=f"time to {fmt_target(target)}",
            unit="s", names=names, digits=1, default_std=TIME_NOISE * sum(everything) / len(everything),
        )
        out.append(_verdict(f"time to {fmt_target(target)}", other, timing, names))
    return out


def _verdict(metric: str, other: Side, result: Any, names: tuple[str, str]) -> dict[str, Any]:
    winner = None if result.winner is None else names[0 if result.winner == "a" else 1]
    return {
        "metric": metric,
        "side": other.name,
        "kind": result.kind,
        "winner": winner,
        "text": f"{metric[0].upper()}{metric[1:]}: {result.verdict}",
    }


# --------------------------------------------------------------------------- rendering


def _num(value: float | None, fmt: str) -> str:
    return MISSING if value is None else format(value, fmt)


def _diff(value: float | None) -> str:
    return "" if value is None or value == 0 else f" ({value:+.2f})"


def curve_cells(data: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """Val acc per side, with the difference to the first side."""
    cells = []
    for i, acc in enumerate(row["val_acc"]):
        text = _num(acc, ".2f")
        if i and acc is not None:
            text += _diff(row["diff"][i])
        loss = row["val_loss"][i] if row["val_loss"][i] is not None else row["train_loss"][i]
        if loss is not None:
            text += f" / {loss:.4f}"
        cells.append(text)
    return cells


def _at_text(data: dict[str, Any], row: dict[str, Any]) -> str:
    return str(row["at"]) if data["align"] == "epoch" else f"{row['at']:.1f} s"


def _loss_label(data: dict[str, Any]) -> str:
    has_val = any(v is not None for row in data["curve"]["rows"] for v in row["val_loss"])
    return "val loss" if has_val else "train loss"


def sparklines(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(side name, sparkline of val acc) on one shared scale."""
    from speedrun.analysis.plots import sparkline

    rows = data["curve"]["rows"]
    values = [v for row in rows for v in row["val_acc"] if v is not None]
    if not values:
        return []
    low, high = min(values), max(values)
    return [
        (side["name"], sparkline([row["val_acc"][i] for row in rows], low, high) + f"  {low:.1f}–{high:.1f}%")
        for i, side in enumerate(data["sides"])
    ]


def render_table(data: dict[str, Any], *, show_all: bool = False):
    """A Rich renderable: parameters, environment, metrics, curves, verdicts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    names = [s["name"] for s in data["sides"]]
    table = Table(show_edge=False, header_style="bold", show_lines=False)
    table.add_column("")
    for side in data["sides"]:
        table.add_column(Text(f"{side['name']}\n{side['hardware']}"), justify="right")  # user text, not markup

    def section(title: str) -> None:
        table.add_row(Text(title, style="bold underline"), *[""] * len(names))

    section("Parameters")
    for p in data["params"]["differing"]:
        table.add_row(Text(p["name"], style="bold yellow"), *[Text(v, style="yellow") for v in p["values"]])
    equal = data["params"]["equal"]
    if show_all:
        for p in equal:
            table.add_row(Text(p["name"], style="dim"), *[Text(p["value"], style="dim")] * len(names))
    elif equal:
        table.add_row(Text(f"{len(equal)} equal parameters hidden; --all to show", style="dim"), *[""] * len(names))
    section("Environment")
    for row in data["environment"]:
        differs = len(set(row["values"])) > 1
        table.add_row(
            Text(row["name"], style="yellow" if differs else ""),
            *[Text(v, style="yellow" if differs else "") for v in row["values"]],
        )
    section("Results")
    for row in data["metrics"]:
        cells = [
            Text(v + (" ★" if i in row["best"] else ""), style="bold green" if i in row["best"] else "")
            for i, v in enumerate(row["values"])
        ]
        table.add_row(Text(row["name"]), *cells)
    section(f"Val accuracy / {_loss_label(data)} by {'epoch' if data['align'] == 'epoch' else 'elapsed time'}")
    for row in data["curve"]["rows"]:
        table.add_row(Text(_at_text(data, row)), *[Text(c) for c in curve_cells(data, row)])

    parts: list[Any] = [table, Text("")]
    for name, line in sparklines(data):
        parts.append(Text(f"{name:>12}  {line}"))
    parts.append(Text(""))
    for v in data["verdicts"]:
        style = "bold" if v["kind"] == "ahead" else ""
        parts.append(Text(f"{v['text']}", style=style))
    return Group(*parts)


def render_markdown(data: dict[str, Any], *, show_all: bool = False) -> str:
    names = [s["name"] for s in data["sides"]]
    head = "| | " + " | ".join(md_cell(f"{s['name']} ({s['hardware']})") for s in data["sides"]) + " |"
    sep = "|---|" + "---:|" * len(names)
    lines = [head, sep]

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(md_cell(c) for c in cells) + " |")

    for p in data["params"]["differing"]:
        row(f"**{md_cell(p['name'])}**", p["values"])
    equal = data["params"]["equal"]
    if show_all:
        for p in equal:
            row(md_cell(p["name"]), [p["value"]] * len(names))
    elif equal:
        row(f"_{len(equal)} equal parameters hidden; --all to show_", [""] * len(names))
    for e in data["environment"]:
        row(e["name"], e["values"])
    for m in data["metrics"]:
        row(m["name"], [f"**{v}**" if i in m["best"] else v for i, v in enumerate(m["values"])])
    lines += ["", f"| {'Epoch' if data['align'] == 'epoch' else 'Time'} | "
              + " | ".join(md_cell(n) for n in names) + " |", "|---:|" + "---:|" * len(names)]
    for r in data["curve"]["rows"]:
        row(_at_text(data, r), curve_cells(data, r))
    lines.append("")
    lines += [f"- {v['text']}" for v in data["verdicts"]]
    return "\n".join(lines) + "\n"


def plot_png(sides: Sequence[Side], path: Any, by: str = "epoch") -> None:
    from pathlib import Path

    from speedrun.analysis.plots import overlay_png

    runs = [r for s in sides for r in s.runs]
    overlay_png(runs, Path(path), title=" vs ".join(s.name for s in sides), x="epoch" if by == "epoch" else "elapsed_s")
