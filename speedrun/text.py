"""How speedrun writes values and user text: one formatter per kind, used everywhere."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

# What a terminal (or a reader of Markdown) would act on instead of showing: C0 controls but tab and
# newline, DEL and the C1 controls (ESC's one-character twins: U+009B is a CSI), and the bidirectional
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which reorder the text after them
# up to the end of the line ("Trojan Source"). The marks U+200E/U+200F/U+061C are kept: they steer
# only the neutral characters beside them and belong to right-to-left text. Lone surrogates (bytes
# that were not UTF-8) cannot be written at all.
UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[{UNSAFE}]")
# The same in JSON text, where json.dumps already escapes C0 (and tab and newline) itself.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# A formatted number whose digits are all zero ("-0.00", "-0"): its sign is rounding, not data.
_NEGATIVE_ZERO = re.compile(r"-[0.,]*")

MISSING = "\u2014"  # "—": a value that is not known
MINUS = "\u2212"  # typographic minus, as in "B − A = −0.18"


def fmt_value(value: Any) -> str:
    """A parameter value as the user's script prints it: floats by repr (0.04, not 0.040000)."""
    return repr(value) if isinstance(value, float) else str(value)


def summary_only(completed: int | None, final_val_acc: float | None) -> bool:
    """A run with a final accuracy but no epoch logged: a notebook that states only the results."""
    return not completed and final_val_acc is not None


def epochs_text(completed: int | None, planned: int | None, final_val_acc: float | None, *, of: str = "/") -> str:
    """`2/10`. A `summary_only` run has `—/10`: not zero epochs done, but none on record."""
    done = MISSING if summary_only(completed, final_val_acc) else str(completed or 0)
    return done + (f"{of}{planned}" if planned else "")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """"1 run", "2 runs", "0 runs": a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def fmt_num(value: float | int | None, spec: str = ".2f", suffix: str = "") -> str:
    """A number for tables and sentences: "—" when unknown, a typographic minus, never "-0.00".

    `spec` is a format spec ("`.2f`", "`,`", "`+.1f`"); `suffix` follows the number ("%", " s").
    """
    if value is None:
        return MISSING
    text = format(value, spec)
    if text.startswith("-"):
        text = text[1:] if _NEGATIVE_ZERO.fullmatch(text) else MINUS + text[1:]
    return text + suffix


def fmt_target(target: float) -> str:
    """An accuracy target: 85 → "85%", 93.5 → "93.5%"."""
    return f"{target:g}%"


def fmt_param(name: str, value: Any) -> str:
    """One setting as the notebook writes it: "lr=0.02"."""
    return f"{name}={fmt_value(value)}"


def configuration_text(params: dict[str, Any], ignore: Iterable[str] = ("seed",)) -> str:
    """A run's settings on one line ("lr=0.02, batch_size=64"), the seed left out by default."""
    skip = set(ignore)
    return ", ".join(fmt_param(k, v) for k, v in params.items() if k not in skip) or "(no parameters)"


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell (or a one-line item): a pipe or a newline would end the cell;
    control characters are shown (`terminal_safe`), since the cell is read, not read back."""
    return terminal_safe(" ".join(str(value).split())).replace("|", "\\|")


def _shown(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """User text for a terminal: control characters (escape sequences), bidirectional overrides
    and lone surrogates shown as `\\x1b`, `\\u202e`, never obeyed.

    Only for output to a terminal or a reader; the database keeps the text byte for byte, and
    JSON keeps it exactly (`json_text`).
    """
    return _CONTROL.sub(lambda m: _shown(m.group()), text)


def as_references(text: str) -> str:
    """Text for HTML: the characters `terminal_safe` shows escaped as numeric references (`&#27;`),
    the same document to a browser, and nothing a terminal showing the file obeys."""
    return _CONTROL.sub(lambda m: f"&#{ord(m.group())};", text)


def has_unsafe(text: str) -> bool:
    """Whether `terminal_safe` would change `text`."""
    return _CONTROL.search(text) is not None


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """JSON for output (list/show --json, export): the data exactly, and nothing a terminal obeys.

    Non-ASCII text stays readable (ensure_ascii off), but the characters `terminal_safe` shows
    escaped are written as JSON escapes (`\\u009b`, `\\u202e`, `\\udcff`): any JSON reader gets
    the same strings back, while `cat` or a terminal sees six harmless characters. (json.dumps
    escapes the C0 controls itself.) The escaped characters occur only inside strings, so
    replacing them keeps the document valid.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_safe_tree(data: Any) -> Any:
    """`terminal_safe` applied to every string of nested dicts and lists (data laid out for a terminal)."""
    if isinstance(data, str):
        return terminal_safe(data)
    if isinstance(data, dict):
        return {key: terminal_safe_tree(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(terminal_safe_tree(value) for value in data)
    return data
