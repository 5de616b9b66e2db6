"""Run selections as users type them: `15-18,20,7a`."""

from __future__ import annotations

import re
from typing import Any

from speedrun.errors import SpeedrunError
from speedrun.tracking.records import run_number


def parse_run_ranges(text: str) -> list[int]:
    """`15-18,20` → [15, 16, 17, 18, 20]: numbers and ranges of numbers only (ASCII digits)."""
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match:
            numbers.extend(_span(part, match))
        elif run_number(part) is not None:
            numbers.append(run_number(part))
        else:
            raise SpeedrunError(f"not a run range: {_shown(part)} (expected e.g. 15-18,20)")
    return list(dict.fromkeys(numbers))


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
    """`15-18,20,7a` → run numbers: numbers and ranges of numbers as they are, labels
    (`7a`, or `24` where two runs carry it... then the number decides) resolved by the store."""
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match:
            numbers.extend(_span(part, match))
        elif run_number(part) is not None:
            numbers.append(run_number(part))
        else:
            try:
                numbers.append(store.get_run(part).id)
            except SpeedrunError:
                raise SpeedrunError(f"not a run, range or label: {_shown(part)} (expected e.g. 15-18,20,7a)") from None
    return list(dict.fromkeys(numbers))
