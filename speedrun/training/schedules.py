"""Per-step schedules of the fast recipes: multipliers of a base value, as plain functions of the step.

Keeping them as functions (not torch schedulers) makes the values at known
steps easy to test and lets one step loop serve every recipe.
"""

from __future__ import annotations


def triangle(step: int, total: int, *, start: float = 0.2, peak: float = 0.23, end: float = 0.07) -> float:
    """Linear from `start` up to 1 at `peak`·total steps, then linear down to `end` at `total`."""
    peak_step = int(peak * total)
    if step < peak_step:
        return start + (1 - start) * step / peak_step
    return 1 + (end - 1) * (step - peak_step) / max(total - peak_step, 1)


def linear_decay(step: int, total: int) -> float:
    """1 at step 0, falling linearly to 0 at `total` (and staying there)."""
    return max(0.0, 1 - step / total)


def lookahead_decay(step: int, total: int) -> float:
    """How much of the slow weights a lookahead sync keeps: grows as (step/total)³ to 0.95⁵.

    Early on the slow copy follows the fast weights almost completely; late in
    training it averages over many steps, which acts like a cheap weight EMA.
    """
    return 0.95**5 * (step / total) ** 3
