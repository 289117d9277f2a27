"""A second, independent trap dataset and its expected report, for tests/test_trap_audit.py.

Written from DESIGN.md's event contract and metric definitions (and README's "Metrics" and "Data
quality" where DESIGN.md leaves a choice open), without agentdigest's code and without tests/reference.py
or tests/trapdata.py: a different generator (seeded background traffic plus hand-placed traps around DST
changes) and a different plain-Python reading of the definitions, so that two readings agree, not one
reading with itself.

Readings where DESIGN.md leaves room (README settles each): an empty conversation_id or event_id is none;
of copies of an event_id the earliest whole row counts, and on a tie an invalid value sorts after every
valid one; quality counts are over the raw rows whose event_ts is in the period; a row with no event_ts
is missing in every report; a sum over conversations none of whose events has a valid value is null.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
H = timedelta(hours=24)  # max_conversation_hours, the default
KNOWN_TYPES = {"message", "tool_call", "resolution", "escalation", "error", "abandon"}
TOKEN_MAX = 2 ** 53
COLUMNS = ("event_id", "conversation_id", "event_ts", "event_type", "agent_id", "token_count",
           "latency_ms", "error_type", "error_message", "model", "cost_usd")
#: (zone, kind, key, naive timestamps in the source): a Berlin week whose Sunday falls back (169 h),
#: New York's 25-hour day and its week, the two New York ones with timestamps without a time zone.
SCENARIOS = {
    "berlin-week-2027": ("Europe/Berlin", "week", "2027-W43", False),
    "newyork-day-fallback": ("America/New_York", "day", "2026-11-01", True),
    "newyork-week-fallback": ("America/New_York", "week", "2026-W44", True),
    "newyork-day-spring": ("America/New_York", "day", "2027-03-14", False),  # 23 hours
    "berlin-month-2027": ("Europe/Berlin", "month", "2027-10", False),  # 745 hours
}
HUMAN_COST = 3.25
AGENTS = ("helpdesk", "<b>billing</b>", "ünïcødé-bøt", "😀-bot", "a" * 300, "Zeta")
MODELS = ("m-<script>alert(1)</script>", "模型-large", "gpt-x")
ERROR_TYPES = ("timeout", "RateLimit", "上游错误", None, "<i>html</i>")
HIGHER_IS_BETTER = {
    "conversations": True, "resolved_conversations": True, "escalated_conversations": False,
    "resolution_rate": True, "containment_rate": True, "errors": False, "error_conversations": False,
    "error_rate": False, "total_tokens": None, "tokens_per_conversation": False, "avg_latency_ms": False,
    "p50_latency_ms": False, "p95_latency_ms": False, "p99_latency_ms": False, "cost_usd": False,
    "estimated_savings_usd": True,
}
RATES = ("resolution_rate", "containment_rate", "error_rate")
SERIES = ("conversations", "resolved_conversations", "escalated_conversations", "resolution_rate",
          "containment_rate", "errors", "error_conversations", "error_rate", "total_tokens",
          "tokens_per_conversation", "avg_latency_ms", "cost_usd")


# -- periods -------------------------------------------------------------------------------------

def period_days(kind: str, key: str, back: int = 0) -> tuple[date, int]:
    """The first local day and the number of days of the period ``back`` periods before ``key``'s."""
    if kind == "day":
        return date.fromisoformat(key) - timedelta(days=back), 1
    if kind == "week":
        year, week = key.split("-W")
        return date.fromisocalendar(int(year), int(week), 1) - timedelta(days=7 * back), 7
    year, month = map(int, key.split("-"))
    index = year * 12 + month - 1 - back
    first = date(index // 12, index % 12 + 1, 1)
    after = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
    return first, (after - first).days


def local_midnight(d: date, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def period(scenario: str, back: int = 0) -> tuple[datetime, datetime, date]:
    """[start, end) in UTC and the first local day of the period ``back`` periods before the report's."""
    tz, kind, key, _ = SCENARIOS[scenario]
    first, days = period_days(kind, key, back)
    return local_midnight(first, tz), local_midnight(first + timedelta(days=days), tz), first


def key_of(kind: str, first: date) -> str:
    if kind == "day":
        return first.isoformat()
    if kind == "month":
        return first.isoformat()[:7]
    year, week, _ = first.isocalendar()
    return f"{year}-W{week:02d}"


def now_for(scenario: str) -> datetime:
    return period(scenario)[1] + timedelta(hours=9)


# -- the events ------------------------------------------------------------------------------------

class Events:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.n = 0

    def add(self, conv, ts, etype, *, eid="auto", agent="helpdesk", model="gpt-x", tokens=None, latency=None,
            error_type=None, message=None, cost=None, copies=1) -> dict:
        if eid == "auto":
            self.n += 1
            eid = f"ev-{self.n:05d}"
        row = dict(event_id=eid, conversation_id=conv, event_ts=ts, event_type=etype, agent_id=agent,
                   token_count=tokens, latency_ms=latency, error_type=error_type, error_message=message,
                   model=model, cost_usd=cost)
        self.rows.extend(dict(row) for _ in range(copies))
        return row


def _background(ev: Events, rng: random.Random, scenario: str) -> None:
    """A few ordinary conversations every local day from 12 periods back to the period's end."""
    tz, kind, _, _ = SCENARIOS[scenario]
    start_day = period(scenario, 12)[2]
    end_day = period(scenario)[2] + timedelta(days=period_days(kind, SCENARIOS[scenario][2])[1])
    per_day = {"day": 6, "week": 8, "month": 1}[kind]
    # An outage from P's Tuesday (to Wednesday; to Thursday's traps in Berlin, under 95% complete): days without
    # conversations, and a gap (README, Data quality)
    days = (1, 2, 3) if tz == "Europe/Berlin" else (1, 2)
    quiet = {period(scenario)[2] + timedelta(days=k) for k in days} if kind == "week" else set()
    d = start_day
    while d < end_day:
        for i in range(per_day if d not in quiet else 0):
            local = datetime(d.year, d.month, d.day, 8 + 2 * i, rng.randrange(60), rng.randrange(60), tzinfo=ZoneInfo(tz))
            t = local.astimezone(UTC)
            conv = f"bg-{d.isoformat()}-{i}"
            agent, model = rng.choice(AGENTS), rng.choice(MODELS)
            for step in range(rng.randint(1, 4)):
                etype = rng.choice(("message", "message", "tool_call", "error"))
                ev.add(conv, t, etype, agent=agent, model=model, tokens=rng.randint(0, 900),
                       latency=round(rng.uniform(20, 4000), 3), cost=round(rng.uniform(0, 0.02), 6),
                       error_type=rng.choice(ERROR_TYPES) if etype == "error" else None,
                       message="boom" if etype == "error" else None)
                t += timedelta(seconds=rng.randint(1, 600))
            end = rng.choice(("resolution", "resolution", "escalation", "abandon", None))
            if end:
                ev.add(conv, t, end, agent=agent, model=model)
        d += timedelta(days=1)


def _dst_instants(tz: str, lo: datetime, hi: datetime) -> list[datetime]:
    """UTC instants in [lo, hi) where the zone's offset changes (hour steps)."""
    zone, out, t = ZoneInfo(tz), [], lo
    while t < hi:
        if t.astimezone(zone).utcoffset() != (t + timedelta(hours=1)).astimezone(zone).utcoffset():
            out.append(t + timedelta(hours=1))
        t += timedelta(hours=1)
    return out


def build(scenario: str) -> list[dict]:
    tz, kind, key, _ = SCENARIOS[scenario]
    rng = random.Random(f"audit-{scenario}")
    ev = Events()
    _background(ev, rng, scenario)
    s, e, _ = period(scenario)
    ps = period(scenario, 1)[0]
    us, m = timedelta(microseconds=1), timedelta(minutes=1)
    # Period edges: a conversation at the very start; one at the very end (next period's); one a microsecond
    # before the start whose resolution lies inside P (the previous period's outcome, P's quality rows);
    # one a microsecond before the end, escalated after it (P's, and P's latest event).
    ev.add("t-at-start", s, "message", agent="Zeta", tokens=10, latency=100.0, cost=0.001)
    ev.add("t-at-start", s + m, "resolution", agent="helpdesk")
    ev.add("t-at-end", e, "message", tokens=999, latency=9.0, cost=1.0)
    ev.add("t-at-end", e + m, "resolution")
    ev.add("t-span-prev", s - us, "message", tokens=5, latency=50.0, cost=0.5)
    ev.add("t-span-prev", s + 30 * m, "resolution", latency=-3.0)  # invalid latency: in P's quality
    ev.add("t-span-prev", s + 31 * m, "error", error_type="timeout", tokens=-4)  # P's quality, Pp's outcome
    ev.add("t-last", e - us, "message", agent="😀-bot", tokens=7, latency=1e15, cost=0.25)  # huge but valid
    ev.add("t-last", e + 2 * m, "escalation")
    ev.add("t-last", e + 3 * m, "error", error_type="RateLimit")  # after P.end: still its outcome
    # The DST change(s) inside P: events an hour apart in UTC that read as the same local time.
    for i, t in enumerate(_dst_instants(tz, s, e)):
        for j, at in enumerate((t - 30 * m, t + 30 * m)):
            conv = f"t-dst-{i}-{j}"
            ev.add(conv, at, "message", agent="ünïcødé-bøt", model="模型-large", tokens=100 + j, latency=333.0 + j, cost=0.01)
            ev.add(conv, at + m, "error" if j else "resolution", error_type="上游错误" if j else None, latency=0.0)
    # Duplicates: identical copies, a later copy with another payload (never counted), a copy a period late,
    # a copy naming another conversation (which then has no event), and a tie of latency 7 against -5.
    mid = s + (e - s) / 2
    ev.add("t-dupe", mid, "message", eid="dup-same", tokens=20, latency=200.0, cost=0.002, copies=3)
    ev.add("t-dupe", mid + m, "resolution", eid="dup-edit")
    ev.add("t-dupe", mid + 5 * m, "escalation", eid="dup-edit", tokens=-1, latency=float("nan"))
    ev.add("t-dupe-other", mid + 10 * m, "message", eid="dup-same", tokens=1)  # a copy: no conversation
    prev_mid = ps + (s - ps) / 2
    ev.add("t-prev-dup", prev_mid, "message", eid="dup-late", tokens=30, latency=300.0)
    ev.add("t-prev-dup", mid + 20 * m, "message", eid="dup-late", tokens=30, latency=300.0)  # arrives in P
    ev.add("t-tie", mid + 30 * m, "message", eid="dup-tie", latency=7.0)
    ev.add("t-tie", mid + 30 * m, "message", eid="dup-tie", latency=-5.0)
    # Rows without an event_id (null or empty) are never merged, even when identical.
    ev.add("t-noid", mid + 40 * m, "message", eid=None, tokens=3, latency=30.0, copies=2)
    ev.add("t-noid", mid + 41 * m, "resolution", eid="", copies=2)
    # Missing required fields, unknown and mis-cased types.
    ev.add(None, mid, "message", tokens=50)
    ev.add("", mid + m, "resolution", tokens=50)
    ev.add("t-nots", None, "message", tokens=50)
    ev.add(None, None, "error")
    ev.add("t-types", mid + 50 * m, "Resolution", tokens=11, latency=110.0)  # unknown: never resolves
    ev.add("t-types", mid + 51 * m, None, tokens=12)
    ev.add("t-types", mid + 52 * m, "", latency=float("inf"))
    ev.add("t-types", mid + 53 * m, "handoff", latency=float("-inf"), cost=float("nan"))
    ev.add("t-types", mid + 54 * m, "ESCALATION")
    ev.add("t-types", mid + 55 * m, "message", error_type="timeout", cost=float("inf"))  # not an error event
    # Agents: a tie at the first instant (byte order: "Zeta" < "helpdesk"), a null first agent, a later switch.
    ev.add("t-agent-tie", mid + 60 * m, "message", agent="helpdesk", tokens=1)
    ev.add("t-agent-tie", mid + 60 * m, "message", agent="Zeta", tokens=2)
    ev.add("t-agent-null", mid + 70 * m, "message", agent=None, model=None, tokens=TOKEN_MAX * 4, latency=0.5)
    ev.add("t-agent-null", mid + 71 * m, "resolution", agent="helpdesk")
    ev.add("t-agent-switch", mid + 80 * m, "message", agent="<b>billing</b>", cost=-0.75)  # a credit is valid
    ev.add("t-agent-switch", mid + 81 * m, "escalation", agent="helpdesk")
    ev.add("t-agent-switch", mid + 82 * m, "resolution", agent="helpdesk")  # escalated and resolved
    ev.add("t-agent-switch", mid + 83 * m, "resolution", agent="helpdesk")
    # Errors: several in one conversation, a null type, very long HTML-ish text.
    long_text = ("<div>" + "x" * 5000 + "</div>") * 4
    for k in range(3):
        ev.add("t-errors", mid + (90 + k) * m, "error", error_type=None if k == 2 else "timeout",
               message=long_text, tokens=0, latency=float(k))
    # Empty names are their own rows, apart from null ones; names differing in case or a space are different.
    ev.add("t-empty-names", mid + 100 * m, "message", agent="", model="", tokens=4, latency=40.0)
    ev.add("t-empty-names", mid + 101 * m, "error", agent="", model="", error_type="")
    ev.add(" t-empty-names", mid + 102 * m, "message ", agent="HELPDESK")  # another conversation; unknown type
    # A tie of copies naming two conversations: the smaller by bytes ("T-" before "t-") is kept.
    ev.add("t-tie-conv", mid + 110 * m, "message", eid="dup-conv-tie", agent="Zeta")
    ev.add("T-tie-conv", mid + 110 * m, "message", eid="dup-conv-tie", agent="Zeta")
    # Future rows: counted wherever they are; a row without a conversation_id is not one of them.
    ev.add("t-future", datetime(2099, 1, 1, tzinfo=UTC), "message", tokens=5)
    ev.add(None, datetime(2099, 1, 2, tzinfo=UTC), "message")
    return ev.rows


# -- the expected report -----------------------------------------------------------------------------

def valid_latency(x) -> bool:
    return x is not None and math.isfinite(x) and x >= 0


def valid_tokens(x) -> bool:
    return x is not None and 0 <= x <= TOKEN_MAX


def valid_cost(x) -> bool:
    return x is not None and math.isfinite(x)


def _has_conv(r: dict) -> bool:
    return r["conversation_id"] not in (None, "")


def _copy_key(r: dict) -> tuple:
    checks = {"latency_ms": valid_latency, "token_count": valid_tokens, "cost_usd": valid_cost}
    key = []
    for c in COLUMNS:
        v = r[c]
        bad = v is None or (c in checks and not checks[c](v))
        key.append((bad, 0 if bad else v))
    return tuple(key)


def kept_rows(rows: list[dict]) -> list[dict]:
    """Valid rows, one per event_id (the earliest; ties: the smallest copy, invalid values last)."""
    valid = [r for r in rows if _has_conv(r) and r["event_ts"] is not None]
    best: dict[str, dict] = {}
    out = []
    for r in valid:
        if r["event_id"] in (None, ""):
            out.append(r)
        elif r["event_id"] not in best or (r["event_ts"], _copy_key(r)) < (best[r["event_id"]]["event_ts"],
                                                                           _copy_key(best[r["event_id"]])):
            best[r["event_id"]] = r
    return out + list(best.values())
