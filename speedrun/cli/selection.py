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
    """`15-18,20,7a` → run numbers: numbers and ranges of numbers as they are, labels
    (`7a`, or `24` where two runs carry it... then the number decides) resolved by the store."""
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match:
            start, end = int(match.group(1)), int(match.group(2))
            if end < start or end - start > 1_000_000:
                raise SpeedrunError(f"not a run range: {part!r} (expected e.g. 15-18,20)")
            numbers.extend(range(start, end + 1))
        elif part.isdigit() and len(part) <= 18:
            numbers.append(int(part))
        else:
            try:
                numbers.append(store.get_run(part).id)
            except SpeedrunError:
                raise SpeedrunError(f"not a run, range or label: {part!r} (expected e.g. 15-18,20,7a)") from None
    return list(dict.fromkeys(numbers))
