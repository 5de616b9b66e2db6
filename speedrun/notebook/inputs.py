"""What an import reads: a regular file or standard input, never more than a size limit.

A FIFO without a writer would block forever and /dev/zero never ends, so only
regular files (and standard input, a pipe or a file) are read, and at most
`SPEEDRUN_MAX_INPUT` bytes (1 GB unless set, e.g. `500M`, `2G`): past that
the import stops with one clear error instead of filling the memory.
A UTF-8 byte-order mark at the start is skipped: it is an encoding's mark, not text.
"""

from __future__ import annotations

import os
import re
import stat
import sys

from speedrun.errors import SpeedrunError

LIMIT_VARIABLE = "SPEEDRUN_MAX_INPUT"
DEFAULT_LIMIT = 1_000_000_000
_SIZE = re.compile(r"\s*(\d{1,15})\s*([kKmMgGtT]?)[bB]?\s*")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "t": 1_000_000_000_000}
_CHUNK = 1 << 20


def input_limit() -> int:
    """The most bytes one input may have: $SPEEDRUN_MAX_INPUT, else 1 GB."""
    text = os.environ.get(LIMIT_VARIABLE)
    if not text:
        return DEFAULT_LIMIT
    match = _SIZE.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise SpeedrunError(f"{LIMIT_VARIABLE}={text!r} is not a size such as 500M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def size_text(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def read_input(path: str, limit: int | None = None) -> tuple[str, str]:
    """(source name, text) of a file, or of standard input for `-`. Bytes that are not
    UTF-8 are replaced; FIFOs, devices and anything over the limit are refused at once."""
    limit = input_limit() if limit is None else limit
    if path == "-":
        return "<stdin>", _decode(_read_stdin(limit))
    try:
        # O_NONBLOCK: opening a FIFO that has no writer returns at once (and is then refused).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpeedrunError(f"{path}: no such file") from None
    except OSError as exc:
        raise SpeedrunError(f"{path}: cannot read ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpeedrunError(f"{path}: is a directory, not a file")
        raise SpeedrunError(f"{path}: not a regular file (a FIFO, device or socket); to read a stream, pipe it to '-'")
    if info.st_size > limit:
        os.close(fd)
        raise _too_large(path, limit)
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(limit + 1)
        except OSError as exc:
            raise SpeedrunError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > limit:
        raise _too_large(path, limit)
    return os.path.basename(path), _decode(data)


def _read_stdin(limit: int) -> bytes:
    stream = sys.stdin
    if stream is None or getattr(stream, "closed", False):
        raise SpeedrunError("standard input is closed; give a file name, or pipe the text to '-'")
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fileno = None  # not backed by a descriptor (tests, notebooks): read it as it is
    if fileno is not None:
        try:
            mode = os.fstat(fileno).st_mode
        except OSError:
            raise SpeedrunError("standard input is closed; give a file name, or pipe the text to '-'") from None
        if stat.S_ISCHR(mode) and not os.isatty(fileno) or stat.S_ISBLK(mode):
            raise SpeedrunError("standard input is a device, not a file or a pipe")
        if stat.S_ISDIR(mode):
            raise SpeedrunError("standard input is a directory, not a file or a pipe")
    buffer = getattr(stream, "buffer", stream)
    chunks, total = [], 0
    while total <= limit:
        chunk = buffer.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogateescape")
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _too_large("standard input", limit)
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> SpeedrunError:
    return SpeedrunError(
        f"{what} is larger than {size_text(limit)}, the most speedrun reads at once "
        f"(set {LIMIT_VARIABLE}, e.g. {LIMIT_VARIABLE}=4G, to allow more)"
    )


def _decode(data: bytes) -> str:
    """The text; a UTF-8 byte-order mark (Notepad writes one) is no part of it and is dropped,
    so a notebook's first heading stays a heading. The report gives the notebook back without it."""
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
