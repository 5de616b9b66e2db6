"""`speedrun report`: the lab notebook rebuilt from the database.

`build_context` turns runs into one plain data structure (dicts, lists, str,
numbers) that templates only display: every number is computed and every
string formatted here, so the Markdown, the HTML and a user's own template
all say the same thing. The structure, top down:

    {
      "title": str,                 # "Experiment Results: CIFAR-10 Speedrun"
      "stamp": str | None,          # only with --stamp: reports are reproducible otherwise
      "run_count": int,
      "alpha": float, "alpha_text": "0.05",          # "is this difference real"
      "record_alpha_text": "0.01",                  # the record rule
      "targets": ["85%", "90%", "94%"],
      "leaderboard": [              # one row per record, hardware class and epoch budget
        {"hardware": "T4", "epochs": "10 epochs", "record": "Best final accuracy" | "Fastest to 85%",
         "value": "90.68%" | "348.7 s (85.72% at epoch 8)",
         "run": "Run 18", "run_id": 18, "title": str, "configuration": "lr=0.02, ...",
         "group": "90.41% ± 0.20 (n=3)" | "", "status": "confirmed" | "unconfirmed"
         | "not confirmed" | "uncontested", "evidence": str},
      ],
      "groups": [                   # groups the user made, then sets of true repeats (n >= 2)
        {"name": str, "made_by_user": bool, "hardware": str, "epochs": str, "configuration": str,
         "runs": "15, 18, 21", "n": int, "final": "mean ± std (n)", "peak": ..., "time": ...,
         "warnings": [str, ...], "plot": path | None, "svg": str | None},
      ],
      "runs": [                     # one notebook section per run, in run order
        {"id": int, "label": str, "title": str,
         "facts": [{"name": "Hypothesis", "value": str}, ...],   # only known ones
         "params": ["lr=0.04", ...], "computed": [str, ...],
         "log": str | None, "fence": "```",
         "summary": [{"name": str, "value": str, "md": str}],    # instead of a log

         "analysis": str | None, "plot": path | None, "svg": str | None},
      ],
    }

Runs come from one `Store.list_runs(..., with_epochs=True)` call; nothing
here queries per run. Anything shaped like `models.Run` works as input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2

from speedrun.notebook import logformat
from speedrun.tracking.db import resource_dir
from speedrun.errors import SpeedrunError
from speedrun.analysis import groups, leaderboard, metrics
from speedrun.analysis.baselines import Baselines
from speedrun.tracking.records import times_to_targets
from speedrun.text import fmt_param, fmt_target, hardware_text, md_cell

DEFAULT_TARGETS = metrics.DEFAULT_TARGETS
TITLE = "Experiment Results: CIFAR-10 Speedrun"
COMPUTED_OPEN = "<!-- speedrun:computed -->"
COMPUTED_CLOSE = "<!-- /speedrun:computed -->"
FORMATS = ("md", "html")
_BACKTICKS = re.compile(r"`+")


# --------------------------------------------------------------------------- formatting


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside the text."""
    if "```" not in text:
        return "```"
    return "`" * (max(len(m) for m in _BACKTICKS.findall(text)) + 1)


# --------------------------------------------------------------------------- per-run facts


@dataclass
class RunFacts:
    """What the report needs of one run, computed once."""

    run: Any
    params: dict[str, Any]
    hardware_class: str
    final: float | None
    peak: float | None
    times: dict[float, float | None] = field(default_factory=dict)  # target → seconds to reach it

    @property
    def label(self) -> str:
        return self.run.display_label


def collect_facts(runs: Sequence[Any], targets: Sequence[float]) -> list[RunFacts]:
    facts = []
    for run in runs:
        facts.append(
            RunFacts(
                run=run,
                params=run.param_dict,
                hardware_class=groups.hardware_of(run),
                final=run.final_val_acc,
                peak=run.peak_val_acc,
                times=times_to_targets(run.epochs, targets),
            )
        )
    return facts


# --------------------------------------------------------------------------- run sections


def rebuilt_log(run: Any, params: dict[str, Any]) -> str | None:
    """The console log as the user's script would have printed it (logformat)."""
    if not run.epochs:
        return None
    env = run.environment
    seed = params.get("seed")
    lines = logformat.header_lines(
        env.device_type if env else None,
        run.param_count,
        params,
        run.data_load_s,
        amp=params.get("amp") is True,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )
    total = run.epochs_planned or len(run.epochs)
    lines.extend(
        logformat.epoch_line(e.epoch, total, e.train_loss, e.val_acc, e.duration_s, e.elapsed_s) for e in run.epochs
    )
    if run.status == "completed":  # "Finished Training" would claim an interrupted run completed
        lines.extend(logformat.footer_lines(run.stated_train_time_s or run.train_time_s, run.final_val_acc))
    return "\n".join(lines)


def computed_lines(f: RunFacts, targets: Sequence[float], versus: Sequence[str]) -> list[str]:
    """What speedrun adds to a run's section; `versus` are its baseline lines (`Baselines.versus_lines`)."""
    run = f.run
    lines = []
    if f.final is not None:
        text = f"Final accuracy {f.final:.2f}%"
        if f.peak is not None:
            text += f", peak {f.peak:.2f}%"
            if run.peak_epoch is not None:
                text += f" at epoch {run.peak_epoch}"
            drop = f.peak - f.final
            text += f" (drop from peak {drop:.2f} points)" if round(drop, 2) > 0 else " (final is the peak)"
        lines.append(text)
    timing = []
    if run.mean_epoch_s is not None:
        timing.append(f"Mean epoch {run.mean_epoch_s:.1f} s")
    if run.train_time_s is not None:
        timing.append(f"total {run.train_time_s:.2f} s")
    reached = [f"time to {fmt_target(t)}: {s:.1f} s" for t in targets if (s := f.times.get(t)) is not None]
    if timing or reached:
        line = ", ".join(timing)
        if reached:
            line = f"{line}; {', '.join(reached)}" if line else ", ".join(reached).capitalize()
        lines.append(line[0].upper() + line[1:])
    lines.extend(versus)
    return lines


def run_section(f: RunFacts, targets: Sequence[float], versus: Sequence[str]) -> dict[str, Any]:
    run = f.run
    facts = []
    for name, value in (
        ("Hypothesis", run.hypothesis),
        ("Description", run.description),
        ("Hardware", hardware_text(run)),
        ("Tags", ", ".join(t.tag for t in run.tags)),
        ("Status", run.status if run.status != "completed" else None),
    ):
        if value:
            facts.append({"name": name, "value": value})
    log = run.log_text or rebuilt_log(run, f.params)
    summary = []
    if log is None:
        if f.final is not None:
            value = f"{f.final:.2f}%"
            summary.append({"name": "Final Validation Accuracy", "value": value,
                            "md": f"**Final Validation Accuracy:** {value}"})
        if run.train_time_s is not None:
            value = f"{run.train_time_s:.2f}s"
            summary.append({"name": "Training Time", "value": value, "md": f"- **Training Time**: {value}"})
    return {
        "id": run.id,
        "label": run.display_label,
        "title": run.title or "",
        "hardware_class": f.hardware_class,
        "facts": facts,
        "params": [fmt_param(k, v) for k, v in f.params.items()],
        "computed": computed_lines(f, targets, versus),
        "log": log,
        "fence": _fence(log) if log else "```",
        "summary": summary,
        "analysis": run.analysis,
        "plot": None,
        "svg": None,
    }


# --------------------------------------------------------------------------- the whole report


def load_runs(
    store: Any,
    *,
    ids: Sequence[int] | None = None,
    since: Any = None,
    tag: str | None = None,
    hardware: str | None = None,
) -> list[Any]:
    """Every run the report covers, epochs included, in one store call."""
    return store.list_runs(ids=ids, since=since, tag=tag, hardware=hardware, with_epochs=True)


def build_context(
    runs: Sequence[Any],
    *,
    targets: Sequence[float] = DEFAULT_TARGETS,
    alpha: float = metrics.ALPHA,
    pool: metrics.NoisePool | None = None,
    stamp: str | None = None,
    plots: Path | None = None,
    plots_link: str | None = None,
    svg: bool = False,
) -> dict[str, Any]:
    """The template context of a report of `runs` (in run order).

    `alpha`: the level of "is this difference real" (records use `metrics.RECORD_ALPHA`).
    `pool`: the runs whose repeats give spreads (default: `runs`).
    `plots`: directory to write PNG curves to; `plots_link` is how the
    document refers to that directory (relative to where the document lies).
    `svg`: inline SVG curves (HTML).
    """
    metrics.check_alpha(alpha)
    targets = metrics.check_targets(targets)
    pool = pool if pool is not None else metrics.NoisePool(runs)
    ordered = sorted(runs, key=lambda r: r.id)
    facts = collect_facts(ordered, targets)
    baselines = Baselines(ordered, alpha=alpha, pool=pool)
    sections = [run_section(f, targets, baselines.versus_lines(f.run)) for f in facts]

    group_rows = leaderboard.group_rows(ordered)
    if plots is not None or svg:
        _attach_plots(sections, facts, group_rows, plots, plots_link, svg)
    for g in group_rows:
        del g["members"]

    return {
        "title": TITLE,
        "stamp": stamp,
        "run_count": len(sections),
        "alpha": alpha,
        "alpha_text": f"{alpha:g}",
        "record_alpha_text": f"{metrics.RECORD_ALPHA:g}",
        "targets": [fmt_target(t) for t in targets],
        "leaderboard": leaderboard.leaderboard(ordered, targets, alpha, pool),
        "groups": group_rows,
        "runs": sections,
    }


def _attach_plots(
    sections: list[dict], facts: list[RunFacts], group_rows: list[dict], folder: Path | None, link: str | None, svg: bool
) -> None:
    from speedrun.analysis import plots

    link = link if link is not None else (str(folder) if folder else "")
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpeedrunError(f"--plots {folder}: cannot create the directory ({exc.strerror})") from None
    for section, f in zip(sections, facts):
        if not f.run.epochs:
            continue
        if folder is not None:
            name = plots.safe_name(f"run-{section['label']}") + ".png"
            plots.learning_curve_png(f.run, folder / name)
            section["plot"] = _join(link, name)
        if svg:
            section["svg"] = plots.curves_svg([plots.series(f.run)])
    for i, g in enumerate(group_rows, 1):
        with_epochs = [m for m in g["members"] if m.epochs]
        if len(with_epochs) < 2:
            continue
        if folder is not None:
            name = f"group-{i:03d}.png"
            plots.overlay_png(with_epochs, folder / name, title=f"{g['name']} ({g['hardware']})")
            g["plot"] = _join(link, name)
        if svg:
            g["svg"] = plots.curves_svg([plots.series(r) for r in with_epochs])


def _join(link: str, name: str) -> str:
    return f"{link.rstrip('/')}/{name}" if link else name


# --------------------------------------------------------------------------- rendering


def environment(autoescape: bool, search_path: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in (search_path, resource_dir("templates")) if p]),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md_cell"] = md_cell
    return env


def render(context: dict[str, Any], fmt: str = "md", template: Path | None = None) -> str:
    """Render the context with the built-in template of `fmt`, or with the user's `template`.

    User text reaches templates only as values, never as template source, so
    `{{ 7*7 }}` in a title comes out literally. HTML is autoescaped.
    """
    if fmt not in FORMATS:
        raise SpeedrunError(f"unknown format {fmt!r}; choose md or html")
    if template is not None:
        path = Path(template)
        if not path.is_file():
            raise SpeedrunError(f"--template {template}: no such file")
        autoescape = path.suffix.lower() in (".html", ".htm") or path.name.lower().endswith((".html.j2", ".htm.j2"))
        env = environment(autoescape, path.resolve().parent)
        name = path.name
    else:
        env = environment(fmt == "html")
        name = f"report.{fmt}.j2"
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise SpeedrunError(f"template {name}{where}: {exc.message or exc}") from None


def plots_link_for(plots: Path, output: Path | None) -> str:
    """How the document refers to the plots directory: relative to the document's folder."""
    base = output.resolve().parent if output else Path.cwd()
    return Path(os.path.relpath(plots.resolve(), base)).as_posix()
