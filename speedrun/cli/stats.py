"""`group` and `stats`: repeats of a configuration, and what they say with their noise."""

from __future__ import annotations

from typing import List, Optional

import typer

from speedrun.cli.app import app, console, open_store
from speedrun.cli.selection import By, Where, where_sets_and_refs
from speedrun.analysis.levels import ALPHA
from speedrun.text import json_text, terminal_safe_tree


@app.command()
def group(
    name: str = typer.Argument(..., help="Group name, e.g. lr004."),
    runs: List[str] = typer.Argument(..., help="Runs to put in the group (numbers or labels)."),
    clear: bool = typer.Option(False, "--clear", help="Take these runs out of any group instead."),
) -> None:
    """Group runs by hand (repeats recorded separately or imported), for stats, compare and report.

    Example:

    \b
        speedrun group bs64 15 21 22
        speedrun stats g:bs64
    """
    store = open_store()
    ids = store.set_group(runs, None if clear else name)
    listed = ", ".join(map(str, ids))
    console.print(f"Runs {listed} " + ("are in no group now." if clear else f"are in group {name}."), markup=False)


@app.command()
def stats(
    refs: Optional[List[str]] = typer.Argument(
        None, help="Run numbers or labels (each stands for its repeats) or g:NAME; or --where."),
    target: List[float] = typer.Option([], "--target", help="Also time-to-target for this accuracy (repeatable)."),
    claim: Optional[float] = typer.Option(
        None, "--claim", help="Check the record claim that the mean final accuracy beats this value (at p<0.01)."
    ),
    alpha: float = typer.Option(ALPHA, help="Significance level of \"is this difference real\"."),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON."),
    where: Where = None,
    by: By = None,
) -> None:
    """Mean, spread and 95% interval of each set of repeats; verdicts between them; a record check.

    Example:

    \b
        speedrun stats g:bs64 g:bs32
        speedrun stats 15 --claim 94 --target 85
        speedrun stats --where "model = resnet9 and hardware = T4" --by batch_size
    """
    from speedrun.analysis.groups import resolve
    from speedrun.analysis.metrics import NoisePool
    from speedrun.analysis.stats_table import summarize_sets

    store = open_store()
    sets = where_sets_and_refs(store, refs, where, by, resolve=resolve)
    pool = NoisePool.from_store(store)
    result = summarize_sets(sets, targets=target, claim=claim, alpha=alpha, pool=pool)
    if as_json:
        typer.echo(json_text(result))
        return
    from rich.markup import escape
    from rich.table import Table

    result = terminal_safe_tree(result)  # group names and labels may come from anyone's notebook
    for note in result["notes"]:
        console.print(note, markup=False)
    for entry in result["sets"]:
        console.print(f"[bold]{escape(entry['name'])}[/bold]  runs {escape(', '.join(entry['runs']))}", highlight=False)
        for note in entry["notes"]:
            console.print(f"  {note}", markup=False)
        table = Table(show_edge=False, header_style="bold")
        for column in ("metric", "n", "mean", "std", "95% CI", "min", "max"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for row in entry["metrics"]:
            table.add_row(row["metric"], *row["cells"])
        console.print(table)
        if entry.get("claim"):
            console.print(entry["claim"], markup=False)
    for differs in result["differences"]:
        console.print(differs["line"], markup=False)
    for verdict in result["verdicts"]:
        console.print(verdict["line"], markup=False)
