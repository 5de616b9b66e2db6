"""`export` and `merge`: carrying runs from a Colab session's runs.db to the laptop's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speedrun.cli.app import app, console, fail, open_store
from speedrun.tracking.exchange import export_runs, load_records, merge_records
from speedrun.cli.selection import parse_run_ranges


@app.command()
def export(
    runs: Optional[str] = typer.Argument(None, help="Runs to export, e.g. 15-18,20 (default: all)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
) -> None:
    """Write runs (parameters, environment, epochs, texts) as JSON, for `speedrun merge` elsewhere.

    Example:

    \b
        speedrun --db colab.db export -o colab-runs.json
        speedrun export 15-18 -o some-runs.json
    """
    store = open_store()
    ids = parse_run_ranges(runs) if runs else None
    data = export_runs(store, ids)
    text = json.dumps(data, indent=1, ensure_ascii=False)
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    console.print(f"Exported {len(data['runs'])} runs to {output}.", markup=False)


@app.command()
def merge(
    other: str = typer.Argument(..., help="Another speedrun database (runs.db) or a JSON export."),
) -> None:
    """Bring runs from another database or export into this one; runs already here are skipped.

    Example:

    \b
        speedrun merge colab-runs.json
        speedrun merge /content/drive/MyDrive/runs.db
    """
    store = open_store()
    result = merge_records(store, load_records(other))
    for theirs, ours in result.renumbered:
        console.print(f"Run {theirs} of {other} is run {ours} here (number {theirs} was taken).", markup=False)
    console.print(f"Merged {len(result.added)} runs from {other}; {result.skipped} already here.", markup=False)
