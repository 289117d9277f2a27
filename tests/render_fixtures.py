"""Realistic ReportData built directly, for the renderer tests and bench/render.py.

``make_report`` covers both audiences, complete and incomplete weeks, hostile event text
(markup in agent ids, error types and messages), planted PII, missing values, a period with no
conversations and reports whose optional breakdowns are absent.
"""

from __future__ import annotations

import email
import io
import json
import random
from datetime import date, datetime, timedelta, timezone
from email import policy
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agentdigest.changes import compute_change
from agentdigest.report import Gap, MetricValue, PeriodInfo, Quality, ReportData

HOSTILE_AGENT = "<script>alert(1)</script>"
HOSTILE_TYPE = "<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = '"><script>alert(document.cookie)</script><img src=x onerror=alert(2)> & <b>bold</b>'
HOSTILE = (HOSTILE_AGENT, HOSTILE_TYPE, HOSTILE_MESSAGE)
# Planted PII: none of these may survive into any artifact when redaction is on.
PII = {
    "email": "jane.doe@example.com",
    "phone": "+1 (415) 555-0142",
    "card": "4111 1111 1111 1111",
    "ssn": "123-45-6789",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ip": "192.168.10.24",
}
TZ = "Europe/Berlin"

# name -> (label, unit, higher_is_better)
METRICS: dict[str, tuple[str, str, bool | None]] = {
    "conversations": ("Conversations", "count", None),
    "resolved_conversations": ("Resolved conversations", "count", True),
    "escalated_conversations": ("Escalated conversations", "count", False),
    "resolution_rate": ("Resolution rate", "percent", True),
    "containment_rate": ("Containment rate", "percent", True),
    "errors": ("Errors", "count", False),
    "error_conversations": ("Conversations with errors", "count", False),
    "error_rate": ("Error rate", "percent", False),
    "total_tokens": ("Tokens", "tokens", None),
    "tokens_per_conversation": ("Tokens per conversation", "tokens", False),
    "avg_latency_ms": ("Average latency", "ms", False),
    "p50_latency_ms": ("p50 latency", "ms", False),
    "p95_latency_ms": ("p95 latency", "ms", False),
    "p99_latency_ms": ("p99 latency", "ms", False),
    "cost_usd": ("Cost", "usd", False),
    "estimated_savings_usd": ("Estimated savings", "usd", True),
}


def metric(name: str, value: Any, previous: Any, notable: bool | None = None) -> MetricValue:
    label, unit, hib = METRICS[name]
    change = compute_change(value, previous, is_rate=unit == "percent", higher_is_better=hib)
    return MetricValue(name, label, unit, value, previous, change.change_pct, change.change_pp,
                       change.direction, change.good, hib, notable=notable)


def _period(kind: str, start: date, tz: ZoneInfo) -> PeriodInfo:
    end = start + timedelta(days=7 if kind == "week" else 1)
    year, week, _ = start.isocalendar()
    key = f"{year}-W{week:02d}" if kind == "week" else start.isoformat()
    return PeriodInfo(key, datetime.combine(start, datetime.min.time(), tz),
                      datetime.combine(end, datetime.min.time(), tz))


def _summary(convs: int, rng: random.Random) -> dict[str, Any]:
    resolved = int(convs * rng.uniform(0.55, 0.66))
    escalated = int(convs * rng.uniform(0.12, 0.2))
    error_convs = int(convs * rng.uniform(0.02, 0.05))
    tokens = convs * rng.randint(1500, 2100)
    rate = (lambda x: x / convs * 100) if convs else (lambda x: None)
    return {
        "conversations": convs, "resolved_conversations": resolved, "escalated_conversations": escalated,
        "resolution_rate": rate(resolved), "containment_rate": rate(convs - escalated),
        "errors": int(error_convs * 1.4), "error_conversations": error_convs, "error_rate": rate(error_convs),
        "total_tokens": tokens, "cost_usd": round(tokens * 0.0000061, 4),
        "avg_latency_ms": rng.uniform(820, 980) if convs else None,
    }


def make_report(audience: str = "executive", *, warning: bool = False, hostile: bool = False,
                pii: bool = False, zero: bool = False, missing: bool = False, nulls: bool = False,
                locale: str = "en", page_size: str = "A4", human_cost: float | None = 4.5,
                agents: int = 6, redact: bool = True, failures: int = 5, seed: int = 7,
                long_ids: bool = False, models: int = 2, title: str | None = None, subject: str = "{title} — {period_label}") -> ReportData:
    """A week of a realistic agent programme, shaped by the flags."""
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    start = date(2026, 11, 23)
    period = _period("week", start, tz)
    previous = _period("week", start - timedelta(days=7), tz)
    volumes = [1840, 1925, 2010, 1980, 2105, 2160, 2210, 2480]
    trend = []
    for i, convs in enumerate(volumes):
        p = _period("week", start - timedelta(days=7 * (7 - i)), tz)
        trend.append({"key": p.key, "start": p.start.isoformat(), "end": p.end.isoformat(), **_summary(convs, rng)})
    if zero:
        trend[-1] = {**trend[-1], **_summary(0, rng)}
    cur, prev = trend[-1], trend[-2]
    values = {k: cur[k] for k in cur if k in METRICS}
    before = {k: prev[k] for k in prev if k in METRICS}
    for row, target in ((cur, values), (prev, before)):
        n = row["conversations"]
        target["tokens_per_conversation"] = row["total_tokens"] / n if n else None
        base = row["avg_latency_ms"]
        target.update({"p50_latency_ms": base and base * 0.8, "p95_latency_ms": base and base * 2.4,
                       "p99_latency_ms": base and base * 4.1})
        if human_cost is not None:
            target["estimated_savings_usd"] = (n - row["escalated_conversations"]) * human_cost - row["cost_usd"]
    if nulls:
        values["p99_latency_ms"] = None
        before["cost_usd"] = None
        before["estimated_savings_usd"] = None
    notable = {"conversations": True, "resolution_rate": True, "error_rate": False}
    metrics = {name: metric(name, values.get(name), before.get(name), notable.get(name))
               for name in METRICS if name in values}
    if missing:
        for name in ("total_tokens", "tokens_per_conversation", "cost_usd", "estimated_savings_usd"):
            metrics.pop(name, None)

    agent_names = ["support-bot@v3", "billing-agent", "returns-assistant", "onboarding-guide",
                   "tech-triage@2026.11", "sales-helper", "kb-searcher", "escalation-router"]
    agent_names = (agent_names * 10)[:agents]
    if agents > 8:
        agent_names = [f"{name}-{i}" for i, name in enumerate(agent_names)]
    if long_ids:  # as a deployment names them: team, purpose, region and version
        agent_names = [f"customer-support-{name.split('@')[0]}-eu-west-1@v2026.11.{i}" for i, name in enumerate(agent_names)]
    if hostile:
        agent_names[1] = HOSTILE_AGENT
    if pii:
        agent_names[2] = f"agent {PII['email']}"
    total = cur["conversations"]
    by_agent = []
    for i, name in enumerate(agent_names):
        convs = total // (i + 2) if total else 0
        by_agent.append({
            "agent_id": name, "conversations": convs, "resolution_rate": rng.uniform(50, 75) if convs else None,
            "containment_rate": rng.uniform(78, 90) if convs else None, "errors": rng.randint(0, 40),
            "error_rate": rng.uniform(1, 6) if convs else None, "total_tokens": convs * 1800,
            "cost_usd": convs * 0.011, "avg_latency_ms": rng.uniform(700, 1100),
            "p95_latency_ms": rng.uniform(1800, 2600), "previous_conversations": int(convs * rng.uniform(0.8, 1.1)),
            "previous_resolution_rate": rng.uniform(50, 75), "previous_p95_latency_ms": rng.uniform(1800, 2600),
        })
    if long_ids:  # and each agent's error rate a week before; some figures unchanged: "no change", the widest changes
        for i, row in enumerate(by_agent):
            row["previous_error_rate"] = row["error_rate"] and row["error_rate"] + (i % 3 - 1) * (i + 3) * 1.7 * (i % 2)
            if i % 3 == 0:
                row["previous_resolution_rate"] = row["resolution_rate"]
            if i % 3 == 1:
                row["previous_p95_latency_ms"] = row["p95_latency_ms"]
    if nulls:
        by_agent.append({k: None for k in by_agent[0]} | {"agent_id": None})
    by_model = [
        {"model": "gpt-4o-2024-08-06", "events": 18211, "conversations": int(total * 0.7), "total_tokens": int(cur["total_tokens"] * 0.72),
         "cost_usd": cur["cost_usd"] * 0.8, "avg_latency_ms": 910.0, "p95_latency_ms": 2210.0, "errors": 41},
        {"model": "claude-3-5-haiku", "events": 6020, "conversations": int(total * 0.3), "total_tokens": int(cur["total_tokens"] * 0.28),
         "cost_usd": cur["cost_usd"] * 0.2, "avg_latency_ms": 640.0, "p95_latency_ms": 1490.0, "errors": 12},
    ]
    if models > 2:  # the two above, then the next ones with ids as providers write them
        more = ["anthropic.claude-3-5-sonnet-20241022-v2:0", "meta-llama/Llama-3.1-70B-Instruct-Turbo",
                "gpt-4o-mini-2024-07-18", "gemini-1.5-pro-002", "mistral-large-2411", "text-embedding-3-large",
                "us.amazon.nova-pro-v1:0", "accounts/fireworks/models/qwen2p5-72b-instruct"]
        by_model = by_model[:1] + [{**by_model[1], "model": name, "conversations": int(total * 0.3) // (i + 1),
                                    "total_tokens": int(cur["total_tokens"] * 0.28) // (i + 1), "errors": 12 + i}
                                   for i, name in enumerate((["claude-3-5-haiku"] + more * 3)[:models - 1])]
    errors = [{"error_type": "tool_timeout", "count": 57, "previous": 31},
              {"error_type": "rate_limited", "count": 22, "previous": 40},
              {"error_type": "schema_validation", "count": 9, "previous": 0},
              {"error_type": "upstream_5xx", "count": 4, "previous": None}]
    if hostile:
        errors.append({"error_type": HOSTILE_TYPE, "count": 3, "previous": 1})
    messages = ["Tool 'crm.lookup' timed out after 30000 ms (attempt 3 of 3) " + "while fetching order history " * 12,
                "Rate limited by upstream: retry after 12 s",
                "Customer asked for a human agent",
                "Response failed schema validation: missing field 'order_id' at 2026-11-28T10:15:30Z",
                "Upstream returned HTTP 503"]
    if hostile:
        messages[1] = HOSTILE_MESSAGE
    if pii:
        messages[2] = (f"Customer {PII['email']} (phone {PII['phone']}, card {PII['card']}, SSN {PII['ssn']}, "
                       f"IBAN {PII['iban']}) from {PII['ip']} asked for a refund; "
                       # disguised by characters that cleaning removes (found in a security audit)
                       "again: card 4111\x1b1111\u200b1111\n1111, mail jane.doe\x1b@example.com")
    examples = []
    for i in range(failures):
        when = period.start + timedelta(days=6, hours=20 - i * 3, minutes=17)
        examples.append({
            "conversation_id": f"conv-{9000 + i:05d}", "agent_id": agent_names[i % len(agent_names)],
            "event_ts": when.isoformat(), "event_type": "escalation" if i == 2 else "error",
            "error_type": None if i == 2 else errors[i % len(errors)]["error_type"],
            "error_message": messages[i % len(messages)],
        })
    if hostile and examples:
        examples[0]["error_type"] = HOSTILE_TYPE
    daily = []
    for d in range(7):
        day = start + timedelta(days=d)
        convs = total // 7 + rng.randint(-40, 40) if total else 0
        if warning and d == 2:
            convs = convs // 3
        daily.append({"date": day.isoformat(), **{k: v for k, v in _summary(convs, rng).items()
                                                    if k not in ("error_conversations",)}})
    if nulls:
        daily[4]["avg_latency_ms"] = None
        daily[4]["cost_usd"] = None
    gaps = ()
    if warning:
        gap_start = datetime(2026, 11, 25, 2, 0, tzinfo=tz)
        gaps = (Gap(gap_start, gap_start + timedelta(hours=6)),
                Gap(gap_start + timedelta(hours=20), gap_start + timedelta(hours=23)))
    quality = Quality(
        completeness_pct=81.4 if warning else 99.2, warning=warning, threshold=95.0,
        received_events=24180 if warning else 29470, expected_events=29705.0, baseline="previous_periods",
        duplicate_events=12, missing_required=2, invalid_latency=1, invalid_tokens=None if missing else 1,
        unknown_event_types=3, future_events=0, gaps=gaps,
    )
    notes = ("The events have no cost_usd column: agent cost is not shown.",
             "The events have no token_count column: tokens and tokens per conversation are not shown.") if missing else ()
    return ReportData(
        report_id=f"weekly-{audience if audience in ('executive', 'engineering') else 'custom'}",
        title=title or ("Agent Performance — Executive" if audience != "engineering" else "Agent Performance — Engineering"),
        audience=audience, generated_at=datetime(2026, 11, 30, 9, 0, 2, tzinfo=tz), timezone=TZ,
        period_kind="week", period=period, previous_period=previous, metrics=metrics,
        daily=tuple(daily), by_agent=None if missing else tuple(by_agent),
        by_model=None if missing else tuple(by_model), errors_by_type=tuple(errors),
        trend=tuple(trend), failure_examples=tuple(examples), quality=quality, notes=notes,
        settings={"human_cost_per_conversation": human_cost, "locale": locale, "page_size": page_size,
                  "subject": subject, "audience": audience, "redact": redact, "redact_patterns": {},
                  "completeness_threshold": 95.0},
    )


def demo_reports(folder: Path) -> dict[str, dict[str, bytes]]:
    """`agentdigest demo`'s two reports for 2026-W47 (seeded events in ``folder``, computed as `agentdigest run`
    does), rendered: {audience: artifacts}."""
    from agentdigest.config import load_config
    from agentdigest.demo import setup
    from agentdigest.periods import parse_period
    from agentdigest.render import render_artifacts
    from agentdigest.runner import compute
    from agentdigest.sources import open_source

    now = datetime(2026, 11, 29, 8, 2, tzinfo=timezone.utc)
    config = load_config(setup(folder, now=now))
    source = open_source(config.source, config.path)
    try:
        return {r.audience: render_artifacts(compute(source, config, r, parse_period(r.period, "2026-W47", r.timezone), now),
                                             now=datetime(2026, 11, 30, 8, 0, 5, tzinfo=timezone.utc))
                for r in config.reports}
    finally:
        source.close()


# --- reading artifacts back -------------------------------------------------------------------

@lru_cache(maxsize=64)
def rendered(audience: str = "executive", **flags: Any) -> dict[str, bytes]:
    """render_artifacts of make_report(audience, **flags), shared between tests (artifacts are bytes)."""
    from agentdigest.render import render_artifacts

    now = datetime(2026, 11, 30, 9, 0, 5, tzinfo=ZoneInfo(TZ))
    return render_artifacts(make_report(audience, **flags), now=now)


class ParsedHTML(HTMLParser):
    """Every start tag with its attributes, and the document's text as a reader sees it."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def pdf_text(pdf: bytes) -> list[str]:
    """The text of each PDF page (pypdf)."""
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def parse_eml(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def eml_texts(raw: bytes) -> dict[str, str]:
    """The decoded text parts of an email: {"text/plain": ..., "text/html": ...}."""
    msg = parse_eml(raw)
    return {part.get_content_type(): part.get_content() for part in msg.walk()
            if part.get_content_type() in ("text/plain", "text/html")}


def slack_texts(value: object, kind: str | None = None) -> list[str]:
    """Every "text" string anywhere in a Block Kit structure (only those of text objects of ``kind``, if given)."""
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) and kind in (None, value.get("type")) else []
        return found + [t for v in value.values() for t in slack_texts(v, kind)]
    if isinstance(value, list):
        return [t for v in value for t in slack_texts(v, kind)]
    return []


def readable(files: dict[str, bytes]) -> dict[str, str]:
    """Every artifact as the text a person (or a client) would end up reading."""
    out = {name: files[name].decode() for name in ("report.json", "report.html", "report.txt") if name in files}
    if "slack.json" in files:  # Slack interprets mrkdwn (and the notification text); plain_text it shows as it is
        payload = json.loads(files["slack.json"])
        out["slack.json"] = "\n".join([payload["text"], *slack_texts(payload["blocks"], "mrkdwn")])
        out["slack.json plain_text"] = "\n".join(slack_texts(payload["blocks"], "plain_text"))
    if "report.pdf" in files:
        out["report.pdf"] = "\n".join(pdf_text(files["report.pdf"]))
    if "message.eml" in files:
        for kind, text in eml_texts(files["message.eml"]).items():
            out[f"message.eml {kind}"] = text
        msg = parse_eml(files["message.eml"])
        out["message.eml headers"] = "\n".join(f"{k}: {v}" for k, v in msg.items())
        for part in msg.walk():
            if part.get_content_type() == "application/pdf":
                out["message.eml pdf"] = "\n".join(pdf_text(part.get_content()))
    return out
