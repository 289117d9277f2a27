"""Notable changes: two-proportion tests for rates, trailing variation for counts."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from agentdigest.report import MetricValue
from agentdigest.significance import count_notable, notable_flags, two_proportion_p_value
from render_fixtures import metric


def reference_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """The same test computed another way (NormalDist's CDF instead of erfc)."""
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - NormalDist().cdf(abs(z)))


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [
    (60, 100, 45, 100), (1510, 2480, 1412, 2210), (30, 40, 30, 40), (5, 900, 20, 1000), (700, 1000, 300, 1000),
])
def test_p_value_matches_reference(x1: int, n1: int, x2: int, n2: int) -> None:
    assert two_proportion_p_value(x1, n1, x2, n2) == pytest.approx(reference_p(x1, n1, x2, n2), abs=1e-9)


def test_p_value_known_example() -> None:
    # 60% of 100 against 45% of 100: z = 2.12, p = 0.034
    assert two_proportion_p_value(60, 100, 45, 100) == pytest.approx(0.0338, abs=2e-4)


@pytest.mark.parametrize(("args", "expected"), [
    ((0, 0, 5, 10), None),  # no conversations
    ((10, 10, 10, 10), 1.0),  # both 100%: nothing moved
    ((0, 50, 0, 50), 1.0),
])
def test_p_value_edges(args: tuple[int, int, int, int], expected: float | None) -> None:
    assert two_proportion_p_value(*args) == expected


def rates(n1: int, resolved1: int, escalated1: int, errors1: int,
          n2: int, resolved2: int, escalated2: int, errors2: int) -> dict:
    """MetricValues for a current (1) and previous (2) period."""
    values = {
        "conversations": (n1, n2), "resolved_conversations": (resolved1, resolved2),
        "escalated_conversations": (escalated1, escalated2), "error_conversations": (errors1, errors2),
        "resolution_rate": (resolved1 / n1 * 100 if n1 else None, resolved2 / n2 * 100 if n2 else None),
        "containment_rate": ((n1 - escalated1) / n1 * 100 if n1 else None, (n2 - escalated2) / n2 * 100 if n2 else None),
        "error_rate": (errors1 / n1 * 100 if n1 else None, errors2 / n2 * 100 if n2 else None),
    }
    return {name: metric(name, cur, prev) for name, (cur, prev) in values.items()}


@pytest.mark.parametrize(("counts", "expected"), [
    # a 2.9 pp drop on ~2,300 conversations a week is real; so is 60% -> 45% on 100
    ((2480, 1513, 310, 55, 2210, 1412, 296, 82),
     {"resolution_rate": True, "containment_rate": False, "error_rate": True}),
    ((100, 60, 10, 10, 100, 45, 11, 9), {"resolution_rate": True, "containment_rate": False, "error_rate": False}),
    # the same proportions on 40 conversations: too few to tell
    ((40, 24, 4, 4, 40, 18, 4, 4), {"resolution_rate": False, "containment_rate": None, "error_rate": None}),
    # under the 30-conversation guard: never judged
    ((25, 20, 1, 1, 25, 5, 10, 10), {"resolution_rate": None, "containment_rate": None, "error_rate": None}),
    # nothing moved
    ((500, 300, 50, 20, 500, 300, 50, 20), {"resolution_rate": False, "containment_rate": False, "error_rate": False}),
    # all-or-nothing in both periods (every conversation resolved, none escalated or in error): nothing moved,
    # README's rule, before the expected-count guard (found in a contract audit: it said None)
    ((40, 40, 0, 0, 50, 50, 0, 0), {"resolution_rate": False, "containment_rate": False, "error_rate": False}),
    # all-or-nothing in only one period is not "nothing moved"; here the guard decides (too few)
    ((40, 40, 0, 0, 50, 48, 0, 0), {"resolution_rate": None, "containment_rate": False, "error_rate": False}),
    # exactly 30 conversations a period is enough (README: "at least 30"). Resolution 24/30 against 9/30:
    # pooled 33/60 = 0.55, n*p = 16.5 and n*(1-p) = 13.5 >= 5; z = (0.8 - 0.3) / sqrt(0.55 * 0.45 * (2/30))
    # = 0.5 / sqrt(0.0165) = 0.5 / 0.1285 = 3.89, p = erfc(3.89 / 1.414) ~ 1e-4 < 0.05: notable.
    # Escalations and errors 15/30 both weeks: pooled 0.5, z = 0: not notable
    ((30, 24, 15, 15, 30, 9, 15, 15), {"resolution_rate": True, "containment_rate": False, "error_rate": False}),
    # 29 is under the guard: the same kind of move (z = (15/29) / sqrt(33/58 * 25/58 * 2/29) = 0.517 / 0.130
    # = 3.98, and the expected counts 16.5 and 12.5 pass) and the unmoved rates are not judged
    ((29, 24, 15, 15, 29, 9, 15, 15), {"resolution_rate": None, "containment_rate": None, "error_rate": None}),
])
def test_rate_flags(counts: tuple[int, ...], expected: dict) -> None:
    flags = notable_flags(rates(*counts), ())
    assert {k: flags[k] for k in expected} == expected


def test_rate_counts_fall_back_to_trend() -> None:
    metrics = {"resolution_rate": metric("resolution_rate", 60.0, 45.0)}
    trend = ({"conversations": 100, "resolved_conversations": 45}, {"conversations": 100, "resolved_conversations": 60})
    assert notable_flags(metrics, trend) == {"resolution_rate": True}
    assert notable_flags(metrics, trend[1:]) == {"resolution_rate": None}  # no previous counts


def test_containment_tests_the_complement_of_escalations() -> None:
    # escalations 10% -> 25%: containment 90% -> 75%
    flags = notable_flags(rates(400, 200, 100, 8, 400, 200, 40, 8), ())
    assert flags["containment_rate"] is True


@pytest.mark.parametrize(("current", "trailing", "expected"), [
    (2480, [1840, 1925, 2010, 1980, 2105, 2160, 2210], True),  # well above a steady climb's spread
    (2150, [1840, 1925, 2010, 1980, 2105, 2160, 2210], False),
    (100, [100, 100, 100, 100], False),
    (100.5, [100, 100, 100, 100], False),  # under 1% of the mean: a wobble
    (110, [100, 100, 100, 100], True),
    (5000, [100, 900, 3000], None),  # fewer than 4 trailing periods
    (5000, [100, None, 900, None, 3000], None),  # missing values do not count
    (None, [1, 2, 3, 4], None),
    (0, [0, 0, 0, 0], False),
    # stdev is the sample one (README): mean 100, squared deviations 0 + 4 + 4 + 0 = 8, sample variance 8/3,
    # sd 1.633, 2 sd = 3.27 > |103 - 100| = 3: not notable (the population sd, sqrt(8/4) = 1.414, 2 sd = 2.83,
    # would flag it); 3 >= 1% of 100 so the floor does not decide
    (103, [100, 102, 98, 100], False),
    (104, [100, 102, 98, 100], True),  # 4 > 3.27 and >= 1: notable
])
def test_count_flags(current: float | None, trailing: list, expected: bool | None) -> None:
    assert count_notable(current, trailing) is expected


def test_notable_flags_for_counts_use_trend_rows() -> None:
    trend = tuple({"conversations": c, "total_tokens": c * 1500, "cost_usd": c * 0.01, "errors": 50}
                  for c in [1840, 1925, 2010, 1980, 2105, 2160, 2210, 2480])
    metrics = {
        "conversations": metric("conversations", 2480, 2210),
        "tokens_per_conversation": metric("tokens_per_conversation", 1500.0, 1500.0),
        "errors": metric("errors", 50, 50),
        "p95_latency_ms": metric("p95_latency_ms", 2100.0, 2000.0),  # not in the trend: no judgement
        "cost_usd": metric("cost_usd", None, 22.1),
    }
    assert notable_flags(metrics, trend) == {
        "conversations": True, "tokens_per_conversation": False, "errors": False,
        "p95_latency_ms": None, "cost_usd": None,
    }


def test_rate_without_counts_is_not_judged() -> None:
    custom = MetricValue("first_reply_rate", "First reply rate", "percent", 5.0, 1.0, None, 4.0, "up", True, True)
    assert notable_flags({"first_reply_rate": custom}, ()) == {"first_reply_rate": None}


def test_periods_before_the_data_began_are_no_history() -> None:
    """Found in a rendering audit: a new source's first week was "notable" (conversations, errors, cost)
    against seven weeks of zeros that were only weeks before its first event."""
    counts = [0, 0, 0, 0, 0, 0, 0, 240]
    trend = tuple({"conversations": c, "errors": c // 10, "cost_usd": c * 0.01} for c in counts)
    metrics = {"conversations": metric("conversations", 240, 0), "errors": metric("errors", 24, 0),
               "cost_usd": metric("cost_usd", 2.4, 0.0)}
    assert notable_flags(metrics, trend) == {"conversations": None, "errors": None, "cost_usd": None}
    # With four weeks of data behind it, the same jump is judged again; the first week with data, after
    # empty ones, may be partial and is no usual level (a reader review: "+165%" against a month begun on the 19th).
    trend = tuple({"conversations": c, "errors": c // 10, "cost_usd": c * 0.01} for c in [0, 0, 3, 20, 21, 19, 20, 240])
    assert notable_flags(metrics, trend)["conversations"] is True
    trend = tuple({"conversations": c, "errors": c // 10, "cost_usd": c * 0.01} for c in [0, 0, 0, 3, 21, 19, 20, 240])
    assert notable_flags(metrics, trend)["conversations"] is None  # three full weeks only
