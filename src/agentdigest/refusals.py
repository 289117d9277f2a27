"""Targets refused for good: which of a period's targets are not tried again, and until what changes.

A target whose last failure in a period was permanent (a 550 recipient, Slack's ``channel_not_found``) fails
the same way until something changes. The scheduler's own retries of a failed pass and ``run --due`` skip it;
a pass that could be told something changed tries it again. The scheduler knows its config changed by
comparing the old one with the new on SIGHUP (:func:`settings_view`); ``run --due``, a new process each time,
by the fingerprint of that view kept with the failure (ledger column ``failed_under``): a failure recorded
under other settings, or before there were fingerprints, does not count.

The view holds secrets (an SMTP password, a webhook URL): a password put right in the environment is a
change. Only a slow, salted hash of it is kept (:func:`settings_fingerprint`), never the settings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, SecretStr

from .config import Config, ReportConfig

_SALT = b"agentdigest settings fingerprint"
_ROUNDS = 50_000  # about 20 ms, once per delivery of a period: guessing a password from it is as slow


def settings_view(config: Config, report_id: str) -> Any:
    """What a change of retries a report's failures: its own settings, its channels', the source and the
    archive (None once the report is gone from the config)."""
    report = next((r for r in config.reports if r.id == report_id), None)
    if report is None:
        return None
    return (report, [config.channels.get(c) for c in report.channels], config.source, config.archive)


def settings_fingerprint(config: Config, report: ReportConfig) -> str:
    """24 hex digits that change when :func:`settings_view` does (secrets included, see the module)."""
    text = json.dumps(_plain(settings_view(config, report.id)), sort_keys=True, default=str)
    return hashlib.pbkdf2_hmac("sha256", text.encode(), _SALT, _ROUNDS).hex()[:24]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {"$type": type(value).__name__, **{k: _plain(v) for k, v in value}}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    return value


def refused_for_good(ledger: Any, report_id: str, period_key: str, under: str) -> dict[str, dict[str, str]]:
    """Each channel's targets of the period that were never sent and whose last failure was permanent and happened
    under the settings fingerprinted ``under``, with that failure's error. A failure under other settings, or
    from before fingerprints were kept, is left out: it is tried again."""
    refused: dict[str, dict[str, str]] = {}
    for row in ledger.deliveries(report_id, period_key):
        if (row["kind"] == "delivery" and row["state"] == "failed" and row["retryable"] is False
                and not row["sent_at"] and row.get("failed_under") == under):
            refused.setdefault(row["channel"], {})[row["recipient"]] = row["error"] or "refused"
    return refused
