"""Delivering an archived report to its channels, exactly once per (report, period, channel, target).

For each channel of the report: claim every target in the ledger (a conditional write), hand the
claimed ones to the channel, record what its receipt says. Targets already sent are skipped,
targets leased by another sender are left to it. One channel's failure never stops the others;
the caller (the runner) exits 1 when any result failed.

Everything is read from the archive, so a resend never recomputes. A test send (``test_to``)
goes to one address or one channel, is marked as a test, and is recorded apart from the period's
delivery (kind='test'), so it never stops or replaces the real one.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .archive import mark_delivered, read_artifacts
from .channels import Channel, Delivery, Receipt, TargetResult, make_channel
from .channels.base import arrived_maybe
from .channel_settings import listed, shown
from .config import Config, ReportConfig, command
from .errors import ArchiveError, DeliveryError, InputError, interruption
from .interrupts import shielded
from .logs import IN_OUTCOME
from .ledger import Ledger
from .ledger_schema import LedgerError
from .masking import mask_text, secret_values
from .owners import has_exited, owner_id
from .preflight import lease_seconds, test_channel
from .refusals import refused_for_good, settings_fingerprint
from .renames import (RemovedSends, carried_note, fingerprint, places, resolved_place, sends_of_removed_channels,
                      sent_place)

State = Literal["sent", "failed", "skipped_sent", "claimed_elsewhere", "test"]
_logger = logging.getLogger("agentdigest.delivery")


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one target of one channel in this call."""

    channel: str
    recipient: str
    state: State
    error: str | None = None
    provider_id: str | None = None
    attempts: int = 0
    #: a failure the channel calls transient (a 4xx, a refused connection): trying again may succeed; a
    #: permanent one (a 550 recipient, Slack's channel_not_found) fails again until the config changes.
    #: Transient unless the channel said otherwise: a failure taken for permanent is not retried by the scheduler.
    #: A send that may have arrived (not retried within its run) is transient here: the next pass sends it again.
    retryable: bool = True
    #: not tried: refused for good before in the period, under the same settings (refusals.py); that error
    refused_before: str | None = None
    #: of a send: the fingerprints of where it went (renames.places), for the archive's send log
    destination: str | None = None

    @property
    def failed(self) -> bool:
        return self.state == "failed"


def deliver_report(config: Config, report_cfg: ReportConfig, period_key: str, *, ledger: Ledger, archive: Path,
                   force: bool = False, only_channel: str | None = None, test_to: str | None = None,
                   owner: str | None = None, log: Any = None, skip_refused: bool = False,
                   stop: threading.Event | None = None) -> list[DeliveryResult]:
    """Deliver the archived artifacts of (report, period) to the report's channels.

    ``force`` re-sends targets already sent (``resend``); ``only_channel`` limits to one of the
    report's channels; ``test_to`` (an address or a channel name) makes a test send instead.
    ``skip_refused`` (the scheduler's retry of a failed pass, ``run --due``) does not try again a target whose last
    failure in the period was permanent and happened under the same settings (refusals.py): it is reported
    failed as it was, and its ledger row is left as it is. ``stop`` (the scheduler's): set, it ends a channel's
    wait between retries, and the delivery stops as `run` does on Ctrl-C (its claims recorded failed, transient).
    """
    log = log or _logger
    artifacts = read_artifacts(Path(archive), report_cfg.id, period_key)
    if not artifacts:
        raise InputError(f"nothing archived for {report_cfg.id} {period_key} under {archive} "
                         f"(run `{command(config, f'run {report_cfg.id} --period {period_key}')}` first)")
    if test_to:
        return _test_send(config, report_cfg, period_key, artifacts, test_to, ledger=ledger, log=log)
    names = list(report_cfg.channels)
    if only_channel:
        if only_channel not in names:
            raise InputError(f"report {report_cfg.id!r} has no channel {shown(only_channel)} "
                             f"(its channels: {listed(names)})")
        names = [only_channel]
    owner = owner or owner_id()
    results: list[DeliveryResult] = []
    # Every channel's secrets, not only the delivering one's: a server may echo any of them back.
    secrets = all_secrets(config)
    # A channel renamed or replaced in the config does not send again what the old one sent (renames.py).
    removed = RemovedSends() if force else sends_of_removed_channels(config, ledger, report_cfg.id, period_key)
    # Where each channel delivers, as a fingerprint: kept with its sends, never the destination (a secret URL).
    channels = {name: make_channel(name, config.channels[name]) for name in names}
    for channel in channels.values():
        if stop is not None and hasattr(channel, "stop"):  # BaseChannel's retries; a channel of a user's own may not
            channel.stop = stop
    destinations = {name: fingerprint(channel) for name, channel in channels.items()}
    # The settings this delivery's failures happen under, kept with them: a later pass skips a target refused
    # for good only under the same ones (refusals.py).
    under = settings_fingerprint(config, report_cfg)
    # Found in a delivery audit: each retry of a pass with a 550 recipient and a 451 one sent to both, the 550 one
    # refused the same way every time.
    refused = refused_for_good(ledger, report_cfg.id, period_key, under) if skip_refused and not force else {}
    unlogged: list[ArchiveError] = []
    try:
        for name in names:
            done = _deliver_channel(channels[name], config.channels[name], report_cfg.id, period_key, artifacts,
                                    ledger=ledger, owner=owner, force=force, log=log, secrets=secrets,
                                    removed=removed, destination=destinations[name], refused=refused.get(name, {}),
                                    under=under)
            results += done
            _log_sends(Path(archive), report_cfg.id, period_key, done, unlogged, destinations)
    except BaseException as exc:
        sent_before = getattr(exc, "sent_before", [])
        results += sent_before
        _log_sends(Path(archive), report_cfg.id, period_key, sent_before, unlogged, destinations)
        raise
    finally:
        if unlogged:
            # Found in a crash audit: a full disk here turned a delivered run into "cannot write" (exit 1,
            # no channel lines), inviting a --force that sends it again. The ledger has the sends. Said on
            # this module's logger: the scheduler's quieter delivery log would hide it.
            _logger.error("%s %s: sent, but the archive's send log could not be written (%s); the ledger "
                          "records the sends", report_cfg.id, period_key, unlogged[0])
    return results


def not_tried(channel: str, target: str, earlier: str) -> DeliveryResult:
    """A target not tried again: refused for good before in the period, with that error (refusals.py)."""
    return DeliveryResult(channel, target, "failed", retryable=False, refused_before=earlier,
                          error=f"not tried again, refused for good before: {earlier}")


def _log_sends(archive: Path, report_id: str, period_key: str, results: list[DeliveryResult],
               unlogged: list[ArchiveError], destinations: dict[str, str | None]) -> None:
    """Append the sends among ``results`` to the period's send log (the archive now holds what was sent: it
    is kept so), as soon as their channel is done: a process killed at the next channel has logged them (a
    crash audit), and a ledger lost later learns them. A failure to write it is added to ``unlogged``.
    ``destinations``: each channel's destination fingerprint (renames.py), logged when it has one."""
    if not (sent := [r for r in results if r.state == "sent"]):
        return
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        mark_delivered(archive, report_id, period_key, [
            {"channel": r.channel, "recipient": r.recipient, "sent_at": at, "provider_id": r.provider_id}
            | ({"destination": where} if (where := r.destination or destinations.get(r.channel)) else {})
            for r in sent])
    except ArchiveError as exc:
        unlogged.append(exc)


def all_secrets(config: Config) -> list[str]:
    """The secret values of every configured channel (what :func:`mask_text` hides)."""
    return [s for settings in config.channels.values() for s in secret_values(settings)]


def _deliver_channel(channel: Channel, settings: Any, report_id: str, period_key: str, artifacts: dict[str, bytes], *,
                     ledger: Ledger, owner: str, force: bool, log: Any, secrets: list[str], removed: RemovedSends,
                     destination: str | None, refused: dict[str, str], under: str | None = None) -> list[DeliveryResult]:
    name = channel.name
    targets = channel.targets(artifacts)
    claims: dict[str, Any] = {}
    renamed = removed.of(channel, targets, destination)
    if destination is not None and removed.elsewhere(targets, renamed) and hasattr(channel, "resolve_place"):
        # A removed channel sent the period somewhere else, or here spelled otherwise (a Slack channel's #name
        # and its id: found in a delivery audit, the renamed channel sent the period again)
        destination = places(destination, resolved_place(channel, f"{report_id} {period_key} -> {name}", secrets))
        renamed = removed.of(channel, targets, destination)
    try:
        return _claim_and_send(channel, targets, claims, report_id, period_key, artifacts, ledger=ledger, owner=owner,
                               lease=lease_seconds(settings), force=force, log=log, secrets=secrets,
                               renamed=renamed, destination=destination, refused=refused, under=under)
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C or SIGTERM mid-send: release the claims
        why = (f"{interruption(exc)} while delivering; it may have reached {name} before that, "
               "and the next run sends it again")
        # A channel stopped between retries says who already got it (an email's accepted recipients): those
        # are sent, not "may have reached" (a re-check: they got the report again from the next run).
        delivered = getattr(exc, "delivered", None) or {}
        with shielded():  # a second Ctrl-C must not leave these rows claimed
            for target, claim in claims.items():
                if target in delivered:
                    ledger.mark_sent(claim, delivered[target].provider_id,
                                     destination=sent_place(channel, destination, delivered[target]))
                else:
                    ledger.mark_failed(claim, why, retryable=True)
        # ... and the archive's send log lists them (deliver_report writes it on the way out)
        exc.sent_before = [DeliveryResult(name, t, "sent", provider_id=r.provider_id,  # type: ignore[union-attr]
                                          destination=sent_place(channel, destination, r))
                           for t in claims if (r := delivered.get(t)) is not None]
        if claims:
            log.error("%s %s -> %s: %s", report_id, period_key, name, why)
        raise


def _claim_and_send(channel: Channel, targets: list[str], claims: dict[str, Any], report_id: str, period_key: str,
                    artifacts: dict[str, bytes], *, ledger: Ledger, owner: str, lease: float, force: bool, log: Any,
                    secrets: list[str], renamed: dict[str, dict[str, Any]],
                    destination: str | None = None, refused: dict[str, str] | None = None,
                    under: str | None = None) -> list[DeliveryResult]:
    """Claim the targets (filling ``claims`` as it goes, for the caller's clean-up), send, record.

    ``renamed``: this channel's targets that a channel no longer in the config sent the period to (or this one,
    to the address written differently), with the row of that send (renames.py); such a target is recorded as
    sent, not claimed. ``destination``: the channel's
    destination fingerprint, recorded with its sends. ``refused``: targets not to try again, with the permanent
    error each last failed with (:func:`refused_for_good`); neither claimed nor sent, they are reported failed.
    ``under``: the fingerprint of the settings, recorded with each failure."""
    name = channel.name
    skipped: dict[str, DeliveryResult] = {}
    carried: dict[str, list[str]] = {}  # old channel -> its targets recorded as sent for this one
    for target in targets:
        # Written only where this channel has no sent row and no live claim: otherwise the claim below decides.
        if (old := renamed.get(target)) and ledger.restore_sent(report_id, period_key, [{
                "channel": name, "recipient": target, "sent_at": old["sent_at"], "provider_id": old["provider_id"],
                "destination": places(destination, old.get("destination"))}], note=carried_note(old, name)):
            skipped[target] = DeliveryResult(name, target, "skipped_sent", provider_id=old["provider_id"])
            if old["channel"] == name:  # its own send, to the address as it was written then
                _logger.warning("%s %s -> %s %s: already sent to %s (the same address, written differently); "
                                "recorded as sent, not sent again", report_id, period_key, name, target, old["recipient"])
            else:
                carried.setdefault(old["channel"], []).append(target)
            continue
        if refused and (earlier := refused.get(target)) is not None:
            skipped[target] = not_tried(name, target, earlier)
            log.info("%s %s -> %s%s: refused for good before, not tried again", report_id, period_key,
                     name, f" {target}" if target else "")
            continue
        claim, row = _claim(ledger, report_id, period_key, name, target, owner=owner, lease=lease, force=force)
        if claim is not None:
            claims[target] = claim
            if claim.took_over_from:
                log.warning("%s %s -> %s %s: %s", report_id, period_key, name, target or "", claim.took_over_from)
            continue
        if row.get("sent_at"):
            skipped[target] = DeliveryResult(name, target, "skipped_sent", provider_id=row.get("provider_id"))
            log.info("%s %s -> %s%s: already sent, skipped", report_id, period_key, name, f" {target}" if target else "")
            continue
        holder = (f"being sent by {row.get('owner') or 'another process'} "
                  f"(its claim runs until {(row.get('lease_until') or '?')[:19].replace('T', ' ')} UTC; "
                  "if it does not arrive, run again after that)")
        skipped[target] = DeliveryResult(name, target, "claimed_elsewhere", error=holder)
        log.warning("%s %s -> %s%s: %s", report_id, period_key, name, f" {target}" if target else "", holder)
    for old_channel, sent_there in carried.items():
        # On this module's logger: the scheduler's quieter delivery log would hide it, and it is news.
        _logger.warning("%s %s -> %s: %salready sent as %s (a channel no longer in the config); recorded as sent, "
                        "not sent again", report_id, period_key, name, _which(sent_there), old_channel)
    if not claims:
        return [skipped[t] for t in targets]

    counted = dict.fromkeys(claims, 1)  # attempts already in the ledger: the claim counted the first

    def count_retry(targets: Sequence[str] | None = None) -> None:
        retried = [t for t in (claims if targets is None else targets) if t in claims]
        ledger.add_attempt([claims[t] for t in retried])
        for t in retried:
            counted[t] += 1

    if hasattr(channel, "on_retry"):
        channel.on_retry = count_retry
    say_retrying(channel, f"{report_id} {period_key} -> {name}", secrets)
    receipt = attempt(channel, Delivery(report_id, period_key, artifacts, tuple(claims), resend=force), secrets)
    by_target = {r.target: r for r in receipt.results}
    done: dict[str, DeliveryResult] = {}
    for target, claim in claims.items():
        # Nothing said of it (a channel's bug) is no refusal: transient, as a channel that crashes (the scheduler
        # retries only a pass with a transient failure)
        result = by_target.get(target) or TargetResult(target, "failed", error=f"{name} reported nothing for {target!r}",
                                                       retryable=True)
        attempts = result.attempts or receipt.attempts
        uncounted = max(attempts - counted[target], 0)  # a channel that does not call on_retry
        label = f"{report_id} {period_key} -> {name}" + (f" {target}" if target else "")
        if result.state == "sent":
            went = sent_place(channel, destination, result)
            try:
                ledger.mark_sent(claim, result.provider_id, uncounted, destination=went)
            except LedgerError as exc:
                # Found in a crash audit: the next run sent it again. What went is noted in the archive's send
                # log (deliver_report writes it on the way out), and the next run learns it from there.
                error = LedgerError(f"{exc}; {label} was sent but could not be recorded as sent in the ledger; "
                                    "the archive's send log records it, so the next run does not send it again")
                error.sent_before = [d for d in done.values() if d.state == "sent"] + [  # type: ignore[attr-defined]
                    DeliveryResult(name, t, "sent", provider_id=r.provider_id,
                                   destination=sent_place(channel, destination, r))
                    for t in claims if (r := by_target.get(t)) is not None and r.state == "sent" and t not in done]
                raise error from None
            done[target] = DeliveryResult(name, target, "sent", provider_id=result.provider_id, attempts=attempts,
                                          destination=went)
            log.info("%s: sent (%d attempt%s)", label, attempts, "" if attempts == 1 else "s")
        else:
            error = mask_text(result.error or "failed", secrets)
            # A send that may have arrived is not retried within the run, but it is no refusal: the ledger calls it
            # retryable, as the scheduler does, or a retry of the pass would skip it (refused_for_good)
            ledger.mark_failed(claim, error, result.retry_later, uncounted, provider_id=result.provider_id,
                               under=under)
            done[target] = DeliveryResult(name, target, "failed", error=error, attempts=attempts,
                                          provider_id=result.provider_id, retryable=result.retry_later)
            log.error("%s: %s", label, error, extra=IN_OUTCOME)
    return [done.get(t) or skipped[t] for t in targets]


def say_retrying(channel: Channel, label: str, secrets: list[str], logger: logging.Logger | None = None) -> None:
    """Have ``channel`` log one warning when it first waits to retry, with that first error, masked, and its
    settings' retry_budget.

    Without it a relay answering 451 was retried in silence for up to the whole budget (5 minutes by
    default), the log saying nothing until it went or gave up. Said on this module's logger unless ``logger``
    is given (an alarm's, on the scheduler's): the scheduler's quieter delivery log would hide it. Once per
    delivery: the retries after it add nothing."""
    if not hasattr(channel, "on_wait"):  # a channel of its own making, without BaseChannel's retries
        return
    budget = getattr(getattr(channel, "settings", None), "retry_budget", None)
    said = False

    def on_wait(error: DeliveryError, seconds: float) -> None:
        nonlocal said
        if said:
            return
        said = True
        how_long = "within its retry budget" if budget is None else f"for up to {budget:g}s (its retry_budget)"
        (logger or _logger).warning("%s: %s; retrying %s", label, mask_text(str(error), secrets), how_long)

    channel.on_wait = on_wait  # type: ignore[attr-defined]


def _which(targets: list[str]) -> str:
    """The targets of a warning line, with a space after them: addresses, Slack's PDF; nothing when the only
    one is a channel's single target ''."""
    named = [t for t in targets if t]
    if named and "" in targets:
        named.insert(0, "the message")
    return ", ".join(named) + " " if named else ""


def _claim(ledger: Ledger, report_id: str, period_key: str, channel: str, target: str, *, owner: str,
           lease: float, force: bool) -> tuple[Any, dict[str, Any]]:
    """Claim one target; a claim whose process has exited on this machine is taken over at once.

    Returns (the claim, {}) or (None, the row that stopped it)."""
    gone = None
    for _ in range(2):
        claim = ledger.claim(report_id, period_key, channel, target, owner=owner, lease_seconds=lease, force=force)
        if claim is not None and gone:
            claim = replace(claim, took_over_from=f"took over the claim of {gone}, whose process had exited")
            ledger.note(claim, claim.took_over_from)
        if claim is not None:
            return claim, {}
        row = ledger.delivery(report_id, period_key, channel, target) or {}
        if row.get("state") != "sending" or not has_exited(row.get("owner")):
            break
        gone = row["owner"]
        ledger.expire_lease(row["id"], gone)
    return None, row


def attempt(channel: Channel, delivery: Delivery, secrets: list[str]) -> Receipt:
    """Run the channel; turn any failure, even a bug, into per-target failures (never an escape)."""
    try:
        return channel.deliver(delivery)
    except DeliveryError as exc:
        error, retryable, attempts = mask_text(str(exc), secrets), exc.retryable, getattr(exc, "attempts", 1)
        provider_id, arrived = getattr(exc, "provider_id", None), arrived_maybe(exc)
    except Exception as exc:  # one broken channel must not stop the others
        # The traceback is for --verbose; it goes through the mask like every other message.
        _logger.debug("channel %s raised:\n%s", channel.name,
                      mask_text("".join(traceback.format_exception(exc)), secrets))
        error, retryable, attempts = mask_text(f"unexpected {type(exc).__name__}: {exc}", secrets), True, 1
        provider_id, arrived = None, False
    return Receipt(tuple(TargetResult(t, "failed", provider_id, error=error, retryable=retryable,
                                      may_have_arrived=arrived) for t in delivery.targets), attempts=attempts)


def _test_send(config: Config, report_cfg: ReportConfig, period_key: str, artifacts: dict[str, bytes],
               test_to: str, *, ledger: Ledger, log: Any) -> list[DeliveryResult]:
    """Send to one channel or one address, marked as a test and recorded apart from the period."""
    name, settings = test_channel(config, report_cfg, test_to)
    channel = make_channel(name, settings)
    targets = tuple(channel.targets(artifacts))
    secrets = all_secrets(config)
    say_retrying(channel, f"{report_cfg.id} {period_key} -> test via {name}", secrets)
    receipt = attempt(channel, Delivery(report_cfg.id, period_key, artifacts, targets, test=True), secrets)
    results = []
    for r in receipt.results:
        state = "sent" if r.state == "sent" else "failed"
        error = None if r.error is None else mask_text(r.error, secrets)
        ledger.record_test(report_cfg.id, period_key, name, r.target, state=state, provider_id=r.provider_id, error=error)
        results.append(DeliveryResult(name, r.target, "test" if state == "sent" else "failed", error=error,
                                      provider_id=r.provider_id, attempts=receipt.attempts,
                                      retryable=r.retry_later))
        # a failed one is an ERROR line too, as a period's (found in an exit-code audit: exit 1, nothing on stderr)
        log.log(logging.ERROR if state == "failed" else logging.INFO, "%s %s -> test via %s %s: %s", report_cfg.id,
                period_key, name, r.target, (error or "failed") if state == "failed" else "sent",
                extra=IN_OUTCOME if state == "failed" else None)
    return results
