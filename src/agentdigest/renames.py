"""Sends made through a channel no longer in the config, which the channel replacing it does not repeat.

Deliveries are recorded by channel name, so a renamed channel (``[channels.mail]`` to ``[channels.leadership]``,
``[channels.slack]`` to ``[channels.team-slack]``), or a new one taking over an old one's addresses or
destination, sent the latest due period again (a reported limitation). Now a target of a report's channel that
the ledger records as sent the period (kind ``period``, sent) through a channel the config no longer has is
recorded as sent for the new channel too, with a note naming the old one, and not sent again
(``delivery._claim_and_send``):

- an email channel's address, when the old channel sent to that address; an address the old channel did not
  have gets the period. Addresses are compared whole and case-insensitively, as an email channel de-duplicates
  its own list.
- a Slack, webhook or outbox channel's target (``''``, or Slack's PDF ``file:report.pdf``), when the old
  channel sent the same target to the same destination: the same Slack webhook URL, the same Slack API URL,
  channel and bot token (bot mode: a channel of the token's workspace), the same webhook URL, the same outbox folder (:func:`fingerprint`). A Slack channel
  switched between webhook and bot mode, or pointed elsewhere, is another destination, and sends.
- a bot's channel by ``#name`` or by id is one place (found in a delivery audit: renamed and switched from
  ``#agent-reports`` to its ``C…``, it sent the period again). Slack answers a post with the channel's id
  (``TargetResult.place``) and the send keeps that spelling's fingerprint too (:func:`places`: a send's
  ``destination`` is up to two, space-separated); a ``#name`` replacing an id is looked up
  (``resolve_place``: conversations.list, scope channels:read) only when a removed channel sent the period
  somewhere else, and is sent the period (at least once) when it cannot be.

Destinations hold secrets (a webhook path is its key), so the ledger and the archive's send log keep only a
fingerprint of each send's destination (:func:`fingerprint`). Rows written before there were fingerprints
have none: such a channel, renamed, sends again, as it did then. A plug-in channel has a destination when it
defines ``destination()`` (see ``BaseChannel.destination``).

- A channel still in the config is another channel, not a renamed one: an address in two configured
  channels gets the report from each, and so does a destination. Its own send to an address now written
  differently (``Alice@Example.COM``, now ``alice@example.com``) is the same address: recorded as sent, with
  a note saying so (found in a delivery audit: a re-cased address got the period again).
- A reset ledger learns the old channel's sends (with their fingerprints) from the archive's send log first
  (``run_records.restore_sends``), so they count too. ``resend``, ``--force`` and test sends never ask.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .channels import Channel, make_channel
from .config import Config, EmailChannel, ReportConfig
from .masking import mask_text

_logger = logging.getLogger("agentdigest.delivery")


def renamed_note(old_channel: str) -> str:
    """The ledger note (shown by ``history``) of a send carried over from ``old_channel``."""
    return f"sent as {old_channel} (a channel no longer in the config)"


def fingerprint(channel: Channel, place: str | None = None) -> str | None:
    """A fingerprint of where ``channel`` delivers (24 hex digits of a SHA-256 over its type and its
    canonical destination), or None when it has no destination to compare (email: its addresses are).
    ``place``: where a send went as the service named it (``TargetResult.place``: Slack's channel id)."""
    where = getattr(channel, "destination", None)  # optional for a plug-in channel
    destination = (where(place) if place else where()) if callable(where) else None
    if destination is None:
        return None
    return hashlib.sha256(f"{channel.type}\n{destination}".encode()).hexdigest()[:24]


#: fingerprints one send's ``destination`` keeps (the ledger's column holds 64 characters)
MOST_PLACES = 2


def places(*fingerprints: str | None) -> str | None:
    """The ``destination`` of a send: the fingerprints of the spellings of its one place, space-separated,
    first ones first, without repeats (its config's, then as the service named it: a Slack ``#name`` and its
    id), at most :data:`MOST_PLACES`; None without any. Each value may itself be such a list."""
    found = list(dict.fromkeys(f for value in fingerprints if value for f in value.split()))
    return " ".join(found[:MOST_PLACES]) or None


@dataclass
class RemovedSends:
    """The period's sends through channels no longer in the config (ledger rows, see ``Ledger.deliveries``)."""

    by_address: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased address -> row
    #: (channel, lower-cased address) -> the row of a send through a channel still in the config: an address
    #: of that channel written differently now (Alice@Example.COM, now alice@example.com) is the same address
    by_channel_address: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    by_destination: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (fingerprint, target)

    def of(self, channel: Channel, targets: list[str], destination: str | None) -> dict[str, dict[str, Any]]:
        """The targets of ``channel`` (with ``destination``, its fingerprints: :func:`places`) that a removed
        channel sent the period to, with the row of that send."""
        if isinstance(channel.settings, EmailChannel):
            return {t: row for t in targets if (row := self.by_address.get(t.lower()) or self._respelled(channel, t))}
        if destination is None:
            return {}
        return {t: row for t in targets
                if (row := next((r for f in destination.split() if (r := self.by_destination.get((f, t)))), None))}

    def elsewhere(self, targets: list[str], found: dict[str, dict[str, Any]]) -> bool:
        """Whether a removed channel sent one of ``targets`` not in ``found`` somewhere (a fingerprint that is
        not this channel's): the same place spelled otherwise, perhaps (a Slack ``#name`` and its id)."""
        return any(target in targets and target not in found for _, target in self.by_destination)

    def _respelled(self, channel: Channel, target: str) -> dict[str, Any] | None:
        row = self.by_channel_address.get((channel.name, target.lower()))
        return row if row is not None and row["recipient"] != target else None


def carried_note(row: dict[str, Any], channel: str) -> str:
    """The ledger note of a send carried over to ``channel`` from ``row``: a removed channel's, or its own to
    the same address written differently."""
    if row["channel"] == channel:
        return f"sent to {row['recipient']} (the same address, written differently)"
    return renamed_note(row["channel"])


def sends_of_removed_channels(config: Config, ledger: Any, report_id: str, period_key: str) -> RemovedSends:
    """The period's sends through channels no longer in the config: by address (email) and by destination
    fingerprint and target (the first channel's, by name, when several match)."""
    found = RemovedSends()
    for row in ledger.deliveries(report_id, period_key):
        if row["kind"] != "delivery" or not row["sent_at"]:
            continue
        if row["channel"] in config.channels:
            if "@" in row["recipient"]:
                found.by_channel_address.setdefault((row["channel"], row["recipient"].lower()), row)
            continue
        for place in (row.get("destination") or "").split():
            found.by_destination.setdefault((place, row["recipient"]), row)
        if "@" in row["recipient"]:
            found.by_address.setdefault(row["recipient"].lower(), row)
    return found


def sent_place(channel: Channel, destination: str | None, result: Any) -> str | None:
    """The ``destination`` of a send: the channel's fingerprints, and where the service says it went
    (``TargetResult.place``: a Slack ``#name``'s id), so that either spelling of it is the same place later."""
    place = getattr(result, "place", None)
    return places(destination, fingerprint(channel, place)) if destination is not None and place else destination


def resolved_place(channel: Any, label: str, secrets: list[str]) -> str | None:
    """The fingerprint of ``channel``'s place as the service names it (its ``resolve_place()``: a Slack
    ``#name``'s id), None when it cannot tell: the period is sent then (at least once), and a line says so."""
    try:
        place = channel.resolve_place()
    except Exception as exc:  # noqa: BLE001 - not knowing where is no failure to deliver
        _logger.warning("%s: cannot tell whether it is where a channel no longer in the config sent the period "
                        "(%s); sending it", label, mask_text(str(exc), secrets))
        return None
    return fingerprint(channel, place) if place else None


def sent_before_renaming(config: Config, ledger: Any, report: ReportConfig, period_key: str,
                         targets: Callable[[str], Collection[str] | None]) -> bool:
    """Whether each channel of ``report`` has the period, counting as sent a target that a channel no longer in
    the config sent to the same address or place: the next pass only records those (``delivery._claim_and_send``),
    so such a period is not late (found in a delivery audit: ``check --missed`` called a renamed channel's week
    late until a pass ran). ``targets``: a channel's targets now (``period_targets.current_targets``). Reads the ledger
    only and asks no service: a ``#name`` that replaced an id is the same place once a pass has looked it up."""
    removed = sends_of_removed_channels(config, ledger, report.id, period_key)
    rows = {(r["channel"], r["recipient"]) for r in ledger.deliveries(report.id, period_key)
            if r["kind"] == "delivery" and r["sent_at"]}
    for name in report.channels:
        if ledger.is_period_sent(report.id, period_key, [name], targets):
            continue
        wanted = targets(name) if name in config.channels else None
        if not wanted:
            return False
        channel = make_channel(name, config.channels[name])
        carried = removed.of(channel, list(wanted), fingerprint(channel))
        if any((name, t) not in rows and t not in carried for t in wanted):
            return False
    return True
