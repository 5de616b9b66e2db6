"""Files a command writes because the user said `-o`: never onto a database, never over a file by accident.

`report -o e.db` once replaced the database it was reading with Markdown. Now
a path is refused when it is the open database (or its journal), or any SQLite
file; an existing file is replaced only with `--force`; and the text goes to a
temporary file beside the target that is renamed into place, so an interrupted
write leaves the old file whole.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from speedrun.errors import SpeedrunError
from speedrun.tracking.db import resolve_url, sqlite_file

SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _database_files(database: str | None) -> set[Path]:
    """The open database's file and its companions (-wal, -shm, -journal), resolved."""
    if not database:
        return set()
    try:
        main = sqlite_file(resolve_url(database))
    except SpeedrunError:
        return set()
    return {Path(f"{main}{suffix}") for suffix in _SQLITE_COMPANIONS} if main else set()


def check_output(path: Path, *, database: str | None, force: bool, what: str = "-o") -> None:
    """Refuse an output path that would destroy a database or, without `force`, an existing file."""
    resolved = path.expanduser().resolve()
    if resolved in _database_files(database):
        raise SpeedrunError(f"{what} {path}: that is the database speedrun is using; choose another file")
    if resolved.is_dir():
        raise SpeedrunError(f"{what} {path}: is a directory; give a file name")
    if not resolved.parent.is_dir():
        raise SpeedrunError(f"{what} {path}: directory {path.parent} does not exist")
    if is_sqlite_file(resolved):
        raise SpeedrunError(f"{what} {path}: is an SQLite database; speedrun never writes over one")
    if resolved.exists() and not force:
        raise SpeedrunError(f"{what} {path}: exists; use --force to replace it")


def write_output(content: str | bytes, path: Path, *, database: str | None, force: bool, what: str = "-o") -> None:
    """Write `content` to `path` after `check_output`, through a temporary file renamed into place."""
    check_output(path, database=database, force=force, what=what)
    target = path.expanduser().resolve()
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise SpeedrunError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def check_image_path(path: Path, *, database: str | None, what: str = "--plot") -> None:
    """A PNG the user names: a .png file (not a folder, not a database); it may be replaced."""
    if path.expanduser().is_dir():
        raise SpeedrunError(f"{what} {path}: is a directory; give a file name ending in .png")
    if path.suffix.lower() != ".png":
        raise SpeedrunError(f"{what} {path}: the plot is a PNG image; give a file name ending in .png")
    check_output(path, database=database, force=True, what=what)
