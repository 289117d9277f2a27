"""Several processes, one ledger: three racing ``run --due`` processes send each period once.

Real processes (``python -m agentdigest.cli``), a real SQLite file or a real PostgreSQL server
(pytest-postgresql), real DuckDB events, and two real channels: the outbox (files counted) and
email to an aiosmtpd server with STARTTLS and AUTH (messages counted).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from email import message_from_bytes

import pytest

from agentdigest.ledger import Ledger
from schedule_helpers import env, make_events, sent_files, write_config

NOW = "2026-11-30T22:45:00Z"
REPORTS = [
    {"id": "weekly-ny", "period": "week", "timezone": "America/New_York", "schedule": "0 9 * * mon",
     "channels": ["box", "mail"], "catch_up": 1},                      # 2026-W47 and 2026-W48
    {"id": "daily-tokyo", "period": "day", "timezone": "Asia/Tokyo", "schedule": "30 7 * * *",
     "channels": ["box", "mail"]},                                     # 2026-11-30 (due 22:30Z)
]
EXPECTED = {("weekly-ny", "2026-W47"), ("weekly-ny", "2026-W48"), ("daily-tokyo", "2026-11-30")}


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb",
                       end=datetime(2026, 12, 3, tzinfo=timezone.utc), days=40)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared-ledger.db'}"
    return request.getfixturevalue("pg_url")


def race(config, n: int = 3) -> list[subprocess.CompletedProcess]:
    """Start ``n`` ``run --due`` processes at once and wait for all of them."""
    args = [sys.executable, "-m", "agentdigest.cli", "run", "--due", "--config", str(config), "--now", NOW,
            "--format", "json,txt,eml,slack"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(n)]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(args, proc.returncode, stdout, stderr))
    return out


def test_three_racing_processes_send_each_period_once(tmp_path, events, ledger_url, smtp_server, tls_cert):
    server = smtp_server()
    channels = {
        "box": {"type": "outbox", "path": str(tmp_path / "outbox")},
        "mail": {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com",
                 "smtp_url": server.url(), "ca_file": str(tls_cert[0])},
    }
    config = write_config(tmp_path, events=events, reports=REPORTS, channels=channels, ledger_url=ledger_url)

    results = race(config)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert sent_files(tmp_path / "outbox") == {key: 1 for key in EXPECTED}
    subjects = Counter(message_from_bytes(raw)["Message-ID"] for _, _, raw in server.messages)
    assert len(server.messages) == len(EXPECTED) and set(subjects.values()) == {1}

    # Every target was sent by exactly one process; the others saw it sent or being sent.
    lines = [line for r in results for line in r.stdout.splitlines()]
    assert sum(line.endswith(": sent") for line in lines) == 2 * len(EXPECTED)
    ledger = Ledger(ledger_url)
    try:
        rows = [row for rid, key in EXPECTED for row in ledger.deliveries(rid, key)]
    finally:
        ledger.close()
    assert len(rows) == 2 * len(EXPECTED)
    assert {(row["state"], row["sends"]) for row in rows} == {("sent", 1)}

    # A fourth process, later, finds nothing to do.
    again = race(config, n=1)[0]
    assert again.returncode == 0 and ": sent" not in again.stdout
    assert sent_files(tmp_path / "outbox") == {key: 1 for key in EXPECTED}
    assert len(server.messages) == len(EXPECTED)
