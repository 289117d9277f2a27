"""The Slack channel: Block Kit to an incoming webhook, or with a bot token to a channel.

Webhook mode posts ``slack.json`` and checks the answer: Slack says ``ok`` or an error text
(``no_service``, ``invalid_token``, ``channel_not_found`` ...); a redirect is a failure, never followed. Bot mode calls chat.postMessage
with the blocks, then uploads ``report.pdf`` to the same channel with the current external-upload
flow (files.getUploadURLExternal, upload, files.completeUploadExternal) via ``files_upload_v2``;
the retired ``files.upload`` is never used.

A post that may have gone out is not retried in the run, as Slack cannot tell a repeat: no answer
in time, or Slack's ``internal_error``/``fatal_error`` ("some aspect of the operation may have
succeeded") to chat.postMessage or files.completeUploadExternal. The next run sends it again. A
call that posts nothing (auth.test, conversations.list, and the upload's first two steps: getting the
upload URL, uploading the bytes) is retried when it goes unanswered.

The message and the PDF are separate ledger targets (``""`` and ``"file:report.pdf"``): a
failed upload is retried without posting the message a second time. The upload takes a channel id
only; a retry without the post's answer finds the id of a ``#name`` with conversations.list.

In bot mode slack_sdk's own retry handlers are off (tenacity decides) and it gets a logger that
never emits, because at DEBUG it logs request URLs and tokens.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from .. import config
from ..errors import DeliveryError
from .base import (BaseChannel, ChannelFailure, CheckResult, Delivery, Receipt, TargetResult, arrived_maybe,
                   may_have_arrived, unanswered)
from .http import canonical_url, http_error, http_post, parse_retry_after

PDF_TARGET = "file:report.pdf"
TEST_MARK = {"type": "context", "elements": [{"type": "mrkdwn", "text": "*[test]* a test send, not the report's delivery"}]}


def mark_test(payload: dict[str, Any]) -> dict[str, Any]:
    """A test send's payload: ``[test]`` in the text and in a first block (found in a Slack audit: in the text
    only, it showed in notifications alone; Slack shows the blocks when there are any)."""
    return {**payload, "text": "[test] " + str(payload.get("text", "")),
            "blocks": [TEST_MARK, *payload.get("blocks", [])][:50]}
# Slack error codes worth waiting for; every other code (invalid_token, channel_not_found,
# no_service, not_in_channel, missing_scope, invalid_blocks ...) will not fix itself. internal_error and
# fatal_error are waited for only where the call posts nothing (see POSTING).
TRANSIENT_ERRORS = {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout", "timeout"}
#: codes Slack documents as "the server could not complete your operation(s) ... It's possible some aspect of
#: the operation succeeded before the error was raised": after a call that posts, the post may be there
MAY_HAVE_SUCCEEDED = {"internal_error", "fatal_error"}
#: the calls that post to the channel, without an idempotency key: retrying one after such a code may post
#: twice. files.completeUploadExternal shares the file ("can only be called once"; files_upload_v2 retried
#: uploads a new file and shares that too). The others (files.getUploadURLExternal, whose upload is discarded
#: unless completed, conversations.list, auth.test) change nothing in the channel and are retried.
POSTING = {"chat.postMessage": "the message", "files.completeUploadExternal": "the PDF"}

_QUIET = logging.Logger("agentdigest.slack_sdk", level=logging.CRITICAL + 1)
#: an id as files.completeUploadExternal takes it (a channel, a private group, a DM); never a name,
#: as Slack's names are lower case
CHANNEL_ID = re.compile(r"[CGDZ][A-Z0-9]+")
#: A user's id ("U…", or "W…" in Enterprise Grid): chat.postMessage writes to the user's direct message with the bot
USER_ID = re.compile(r"[UW][A-Z0-9]+")


class SlackChannel(BaseChannel):
    """Posts the report's Block Kit message (and, in bot mode, the PDF) to Slack."""

    type = "slack"
    provider = "Slack"
    settings_model = config.SlackChannel

    def describe(self) -> str:
        s = self.settings
        if s.webhook_url:
            return f"Slack webhook {self.mask(s.webhook_url.get_secret_value())}"
        return f"Slack {s.channel} via {urlsplit(s.api_url).netloc}"

    def needs(self) -> tuple[str, ...]:
        return ("slack.json",)  # and report.pdf when it is there (bot mode)

    def destination(self, place: str | None = None) -> str:
        # A webhook and a bot posting to the same channel are told apart: nothing says they are the same one.
        # A bot's channel ("#reports") is one of its token's workspace: another token is another destination
        # (found in an audit: a bot of another workspace was told its "#reports" had the period).
        # ``place``: the channel's id, as Slack answered a post to it, so "#reports" and its "C…" are one place.
        s = self.settings
        if s.webhook_url:
            return "webhook\n" + canonical_url(s.webhook_url.get_secret_value())
        return f"bot\n{canonical_url(s.api_url)}\n{place or s.channel}\n{s.bot_token.get_secret_value()}"

    def resolve_place(self) -> str | None:
        """The id of the configured channel when it is a ``#name`` (bot mode), asked of Slack with
        conversations.list (scopes channels:read, groups:read); None when there is nothing to resolve. Asked
        only when a channel no longer in the config sent the period somewhere this one may be (renames.py)."""
        s = self.settings
        if s.webhook_url or CHANNEL_ID.fullmatch(s.channel) or USER_ID.fullmatch(s.channel):
            return None
        return self._channel_id(self._client(), s.channel, "telling whether it is the channel it replaces needs")

    def targets(self, artifacts: Mapping[str, bytes]) -> list[str]:
        s = self.settings
        if s.bot_token and s.upload_pdf and "report.pdf" in artifacts:
            return ["", PDF_TARGET]
        return [""]

    def deliver(self, delivery: Delivery) -> Receipt:
        payload = self._payload(delivery)
        if self.settings.webhook_url:
            tried = self.retry(lambda: self._post_webhook(payload))
            return Receipt((TargetResult("", "sent", None),), tried.attempts, tried.waits)
        return self._deliver_bot(delivery, payload)

    def check(self) -> CheckResult:
        if self.settings.webhook_url:
            return super().check()
        try:
            answer = self._client().auth_test()
        except (SlackClientError, OSError) as exc:
            return CheckResult(self.name, False, str(self._classify(exc, "auth.test")))
        who = f"{answer.get('user', '?')} in {answer.get('team', '?')}"
        return CheckResult(self.name, True, f"{self.describe()}: token valid ({who}); nothing sent")

    def _payload(self, delivery: Delivery) -> dict[str, Any]:
        try:
            payload = json.loads(self.artifact(delivery, "slack.json"))
        except json.JSONDecodeError as exc:
            raise DeliveryError(f"slack.json of {delivery.report_id}/{delivery.period_key} is not JSON ({exc})") from None
        return mark_test(payload) if delivery.test else payload

    def _post_webhook(self, payload: dict[str, Any]) -> None:
        # A plain POST that does not follow redirects, rather than slack_sdk's WebhookClient: through
        # urlopen that follows a 302 as a body-less GET, whose "ok" recorded a message nobody got.
        body, _ = http_post(self, self.settings.webhook_url.get_secret_value(), json.dumps(payload).encode("utf-8"),
                            {"Content-Type": "application/json; charset=utf-8"}, self._timeout(),
                            resend_unanswered=False)
        if body.strip() != "ok":  # a 2xx with an error text: Slack refused the payload
            # masked before it is shortened: a secret the cut fell in was shown in part (a leak audit)
            raise DeliveryError(self.mask(f"{self.describe()} answered {self.mask(body.strip())[:200]!r}"))

    def _deliver_bot(self, delivery: Delivery, payload: dict[str, Any]) -> Receipt:
        client = self._client()
        results: dict[str, TargetResult] = {}
        attempts, waits = 0, []
        channel_id = self.settings.channel
        if "" in delivery.targets:
            def post() -> Any:
                return self._call(lambda: client.chat_postMessage(
                    channel=self.settings.channel, text=payload.get("text") or "", blocks=payload.get("blocks")),
                    "chat.postMessage")
            # A failed post fails the whole delivery: nothing was sent. Each target counts its own attempts
            # (found by a new user: one post and one upload were recorded as 2 attempts each).
            tried = self.retry(post, pending=lambda: [""])
            attempts, waits = tried.attempts, list(tried.waits)
            channel_id = tried.value.get("channel") or channel_id
            results[""] = TargetResult("", "sent", tried.value.get("ts"), attempts=tried.attempts,
                                       place=_id(channel_id))
        if PDF_TARGET in delivery.targets:
            pdf = self.artifact(delivery, "report.pdf")
            shared_in: list[str] = []

            def upload() -> Any:
                channel = (channel_id if CHANNEL_ID.fullmatch(channel_id) else self._direct_id(client, channel_id)
                           if USER_ID.fullmatch(channel_id) else self._channel_id(client, channel_id))
                shared_in[:] = [channel]
                client.completing = False
                return self._call(lambda: client.files_upload_v2(
                    channel=channel, file=pdf, filename="report.pdf",
                    title=f"{delivery.report_id} {delivery.period_key}" + (" [test]" if delivery.test else "")),
                    "files_upload_v2", posts=lambda: client.completing)
            try:
                tried = self.retry(upload, pending=lambda: [PDF_TARGET])
            except (KeyboardInterrupt, SystemExit) as exc:
                # Stopped while waiting to retry the upload: the message posted is said so, and recorded as sent by
                # the caller, as an email's accepted recipients are (else the next run posted it again)
                exc.delivered = results  # type: ignore[union-attr]
                raise
            except ChannelFailure as exc:
                if not results:
                    raise
                attempts, waits = attempts + exc.attempts, waits + list(exc.waits)
                results[PDF_TARGET] = TargetResult(PDF_TARGET, "failed", error=self.mask(f"PDF upload: {exc}"),
                                                   retryable=exc.retryable, attempts=exc.attempts,
                                                   may_have_arrived=arrived_maybe(exc))
            else:
                attempts, waits = attempts + tried.attempts, waits + list(tried.waits)
                file = tried.value.get("file") or {}
                results[PDF_TARGET] = TargetResult(PDF_TARGET, "sent", file.get("id"), attempts=tried.attempts,
                                                   place=_id(shared_in[0] if shared_in else channel_id))
        return Receipt(tuple(results[t] for t in delivery.targets), attempts, tuple(waits))

    def _channel_id(self, client: WebClient, name: str, needs: str = "the PDF upload needs") -> str:
        """The id of channel ``#name``, for an upload whose message was posted by an earlier run (found in a
        Slack audit: the upload then got the #name, Slack answered invalid_arguments on every retry)."""
        cursor = None
        try:
            while True:
                page = self._call(lambda: client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor),
                    "conversations.list")
                for found in page.get("channels") or []:
                    if found.get("name") == name.lstrip("#"):
                        return found["id"]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    raise DeliveryError(f"Slack has no channel {name} that the bot can see")
        except DeliveryError as exc:
            if exc.retryable:
                raise
            raise DeliveryError(f"{needs} the id of {name}, which it finds with conversations.list "
                                f"(scopes channels:read, groups:read): {exc}; set channel to its id (\"C…\", "
                                f"in the channel's details) and run again") from None

    def _direct_id(self, client: WebClient, user: str) -> str:
        """The id of the bot's direct message with ``user`` ("D…"), for an upload whose message was posted by an
        earlier run: the upload takes a channel id only, and a user's id failed every retry (found in a delivery
        audit). conversations.open gives it, and opens it if need be."""
        try:
            found = self._call(lambda: client.conversations_open(users=user), "conversations.open")
            direct = (found.get("channel") or {}).get("id")
            if not direct:
                raise DeliveryError("Slack's answer named no channel")
            return str(direct)
        except DeliveryError as exc:
            if exc.retryable:
                raise
            raise DeliveryError(f"the PDF upload needs the id of the direct message with {user}, which it finds with "
                                f"conversations.open (scope im:write): {exc}; set channel to that id (\"D…\") and run "
                                f"again") from None

    def _client(self) -> "_Client":
        base = self.settings.api_url if self.settings.api_url.endswith("/") else self.settings.api_url + "/"
        return _Client(token=self.settings.bot_token.get_secret_value(), base_url=base,
                         timeout=self._timeout(), logger=_QUIET, retry_handlers=[])

    def _timeout(self) -> int:
        return max(1, math.ceil(self.settings.timeout))  # slack_sdk takes whole seconds

    def _call(self, fn: Any, method: str, posts: Any = None) -> Any:
        """``fn()``, its failure classified; ``posts()`` says whether the call had reached a step that posts
        to the channel (by default: whether ``method`` is one of :data:`POSTING`)."""
        try:
            return fn()
        except (SlackClientError, OSError, ValueError) as exc:
            raise self._classify(exc, method, posts() if posts else method in POSTING) from None

    def _classify(self, exc: BaseException, method: str, posts: bool | None = None) -> DeliveryError:
        """Slack's error code decides: rate limits and server trouble are transient, the rest permanent.
        ``posts``: the call may have posted when it went unanswered, else a timeout is retried (by default:
        whether ``method`` is one of :data:`POSTING`; auth.test and conversations.list post nothing)."""
        posts = method in POSTING if posts is None else posts
        where = f"Slack {method} ({urlsplit(self.settings.api_url).netloc})"
        if isinstance(exc, SlackApiError):
            response = exc.response
            status = getattr(response, "status_code", 0)
            data = response.data if isinstance(getattr(response, "data", None), dict) else {}
            code = str(data.get("error") or "")
            headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
            retry_after = parse_retry_after(_first(headers.get("retry-after")))
            called = urlsplit(str(getattr(response, "api_url", "") or "")).path.rpartition("/")[2] or method
            if code in MAY_HAVE_SUCCEEDED and called in POSTING:
                return _maybe_posted(self, f"Slack {called} ({urlsplit(self.settings.api_url).netloc})", code,
                                     POSTING[called])
            if status == 429 or code in TRANSIENT_ERRORS or status >= 500:
                return DeliveryError(self.mask(f"{where} answered {code or f'HTTP {status}'}"), retryable=True,
                                     retry_after=retry_after)
            return DeliveryError(self.mask(f"{where} answered {code or f'HTTP {status}'}"))
        if isinstance(exc, urllib.error.HTTPError):  # the upload step talks plain HTTP
            return _masked(http_error(exc.code, f"{where} (file upload)", "", exc.headers.get("Retry-After")), self)
        if isinstance(exc, urllib.error.URLError):  # while connecting or sending: nothing arrived
            return DeliveryError(self.mask(f"cannot reach {where}: {exc.reason}"), retryable=True)
        if isinstance(exc, OSError) and posts:  # sent, unanswered: Slack may have posted it, and has no idempotency key
            return unanswered(self, where, exc)
        if isinstance(exc, OSError):  # unanswered, but nothing is in the channel yet: waited for and retried
            return DeliveryError(self.mask(f"no answer from {where}: {exc or type(exc).__name__}"), retryable=True)
        # SlackRequestError (e.g. a failed upload step) or an unreadable answer.
        return DeliveryError(self.mask(f"{where} failed: {exc}"), retryable=True)


class _Client(WebClient):
    """slack_sdk's client, noting when ``files_upload_v2`` reaches files.completeUploadExternal, its one step
    that shares the file: a timeout before it (getting the upload URL, uploading the bytes) posted nothing, and
    is retried; found in a delivery audit, every timeout of the upload read as "it may have arrived"."""

    completing = False

    def files_completeUploadExternal(self, **kwargs: Any) -> Any:  # noqa: N802 - slack_sdk's name
        self.completing = True
        return super().files_completeUploadExternal(**kwargs)


def _id(channel: str) -> str | None:
    """A channel id as the place a send went (TargetResult.place); None for a name Slack did not resolve."""
    return channel if CHANNEL_ID.fullmatch(channel) else None


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _maybe_posted(channel: BaseChannel, where: str, code: str, what: str) -> DeliveryError:
    """Slack answered an error that may follow a post: like an unanswered post (see
    :func:`.base.unanswered`), not retried in this run, and the next run sends it again (at least once)."""
    shared = "shared" if what == "the PDF" else "posted"
    return may_have_arrived(channel, f"{where} answered {code}: Slack reported an error, but {what} may have been "
                                     f"{shared}, so this run does not send it again; check the channel before "
                                     f"resending (the next run sends it again)")


def _masked(error: DeliveryError, channel: BaseChannel) -> DeliveryError:
    return DeliveryError(channel.mask(error), retryable=error.retryable, retry_after=error.retry_after)
