"""Synthetic agent events, generated inside DuckDB (for the demo and the benchmark).

Realistic enough to make a report worth reading: weekday and hour-of-day seasonality, four
agents on two models, error bursts, escalated-then-resolved conversations, a latency and error
regression of one agent in the latest week, and a few dirty rows of every kind the quality
section counts. Generation is pure SQL, so 100M events need no Python memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

AGENTS = ("support-bot", "billing-bot", "onboarding-bot", "returns-bot")
MODELS = ("gpt-4.1-mini", "claude-sonnet-4")

_SQL = """
CREATE OR REPLACE TEMP TABLE _conv AS
WITH cand AS (
  SELECT i,
         floor(random() * {days})::INT AS d,
         floor(random() * 24)::INT AS h,
         random() AS s, random() AS acc, random() AS ra, random() AS rm, random() AS ro, random() AS re,
         random() AS rn
  FROM range({candidates}) t(i)
)
SELECT row_number() OVER () AS cid,
       TIMESTAMPTZ '{start}' + to_days(d) + to_hours(h) + to_microseconds((s * 3600e6)::BIGINT) AS t0,
       CASE WHEN ra < 0.40 THEN 'support-bot' WHEN ra < 0.65 THEN 'billing-bot'
            WHEN ra < 0.85 THEN 'onboarding-bot' ELSE 'returns-bot' END AS agent,
       ro, re, rn, rm,
       d >= {regression_day} AS regressed,
       -- error bursts: two afternoons with five times the usual rate
       (d IN ({burst_days}) AND h BETWEEN 13 AND 16) AS burst
FROM cand
WHERE acc < (CASE WHEN isodow(DATE '{start_date}' + d) >= 6 THEN 0.55 ELSE 1.0 END)
          * (0.15 + 0.85 * pow(sin(pi() * (h - 4) / 20.0), 2) * (h BETWEEN 5 AND 23)::INT + 0.05)
LIMIT {conversations};

CREATE OR REPLACE TABLE {table} AS
WITH c AS (
  SELECT *,
         CASE WHEN agent = 'billing-bot' AND regressed THEN 2.4 ELSE 1.0 END AS slow,
         CASE WHEN agent IN ('support-bot', 'billing-bot') THEN '{m0}' ELSE '{m1}' END AS model,
         2 + floor(rn * 6)::INT AS n_msg,
         CASE WHEN ro < 0.62 THEN 'resolution' WHEN ro < 0.80 THEN 'escalation' ELSE 'abandon' END AS outcome,
         re < (CASE WHEN burst THEN 0.30 ELSE 0.04 END) * (CASE WHEN agent = 'billing-bot' AND regressed THEN 3.5 ELSE 1 END) AS has_error
  FROM _conv
), ev AS (
  SELECT c.*, unnest(range(n_msg + 1 + has_error::INT + (outcome = 'escalation' AND rm < 0.3)::INT)) AS seq
  FROM c
), typed AS (
  SELECT *,
         CASE WHEN seq < n_msg THEN (CASE WHEN seq % 3 = 2 THEN 'tool_call' ELSE 'message' END)
              WHEN has_error AND seq = n_msg THEN 'error'
              WHEN seq = n_msg + has_error::INT THEN outcome
              ELSE 'resolution' END AS event_type,
         random() AS u1, random() AS u2, random() AS u3
  FROM ev
)
SELECT 'evt_' || cid || '_' || seq AS event_id,
       'conv_' || cid AS conversation_id,
       t0 + to_microseconds(((seq * 20 + u3 * 15) * 1e6)::BIGINT) AS event_ts,
       event_type,
       agent AS agent_id,
       CASE WHEN event_type IN ('message', 'tool_call') THEN (120 + u1 * 900)::INT END AS token_count,
       CASE WHEN event_type IN ('message', 'tool_call')
            THEN slow * exp(ln(CASE WHEN event_type = 'tool_call' THEN 1400 ELSE 850 END)
                 + 0.45 * sqrt(-2 * ln(greatest(u1, 1e-12))) * cos(2 * pi() * u2)) END AS latency_ms,
       CASE WHEN event_type = 'error'
            THEN (['tool_timeout', 'rate_limited', 'invalid_tool_args', 'upstream_5xx'])[1 + floor(u2 * 4)::INT] END AS error_type,
       -- the message says what its error_type names (same index, no further random() draw: volumes stay as they were)
       CASE WHEN event_type = 'error' THEN (CASE floor(u2 * 4)::INT
              WHEN 0 THEN 'Tool call timed out after ' || (1000 + floor(u1 * 29000))::INT || ' ms'
              WHEN 1 THEN 'Model API rate limit exceeded (HTTP 429), retry after ' || (1 + floor(u1 * 60))::INT || ' s'
              WHEN 2 THEN 'Tool call rejected: required argument '
                          || (['order_id', 'customer_id', 'quantity'])[1 + floor(u1 * 3)::INT] || ' is missing'
              ELSE 'Upstream service returned HTTP ' || (['502', '503', '504'])[1 + floor(u1 * 3)::INT]
                   || ' after ' || (200 + floor(u1 * 9800))::INT || ' ms' END)
            WHEN event_type = 'escalation' THEN 'Customer asked for a human' END AS error_message,
       model,
       CASE WHEN event_type IN ('message', 'tool_call')
            THEN round((120 + u1 * 900) * CASE WHEN model = '{m0}' THEN 0.0000016 ELSE 0.000009 END, 6) END AS cost_usd
FROM typed;
"""

_DIRTY = """
INSERT INTO {table} SELECT * FROM {table} WHERE event_ts >= TIMESTAMPTZ '{last_week}' AND event_ts < TIMESTAMPTZ '{last_week}' + INTERVAL 6 DAY USING SAMPLE 12 ROWS;
INSERT INTO {table} VALUES
 ('dirty_1', NULL, TIMESTAMPTZ '{last_week}' + INTERVAL 2 DAY, 'message', 'support-bot', 100, 500, NULL, NULL, '{m0}', 0.0002),
 ('dirty_2', 'conv_dirty_a', NULL, 'message', 'support-bot', 100, 500, NULL, NULL, '{m0}', 0.0002),
 ('dirty_3', 'conv_dirty_b', TIMESTAMPTZ '{last_week}' + INTERVAL 3 DAY, 'message', 'returns-bot', 90, -40, NULL, NULL, '{m1}', 0.001),
 ('dirty_4', 'conv_dirty_b', TIMESTAMPTZ '{last_week}' + INTERVAL 3 DAY + INTERVAL 1 MINUTE, 'message', 'returns-bot', -5, 'NaN'::DOUBLE, NULL, NULL, '{m1}', 0.001),
 ('dirty_5', 'conv_dirty_b', TIMESTAMPTZ '{last_week}' + INTERVAL 3 DAY + INTERVAL 2 MINUTE, 'handoff_v2', 'returns-bot', NULL, NULL, NULL, NULL, '{m1}', NULL),
 ('dirty_6', 'conv_dirty_c', TIMESTAMPTZ '2099-01-01 00:00:00+00', 'message', 'support-bot', 10, 100, NULL, NULL, '{m0}', 0.0001);
"""


def generate(con: Any, *, table: str = "agent_events", conversations: int, end: datetime,
             days: int = 70, seed: float = 0.42, dirty: bool = True,
             latest: datetime | None = None) -> int:
    """Create ``table`` in the DuckDB connection ``con`` (a duckdb.DuckDBPyConnection) and return its row count.

    Events span the ``days`` days before ``end`` (UTC midnights); about ``conversations``
    conversations of 4-10 events each (about 6.5 events per conversation on average).
    ``latest`` is where the regression and the dirty rows begin (default: 7 days before ``end``).
    """
    end = end.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SELECT setseed({seed})")
    latest = (latest or end - timedelta(days=7)).astimezone(timezone.utc)
    params = dict(
        table=table, days=days, start=start.isoformat(), start_date=start.date().isoformat(),
        candidates=int(conversations * 3.2), conversations=int(conversations),
        regression_day=(latest - start).days, burst_days=f"{days - 3}, {days - 25}", m0=MODELS[0], m1=MODELS[1],
        last_week=latest.isoformat(),
    )
    con.execute(_SQL.format(**params))
    if dirty:
        con.execute(_DIRTY.format(**params))
    con.execute("DROP TABLE IF EXISTS _conv")
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
