"""Period-over-period changes (DESIGN.md rule 5), by example and by property."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentdigest.changes import compute_change

values = st.one_of(st.none(), st.floats(min_value=0, max_value=1e9, allow_nan=False), st.integers(0, 10**9))


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
            assert math.isclose(ch.change_pct, (cur - prev) / prev * 100, rel_tol=1e-9, abs_tol=1e-9)
        else:
            assert ch.change_pct is None
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
