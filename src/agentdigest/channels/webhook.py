"""The webhook channel: POSTs the archived ``report.json`` to a URL, for teams that route reports elsewhere.

Headers sent with every request:

- ``Content-Type: application/json``
- ``X-Agentdigest-Report`` / ``X-Agentdigest-Period``: which report and period this is.
- ``X-Agentdigest-Delivery``: the same value on every retry and rerun of one (report, period,
  channel), so a receiver can drop duplicates; a deliberate resend (``resend``, ``--force``) and each
  test send (``--test-to``) get a new one, so they are not dropped, and a test never takes the real id.
- ``X-Agentdigest-Test: true`` on a test send.
- ``X-Agentdigest-Signature: sha256=<hex>`` when ``secret`` is set: the HMAC-SHA256 of the raw
  request body, keyed with the secret.

Verifying the signature on the receiving side (compare in constant time, over the raw bytes,
before parsing the JSON)::

    import hashlib, hmac
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers["X-Agentdigest-Signature"]):
        reject(401)

2xx is success; 429 and 5xx are retried (honouring Retry-After); anything else, redirects
included, is a permanent failure. A ``user:password@`` in the URL is sent as HTTP Basic auth. Redirects are not followed, so the body and its signature
never go to a URL other than the configured one.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from importlib import metadata

from .. import config
from .base import BaseChannel, Delivery, Receipt, TargetResult
from .http import canonical_url, http_post

SIGNATURE_HEADER = "X-Agentdigest-Signature"
try:
    _VERSION = metadata.version("agentdigest")
except metadata.PackageNotFoundError:  # running from a source tree
    _VERSION = "dev"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Agentdigest-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookChannel(BaseChannel):
    """POSTs report.json, signed when a secret is set."""

    type = "webhook"
    provider = "the webhook"
    settings_model = config.WebhookChannel

    def describe(self) -> str:
        return f"webhook {self.mask(self.settings.url.get_secret_value())}"

    def needs(self) -> tuple[str, ...]:
        return ("report.json",)

    def destination(self) -> str:
        return canonical_url(self.settings.url.get_secret_value())

    def deliver(self, delivery: Delivery) -> Receipt:
        body = self.artifact(delivery, "report.json")
        key = f"{delivery.report_id}\0{delivery.period_key}\0{self.name}"
        if delivery.resend or delivery.test:
            # A deliberate resend (resend, --force) or a test is a new delivery, not a duplicate: a test
            # with the real delivery's id made a deduplicating receiver drop the real report (a new-user audit)
            key += f"\0{'test' if delivery.test else 'resend'}\0{uuid.uuid4().hex}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"agentdigest/{_VERSION}",
            "X-Agentdigest-Report": delivery.report_id,
            "X-Agentdigest-Period": delivery.period_key,
            "X-Agentdigest-Delivery": hashlib.sha256(key.encode()).hexdigest()[:32],
        }
        if delivery.test:
            headers["X-Agentdigest-Test"] = "true"
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = signature(self.settings.secret.get_secret_value(), body)
        tried = self.retry(lambda: self._post(body, headers))
        return Receipt((TargetResult("", "sent", tried.value),), tried.attempts, tried.waits)

    def _post(self, body: bytes, headers: dict[str, str]) -> str | None:
        _, answer_headers = http_post(self, self.settings.url.get_secret_value(), body, headers, self.settings.timeout)
        return answer_headers.get("X-Request-Id")
