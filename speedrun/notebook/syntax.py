"""The notebook's Markdown: run headings, computed blocks, and escapes that survive a round trip.

One home for the syntax that `speedrun report` writes and `speedrun import-md`
reads back (the parser, the report and its templates all take it from here):

* run headings, `## Run 15: title`, `### Run 7a: title` (any level, up to three
  spaces of indentation, as CommonMark allows);
* the computed block: what speedrun adds to a notebook, between
  `<!-- speedrun:computed run=17 uuid=... -->` and `<!-- /speedrun:computed -->`.
  An import never reads its contents, only the identity in the opening marker;
* escapes for the user's own words where speedrun writes them: `encode_inline`
  for one-line places (titles, metadata bullets), `escape_block` for free text
  (an analysis). Whatever the text holds (newlines, a `## Run 77` line, fences,
  table pipes, HTML comments), it reads back as the same text and never as
  structure. Lines compare without their trailing whitespace, texts without
  blank lines around them: that is all a round trip through Markdown keeps.

Patterns here run on every line of a notebook; none of them backtracks on a
long run of one character class.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

from speedrun.domain.memo import per_text
from speedrun.text import UNSAFE

COMPUTED_TAG = "speedrun:computed"
COMPUTED_CLOSE = f"<!-- /{COMPUTED_TAG} -->"
_COMPUTED_OPEN = re.compile(rf" {{0,3}}<!-- {COMPUTED_TAG}((?: [a-z]{{1,16}}=[\w.\-]{{1,64}}){{0,8}}) -->[ \t]*")
_COMPUTED_CLOSE = re.compile(rf" {{0,3}}<!-- /{COMPUTED_TAG} -->[ \t]*")


def computed_open(**identity: object) -> str:
    """`<!-- speedrun:computed run=17 uuid=... -->`: the opening marker, with what identifies the item."""
    attrs = "".join(f" {key}={value}" for key, value in identity.items() if value is not None)
    return f"<!-- {COMPUTED_TAG}{attrs} -->"


def read_computed_open(line: str) -> dict[str, str] | None:
    """The identity in an opening marker line ({} for a bare one); None for any other line."""
    match = _COMPUTED_OPEN.fullmatch(line)
    if match is None:
        return None
    return dict(pair.split("=", 1) for pair in match.group(1).split())


def is_computed_close(line: str) -> bool:
    return _COMPUTED_CLOSE.fullmatch(line) is not None


# --------------------------------------------------------------------------- run headings

# `## Run 15: title`, `### Run 7a - title`, `## Run 9-log2`. The title is read greedily
# and trimmed in Python: a lazy title followed by `\s*$` backtracks on trailing spaces.
_RUN_HEADING = re.compile(
    r"( {0,3})(#{1,6})[ \t]+Run[ \t]+(\d{1,9})([A-Za-z][\w.\-]{0,30}|-[\w.\-]{1,30})?"
    r"(?:[ \t]*[:.\-–—](.*)|[ \t]*(?:#+[ \t]*)?)$"
)


@dataclass(frozen=True)
class RunHeading:
    level: int
    number: int
    suffix: str | None  # "a" of "7a", "-log2" of "9-log2"
    title: str | None

    @property
    def label(self) -> str:
        return f"{self.number}{self.suffix or ''}"


def read_run_heading(line: str) -> RunHeading | None:
    """The run a heading line names, or None for any other line."""
    match = _RUN_HEADING.match(line)
    if match is None:
        return None
    title = match.group(5)
    if title is not None:
        title = decode_inline(_without_closing_hashes(title).strip()) or None
    return RunHeading(len(match.group(2)), int(match.group(3)), match.group(4), title)


def _without_closing_hashes(text: str) -> str:
    """`title ##` → `title`: CommonMark's optional closing sequence of an ATX heading."""
    text = text.rstrip(" \t")
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        return bare
    return text


def run_heading(level: int, label: str, title: str | None) -> str:
    """The heading line of a run, its title escaped so that it stays one line."""
    text = encode_inline(title or "")
    return f"{'#' * level} Run {label}: {text}" if text else f"{'#' * level} Run {label}"


# --------------------------------------------------------------------------- escapes

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# NUL aside: no terminal acts on it, and CommonMark reads `&#0;` as U+FFFD, so it could not read back.
_UNSAFE = re.compile(f"(?!\\x00)[{UNSAFE}]")


@per_text  # a report encodes the same settings ("batch_size=64") on run after run
def encode_inline(text: str) -> str:
    """One line of Markdown that reads back (`decode_inline`) as `text`, stripped.

    `&` becomes `&amp;` and line breaks become character references, which
    CommonMark shows as the characters; a trailing `#` is one too, so that a
    heading's closing sequence cannot eat it. So do control characters and
    bidirectional overrides (`speedrun.text.UNSAFE`): a terminal showing the
    notebook sees `&#27;`, never an escape sequence.
    """
    out = text.strip().replace("&", "&amp;").replace("\r", "&#13;").replace("\n", "&#10;")
    out = _UNSAFE.sub(_reference, out)
    if out.endswith("#"):
        out = out[:-1] + "&#35;"
    return out


def _reference(match: re.Match) -> str:
    return f"&#{ord(match.group())};"


_TAG_SPECIAL = re.compile(f"[&;,`\r\n]|{_UNSAFE.pattern}")


def encode_tag(tag: str) -> str:
    """A tag in a `- **Tags**: a, b` list: separators, a leading `#` and backticks as references."""
    out = _TAG_SPECIAL.sub(_reference, tag.strip())
    if out.startswith("#"):
        out = "&#35;" + out[1:]
    if out.endswith("#"):
        out = out[:-1] + "&#35;"
    return out


def decode_inline(text: str) -> str:
    """Character references (`&amp;`, `&#10;`) as CommonMark reads them; everything else as written."""
    if "&" not in text:
        return text
    return _ENTITY.sub(_character, text)


def _character(match: re.Match) -> str:
    return _referenced(match.group())


@lru_cache(maxsize=1024)
def _referenced(ref: str) -> str:
    """A reference's character. Numeric ones are the code point itself, as CommonMark reads them
    (HTML would read `&#155;` as cp1252's `›`); 0 and what is no character read as U+FFFD.
    A title of a million `&#10;` names few distinct references: each is read once."""
    if ref[1] != "#":
        return html.unescape(ref)
    code = int(ref[3:-1], 16) if ref[2] in "xX" else int(ref[2:-1])
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


# A line that would start structure, after any list or quote markers in front of it:
# a heading, a fence, a table row, an HTML block (a computed marker among them), a
# thematic break or setext underline, or a backslash (so that the escape itself reads back).
_STRUCTURE_START = re.compile(r"#|```|~~~|\||<|\\")
_BREAK_LINE = re.compile(r"[-=*_+][-=*_+ \t]*")
_LIST_OR_QUOTE = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)|>[ \t]?")
_ESCAPABLE = frozenset("#`~|<\\-=*_+")


def _content_start(line: str) -> int:
    """Where a line's text starts after indentation and list or quote markers (`- > 1. `)."""
    pos = 0
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        marker = _LIST_OR_QUOTE.match(line, pos)
        if marker is None or marker.end() == pos:
            return pos
        pos = marker.end()


def escape_block(text: str) -> str:
    """Free text (an analysis) as Markdown lines that read back, through `unescape_line`, as `text`.

    Each line that would otherwise start structure (also inside a list item or a
    quote) gets a backslash before its first character: CommonMark shows the line
    as written, and the parser takes the backslash away again. Control characters
    and bidirectional overrides (`speedrun.text.UNSAFE`) become references such as
    `&#27;`, and so that those read back as written, a `&` before `#` (or before
    `amp;...#`) gains one `amp;`: `&#27;` typed is `&amp;#27;`.
    """
    lines = [line.rstrip() for line in canonical_text(text).split("\n")]
    return "\n".join(_escape_line(_encode_unsafe(line)) for line in lines)


_AMP_HASH = re.compile(r"&((?:amp;)*#)")
_UNSAFE_REFERENCE = re.compile(r"&(amp;(?:amp;)*#)|&#([0-9]{1,7});")


def _encode_unsafe(line: str) -> str:
    return _UNSAFE.sub(_reference, _AMP_HASH.sub(r"&amp;\1", line))


def _decode_unsafe(line: str) -> str:
    """`_encode_unsafe` undone: `&amp;#` → `&#`, `&#27;` → ESC; any other reference stays as written."""

    def one(match: re.Match) -> str:
        if match.group(1) is not None:
            return "&" + match.group(1)[len("amp;"):]
        code = int(match.group(2))
        char = chr(code) if code < 0xD800 or 0xDFFF < code <= 0x10FFFF else ""  # never half a surrogate pair
        return char if char and _UNSAFE.fullmatch(char) else match.group()

    return _UNSAFE_REFERENCE.sub(one, line) if "&" in line else line


def _escape_line(line: str) -> str:
    start = _content_start(line)
    rest = line[start:]
    if rest and (_STRUCTURE_START.match(rest) or _BREAK_LINE.fullmatch(rest)):
        return f"{line[:start]}\\{rest}"
    indent = len(line) - len(line.lstrip(" \t"))
    if _BREAK_LINE.fullmatch(line[indent:]):  # `-` alone: a list marker, and a setext underline
        return f"{line[:indent]}\\{line[indent:]}"
    return line


def unescape_line(line: str) -> str:
    """One line of free text as the user meant it: `\\## Run 7` is the text `## Run 7`, `&#27;` an ESC."""
    line = _decode_unsafe(line)
    if "\\" not in line:
        return line
    start = _content_start(line)
    if line[start : start + 1] == "\\" and line[start + 1 : start + 2] in _ESCAPABLE and line[start + 1 : start + 2]:
        return line[:start] + line[start + 1 :]
    start = len(line) - len(line.lstrip(" \t"))
    if line[start : start + 1] == "\\" and line[start + 1 : start + 2] in _ESCAPABLE and line[start + 1 : start + 2]:
        return line[:start] + line[start + 1 :]
    return line


def canonical_text(text: str | None) -> str:
    """What a round trip through Markdown keeps of a text: lines without trailing
    whitespace, no blank lines before or after."""
    if not text:
        return ""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


# --------------------------------------------------------------------------- block structure

# What each line of a notebook is, as far as splitting it into runs needs: a run heading
# inside a fenced block or an HTML comment is no heading. CommonMark's rules for fences
# (indentation up to three spaces relative to the enclosing list item, a closing fence
# of the same character at least as long) and for HTML blocks, read line by line.
TEXT, FENCE_OPEN, CODE, FENCE_CLOSE, HTML = range(5)

_FENCE_RUN = re.compile(r"(`{3,}|~{3,})(.*)")
_LIST_MARKER = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?= |$)")
_HTML_RAW = re.compile(r"<(script|pre|style|textarea)(?:[ \t>]|$)", re.IGNORECASE)
_HTML_BLOCK_TAG = re.compile(
    r"</?(address|article|aside|blockquote|body|center|details|dialog|dd|div|dl|dt|fieldset|figcaption|figure|"
    r"footer|form|h[1-6]|header|hr|html|li|main|menu|nav|ol|p|section|summary|table|tbody|td|tfoot|th|thead|"
    r"tr|ul)(?:[ \t/>]|$)",
    re.IGNORECASE,
)
_ATX = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")


@dataclass
class Scan:
    states: list[int]
    unclosed: list[int]  # indices of fences or HTML blocks that never close (reported by the parser)


def scan(lines: list[str]) -> Scan:
    """The block state of every line. A fence or HTML comment left open runs, in CommonMark,
    to the end of the document; here it ends before the next run heading instead (and is
    reported), so one forgotten fence does not swallow the rest of the notebook."""
    states = [TEXT] * len(lines)
    unclosed: list[int] = []
    start = 0
    while start < len(lines):
        opened = _scan_from(lines, states, start)
        if opened is None:
            break
        unclosed.append(opened)
        resume = next((j for j in range(opened + 1, len(lines)) if read_run_heading(lines[j])), None)
        if resume is None:
            break
        start = resume
    return Scan(states, unclosed)


def _indent(line: str) -> tuple[int, str]:
    stripped = line.lstrip(" \t")
    lead = line[: len(line) - len(stripped)]
    return (len(lead.expandtabs(4)) if "\t" in lead else len(lead)), stripped


def _scan_from(lines: list[str], states: list[int], start: int) -> int | None:
    """Fill `states` from line `start` on; the index of a block still open at the end, if any."""
    containers: list[int] = []  # content columns of the open list items
    fence: tuple[str, int, int, int] | None = None  # (character, length, container column, index)
    html_end: str | None = None  # what ends the open HTML block ("" = a blank line)
    html_start = 0
    previous_blank = True
    for i in range(start, len(lines)):
        line = lines[i]
        if fence is not None and fence[2] == 0 and fence[0] not in line:
            states[i] = CODE  # inside a fence at the margin, only a line with its character can close it
            continue
        ind, stripped = _indent(line)
        if fence is not None:
            char, length, column, _ = fence
            if not stripped:
                states[i] = CODE
                continue
            if ind >= column:
                body = stripped.rstrip()
                if ind - column <= 3 and len(body) >= length and body == char * len(body):
                    states[i] = FENCE_CLOSE
                    fence = None
                    previous_blank = False
                else:
                    states[i] = CODE
                continue
            fence = None  # a line left of the list item ends the item, and its code block
        if html_end is not None:
            if html_end == "":
                if not stripped:
                    html_end = None
                    previous_blank = True
                    continue
            elif html_end in line.lower():
                html_end = None
            states[i] = HTML
            continue
        if not stripped:
            previous_blank = True
            continue
        starts_block = stripped[0] in "`~#<-*+0123456789"
        if containers and (previous_blank or starts_block):
            while containers and containers[-1] > ind:
                containers.pop()
        column = containers[-1] if containers else 0
        if ind - column <= 3 and stripped[0] in "`~":
            match = _FENCE_RUN.match(stripped)
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence = (match.group(1)[0], len(match.group(1)), column, i)
                states[i] = FENCE_OPEN
                previous_blank = False
                continue
        if ind <= 3 and stripped[0] == "<":
            end = _html_end(stripped)
            if end is not None:
                states[i] = HTML
                if end == "" or end not in stripped.lower()[4:]:
                    html_end, html_start = end, i
                previous_blank = False
                continue
        if _ATX.match(line):
            containers.clear()
        else:
            marker = _LIST_MARKER.match(stripped)
            if marker and ind - column <= 3:
                while containers and containers[-1] > ind:
                    containers.pop()
                rest = stripped[marker.end() :]
                spaces = len(rest) - len(rest.lstrip(" "))
                containers.append(ind + marker.end() + (spaces if 1 <= spaces <= 4 else 1))
        previous_blank = False
    if fence is not None:
        return fence[3]
    if html_end:
        return html_start
    return None


def _html_end(stripped: str) -> str | None:
    """What closes an HTML block starting with this line; None when it starts none."""
    if stripped.startswith("<!--"):
        return "-->"
    raw = _HTML_RAW.match(stripped)
    if raw:
        return f"</{raw.group(1).lower()}>"
    if _HTML_BLOCK_TAG.match(stripped):
        return ""
    return None
