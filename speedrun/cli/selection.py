"""Run selections as users type them: `15-18,20,7a`."""

from __future__ import annotations

import re
from typing import Any

from speedrun.errors import SpeedrunError


def parse_run_ranges(text: str) -> list[int]:
    """`15-18,20` → [15, 16, 17, 18, 20]."""
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            if sep:
                start, end = int(low), int(high)
                if end < start or end - start > 1_000_000:
                    raise ValueError
                numbers.extend(range(start, end + 1))
            else:
                numbers.append(int(part))
        except ValueError:
            raise SpeedrunError(f"not a run range: {part!r} (expected e.g. 15-18,20)") from None
    return list(dict.fromkeys(numbers))


_RANGE = re.compile(r"(\d{1,18})\s*-\s*(\d{1,18})")


def select_runs(store: Any, text: str) -> list[int]:
    """`15-18,20,7a,#38` → run numbers. Numbers, ranges and labels name runs by the store's one
    identity rule (a number is the run the notebook labels so; `#38` is database number 38)."""
    typed: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match:
            start, end = int(match.group(1)), int(match.group(2))
            if end < start or end - start > 1_000_000:
                raise SpeedrunError(f"not a run range: {part!r} (expected e.g. 15-18,20)")
            typed.extend(range(start, end + 1))
        elif part.isdigit() and len(part) <= 18:
            typed.append(int(part))
        else:
            typed.append(part)
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
            raise SpeedrunError(f"not a run, range or label: {item!r} (expected e.g. 15-18,20,7a)") from None
    return list(dict.fromkeys(ids))
