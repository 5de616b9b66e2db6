"""Every file a command writes (reports, exports, every PNG), through one path.

Each rule here answers a way speedrun once destroyed something or hung:
`report -o e.db` replaced the database it was reading with Markdown; plots
followed a symlink or a hard link named `run-1.png` into runs.db; `report -o FIFO`
hung because the check opened the pipe to see whether it was a database; and
`report -o /dev/null --force`, run as root, replaced the device node with a file.

So a path is checked from its directory entry and its `stat`, never by opening
anything but a regular file:

- `-`, or a path that is the very file standard output goes to (`/dev/stdout`),
  means standard output;
- the database the command uses (`guard`), its `-wal`, `-shm` and `-journal`, are
  refused by any spelling: the same name (symlinks and case aside) or the same file
  (a hard link); so is any SQLite database, and the journal files beside one;
- FIFOs, devices and sockets are refused from their mode, never opened;
- an existing file is replaced only with `force` (pictures always are).

The bytes go to a temporary file in the target's folder, which is renamed over the
directory entry: a symlink is replaced, never written through, and an interrupted
write leaves the old file whole.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from speedrun.errors import SpeedrunError

SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")  # an SQLite write-ahead log's first four bytes
JOURNALS = ("-wal", "-shm", "-journal")
STDOUT = "-"

_SPECIAL = (
    (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
)
_guarded: str | None = None


def guard(database: str | None) -> None:
    """The database this command uses (the CLI names it from --db): no output may land on its files."""
    global _guarded
    _guarded = database


def special_kind(st: os.stat_result) -> str | None:
    """What a file that is not a regular one is ("FIFO", "character device", ...), from its mode alone."""
    if stat.S_ISREG(st.st_mode):
        return None
    return next((name for test, name in _SPECIAL if test(st.st_mode)), "special file")


def check_output(path: Path, *, force: bool, what: str = "-o") -> bool:
    """Refuse an output path that would destroy a database, a special file or, without `force`, an
    existing file. True when the path means standard output."""
    if str(path) == STDOUT:
        return True
    entry = path.expanduser().absolute()  # the directory entry the output replaces; its own links not followed
    if _stat(entry, path, what, follow=False) is None:
        parent = _stat(entry.parent, path, what)
        if parent is None or not stat.S_ISDIR(parent.st_mode):
            raise SpeedrunError(f"{what} {path}: directory {path.parent} does not exist")
        st = None
    else:
        st = _stat(entry, path, what)  # None for a dangling symlink
    names = _names(entry)
    if _is_database(names, st):
        raise SpeedrunError(f"{what} {path}: that is the database speedrun is using; choose another file")
    if st is not None and _is_stdout(st):
        return True
    kind = special_kind(st) if st is not None else None
    if kind == "directory":
        raise SpeedrunError(f"{what} {path}: is a directory; give a file name")
    if kind is not None:
        hint = " (`-o -` writes to standard output)" if what == "-o" else ""
        raise SpeedrunError(f"{what} {path}: is a {kind}, not a regular file; speedrun writes only regular files{hint}")
    if st is not None and _head(entry).startswith(SQLITE_MAGIC):
        raise SpeedrunError(f"{what} {path}: is an SQLite database; speedrun never writes over one")
    if (st is not None and _head(entry)[:4] in WAL_MAGICS) or any(_journal_of_sqlite(name) for name in names):
        raise SpeedrunError(f"{what} {path}: belongs to an SQLite database (its journal); speedrun never writes over one")
    if st is not None and not force:
        raise SpeedrunError(f"{what} {path}: exists; use --force to replace it")
    return False


def write_output(content: str | bytes, path: Path, *, force: bool, what: str = "-o") -> bool:
    """Write `content` to `path` after `check_output`, through a temporary file renamed over the
    directory entry. True when it went to standard output instead (`-`)."""
    if check_output(path, force=force, what=what):
        _to_stdout(content)
        return True
    data = content.encode("utf-8") if isinstance(content, str) else content
    entry = path.expanduser()
    temporary = None
    try:
        existing = os.lstat(entry) if os.path.lexists(entry) else None
        mode = stat.S_IMODE(existing.st_mode) if existing and stat.S_ISREG(existing.st_mode) else 0o666 & ~_umask()
        fd, temporary = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name[:64]}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, entry)
        temporary = None
    except OSError as exc:
        raise SpeedrunError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None and os.path.lexists(temporary):
            os.unlink(temporary)
    return False


def make_folder(folder: Path, *, what: str = "--plots") -> None:
    """The folder pictures are written into, created with its parents when missing."""
    try:
        folder.expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file, a FIFO or a database in the way; a folder we may not write
        raise SpeedrunError(f"{what} {folder}: cannot create the directory ({exc.strerror or exc})") from None


def check_image_path(path: Path, *, what: str = "--plot") -> None:
    """A PNG the user names: a .png file (not a folder, not a database); it may be replaced."""
    if _is_dir(path):
        raise SpeedrunError(f"{what} {path}: is a directory; give a file name ending in .png")
    if path.suffix.lower() != ".png":
        raise SpeedrunError(f"{what} {path}: the plot is a PNG image; give a file name ending in .png")
    check_output(path, force=True, what=what)


# --------------------------------------------------------------------------- the checks' parts


def _stat(path: Path, shown: Path, what: str, *, follow: bool = True) -> os.stat_result | None:
    """`stat` (or `lstat`) of a path, None when there is nothing there; never opens it."""
    try:
        return os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a loop of links, a name too long, a folder we may not enter
        raise SpeedrunError(f"{what} {shown}: {exc.strerror or exc}") from None


def _names(entry: Path) -> list[Path]:
    """The absolute names a path goes by: its directory entry (folders resolved) and, through its
    links, the file it finally names (which need not exist)."""
    names = []
    for name in (lambda: entry.parent.resolve() / entry.name, entry.resolve):
        try:
            names.append(name())
        except (OSError, RuntimeError):  # a loop of links: refused when it is stat'ed
            pass
    return names


def _database_files(database: str | None) -> list[Path]:
    """The guarded database's file and its -wal, -shm and -journal (resolved; they need not exist)."""
    if not database:
        return []
    from speedrun.tracking.db import resolve_url, sqlite_file

    try:
        main = sqlite_file(resolve_url(database))
    except (SpeedrunError, OSError, ValueError):
        return []
    return [Path(f"{main}{suffix}") for suffix in ("", *JOURNALS)] if main else []


def _is_database(names: list[Path], st: os.stat_result | None) -> bool:
    """Whether a path is one of the guarded database's files: by name (letter case aside, for the
    case-insensitive disks of macOS, Windows and Drive) or, through any link, by being that file."""
    for file in _database_files(_guarded):
        if any(str(name).casefold() == str(file).casefold() for name in names):
            return True
        try:
            if st is not None and os.path.samestat(st, os.stat(file)):
                return True
        except OSError:
            pass
    return False


def _is_stdout(st: os.stat_result) -> bool:
    """Whether a file is the one standard output already goes to (/dev/stdout, /dev/fd/1, ...)."""
    try:
        return os.path.samestat(st, os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no real stdout (under a test runner)
        return False


def _to_stdout(content: str | bytes) -> None:
    if isinstance(content, str):
        sys.stdout.write(content)
    else:  # a picture: the bytes as they are, after any text already buffered
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
    sys.stdout.flush()


def _head(path: Path, size: int = len(SQLITE_MAGIC)) -> bytes:
    """The first bytes of a regular file; opened so that nothing else (a FIFO swapped in) can block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, size) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _journal_of_sqlite(name: Path) -> bool:
    """`x.db-wal`, `x.db-shm` or `x.db-journal` beside an SQLite database `x.db`."""
    for suffix in JOURNALS:
        if name.name.casefold().endswith(suffix) and len(name.name) > len(suffix):
            main = name.with_name(name.name[: -len(suffix)])
            main_stat = _quiet_stat(main)
            if main_stat is not None and stat.S_ISREG(main_stat.st_mode) and _head(main).startswith(SQLITE_MAGIC):
                return True
    return False


def _quiet_stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _is_dir(path: Path) -> bool:
    st = _quiet_stat(path.expanduser())
    return st is not None and stat.S_ISDIR(st.st_mode)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
