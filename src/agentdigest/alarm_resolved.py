"""The ``resolved`` notice: once a period that the alarm channel was told is late or failed is delivered, each
target that got such an alarm hears, once, that it went out.

A notice is sent by whichever path sees the period done (every target of its channels sent, as ``check --missed``
counts it): the run that delivers it (a scheduled pass, ``run --due``, or a manual ``run REPORT --period KEY``, the
usual fix of a failure), or the alarm check after a pass and at each heartbeat of the scheduler, which looks at the
periods a pass would send (and so tries again a notice that failed). It is claimed and logged as the other alarms
are (alarms.notify: recipient ``resolved`` or ``resolved:<address>``), so several schedulers, repeated passes, a
restart or a reset ledger never send it twice. The targets that got an alarm about the period are read from the
ledger and from the archive's alarm log (a reset ledger still knows whom to tell); a target never alarmed (its
address refused the alarm, or added since) is not told. A notice that cannot be sent never fails anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import due
from .alarms import Alarm, notify, parse_recipient
from .archive import recorded_alarms
from .config import Config, ReportConfig
from .errors import ArchiveError, first_line
from .periods import Period

ALARMED = ("late", "failed")  # the kinds a resolved notice answers
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
    if not targets or ("" in resolved or targets <= resolved):
        return "none"
    if not is_done(report, period):
        return "undone"
    sent = [r["sent_at"] for r in rows if r["kind"] == "delivery" and r["channel"] in report.channels and r["sent_at"]]
    alarm = Alarm("resolved", report.id, period, delivered_at=datetime.fromisoformat(max(sent)) if sent else None,
                  resolves=_resolves(config, report, period, alarmed, alarms))
    # "" (a channel of one target, or an older email alarm sent as one row): every target of the channel got it
    only = None if "" in targets else targets
    return notify(config, ledger, alarm, owner=owner, archive=archive, only=only)


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
