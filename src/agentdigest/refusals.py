"""Targets refused for good: which of a period's targets are not tried again, and until when.

A target whose last failure in a period was permanent (a 550 recipient, Slack's ``channel_not_found``) fails
the same way until something changes. The scheduler's own retries of a failed pass and ``run --due`` skip it
until either its settings change or a day has passed (:data:`TRY_AGAIN_AFTER`). The scheduler knows its config
changed by comparing the old one with the new on SIGHUP (:func:`settings_view`); ``run --due``, a new process
each time, by a fingerprint of that view kept with the failure (ledger column ``failed_under``): a failure
recorded under other settings, or before there were fingerprints, does not count.

Secrets never reach the ledger, not even hashed (a weak SMTP password could be guessed from any hash of it):
the fingerprint has each secret masked (an SMTP URL keeps its user, host and port), the source's too (a database
URL's password, a file URL's token, a Spark or DuckDB setting named as a secret). So a password put right in
the environment is no change it can see: the refused target is tried again within a day, or at once by
``run REPORT --period KEY``, which the skip's line names.

The missed-report alarm follows the same rule for its own targets (``kind="alarm"`` rows), under a fingerprint of
its own settings (:func:`alarm_settings_view`): an alarm address refused for good is not tried again at every
cron run either.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, SecretStr

from .config import SECRET_SETTING, Config, ReportConfig
from .masking import mask_credentials, mask_url

#: A refusal older than this is tried again: a mailbox created since, a password put right in the environment
#: (which the fingerprint cannot see), once a day rather than at every cron run for as long as the period is due.
TRY_AGAIN_AFTER = timedelta(hours=24)


def settings_view(config: Config, report_id: str) -> Any:
    """What a change of retries a report's failures: its own settings, its channels', the source and the
    archive (None once the report is gone from the config)."""
    report = next((r for r in config.reports if r.id == report_id), None)
    if report is None:
        return None
    return (report, [config.channels.get(c) for c in report.channels], config.source, config.archive)


def settings_fingerprint(config: Config, report: ReportConfig) -> str:
    """24 hex digits that change when :func:`settings_view` does, its secrets masked (see the module)."""
    return _fingerprint(settings_view(config, report.id))


def alarm_settings_view(config: Config) -> Any:
    """What a change of retries the alarm's failures: ``[alarms]`` and its channel's settings."""
    return (config.alarms, config.channels.get(config.alarms.channel or ""))


def alarm_fingerprint(config: Config) -> str:
    """24 hex digits that change when :func:`alarm_settings_view` does, its secrets masked (see the module)."""
    return _fingerprint(alarm_settings_view(config))


def _fingerprint(view: Any) -> str:
    text = json.dumps(_plain(view), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: Keys that decide whether a report runs, or how much memory it may take, not how it is sent: outside the
#: fingerprint, so adding ``enabled`` (or pausing and resuming) or ``[source] client_memory_limit`` leaves every
#: report's fingerprint as it was, and a target refused for good stays so (an upgrade that added the source key
#: changed every fingerprint: caught by the test pinning one).
_NOT_SETTINGS = frozenset({"enabled", "client_memory_limit"})


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {"$type": type(value).__name__, **{k: _plain(v) for k, v in value if k not in _NOT_SETTINGS}}
    if isinstance(value, SecretStr):  # an SMTP URL's host and user count; its password, a token, a webhook path not
        secret = value.get_secret_value()
        return mask_url(secret) if "://" in secret else "***"
    if isinstance(value, str):  # the source's URL and files: a database password, a presigned URL's token
        return mask_credentials(value) if "://" in value else value
    if isinstance(value, dict):  # a Spark or DuckDB secret setting (fs.s3a.secret.key, s3_secret_access_key)
        return {str(k): "***" if SECRET_SETTING.search(str(k)) else _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    return value


def refused_for_good(ledger: Any, report_id: str, period_key: str, under: str,
                     kind: str = "delivery") -> dict[str, dict[str, str]]:
    """Each channel's targets of the period that were never sent and whose last failure was permanent, happened
    under the settings fingerprinted ``under`` and is not older than :data:`TRY_AGAIN_AFTER`, with that failure's
    error. A failure under other settings, from before fingerprints were kept, or a day old, is left out: it is
    tried again. ``kind="alarm"``: the targets of the period's alarms (channel ``alarm:<name>``)."""
    return refused_among(ledger.deliveries(report_id, period_key), under, kind)


def refused_among(rows: Iterable[dict[str, Any]], under: str, kind: str = "delivery") -> dict[str, dict[str, str]]:
    """:func:`refused_for_good` of a period's ledger rows already read (``Ledger.deliveries``)."""
    since = datetime.now(timezone.utc) - TRY_AGAIN_AFTER
    refused: dict[str, dict[str, str]] = {}
    for row in rows:
        if (row["kind"] == kind and row["state"] == "failed" and row["retryable"] is False
                and not row["sent_at"] and row.get("failed_under") == under and _after(row["at"], since)):
            refused.setdefault(row["channel"], {})[row["recipient"]] = row["error"] or "refused"
    return refused


def _after(at: str | None, since: datetime) -> bool:
    return at is not None and datetime.fromisoformat(at) >= since
