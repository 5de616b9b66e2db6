"""The fixed sets of values that options accept, as Enums so `--help` lists them and Typer checks them.

Each set is built from the one place that defines it (statuses in domain.records,
sort keys in tracking.orders), never spelled out again here. Those places are light
modules: `speedrun --help` builds these Enums, and must not import the database layer.
"""

from __future__ import annotations

from enum import Enum

from speedrun.sweep.space import SAMPLERS
from speedrun.domain.records import STATUSES
from speedrun.tracking.orders import SORTABLE_COLUMNS as SORTABLE


def _choices(name: str, values) -> type[Enum]:
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Status = _choices("Status", STATUSES)
SortKey = _choices("SortKey", sorted(SORTABLE))
ReportFormat = _choices("ReportFormat", ("md", "html"))
CompareFormat = _choices("CompareFormat", ("table", "md"))
Align = _choices("Align", ("epoch", "time"))
Sampler = _choices("Sampler", SAMPLERS)


def chosen(choice: Enum | None) -> str | None:
    """The plain string of a choice (None stays None)."""
    return None if choice is None else choice.value
