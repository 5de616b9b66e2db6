"""Recording a training run: everything around the training, so the loops hold the training only.

A loop opens `recording(...)` once its data and model are ready. The
`Recording` it gets prints the user's log lines (they read back with
`import-log`), writes the run's row before the first step, records each epoch
as it ends, sends heartbeats, times the timed span, notes when the target
accuracy was first reached, and on the way out records how the run ended:
`completed`, `interrupted` (Ctrl-C) or `failed` (with the error's text),
before the exception travels on.

Where the records go is a `Recorder`: `speedrun.tracking.store.Store`
implements the protocol itself; `speedrun.tracking.spool.SpooledRecorder` wraps
one so that the timed span never waits for the database.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from speedrun.domain.efficiency import Efficiency, Peak, at_rate, fmt_efficiency, measured_cpu_peak, precision_of, \
    published_peak
from speedrun.errors import SpeedrunError
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.domain.records import EpochRecord, RunRecord, default_title, utcnow
from speedrun.training.config import TrainConfig
from speedrun.tracking.environment import cpu_model
from speedrun.training.device import Stopwatch, synchronize
from speedrun.training.flops import FlopCount

HEARTBEAT_S = 10.0  # a running run says it is alive at least this often
REFRESH_S = 0.5  # the progress bar redraws at most this often


class Recorder(Protocol):
    """Where a run's records go, each call committed at once (a crash loses nothing)."""

    label: str  # where that is, for messages ("runs.db")

    def begin_run(self, record: RunRecord) -> int: ...

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None: ...

    # Called from inside the timed span: a recorder that writes to a database must not wait for it
    # here (tracking.spool.SpooledRecorder hands it to a thread, or skips it).
    def heartbeat(self, run_id: int) -> None: ...

    def finish_run(self, run_id: int, status: str, *, error: str | None = None,
                   train_time_s: float | None = None, wall_time_s: float | None = None,
                   final_val_acc: float | None = None, final_from: str | None = None,
                   target_time_s: float | None = None, extra: dict[str, Any] | None = None) -> None: ...


class Reporter:
    """Prints log lines through one Console; on a terminal, a transient progress bar per epoch."""

    def __init__(self, console: Console | None = None, progress: bool | None = None):
        self.console = console or Console()
        self.progress = self.console.is_terminal if progress is None else progress

    def line(self, text: str) -> None:
        # soft_wrap: a long Config line must stay one line to read back.
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def epoch(self, epoch: int, epochs: int, batches: int) -> Iterator[Callable[[int], None]]:
        """Yields `advance(images)`, to be called after each batch.

        The bar is started and cleared outside the timed span (enter this before
        the stopwatch), it has no refresh thread competing with the training
        for the interpreter, and a batch costs a clock read: it is drawn at
        most every REFRESH_S.
        """
        if not self.progress:
            yield lambda images: None
            return
        columns = (TextColumn("Epoch {task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True, auto_refresh=False) as bar:
            task = bar.add_task("train", total=batches, label=f"{epoch}/{epochs}", rate="-")
            start = drawn = time.perf_counter()
            seen = done = 0

            def advance(images: int) -> None:
                nonlocal seen, done, drawn
                seen, done = seen + images, done + 1
                now = time.perf_counter()
                if now - drawn >= REFRESH_S:
                    rate = seen / max(now - start, 1e-9)  # unsynchronized: a display estimate
                    bar.update(task, completed=done, rate=f"{rate:,.0f}", refresh=True)
                    drawn = now

            yield advance


@dataclass
class TrainResult:
    run_id: int | None
    status: str
    epochs: list[EpochRecord]
    param_count: int
    data_load_s: float
    train_time_s: float
    eval_time_s: float
    wall_time_s: float
    target_time_s: float | None = None
    measured_final_val_acc: float | None = None  # measured after the last epoch (TTA), when it was

    @property
    def final_val_acc(self) -> float | None:
        if self.measured_final_val_acc is not None:
            return self.measured_final_val_acc
        return self.epochs[-1].val_acc if self.epochs else None


class TrainingFailed(SpeedrunError):
    """Training stopped on an error of the environment (out of memory, a CUDA or I/O error); the run is recorded."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after it was recorded as interrupted; the message says where."""


class RunStopped(Exception):
    """Raised by a Recorder (or a loop's caller) to end a run early with a status of its own:
    a sweep's hopeless trial is `pruned`. The run is recorded with `status` and `reason`."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Setup:
    """What the log's header and the run's row say about how the run was set up."""

    device: torch.device
    param_count: int
    data_load_s: float
    started: float  # time.perf_counter() when the run began (wall time counts from here)
    warmup_s: float = 0.0
    config_keys: tuple[str, ...] = ()  # more keys on the Config line (canonical names)
    log_epochs: int | None = None  # EPOCHS on the Config line, when the epoch lines count differently
    notes: tuple[str, ...] = ()  # lines after the header
    flops: FlopCount | None = None  # FLOPs per trained and per evaluated image (training.flops)


def device_peak(device: torch.device, threads: int | None) -> Peak | None:
    """The peak a run on `device` is measured against: a CPU's measured matmul peak (a second's
    probe, cached per machine), a GPU's published one (None for a GPU the table does not know)."""
    if device.type == "cpu":
        return measured_cpu_peak(cpu_model(), threads or torch.get_num_threads())
    if device.type == "cuda":
        return published_peak(torch.cuda.get_device_name(device))
    return None


class Recording:
    """One run being recorded. Made by `recording()`; the loop reports to it."""

    def __init__(self, recorder: Recorder, config: TrainConfig, setup: Setup, record: RunRecord | None,
                 reporter: Reporter):
        self.recorder, self.config, self.setup, self.reporter = recorder, config, setup, reporter
        self.watch = Stopwatch(setup.device)
        self.epochs: list[EpochRecord] = []
        self.eval_time_s = 0.0
        self.target_time_s: float | None = None
        self.final_val_acc: float | None = None
        self.final_from: str | None = None
        self.extra: dict[str, Any] = {}  # more figures for the run's `extra`
        self.peak = device_peak(setup.device, config.threads)
        self._peak_refreshed = False
        self.precision = precision_of(config.amp, tf32=bool(config.tf32))
        self.result: TrainResult | None = None  # set when the run completed
        self._last_beat = time.monotonic()
        self.run_id = self._begin(record or RunRecord(source="train"))

    def _begin(self, record: RunRecord) -> int:
        config, setup = self.config, self.setup
        params = config.to_params()
        shown = {**params, "epochs": setup.log_epochs} if setup.log_epochs is not None else params
        for text in header_lines(str(setup.device), setup.param_count, shown, setup.data_load_s,
                                 amp=bool(config.amp), seed=config.seed, extra_config_keys=setup.config_keys):
            self.line(text)
        for text in setup.notes:
            self.line(text)
        if setup.warmup_s:
            self.line(f"Warm-up (compile/cudnn, not timed): {setup.warmup_s:.2f} seconds")
        record.source, record.status = "train", "running"
        record.params, record.param_count, record.data_load_s = params, setup.param_count, setup.data_load_s
        record.target_acc = config.target
        # What its MFU is measured with (against the peak of the precision its `amp` says), kept
        # from the start so that a run that dies still shows it.
        record.extra = dict(record.extra)
        record.extra["machine"] = config.machine()  # threads and autocast dtype: facts of the machine, not params
        if self.peak is not None:
            record.extra["peak"] = asdict(self.peak)
        if setup.flops is not None:
            record.extra["flops"] = asdict(setup.flops)
        record.pid = os.getpid()
        record.started_at = utcnow()
        record.title = record.title or default_title(record)
        return self.recorder.begin_run(record)

    # ------------------------------------------------------------------ what the loop calls
    def line(self, text: str) -> None:
        self.reporter.line(text)

    @property
    def train_time_s(self) -> float:
        """The timed span so far (the loop's training; the fast loop's speedrun time)."""
        return self.watch.total

    @property
    def wall_time_s(self) -> float:
        return time.perf_counter() - self.setup.started

    def timed(self) -> contextlib.AbstractContextManager:
        """A section of the timed span (synchronized; CUDA events on a GPU)."""
        return self.watch.section()

    @contextlib.contextmanager
    def training(self, epoch: int, epochs: int, batches: int) -> Iterator[Callable[[int], None]]:
        """A timed epoch; yields `after_batch(images)`: progress and heartbeats (the bar outside the clock)."""
        with self.reporter.epoch(epoch, epochs, batches) as advance, self.watch.section():
            def after_batch(images: int) -> None:
                advance(images)
                if time.monotonic() - self._last_beat >= HEARTBEAT_S:
                    self.recorder.heartbeat(self.run_id)
                    self._last_beat = time.monotonic()
            yield after_batch

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """An evaluation outside the timed span; its time is recorded separately."""
        start = time.perf_counter()
        yield
        synchronize(self.setup.device)
        self.eval_time_s += time.perf_counter() - start

    def epoch(self, epoch: int, epochs: int, *, train_loss: float, train_acc: float, val_loss: float | None,
              val_acc: float | None, lr: float, images: int) -> EpochRecord:
        """An epoch ended: its log line, its row (committed now), and the target's first crossing.
        `val_acc` is None for an epoch `--eval-every` skips."""
        duration, elapsed = self.watch.last, self.watch.total
        if (self.config.target is not None and self.target_time_s is None and val_acc is not None
                and val_acc >= self.config.target):
            self.target_time_s = elapsed
        row = EpochRecord(epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                          duration_s=duration, elapsed_s=elapsed, lr=lr, images_per_s=images / duration)
        if (rate := self._efficiency(row.images_per_s)) is not None:
            row.extra["tflops"] = rate.tflops
            if rate.mfu is not None:
                row.extra["mfu"] = rate.mfu
        self.epochs.append(row)
        self.extra["train_images"] = max(images, self.extra.get("train_images", 0))  # a full epoch's images
        self.line(epoch_line(epoch, epochs, train_loss, val_acc, duration, elapsed))
        self.recorder.add_epoch(self.run_id, row)
        self._last_beat = time.monotonic()
        return row

    def _efficiency(self, images_per_s: float | None) -> Efficiency | None:
        if self.setup.flops is None or not images_per_s:
            return None
        rate = at_rate(images_per_s, self.setup.flops.train, peak=self.peak, precision=self.precision)
        if rate.mfu is not None and rate.mfu > 1 and self.setup.device.type == "cpu" and not self._peak_refreshed:
            # Beating the peak means the cached probe ran while the machine was busy: probe again (the
            # higher figure is kept) and judge this run, and record its peak, against that.
            self._peak_refreshed = True
            self.peak = measured_cpu_peak(cpu_model(), self.config.threads or torch.get_num_threads(), refresh=True)
            self.extra["peak"] = asdict(self.peak)
            rate = at_rate(images_per_s, self.setup.flops.train, peak=self.peak, precision=self.precision)
        return rate

    def summary(self, final_val_acc: float | None = None, final_from: str | None = None) -> None:
        """The log's closing lines: time and final accuracy, the target (measured without TTA), and
        the training epochs' throughput against the device's peak."""
        self.final_val_acc, self.final_from = final_val_acc, final_from
        for text in footer_lines(self.train_time_s, self.final_accuracy):
            self.line(text)
        seconds = sum(e.duration_s or 0.0 for e in self.epochs)
        images = sum((e.images_per_s or 0.0) * (e.duration_s or 0.0) for e in self.epochs)
        if (rate := self._efficiency(images / seconds if seconds else None)) is not None:
            self.line(f"Throughput of the training epochs: {fmt_efficiency(rate)}")
        if self.config.target is not None:
            when = f"after {self.target_time_s:.1f}s of training" if self.target_time_s is not None else "not reached"
            measured = " (without TTA)" if final_from == "tta" else ""
            self.line(f"Target {self.config.target:.2f}%{measured}: {when}")

    @property
    def final_accuracy(self) -> float | None:
        """The run's final accuracy: measured after training (TTA) when it was, else the last epoch's."""
        if self.final_val_acc is not None:
            return self.final_val_acc
        return self.epochs[-1].val_acc if self.epochs else None

    # ------------------------------------------------------------------ how it ends
    def end(self, status: str, error: str | None = None) -> TrainResult:
        wall_time = self.wall_time_s
        self.recorder.finish_run(
            self.run_id, status, error=error, train_time_s=self.train_time_s, wall_time_s=wall_time,
            final_val_acc=self.final_val_acc, final_from=self.final_from,
            target_time_s=self.target_time_s if self.config.target is not None else None,
            extra={"eval_time_s": self.eval_time_s, "warmup_s": self.setup.warmup_s, **self.extra})
        return TrainResult(self.run_id, status, self.epochs, self.setup.param_count, self.setup.data_load_s,
                           self.train_time_s, self.eval_time_s, wall_time, self.target_time_s,
                           measured_final_val_acc=self.final_val_acc)


def recorded_line(recorder: Recorder, run_id: int) -> str:
    """'Run 5 recorded in runs.db', or what a recorder that keeps records locally (the spool) says
    is still on its way: one account of where the run is, agreeing with `list`."""
    describe = getattr(recorder, "recorded", None)
    return describe(run_id) if callable(describe) else f"Run {run_id} recorded in {recorder.label}"


# Errors of the environment a training run meets (torch raises RuntimeError for out-of-memory and CUDA
# errors): the user's to act on. Anything else is a bug, recorded as failed and reported as one.
ENVIRONMENT_ERRORS = (RuntimeError, OSError, MemoryError)


@contextlib.contextmanager
def recording(recorder: Recorder, config: TrainConfig, setup: Setup, *, record: RunRecord | None = None,
              reporter: Reporter | None = None) -> Iterator[Recording]:
    """Begin the run (header printed, row written), yield its Recording, and record how it ended.

    Completed: `recording.result` holds the TrainResult. Ctrl-C becomes a
    RunInterrupted and an environment error a TrainingFailed, each saying
    where the run was recorded; a RunStopped is recorded with its own status
    (`pruned`); it, a SpeedrunError or a bug travels on as it is.
    """
    run = Recording(recorder, config, setup, record, reporter or Reporter())
    where = f"run {run.run_id} recorded as {{}} in {recorder.label}"
    try:
        yield run
    except KeyboardInterrupt:
        run.end("interrupted")
        raise RunInterrupted(f"Interrupted; {where.format('interrupted')}.") from None
    except RunStopped as exc:
        run.end(exc.status, error=exc.reason)
        raise
    except ENVIRONMENT_ERRORS as exc:
        run.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise TrainingFailed(f"training failed: {type(exc).__name__}: {exc} ({where.format('failed')})") from exc
    except Exception as exc:
        run.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run.result = run.end("completed")
