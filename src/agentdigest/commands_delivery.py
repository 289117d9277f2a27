"""The delivery commands behind the CLI: ``history``, ``resend`` and the channel part of ``check``.

Plain functions taking the config and the command's options and returning an exit code, so the
typer CLI only wires arguments. Output goes to the given rich console (a default one otherwise);
nothing here prints a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .channels import CheckResult, make_channel
from .alarm_resolved import resolve_periods
from .archive import read_artifacts
from .channel_settings import listed, shown
from .config import Config, ReportConfig, command
from .masking import mask_text, mask_url
from .delivery import DeliveryResult, all_secrets, deliver_report
from .preflight import lacking
from .errors import AgentDigestError, InputError
from .folders import no_space
from .interrupts import shielded
from .owners import owner_id
from .periods import parse_period
from .run_records import sent_somewhere, stopped_run
from .runner import holding
from .ledger import Ledger, open_existing
from .ledger_schema import LedgerError

_STYLES = {"sent": "green", "done": "green", "test": "cyan", "failed": "bold red", "sending": "yellow",
           "running": "yellow", "interrupted": "bold red", "abandoned": "bold red", "skipped_sent": "dim",
           "claimed_elsewhere": "yellow", "before_data": "dim"}


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False)


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else ""


#: The rows ``history`` shows without ``--limit``
HISTORY_ROWS = 50


def show_history(config: Config, *, report: str | None = None, limit: int | None = None,
                 console: Console | None = None) -> int:
    """``agentdigest history [--report ID] [--limit N]``: runs and deliveries, newest first (``limit`` rows, by
    default :data:`HISTORY_ROWS`)."""
    limit = HISTORY_ROWS if limit is None else limit
    console = _console(console)
    ledger = open_existing(config.ledger.url)  # reading history never creates the ledger
    try:
        rows = _history_rows(ledger, report, limit) if ledger else []
        note = ledger.read_note if ledger else ""
        beats = _heartbeats(ledger) if ledger else []
    finally:
        if ledger:
            ledger.close()
    if not rows and report and report not in {r.id for r in config.reports}:
        known = ", ".join(r.id for r in config.reports) or "none"
        raise InputError(f"--report: no report {report!r} in the config or the ledger (reports: {known})")
    if not rows:
        what = f"for {report} " if report else ""
        console.print(f"No runs or deliveries recorded {what}in {mask_url(config.ledger.url)} yet.")
        _print_schedulers(console, beats)
        return 0
    table = Table(title=f"History ({mask_url(config.ledger.url)})", title_justify="left")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("report / period", overflow="fold")
    table.add_column("what", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("detail", overflow="fold", ratio=1)
    for row in rows:
        if row["kind"] == "run":
            what = f"run ({row['trigger']})" if row.get("runs", 1) == 1 else f"{row['runs']} runs ({row['trigger']})"
        else:
            what = (row.get("channel") or "") + (f" {row['recipient']}" if row.get("recipient") else "")
            what += " (test)" if row["kind"] == "test" else ""
        state = row["state"] + (" (lease expired)" if row.get("lease_expired") else "")
        span = f"from {_when(row['first_at'])} to {_when(row['at'])}" if row.get("runs", 1) > 1 else None
        detail = "; ".join(part for part in (span, row.get("error"), row.get("provider_id"), _takeovers(row)) if part)
        # Text, not markup: a recorded "check [archive] path" was shown as "check  path" (a crash audit)
        table.add_row(_when(row["at"]), Text(f"{row['report_id']}\n{row['period_key']}"), Text(what),
                      Text(state, style=_STYLES.get(row["state"], "")),
                      "" if row.get("attempts") is None else str(row["attempts"]), Text(detail))
    console.print(table)
    _print_schedulers(console, beats)
    if note:  # a ledger read without its -wal file: say what may be missing
        console.print(f"Note: {note}.", markup=False, soft_wrap=True)
    return 0


#: the most rows ``history`` reads to fill its --limit once repeated runs are shown as one
_MOST_READ = 100_000


def _history_rows(ledger: Ledger, report: str | None, limit: int) -> list[dict]:
    """The ledger's history, newest first, a period's runs that ended the same way one after another shown as one
    row (``runs``: how many; ``first_at``: the oldest one's start), ``limit`` rows of it.

    Found in an operator review: `run --due` from cron records a failed run every 5 minutes while a relay is down
    (288 a day), and `history` showed 50 rows of the same failure, the other reports' sends pushed out of sight.
    More rows are read until ``limit`` complete rows are known (only the oldest row of what was read may go on)."""
    fetch = max(limit, 1) * 4
    while True:
        rows = ledger.history(report, fetch)
        shown = _collapsed(rows)
        if len(shown) > limit or len(rows) < fetch or fetch >= _MOST_READ:
            return shown[:limit]
        fetch = min(fetch * 4, _MOST_READ)


def _collapsed(rows: list[dict]) -> list[dict]:
    """``rows`` (newest first) with each run that ended as the run after it of the same report period did (its
    trigger, state and error; rows of other periods and deliveries between them do not count) folded into it."""
    out: list[dict] = []
    last: dict[tuple, dict] = {}  # (report, period) -> the row standing for its latest runs
    for row in rows:
        if row["kind"] != "run":
            out.append(row)
            continue
        key, same = (row["report_id"], row["period_key"]), (row["trigger"], row["state"], row["error"])
        group = last.get(key)
        if row["state"] != "running" and group is not None and group["same"] == same:
            group["runs"] += 1
            group["first_at"] = row["at"]
            continue
        last[key] = row = dict(row, runs=1, first_at=row["at"], same=same)
        out.append(row)
    return out


#: how many schedulers ``history`` names: each process has its own heartbeat row (kept 30 days after its last)
SCHEDULERS_SHOWN = 5
#: a scheduler writes a heartbeat every 30 s: one that says it runs but is older than this has stopped writing
_SILENT_SECONDS = 120


def _heartbeats(ledger: Ledger) -> list[dict]:
    """The schedulers' last heartbeats, newest first; none from a ledger that cannot give them (never fails)."""
    try:
        return ledger.heartbeats()
    except LedgerError:  # history shows what it can
        return []


def _print_schedulers(console: Console, beats: list[dict]) -> None:
    """After the history, the last heartbeat of each scheduler sharing the ledger (found in an operator audit: no
    command showed them, so whether a scheduler ran, and where, was read from its host's process list)."""
    if not beats:
        return
    now = datetime.now(timezone.utc)
    infos = [(beat, beat["info"] if isinstance(beat.get("info"), dict) else {}) for beat in beats]
    # Those that did not say they stopped first (newest first, as the ledger gives them): a silent one is news
    infos.sort(key=lambda pair: pair[1].get("state") != "running")
    more = f"; {SCHEDULERS_SHOWN} of {len(beats)} shown" if len(beats) > SCHEDULERS_SHOWN else ""
    console.print(f"Schedulers, by their last heartbeat (UTC, running ones first{more}):", markup=False,
                  soft_wrap=True)
    for beat, info in infos[:SCHEDULERS_SHOWN]:
        host, pid = info.get("host") or beat["owner"].split(":")[0], info.get("pid") or "?"
        state = info.get("state") or "?"
        line = f"  {host} pid {pid}: {state} at {_when(beat['updated_at'])}"
        if state == "running":
            silent = (now - datetime.fromisoformat(beat["updated_at"])).total_seconds() if beat["updated_at"] else 0
            if silent > _SILENT_SECONDS:  # killed, or its host down: it never wrote "stopped"
                line += f"; no heartbeat for {_duration(silent)} (stopped or hung?)"
            elif info.get("busy"):
                line += f"; running {', '.join(info['busy'])}"
        console.print(line, markup=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return (f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.0f} h" if minutes < 48 * 60
            else f"{minutes / 1440:.0f} days")


def _takeovers(row: dict) -> str | None:
    """What history says about a delivery another sender took over (or a run's process)."""
    if row["kind"] == "run":
        return f"by {row['owner']}" if row.get("owner") and row["state"] in ("running", "abandoned") else None
    if not row.get("takeovers") and not row.get("note"):
        return None
    count = row.get("takeovers") or 0
    return "; ".join(filter(None, [f"taken over {count} time{'s' if count != 1 else ''}" if count else None,
                                   row.get("note")]))


def resend(config: Config, report_id: str, period: str, *, channel: str | None = None,
           console: Console | None = None, now: datetime | None = None) -> int:
    """``agentdigest resend REPORT PERIOD [--channel NAME]``: deliver again from the archive, no recompute."""
    console = _console(console)
    report = config.report(report_id)
    try:  # a key of the report's own period kind, never a path
        parsed = parse_period(report.period, period, report.timezone)
    except InputError as exc:
        raise InputError(f"PERIOD: {str(exc).removeprefix('--period ')}") from None
    # The archive of a period that has not ended holds a preview: sent, it would count as the period's
    # report and the complete one would never go out.
    if parsed.end_utc > (now or datetime.now(timezone.utc)):
        raise InputError(f"PERIOD: {report.id} {parsed.key} has not ended yet (it ends {parsed.end:%Y-%m-%d %H:%M} "
                         f"{report.timezone}): no report of it was sent, so there is nothing to resend")
    period = parsed.key
    # Mistakes are refused before the ledger records a run: a typo is not a failed resend.
    if channel is not None and channel not in report.channels:
        raise InputError(f"--channel: report {report.id!r} has no channel {shown(channel)} "
                         f"(its channels: {listed(report.channels)})")
    if not (archived := read_artifacts(config.archive.path, report.id, period)):
        if _delivered(config, report.id, period):  # a crash audit: "run it first" only said "already sent"
            again = command(config, f"run {report.id} --period {period} --force")
            raise InputError(f"nothing archived for {report.id} {period} under {config.archive.path}, though it "
                             f"was delivered (was its folder moved or removed? check [archive] path); `{again}` "
                             "recomputes it and sends it to every channel again")
        raise InputError(f"nothing archived for {report.id} {period} under {config.archive.path} "
                         f"(run `{command(config, f'run {report.id} --period {period}')}` first)")
    _refuse_incomplete(config, report, period, archived, [channel] if channel else report.channels)
    ledger = Ledger(config.ledger.url)
    try:
        owner = owner_id()
        run_id = ledger.start_run(report.id, period, "resend", owner)
        try:
            with holding(config, config.archive.path, report, parsed, ledger):  # not while a run rewrites or sends it
                results = deliver_report(config, report, period, ledger=ledger, archive=config.archive.path,
                                         force=True, only_channel=channel, owner=owner)
        except BaseException as exc:
            with shielded():
                ledger.finish_run(run_id, *stopped_run(exc))
            raise
        failures = [r for r in results if r.failed]
        ledger.finish_run(run_id, "failed" if failures else "done",
                          "; ".join(f"{r.channel}: {r.error}" for r in failures) or None)
        if config.alarms.channel and any(r.state == "sent" for r in results):
            # a resend that delivers the period's last missing target tells the alarm channel, as a run does
            resolve_periods(config, ledger, report, [parsed], owner=owner, archive=config.archive.path)
    finally:
        ledger.close()
    print_results(console, results)
    return 1 if failures else 0


def _refuse_incomplete(config: Config, report: ReportConfig, period: str, archived: dict[str, bytes],
                       names: Iterable[str]) -> None:
    """Refuse a resend whose archive lacks a file a channel sends (a period rendered with --format json and
    --dry-run, or a file removed by hand): found in a new-user audit, the outbox then wrote only the Slack
    payload and said "sent". Nothing is sent."""
    if lack := lacking(config, names, archived):
        name, channel, missing = lack
        again = command(config, f"run {report.id} --period {period} --force")
        raise InputError(f"the archive of {report.id} {period} has no {', '.join(missing)}, which channel "
                         f"{name!r} ({channel.type}) sends; `{again}` renders it again and sends it to every "
                         "channel; nothing was sent")


def _delivered(config: Config, report_id: str, period: str) -> bool:
    """The ledger, if it can be read, says some channel got the period (test sends do not count)."""
    try:
        ledger = open_existing(config.ledger.url)
    except LedgerError:
        return False
    if ledger is None:
        return False
    try:
        return sent_somewhere(ledger, report_id, period)
    finally:
        ledger.close()


def print_results(console: Console, results: Iterable[DeliveryResult]) -> None:
    """One line per delivery target; the runner can reuse this after a run."""
    for r in results:
        target = f" {r.recipient}" if r.recipient else ""
        label = {"skipped_sent": "already sent", "claimed_elsewhere": "claimed elsewhere"}.get(r.state, r.state)
        line = Text(f"{r.channel}{target}: ")
        line.append(label, style=_STYLES.get(r.state, ""))
        if r.error:
            line.append(f" - {r.error}")
        console.print(line)


def channel_checks(config: Config) -> list[CheckResult]:
    """Reach every configured channel and log in where possible; nothing is sent."""
    results = []
    secrets = all_secrets(config)  # a server may echo any channel's secret, not only its own
    for name, settings in config.channels.items():
        try:
            result = make_channel(name, settings).check()
        except AgentDigestError as exc:
            result = CheckResult(name, False, str(exc))
        results.append(CheckResult(result.channel, result.ok, mask_text(result.message, secrets)))
    return results


def check_ledger(config: Config, *, console: Console | None = None) -> int:
    """The ledger half of ``agentdigest check``: reach it, change nothing; exit 1 when it cannot be read, 2 when
    its URL is refused (an unknown ?option, a value the driver does not take)."""
    from .ledger_schema import LedgerError, probe

    console = _console(console)
    line = Text(f"ledger {mask_url(config.ledger.url)}: ")
    try:
        found = probe(config.ledger.url)
    except LedgerError as exc:
        line.append("FAILED", style="bold red")
        line.append(f" - {exc}")
        console.print(line)
        return exc.exit_code
    if full := _ledger_space(config.ledger.url):
        line.append("FAILED", style="bold red")
        line.append(f" - {found}, but {full}: runs could not record their deliveries")
        console.print(line)
        return 1
    line.append("ok", style="green")
    line.append(f" - {found}")
    console.print(line)
    return 0


def _ledger_space(url: str) -> str:
    """Why a SQLite ledger's folder has too little space for a run's writes, or "" (or not SQLite)."""
    from .ledger_schema import engine_url, sqlite_path

    real = engine_url(url)
    if not real.startswith("sqlite") or (path := sqlite_path(real)) in ("", ":memory:"):
        return ""
    return no_space(Path(path).parent)


def check_archive(config: Config, *, console: Console | None = None) -> int:
    """The archive half of ``agentdigest check``: exit 1 when reports could not be written there (found in a
    config audit: a read-only, full or wrong-type archive passed check and failed every run)."""
    from .archive import check_writable

    console = _console(console)
    line = Text(f"archive {config.archive.path}: ")
    problem = check_writable(config.archive.path)
    line.append("FAILED" if problem else "ok", style="bold red" if problem else "green")
    line.append(f" - {problem}" if problem else " - writable")
    console.print(line)
    return 1 if problem else 0


def check_channels(config: Config, *, console: Console | None = None) -> int:
    """The channel half of ``agentdigest check``: exit 1 when a channel check failed."""
    console = _console(console)
    results = channel_checks(config)
    for r in results:
        mark, style = {True: ("ok", "green"), False: ("FAILED", "bold red"), None: ("unchecked", "yellow")}[r.ok]
        line = Text(f"channel {r.channel}: ")
        line.append(mark, style=style)
        line.append(f" - {r.message}")
        console.print(line)
    if not results:
        console.print("No channels configured.")
    return 1 if any(r.ok is False for r in results) else 0
