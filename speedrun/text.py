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


def terminal_safe_tree(data: Any) -> Any:
    """`terminal_safe` applied to every string of nested dicts and lists (data laid out for a terminal)."""
    if isinstance(data, str):
        return terminal_safe(data)
    if isinstance(data, dict):
        return {key: terminal_safe_tree(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(terminal_safe_tree(value) for value in data)
    return data
