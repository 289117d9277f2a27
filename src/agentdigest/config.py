"""The configuration file (``agentdigest.toml``): loading, ``${VAR}`` expansion and validation.

Every problem becomes one :class:`ConfigError` naming the file, the key and what was expected.
Relative paths (DuckDB and SQLite files, ``files`` globs, archive and outbox folders) are taken
relative to the config file's folder, so a config means the same thing from any working directory.
The settings themselves (what each key may hold) are the models of :mod:`agentdigest.settings`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr, ValidationError  # noqa: F401 - SecretStr is re-exported

from .errors import ConfigError, first_line
from .masking import query_tokens, secret_query, url_password
from .channel_settings import (  # noqa: F401 - the models are part of this module's API
    CHANNEL_SETTINGS,
    CHANNEL_TYPES,
    PLUGIN_CHANNEL_SETTINGS,
    PLUGIN_GROUP,
    ChannelConfig,
    ChannelSettings,
    EmailChannel,
    OutboxChannel,
    SlackChannel,
    WebhookChannel,
    _ChannelBase,
    as_written,
    shown,
    variables_shown_as_written,
)
from .settings import (  # noqa: F401 - the models are part of this module's API
    DEFAULT_CONFIG,
    AlarmsConfig,
    ArchiveConfig,
    Config,
    LedgerConfig,
    ReportConfig,
    _KeyedError,
    _NestedError,
)
from .source_settings import (  # noqa: F401 - the models are part of this module's API
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    SourceConfig,
)
from .config_errors import error_key, error_message, first_error, key_part, key_path
from .unset_secrets import VARIABLE as _ENV_RE, stand_in, stood_in

_AUTHORITY_START = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]*", re.I)  # scheme:// up to a spot in user:password
_USERINFO_REST = re.compile(r"[^/?#@\s]*@")
# scheme:// ... ?name= (or &name=) up to a spot in that query value: postgresql://u@db/x?password=${PW}
_QUERY_VALUE_START = re.compile(r"[a-z][a-z0-9+.-]*://[^#\s]*[?&][^=&#\s]+=[^&#\s]*", re.I)
_PERCENT_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")


def _userinfo_quote(value: str) -> str:
    """``value`` fit for the user:password part of a URL or a query value: a raw password (PGPASSWORD holds
    one) with "/", "@", ":", "&" or "#" would otherwise end it early and be shown as the host, path or
    another parameter in errors.
    ``%XX`` is kept as an escape, so a value encoded already is not encoded twice."""
    return "".join(part if _PERCENT_ESCAPE.fullmatch(part) else quote(part, safe="")
                   for part in _PERCENT_ESCAPE.split(value))


_BARE_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def variable_problem(value: str) -> str | None:
    """What is wrong with the ``${VAR}`` references of ``value``, or None. Found by a new user: an unclosed
    ``"${SMTP_URL"`` was called "a secret written into the file", and ``"$SMTP_URL"`` (shell style) was read as
    that text and refused as "expected smtp://...". The value is never shown: it may hold a secret."""
    rest = _ENV_RE.sub("", value)
    if "${" in rest:
        return "a ${ without a variable name and } after it (expected ${NAME}; $$ is a literal $)"
    if _BARE_VARIABLE.fullmatch(value):
        name = key_part(value[1:])
        return f"${name} is not read as a variable (expected ${{{name}}}, or $${name} for the text itself)"
    return None


def refuse_bad_variables(value: Any, key: str, file: str) -> None:
    """A config error naming the first key whose value misspells a ``${VAR}`` (see :func:`variable_problem`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            refuse_bad_variables(v, key_path(key, k), file)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            refuse_bad_variables(v, key_path(key, i), file)
    elif isinstance(value, str) and (problem := variable_problem(value)):
        raise ConfigError(problem, file=file, key=key or "(top level)")


def expand_env(value: Any, key: str, file: str, environ: dict[str, str] | None = None,
               used: dict[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` with the environment's value in every string; ``$$`` is a literal ``$``. ``used``, if
    given, gets each text put in a variable's place, under the ``${VAR}`` it replaced."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand_env(v, key_path(key, k), file, env, used) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, key_path(key, i), file, env, used) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        text = value_of(match)
        if used is not None:
            used[text] = match.group(0)
        return text

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        shown_name = key_part(name)  # a name of 5,000 characters is shortened as a key is
        if name not in env:
            raise ConfigError(f"environment variable {shown_name} is not set (expected it to hold this value)", file=file, key=key)
        if any("\udc80" <= c <= "\udcff" for c in env[name]):
            # Bytes that are not UTF-8 (a Latin-1 shell, a binary secret): Python holds them as lone surrogates,
            # which failed the run at send time with "unexpected error: UnicodeEncodeError" (a leak audit).
            # The value is never shown: it may be a secret.
            raise ConfigError(f"environment variable {shown_name} holds bytes that are not UTF-8 (expected text in "
                              "UTF-8)", file=file, key=key)
        if not env[name] and match.group(0) == value:
            # Set but empty (a deploy that forgot to fill it): said so, not "expected smtp://..." about "".
            raise ConfigError(f"environment variable {shown_name} is empty (expected it to hold this value)", file=file, key=key)
        if _AUTHORITY_START.fullmatch(value, 0, match.start()) and _USERINFO_REST.match(value, match.end()):
            return _userinfo_quote(env[name])  # postgresql://reports:${PGPASSWORD}@db/events
        if _QUERY_VALUE_START.fullmatch(value, 0, match.start()):
            return _userinfo_quote(env[name])  # ?password=${PGPASSWORD}: "&" or "#" in it ended the value
        if match.group(0) == value and (password := url_password(env[name])):
            # A whole URL in one variable (DATABASE_URL style) whose password holds a raw "/", "?", "#" or a
            # space: encoded too, or the driver read part of it as the port and printed it (a re-check)
            head, _, rest = env[name].partition(f":{password}@")
            return f"{head}:{_userinfo_quote(password)}@{rest}"
        return env[name]

    return _ENV_RE.sub(sub, value)


def _absolute(base: Path, data: dict[str, Any], file: str = DEFAULT_CONFIG) -> dict[str, Any]:
    """Resolve relative file paths against the config file's folder, and ``~`` to the home folder."""

    def fix(path: str, key: str) -> str:
        if "\x00" in path:  # found by a config fuzz: "unexpected error: ValueError: embedded null byte"
            raise ConfigError("a path cannot hold a NUL character (expected a file or folder name)", file=file, key=key)
        if "://" in path:
            return path
        path = os.path.expanduser(path)
        if Path(path).is_absolute():
            return path
        return str((base / path).resolve())

    source = data.get("source")
    if isinstance(source, dict):
        url = source.get("url")
        if isinstance(url, str) and url.startswith("duckdb://"):
            path = url[len("duckdb://"):]
            if path.startswith(("/./", "/../")):
                path = path[1:]
            if path and path != ":memory:" and not path.startswith("/"):
                source["url"] = "duckdb://" + fix(path, "source.url")
        files = source.get("files")
        if isinstance(files, str):
            source["files"] = fix(files, "source.files")
        elif isinstance(files, list):
            source["files"] = [fix(f, f"source.files[{i}]") if isinstance(f, str) else f for i, f in enumerate(files)]
    for section in ("archive",):
        if isinstance(data.get(section), dict) and isinstance(data[section].get("path"), str):
            data[section]["path"] = fix(data[section]["path"], f"{section}.path")
    archive = data.setdefault("archive", {})
    if isinstance(archive, dict):  # else (`archive = "x"`) left for validation to name the key
        archive.setdefault("path", fix("./reports", "archive.path"))
    ledger = data.setdefault("ledger", {})
    if isinstance(ledger, dict):
        url = ledger.get("url", "sqlite:///./agentdigest.db")
        m = re.match(r"^sqlite:///(?!/)(.+)$", url) if isinstance(url, str) else None
        if m and m.group(1) != ":memory:":
            url = "sqlite:///" + fix(m.group(1), "ledger.url")
        ledger["url"] = url
    for key, report in _entries(data.get("reports"), "reports"):
        audience = report.get("audience") if isinstance(report, dict) else None
        if isinstance(audience, str) and audience not in ("executive", "engineering"):
            report["audience"] = fix(audience, f"{key}.audience")
    for key, channel in _entries(data.get("channels"), "channels"):
        if isinstance(channel, dict) and channel.get("type") == "outbox" and isinstance(channel.get("path", ""), str):
            # not a text path (`path = 5`): left for validation to name the key (it failed here as a TypeError)
            channel["path"] = fix(channel.get("path", "./outbox"), f"{key}.path")
        if isinstance(channel, dict) and isinstance(channel.get("ca_file"), str):
            channel["ca_file"] = fix(channel["ca_file"], f"{key}.ca_file")
    return data


def _entries(section: Any, name: str) -> list[tuple[str, Any]]:
    """A section's entries with their keys (a table's values, an array's items); none for a value of another
    kind (`channels = "x"`, `reports = 5`), which validation names (found in a new-user audit: each was
    "unexpected error: AttributeError", exit 1)."""
    if isinstance(section, dict):
        return [(f"{name}.{key_part(k)}", v) for k, v in section.items()]
    return [(f"{name}[{i}]", v) for i, v in enumerate(section)] if isinstance(section, list) else []


def _written(value: str) -> str:
    """What of ``value`` is written in the file: its ``${VAR}`` parts removed (they come from the
    environment). A value that is only variables is empty."""
    return _ENV_RE.sub("", value)


#: A secret written into the file, in one line kept short (it was 130 characters after the key, found in a
#: new-user review): what, and what is expected instead.
_SECRET_HERE = "{what} written into the file (expected \"${{VAR}}\" {place}, with VAR set in the environment)"


def refuse_literal_secrets(data: dict[str, Any], file: str) -> None:
    """Secrets come only from the environment: a secret written into the file itself (a token, a
    password inside a URL, a token in a URL's query, a Slack webhook URL, a Spark secret setting) is a
    config error naming the key. Only what is written counts: ``${VAR}`` parts pass, and so do URLs
    that carry no credential (``smtp://relay:25``). Found in a config audit: any ``${...}`` in a value
    used to let all of it pass (``smtp://u:hunter2@${SMTP_HOST}:25``)."""
    for section in ("source", "ledger"):  # database URLs: postgresql://user:${PGPASSWORD}@host/db
        raw = (data.get(section) or {}).get("url") if isinstance(data.get(section), dict) else None
        if isinstance(raw, str) and (url_password(_written(raw)) or secret_query(_written(raw))):
            raise ConfigError(_SECRET_HERE.format(what="a password", place="in its place"), file=file,
                              key=f"{section}.url")
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    files = source.get("files")
    for i, raw in enumerate(files if isinstance(files, list) else [files] if isinstance(files, str) else []):
        if isinstance(raw, str) and (url_password(_written(raw)) or secret_query(_written(raw))):
            raise ConfigError(_SECRET_HERE.format(what="a credential", place="for the URL"), file=file,
                              key=f"source.files[{i}]" if isinstance(files, list) else "source.files")
    spark_conf = source.get("spark_conf")
    for name, raw in (spark_conf.items() if isinstance(spark_conf, dict) else ()):
        if isinstance(raw, (str, int, float)) and SECRET_SETTING.search(name) and _written(str(raw)).strip():
            raise ConfigError(_SECRET_HERE.format(what="a secret", place="here"), file=file,
                              key=f"source.spark_conf.{key_part(name)}")
    models = {**CHANNEL_SETTINGS, **PLUGIN_CHANNEL_SETTINGS}
    channels = data.get("channels")
    for name, channel in (channels.items() if isinstance(channels, dict) else ()):
        kind = channel.get("type") if isinstance(channel, dict) else None
        model = models.get(kind) if isinstance(kind, str) else None  # `type = []`: validation names it
        if model is None:
            continue
        for field, info in model.model_fields.items():
            key = info.alias or field
            raw = channel.get(key)
            if not isinstance(raw, str) or SecretStr not in (getattr(info.annotation, "__args__", None) or (info.annotation,)):
                continue
            if (channel.get("type"), key) in _URL_SETTINGS and "${" not in raw and not _SCHEME.match(raw):
                continue  # not a URL at all (smtp_url = "smtp.example.com:587"): its validator says what is expected
            if _holds_secret(_written(raw)):
                raise ConfigError(_SECRET_HERE.format(what="a secret", place="here"), file=file,
                                  key=f"channels.{key_part(name)}.{key}")


#: The built-in channels' URL settings: each one's validator refuses a value without its scheme, unechoed.
#: Such a value was called "a secret written into the file" (a new-user audit: `smtp_url = "smtp.example.com:587"`).
_URL_SETTINGS = {("email", "smtp_url"), ("slack", "webhook_url"), ("webhook", "url")}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)

#: Spark settings that hold credentials (fs.s3a.secret.key, a JDBC password, an OAuth token).
SECRET_SETTING = re.compile(r"(?i)(secret|password|token|credential)")


def _holds_secret(value: str) -> bool:
    """Whether the written part of a secret setting holds one (the ``${VAR}`` parts already removed)."""
    if not re.match(r"^[a-z][a-z0-9+.-]*://", value, re.I):
        return bool(value.strip())  # a token, a signing secret
    return (bool(url_password(value)) or bool(query_tokens(value))
            # a Slack webhook whose secret part is written here: ".../services/T0/B0/${HOOK_SECRET}" passes,
            # ".../services/T0/B0/XyZ.../${SFX}" does not (a re-check)
            or bool(re.match(r"^https?://hooks\.slack\.com/(?:services/[^/]*/[^/]*/[^/]|.*[^/]$)", value, re.I)))


def load_plugins(file: str = DEFAULT_CONFIG) -> None:
    """Read the settings model of each channel class installed packages declare under the
    ``agentdigest.channels`` entry-point group, so their ``[channels.<name>]`` tables validate (the
    channel itself is found by ``agentdigest.channels.make_channel``). A broken plug-in is one line."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name in CHANNEL_TYPES or ep.name in PLUGIN_CHANNEL_SETTINGS:
            continue
        try:
            cls = ep.load()
            model = cls.settings_model
            if not (isinstance(model, type) and issubclass(model, ChannelSettings)):
                raise TypeError("its settings_model is not a ChannelSettings subclass")
        except Exception as exc:
            # its first line, shortened: a plug-in's error of several lines split the one line (a config audit)
            raise ConfigError(f"cannot load the channel plug-in {shown(ep.value)} ({type(exc).__name__}: "
                              f"{key_part(first_line(exc))})", file=file,
                              key=f"entry point {PLUGIN_GROUP}.{key_part(ep.name)}") from None
        PLUGIN_CHANNEL_SETTINGS[ep.name] = model


def _unexpanded(message: str, used: dict[str, str]) -> str:
    """``message`` with every variable's value shown as the ``${VAR}`` written in the file: a value a validator
    repeats (`timezone = "${SLACK_TOKEN}"`: "unknown timezone 'xoxb-...'") may be a secret (found by a config
    fuzz, in every message that quotes a value: report ids, timezones, addresses, channel types, folders)."""
    return as_written(message, used, escaped=True)


def parse_config(data: dict[str, Any], file: str = DEFAULT_CONFIG, base: Path | None = None,
                 unset: list[tuple[str, str, str]] | None = None) -> Config:
    """Validate a config given as a dict (as read from TOML). With ``unset`` (a dry run's), a channel's secret
    whose variable is not set is let pass with a stand-in and listed there (see :mod:`agentdigest.unset_secrets`)."""
    load_plugins(file)
    refuse_bad_variables(data, "", file)
    if unset is not None:
        try:
            return _validated(stand_in(data, unset), file, base)
        except ConfigError as exc:
            if not stood_in(exc.key, unset):
                raise
            # Refused with a stand-in: refused as without one, validated again without them, so the message is the
            # one a run gives (a variable not set), never one about the stand-in. An error path: it costs nothing.
            unset.clear()
    return _validated(data, file, base)


def _validated(data: dict[str, Any], file: str, base: Path | None) -> Config:
    """``data``'s variables expanded, its paths made absolute (from ``base``) and the whole validated."""
    used: dict[str, str] = {}
    data = expand_env(data, "", file, used=used)
    if base is not None:
        data = _absolute(base, data, file)
    try:
        with variables_shown_as_written(used):  # a value a message repeats is shown as the file writes it
            config = Config.model_validate(data)
    except ValidationError as exc:
        err = first_error(exc.errors())
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            raise ConfigError(_unexpanded(str(ctx_error), used), file=file, key=ctx_error.key) from None
        if isinstance(ctx_error, _NestedError):
            err = {**ctx_error.error, "loc": (*ctx_error.loc, *ctx_error.error["loc"])}
        if err["type"] == "union_tag_not_found" and isinstance(err.get("input"), dict) and "type" in err["input"]:
            err = {**err, "loc": (*err["loc"], "type")}  # `type = []`: the type's key, not the channel's
        with variables_shown_as_written(used):
            message = error_message(err)
        raise ConfigError(_unexpanded(message, used), file=file, key=error_key(err["loc"]) or "(top level)") from None
    return config.model_copy(update={"path": Path(file)})


def config_path(path: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the argument, else $AGENTDIGEST_CONFIG, else ./agentdigest.toml."""
    return Path(path or os.environ.get("AGENTDIGEST_CONFIG") or DEFAULT_CONFIG)


def command(config: Config, args: str) -> str:
    """``agentdigest ARGS`` as a user can paste it: with ``--config`` unless the config is the default one."""
    found = config_path(None)
    default = config.path is None or (found.exists() and Path(config.path).resolve() == found.resolve())
    return f"agentdigest {args}" + ("" if default else f" --config {config.path}")


def load_config(path: str | os.PathLike[str] | None = None, unset: list[tuple[str, str, str]] | None = None) -> Config:
    """Read, expand and validate a config file; raise one ConfigError for the first problem. ``unset``: see
    :func:`parse_config` (for ``run --dry-run`` only: the channels' secrets may then be stand-ins)."""
    file = config_path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        # Where it looked and why there (found by a new user: "agentdigest.toml: file not found" did not
        # say which folder, nor how to name another file).
        given = ("from --config" if path else "from $AGENTDIGEST_CONFIG" if os.environ.get("AGENTDIGEST_CONFIG")
                 else "the default")
        if file.is_symlink():  # a link whose target is gone: "file not found" of a file `ls` shows misled
            raise ConfigError(f"is a link to {os.readlink(file)}, which does not exist ({given}; expected a TOML "
                              "config at the link's target)", file=str(file)) from None
        raise ConfigError(f"file not found: {file.absolute()} ({given}; expected a TOML config: name yours with "
                          "--config FILE or $AGENTDIGEST_CONFIG; `agentdigest demo --dir DIR` writes an example)",
                          file=str(file)) from None
    except IsADirectoryError:
        # `--config ""` or `--config conf/` said ".: cannot be read (Is a directory)" (a new-user audit)
        raise ConfigError(f"is a folder, not a config file (expected a TOML file such as "
                          f"{file / DEFAULT_CONFIG}; an empty --config names the current folder)", file=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", file=str(file)) from None
    try:
        # utf-8-sig: a byte-order mark (Notepad writes one) is no TOML error (found in a config audit)
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=str(file)) from None
    except RecursionError:  # thousands of nested arrays
        raise ConfigError("invalid TOML: nested too deeply", file=str(file)) from None
    load_plugins(str(file))
    refuse_bad_variables(data, "", str(file))  # before secrets: "${PW" is a typo, not a secret written here
    refuse_literal_secrets(data, str(file))
    return parse_config(data, str(file), base=file.resolve().parent, unset=unset)
