"""Moving runs between databases: `export` to JSON and `merge` from JSON or another runs.db.

A run's identity is its UUID, so merging the same file twice adds nothing, and
a Colab session's runs keep their numbers on the laptop unless a number is
already taken there (then they are renumbered, and the merge says so).
Everything a merge brings is checked first (`validation`): one bad value
refuses the merge, naming the run and the field, and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speedrun.errors import SpeedrunError
from speedrun.domain.records import RunRecord, SeriesRecord, default_title
from speedrun.tracking.rows import record_from_run
from speedrun.tracking.store import Store
from speedrun.tracking.validation import InvalidRun, run_from_json, series_from_json

FORMAT = "speedrun-export"
FORMAT_VERSION = 1
MAX_INPUT_BYTES = 1024**3  # an export or database to merge: 1 GiB


def record_to_json(record: RunRecord) -> dict[str, Any]:
    """The JSON form of a record, as `export` writes it (dates in ISO 8601)."""
    data = asdict(record)
    for key in ("created_at", "started_at", "finished_at", "edited_at", "merged_edit_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    data.pop("warnings", None)
    return data


def record_from_json(data: Any) -> RunRecord:
    """A record from its JSON form, checked value by value (`InvalidRun` names the field)."""
    return run_from_json(data)


# What a series carries between databases: its identity, name, texts and place (its runs name it).
SERIES_FIELDS = ("uuid", "name", "title", "hypothesis", "description", "hardware", "analysis", "section_text",
                 "closing_text", "preamble", "position", "source_file", "source_line")


def series_to_json(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SERIES_FIELDS}


def _series_of(store: Store, records: list[RunRecord]) -> list[Any]:
    """The stored series the records belong to (a series' parent heading is no run of its own)."""
    names = {r.series for r in records if r.series}
    return [row for row in store.list_series() if row.name in names] if names else []


def export_runs(store: Store, ids: list[int] | None = None, where: str | None = None) -> dict[str, Any]:
    runs = store.list_runs(ids=ids, where=where, with_epochs=True)
    records = []
    for run in runs:
        record = record_from_run(run)
        record.number = run.id
        records.append(record)
    return {"format": FORMAT, "version": FORMAT_VERSION, "runs": [record_to_json(r) for r in records],
            "series": [series_to_json(row) for row in _series_of(store, records)]}


def damaged_runs(store: Store, ids: list[int] | None = None, where: str | None = None) -> list[str]:
    """'run 3 (extra)' for each run whose stored values cannot all be read."""
    return [f"run {r.display_label} ({', '.join(r.damaged)})" for r in store.list_runs(ids=ids, where=where)
            if r.damaged]


@dataclass
class Loaded:
    """What a merge brings: runs, and the notebook series they belong to."""

    runs: list[RunRecord]
    series: list[SeriesRecord]


def load_records(path: str) -> Loaded:
    """Runs (and their series) from an export file (JSON), another speedrun database file, or a
    database URL; every value checked."""
    if "://" in path:
        return _records_from_store(Store.open(path, migrate=False))
    file = Path(path)
    if not file.is_file():
        raise SpeedrunError(f"{path}: no such file")
    if file.stat().st_size > MAX_INPUT_BYTES:
        raise SpeedrunError(f"{path}: larger than {MAX_INPUT_BYTES // 1024**2:,} MB; not an export this tool wrote")
    with open(file, "rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    return _records_from_database(file, path) if is_sqlite else _records_from_json(file, path)


def _records_from_json(file: Path, name: str) -> Loaded:
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise SpeedrunError(f"{name}: neither a speedrun database nor a JSON export (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SpeedrunError(f"{name}: neither a speedrun database nor a JSON export ({exc})") from None
    except RecursionError:
        raise SpeedrunError(f"{name}: not a speedrun export (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise SpeedrunError(f"{name}: not a speedrun export ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SpeedrunError(f"{name}: not a speedrun export (expected \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise SpeedrunError(f"{name}: export version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise SpeedrunError(
            f"{name}: export version {version} is newer than this speedrun reads ({FORMAT_VERSION}); upgrade speedrun"
        )
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise SpeedrunError(f"{name}: \"runs\" must be a list of runs")
    series = data.get("series", [])  # exports before series were carried have none
    if not isinstance(series, list):
        raise SpeedrunError(f"{name}: \"series\" must be a list of series")
    return Loaded([_checked(run, i, name) for i, run in enumerate(runs)],
                  [_checked_series(item, i, name) for i, item in enumerate(series)])


def _checked_series(data: Any, index: int, source: str) -> SeriesRecord:
    try:
        return series_from_json(data)
    except InvalidRun as exc:
        raise SpeedrunError(f"{source}: series #{index + 1} in the file: {exc}") from None


def _checked(data: Any, index: int, source: str) -> RunRecord:
    try:
        return record_from_json(data)
    except InvalidRun as exc:
        raise SpeedrunError(f"{source}: run {_name_of(data, index)}: {exc}") from None


def _name_of(data: Any, index: int) -> str:
    """How an error names a run of an input: its number or label when they are sane, else its position."""
    if isinstance(data, dict):
        for key in ("label", "number"):
            value = data.get(key)
            if (type(value) is int and 0 < value < 10**12) or (isinstance(value, str) and value.isalnum() and len(value) <= 20):
                return f"{value} (#{index + 1} in the file)" if key == "number" else f"{value}"
    return f"#{index + 1} in the file"


def _records_from_database(file: Path, name: str) -> Loaded:
    # A snapshot in memory: the other file may be older (upgraded there), in use, or read-only.
    return _records_from_store(Store.snapshot(file, label=name))


def _records_from_store(other: Store) -> Loaded:
    """Every run (and series) of another database, checked as a merge checks an export (the message names `other`)."""
    name = other.label
    try:
        records = []
        for index, run in enumerate(other.list_runs(with_epochs=True)):
            if run.damaged:
                raise SpeedrunError(f"{name}: run {run.display_label}: damaged stored value ({', '.join(run.damaged)})")
            record = record_from_run(run)
            record.number = run.id
            records.append(_checked(record_to_json(record), index, name))
        series = [_checked_series(series_to_json(row), i, name) for i, row in enumerate(_series_of(other, records))]
        return Loaded(records, series)
    finally:
        other.close()


@dataclass
class MergeResult:
    added: list[tuple[int, RunRecord]]
    skipped: int
    renumbered: list[tuple[int, int]]  # (number in the other database, number here)
    updated: list[int] = field(default_factory=list)  # runs here whose texts and tags took a later edit
    conflicts: list[int] = field(default_factory=list)  # runs edited on both sides since the last merge: kept


def merge_records(store: Store, loaded: Loaded) -> MergeResult:
    """Add the runs this database lacks (by UUID), with their series, in one transaction."""
    records = loaded.runs
    for record in records:
        record.title = record.title or default_title(record)
    stored = store.add_runs(records, force=True, label_clashes=False, skip_known=True, series=loaded.series)
    added = [(s.number, r) for s, r in zip(stored, records) if not s.skipped]
    renumbered = [(s.requested, s.number) for s in stored if s.renumbered]
    # Runs already here: their texts and tags take a later edit (epochs stay append-only).
    updated, conflicts = store.carry_edits([r for s, r in zip(stored, records) if s.skipped])
    return MergeResult(added, sum(s.skipped for s in stored), renumbered, updated, conflicts)
