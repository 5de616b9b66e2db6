"""`speedrun report`: the lab notebook rebuilt from the database.

`build_context` turns runs into one plain data structure (dicts, lists, str,
numbers) that templates only display: every number is computed and every
string formatted here, so the Markdown, the HTML and a user's own template
all say the same thing. The structure, top down:

    {
      "title": str,                 # "Experiment Results: CIFAR-10 Speedrun"
      "stamp": str | None,          # only with --stamp: reports are reproducible otherwise
      "run_count": int,
      "alpha": float, "alpha_text": "0.01",
      "targets": ["85%", "90%", "94%"],
      "leaderboard": [              # one row per record and hardware class
        {"hardware": "T4", "record": "Best final accuracy", "value": "90.68%",
         "run": "Run 18", "run_id": 18, "title": str, "configuration": "lr=0.02, ...",
         "group": "90.41 ± 0.20 (n=3)" | "", "status": "confirmed" | "unconfirmed"
         | "not confirmed" | "uncontested", "evidence": str},
      ],
      "groups": [                   # repeats of one configuration (or one group_name), n >= 2
        {"name": str, "hardware": str, "configuration": str, "runs": "15, 18, 21",
         "n": int, "final": "mean ± std (n)", "peak": ..., "time": ..., "plot": path | None,
         "svg": str | None},
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

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from speedrun.notebook import logformat
from speedrun.tracking.db import resource_dir
from speedrun.errors import SpeedrunError
from speedrun.analysis.groups import repeat_key
from speedrun.notebook import syntax
from speedrun.tracking.records import notebook_order, notebook_order_key, times_to_targets
from speedrun.analysis.views import hardware_short
from speedrun.text import fmt_value, md_cell

DEFAULT_TARGETS = (85.0, 90.0, 94.0)
DEFAULT_ALPHA = 0.01
TITLE = "Experiment Results: CIFAR-10 Speedrun"
FORMATS = ("md", "html")
_BACKTICKS = re.compile(r"`+")
# A group lists at most this many run numbers; the count is always given.
MAX_LISTED_RUNS = 12


# --------------------------------------------------------------------------- formatting


def fmt_target(target: float) -> str:
    """85 → "85%", 93.5 → "93.5%"."""
    return f"{target:g}%"


def fmt_param(name: str, value: Any) -> str:
    return f"{name}={fmt_value(value)}"


def configuration_text(params: dict[str, Any], ignore: Iterable[str] = ("seed",)) -> str:
    skip = set(ignore)
    return ", ".join(fmt_param(k, v) for k, v in params.items() if k not in skip) or "(no parameters)"


def hardware_text(run: Any) -> str | None:
    """The user's hardware text, else a description built from the detected environment.

    The built text always classifies (speedrun.notebook.hardware) to the stored class,
    so a report imported back lands in the same hardware class.
    """
    from speedrun.notebook.hardware import hardware_class

    env = run.environment
    if env is None:
        return None
    if env.hardware:
        return env.hardware
    if env.gpu_name:
        text = env.gpu_name + (f" x{env.gpu_count}" if env.gpu_count and env.gpu_count > 1 else "")
    elif env.cpu_model:
        text = f"{env.cpu_model} (CPU)" if env.device_type == "cpu" else env.cpu_model
    elif env.device_type:
        text = env.device_type.upper()
    else:
        return env.hardware_class if env.hardware_class != "unknown" else None
    if env.hardware_class not in ("unknown", hardware_class(text, env.device_type)):
        text += f" ({env.hardware_class})"
    return text


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
    key: tuple[str, str] = ("", "")  # the repeats this run belongs to (group_key)

    @property
    def label(self) -> str:
        return self.run.display_label


def collect_facts(runs: Sequence[Any], targets: Sequence[float]) -> list[RunFacts]:
    facts = []
    for run in runs:
        params = run.param_dict
        hardware = hardware_short(run)
        facts.append(
            RunFacts(
                run=run,
                params=params,
                hardware_class=hardware,
                final=run.final_val_acc,
                peak=run.peak_val_acc,
                times=times_to_targets(run.epochs, targets),
                key=repeat_key(run),
            )
        )
    return facts


def group_key(f: RunFacts) -> tuple[str, str]:
    return f.key


def group_name(key: tuple[str, str], members: Sequence[RunFacts]) -> str:
    if key[0] == "group":
        return members[0].run.group_name
    return configuration_text(members[0].params)


def _run_list(members: Sequence[RunFacts]) -> str:
    labels = [m.label for m in members]
    if len(labels) <= MAX_LISTED_RUNS:
        return ", ".join(labels)
    return ", ".join(labels[:MAX_LISTED_RUNS]) + f", … ({len(labels)} runs)"


def mean_std_text(values: Sequence[float], digits: int = 2, suffix: str = "") -> str:
    """"90.41 ± 0.20 (n=3)"; a single value has no ±."""
    from speedrun.analysis.stats import describe

    d = describe(values)
    if d.mean is None:
        return "—"
    if d.std is None:
        return f"{d.mean:.{digits}f}{suffix} (n={d.n})"
    return f"{d.mean:.{digits}f}{suffix} ± {d.std:.{digits}f} (n={d.n})"


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class Metric:
    name: str  # row title
    short: str  # for stats texts
    higher_is_better: bool
    unit: str
    digits: int
    target: float | None = None

    def value(self, f: RunFacts) -> float | None:
        if self.target is not None:
            return f.times.get(self.target)
        return f.final if self.short == "final accuracy" else f.peak

    def text(self, value: float) -> str:
        return f"{value:.{self.digits}f}{'%' if self.unit == '%' else ' s'}"


def metrics_for(targets: Sequence[float]) -> list[Metric]:
    return [
        Metric("Best final accuracy", "final accuracy", True, "%", 2),
        Metric("Best peak accuracy", "peak accuracy", True, "%", 2),
        *[Metric(f"Fastest to {fmt_target(t)}", f"time to {fmt_target(t)}", False, "s", 1, t) for t in targets],
    ]


def _best(items: Iterable[tuple[float, RunFacts]], higher: bool) -> tuple[float, RunFacts] | None:
    best = None
    for value, f in items:
        if best is None or (value > best[0] if higher else value < best[0]):
            best = (value, f)
    return best  # ties: the earliest run (input is in run order) keeps the record


def record_row(
    metric: Metric,
    hardware: str,
    members: Sequence[RunFacts],
    groups: dict[tuple[str, str], list[RunFacts]],
    alpha: float,
) -> dict[str, Any] | None:
    """The record of `metric` among `members` (one hardware class), with its evidence."""
    from speedrun.analysis.stats import compare, target_test

    best = _best(((v, f) for f in members if (v := metric.value(f)) is not None), metric.higher_is_better)
    if best is None:
        return None
    value, holder = best
    key = group_key(holder)
    mates = groups[key]
    values = [v for f in mates if (v := metric.value(f)) is not None]
    if metric.target is not None:
        # A time record stands when the configuration reliably reaches the target.
        finals = [f.final for f in mates if f.final is not None]
        test = target_test(finals, metric.target, alpha=alpha)
        status = "confirmed" if test.holds else ("unconfirmed" if test.n < 2 else "not confirmed")
        evidence = test.text
    else:
        rival = _best(
            ((v, f) for f in members if group_key(f) != key and (v := metric.value(f)) is not None),
            metric.higher_is_better,
        )
        if rival is None:
            status = "unconfirmed" if len(values) < 2 else "uncontested"
            evidence = f"only configuration on {hardware} with a {metric.short}"
        else:
            rival_values = [v for f in groups[group_key(rival[1])] if (v := metric.value(f)) is not None]
            result = compare(
                rival_values, values, alpha=alpha, higher_is_better=metric.higher_is_better,
                metric=metric.short, unit=metric.unit,
                names=(f"Run {rival[1].label}" if len(rival_values) == 1 else "runner-up",
                       f"Run {holder.label}" if len(values) == 1 else "record"),
            )
            confirmed = result.kind == "ahead" and result.winner == "b"
            status = "confirmed" if confirmed else ("unconfirmed" if len(values) < 2 else "not confirmed")
            evidence = result.verdict
    return {
        "hardware": hardware,
        "record": metric.name,
        "value": metric.text(value),
        "run": f"Run {holder.label}",
        "run_id": holder.run.id,
        "title": holder.run.title or "",
        "configuration": configuration_text(holder.params),
        "group": mean_std_text(values, metric.digits, "%" if metric.unit == "%" else " s") if len(values) > 1 else "",
        "status": status,
        "evidence": evidence,
    }


def leaderboard(
    facts: Sequence[RunFacts], groups: dict[tuple[str, str], list[RunFacts]], metrics: Sequence[Metric], alpha: float
) -> list[dict[str, Any]]:
    by_class: dict[str, list[RunFacts]] = {}
    for f in facts:
        by_class.setdefault(f.hardware_class, []).append(f)
    rows = []
    for hardware in sorted(by_class, key=lambda h: (h == "unknown", h)):
        for metric in metrics:
            row = record_row(metric, hardware, by_class[hardware], groups, alpha)
            if row is not None:
                rows.append(row)
    return rows


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


def computed_lines(f: RunFacts, targets: Sequence[float], earlier: RunFacts | None) -> list[str]:
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
    if f.final is not None:
        if earlier is None:
            lines.append(f"First run with a final accuracy on {f.hardware_class}")
        else:
            lines.append(
                f"Versus the best earlier run on {f.hardware_class} (Run {earlier.label}, {earlier.final:.2f}%): "
                f"{f.final - earlier.final:+.2f} points"
            )
    return lines


def run_section(f: RunFacts, targets: Sequence[float], earlier: RunFacts | None) -> dict[str, Any]:
    """One run's notebook section: the user's section as written when it was imported
    (`verbatim`), else the fields to write it from; and the computed block that follows
    its heading in either case."""
    run = f.run
    facts = []
    for name, value in (
        ("Date", _date_text(run)),
        ("Hypothesis", run.hypothesis),
        ("Description", run.description),
        ("Hardware", hardware_text(run)),
        ("Tags", ", ".join(t.tag for t in run.tags)),
        ("Status", run.status if run.status != "completed" else None),
    ):
        if value:
            facts.append({"name": name, "value": value, "md": _fact_markdown(name, value, run)})
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
    section_text = getattr(run, "section_text", None)
    series = getattr(run, "series_name", None)
    level = 3 if series and series != run.display_label else 2
    heading, rest = _split_heading(section_text) if section_text is not None else (
        syntax.run_heading(level, run.display_label, run.title), None
    )
    unparsed = (getattr(run, "unparsed_config", None) or "").split("\n") if getattr(run, "unparsed_config", None) else []
    return {
        "id": run.id,
        "uuid": run.uuid,
        "label": run.display_label,
        "title": run.title or "",
        "hardware_class": f.hardware_class,
        "series": series,
        "facts": facts,
        "params": [fmt_param(k, v) for k, v in f.params.items()],
        "params_md": [syntax.encode_inline(fmt_param(k, v)) for k, v in f.params.items()],
        "unparsed": unparsed,
        "unparsed_md": [syntax.encode_inline(line) for line in unparsed],
        "computed": computed_lines(f, targets, earlier) + notebook_lines(f),
        "marker": syntax.computed_open(run=run.id, uuid=run.uuid),
        "heading": heading,
        "verbatim": section_text is not None,
        "rest": rest,
        "log": log,
        "fence": _fence(log) if log else "```",
        "summary": summary,
        "analysis": run.analysis,
        "analysis_md": syntax.escape_block(run.analysis) if run.analysis else None,
        "plot": None,
        "svg": None,
    }


def notebook_lines(f: RunFacts) -> list[str]:
    """What the report says about where an imported run came from and what it read of it."""
    run = f.run
    lines = []
    if run.source != "train":
        where = f" from {run.source_file}" if run.source_file else ""
        lines.append(f"Imported {run.created_at:%Y-%m-%d}{where}; no date of its own" if run.started_at is None
                     else f"Imported {run.created_at:%Y-%m-%d}{where}")
    if getattr(run, "section_text", None) is not None:
        settings = ", ".join(fmt_param(k, v) for k, v in f.params.items())
        lines.append(f"Settings read: {settings}" if settings else "Settings read: none")
        if getattr(run, "unparsed_config", None):
            lines.append("Not understood (a difference when compared): " + "; ".join(run.unparsed_config.split("\n")))
    return [md_cell(line) for line in lines]


def _date_text(run: Any) -> str | None:
    """The run's own date: when a training started, or what its notebook section stated."""
    if run.started_at is None:
        return None
    return f"{run.started_at:%Y-%m-%d %H:%M:%S}" if run.source == "train" else f"{run.started_at:%Y-%m-%d %H:%M}"


def _fact_markdown(name: str, value: str, run: Any) -> str:
    if name == "Tags":
        value = ", ".join(syntax.encode_tag(t.tag) for t in run.tags)
    elif name != "Date":
        value = syntax.encode_inline(value)
    return f"- **{name}**: {value}"


def _split_heading(section_text: str) -> tuple[str, str | None]:
    heading, newline, rest = section_text.partition("\n")
    return heading, (rest if newline else None)


def series_section(row: Any, members: Sequence[RunFacts]) -> dict[str, Any]:
    """A series whose parent has no results of its own: the parent's section and what its runs did."""
    heading, rest = _split_heading(row.section_text or syntax.run_heading(2, row.name, row.title))
    computed = [f"Series {row.name}: {len(members)} run{'s' if len(members) != 1 else ''} "
                f"({_run_list(members)})"]
    finals = [m for m in members if m.final is not None]
    if finals:
        best = max(finals, key=lambda m: m.final)
        computed.append(f"Best final accuracy {best.final:.2f}% (Run {best.label}); "
                        f"{mean_std_text([m.final for m in finals], 2, '%')}")
    return {
        "name": row.name,
        "uuid": row.uuid,
        "title": row.title or "",
        "marker": syntax.computed_open(series=row.uuid),
        "heading": heading,
        "rest": rest,
        "computed": [md_cell(line) for line in computed],
        "closing": row.closing_text,
    }


def section_markdown(run: Any) -> str:
    """The section a report prints for `run`, its computed block left out: what a
    re-imported notebook is compared with to tell whether the user changed it."""
    if getattr(run, "section_text", None) is not None:
        return run.section_text
    f = collect_facts([run], ())[0]
    section = run_section(f, (), None)
    body = environment(False).get_template("partials/run_body.md.j2").render(run=section)
    return f"{section['heading']}\n{body}"


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
    alpha: float = DEFAULT_ALPHA,
    stamp: str | None = None,
    plots: Path | None = None,
    plots_link: str | None = None,
    svg: bool = False,
    series: Sequence[Any] = (),
) -> dict[str, Any]:
    """The template context of a report of `runs`, in notebook order (`notebook_order`).

    `series`: the notebook's series rows (`Store.list_series`), for the parents that
    are no run and the text after the last sub-run. `plots`: directory to write PNG
    curves to; `plots_link` is how the document refers to that directory (relative
    to where the document lies). `svg`: inline SVG curves (HTML).
    """
    from speedrun.analysis.stats import group_runs

    if not 0 < alpha < 1:
        raise SpeedrunError(f"--alpha must be between 0 and 1, got {alpha:g}")
    targets = list(dict.fromkeys(float(t) for t in targets))
    for t in targets:
        if not (math.isfinite(t) and 0 < t <= 100):
            raise SpeedrunError(f"--target must be a percentage between 0 and 100, got {t:g}")
    ordered = notebook_order(runs)
    facts = collect_facts(ordered, targets)
    groups = group_runs(facts, group_key)

    sections = []
    best_before: dict[str, RunFacts] = {}
    for f in facts:
        sections.append(run_section(f, targets, best_before.get(f.hardware_class)))
        if f.final is not None:
            best = best_before.get(f.hardware_class)
            if best is None or f.final > best.final:
                best_before[f.hardware_class] = f

    group_rows = []
    for key, members in groups.items():
        if len(members) < 2:
            continue
        finals = [m.final for m in members if m.final is not None]
        peaks = [m.peak for m in members if m.peak is not None]
        times = [m.run.train_time_s for m in members if m.run.train_time_s is not None]
        group_rows.append(
            {
                "key": key[1],
                "name": group_name(key, members),
                "hardware": members[0].hardware_class,
                "configuration": configuration_text(members[0].params),
                "runs": _run_list(members),
                "n": len(members),
                "final": mean_std_text(finals, 2, "%"),
                "peak": mean_std_text(peaks, 2, "%"),
                "time": mean_std_text(times, 1, " s"),
                "members": members,
                "plot": None,
                "svg": None,
            }
        )
    group_rows.sort(key=lambda g: (g["hardware"], g["name"], g["key"]))

    if plots is not None or svg:
        _attach_plots(sections, facts, group_rows, plots, plots_link, svg)
    for g in group_rows:
        del g["members"]

    preamble, body = notebook_body(sections, facts, series)
    return {
        "title": TITLE,
        "stamp": stamp,
        "run_count": len(sections),
        "alpha": alpha,
        "alpha_text": f"{alpha:g}",
        "targets": [fmt_target(t) for t in targets],
        "leaderboard": leaderboard(facts, groups, metrics_for(targets), alpha),
        "groups": group_rows,
        "runs": sections,
        "preamble": preamble,
        "body": body,
        "computed_open": syntax.computed_open(),
        "computed_close": syntax.COMPUTED_CLOSE,
    }


def notebook_body(
    sections: list[dict[str, Any]], facts: list[RunFacts], series: Sequence[Any]
) -> tuple[str | None, list[dict[str, Any]]]:
    """(the notebook's opening text, its items in order): run sections, the sections of
    series parents that are no run, text that belongs to no run, each where the notebook had it.

    A series' closing text follows its last run shown; a series none of whose runs is
    shown is left out, like its runs.
    """
    rows = {row.id: row for row in series}
    members: dict[int, list[int]] = {}
    for index, f in enumerate(facts):
        series_id = getattr(f.run, "series_id", None)
        if series_id in rows:
            members.setdefault(series_id, []).append(index)
    entries: list[tuple[tuple[bool, float, int], dict[str, Any], Any]] = []
    for index, (section, f) in enumerate(zip(sections, facts)):
        key = notebook_order_key(f.run)
        entries.append(((key[0], key[1], index), {"kind": "run", "run": section}, f.run))
        row = rows.get(getattr(f.run, "series_id", None))
        if row is not None and row.section_text is None and row.name == f.run.display_label:
            # The parent is a run: its marker names the series too.
            section["marker"] = syntax.computed_open(run=f.run.id, uuid=f.run.uuid, series=row.uuid)
    for series_id, indices in members.items():
        row = rows[series_id]
        if row.section_text is not None:  # the parent is no run: its section stands for the series
            key = (row.position is None, row.position or 0.0, min(indices))
            head = series_section(row, [facts[i] for i in indices])
            entries.append((key, {"kind": "series", "series": head}, row))
    entries.sort(key=lambda entry: entry[0])

    last_member = {series_id: max(indices, key=lambda i: notebook_order_key(facts[i].run))
                   for series_id, indices in members.items()}
    closing_after = {id(facts[i].run): series_id for series_id, i in last_member.items()}
    preamble = None
    body: list[dict[str, Any]] = []
    for number, (_, item, source) in enumerate(entries):
        text_before = getattr(source, "preamble", None)
        if text_before is not None:
            if number == 0:
                preamble = text_before
            else:
                body.append({"kind": "text", "text": text_before})
        body.append(item)
        series_id = closing_after.get(id(source))
        if series_id is not None and rows[series_id].closing_text is not None:
            body.append({"kind": "text", "text": rows[series_id].closing_text})
    return preamble, body


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
    colours = plots.run_colours([f.run for f in facts])
    for section, f in zip(sections, facts):
        if not f.run.epochs:
            continue
        if folder is not None:
            name = f"run-{f.run.id}.png"  # by number: two runs labelled 24 never share a picture
            plots.learning_curve_png(f.run, folder / name, colour=colours[f.run.id])
            section["plot"] = _join(link, name)
        if svg:
            section["svg"] = plots.curves_svg([plots.series(f.run)], colours=[colours[f.run.id]])
    for i, g in enumerate(group_rows, 1):
        with_epochs = [m.run for m in g["members"] if m.run.epochs]
        if len(with_epochs) < 2:
            continue
        if folder is not None:
            name = f"group-{i:03d}.png"
            plots.overlay_png(with_epochs, folder / name, title=f"{g['name']} ({g['hardware']})",
                              colours=[colours[r.id] for r in with_epochs])
            g["plot"] = _join(link, name)
        if svg:
            g["svg"] = plots.curves_svg([plots.series(r) for r in with_epochs],
                                        colours=[colours[r.id] for r in with_epochs], legend=True)


def _join(link: str, name: str) -> str:
    return f"{link.rstrip('/')}/{name}" if link else name


# --------------------------------------------------------------------------- rendering

# Repetition and powers a template may ask for: enough for any report, far from a machine's memory.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000


class Sandbox(SandboxedEnvironment):
    """Jinja's sandbox for every template, the user's included: no attribute a template
    reaches leads to Python's internals, and `'x' * 10**12` is refused, not attempted."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"repetition beyond {MAX_REPEAT:,} items")
        return super().call_binop(context, operator, left, right)


def environment(autoescape: bool, search_path: Path | None = None) -> jinja2.Environment:
    env = Sandbox(
        loader=jinja2.FileSystemLoader([str(p) for p in (search_path, resource_dir("templates")) if p]),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md_cell"] = md_cell
    env.globals["computed_close"] = syntax.COMPUTED_CLOSE
    return env


def render(context: dict[str, Any], fmt: str = "md", template: Path | None = None) -> str:
    """Render the context with the built-in template of `fmt`, or with the user's `template`.

    User text reaches templates only as values, never as template source, so
    `{{ 7*7 }}` in a title comes out literally. HTML is autoescaped, and the
    user's Markdown in it is rendered by markdown-it-py with raw HTML escaped.
    Every template runs in the sandbox; whatever goes wrong while rendering one is
    one SpeedrunError naming the template and its line.
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
        autoescape = fmt == "html"
        env = environment(autoescape)
        name = f"report.{fmt}.j2"
    if autoescape:
        context = with_html(context)
    try:
        text = env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise SpeedrunError(f"template {Path(exc.filename).name if exc.filename else name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise SpeedrunError(f"template {name}: no template {exc.name!r} to include") from None
    except UnicodeDecodeError:
        raise SpeedrunError(f"template {name}: not a UTF-8 text file") from None
    except RecursionError:
        raise SpeedrunError(f"template {name}{_template_line(name)}: recursion too deep") from None
    except Exception as exc:  # noqa: BLE001 - a template is the user's program: any failure is theirs
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else f"{type(exc).__name__}: {exc}"
        raise SpeedrunError(f"template {name}{_template_line(name, exc)}: {message}") from None
    return text.rstrip("\n") + "\n" if fmt == "md" and template is None else text


def _template_line(name: str, exc: BaseException | None = None) -> str:
    """`, line 3`: where in the template the failure happened (Jinja puts template lines into tracebacks)."""
    import sys
    import traceback

    tb = exc.__traceback__ if exc is not None else sys.exc_info()[2]
    frames = [f for f in traceback.extract_tb(tb) if f.filename.endswith((name, ".j2"))]
    return f", line {frames[-1].lineno}" if frames else ""


def with_html(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of the context whose runs, series and texts carry their Markdown rendered as HTML."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    bodies = environment(False).get_template("partials/run_body.md.j2")
    context = dict(context)
    context["preamble_html"] = md.render(context["preamble"]) if context.get("preamble") else None
    body = []
    for item in context.get("body", []):
        item = dict(item)
        if item["kind"] == "run":
            run = dict(item["run"])
            rest = run["rest"] if run["verbatim"] else bodies.render(run=run)
            run["html_heading"] = md.render(run["heading"])
            run["html_body"] = md.render(rest or "")
            item["run"] = run
        elif item["kind"] == "series":
            head = dict(item["series"])
            head["html_heading"] = md.render(head["heading"])
            head["html_body"] = md.render(head["rest"] or "")
            item["series"] = head
        else:
            item["html"] = md.render(item["text"])
        body.append(item)
    context["body"] = body
    return context


def plots_link_for(plots: Path, output: Path | None) -> str:
    """How the document refers to the plots directory: relative to the document's folder."""
    base = output.resolve().parent if output else Path.cwd()
    return Path(os.path.relpath(plots.resolve(), base)).as_posix()
