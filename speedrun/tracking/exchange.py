"""Moving runs between databases: `export` to JSON and `merge` from JSON or another runs.db.

A run's identity is its UUID, so merging the same file twice adds nothing, and
a Colab session's runs keep their numbers on the laptop unless a number is
already taken there (then they are renumbered, and the merge says so).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from speedrun.errors import SpeedrunError
from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store, record_from_run, record_to_json

FORMAT = "speedrun-export"
FORMAT_VERSION = 1


def export_runs(store: Store, ids: list[int] | None = None) -> dict[str, Any]:
    runs = store.list_runs(ids=ids, with_epochs=True)
    records = []
    for run in runs:
        record = record_from_run(run)
        record.number = run.id
        records.append(record_to_json(record))
    return {"format": FORMAT, "version": FORMAT_VERSION, "runs": records}


def record_from_json(data: dict[str, Any]) -> RunRecord:
    known = {f.name for f in fields(RunRecord)}
    unknown = set(data) - known
    if unknown:
        raise SpeedrunError(f"unknown run fields in export: {', '.join(sorted(unknown))}")
    values = dict(data)
    values["epochs"] = [EpochRecord(**e) for e in data.get("epochs", [])]
    for key in ("created_at", "started_at", "finished_at"):
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    return RunRecord(**values)


def load_records(path: str) -> list[RunRecord]:
    """Runs from an export file (JSON) or from another speedrun database."""
    file = Path(path)
    if not file.is_file():
        raise SpeedrunError(f"{path}: no such file")
    with open(file, "rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    return _records_from_database(file) if is_sqlite else _records_from_json(file)


def _records_from_json(file: Path) -> list[RunRecord]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpeedrunError(f"{file}: neither a speedrun database nor a JSON export ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SpeedrunError(f"{file}: not a speedrun export (expected \"format\": \"{FORMAT}\")")
    try:
        return [record_from_json(r) for r in data["runs"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise SpeedrunError(f"{file}: malformed run in export ({exc})") from None


def _records_from_database(file: Path) -> list[RunRecord]:
    # Work on a snapshot: the other file may be older (it gets upgraded here) or in use.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "other.db"
        source = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        except sqlite3.DatabaseError as exc:
            raise SpeedrunError(f"{file}: cannot read database ({exc})") from None
        finally:
            source.close()
            target.close()
        other = Store.open(str(copy))
        try:
            records = []
            for run in other.list_runs(with_epochs=True):
                record = record_from_run(run)
                record.number = run.id
                records.append(record)
            return records
        finally:
            other.close()


@dataclass
class MergeResult:
    added: list[tuple[int, RunRecord]]
    skipped: int
    renumbered: list[tuple[int, int]]  # (number in the other database, number here)


def merge_records(store: Store, records: list[RunRecord]) -> MergeResult:
    """Add the runs this database lacks (by UUID), in one transaction."""
    known = store.runs_by_uuid(r.uuid for r in records if r.uuid)
    new = [r for r in records if not r.uuid or r.uuid not in known]
    wanted = [r.number for r in new]
    ids = store.add_runs(new, force=True, label_clashes=False)
    renumbered = [(want, got) for want, got in zip(wanted, ids) if want is not None and want != got]
    return MergeResult(list(zip(ids, new)), len(records) - len(new), renumbered)
