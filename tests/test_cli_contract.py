"""The command line's contract (DESIGN.md, Command line) on its less travelled paths, from the outside: the real
`agentdigest` command on a demo DuckDB. Each test is one finding of an exit-code audit (2026-12-05)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentdigest.demo import setup

NOW = "2026-12-05T11:00:00Z"
PERIOD = "2026-W48"  # the last complete week at NOW, in Berlin and New York


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AGENTDIGEST_CONFIG"}
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], cwd=home, capture_output=True, text=True,
                          timeout=300, env=env)


def one_line(done: subprocess.CompletedProcess, code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The demo's config and a small demo DuckDB (its two weekly reports, one outbox channel)."""
    setup(tmp_path, now=datetime(2026, 12, 5, 11, tzinfo=timezone.utc), conversations=1500)
    return tmp_path


def _use_ledger(home: Path, name: str) -> None:
    config = home / "agentdigest.toml"
    config.write_text(config.read_text().replace('url = "sqlite:///agentdigest.db"', f'url = "sqlite:///{name}"'))


def _sent(home: Path) -> list[Path]:
    return [p for p in (home / "outbox").rglob("*") if p.is_file()] if (home / "outbox").exists() else []


def test_a_ledger_url_naming_another_applications_database_is_refused_and_left_untouched(home):
    """Found: a ledger.url naming a database with another application's `runs` table (a shared database) was
    called "ok - not created yet" by check; a run then added its own tables to that database, altered the
    other table (ALTER TABLE runs ADD COLUMN owner) and failed each report with "no such column: runs.state"."""
    other = home / "app.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT)")
        con.execute("INSERT INTO runs (job) VALUES ('nightly-etl')")
    con.close()
    _use_ledger(home, "app.db")

    checked = cli(home, "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    ledger_line = next(line for line in checked.stdout.splitlines() if line.startswith("ledger "))
    assert "FAILED" in ledger_line and "runs" in ledger_line and "not an agentdigest ledger" in ledger_line

    for args in (("run", "--period", PERIOD, "--now", NOW), ("run", "--due", "--now", NOW),
                 ("history",)):
        line = one_line(cli(home, *args), 1)
        assert "not an agentdigest ledger" in line and "runs" in line, (args, line)

    with sqlite3.connect(other) as con:
        tables = sorted(row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        columns = [row[1] for row in con.execute("PRAGMA table_info(runs)")]
        rows = con.execute("SELECT id, job FROM runs").fetchall()
    con.close()
    assert tables == ["runs"]
    assert columns == ["id", "job"]
    assert rows == [(1, "nightly-etl")]
    assert _sent(home) == []


def test_a_ledger_path_that_is_a_folder_is_called_a_folder_not_read_only(home):
    """Found: ledger.url = "sqlite:///agentdigest.db" where agentdigest.db is a folder said "the ledger ... is
    read-only for this user (... is read-only)": it is not read-only, and making it writable would not help."""
    (home / "agentdigest.db").mkdir()
    line = one_line(cli(home, "run", "--period", PERIOD, "--now", NOW), 1)
    assert "is a folder" in line and "read-only" not in line, line
    checked = cli(home, "check")
    assert checked.returncode == 1
    ledger_line = next(line for line in checked.stdout.splitlines() if line.startswith("ledger "))
    assert "FAILED" in ledger_line and "is a folder" in ledger_line and "read-only" not in ledger_line
    assert _sent(home) == []


def test_history_next_shows_only_the_report_asked_for(home):
    """Found: `history --next --report weekly-exec` listed every report, and `--report nope` with --next exited 0."""
    shown = cli(home, "history", "--next", "--report", "weekly-exec")
    assert shown.returncode == 0, shown.stderr
    assert "weekly-exec" in shown.stdout and "weekly-engineering" not in shown.stdout
    line = one_line(cli(home, "history", "--next", "--report", "nope"), 2)
    assert "'nope'" in line and "weekly-exec" in line


def test_check_refuses_now_without_missed(home):
    """Found: `check --now T` without --missed ignored --now and exited 0, as if the clock had been pinned."""
    line = one_line(cli(home, "check", "--now", NOW), 2)
    assert "--now" in line and "--missed" in line


def test_a_postgres_ledger_url_naming_another_applications_database_is_refused_and_left_untouched(pg_url):
    """The same on PostgreSQL, where a shared database is likelier: check's probe said "reachable, empty" and a
    run's open added a column to the other application's `deliveries` table and created the ledger's beside it."""
    from sqlalchemy import create_engine, inspect, text

    from agentdigest.ledger import Ledger
    from agentdigest.ledger_schema import LedgerError, engine_url, probe

    engine = create_engine(engine_url(pg_url))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE deliveries (id serial PRIMARY KEY, parcel text)"))
            conn.execute(text("INSERT INTO deliveries (parcel) VALUES ('box 7')"))
        with pytest.raises(LedgerError, match="not an agentdigest ledger: it holds a table deliveries"):
            probe(pg_url)
        with pytest.raises(LedgerError, match="not an agentdigest ledger: it holds a table deliveries"):
            Ledger(pg_url)
        with engine.connect() as conn:
            assert sorted(inspect(conn).get_table_names()) == ["deliveries"]
            assert [c["name"] for c in inspect(conn).get_columns("deliveries")] == ["id", "parcel"]
            assert conn.execute(text("SELECT id, parcel FROM deliveries")).all() == [(1, "box 7")]
    finally:
        engine.dispose()


@pytest.mark.parametrize("extra", [(), ("--next",)])
def test_history_refuses_an_empty_report(home, extra):
    """Found: `history --report ""` (a "$REPORT" unset in a script) showed every report's history, exit 0, as if
    --report were left out; the same slip with run's --period or --test-to is refused (a new-user audit)."""
    line = one_line(cli(home, "history", "--report", "", *extra), 2)
    assert "--report" in line and "empty" in line


def test_a_failed_test_send_is_an_error_line_on_stderr(home):
    """Found: `run --test-to CHANNEL` whose channel failed exited 1 with nothing on stderr (the failure only in the
    outcome on stdout), where a period's failed delivery is also an ERROR line on stderr (README, Command line)."""
    from conftest import free_port

    config = home / "agentdigest.toml"
    hook = f'[channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:{free_port()}/x"\nretry_budget = 0.0\n\n'
    config.write_text(config.read_text().replace("[[reports]]", hook + "[[reports]]", 1))
    done = cli(home, "run", "weekly-exec", "--test-to", "hook", "--period", PERIOD, "--now", NOW)
    line = one_line(done, 1)
    assert line.startswith("ERROR ") and "weekly-exec 2026-W48" in line and "hook" in line and "refused" in line, line
    assert "hook: failed" in done.stdout
    assert _sent(home) == []


def _reader_gone(home: Path, *args: str, stderr_too: bool = False) -> tuple[int, str]:
    """The command with its stdout (and stderr) read by nobody: a pipe closed before the command writes,
    as `| head -0` does; its exit code and what it wrote on stderr."""
    env = {k: v for k, v in os.environ.items() if k != "AGENTDIGEST_CONFIG"}
    proc = subprocess.Popen([sys.executable, "-m", "agentdigest.cli", *args], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    if stderr_too:
        proc.stderr.close()
    said = b"" if stderr_too else proc.stderr.read()
    return proc.wait(timeout=300), said.decode()


def _pause(home: Path, report_id: str) -> None:
    config = home / "agentdigest.toml"
    config.write_text(config.read_text().replace(f'id = "{report_id}"\n', f'id = "{report_id}"\nenabled = false\n'))


@pytest.mark.parametrize("stderr_too", [False, True])
def test_a_reader_closing_stdout_early_stops_no_report(home, stderr_too):
    """Found: `agentdigest run ... | head -0` with a paused report wrote "paused" first, and rich's console exited
    on the closed pipe (exit 1): the other report was neither computed nor sent."""
    _pause(home, "weekly-exec")
    code, said = _reader_gone(home, "run", "--period", PERIOD, "--now", NOW, stderr_too=stderr_too)
    assert code == 0, said
    assert "Traceback" not in said and "BrokenPipe" not in said
    assert (home / "reports" / "weekly-engineering" / PERIOD / "report.json").is_file()
    assert not (home / "reports" / "weekly-exec").exists()
    assert _sent(home)


def test_a_reader_closing_stdout_early_keeps_checks_exit_code(home):
    """Found: `check | head -1` on an unreadable source exited 1 (rich's exit on the closed pipe), not 3."""
    config = home / "agentdigest.toml"
    config.write_text(config.read_text().replace("duckdb://events.duckdb", "duckdb://gone/events.duckdb"))
    code, said = _reader_gone(home, "check")
    assert code == 3, said
    assert "DuckDB file not found" in said and "Traceback" not in said


@pytest.mark.parametrize("command", [("check",), ("run", "--period", PERIOD, "--now", NOW)])
def test_a_verbose_traceback_into_a_closed_stderr_keeps_the_exit_code(home, command):
    """Found: with --verbose and stderr closed too, writing the traceback raised BrokenPipeError inside the error
    handling, and an unreadable source's exit 3 became 1."""
    config = home / "agentdigest.toml"
    config.write_text(config.read_text().replace("duckdb://events.duckdb", "duckdb://gone/events.duckdb"))
    code, _ = _reader_gone(home, *command, "--verbose", stderr_too=True)
    assert code == 3


def test_a_reader_closing_stdout_early_keeps_a_failed_deliverys_exit_code(home):
    """A failed delivery under a closed stdout is still exit 1, with its ERROR line on stderr."""
    (home / "outbox").write_text("a file where the outbox folder should be")
    code, said = _reader_gone(home, "run", "weekly-exec", "--period", PERIOD, "--now", NOW)
    assert code == 1, said
    assert "ERROR" in said and "weekly-exec" in said and "Traceback" not in said
    assert (home / "reports" / "weekly-exec" / PERIOD / "report.json").is_file()


def test_history_next_refuses_a_limit(home):
    """Found: `history --next --limit 1` showed every report (the limit ignored, exit 0): --next is one row per
    report in config order, so a limit would drop reports silently. Refused, exit 2; --limit alone still works."""
    line = one_line(cli(home, "history", "--next", "--limit", "1"), 2)
    assert "--limit" in line and "--next" in line
    shown = cli(home, "history", "--limit", "1")
    assert shown.returncode == 0, shown.stderr


def test_history_shows_fifty_rows_unless_told(home):
    """`history` without --limit shows the 50 newest rows (its one default, in show_history); --limit 55 all of them.
    55 runs of 55 ISO weeks, so no two are shown as one row; the --help text states the same default."""
    from agentdigest.commands_delivery import HISTORY_ROWS
    from agentdigest.ledger import Ledger

    ledger = Ledger(f"sqlite:///{home / 'agentdigest.db'}")
    try:
        for week in range(55):  # 2024-W01 (Monday 2024-01-01) to 2025-W03: 2024 has 52 ISO weeks
            year, number, _ = (date(2024, 1, 1) + timedelta(weeks=week)).isocalendar()
            ledger.finish_run(ledger.start_run("weekly-exec", f"{year}-W{number:02d}", "due"), "done", None)
    finally:
        ledger.close()

    def periods(*extra: str) -> list[str]:
        done = cli(home, "history", "--report", "weekly-exec", *extra)
        assert done.returncode == 0, done.stderr
        return [cell for line in done.stdout.splitlines() if line.startswith("│")
                for cell in [line.split("│")[2].strip()] if cell[:2] == "20"]

    shown = periods()
    assert len(shown) == 50
    assert shown[0] == "2025-W03" and shown[-1] == "2024-W06"  # newest first
    assert len(periods("--limit", "55")) == 55
    helped = cli(home, "history", "--help")  # the help's words name the same default
    assert f"(default {HISTORY_ROWS}," in " ".join(helped.stdout.split()), helped.stdout
