"""A config error in words: the key as users write it (``channels.mail.from``) and what was expected,
from pydantic's error; the rest of :class:`agentdigest.errors.ConfigError`'s one line."""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime, time
from typing import Any

from .channel_settings import CHANNEL_SETTINGS, CHANNEL_TYPES, PLUGIN, PLUGIN_CHANNEL_SETTINGS, channel_types, shown
from .settings import AlarmsConfig, ArchiveConfig, Config, LedgerConfig, ReportConfig
from .source_settings import SourceConfig


#: The members of an engine setting's type (str | int | float | bool), which pydantic adds to the location.
_SETTING_KINDS = ("str", "int", "float", "bool")


def _engine_setting(loc: tuple[Any, ...]) -> bool:
    """Whether ``loc`` is a value of [source.settings] or [source.spark_conf], ending in its union member's name."""
    return len(loc) == 4 and loc[:2] in (("source", "settings"), ("source", "spark_conf")) and loc[3] in _SETTING_KINDS


def key_part(name: str) -> str:
    """One key of a key path as it reads on one line: quoted and escaped (``'a\\nb'``) if it holds a line break,
    another unprintable character or nothing (found by a config fuzz: an unknown key "a\\nb" split the error in two)."""
    return name if name and name.isprintable() else repr(name)


def error_key(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the config key users write (``channels.mail.from``)."""
    if _engine_setting(loc):  # "source.spark_conf.spark.x.str" (found in a new-user audit)
        loc = loc[:3]
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part in CHANNEL_TYPES or part == PLUGIN) and out.startswith("channels."):
            continue  # pydantic adds the union member's tag to the location
        else:
            part = key_part(part) if isinstance(part, str) else str(part)
            out += f".{part}" if out else part
    return out.replace("from_", "from")


def known_keys() -> list[str]:
    """Every key a config file may hold, for "did you mean" hints."""
    models = [Config, SourceConfig, ArchiveConfig, LedgerConfig, AlarmsConfig, ReportConfig,
              *CHANNEL_SETTINGS.values(), *PLUGIN_CHANNEL_SETTINGS.values()]
    return sorted({info.alias or name for model in models for name, info in model.model_fields.items()})


#: A value's kind as TOML names it, for "got text, input should be a valid number" (bool before int: a bool is one)
_TOML_KINDS = ((str, "text"), (bool, "true or false"), (int, "an integer"), (float, "a decimal number"),
               (list, "an array"), (dict, "a table"), (datetime, "a date-time"), (date, "a date"), (time, "a time"))
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _kind(value: Any) -> str:
    """A value's kind as TOML names it ("an array")."""
    return next((name for t, name in _TOML_KINDS if isinstance(value, t)), "a value")


def error_message(err: dict[str, Any]) -> str:
    """A pydantic error as what was expected, in words (the rest of a config error's one line)."""
    msg = err["msg"]
    if err["type"] == "missing":
        return "is required"
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        # A top-level key can only be one of the file's sections ([channel.x] means [channels.x], not
        # [alarms] channel); deeper, any key may be meant, but never the unknown key itself.
        keys = [f.alias or n for n, f in Config.model_fields.items()] if len(err["loc"]) == 1 else known_keys()
        close = difflib.get_close_matches(key, [k for k in keys if k != key], n=1, cutoff=0.75)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] == "union_tag_invalid":
        return f"unknown channel type {shown(err['input'].get('type'))} (expected one of: {', '.join(channel_types())})"
    if err["type"] == "union_tag_not_found":
        # Said as found by a config fuzz: `type = []`, `channels.x = 5` and [[channels.x]] were each "is missing 'type'"
        value = err.get("input")
        if not isinstance(value, dict):
            return f"got {_kind(value)}, expected a table with a 'type' (one of: {', '.join(channel_types())})"
        if "type" in value:  # its key is the type's (see parse_config)
            return f"got {_kind(value['type'])}, expected one of: {', '.join(channel_types())}"
        return f"is missing 'type' (expected one of: {', '.join(channel_types())})"
    if err["type"] == "too_short" and isinstance(err.get("input"), list):  # `to = []`, `reports = []`
        # pydantic's "List should have at least 1 item after validation, not 0" (found by a config fuzz)
        got = f"{len(err['input'])} item(s)" if err["input"] else "an empty array"
        return f"got {got}, expected at least {(err.get('ctx') or {}).get('min_length', 1)}"
    if err["type"] == "literal_error":
        # Text as written, shortened; any other value by its kind (found by a config fuzz: `period = ["week"]` was
        # echoed as Python, "got ['week']", a date as "got datetime.date(1295, 6, 13)", a table in full)
        got = shown(err["input"]) if isinstance(err["input"], str) else _kind(err["input"])
        return f"got {got}, {msg[0].lower()}{msg[1:]}"
    if _engine_setting(err["loc"]):  # not "input should be a valid string" for `threads = [2]`
        if isinstance(err.get("input"), float) and not math.isfinite(err["input"]):  # inf is a decimal number too
            return f"got {err['input']}, expected text, a finite number or true or false"
        return f"got {_kind(err.get('input'))}, expected text, a number or true or false"
    if err["type"].endswith(("_type", "_parsing")):
        # What was written, by its TOML kind, not its value: it may come from an environment variable (a
        # secret). Found by a new user: `human_cost_per_conversation = "4.5"` read "Input should be a valid
        # number", and nothing said the quotes were the trouble.
        value = err.get("input")
        kind = next((name for t, name in _TOML_KINDS if isinstance(value, t)), None)
        if kind == "an integer" and err["type"].startswith("float"):  # 10**400: "got an integer, ... a valid number"
            return "got an integer too large for a number (expected a number in the setting's range)"
        if kind is not None:
            quoted = isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
            msg = msg.replace("a valid list", "an array ([...])").replace("a valid dictionary", "a table")
            # pydantic names the Python class: "Input is not a valid path for <class 'pathlib.Path'>"
            msg = re.sub(r"is not a valid path for .*", "should be a path in quotes", msg)
            msg = re.sub(r" or instance of \w+", "", msg)  # "a table or instance of LedgerConfig"
            return f"got {kind}, {msg[0].lower()}{msg[1:]}" + (" (write a number without quotes)" if quoted else "")
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg
