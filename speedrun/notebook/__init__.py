"""Parsers for pasted console logs and the user's Markdown notebook (pure: no CLI, no database).

The parsers load on first use (PEP 562): the trainer and the report import this package's
small modules (logformat, syntax), and neither needs the parsers.
"""

from importlib import import_module

_HOMES = {"parse_log": "speedrun.notebook.logs", "NotebookParse": "speedrun.notebook.markdown",
          "parse_notebook": "speedrun.notebook.markdown"}

__all__ = ["NotebookParse", "parse_log", "parse_notebook"]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
