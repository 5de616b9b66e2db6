"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class SpeedrunError(Exception):
    """Base for every error that is the user's input or environment, not a bug."""

    exit_code = 1


class UsageError(SpeedrunError):
    """A command line that asks for something the command cannot do (an option the recipe does not
    read, options that exclude each other, a value outside an option's choices): exit 2, as a shell's
    usage errors."""

    exit_code = 2


class DatabaseError(SpeedrunError):
    """The database cannot be opened, read, written or upgraded."""


class ReadOnlyDatabase(DatabaseError):
    """The database cannot be written (a read-only file or URL)."""


class DatabaseUnreachable(DatabaseError):
    """A database server that cannot be reached now (refused, gone, network down): try again later."""


class SettingRefused(SpeedrunError):
    """A setting that cannot train, found once the data is there (a batch larger than the data set):
    the setting's fault, not the machine's, so a sweep marks it refused for good."""


class RunNotFound(SpeedrunError):
    """A run number or label that the database does not hold."""


class ParseError(SpeedrunError):
    """Input that cannot be read as a log or notebook; names the file and line."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.reason = message
        self.source = source
        self.line = line
        where = source or "<input>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


class DuplicateImport(SpeedrunError):
    """The same content was imported before."""


class InsufficientData(SpeedrunError, ValueError):
    """A statistic was asked for with no usable values (e.g. an empty group).

    A `SpeedrunError` so the CLI prints it as a one-line user error; also a
    `ValueError` so pure callers can catch it without knowing the project.
    """


class QueryError(SpeedrunError):
    """A `--where` query that cannot be read or does not fit the names it uses.

    The message is one line; `details` echo the query with a caret under `position`,
    printed after the `Error:` line (see cli.app.fail)."""

    def __init__(self, message: str, *, query: str, position: int):
        self.reason = message
        self.query = query
        self.position = max(0, min(position, len(query)))
        super().__init__(f"--where: {message}")

    @property
    def details(self) -> list[str]:
        from speedrun.text import terminal_safe  # control characters shown, so the caret counts them as shown

        def shown(text: str) -> str:
            return terminal_safe(text.replace("\n", " ").replace("\t", " "))

        return [f"  {shown(self.query)}", "  " + " " * len(shown(self.query[: self.position])) + "^"]
