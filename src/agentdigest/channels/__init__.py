"""Delivery channels, by ``type``: one file each, registered here the way a user's would be.

A new channel is a class following :class:`~agentdigest.channels.base.Channel` (usually a
:class:`~agentdigest.channels.base.BaseChannel` subclass) passed to :func:`register`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..channel_settings import CHANNEL_TYPES, PLUGIN_CHANNEL_SETTINGS, PLUGIN_GROUP, ChannelSettings
from .base import BaseChannel, Channel, ChannelFailure, CheckResult, Delivery, Receipt, TargetResult
from .email import EmailChannel
from .outbox import OutboxChannel
from .slack import SlackChannel
from .webhook import WebhookChannel

__all__ = [
    "BaseChannel", "Channel", "ChannelFailure", "CheckResult", "Delivery", "Receipt", "TargetResult",
    "REGISTRY", "register", "unregister", "make_channel",
]

REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Make a channel class available under its ``type``; usable as a class decorator.

    A plug-in's ``settings_model`` (a :class:`~agentdigest.config.ChannelSettings` subclass whose
    ``type`` is ``Literal["<its type>"]``) is what ``[channels.<name>]`` tables of that type are
    validated with; a package makes the class known to the command line by an entry point in the
    ``agentdigest.channels`` group.
    """
    if not getattr(cls, "type", None):
        raise ValueError(f"{cls.__name__} needs a 'type' class attribute")
    REGISTRY[cls.type] = cls
    model = getattr(cls, "settings_model", None)
    if cls.type not in CHANNEL_TYPES and isinstance(model, type) and issubclass(model, ChannelSettings):
        PLUGIN_CHANNEL_SETTINGS[cls.type] = model
    return cls


def unregister(channel_type: str) -> None:
    """Forget a plug-in channel type (tests, notebooks)."""
    REGISTRY.pop(channel_type, None)
    PLUGIN_CHANNEL_SETTINGS.pop(channel_type, None)


for _builtin in (OutboxChannel, EmailChannel, SlackChannel, WebhookChannel):
    register(_builtin)


def _from_entry_point(channel_type: str) -> None:
    """Register the channel class an installed package declares for ``channel_type``, if any."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP, name=channel_type):
        register(ep.load())


def make_channel(name: str, settings: Any) -> Channel:
    """The channel object for a configured channel ``name`` with its settings model."""
    if settings.type not in REGISTRY:
        _from_entry_point(settings.type)
    try:
        cls = REGISTRY[settings.type]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown channel type {settings.type!r} (expected one of: {known})",
                          key=f"channels.{name}.type") from None
    return cls(name, settings)
