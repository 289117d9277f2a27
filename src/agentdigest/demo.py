"""``agentdigest demo``: realistic synthetic events in an embedded DuckDB and a ready config."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from .errors import InputError
from .periods import last_complete

DEMO_CONFIG = """\
# agentdigest demo configuration: written by `agentdigest demo`, safe to edit and re-run with
#   agentdigest run --config {dir}/agentdigest.toml
# Relative paths are relative to this file's folder.

[source]
url = "duckdb://events.duckdb"      # postgresql://user@host/db or pyspark://local[*] in production
table = "agent_events"
# [source.columns] maps canonical column names to yours, e.g. event_ts = "created_at"

[archive]
path = "reports"                    # reports/<report id>/<period>/report.json, .html, .pdf, ...

[ledger]
url = "sqlite:///agentdigest.db"    # remembers what was sent, so nothing is sent twice

[channels.outbox]
type = "outbox"                     # every delivery becomes a new .eml (+ Slack payload) on disk
path = "outbox"

# To send for real, add e.g.:
# [channels.leadership]
# type = "email"
# to = ["cto@example.com"]
# from = "agent-reports@example.com"
# smtp_url = "${{SMTP_URL}}"          # secrets come only from the environment

[[reports]]
id = "weekly-exec"
title = "Agent Performance - Executive"
audience = "executive"
period = "week"
timezone = "Europe/Berlin"
schedule = "0 9 * * mon"            # Mondays 09:00 Berlin time
channels = ["outbox"]
human_cost_per_conversation = 4.50  # what a human-handled conversation costs, for estimated savings

[[reports]]
id = "weekly-engineering"
title = "Agent Performance - Engineering"
audience = "engineering"
period = "week"
timezone = "America/New_York"
schedule = "0 9 * * mon"
channels = ["outbox"]
# agents = ["billing-bot"]          # a team's own report: only its agents' conversations ("support-*" for a prefix)
"""


def setup(folder: Path, *, now: datetime | None = None, conversations: int = 24_000) -> Path:
    """Create ``folder/events.duckdb`` (10 weeks of events, new each time) and ``folder/agentdigest.toml``
    (unless it exists: it is the user's to edit); return the config path."""
    import duckdb

    from .synthetic import generate

    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # found in a config audit: --dir /etc/passwd ended "unexpected error"
        raise InputError(f"--dir {folder}: cannot make the demo folder there ({exc.strerror})") from None
    db = folder / "events.duckdb"
    for stale in (db, folder / "events.duckdb.wal"):
        stale.unlink(missing_ok=True)
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    latest = last_complete("week", now, "Europe/Berlin").start_utc - timedelta(hours=12)
    con = duckdb.connect(str(db))
    try:
        generate(con, conversations=conversations, end=end, days=70, latest=latest)
    finally:
        con.close()
    config = folder / "agentdigest.toml"
    if not config.exists():  # "safe to edit and re-run": a second demo keeps your edits
        config.write_text(DEMO_CONFIG.format(dir=folder), encoding="utf-8")
    return config
