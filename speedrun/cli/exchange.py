"""`export` and `merge`: carrying runs from a Colab session's runs.db to the laptop's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speedrun.cli.app import app, console, err_console, open_store, state
from speedrun.cli.selection import parse_run_ranges
from speedrun.outputs import check_output, write_output
from speedrun.text import json_text, terminal_safe
from speedrun.tracking.exchange import damaged_runs, export_runs, load_records, merge_records


@app.command()
def export(
    runs: Optional[str] = typer.Argument(None, help="Runs to export, e.g. 15-18,20 (default: all)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace the -o file if it exists."),
) -> None:
    """Write runs (parameters, environment, epochs, texts) as JSON, for `speedrun merge` elsewhere.

    Example:

    \b
        speedrun --db colab.db export -o colab-runs.json
        speedrun export 15-18 -o some-runs.json
    """
    if output is not None:
        check_output(output, database=state.db, force=force)  # before any work
    store = open_store()
    ids = parse_run_ranges(runs) if runs else None
    data = export_runs(store, ids)
    for damaged in damaged_runs(store, ids):
        err_console.print(f"Warning: {terminal_safe(damaged)}: damaged values left out of the export",
                          markup=False, highlight=False)
    text = json_text(data, indent=1)  # the data exactly; C1 controls and bidi overrides as \u escapes
    if output is None:
        typer.echo(text)
        return
    write_output(text + "\n", output, database=state.db, force=force)
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
    loaded = load_records(other)  # checked before this database is even opened
    store = open_store()
    result = merge_records(store, loaded)
    name = terminal_safe(other)
    for theirs, ours in result.renumbered:
        console.print(f"Run {theirs} of {name} is run {ours} here (number {theirs} was taken).", markup=False)
    console.print(f"Merged {len(result.added)} runs from {name}; {result.skipped} already here.", markup=False)
