"""A period's targets as the config names them now, asked before a delivery: which targets a channel has
(what :meth:`Ledger.is_period_sent` needs to tell a period sent), and whether a delivery that skips the targets
refused for good would have any left to try (a run that would send nothing is not computed).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from .archive import read_artifacts
from .channels import make_channel
from .config import Config, ReportConfig
from .delivery import DeliveryResult, not_tried
from .ledger import Ledger
from .refusals import refused_among, settings_fingerprint


def current_targets(config: Config, report_cfg: ReportConfig, period_key: str,
                    archive: Path) -> Callable[[str], list[str] | None]:
    """A channel of the report's targets for the period under the config as it is now (what
    :meth:`Ledger.is_period_sent` asks); None when nothing is archived to tell them by (a Slack PDF
    target needs the PDF). The archive is read once, on the first question."""
    @cache
    def archived() -> dict[str, bytes]:
        return read_artifacts(Path(archive), report_cfg.id, period_key)

    def targets(name: str) -> list[str] | None:
        if name not in config.channels or not archived():
            return None
        return make_channel(name, config.channels[name]).targets(archived())

    return targets


def refused_only(config: Config, report_cfg: ReportConfig, period_key: str, *, ledger: Ledger,
                 archive: Path) -> list[DeliveryResult] | None:
    """What a delivery skipping the targets refused for good (``skip_refused``) would come to when it has nothing
    to try: every target of the period under the config as it is now is sent or refused for good under these
    settings. None when one could be tried, or its targets cannot be told (nothing archived).

    Found in a re-check: a period whose only recipient was refused was computed, rendered and recorded as a new
    run at every `run --due` from cron, for as long as it stayed due (a year), to send nothing."""
    rows = ledger.deliveries(report_cfg.id, period_key)
    refused = refused_among(rows, settings_fingerprint(config, report_cfg))
    if not refused:
        return None
    sent = {(row["channel"], row["recipient"]): row for row in rows if row["kind"] == "delivery" and row["sent_at"]}
    targets = current_targets(config, report_cfg, period_key, archive)
    results: list[DeliveryResult] = []
    for name in report_cfg.channels:
        if (current := targets(name)) is None:
            return None
        for target in current:
            if (row := sent.get((name, target))) is not None:
                results.append(DeliveryResult(name, target, "skipped_sent", provider_id=row["provider_id"]))
            elif (earlier := refused.get(name, {}).get(target)) is not None:
                results.append(not_tried(name, target, earlier))
            else:
                return None
    return results
