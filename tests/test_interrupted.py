"""Runs that stop half-way: Ctrl-C or SIGTERM mid-send, a killed sender, a ledger from before owners.

What must hold: the ledger never keeps a claim or a run open for a process that is gone, the
next run delivers what was not confirmed without waiting for a lease, and a live sender on
another machine is waited for, with its name and deadline in the output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from agentdigest.config import load_config
from agentdigest.delivery import deliver_report
from agentdigest.ledger import Ledger
from agentdigest.ledger_schema import SCHEMA_VERSION
from agentdigest.owners import has_exited, owner_id
from conftest import ScriptedSMTP, free_port, make_artifacts, skip_or_fail
from schedule_helpers import env as cli_env

R, P = "weekly-exec", "2026-W47"  # a week that has ended (runs of unfinished periods are refused)
HOST = socket.gethostname()
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def exited_pid() -> int:
    """The pid of a process that has run and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def pids_are_global() -> bool:
    try:
        return os.stat("/proc/self/ns/pid").st_ino == 0xEFFFFFFC
    except OSError:
        return False


@pytest.fixture
def needs_global_pids() -> None:
    """Process ids are trusted only in the initial PID namespace: skipped locally in a container, a failure in CI."""
    if not pids_are_global():
        skip_or_fail("process ids are only trusted in the initial PID namespace (this test runs in a container)")


# -- owners -----------------------------------------------------------------------------------

@pytest.mark.usefixtures("needs_global_pids")
def test_an_owner_has_exited_only_when_its_process_on_this_host_is_gone():
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert has_exited(f"{HOST}:{exited_pid()}:abc123")
        assert not has_exited(f"{HOST}:{alive.pid}:abc123")
    finally:
        alive.kill()
        alive.wait()
    assert not has_exited(f"{HOST}:{os.getpid()}:abc123")  # this very process
    assert not has_exited(f"other-{HOST}:{exited_pid()}:abc123")  # another machine: only its lease tells
    for garbage in (None, "", "one", f"{HOST}", f"{HOST}:x:1", f"{HOST}:-5", f"{HOST}:0"):
        assert not has_exited(garbage)
    assert owner_id().startswith(f"{HOST}:{os.getpid()}:") and owner_id() != owner_id()


# -- claims of gone and live senders ---------------------------------------------------------

def write_config(tmp_path: Path, channel: str, settings: str) -> Path:
    """An agentdigest.toml in ``tmp_path`` with one report delivered to one channel."""
    path = tmp_path / "agentdigest.toml"
    path.write_text(f"""
[source]
url = "duckdb://{tmp_path / 'events.duckdb'}"
table = "agent_events"
[ledger]
url = "sqlite:///{tmp_path / 'ledger.db'}"
[archive]
path = "{tmp_path / 'reports'}"
[channels.{channel}]
{settings}
[[reports]]
id = "{R}"
period = "week"
channels = ["{channel}"]
""")
    return path


def outbox_config(tmp_path: Path):
    path = write_config(tmp_path, "box", f'type = "outbox"\npath = "{tmp_path / "outbox"}"')
    from agentdigest.archive import write_artifacts

    write_artifacts(tmp_path / "reports", R, P, make_artifacts(R, P))
    return load_config(path)


@pytest.mark.usefixtures("needs_global_pids")
def test_a_claim_of_a_process_that_exited_on_this_host_is_taken_over_at_once(tmp_path):
    config = outbox_config(tmp_path)
    ledger = Ledger(config.ledger.url)
    dead = f"{HOST}:{exited_pid()}:dead01"
    assert ledger.claim(R, P, "box", owner=dead, lease_seconds=3600)  # a lease that would hold for an hour
    results = deliver_report(config, config.report(R), P, ledger=ledger, archive=tmp_path / "reports")
    assert [r.state for r in results] == ["sent"]
    row = ledger.delivery(R, P, "box")
    assert row["state"] == "sent" and row["takeovers"] == 1
    assert row["note"] == f"took over the claim of {dead}, whose process had exited"
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 1


def test_a_live_claim_elsewhere_is_waited_for_and_named(tmp_path):
    config = outbox_config(tmp_path)
    ledger = Ledger(config.ledger.url)
    holder = "scheduler-b.example:4242:live01"
    assert ledger.claim(R, P, "box", owner=holder, lease_seconds=3600)
    results = deliver_report(config, config.report(R), P, ledger=ledger, archive=tmp_path / "reports")
    assert [r.state for r in results] == ["claimed_elsewhere"]
    until = ledger.delivery(R, P, "box")["lease_until"][:16].replace("T", " ")
    assert holder in results[0].error and until in results[0].error and "run again" in results[0].error
    assert not (tmp_path / "outbox").exists()


# -- runs of gone processes --------------------------------------------------------------------

@pytest.mark.usefixtures("needs_global_pids")
def test_a_run_left_running_by_a_killed_process_is_closed_as_abandoned(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    dead_run = ledger.start_run(R, P, "due", f"{HOST}:{exited_pid()}:dead02")
    live_run = ledger.start_run("other-report", P, "due", "scheduler-b.example:4242:live02")
    history = {row["id"]: row for row in ledger.history() if row["kind"] == "run"}
    assert history[dead_run]["state"] == "abandoned" and "exited" in history[dead_run]["error"]
    assert history[live_run]["state"] == "running"
    ledger.finish_run(dead_run, "done")  # a late finish cannot rewrite what was decided
    assert {row["id"]: row["state"] for row in ledger.history() if row["kind"] == "run"}[dead_run] == "abandoned"


def test_a_version_1_ledger_is_upgraded_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    Ledger(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)  # back to version 1: runs had no owner
    con.executescript("""
        ALTER TABLE runs DROP COLUMN owner;
        ALTER TABLE deliveries DROP COLUMN destination;
        UPDATE schema_version SET version = 1;
        INSERT INTO runs (report_id, period_key, trigger, state, started_at)
            VALUES ('weekly-exec', '2026-W44', 'due', 'done', '2026-11-02 08:00:00');
        INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, sends, takeovers,
                                created_at, updated_at, sent_at)
            VALUES ('weekly-exec', '2026-W45', 'alarm:oncall', 'late', 'period', 'sent', 1, 1, 0,
                    '2026-11-09 11:00:00', '2026-11-09 11:00:00', '2026-11-09 11:00:00');
    """)
    con.commit()
    con.close()
    ledger = Ledger(f"sqlite:///{path}")
    assert ledger.schema_version() == SCHEMA_VERSION == 5
    # Version 3: an alarm recorded as a delivery of its period (up to version 2) is an alarm again.
    assert ledger.tried_periods("weekly-exec") == ([], [])
    assert [r["kind"] for r in ledger.deliveries("weekly-exec", "2026-W45")] == ["alarm"]
    assert "owner" in {c["name"] for c in inspect(create_engine(f"sqlite:///{path}")).get_columns("runs")}
    # Version 4: a fingerprint of each send's destination (renames.py); rows from before have none.
    assert "destination" in {c["name"] for c in inspect(create_engine(f"sqlite:///{path}")).get_columns("deliveries")}
    assert [r["destination"] for r in ledger.deliveries("weekly-exec", "2026-W45")] == [None]
    # Version 5: the fingerprint of the settings a failure happened under (refusals.py); rows from before have none.
    assert [r["failed_under"] for r in ledger.deliveries("weekly-exec", "2026-W45")] == [None]
    runs = [row for row in ledger.history() if row["kind"] == "run"]
    assert [(r["period_key"], r["state"], r["owner"]) for r in runs] == [("2026-W44", "done", None)]
    run = ledger.start_run(R, P, "manual", "me:1:x")
    assert next(r for r in ledger.history() if r["kind"] == "run" and r["id"] == run)["owner"] == "me:1:x"
    ledger.close()


# -- a signal during SMTP DATA, from the outside ------------------------------------------------

class SlowData(ScriptedSMTP):
    """Accepts the message, but only ``delay`` seconds after it has arrived (``arrived`` is set then)."""

    def __init__(self, *args, delay: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay, self.arrived = delay, threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.arrived.set()
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _plain_smtp(handler: ScriptedSMTP):  # noqa: ANN202 - an aiosmtpd Controller
    """Start ``handler`` as an SMTP server on loopback (AUTH over plain text); the controller and its port."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    return controller, port


@pytest.mark.parametrize("signum, code, twice", [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, False),
                                                 (signal.SIGHUP, 129, False), (signal.SIGINT, 130, True),
                                                 (signal.SIGHUP, 129, True)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGINT-twice", "SIGHUP-twice"])
def test_a_signal_during_smtp_data_closes_the_claim_and_the_next_run_sends_at_once(tmp_path, tls_cert, signum, code,
                                                                                   twice):
    from agentdigest.demo import setup

    handler = SlowData("reports", "PLANTED-pw", delay=3.0)
    controller, port = _plain_smtp(handler)
    try:
        setup(tmp_path, conversations=600)
        write_config(tmp_path, "mail", 'type = "email"\nto = ["cto@example.com"]\nfrom = "reports@example.com"\n'
                     'smtp_url = "${SMTP_URL}"\nretry_budget = 0')
        env = cli_env(SMTP_URL=f"smtp://reports:PLANTED-pw@127.0.0.1:{port}",
                      AGENTDIGEST_CONFIG=str(tmp_path / "agentdigest.toml"))
        command = [sys.executable, "-m", "agentdigest.cli", "run", R, "--period", P]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert handler.arrived.wait(120), "the message never reached DATA"
        proc.send_signal(signum)
        if twice:  # an impatient second Ctrl-C, while the first one's clean-up is being written
            time.sleep(0.002)
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, out + err
        assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err

        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        row = ledger.delivery(R, P, "mail", "cto@example.com")
        assert row["state"] == "failed" and row["lease_until"] is None and row["retryable"] is True
        assert f"interrupted by {signal.Signals(signum).name}" in row["error"] and "may have reached" in row["error"]
        run = next(r for r in ledger.history() if r["kind"] == "run")
        assert run["state"] == "interrupted" and signal.Signals(signum).name in run["error"]
        ledger.close()

        # The client hung up before the server's answer, so the server dropped the transaction (as an
        # MTA does); the next run sends at once, with no lease to wait for.
        handler.delay = 0
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [rcpts for _, rcpts, _ in handler.messages] == [["cto@example.com"]]
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        row = ledger.delivery(R, P, "mail", "cto@example.com")
        assert (row["state"], row["attempts"], row["sends"], row["takeovers"]) == ("sent", 2, 1, 0)
        ledger.close()
        assert b"PLANTED-pw" not in (tmp_path / "ledger.db").read_bytes()
    finally:
        controller.stop()


class DeferredThenStalled(ScriptedSMTP):
    """Defers ``deferred`` (450) at the first attempt; at the retry its RCPT is held until ``release``, and
    ``retrying`` is set: the sender is then past its retry wait, inside the retry, with a recipient accepted."""

    def __init__(self, *args, deferred: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.deferred, self.tries = deferred, 0
        self.retrying, self.release = threading.Event(), threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address != self.deferred or self.release.is_set():
            return await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        self.tries += 1
        if self.tries > 1:
            self.retrying.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "450 4.2.1 mailbox busy"


def test_ctrl_c_during_a_retry_keeps_the_recipients_that_got_it(tmp_path):
    """Found in a re-check: Ctrl-C (or a deploy's SIGTERM) while retrying a deferred recipient recorded the
    recipients the relay had already accepted as failed, and the next run sent them the report again.
    A real SIGINT to the real command, while its retry for the deferred recipient waits on the relay."""
    from agentdigest.demo import setup

    handler = DeferredThenStalled("reports", "PLANTED-pw", deferred="bob@example.com")
    controller, port = _plain_smtp(handler)
    try:
        setup(tmp_path, conversations=600)
        write_config(tmp_path, "mail", 'type = "email"\nto = ["alice@example.com", "bob@example.com"]\n'
                     'from = "reports@example.com"\nsmtp_url = "${SMTP_URL}"\n'
                     'retry_budget = 120\nretry_initial = 0.05\nretry_max_wait = 0.1')
        env = cli_env(SMTP_URL=f"smtp://reports:PLANTED-pw@127.0.0.1:{port}",
                      AGENTDIGEST_CONFIG=str(tmp_path / "agentdigest.toml"))
        command = [sys.executable, "-m", "agentdigest.cli", "run", R, "--period", P]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not handler.retrying.wait(120):
            proc.kill()
            pytest.fail("the deferred recipient was never retried: " + "".join(proc.communicate()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        assert "interrupted by SIGINT" in err and "Traceback" not in err
        assert [set(rcpts) for _, rcpts, _ in handler.messages] == [{"alice@example.com"}]

        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        rows = {row["recipient"]: row for row in ledger.deliveries(R, P)}
        assert (rows["alice@example.com"]["state"], rows["alice@example.com"]["attempts"]) == ("sent", 1)
        bob = rows["bob@example.com"]
        assert (bob["state"], bob["attempts"], bob["lease_until"]) == ("failed", 2, None)  # counted as the retry began
        assert "interrupted by SIGINT" in bob["error"]
        ledger.close()
        (marker,) = tmp_path.rglob(f"{R}/{P}/.delivered")  # the archive's send log has alice too
        assert [json.loads(line)["recipient"] for line in marker.read_text().splitlines()] == ["alice@example.com"]

        handler.release.set()  # bob's mailbox is free again: the next run sends to bob only
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [set(rcpts) for _, rcpts, _ in handler.messages] == [{"alice@example.com"}, {"bob@example.com"}]
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        states = {row["recipient"]: (row["state"], row["sends"]) for row in ledger.deliveries(R, P)}
        ledger.close()
        assert states == {"alice@example.com": ("sent", 1), "bob@example.com": ("sent", 1)}
    finally:
        handler.release.set()
        controller.stop()


def test_an_engine_interrupted_by_a_signal_is_an_interruption_not_an_unreadable_source(tmp_path):
    """Found black-box: Ctrl-C during a DuckDB query exited 3 ("the source could not be read")."""
    import duckdb

    from agentdigest.errors import Interrupted, SourceError
    from agentdigest.sources import query_error

    con = duckdb.connect()
    threading.Timer(0.3, con.interrupt).start()
    started = time.monotonic()
    with pytest.raises(duckdb.InterruptException) as caught:
        con.execute("SELECT count(*) FROM range(100000000000) a").fetchall()
    assert time.monotonic() - started < 30
    assert isinstance(query_error(caught.value), Interrupted)
    assert isinstance(query_error(duckdb.IOException("disk gone")), SourceError)


def test_an_interrupt_reported_by_ibis_cache_is_an_interruption(monkeypatch):
    """Found black-box: through Ibis's cache() the interrupt arrives as RuntimeError('Query interrupted')
    and still exited 3 after the fix above."""
    from agentdigest import interrupts
    from agentdigest.errors import Interrupted, SourceError
    from agentdigest.sources import query_error

    assert isinstance(query_error(RuntimeError("Query interrupted")), SourceError)  # no signal came: a real error
    monkeypatch.setattr(interrupts, "_last", ["SIGTERM"])
    stopped = query_error(RuntimeError("Query interrupted"))
    assert isinstance(stopped, Interrupted) and stopped.signal_name == "SIGTERM"
    assert isinstance(query_error(RuntimeError("disk full")), SourceError)


def test_attempts_are_counted_as_they_happen_so_an_interrupted_sender_leaves_the_true_count(tmp_path, httpserver):
    """Found black-box: stopped after 3 failed POSTs, the ledger said 1 attempt."""
    from werkzeug import Response

    from agentdigest.demo import setup

    httpserver.expect_request("/ingest").respond_with_handler(lambda request: Response("busy", status=503))
    setup(tmp_path, conversations=300)
    write_config(tmp_path, "hook", f'type = "webhook"\nurl = "{httpserver.url_for("/ingest")}"\n'
                                   'retry_budget = 120\nretry_initial = 0.2\nretry_max_wait = 0.2')
    env = cli_env(AGENTDIGEST_CONFIG=str(tmp_path / "agentdigest.toml"))
    proc = subprocess.Popen([sys.executable, "-m", "agentdigest.cli", "run", R, "--period", P], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(httpserver.log) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    posts = len(httpserver.log)
    assert posts >= 3
    row = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").delivery(R, P, "hook")
    # An attempt is counted as it starts: a signal between the count and its POST is the one extra.
    assert row["state"] == "failed" and row["attempts"] in (posts, posts + 1), (row["attempts"], posts)
