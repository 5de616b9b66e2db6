"""What is computed once: pure text functions per distinct text (`per_text`), and what
analysis derives from a run per run object (`per_run`).

A notebook says `ResNet-18`, `SGD(lr=0.04, momentum=0.9)` and
`RandomCrop(32, padding=4), RandomHorizontalFlip()` on run after run; reading
each spelling once makes a 2,000-run import a tenth of a second faster.
"""

from __future__ import annotations

from functools import lru_cache, wraps
from typing import Any, Callable, TypeVar
from weakref import WeakKeyDictionary

T = TypeVar("T")

# Texts longer than this are never repeated in practice; they are not kept.
MAX_CACHED_TEXT = 256


def per_text(func: Callable[[str], T]) -> Callable[[str], T]:
    """`func(text)` remembered for short texts. Only for pure functions whose results are
    immutable (str, numbers, tuples): every caller receives the same object."""
    cached = lru_cache(maxsize=4096)(func)

    @wraps(func)
    def call(text: str) -> T:
        return cached(text) if len(text) <= MAX_CACHED_TEXT else func(text)

    call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return call


# What analysis derives from a run, computed once per run object: a report reads the same
# facts of every run many times, and the runs it reads are snapshots that do not change.
_PER_RUN: WeakKeyDictionary = WeakKeyDictionary()


def per_run(run: Any, name: str, compute: Callable[[Any], T]) -> T:
    """`compute(run)`, once per run object and name (an object that cannot be weakly referred to
    is computed every time). Only for runs that do not change: views, records being reported."""
    try:
        facts = _PER_RUN.setdefault(run, {})
    except TypeError:
        return compute(run)
    if name not in facts:
        facts[name] = compute(run)
    return facts[name]
