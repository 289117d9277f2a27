"""The ``resolved`` notice: once a period that the alarm channel was told is late or failed is delivered, each
target that got such an alarm hears, once, that it went out.

A notice is sent by whichever path sees the period done (every target of its channels sent, as ``check --missed``
counts it): the command that delivers it (a scheduled pass, ``run --due``, a manual ``run REPORT --period KEY``, the
usual fix of a failure, or ``resend``), or the alarm check after a pass and at each heartbeat of the scheduler
(:func:`resolve_pending`), which tries again a notice that failed or was never sent. That check does not look at the
periods a pass would send but asks the ledger, in one query, which periods got a ``late`` or ``failed`` alarm in the
last :data:`HORIZON` and have a target not yet told; only those are read further (found in an audit: a period
delivered by ``resend``, or whose notice was refused for now until the pass window had moved on, was never told).
It is claimed and logged as the other alarms are (alarms.notify: recipient ``resolved`` or ``resolved:<address>``),
so several schedulers, repeated passes, a restart or a reset ledger never send it twice. The targets that got an
alarm about the period are read from the ledger and from the archive's alarm log (a reset ledger still knows whom to
tell, and the check learns the alarm logs it does not know); a target never alarmed (its address refused the alarm,
or added since) is not told. A notice that cannot be sent never fails anything else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import due
from .alarms import Alarm, notify, parse_recipient
from .archive import ALARMS, recorded_alarms, recorded_sends
from .config import Config, ReportConfig
from .errors import ArchiveError, InputError, first_line
from .periods import Period, parse_period

ALARMED = ("late", "failed")  # the kinds a resolved notice answers
#: How long after its alarm the alarm check still tells a period's targets it was delivered: the year for which
#: passes keep trying a failed period (due.candidates), so any period a pass, a `run --period` or a `resend` can
#: still deliver is told, even a notice refused for months. Bounded so that a period alarmed and never delivered
#: (passed over for a later one) is not looked at for ever; the query reads only alarm rows, a handful a period.
HORIZON = timedelta(days=366)
log = logging.getLogger("agentdigest.schedule")


def resolve_periods(config: Config, ledger: Any, report: ReportConfig, periods: Iterable[Period], *, owner: str,
                    archive: Path | str | None = None, is_done: due.IsDone | None = None) -> None:
    """Send the resolved notice of each of ``periods`` that is done and was alarmed; never raises."""
    if not config.alarms.channel or not report.channels:
        return
    archive = Path(archive or config.archive.path)
    done = is_done or due.done_checker(ledger, archive, config, renamed=True)
    for period in periods:
        try:
            resolve(config, ledger, report, period, owner=owner, archive=archive, is_done=done)
        except Exception as exc:  # noqa: BLE001 - a notice must never fail a run or a pass
            _failed(report.id, period.key, config.alarms.channel, first_line(exc))


def resolve_pending(config: Config, ledger: Any, reports: Iterable[ReportConfig], *, now: datetime, owner: str,
                    archive: Path | str | None = None, is_done: due.IsDone | None = None,
                    skip: Collection[tuple[str, str]] = ()) -> None:
    """The alarm check's part: send the notice of every period of ``reports`` alarmed within :data:`HORIZON` of
    ``now``, delivered, and not yet told to each alarmed target; ``skip``: (report, period) pairs whose run just
    sent or failed to send it (tried again at the next check). Never raises."""
    reports = {r.id: r for r in reports if r.channels}
    if not config.alarms.channel or not reports:
        return
    archive = Path(archive or config.archive.path)
    try:
        pending = _pending(config, ledger, list(reports), archive, now - HORIZON)
    except Exception as exc:  # noqa: BLE001 - a notice must never fail a pass or a heartbeat
        _failed(", ".join(reports), "(pending notices)", config.alarms.channel, first_line(exc))
        return
    done = is_done or due.done_checker(ledger, archive, config, renamed=True)
    for report_id, key in sorted(pending - set(skip)):
        report = reports[report_id]
        try:  # a key of another kind: the report's period was changed since the alarm
            period = parse_period(report.period, key, report.timezone)
        except InputError:
            continue
        try:
            resolve(config, ledger, report, period, owner=owner, archive=archive, is_done=done)
        except Exception as exc:  # noqa: BLE001
            _failed(report_id, key, config.alarms.channel, first_line(exc))


def _pending(config: Config, ledger: Any, report_ids: list[str], archive: Path, since: datetime) -> set[tuple[str, str]]:
    """The (report, period) pairs that may owe a resolved notice: a target got a late or failed alarm and no
    resolved one, and some channel got the period (one never delivered is not looked at further). One query of the
    alarm rows changed since ``since``; an alarm log of that time the ledger knows nothing of (a new or reset
    ledger) is learnt from, once, and its period looked at."""
    rows = ledger.alarm_rows(report_ids, since)
    ledger_channel = f"alarm:{config.alarms.channel}"
    known, got, alarmed, told = set(), set(), {}, {}
    for report_id, key, channel, key_recipient, sent, was_delivered in rows:
        known.add((report_id, key))
        if channel != ledger_channel or not sent:
            continue
        kind, target = parse_recipient(key_recipient)
        if kind in ALARMED:
            alarmed.setdefault((report_id, key), set()).add(target)
        elif kind == "resolved":
            told.setdefault((report_id, key), set()).add(target)
        if was_delivered:
            got.add((report_id, key))
    pending = {pk for pk, targets in alarmed.items() if pk in got and not _all_told(targets, told.get(pk, set()))}
    return pending | _unknown_logs(ledger, report_ids, archive, since, known)


def _unknown_logs(ledger: Any, report_ids: list[str], archive: Path, since: datetime,
                  known: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The periods whose alarm log was written since ``since`` and that the ledger has no alarm row of: their
    alarm sends, and the report sends the period's send log records, are restored to the ledger (so the next check
    finds them in its query) and the periods returned. One listing of each report's alarm folder; a log is read
    only when the ledger does not know its period."""
    out = set()
    for report_id in report_ids:
        try:
            entries = list(os.scandir(Path(archive) / ALARMS / report_id))
        except OSError:  # no alarm of this report yet (or an unreadable folder: the notice's own read says so)
            continue
        for entry in entries:
            key = entry.name.removesuffix(".jsonl")
            if key == entry.name or (report_id, key) in known:
                continue
            try:
                if datetime.fromtimestamp(entry.stat().st_mtime, timezone.utc) < since:
                    continue
                alarms, sends = recorded_alarms(archive, report_id, key), recorded_sends(archive, report_id, key)
            except (OSError, ArchiveError, InputError) as exc:
                log.warning("%s", exc)
                continue
            if alarms and ledger.restore_sent(report_id, key, alarms, kind="alarm", note="restored from the archive "
                                              "(the ledger had no record of this alarm)"):
                # and its sends, which no pass learns once the period is out of its window: whether it is done
                ledger.restore_sent(report_id, key, sends or [],
                                    note="restored from the archive (the ledger had no record of this send)")
                out.add((report_id, key))
    return out


def resolve(config: Config, ledger: Any, report: ReportConfig, period: Period, *, owner: str, archive: Path,
            is_done: due.IsDone) -> str:
    """Send the resolved notice of one period when it is due (see the module); returns what alarms.notify does,
    or ``none`` (nobody to tell) or ``undone`` (the period is not delivered yet)."""
    name = config.alarms.channel
    ledger_channel = f"alarm:{name}"
    rows = ledger.deliveries(report.id, period.key)
    alarms = [r for r in rows if r["kind"] == "alarm" and r["channel"] == ledger_channel]
    told = {parse_recipient(r["recipient"]) for r in alarms if r["sent_at"]}
    resolved = {target for kind, target in told if kind == "resolved"}
    alarmed = {(kind, target): (None, None) for kind, target in told if kind in ALARMED}
    try:  # a reset ledger: the alarm log still says who got an alarm, and what it said
        for send in recorded_alarms(archive, report.id, period.key):
            kind, target = parse_recipient(send["recipient"])
            if send["channel"] == ledger_channel and kind in ALARMED:
                alarmed[(kind, target)] = (send.get("about"), send.get("sent_at"))
    except ArchiveError as exc:
        log.warning("%s", exc)
    targets = {target for _, target in alarmed}
    if not targets or _all_told(targets, resolved):
        return "none"
    if not is_done(report, period):
        return "undone"
    sent = [r["sent_at"] for r in rows if r["kind"] == "delivery" and r["channel"] in report.channels and r["sent_at"]]
    alarm = Alarm("resolved", report.id, period, delivered_at=datetime.fromisoformat(max(sent)) if sent else None,
                  resolves=_resolves(config, report, period, alarmed, alarms))
    # "" (a channel of one target, or an older email alarm sent as one row): every target of the channel got it
    only = None if "" in targets else targets
    return notify(config, ledger, alarm, owner=owner, archive=archive, only=only)


def _all_told(alarmed: set[str], resolved: set[str]) -> bool:
    """Whether every alarmed target got the notice: "" is the whole channel, as one row (see :func:`resolve`)."""
    return "" in resolved or alarmed <= resolved


def _resolves(config: Config, report: ReportConfig, period: Period, alarmed: dict[tuple[str, str], tuple[Any, Any]],
              rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The alarms answered, in words: "late since ..." and "failed: <channel recipient>", with when each was sent."""
    out = []
    for kind in ALARMED:
        mine = {target: about for (k, target), about in alarmed.items() if k == kind}
        if not mine:
            continue
        sent_at = min((r["sent_at"] for r in rows if r["sent_at"] and parse_recipient(r["recipient"])[0] == kind),
                      default=None) or min((at for _, at in mine.values() if at), default=None)
        about = next((a for a, _ in mine.values() if a), None)
        if kind == "late":
            when = due.due_at(report, period)
            since = (when + due.grace(config, report)).astimezone(ZoneInfo(period.timezone)) if when else None
            what = f"late since {since.isoformat()}" if since else "late"
        else:
            what = f"failed: {about}" if about else "failed"
        at = datetime.fromisoformat(sent_at).astimezone(timezone.utc) if sent_at else None
        out.append(f"{what} (alarm sent {at:%Y-%m-%d %H:%M:%SZ})" if at else what)
    return tuple(out)


def _failed(report_id: str, period_key: str, channel: str | None, error: str) -> None:
    log.error("the 'resolved' alarm for %s %s could not be sent via %s: %s", report_id, period_key, channel, error,
              extra={"event": "alarm_failed", "report": report_id, "period": period_key, "channel": channel,
                     "kind": "resolved", "error": error})
