"""What `import-log`'s flags may add to a parsed log, and when they contradict it.

Reading the input lives in speedrun.notebook.inputs, parsing in speedrun.notebook,
storing in speedrun.tracking.store. This module holds the rules in between: what
a flag on the command line may add to a parsed run, when it contradicts what the
log says, and the content hash that tells a log imported before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from speedrun.errors import ParseError
from speedrun.domain.hardware import hardware_class
from speedrun.domain.records import RunRecord


@dataclass
class Overrides:
    """Values given on the command line for what a log lacks."""

    title: str | None = None
    hardware: str | None = None
    hypothesis: str | None = None
    description: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))
    return str(a).strip().lower() == str(b).strip().lower()


def apply_overrides(record: RunRecord, overrides: Overrides) -> None:
    """Fill what the record lacks from the flags; a flag that contradicts it is an error."""
    for name, value in overrides.params.items():
        if name in record.params and not _same(record.params[name], value):
            raise ParseError(
                f"--param {name}={value} contradicts the log's {name}={record.params[name]}",
                source=record.source_file,
                line=record.source_line,
            )
        record.params.setdefault(name, value)
    if overrides.hardware:
        device = record.env.get("device_type")
        flag_class = hardware_class(overrides.hardware)
        if device and flag_class not in ("unknown", "GPU") and _device_of(flag_class) != device:
            raise ParseError(
                f"--hardware {overrides.hardware!r} contradicts the log's 'Using device: {device}'",
                source=record.source_file,
                line=record.source_line,
            )
        record.hardware = overrides.hardware
    for attr, value in (
        ("title", overrides.title),
        ("hypothesis", overrides.hypothesis),
        ("description", overrides.description),
        ("analysis", overrides.notes),
    ):
        if value is not None:
            setattr(record, attr, value)
    record.tags = list(dict.fromkeys([*record.tags, *overrides.tags]))


def _device_of(hw_class: str) -> str:
    return {"CPU": "cpu", "MPS": "mps"}.get(hw_class, "cuda")


def fill_content_hash(record: RunRecord) -> None:
    """Records that the parser did not hash get a hash of their content (re-import detection)."""
    if record.content_hash:
        return
    content = {
        "title": record.title,
        "label": record.label,
        "number": record.number,
        "params": record.params,
        "epochs": [(e.epoch, e.val_acc, e.train_loss) for e in record.epochs],
        "final": record.final_val_acc,
        "analysis": record.analysis,
    }
    record.content_hash = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
