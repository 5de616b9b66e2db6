"""The grammar of `--where`, read by Lark (LALR): never `eval`, never Python.

    query      := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | condition
    condition  := NAME op value                      op: = == != <> < <= > >=
                | NAME ["not"] "in" "(" value ("," value)* ")"
                | NAME ["not"] "between" value "and" value
                | NAME ["not"] "~" value             a glob: * any text, ? one character
                | NAME ["not"] "like" value          a SQL LIKE pattern: % and _
                | NAME "!~" value
                | "has" NAME
                | NAME                               a yes/no parameter: `cosine`, `not amp`

Values are numbers, dates and words as typed (`0.04`, `4e-2`, `2026-11-01`, `A100`)
or quoted text (`"resnet 18"`); each is typed by the name it is compared with
(fields.resolve). Keywords are case-insensitive.
"""

from __future__ import annotations

from functools import lru_cache

from speedrun.errors import QueryError
from speedrun.query.ast import And, Cond, Expr, Literal, Not, Or, conditions

GRAMMAR = r"""
?start: or_
?or_: and_ (_OR and_)*
?and_: not_ (_AND not_)*
?not_: _NOT not_                              -> negation
     | "(" or_ ")"
     | cond
cond: NAME OP value                           -> compare
    | NAME NOT? _IN "(" value ("," value)* ")" -> member
    | NAME NOT? _BETWEEN value _AND value     -> between
    | NAME NOT? GLOB value                    -> glob
    | NAME NOT? _LIKE value                   -> like
    | NAME NOTGLOB value                      -> notglob
    | _HAS NAME                               -> has
    | NAME                                    -> bare
value: STRING | WORD

OP: "==" | "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
GLOB: "~"
NOTGLOB: "!~"
NOT: "not"i
_NOT: "not"i
_AND: "and"i
_OR: "or"i
_IN: "in"i
_BETWEEN: "between"i
_LIKE: "like"i
_HAS: "has"i
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
WORD: /[A-Za-z0-9_.+\-][A-Za-z0-9_.:+\-\/]*/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/
%ignore /\s+/
"""

# How a parse error names what was expected, by Lark's terminal names.
_EXPECTED = {
    "NAME": "a name", "WORD": "a value", "STRING": "a value", "OP": "a comparison such as = or <",
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "_AND": "'and'", "_OR": "'or'", "$END": "the end",
    "_IN": "'in'", "_BETWEEN": "'between'", "GLOB": "'~'", "NOTGLOB": "'!~'", "_LIKE": "'like'", "_NOT": "'not'",
    "NOT": "'not'", "_HAS": "'has'",
}


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark  # imported when a query is given, not at every command's start

    # cache: the LALR tables are built once per machine and read back after (a build costs 0.1 s)
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False, cache=True)


def parse(text: str) -> Expr:
    """The tree of a query; QueryError (with the position) for text that is not one."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    if not text.strip():
        raise QueryError("the query is empty; write e.g. lr < 0.05 and cosine", query=text, position=0)
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise QueryError(f"the query ends too early; expected {_expected(exc.expected)}", query=text,
                             position=len(text)) from None
        raise QueryError(f"unexpected {str(exc.token)!r}; expected {_expected(exc.expected)}", query=text,
                         position=exc.token.start_pos) from None
    except UnexpectedCharacters as exc:
        raise QueryError(f"unexpected {text[exc.pos_in_stream]!r}; expected {_expected(exc.allowed)}",
                         query=text, position=exc.pos_in_stream) from None
    except UnexpectedEOF as exc:
        raise QueryError(f"the query ends too early; expected {_expected(exc.expected)}", query=text,
                         position=len(text)) from None
    except UnexpectedInput as exc:  # pragma: no cover - the kinds above are all Lark raises
        raise QueryError("cannot read the query", query=text, position=getattr(exc, "pos_in_stream", 0) or 0) from None
    if _depth(tree) > MAX_DEPTH:
        raise QueryError(f"the query nests deeper than {MAX_DEPTH} levels of parentheses and not", query=text,
                         position=0)
    expr = _build(tree)
    found = list(conditions(expr))
    if len(found) > MAX_CONDITIONS:
        raise QueryError(f"the query has {len(found)} conditions; at most {MAX_CONDITIONS} (a list of values is "
                         "one: id in (1, 2, 3))", query=text, position=found[MAX_CONDITIONS].pos)
    for cond in found:
        if len(cond.values) > MAX_VALUES:
            raise QueryError(f"in (...) lists at most {MAX_VALUES:,} values", query=text, position=cond.pos)
    return expr


# What a person writes is far less; the tree's readers recurse, and databases nest each and/or.
MAX_DEPTH = 100
MAX_CONDITIONS = 200
MAX_VALUES = 10_000


def _depth(tree) -> int:
    """How deep Lark's tree is, counted without recursion (a hostile query may nest thousands deep)."""
    from lark import Tree

    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def _expected(names) -> str:
    words = sorted({_EXPECTED.get(name, name.strip("_").lower()) for name in names})
    return " or ".join(words) if len(words) <= 3 else ", ".join(words[:-1]) + " or " + words[-1]


def _build(node) -> Expr:
    """Lark's tree to ast.py's dataclasses."""
    from lark import Token

    kind = node.data
    children = [c for c in node.children]
    if kind == "or_":
        return Or(tuple(_build(c) for c in children))
    if kind == "and_":
        return And(tuple(_build(c) for c in children))
    if kind == "negation":
        return Not(_build(children[0]))
    name = children[0]
    if kind == "has":
        return Cond(str(name), "has", (), name.start_pos)
    if kind == "bare":
        return Cond(str(name), "=", (Literal("true", False, name.start_pos),), name.start_pos, bare=True)
    negated = any(isinstance(c, Token) and c.type == "NOT" for c in children)
    values = tuple(_literal(c) for c in children if not isinstance(c, Token))
    if kind == "compare":
        op = {"==": "=", "<>": "!="}.get(str(children[1]), str(children[1]))
        if op == "!=":
            return Cond(str(name), "=", values, name.start_pos, negated=True)
        return Cond(str(name), op, values, name.start_pos)
    if kind == "member":
        return Cond(str(name), "in", values, name.start_pos, negated=negated)
    if kind == "between":
        return Cond(str(name), "between", values, name.start_pos, negated=negated)
    if kind in ("glob", "notglob"):
        pattern = values[0]
        return Cond(str(name), "like", (Literal(glob_to_like(pattern.text), True, pattern.pos),), name.start_pos,
                    negated=negated or kind == "notglob")
    if kind == "like":
        return Cond(str(name), "like", values, name.start_pos, negated=negated)
    raise AssertionError(f"unknown rule {kind}")  # pragma: no cover - the grammar has no other


def _literal(node) -> Literal:
    token = node.children[0]
    if token.type == "STRING":
        body = str(token)[1:-1]
        return Literal(_unescape(body), True, token.start_pos)
    return Literal(str(token), False, token.start_pos)


def _unescape(body: str) -> str:
    """`\\"` is `"`, `\\\\` is `\\`; any other backslash is kept as written (LIKE patterns use them)."""
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in "\"'\\":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def glob_to_like(pattern: str) -> str:
    """`resnet*` → `resnet%`: `*` any text, `?` one character, LIKE's own `%` and `_` taken literally."""
    out = []
    for char in pattern:
        if char in "%_\\":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)
