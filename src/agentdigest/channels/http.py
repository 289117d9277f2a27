"""Channels' HTTP: a POST that never follows a redirect, its answer classified (429 and 5xx transient, any other
4xx permanent, Retry-After honoured), an error answer masked before anything shortens it, credentials in a URL
sent as HTTP Basic, and a URL's canonical form as a destination (renames.py).

The Slack and webhook channels deliver through it; :mod:`.base` is what every channel is.
"""

from __future__ import annotations

import base64
import email.utils
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import DeliveryError
from .base import BaseChannel, unanswered


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def http_error(status: int, what: str, body: str = "", retry_after: str | None = None) -> DeliveryError:
    """Classify an HTTP answer: 429 and 5xx are transient, any other 4xx (and 3xx) is permanent."""
    body = " ".join(body.split())[:200]
    detail = f"HTTP {status}" + (f": {body}" if body else "")
    retryable = status == 429 or status >= 500
    return DeliveryError(f"{what} answered {detail}", retryable=retryable,
                         retry_after=parse_retry_after(retry_after) if retryable else None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # urllib then raises the 3xx as an HTTPError


_opener = urllib.request.build_opener(_NoRedirect)


def http_post(channel: BaseChannel, url: str, body: bytes, headers: Mapping[str, str],
              timeout: float, *, resend_unanswered: bool = True) -> tuple[str, Mapping[str, str]]:
    """POST ``body`` to ``url`` without following redirects: the answer's text and headers for a 2xx,
    else a :class:`DeliveryError` (masked with ``channel``'s secrets) classified by :func:`http_error`.

    A redirect is a permanent failure: following it would re-send the body (and a webhook's signature)
    to another URL, or, as urllib does for 302 and 303, turn the POST into a GET that delivers nothing.
    A ``user:password@`` in the URL is sent as HTTP Basic auth. A request sent but not answered is retried
    only with ``resend_unanswered`` (the receiver can tell a repeat by its idempotency key).
    """
    where = channel.describe()
    url, authorization = split_credentials(url)
    if authorization:
        headers = {**headers, "Authorization": authorization}
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            charset = response.headers.get_content_charset() or "utf-8"
            return response.read(65536).decode(charset, "replace"), response.headers
    except urllib.error.HTTPError as exc:
        error = http_error(exc.code, where, _answer_text(channel, exc), exc.headers.get("Retry-After"))
        raise DeliveryError(channel.mask(error), retryable=error.retryable, retry_after=error.retry_after) from None
    except urllib.error.URLError as exc:  # while connecting or sending: nothing arrived
        raise DeliveryError(channel.mask(f"cannot reach {where}: {exc.reason}"), retryable=True) from None
    except OSError as exc:  # while waiting for the answer
        if not resend_unanswered:
            raise unanswered(channel, where, exc) from None
        raise DeliveryError(channel.mask(f"no answer from {where}: {exc or type(exc).__name__}"),
                            retryable=True) from None


#: How much of an error answer is read. It is masked whole, before http_error shortens it to 200 characters:
#: shortened first, a 404 page echoing a webhook's token path 190 characters in showed the token's first
#: characters, which no longer matched the whole token to mask (found in a leak audit).
ERROR_READ = 65536
#: What is dropped from the end of an answer longer than ERROR_READ: a secret the read cut may hold part of.
_ERROR_CUT_MARGIN = 1024


def _answer_text(channel: BaseChannel, exc: urllib.error.HTTPError) -> str:
    """The body of an error answer as text, masked with ``channel``'s secrets before anything shortens it."""
    raw = exc.read(ERROR_READ + 1) if exc.fp else b""
    text = raw[:ERROR_READ].decode("utf-8", "replace")
    if len(raw) > ERROR_READ:
        text = text[:-_ERROR_CUT_MARGIN]
    return channel.mask(text)


def split_credentials(url: str) -> tuple[str, str | None]:
    """``https://user:pw@host/x`` -> (``https://host/x``, HTTP Basic for user:pw); urllib would take
    the credentials for part of the host name."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def canonical_url(url: str) -> str:
    """``url`` as a destination: scheme and host lower-cased, without a default port, fragment or trailing
    slash. Path, query and ``user:password@`` are kept as they are: on a shared ingest URL the credentials may be
    what tells two tenants apart (another one sends again, the safe side; found in an audit)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[0] + "@" + host
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host += f":{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))
