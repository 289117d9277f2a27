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
from dataclasses import dataclass, field
from typing import Any

from .channels import Channel
from .config import Config, EmailChannel


def renamed_note(old_channel: str) -> str:
    """The ledger note (shown by ``history``) of a send carried over from ``old_channel``."""
    return f"sent as {old_channel} (a channel no longer in the config)"


def fingerprint(channel: Channel) -> str | None:
    """A fingerprint of where ``channel`` delivers (24 hex digits of a SHA-256 over its type and its
    canonical destination), or None when it has no destination to compare (email: its addresses are)."""
    where = getattr(channel, "destination", None)  # optional for a plug-in channel
    destination = where() if callable(where) else None
    if destination is None:
        return None
    return hashlib.sha256(f"{channel.type}\n{destination}".encode()).hexdigest()[:24]


@dataclass
class RemovedSends:
    """The period's sends through channels no longer in the config (ledger rows, see ``Ledger.deliveries``)."""

    by_address: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased address -> row
    #: (channel, lower-cased address) -> the row of a send through a channel still in the config: an address
    #: of that channel written differently now (Alice@Example.COM, now alice@example.com) is the same address
    by_channel_address: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    by_destination: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (fingerprint, target)

    def of(self, channel: Channel, targets: list[str], destination: str | None) -> dict[str, dict[str, Any]]:
        """The targets of ``channel`` (with ``destination``, its fingerprint) that a removed channel sent
        the period to, with the row of that send."""
        if isinstance(channel.settings, EmailChannel):
            return {t: row for t in targets if (row := self.by_address.get(t.lower()) or self._respelled(channel, t))}
        if destination is None:
            return {}
        return {t: row for t in targets if (row := self.by_destination.get((destination, t)))}

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
        if row.get("destination"):
            found.by_destination.setdefault((row["destination"], row["recipient"]), row)
        if "@" in row["recipient"]:
            found.by_address.setdefault(row["recipient"].lower(), row)
    return found
