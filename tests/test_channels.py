"""Every channel against real servers: one table of (channel, server behaviour, expected outcome).

SMTP is aiosmtpd on loopback with STARTTLS (or implicit TLS), a self-signed certificate and AUTH;
Slack's Web API, its webhooks and generic webhooks are pytest-httpserver. Retries use tiny
backoffs; a Retry-After of 1 s is really waited for (the receipt records the wait, no clock is read).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from werkzeug import Response

from agentdigest import config
from agentdigest.channels import ChannelFailure, Delivery, make_channel
from agentdigest.channels.slack import PDF_TARGET, TEST_MARK
from agentdigest.masking import mask_text
from conftest import PDF_BYTES, free_port, make_artifacts

HOOK_PATH = "/services/T0AAAA/B0BBBB/PLANTEDslackHOOKtoken"
WEBHOOK_PATH = "/ingest/PLANTEDpathTOKEN"
WEBHOOK_SECRET = "whsec-PLANTED-hmac"
BOT_TOKEN = "xoxb-PLANTED-bot-token"
TS = "1700000000.000100"


def ok_json(**data: Any) -> tuple[int, str, dict]:
    return 200, json.dumps({"ok": True, **data}), {"Content-Type": "application/json"}


def slack_error(code: str, status: int = 200, **headers: str) -> tuple[int, str, dict]:
    return status, json.dumps({"ok": False, "error": code}), {"Content-Type": "application/json", **headers}


BOT_API = {
    "/api/chat.postMessage": [ok_json(channel="C0AGENTS", ts=TS)],
    "/api/files.getUploadURLExternal": [ok_json(upload_url="{base}/upload/F1", file_id="F1")],
    "/upload/F1": [(200, "OK - 36", {})],
    "/api/files.completeUploadExternal": [ok_json(files=[{"id": "F1", "title": "report"}])],
}


@dataclass(frozen=True)
class Case:
    id: str
    channel: str  # email | email-smtps | slack-webhook | slack-bot | webhook | outbox
    server: dict = field(default_factory=dict)  # how the server behaves
    expect: dict = field(default_factory=dict)  # what must come out
    settings: dict = field(default_factory=dict)  # channel settings overriding the harness defaults


ALL_SENT = {"alice@example.com": "sent", "bob@example.com": "sent", "carol@example.com": "sent", "dave@example.com": "sent"}
EVERYONE = {"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}

CASES = [
    # -- email ---------------------------------------------------------------------------
    Case("email-starttls-ok", "email", expect=dict(results=ALL_SENT, attempts=1, smtp=[EVERYONE], check="email_headers")),
    Case("email-smtps-ok", "email-smtps", expect=dict(results=ALL_SENT, attempts=1, smtp=[EVERYONE])),
    Case("email-421-on-data-then-ok", "email", server=dict(data=["421 4.3.2 try again later"]),
         expect=dict(results=ALL_SENT, attempts=2, smtp=[EVERYONE], sessions=2)),
    # After the final ".", no answer is ambiguous: the relay may have queued it. Found in an email audit:
    # retrying in the run sent a slow relay's recipients up to ten copies. The next run sends it again.
    Case("email-disconnect-after-data-not-resent-in-the-run", "email", server=dict(data=["disconnect"]),
         expect=dict(error="it may have arrived", retryable=False, attempts=1, smtp=[], sessions=1)),
    Case("email-queued-then-disconnect-one-copy", "email", server=dict(data=["stored-disconnect"]),
         expect=dict(error="it may have arrived", retryable=False, attempts=1, smtp=[EVERYONE], sessions=1)),
    # RFC 5321 allows 10 minutes for the answer to the final ".": a relay slower than `timeout` got a copy
    # from every run (a re-check). It is waited for, and sent once.
    Case("email-slow-answer-to-the-final-dot-is-waited-for", "email", server=dict(data=["slow:2.5"]),
         settings=dict(timeout=1), expect=dict(results=ALL_SENT, attempts=1, smtp=[EVERYONE], sessions=1)),
    # A 550 recipient stays refused for good when the answer after the message never comes (a re-check).
    Case("email-refused-recipient-stays-refused-without-an-answer", "email",
         server=dict(rcpt={"bob@example.com": "550 5.1.1 no such user"}, data=["disconnect"]),
         expect=dict(results={t: "failed" for t in ALL_SENT}, attempts=1, smtp=[], check="refused_apart")),
    # A 421 to one RCPT ends the session before DATA: nobody got it (found in an email audit: the others were
    # recorded as sent and never got the report). The whole transaction is retried.
    # Found in an email audit: a busy relay's 421 to EHLO failed for good as "STARTTLS not supported".
    Case("email-421-on-ehlo-is-retried", "email", server=dict(ehlo=["421 4.7.0 too busy, try later"]),
         expect=dict(results=ALL_SENT, attempts=2, smtp=[EVERYONE], sessions=2)),
    Case("email-421-on-rcpt-retries-everyone", "email", server=dict(rcpt={"carol@example.com": ["421 4.3.2 closing"]}),
         expect=dict(results=ALL_SENT, attempts=2, smtp=[EVERYONE])),
    Case("email-auth-refused", "email", server=dict(password="wrong-PLANTED-pw"),
         expect=dict(error="login refused", retryable=False, attempts=1, smtp=[], sessions=1)),
    Case("email-one-recipient-deferred", "email", server=dict(rcpt={"bob@example.com": ["450 4.2.1 mailbox busy"]}),
         expect=dict(results=ALL_SENT, attempts=2, smtp=[EVERYONE - {"bob@example.com"}, {"bob@example.com"}])),
    Case("email-one-recipient-rejected", "email", server=dict(rcpt={"bob@example.com": "550 5.1.1 no such user"}),
         expect=dict(results={**ALL_SENT, "bob@example.com": "failed"}, attempts=1,
                     smtp=[EVERYONE - {"bob@example.com"}], failed_error="550")),
    Case("email-552-on-data-permanent", "email", server=dict(data=["552 5.3.4 message too big"] * 3),
         expect=dict(error="552", retryable=False, attempts=1, smtp=[])),
    Case("email-untrusted-certificate", "email", server=dict(trusted=False),
         expect=dict(error="ca_file", retryable=False, attempts=1, smtp=[])),
    # Found in a delivery audit: smtp+starttls:// to an implicit-TLS port (465) waits for a greeting that never
    # comes (the server waits for the TLS handshake); it read "closed the connection: Connection unexpectedly
    # closed: timed out", with no word of the scheme, after every retry of the budget.
    Case("email-starttls-to-an-implicit-tls-port", "email-smtps", server=dict(scheme="smtp+starttls"),
         settings=dict(timeout=1, retry_budget=0.3),
         expect=dict(error="sent no greeting within 1s (is the scheme right? smtps:// for port 465", retryable=True,
                     min_attempts=1, smtp=[])),
    # On port 465 itself the scheme is wrong for sure: found in a delivery audit, it was retried as transient for
    # the whole retry budget (5 minutes by default) before failing. It fails at once, saying which scheme to use.
    *(Case(f"email-{scheme.replace('+', '-')}-to-port-465-fails-at-once", "email-smtps",
           server=dict(scheme=scheme, host="127.4.6.5", port=465), settings=dict(timeout=0.5, retry_budget=5),
           expect=dict(error="sent no greeting within 0.5s: port 465 is for implicit TLS; use smtps://",
                       retryable=False, attempts=1, smtp=[]))
      for scheme in ("smtp+starttls", "smtp")),
    Case("email-connection-refused", "email", server=dict(dead=True), settings=dict(retry_budget=0.3),
         expect=dict(error="cannot reach", retryable=True, min_attempts=2)),
    # -- slack webhook -------------------------------------------------------------------
    Case("slack-webhook-ok", "slack-webhook", expect=dict(results={"": "sent"}, attempts=1, requests={HOOK_PATH: 1},
                                                          check="slack_payload")),
    Case("slack-webhook-429-retry-after", "slack-webhook",
         server={HOOK_PATH: [(429, "rate_limited", {"Retry-After": "1"}), (200, "ok", {})]}, settings=dict(retry_max_wait=1),
         expect=dict(results={"": "sent"}, attempts=2, waits=(1.0,), requests={HOOK_PATH: 2})),
    # found in a Slack audit: this read "the retry budget was used up" with the budget untouched
    Case("slack-webhook-retry-after-beyond-the-budget", "slack-webhook",
         server={HOOK_PATH: [(429, "rate_limited", {"Retry-After": "3600"})]}, settings=dict(retry_max_wait=3600),
         expect=dict(error="asked to wait 3600s, longer than the 5s retry budget", retryable=True, attempts=1,
                     requests={HOOK_PATH: 1})),
    # Found in an operator audit: a Retry-After longer than retry_max_wait was waited for (an hour's run); it is
    # not waited for, and the failure is transient (the next run retries), whatever the budget would allow
    *[Case(f"{kind}-retry-after-beyond-retry_max_wait{'-after-a-retry' if first else ''}", kind,
           server={path: [*first, (429, answer, {"Retry-After": "4"})]}, settings=dict(retry_budget=10, retry_max_wait=2),
           expect=dict(error=f"({'not retried' if not first else 'gave up after 2 attempts'}: {who} asked to retry "
                             "after 4 s, longer than retry_max_wait = 2 s; the next run retries)",
                       retryable=True, attempts=1 + len(first), waits=(0.05,) * len(first),
                       requests={path: 1 + len(first)}))
      for kind, path, answer, who in (("slack-webhook", HOOK_PATH, "rate_limited", "Slack"),
                                      ("slack-bot", "/api/chat.postMessage", json.dumps({"ok": False, "error": "ratelimited"}),
                                       "Slack"),
                                      ("webhook", WEBHOOK_PATH, "slow down", "the webhook"))
      for first in ((), ((500, "oops", {}),))],
    Case("slack-webhook-500-then-ok", "slack-webhook", server={HOOK_PATH: [(500, "oops", {}), (200, "ok", {})]},
         expect=dict(results={"": "sent"}, attempts=2, requests={HOOK_PATH: 2})),
    # found in a Slack audit: a post answered after the timeout was posted again at each retry (3 posts in
    # one run, ~7 at the defaults); Slack has no idempotency key, so an unanswered post waits for the next run
    Case("slack-webhook-unanswered-not-posted-again", "slack-webhook", server={HOOK_PATH: [(200, "ok", {}, 2.0)]},
         settings=dict(timeout=1, retry_budget=10),
         expect=dict(error="may have arrived", retryable=False, attempts=1, requests={HOOK_PATH: 1})),
    Case("slack-webhook-no_service", "slack-webhook", server={HOOK_PATH: [(404, "no_service", {})]},
         expect=dict(error="no_service", retryable=False, attempts=1, requests={HOOK_PATH: 1})),
    Case("slack-webhook-invalid_token", "slack-webhook", server={HOOK_PATH: [(403, "invalid_token", {})]},
         expect=dict(error="invalid_token", retryable=False, attempts=1, requests={HOOK_PATH: 1})),
    # found in a contract audit: slack_sdk's webhook client followed a 302 as a GET whose "ok" was recorded as sent
    Case("slack-webhook-redirect-not-followed", "slack-webhook",
         server={HOOK_PATH: [(302, "", {"Location": "/elsewhere"})], "/elsewhere": [(200, "ok", {})]},
         expect=dict(error="HTTP 302", retryable=False, attempts=1, requests={HOOK_PATH: 1, "/elsewhere": 0})),
    # Slack's documented webhook refusals fail at once, naming Slack's reason (a Slack audit)
    *[Case(f"slack-webhook-{status}-{code}", "slack-webhook", server={HOOK_PATH: [(status, code, {})]},
           expect=dict(error=f"HTTP {status}: {code}", retryable=False, attempts=1, requests={HOOK_PATH: 1}))
      for status, code in ((400, "invalid_payload"), (403, "action_prohibited"), (404, "channel_not_found"),
                           (410, "channel_is_archived"))],
    # Slack's one documented webhook server error is HTTP 500 rollup_error ("likely not your fault"), with no
    # word that the post may have happened (unlike the Web API's internal_error): retried, as any 5xx
    Case("slack-webhook-500-rollup_error-then-ok", "slack-webhook",
         server={HOOK_PATH: [(500, "rollup_error", {}), (200, "ok", {})]},
         expect=dict(results={"": "sent"}, attempts=2, requests={HOOK_PATH: 2})),
    Case("slack-webhook-503-retry-after-then-ok", "slack-webhook",
         server={HOOK_PATH: [(503, "service unavailable", {"Retry-After": "1"}), (200, "ok", {})]},
         settings=dict(retry_max_wait=1), expect=dict(results={"": "sent"}, attempts=2, waits=(1.0,), requests={HOOK_PATH: 2})),
    Case("slack-webhook-connection-refused", "slack-webhook",
         settings=dict(webhook_url=f"http://127.0.0.1:{free_port()}{HOOK_PATH}", retry_budget=0.3),
         expect=dict(error="cannot reach", retryable=True, min_attempts=2)),
    # -- slack bot -----------------------------------------------------------------------
    Case("slack-bot-ok", "slack-bot",
         expect=dict(results={"": "sent", PDF_TARGET: "sent"}, provider_ids={"": TS, PDF_TARGET: "F1"},
                     requests={p: 1 for p in BOT_API}, check="slack_bot_upload")),
    Case("slack-bot-invalid_token", "slack-bot", server={"/api/chat.postMessage": [slack_error("invalid_token")]},
         expect=dict(error="invalid_token", retryable=False, attempts=1,
                     requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 0})),
    Case("slack-bot-500-then-ok", "slack-bot",
         server={"/api/chat.postMessage": [(500, "<html>upstream error</html>", {}), ok_json(channel="C0AGENTS", ts=TS)]},
         expect=dict(results={"": "sent", PDF_TARGET: "sent"}, requests={"/api/chat.postMessage": 2})),
    Case("slack-bot-unanswered-not-posted-again", "slack-bot",
         server={"/api/chat.postMessage": [ok_json(channel="C0AGENTS", ts=TS) + (2.0,)]},
         settings=dict(timeout=1, retry_budget=10),
         expect=dict(error="may have arrived", retryable=False, attempts=1,
                     requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 0})),
    # Slack documents internal_error and fatal_error as "it's possible some aspect of the operation succeeded":
    # found in a Slack review, both were retried like a rate limit, and chat.postMessage has no idempotency
    # key, so each retry could post the report again. Not retried in the run, whatever the HTTP status;
    # the next run sends it (at least once).
    *[Case(f"slack-bot-{code}-{status}-not-posted-again", "slack-bot",
           server={"/api/chat.postMessage": [slack_error(code, status), ok_json(channel="C0AGENTS", ts=TS)]},
           settings=dict(retry_budget=10),
           expect=dict(error=f"answered {code}: Slack reported an error, but the message may have been posted",
                       retryable=False, attempts=1,
                       requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 0}))
      for code in ("internal_error", "fatal_error") for status in (200, 500)],
    # rate limits and an outage say nothing was done: still retried in the run
    *[Case(f"slack-bot-{code}-then-ok", "slack-bot",
           server={"/api/chat.postMessage": [slack_error(code, status), ok_json(channel="C0AGENTS", ts=TS)]},
           expect=dict(results={"": "sent", PDF_TARGET: "sent"}, attempts=3,
                       requests={"/api/chat.postMessage": 2, "/api/files.completeUploadExternal": 1}))
      for code, status in (("service_unavailable", 503), ("ratelimited", 429), ("request_timeout", 200))],
    # files.completeUploadExternal shares the file in the channel ("can only be called once"; a retry of
    # files_upload_v2 uploads a new file and shares it too): the PDF may be there, so it is not uploaded again
    *[Case(f"slack-bot-upload-complete-{code}-not-shared-again", "slack-bot",
           server={"/api/files.completeUploadExternal": [slack_error(code), ok_json(files=[{"id": "F1"}])]},
           settings=dict(retry_budget=10),
           expect=dict(results={"": "sent", PDF_TARGET: "failed"}, failed_error="may have been shared",
                       requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 1,
                                 "/api/files.completeUploadExternal": 1}, check="pdf_may_have_arrived"))
      for code in ("internal_error", "fatal_error")],
    # files.getUploadURLExternal only hands out an upload URL (an upload never completed is discarded):
    # its internal_error shares nothing, and is retried
    Case("slack-bot-upload-url-internal_error-retried", "slack-bot",
         server={"/api/files.getUploadURLExternal": [slack_error("internal_error"),
                                                     ok_json(upload_url="{base}/upload/F1", file_id="F1")]},
         expect=dict(results={"": "sent", PDF_TARGET: "sent"},
                     requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 2,
                               "/api/files.completeUploadExternal": 1})),
    # Found in a delivery audit: a timeout anywhere in the PDF upload read as "it may have arrived" and was not
    # retried in the run, though only files.completeUploadExternal shares the file: getting the upload URL and
    # uploading the bytes post nothing (an upload never completed is discarded), so their timeouts are retried
    *[Case(f"slack-bot-{step}-timeout-retried", "slack-bot",
           server={path: [first + (2.0,), first]}, settings=dict(timeout=1, retry_budget=10),
           expect=dict(results={"": "sent", PDF_TARGET: "sent"},
                       requests={"/api/chat.postMessage": 1, path: 2, "/api/files.completeUploadExternal": 1}))
      for step, path, first in (("upload-url", "/api/files.getUploadURLExternal", BOT_API["/api/files.getUploadURLExternal"][0]),
                                ("upload", "/upload/F1", BOT_API["/upload/F1"][0]))],
    Case("slack-bot-upload-complete-timeout-not-shared-again", "slack-bot",
         server={"/api/files.completeUploadExternal": [ok_json(files=[{"id": "F1"}]) + (2.0,), ok_json(files=[{"id": "F1"}])]},
         settings=dict(timeout=1, retry_budget=10),
         expect=dict(results={"": "sent", PDF_TARGET: "failed"}, failed_error="may have arrived",
                     requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 1,
                               "/api/files.completeUploadExternal": 1})),
    Case("slack-bot-channel_not_found", "slack-bot", server={"/api/chat.postMessage": [slack_error("channel_not_found")]},
         expect=dict(error="channel_not_found", retryable=False, attempts=1)),
    Case("slack-bot-429-retry-after", "slack-bot",
         server={"/api/chat.postMessage": [slack_error("ratelimited", 429, **{"Retry-After": "1"}),
                                            ok_json(channel="C0AGENTS", ts=TS)]}, settings=dict(retry_max_wait=1),
         expect=dict(results={"": "sent", PDF_TARGET: "sent"}, waits=(1.0,),
                     requests={"/api/chat.postMessage": 2, "/api/files.completeUploadExternal": 1})),
    *[Case(f"slack-bot-{code}", "slack-bot", server={"/api/chat.postMessage": [slack_error(code)]},
           expect=dict(error=code, retryable=False, attempts=1,
                       requests={"/api/chat.postMessage": 1, "/api/files.getUploadURLExternal": 0}))
      for code in ("invalid_auth", "not_in_channel", "msg_too_long", "invalid_blocks")],
    Case("slack-bot-connection-refused", "slack-bot",
         settings=dict(api_url=f"http://127.0.0.1:{free_port()}/api/", retry_budget=0.3),
         expect=dict(error="cannot reach", retryable=True, min_attempts=2)),
    Case("slack-bot-upload-500-then-ok", "slack-bot", server={"/upload/F1": [(500, "busy", {}), (200, "OK", {})]},
         expect=dict(results={"": "sent", PDF_TARGET: "sent"}, attempts=3,
                     requests={"/api/chat.postMessage": 1, "/upload/F1": 2, "/api/files.completeUploadExternal": 1})),
    Case("slack-bot-upload-refused-keeps-message", "slack-bot",
         server={"/api/files.getUploadURLExternal": [slack_error("missing_scope")]},
         expect=dict(results={"": "sent", PDF_TARGET: "failed"}, failed_error="missing_scope",
                     requests={"/api/chat.postMessage": 1, "/upload/F1": 0})),
    # -- webhook -------------------------------------------------------------------------
    Case("webhook-signed", "webhook", expect=dict(results={"": "sent"}, attempts=1, requests={WEBHOOK_PATH: 1},
                                                  check="webhook_signature")),
    Case("webhook-unsigned", "webhook", settings=dict(secret=None),
         expect=dict(results={"": "sent"}, check="webhook_unsigned")),
    Case("webhook-503-retry-after-then-ok", "webhook",
         server={WEBHOOK_PATH: [(503, "maintenance", {"Retry-After": "0"}), (200, "", {})]},
         expect=dict(results={"": "sent"}, attempts=2, waits=(0.0,), requests={WEBHOOK_PATH: 2})),
    # a generic webhook carries X-Agentdigest-Delivery, so the receiver can tell a repeat: unanswered, it is retried
    Case("webhook-unanswered-retried", "webhook", server={WEBHOOK_PATH: [(200, "", {}, 2.0), (200, "", {})]},
         settings=dict(timeout=1, retry_budget=10),
         expect=dict(results={"": "sent"}, attempts=2, requests={WEBHOOK_PATH: 2})),
    Case("webhook-gone-permanent", "webhook", server={WEBHOOK_PATH: [(410, "gone", {})]},
         expect=dict(error="HTTP 410", retryable=False, attempts=1)),
    Case("webhook-redirect-not-followed", "webhook", server={WEBHOOK_PATH: [(302, "", {"Location": "/elsewhere"})]},
         expect=dict(error="HTTP 302", retryable=False, attempts=1, requests={WEBHOOK_PATH: 1, "/elsewhere": 0})),
    # -- outbox --------------------------------------------------------------------------
    Case("outbox-never-overwrites", "outbox", server=dict(repeat=2), expect=dict(results={"": "sent"}, check="outbox_files")),
]


class Harness:
    """Starts the servers a case needs, builds its channel, delivers, and checks the outcome."""

    def __init__(self, case: Case, smtp_server, httpserver, tmp_path, tls_cert):
        self.case, self.httpserver, self.tmp_path = case, httpserver, tmp_path
        self.requests: dict[str, list] = {}
        self.smtp = None
        defaults = dict(timeout=5, retry_budget=5, retry_initial=0.05, retry_max_wait=0.2)
        kind, behaviour = case.channel, case.server
        if kind.startswith("email"):
            self.smtp = smtp_server("smtps" if kind == "email-smtps" else "smtp+starttls",
                                    rcpt=behaviour.get("rcpt"), data=behaviour.get("data"), ehlo=behaviour.get("ehlo"),
                                    **{k: behaviour[k] for k in ("host", "port") if k in behaviour})
            url = self.smtp.url(password=behaviour.get("password"))
            if behaviour.get("scheme"):  # a scheme that does not match the server's
                url = behaviour["scheme"] + url[len(self.smtp.scheme):]
            if behaviour.get("dead"):
                url = f"smtp+starttls://reports:pw@127.0.0.1:{free_port()}"
            raw = dict(type="email", to=["Alice <alice@example.com>", "bob@example.com"], cc=["carol@example.com"],
                       bcc=["dave@example.com"], reply_to="team@example.com", smtp_url=url,
                       ca_file=str(tls_cert[0]) if behaviour.get("trusted", True) else None,
                       **{"from": "Agent Reports <reports@example.com>"})
        elif kind == "slack-webhook":
            self._serve({HOOK_PATH: [(200, "ok", {})]})
            raw = dict(type="slack", webhook_url=httpserver.url_for(HOOK_PATH))
        elif kind == "slack-bot":
            self._serve(BOT_API)
            raw = dict(type="slack", bot_token=BOT_TOKEN, channel="#agents", api_url=httpserver.url_for("/api/"))
        elif kind == "webhook":
            self._serve({WEBHOOK_PATH: [(200, "", {"X-Request-Id": "req-1"})], "/elsewhere": [(200, "", {})]})
            raw = dict(type="webhook", url=httpserver.url_for(WEBHOOK_PATH), secret=WEBHOOK_SECRET)
        else:
            raw = dict(type="outbox", path=str(tmp_path / "outbox"))
        self.settings_raw = {**raw, **defaults, **case.settings}
        model = {"email": config.EmailChannel, "slack": config.SlackChannel, "webhook": config.WebhookChannel,
                 "outbox": config.OutboxChannel}[raw["type"]]
        self.channel = make_channel("ch", model.model_validate(self.settings_raw))

    def _serve(self, defaults: dict[str, list]) -> None:
        for path, responses in {**defaults, **{k: v for k, v in self.case.server.items() if k.startswith("/")}}.items():
            queue = list(responses)
            self.requests[path] = []

            def handler(request, queue=queue, path=path):
                self.requests[path].append((request.headers, request.get_data()))
                status, body, headers, *delay = queue.pop(0) if len(queue) > 1 else queue[0]
                if delay:  # answer only after the client's timeout
                    time.sleep(delay[0])
                body = body.replace("{base}", self.httpserver.url_for("").rstrip("/"))
                return Response(body, status=status, headers=headers)

            self.httpserver.expect_request(path).respond_with_handler(handler)

    def run(self, artifacts: dict[str, bytes]) -> dict[str, Any]:
        outcome: dict[str, Any] = {}
        for _ in range(self.case.server.get("repeat", 1)):
            delivery = Delivery("weekly-exec", "2026-W48", artifacts, tuple(self.channel.targets(artifacts)))
            try:
                receipt = self.channel.deliver(delivery)
            except ChannelFailure as exc:
                return dict(error=str(exc), retryable=exc.retryable, attempts=exc.attempts, waits=exc.waits,
                            provider_id=exc.provider_id)
            outcome = dict(results={r.target: r.state for r in receipt.results}, attempts=receipt.attempts,
                           waits=receipt.waits, receipt=receipt)
        return outcome

    def verify(self, outcome: dict[str, Any], expect: dict[str, Any]) -> None:
        if "error" in expect:
            assert "error" in outcome, f"expected a failure, got {outcome}"
            assert expect["error"] in outcome["error"]
            assert outcome["retryable"] is expect["retryable"]
            # Only "may have arrived" names the message: the relay's log finds it by its Message-ID
            may_have_arrived = "may have arrived" in expect["error"] and self.smtp is not None
            assert (outcome["provider_id"] or "").endswith("@example.com>") is may_have_arrived, outcome
        else:
            assert "error" not in outcome, outcome.get("error")
        for key in ("results", "attempts", "waits"):
            if key in expect:
                assert outcome[key] == expect[key], key
        if "min_attempts" in expect:
            assert outcome["attempts"] >= expect["min_attempts"]
        if "provider_ids" in expect:
            assert {r.target: r.provider_id for r in outcome["receipt"].results} == expect["provider_ids"]
        if "failed_error" in expect:
            errors = [r.error for r in outcome["receipt"].results if r.state == "failed"]
            assert errors and all(expect["failed_error"] in e for e in errors)
        if "smtp" in expect:
            assert [set(rcpts) for _, rcpts, _ in self.smtp.messages] == expect["smtp"]
        if "sessions" in expect:
            assert len(self.smtp.handler.sessions) == expect["sessions"]
        for path, count in expect.get("requests", {}).items():
            assert len(self.requests.get(path, [])) == count, path
        if "check" in expect:
            CHECKS[expect["check"]](self, outcome)


def check_refused_apart(h: Harness, outcome: dict) -> None:
    results = {r.target: r for r in outcome["receipt"].results}
    assert "550" in results["bob@example.com"].error and not results["bob@example.com"].retryable
    assert all("may have arrived" in r.error for t, r in results.items() if t != "bob@example.com")
    # those may have it, under this Message-ID; bob was refused and has none
    assert {t for t, r in results.items() if (r.provider_id or "").endswith("@example.com>")} == EVERYONE - {"bob@example.com"}


def check_email_headers(h: Harness, outcome: dict) -> None:
    (_, _, raw), = h.smtp.messages
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["From"] == "Agent Reports <reports@example.com>"
    assert msg["To"] == "Alice <alice@example.com>, bob@example.com"
    assert msg["Cc"] == "carol@example.com" and msg["Reply-To"] == "team@example.com"
    assert "Bcc" not in msg and b"dave@example.com" not in raw
    assert msg["Message-ID"] == outcome["receipt"].detail["message_id"] != "<render-placeholder@example.com>"
    assert msg.get_body(("plain",)).get_content().strip() == "Conversations: 2,480 (+12.2%)"


def check_slack_payload(h: Harness, outcome: dict) -> None:
    (headers, body), = h.requests[HOOK_PATH]
    assert json.loads(body)["blocks"][0]["text"]["text"] == "*2,480* conversations"


def check_slack_bot_upload(h: Harness, outcome: dict) -> None:
    (headers, body), = h.requests["/api/chat.postMessage"]
    post = json.loads(body)
    assert post["channel"] == "#agents" and post["blocks"][0]["type"] == "section"
    assert headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert h.requests["/upload/F1"][0][1] == PDF_BYTES
    complete = h.requests["/api/files.completeUploadExternal"][0][1].decode()
    assert "C0AGENTS" in complete and "F1" in complete  # uploaded to the channel the message went to


def check_pdf_may_have_arrived(h: Harness, outcome: dict) -> None:
    results = {r.target: r for r in outcome["receipt"].results}
    assert results[""].provider_id == TS  # the message went out and keeps its ts
    pdf = results[PDF_TARGET]
    assert not pdf.retryable and pdf.attempts == 1
    assert "check the channel before resending" in pdf.error and BOT_TOKEN not in pdf.error


def check_webhook_signature(h: Harness, outcome: dict) -> None:
    (headers, body), = h.requests[WEBHOOK_PATH]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Agentdigest-Signature"], expected)
    assert json.loads(body)["report_id"] == "weekly-exec"
    assert headers["X-Agentdigest-Period"] == "2026-W48" and len(headers["X-Agentdigest-Delivery"]) == 32
    assert outcome["receipt"].results[0].provider_id == "req-1"


def check_webhook_unsigned(h: Harness, outcome: dict) -> None:
    (headers, _), = h.requests[WEBHOOK_PATH]
    assert "X-Agentdigest-Signature" not in headers


def check_outbox_files(h: Harness, outcome: dict) -> None:
    folder = h.tmp_path / "outbox" / "weekly-exec" / "2026-W48"
    names = sorted(p.name for p in folder.iterdir())
    assert len([n for n in names if n.endswith(".eml")]) == 2 and len([n for n in names if n.endswith(".slack.json")]) == 2
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"


CHECKS = {f.__name__.removeprefix("check_"): f for f in (
    check_email_headers, check_slack_payload, check_slack_bot_upload, check_webhook_signature,
    check_webhook_unsigned, check_outbox_files, check_refused_apart, check_pdf_may_have_arrived)}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd misses implicit TLS
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_channel(case, smtp_server, httpserver, tmp_path, tls_cert, artifacts):
    harness = Harness(case, smtp_server, httpserver, tmp_path, tls_cert)
    harness.verify(harness.run(artifacts), case.expect)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_non_ascii_smtp_password_logs_in(smtp_server, tls_cert, artifacts):
    """Found black-box: smtplib encodes AUTH as ASCII, so 'Malé' failed every try with a UnicodeEncodeError."""
    smtp = smtp_server(user="rapports", password="Mot-de-passé ü")

    def channel(password: str):
        return make_channel("ch", config.EmailChannel.model_validate(dict(
            type="email", to=["alice@example.com"], smtp_url=smtp.url(password=password), ca_file=str(tls_cert[0]),
            retry_budget=0, **{"from": "reports@example.com"})))

    receipt = channel("Mot-de-passé ü").deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("alice@example.com",)))
    assert receipt.ok and smtp.handler.logins == [True] and len(smtp.messages) == 1
    with pytest.raises(ChannelFailure, match="login refused .* 535"):
        channel("Mot-de-passé ö").deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("alice@example.com",)))


def test_a_webhook_url_with_credentials_sends_them_as_basic_auth(httpserver, artifacts):
    seen = []
    httpserver.expect_request(WEBHOOK_PATH).respond_with_handler(
        lambda request: seen.append(request.headers.get("Authorization")) or Response("", status=204))
    url = httpserver.url_for(WEBHOOK_PATH).replace("://", "://ingest:PLANTED%40pw@", 1)
    channel = make_channel("ch", config.WebhookChannel(type="webhook", url=url))
    receipt = channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    assert receipt.ok and seen == ["Basic " + base64.b64encode(b"ingest:PLANTED@pw").decode()]
    assert "PLANTED" not in channel.describe() and "ingest:***@" in channel.describe()


def test_an_outbox_test_is_marked_in_subject_and_slack_text_and_a_real_delivery_is_byte_for_byte(tmp_path, artifacts):
    channel = make_channel("box", config.OutboxChannel(type="outbox", path=tmp_path))
    channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",), test=True))
    folder = tmp_path / "weekly-exec" / "2026-W48"
    (real,) = [p for p in folder.glob("*.eml") if "-test" not in p.name]
    (test,) = folder.glob("*-test.eml")
    assert real.read_bytes() == artifacts["message.eml"]
    original = BytesParser(policy=policy.default).parsebytes(artifacts["message.eml"])
    marked = BytesParser(policy=policy.default).parsebytes(test.read_bytes())
    assert marked["Subject"] == "[test] " + original["Subject"]
    assert marked.get_body(("plain",)).get_content() == original.get_body(("plain",)).get_content()
    (slack_test,) = folder.glob("*-test.slack.json")
    marked_slack, original_slack = json.loads(slack_test.read_bytes()), json.loads(artifacts["slack.json"])
    assert marked_slack["text"] == "[test] " + original_slack["text"]
    assert marked_slack["blocks"] == [TEST_MARK] + original_slack["blocks"]  # seen in Slack, not only in notifications


def test_a_slack_check_that_gets_no_answer_says_so_and_not_that_something_may_have_arrived(httpserver):
    """auth.test posts nothing: its timeout said "it may have arrived, so this run does not send it again"."""
    httpserver.expect_request("/api/auth.test").respond_with_handler(
        lambda request: (time.sleep(2), Response(json.dumps({"ok": True}), content_type="application/json"))[1])
    channel = make_channel("team", config.SlackChannel(type="slack", bot_token=BOT_TOKEN, channel="C0AGENTS",
                                                       api_url=httpserver.url_for("/api/"), timeout=1))
    result = channel.check()
    assert result.ok is False and "no answer from Slack auth.test" in result.message
    assert "may have arrived" not in result.message and BOT_TOKEN not in result.message


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_one_segment_webhook_path_echoed_by_the_server_is_masked(httpserver, kind, artifacts):
    """Found in a delivery audit: a webhook whose token is its whole path (https://hook.eu1.make.com/<token>,
    https://webhook.site/<uuid>) had the URL masked but not the token alone, so a 404 echoing the path put the
    token in the error, the ledger and history. Only paths of two or more segments had their parts masked."""
    token = "PLANTEDonlySegmentTOKEN"
    httpserver.expect_request(f"/{token}").respond_with_handler(
        lambda request: Response(f"no route for {request.path} (token {token})", status=404))
    url = httpserver.url_for(f"/{token}")
    settings = (config.WebhookChannel(type="webhook", url=url) if kind == "webhook"
                else config.SlackChannel(type="slack", webhook_url=url))
    channel = make_channel("hook", settings)
    with pytest.raises(ChannelFailure) as failed:
        channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    assert "HTTP 404" in str(failed.value) and token not in str(failed.value)


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_token_the_error_text_is_shortened_in_is_not_shown_in_part(httpserver, kind, artifacts):
    """Found in a leak audit: the error text of an HTTP answer was cut to 200 characters before it was masked,
    so a 404 page echoing the webhook's token path 190 characters in showed the token's first characters,
    which no longer matched the whole token. The text is masked first, then shortened."""
    token = "PLANTEDcutTOKEN0123456789abcdef"
    path = f"/hooks/{token}"
    filler = "Not Found " + "." * (190 - len("Not Found ") - len("POST /hooks/"))
    httpserver.expect_request(path).respond_with_handler(
        lambda request: Response(f"{filler} POST {request.path} was not found on this server", status=404))
    url = httpserver.url_for(path)
    settings = (config.WebhookChannel(type="webhook", url=url) if kind == "webhook"
                else config.SlackChannel(type="slack", webhook_url=url))
    with pytest.raises(ChannelFailure) as failed:
        make_channel("hook", settings).deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    error = str(failed.value)
    assert "HTTP 404" in error and "POST /hooks/" in error
    assert not any(token[:i] in error for i in range(5, len(token) + 1)), error


def test_a_slack_webhook_answer_cut_in_a_token_does_not_show_it_in_part(httpserver, artifacts):
    """The same for a Slack webhook's 200 answer other than "ok": shortened to 200 characters, then masked."""
    token = "PLANTEDokTOKEN0123456789abcdef"
    path = f"/services/T0AAAA/B0BBBB/{token}"
    httpserver.expect_request(path).respond_with_data("x" * 150 + f" invalid_payload for {path}")  # the token at 195
    channel = make_channel("hook", config.SlackChannel(type="slack", webhook_url=httpserver.url_for(path)))
    with pytest.raises(ChannelFailure) as failed:
        channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    error = str(failed.value)
    assert "invalid_payload" in error and not any(token[:i] in error for i in range(5, len(token) + 1)), error


def test_http_basic_credentials_echoed_by_a_webhook_are_masked(httpserver, artifacts):
    """Found in a leak audit: a webhook URL's user:password@ goes as HTTP Basic, and a 401 quoting the request's
    Authorization header put the password, base64 but readable, in the error, the ledger and history."""
    httpserver.expect_request("/ingest").respond_with_handler(
        lambda request: Response(f"denied: Authorization={request.headers.get('Authorization')}", status=401))
    password = "PLANTEDbasicPW77"
    url = httpserver.url_for("/ingest").replace("://", f"://hookuser:{password}@")
    with pytest.raises(ChannelFailure) as failed:
        make_channel("hook", config.WebhookChannel(type="webhook", url=url)).deliver(
            Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    error = str(failed.value)
    assert "HTTP 401: denied: Authorization=Basic ***" in error, error
    assert base64.b64encode(f"hookuser:{password}".encode()).decode() not in error and password not in error


ECHO_PASSWORD = 'PL/ANTED "pw"&<é>+1'


@pytest.mark.parametrize("echo", [
    lambda pw: json.dumps({"error": "denied", "password": pw}),  # JSON, non-ASCII as \\u00e9
    lambda pw: json.dumps({"password": pw}, ensure_ascii=False).replace("/", "\\/"),  # PHP's json_encode
    lambda pw: f"<p>bad password {html.escape(pw)}</p>",
    lambda pw: "password=" + quote_plus(pw),  # a form echoed back
    lambda pw: "password=" + re.sub("%..", lambda m: m.group(0).lower(), quote(pw, safe="")),  # %2f
], ids=["json", "json-slashes", "html", "form", "lower-case-escapes"])
def test_a_password_echoed_escaped_by_a_webhook_is_masked(httpserver, artifacts, echo):
    """Found in a leak audit: only a password's raw and %XX forms were masked, so a 401 body quoting it as JSON, HTML
    or a form does (\\", \\/, \\u00e9, &amp;, +, %2f) put it, readable, in the error, the ledger and history."""
    httpserver.expect_request("/ingest").respond_with_handler(lambda request: Response(echo(ECHO_PASSWORD), status=401))
    url = httpserver.url_for("/ingest").replace("://", f"://hookuser:{quote(ECHO_PASSWORD, safe='')}@")
    with pytest.raises(ChannelFailure) as failed:
        make_channel("hook", config.WebhookChannel(type="webhook", url=url)).deliver(
            Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    error = str(failed.value)
    assert "HTTP 401" in error and "***" in error and "ANTED" not in error, error


def test_a_three_character_password_echoed_by_a_webhook_is_masked(httpserver, artifacts):
    """Found in a leak audit: secrets under 4 characters were never masked (they would mask ordinary words), so a
    401 quoting a 3-character Basic password showed it. It is masked as a whole token; inside words it stays."""
    httpserver.expect_request("/ingest").respond_with_handler(
        lambda request: Response("denied: bad password 'Zq9' for hookuser (Zq9x, aZq9 are other keys)", status=401))
    url = httpserver.url_for("/ingest").replace("://", "://hookuser:Zq9@")
    with pytest.raises(ChannelFailure) as failed:
        make_channel("hook", config.WebhookChannel(type="webhook", url=url)).deliver(
            Delivery("weekly-exec", "2026-W48", artifacts, ("",)))
    error = str(failed.value)
    assert "bad password '***' for hookuser (Zq9x, aZq9 are other keys)" in error, error


@pytest.mark.parametrize(("text", "secrets", "masked"), [
    # a 3-character secret: as a whole token, in a form, quoted, at a sentence's end, as a URL's password
    ("535 5.7.8 bad password abc for reports", ["abc"], "535 5.7.8 bad password *** for reports"),
    ('{"password": "abc"} and password=abc&x=1', ["abc"], '{"password": "***"} and password=***&x=1'),
    ("the password was abc.", ["abc"], "the password was ***."),
    ("login reports:abc@mail.example.com refused", ["abc"], "login reports:***@mail.example.com refused"),
    ("echoed a&b as a%26b and a&amp;b", ["a&b"], "echoed *** as *** and ***"),
    # ... never inside a word, a hyphenated name or a host name
    ("abcd, xabc, abc-def and abc.example.com", ["abc"], "abcd, xabc, abc-def and abc.example.com"),
    # a shorter one only as a URL's password: as a token it would be any "a" or "to"
    ("login u:ab@host failed; ab is short, a to b", ["ab", "a", "to"], "login u:***@host failed; ab is short, a to b"),
    # 4 characters and more, anywhere (as before)
    ("hunter22 and hunter2", ["hunter2"], "***2 and ***"),
])
def test_a_short_secret_is_masked_only_as_a_whole_token(text, secrets, masked):
    assert mask_text(text, secrets) == masked
    assert mask_text(masked, secrets) == masked


class _EchoingSMTP(socketserver.StreamRequestHandler):
    """A relay that refuses every login, quoting what the client sent (some do, in their 535)."""

    def handle(self) -> None:
        def say(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        say("220 echo ESMTP")
        while line := self.rfile.readline().decode().strip():
            if line.upper().startswith("EHLO"):
                say(f"250-echo\r\n250 AUTH {self.server.mechanism}")  # type: ignore[attr-defined]
            elif line.upper().startswith("AUTH LOGIN"):
                say("334 VXNlcm5hbWU6")
                user = self.rfile.readline().decode().strip()
                say("334 UGFzc3dvcmQ6")
                say(f"535 5.7.8 bad login {user} {self.rfile.readline().decode().strip()}")
            elif line.upper().startswith("AUTH"):
                say(f"535 5.7.8 Authentication credentials invalid: {line}")
            else:
                say("221 bye" if line.upper() == "QUIT" else "250 ok")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_smtp_password_echoed_in_base64_by_the_relay_is_masked(mechanism, artifacts):
    """Found in a leak audit: a relay quoting the AUTH PLAIN line (or the AUTH LOGIN password) in its 535 put
    the password, base64 but readable, in the error that the ledger, history and the log keep."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoingSMTP)
    server.mechanism = mechanism  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    password = "PLANTEDsmtpPW99"
    try:
        channel = make_channel("mail", config.EmailChannel(
            type="email", to=["ann@example.com"], **{"from": "reports@example.com"},
            smtp_url=f"smtp://reports:{password}@127.0.0.1:{server.server_address[1]}", retry_budget=0))
        checked = channel.check()
        with pytest.raises(ChannelFailure) as failed:
            channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("ann@example.com",)))
    finally:
        server.shutdown()
        server.server_close()
    errors = [checked.message, str(failed.value)]
    plain = base64.b64encode(f"\0reports\0{password}".encode()).decode()
    alone = base64.b64encode(password.encode()).decode()
    assert all("535" in e and "login refused" in e for e in errors), errors
    assert not any(plain in e or alone in e or password in e for e in errors), errors


# -- the registry: built-ins and a user's channel use the same seam ----------------------------

def test_the_channel_api_is_pinned():
    import agentdigest.channels as channels

    assert sorted(channels.__all__) == sorted([
        "BaseChannel", "Channel", "ChannelFailure", "CheckResult", "Delivery", "Receipt", "TargetResult",
        "REGISTRY", "register", "unregister", "make_channel"])
    assert set(channels.REGISTRY) == {"outbox", "email", "slack", "webhook"}
    assert all(isinstance(make_channel("x", settings), channels.Channel) for settings in (
        config.OutboxChannel(type="outbox"), config.WebhookChannel(type="webhook", url="https://example.com/h")))


def test_a_user_channel_plugs_in_like_the_builtins(artifacts):
    from typing import Literal

    from agentdigest.channels import BaseChannel, Receipt, TargetResult, register, unregister

    class PigeonSettings(config.ChannelSettings):
        type: Literal["pigeon"]
        loft: str

    @register
    class Pigeon(BaseChannel):
        type = "pigeon"
        settings_model = PigeonSettings

        def deliver(self, delivery):
            return Receipt(tuple(TargetResult(t, "sent", f"{self.settings.loft}:{len(delivery.artifacts)}")
                                 for t in delivery.targets))

    try:
        channel = make_channel("birds", PigeonSettings(type="pigeon", loft="roof"))
        receipt = channel.deliver(Delivery("r", "p", artifacts, ("",)))
        assert receipt.ok and receipt.results[0].provider_id == f"roof:{len(artifacts)}"
    finally:  # from both registries: a "pigeon" left in the settings' made later unknown-type tests read it as known
        unregister("pigeon")


def test_two_test_sends_are_two_messages(smtp_server, tls_cert, artifacts):
    """Found in an email audit: every --test-to send had the same Message-ID, so Gmail showed only the first
    of a template author's tests."""
    smtp = smtp_server()
    channel = make_channel("mail", config.EmailChannel.model_validate(dict(
        type="email", to=["alice@example.com"], smtp_url=smtp.url(), ca_file=str(tls_cert[0]),
        **{"from": "reports@example.com"})))
    for _ in range(2):
        channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("alice@example.com",), test=True))
    ids = [BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"] for _, _, raw in smtp.messages]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_a_test_sends_subject_of_a_long_non_ascii_title_is_folded_into_short_encoded_words(smtp_server, tls_cert):
    """Found in a rendering audit: the "[test] " Subject was re-set and written with lines up to 998
    characters, so a long non-ASCII title became one 296-character encoded word (RFC 2047 allows 75; strict
    clients show it raw). The Message-ID stays on one line."""
    title = " — ".join(["Übersicht der Agenten-Leistung für die Woche, Kundendienst Süd"] * 3)
    archived = BytesParser(policy=policy.default).parsebytes(make_artifacts()["message.eml"])
    archived.replace_header("Subject", title)
    artifacts = {**make_artifacts(), "message.eml": archived.as_bytes(policy=policy.SMTP)}
    smtp = smtp_server()
    channel = make_channel("mail", config.EmailChannel.model_validate(dict(
        type="email", to=["alice@example.com"], smtp_url=smtp.url(), ca_file=str(tls_cert[0]),
        **{"from": "reports@example.com"})))
    channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("alice@example.com",), test=True))
    (_, _, raw), = smtp.messages
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?[^?]+\?[qQbB]\?[^?]*\?=", head)
    assert words and max(len(w) for w in words) <= 75, max(words, key=len)
    assert max(len(line) for line in head.split("\r\n")) <= 78 or any(
        line.startswith("Message-ID:") for line in head.split("\r\n") if len(line) > 78)
    received = BytesParser(policy=policy.default).parsebytes(raw)
    assert received["Subject"] == "[test] " + title
    assert re.search(r"^Message-ID: <[^\r\n]+>\r$", head + "\r", re.M)


def test_a_webhook_test_send_never_shares_the_real_deliverys_id(httpserver, artifacts):
    """Found in a new-user audit: a --test-to send to a webhook carried the real delivery's
    X-Agentdigest-Delivery, so a receiver deduplicating on it (as documented) dropped the real report."""
    ids: list[tuple[str, str | None]] = []
    httpserver.expect_request(WEBHOOK_PATH).respond_with_handler(lambda request: ids.append(
        (request.headers["X-Agentdigest-Delivery"], request.headers.get("X-Agentdigest-Test"))) or Response("", status=204))
    channel = make_channel("hook", config.WebhookChannel(type="webhook", url=httpserver.url_for(WEBHOOK_PATH)))
    for test in (True, True, False, False):  # two tests, then the delivery and its rerun
        channel.deliver(Delivery("weekly-exec", "2026-W48", artifacts, ("",), test=test))
    (test1, mark1), (test2, mark2), (real, plain), (rerun, _) = ids
    assert mark1 == mark2 == "true" and plain is None
    assert real == rerun  # a rerun of the delivery is a duplicate the receiver may drop
    assert len({test1, test2, real}) == 3  # each test is its own delivery, and none is the real one
