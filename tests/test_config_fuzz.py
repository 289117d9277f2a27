"""Mutated configs (hypothesis): a bad config is one ConfigError line naming the file, the key and what was
expected, exit 2 through ``agentdigest check``, never another exception, never a secret from the environment.

Starts from valid configs (the demo's, and one with every channel type, an alarm channel, [source.columns] and
[source.settings] and several reports) and changes their structure: any value replaced by one of another TOML
kind (text of every sort, huge and negative integers, inf and nan, dates and times, arrays, inline tables), any key
deleted, unknown keys added at every level, a table doubled into an array of tables, a table made a value and a
value a table, empty arrays. Each mutated config is written as TOML and read by ``load_config``, as ``check`` does.

Runs a fixed set of examples (``derandomize``), so a run of the suite never depends on luck; set
``AGENTDIGEST_HYPOTHESIS_EXAMPLES`` for a longer, random search.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
import tempfile
import tomllib
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agentdigest.cli import app
from agentdigest.config import load_config
from agentdigest.errors import ConfigError
from test_config_errors import PYDANTIC_WORDS

EXAMPLES = int(os.environ.get("AGENTDIGEST_HYPOTHESIS_EXAMPLES", "0"))

DEMO = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[archive]
path = "reports"

[ledger]
url = "sqlite:///agentdigest.db"

[channels.outbox]
type = "outbox"
path = "outbox"

[[reports]]
id = "weekly-exec"
title = "Agent Performance - Executive"
audience = "executive"
period = "week"
timezone = "Europe/Berlin"
schedule = "0 9 * * mon"
channels = ["outbox"]
human_cost_per_conversation = 4.50

[[reports]]
id = "weekly-engineering"
title = "Agent Performance - Engineering"
audience = "engineering"
period = "week"
timezone = "America/New_York"
schedule = "0 9 * * mon"
channels = ["outbox"]
"""

FULL = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
max_conversation_hours = 12
epoch_unit = "ms"
[source.columns]
event_ts = "created_at"
agent_id = "bot"
[source.settings]
memory_limit = "1GB"
threads = 2

[alarms]
channel = "oncall"
grace_minutes = 60

[channels.mail]
type = "email"
to = ["cto@example.com", "Ops <ops@example.com>"]
cc = ["cc@example.com"]
from = "reports@example.com"
reply_to = "noreply@example.com"
smtp_url = "${SMTP_URL}"
timeout = 10

[channels.hook]
type = "slack"
webhook_url = "${SLACK_WEBHOOK}"

[channels.oncall]
type = "slack"
bot_token = "${SLACK_TOKEN}"
channel = "#reports"
upload_pdf = false

[channels.signed]
type = "webhook"
url = "https://example.com/hook"
secret = "${HOOK_SECRET}"
retry_budget = 60

[[reports]]
id = "daily"
period = "day"
timezone = "UTC"
channels = ["mail", "hook"]
completeness_baseline = "same_weekday"
agents = ["billing-bot", "support-*"]
redact_patterns = { ticket = "T-[0-9]+" }

[[reports]]
id = "weekly"
period = "week"
timezone = "Europe/Berlin"
schedule = "0 9 * * mon"
channels = ["signed", "oncall"]
catch_up = 2
grace_minutes = 30
expected_events_per_day = 100.0
locale = "de_DE"
page_size = "Letter"
subject = "{title}: {period_label}"
failure_examples = 3

[[reports]]
id = "monthly"
period = "month"
schedule = "0 8 1 * *"
audience = "engineering"
redact = false
"""

#: Secrets as the environment holds them: none may ever appear in an error message.
SECRETS = {
    "SMTP_URL": "smtp+starttls://mailer:Pw-SMTP-5ecret@relay.example.com:587",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/T0/B0/Hook5ecretPart",
    "SLACK_TOKEN": "xoxb-Token5ecret",
    "HOOK_SECRET": "Signing5ecret",
}
_SECRET_PARTS = ("Pw-SMTP-5ecret", "Hook5ecretPart", "Token5ecret", "Signing5ecret")
BASES = (tomllib.loads(DEMO), tomllib.loads(FULL))

# --- Writing TOML (the standard library only reads it) ------------------------------------------------------


def _string(value: str) -> str:
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {_inline(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(path: list[str], table: dict[str, Any], out: list[str]) -> None:
    for key, value in table.items():
        if not isinstance(value, dict) and not _array_of_tables(value):
            out.append(f"{_string(key)} = {_inline(value)}")
    for key, value in table.items():
        header = ".".join(_string(k) for k in (*path, key))
        if isinstance(value, dict):
            out.append(f"[{header}]")
            _emit([*path, key], value, out)
        elif _array_of_tables(value):
            for item in value:
                out.append(f"[[{header}]]")
                _emit([*path, key], item, out)


def dumps(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit([], data, out)
    return "\n".join(out) + "\n"


# --- Mutations ------------------------------------------------------------------------------------------------

ODD_TEXT = ["", " ", "x" * 10_000, "line\nbreak", "cr\r\nlf", "nul\x00here", "\u202eexe.png", "\u200fRTL\u200e",
            "🤖📈", "a\u2028b", "\x85", "${NOT_SET_ANYWHERE}", "$$", "${}", "{title", "0 9 * * mon", "week",
            "email", "outbox", "slack", "webhook", "UTC", "../..", "/", "~", "sqlite:///", "duckdb://",
            "postgresql://u:pw@h/db", "https://hooks.slack.com/services/T/B/x", "smtp://h", "-1", "95", "true"]
KEYS = ["x", "type", "id", "path", "url", "channels", "reports", "source", "settings", "columns", "from", "to",
        "a\nb", "", " ", "é", "🤖", "nul\x00", "\u202ertl", "period.x", "spark.password", "redact"]

values = st.deferred(lambda: st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(max_size=20),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, -1, 1, 2**63, 2**63 - 1, -(2**63), 10**30, 10**400, 65536]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e300, 0.5, 95.0]),
    st.booleans(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-5, minutes=-30))])),
    st.dates(),
    st.times(),
    st.lists(values, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
))


def _paths(data: Any, here: tuple = ()) -> list[tuple]:
    """Every position in the config: a table's keys and an array's items, at any depth."""
    out = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        out.append((*here, key))
        out.extend(_paths(value, (*here, key)))
    return out


def _tables(data: Any, here: tuple = ()) -> list[tuple]:
    out = [here] if isinstance(data, dict) else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        out.extend(_tables(value, (*here, key)))
    return out


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated(draw) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add", "double", "flip", "empty", "wrap",
                                     "secret"]))
        if kind == "add" or not paths:
            table = _at(data, draw(st.sampled_from(_tables(data))))
            table[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(values)
            continue
        path = draw(st.sampled_from(paths))
        parent, key = _at(data, path[:-1]), path[-1]
        old = parent[key]
        if kind == "secret":  # a variable holding a secret where another kind of value is expected
            parent[key] = draw(st.sampled_from([f"${{{name}}}" for name in SECRETS]))
        elif kind == "replace":
            parent[key] = draw(values)
        elif kind == "delete":
            del parent[key]
        elif kind == "double":  # a table as an array of tables ([[channels.x]]), an array's item twice
            parent[key] = ([old, copy.deepcopy(old)] if isinstance(old, dict) else old + old if isinstance(old, list)
                           else [old, old])
        elif kind == "flip":  # a table as a value, a value as a table, an array of tables as one table
            parent[key] = (draw(values) if isinstance(old, dict) else old[0] if _array_of_tables(old)
                           else {draw(st.sampled_from(KEYS)): old})
        elif kind == "empty":
            parent[key] = [] if not isinstance(old, dict) else {}
        else:  # the value (a ${SECRET} too) inside an array or a table
            parent[key] = draw(st.sampled_from([[old], {"value": old}, [old, draw(values)]]))
    return data


def _examples(n: int) -> settings:
    """``n`` fixed examples (or the environment's number, random)."""
    return settings(max_examples=EXAMPLES or n, derandomize=not EXAMPLES, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if EXAMPLES else []),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


_FOLDER = tempfile.TemporaryDirectory(prefix="agentdigest-fuzz-")  # one file, written again for each example


def _load(data: dict[str, Any]) -> tuple[Path, ConfigError | None]:
    """Write ``data`` as a config file in a new folder and read it as ``check`` does."""
    path = Path(_FOLDER.name) / "agentdigest.toml"
    text = dumps(data)
    path.write_text(text, encoding="utf-8")
    assert tomllib.loads(text).keys() == data.keys()  # the writer is right, or the fuzz tests nothing
    try:
        with mock.patch.dict(os.environ, SECRETS):
            load_config(path)
    except ConfigError as exc:
        return path, exc
    return path, None


def _assert_one_line(exc: ConfigError, path: Path) -> None:
    message = str(exc)
    assert len(message.splitlines()) == 1 and not message.endswith(("\n", "\r")), repr(message)
    assert message.startswith(f"{path}: "), repr(message)
    assert exc.key, repr(message)
    assert message.startswith(f"{path}: {exc.key}: "), repr(message)
    said = message[len(f"{path}: {exc.key}: "):]
    assert said.strip(), repr(message)
    # in the project's words, and a value repeated shortened (ODD_TEXT holds one of 10,000 characters)
    assert not any(words in said.lower() for words in PYDANTIC_WORDS), repr(message)
    assert len(said) < 400, repr(message)
    assert not any(part in message for part in _SECRET_PARTS), repr(message)


def _mutated_config(data: dict[str, Any]) -> None:
    path, exc = _load(data)
    if exc is not None:
        _assert_one_line(exc, path)


def _edit(base: int, path: tuple, value: Any) -> dict[str, Any]:
    """A base config with the value at ``path`` set (a new key too)."""
    data = copy.deepcopy(BASES[base])
    _at(data, path[:-1])[path[-1]] = value
    return data


#: Found by this fuzz, each the shrunk example: (what, config, the key named, words the message must hold).
#: Each was "unexpected error: ..." (exit 1), a message of more than one line, or one that said the wrong thing.
FOUND = [
    # unexpected error: TypeError: unhashable type: 'list'
    ("a channel type that is an array", _edit(0, ("channels", "outbox", "type"), []), "channels.outbox.type",
     ["got an array, expected one of: outbox, email"]),
    # these three said "channels.outbox: is missing 'type'"
    ("a channel type that is a number", _edit(0, ("channels", "outbox", "type"), 5), "channels.outbox.type",
     ["got an integer, expected one of: outbox, email"]),
    ("a channel that is a value", _edit(0, ("channels", "outbox"), 5), "channels.outbox",
     ["got an integer, expected a table with a 'type'"]),
    ("a channel as an array of tables", _edit(0, ("channels", "outbox"), [{"type": "outbox"}] * 2), "channels.outbox",
     ["got an array, expected a table with a 'type'"]),
    # a key holding a line break, written raw into the key path: the message was two lines
    ("an unknown key with a line break", _edit(0, ("source", "a\nb"), 1), "source.'a\\nb'", ["unknown key"]),
    ("an unknown key with a vertical tab", _edit(0, ("ledger", "\x0bk"), {}), "ledger.'\\x0bk'", ["unknown key"]),
    ("an unset variable under a key with a line break", _edit(1, ("source", "settings", "a\nb"), "${NOT_SET_HERE}"),
     "source.settings.'a\\nb'", ["NOT_SET_HERE is not set"]),
    ("a Spark secret under a key with a line break", _edit(0, ("source", "spark_conf"), {"x\npassword": "hunter2"}),
     "source.spark_conf.'x\\npassword'", ["a secret written into the file"]),
    ("a literal secret in a channel named with a line break",
     _edit(0, ("channels", "m\nx"), {"type": "webhook", "url": "https://example.com", "secret": "hunter2"}),
     "channels.'m\\nx'.secret", ["a secret written into the file"]),
    # unexpected error: ValueError: embedded null byte (each path resolved against the config's folder)
    ("a NUL in a template folder", _edit(0, ("reports", 1, "audience"), "nul\x00here"), "reports[1].audience",
     ["a path cannot hold a NUL character"]),
    ("a NUL in the archive path", _edit(0, ("archive", "path"), "a\x00b"), "archive.path", ["NUL"]),
    ("a NUL in a file of the source", _edit(0, ("source",), {"files": ["a\x00b"]}), "source.files[0]", ["NUL"]),
    ("a NUL in the ledger's SQLite file", _edit(0, ("ledger", "url"), "sqlite:///a\x00b"), "ledger.url", ["NUL"]),
    # unexpected error: OSError: [Errno 36] File name too long
    ("a very long timezone", _edit(0, ("reports", 1, "timezone"), "x" * 300), "reports[1].timezone",
     ["unknown timezone", "IANA"]),
    ("a very long template folder", _edit(0, ("reports", 1, "audience"), "x" * 300), "reports[1].audience",
     ["is not a folder"]),
    ("a very long CA file", _edit(1, ("channels", "mail", "ca_file"), "x" * 300), "channels.mail.ca_file",
     ["no such file"]),
    # unexpected error: RecursionError, OverflowError (re.compile)
    ("a redaction pattern nested too deeply", _edit(1, ("reports", 0, "redact_patterns"), {"x": "(" * 5000}),
     "reports[0].redact_patterns", ["'x' is not a valid regular expression (nested too deeply)"]),
    ("a redaction pattern repeated too often", _edit(1, ("reports", 0, "redact_patterns"), {"x": "a{99999999999}"}),
     "reports[0].redact_patterns", ["'x' is not a valid regular expression"]),
    # a variable holding a secret where another kind of value is expected: the message repeated the secret
    ("a secret as a timezone", _edit(0, ("reports", 1, "timezone"), "${SLACK_TOKEN}"), "reports[1].timezone",
     ["unknown timezone '${SLACK_TOKEN}'"]),
    ("a secret as a report id", _edit(0, ("reports", 0, "id"), "${SMTP_URL}"), "reports[0].id",
     ["'${SMTP_URL}' is not a report id"]),
    ("a secret as a channel type", _edit(0, ("channels", "outbox", "type"), "${SLACK_WEBHOOK}"), "channels.outbox",
     ["unknown channel type '${SLACK_WEBHOOK}'"]),
    ("a secret as an address", _edit(1, ("channels", "mail", "cc"), ["${SLACK_TOKEN}"]), "channels.mail.cc",
     ["got '${SLACK_TOKEN}'"]),
    ("a secret as a template folder", _edit(1, ("reports", 2, "audience"), "${HOOK_SECRET}"), "reports[2].audience",
     ["${HOOK_SECRET}' is not a folder"]),
    ("a secret as the epoch unit", _edit(1, ("source", "epoch_unit"), "${SMTP_URL}"), "source.epoch_unit",
     ["got '${SMTP_URL}'"]),
    # said "got an integer, input should be a valid number" and "got a decimal number, expected ... a number"
    ("an integer too large for a number", _edit(1, ("source", "max_conversation_hours"), 10**400),
     "source.max_conversation_hours", ["got an integer too large for a number"]),
    ("an infinite engine setting", _edit(1, ("source", "settings", "threads"), math.inf), "source.settings.threads",
     ["got inf, expected text, a finite number or true or false"]),
    # a choice that is not text was echoed as Python: "got ['week']", "got datetime.date(1295, 6, 13)"
    ("a period in an array", _edit(0, ("reports", 0, "period"), ["week"]), "reports[0].period",
     ["got an array, expected 'day', 'week' or 'month'"]),
    ("an epoch unit as a date", _edit(1, ("source", "epoch_unit"), date(1295, 6, 13)), "source.epoch_unit",
     ["got a date, expected 's', 'ms' or 'us'"]),
    # said "List should have at least 1 item after validation, not 0"
    ("no recipients", _edit(1, ("channels", "mail", "to"), []), "channels.mail.to",
     ["got an empty array, expected at least 1"]),
    ("no reports", _edit(0, ("reports",), []), "reports", ["got an empty array, expected at least 1"]),
]


@pytest.mark.parametrize("data, key, words", [case[1:] for case in FOUND], ids=[case[0] for case in FOUND])
def test_found_configs_are_one_config_error(data, key, words):
    path, exc = _load(data)
    assert exc is not None
    _assert_one_line(exc, path)
    assert exc.key == key, str(exc)
    assert all(word in str(exc) for word in words), str(exc)


@pytest.mark.parametrize("base", BASES, ids=["demo", "full"])
def test_the_bases_are_valid(base):
    assert _load(base)[1] is None


@_examples(400)
@given(mutated())
def test_a_mutated_config_loads_or_is_one_config_error(data):
    _mutated_config(data)


@_examples(40)
@given(mutated())
def test_check_says_a_mutated_config_in_one_line_exit_2(data):
    path, exc = _load(data)
    if exc is None:
        return  # check then opens the source: not the config's business
    with mock.patch.dict(os.environ, SECRETS):
        result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"agentdigest: error: {exc}\n"


@pytest.mark.parametrize("what", ["a channel as an array of tables", "an unknown key with a line break",
                                  "a secret as a timezone"])
def test_check_through_the_real_command(tmp_path, what):
    """As a user runs it: ``agentdigest check`` in a subprocess, on some of the configs found."""
    data, key, words = next(case[1:] for case in FOUND if case[0] == what)
    path = tmp_path / "agentdigest.toml"
    path.write_text(dumps(data), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agentdigest", "check", "--config", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **SECRETS}, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"agentdigest: error: {path}: {key}: ") and done.stderr.count("\n") == 1, done.stderr
    assert all(word in done.stderr for word in words), done.stderr
    assert not any(part in done.stderr for part in _SECRET_PARTS), done.stderr
