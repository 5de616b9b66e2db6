"""Run numbering: which number and label a new run gets, and which runs a typed reference names.

Pure policy, no SQL: the store asks the database what these rules need (the numbers already
taken, the next number never used, the runs carrying some labels), calls these functions, and
stores or returns what they decide. The rule of identity: a run is named by its label, and a
run without a label by its number; `#38` is database number 38 whatever its label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from speedrun.domain.records import RUN_NUMBER_MAX, RunRecord, run_number
from speedrun.errors import RunNotFound

# How many labels one query looks up (SQLite allows some hundreds of parameters per statement).
LABELS_PER_QUERY = 500


@dataclass(frozen=True)
class Stored:
    """What `add_runs` decided for one record (the record itself is left as it was)."""

    number: int | None  # the run's number here; None when skipped
    requested: int | None  # the number the record asked for
    label: str | None  # its label here: a clash may have given it the requested number as label
    existing: int | None = None  # skipped: the run already here with the same UUID

    @property
    def skipped(self) -> bool:
        return self.existing is not None

    @property
    def renumbered(self) -> bool:
        return self.requested is not None and self.number is not None and self.number != self.requested


def wanted_numbers(records: Sequence[RunRecord]) -> set[int]:
    """The numbers the records ask for: the store says which of them are taken (`decide`'s `taken`)."""
    wanted = {r.number for r in records if r.number is not None and not r.label}
    wanted |= {r.reported_id for r in records if r.reported_id is not None}
    return wanted


def decide(
    records: Sequence[RunRecord],
    *,
    taken: Iterable[int],
    next_free: int,
    label_clashes: bool,
    known: Mapping[str, int] | None = None,
) -> list[Stored]:
    """The number and label of each record, in order.

    `taken`: the `wanted_numbers` some stored run already has; `next_free`: the next automatic
    number (never one used before). `known`: UUID -> number of the runs already stored, when
    runs already here are skipped (merges; a UUID twice in `records` is stored once). A run keeps
    the number it asks for when that is free; otherwise it gets a new one, labelled with the
    requested number when `label_clashes` (as notebooks want).
    """
    claimed = set(taken)
    decisions: list[Stored | None] = [None] * len(records)
    first_copy: dict[int, int] = {}  # index of a UUID's second copy in this batch → index of its first
    if known is not None:
        seen: dict[str, int] = {}
        for i, record in enumerate(records):
            if record.uuid and record.uuid not in known:
                first_copy.update({i: seen[record.uuid]} if record.uuid in seen else {})
                seen.setdefault(record.uuid, i)
    known = known or {}
    for i, record in enumerate(records):
        if record.uuid in known or i in first_copy:
            decisions[i] = Stored(None, record.number, record.label, existing=known.get(record.uuid, 0))
    # A number a report gave the run first (its computed marker), then the number of its heading;
    # a run given its reported number keeps the heading's number as its label where they differ.
    for i, record in enumerate(records):
        if decisions[i] is None and record.reported_id is not None and record.reported_id not in claimed:
            claimed.add(record.reported_id)
            label = record.label or (str(record.number) if record.number not in (None, record.reported_id) else None)
            decisions[i] = Stored(record.reported_id, record.reported_id, label)
    for i, record in enumerate(records):
        if decisions[i] is None and record.number is not None and not record.label and record.number not in claimed:
            claimed.add(record.number)
            decisions[i] = Stored(record.number, record.number, None)
    # Runs without a number of their own follow every number asked for, in the order given.
    next_id = max([next_free, *(n + 1 for n in wanted_numbers(records))])
    for i, record in enumerate(records):
        if decisions[i] is not None:
            continue
        while next_id in claimed:
            next_id += 1
        claimed.add(next_id)
        clash = record.number is not None and not record.label and label_clashes
        decisions[i] = Stored(next_id, record.number, str(record.number) if clash else record.label)
    for i, first in first_copy.items():
        decisions[i] = Stored(None, records[i].number, records[i].label, existing=decisions[first].number)
    return decisions


# ------------------------------------------------------------------- references
@dataclass(frozen=True)
class Reference:
    """What a reference to a run asks for: a database number (`number`; None when it spells
    none), or else the run answering to `label`. `shown`: the reference as messages write it."""

    number: int | None
    label: str | None
    shown: str


def reference(ref: str | int) -> Reference:
    """An int is a database number (the program's own references). Text is what a user typed:
    `#38` is database number 38; anything else is a label, as the notebook and every output name
    runs (a run without a label is labelled by its number), so a bare `24` means the run the
    notebook calls Run 24 even when an import stored it under another number."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return Reference(ref if 0 < ref <= RUN_NUMBER_MAX else None, None, f"#{ref}")
    wanted = str(ref).strip()
    if wanted.startswith("#"):
        return Reference(run_number(wanted[1:]), None, wanted)
    return Reference(None, wanted, wanted)


def label_numbers(labels: Iterable[str]) -> list[int]:
    """The run numbers the labels spell: an unlabelled run answers to its number."""
    return [n for label in labels if (n := run_number(label)) is not None]


def answering(labelled: Iterable[tuple[int, str]], unlabelled: Iterable[int]) -> dict[str, list[int]]:
    """The runs each label names: `labelled` (run, label) carry it, `unlabelled` runs answer to their number."""
    found: dict[str, list[int]] = {}
    for run_id, label in labelled:
        found.setdefault(label, []).append(run_id)
    for run_id in unlabelled:
        found.setdefault(str(run_id), []).append(run_id)
    return {label: sorted(ids) for label, ids in found.items()}


def one_each(numbers: Sequence[int], named: Mapping[str, list[int]]) -> list[int]:
    """Run numbers as a user typed them in a range (`15-18`): each is the run labelled so
    (`named`, from `answering`); a number no run answers to is kept as it is (it selects
    nothing). One answer per number, in order; two runs answering to one is an error."""
    out = []
    for n in numbers:
        ids = named.get(str(n), [])
        if len(ids) > 1:
            raise RunNotFound(ambiguous_label(str(n), ids))
        out.append(ids[0] if ids else n)
    return out


def ambiguous_label(label: str, ids: Sequence[int]) -> str:
    """The error for a label several runs answer to: the candidates by database number."""
    return (f"Run {label} is ambiguous: runs {', '.join(f'#{i}' for i in ids)} answer to it; "
            f"name one by its database number (#{ids[0]})")
