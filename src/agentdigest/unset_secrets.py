"""Channel secrets a dry run goes without: ``run --dry-run`` computes, renders and archives, and sends nothing,
so a ``${VAR}`` of a channel's secret setting (an SMTP password, a Slack token or webhook URL) that is not set
stands in for a value no channel can use. Found installing agentdigest as a new user: a dry run before setting
up delivery was refused for an unset SMTP password. ``check``, ``run``, ``run --test-to`` and ``schedule`` still
refuse it (:mod:`agentdigest.config`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import SecretStr

from .channel_settings import CHANNEL_SETTINGS, PLUGIN_CHANNEL_SETTINGS, key_part

#: ``${NAME}`` and ``$$`` (a literal ``$``), as the config file writes them.
VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: What a whole-value variable of a built-in URL setting stands in for: a URL its validator takes, on a
#: reserved domain that never resolves (RFC 2606), so nothing could ever be sent with it.
_WHOLE = {("email", "smtp_url"): "smtp+starttls://unset.invalid", ("slack", "webhook_url"): "https://unset.invalid/",
          ("webhook", "url"): "https://unset.invalid/"}
_PART = "unset"  # a password or a token, or a part of a URL


def secret_settings(channel: Any) -> list[str]:
    """The keys of a channel's table (a dict as read from TOML) that its settings model holds as secrets."""
    kind = channel.get("type") if isinstance(channel, dict) else None
    model = {**CHANNEL_SETTINGS, **PLUGIN_CHANNEL_SETTINGS}.get(kind) if isinstance(kind, str) else None
    if model is None:  # `type = []`, an unknown type: validation names it
        return []
    return [info.alias or field for field, info in model.model_fields.items()
            if SecretStr in (getattr(info.annotation, "__args__", None) or (info.annotation,))]


def stand_in(data: dict[str, Any], unset: list[tuple[str, str, str]], environ: Any = None) -> dict[str, Any]:
    """``data`` with each ``${VAR}`` of a channel's secret setting that the environment does not hold replaced by
    a stand-in; ``unset`` gets ``(VAR, "channels.<name>", key)`` for each. The stand-in is never shown: a channel
    whose settings are refused with it is refused as if no stand-in were there (the variable is not set)."""
    env = os.environ if environ is None else environ
    channels = data.get("channels")
    if not isinstance(channels, dict):
        return data
    out = dict(channels)
    for name, channel in channels.items():
        for key in secret_settings(channel):
            raw = channel.get(key)
            if not isinstance(raw, str):
                continue

            def sub(match: re.Match[str], kind: Any = channel.get("type"), key: str = key, raw: str = raw) -> str:
                variable = match.group(1)
                if variable is None or variable in env:
                    return match.group(0)  # expanded (or refused) as always
                unset.append((variable, f"channels.{key_part(name)}", key))
                return _WHOLE.get((kind, key), _PART) if match.group(0) == raw else _PART

            if (value := VARIABLE.sub(sub, raw)) != raw:
                out[name] = {**out[name], key: value}
    return {**data, "channels": out}


def stood_in(key: str | None, unset: list[tuple[str, str, str]]) -> bool:
    """Whether a config error at ``key`` is about a channel a stand-in was put in."""
    return key is not None and any(key == c or key.startswith((c + ".", c + "[")) for _, c, _ in unset)


def unset_note(unset: list[tuple[str, str, str]]) -> str:
    """One line saying which secrets a dry run went without, and that a real run needs them."""
    keys: dict[str, list[str]] = {}
    for variable, channel, key in unset:
        keys.setdefault(variable, []).append(f"{channel}.{key}")
    said = "; ".join(f"{key_part(v)} ({', '.join(dict.fromkeys(k))})" for v, k in keys.items())
    return (f"note: dry run without channel secrets not set in the environment: {said}; "
            "run, run --test-to, check and schedule need them")
