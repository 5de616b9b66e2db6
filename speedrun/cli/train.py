"""`speedrun train`: train a recipe (with overrides), once or repeated, and record every run, epoch by epoch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from speedrun.cli.app import app, console, notify, open_store, state
from speedrun.cli.hyperopts import hyperparameter_options
from speedrun.errors import DatabaseError
from speedrun.tracking.environment import command_line
from speedrun.domain.records import RunRecord


def make_recorder(*, offline_start: bool = True):
    """Where the runs go: the Store of `--db`, opened before training so that a database problem
    stops the run at once; a server's outage mid-run waits in the local spool. A server that cannot
    be reached at all at the start (`offline_start`): the whole run goes to the spool."""
    from speedrun.tracking.spool import offline, spooled, unreachable

    try:
        store = open_store()
    except DatabaseError:
        if offline_start and unreachable(state.db):
            return offline(state.db, notify=notify)
        raise
    return spooled(store, notify=notify)


def _print_dry_run(config, title: str | None, tags: list[str]) -> None:
    from speedrun.domain.efficiency import CIFAR10_TRAIN_IMAGES
    from speedrun.domain.hyperparams import HYPER
    from speedrun.notebook.logformat import config_line
    from speedrun.training import fastloop, loop

    extra_keys = fastloop.EXTRA_CONFIG_KEYS if config.recipe else loop.EXTRA_CONFIG_KEYS

    console.print("Dry run: nothing will be trained or recorded.", markup=False, highlight=False)
    rows = {"device": config.device, **config.to_params(), **config.machine(), "data_dir": config.data_dir}
    if config.target is not None:
        rows["target"] = config.target
    if title:
        rows["title"] = title
    if tags:
        rows["tags"] = ", ".join(tags)
    width = max(map(len, rows))
    vwidth = max(len(str(v)) for v in rows.values())
    for key, value in rows.items():
        unit = HYPER[key].unit if key in HYPER else ""
        line = f"  {key:<{width}}  {value!s:<{vwidth}}  ({unit})" if unit else f"  {key:<{width}}  {value}"
        console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)
    # The Config line as the run's log will print it: a fractional budget counts the epochs begun,
    # and the budget line says where the last one stops.
    shown, notes = config.to_params(), ()
    if config.recipe:
        steps = fastloop.Steps.of(config.subset or CIFAR10_TRAIN_IMAGES, config.batch_size, config.epochs)
        shown, notes = {**shown, "epochs": steps.epochs}, fastloop.budget_note(config, steps)
    console.print(config_line(shown, extra_keys), markup=False, highlight=False, soft_wrap=True)
    for line in notes:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("train")
@hyperparameter_options("train")
def train_command(
    recipe: str = typer.Option("resnet18", "--recipe", help="Training set-up to start from (see `speedrun recipes NAME` for the options it reads); every other option overrides one of its fields, and an option the recipe does not read is refused."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (with --repeat: of the first repeat, then +1 each). [default: a random one, recorded]", show_default=False),
    repeat: Optional[int] = typer.Option(None, "--repeat", metavar="N", help="Train the same configuration N times with distinct seeds, as one group.", show_default=False),
    seeds: Optional[str] = typer.Option(None, "--seeds", metavar="S1,S2,..", help="Train once per listed seed, as one group.", show_default=False),
    group: Optional[str] = typer.Option(None, "--group", metavar="NAME", help="Group name of the runs. [default with repeats: <recipe>-<yyyymmdd-hhmmss>]", show_default=False),
    device: str = typer.Option("auto", "--device", help="Device: auto, cuda, mps or cpu."),
    data_dir: Path = typer.Option(Path("./data"), "--data-dir", help="Folder holding cifar-10-batches-py (downloaded there when missing)."),
    subset: Optional[int] = typer.Option(None, "--subset", metavar="N", help="Train on the first N training images only (quick trials)."),
    val_subset: Optional[int] = typer.Option(None, "--val-subset", metavar="N", help="Evaluate on a fixed, seeded N of the 10,000 test images (the same N in every run; recorded, and verdicts judge the run with its own test size).", show_default=False),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", metavar="K", help="Evaluate every K epochs and always after the last. [default: every epoch]", show_default=False),
    target: Optional[float] = typer.Option(None, "--target", metavar="ACC", help="Record the training time at which val accuracy first reached ACC percent."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the run."),
    hypothesis: Optional[str] = typer.Option(None, "--hypothesis", help="What the run is expected to show."),
    notes: Optional[str] = typer.Option(None, "--notes", help="Notes, kept as the run's analysis."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", metavar="TAG", help="A tag for the run; repeat for more."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve and print the configuration; train nothing, record nothing."),
    spool: bool = typer.Option(True, "--spool/--no-spool", help="When the database server cannot be reached at the start, train and record into the local spool (./speedrun-spool.db) for `speedrun sync`; --no-spool refuses to start instead."),
    hyper: dict | None = None,
) -> None:
    """Train CIFAR-10 with a recipe and record the run, epoch by epoch, in the database.

    Example:

    \b
        speedrun train --bs 64 --cosine
        speedrun train --recipe airbench94 --repeat 5 --lr-per-1024 12
        speedrun train --subset 2000 --val-subset 1000 --epochs 2 --dry-run
    """
    from speedrun.recipes import get_recipe
    from speedrun.training.augment import parse_augment
    from speedrun.training.recording import Reporter
    from speedrun.training.repeats import seed_plan, train_runs

    chosen = get_recipe(recipe.lower())
    hyper = dict(hyper or {})
    for word in ("model", "optimizer"):
        hyper[word] = hyper[word].lower() if hyper.get(word) else None
    if hyper.get("augment") is not None:
        hyper["augment"] = parse_augment(hyper["augment"])
    config = chosen.configure(**hyper, seed=seed, device=device.lower(), data_dir=str(data_dir), subset=subset,
                              val_subset=val_subset, eval_every=eval_every, target=target)
    seed_list = seed_plan(seed, repeat, seeds)
    config = config.resolve()
    tags = list(dict.fromkeys(tag or []))
    if dry_run:
        _print_dry_run(config, title, tags)
        if seed_list is not None and len(seed_list) > 1:
            shown = ", ".join(str(s) for s in seed_list if s is not None) or "random"
            console.print(f"  repeats  {len(seed_list)} (seeds: {shown})", markup=False, highlight=False)
        return

    template = RunRecord(source="train", status="running", title=title, hypothesis=hypothesis, analysis=notes,
                         tags=tags, command=command_line())
    try:
        train_runs(chosen, config, make_recorder(offline_start=spool), template, seeds=seed_list, group=group,
                   reporter=Reporter(console))
    except KeyboardInterrupt as exc:  # Ctrl-C is no error: the runs say how far they got; exit 130 as a shell does
        notify(str(exc) or "Interrupted.")
        raise typer.Exit(130) from None
