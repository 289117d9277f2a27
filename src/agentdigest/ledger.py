"""The ledger: which report periods ran, and which deliveries went out (SQLAlchemy 2 Core), in the
database that :class:`ledger_db.LedgerDatabase` opens (SQLite by default, PostgreSQL when several
machines share the work).

A delivery row exists per (report_id, period_key, channel, recipient, kind). ``kind`` is
``period`` for the real delivery, ``test`` for test sends and ``alarm`` for the missed-report alarms
about the period (channel ``alarm:<name>``, recipient the alarm's kind); neither of the last two ever
counts as the period's delivery.
A row is *claimed* by one conditional INSERT ... ON CONFLICT DO UPDATE ... WHERE, never by a
read followed by a write: of several racing senders exactly one gets the row back. A claim is a
lease; when its holder dies the lease runs out and the next claimer takes over (``takeovers``
counts it and ``note`` says from whom). A ``sent`` row is only claimed again with ``force``.

Times are stored as naive UTC and compared with this host's clock, so hosts sharing a
PostgreSQL ledger need synchronised clocks (NTP); leases are minutes, skew is seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update

from .ledger_db import utc_now
from .ledger_runs import LedgerRuns, clip_error, delivery_dict
from .ledger_schema import SCHEMA_VERSION, deliveries, engine_url, read_version, runs, sqlite_path
from .ledger_sqlite import write_problem
from .owners import this_process

@dataclass(frozen=True)
class Claim:
    """The right to send one delivery target until ``lease_until``."""

    id: int
    report_id: str
    period_key: str
    channel: str
    recipient: str
    owner: str
    token: str
    lease_until: datetime
    attempts: int
    took_over_from: str | None = None  # the note when this claim took over an expired one


def open_existing(url: str, *, read_only: bool = False) -> "Ledger | None":
    """The ledger when it exists (tables created by a run), else None: commands that only read it
    (``history``, ``check --missed``) must not create a database or its tables as a side effect.

    A SQLite ledger this user may read but not write (an operator looking at production's) is opened
    read-only (found in a crash audit: history failed on it), and so is a ledger of an older schema: reading
    it never upgrades it (found in an upgrade audit: a newer agentdigest's `history` upgraded a shared
    PostgreSQL ledger, and every older host's next run then refused it until that host was upgraded too).
    ``read_only`` (a dry run's) opens it read-only in any case: it reads what was sent and writes nothing."""
    version = read_version(url)
    if version is None:
        return None
    path = sqlite_path(engine_url(url)) if engine_url(url).startswith("sqlite") else ""
    return Ledger(url, read_only=read_only or version < SCHEMA_VERSION
                  or (bool(path) and bool(write_problem(Path(path)))))


_TOOK_OVER = "took over the expired claim of "  # the note of a claim that took over, before the owner


def _parse_time(value: Any) -> datetime | None:
    """An ISO time from another record (naive UTC, as stored); None when it is not one."""
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at


class Ledger(LedgerRuns):
    """Runs, deliveries and heartbeats in a SQL database, safe to share between processes."""

    # -- deliveries -----------------------------------------------------------------------

    def claim(self, report_id: str, period_key: str, channel: str, recipient: str = "", *,
              owner: str, lease_seconds: float, force: bool = False, kind: str = "period") -> Claim | None:
        """Claim one delivery target for ``lease_seconds``; None when it is sent (and not forced) or leased.

        One statement decides: a new row is inserted, or an existing one is taken over only
        when it is not ``sent`` (unless ``force``) and no live lease holds it. ``kind="alarm"`` claims an
        alarm about the period, which never counts as its delivery.
        """
        now = utc_now()
        lease_until = now + timedelta(seconds=lease_seconds)
        token = uuid.uuid4().hex
        d = deliveries.c
        stmt = self._insert(deliveries).values(
            report_id=report_id, period_key=period_key, channel=channel, recipient=recipient, kind=kind,
            state="sending", attempts=1, sends=0, owner=owner, claim_token=token, lease_until=lease_until,
            takeovers=0, created_at=now, updated_at=now)
        free = or_(d.state != "sending", d.lease_until.is_(None), d.lease_until < now)  # no live lease
        # Once delivered (sent_at set) a target stays delivered, even when a forced resend fails.
        claimable = free if force else and_(free, d.state != "sent", d.sent_at.is_(None))
        was_abandoned = d.state == "sending"
        stmt = stmt.on_conflict_do_update(
            index_elements=["report_id", "period_key", "channel", "recipient", "kind"],
            set_={
                "state": "sending", "attempts": d.attempts + 1, "owner": owner, "claim_token": token,
                "lease_until": lease_until, "updated_at": now,
                "takeovers": d.takeovers + case((was_abandoned, 1), else_=0),
                # The note describes this claim only, so it tells the caller whether it took over.
                "note": case((was_abandoned, literal(_TOOK_OVER) + func.coalesce(d.owner, "?")), else_=None),
            },
            where=claimable,
        ).returning(d.id, d.attempts, d.takeovers, d.note, d.claim_token)
        with self._write() as conn:
            row = conn.execute(stmt).first()
            if row is not None and row.claim_token == token and (row.note or "").startswith(_TOOK_OVER):
                # Its run is gone too (a crash audit: one killed in a container, or on another machine, stayed
                # `running` in history for ever): the lease was as long as its delivery could take.
                r = runs.c
                conn.execute(runs.update().where(r.state == "running", r.owner == row.note[len(_TOOK_OVER):]).values(
                    state="abandoned", finished_at=now,
                    error=f"its claim ran out and was taken over by {owner} (killed, lost or hung)"))
        if row is None or row.claim_token != token:
            return None
        return Claim(int(row.id), report_id, period_key, channel, recipient, owner, token, lease_until,
                     int(row.attempts), row.note)

    def add_attempt(self, claims: list[Claim]) -> None:
        """Count one more attempt on claimed targets, as it starts (see BaseChannel.on_retry)."""
        d = deliveries.c
        with self._write() as conn:
            for claim in claims:
                conn.execute(update(deliveries).where(d.id == claim.id, d.claim_token == claim.token)
                             .values(attempts=d.attempts + 1, updated_at=utc_now()))

    def note(self, claim: Claim, note: str) -> None:
        """Replace the note of a claimed row (it says how the claim was taken)."""
        d = deliveries.c
        with self._write() as conn:
            conn.execute(update(deliveries).where(d.id == claim.id, d.claim_token == claim.token).values(note=note))

    def expire_lease(self, row_id: int, owner: str) -> bool:
        """End the lease of ``owner`` on a ``sending`` row at once (its process is known to be gone)."""
        d = deliveries.c
        with self._write() as conn:
            return bool(conn.execute(update(deliveries).where(d.id == row_id, d.state == "sending", d.owner == owner)
                                     .values(lease_until=utc_now() - timedelta(seconds=1))).rowcount)

    def mark_sent(self, claim: Claim, provider_id: str | None, more_attempts: int = 0, *,
                  destination: str | None = None) -> bool:
        """Record a sent target. False when the lease had run out and someone else holds the claim
        (the row is still marked sent: the message did go out, and a note says it may be duplicated).

        ``more_attempts``: attempts the channel made under this claim not counted yet (see add_attempt).
        ``destination``: the fingerprint of where it went (renames.py), never the destination itself."""
        now = utc_now()
        d = deliveries.c
        values = dict(state="sent", provider_id=provider_id, sent_at=now, updated_at=now, sends=d.sends + 1,
                      attempts=d.attempts + more_attempts, destination=destination)
        with self._write() as conn:
            done = conn.execute(update(deliveries).where(d.id == claim.id, d.claim_token == claim.token).values(
                **values, lease_until=None, last_error=None, retryable=None)).rowcount
            if done:
                return True
            conn.execute(update(deliveries).where(d.id == claim.id).values(
                **values, note=f"sent by {claim.owner} after its lease expired; it may have been sent twice"))
            return False

    def mark_failed(self, claim: Claim, error: str, retryable: bool, more_attempts: int = 0, *,
                    provider_id: str | None = None, under: str | None = None) -> bool:
        """Record a failed target (error masked), with the id the provider may know it by when it may have
        arrived, and ``under``, the fingerprint of the settings it failed under (refusals.py). False when the
        claim was lost to another sender."""
        now = utc_now()
        d = deliveries.c
        known = {"provider_id": provider_id} if provider_id else {}  # an earlier send's id stays otherwise
        with self._write() as conn:
            return bool(conn.execute(update(deliveries).where(d.id == claim.id, d.claim_token == claim.token,
                                                              d.state == "sending").values(
                state="failed", last_error=clip_error(error), retryable=retryable, lease_until=None, updated_at=now,
                attempts=d.attempts + more_attempts, failed_under=under, **known)).rowcount)

    def record_test(self, report_id: str, period_key: str, channel: str, recipient: str, *, state: str,
                    provider_id: str | None = None, error: str | None = None) -> None:
        """Record a test send; it is kept apart (kind='test') and never counts as the period's delivery."""
        now = utc_now()
        d = deliveries.c
        sent = state == "sent"
        stmt = self._insert(deliveries).values(
            report_id=report_id, period_key=period_key, channel=channel, recipient=recipient, kind="test",
            state=state, attempts=1, sends=int(sent), last_error=clip_error(error), provider_id=provider_id,
            takeovers=0, created_at=now, updated_at=now, sent_at=now if sent else None)
        stmt = stmt.on_conflict_do_update(
            index_elements=["report_id", "period_key", "channel", "recipient", "kind"],
            set_={"state": state, "attempts": d.attempts + 1, "sends": d.sends + int(sent), "last_error": clip_error(error),
                  "provider_id": provider_id, "updated_at": now, "sent_at": now if sent else d.sent_at})
        with self._write() as conn:
            conn.execute(stmt)

    def restore_sent(self, report_id: str, period_key: str, sends: list[dict[str, Any]], note: str,
                     kind: str = "period") -> int:
        """Record targets as sent that this ledger has no sent row for, from another record of the sends (the
        archive's, when the ledger was new or reset); how many rows it wrote. A row a run has claimed since
        (``sending``) is left to that run while its lease lasts (one whose sender failed to record the send
        has run out, or was ended by :meth:`expire_lease`), unless this process holds it: its send is over.
        ``kind="alarm"`` restores alarm sends. A send's ``destination`` (a fingerprint, see renames.py) is kept
        when it has one."""
        now = utc_now()
        d = deliveries.c
        written = 0
        free = [d.state != "sending", d.lease_until.is_(None), d.lease_until < now]
        if kind == "period":
            # Its own claim, left `sending` when the ledger failed (went down) just as the channel accepted the
            # send: this process delivers a report's period one run at a time, so that send is over, and the
            # archive records it. Found with a real server stopped during SMTP DATA: the scheduler's retry left the
            # row to its own live lease, called the send "being sent by" itself and did not count the period as
            # sent until that lease ran out (29 minutes for an email), while saying it had restored it.
            free.append(d.owner.startswith(this_process(), autoescape=True))
        with self._write() as conn:
            for send in sends:
                at = _parse_time(send.get("sent_at")) or now
                stmt = self._insert(deliveries).values(
                    report_id=report_id, period_key=period_key, channel=send["channel"], recipient=send["recipient"],
                    kind=kind, state="sent", attempts=0, sends=1, provider_id=send.get("provider_id"),
                    takeovers=0, note=note, created_at=now, updated_at=now, sent_at=at,
                    destination=send.get("destination"))
                stmt = stmt.on_conflict_do_update(
                    index_elements=["report_id", "period_key", "channel", "recipient", "kind"],
                    # sends + 1: the row (claimed, never recorded sent) counts the send it learns, as an insert does
                    set_={"state": "sent", "sent_at": at, "provider_id": send.get("provider_id"), "note": note,
                          "updated_at": now, "last_error": None, "retryable": None, "lease_until": None,
                          "sends": d.sends + 1, "destination": send.get("destination")},
                    where=and_(d.sent_at.is_(None), or_(*free))).returning(d.id)
                written += conn.execute(stmt).first() is not None
        return written

    def delivery_state(self, report_id: str, period_key: str, channel: str, recipient: str = "") -> str | None:
        """The state of one period delivery target, or None when it was never claimed."""
        d = deliveries.c
        with self._read() as conn:
            return conn.scalar(select(d.state).where(
                d.report_id == report_id, d.period_key == period_key, d.channel == channel,
                d.recipient == recipient, d.kind == "period"))

    def delivery(self, report_id: str, period_key: str, channel: str, recipient: str = "") -> dict[str, Any] | None:
        """One period delivery target's row (see :meth:`history` for the keys), or None."""
        d = deliveries.c
        with self._read() as conn:
            row = conn.execute(select(deliveries).where(
                d.report_id == report_id, d.period_key == period_key, d.channel == channel,
                d.recipient == recipient, d.kind == "period")).mappings().first()
        return delivery_dict(row, utc_now()) if row else None

    def is_period_sent(self, report_id: str, period_key: str, channels: list[str],
                       targets: Callable[[str], Collection[str] | None] | None = None) -> bool:
        """True when every channel has delivery rows for the period and every row was delivered.

        A row counts once it has been sent, even if a later forced resend failed. A channel with
        one failed recipient is not sent. Vacuously true for an empty channel list.
        ``targets`` gives a channel's targets under the current config (asked only of a channel with a
        row never sent, None when it cannot tell): such a channel is sent once each of them is, so a row of
        a target no longer among them (a refused recipient taken out of the config) does not keep the period
        unsent, and the address that replaced it still gets the period.
        """
        d = deliveries.c
        with self._read() as conn:
            rows = conn.execute(select(d.channel, d.recipient, d.sent_at.is_not(None)).where(
                d.report_id == report_id, d.period_key == period_key, d.kind == "period",
                d.channel.in_(channels))).all()
        delivered: dict[str, dict[str, bool]] = {}
        for channel, recipient, sent in rows:
            delivered.setdefault(channel, {})[recipient] = bool(sent)
        for channel in channels:
            found = delivered.get(channel, {})
            if targets is not None and not all(found.values()) and (current := targets(channel)) is not None:
                found = {r: found.get(r, False) for r in current}
            if not found or not all(found.values()):
                return False
        return True

    def tried_periods(self, report_id: str) -> tuple[list[str], list[str]]:
        """The period keys of ``report_id`` that some channel got, and those with a delivery that was tried
        and never sent (failed, or left ``sending`` by a sender that died) or a scheduled run that ended
        before any channel got it (its source could not be read); test sends not counted.

        Found in an operations audit: a scheduled run that failed before delivering (the events' database
        down) left no delivery row, so once the next period came due the failed one was forgotten: not
        retried, no longer late, and said to have "come due while no pass ran"."""
        d, r = deliveries.c, runs.c
        with self._read() as conn:
            rows = conn.execute(select(d.period_key, d.sent_at.is_not(None)).distinct().where(
                d.report_id == report_id, d.kind == "period")).all()
            failed = conn.execute(select(r.period_key).distinct().where(
                r.report_id == report_id, r.trigger == "due", r.state.in_(("failed", "interrupted", "abandoned")))).all()
        sent = {key for key, was_sent in rows if was_sent}
        unsent = {key for key, was_sent in rows if not was_sent} | ({key for (key,) in failed} - sent)
        return sorted(sent), sorted(unsent)

    def deliveries(self, report_id: str, period_key: str) -> list[dict[str, Any]]:
        """Every delivery row (period and test) of one report period."""
        d = deliveries.c
        with self._read() as conn:
            rows = conn.execute(select(deliveries).where(d.report_id == report_id, d.period_key == period_key)
                                .order_by(d.kind, d.channel, d.recipient)).mappings().all()
        now = utc_now()
        return [delivery_dict(row, now) for row in rows]

    def alarm_rows(self, report_ids: Collection[str], since: datetime) -> list[tuple[str, str, str, str, bool, bool]]:
        """The alarm rows of ``report_ids`` changed since ``since``, in one query for every report and period (the
        methods above read one period): (report, period, channel, recipient, sent, whether some channel got the
        period)."""
        d, p = deliveries.c, deliveries.alias("p").c
        delivered = select(p.id).where(p.report_id == d.report_id, p.period_key == d.period_key, p.kind == "period",
                                       p.sent_at.is_not(None)).exists()
        query = select(d.report_id, d.period_key, d.channel, d.recipient, d.sent_at.is_not(None), delivered).where(
            d.kind == "alarm", d.report_id.in_(list(report_ids)),
            d.updated_at >= since.astimezone(timezone.utc).replace(tzinfo=None))  # stored naive UTC
        with self._read() as conn:
            return [tuple(row) for row in conn.execute(query).all()]
