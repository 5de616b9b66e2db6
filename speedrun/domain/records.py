"""Plain run records: what parsers and the trainer produce and the store consumes.

A `RunRecord` is free of database and CLI concerns, so the log and notebook
parsers, the trainer and `export`/`merge` all speak the same small language,
and each can be tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

def utcnow() -> datetime:
    """Now, as runs keep their times: naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


STATUSES = ("running", "completed", "interrupted", "failed", "died", "incomplete", "pruned")
# Run numbers fit a 32-bit INTEGER column on every backend (PostgreSQL's `integer`).
RUN_NUMBER_MAX = 2**31 - 1


def run_number(text: str) -> int | None:
    """The run number `text` spells (ASCII digits, 1 to RUN_NUMBER_MAX), else None. Only
    short texts are parsed: a 5,000-digit "number" is no run and no work (nor Python's
    limit on int conversions)."""
    text = text.strip()
    if not (0 < len(text) <= len(str(RUN_NUMBER_MAX)) and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= RUN_NUMBER_MAX else None


SOURCES = ("train", "log", "notebook")

EPOCH_FIELDS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "duration_s",
    "elapsed_s",
    "lr",
    "images_per_s",
)


@dataclass
class EpochRecord:
    """One epoch's metrics. Accuracies are percentages (88.27, not 0.8827)."""

    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    duration_s: float | None = None
    elapsed_s: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    # Anything else a recipe measures per epoch (e.g. "tta_val_acc", "eval_s").
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class RunRecord:
    """Everything known about one run, from any source."""

    source: str  # one of SOURCES
    status: str = "completed"  # one of STATUSES
    number: int | None = None  # the run number the user wrote ("Run 15"), if any
    label: str | None = None  # sub-run label such as "7a"
    title: str | None = None
    hypothesis: str | None = None
    description: str | None = None
    analysis: str | None = None
    tags: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # canonical names, typed values
    hardware: str | None = None  # free text, e.g. "Google Colab, T4 GPU"
    env: dict[str, Any] = field(default_factory=dict)  # detected environment (trainer)
    epochs: list[EpochRecord] = field(default_factory=list)
    # Summary numbers as the source states them; `summarize` fills the gaps.
    final_val_acc: float | None = None
    peak_val_acc: float | None = None
    peak_epoch: int | None = None
    train_time_s: float | None = None
    wall_time_s: float | None = None
    data_load_s: float | None = None
    param_count: int | None = None
    target_acc: float | None = None  # `train --target`: the accuracy aimed at
    target_time_s: float | None = None  # training seconds until it was first reached
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    edited_at: datetime | None = None  # when the user's texts or tags last changed (merge carries edits by it)
    merged_edit_at: datetime | None = None  # the edit its database last took in by a merge
    error: str | None = None
    command: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    source_file: str | None = None
    source_line: int | None = None  # 1-based line where this run starts in source_file
    content_hash: str | None = None
    uuid: str | None = None
    pid: int | None = None  # process id of a live training, for died detection
    group: str | None = None
    log_text: str | None = None  # the console log as printed/pasted, when there is one
    extra: dict[str, Any] = field(default_factory=dict)  # other summary facts
    warnings: list[str] = field(default_factory=list)
    # Notebook imports (speedrun.notebook.markdown):
    unparsed_config: str | None = None  # configuration text no rule understood; a difference like any parameter
    section_text: str | None = None  # the run's notebook section as written (computed blocks left out)
    preamble: str | None = None  # notebook text before this run that belongs to no run (its title, an introduction)
    position: float | None = None  # place in notebook order (see `notebook_order`)
    series: str | None = None  # name of the series (`## Run 7` above `### Run 7a`) the run belongs to
    reported_id: int | None = None  # the run number a report gave it (its computed marker), kept where free


@dataclass
class SeriesRecord:
    """A `## Run 7` section with sub-runs (`### Run 7a`, ...) below it.

    A parent with results of its own is also a run (`parent_label` names it);
    one without is only the series: a named group with the parent's texts.
    `closing_text` is what the notebook says after the last sub-run, about them all.
    """

    name: str
    title: str | None = None
    hypothesis: str | None = None
    description: str | None = None
    hardware: str | None = None
    analysis: str | None = None
    section_text: str | None = None  # the parent's section when the parent is no run
    closing_text: str | None = None
    preamble: str | None = None
    position: float | None = None
    parent_label: str | None = None
    uuid: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    members: list[RunRecord] = field(default_factory=list)


@dataclass
class RunUpdate:
    """A stored run (`run_id`) to take what `record` says, in place (a re-imported notebook).

    Epochs and hardware change only when the notebook's differ from what is stored:
    a trained run keeps its exact numbers and detected environment while the log and
    hardware line a report printed for it come back unchanged. `texts_only`: the run
    takes the record's title, texts, tags and place in the notebook, nothing else
    (a run a notebook did not create).
    """

    run_id: int
    record: RunRecord
    replace_epochs: bool = False
    replace_hardware: bool = False
    texts_only: bool = False


def notebook_order(runs: Sequence[Any]) -> list[Any]:
    """Runs (records, ORM rows or views) in notebook order: by `position`, then by number.

    The one order of the notebook: the report's sections, "the best earlier run",
    and anything else that speaks of runs before or after another.
    """
    return sorted(runs, key=notebook_order_key)


def notebook_order_key(run: Any) -> tuple[bool, float, int]:
    position = getattr(run, "position", None)
    number = getattr(run, "id", None)
    if number is None:
        number = getattr(run, "number", None) or 0
    return (position is None, position if position is not None else 0.0, number)


@dataclass(frozen=True)
class Summary:
    final_val_acc: float | None
    peak_val_acc: float | None
    peak_epoch: int | None
    train_time_s: float | None
    mean_epoch_s: float | None
    epochs_completed: int


# `extra` key of a run whose final accuracy is measured after the last epoch (test-time
# augmentation): its stated final accuracy wins over the last epoch's.
FINAL_MEASURED_AFTER_EPOCHS = "final_val_acc_from"


class RunningSummary:
    """The summary of a run's epochs, fed one epoch at a time in epoch order.

    The one home of the summary rules: `summarize` feeds it a whole list, and the
    store feeds it each epoch a training records, so recording the thousandth
    epoch costs what recording the first did.
    """

    __slots__ = ("count", "duration_sum", "duration_count", "last_elapsed", "final", "final_epoch", "peak",
                 "peak_epoch", "last_epoch")

    def __init__(self) -> None:
        self.count = 0
        self.duration_sum = 0.0
        self.duration_count = 0
        self.last_elapsed: float | None = None
        self.final: float | None = None  # val accuracy of the last epoch that has one
        self.final_epoch: int | None = None
        self.peak: float | None = None
        self.peak_epoch: int | None = None
        self.last_epoch: int | None = None

    @classmethod
    def of(cls, epochs: Sequence[Any]) -> RunningSummary:
        running = cls()
        for epoch in sorted(epochs, key=lambda e: e.epoch):
            running.add(epoch)
        return running

    def add(self, e: Any) -> None:
        """One more epoch, numbered at least as high as every epoch before it."""
        self.count += 1
        self.last_epoch = e.epoch
        if e.duration_s is not None:
            self.duration_sum += e.duration_s
            self.duration_count += 1
        if e.elapsed_s is not None:
            self.last_elapsed = e.elapsed_s
        if e.val_acc is not None:
            if self.final_epoch is None or e.epoch > self.final_epoch:
                self.final, self.final_epoch = e.val_acc, e.epoch
            # Earliest epoch wins a tie: that is when the peak was first reached.
            if self.peak is None or e.val_acc > self.peak or (e.val_acc == self.peak and e.epoch < self.peak_epoch):
                self.peak, self.peak_epoch = e.val_acc, e.epoch

    def summary(
        self,
        *,
        stated_final: float | None = None,
        stated_train_time: float | None = None,
        stated_peak: float | None = None,
        stated_peak_epoch: int | None = None,
        final_after_epochs: bool = False,
    ) -> Summary:
        """The summary numbers, with what the source states filling the gaps (see `summarize`)."""
        if self.final_epoch is not None:
            final, peak, peak_epoch = self.final, self.peak, self.peak_epoch
            if final_after_epochs and stated_final is not None:
                final = stated_final
                if final > peak:
                    peak, peak_epoch = final, self.final_epoch
        else:
            final, peak, peak_epoch = stated_final, stated_peak, stated_peak_epoch
            if peak is None and final is not None:
                peak = final
        train_time = stated_train_time
        if train_time is None:
            if self.last_elapsed is not None:
                train_time = self.last_elapsed
            elif self.duration_count and self.duration_count == self.count:
                train_time = self.duration_sum
        mean_epoch = self.duration_sum / self.duration_count if self.duration_count else None
        if mean_epoch is None and train_time is not None and self.count:
            mean_epoch = train_time / self.count
        return Summary(final, peak, peak_epoch, train_time, mean_epoch, self.count)


def summarize(
    epochs: list[EpochRecord] | list[Any],
    *,
    stated_final: float | None = None,
    stated_train_time: float | None = None,
    stated_peak: float | None = None,
    stated_peak_epoch: int | None = None,
    final_after_epochs: bool = False,
) -> Summary:
    """Summary numbers derived from the epochs, so they can never disagree.

    Works on EpochRecord or on ORM rows (anything with the same attributes).
    Final accuracy: the last epoch's, unless `final_after_epochs` says the stated
    one was measured after training (TTA); then it counts as the last epoch's result.
    Training time: the stated total (the log's `Finished Training` line), else
    the last elapsed time, else the sum of the epoch durations.
    """
    return RunningSummary.of(epochs).summary(
        stated_final=stated_final,
        stated_train_time=stated_train_time,
        stated_peak=stated_peak,
        stated_peak_epoch=stated_peak_epoch,
        final_after_epochs=final_after_epochs,
    )


def summarize_record(record: RunRecord) -> Summary:
    """`summarize` with everything a record states about itself."""
    return summarize(
        record.epochs,
        stated_final=record.final_val_acc,
        stated_train_time=record.train_time_s,
        stated_peak=record.peak_val_acc,
        stated_peak_epoch=record.peak_epoch,
        final_after_epochs=FINAL_MEASURED_AFTER_EPOCHS in record.extra,
    )


def times_to_targets(epochs: Sequence[Any], targets: Sequence[float]) -> dict[float, float | None]:
    """Training seconds until val accuracy first reached each target (percent), in one pass.

    Uses the elapsed time of that epoch, else the running sum of durations;
    None when a target was never reached or its time is unknown.
    """
    times: dict[float, float | None] = dict.fromkeys(targets)
    pending = sorted(targets)
    running = 0.0
    durations_known = True
    for e in sorted(epochs, key=lambda e: e.epoch):
        if e.duration_s is None:
            durations_known = False
        else:
            running += e.duration_s
        if e.val_acc is None:
            continue
        while pending and e.val_acc >= pending[0]:
            times[pending.pop(0)] = e.elapsed_s if e.elapsed_s is not None else (running if durations_known else None)
        if not pending:
            break
    return times


def time_to_target(epochs: Sequence[Any], target: float) -> float | None:
    """Training seconds until val accuracy first reached `target` (see `times_to_targets`)."""
    return times_to_targets(epochs, [target])[target]


def default_title(record: RunRecord) -> str:
    """A title in the user's style for a run recorded without one: "resnet18, bs 64, lr 0.04 (T4)".

    Importers, the trainer and merge give it to untitled runs before storing them.
    """
    from speedrun.domain.hardware import hardware_class

    params = record.params
    parts = [str(params.get("model", "run"))]
    if "batch_size" in params:
        parts.append(f"bs {params['batch_size']}")
    if "lr" in params:
        parts.append(f"lr {params['lr']}")
    if "epochs" in params:
        parts.append(f"{params['epochs']} epochs")
    if params.get("cosine") is True:
        parts.append("cosine")
    title = ", ".join(parts)
    described = record.hardware or record.env.get("hardware") or record.env.get("gpu_name") or record.env.get("cpu_model")
    if described is None and record.env.get("device_type") is None:
        return title
    hw_class = hardware_class(record.env.get("gpu_name") or described, record.env.get("device_type"))
    return f"{title} ({hw_class})" if hw_class and hw_class != "unknown" else title
