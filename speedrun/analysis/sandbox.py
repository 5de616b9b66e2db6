"""The sandbox every report template runs in, the user's `--template` included.

Jinja's `ImmutableSandboxedEnvironment` keeps a template away from Python's internals
and from changing the data it is given. A template is still a program, though, and
the user's may come from anywhere; so this sandbox also bounds what one may cost:

* numbers: an exponent at most `MAX_EXPONENT`, and no integer computed past
  `MAX_INT_BITS` (`((9**1000)**1000)**1000` is refused, not computed for hours);
* loops and calls: at most `MAX_STEPS` iterations of `{% for %}` and calls (of macros,
  methods, functions) in all, nested or recursive or not;
* text: no string or list made by an operator, `~`, a filter or a method longer than
  `MAX_LENGTH`, checked *before* it is made where its size is known beforehand
  (`'x' * n`, `s + s`, `'x'|center(n)`, `'%0*d'`, `replace`, `join`, `indent`), and
  no output longer than `MAX_OUTPUT`;
* time: no render past `MAX_RENDER_S` seconds, checked in every call, operator,
  attribute and iteration (no signals: it works in any thread);
* and, as a last guard on Linux, the render's memory: `memory_limit`.

Each limit ends the render with `TemplateLimit`, which the report turns into one
`Error:` line naming the template and its line.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from typing import Any, Iterable, Iterator

from jinja2 import Environment, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_EXPONENT = 1_000
MAX_INT_BITS = 100_000  # about 30,000 digits
MAX_REPEAT = 1_000_000  # items of `seq * n`
MAX_LENGTH = 10_000_000  # characters of one string, items of one list
MAX_OUTPUT = 200_000_000  # characters of the rendered document
MAX_STEPS = 2_000_000  # a report of 2,000 runs takes about 100,000
CALL_STEPS = 10  # a call (a macro's above all) costs about ten loop iterations
MAX_RENDER_S = 60.0
MAX_MEMORY = 2 * 1024**3  # bytes a render may add to the process (Linux)

# Filters whose integer arguments are sizes of what they make (widths, counts, indents).
SIZED_FILTERS = frozenset({"center", "indent", "truncate", "wordwrap", "batch", "slice", "format", "tojson",
                           "replace", "join", "sum"})
# A number in a %-format or a {}-format spec: a width or a precision.
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d*))?")
_BRACE_FIELD = re.compile(r"\{[^{}]*\}")
_DIGITS = re.compile(r"\d+")


class TemplateLimit(SecurityError):
    """A template asked for more than a report may cost (time, loops, size)."""


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the limits above; one render at a time (`start`)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.start()
        for name, function in list(self.filters.items()):
            self.filters[name] = _guarded_filter(self, name, function)

    # ----------------------------------------------------------------- the budget of one render
    def start(self) -> None:
        """A fresh budget: the clock and the iteration count start now."""
        self.deadline = time.monotonic() + MAX_RENDER_S
        self.steps = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"the template ran for more than {MAX_RENDER_S:g} s")

    def step(self, cost: int = 1) -> None:
        """One more loop iteration (or a call: `CALL_STEPS`), counted against `MAX_STEPS` and the clock."""
        self.steps += cost
        if self.steps > MAX_STEPS:
            raise TemplateLimit(f"the template took more than {MAX_STEPS:,} steps (loop iterations and calls)")
        if self.steps % 256 < cost:
            self.check_time()

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every `{% for %}` loop's items, each a step."""
        for item in iterable:
            self.step()
            yield item

    def joined(self, parts: tuple) -> str:
        """`a ~ b ~ c`, its length checked before it is made."""
        self.check_time()
        texts = [p if isinstance(p, str) else str(p) for p in parts]
        _check_length(sum(map(len, texts)), "a string")
        return (markup_join if self.autoescape else str_join)(parts)

    # ----------------------------------------------------------------- hooks of Jinja's sandbox
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _Guard().visit(super()._parse(source, name, filename))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.check_time()
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.check_time()
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        _check_result(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        __self.step(CALL_STEPS)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _check_result(result)
        return result

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_format(value.__self__, brace=True)

        def checked(*args: Any, **kwargs: Any) -> str:  # `'{:{}}'.format(1, 10**9)`: widths as arguments
            for arg in (*args, *kwargs.values()):
                _check_size_argument(arg)
            return wrapped(*args, **kwargs)

        return checked


class _Guard(NodeTransformer):
    """Rewrites a parsed template so that loops and `~` go through the sandbox's budget."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _environment_call("iterate", node.iter, node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Expr:
        self.generic_visit(node)
        return _environment_call("joined", nodes.Tuple(list(node.nodes), "load", lineno=node.lineno), node)


def _environment_call(method: str, argument: nodes.Expr, where: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(method), [argument], [], None, None)
    return call.set_lineno(where.lineno)


def _guarded_filter(env: Sandbox, name: str, function: Any) -> Any:
    """A filter that keeps the budget: sizes it is asked for checked first, what it made after."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        env.check_time()
        if name in SIZED_FILTERS:
            _check_filter(name, _without_context(args), kwargs)
        result = function(*args, **kwargs)
        _check_result(result)
        return result

    return guarded


def _without_context(args: tuple) -> tuple:
    """A filter's arguments without the context or environment Jinja passes first to some."""
    while args and isinstance(args[0], (Context, Environment, nodes.EvalContext)):
        args = args[1:]
    return args


# --------------------------------------------------------------------------- the checks


def _check_length(length: int, what: str) -> None:
    if length > MAX_LENGTH:
        raise TemplateLimit(f"{what} of more than {MAX_LENGTH:,} characters or items")


def _check_result(value: Any) -> None:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_LENGTH:
        _check_length(len(value), "a value")


def _check_int(value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"an integer of more than {MAX_INT_BITS:,} bits")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and isinstance(right, (int, float)):
        if abs(right) > MAX_EXPONENT:
            raise TemplateLimit(f"exponent {right} is larger than {MAX_EXPONENT}")
        if ints and right > 0 and left.bit_length() * right > MAX_INT_BITS:
            raise TemplateLimit(f"a power of more than {MAX_INT_BITS:,} bits")
    elif operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a product of more than {MAX_INT_BITS:,} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
                raise TemplateLimit(f"repetition beyond {MAX_REPEAT:,} items")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_length(len(left) + len(right), "a sum")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, brace=False)
        for arg in right if isinstance(right, tuple) else (right,):
            _check_size_argument(arg)


def _check_size_argument(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_LENGTH:
        raise TemplateLimit(f"a size of {value:,}, more than {MAX_LENGTH:,}")


def _check_format(fmt: str, *, brace: bool) -> None:
    """Widths and precisions a format string asks for: `%0999999999d`, `{:>999999999}`."""
    if brace:
        specs = [field.group()[1:-1].partition(":")[2] for field in _BRACE_FIELD.finditer(fmt)]
    else:
        specs = [spec.group() for spec in _PERCENT_SPEC.finditer(fmt)]
    for spec in specs:
        for digits in _DIGITS.findall(spec):
            if len(digits) > 9 or int(digits) > MAX_LENGTH:
                raise TemplateLimit(f"a format width of {digits}, more than {MAX_LENGTH:,}")


def _check_str_method(text: str, method: str, args: tuple, kwargs: dict) -> None:
    """What a string method would make: widths, tabs expanded, replacements, joins."""
    values = (*args, *kwargs.values())
    for value in values:
        _check_size_argument(value)
    if method == "expandtabs":
        size = values[0] if values and isinstance(values[0], int) else 8
        _check_length(len(text) + text.count("\t") * size, "expanded tabs")
    elif method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_length(_replaced_length(text, args[0], args[1]), "a replacement")
    elif method == "join" and args and isinstance(args[0], (list, tuple)):
        _check_length(_joined_length(args[0], text), "a join")


def _check_filter(name: str, args: tuple, kwargs: dict) -> None:
    """What a sized filter would make, from its arguments (`args[0]` is the value filtered)."""
    value, rest = (args[0] if args else None), (*args[1:], *kwargs.values())
    for arg in rest:
        _check_size_argument(arg)
    if name == "format" and isinstance(value, str):
        _check_format(value, brace=False)
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        _check_length(_replaced_length(value, str(rest[0]), str(rest[1])), "a replacement")
    elif name == "join" and isinstance(value, (list, tuple)):
        separator = rest[0] if rest and isinstance(rest[0], str) else ""
        _check_length(_joined_length(value, separator), "a join")
    elif name == "sum" and isinstance(value, (list, tuple)) and isinstance(kwargs.get("start", rest[-1] if len(rest) > 1 else 0), (str, list, tuple)):
        _check_length(sum(len(x) for x in value if isinstance(x, (str, list, tuple))), "a sum")
    elif name == "indent" and isinstance(value, str):
        width = rest[0] if rest else 4
        width = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _check_length(len(value) + (value.count("\n") + 1) * width, "an indented text")
    elif name == "wordwrap" and isinstance(value, str):
        width = rest[0] if rest and isinstance(rest[0], int) and rest[0] > 0 else 79
        wrap = next((a for a in rest[2:] if isinstance(a, str)), "\n")
        _check_length(len(value) + (len(value) // width + 1) * len(wrap), "a wrapped text")


def _replaced_length(text: str, old: str, new: str) -> int:
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * (len(new) - len(old))


def _joined_length(items: Iterable[Any], separator: str) -> int:
    items = list(items)
    return sum(len(x) if isinstance(x, str) else 0 for x in items) + len(separator) * max(len(items) - 1, 0)


def render_bounded(template: Any, context: dict[str, Any]) -> str:
    """Render `template` (made by a `Sandbox`) within its budget: time, loops, sizes, output, memory."""
    env = template.environment
    if isinstance(env, Sandbox):
        env.start()
    chunks, length = [], 0
    with memory_limit(MAX_MEMORY):
        for chunk in template.generate(**context):
            length += len(chunk)
            if length > MAX_OUTPUT:
                raise TemplateLimit(f"the output grew past {MAX_OUTPUT:,} characters")
            chunks.append(chunk)
        return "".join(chunks)


@contextlib.contextmanager
def memory_limit(extra: int) -> Iterator[None]:
    """Let the process grow by at most `extra` bytes of address space meanwhile (Linux): what no
    check above foresaw ends in a MemoryError, not in the machine's out-of-memory killer."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = size + extra
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft <= wanted:
            raise OSError  # already limited at least as tightly
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
