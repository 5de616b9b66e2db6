"""`speedrun train`: train one configuration and record it, epoch by epoch, in the database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from speedrun.cli.app import app, console, err_console, fail, open_store, state
from speedrun.errors import SpeedrunError
from speedrun.records import EpochRecord, RunRecord


class StoreRecorder:
    """The loop's Recorder, writing to the Store: each call commits, so a crash loses nothing."""

    def __init__(self, store, location: str):
        self.store, self.location = store, location
        self.run_id: int | None = None

    def begin(self, record: RunRecord) -> int:
        self.run_id = self.store.begin_run(record)
        return self.run_id

    def epoch(self, record: EpochRecord) -> None:
        self.store.add_epoch(self.run_id, record)

    def heartbeat(self) -> None:
        self.store.heartbeat(self.run_id)

    def finish(self, status: str, **kwargs: Any) -> None:
        self.store.finish_run(self.run_id, status, **kwargs)


def make_recorder():
    """The recorder for `--db`; opened before training so a database problem stops the run at once."""
    return StoreRecorder(open_store(), state.db)


def _print_dry_run(config, title: str | None, tags: list[str]) -> None:
    from speedrun.logformat import config_line
    from speedrun.training.loop import EXTRA_CONFIG_KEYS

    console.print("Dry run: nothing will be trained or recorded.", markup=False, highlight=False)
    rows = {"device": config.device, **config.to_params(), "data_dir": config.data_dir}
    if config.target is not None:
        rows["target"] = config.target
    if title:
        rows["title"] = title
    if tags:
        rows["tags"] = ", ".join(tags)
    width = max(map(len, rows))
    for key, value in rows.items():
        console.print(f"  {key:<{width}}  {value}", markup=False, highlight=False, soft_wrap=True)
    console.print(config_line(config.to_params(), EXTRA_CONFIG_KEYS), markup=False, highlight=False, soft_wrap=True)


@app.command("train")
def train_command(
    model: str = typer.Option("resnet18", "--model", help="Network: resnet18 (the user's, 11,173,962 parameters) or resnet9 (Page's DAWNBench net)."),
    batch_size: int = typer.Option(64, "--batch-size", "--bs", help="Training batch size."),
    lr: float = typer.Option(0.04, "--lr", help="Peak learning rate."),
    epochs: int = typer.Option(10, "--epochs", help="Number of epochs."),
    momentum: float = typer.Option(0.9, "--momentum", help="SGD momentum."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", "--wd", help="Weight decay (L2 for sgd/adam, decoupled for adamw)."),
    nesterov: bool = typer.Option(False, "--nesterov", help="Nesterov momentum (sgd only)."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="Optimizer: sgd, adam or adamw."),
    cosine: bool = typer.Option(True, "--cosine/--no-cosine", help="Cosine learning-rate decay to zero, stepped per epoch."),
    warmup: int = typer.Option(0, "--warmup", metavar="EPOCHS", help="Epochs of linear learning-rate warm-up before the decay."),
    bn: bool = typer.Option(True, "--bn/--no-bn", help="BatchNorm after every convolution."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="Mixed precision: fp16 on CUDA, bf16 on CPU. [default: on for CUDA and CPUs with native bf16]", show_default=False),
    compile_model: bool = typer.Option(False, "--compile", help="Compile the model with torch.compile (slow start, faster steps)."),
    aug: str = typer.Option("crop,flip", "--aug", help="Augmentations, comma-separated from crop, flip, cutout, jitter; or none."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed. [default: a random one, recorded]", show_default=False),
    device: str = typer.Option("auto", "--device", help="Device: auto, cuda, mps or cpu."),
    data_dir: Path = typer.Option(Path("./data"), "--data-dir", help="Folder holding cifar-10-batches-py (downloaded there when missing)."),
    subset: Optional[int] = typer.Option(None, "--subset", metavar="N", help="Train on the first N training images only (quick trials)."),
    target: Optional[float] = typer.Option(None, "--target", metavar="ACC", help="Record the training time at which val accuracy first reached ACC percent."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the run."),
    hypothesis: Optional[str] = typer.Option(None, "--hypothesis", help="What the run is expected to show."),
    notes: Optional[str] = typer.Option(None, "--notes", help="Notes, kept as the run's analysis."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", metavar="TAG", help="A tag for the run; repeat for more."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve and print the configuration; train nothing, record nothing."),
) -> None:
    """Train CIFAR-10 and record the run, epoch by epoch, in the database."""
    from speedrun.training.augment import parse_augment
    from speedrun.training.config import TrainConfig

    try:
        augment = parse_augment(aug)
    except ValueError as exc:
        fail(f"--aug: {exc}")
    config = TrainConfig(model=model, batch_size=batch_size, lr=lr, epochs=epochs, momentum=momentum,
                         weight_decay=weight_decay, nesterov=nesterov, optimizer=optimizer.lower(), cosine=cosine,
                         warmup=warmup, bn=bn, amp=amp, compile=compile_model, augment=augment, seed=seed,
                         device=device.lower(), data_dir=str(data_dir), subset=subset, target=target)
    try:
        config = config.resolve()
    except SpeedrunError as exc:
        fail(str(exc))
    tags = list(dict.fromkeys(tag or []))
    if dry_run:
        _print_dry_run(config, title, tags)
        return
    _train_and_record(config, RunRecord(source="train", status="running", title=title, hypothesis=hypothesis,
                                        analysis=notes, tags=tags))


def _train_and_record(config, record: RunRecord) -> None:
    from speedrun.environment import detect_environment, git_info
    from speedrun.training.loop import Reporter, train

    record.env = detect_environment(config.device)
    record.command = " ".join(sys.argv)
    record.git_commit, record.git_dirty = git_info(Path.cwd())
    recorder = make_recorder()
    try:
        result = train(config, recorder, record=record, reporter=Reporter(console))
    except KeyboardInterrupt:
        where = f"; run {recorder.run_id} recorded as interrupted in {recorder.location}" if recorder.run_id else ""
        err_console.print(f"Interrupted{where}.", markup=False, highlight=False)
        raise typer.Exit(130)
    except SpeedrunError as exc:
        fail(str(exc))
    except Exception as exc:
        where = f" (run {recorder.run_id} recorded as failed in {recorder.location})" if recorder.run_id else ""
        fail(f"training failed: {type(exc).__name__}: {exc}{where}")
    console.print(f"Run {result.run_id} recorded in {recorder.location}", markup=False, highlight=False, soft_wrap=True)
