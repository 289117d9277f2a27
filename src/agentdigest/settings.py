"""What a configuration may say: the settings of the archive, alarms and reports, and the whole config, as
pydantic models. A channel's settings are :mod:`agentdigest.channel_settings`, the source's
:mod:`agentdigest.source_settings`, the ledger's :mod:`agentdigest.ledger_settings`.

Reading the file (TOML, ``${VAR}`` expansion, relative paths, one-line errors) is :mod:`agentdigest.config`.
"""

from __future__ import annotations

import difflib
import re
import string
import zoneinfo
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .channel_settings import (CHANNEL_TYPES, PLUGIN_CHANNEL_SETTINGS, ChannelConfig, StrictModel, key_part, listed,
                               no_line_breaks, shown)
from .errors import ConfigError
from .ledger_settings import LedgerConfig
from .source_settings import SourceConfig, refused_spark_conf

DEFAULT_CONFIG = "agentdigest.toml"
_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


#: The longest grace before a missed report alarms: a month (found in a config re-check: 9999999999999999
#: minutes overflowed the date arithmetic; timeouts and retry budgets over an hour and a day did too).
GRACE_MAX = 31 * 24 * 60


class ArchiveConfig(StrictModel):
    path: Path = Path("./reports")


class AlarmsConfig(StrictModel):
    channel: str | None = None
    grace_minutes: int = Field(120, ge=0, le=GRACE_MAX, strict=True)


#: The fields a report's ``subject`` template may name.
SUBJECT_FIELDS = ("title", "period_label", "period_key", "report_id", "audience", "start", "end")


# Zone names that read like a region's time but never change for summer (tzdata's legacy "EST" is UTC-5
# all year, while New York is UTC-4 in summer).
_FIXED_ABBREVIATIONS = {"EST": "America/New_York", "MST": "America/Denver or America/Phoenix",
                        "HST": "Pacific/Honolulu"}
#: Names ZoneInfo opens that name no place: a report's periods would depend on the host, or mean nothing.
_NOT_A_PLACE = {
    "localtime": "is this machine's zone, which another host or a container reads differently (schedulers sharing "
                 "a ledger would disagree on every period); name the place, e.g. Europe/Berlin",
    "Factory": "is the time zone database's placeholder for a zone not set; name the place, e.g. Europe/Berlin",
    "posixrules": "is the time zone database's template for POSIX TZ strings; name the place (America/New_York)",
}


def _zone_meant(value: str) -> str | None:
    """The zone a mistyped name likely means: in another case or with spaces (`europe/berlin`, `New York`), a city
    alone (`Berlin`) or one typo away (`Europe/Berln`; found installing as a new user, each told only "like
    Europe/Berlin"). None for an abbreviation (`CEST`): it names no one place."""
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n and not n.startswith(("Etc/", "right/")))
    key = value.strip().replace(" ", "_").lower()
    same = [n for n in names if n.lower() == key] or [n for n in names if n.lower().rsplit("/", 1)[1] == key]
    if len(same) == 1:
        return same[0]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.9) if len(value) <= 64 else []
    return close[0] if close else None


class ReportConfig(StrictModel):
    id: str
    title: str = "Agent Performance"
    audience: str = "executive"
    period: Literal["day", "week", "month"] = "week"
    timezone: str = "UTC"
    schedule: str = "0 9 * * mon"
    channels: list[str] = Field(default_factory=list)
    catch_up: int = Field(0, ge=0, le=366, strict=True)  # strict: TOML's true is not 1 period; a year of days at most
    grace_minutes: int | None = Field(None, ge=0, le=GRACE_MAX, strict=True)
    completeness_threshold: float = Field(95.0, ge=0, le=100, strict=True)
    expected_events_per_day: float | None = Field(None, gt=0, strict=True)
    # A day report's expected volume from the same weekday of the 4 previous weeks, not the 4 previous days
    # (which read every Saturday as incomplete and every Monday as 130%; found in a reader review).
    completeness_baseline: Literal["previous_periods", "same_weekday"] = "previous_periods"
    human_cost_per_conversation: float | None = Field(None, ge=0, strict=True)
    locale: str = "en"
    page_size: Literal["A4", "Letter"] = "A4"
    subject: str = "{title} — {period_label}"
    # strict, as every number and switch here: "yes", 1 or "95" in TOML are a typo, not a value to guess
    # (found in a config audit: redact = "yes" and failure_examples = true were taken as True and 1)
    redact: bool = Field(True, strict=True)
    # false pauses the report: the schedule (the scheduler, its catch-up, `run --due`, `run` of every report) and
    # its late and failed alarms leave it alone, its settings kept; `run REPORT` still sends it (schedule.py)
    enabled: bool = Field(True, strict=True)
    redact_patterns: dict[str, str] = Field(default_factory=dict)
    failure_examples: int = Field(5, ge=0, le=50, strict=True)
    # The conversations whose agent (the agent_id of their first event) is one of these, or begins with an
    # entry ending in "*" ("billing-bot@*": every version): a team's own report. None: every conversation.
    agents: list[str] | None = None

    _title = field_validator("title", "subject")(classmethod(lambda cls, v: no_line_breaks(v)))

    @field_validator("title")
    @classmethod
    def _title_shown(cls, value: str) -> str:
        # Found in a rendering audit: title = "" passed check and run, and every Slack message was a header block
        # without text, which Slack refuses (invalid_blocks): the period never reached the channel. The email's
        # Subject read " — week of 23 Nov 2026".
        if not value.strip():
            raise ValueError("must not be empty: it heads the email, its Subject and the Slack message")
        return value

    @model_validator(mode="before")
    @classmethod
    def _daily_default(cls, data: Any) -> Any:
        """A daily report without a schedule runs every day at 09:00 (the weekly default would send one
        day in seven)."""
        if isinstance(data, dict) and "schedule" not in data and data.get("period") == "day":
            return {**data, "schedule": "0 9 * * *"}
        return data

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        # Said in words: pydantic's "String should match pattern '^[A-Za-z0-9]...'" (found by a new user).
        if not re.fullmatch(_ID_RE, value):
            raise ValueError(f"{shown(value)} is not a report id (expected letters, digits, '_', '.' and '-', starting "
                             "with a letter or digit: it names the report's archive folders)")
        return value

    @field_validator("completeness_baseline")
    @classmethod
    def _weekday_baseline_for_days(cls, value: str, info: Any) -> str:
        period = info.data.get("period")
        if value == "same_weekday" and info.data.get("expected_events_per_day") is not None:
            raise ValueError('"same_weekday" and expected_events_per_day are two baselines: set one')
        if value == "same_weekday" and period not in (None, "day"):
            raise ValueError(f'"same_weekday" is for day reports; a {period} report compares with its previous '
                             'periods ("previous_periods")')
        return value

    @field_validator("completeness_threshold")
    @classmethod
    def _a_percentage(cls, value: float) -> float:
        if 0 < value <= 1:  # 0.95 would mean 0.95 %: the warning could never show
            raise ValueError(f"a percentage such as 95, not a fraction ({value:g})")
        return value

    @field_validator("subject")
    @classmethod
    def _subject_fields(cls, value: str) -> str:
        """Checked here so a bad template stops ``check`` and ``run`` as a config error, not mid-render."""
        try:
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(value)
                      if name is not None]
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc}); write {{{{ and }}}} for literal braces") from None
        for name, spec, conversion in fields:
            if name not in SUBJECT_FIELDS:
                # as a key is shown: a field of 5,000 characters was repeated whole (found in a config audit)
                raise ValueError(f"unknown field {key_part(f'{{{name}}}')} (expected one of "
                                 f"{', '.join(SUBJECT_FIELDS)})")
            if spec or conversion:  # found in a config audit: {title:>99999999999} ran out of memory mid-run
                written = f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                raise ValueError(f"{key_part(written)}: fields take no format spec or conversion (write {{{name}}})")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file (a fuzz)
            meant = _zone_meant(value) if "${" not in shown(value) else None  # a variable's value may be a secret
            raise ValueError(f"unknown timezone {shown(value)} (expected an IANA name"
                             f"{f': did you mean {meant!r}?' if meant else ' like Europe/Berlin'})") from None
        if value in _FIXED_ABBREVIATIONS:  # valid names, but a trap: no daylight saving time
            raise ValueError(f"{shown(value)} is a fixed offset without daylight saving time; use the place "
                             f"({_FIXED_ABBREVIATIONS[value]}), or Etc/GMT... if a fixed offset is really meant")
        if value in _NOT_A_PLACE or value.startswith("right/"):  # files of the zone folder, found in a scheduling audit
            why = _NOT_A_PLACE.get(value) or (f"counts leap seconds, so its midnights fall 27 s after everyone "
                                              f"else's; use {value.removeprefix('right/')!r}")
            raise ValueError(f"{shown(value)} {why}")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from .cron import crontab_trigger

        try:
            trigger = crontab_trigger(value, "UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {shown(value)}: {exc}; expected e.g. '0 9 * * mon'") from None
        # A date that never comes ('0 9 30 2 *', 31 April) would mean a report silently never sent.
        # Every real date recurs within 8 years (29 February can skip a century year).
        start = datetime(2024, 1, 1, tzinfo=timezone.utc)
        fire = trigger.get_next_fire_time(None, start)
        if fire is None or fire > start.replace(year=2032):
            raise ValueError(f"the cron expression {shown(value)} never fires (no such date); expected e.g. "
                             "'0 9 * * mon'")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            raise ValueError(f"unknown locale {shown(value)} (expected e.g. en, en_GB, de_DE)") from None
        return value

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str) -> str:
        if value in ("executive", "engineering"):
            return value
        try:
            folder = Path(value).is_dir()
        except OSError:  # a name too long for a path (found by a config fuzz: "unexpected error: OSError")
            folder = False
        if not folder:
            raise ValueError("expected executive, engineering or a folder of templates; "
                             f"{shown(value, path=True)} is not a folder")
        if not (Path(value) / "report.html.j2").is_file():  # found in a config audit: "" and "." passed check
            raise ValueError("expected executive, engineering or a folder of templates; "
                             f"{shown(value, path=True)} has no report.html.j2")
        return value

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("expected at least one agent_id (leave agents out for every conversation)")
        for entry in value:
            if not entry.strip() or entry == "*":
                raise ValueError(f"{shown(entry)} names no agent (expected an agent_id, or its beginning followed "
                                 "by *)")
            if "*" in entry[:-1]:
                raise ValueError(f"{shown(entry)}: * stands only at the end (\"billing-bot@*\" for every version)")
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except (re.error, OverflowError) as exc:  # OverflowError: a{99999999999} (found by a config fuzz)
                raise ValueError(f"pattern {shown(name)} is not a valid regular expression ({exc})") from None
            except RecursionError:  # thousands of nested groups
                raise ValueError(f"pattern {shown(name)} is not a valid regular expression (nested too "
                                 "deeply)") from None
        return value


class Config(StrictModel):
    source: SourceConfig
    archive: ArchiveConfig = ArchiveConfig()
    ledger: LedgerConfig = LedgerConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    reports: list[ReportConfig] = Field(min_length=1)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _plugin_channels(cls, data: Any) -> Any:
        """Validate plug-in channels' settings with their own model (the built-in ones are the union's)."""
        channels = data.get("channels") if isinstance(data, dict) else None
        if not isinstance(channels, dict):
            return data
        out = dict(channels)
        for name, raw in channels.items():
            kind = raw.get("type") if isinstance(raw, dict) else None
            # `type = []` is the union's to name
            model = PLUGIN_CHANNEL_SETTINGS.get(kind) if isinstance(kind, str) else None
            if model is None or kind in CHANNEL_TYPES:
                continue
            try:
                out[name] = model.model_validate(raw)
            except ValidationError as exc:  # worded where the config is read, as every other error
                raise _NestedError(("channels", name), exc.errors()[0]) from None
        return {**data, "channels": out}

    @model_validator(mode="after")
    def _references(self) -> "Config":
        for name in self.channels:  # found in a config re-check: a newline in a channel name forged log lines
            if not re.fullmatch(_ID_RE, name):
                raise _KeyedError(f"channels.{shown(name)}", "a channel name is letters, digits, '.', '-' and '_', "
                                  "starting with a letter or digit (as a report id)")
        seen: set[str] = set()
        for i, report in enumerate(self.reports):
            if report.id in seen:
                raise _KeyedError(f"reports[{i}].id", f"duplicate report id {shown(report.id)}")
            seen.add(report.id)
            twice = sorted({name for name in report.channels if report.channels.count(name) > 1})
            if twice:  # found in a config audit: the report was delivered twice to it
                raise _KeyedError(f"reports[{i}].channels", f"channel {shown(twice[0])} is listed twice")
            _every_period_sent(report, f"reports[{i}].schedule")
            for j, name in enumerate(report.channels):
                if name not in self.channels:
                    known = listed(sorted(self.channels), none="none defined")
                    raise _KeyedError(
                        f"reports[{i}].channels[{j}]", f"unknown channel {shown(name)} (expected one of: {known})"
                    )
        refused = refused_spark_conf(self.source.spark_conf)
        if refused:  # before Spark starts: pyspark or Java missing must not hide it, nor `check` say "ok" first
            raise _KeyedError(f"source.spark_conf.{refused[0]}", refused[1])
        if self.alarms.channel and self.alarms.channel not in self.channels:
            raise _KeyedError("alarms.channel", f"unknown channel {shown(self.alarms.channel)}")
        return self

    def report(self, report_id: str) -> ReportConfig:
        for report in self.reports:
            if report.id == report_id:
                return report
        known = listed(r.id for r in self.reports)
        raise ConfigError(f"unknown report {shown(report_id)} (expected one of: {known})", file=str(self.path or ""))


def _every_period_sent(report: ReportConfig, key: str) -> None:
    """Refuse a schedule that fires too seldom for the period: some periods would never be sent."""
    from .due import never_sent

    missed = never_sent(report)
    if missed is None:
        return
    period, fire, sends = missed
    then = (f"its next fire ({fire.astimezone(zoneinfo.ZoneInfo(report.timezone)):%a %Y-%m-%d %H:%M}) "
            f"sends {sends.key}" if fire is not None and sends is not None else "no fire sends it")
    raise _KeyedError(key, f"{shown(report.schedule)} fires less often than every {report.period}: {period.key} "
                           f"would never be sent ({then}); fire at least once per {report.period} after it ends, "
                           f"or set catch_up to send the periods in between")


class _KeyedError(ValueError):
    """A cross-field error that knows its own key (pydantic would report the model's root)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


class _NestedError(ValueError):
    """A plug-in channel's own validation error, ``error`` (pydantic's), at ``loc`` in the config."""

    def __init__(self, loc: tuple[Any, ...], error: dict[str, Any]):
        self.loc, self.error = loc, error
        super().__init__(error["msg"])
