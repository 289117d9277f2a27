"""Compare a report.json document with the plain-Python reference; return every mismatch."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from reference import CONVERSATION_METRICS, SAVINGS, Reference

QUANTILES = ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms")
EXACT_TOL = dict(rel_tol=1e-9, abs_tol=1e-6)  # "rates and latencies agree to 1e-6"


class Mismatches(list):
    def check(self, where: str, actual: Any, expected: Any, *, rel: float | None = None) -> None:
        if not _same(actual, expected, rel):
            self.append(f"{where}: got {actual!r}, expected {expected!r}")


def _same(actual: Any, expected: Any, rel: float | None) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, bool) or isinstance(actual, bool) or isinstance(expected, str):
        return actual == expected
    if isinstance(expected, int):  # counts are identical, and stay integers
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    if not isinstance(actual, (int, float)):
        return False
    if not (math.isfinite(expected) and math.isfinite(actual)):
        return actual == expected
    if rel is not None:
        return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-9)
    return math.isclose(actual, expected, **EXACT_TOL)


def compare_report(doc: dict, ref: Reference, *, quantile_rel: float | None = None) -> list[str]:
    """Every difference between ``doc`` (report.json) and ``ref``.

    ``quantile_rel`` is the documented relative tolerance of an engine with approximate
    quantiles (Spark: 1%); None means exact like everything else.
    """
    out = Mismatches()
    tol = lambda name: quantile_rel if name in QUANTILES else None  # noqa: E731

    for name, exp in ref.metrics().items():
        got = doc["metrics"].get(name)
        if got is None:
            out.append(f"metrics.{name}: missing")
            continue
        for field in ("value", "previous", "change_pp", "direction", "good", "judged"):
            out.check(f"metrics.{name}.{field}", got[field], exp[field], rel=tol(name))
        pct_rel = None
        if tol(name) is not None and exp["value"] and exp["previous"]:
            # A percent change of two approximate values: allow the combined error of both.
            pct_rel = 2.5 * quantile_rel * max(1.0, abs(exp["value"] / exp["previous"])) * 100.0 / max(abs(exp["change_pct"]), 1e-9)
        out.check(f"metrics.{name}.change_pct", got["change_pct"], exp["change_pct"], rel=pct_rel)
    if ref.human_cost is None and SAVINGS in doc["metrics"]:  # README: only with human_cost_per_conversation
        out.append(f"metrics.{SAVINGS}: present without a human_cost_per_conversation")

    daily = {row["date"]: row for row in doc["breakdowns"]["daily"]}
    expected_days = ref.daily()
    if sorted(daily) != [d["date"] for d in expected_days]:
        out.append(f"breakdowns.daily dates: got {sorted(daily)}, expected {[d['date'] for d in expected_days]}")
    for exp in expected_days:
        for name in CONVERSATION_METRICS:
            out.check(f"daily[{exp['date']}].{name}", daily.get(exp["date"], {}).get(name), exp[name])

    agents = {row["agent_id"]: row for row in doc["breakdowns"].get("by_agent") or []}
    exp_agents = ref.by_agent()
    if set(agents) != set(exp_agents):
        out.append(f"by_agent agents: got {sorted(agents, key=str)}, expected {sorted(exp_agents, key=str)}")
    for agent, exp in exp_agents.items():
        for name, value in exp.items():
            out.check(f"by_agent[{agent}].{name}", agents.get(agent, {}).get(name), value,
                      rel=tol(name.replace("previous_", "")))

    models = {row["model"]: row for row in doc["breakdowns"].get("by_model") or []}
    exp_models = ref.by_model()
    if set(models) != set(exp_models):
        out.append(f"by_model models: got {sorted(models, key=str)}, expected {sorted(exp_models, key=str)}")
    for model, exp in exp_models.items():
        for name, value in exp.items():
            out.check(f"by_model[{model}].{name}", models.get(model, {}).get(name), value, rel=tol(name))

    got_errors = doc["breakdowns"].get("errors_by_type")
    if got_errors != ref.errors_by_type():
        out.append(f"errors_by_type: got {got_errors}, expected {ref.errors_by_type()}")

    trend = doc["breakdowns"].get("trend") or []
    exp_trend = ref.trend(len(trend) or 8)
    if len(trend) != len(exp_trend):
        out.append(f"trend: {len(trend)} periods, expected {len(exp_trend)}")
    for i, (got, exp) in enumerate(zip(trend, exp_trend)):
        for name in CONVERSATION_METRICS:
            out.check(f"trend[{i}:{got.get('key')}].{name}", got.get(name), exp[name])

    for name, value in ref.quality().items():
        got = doc["quality"].get(name)
        if name == "latest_event":  # an ISO time in the report's zone; the same instant
            if (datetime.fromisoformat(got) if got else None) != value:
                out.append(f"quality.latest_event: got {got!r}, expected {value!r}")
            continue
        out.check(f"quality.{name}", got, value)
    return out
