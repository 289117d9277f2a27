"""Sends made through an email channel no longer in the config, which the channel replacing it does not repeat.

Deliveries are recorded by channel name, so a renamed email channel (``[channels.mail]`` to
``[channels.leadership]``), or a new one taking over an old one's addresses, sent the latest due period again
to every address that already had it (a reported limitation). Now an address of a report's email channel that
the ledger records as sent the period (kind ``period``, sent) through a channel the config no longer has is
recorded as sent for the new channel too, with a note naming the old one, and not sent again
(``delivery._claim_and_send``); an address the old channel did not have gets the period.

- Addresses are compared whole and case-insensitively, as an email channel de-duplicates its own list.
- A channel still in the config is another channel, not a renamed one: an address in two configured
  channels gets the report from each.
- Channels without addresses (Slack, webhook, outbox: their ledger recipient is '') have nothing to match;
  renamed, they send again.
- A reset ledger learns the old channel's sends from the archive's send log first (the runner's
  ``_restore_sends``), so they count too. ``resend``, ``--force`` and test sends never ask.
"""

from __future__ import annotations

from typing import Any

from .config import Config


def renamed_note(old_channel: str) -> str:
    """The ledger note (shown by ``history``) of a send carried over from ``old_channel``."""
    return f"sent as {old_channel} (a channel no longer in the config)"


def sends_of_removed_channels(config: Config, ledger: Any, report_id: str, period_key: str) -> dict[str, dict[str, Any]]:
    """The period's sends to an address through a channel no longer in the config: the ledger row (see
    ``Ledger.deliveries``) of each such send, by lower-cased address (the first channel's, by name)."""
    found: dict[str, dict[str, Any]] = {}
    for row in ledger.deliveries(report_id, period_key):
        if row["kind"] == "delivery" and row["sent_at"] and row["channel"] not in config.channels \
                and "@" in row["recipient"]:
            found.setdefault(row["recipient"].lower(), row)
    return found
