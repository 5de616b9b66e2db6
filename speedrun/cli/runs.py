"""`list`, `show`, `note`, `tag`, `rm`: looking at runs and editing the user's words."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, List, Optional

import typer

from speedrun.cli.app import app, console, open_store
from speedrun.cli.choices import SortKey, Status, chosen
from speedrun.cli.selection import Where
from speedrun.cli.table import Column, render
from speedrun.errors import SpeedrunError, UsageError
from speedrun.text import fmt_num as _num
from speedrun.text import epochs_text, json_text, summary_only, terminal_safe
from speedrun.tracking.liveness import contact_note
from speedrun.domain.records import FINAL_MEASURED_AFTER_EPOCHS, utcnow

if TYPE_CHECKING:
    from rich.text import Text


def _waiting_to_sync(store) -> dict:
    """What trainings on this machine could not yet send to this database (see tracking.spool)."""
    from speedrun.tracking.spool import Spool, key_of

    with Spool.default() as spool:
        return spool.waiting(key_of(store))


def _status_text(run, waiting: dict) -> str:
    """'completed (3 epochs waiting to sync)' while a run's records wait in this machine's spool."""
    if run.uuid in waiting:
        return waiting[run.uuid].describe(run.status)
    note = contact_note(run, utcnow())
    return f"{run.status}, {note}" if note else run.status


def _with_waiting(data: dict, run, waiting: dict) -> dict:
    if run.uuid in waiting:
        w = waiting[run.uuid]
        data["waiting_to_sync"] = {"epochs": w.epochs, "status": w.status}
    elif note := contact_note(run, utcnow()):
        data["contact"] = note
    return data


def _mfu(run) -> str:
    """The list's MFU cell: share of the device's peak, `~` where derived from logged durations."""
    from speedrun.domain.efficiency import run_efficiency

    e = run_efficiency(run)
    if e is not None and e.mfu_range is not None:  # precision not stated: between the two peaks
        return ("~" if e.derived else "") + f"{e.mfu_range[0]:.1%}–{e.mfu_range[1]:.1%}"
    if e is None or e.mfu is None:
        return "—"
    return ("~" if e.derived else "") + f"{e.mfu:.1%}"


# How many runs `speedrun list` shows unless told --all or --limit: the most recent page.
PAGE = 50

# The list's columns: numbers are never shortened; when the line is too wide, text gives
# first, then whole columns go, highest `drop` first (see cli.table).
LIST_COLUMNS = (
    Column("Run"), Column("Date", drop=7), Column("Series", shortest=6, drop=9), Column("Status"),
    Column("HW", shortest=4, drop=3), Column("Model", shortest=6, drop=4), Column("BS", numeric=True, drop=5),
    Column("LR", numeric=True, drop=6), Column("Ep", numeric=True, drop=2), Column("Final", numeric=True),
    Column("Peak", numeric=True, drop=8), Column("Time", numeric=True, drop=1), Column("MFU", numeric=True, drop=10),
)


def _text(value) -> Text:
    """User text for `show`: a plain Rich Text, never markup, never highlighted (Rich's highlighter
    is quadratic in a long line), control characters shown."""
    from rich.text import Text

    return Text(terminal_safe(str(value)))


def print_json(data) -> None:
    """JSON on stdout: the data exactly, nothing a terminal obeys (`speedrun.text.json_text`)."""
    typer.echo(json_text(data))


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SpeedrunError(f"--since wants a date such as 2026-11-01 or 2026-11-01T12:00, got {text!r}") from None


@app.command("list")
def list_runs(
    status: Optional[Status] = typer.Option(None, help="Only runs with this status."),
    model: Optional[str] = typer.Option(None, help="Only runs whose model contains this text."),
    hardware: Optional[str] = typer.Option(None, help="Only runs whose hardware contains this text (e.g. T4, cpu)."),
    tag: Optional[str] = typer.Option(None, help="Only runs with this tag."),
    since: Optional[str] = typer.Option(None, help="Only runs created on or after this date (YYYY-MM-DD)."),
    limit: Optional[int] = typer.Option(
        None, min=1, help="Show only N runs: the newest N, or with --sort/--desc the top N of that order. "
                          f"[default: {PAGE} in the table; all with --json]"
    ),
    show_all: bool = typer.Option(False, "--all", help=f"Show every matching run in the table, not a page of {PAGE}."),
    sort: SortKey = typer.Option("id", help="Sort by this field."),
    desc: bool = typer.Option(False, "--desc", help="Sort in descending order."),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON array instead of a table: every matching run, unless --limit N."
    ),
    where: Where = None,
) -> None:
    """List recorded runs, newest last.

    The table shows one page and says how many more there are: the newest runs, or with
    --sort/--desc the top of that order (`--sort final_val_acc --desc`: the best first);
    --all shows every one. --json prints every matching run (scripts get them all) unless --limit.

    Example:

    \b
        speedrun list
        speedrun list --all
        speedrun list --hardware T4 --status completed --sort final_val_acc --desc
        speedrun list --since 2026-11-01 --json
        speedrun list --where "hardware = T4 and batch_size <= 64 and (cosine or final_val_acc > 88)"
    """
    from speedrun.analysis.views import run_summary

    if show_all and limit is not None:
        raise UsageError("give --all or --limit N, not both")
    paged = limit is None and not show_all and not as_json
    ranked = chosen(sort) != "id" or desc  # a chosen order is read from its top; the default one, newest last
    store = open_store()
    runs = store.list_runs(
        status=chosen(status), model=model, hardware=hardware, tag=tag, since=parse_since(since), where=where,
        limit=PAGE if paged else limit, first=ranked, sort=chosen(sort), descending=desc,
    )
    waiting = _waiting_to_sync(store)
    if as_json:
        print_json([_with_waiting(run_summary(r), r, waiting) for r in runs])
        return
    if not runs:
        if any(v is not None for v in (status, model, hardware, tag, since, where)):
            console.print("No runs match.", markup=False)
        else:
            console.print("No runs recorded yet. Start one with `speedrun train` or `speedrun import-log`.",
                          markup=False)
        return
    typer.echo(render(LIST_COLUMNS, _list_rows(runs, waiting), console.width))
    if paged and runs.matching > len(runs):
        typer.echo(f"… and {runs.matching - len(runs):,} more {'after' if ranked else 'before'} these "
                   f"({runs.matching:,} runs in all): see them with `speedrun list --all`.")


def _list_rows(runs, waiting: dict) -> list[list[str]]:
    """The list's cells, plain text (user text made terminal-safe), in LIST_COLUMNS' order."""
    from speedrun.analysis.views import run_date
    from speedrun.domain.hardware import hardware_class_of

    return [_list_row(run, waiting, hardware_class_of(run), run_date(run)) for run in runs]


def _cell(value) -> str:
    """User text in one cell of a plain table: on one line (a tab or newline would break the
    columns; runs of whitespace read as one space, as in Markdown cells), control characters shown."""
    return terminal_safe(" ".join(str(value).split()))


def _list_row(run, waiting: dict, hardware: str, date: str) -> list[str]:
    params = run.param_dict
    epochs = epochs_text(run.epochs_completed, run.epochs_planned, run.final_val_acc)
    return [
        _cell(run.number_and_label),
        date,
        _cell(run.series_name or "—"),
        _cell(_status_text(run, waiting)) + (" (damaged)" if run.damaged else ""),
        _cell(hardware),
        _cell(params.get("model", "—")),
        _cell(params.get("batch_size", "—")),
        _cell(params.get("lr", "—")),
        epochs,
        _num(run.final_val_acc, ".2f", "%"),
        _num(run.peak_val_acc, ".2f", "%"),
        _num(run.train_time_s, ".1f", "s"),
        _mfu(run),
    ]


@app.command()
def show(
    run: str = typer.Argument(..., help="Run number or label (e.g. 15 or 7a)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Everything about one run: parameters, environment, texts and epochs.

    Example:

    \b
        speedrun show 15
        speedrun show 7a --json
    """
    from speedrun.domain.efficiency import fmt_efficiency, run_efficiency
    from speedrun.analysis.views import run_detail

    store = open_store()
    record = store.get_run(run)
    waiting = _waiting_to_sync(store)
    data = _with_waiting(run_detail(record), record, waiting)
    if as_json:
        print_json(data)
        return
    from rich.table import Table
    from rich.text import Text

    console.print(Text.assemble("Run ", _text(data["label"]), ": ", _text(data["title"] or ""), style="bold"),
                  highlight=False)
    if record.damaged:
        console.print(_text(f"Damaged: {', '.join(record.damaged)} (could not be read; left out)"), style="red",
                      highlight=False)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    for name, value in [
        ("Status", _status_text(record, waiting) + (f" ({data['error']})" if data["error"] else "")),
        ("Source", data["source"] + (f" ({data['source_file']})" if data["source_file"] else "")),
        ("Date", data["date"]),
        ("Series", data["series"] or "—"),
        ("Hardware", data["env"].get("hardware") or data["hardware"]),
        ("Final", _num(data["final_val_acc"], ".2f", "%")),
        ("Peak", _num(data["peak_val_acc"], ".2f", "%") + (f" at epoch {data['peak_epoch']}" if data["peak_epoch"] else "")),
        ("Training time", _num(data["train_time_s"], ".2f", " s")),
        ("Efficiency", fmt_efficiency(run_efficiency(record))),
        ("Epochs", epochs_text(data["epochs_completed"], data["epochs"], data["final_val_acc"], of=" of ")
         + (" (none logged: the notebook states only the results)"
            if summary_only(data["epochs_completed"], data["final_val_acc"]) else "")),
        ("Parameters", _num(data["param_count"], ",")),
        ("Tags", ", ".join(data["tags"]) or "—"),
        ("Group", data["group"] or "—"),
        ("Command", data["command"] or "—"),
        ("Git", f"{data['git_commit']}{' (dirty)' if data['git_dirty'] else ''}" if data["git_commit"] else "—"),
    ]:
        facts.add_row(name, _text(value))
    console.print(facts)
    for name in ("hypothesis", "description", "analysis"):
        if data[name]:
            console.print(f"\n[bold]{name.title()}[/bold]")
            console.print(terminal_safe(data[name]), markup=False, highlight=False)
    notes = {k: v for k, v in data["extra"].items() if isinstance(v, str) and k != FINAL_MEASURED_AFTER_EPOCHS}
    if notes:  # the notebook's other bullets (`- **Observation**: ...`), as written
        console.print("\n[bold]Notes[/bold]")
        for key, value in notes.items():
            console.print(terminal_safe(f"{key.replace('_', ' ').capitalize()}: {value}"), markup=False, highlight=False)
    if data["unparsed_config"]:
        console.print("\n[bold]Configuration not understood[/bold] (a difference when runs are compared)")
        console.print(terminal_safe(data["unparsed_config"]), markup=False, highlight=False)
    if data["params"]:
        console.print("\n[bold]Parameters[/bold]")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        for key, value in data["params"].items():
            grid.add_row(_text(key), _text(repr(value) if isinstance(value, str) else value))
        console.print(grid)
    env = {k: v for k, v in data["env"].items() if v is not None and k != "hardware"}
    if env:
        console.print("\n[bold]Environment[/bold]")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        for key, value in env.items():
            grid.add_row(key, _text(value))
        console.print(grid)
    if data["epoch_metrics"]:
        console.print("\n[bold]Epochs[/bold]")
        table = Table(show_edge=False, header_style="bold")
        columns = [
            ("Epoch", "epoch", "d"), ("Train loss", "train_loss", ".4f"), ("Train acc", "train_acc", ".2f"),
            ("Val loss", "val_loss", ".4f"), ("Val acc", "val_acc", ".2f"), ("Duration", "duration_s", ".2f"),
            ("Total", "elapsed_s", ".1f"), ("LR", "lr", ".5f"), ("img/s", "images_per_s", ".0f"),
            ("TFLOP/s", "tflops", ".3g"), ("MFU", "mfu", ".1%"),
        ]
        # Columns that no epoch has are noise for imported runs.
        columns = [c for c in columns if any(e[c[1]] is not None for e in data["epoch_metrics"])]
        for title, _, _ in columns:
            table.add_column(title, justify="right")
        for e in data["epoch_metrics"]:
            table.add_row(*[_num(e[key], fmt) for _, key, fmt in columns])
        console.print(table)


@app.command()
def note(
    run: str = typer.Argument(..., help="Run number or label."),
    hypothesis: Optional[str] = typer.Option(None, help="Set the hypothesis."),
    description: Optional[str] = typer.Option(None, help="Set the description."),
    analysis: Optional[str] = typer.Option(None, "--analysis", "--notes", help="Set the analysis / notes."),
    title: Optional[str] = typer.Option(None, help="Set the title."),
) -> None:
    """Write the user's texts of a run: hypothesis, description, analysis, title.

    Example:

    \b
        speedrun note 15 --hypothesis "Batch 64 converges faster than 128"
        speedrun note 15 --analysis "85.69%, +3.07 points over batch 128"
    """
    if all(v is None for v in (hypothesis, description, analysis, title)):
        raise UsageError("nothing to change: give --hypothesis, --description, --analysis or --title")
    store = open_store()
    changed = store.update_texts(run, hypothesis=hypothesis, description=description, analysis=analysis, title=title)
    _rewrite_section(store, changed.id, hypothesis=hypothesis, description=description, analysis=analysis, title=title)
    console.print(f"Updated run {terminal_safe(changed.display_label)}.", markup=False)


def _rewrite_section(store, run_id: int, **changes) -> None:
    """An imported run keeps its notebook section as written: write the changed fields into it too."""
    from speedrun.notebook.markdown import rewrite_section

    stored = store.get_run(run_id)
    if stored.section_text is not None:
        store.set_section_text(run_id, rewrite_section(stored.section_text, **changes))


@app.command()
def tag(
    run: str = typer.Argument(..., help="Run number or label."),
    tags: List[str] = typer.Argument(..., help="Tags to add."),
    remove: bool = typer.Option(False, "--remove", "-r", help="Remove these tags instead."),
) -> None:
    """Add (or remove) tags on a run.

    Example:

    \b
        speedrun tag 15 batch-sweep baseline
        speedrun tag 15 baseline --remove
    """
    store = open_store()
    current = store.add_tags(run, tags, remove=remove)
    _rewrite_section(store, store.get_run(run).id, tags=current)
    console.print(terminal_safe(f"Run {run} tags: {', '.join(current) or '(none)'}"), markup=False)


@app.command()
def rm(
    run: str = typer.Argument(..., help="Run number or label."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(False, "--force", help="Delete even a run that is still training."),
) -> None:
    """Delete a run and everything recorded with it.

    Example:

    \b
        speedrun rm 12
        speedrun rm 12 --yes
    """
    store = open_store()
    target = store.get_run(run)
    name = terminal_safe(target.display_label)
    if target.status == "running" and not force:
        where = f" (pid {target.pid} on {target.host})" if target.pid and target.host else ""
        raise SpeedrunError(f"run {name} is still training{where}; stop it first, or use --force to delete it anyway")
    if not yes:
        confirmed = typer.confirm(f"Delete run {name} ({terminal_safe(str(target.title))})?", default=False)
        if not confirmed:
            raise SpeedrunError("not deleted")
    store.delete_run(target.id)
    console.print(f"Deleted run {name}.", markup=False)
