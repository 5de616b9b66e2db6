"""How speedrun writes values and user text: one formatter per kind, used everywhere."""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 control characters except tab and newline, and DEL: what a terminal would act on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def fmt_value(value: Any) -> str:
    """A parameter value as the user's script prints it: floats by repr (0.04, not 0.040000)."""
    return repr(value) if isinstance(value, float) else str(value)


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell: a pipe or a newline would end the cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def terminal_safe(text: str) -> str:
    """User text for a terminal: control characters (escape sequences) shown, never obeyed.

    Only for output to a terminal; the database and exports keep the text byte for byte.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
