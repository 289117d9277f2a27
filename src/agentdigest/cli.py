"""The ``agentdigest`` command line. Only this module knows about the terminal.

Exit codes: 0 done, 1 a delivery failed (the others still went; a ledger that cannot be reached too),
2 bad config or input, 3 the source could not be read (for ``check --missed``, whose 1 is a late report: the
ledger). Errors are one line on stderr; ``--verbose`` adds
the traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .cli_usage import TYPER_SAYS, TYPER_WORDS, plain_arguments
from .config import command, load_config
from . import interrupts
from .errors import AgentDigestError, InputError, Interrupted, first_line, interruption
from .logs import configure_command_logging
from .masking import mask_text
from .outcome_table import print_outcome
from .std_streams import ReaderSafeConsole, readers_may_leave, write_or_drop

# Plain help (click's layout): Typer's boxed panels showed "<bool>" beside every flag, --help included.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Scheduled performance reports for AI-agent programs.")
#: Width of output that is not a terminal (cron mail, log files), unless COLUMNS says otherwise.
PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    """A terminal's console as is; into a pipe or a file (cron, a log) lines are never wrapped (a
    one-line error must stay one line for grep and alerting) and tables get a log's width, not 80."""
    console = ReaderSafeConsole(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
        if not os.environ.get("COLUMNS"):
            console.width = PIPE_WIDTH
    return console


out = _console()
err = _console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", metavar="FILE", help="Config file (default ./agentdigest.toml or $AGENTDIGEST_CONFIG).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", metavar="", help="Log progress and show tracebacks.")]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"agentdigest {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", metavar="", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Scheduled performance reports for AI-agent programs."""


def _guard(verbose: bool, fn: Callable[[], int]) -> None:
    """Run a command; turn errors into one line on stderr and the documented exit code."""
    configure_command_logging(verbose)
    interrupts.install()
    try:
        code = fn()
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP as Interrupted
        for signum in interrupts.STOP_SIGNALS:  # a second Ctrl-C (or SIGHUP) must not kill the exit itself
            signal.signal(signum, signal.SIG_IGN)
        err.print(f"agentdigest: {interruption(exc)}", markup=False)
        name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        raise typer.Exit(128 + getattr(signal, name)) from None
    except Exception as exc:
        _say_error(exc, verbose)
        raise typer.Exit(exc.exit_code if isinstance(exc, AgentDigestError) else 1) from None
    raise typer.Exit(code)


def _one_stream() -> bool:
    """Whether stdout and stderr go to one place: a terminal, cron's mail, ``>> log 2>&1``."""
    try:
        a, b = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # not files (a test's capture): two streams
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _outcome_says_failures() -> None:
    """A failed delivery is one line in the outcome on stdout (the record) and one ERROR line on stderr, each
    stream alone saying it; where both go to one place the stderr line is left out, so it reads once. Found in an
    operator audit: under cron every failure of `run --due`, `run` and `resend` was in the mail twice."""
    if not _one_stream():
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not getattr(record, "in_outcome", False))


def _say_error(exc: Exception, verbose: bool, where: str = "") -> None:
    """``exc`` as one line on stderr (``where`` before it: a report of several), with ``verbose`` its traceback
    first. URL passwords are masked in both: the exceptions it chains are libraries' own, and some quote a URL
    whole (found in a security audit: Ibis's for the source URL)."""
    if verbose:
        write_or_drop(sys.stderr, mask_text("".join(traceback.format_exception(exc))))
    if isinstance(exc, AgentDigestError):
        err.print(f"agentdigest: error: {where}{exc}", markup=False, soft_wrap=True)
    else:  # a bug, but still one line unless asked
        err.print(f"agentdigest: unexpected error: {where}{type(exc).__name__}: {mask_text(first_line(exc))} "
                  "(run with --verbose for details)", markup=False, soft_wrap=True)


def _now(value: str | None) -> datetime:
    if value is None:  # an empty --now ("$NOW" unset) is refused below, not read as the real clock
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--now {value!r} is not an ISO 8601 time (expected e.g. 2026-11-30T09:05:00+01:00)") from None
    from .periods import YEARS

    if not YEARS[0] <= parsed.year <= YEARS[1]:
        raise InputError(f"--now {value!r} is out of range (years {YEARS[0]}-{YEARS[1]})")
    if parsed.tzinfo is None and len(value.strip()) > 10 and "T" not in value.upper() and " " not in value.strip():
        # "2026-11-30Z": Python reads a date's offset and drops it, and "add Z" would then be the advice
        raise InputError(f"--now {value!r} is a date with an offset: give the time too (e.g. {parsed:%Y-%m-%d}T00:00Z)")
    if parsed.tzinfo is None:  # read as UTC, a local time picked another period (a scheduling audit)
        raise InputError(f"--now {value!r} has no UTC offset: add Z for UTC or your zone's offset "
                         f"(e.g. {parsed:%Y-%m-%dT%H:%M}+01:00)")
    return parsed




@app.command()
def run(
    report_ids: Annotated[Optional[list[str]], typer.Argument(metavar="REPORT_ID", help="Reports to run (default: all).")] = None,
    config: ConfigOpt = None,
    period: Annotated[Optional[str], typer.Option(metavar="KEY", help="Period key: 2026-11-23, 2026-W48 or 2026-11 (default: the last complete one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Compute, render and archive; deliver nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Deliver even where the ledger says sent.")] = False,
    archive: Annotated[Optional[str], typer.Option(metavar="DIR", help="Archive folder (overrides [archive] path).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", metavar="LIST", help="Comma list of json, html, pdf, txt, eml, slack (default: all of them).")] = None,
    due: Annotated[bool, typer.Option("--due", metavar="", help="Run every report whose latest due period is not yet sent.")] = False,
    now: Annotated[Optional[str], typer.Option(metavar="ISO8601", help="Pin the clock (ISO 8601), for --due, tests and backfills.")] = None,
    test_to: Annotated[Optional[str], typer.Option("--test-to", metavar="ADDRESS|CHANNEL", help="Send a test to this address or channel; not recorded as the period's delivery.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="With --due: print nothing for reports sent already or not due, nor for targets sent or refused for good before (cron mails any output); what is sent or fails is still said.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Compute, render, archive and deliver reports."""

    def body() -> int:
        from .run_request import parse_formats, select_reports
        from .runner import run_reports

        unset: list[tuple[str, str, str]] | None = [] if dry_run else None  # a dry run needs no channel secret
        cfg = load_config(config, unset)
        _outcome_says_failures()
        if unset and not quiet:
            from .unset_secrets import unset_note

            out.print(unset_note(unset), markup=False, soft_wrap=True)
        formats = parse_formats(format)
        clock = _now(now)
        reports = select_reports(cfg, report_ids)
        if archive is not None and not archive.strip():
            raise InputError("--archive needs a folder (it was empty); leave it out to use [archive] path")
        folder = Path(archive) if archive is not None else None
        # Found in a new-user audit: an empty value ("$VAR" unset in a script) was read as the option left
        # out: --test-to "" delivered the report to its channels for real, --period "" --force the latest period.
        if period is not None and not period.strip():
            raise InputError("--period needs a key (it was empty; expected e.g. 2026-W48); nothing was run")
        if test_to is not None and not test_to.strip():
            raise InputError("--test-to needs an email address or a channel name (it was empty); nothing was sent")
        if due:
            from .schedule import run_due

            clash = [flag for flag, on in (("--period", period), ("--force", force), ("--test-to", test_to)) if on]
            if clash:
                raise InputError(f"--due picks the periods itself; it cannot be combined with {', '.join(clash)}"
                                 " (run without --due for that)")

            return run_due(cfg, reports, now=clock, dry_run=dry_run, formats=formats, archive=folder,
                           console=out, quiet=quiet)
        if quiet:
            raise InputError("--quiet goes with --due (a run without it always says what it did); nothing was run")
        for report in (r for r in reports if not r.enabled):  # paused: left out of "every report", sent when named
            out.print(f"{report.id}: paused for the schedule (enabled = false); running it as asked" if report_ids else
                      f"{report.id}: paused (enabled = false); not run (`{command(cfg, f'run {report.id}')}` runs it)",
                      markup=False, soft_wrap=True)
        if not report_ids:
            reports = [r for r in reports if r.enabled]
            if not reports:
                return 0
        # Found in a storage audit: in a run of several reports, one's error (its archive disk full) ended the
        # run, the lines of the reports before it unsaid and the ones after it not run. Each is now tried and
        # said, as with --due, and the exit code is the worst (the highest) of theirs.
        outcomes = run_reports(cfg, reports, now=clock, period_key=period, dry_run=dry_run, force=force,
                               formats=formats, archive=folder, test_to=test_to, keep_going=len(reports) > 1)
        for outcome in outcomes:
            if outcome.exception is not None:
                _say_error(outcome.exception, verbose, f"{outcome.report_id} {outcome.period_key}: ")
            else:
                print_outcome(outcome, out)
        return max((o.exit_code for o in outcomes), default=0)

    _guard(verbose, body)


@app.command(short_help="Validate the config, reach source and channels.")
def check(
    config: ConfigOpt = None,
    missed: Annotated[bool, typer.Option("--missed", metavar="", help="Exit 1 and list reports whose due period is late (3: the ledger cannot be read).")] = False,
    now: Annotated[Optional[str], typer.Option(metavar="ISO8601", help="Pin the clock (ISO 8601).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Validate the config, reach the source and the channels; send nothing."""

    def body() -> int:
        from .sources import open_source

        cfg = load_config(config)
        if now is not None and not missed:  # found in an exit-code audit: ignored, as if the clock were pinned
            raise InputError("--now goes with --missed (it pins the clock that finds late reports); nothing was checked")
        if missed:
            from .schedule_status import check_missed

            return check_missed(cfg, now=_now(now), console=out)
        config_ok = f"config {cfg.path}: ok ({len(cfg.reports)} report(s), {len(cfg.channels)} channel(s))"
        try:
            source = open_source(cfg.source, cfg.path)
            try:  # its values too: a mapping to a text column said "config ok" first (a new user)
                from .source_check import source_line

                line = source_line(source)
            finally:
                source.close()
        except AgentDigestError as exc:
            # Said ok only if the source refused none of its settings (found in a new-user audit: "config ok",
            # then "source.settings: unknown DuckDB setting", exit 2); a source that cannot be reached (exit 3)
            # leaves the config ok.
            if exc.exit_code != 2:
                out.print(config_ok, markup=False)
            raise
        out.print(config_ok, markup=False)
        for report in (r for r in cfg.reports if not r.enabled):
            out.print(f"report {report.id}: paused (enabled = false): the schedule does not run it, "
                      "nor alarms about it",
                      markup=False, soft_wrap=True)
        out.print(line, markup=False)
        from .commands_delivery import check_archive, check_channels, check_ledger

        codes = [check_archive(cfg, console=out), check_ledger(cfg, console=out)]
        return max(*codes, check_channels(cfg, console=out))

    _guard(verbose, body)


@app.command(short_help="Demo events in DuckDB; both reports to an outbox.")
def demo(
    dir: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Folder for the demo database, config, archive and outbox.")] = Path("demo"),
    verbose: VerboseOpt = False,
) -> None:
    """Synthetic events in an embedded DuckDB, both reports, delivered to an outbox on disk."""

    def body() -> int:
        from .demo import setup
        from .runner import run_reports

        with out.status("generating 10 weeks of demo events..."):
            path = setup(dir.resolve())
        cfg = load_config(path)
        outcomes = run_reports(cfg, list(cfg.reports))
        for outcome in outcomes:
            print_outcome(outcome, out)
        out.print()
        out.print(f"config:   {path}", markup=False, soft_wrap=True)
        out.print(f"reports:  {cfg.archive.path}", markup=False, soft_wrap=True)
        out.print(f"outbox:   {cfg.channels['outbox'].path}", markup=False, soft_wrap=True)
        out.print(f"try:      agentdigest run --config {path} --period <key> --force", markup=False, soft_wrap=True)
        return 1 if any(o.failed for o in outcomes) else 0

    _guard(verbose, body)


@app.command()
def history(
    config: ConfigOpt = None,
    report: Annotated[Optional[str], typer.Option("--report", metavar="REPORT_ID", help="Only this report.")] = None,
    limit: Annotated[Optional[int], typer.Option(metavar="N", min=1, max=100_000,
                                                 help="Rows to show (default 50, at most 100,000).")] = None,
    next_: Annotated[bool, typer.Option("--next", metavar="", help="Show each report's next run time instead.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Runs and deliveries from the ledger."""

    def body() -> int:
        cfg = load_config(config)
        if report is not None and not report.strip():  # "$REPORT" unset: not every report's history (an audit)
            raise InputError("--report needs a report id (it was empty); leave it out for every report")
        if next_:
            from .schedule_status import show_next

            if limit is not None:  # one row per report, in config order: a limit would silently drop reports
                raise InputError("--limit does not apply to --next, which shows one row per report "
                                 "(--report REPORT_ID shows one)")

            return show_next(cfg, report_id=report, console=out)
        from .commands_delivery import show_history

        return show_history(cfg, report=report, limit=limit, console=out)

    _guard(verbose, body)


@app.command()
def resend(
    report_id: Annotated[str, typer.Argument(metavar="REPORT_ID", help="The report's id, as in [[reports]].")],
    period: Annotated[str, typer.Argument(metavar="PERIOD", help="Period key: 2026-11-23, 2026-W48 or 2026-11.")],
    config: ConfigOpt = None,
    channel: Annotated[Optional[str], typer.Option(metavar="NAME", help="Only this channel.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Deliver an archived report again, without recomputing."""

    def body() -> int:
        from .commands_delivery import resend as do_resend

        cfg = load_config(config)
        _outcome_says_failures()
        if any(r.id == report_id and not r.enabled for r in cfg.reports):
            out.print(f"{report_id}: paused for the schedule (enabled = false); resending it as asked", markup=False)
        return do_resend(cfg, report_id, period, channel=channel, console=out)

    _guard(verbose, body)


@app.command(short_help="Long-lived: run each report at its cron time.")
def schedule(
    config: ConfigOpt = None,
    log_format: Annotated[str, typer.Option("--log-format", metavar="text|json", help="text or json.")] = "text",
    verbose: VerboseOpt = False,
) -> None:
    """Run as a long-lived scheduler: each report at its cron time in its timezone."""

    def body() -> int:
        from .daemon import serve

        return serve(config, log_format=log_format, verbose=verbose)

    _guard(verbose, body)


def main() -> None:
    """The command line. A reader that closes stdout or stderr early (``| head -1``) ends no command early
    (see :mod:`.std_streams`)."""
    with readers_may_leave():
        _main()


def _main() -> None:
    """A usage error (an unknown option, a bad value) is one line on stderr, exit 2, as
    every other error: click's boxed panel took five lines (found in a config audit)."""
    try:  # Typer 0.2x carries its own click; older ones use click's
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import exceptions
        from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

        NoArgsIsHelpError = getattr(exceptions, "NoArgsIsHelpError", ())  # click < 8.2 exits with the help itself

    try:
        code = plain_arguments(typer.main.get_command(app))(prog_name="agentdigest", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # a bare "agentdigest": the help, on stderr as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "agentdigest"
        # Typer's pydantic words ("Input should be greater than or equal to 1") as the config's (a new-user review)
        said = TYPER_WORDS.sub(lambda m: TYPER_SAYS[m[1] or m[2]].format(m[3] or ""), exc.format_message())
        _console(stderr=True).print(f"agentdigest: error: {said} (see {where} --help)", markup=False)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        _console(stderr=True).print(f"agentdigest: error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C at a prompt
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
