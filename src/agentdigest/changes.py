"""Period-over-period change of one metric (README, Notable changes).

Counts, amounts and latencies change by a percentage of the previous value; rates (already
percentages) change by percentage points, never by a percent of a percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["up", "down", "flat", "new"]


@dataclass(frozen=True)
class Change:
    change_pct: float | None
    change_pp: float | None
    direction: Direction | None
    good: bool | None


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (for None, bools, non-numbers, NaN and infinities). A negative zero
    is 0.0 (adding 0.0 clears its sign), so it never reads "-$0.00": PostgreSQL sums -0.0 costs to -0.0."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number + 0.0 if math.isfinite(number) else None


def compute_change(current: float | int | None, previous: float | int | None, *,
                   is_rate: bool, higher_is_better: bool | None) -> Change:
    """The change from ``previous`` to ``current``.

    ``direction`` is ``new`` when there was nothing before (previous 0 or null) and there is now;
    ``good`` compares the move with ``higher_is_better`` and is null for flat, for a neutral
    metric, and when the previous value is unknown (null).
    """
    cur, prev = finite_number(current), finite_number(previous)
    if cur is None:
        return Change(None, None, None, None)
    pct = pp = None
    if is_rate:
        pp = cur - prev if prev is not None else None
    elif prev not in (None, 0.0):
        pct = (cur - prev) / abs(prev) * 100.0
    direction: Direction | None
    if prev is None or prev == 0.0:
        direction = "new" if cur != 0.0 else ("flat" if prev == 0.0 else None)
    elif cur > prev:
        direction = "up"
    elif cur < prev:
        direction = "down"
    else:
        direction = "flat"
    good: bool | None = None
    if higher_is_better is not None and prev is not None and cur != prev:
        good = (cur > prev) == higher_is_better
    return Change(pct, pp, direction, good)
