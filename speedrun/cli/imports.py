"""`import-log` and `import-md`: the user's pasted console logs and whole notebook, recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import typer

from speedrun.cli.app import app, open_store
from speedrun.errors import DuplicateImport, SpeedrunError
from speedrun.text import terminal_safe
from speedrun.domain.records import RunRecord, default_title, summarize_record

if TYPE_CHECKING:  # the notebook parsers and the store load with the command that uses them
    from speedrun.tracking.store import Stored


# Held by an import from the moment it reads what the database holds until its writes commit.
IMPORT_LOCK = "import-md"


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
    Several files are imported together: all of them, or none if one cannot be read.

    Example:

    \b
        speedrun import-log colab.txt --hardware 'Colab T4' --title 'bs 64'
        pbpaste | speedrun import-log - --param lr=0.04
    """
    from speedrun.notebook import parse_log
    from speedrun.notebook.inputs import read_input
    from speedrun.notebook.overrides import Overrides, apply_overrides, fill_content_hash
    from speedrun.domain.params import parse_assignment

    try:
        params = dict(parse_assignment(p) for p in param)
    except ValueError as exc:
        raise SpeedrunError(f"--param: {exc}") from None
    overrides = Overrides(title, hardware, hypothesis, description, notes, list(tag), params)
    # Every file is read and parsed before anything is written, and all of them go in one
    # transaction: a bad file among several writes nothing, so the fixed rerun is no duplicate.
    parsed: list[tuple[str, list[RunRecord]]] = []
    for path in files:
        source, text = read_input(path)
        records = parse_log(text, source)
        for record in records:
            apply_overrides(record, overrides)
            fill_content_hash(record)
            record.title = record.title or default_title(record)
        parsed.append((source, records))
    if not force:
        _refuse_repeats(parsed)
    store = open_store()  # opened once every file reads: a bad input creates no database
    decided = iter(store.add_runs([record for _, records in parsed for record in records], force=force))
    for source, records in parsed:
        for record in records:
            stored = next(decided)
            for warning in record.warnings + _decisions(stored):
                _warn(f"{source}: {warning}")
            typer.echo(_describe(stored, record))


def _refuse_repeats(parsed: list[tuple[str, list[RunRecord]]]) -> None:
    """The same log given twice in one import is a duplicate, as it would be in two imports."""
    first: dict[str, int] = {}  # content hash -> the file it is in first
    for index, (source, records) in enumerate(parsed):
        for record in records:
            if record.content_hash and first.setdefault(record.content_hash, index) != index:
                raise DuplicateImport(
                    f"{source}: this content is also in {parsed[first[record.content_hash]][0]}, given before it; "
                    f"use --force to import it twice"
                )


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
    A run recorded by training takes only its title, texts and tags from its section.

    Example:

    \b
        speedrun import-md experiments.md --dry-run
        speedrun import-md experiments.md
    """
    from speedrun.notebook import parse_notebook
    from speedrun.notebook.inputs import read_input
    from speedrun.notebook.sync import plan_import
    from speedrun.tracking.store import Stored

    source, text = read_input(notebook)
    parsed = parse_notebook(text, source)
    for warning in parsed.warnings:  # already say file, line and run
        _warn(warning)
    if not parsed.runs and not parsed.series:
        raise SpeedrunError(f"{source}: no runs found (expected sections such as '## Run 15: title')")
    store = open_store()
    # What the database holds is read, and the plan made from it, under the lock its writing
    # holds too: two imports of one notebook at once would otherwise both add every run.
    with store.exclusive(IMPORT_LOCK):
        plan = plan_import(parsed, stored_runs(store), force=force)
        for record in [*plan.add, *(u.record for u in plan.update)]:
            record.tags = list(dict.fromkeys([*record.tags, *tag]))
            record.title = record.title or default_title(record)
        decided = [] if dry_run else store.apply_notebook(
            add=plan.add, update=plan.update, series=plan.series,
            positions=plan.positions, series_positions=plan.series_positions,
        )
    for warning in plan.warnings:
        _warn(warning)
    if dry_run:
        for record in plan.add:
            typer.echo(terminal_safe(f"would add Run {record.label or record.number}: {record.title or ''}"))
        for update in plan.update:
            typer.echo(f"would update Run {update.record.label or update.record.number} (run {update.run_id})")
        typer.echo(plan.summary(source) + " Nothing written (--dry-run).")
        return
    for stored, record in zip(decided, plan.add):
        typer.echo(f"added {_describe(stored, record)}")
    for update in plan.update:
        typer.echo(f"updated {_describe(Stored(update.run_id, None, update.record.label), update.record)}")
    typer.echo(plan.summary(source))


def stored_runs(store):
    """What `plan_import` needs to know of the database."""
    from speedrun.notebook.sync import StoredRuns
    from speedrun.domain.hardware import hardware_text

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
