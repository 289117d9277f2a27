"""A dry run delivers nothing, so it never creates or writes the ledger; it still reads one that exists.

Found in a review: `run --due --dry-run` in a fresh folder created the SQLite ledger (and its folder), where
`run --dry-run` only read an existing one. From the outside: the real command, a real DuckDB file and a real
SQLite ledger.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

DUE = "2026-11-30T10:00:00Z"  # 2026-W48 is due (Monday 09:00 UTC)
NEXT = "2026-12-07T10:00:00Z"  # 2026-W49 is due


def home_with(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE agent_events AS SELECT 'c' || i AS conversation_id, "
                    "TIMESTAMPTZ '2026-11-02 10:00:00+00' + i * INTERVAL 6 HOUR AS event_ts, 'message' AS event_type "
                    "FROM range(160) t(i)")  # 2026-11-02 to 2026-12-11
    (tmp_path / "agentdigest.toml").write_text("""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[ledger]
url = "sqlite:///state/ledger.db"

[channels.box]
type = "outbox"
path = "outbox"

[[reports]]
id = "weekly"
period = "week"
timezone = "UTC"
schedule = "0 9 * * mon"
channels = ["box"]
""")
    return tmp_path


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--format", "json,eml", *args],
                          cwd=home, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def state(home: Path) -> dict[str, bytes]:
    """Every file of the ledger's folder, byte for byte (the -wal and -shm files included, if any)."""
    return {p.name: p.read_bytes() for p in sorted((home / "state").iterdir())}


def rows(home: Path) -> dict[str, int]:
    """The ledger's rows, counted without writing anything (immutable=1: no -wal or -shm file made)."""
    with sqlite3.connect(f"file:{home / 'state' / 'ledger.db'}?immutable=1", uri=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "deliveries")}


@pytest.mark.parametrize("args", [("--due", "--now", DUE), ("--period", "2026-W48", "--now", DUE)])
def test_a_dry_run_creates_no_ledger(tmp_path, args):
    home = home_with(tmp_path)
    run(home, "--dry-run", *args)
    assert (home / "reports" / "weekly" / "2026-W48" / "report.json").is_file()  # it did run
    assert not (home / "state").exists()  # neither the ledger nor its folder
    assert not (home / "outbox").exists()


def test_a_dry_run_reads_the_ledger_and_leaves_it_as_it_was(tmp_path):
    home = home_with(tmp_path)
    run(home, "--due", "--now", DUE)  # 2026-W48 sent
    before, counted = state(home), rows(home)
    assert counted == {"runs": 1, "deliveries": 1}
    # what the ledger says is read: the week sent is not run again
    again = run(home, "--due", "--dry-run", "--now", DUE)
    assert "weekly 2026-W48" in again.stdout and "already sent" in again.stdout, again.stdout
    run(home, "--due", "--dry-run", "--now", NEXT)  # a week not sent: computed and archived, not recorded
    assert (home / "reports" / "weekly" / "2026-W49" / "report.json").is_file()
    run(home, "--dry-run", "--period", "2026-W48", "--now", NEXT)
    assert state(home) == before and rows(home) == counted


def test_a_dry_run_never_upgrades_an_older_ledger(tmp_path):
    """A run upgrades an older ledger's schema (a write); a dry run reads it as it is."""
    from test_upgrade import _version, old_ledger

    home = home_with(tmp_path)
    (home / "state").mkdir()
    old_ledger(home / "state" / "ledger.db", 4)
    before = state(home)
    run(home, "--due", "--dry-run", "--now", DUE)
    run(home, "--dry-run", "--period", "2026-W48", "--now", DUE)
    assert (home / "reports" / "weekly" / "2026-W48" / "report.json").is_file()
    assert state(home) == before and _version(home / "state" / "ledger.db") == 4
