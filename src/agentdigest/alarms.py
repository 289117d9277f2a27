"""The missed-report alarm: a short notice to the ``[alarms] channel`` when a report is late or failed, or when
periods were passed over (``passed_over``: they came due while no pass ran, and history is not backfilled), and
one more, ``resolved``, when a late or failed period is delivered at last (alarm_resolved.py decides when).

An alarm is not a report: it is a few lines of plain text (and the same facts as JSON) built
here and handed to the alarm channel as the artifacts that channel reads (``message.eml`` for
email and outbox, ``slack.json`` for Slack, ``report.json`` for webhooks). It goes through its own
channel, so it reaches someone even when the late report's channel is the broken one.

Each alarm is claimed in the ledger like a delivery (kind ``alarm``: never the period's delivery),
under channel ``alarm:<name>`` and recipient ``late``, ``failed``, ``passed_over`` or ``resolved`` (a passed-over
set of periods under its newest one; ``late:<address>`` for each address
of an email channel, as a report's recipients are claimed one by one): every scheduler sharing the ledger may notice
the same late period, and exactly one of them tells each target of the alarm channel about it, once. Each
send is also appended to the archive's alarm log (``<archive>/.alarms/<report>/<period>.jsonl``), from which
a new or reset ledger learns it, as it learns a report's sends from the period's send log. A target refused for
good (an address refused with SMTP 5xx, Slack's ``channel_not_found``) is not tried again for the period, whichever
kind of alarm, for a day or until the alarm's settings change: the rule of a report's targets (refusals.py).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from .archive import mark_alarmed, recorded_alarms
from .channels import Delivery, TargetResult, make_channel
from .config import Config, EmailChannel
from .delivery import attempt, say_retrying
from .preflight import lease_seconds
from .errors import ArchiveError
from .masking import mask_text, secret_values
from .periods import Period
from .refusals import alarm_fingerprint, refused_for_good

Kind = Literal["late", "failed", "passed_over", "resolved"]
ALARM_REPORT_ID = "_alarms"  # the outbox folder and Message-ID namespace of alarms, apart from any report
log = logging.getLogger("agentdigest.schedule")


@dataclass(frozen=True)
class Alarm:
    """One thing to tell the alarm channel about a report period."""

    kind: Kind
    report_id: str
    period: Period
    due_at: datetime | None = None
    deadline: datetime | None = None
    failures: tuple[tuple[str, str, str], ...] = field(default=())  # (channel, recipient, error)
    delivered_at: datetime | None = None  # resolved: when the period was sent (its last target)
    resolves: tuple[str, ...] = field(default=())  # resolved: the alarms it answers, in words
    passed: tuple[Period, ...] = field(default=())  # passed_over: the periods, oldest first (``period`` the newest)
    catch_up: int = 0  # passed_over: the report's catch_up, which left them out

    @property
    def subject(self) -> str:
        if self.kind == "passed_over":
            return f"[agentdigest] {self.report_id} {span(self.passed)} passed over"
        what = {"late": "is late", "failed": "could not be delivered", "resolved": "was delivered"}[self.kind]
        return f"[agentdigest] {self.report_id} {self.period.key} {what}"

    @property
    def periods(self) -> str:
        """The period it is about, or the periods passed over (``2026-W45 to 2026-W47 (3 weeks)``), for log lines."""
        return span(self.passed) if self.passed else self.period.key

    @property
    def about(self) -> str | None:
        """What the alarm log keeps of it besides the send, for the resolved notice to say what it answers: the
        failed targets (not their errors), or since when the period is late."""
        if self.kind == "failed":
            return ", ".join("the run" if c == "(run)" else f"{c}{' ' + r if r else ''}"
                             for c, r, _ in self.failures) or None
        return self.deadline.isoformat() if self.kind == "late" and self.deadline else None

    def lines(self) -> list[str]:
        tz = ZoneInfo(self.period.timezone)
        first = self.passed[0] if self.passed else self.period
        out = [self.subject, "", f"report:  {self.report_id}",
               f"{'periods:' if len(self.passed) > 1 else 'period: '} {self.periods} "
               f"({first.start.isoformat()} to {self.period.end.isoformat()})"]
        if self.due_at:
            out.append(f"due at:  {self.due_at.astimezone(tz).isoformat()} ({_z(self.due_at)})")
        if self.deadline:
            out.append(f"late after: {self.deadline.astimezone(tz).isoformat()} ({_z(self.deadline)})")
        for channel, recipient, error in self.failures:
            out.append(f"failed:  {channel}{' ' + recipient if recipient else ''}: {error}")
        noticed = f"noticed by {socket.gethostname()} at {_z(datetime.now(timezone.utc))}"
        history = f"See `agentdigest history --report {self.report_id}`"
        if self.kind == "passed_over":
            return out + [f"why:     {'it' if len(self.passed) == 1 else 'they'} came due while no pass ran (the "
                          f"scheduler down, `run --due` not run, or the report paused), and history is not backfilled beyond catch_up = "
                          f"{self.catch_up}", "", f"{noticed}; no reminder follows.",
                          f"`agentdigest run {self.report_id} --period {first.key}` sends one, if it is wanted."]
        if self.kind == "resolved":
            when = self.delivered_at
            out.append(f"sent at: {when.astimezone(tz).isoformat()} ({_z(when)})" if when else
                       "sent at: (not recorded)")
            out += [f"resolves: {what}" for what in self.resolves]
            return out + ["", f"{noticed}; nothing more to do. {history}."]
        return out + ["", f"{noticed}.", f"{history}; once fixed, "
                      f"`agentdigest run {self.report_id} --period {self.period.key}` delivers what is missing."]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1, "type": "alarm", "kind": self.kind, "report_id": self.report_id,
            "period": self.period.as_dict(),
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "failures": [{"channel": c, "recipient": r, "error": e} for c, r, e in self.failures],
            **({"periods": [p.key for p in self.passed[:366]], "period_count": len(self.passed),
                "catch_up": self.catch_up} if self.kind == "passed_over" else {}),
            **({"delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
                "resolves": list(self.resolves)} if self.kind == "resolved" else {}),
            "generated_at": datetime.now(timezone.utc).isoformat(),
        }


def span(periods: Sequence[Period]) -> str:
    """``2026-W44`` or ``2026-W44 to 2026-W46 (3 weeks)``."""
    if len(periods) == 1:
        return periods[0].key
    return f"{periods[0].key} to {periods[-1].key} ({len(periods)} {periods[0].kind}s)"


def _z(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def artifacts(alarm: Alarm, settings: Any) -> dict[str, bytes]:
    """The alarm as the files channels read: message.eml, slack.json, report.json and report.txt."""
    text = "\n".join(alarm.lines()) + "\n"
    message = EmailMessage()
    sender = settings.from_ if isinstance(settings, EmailChannel) else "agentdigest@localhost"
    message["From"] = sender
    message["To"] = ", ".join(settings.to) if isinstance(settings, EmailChannel) else "alarms@localhost"
    message["Subject"] = alarm.subject
    message["Date"] = formatdate(localtime=False)
    message["X-Agentdigest-Alarm"] = alarm.kind
    message.set_content(text)
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    slack = {"text": alarm.subject,
             "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"```{escaped[:2900]}```"}}]}
    return {
        "message.eml": bytes(message),
        "slack.json": json.dumps(slack).encode(),
        "report.json": json.dumps(alarm.as_json(), indent=2).encode(),
        "report.txt": text.encode(),
    }


def recipient(kind: Kind, target: str) -> str:
    """The ledger recipient of one target of an alarm: its kind, followed by the target when the channel has
    several (an email alarm channel's addresses: ``late:oncall@example.com``), so each is sent once."""
    return f"{kind}:{target}" if target else kind


def parse_recipient(key: str) -> tuple[str, str]:
    """(kind, target) of an alarm row's recipient, the inverse of :func:`recipient`: ``late`` -> (late, ""),
    ``late:a@example.com`` -> (late, a@example.com)."""
    kind, _, target = key.partition(":")
    return kind, target


def notify(config: Config, ledger: Any, alarm: Alarm, *, owner: str, archive: Path,
           only: Collection[str] | None = None, said: set[tuple[str, ...]] | None = None) -> str:
    """Send ``alarm`` to ``[alarms] channel`` once per target (ledger-claimed); returns sent, skipped, failed,
    refused (every target left was refused for good, and is not tried), paused (a late or failed alarm about a
    report paused with ``enabled = false``: nobody is waiting for it) or off. ``only``: the targets to tell (a
    resolved notice goes to those that got the alarm it answers), every target of the channel without it.

    Each target of the channel (each address of an email channel) is claimed on its own, as a report's are:
    one recipient refused for now is tried again by the next pass, alone, and never sends the others a second copy
    (found in an audit: the alarm was one row, and every recipient got it again). Every send is also noted
    in the archive's alarm log, from which a new or reset ledger learns it, as it learns a report's sends
    (found in an audit: a scheduler whose ledger was deleted sent the same alarm again). A target refused for good
    is not tried again for a day, or until the alarm's settings change (found in an audit: an address refused with
    550 was tried again, and an ``alarm_failed`` line logged, at every `run --due` from cron)."""
    name = config.alarms.channel
    if not name:
        return "off"
    if alarm.kind != "resolved" and not _enabled(config, alarm.report_id):
        return "paused"
    settings = config.channels[name]
    ledger_channel = f"alarm:{name}"
    secrets = secret_values(settings)
    try:
        channel = make_channel(name, settings)
        files = artifacts(alarm, settings)
        targets = [t for t in channel.targets(files) if only is None or t in only]
        # a relay answering 451 was retried in silence for up to the alarm channel's whole retry budget
        say_retrying(channel, f"the '{alarm.kind}' alarm for {alarm.report_id} {alarm.period.key} via {name}",
                     secrets, log)
    except Exception as exc:  # an alarm must never take the scheduler down with it; nothing was claimed
        _failed(alarm, name, mask_text(f"{type(exc).__name__}: {exc}", secrets))
        return "failed"
    rows = {row["recipient"]: row for row in ledger.deliveries(alarm.report_id, alarm.period.key)
            if row["kind"] == "alarm" and row["channel"] == ledger_channel}
    keys = [recipient(alarm.kind, t) for t in targets]
    # Sent to every target already (every later pass while the period is late): no archive read, no claims.
    if not targets or all((rows.get(k) or {}).get("sent_at") for k in keys) or (
            targets != [""] and _sent_whole(rows.get(alarm.kind))):
        return "skipped"
    _restore(ledger, alarm, ledger_channel, keys, rows, archive)
    under = alarm_fingerprint(config)
    refused = _refused(ledger, alarm, ledger_channel, under)
    claims = {}
    not_tried = {t: refused[t] for t in targets if t in refused and not (rows.get(recipient(alarm.kind, t)) or {})
                 .get("sent_at")}
    for target in (t for t in targets if t not in refused):
        claim = ledger.claim(alarm.report_id, alarm.period.key, ledger_channel, recipient(alarm.kind, target),
                             owner=owner, lease_seconds=lease_seconds(settings), kind="alarm")
        if claim is not None:
            claims[target] = claim
    if not_tried:
        _not_tried(alarm, name, not_tried, said)
    if not claims:
        return "refused" if not_tried else "skipped"
    # As a report's delivery runs it: every claimed target failed (a ChannelFailure), or a bug, is a result each,
    # one that may have arrived too (found in an audit: a copy of this turned it into a refusal for good)
    receipt = attempt(channel, Delivery(ALARM_REPORT_ID, f"{alarm.report_id}.{alarm.period.key}.{alarm.kind}",
                                        files, tuple(claims)), secrets)
    results = {r.target: r for r in receipt.results}
    sent = [t for t in claims if (r := results.get(t)) is not None and r.state == "sent"]
    _log_sends(archive, alarm, ledger_channel, {t: results[t].provider_id for t in sent})
    errors = []
    for target, claim in claims.items():
        result = results.get(target) or TargetResult(target, "failed", error=f"{name} reported nothing for {target!r}",
                                                     retryable=True)
        if result.state == "sent":
            ledger.mark_sent(claim, result.provider_id)
            continue
        error = mask_text(result.error or "failed", secrets)
        # retry_later: an alarm that may have arrived goes again at the next pass, as a report does (found in an
        # audit: it was refused for good, and no pass tried it for a day)
        ledger.mark_failed(claim, error, result.retry_later, under=under)
        errors.append(error)
    if sent:
        log.warning("sent the '%s' alarm for %s %s via %s%s", alarm.kind, alarm.report_id, alarm.periods, name,
                    f" to {', '.join(sent)}" if any(sent) else "",
                    extra={"event": "alarm_sent", "report": alarm.report_id, "period": alarm.period.key,
                           "channel": name, "kind": alarm.kind})
    if errors:
        _failed(alarm, name, "; ".join(errors))
        return "failed"
    return "sent"


def _enabled(config: Config, report_id: str) -> bool:
    """Whether the report is scheduled (not paused); one no longer in the config counts as scheduled, as before."""
    return next((r.enabled for r in config.reports if r.id == report_id), True)


def _refused(ledger: Any, alarm: Alarm, ledger_channel: str, under: str) -> dict[str, str]:
    """The alarm channel's targets refused for good in this period (refusals.py), with the refusal's error. By
    target, whichever kind of alarm was refused: an address refused the 'failed' alarm would refuse the 'late' one."""
    rows = refused_for_good(ledger, alarm.report_id, alarm.period.key, under, kind="alarm").get(ledger_channel, {})
    return {parse_recipient(key)[1]: error for key, error in rows.items()}


def _sent_whole(row: dict[str, Any] | None) -> bool:
    """Whether the alarm went to the whole channel as one row (recipient its kind alone), as every alarm did
    before each target had its own: an email alarm channel's recipients got it then, and do not again."""
    return row is not None and bool(row["sent_at"] or (row["state"] == "sending" and not row["lease_expired"]))


def _restore(ledger: Any, alarm: Alarm, ledger_channel: str, keys: list[str], rows: dict[str, dict[str, Any]],
             archive: Path) -> None:
    """Teach the ledger the sends of this alarm that the archive's alarm log records and it does not know (a
    new or reset ledger, a send it failed to record), so they are not sent again. An unreadable log is said,
    and the alarm is sent (at least once)."""
    try:
        recorded = [s for s in recorded_alarms(archive, alarm.report_id, alarm.period.key)
                    if s["channel"] == ledger_channel and s["recipient"] in keys
                    and not (rows.get(s["recipient"]) or {}).get("sent_at")]
    except ArchiveError as exc:
        log.warning("%s", exc)
        return
    if recorded and ledger.restore_sent(alarm.report_id, alarm.period.key, recorded, kind="alarm",
                                        note="restored from the archive (the ledger had no record of this alarm)"):
        log.warning("%s %s: the ledger had no record of the '%s' alarm that the archive's alarm log records (a new or "
                    "reset ledger?); recorded it from the archive, and it is not sent again", alarm.report_id,
                    alarm.period.key, alarm.kind)


def _log_sends(archive: Path, alarm: Alarm, ledger_channel: str, sent: dict[str, str | None]) -> None:
    """Note the sends in the archive's alarm log before the ledger (a ledger that fails to record them, or is
    replaced, then learns them from it); an archive that cannot be written is said, and the alarm stands."""
    if not sent:
        return
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        mark_alarmed(archive, alarm.report_id, alarm.period.key, [
            {"channel": ledger_channel, "recipient": recipient(alarm.kind, t), "sent_at": at, "provider_id": pid,
             **({"about": alarm.about} if alarm.about else {})} for t, pid in sent.items()])
    except ArchiveError as exc:
        log.error("%s %s: the '%s' alarm was sent, but the archive's alarm log could not be written (%s); the "
                  "ledger records it", alarm.report_id, alarm.period.key, alarm.kind, exc)


def _not_tried(alarm: Alarm, name: str, refused: dict[str, str], said: set[tuple[str, ...]] | None) -> None:
    # INFO, not ERROR: the refusal itself was logged (alarm_failed); the scheduler's log shows this line, a quiet
    # `run --due` from cron does not. ``said`` (the scheduler's, for the life of its process): the skips logged
    # already, not logged again (an operator review: the alarm check at every 30 s heartbeat logged it each time,
    # 2880 lines a day for one address)
    for target, error in refused.items():
        if said is not None:
            if (told := (alarm.report_id, alarm.period.key, alarm.kind, name, target, error)) in said:
                continue
            said.add(told)
        log.info("the '%s' alarm for %s %s is not sent via %s%s: refused for good before (%s); tried again a day "
                 "after that refusal, or when [alarms] or that channel's settings change", alarm.kind,
                 alarm.report_id, alarm.period.key, name, f" to {target}" if target else "", error,
                 extra={"event": "alarm_not_tried", "report": alarm.report_id, "period": alarm.period.key,
                        "channel": name, "recipient": target or None, "kind": alarm.kind, "error": error})


def _failed(alarm: Alarm, name: str, error: str) -> None:
    log.error("the '%s' alarm for %s %s could not be sent via %s: %s", alarm.kind, alarm.report_id,
              alarm.periods, name, error,
              extra={"event": "alarm_failed", "report": alarm.report_id, "period": alarm.period.key,
                     "channel": name, "error": error})
