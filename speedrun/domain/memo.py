"""What is computed once: pure text functions per distinct text (`per_text`), and what
analysis derives from a run per run object (`per_run`).

A notebook says `ResNet-18`, `SGD(lr=0.04, momentum=0.9)` and
`RandomCrop(32, padding=4), RandomHorizontalFlip()` on run after run; reading
each spelling once makes a 2,000-run import a tenth of a second faster.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import lru_cache, wraps
from typing import Any, Callable, Iterator, TypeVar
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
# A run that carries its own `derived` dict (the store's views do) keeps them there: a
# report over 10,000 runs asks 460,000 times, and a weak-keyed lookup costs twice a dict's.
_PER_RUN: WeakKeyDictionary = WeakKeyDictionary()


def per_run(run: Any, name: str, compute: Callable[[Any], T]) -> T:
    """`compute(run)`, once per run object and name (an object that cannot be weakly referred to
    is computed every time). Only for runs that do not change: views, records being reported."""
    try:
        facts = run.derived
    except AttributeError:
        try:
            facts = _PER_RUN.setdefault(run, {})
        except TypeError:
            return compute(run)
    try:
        return facts[name]
    except KeyError:
        value = facts[name] = compute(run)
        return value


@contextmanager
def collector_paused() -> Iterator[None]:
    """Bulk analysis without the cyclic garbage collector: reading and judging 10,000 runs
    allocates millions of objects that live until the report is written, and the collector
    would walk them all again and again for nothing (0.7 of 5.7 s of CPU; they hold no cycles
    to free). Reference counting still frees what is dropped; the collector runs again after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
