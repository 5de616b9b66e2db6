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
      "runs": [                     # one notebook section per run, in notebook order
        {"id": int, "uuid": str, "label": str, "title": str, "series": str | None,
         "heading": str,            # the section's heading line, as written or as speedrun writes it
         "marker": str,             # the computed block's opening line, with the run's identity
         "computed": [str, ...],    # what speedrun adds, one line each
         "verbatim": bool, "rest": str | None,   # an imported section: its lines after the heading
         # the fields a section is written from (trained runs), `*_md` escaped for Markdown:
         "facts": [{"name": "Hypothesis", "value": str, "md": str}, ...],   # only known ones
         "params": ["lr=0.04", ...], "params_md": [...], "unparsed": [str], "unparsed_md": [...],
         "log": str | None, "fence": "```",
         "summary": [{"name": str, "value": str, "md": str}],    # instead of a log
         "analysis": str | None, "analysis_md": str | None, "plot": path | None, "svg": str | None},
      ],
      "preamble": str | None,       # the notebook's own opening text (title, introduction)
      "body": [                     # the notebook, in order: what the Markdown template prints
        {"kind": "run", "run": <one of "runs">}
        | {"kind": "series", "series": {"name", "uuid", "title", "heading", "marker", "computed",
                                         "rest", "closing"}}   # a series parent that is no run
        | {"kind": "text", "text": str},   # text of no run: a later preamble, a series' closing text
      ],
      "computed_open": str,         # the markers of the top computed block (speedrun.notebook.syntax)
      "computed_close": str,
    }

For HTML, `render` adds `html_heading`/`html_body` to runs and series, `html` to
texts and `preamble_html`: the user's Markdown rendered by markdown-it-py.

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
from speedrun.analysis import leaderboard, metrics
from speedrun.analysis.sandbox import MAX_MEMORY, Sandbox, render_bounded
from speedrun.analysis.baselines import Baselines
from speedrun.domain.efficiency import best_by_hardware, fmt_efficiency, run_efficiency
from speedrun.notebook import syntax
from speedrun.domain.records import notebook_order, notebook_order_key
from speedrun.domain.hardware import hardware_class_of, hardware_text
from speedrun.text import as_references, counted, fmt_param, fmt_target, md_cell, terminal_safe

DEFAULT_TARGETS = metrics.DEFAULT_TARGETS
TITLE = "Experiment Results: CIFAR-10 Speedrun"
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
                hardware_class=hardware_class_of(run),
                final=run.final_val_acc,
                peak=run.peak_val_acc,
                times={target: metrics.seconds_to(run, target) for target in targets},
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
    if (rate := run_efficiency(run)) is not None:
        lines.append(f"Efficiency: {fmt_efficiency(rate)}")
    lines.extend(versus)
    return lines


def run_section(f: RunFacts, targets: Sequence[float], versus: Sequence[str]) -> dict[str, Any]:
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
    log = terminal_safe(log) if log else log  # a fence shows references literally: control characters visibly
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
    params = [fmt_param(k, v) for k, v in f.params.items()]
    return {
        "id": run.id,
        "uuid": run.uuid,
        "label": run.display_label,
        "title": run.title or "",
        "hardware_class": f.hardware_class,
        "series": series,
        "facts": facts,
        "params": params,
        "params_md": [syntax.encode_inline(text) for text in params],
        "unparsed": unparsed,
        "unparsed_md": [syntax.encode_inline(line) for line in unparsed],
        # Computed lines quote settings and labels the user wrote: nothing in them reaches a terminal raw.
        "computed": [as_references(line) for line in computed_lines(f, targets, ()) + notebook_lines(f) + list(versus)],
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
        when = f" {run.created_at:%Y-%m-%d}" if run.created_at is not None else ""
        lines.append(f"Imported{when}{where}" + ("; no date of its own" if run.started_at is None else ""))
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
    computed = [f"Series {row.name}: {counted(len(members), 'run')} "
                f"({leaderboard.run_list([m.run for m in members])})"]
    finals = [m for m in members if m.final is not None]
    if finals:
        best = max(finals, key=lambda m: m.final)
        computed.append(f"Best final accuracy {best.final:.2f}% (Run {best.label}); mean "
                        + leaderboard.mean_std_text(metrics.FINAL_ACCURACY, [m.final for m in finals]))
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
    section = run_section(f, (), ())
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
    where: str | None = None,
) -> list[Any]:
    """Every run the report covers, epochs included, in one store call."""
    return store.list_runs(ids=ids, since=since, tag=tag, hardware=hardware, where=where, with_epochs=True)


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
    series: Sequence[Any] = (),
    sweeps: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The template context of a report of `runs`, in notebook order (`notebook_order`).

    `alpha`: the level of "is this difference real" (records use `metrics.RECORD_ALPHA`).
    `pool`: the runs whose repeats give spreads (default: `runs`).
    `series`: the notebook's series rows (`Store.list_series`), for the parents that
    are no run and the text after the last sub-run.
    `plots`: directory to write PNG curves to; `plots_link` is how the
    document refers to that directory (relative to where the document lies).
    `svg`: inline SVG curves (HTML).
    `sweeps`: the sections of the sweeps to show (`speedrun.sweep.summary.sweep_section`).
    """
    metrics.check_alpha(alpha)
    targets = metrics.check_targets(targets)
    pool = pool if pool is not None else metrics.NoisePool(runs)
    ordered = notebook_order(runs)  # the notebook's order: sections, and "the best earlier run"
    facts = collect_facts(ordered, targets)
    baselines = Baselines(ordered, alpha=alpha, pool=pool)
    sections = [run_section(f, targets, baselines.versus_lines(f.run)) for f in facts]

    group_rows = leaderboard.group_rows(ordered)
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
        "record_alpha_text": f"{metrics.RECORD_ALPHA:g}",
        "targets": [fmt_target(t) for t in targets],
        "leaderboard": leaderboard.leaderboard(ordered, targets, alpha, pool),
        "efficiency": best_by_hardware(ordered),
        "sweeps": list(sweeps),
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
    from speedrun.outputs import make_folder

    link = link if link is not None else (str(folder) if folder else "")
    if folder is not None:
        make_folder(folder)
    colours = plots.run_colours([f.run for f in facts])
    for section, f in zip(sections, facts):
        if not f.run.epochs:
            continue
        if folder is not None:
            name = f"run-{f.run.id}.png"  # by number: two runs labelled 24 never share a picture
            plots.learning_curve_png(f.run, folder / name, colour=colours[f.run.id])
            section["plot"] = plots.link_to(link, name)
        if svg:
            section["svg"] = plots.curves_svg([plots.series(f.run)], colours=[colours[f.run.id]])
    for i, g in enumerate(group_rows, 1):
        with_epochs = [m for m in g["members"] if m.epochs]
        if len(with_epochs) < 2:
            continue
        if folder is not None:
            name = f"group-{i:03d}.png"
            plots.overlay_png(with_epochs, folder / name, title=f"{g['name']} ({g['hardware']})",
                              colours=[colours[r.id] for r in with_epochs])
            g["plot"] = plots.link_to(link, name)
        if svg:
            g["svg"] = plots.curves_svg([plots.series(r) for r in with_epochs],
                                        colours=[colours[r.id] for r in with_epochs], legend=True)


# --------------------------------------------------------------------------- rendering

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
    Every template runs in the sandbox (speedrun.analysis.sandbox), within its limits of
    time, loops, sizes and memory; whatever goes wrong while rendering one is one
    SpeedrunError naming the template and its line.
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
        text = render_bounded(env.get_template(name), context)
    except jinja2.TemplateSyntaxError as exc:
        raise SpeedrunError(f"template {Path(exc.filename).name if exc.filename else name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise SpeedrunError(f"template {name}: no template {exc.name!r} to include") from None
    except UnicodeDecodeError:
        raise SpeedrunError(f"template {name}: not a UTF-8 text file") from None
    except RecursionError:
        raise SpeedrunError(f"template {name}{_template_line(name)}: recursion too deep") from None
    except MemoryError:
        raise SpeedrunError(f"template {name}{_template_line(name)}: it needed more than the "
                            f"{MAX_MEMORY // 1024**3} GB of memory a report may take") from None
    except Exception as exc:  # noqa: BLE001 - a template is the user's program: any failure is theirs
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else f"{type(exc).__name__}: {exc}"
        raise SpeedrunError(f"template {name}{_template_line(name, exc)}: {message}") from None
    if autoescape:  # control characters and bidi overrides in the user's text: as references
        text = as_references(text)
    return text.rstrip("\n") + "\n" if fmt == "md" and template is None else text


def _template_line(name: str, exc: BaseException | None = None) -> str:
    """`, line 3`: where in the template the failure happened (Jinja puts template lines into tracebacks)."""
    import sys
    import traceback

    tb = exc.__traceback__ if exc is not None else sys.exc_info()[2]
    frames = [f for f in traceback.extract_tb(tb) if f.filename.endswith((name, ".j2"))]
    return f", line {frames[-1].lineno}" if frames else ""


def markdown_renderer():
    """The user's Markdown as HTML, wherever it is shown (the HTML report, `speedrun ui`): CommonMark
    with tables, raw HTML escaped, never passed through."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def with_html(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of the context whose runs, series and texts carry their Markdown rendered as HTML."""
    md = markdown_renderer()
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
