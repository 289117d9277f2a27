"""Delivery channels, by ``type``: one file each, registered here the way a user's would be.

A new channel is a class following :class:`~agentdigest.channels.base.Channel` (usually a
:class:`~agentdigest.channels.base.BaseChannel` subclass) passed to :func:`register`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import BaseChannel, Channel, ChannelFailure, CheckResult, Delivery, Receipt, TargetResult
from .email import EmailChannel
from .outbox import OutboxChannel
from .slack import SlackChannel
from .webhook import WebhookChannel

__all__ = [
    "BaseChannel", "Channel", "ChannelFailure", "CheckResult", "Delivery", "Receipt", "TargetResult",
    "REGISTRY", "register", "make_channel",
]

REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Make a channel class available under its ``type``; usable as a class decorator."""
    if not getattr(cls, "type", None):
        raise ValueError(f"{cls.__name__} needs a 'type' class attribute")
    REGISTRY[cls.type] = cls
    return cls


for _builtin in (OutboxChannel, EmailChannel, SlackChannel, WebhookChannel):
    register(_builtin)


def make_channel(name: str, settings: Any) -> Channel:
    """The channel object for a configured channel ``name`` with its settings model."""
    try:
        cls = REGISTRY[settings.type]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown channel type {settings.type!r} (expected one of: {known})",
                          key=f"channels.{name}.type") from None
    return cls(name, settings)
