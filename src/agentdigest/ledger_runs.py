"""The ledger's record of runs: which report periods ran and how each ended, the scheduler's heartbeats, and
the history of runs and deliveries that ``history`` shows. :class:`ledger.Ledger` adds the deliveries' claims.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select

from .ledger_db import LedgerDatabase, utc_now
from .ledger_schema import MAX_ERROR, deliveries, heartbeats, runs
from .masking import mask_text
from .owners import has_exited


#: a scheduler's heartbeat row is deleted once it has been silent this long (stopped, killed, its host gone): each
#: process ever started has a row of its own, and a running one rewrites its row every 30 s
HEARTBEAT_KEEP = timedelta(days=30)

_ABANDONED = "its process exited before the run was closed (killed, crashed, or the ledger unreachable at its end)"


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat() if value else None


def clip_error(error: str | None) -> str | None:
    """An error as the ledger keeps it: secrets masked, clipped to ``MAX_ERROR`` characters."""
    return None if error is None else mask_text(error)[:MAX_ERROR]


class LedgerRuns(LedgerDatabase):
    """Runs and heartbeats in a SQL database, and the history of runs and deliveries."""

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, report_id: str, period_key: str, trigger: str, owner: str | None = None) -> int:
        """Record that a run began; returns its id for :meth:`finish_run`.

        Runs of the same report that are still ``running`` although their process has exited on
        this machine (killed, crashed) are closed as ``abandoned`` first, so history never shows
        a dead run as running."""
        self.close_abandoned_runs(report_id)
        with self._write() as conn:
            result = conn.execute(runs.insert().values(
                report_id=report_id, period_key=period_key, trigger=trigger, state="running", started_at=utc_now(),
                owner=owner))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, state: str, error: str | None = None) -> None:
        """Close a run as ``done``, ``failed`` or ``interrupted`` (the error is masked)."""
        with self._write() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id, runs.c.state == "running").values(
                state=state, error=clip_error(error), finished_at=utc_now()))

    def record_before_data(self, report_id: str, period_key: str, owner: str | None, why: str) -> None:
        """Record that a scheduled pass left ``period_key`` out, ended before the report's first event: a closed run
        in state ``before_data`` (nothing computed or sent), so that no later pass, late alarm or ``check --missed``
        takes it up again (:meth:`before_data_periods`)."""
        now = utc_now()
        with self._write() as conn:
            conn.execute(runs.insert().values(report_id=report_id, period_key=period_key, trigger="due",
                                              state="before_data", error=clip_error(why), started_at=now,
                                              finished_at=now, owner=owner))

    def before_data_periods(self, report_id: str) -> set[str]:
        """The period keys of ``report_id`` a scheduled pass left out as ending before its first event."""
        r = runs.c
        with self._read() as conn:
            return set(conn.scalars(select(r.period_key).distinct().where(r.report_id == report_id,
                                                                         r.state == "before_data")))

    def _exited_owners(self, report_id: str | None) -> list[str]:
        """The owners of running runs whose process has exited on this machine."""
        r = runs.c
        query = select(r.owner).distinct().where(r.state == "running", r.owner.is_not(None))
        if report_id:
            query = query.where(r.report_id == report_id)
        with self._read() as conn:
            return [o for o in conn.scalars(query) if has_exited(o)]

    def close_abandoned_runs(self, report_id: str | None = None) -> int:
        """Close as ``abandoned`` the running runs whose process has exited on this machine; how many."""
        r = runs.c
        if not (gone := self._exited_owners(report_id)):
            return 0
        with self._write() as conn:
            return int(conn.execute(runs.update().where(r.state == "running", r.owner.in_(gone)).values(
                state="abandoned", finished_at=utc_now(), error=_ABANDONED)).rowcount)


    # -- heartbeats and history -------------------------------------------------------------

    def heartbeat(self, owner: str, info: dict[str, Any]) -> None:
        """Say that ``owner`` (a scheduler process) is alive, with what it is doing."""
        now = utc_now()
        payload = mask_text(json.dumps(info, default=str, sort_keys=True))
        stmt = self._insert(heartbeats).values(owner=owner, info=payload, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["owner"], set_={"info": payload, "updated_at": now})
        with self._write() as conn:
            conn.execute(stmt)

    def prune_heartbeats(self, keep: timedelta = HEARTBEAT_KEEP) -> int:
        """Delete the heartbeat rows not written for ``keep`` (schedulers stopped or silent since); how many.

        Found in an operator review: the rows of every scheduler process ever started were kept for ever, a new
        one at each restart, deploy or SIGKILL, and `history` counted them all ("5 of 1341 shown")."""
        with self._write() as conn:
            return int(conn.execute(delete(heartbeats).where(heartbeats.c.updated_at < utc_now() - keep)).rowcount)

    def heartbeats(self) -> list[dict[str, Any]]:
        """The last heartbeat of every owner, newest first."""
        with self._read() as conn:
            rows = conn.execute(select(heartbeats).order_by(heartbeats.c.updated_at.desc())).mappings().all()
        return [{"owner": r["owner"], "info": json.loads(r["info"]), "updated_at": _iso(r["updated_at"])} for r in rows]

    def history(self, report_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Runs and deliveries, newest first; each dict has ``kind`` = run | delivery | test | alarm.

        Runs whose process has exited on this machine are closed as ``abandoned`` first (a ledger opened
        read-only is not changed: they are shown so)."""
        gone = set(self._exited_owners(report_id)) if self.read_only else set()
        if not self.read_only:
            self.close_abandoned_runs(report_id)
        d = deliveries.c
        run_q = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        del_q = select(deliveries).order_by(d.updated_at.desc(), d.id.desc()).limit(limit)
        if report_id:
            run_q = run_q.where(runs.c.report_id == report_id)
            del_q = del_q.where(d.report_id == report_id)
        with self._read() as conn:
            run_rows = conn.execute(run_q).mappings().all()
            del_rows = conn.execute(del_q).mappings().all()
        now = utc_now()
        items = [{
            "kind": "run", "at": _iso(r["started_at"]), "report_id": r["report_id"], "period_key": r["period_key"],
            "channel": None, "recipient": None, "state": r["state"], "trigger": r["trigger"], "attempts": None,
            "error": r["error"], "provider_id": None, "id": r["id"], "finished_at": _iso(r["finished_at"]),
            "owner": r["owner"],
        } | ({"state": "abandoned", "error": _ABANDONED} if r["state"] == "running" and r["owner"] in gone else {})
            for r in run_rows] + [delivery_dict(r, now) for r in del_rows]
        items.sort(key=lambda item: item["at"] or "", reverse=True)
        return items[:limit]


def delivery_dict(row: Any, now: datetime) -> dict[str, Any]:
    """A delivery row as :meth:`LedgerRuns.history` and the ledger's delivery queries give it."""
    lease = row["lease_until"]
    return {
        "kind": {"period": "delivery"}.get(row["kind"], row["kind"]), "at": _iso(row["updated_at"]),
        "report_id": row["report_id"], "period_key": row["period_key"], "channel": row["channel"],
        "recipient": row["recipient"], "state": row["state"], "trigger": None, "attempts": row["attempts"],
        "sends": row["sends"], "error": row["last_error"], "retryable": row["retryable"],
        "provider_id": row["provider_id"], "owner": row["owner"], "lease_until": _iso(lease),
        "lease_expired": bool(row["state"] == "sending" and lease is not None and lease < now),
        "takeovers": row["takeovers"], "note": row["note"], "created_at": _iso(row["created_at"]),
        "sent_at": _iso(row["sent_at"]), "id": row["id"], "destination": row["destination"],
        "failed_under": row["failed_under"],
    }
