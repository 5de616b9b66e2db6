"""The `--where` filter language: `lr < 0.05 and (batch_size in (64, 128) or cosine)`.

`parse` reads the text with a real grammar (grammar.py, Lark) into a tree of plain
dataclasses (ast.py); `resolve` (fields.py) checks every name against the
vocabulary and types every value as that name's values are typed. The storage
layer compiles the typed tree to SQL (speedrun.tracking.where); evaluate.py is
the plain Python meaning of the same tree. Nothing here touches a database.
"""

from speedrun.query.ast import And, Cond, Expr, Not, Or
from speedrun.query.fields import Field, resolve
from speedrun.query.grammar import parse

__all__ = ["And", "Cond", "Expr", "Field", "Not", "Or", "parse", "resolve"]
