"""`import-log` and `import-md`: the user's pasted console logs and whole notebook, recorded."""

from __future__ import annotations

from typing import List, Optional

import typer

from speedrun.cli.app import app, fail, open_store
from speedrun.errors import SpeedrunError
from speedrun.notebook.inputs import read_input
from speedrun.notebook.overrides import Overrides, apply_overrides, fill_content_hash
from speedrun.notebook.params import parse_assignment
from speedrun.text import terminal_safe
from speedrun.tracking.records import RunRecord, default_title, summarize_record
from speedrun.tracking.store import Stored


def _warn(message: str) -> None:
    # Plain writes: a notebook of 2,000 runs may say 3,000 things, and rich would take a second for them.
    typer.echo(f"Warning: {terminal_safe(message)}", err=True)


def _describe(stored: Stored, record: RunRecord) -> str:
    """The line printed per stored run, with the final accuracy the store derived."""
    final_acc = summarize_record(record).final_val_acc
    final = f"{final_acc:.2f}%" if final_acc is not None else "—"
    label = f" ({stored.label})" if stored.label and stored.label != str(stored.number) else ""
    return f"Run {stored.number}{label}: {len(record.epochs)} epochs, final {final}, {record.status}"


def _decisions(stored: Stored) -> list[str]:
    """What storing decided that the user did not ask for, e.g. a renumbered run."""
    if not stored.renumbered:
        return []
    labelled = f" labelled {stored.label}" if stored.label else ""
    return [f"run number {stored.requested} is taken; stored as run {stored.number}{labelled}"]


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

    Reads regular files and standard input, up to 1 GB each (set SPEEDRUN_MAX_INPUT, e.g. 4G, for more).

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
    store = None  # opened once the first file reads: a bad input creates no database
    for path in files:
        source, text = read_input(path)
        records = parse_log(text, source)
        for record in records:
            apply_overrides(record, overrides)
            fill_content_hash(record)
            record.title = record.title or default_title(record)
        store = store or open_store()
        for stored, record in zip(store.add_runs(records, force=force), records):
            for warning in record.warnings + _decisions(stored):
                _warn(f"{source}: {warning}")
            typer.echo(_describe(stored, record))


@app.command("import-md")
def import_md(
    notebook: str = typer.Argument(..., help="The lab notebook (experiments.md); '-' reads standard input."),
    force: bool = typer.Option(False, "--force", help="Add every section as a new run, even those already stored."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be added and updated; write nothing."),
    tag: List[str] = typer.Option([], "--tag", help="Tag every run this import adds or updates (repeatable)."),
) -> None:
    """Record a hand-written lab notebook, or bring the database up to date with an edited one.

    Each section becomes a run with its texts, parameters and epochs; `## Run 7` with
    `### Run 7a`, `### Run 7b` below it is a series (`g:7`). Importing is an update:
    a run already stored (a report's section carries its identity; a hand-written one
    is known by its text, or its label in the same file) takes what its section now
    says, the rest is added, and the same file twice changes nothing. The sections
    are kept as written, so `speedrun report` gives the notebook back line for line.

    Example:

    \b
        speedrun import-md experiments.md --dry-run
        speedrun import-md experiments.md
    """
    from speedrun.notebook import parse_notebook
    from speedrun.notebook.sync import plan_import

    source, text = read_input(notebook)
    parsed = parse_notebook(text, source)
    for warning in parsed.warnings:  # already say file, line and run
        _warn(warning)
    if not parsed.runs and not parsed.series:
        raise SpeedrunError(f"{source}: no runs found (expected sections such as '## Run 15: title')")
    store = open_store()
    plan = plan_import(parsed, stored_runs(store), force=force)
    for record in [*plan.add, *(u.record for u in plan.update)]:
        record.tags = list(dict.fromkeys([*record.tags, *tag]))
        record.title = record.title or default_title(record)
    if dry_run:
        for record in plan.add:
            typer.echo(terminal_safe(f"would add Run {record.label or record.number}: {record.title or ''}"))
        for update in plan.update:
            typer.echo(f"would update Run {update.record.label or update.record.number} (run {update.run_id})")
        typer.echo(plan.summary(source) + " Nothing written (--dry-run).")
        return
    decided = store.apply_notebook(
        add=plan.add, update=plan.update, series=plan.series,
        positions=plan.positions, series_positions=plan.series_positions,
    )
    for stored, record in zip(decided, plan.add):
        typer.echo(f"added {_describe(stored, record)}")
    for update in plan.update:
        typer.echo(f"updated {_describe(Stored(update.run_id, None, update.record.label), update.record)}")
    typer.echo(plan.summary(source))


def stored_runs(store):
    """What `plan_import` needs to know of the database."""
    from speedrun.notebook.sync import StoredRuns
    from speedrun.text import hardware_text

    def section_markdown(run):
        if run.section_text is not None:  # printed as written: no need to load the report (and scipy with it)
            return run.section_text
        from speedrun.analysis.report import section_markdown as written

        return written(run)

    def full(ids: list[int]) -> dict[int, object]:
        return {run.id: run for run in store.list_runs(ids=ids, with_epochs=True)} if ids else {}

    return StoredRuns(
        runs=store.list_runs(),
        series=store.list_series(),
        section_of=section_markdown,
        hardware_of=hardware_text,
        full_runs=full,
    )
