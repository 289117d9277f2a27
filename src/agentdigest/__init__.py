"""agentdigest: scheduled performance reports for AI-agent programs."""

from .errors import AgentDigestError, ConfigError, DeliveryError, InputError, RenderError, SourceError

__version__ = "0.1.0"
__all__ = [
    "AgentDigestError",
    "ConfigError",
    "DeliveryError",
    "InputError",
    "RenderError",
    "SourceError",
    "__version__",
]
