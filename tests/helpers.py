"""Test helpers that production code has no use for: an in-memory Recorder, a one-run insert, FLOPs by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.training.flops import FlopCount, count_flops


@dataclass
class MemoryRun:
    record: RunRecord
    epochs: list[EpochRecord] = field(default_factory=list)
    heartbeats: int = 0
    status: str | None = None
    finish_args: dict[str, Any] = field(default_factory=dict)


class MemoryRecorder:
    """A Recorder (speedrun.training.recording) that keeps its runs in memory; `run`, `epochs`, ... are the
    last run's."""

    def __init__(self, label: str = "memory"):
        self.label = label
        self.runs: list[MemoryRun] = []

    def begin_run(self, record: RunRecord) -> int:
        self.runs.append(MemoryRun(record, status=record.status))
        return len(self.runs)

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        self.runs[run_id - 1].epochs.append(epoch)

    def heartbeat(self, run_id: int) -> None:
        self.runs[run_id - 1].heartbeats += 1

    def finish_run(self, run_id: int, status: str, **kwargs: Any) -> None:
        self.runs[run_id - 1].status, self.runs[run_id - 1].finish_args = status, kwargs

    @property
    def run(self) -> RunRecord | None:
        return self.runs[-1].record if self.runs else None

    @property
    def epochs(self) -> list[EpochRecord]:
        return self.runs[-1].epochs if self.runs else []

    @property
    def heartbeats(self) -> int:
        return self.runs[-1].heartbeats if self.runs else 0

    @property
    def status(self) -> str | None:
        return self.runs[-1].status if self.runs else None

    @property
    def finish_args(self) -> dict[str, Any]:
        return self.runs[-1].finish_args if self.runs else {}


def add_run(store: Any, record: RunRecord) -> int:
    """Record one finished run (as an import does) and return its number."""
    return store.add_runs([record])[0].number


def model_flops(name: str, *, bn: bool = True) -> FlopCount:
    """FLOPs per image of one of the networks `speedrun train` builds, by name (no TTA)."""
    from speedrun.training.nets import build_model

    return count_flops(build_model(name, bn=bn), (name, bn))
