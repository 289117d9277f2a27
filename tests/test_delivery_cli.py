"""From the outside: the real `agentdigest` command against flaky servers, run / rerun / resend / history.

An SMTP server that answers 421 to the first DATA, a Slack webhook that answers 429 (Retry-After: 1)
once, and a dead webhook. Secrets come from the environment, as in production, and must not show
up in any file written or in the output.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from werkzeug import Response

from conftest import free_port

HOOK = "/services/T0AAAA/B0BBBB/PLANTEDcliHOOK"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

CONFIG = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[ledger]
url = "sqlite:///state/ledger.db"

[channels.leadership]
type = "email"
to = ["cto@example.com", "vp@example.com"]
from = "agent-reports@example.com"
smtp_url = "${SMTP_URL}"
ca_file = "cert.pem"
retry_budget = 2
retry_initial = 0.05

[channels.agents-team]
type = "slack"
webhook_url = "${SLACK_WEBHOOK_URL}"
retry_budget = 3
retry_initial = 0.05

[channels.warehouse]
type = "webhook"
url = "${WAREHOUSE_URL}"
secret = "${WAREHOUSE_SECRET}"
retry_budget = 0.3
retry_initial = 0.05

[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["leadership", "agents-team", "warehouse"]
"""


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    from agentdigest.demo import setup

    folder = tmp_path_factory.mktemp("events")
    setup(folder, conversations=3000)
    return folder / "events.duckdb"


def test_run_rerun_resend_from_outside(tmp_path, events, smtp_server, httpserver, tls_cert):
    smtp = smtp_server(password="PLANTED smtp/pw", data=["421 4.3.2 busy, try again"])
    slack_answers = [Response("rate_limited", status=429, headers={"Retry-After": "1"})]
    httpserver.expect_request(HOOK).respond_with_handler(
        lambda request: slack_answers.pop(0) if slack_answers else Response("ok"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "cert.pem").write_bytes(tls_cert[0].read_bytes())
    (home / "agentdigest.toml").write_text(CONFIG)
    env = {**os.environ, "SMTP_URL": smtp.url(), "SLACK_WEBHOOK_URL": httpserver.url_for(HOOK),
           "WAREHOUSE_URL": f"http://127.0.0.1:{free_port()}/ingest/PLANTEDwarehouse",
           "WAREHOUSE_SECRET": "PLANTED-hmac", "AGENTDIGEST_CONFIG": str(home / "agentdigest.toml"),
           "COLUMNS": "250"}  # a wide terminal, so searches see unfolded table cells
    outputs = []

    def agentdigest(*args: str) -> int:
        done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], env=env, cwd=home,
                              capture_output=True, text=True, timeout=300)
        outputs.append(done.stdout + done.stderr)
        return done.returncode

    def slack_accepted() -> int:
        return sum(1 for request, response in httpserver.log if request.path == HOOK and response.status_code == 200)

    assert agentdigest("run", "weekly-exec") == 1, outputs[-1]  # the dead webhook fails, the others deliver
    assert (len(smtp.messages), slack_accepted()) == (1, 1)
    period = next((home / "reports" / "weekly-exec").iterdir()).name

    assert agentdigest("run", "weekly-exec") == 1  # rerun: only the dead webhook is tried again
    assert (len(smtp.messages), slack_accepted()) == (1, 1)

    assert agentdigest("resend", "weekly-exec", period) == 1
    assert (len(smtp.messages), slack_accepted()) == (2, 2)
    assert [sorted(rcpts) for _, rcpts, _ in smtp.messages] == [["cto@example.com", "vp@example.com"]] * 2

    assert agentdigest("resend", "weekly-exec", period, "--channel", "agents-team") == 0
    assert slack_accepted() == 3

    assert agentdigest("history", "--limit", "30") == 0
    history = outputs[-1]
    assert "sent" in history and "failed" in history and "warehouse" in history

    for path in home.rglob("*"):
        if path.is_file():
            assert b"PLANTED" not in path.read_bytes(), f"a secret leaked into {path}"
    for output in outputs:
        assert "PLANTED" not in output and "Traceback" not in output


def test_a_manual_run_of_a_sent_period_keeps_the_archive_as_sent(tmp_path, events):
    """Every channel has the period: a plain `run` neither recomputes nor rewrites the archive (its
    message.eml is the one that was sent) and sends nothing; `--force` recomputes and sends again."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "agentdigest.toml").write_text("""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[ledger]
url = "sqlite:///state/ledger.db"
[channels.box]
type = "outbox"
path = "outbox"
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["box"]
""")

    def agentdigest(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                              cwd=home, capture_output=True, text=True, timeout=300)

    def sent() -> list[Path]:
        return sorted((home / "outbox").rglob("*.eml"))

    assert agentdigest("run").returncode == 0
    (folder,) = (home / "reports" / "weekly-exec").iterdir()
    eml = folder / "message.eml"
    first = eml.read_bytes()
    assert len(sent()) == 1

    eml.write_bytes(first + b"\n")  # a marker: rewriting the archive would drop it
    again = agentdigest("run")
    assert again.returncode == 0, again.stderr
    assert "already sent to every channel" in again.stdout and f"resend weekly-exec {folder.name}" in again.stdout
    assert eml.read_bytes() == first + b"\n" and len(sent()) == 1

    forced = agentdigest("run", "--force")
    assert forced.returncode == 0, forced.stderr
    assert eml.read_bytes() != first + b"\n" and len(sent()) == 2


def test_a_retry_of_a_partly_sent_period_delivers_the_archive_not_a_recomputation(tmp_path, events, httpserver):
    """The webhook fails while the outbox gets the report; events for that week arrive late; the next
    `run` gives the webhook the archived report (the figures the outbox got) and leaves the archive as
    sent. Found black-box: the retry recomputed, so two channels carried different figures."""
    import duckdb

    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    hook = "/in/hook"
    (home / "agentdigest.toml").write_text(f"""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[ledger]
url = "sqlite:///state/ledger.db"
[channels.box]
type = "outbox"
path = "outbox"
[channels.hook]
type = "webhook"
url = "{httpserver.url_for(hook)}"
retry_budget = 0.2
retry_initial = 0.05
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["box", "hook"]
""")

    def agentdigest(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                              cwd=home, capture_output=True, text=True, timeout=300)

    httpserver.expect_request(hook).respond_with_data("down", status=500)
    first = agentdigest("run")
    assert first.returncode == 1, first.stderr
    (folder,) = (home / "reports" / "weekly-exec").iterdir()
    as_sent = {p.name: p.read_bytes() for p in folder.iterdir()}
    sent_json = json.loads(as_sent["report.json"])

    with duckdb.connect(str(home / "events.duckdb")) as con:  # late events for the same week
        start = sent_json["period"]["start"]
        con.execute("INSERT INTO agent_events (event_id, conversation_id, event_ts, event_type) "
                    "SELECT 'late' || i, 'late' || i, ?::TIMESTAMPTZ + INTERVAL 1 DAY, 'message' FROM range(50) t(i)",
                    [start])
    httpserver.clear()
    httpserver.expect_request(hook).respond_with_data("", status=204)
    retry = agentdigest("run")
    assert retry.returncode == 0, retry.stderr
    assert "already sent to some channels" in retry.stdout and "hook: sent" in retry.stdout
    now = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert now.pop(".delivered").startswith(as_sent.pop(".delivered")) and now == as_sent
    assert [s["channel"] for s in _sends(folder)] == ["box", "hook"]
    (request, _), = [(r, s) for r, s in httpserver.log if r.path == hook]
    delivered = json.loads(request.get_data())
    got = delivered.get("report", delivered)
    assert got["metrics"]["conversations"]["value"] == sent_json["metrics"]["conversations"]["value"]
    assert len(sorted((home / "outbox").rglob("*.eml"))) == 1

    forced = agentdigest("run", "--force")  # recomputing stays possible, on purpose
    assert forced.returncode == 0, forced.stderr
    assert json.loads((folder / "report.json").read_bytes())["metrics"]["conversations"]["value"] == \
        sent_json["metrics"]["conversations"]["value"] + 50


OUTBOX_CONFIG = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.box]
type = "outbox"
path = "outbox"
[[reports]]
id = "weekly-exec"
timezone = "Europe/Berlin"
channels = ["box"]
"""


def home_with(tmp_path: Path, events: Path, config: str = OUTBOX_CONFIG) -> Path:
    """A folder with a copy of the events and an agentdigest.toml (by default: one report to an outbox)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "agentdigest.toml").write_text(config)
    return home


@pytest.mark.parametrize("target", ["bad address", "jö@example.com"])  # the second found in an email audit
def test_a_bad_test_target_is_refused_before_anything_is_computed(tmp_path, events, target):
    home = home_with(tmp_path, events)
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--test-to", target, "--config",
                           "agentdigest.toml"], cwd=home, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--test-to" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (home / "reports").exists() and not (home / "outbox").exists()


def test_a_format_list_a_channel_cannot_send_is_refused_before_anything_is_computed(tmp_path, events, httpserver):
    httpserver.expect_request("/ingest").respond_with_data("", status=204)
    home = home_with(tmp_path, events, config=f"""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.box]
type = "outbox"
path = "outbox"
[channels.hook]
type = "webhook"
url = "{httpserver.url_for('/ingest')}"
[[reports]]
id = "weekly-exec"
channels = ["hook"]
[[reports]]
id = "weekly-eng"
channels = ["box"]
""")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml", *args],
                              cwd=home, capture_output=True, text=True, timeout=300)

    refused = run("--format", "json")  # the webhook has its report.json, the outbox lacks message.eml
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "message.eml" in refused.stderr and "'box'" in refused.stderr and "--format eml,json" in refused.stderr
    assert not (home / "reports").exists() and not httpserver.log  # not even the first report ran
    due = run("--due", "--format", "json", "--now", "2026-11-23T10:00:00+01:00")  # the same for a due pass
    assert due.returncode == 2 and "message.eml" in due.stderr and len(due.stderr.strip().splitlines()) == 1
    assert not (home / "reports").exists() and not httpserver.log

    assert run("weekly-exec", "--format", "json").returncode == 0  # the webhook alone needs only report.json
    assert len(httpserver.log) == 1
    assert run("weekly-eng", "--format", "json", "--dry-run").returncode == 0  # rendering only is fine
    assert [p.name for p in (home / "reports" / "weekly-eng").glob("*/*")] == ["report.json"]


def test_a_period_that_has_not_ended_is_refused_for_delivery_but_can_be_previewed(tmp_path, events):
    """Found by a new user: `run --period <this week>` sent a partial week as the week's report, the
    ledger said sent, and Monday's due run then skipped the real one."""
    home = home_with(tmp_path, events)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml",
                               "--now", "2026-11-28T12:00:00+01:00", *args],
                              cwd=home, capture_output=True, text=True, timeout=300)

    for period in ("2026-W48", "2027-W01"):  # running, and in the future
        refused = run("--period", period)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert f"{period} has not ended yet" in refused.stderr and "--dry-run" in refused.stderr
    assert "2026-11-30 00:00 Europe/Berlin" in run("--period", "2026-W48").stderr
    assert not (home / "reports").exists() and not (home / "outbox").exists()
    assert run("--period", "2026-W48", "--dry-run").returncode == 0
    assert run("--period", "2026-W48", "--test-to", "box").returncode == 0  # a test is not the period's delivery
    assert run("--period", "2026-W47").returncode == 0  # the last complete week goes out


def test_previews_of_a_delivered_period_never_touch_what_was_sent(tmp_path, events):
    """Found by a new user: a dry run, a test send or a --format run after delivery overwrote the archive
    that `resend` sends and that the README says keeps what was sent, or mixed files of two runs."""
    home = home_with(tmp_path, events)

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                              cwd=home, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def folder_bytes(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}

    run("run", "--period", "2026-W47")
    sent = home / "reports" / "weekly-exec" / "2026-W47"
    as_sent = folder_bytes(sent)
    (delivered,) = (home / "outbox" / "weekly-exec" / "2026-W47").glob("*.eml")
    assert delivered.read_bytes() == as_sent["message.eml"] and ".delivered" in as_sent

    dry = run("run", "--period", "2026-W47", "--dry-run", "--format", "pdf")
    assert "archived apart" in dry.stdout
    run("run", "--period", "2026-W47", "--dry-run", "--force")  # --force sends again; a dry run sends nothing
    run("run", "--period", "2026-W47", "--test-to", "box", "--force")
    assert folder_bytes(sent) == as_sent
    preview = home / "reports" / ".previews" / "weekly-exec" / "2026-W47"
    assert sorted(folder_bytes(preview)) == sorted(n for n in as_sent if not n.startswith("."))  # the test's full set

    run("resend", "weekly-exec", "2026-W47")
    resent = sorted((home / "outbox" / "weekly-exec" / "2026-W47").glob("*.eml"))
    assert [p.read_bytes() == as_sent["message.eml"] for p in resent if "-test" not in p.name] == [True, True]

    # An undelivered period's folder holds one run's files only: a --format run replaces the whole set.
    run("run", "--period", "2026-W46", "--dry-run")
    run("run", "--period", "2026-W46", "--dry-run", "--format", "pdf")
    assert sorted(folder_bytes(home / "reports" / "weekly-exec" / "2026-W46")) == ["report.pdf"]


def test_a_partly_sent_period_archived_with_few_formats_is_never_recomputed(tmp_path, events, httpserver):
    """Found black-box: a period archived with --format eml (no report.json) and sent to the outbox was
    recomputed for a channel added later, so the outbox and the new channel carried different figures."""
    httpserver.expect_request("/ingest").respond_with_data("", status=204)
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47", "--format", "eml").returncode == 0
    folder = home / "reports" / "weekly-exec" / "2026-W47"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    config = (home / "agentdigest.toml").read_text().replace('channels = ["box"]', 'channels = ["box", "hook"]')
    (home / "agentdigest.toml").write_text(config + f'[channels.hook]\ntype = "webhook"\nurl = "{httpserver.url_for("/ingest")}"\n')
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 1 and "report.json is not in the archive" in again.stdout + again.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and not httpserver.log


def run_in(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          cwd=home, capture_output=True, text=True, timeout=300)


def test_a_period_delivered_by_another_process_while_this_one_computed_keeps_its_archive(tmp_path, events,
                                                                                       monkeypatch):
    """Found black-box: of four `run --due` started together, a slower one re-archived a period another had
    just sent, so the archive no longer held what was sent. (Simulated: the other process delivers
    while this one computes.)"""
    from agentdigest import runner
    from agentdigest.archive import mark_delivered, write_artifacts
    from agentdigest.config import load_config

    home = home_with(tmp_path, events)
    config = load_config(home / "agentdigest.toml")
    report = config.reports[0]
    theirs = b"Subject: the copy the other process sent\\n\\nbody\\n"
    compute = runner.compute

    def compute_while_another_delivers(*args, **kwargs):
        data = compute(*args, **kwargs)
        write_artifacts(config.archive.path, report.id, "2026-W47", {"message.eml": theirs})
        mark_delivered(config.archive.path, report.id, "2026-W47", [{"channel": "box", "recipient": "",
                                                                     "sent_at": "2026-11-23T09:00:00+00:00"}])
        return data

    monkeypatch.setattr(runner, "compute", compute_while_another_delivers)
    (outcome,) = runner.run_reports(config, [report], period_key="2026-W47")
    assert (home / "reports" / "weekly-exec" / "2026-W47" / "message.eml").read_bytes() == theirs
    assert outcome.files == ["message.eml"]


def test_a_send_another_process_made_while_this_run_waited_is_not_made_again(tmp_path, events, monkeypatch):
    """Found in a ledger audit: a process that sent the period while this run computed, and whose ledger record
    was lost (the SQLite ledger replaced under it), left only the archive's send log to say so; this run,
    finding the period delivered, kept the archive and sent it to the same channel again. It now reads the
    send log once it holds the period."""
    from agentdigest import runner
    from agentdigest.archive import mark_delivered, write_artifacts
    from agentdigest.config import load_config

    home = home_with(tmp_path, events)
    config = load_config(home / "agentdigest.toml")
    report = config.reports[0]
    compute = runner.compute

    def compute_while_another_sends(*args, **kwargs):
        data = compute(*args, **kwargs)
        write_artifacts(config.archive.path, report.id, "2026-W47", {"message.eml": b"Subject: theirs\n\nbody\n"})
        mark_delivered(config.archive.path, report.id, "2026-W47", [{
            "channel": "box", "recipient": "", "sent_at": "2026-11-23T09:00:00+00:00", "provider_id": "theirs.eml"}])
        return data

    monkeypatch.setattr(runner, "compute", compute_while_another_sends)
    (outcome,) = runner.run_reports(config, [report], period_key="2026-W47")
    assert not list((home / "outbox").rglob("*.eml"))  # the other process's copy is the one sent
    assert [(d.channel, d.state) for d in outcome.deliveries] == [("box", "skipped_sent")]
    with sqlite3.connect(home / "agentdigest.db") as db:
        rows = db.execute("SELECT channel, state, provider_id, note FROM deliveries").fetchall()
    assert rows == [("box", "sent", "theirs.eml", "restored from the archive (the ledger had no record of this send)")]


def test_a_failed_delivery_in_a_due_pass_is_one_line_on_stderr(tmp_path, events):
    """Found black-box: under `run --due` every failed delivery was printed twice on stderr."""
    home = home_with(tmp_path, events, config=OUTBOX_CONFIG.replace('channels = ["box"]', 'channels = ["box", "dead"]')
                     + f'[channels.dead]\ntype = "webhook"\nurl = "http://127.0.0.1:{free_port()}/in"\nretry_budget = 0\n')
    done = run_in(home, "run", "--due", "--now", "2026-11-23T10:00:00+01:00")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "cannot reach" in line]
    assert len(errors) == 1, done.stderr
    assert "weekly-exec 2026-W47 -> dead: failed: cannot reach" in done.stdout


REFUSED = "550 5.1.1 no such mailbox here"
REFUSING_CONFIG = OUTBOX_CONFIG.replace('channels = ["box"]', 'channels = ["box", "mail"]') + """
[channels.mail]
type = "email"
to = ["cto@example.com"]
from = "agent-reports@example.com"
smtp_url = "${SMTP_URL}"
ca_file = "cert.pem"
"""


@pytest.mark.parametrize("command", [("run", "--period", "2026-W47"), ("run", "--due"),
                                     ("resend", "weekly-exec", "2026-W47")])
def test_a_failed_delivery_reads_once_where_stdout_and_stderr_are_one_stream(tmp_path, events, smtp_server, tls_cert,
                                                                             command):
    """Found in an operator audit: under cron (stdout and stderr to one mail) a delivery a relay refused read twice,
    an ERROR line on stderr and the outcome's line on stdout. Merged, the outcome's line says it, once; apart, each
    stream still says it (stdout the outcome, stderr the error, for a cron entry that keeps only stderr)."""
    smtp = smtp_server(rcpt={"cto@example.com": REFUSED})
    home = home_with(tmp_path, events, config=REFUSING_CONFIG)
    (home / "cert.pem").write_bytes(tls_cert[0].read_bytes())
    env = {**os.environ, "SMTP_URL": smtp.url()}
    args = [sys.executable, "-m", "agentdigest.cli", *command, "--config", "agentdigest.toml"]
    args += ["--now", "2026-11-23T10:00:00+01:00"] if "--due" in command else []
    if command[0] == "resend":
        subprocess.run([*args[:3], "run", "--period", "2026-W47", "--config", "agentdigest.toml"], cwd=home, env=env,
                       capture_output=True, timeout=300)
    merged = subprocess.run(args, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300)
    assert merged.returncode == 1, merged.stdout
    assert merged.stdout.count(REFUSED) == 1, merged.stdout
    (line,) = [line for line in merged.stdout.splitlines() if REFUSED in line]
    assert "mail cto@example.com: failed" in line and not line.startswith("ERROR"), merged.stdout
    apart = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert apart.returncode == 1, apart.stdout + apart.stderr
    assert apart.stdout.count(REFUSED) == 1 and apart.stderr.count(REFUSED) == 1, apart.stdout + apart.stderr
    assert len(apart.stderr.strip().splitlines()) == 1, apart.stderr


def test_a_failed_run_in_a_due_pass_reads_once_where_stdout_and_stderr_are_one_stream(tmp_path, events):
    """As a failed delivery (above): a period whose run failed (its source gone) was said twice in cron's mail."""
    home = home_with(tmp_path, events)
    (home / "events.duckdb").unlink()
    args = [sys.executable, "-m", "agentdigest.cli", "run", "--due", "--now", "2026-11-23T10:00:00+01:00", "--config",
            "agentdigest.toml"]
    merged = subprocess.run(args, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert merged.returncode == 3, merged.stdout
    (line,) = [line for line in merged.stdout.splitlines() if "events.duckdb" in line]
    assert line.startswith("weekly-exec 2026-W47: error: "), merged.stdout
    apart = subprocess.run(args, cwd=home, capture_output=True, text=True, timeout=300)
    assert apart.returncode == 3 and apart.stdout.startswith("weekly-exec 2026-W47: error: "), apart.stdout
    (said,) = apart.stderr.strip().splitlines()
    assert "events.duckdb" in said and said.split("2026-W47: ", 1)[1] in apart.stdout, apart.stderr


def test_a_dry_run_of_a_period_delivered_before_the_marker_existed_goes_to_previews(tmp_path, events):
    """Found black-box: an archive without the .delivered marker (written by an older version, or copied
    without dot files) was rewritten by a dry run; the ledger knows it was delivered."""
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    folder = home / "reports" / "weekly-exec" / "2026-W47"
    (folder / ".delivered").unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    dry = run_in(home, "run", "--period", "2026-W47", "--dry-run")
    assert dry.returncode == 0 and "archived apart" in dry.stdout
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


EMAIL_CONFIG = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[ledger]
url = "sqlite:///state/ledger.db"
[channels.leadership]
type = "email"
to = ["CTO <cto@example.com>", "vp@example.com"]
cc = ["cfo@example.com"]
bcc = ["audit@example.com"]
from = "Agent reports <agent-reports@example.com>"
reply_to = "ops@example.com"
smtp_url = "${SMTP_URL}"
ca_file = "cert.pem"
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["leadership"]
"""


def test_the_archived_message_is_the_email_as_sent(tmp_path, events, smtp_server, tls_cert):
    """Found in a contract audit: with a bcc the sent Message-ID (derived from every recipient) differed
    from the archived message.eml's (derived from to and cc), so the archive was not "the email as sent".
    Now both derive it from the same recipients and a plain send sends the archived bytes."""
    from agentdigest.ledger import Ledger

    smtp = smtp_server()
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "cert.pem").write_bytes(tls_cert[0].read_bytes())
    (home / "agentdigest.toml").write_text(EMAIL_CONFIG)
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml"], cwd=home,
                          env={**os.environ, "SMTP_URL": smtp.url()}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (folder,) = (home / "reports" / "weekly-exec").iterdir()
    archived = (folder / "message.eml").read_bytes()
    ((_, rcpts, received),) = smtp.messages
    assert sorted(rcpts) == ["audit@example.com", "cfo@example.com", "cto@example.com", "vp@example.com"]
    assert received.replace(b"\r\n", b"\n") == archived.replace(b"\r\n", b"\n")
    assert b"audit@example.com" not in archived  # a bcc is never a header
    sent_id = BytesParser(policy=policy.default).parsebytes(archived)["Message-ID"]
    ledger = Ledger(f"sqlite:///{home / 'state' / 'ledger.db'}")
    try:
        sent = [d for d in ledger.history(limit=20) if d["kind"] == "delivery"]
        assert len(sent) == 4 and {d["provider_id"] for d in sent} == {sent_id}
    finally:
        ledger.close()


def test_a_message_that_may_have_arrived_keeps_its_message_id_in_the_ledger(tmp_path, events, smtp_server, tls_cert):
    """The relay queued it and dropped the connection before answering: the run cannot know it arrived.
    The ledger and history keep its Message-ID, so the relay's log can tell (it showed none before)."""
    smtp = smtp_server(data=["stored-disconnect"])
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "cert.pem").write_bytes(tls_cert[0].read_bytes())
    (home / "agentdigest.toml").write_text(EMAIL_CONFIG)
    env = {**os.environ, "SMTP_URL": smtp.url(), "COLUMNS": "300"}
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml"], cwd=home,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "may have arrived" in done.stdout + done.stderr, done.stdout + done.stderr
    assert len(smtp.messages) == 1  # it did arrive, once
    (folder,) = (home / "reports" / "weekly-exec").iterdir()
    sent_id = BytesParser(policy=policy.default).parsebytes((folder / "message.eml").read_bytes())["Message-ID"]
    history = subprocess.run([sys.executable, "-m", "agentdigest.cli", "history", "--config", "agentdigest.toml"],
                             cwd=home, env=env, capture_output=True, text=True, timeout=120)
    assert history.returncode == 0 and history.stdout.count(sent_id) == 4, history.stdout


HOLD_MARKER = "being delivered by another process"  # run B's log line once it waits for the period's hold
RELEASE_WAIT = 180  # seconds /slow waits at most for its release; its channel's timeout is longer


def _slow_and_fast(httpserver) -> tuple[threading.Event, threading.Event, dict[str, list[dict]]]:
    """Two webhooks: /slow answers only once ``release`` is set (``started`` is set when it is reached),
    /fast answers at once."""
    started, release = threading.Event(), threading.Event()
    bodies: dict[str, list[dict]] = {"/slow": [], "/fast": []}

    def answer(request):
        bodies[request.path].append(json.loads(request.get_data()))
        if request.path == "/slow":
            started.set()
            release.wait(RELEASE_WAIT)
        return Response("", status=204)

    httpserver.expect_request("/slow").respond_with_handler(answer)
    httpserver.expect_request("/fast").respond_with_handler(answer)
    return started, release, bodies


def _release_once_waiting(proc: subprocess.Popen, release: threading.Event) -> tuple[threading.Thread, list[str]]:
    """Read ``proc``'s stderr on a thread; set ``release`` once it says it waits for the period's hold
    (or its stderr ends: a run that never waits must not stall the slow channel). Returns the thread and
    the lines read, for after the thread is joined."""
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if HOLD_MARKER in line:
                release.set()
        release.set()

    reader = threading.Thread(target=read, name="stderr-of-run-b", daemon=True)
    reader.start()
    return reader, lines


def _finish_b(proc: subprocess.Popen, reader: threading.Thread, lines: list[str]) -> tuple[str, str]:
    """B's stdout and stderr once it has exited (its stderr was read by ``reader``)."""
    out = proc.stdout.read()
    proc.wait(timeout=300)
    reader.join(60)
    return out, "".join(lines)


def _events_as_parquet(events: Path, folder: Path) -> Path:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(events), read_only=True) as con:
        con.execute(f"COPY agent_events TO '{folder / 'a.parquet'}' (FORMAT parquet)")
    return folder / "a.parquet"


def _late_events_arrive(folder: Path) -> None:
    """New conversations in the last complete week, as b.parquet next to a.parquet (the figures change)."""
    from datetime import datetime, timezone

    import duckdb

    from agentdigest.periods import last_complete

    week = last_complete("week", datetime.now(timezone.utc), "Europe/Berlin")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 'late-' || event_id AS event_id, 'late-' || conversation_id AS conversation_id, "
                    f"* EXCLUDE (event_id, conversation_id) FROM '{folder / 'a.parquet'}' "
                    f"WHERE event_ts >= TIMESTAMPTZ '{week.start_utc.isoformat()}' "
                    f"AND event_ts < TIMESTAMPTZ '{week.end_utc.isoformat()}' - INTERVAL 2 DAY) "
                    f"TO '{folder / 'b.parquet'}' (FORMAT parquet)")


def _run_async(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml", *args],
                            cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_concurrent_run_never_rewrites_the_archive_under_a_delivery(tmp_path, events, httpserver):
    """Found in a scheduling audit: run B of a period, started while run A was still sending to a slow
    channel and after late events arrived, rewrote the archive with its newer figures and sent them to
    the channel A had not reached yet; A's and B's channels then disagreed, and a resend sent figures no
    channel had. B now waits for A's delivery, finds the period sent and keeps A's archive."""
    started, release, bodies = _slow_and_fast(httpserver)
    home = tmp_path / "home"
    _events_as_parquet(events, home / "events")
    (home / "agentdigest.toml").write_text(f"""
[source]
url = "duckdb://"
files = ["events/*.parquet"]
[ledger]
url = "sqlite:///state/ledger.db"
[channels.slow]
type = "webhook"
url = "{httpserver.url_for('/slow')}"
timeout = 600  # longer than RELEASE_WAIT: A's request waits for B, never times out
[channels.fast]
type = "webhook"
url = "{httpserver.url_for('/fast')}"
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["slow", "fast"]
""")
    first = _run_async(home)
    try:
        assert started.wait(120), "run A never reached the slow channel"
        _late_events_arrive(home / "events")  # while A is sending
        second = _run_async(home)
        reader, lines = _release_once_waiting(second, release)  # A finishes only once B waits for it
        out_a, err_a = first.communicate(timeout=300)
        out_b, err_b = _finish_b(second, reader, lines)
    finally:
        release.set()
    assert first.returncode == 0 and second.returncode == 0, err_a + err_b
    assert [len(bodies["/slow"]), len(bodies["/fast"])] == [1, 1]
    (folder,) = (home / "reports" / "weekly-exec").iterdir()
    archived = json.loads((folder / "report.json").read_text())
    figures = [doc["metrics"]["conversations"]["value"] for doc in (bodies["/slow"][0], bodies["/fast"][0], archived)]
    assert figures[0] == figures[1] == figures[2], figures
    assert HOLD_MARKER in err_b and "skipped_sent" in out_b


@pytest.mark.postgres
def test_machines_sharing_a_postgres_ledger_hold_the_period_in_turn(tmp_path, events, httpserver, pg_url):
    """Two machines, one PostgreSQL ledger, an archive each (the archive's flock covers one machine). B
    used to go on while A was still sending: it wrote its own archive with the late events' newer figures
    and sent them to a channel A had not reached; or, with a channel already sent, it found the period
    delivered but its own archive empty and failed with "nothing archived". B now waits on the ledger's
    lock, finds every channel sent and says so; each channel got A's figures once."""
    started, release, bodies = _slow_and_fast(httpserver)
    shared = tmp_path / "shared-events"
    _events_as_parquet(events, shared)
    homes = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for home in homes:
        home.mkdir()
        (home / "agentdigest.toml").write_text(f"""
[source]
url = "duckdb://"
files = ["{shared}/*.parquet"]
[ledger]
url = "{pg_url}"
[channels.fast]
type = "webhook"
url = "{httpserver.url_for('/fast')}"
[channels.slow]
type = "webhook"
url = "{httpserver.url_for('/slow')}"
timeout = 600  # longer than RELEASE_WAIT: A's request waits for B, never times out
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["fast", "slow"]
# due as the week ends: A's `run` takes the latest complete week and B's `--due` the latest due one, which
# differed on Monday before 09:00 Berlin (the default schedule's hour), and the test failed in those hours
schedule = "0 0 * * mon"
""")
    first = _run_async(homes[0])
    try:
        assert started.wait(120), "machine A never reached the slow channel"
        _late_events_arrive(shared)  # while A is sending
        second = _run_async(homes[1], "--due")  # as cron would start it; it printed "archived", though nothing was
        reader, lines = _release_once_waiting(second, release)  # A finishes only once B waits for it
        out_a, err_a = first.communicate(timeout=300)
        out_b, err_b = _finish_b(second, reader, lines)
    finally:
        release.set()
    assert first.returncode == 0 and second.returncode == 0, err_a + err_b
    assert [len(bodies["/fast"]), len(bodies["/slow"])] == [1, 1]
    assert bodies["/fast"][0]["metrics"] == bodies["/slow"][0]["metrics"]
    (folder,) = (homes[0] / "reports" / "weekly-exec").iterdir()
    assert json.loads((folder / "report.json").read_text())["metrics"] == bodies["/fast"][0]["metrics"]
    assert HOLD_MARKER in err_b
    assert "sent to every channel meanwhile by another machine" in " ".join(out_b.split())
    assert not list((homes[1] / "reports").glob("weekly-exec/*/report.json"))  # nothing B computed is kept as sent


@pytest.mark.parametrize("scheduled", [False, True], ids=["run", "run --due"])
def test_the_events_file_is_free_for_its_writer_while_reports_are_delivered(tmp_path, events, httpserver, scheduled):
    """A DuckDB file allows one writer or readers, never both: a run that kept the source open through a
    delivery (retries can take minutes) locked out the application writing its events. The source is
    closed after each report's computation and reopened for the next. Found in an operations audit: the
    scheduled pass (`run --due` and `agentdigest schedule`) still held it open through every delivery."""
    home = home_with(tmp_path, events, f"""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.hook]
type = "webhook"
url = "{httpserver.url_for('/ingest')}"
[[reports]]
id = "weekly-exec"
timezone = "Europe/Berlin"
channels = ["hook"]
[[reports]]
id = "weekly-eng"
audience = "engineering"
timezone = "Europe/Berlin"
channels = ["hook"]
""")
    writer = ("import duckdb, sys\n"
              "with duckdb.connect(sys.argv[1]) as con:\n"
              "    con.execute(\"INSERT INTO agent_events (event_id, conversation_id, event_ts, event_type) "
              "VALUES ('w-' || uuid(), 'w-conv', now(), 'message')\")\n")
    writes: list[subprocess.CompletedProcess] = []

    def deliver_while_the_application_writes(request):
        writes.append(subprocess.run([sys.executable, "-c", writer, str(home / "events.duckdb")],
                                     capture_output=True, text=True, timeout=60))
        return Response("", status=204)

    httpserver.expect_request("/ingest").respond_with_handler(deliver_while_the_application_writes)
    if scheduled:  # Monday 09:05 Berlin a week before the last: the week before the last complete one is due
        from datetime import datetime, timedelta, timezone

        from agentdigest.periods import last_complete

        week = last_complete("week", datetime.now(timezone.utc), "Europe/Berlin")
        done = run_in(home, "run", "--due", "--now", (week.start + timedelta(hours=9, minutes=5)).isoformat())
    else:
        done = run_in(home, "run", "--period", "2026-W47")
    assert done.returncode == 0, done.stderr
    assert [w.returncode for w in writes] == [0, 0], [w.stderr for w in writes]
    import duckdb

    with duckdb.connect(str(home / "events.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM agent_events WHERE conversation_id = 'w-conv'").fetchone()[0] == 2


HOOKED_CONFIG = OUTBOX_CONFIG.replace('channels = ["box"]', 'channels = ["box", "hook"]') + """
[channels.hook]
type = "webhook"
url = "${HOOK_URL}"
"""


def _sends(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / ".delivered").read_text().splitlines()]


def test_a_new_ledger_learns_the_sends_from_the_archive_instead_of_sending_again(tmp_path, events, httpserver,
                                                                                 monkeypatch):
    """A known gap until now: with the ledger deleted (a new machine, a reset), the next run sent the
    period again although its archive marked it delivered. The marker now records every send; a ledger
    that does not know them learns them from it, and `run --due` sends nothing."""
    httpserver.expect_request("/ingest").respond_with_data("", status=204)
    monkeypatch.setenv("HOOK_URL", httpserver.url_for("/ingest"))
    home = home_with(tmp_path, events, HOOKED_CONFIG)
    emails = lambda: sorted((home / "outbox").rglob("*.eml"))  # noqa: E731
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    folder = home / "reports" / "weekly-exec" / "2026-W47"
    (eml,) = emails()
    sent = _sends(folder)
    assert sorted((s["channel"], s["recipient"]) for s in sent) == [("box", ""), ("hook", "")]
    assert [s["provider_id"] for s in sent if s["channel"] == "box"] == [eml.name]
    assert all(s["sent_at"].startswith("20") for s in sent)
    assert (folder / ".delivered").stat().st_mode & 0o777 == 0o600  # it names recipients
    assert len(httpserver.log) == 1

    for ledger in home.glob("agentdigest.db*"):
        ledger.unlink()
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already sent to every channel" in again.stdout
    assert "the ledger had no record of 2 sends that the archive records" in again.stderr
    assert emails() == [eml] and len(httpserver.log) == 1
    with sqlite3.connect(home / "agentdigest.db") as db:
        rows = db.execute("SELECT channel, state, note FROM deliveries ORDER BY channel").fetchall()
    assert rows == [(c, "sent", "restored from the archive (the ledger had no record of this send)")
                    for c in ("box", "hook")]
    assert "restored from" in run_in(home, "history").stdout

    for ledger in home.glob("agentdigest.db*"):
        ledger.unlink()
    due = run_in(home, "run", "--due", "--now", "2026-11-23T10:00:00+01:00")  # 2026-W47 is the week due then
    assert due.returncode == 0, due.stdout + due.stderr
    assert emails() == [eml] and len(httpserver.log) == 1

    # A resend is a send like any other: the marker keeps every one, the ledger the latest.
    assert run_in(home, "resend", "weekly-exec", "2026-W47", "--channel", "hook").returncode == 0
    assert [s["channel"] for s in _sends(folder)] == [s["channel"] for s in sent] + ["hook"]
    assert len(httpserver.log) == 2


def test_a_renamed_report_with_its_archive_folder_renamed_is_not_sent_again(tmp_path, events):
    """README's recipe for renaming a report id: rename its archive folder too, and the new id's first run
    learns what the old one sent instead of sending the latest period again."""
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    config = home / "agentdigest.toml"
    config.write_text(config.read_text().replace('id = "weekly-exec"', 'id = "exec-weekly"'))
    (home / "reports" / "weekly-exec").rename(home / "reports" / "exec-weekly")
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already sent to every channel" in again.stdout
    assert len(list((home / "outbox").rglob("*.eml"))) == 1


def test_a_marker_that_does_not_say_to_whom_sends_nothing_to_a_ledger_that_knows_nothing(tmp_path, events):
    """An archive marked delivered by an older agentdigest (an empty .delivered) and a new ledger: nobody
    can tell who has the report, so nothing is sent and the run says how to send it."""
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    folder = home / "reports" / "weekly-exec" / "2026-W47"
    (folder / ".delivered").write_text("")
    for ledger in home.glob("agentdigest.db*"):
        ledger.unlink()
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "does not say to whom; nothing was sent" in again.stdout and "resend weekly-exec 2026-W47" in again.stdout
    assert len(list((home / "outbox").rglob("*.eml"))) == 1
    assert run_in(home, "resend", "weekly-exec", "2026-W47").returncode == 0
    assert len(list((home / "outbox").rglob("*.eml"))) == 2 and len(_sends(folder)) == 1


def test_a_send_log_that_cannot_be_written_after_sending_says_the_report_went(tmp_path, events):
    """Found in a crash audit: on an archive disk that filled up between the artifacts and the send log (a
    200k tmpfs), every channel got the report, yet the run ended "archive ...: cannot write: No space left
    on device" with exit 1, no channel lines and a `failed` run in history; a run --force then would
    have sent it again. The sends are in the ledger: the run says they went, and that the log was not
    written. (Here the log's path is a folder, which fails the same write.)"""
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    marker = home / "reports" / "weekly-exec" / "2026-W47" / ".delivered"
    marker.unlink()
    marker.mkdir()
    again = run_in(home, "resend", "weekly-exec", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "box: sent" in again.stdout
    (line,) = again.stderr.strip().splitlines()
    assert "sent, but" in line and "send log" in line and "Is a directory" in line and "Traceback" not in line
    assert len(list((home / "outbox").rglob("*.eml"))) == 2
    with sqlite3.connect(home / "agentdigest.db") as db:
        assert db.execute("SELECT state FROM runs WHERE trigger = 'resend'").fetchall() == [("done",)]


def test_a_send_log_that_cannot_be_read_is_one_line_and_sends_nothing(tmp_path, events):
    """Found in a crash audit: a period's send log that could not be read (written 0600 by another user, say;
    here a folder in its place) ended the run with "unexpected error: IsADirectoryError". It is one line
    naming the file, and nothing is sent, since it is what says who got the period."""
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    marker = home / "reports" / "weekly-exec" / "2026-W47" / ".delivered"
    marker.unlink()
    marker.mkdir()
    for ledger in home.glob("agentdigest.db*"):
        ledger.unlink()
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 1, again.stdout + again.stderr
    (line,) = again.stderr.strip().splitlines()
    assert "cannot read the send log" in line and str(marker) in line and "unexpected" not in line
    assert len(list((home / "outbox").rglob("*.eml"))) == 1


def test_history_shows_an_error_with_brackets_as_it_was_recorded(tmp_path, events):
    """Found in a crash audit: history read the recorded errors as rich markup, so a run that failed with
    "check [archive] path" was shown as "check  path", and any "[...]" in a server's answer vanished."""
    home = home_with(tmp_path, events)
    (home / "reports").write_text("a file where the archive folder should be")
    failed = run_in(home, "run", "--period", "2026-W47")
    assert failed.returncode == 1 and "check [archive] path" in failed.stderr
    shown = run_in(home, "history").stdout
    assert "[archive]" in " ".join(shown.split()), shown


def test_a_send_the_ledger_could_not_record_is_not_sent_again(tmp_path, events, monkeypatch):
    """Found in a crash audit: with the ledger failing right after a channel accepted the report (locked for
    longer than its busy timeout), the run said "was sent but could not be recorded as sent, so the next
    run may send it again", and the next run did. The process knew it was sent: the archive's send log now
    records it, and the next run learns it from there. The ledger really fails: a trigger refuses the
    UPDATE that marks the row sent (as in test_delivery.py)."""
    from test_delivery import REFUSE_SENT

    monkeypatch.setenv("AGENTDIGEST_LEASE_SECONDS", "1")  # the failed claim's lease runs out at once, anywhere
    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W46").returncode == 0  # creates the ledger
    with sqlite3.connect(home / "agentdigest.db") as db:
        db.execute(REFUSE_SENT["sqlite"][0])
    failed = run_in(home, "run", "--period", "2026-W47")
    assert failed.returncode == 1 and "was sent but could not be recorded" in failed.stderr, failed.stderr
    emails = lambda: list((home / "outbox" / "weekly-exec" / "2026-W47").glob("*.eml"))  # noqa: E731
    assert len(emails()) == 1
    assert [s["channel"] for s in _sends(home / "reports" / "weekly-exec" / "2026-W47")] == ["box"]
    with sqlite3.connect(home / "agentdigest.db") as db:
        db.execute("DROP TRIGGER refuse_sent")
    time.sleep(1.5)
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already sent to every channel" in again.stdout and "recorded it from the archive" in again.stderr
    assert len(emails()) == 1


def test_a_delivered_period_whose_archive_was_deleted_is_not_sent_in_a_circle(tmp_path, events):
    """Found in a crash audit: with a delivered period's archive folder deleted, `resend` said "nothing
    archived (run `agentdigest run weekly-exec --period 2026-W47` first)", and that run said "the archive
    keeps what was sent (`agentdigest resend ...` sends it again)": each pointed at the other, and neither
    could work. Both now say the archive is gone and that --force recomputes it and sends it to every channel."""
    import shutil

    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    shutil.rmtree(home / "reports" / "weekly-exec" / "2026-W47")
    resend = run_in(home, "resend", "weekly-exec", "2026-W47")
    assert resend.returncode == 2 and len(resend.stderr.strip().splitlines()) == 1
    assert "archive" in resend.stderr and "run weekly-exec --period 2026-W47 --force" in resend.stderr, resend.stderr
    run = run_in(home, "run", "--period", "2026-W47")
    assert run.returncode == 0
    assert "keeps what was sent" not in run.stdout and "--force" in run.stdout, run.stdout
    assert len(list((home / "outbox").rglob("*.eml"))) == 1


def test_a_run_killed_between_two_channels_has_logged_the_first_ones_send(tmp_path, events, httpserver, monkeypatch):
    """Found in a crash audit: the archive's send log was written once, after the last channel, so a run
    killed (kill -9) while its second channel was sending had logged nothing; with the ledger then lost, the
    first channel got the period again. Each channel's sends are logged as soon as it is done."""
    arrived, release = threading.Event(), threading.Event()

    def slow(request):
        arrived.set()
        release.wait(60)
        return Response("", status=204)

    httpserver.expect_request("/ingest").respond_with_handler(slow)
    monkeypatch.setenv("HOOK_URL", httpserver.url_for("/ingest"))
    home = home_with(tmp_path, events, HOOKED_CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "agentdigest.cli", "run", "--period", "2026-W47", "--config",
                             "agentdigest.toml"], cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert arrived.wait(120), "the run never reached the webhook"
    finally:
        proc.kill()
        proc.wait()
        release.set()
    folder = home / "reports" / "weekly-exec" / "2026-W47"
    assert [s["channel"] for s in _sends(folder)] == ["box"]
    for ledger in home.glob("agentdigest.db*"):
        ledger.unlink()
    again = run_in(home, "run", "--period", "2026-W47")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(list((home / "outbox").rglob("*.eml"))) == 1 and len(httpserver.log) == 2


def _as_a_user(*command: str) -> list[str]:
    """``command`` as a user bound by file modes: as root, root without the capabilities that override them
    (root may write any mode otherwise; the interpreter under /root stays readable to its owner)."""
    from conftest import skip_or_fail

    if os.geteuid() != 0:
        return list(command)
    if not shutil.which("setpriv"):
        skip_or_fail("running as root and setpriv (util-linux) is missing to drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


@pytest.mark.parametrize("read_only", ["file", "file and folder", "file and folder, a writer running",
                                       "file and folder, a writer running, its -shm closed to others"])
def test_a_read_only_ledger_is_shown_by_history_and_refused_by_run(tmp_path, events, read_only):
    """Found in a crash audit: an operator inspecting production's ledger (a file, and a folder, they may read
    but not write) got an error from `history`: WAL mode needs the -shm file beside it, which SQLite could not
    create. history now reads it (mode=ro, or immutable=1 when not even the -shm can be made), and run fails
    at once with one line naming the read-only ledger, before anything is computed or sent."""
    home = home_with(tmp_path, events, OUTBOX_CONFIG.replace("[channels.box]", '[ledger]\nurl = "sqlite:///state/ledger.db"\n'
                                                                               "[channels.box]"))
    assert run_in(home, "run", "--period", "2026-W46").returncode == 0
    state, ledger = home / "state", home / "state" / "ledger.db"
    writer = None
    if "a writer running" in read_only:  # production's scheduler: its last record still in the -wal
        writer = sqlite3.connect(ledger, isolation_level=None)
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE runs SET error = 'walonly'")
        assert (state / "ledger.db-wal").stat().st_size > 0
    ledger.chmod(0o400)
    if read_only.endswith("closed to others"):
        (state / "ledger.db-shm").chmod(0)
    if read_only != "file":
        state.chmod(0o500)
    try:
        def as_user(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(_as_a_user(sys.executable, "-m", "agentdigest.cli", *args, "--config",
                                             "agentdigest.toml"), cwd=home, capture_output=True, text=True, timeout=300)

        shown = as_user("history")
        again = as_user("run", "--period", "2026-W47")
        missed = as_user("check", "--missed")
    finally:
        state.chmod(0o700)
        ledger.chmod(0o600)
        if writer is not None:
            (state / "ledger.db-shm").chmod(0o600)
            writer.close()
    assert shown.returncode == 0, shown.stderr
    assert "2026-W46" in shown.stdout and "sent" in shown.stdout, shown.stdout
    if read_only.endswith("a writer running"):
        assert "walonly" in shown.stdout, shown.stdout
    elif writer is not None:  # immutable=1: the file alone, and said so
        assert "walonly" not in shown.stdout and "what was written since its last checkpoint is not shown" in \
            " ".join(shown.stdout.split()), shown.stdout
    assert missed.returncode in (0, 1) and "error" not in missed.stderr, missed.stderr
    (line,) = again.stderr.strip().splitlines()
    assert again.returncode == 1 and f"the ledger {ledger} is read-only" in line, again.stderr
    assert not (home / "reports" / "weekly-exec" / "2026-W47").exists()
    assert sorted(p.parent.name for p in (home / "outbox").rglob("*.eml")) == ["2026-W46"]
    if writer is None:  # the reader made no file of its own beside production's ledger
        assert sorted(p.name for p in state.iterdir()) == ["ledger.db"]


def test_a_retry_after_longer_than_retry_max_wait_fails_the_run_now_and_the_next_one_sends(tmp_path, events,
                                                                                         httpserver):
    """Found in an operator audit: Slack answering 429 with Retry-After: 3600 made a run (and `run --due` under
    cron) sleep an hour, when the budget allowed it. A run waits at most retry_max_wait (60 s here): the delivery
    is recorded failed at once, saying what Slack asked, and the next run sends it. Run against the real clock:
    the command's timeout (300 s) fails this when the hour is waited for."""
    home = home_with(tmp_path, events, config=OUTBOX_CONFIG.replace('channels = ["box"]', 'channels = ["slack"]')
                     + f'[channels.slack]\ntype = "slack"\nwebhook_url = "{httpserver.url_for(HOOK)}"\n'
                       'retry_budget = 7200\n')
    httpserver.expect_oneshot_request(HOOK).respond_with_data("rate_limited", status=429,
                                                              headers={"Retry-After": "3600"})
    asked = "Slack asked to retry after 3600 s, longer than retry_max_wait = 60 s; the next run retries"
    first = run_in(home, "run", "--due", "--now", "2026-11-23T10:00:00+01:00")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "weekly-exec 2026-W47 -> slack: failed: " in first.stdout and asked in first.stdout
    with sqlite3.connect(home / "agentdigest.db") as db:
        row = db.execute("SELECT state, retryable, lease_until, attempts, last_error FROM deliveries").fetchone()
    assert row[:4] == ("failed", 1, None, 1) and asked in row[4], row
    assert HOOK.rsplit("/", 1)[1] not in first.stdout + first.stderr + row[4]  # the webhook's secret path

    httpserver.expect_request(HOOK).respond_with_data("ok")
    again = run_in(home, "run", "--due", "--now", "2026-11-23T10:05:00+01:00")
    assert again.returncode == 0, again.stdout + again.stderr
    with sqlite3.connect(home / "agentdigest.db") as db:
        assert db.execute("SELECT state, attempts FROM deliveries").fetchall() == [("sent", 2)]
    assert len(httpserver.log) == 2


def test_history_ends_with_the_last_heartbeat_of_each_scheduler_and_keeps_its_table(tmp_path, events):
    """Found in an operator audit: no command showed the schedulers' heartbeats, which the ledger records. history
    ends with them (host, pid, state, when), after its table, which is unchanged: what scripts read of it stays."""
    from datetime import datetime, timedelta, timezone

    from agentdigest.ledger import Ledger

    home = home_with(tmp_path, events)
    assert run_in(home, "run", "--period", "2026-W47").returncode == 0
    before = run_in(home, "history")
    assert before.returncode == 0 and "Schedulers" not in before.stdout and "weekly-exec" in before.stdout

    ledger = Ledger(f"sqlite:///{home / 'agentdigest.db'}")
    try:
        for pid in range(101, 105):  # older ones, stopped cleanly
            ledger.heartbeat(f"old-host:{pid}:aaaaaa", {"state": "stopped", "pid": pid, "host": "old-host"})
        ledger.heartbeat("box-b:202:bbbbbb", {"state": "running", "pid": 202, "host": "box-b", "busy": []})
        ledger.heartbeat("box-a:101:cccccc", {"state": "running", "pid": 101, "host": "box-a", "busy": ["weekly-exec"]})
    finally:
        ledger.close()
    silent = (datetime.now(timezone.utc) - timedelta(minutes=10)).replace(tzinfo=None)
    with sqlite3.connect(home / "agentdigest.db") as db:  # box-b was killed 10 minutes ago: no "stopped" written
        db.execute("UPDATE heartbeats SET updated_at = ? WHERE owner = 'box-b:202:bbbbbb'", (str(silent),))
    after = run_in(home, "history")
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith(before.stdout)  # the table as it was, the schedulers after it
    lines = after.stdout[len(before.stdout):].splitlines()
    assert lines[0] == "Schedulers, by their last heartbeat (UTC, running ones first; 5 of 6 shown):"
    assert lines[1].startswith("  box-a pid 101: running at ") and lines[1].endswith("; running weekly-exec")
    # shown before newer ones that stopped: a scheduler that says it runs and is silent is the news
    assert lines[2] == f"  box-b pid 202: running at {silent:%Y-%m-%d %H:%M}; no heartbeat for 10 min (stopped or hung?)"
    assert [line.split(":")[0] for line in lines[3:]] == ["  old-host pid 104", "  old-host pid 103", "  old-host pid 102"]
    assert all(": stopped at " in line for line in lines[3:]) and len(lines) == 6


def test_history_shows_a_periods_repeated_runs_that_ended_alike_as_one_row(tmp_path, events):
    """Found in an operator review: while a relay is down, `run --due` from cron records a failed run every 5
    minutes (288 a day), and `history` showed its 50 rows of one failure, every other row pushed out of sight. Runs of
    a period that ended as the next one did (trigger, state, error) are one row with their count and time span; runs
    of another period between them do not split it, a run that ended otherwise does, and --limit counts rows shown."""
    import io

    from rich.console import Console

    from agentdigest.commands_delivery import show_history
    from agentdigest.config import load_config
    from agentdigest.ledger import Ledger

    home = home_with(tmp_path, events)
    ledger = Ledger(f"sqlite:///{home / 'agentdigest.db'}")

    def runs(report: str, count: int, state: str, error: str | None = None, period: str = "2026-W47") -> None:
        for _ in range(count):
            ledger.finish_run(ledger.start_run(report, period, "due"), state, error)

    try:
        runs("weekly-exec", 1, "done", period="2026-W46")
        for _ in range(3):  # another report's runs between them
            runs("weekly-exec", 10, "failed", "mail: relay down")
            runs("weekly-eng", 1, "failed", "source down")
        runs("weekly-exec", 1, "failed", "mail: 451 try later")
        runs("weekly-exec", 5, "failed", "mail: relay down")
        runs("weekly-exec", 1, "done")
    finally:
        ledger.close()

    def shown(limit: int) -> list[str]:
        buffer = io.StringIO()
        assert show_history(load_config(home / "agentdigest.toml"), limit=limit,
                            console=Console(file=buffer, width=250)) == 0
        cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in buffer.getvalue().splitlines()
                 if line.startswith("│") and line.split("│")[1].strip()]  # the first line of each row (its time)
        return [" ".join(filter(None, (report, what, state, detail))) for _, report, what, state, _, detail in cells]

    rows = shown(50)
    assert [row.split(" from ")[0] for row in rows] == [
        "weekly-exec run (due) done", "weekly-exec 5 runs (due) failed", "weekly-exec run (due) failed mail: 451 try later",
        "weekly-eng 3 runs (due) failed", "weekly-exec 30 runs (due) failed", "weekly-exec run (due) done"]
    assert rows[1].endswith("; mail: relay down") and rows[4].endswith("; mail: relay down")
    assert shown(5) == rows[:5]  # the 30 runs read in full to fill 5 rows
