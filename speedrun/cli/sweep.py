"""`speedrun sweep`: search settings with Optuna, every trial a recorded run; `sweep show` and `sweep list`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import List, Optional

import typer

from speedrun.cli.app import app, console, err_console, notify, open_store
from speedrun.cli.choices import Sampler, chosen
from speedrun.cli.hyperopts import hyperparameter_options
from speedrun.cli.runs import print_json
from speedrun.analysis.levels import ALPHA
from speedrun.errors import UsageError
from speedrun.text import terminal_safe


def _safe(value) -> str:
    """User text for a Rich cell: markup escaped, control characters shown, never obeyed."""
    from rich.markup import escape

    return escape(terminal_safe(str(value)))


sweep_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(sweep_app, name="sweep")


@sweep_app.callback()
@hyperparameter_options("sweep")
def sweep(
    ctx: typer.Context,
    name: Optional[str] = typer.Option(None, "--name", help="Name of the sweep (its runs' group); the same name and search on several machines makes them workers of one sweep. [default: <recipe>-sweep-<yyyymmdd-hhmmss>]", show_default=False),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="NAME", help="Continue sweep NAME as it was started: failed and unfinished trials run again, nothing else."),
    recipe: str = typer.Option("resnet18", "--recipe", help="Training set-up to start from (see `speedrun recipes`)."),
    repeat: int = typer.Option(1, "--repeat", metavar="N", help="Runs per trial, seeds S, S+1, ... the same in every trial."),
    trials: Optional[int] = typer.Option(None, "--trials", metavar="K", help="Trials to run (random/TPE). [default: a grid's every point]", show_default=False),
    sampler: Optional[Sampler] = typer.Option(None, "--sampler", help="Search: grid (lists only), random or tpe. [default: grid for lists, tpe with a range]", show_default=False),
    objective: str = typer.Option("final_accuracy", "--objective", help="What to optimise: final_accuracy, peak_accuracy, training_time, mfu or time_to:ACC (e.g. time_to:94)."),
    budget: Optional[float] = typer.Option(None, "--budget", metavar="MINUTES", help="Start no trial after this many minutes (this worker).", show_default=False),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Stop hopeless trials early (Optuna's median pruner on each epoch's val accuracy, judging once a quarter of the trials, 2 to 5, completed)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every trial's first run."),
    device: str = typer.Option("auto", "--device", help="Device: auto, cuda, mps or cpu."),
    data_dir: Path = typer.Option(Path("./data"), "--data-dir", help="Folder holding cifar-10-batches-py."),
    subset: Optional[int] = typer.Option(None, "--subset", metavar="N", help="Train on the first N training images only (quick sweeps).", show_default=False),
    val_subset: Optional[int] = typer.Option(None, "--val-subset", metavar="N", help="Evaluate every trial on the same fixed, seeded N test images (quick sweeps; recorded).", show_default=False),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", metavar="K", help="Evaluate every K epochs and always after the last (pruning sees only evaluated epochs).", show_default=False),
    tag: Optional[List[str]] = typer.Option(None, "--tag", metavar="TAG", help="A tag for every run; repeat for more.", show_default=False),
    alpha: float = typer.Option(ALPHA, "--alpha", help="Significance level of the winner's verdict."),
    as_json: bool = typer.Option(False, "--json", help="Print the sweep's answer as JSON when it ends."),
    hyper: dict | None = None,
) -> None:
    """Search settings with Optuna: every trial is a recorded run (or --repeat runs), all in one group named after the sweep.

    Ctrl-C keeps the finished trials; `--resume NAME` runs only the missing ones.
    With a PostgreSQL --db, the same command on several machines shares the trials.

    Example:

    \b
        speedrun sweep --lr 0.02,0.04 --subset 2000 --val-subset 1000 --epochs 2
        speedrun sweep --lr 0.02,0.04,0.08 --bs 64,128 --repeat 2 --name lr-bs
        speedrun sweep --lr 0.01:0.1:log --trials 12 --sampler tpe --objective time_to:85
        speedrun sweep --resume lr-bs
        speedrun sweep show lr-bs
    """
    if ctx.invoked_subcommand is not None:
        return
    from speedrun.sweep import runner
    from speedrun.sweep.space import parse_space
    from speedrun.tracking.environment import command_line
    from speedrun.domain.records import RunRecord
    from speedrun.tracking.validation import check_name
    from speedrun.cli.train import make_recorder
    from speedrun.recipes import get_recipe
    from speedrun.training.recording import Reporter

    if budget is not None and not budget > 0:
        raise UsageError(f"--budget must be positive, got {budget:g}")
    store = open_store()
    if resume is not None:
        if name is not None and name != resume:
            raise UsageError(f"--resume {resume} names another sweep than --name {name}")
        spec = None
        name = resume
    else:
        chosen_recipe = get_recipe(recipe.lower())
        recipe = chosen_recipe.name
        name = check_name(name or f"{recipe}-sweep-{datetime.now():%Y%m%d-%H%M%S}", "group name")
        chosen_recipe.check_options([k for k, v in (hyper or {}).items() if v is not None])
        space = parse_space(hyper or {}, whole_epochs=chosen_recipe.config.recipe is None)
        for key, value in (("subset", subset), ("val_subset", val_subset), ("eval_every", eval_every)):
            if value is not None:
                space.fixed[key] = value
        spec = runner.plan(name, recipe, space, sampler=chosen(sampler), trials=trials, repeat=repeat,
                           objective=objective, prune=prune, seed=seed)
    study, spec = runner.open_sweep(store, spec, name, notify)
    template = RunRecord(source="train", status="running", tags=list(dict.fromkeys(tag or [])),
                         command=command_line())
    try:
        runner.run_worker(store, make_recorder(), study, spec, device=device.lower(), data_dir=str(data_dir),
                          template=template, reporter=Reporter(console if not as_json else err_console),
                          budget_s=budget * 60 if budget is not None else None)
    except KeyboardInterrupt as exc:
        notify(str(exc) or "Interrupted.")
        notify(f"Sweep {name}: the finished trials are kept; continue with `speedrun sweep --resume {name}`.")
        raise typer.Exit(130) from None
    _show(store, name, alpha=alpha, as_json=as_json, plots=None)


@sweep_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="The sweep's name (see `speedrun sweep list`)."),
    alpha: float = typer.Option(ALPHA, "--alpha", help="Significance level of the winner's verdict."),
    plots: Optional[Path] = typer.Option(None, "--plots", metavar="DIR", help="Write PNGs there: the objective by each option, and a heatmap for a two-option grid."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """A sweep's answer: trials ranked by the objective, the best setting's verdict against the runner-up, each option's importance.

    Example:

    \b
        speedrun sweep show lr-bs
        speedrun sweep show lr-bs --plots plots/ --json
    """
    _show(open_store(), name, alpha=alpha, as_json=as_json, plots=plots)


@sweep_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print the sweeps as JSON.")) -> None:
    """The sweeps in the database: name, search, objective and how many trials are done.

    Example:

    \b
        speedrun sweep list
        speedrun sweep list --json
    """
    from speedrun.sweep.summary import searched_text
    from speedrun.sweep import runner

    store = open_store()
    rows = []
    for name in runner.sweep_names(store):
        study, spec = runner.load(store, name)
        states = runner.state_counts(store, study)
        rows.append({"name": name, "recipe": spec.recipe, "sampler": spec.sampler, "objective": spec.metric.key,
                     "searched": spec.space.searched(), "planned": spec.trials,
                     "repeat": spec.repeat, "complete": states.get("complete", 0), "pruned": states.get("pruned", 0),
                     "failed": states.get("fail", 0), "interrupted": states.get("interrupted", 0),
                     "died": states.get("died", 0)})
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No sweeps yet. Start one with `speedrun sweep --lr 0.02,0.04 --subset 2000 --epochs 2`.",
                      markup=False)
        return
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for column in ("Sweep", "Recipe", "Search", "Objective", "Done", "Pruned", "Failed", "Interrupted", "Died"):
        table.add_column(column)
    for r in rows:
        table.add_row(_safe(r["name"]), r["recipe"], _safe(f"{r['sampler']}, {searched_text(r['searched'])}"),
                      r["objective"],
                      f"{r['complete']} of {r['planned']}", str(r["pruned"]), str(r["failed"]),
                      str(r["interrupted"]), str(r["died"]))
    console.print(table)


def _show(store, name: str, *, alpha: float, as_json: bool, plots: Path | None) -> None:
    from speedrun.sweep import summary as sweeps
    from speedrun.analysis.metrics import NoisePool, check_alpha
    from speedrun.sweep import runner

    check_alpha(alpha)
    spec, infos, data = runner.answer(store, name, alpha=alpha, pool=NoisePool.from_store(store))
    if plots is not None:
        data["plots"] = [str(p) for p in sweeps.plot_pngs(spec, infos, plots)]
    if as_json:
        print_json(data)
        return
    from rich.table import Table

    console.print(f"Sweep {name}: {sweeps.heading(data)}", markup=False, highlight=False, style="bold")
    table = Table(show_edge=False, header_style="bold")
    table.add_column("Trial", justify="right")
    for option in data["searched"]:
        table.add_column(option, justify="right")
    table.add_column(spec.metric.title, justify="right")
    table.add_column("Runs")
    for row in data["trials"]:
        table.add_row(row["label"], *[_safe(c) for c in row["cells"]], _safe(row["result"]),
                      _safe(", ".join(row["runs"]) or "—"))
    console.print(table)
    console.print()
    for line in sweeps.answer_lines(data):
        console.print(line, markup=False, highlight=False)
    for path in data.get("plots", []):
        console.print(f"Wrote {path}", markup=False, highlight=False)
