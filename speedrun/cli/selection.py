"""Run selections as users type them: `15-18,20,7a`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

import typer

from speedrun.errors import SpeedrunError
from speedrun.domain.records import run_number

# `--where QUERY` on every command that selects runs: one option, one help text (speedrun.query has the language).
WHERE_HELP = (
    'Only runs matching this query, e.g. "lr < 0.05 and (batch_size in (64, 128) or cosine)": '
    "= != < <= > >=, in (...), between A and B, ~ \"glob*\", like, has NAME, and/or/not, parentheses; "
    "names are parameters (lr, batch_size, cosine, ...) and run fields (status, hardware, model, tag, series, "
    "group, date, final_val_acc, train_time_s, ...)."
)
Where = Annotated[Optional[str], typer.Option("--where", help=WHERE_HELP, show_default=False)]
By = Annotated[Optional[str], typer.Option(
    "--by", help="With --where: one set per value of this parameter or field (e.g. batch_size, hardware).",
    show_default=False)]


def where_sets_and_refs(store: Any, refs: Optional[list[str]], where: Optional[str], by: Optional[str], *,
                        resolve: Any, each: bool = False, **options: Any) -> list:
    """The sets `stats` and `compare` work on: the references' (`resolve`), then the runs `--where`
    selects (analysis.groups.where_sets: one set, one per value of `--by`, or with `each` one per run)."""
    from speedrun.analysis.groups import where_sets

    if by is not None and where is None:
        raise SpeedrunError(f"--by {by} groups the runs of --where; give --where too (e.g. --where \"status = completed\")")
    if not refs and where is None:
        raise SpeedrunError("give runs (numbers, labels or g:NAME) or --where QUERY")
    sets = resolve(store, refs, **options) if refs else []
    return sets + (where_sets(store, where, by=by, each=each) if where is not None else [])


def parse_run_ranges(text: str) -> list[int]:
    """`15-18,20` → [15, 16, 17, 18, 20]: numbers and ranges of numbers only (ASCII digits)."""
    typed = _typed_parts(text)
    for item in typed:
        if isinstance(item, str):
            raise SpeedrunError(f"not a run range: {_shown(item)} (expected e.g. 15-18,20)")
    return list(dict.fromkeys(typed))


def _typed_parts(text: str) -> list[int | str]:
    """`15-18,20,7a` → [15, 16, 17, 18, 20, "7a"]: ranges and numbers as numbers, the rest as typed."""
    typed: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match:
            typed.extend(_span(part, match))
        elif run_number(part) is not None:
            typed.append(run_number(part))
        else:
            typed.append(part)
    return typed


def _span(part: str, match: re.Match) -> range:
    start, end = int(match.group(1)), int(match.group(2))
    if end < start or end - start > 1_000_000:
        raise SpeedrunError(f"not a run range: {_shown(part)} (expected e.g. 15-18,20)")
    return range(start, end + 1)


def _shown(part: str) -> str:
    """What the user typed, for a message: short (a 5,000-digit number is cut) and quoted."""
    return repr(part if len(part) <= 40 else part[:37] + "...")


_RANGE = re.compile(r"(\d{1,18})\s*-\s*(\d{1,18})", re.ASCII)


def select_runs(store: Any, text: str) -> list[int]:
    """`15-18,20,7a,#38` → run numbers. Numbers, ranges and labels name runs by the store's one
    identity rule (a number is the run the notebook labels so; `#38` is database number 38)."""
    typed = _typed_parts(text)
    numbers = iter(store.resolve_numbers([t for t in typed if isinstance(t, int)]))
    resolved = dict(zip((t for t in typed if isinstance(t, int)), numbers))
    ids: list[int] = []
    for item in typed:
        if isinstance(item, int):
            ids.append(resolved[item])
            continue
        try:
            ids.append(store.get_run(item).id)
        except SpeedrunError as exc:
            if "ambiguous" in str(exc):
                raise
            raise SpeedrunError(f"not a run, range or label: {_shown(item)} (expected e.g. 15-18,20,7a)") from None
    return list(dict.fromkeys(ids))
