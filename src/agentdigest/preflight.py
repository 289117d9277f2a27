"""What is settled before a delivery: how long a claim on a target lasts (its lease), whether a run's
``--format`` list renders every file the report's channels send, whether the archive still holds them, and
where a ``--test-to`` send goes."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Container, Iterable
from email.utils import parseaddr
from typing import Any

from .channel_settings import email_address
from .channels import Channel, make_channel
from .channels.email import DATA_END_TIMEOUT, bare
from .archive import artifact_names, report_dir
from .config import Config, EmailChannel, ReportConfig, command
from .errors import ArchiveError, InputError


def lease_seconds(settings: Any) -> float:
    """How long a claim must outlive the slowest possible delivery on this channel.

    The retry budget is only checked between attempts and one attempt makes several network
    calls, each allowed ``timeout`` seconds; the margin keeps a slow sender from losing its claim.
    An email's answer to its final "." is waited for up to DATA_END_TIMEOUT whatever ``timeout`` says
    (found in a delivery audit: a relay scanning for longer than the lease lost the sender its claim,
    and the next cron pass sent the report again).
    ``$AGENTDIGEST_LEASE_SECONDS`` overrides it (tests of crash takeover; see README, "Crashes").
    """
    override = os.environ.get("AGENTDIGEST_LEASE_SECONDS")
    if override:
        return float(override)
    answer = max(DATA_END_TIMEOUT - settings.timeout, 0.0) if isinstance(settings, EmailChannel) else 0.0
    return settings.retry_budget + 10 * settings.timeout + 60 + answer


def report_lease(config: Config, report: ReportConfig) -> float:
    """The longest lease of the report's channels: how long its delivery can take (0 without channels)."""
    return max((lease_seconds(config.channels[c]) for c in report.channels if c in config.channels), default=0.0)


def check_formats(config: Config, report_cfg: ReportConfig, formats: set[str] | None,
                  test_to: str | None = None) -> None:
    """Refuse a ``--format`` list that leaves out a file a channel of the report reads; nothing is
    computed then, rather than archiving a period no channel can be sent."""
    if formats is None:
        if test_to:
            test_channel(config, report_cfg, test_to)
        return
    from .archive import ARTIFACTS

    names = [test_channel(config, report_cfg, test_to)[0]] if test_to else list(report_cfg.channels)
    if lack := lacking(config, names, {ARTIFACTS[f] for f in formats}):
        name, channel, missing = lack
        by_file = {file: fmt for fmt, file in ARTIFACTS.items()}
        wanted = ",".join(sorted(formats | {by_file.get(f, f) for f in missing}))
        raise InputError(f"--format {','.join(sorted(formats))} leaves out {', '.join(missing)}, which channel "
                         f"{name!r} ({channel.type}) sends; use --format {wanted}, or --dry-run to render only")


def lacking(config: Config, names: Iterable[str], present: Container[str]) -> tuple[str, Channel, list[str]] | None:
    """The first of the channels ``names`` that sends a file not among ``present`` (archive file names): its
    name, the channel and the files it lacks; None when every one has what it sends."""
    for name in names:
        channel = make_channel(name, config.channels[name])
        if missing := [f for f in getattr(channel, "needs", lambda: ())() if f not in present]:
            return name, channel, missing
    return None


def test_channel(config: Config, report_cfg: ReportConfig, test_to: str) -> tuple[str, Any]:
    """The channel (and its settings) a ``--test-to`` send goes through; an InputError when there is none."""
    if test_to in config.channels:
        return test_to, config.channels[test_to]
    address = parseaddr(test_to)[1]
    if "@" not in address or any(c in test_to for c in "\r\n,;"):
        raise InputError(f"--test-to expects one email address or a channel name "
                         f"(channels: {', '.join(config.channels) or 'none'}), got {test_to!r}")
    try:
        address = bare(email_address(address))
    except ValueError as exc:
        raise InputError(f"--test-to: {exc}") from None
    # Prefer the report's own email channel: same relay and sender as the real delivery.
    names = [*report_cfg.channels, *config.channels]
    name = next((n for n in names if getattr(config.channels[n], "type", None) == "email"), None)
    if name is None:
        raise InputError(f"--test-to {test_to}: no email channel is configured to send it through")
    return name, config.channels[name].model_copy(update={"to": [address], "cc": [], "bcc": []})


def refuse_half_made(config: Config, report: ReportConfig, period_key: str, archive: Path, ledger: Any) -> None:
    """Refuse to deliver from an archive folder that lacks a file every one of the report's channels sends. Found
    in a storage audit: a folder removed between its write and the delivery (a clean-up job, a disk remounted)
    failed "nothing archived (run ... first)" as bad input, exit 2. Raised as an ArchiveError, so the run is
    recorded failed and a scheduled one stays due. A folder that lost only some files delivers what it can: each
    channel that lacks a file fails on its own, and one failing channel never blocks the others. Every channel
    counts, those that have the period too: a recipient added to one since is still sent to."""
    folder = report_dir(archive, report.id, period_key)
    present = artifact_names(folder)
    if not report.channels or any(lacking(config, [name], present) is None for name in report.channels):
        return
    rows = [row for row in ledger.deliveries(report.id, period_key) if row["kind"] == "delivery"]
    # named: the first channel that has not had the period, if one has not
    done = {row["channel"] for row in rows if row["sent_at"]} - {row["channel"] for row in rows if not row["sent_at"]}
    order = sorted(report.channels, key=lambda n: n in done)
    name, channel, missing = lacking(config, order, present)  # type: ignore[misc]
    if any(row["sent_at"] for row in rows):
        fix = (f"restore it, or `{command(config, f'run {report.id} --period {period_key} --force')}` "
               "renders it again and sends it to every channel")
    else:
        fix = "the next run archives the period again"
    raise ArchiveError(f"archive {archive}: {folder} has no {', '.join(missing)} (removed since it was written, "
                       f"or left out by --format?), which channel {name!r} ({channel.type}) sends; nothing was sent; "
                       f"{fix}")
