"""deliver_report end to end: archive -> ledger claims -> real servers -> ledger records, and the commands.

No double send, resend once more, a dead channel failing alone, test sends kept apart, crashed
senders taken over, and planted secrets that must not appear anywhere on disk or in the output.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from werkzeug import Response

from agentdigest.archive import write_artifacts
from agentdigest.channels import Receipt
from agentdigest.commands_delivery import check_channels, resend, show_history
from agentdigest.config import parse_config
from agentdigest.delivery import deliver_report
from agentdigest.errors import InputError
from agentdigest.ledger import Ledger
from conftest import free_port, make_artifacts

R, P = "weekly-exec", "2026-W47"  # a week that has ended: resend refuses one that has not
HOOK = "/services/T0AAAA/B0BBBB/PLANTEDslackHOOK"
FAST = dict(timeout=5, retry_budget=0.4, retry_initial=0.05, retry_max_wait=0.1)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def world(tmp_path, smtp_server, httpserver, tls_cert, monkeypatch):
    """Builds a config around live servers, archives a report period, and counts what arrived."""
    monkeypatch.setenv("COLUMNS", "400")  # rich tables unfolded, so output searches see whole lines
    smtp = smtp_server(password="PLANTED-good-pw")
    httpserver.expect_request(HOOK).respond_with_data("ok")
    httpserver.expect_request("/ingest/PLANTEDwebhookPATH").respond_with_data("", status=204)

    def email(**extra):
        return {"type": "email", "to": ["alice@example.com", "bob@example.com"], "smtp_url": smtp.url(),
                "ca_file": str(tls_cert[0]), "from": "reports@example.com", **FAST, **extra}

    presets = {
        "mail": email(),
        "slack": dict(type="slack", webhook_url=httpserver.url_for(HOOK), **FAST),
        "hook": dict(type="webhook", url=httpserver.url_for("/ingest/PLANTEDwebhookPATH"),
                     secret="PLANTED-hmac-secret", **FAST),
        "dead": dict(type="webhook", url=f"http://127.0.0.1:{free_port()}/in/PLANTEDdeadPATH", **FAST),
        "box": dict(type="outbox", path="outbox"),
    }

    def build(channels: list[str], ledger_url: str = "sqlite:///state/ledger.db", **overrides):
        spec = {name: overrides.get(name, presets.get(name)) for name in channels}
        data = {"source": {"url": "duckdb://", "table": "events"}, "archive": {"path": "reports"},
                "ledger": {"url": ledger_url}, "channels": spec,
                "reports": [{"id": R, "channels": channels}]}
        config = parse_config(data, str(tmp_path / "agentdigest.toml"), base=tmp_path)
        write_artifacts(config.archive.path, R, P, make_artifacts(R, P))
        return config

    def posts(path: str) -> int:
        return sum(1 for request, _ in httpserver.log if request.path == path)

    return SimpleNamespace(build=build, smtp=smtp, posts=posts, email=email, tmp_path=tmp_path, httpserver=httpserver)


def deliver(config, **kwargs):
    ledger = Ledger(config.ledger.url)
    try:
        return deliver_report(config, config.reports[0], P, ledger=ledger, archive=config.archive.path, **kwargs)
    finally:
        ledger.close()


def states(results) -> dict[tuple[str, str], str]:
    return {(r.channel, r.recipient): r.state for r in results}


def outbox_emls(world) -> int:
    return len(list((world.tmp_path / "outbox" / R / P).glob("*.eml")))


def test_a_second_delivery_sends_nothing_new(world):
    config = world.build(["mail", "slack", "hook", "box"])
    first = deliver(config)
    assert set(states(first).values()) == {"sent"} and len(first) == 5  # two addresses, three channels
    second = deliver(config)
    assert set(states(second).values()) == {"skipped_sent"}
    assert (len(world.smtp.messages), world.posts(HOOK), world.posts("/ingest/PLANTEDwebhookPATH"), outbox_emls(world)) \
        == (1, 1, 1, 1)


def test_resend_sends_exactly_once_more(world, capsys):
    config = world.build(["mail", "slack", "box"])
    deliver(config)
    assert resend(config, R, P) == 0
    assert (len(world.smtp.messages), world.posts(HOOK), outbox_emls(world)) == (2, 2, 2)
    # Mail clients must show the resend: it is a new Message-ID, not a duplicate of the first.
    ids = {BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"] for _, _, raw in world.smtp.messages}
    assert len(ids) == 2
    # ... and dated when it was sent, not when the archived one was rendered (found in an email audit).
    dates = [BytesParser(policy=policy.default).parsebytes(raw)["Date"].datetime for _, _, raw in world.smtp.messages]
    assert dates[0].year == 2026 and dates[0].month == 11 and dates[0].day == 30  # the archived message's
    assert abs((dates[1] - datetime.now(timezone.utc)).total_seconds()) < 300
    ledger = Ledger(config.ledger.url)
    assert {row["sends"] for row in ledger.deliveries(R, P)} == {2}
    assert [h["trigger"] for h in ledger.history() if h["kind"] == "run"] == ["resend"]
    assert "slack: sent" in capsys.readouterr().out
    assert resend(config, R, P, channel="slack") == 0
    assert (len(world.smtp.messages), world.posts(HOOK)) == (2, 3)
    # Two resends in the same second are two messages too: the variant was the Date, to the second, so the
    # second resend had the first one's Message-ID and some mail clients dropped it (a delivery audit).
    assert resend(config, R, P, channel="mail") == 0 and resend(config, R, P, channel="mail") == 0
    ids = [BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"] for _, _, raw in world.smtp.messages]
    assert len(ids) == len(set(ids)) == 4


@pytest.mark.parametrize("period", ["../other-report/2026-W47", "2026-W47/../../x", "2026-11-23", "W47"])
def test_resend_takes_a_period_key_never_a_path(world, period):
    """resend's PERIOD is a key of the report's period kind: a path into another report's archive (which
    was sent to its own audience only) or a key of another kind is refused before anything is read."""
    config = world.build(["mail", "slack", "box"])
    write_artifacts(config.archive.path, "other-report", "2026-W47", make_artifacts("other-report", "2026-W47"))
    with pytest.raises(InputError, match="PERIOD: .* is not a week key"):
        resend(config, R, period)
    assert (len(world.smtp.messages), world.posts(HOOK), outbox_emls(world)) == (0, 0, 0)


def test_the_archive_refuses_names_that_leave_its_folder(tmp_path):
    for report_id, period in (("r", ".."), ("r", "a/b"), ("..", "2026-W47"), ("r", "a\\b"), ("r", " 2026-W47")):
        with pytest.raises(InputError, match="is not a plain name"):
            write_artifacts(tmp_path, report_id, period, {"report.json": b"{}"})


def test_a_secret_echoed_in_a_servers_error_reply_is_masked_whichever_channel_owns_it(world, httpserver, capsys):
    """A webhook whose server answers 500 and echoes its URL's query token and another channel's token:
    neither reaches the result, the ledger (last error, history) or the output."""
    echo = "/echo/in"
    httpserver.expect_request(echo).respond_with_data(
        "bad token PLANTEDquerySECRET42; known hooks: /ingest/PLANTEDwebhookPATH", status=500)
    config = world.build(["echo", "hook"], echo=dict(type="webhook", url=httpserver.url_for(echo) + "?token=PLANTEDquerySECRET42",
                                                     **FAST))
    results = deliver(config)
    assert states(results)[("echo", "")] == "failed" and states(results)[("hook", "")] == "sent"
    ledger = Ledger(config.ledger.url)
    stored = repr(ledger.deliveries(R, P)) + repr(ledger.history())
    assert show_history(config, limit=20) == 0
    shown = capsys.readouterr().out + repr(results) + stored
    assert "500" in shown and "***" in shown
    assert "PLANTEDquerySECRET42" not in shown and "PLANTEDwebhookPATH" not in shown


def test_a_deliberate_webhook_resend_has_a_new_delivery_id(world, httpserver):
    """X-Agentdigest-Delivery is what receivers deduplicate on: a retry keeps it, a resend must not."""
    config = world.build(["hook"])
    deliver(config)
    deliver(config)  # already sent: nothing posted
    assert resend(config, R, P) == 0
    ids = [request.headers["X-Agentdigest-Delivery"] for request, _ in httpserver.log
           if request.path == "/ingest/PLANTEDwebhookPATH"]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_a_dead_channel_fails_alone_and_history_shows_it(world, capsys):
    config = world.build(["mail", "dead", "slack"])
    results = deliver(config)
    assert states(results) == {("mail", "alice@example.com"): "sent", ("mail", "bob@example.com"): "sent",
                               ("dead", ""): "failed", ("slack", ""): "sent"}
    failed = next(r for r in results if r.failed)
    assert "cannot reach webhook http://127.0.0.1" in failed.error and failed.attempts >= 2
    ledger = Ledger(config.ledger.url)
    assert ledger.delivery("weekly-exec", P, "dead")["state"] == "failed"
    assert not ledger.is_period_sent(R, P, ["mail", "dead", "slack"])
    assert show_history(config, limit=20) == 0
    out = capsys.readouterr().out
    assert "sent" in out and "failed" in out and "cannot reach webhook" in out
    # Rerun: only the dead channel is tried again, the others stay delivered once.
    assert states(deliver(config))[("dead", "")] == "failed"
    assert (len(world.smtp.messages), world.posts(HOOK)) == (1, 1)


def test_only_the_refused_recipient_is_retried_by_a_rerun(world):
    config = world.build(["mail"])
    world.smtp.handler.rcpt["bob@example.com"] = "550 5.1.1 no such user"
    assert states(deliver(config)) == {("mail", "alice@example.com"): "sent", ("mail", "bob@example.com"): "failed"}
    world.smtp.handler.rcpt.clear()  # bob's mailbox now exists
    assert states(deliver(config)) == {("mail", "alice@example.com"): "skipped_sent", ("mail", "bob@example.com"): "sent"}
    assert [rcpts for _, rcpts, _ in world.smtp.messages] == [["alice@example.com"], ["bob@example.com"]]


def test_an_address_written_differently_is_not_sent_the_period_again(world, capsys):
    """Found in a delivery audit: the ledger keys a recipient as written, so a config whose address was
    re-cased (Alice@Example.COM to alice@example.com, say while taking out a refused one) sent the period
    again to that person on the next run. Addresses are compared case-insensitively, as a channel's own list
    is de-duplicated and a renamed channel's sends are; history says what happened."""
    first = world.build(["mail"], mail=world.email(to=["Alice <Alice@Example.COM>", "bob@example.com"]))
    world.smtp.handler.rcpt["bob@example.com"] = "550 5.1.1 no such user"
    assert states(deliver(first)) == {("mail", "Alice@Example.COM"): "sent", ("mail", "bob@example.com"): "failed"}
    world.smtp.handler.rcpt.clear()
    fixed = world.build(["mail"], mail=world.email(to=["alice@example.com", "bob@example.com"]))
    assert states(deliver(fixed)) == {("mail", "alice@example.com"): "skipped_sent", ("mail", "bob@example.com"): "sent"}
    assert [rcpts for _, rcpts, _ in world.smtp.messages] == [["Alice@Example.COM"], ["bob@example.com"]]
    assert states(deliver(fixed)) == {("mail", "alice@example.com"): "skipped_sent", ("mail", "bob@example.com"): "skipped_sent"}
    assert len(world.smtp.messages) == 2
    ledger = Ledger(fixed.ledger.url)
    try:
        assert ledger.delivery(R, P, "mail", "alice@example.com")["state"] == "sent"
        assert ledger.is_period_sent(R, P, ["mail"])
    finally:
        ledger.close()
    capsys.readouterr()
    assert show_history(fixed, limit=20) == 0
    assert "sent to Alice@Example.COM (the same address, written differently)" in capsys.readouterr().out
    # a forced resend goes to the address as it is now written, once
    assert states(deliver(fixed, force=True)) == {("mail", "alice@example.com"): "sent", ("mail", "bob@example.com"): "sent"}
    assert len(world.smtp.messages) == 3


def test_a_test_send_to_an_address_is_not_the_periods_delivery(world):
    """The test send goes to that one address: not to the channel's to, cc or bcc (the envelope says who
    gets it, so a kept bcc would be invisible in the headers), and no Cc header names the real audience."""
    config = world.build(["mail", "slack"], mail=world.email(cc=["cfo@example.com"], bcc=["audit@example.com"]))
    results = deliver(config, test_to="me@example.com")
    (_, rcpts, raw), = world.smtp.messages
    assert rcpts == ["me@example.com"]  # the SMTP envelope, as the relay recorded it
    assert states(results) == {("mail", "me@example.com"): "test"}
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["Subject"].startswith("[test] ") and msg["To"] == "me@example.com"
    assert msg["Cc"] is None and msg["Bcc"] is None
    assert b"cfo@example.com" not in raw and b"audit@example.com" not in raw and b"alice@example.com" not in raw
    ledger = Ledger(config.ledger.url)
    assert not ledger.is_period_sent(R, P, ["mail", "slack"])
    assert [row["kind"] for row in ledger.deliveries(R, P)] == ["test"]
    assert set(states(deliver(config)).values()) == {"sent"}  # the real delivery still happens
    assert world.posts(HOOK) == 1
    # ... to the whole audience, cc and bcc included: the test send above left them out, not the config.
    assert sorted(world.smtp.messages[1][1]) == ["alice@example.com", "audit@example.com", "bob@example.com",
                                                 "cfo@example.com"]


def test_a_test_send_to_a_channel(world):
    config = world.build(["mail", "hook"])
    assert states(deliver(config, test_to="hook")) == {("hook", ""): "test"}
    request = next(r for r, _ in world.httpserver.log if r.path == "/ingest/PLANTEDwebhookPATH")
    assert request.headers["X-Agentdigest-Test"] == "true"
    assert Ledger(config.ledger.url).delivery_state(R, P, "hook") is None


@pytest.mark.parametrize("test_to", ["not-an-address", "a@example.com\r\nBcc: x@evil.example"])
def test_a_bad_test_target_is_an_input_error(world, test_to):
    with pytest.raises(InputError, match="--test-to"):
        deliver(world.build(["mail"]), test_to=test_to)


def test_a_crashed_senders_claim_is_taken_over(world, caplog):
    config = world.build(["slack"])
    ledger = Ledger(config.ledger.url)
    assert ledger.claim(R, P, "slack", owner="crashed-host:99", lease_seconds=-1)
    with caplog.at_level(logging.WARNING, logger="agentdigest.delivery"):
        assert states(deliver(config)) == {("slack", ""): "sent"}
    assert "took over the expired claim of crashed-host:99" in caplog.text
    assert ledger.delivery(R, P, "slack")["takeovers"] == 1 and world.posts(HOOK) == 1


def test_an_error_about_a_relay_without_password_names_the_relay(world):
    port = free_port()
    config = world.build(["mail", "dead"], mail=world.email(smtp_url=f"smtp://127.0.0.1:{port}"))
    errors = {r.channel: r.error for r in deliver(config)}
    assert f"cannot reach smtp://127.0.0.1:{port}" in errors["mail"]  # not "cannot reach ***"
    assert "PLANTEDdeadPATH" not in errors["dead"] and "cannot reach webhook http://127.0.0.1" in errors["dead"]


def test_a_recipient_refused_for_good_is_not_counted_in_the_others_retries(tmp_path, smtp_server, tls_cert):
    """Found in a contract audit: in a batch where one recipient was deferred (451, retried) and one refused
    (550), the refused one was recorded with every retry's attempt although it was tried once."""
    smtp = smtp_server(rcpt={"reject@example.com": "550 5.1.1 no such user",
                             "busy@example.com": ["451 4.3.0 try later", "451 4.3.0 try later"]})
    spec = {"type": "email", "to": ["cto@example.com", "reject@example.com", "busy@example.com"],
            "smtp_url": smtp.url(), "ca_file": str(tls_cert[0]), "from": "reports@example.com",
            "timeout": 5, "retry_budget": 3, "retry_initial": 0.05, "retry_max_wait": 0.1}
    config = parse_config({"source": {"url": "duckdb://", "table": "events"}, "archive": {"path": "reports"},
                           "ledger": {"url": "sqlite:///state/ledger.db"}, "channels": {"mail": spec},
                           "reports": [{"id": R, "channels": ["mail"]}]}, str(tmp_path / "agentdigest.toml"),
                          base=tmp_path)
    write_artifacts(config.archive.path, R, P, make_artifacts(R, P))
    results = {r.recipient: r for r in deliver(config)}
    assert {k: r.state for k, r in results.items()} == {"cto@example.com": "sent", "reject@example.com": "failed",
                                                         "busy@example.com": "sent"}
    assert [sorted(rcpts) for _, rcpts, _ in smtp.messages] == [["cto@example.com"], ["busy@example.com"]]
    ledger = Ledger(config.ledger.url)
    try:
        attempts = {t: ledger.delivery(R, P, "mail", t)["attempts"] for t in results}
    finally:
        ledger.close()
    assert attempts == {"cto@example.com": 1, "reject@example.com": 1, "busy@example.com": 3}
    assert {k: r.attempts for k, r in results.items()} == attempts


def test_history_counts_every_attempt_and_shows_takeovers(world, httpserver, capsys):
    flaky = "/ingest/flaky"
    answers = [500, 503]  # two transient failures, then accepted: three attempts in one run
    httpserver.expect_request(flaky).respond_with_handler(
        lambda request: Response("busy", status=answers.pop(0)) if answers else Response("", status=204))
    config = world.build(["hook", "slack"], hook=dict(type="webhook", url=httpserver.url_for(flaky),
                                                      timeout=5, retry_budget=5, retry_initial=0.05))
    ledger = Ledger(config.ledger.url)
    assert ledger.claim(R, P, "slack", owner="crashed-host:99:abc", lease_seconds=-1)
    results = deliver(config)
    assert states(results) == {("hook", ""): "sent", ("slack", ""): "sent"}
    assert next(r for r in results if r.channel == "hook").attempts == 3
    assert ledger.delivery(R, P, "hook")["attempts"] == 3
    assert ledger.delivery(R, P, "slack")["attempts"] == 2  # the crashed claim's try and this one
    assert show_history(config, limit=20) == 0
    out = capsys.readouterr().out
    assert "attempts" in out and "tries" not in out
    slack_line = next(line for line in out.splitlines() if " slack " in line)
    assert "taken over 1 time" in slack_line and "crashed-host:99:abc" in slack_line


def test_a_live_claim_elsewhere_is_left_alone(world):
    config = world.build(["slack"])
    assert Ledger(config.ledger.url).claim(R, P, "slack", owner="other-host:1", lease_seconds=600)
    assert states(deliver(config)) == {("slack", ""): "claimed_elsewhere"}
    assert world.posts(HOOK) == 0


def test_nothing_archived_is_an_input_error(world):
    config = world.build(["box"])
    ledger = Ledger(config.ledger.url)
    with pytest.raises(InputError, match="nothing archived"):
        deliver_report(config, config.reports[0], "2026-W01", ledger=ledger, archive=config.archive.path)
    with pytest.raises(InputError, match="has no channel 'slack'"):
        deliver(config, only_channel="slack")


def test_resend_and_history_mistakes_are_refused_and_never_recorded_as_runs(world, capsys):
    config = world.build(["box"])
    with pytest.raises(InputError, match="--channel: report 'weekly-exec' has no channel 'nope'"):
        resend(config, R, P, channel="nope")
    with pytest.raises(InputError, match="nothing archived for weekly-exec 2026-W01"):
        resend(config, R, "2026-W01")
    # A mistyped name of 5,000 characters (a pasted file) is repeated shortened, on one line
    with pytest.raises(InputError) as long_name:
        resend(config, R, P, channel="x" * 5000 + "\nforged line")
    assert "\n" not in str(long_name.value) and len(str(long_name.value)) < 300
    assert "(5,012 characters)" in str(long_name.value) and "(its channels: box)" in str(long_name.value)
    with pytest.raises(InputError, match="--report: no report 'nope'"):
        show_history(config, report="nope")
    assert Ledger(config.ledger.url).history() == []
    assert show_history(config, report=R) == 0  # a configured report with nothing yet is not an error
    assert "No runs or deliveries recorded for weekly-exec" in capsys.readouterr().out


def test_check_reaches_channels_and_sends_nothing(world, capsys):
    world.httpserver.expect_request("/api/auth.test").respond_with_json({"ok": True, "user": "reportbot", "team": "Acme"})
    config = world.build(["mail", "wrong", "bot", "hook", "box"], wrong=world.email(smtp_url=world.smtp.url(password="nope-PLANTED")),
                         bot=dict(type="slack", bot_token="xoxb-PLANTED", channel="C1", api_url=world.httpserver.url_for("/api/")))
    assert check_channels(config) == 1
    out = capsys.readouterr().out
    assert "channel mail: ok" in out and "logged in as reports" in out
    assert "channel wrong: FAILED - login refused by smtp+starttls://reports:***@127.0.0.1" in out
    assert "channel bot: ok" in out and "reportbot in Acme" in out
    assert "channel hook: unchecked" in out and "cannot be checked without sending" in out
    assert "channel box: ok" in out
    assert world.smtp.messages == [] and "PLANTED" not in out


def test_planted_secrets_appear_nowhere(world, capsys, tmp_path):
    """A whole run with failures, a history and a resend: no secret on disk or in the output."""
    world.httpserver.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "invalid_auth"})
    world.httpserver.expect_request("/services/T0/B0/PLANTEDfailingHOOK").respond_with_data("oops", status=500)
    channels = ["mail", "wrong", "slack", "flaky", "bot", "hook", "dead", "box"]
    config = world.build(channels,
                         wrong=world.email(smtp_url=world.smtp.url(password="PLANTED-wrong/pw")),
                         flaky=dict(type="slack", webhook_url=world.httpserver.url_for("/services/T0/B0/PLANTEDfailingHOOK"), **FAST),
                         bot=dict(type="slack", bot_token="xoxb-PLANTED-bot", channel="C1",
                                  api_url=world.httpserver.url_for("/api/"), **FAST))
    handler = logging.FileHandler(tmp_path / "agentdigest.log")
    # The stand-in servers run in this process; their access logs are the far side, not ours.
    handler.addFilter(lambda record: not record.name.startswith(("werkzeug", "mail.log")))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the libraries' own debug logging is where URLs usually leak
    try:
        results = deliver(config)
        assert {r.channel for r in results if r.failed} == {"wrong", "flaky", "bot", "dead"}
        assert {r.channel for r in results if r.state == "sent"} == {"mail", "slack", "hook", "box"}
        assert show_history(config, report=R, limit=100) == 0
        assert resend(config, R, P) == 1
        check_channels(config)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    output = capsys.readouterr()
    assert "smtp+starttls://reports:***@127.0.0.1" in output.out  # errors stay informative
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written) and any(p.name == "agentdigest.log" for p in written)
    for path in written:
        assert b"PLANTED" not in path.read_bytes(), f"a secret leaked into {path}"
    assert "PLANTED" not in output.out + output.err
    assert all("PLANTED" not in (r.error or "") for r in results)
    assert Path(tmp_path / "agentdigest.log").read_text()  # something was logged and searched


def test_a_channel_that_crashes_fails_alone(world, monkeypatch):
    from agentdigest.channels.webhook import WebhookChannel

    def broken(self, delivery):
        raise RuntimeError(f"bug while posting to {self.settings.url.get_secret_value()}")

    monkeypatch.setattr(WebhookChannel, "deliver", broken)  # stands in for a bug: nothing real can crash on cue
    config = world.build(["hook", "slack"])
    results = {r.channel: r for r in deliver(config)}
    assert results["slack"].state == "sent" and results["hook"].state == "failed"
    assert "unexpected RuntimeError" in results["hook"].error and "PLANTED" not in results["hook"].error
    assert Ledger(config.ledger.url).delivery(R, P, "hook")["state"] == "failed"


def test_a_channel_that_reports_nothing_for_a_target_is_retried_by_the_scheduler(world, monkeypatch):
    """Found in a review: the failure recorded for a target a channel's receipt left out (a plug-in's bug) was
    permanent (TargetResult's default), so a pass failing only so was never retried by the scheduler
    ("retry_not_planned", "refused for good"), though nothing refused it: as a channel that crashes, transient."""
    from agentdigest.channels.webhook import WebhookChannel
    from agentdigest.periods import Period
    from agentdigest.schedule import PeriodRun

    monkeypatch.setattr(WebhookChannel, "deliver", lambda self, delivery: Receipt(()))
    config = world.build(["hook"])
    (result,) = deliver(config)
    assert result.state == "failed" and "reported nothing" in result.error and result.retryable
    assert not PeriodRun(R, Period("week", datetime(2026, 11, 16).date(), "UTC"), [result]).failed_for_good


def test_resend_refuses_a_period_that_has_not_ended(world):
    """Found black-box: `run --dry-run` of this week, then `resend`, sent the partial week as the week's
    report, and Monday's due run skipped the complete one."""
    config = world.build(["box"])
    write_artifacts(config.archive.path, R, "2026-W48", make_artifacts(R, "2026-W48"))
    with pytest.raises(InputError, match="2026-W48 has not ended yet .*: no report of it was sent, so there is "
                                         "nothing to resend"):  # not "use --dry-run", which resend lacks
        resend(config, R, "2026-W48", now=datetime(2026, 11, 28, 12, tzinfo=timezone.utc))
    assert outbox_emls(world) == 0 and Ledger(config.ledger.url).history() == []
    assert resend(config, R, "2026-W48", now=datetime(2026, 11, 30, 12, tzinfo=timezone.utc)) == 0


def test_slack_bot_targets_count_their_own_attempts(world):
    """Found by a new user: one chat.postMessage and one upload were recorded as 2 attempts each (the
    receipt's total). The message and the PDF now count their own: here the upload was retried once."""
    server, calls = world.httpserver, {"upload": 0}
    base = server.url_for("").rstrip("/")
    server.expect_request("/api/chat.postMessage").respond_with_json({"ok": True, "channel": "C1", "ts": "1.2"})

    def get_upload_url(request):
        calls["upload"] += 1
        if calls["upload"] == 1:
            return Response("", status=503)
        return Response(f'{{"ok": true, "upload_url": "{base}/upload/F1", "file_id": "F1"}}',
                        content_type="application/json")

    server.expect_request("/api/files.getUploadURLExternal").respond_with_handler(get_upload_url)
    server.expect_request("/upload/F1").respond_with_data("OK - 36")
    server.expect_request("/api/files.completeUploadExternal").respond_with_json({"ok": True, "files": [{"id": "F1"}]})
    config = world.build(["bot"], bot=dict(type="slack", bot_token="xoxb-PLANTED", channel="C1", upload_pdf=True,
                                           api_url=server.url_for("/api/"), **FAST))
    results = deliver(config)
    assert {(r.recipient, r.state, r.attempts) for r in results} == {("", "sent", 1), ("file:report.pdf", "sent", 2)}
    ledger = Ledger(config.ledger.url)
    try:
        rows = {r["recipient"]: (r["attempts"], r["sends"]) for r in ledger.deliveries(R, P)}
    finally:
        ledger.close()
    assert rows == {"": (1, 1), "file:report.pdf": (2, 1)}
    assert calls["upload"] == 2 and world.posts("/api/chat.postMessage") == 1


def test_a_slack_post_that_may_have_gone_out_waits_for_the_next_run(world):
    """Found in a Slack review: chat.postMessage's internal_error ("some aspect of the operation may have
    succeeded") was retried within the run, and each retry could post the report again. Now the run records
    a failure saying so, posts nothing more, and the next run sends it (at least once)."""
    server, answers = world.httpserver, [{"ok": False, "error": "internal_error"}]

    def post(request):
        return Response(json.dumps(answers.pop(0) if answers else {"ok": True, "channel": "C1", "ts": "1.2"}),
                        content_type="application/json")

    server.expect_request("/api/chat.postMessage").respond_with_handler(post)
    config = world.build(["bot"], bot=dict(type="slack", bot_token="xoxb-PLANTED", channel="C1", upload_pdf=False,
                                           api_url=server.url_for("/api/"), **{**FAST, "retry_budget": 5}))
    (first,) = deliver(config)
    assert first.state == "failed" and world.posts("/api/chat.postMessage") == 1
    ledger = Ledger(config.ledger.url)
    try:
        (row,) = ledger.deliveries(R, P)
        assert row["state"] == "failed" and row["attempts"] == 1
        assert "internal_error" in row["error"] and "may have been posted" in row["error"]
        assert "check the channel before resending" in row["error"]
        # Not retried within the run, but no refusal: the scheduler's retry of the pass, which skips the targets
        # the ledger says were refused for good (not retryable), sends it again (found in a review of that skip)
        assert row["retryable"] is True
    finally:
        ledger.close()
    (second,) = deliver(config, skip_refused=True)
    assert second.state == "sent" and world.posts("/api/chat.postMessage") == 2


def test_a_send_that_may_have_arrived_is_not_a_permanent_failure_to_the_scheduler(world):
    """Found in a review: a send that may have arrived (Slack's internal_error, a post or an email's final "."
    unanswered) is not retried within the run, so the channel's failure is not retryable; the scheduler took it
    for a refusal for good and planned no retry ("retry_not_planned"), leaving the report unsent until the next
    scheduled run, a week later for a weekly one. The next pass is what sends it again, as it did before."""
    from agentdigest.periods import Period
    from agentdigest.schedule import PeriodRun

    server = world.httpserver
    server.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "internal_error"})
    config = world.build(["bot"], bot=dict(type="slack", bot_token="xoxb-PLANTED", channel="C1", upload_pdf=False,
                                           api_url=server.url_for("/api/"), **FAST))
    (first,) = deliver(config)
    assert first.state == "failed" and "may have been posted" in first.error
    period = Period("week", datetime(2026, 11, 16).date(), "UTC")  # 2026-W47
    assert not PeriodRun(R, period, [first]).failed_for_good
    # A refusal for good stays one: Slack's channel_not_found fails again until the config changes.
    server.clear()
    server.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "channel_not_found"})
    (again,) = deliver(config)
    assert again.state == "failed" and "channel_not_found" in again.error
    assert PeriodRun(R, period, [again]).failed_for_good


REFUSE_SENT = {  # a real database failure, on cue: the write that records a delivery as sent is refused
    "sqlite": ["CREATE TRIGGER refuse_sent BEFORE UPDATE ON deliveries WHEN NEW.state = 'sent' "
               "BEGIN SELECT RAISE(ABORT, 'ledger write refused by the test trigger'); END"],
    "postgresql": ["CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "RAISE EXCEPTION 'ledger write refused by the test trigger'; END $$",
                   "CREATE TRIGGER refuse_sent BEFORE UPDATE ON deliveries FOR EACH ROW "
                   "WHEN (NEW.state = 'sent') EXECUTE FUNCTION refuse_sent()"],
}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_send_the_ledger_cannot_record_says_it_may_be_sent_again(world, backend, request):
    """Found in an operations audit: with the ledger failing right after a webhook accepted the report, the
    error said only "disk I/O error"; the next run then sent it again. The error now says so. The ledger
    really fails: a trigger in its database refuses the UPDATE that marks the row sent (as root, no file
    permission would stop SQLite here)."""
    from sqlalchemy import create_engine, text

    from agentdigest.ledger_schema import LedgerError, engine_url

    config = world.build(["hook"], **({"ledger_url": request.getfixturevalue("pg_url")} if backend == "postgresql" else {}))
    Ledger(config.ledger.url).close()  # the schema, so the trigger has its table
    engine = create_engine(engine_url(config.ledger.url))
    with engine.begin() as conn:
        for statement in REFUSE_SENT[backend]:
            conn.execute(text(statement))
    engine.dispose()
    with pytest.raises(LedgerError, match=r"^the ledger .* failed: .*ledger write refused by the test trigger.*; "
                                          r"weekly-exec 2026-W47 -> hook was sent but could not be recorded as sent in the "
                                          r"ledger; the archive's send log records it, so the next run does not "
                                          r"send it again$"):
        deliver(config)
    assert world.posts("/ingest/PLANTEDwebhookPATH") == 1
    ledger = Ledger(config.ledger.url)
    try:  # the refused write left the claim as it was: unfinished, so a later pass takes it over
        assert ledger.delivery(R, P, "hook")["state"] == "sending"
    finally:
        ledger.close()


def test_the_default_lease_outlives_the_slowest_delivery_as_the_readme_says(tmp_path, monkeypatch):
    """README, "Crashes": a claim lasts ``retry_budget + 10 x timeout + 60`` seconds by default, and an email's
    ten more minutes less one timeout: its answer to the final "." is waited for up to 10 minutes whatever
    ``timeout`` says (found in a delivery audit: a relay scanning the message for longer than the lease lost
    its sender's claim, and the next cron pass sent it again). The expectations are worked out by hand from
    that rule, never from the code under test."""
    from agentdigest.preflight import lease_seconds, report_lease

    monkeypatch.delenv("AGENTDIGEST_LEASE_SECONDS", raising=False)
    channels = {
        "mail": {"type": "email", "to": ["a@example.com"], "from": "r@example.com", "smtp_url": "smtp://127.0.0.1:25",
                 "retry_budget": 300.0, "timeout": 30.0},           # 300 + 10 x 30 + 60 + (600 - 30) = 1230
        "quick": {"type": "email", "to": ["a@example.com"], "from": "r@example.com", "smtp_url": "smtp://127.0.0.1:25",
                  "retry_budget": 0.0, "timeout": 1.0},                     # 0 + 10 x 1 + 60 + (600 - 1) = 669
        "hook": {"type": "webhook", "url": "http://127.0.0.1:9/in", "retry_budget": 120.0, "timeout": 5.0},
        # 120 + 10 x 5 + 60 = 230
        "slow": {"type": "webhook", "url": "http://127.0.0.1:9/slow", "retry_budget": 0.0, "timeout": 90.0},
        # 0 + 10 x 90 + 60 = 960
        "box": {"type": "outbox", "path": "outbox"},  # the defaults: retry_budget 300, timeout 30 -> 660
    }
    config = parse_config({"source": {"url": "duckdb://", "table": "events"}, "channels": channels,
                           "reports": [{"id": "a", "channels": ["mail", "hook"]},
                                       {"id": "b", "channels": ["hook", "slow", "box"]},
                                       {"id": "c", "channels": ["hook"]},
                                       {"id": "d", "channels": []}]},
                          str(tmp_path / "agentdigest.toml"), base=tmp_path)
    leases = {name: lease_seconds(settings) for name, settings in config.channels.items()}
    assert leases == {"mail": 1230.0, "quick": 669.0, "hook": 230.0, "slow": 960.0, "box": 660.0}
    # A report's lease is its slowest channel's; without channels there is nothing to wait for.
    assert [report_lease(config, config.report(r)) for r in "abcd"] == [1230.0, 960.0, 230.0, 0.0]
    monkeypatch.setenv("AGENTDIGEST_LEASE_SECONDS", "7")  # the documented override, for every channel
    assert lease_seconds(config.channels["slow"]) == 7.0 and report_lease(config, config.report("a")) == 7.0


def test_the_archive_lock_is_waited_for_only_as_long_as_a_delivery_can_take(tmp_path):
    """A holder that hangs (stopped, alive) must not block the period for good: after max_wait the
    caller goes on, saying so; its claims keep every delivery single."""
    import time

    from agentdigest.archive import period_lock

    waited, gave_up = [], []
    with period_lock(tmp_path, "weekly-exec", "2026-W48"):
        started = time.monotonic()
        with period_lock(tmp_path, "weekly-exec", "2026-W48", on_wait=lambda: waited.append(1), max_wait=1.0,
                         on_give_up=lambda: gave_up.append(time.monotonic() - started)):
            pass
    assert waited == [1] and len(gave_up) == 1 and 0.9 < gave_up[0] < 5
    with period_lock(tmp_path, "weekly-exec", "2026-W48", max_wait=1.0, on_give_up=lambda: gave_up.append(0)):
        pass  # free: taken at once
    assert len(gave_up) == 1


def test_a_finished_periods_lock_file_is_removed_and_one_waiting_on_it_still_excludes_the_next(tmp_path):
    """Found in an operations review: <archive>/.locks kept an empty file per report and period ever run (301
    after 300 runs). A holder whose period is finished now removes its lock file before releasing it. Safe: a
    run that opened the file before it went and waited on it (here a thread: flock excludes two open files of one
    process as it does two processes) finds, once it has the lock, that the file is gone, and locks the new file at
    the path; a third run then waits for it, not for a file nobody holds. Fails before: two held the period."""
    import threading

    from agentdigest.archive import LOCKS, period_lock

    lock_file = tmp_path / LOCKS / "weekly" / "2026-W48.lock"
    first_in, second_waits, second_in, go, done = (threading.Event() for _ in range(5))

    def first():
        with period_lock(tmp_path, "weekly", "2026-W48", finished=lambda: True):
            first_in.set()
            go.wait(30)

    def second():
        with period_lock(tmp_path, "weekly", "2026-W48", on_wait=second_waits.set, finished=lambda: False):
            second_in.set()
            done.wait(30)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_in.wait(30)
    threads[1].start()
    assert second_waits.wait(30)  # the second has the first's file open, waiting for its lock
    go.set()
    assert second_in.wait(30)
    gave_up = []
    with period_lock(tmp_path, "weekly", "2026-W48", max_wait=1.0, on_give_up=lambda: gave_up.append(1)):
        pass
    assert gave_up == [1]  # the second holds the period: the third did not get in beside it
    done.set()
    for thread in threads:
        thread.join(30)
    assert lock_file.exists()  # the second's period was not finished: its file is kept
    with period_lock(tmp_path, "weekly", "2026-W48", finished=lambda: True):
        pass
    assert not lock_file.exists()
    with period_lock(tmp_path, "weekly", "2026-W48", finished=lambda: 1 / 0):  # a failing question keeps it
        pass
    assert lock_file.exists()
    with pytest.raises(RuntimeError), period_lock(tmp_path, "weekly", "2026-W48", finished=lambda: True):
        raise RuntimeError("the delivery failed")  # not asked: kept
    assert lock_file.exists()


def _pdf_retried_after_its_message(world, channel: str, posted_in: str, resolver: str, answer):
    """Two deliveries to a Slack bot ``channel``: the first posts the message (into ``posted_in``) and its PDF
    upload is refused; the second retries the upload alone, finding the channel id the upload takes through the
    Slack method ``resolver``, which ``answer(request)`` answers. Returns the second delivery's PDF result."""
    server, calls = world.httpserver, {"url": 0}
    base = server.url_for("").rstrip("/")
    server.expect_request("/api/chat.postMessage").respond_with_json({"ok": True, "channel": posted_in, "ts": "1.2"})

    def get_upload_url(request):
        calls["url"] += 1
        if calls["url"] == 1:  # the first run's upload is refused: the message is sent, the PDF is not
            return Response('{"ok": false, "error": "not_allowed_token_type"}', content_type="application/json")
        return Response(f'{{"ok": true, "upload_url": "{base}/upload/F1", "file_id": "F1"}}',
                        content_type="application/json")

    def complete(request):  # as Slack: "input must match regex pattern: ^[CGDZ][A-Z0-9]{8,}$ [json-pointer:/channel_id]"
        if not re.fullmatch(r"[CGDZ][A-Z0-9]{8,}", request.form.get("channel_id", "")):
            return Response('{"ok": false, "error": "invalid_arguments"}', content_type="application/json")
        return Response('{"ok": true, "files": [{"id": "F1"}]}', content_type="application/json")

    server.expect_request("/api/files.getUploadURLExternal").respond_with_handler(get_upload_url)
    server.expect_request("/upload/F1").respond_with_data("OK - 36")
    server.expect_request("/api/files.completeUploadExternal").respond_with_handler(complete)
    server.expect_request(f"/api/{resolver}").respond_with_handler(answer)
    config = world.build(["bot"], bot=dict(type="slack", bot_token="xoxb-PLANTED", channel=channel,
                                           api_url=server.url_for("/api/"), **FAST))
    first, second = deliver(config), deliver(config)
    assert {(r.recipient, r.state) for r in first} == {("", "sent"), ("file:report.pdf", "failed")}
    assert world.posts("/api/chat.postMessage") == 1  # the message is never posted twice
    (pdf,) = [r for r in second if r.recipient == "file:report.pdf"]
    return pdf


def _uploaded_or_told(world, pdf, scope: str | None, hint: str) -> None:
    """With the scope, the retried upload went out once; without it, nothing was uploaded and the error says how
    to fix it, without the token."""
    if scope:
        assert pdf.state == "sent" and world.posts("/api/files.completeUploadExternal") == 1
    else:
        assert pdf.state == "failed" and world.posts("/api/files.getUploadURLExternal") == 1  # nothing uploaded
        assert "missing_scope" in pdf.error and hint in pdf.error and "PLANTED" not in pdf.error


def _slack_refusal(needed: str) -> Response:
    return Response(json.dumps({"ok": False, "error": "missing_scope", "needed": needed}), content_type="application/json")


@pytest.mark.parametrize("scope", ["channels:read", None])
def test_a_pdf_upload_retried_after_the_message_goes_to_the_channel_by_its_id(world, scope):
    """Found in a Slack audit: with ``channel = "#agents"`` (accepted, and enough for chat.postMessage), a PDF
    upload that failed after the message was posted failed again on every later run with 'invalid_arguments':
    files.completeUploadExternal takes a channel id only, and only the first run had it (from the post's answer).
    The retry finds the id by the channel's name (conversations.list); without the scope for that, it says how
    to fix it. The message is never posted twice."""
    def conversations(request):
        if scope is None:
            return _slack_refusal("channels:read")
        page = (["C0GENERAL1", "general"], ["C0RANDOM01", "random"]) if not request.form.get("cursor") else \
            (["C0AGENTS01", "agents"],)
        return Response(json.dumps({"ok": True, "channels": [{"id": i, "name": n} for i, n in page],
                                    "response_metadata": {"next_cursor": "" if request.form.get("cursor") else "p2"}}),
                        content_type="application/json")

    pdf = _pdf_retried_after_its_message(world, "#agents", "C0AGENTS01", "conversations.list", conversations)
    _uploaded_or_told(world, pdf, scope, 'set channel to its id ("C…"')


@pytest.mark.parametrize("scope", ["im:write", None])
def test_a_pdf_upload_retried_after_the_message_goes_to_a_users_direct_message(world, scope):
    """Found in a delivery audit: with ``channel = "U…"`` (a user's id; chat.postMessage writes to the user's direct
    message with the bot), a PDF upload that failed after the message was posted failed on every later run: the
    upload takes a channel id, and the retry looked for a channel named after the user. It now opens the direct
    message (conversations.open) for its id; without the scope for that, it says how to fix it."""
    def open_direct(request):
        if scope is None:
            return _slack_refusal("im:write")
        assert request.form.get("users") == "U0ALICE001"
        return Response('{"ok": true, "channel": {"id": "D0ALICEDM1"}}', content_type="application/json")

    pdf = _pdf_retried_after_its_message(world, "U0ALICE001", "D0ALICEDM1", "conversations.open", open_direct)
    _uploaded_or_told(world, pdf, scope, "conversations.open (scope im:write)")


@pytest.mark.parametrize("removed", ["message.eml", "slack.json"])
def test_resend_refuses_an_archive_without_a_file_a_channel_sends(world, removed):
    """Found in a new-user audit: with message.eml removed from the archive, `resend` said "outbox: sent" and
    wrote only the Slack payload. Nothing is sent; the line says what is missing and how to render it again."""
    config = world.build(["slack", "box"])
    deliver(config)
    before = (world.posts(HOOK), outbox_emls(world))
    (Path(config.archive.path) / R / P / removed).unlink()
    owner = {"message.eml": "'box' (outbox)", "slack.json": "'slack' (slack)"}[removed]
    with pytest.raises(InputError, match=re.escape(f"the archive of {R} {P} has no {removed}, which channel {owner} "
                                                   "sends; `") + r".*run .* --force.*` renders it again"):
        resend(config, R, P)
    assert (world.posts(HOOK), outbox_emls(world)) == before
    assert [h["trigger"] for h in Ledger(config.ledger.url).history() if h["kind"] == "run"] == []
    if removed == "message.eml":  # a channel that has what it sends still resends alone
        assert resend(config, R, P, channel="slack") == 0
        assert world.posts(HOOK) == before[0] + 1


def test_a_retried_delivery_says_so_once_with_its_first_error(world, httpserver, caplog):
    """A transient failure used to be retried in silence for up to the retry budget (5 minutes by default): the
    log said nothing until it went or gave up. Now the first retry says so, once per delivery, with its error."""
    flaky = "/services/T0AAAA/B0BBBB/PLANTEDflakyHOOK"
    answers = [503, 503]  # Slack's stand-in: two transient failures, then ok
    httpserver.expect_request(flaky).respond_with_handler(
        lambda request: Response("busy right now", status=answers.pop(0)) if answers else Response("ok"))
    world.smtp.handler.data[:] = ["451 4.3.0 mailbox busy", "451 4.3.0 mailbox busy"]  # then accepted
    budget = dict(FAST, retry_budget=5)
    config = world.build(["mail", "slack"], mail=world.email(**budget),
                         slack=dict(type="slack", webhook_url=httpserver.url_for(flaky), **budget))
    with caplog.at_level(logging.WARNING, logger="agentdigest.delivery"):
        results = deliver(config)
    assert set(states(results).values()) == {"sent"} and {r.attempts for r in results} == {3}
    assert len(world.smtp.messages) == 1 and world.posts(flaky) == 3
    said = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    mail = [line for line in said if "-> mail" in line]
    slack = [line for line in said if "-> slack" in line]
    assert len(mail) == 1 and len(slack) == 1 and len(said) == 2, said
    assert mail[0].startswith(f"{R} {P} -> mail: ") and "451 4.3.0 mailbox busy" in mail[0]
    assert slack[0].startswith(f"{R} {P} -> slack: ") and "503" in slack[0] and "busy right now" in slack[0]
    assert all(line.endswith("retrying for up to 5s (its retry_budget)") for line in said)
    # The first error goes through the same mask as every other: no password, no webhook path
    assert not [line for line in said if "PLANTED" in line], said
