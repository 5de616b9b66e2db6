"""Parsers for pasted console logs and the user's Markdown notebook (pure: no CLI, no database)."""

from speedrun.notebook.logs import parse_log
from speedrun.notebook.markdown import NotebookParse, parse_notebook

__all__ = ["NotebookParse", "parse_log", "parse_notebook"]
