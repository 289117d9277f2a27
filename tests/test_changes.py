"""Period-over-period changes (DESIGN.md rule 5), by example and by property."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentdigest.changes import compute_change

# Negative values too: a credit (negative cost) is valid and estimated savings can be negative (README, "Data
# quality" and "Metrics"), so the previous value of a change can be below zero.
values = st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
                   st.integers(-10**9, 10**9))


@pytest.mark.parametrize("cur,prev,rate,hib,pct,pp,direction,good", [
    (2480, 2210, False, True, (2480 - 2210) / 2210 * 100, None, "up", True),
    (61.4, 59.3, True, True, None, 61.4 - 59.3, "up", True),        # rates move in points
    (5.0, 8.0, True, False, None, -3.0, "down", True),              # error rate fell: good
    (12, 0, False, False, None, None, "new", False),                # 0 -> 12 errors
    (12, None, False, False, None, None, "new", None),              # nothing known before
    (0, 0, False, True, None, None, "flat", None),
    (7, 7, False, True, 0.0, None, "flat", None),
    (None, 5, False, True, None, None, None, None),
    (100, 200, False, None, -50.0, None, "down", None),             # neutral metric: no judgement
    # a negative previous value (a credit, negative savings): the percentage is of its size, so its sign is
    # the direction's: (-25 - -50) / |-50| x 100 = 25 / 50 x 100 = +50
    (-25, -50, False, True, 50.0, None, "up", True),
    (-75, -50, False, True, -50.0, None, "down", False),            # (-75 - -50) / |-50| x 100 = -25 / 50 x 100
    (10, -40, False, True, 125.0, None, "up", True),                # (10 - -40) / |-40| x 100 = 50 / 40 x 100
    # 0 against a null previous: nothing to compare, so no direction (README: "null when ... it is 0 against
    # a null previous"); unlike 0 against 0, which is flat
    (0, None, False, True, None, None, None, None),
    (0.0, None, True, False, None, None, None, None),               # a rate: no points either
])
def test_examples(cur, prev, rate, hib, pct, pp, direction, good):
    ch = compute_change(cur, prev, is_rate=rate, higher_is_better=hib)
    assert (ch.change_pct is None) == (pct is None) and (pct is None or math.isclose(ch.change_pct, pct))
    assert (ch.change_pp is None) == (pp is None) and (pp is None or math.isclose(ch.change_pp, pp))
    assert ch.direction == direction
    assert ch.good is good


@given(cur=values, prev=values, rate=st.booleans(), hib=st.sampled_from([True, False, None]))
def test_properties(cur, prev, rate, hib):
    ch = compute_change(cur, prev, is_rate=rate, higher_is_better=hib)
    if rate:
        assert ch.change_pct is None
        if cur is not None and prev is not None:
            assert math.isclose(ch.change_pp, cur - prev, abs_tol=1e-9)
    else:
        assert ch.change_pp is None
        if cur is not None and prev:
            # DESIGN rule 5's (cur - prev) / prev x 100, of the previous value's size (|prev|) so that a
            # negative previous value keeps the sign of the move (see the (-25, -50) example)
            assert math.isclose(ch.change_pct, (cur - prev) / abs(prev) * 100, rel_tol=1e-9, abs_tol=1e-9)
            if cur == prev:
                assert ch.change_pct == 0
            else:  # copysign: a quotient that underflows to 0.0 still carries its sign
                assert math.copysign(1.0, ch.change_pct) == (1.0 if cur > prev else -1.0)
        else:
            assert ch.change_pct is None
    # direction, as README "Metrics" words it
    if cur is None:
        assert ch.direction is None
    elif prev is None or prev == 0:
        # new when the previous is 0 or null and the current is not; 0 against 0 is flat; 0 against null: null
        assert ch.direction == ("new" if cur != 0 else "flat" if prev is not None else None)
    else:
        assert ch.direction == ("up" if cur > prev else "down" if cur < prev else "flat")
    if prev is None:
        assert ch.good is None  # the previous value is unknown: no judgement
    if ch.direction in ("flat", None):
        assert ch.good is None
    if ch.direction == "up":
        assert cur > prev
    if ch.direction == "down":
        assert cur < prev
    if ch.good is not None:
        assert hib is not None and (ch.good == ((cur > prev) == hib))
    # swapping current and previous reverses the direction of a real move
    if ch.direction in ("up", "down"):
        back = compute_change(prev, cur, is_rate=rate, higher_is_better=hib)
        assert back.direction in ({"up": "down", "down": "up"}[ch.direction], "new")
