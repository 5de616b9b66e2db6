"""`report` and `compare`: the notebook rebuilt from the database, and runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from speedrun.cli.app import app, console, notify, open_store
from speedrun.cli.choices import CompareFormat, ReportFormat, chosen
from speedrun.cli.runs import parse_since
from speedrun.errors import SpeedrunError, UsageError
from speedrun.cli.selection import Where, select_runs, where_sets_and_refs
from speedrun.analysis.levels import ALPHA
from speedrun.outputs import check_image_path, check_output, write_output
from speedrun.text import json_text, terminal_safe_tree

TARGET_HELP = "Accuracy target in percent for time-to-target (repeatable; default 85, 90 and 94)."


def _write(text: str, output: Optional[Path], force: bool) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    write_output(text, output, force=force)


@app.command()
def report(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of standard output."),
    runs: Optional[str] = typer.Option(None, "--runs", help="Only these runs: numbers, ranges and labels, e.g. 15-18,20,7a."),
    since: Optional[str] = typer.Option(None, help="Only runs created on or after this date (YYYY-MM-DD)."),
    tag: Optional[str] = typer.Option(None, help="Only runs with this tag."),
    hardware: Optional[str] = typer.Option(None, help="Only runs whose hardware contains this text (e.g. T4, cpu)."),
    target: List[float] = typer.Option([], "--target", help=TARGET_HELP),
    alpha: float = typer.Option(ALPHA, help="Significance level of \"is this difference real\" (records are confirmed at p<0.01)."),
    fmt: ReportFormat = typer.Option("md", "--format", help="md (the notebook, re-importable) or html (one self-contained page)."),
    template: Optional[Path] = typer.Option(None, help="Your own Jinja template; it gets the same context."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG learning curves into this directory and link them."),
    stamp: bool = typer.Option(False, "--stamp", help="Add the generation time (the output is otherwise identical for identical data)."),
    force: bool = typer.Option(False, "--force", help="Replace the -o file if it exists."),
    where: Where = None,
) -> None:
    """The lab notebook from the database: leaderboard, groups, and one section per run.

    Markdown goes to standard output (`speedrun report > experiments.md`) and
    reads back with `speedrun import-md`.

    Example:

    \b
        speedrun report > experiments.md
        speedrun report --runs 15-18,20 --plots plots -o experiments.md
        speedrun report --format html -o report.html
        speedrun report --where "hardware = T4 and final_val_acc > 85"
    """
    from speedrun.analysis.metrics import DEFAULT_TARGETS, NoisePool
    from speedrun.analysis.report import build_context, load_runs, plots_link_for, render
    from speedrun.domain.memo import collector_paused

    fmt = chosen(fmt)
    if output is not None:
        check_output(output, force=force)  # before any work
    store = open_store()
    try:
        ids = select_runs(store, runs) if runs else None
    except SpeedrunError as exc:
        raise SpeedrunError(f"--runs: {exc}") from None
    with collector_paused():  # millions of objects that live until the report is written
        selected = load_runs(store, ids=ids, since=parse_since(since), tag=tag, hardware=hardware, where=where)
        # Spreads come from all the user's repeats, whatever part of the notebook is shown.
        filtered = any(x is not None for x in (ids, since, tag, hardware, where))
        pool = NoisePool.from_store(store) if filtered else NoisePool(selected)
        when = None
        if stamp:
            from datetime import datetime, timezone

            when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        from speedrun.sweep.runner import summaries
        from speedrun.sweep.summary import sweep_section

        plots_link = plots_link_for(plots, output) if plots else None
        sweeps = [sweep_section(spec, trials, answer, plots, plots_link, fmt == "html") for spec, trials, answer
                  in summaries(store, alpha=alpha, pool=pool, runs={r.id for r in selected} if filtered else None)]
        context = build_context(
            selected,
            targets=target or DEFAULT_TARGETS,
            alpha=alpha,
            pool=pool,
            stamp=when,
            plots=plots,
            plots_link=plots_link,
            svg=fmt == "html",
            series=store.list_series(),
            sweeps=sweeps,
        )
        text = render(context, fmt, template)
    _write(text, output, force)


@app.command()
def compare(
    refs: Optional[List[str]] = typer.Argument(
        None, help="Two or more run numbers or labels, or g:NAME for a group (or --where)."),
    show_all: bool = typer.Option(False, "--all", help="Show the parameters that are equal too."),
    by: str = typer.Option("epoch", "--by", help="Align curves by epoch or by elapsed time; with --where, a "
                           "parameter or field (e.g. batch_size) makes one side per value of it."),
    target: List[float] = typer.Option([], "--target", help=TARGET_HELP),
    alpha: float = typer.Option(ALPHA, help="Significance level of \"is this difference real\"."),
    fmt: CompareFormat = typer.Option("table", "--format", help="table (terminal) or md (a Markdown table)."),
    as_json: bool = typer.Option(False, "--json", help="Print the aligned data as JSON."),
    plot: bool = typer.Option(
        False, "--plot", help="Also write the val-accuracy curves to a PNG: FILE.png among the runs, "
        "else compare-<runs>.png here; prints the path."
    ),
    repeats: bool = typer.Option(
        False, "--repeats", help="Let each run stand for its repeats (same set-up, seed aside, completed)."
    ),
    where: Where = None,
) -> None:
    """Runs side by side: parameters, environment, results, curves, and an honest verdict.

    Example:

    \b
        speedrun compare 15 18
        speedrun compare 15 16 17 --by time --plot curves.png
        speedrun compare g:bs64 g:bs32 --format md
        speedrun compare --where "model = resnet9 and hardware = T4" --by batch_size
    """
    from speedrun.analysis.compare import build_comparison, default_plot_path, load_sides, plot_png, render_markdown, render_table
    from speedrun.analysis.compare import as_sides
    from speedrun.analysis.groups import resolve
    from speedrun.analysis.metrics import DEFAULT_TARGETS, NoisePool

    fmt = chosen(fmt)
    if by not in ("epoch", "time") and where is None:
        raise UsageError(f"--by: {by!r} is not one of 'epoch', 'time' (or, with --where, a parameter such as "
                         "batch_size to make one side per value)")
    by, split = (by, None) if by in ("epoch", "time") else ("epoch", by)
    refs = refs or []
    png = [r for r in refs if r.lower().endswith(".png")]
    if png and not plot:
        raise SpeedrunError(f"{png[0]} is not a run; write --plot {png[0]} to plot into it")
    if len(png) > 1:
        raise SpeedrunError("--plot takes one file name")
    if png:
        check_image_path(Path(png[0]))
    refs = [r for r in refs if r not in png]
    store = open_store()
    if where is None:
        sides = load_sides(store, refs, repeats=repeats)
    else:
        sides = as_sides(where_sets_and_refs(store, refs, where, split, resolve=resolve, each=True, expand=repeats))
    pool = NoisePool.from_store(store)
    data = build_comparison(sides, targets=target or DEFAULT_TARGETS, alpha=alpha, by=by, pool=pool)
    if as_json:
        typer.echo(json_text(data))
    elif fmt == "md":
        typer.echo(render_markdown(terminal_safe_tree(data), show_all=show_all), nl=False)
    else:
        console.print(render_table(terminal_safe_tree(data), show_all=show_all))
    if plot:
        written = plot_png(sides, Path(png[0]) if png else default_plot_path(sides), by)
        notify(f"Wrote {written}")
