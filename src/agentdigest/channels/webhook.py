"""The webhook channel: POSTs the archived ``report.json`` to a URL, for teams that route reports elsewhere.

Headers sent with every request:

- ``Content-Type: application/json``
- ``X-Agentdigest-Report`` / ``X-Agentdigest-Period``: which report and period this is.
- ``X-Agentdigest-Delivery``: the same value on every retry and rerun of one (report, period,
  channel), so a receiver can drop duplicates; a deliberate resend (``resend``, ``--force``) gets a
  new one, so it is not dropped.
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

import base64
import hashlib
import hmac
import urllib.error
import urllib.request
import uuid
from importlib import metadata
from urllib.parse import unquote, urlsplit, urlunsplit

from .. import config
from ..errors import DeliveryError
from .base import BaseChannel, Delivery, Receipt, TargetResult, http_error

SIGNATURE_HEADER = "X-Agentdigest-Signature"
try:
    _VERSION = metadata.version("agentdigest")
except metadata.PackageNotFoundError:  # running from a source tree
    _VERSION = "dev"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Agentdigest-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # urllib then raises the 3xx as an HTTPError


_opener = urllib.request.build_opener(_NoRedirect)


class WebhookChannel(BaseChannel):
    """POSTs report.json, signed when a secret is set."""

    type = "webhook"
    settings_model = config.WebhookChannel

    def describe(self) -> str:
        return f"webhook {self.mask(self.settings.url.get_secret_value())}"

    def needs(self) -> tuple[str, ...]:
        return ("report.json",)

    def deliver(self, delivery: Delivery) -> Receipt:
        body = self.artifact(delivery, "report.json")
        key = f"{delivery.report_id}\0{delivery.period_key}\0{self.name}"
        if delivery.resend:  # a deliberate resend (resend, --force) is a new delivery, not a duplicate
            key += f"\0resend\0{uuid.uuid4().hex}"
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
        where = self.describe()
        url, authorization = _split_credentials(self.settings.url.get_secret_value())
        if authorization:
            headers = {**headers, "Authorization": authorization}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=self.settings.timeout) as response:
                response.read()
                return response.headers.get("X-Request-Id")
        except urllib.error.HTTPError as exc:
            text = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
            error = http_error(exc.code, where, text, exc.headers.get("Retry-After"))
            raise DeliveryError(self.mask(error), retryable=error.retryable, retry_after=error.retry_after) from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(self.mask(f"cannot reach {where}: {getattr(exc, 'reason', exc)}"), retryable=True) from None


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``https://user:pw@host/x`` -> (``https://host/x``, HTTP Basic for user:pw); urllib would take
    the credentials for part of the host name."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"
