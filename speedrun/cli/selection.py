"""Run selections as users type them: `15-18,20`."""

from __future__ import annotations

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
