"""What importing a notebook changes: each section matched to the run it is, or a new one.

`speedrun import-md` is an update, not an append. A section is the run whose
identity its computed marker carries (a report wrote it); a hand-written
section is the stored run with the same text, else the one with the same label
from the same file. A matched run whose section reads the same is left alone;
one whose section changed takes what it now says, in place. Everything else is
added. The notebook's order becomes the order of its runs, around runs that the
file does not hold. Importing the same file twice changes nothing.

A notebook creates and rewrites imported runs only (from a log or a notebook).
A run recorded by training (also one merged from another database) takes its
title, texts and tags from its section and nothing else: other differences
(epochs, parameters, hardware, series) are reported, not written. A marker is
believed only when its run number and UUID name the same stored run and the
section's heading shows that run's label; otherwise the section is hand-written.

Pure: the store is read before (`StoredRuns`) and written after (`Store.apply_notebook`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from speedrun.notebook.markdown import NotebookParse, comparable_text
from speedrun.domain.records import RunRecord, RunUpdate, SeriesRecord, notebook_order_key, summarize_record

# The runs a notebook may rewrite: those that came from the user's own files in the first place.
IMPORTED_SOURCES = frozenset({"log", "notebook"})

# What the report prints of each epoch, and so what a re-imported log can say about it.
_PRINTED = {
    "val_acc": 0.005,
    "train_acc": 0.005,
    "train_loss": 0.00005,
    "val_loss": 0.00005,
    "duration_s": 0.005,
    "elapsed_s": 0.05,
}


@dataclass
class StoredRuns:
    """What the database holds, as far as matching needs it."""

    runs: Sequence[Any]  # RunViews, epochs not loaded
    series: Sequence[Any]  # Series rows
    section_of: Callable[[Any], str]  # the section a report prints for a run (with epochs), computed block left out
    hardware_of: Callable[[Any], str | None]  # the hardware line a report prints for a run
    full_runs: Callable[[list[int]], dict[int, Any]]  # some runs again, epochs loaded


@dataclass
class ImportPlan:
    add: list[RunRecord] = field(default_factory=list)
    update: list[RunUpdate] = field(default_factory=list)
    unchanged: list[tuple[int, RunRecord]] = field(default_factory=list)
    series: list[tuple[int | None, SeriesRecord]] = field(default_factory=list)
    new_series: int = 0
    positions: dict[int, float] = field(default_factory=dict)  # existing runs moved in notebook order
    series_positions: dict[int, float] = field(default_factory=dict)
    not_in_file: int = 0  # stored runs the file does not hold: left alone
    warnings: list[str] = field(default_factory=list)  # what the import did not do, and why

    def summary(self, source: str) -> str:
        """The one line an import prints."""
        text = f"{source}: {len(self.add)} added, {len(self.update)} updated, {len(self.unchanged)} unchanged"
        if self.new_series:
            text += f"; {self.new_series} new series"
        if self.not_in_file:
            text += f" ({self.not_in_file} other runs in the database left alone)"
        return text + "."


def plan_import(parsed: NotebookParse, stored: StoredRuns, *, force: bool = False) -> ImportPlan:
    """Decide, section by section, what an import of `parsed` adds, updates and leaves alone."""
    plan = ImportPlan()
    matches = {} if force else _match(parsed.runs, stored.runs, plan.warnings)
    # A run written from its fields (it has no section of its own) is compared with what the
    # report prints for it, log and all: load those with their epochs.
    written = [view.id for view in matches.values() if view.section_text is None]
    full = stored.full_runs(written) if written else {}
    known_uuids = {v.uuid for v in stored.runs}
    changed: list[tuple[RunRecord, Any]] = []
    recorded: list[tuple[RunRecord, Any]] = []  # sections of runs a notebook may not rewrite
    for record in parsed.runs:
        view = matches.get(id(record))
        if view is None:
            if record.uuid in known_uuids:
                record.uuid = None  # a copy of a stored run's section is a new run
            plan.add.append(record)
            continue
        view = full.get(view.id, view)
        matches[id(record)] = view
        if _reads_the_same(record, view, stored):
            plan.unchanged.append((view.id, record))
        elif view.source not in IMPORTED_SOURCES:
            recorded.append((record, view))
        else:
            changed.append((record, view))
    missing = [view.id for _, view in changed + recorded if view.id not in full]
    full.update(stored.full_runs(missing) if missing else {})
    for record, view in changed:
        plan.update.append(_update(record, view, full[view.id].epochs, stored))
    for record, view in recorded:
        _plan_recorded(record, full[view.id], stored, plan)
    _plan_series(parsed.series, stored.series, plan, force, matches)
    _plan_positions(parsed, stored, matches, plan)
    seen = {view.id for view in matches.values()}
    plan.not_in_file = sum(1 for view in stored.runs if view.id not in seen)
    return plan


# --------------------------------------------------------------------------- matching


def _match(records: Sequence[RunRecord], views: Sequence[Any], warnings: list[str]) -> dict[int, Any]:
    """Record (by id()) → the stored run it is: by identity, then same text, then same label and file."""
    by_uuid = {view.uuid: view for view in views}
    ordered = sorted(views, key=notebook_order_key)
    taken: set[int] = set()
    matches: dict[int, Any] = {}

    def claim(record: RunRecord, view: Any) -> None:
        taken.add(view.id)
        matches[id(record)] = view

    for record in records:
        view = by_uuid.get(record.uuid) if record.uuid else None
        if view is not None and not _marker_agrees(record, view):
            warnings.append(
                f"{_where(record)}: run {_label(record)}: its speedrun marker names run {view.display_label}, not this "
                f"section (its run number, UUID and heading disagree); read as a hand-written section"
            )
            record.uuid = record.reported_id = None
            continue
        if view is not None and view.id not in taken:
            claim(record, view)
    by_hash: dict[str, list[Any]] = {}
    for view in ordered:
        if view.content_hash and view.source == "notebook":
            by_hash.setdefault(view.content_hash, []).append(view)
    rest = [r for r in records if id(r) not in matches]
    for record in rest:
        view = next((v for v in by_hash.get(record.content_hash or "", []) if v.id not in taken), None)
        if view is not None:
            claim(record, view)
    by_label: dict[tuple[str | None, str], list[Any]] = {}
    for view in ordered:
        if view.source == "notebook" and view.section_text is not None:
            by_label.setdefault((view.source_file, view.display_label), []).append(view)
    for record in rest:
        if id(record) in matches or record.uuid:
            continue
        label = record.label or str(record.number)
        view = next((v for v in by_label.get((record.source_file, label), []) if v.id not in taken), None)
        if view is not None:
            claim(record, view)
    return matches


def _marker_agrees(record: RunRecord, view: Any) -> bool:
    """Whether a marker is the one a report wrote for `view`: its run number is the run
    its UUID names, under a heading that shows that run's label."""
    return record.reported_id == view.id and _label(record) == view.display_label


def _label(record: RunRecord) -> str:
    return record.label or str(record.number)


def _where(record: RunRecord) -> str:
    return f"{record.source_file}:{record.source_line}" if record.source_line else str(record.source_file)


def _reads_the_same(record: RunRecord, view: Any, stored: StoredRuns) -> bool:
    """Whether the section says nothing new: the same text as the report prints, same series, same preamble."""
    if comparable_text(record.section_text) != comparable_text(stored.section_of(view)):
        return False
    return record.series == view.series_name and comparable_text(record.preamble) == comparable_text(view.preamble)


def _update(record: RunRecord, view: Any, epochs: list[Any], stored: StoredRuns) -> RunUpdate:
    """The change a section makes to its stored run: its texts always; data and hardware
    only where the section's differ from the stored ones beyond what a report prints."""
    data_differs = _epochs_differ(record.epochs, epochs) or _summary_differs(record, view)
    hardware_differs = (record.hardware or None) != (stored.hardware_of(view) or None)
    if not data_differs and record.status != view.status and not record.epochs and epochs:
        record.status = view.status  # a summary of a stored log says nothing about how it ended
    return RunUpdate(view.id, record, replace_epochs=data_differs, replace_hardware=hardware_differs)


def _plan_recorded(record: RunRecord, view: Any, stored: StoredRuns, plan: ImportPlan) -> None:
    """A trained run's section: its title, texts and tags are the user's to change; what
    training recorded is not, and a difference in it is said, not written."""
    record.title = record.title or view.title  # a heading without a title keeps the run's
    recorded = _recorded_differences(record, view, stored)
    if recorded:
        plan.warnings.append(
            f"{_where(record)}: run {view.display_label} was recorded by training, not imported: a notebook changes "
            f"only its title, texts and tags; the section's {', '.join(recorded)} differ from the recorded ones "
            f"and were not written"
        )
    if _user_texts_differ(record, view):
        plan.update.append(RunUpdate(view.id, record, texts_only=True))
    else:
        plan.unchanged.append((view.id, record))


_USER_TEXTS = ("title", "hypothesis", "description", "analysis", "preamble")


def _user_texts_differ(record: RunRecord, view: Any) -> bool:
    if any(comparable_text(getattr(record, name)) != comparable_text(getattr(view, name)) for name in _USER_TEXTS):
        return True
    return sorted(set(record.tags)) != sorted({tag.tag for tag in view.tags})


def _recorded_differences(record: RunRecord, view: Any, stored: StoredRuns) -> list[str]:
    """What a section states about a recorded run that differs from the record (what it leaves out is no difference)."""
    found = []
    if _epochs_differ(record.epochs, view.epochs) or _summary_differs(record, view):
        found.append("epochs")
    recorded_params = view.param_dict
    params = [name for name, value in record.params.items() if recorded_params.get(name, _ABSENT) != value]
    if params:
        found.append(f"parameters ({', '.join(params)})")
    if record.hardware and record.hardware != (stored.hardware_of(view) or None):
        found.append("hardware")
    if record.series != view.series_name:
        found.append("series")
    return found


_ABSENT = object()


def _epochs_differ(new: Sequence[Any], old: Sequence[Any]) -> bool:
    if not new:
        return False  # a section without data leaves the stored data alone
    if [e.epoch for e in new] != [e.epoch for e in old]:
        return True
    for a, b in zip(new, old):
        for name, tolerance in _PRINTED.items():
            value = getattr(a, name)
            if value is None:
                continue
            other = getattr(b, name)
            if other is None or abs(value - other) > tolerance:
                return True
    return False


def _summary_differs(record: RunRecord, view: Any) -> bool:
    summary = summarize_record(record)
    for new, old in ((summary.final_val_acc, view.final_val_acc), (summary.train_time_s, view.train_time_s)):
        if new is None:
            continue
        if old is None or abs(new - old) > 0.005:
            return True
    return False


def _plan_series(
    records: Sequence[SeriesRecord], stored: Sequence[Any], plan: ImportPlan, force: bool, matches: dict[int, Any]
) -> None:
    """A series is the stored one its identity names, else the one its runs belong to, else
    the one of the same name from the same file; or a new one."""
    by_uuid = {row.uuid: row for row in stored}
    by_id = {row.id: row for row in stored}
    taken: set[int] = set()
    for record in records:
        row = None if force else by_uuid.get(record.uuid or "")
        if row is None and not force:
            owners = [matches[id(m)].series_id for m in record.members if id(m) in matches]
            owners = [o for o in owners if o in by_id and o not in taken]
            if owners:
                row = by_id[max(set(owners), key=owners.count)]
        if row is None and not force:
            row = next(
                (s for s in stored if s.name == record.name and s.source_file == record.source_file and s.id not in taken),
                None,
            )
        if row is not None and row.id in taken:
            row = None
        if row is None:
            if record.uuid in by_uuid:
                record.uuid = None
            plan.new_series += 1
        else:
            taken.add(row.id)
        plan.series.append((row.id if row is not None else None, record))


# --------------------------------------------------------------------------- notebook order


def _plan_positions(parsed: NotebookParse, stored: StoredRuns, matches: dict[int, Any], plan: ImportPlan) -> None:
    """The file's runs and series, in its order, take the place of the first of them already
    stored (or the end); runs it does not hold keep their order around them."""
    series_ids = {id(record): series_id for series_id, record in plan.series}
    file_items: list[tuple[str, int | None, Any]] = []  # (kind, stored id or None, record)
    items = [(r.position, "run", r) for r in parsed.runs] + [
        (s.position, "series", s) for s in parsed.series if s.position is not None
    ]
    for _, kind, record in sorted(items, key=lambda item: item[0]):
        if kind == "run":
            view = matches.get(id(record))
            file_items.append(("run", view.id if view is not None else None, record))
        else:
            file_items.append(("series", series_ids.get(id(record)), record))

    existing = [("run", v.id, v.position) for v in stored.runs]
    existing += [("series", s.id, s.position) for s in stored.series if s.position is not None or s.section_text]
    existing.sort(key=lambda e: (e[2] is None, e[2] if e[2] is not None else 0.0, e[0] == "run", e[1]))
    in_file = {(kind, item_id) for kind, item_id, _ in file_items if item_id is not None}
    first = next((i for i, (kind, item_id, _) in enumerate(existing) if (kind, item_id) in in_file), len(existing))
    before = [e for e in existing[:first] if (e[0], e[1]) not in in_file]
    after = [e for e in existing[first:] if (e[0], e[1]) not in in_file]
    order = [(kind, item_id, None) for kind, item_id, _ in before]
    order += file_items
    order += [(kind, item_id, None) for kind, item_id, _ in after]

    current = {(kind, item_id): position for kind, item_id, position in existing}
    for index, (kind, item_id, record) in enumerate(order, start=1):
        position = float(index)
        if record is not None:
            record.position = position
        if item_id is None or current.get((kind, item_id)) == position:
            continue
        if kind == "run":
            plan.positions[item_id] = position
        else:
            plan.series_positions[item_id] = position
