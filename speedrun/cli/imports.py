"""`import-log` and `import-md`: the user's pasted console logs and whole notebook, recorded."""

from __future__ import annotations

from typing import List, Optional

import typer

from speedrun.cli.app import app, console, err_console, fail, open_store
from speedrun.notebook.overrides import Overrides, apply_overrides, fill_content_hash, read_text
from speedrun.notebook.params import parse_assignment
from speedrun.tracking.records import RunRecord, summarize_record


def _warn(message: str) -> None:
    err_console.print(f"Warning: {message}", markup=False, highlight=False, soft_wrap=True)


def _describe(run_id: int, record: RunRecord) -> str:
    """The line printed per stored run, with the final accuracy the store derived."""
    final_acc = summarize_record(record).final_val_acc
    final = f"{final_acc:.2f}%" if final_acc is not None else "—"
    label = f" ({record.label})" if record.label and record.label != str(run_id) else ""
    return f"Run {run_id}{label}: {len(record.epochs)} epochs, final {final}, {record.status}"


@app.command("import-log")
def import_log(
    files: List[str] = typer.Argument(..., help="Console log files; '-' reads standard input."),
    title: Optional[str] = typer.Option(None, help="Title of the run(s)."),
    hardware: Optional[str] = typer.Option(None, help='Hardware, e.g. "Colab T4" or "laptop CPU".'),
    hypothesis: Optional[str] = typer.Option(None, help="The hypothesis the run tested."),
    description: Optional[str] = typer.Option(None, help="What was changed."),
    notes: Optional[str] = typer.Option(None, help="Analysis / notes."),
    tag: List[str] = typer.Option([], "--tag", help="Tag (repeatable)."),
    param: List[str] = typer.Option([], "--param", help="KEY=VALUE the log lacks, e.g. --param optimizer=sgd (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Import even if this content was imported before."),
) -> None:
    """Record runs from pasted console output of the training script (one file may hold several runs).

    Example:

    \b
        speedrun import-log colab.txt --hardware 'Colab T4' --title 'bs 64'
        pbpaste | speedrun import-log - --param lr=0.04
    """
    from speedrun.notebook import parse_log

    try:
        params = dict(parse_assignment(p) for p in param)
    except ValueError as exc:
        fail(f"--param: {exc}")
    overrides = Overrides(title, hardware, hypothesis, description, notes, list(tag), params)
    store = open_store()
    for path in files:
        source, text = read_text(path)
        records = parse_log(text, source)
        for record in records:
            apply_overrides(record, overrides)
            fill_content_hash(record)
        ids = store.add_runs(records, force=force)
        for run_id, record in zip(ids, records):
            for warning in record.warnings:
                _warn(f"{source}: {warning}")
            typer.echo(_describe(run_id, record))


@app.command("import-md")
def import_md(
    notebook: str = typer.Argument(..., help="The lab notebook (experiments.md); '-' reads standard input."),
    force: bool = typer.Option(False, "--force", help="Import even if these runs were imported before."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be created; write nothing."),
    tag: List[str] = typer.Option([], "--tag", help="Tag every imported run (repeatable)."),
) -> None:
    """Record every run of a hand-written lab notebook, with its texts, parameters and epochs.

    Example:

    \b
        speedrun import-md experiments.md --dry-run
        speedrun import-md experiments.md
    """
    from speedrun.notebook import parse_notebook

    source, text = read_text(notebook)
    parsed = parse_notebook(text, source)
    for record in parsed.runs:
        record.tags = list(dict.fromkeys([*record.tags, *tag]))
        fill_content_hash(record)
    for warning in parsed.warnings:  # already say file, line and run
        _warn(warning)
    if not parsed.runs:
        fail(f"{source}: no runs found (expected sections such as '## Run 15: title')")
    if dry_run:
        for record in parsed.runs:
            name = record.label or record.number or "?"
            console.print(f"would create Run {name}: {record.title or ''} — {len(record.epochs)} epochs", markup=False)
        console.print(f"{len(parsed.runs)} runs, none written (--dry-run).")
        return
    store = open_store()
    parser_warnings = [len(r.warnings) for r in parsed.runs]
    ids = store.add_runs(parsed.runs, force=force)
    for run_id, record, seen in zip(ids, parsed.runs, parser_warnings):
        for warning in record.warnings[seen:]:  # what storing added, e.g. a renumbered run
            _warn(f"{source}: run {record.label or record.number}: {warning}")
        typer.echo(_describe(run_id, record))
    with_epochs = sum(1 for r in parsed.runs if r.epochs)
    console.print(
        f"Imported {len(ids)} runs from {source} ({with_epochs} with per-epoch data, "
        f"{len(ids) - with_epochs} summary only).",
        markup=False,
    )
