"""A config error in words: the key as users write it (``channels.mail.from``) and what was expected,
from pydantic's error; the rest of :class:`agentdigest.errors.ConfigError`'s one line."""

from __future__ import annotations

import difflib
import json
import math
import re
from datetime import date, datetime, time
from typing import Any

from .channel_settings import (CHANNEL_SETTINGS, CHANNEL_TYPES, PLUGIN, PLUGIN_CHANNEL_SETTINGS, SHOWN_CHARS,
                               channel_types, key_part, listed, shown)
from .settings import AlarmsConfig, ArchiveConfig, Config, LedgerConfig, ReportConfig
from .source_settings import SourceConfig


#: The members of an engine setting's type (str | int | float | bool), which pydantic adds to the location.
_SETTING_KINDS = ("str", "int", "float", "bool")


def _engine_setting(loc: tuple[Any, ...]) -> bool:
    """Whether ``loc`` is a value of [source.settings] or [source.spark_conf], ending in its union member's name."""
    return len(loc) == 4 and loc[:2] in (("source", "settings"), ("source", "spark_conf")) and loc[3] in _SETTING_KINDS


def key_path(key: str, part: str | int) -> str:
    """``key`` with one more part (a table's key, an array's index) as errors name it. Past two
    :data:`SHOWN_CHARS` characters a path stops growing and ends in ".…" (found in a config audit: a variable
    not set 300 tables deep was named by a key path of 2,800 characters)."""
    if key.endswith(".…"):
        return key
    if len(key) > 2 * SHOWN_CHARS:
        return f"{key}.…"
    if isinstance(part, int):
        return f"{key}[{part}]"
    return f"{key}.{key_part(part)}" if key else key_part(part)


def error_key(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the config key users write (``channels.mail.from``)."""
    if _engine_setting(loc):  # "source.spark_conf.spark.x.str" (found in a new-user audit)
        loc = loc[:3]
    if _files_member(loc):  # "source.files.str", "source.files.list[str][0]" (found in a config audit)
        loc = (*loc[:2], *loc[3:])
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


#: What a value of each kind pydantic refuses should have been, in the words of the config file (TOML's kinds)
_EXPECTED_KIND = {
    "string": "text in quotes", "int": "an integer", "float": "a number", "bool": "true or false",
    "list": "an array ([...])", "dict": "a table", "model": "a table", "model_attributes": "a table",
    "path": "a path in quotes", "date": "a date (YYYY-MM-DD)", "datetime": "a date and time",
    "time": "a time (HH:MM:SS)", "decimal": "a number", "url": "a URL", "enum": "one of the allowed values",
}
#: Bounds as pydantic names them in an error's ctx, in words.
_BOUNDS = {"greater_than": ("gt", "a number greater than {}"), "greater_than_equal": ("ge", "{} or more"),
           "less_than": ("lt", "a number less than {}"), "less_than_equal": ("le", "at most {}"),
           "multiple_of": ("multiple_of", "a multiple of {}")}
#: The member names pydantic adds to the location of a value that fits none of a union's: [source] files
#: (text or an array of text)
_FILES_MEMBERS = ("str", "list[str]")


def _files_member(loc: tuple[Any, ...]) -> str | None:
    """The union member ("str" or "list[str]") in the location of an error of [source] files, or None."""
    return loc[2] if len(loc) >= 3 and loc[:2] == ("source", "files") and loc[2] in _FILES_MEMBERS else None


def first_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error of pydantic's list a config error says: an unknown key first (it usually explains the rest:
    [[report]] makes 'reports' missing), else the first, but for an array of files the error of its item, not
    the one saying an array is not text."""
    unknown = next((e for e in errors if e["type"] == "extra_forbidden"), None)
    if unknown is not None:
        return unknown
    return next((e for e in errors if not (_files_member(e["loc"]) == "str" and isinstance(e.get("input"), list))),
                errors[0])


def _bound(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _dotted(key: Any, value: Any) -> str:
    """How to write the engine setting TOML read as tables: found in a Spark audit, `spark.executor.memory = "2g"`
    in [source.spark_conf] (TOML's dotted key: nested tables) said "source.spark_conf.spark: got a table", the
    quotes the key needs unnamed. The key only, not the value (it may come from an environment variable)."""
    parts = [str(key)]
    while isinstance(value, dict) and value:  # the first key of several: spark.executor.memory and .cores
        name, value = next(iter(value.items()))
        parts.append(str(name))
    dotted = ".".join(parts)
    if len(parts) == 1 or len(dotted) > SHOWN_CHARS:
        return ""
    return f" (a key with dots is written in quotes: {json.dumps(dotted)} = ...)"


def _plain(msg: str) -> str:
    """pydantic's "Input should be X" as "expected X" (for an error this module does not word itself)."""
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    for theirs in ("Input should be ", "Input should ", "String should ", "List should ", "Dictionary should "):
        if msg.startswith(theirs):
            return "expected " + msg[len(theirs):]
    return msg


def error_message(err: dict[str, Any]) -> str:
    """A pydantic error as what was expected, in words (the rest of a config error's one line)."""
    msg, kind_of_error, value = err["msg"], err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind_of_error == "missing":
        return "is required"
    if kind_of_error == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        # A top-level key can only be one of the file's sections ([channel.x] means [channels.x], not
        # [alarms] channel); deeper, any key may be meant, but never the unknown key itself.
        keys = [f.alias or n for n, f in Config.model_fields.items()] if len(err["loc"]) == 1 else known_keys()
        close = difflib.get_close_matches(key, [k for k in keys if k != key], n=1, cutoff=0.75)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind_of_error == "union_tag_invalid":
        return f"unknown channel type {shown(value.get('type'))} (expected one of: {listed(channel_types())})"
    if kind_of_error == "union_tag_not_found":
        # Said as found by a config fuzz: `type = []`, `channels.x = 5` and [[channels.x]] were each "is missing 'type'"
        if not isinstance(value, dict):
            return f"got {_kind(value)}, expected a table with a 'type' (one of: {listed(channel_types())})"
        if "type" in value:  # its key is the type's (see parse_config)
            return f"got {_kind(value['type'])}, expected one of: {listed(channel_types())}"
        return f"is missing 'type' (expected one of: {listed(channel_types())})"
    if kind_of_error in ("too_short", "too_long", "string_too_short", "string_too_long"):
        # pydantic's "List should have at least 1 item after validation, not 0" (found by a config fuzz)
        least = kind_of_error.endswith("short")
        bound = ctx.get("min_length" if least else "max_length", 1 if least else 0)
        if isinstance(value, str):
            got = "empty text" if not value else f"text of {len(value):,} characters"
            unit = "character" if bound == 1 else "characters"
        else:
            got = f"{len(value)} item(s)" if value else "an empty array"
            unit = ""
        return f"got {got}, expected {'at least' if least else 'at most'} {bound}{' ' + unit if unit else ''}"
    if kind_of_error == "literal_error":
        # Text as written, shortened; any other value by its kind (found by a config fuzz: `period = ["week"]` was
        # echoed as Python, "got ['week']", a date as "got datetime.date(1295, 6, 13)", a table in full)
        got = shown(value) if isinstance(value, str) else _kind(value)
        return f"got {got}, expected {ctx.get('expected') or _plain(msg).removeprefix('expected ')}"
    if _engine_setting(err["loc"]):  # not "input should be a valid string" for `threads = [2]`
        if isinstance(value, float) and not math.isfinite(value):  # inf is a decimal number too
            return f"got {value}, expected text, a finite number or true or false"
        return f"got {_kind(value)}, expected text, a number or true or false{_dotted(err['loc'][2], value)}"
    if kind_of_error == "finite_number":  # inf, nan: "Input should be a finite number"
        return f"got {shown(value)}, expected a finite number"
    if kind_of_error == "string_pattern_mismatch":  # a plug-in's setting: "String should match pattern '...'"
        return f"got {shown(value)}, expected text matching the pattern {shown(ctx.get('pattern'))}"
    if kind_of_error in _BOUNDS:  # a number out of the setting's range: said with the number, as written
        name, words = _BOUNDS[kind_of_error]
        return f"got {shown(value)}, expected {words.format(_bound(ctx.get(name)))}"
    if kind_of_error.endswith(("_type", "_parsing")) or kind_of_error == "int_from_float":
        # What was written, by its TOML kind, not its value: it may come from an environment variable (a
        # secret). Found by a new user: `human_cost_per_conversation = "4.5"` read "Input should be a valid
        # number", and nothing said the quotes were the trouble.
        kind = next((name for t, name in _TOML_KINDS if isinstance(value, t)), None)
        if kind == "an integer" and kind_of_error.startswith("float"):  # 10**400: "got an integer, ... a number"
            return "got an integer too large for a number (expected a number in the setting's range)"
        files = _files_member(err["loc"])
        if files == "str":  # files = 5: neither text nor an array
            expected = "a file name or glob in quotes, or an array of them"
        else:
            expected = (_EXPECTED_KIND.get(kind_of_error.removesuffix("_from_float").rsplit("_", 1)[0])
                        or _plain(msg).removeprefix("expected "))
        quoted = (isinstance(value, str) and kind_of_error.startswith(("int", "float", "decimal"))
                  and _NUMBER.fullmatch(value.strip()) is not None)
        return f"got {kind or 'a value'}, expected {expected}" + (" (write a number without quotes)" if quoted else "")
    plain = _plain(msg)
    if plain != msg.removeprefix("Value error, ").removeprefix("Assertion failed, "):  # pydantic's "Input should ..."
        got = shown(value) if isinstance(value, (str, int, float)) else _kind(value)
        return f"got {got}, {plain}"
    return plain
