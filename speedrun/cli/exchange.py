"""`export` and `merge`: carrying runs from a Colab session's runs.db to the laptop's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speedrun.cli.app import app, console, notify, open_store
from speedrun.cli.selection import Where, parse_run_ranges
from speedrun.outputs import check_output, write_output
from speedrun.text import counted, json_text, terminal_safe


@app.command()
def export(
    runs: Optional[str] = typer.Argument(None, help="Runs to export, e.g. 15-18,20 (default: all)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace the -o file if it exists."),
    where: Where = None,
) -> None:
    """Write runs (parameters, environment, epochs, texts) as JSON, for `speedrun merge` elsewhere.

    Example:

    \b
        speedrun --db colab.db export -o colab-runs.json
        speedrun export 15-18 -o some-runs.json
        speedrun export --where "hardware = T4 and tag = baseline" -o t4-baselines.json
    """
    from speedrun.tracking.exchange import damaged_runs, export_runs

    if output is not None:
        check_output(output, force=force)  # before any work
    store = open_store()
    ids = parse_run_ranges(runs) if runs else None
    data = export_runs(store, ids, where)
    for damaged in damaged_runs(store, ids, where):
        notify(f"Warning: {terminal_safe(damaged)}: damaged values left out of the export")
    text = json_text(data, indent=1)  # the data exactly; C1 controls and bidi overrides as \u escapes
    if output is None:
        typer.echo(text)
        return
    if not write_output(text + "\n", output, force=force):  # `-o -` is standard output
        console.print(f"Exported {len(data['runs'])} runs to {output}.", markup=False)


@app.command()
def merge(
    other: str = typer.Argument(..., help="Another speedrun database (runs.db or a URL) or a JSON export."),
) -> None:
    """Bring runs from another database or export into this one; runs already here are skipped.

    Everything is checked before anything is written: one bad value refuses the merge.

    Example:

    \b
        speedrun merge colab-runs.json
        speedrun merge /content/drive/MyDrive/runs.db
    """
    from speedrun.tracking.exchange import load_records, merge_records

    loaded = load_records(other)  # checked before this database is even opened
    store = open_store()
    result = merge_records(store, loaded)
    from speedrun.tracking.db import display_name

    name = terminal_safe(display_name(other))  # a URL without its password
    for theirs, ours in result.renumbered:
        console.print(f"Run {theirs} of {name} is run {ours} here (number {theirs} was taken).", markup=False)
    for run in result.conflicts:
        notify(f"Conflict: run {run} was edited here and in {name} since the last merge; its texts and "
               f"tags here are kept (edit them with `speedrun note`/`tag`).")
    updated = f", {counted(len(result.updated), 'run')} updated" if result.updated else ""
    conflicts = f", {len(result.conflicts)} in conflict" if result.conflicts else ""
    console.print(f"Merged {counted(len(result.added), 'run')} from {name}; {result.skipped} already here"
                  f"{updated}{conflicts}.", markup=False)
