"""Pure text functions computed once per distinct text.

A notebook says `ResNet-18`, `SGD(lr=0.04, momentum=0.9)` and
`RandomCrop(32, padding=4), RandomHorizontalFlip()` on run after run; reading
each spelling once makes a 2,000-run import a tenth of a second faster.
"""

from __future__ import annotations

from functools import lru_cache, wraps
from typing import Callable, TypeVar

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
