"""The public API is pinned (httpx style) and the error tree behaves as documented."""

import agentdigest
from agentdigest import errors


def test_all_is_pinned():
    assert sorted(agentdigest.__all__) == sorted([
        "AgentDigestError", "ConfigError", "DeliveryError", "InputError", "RenderError", "SourceError", "__version__",
    ])


def test_errors_have_two_parents_and_exit_codes():
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.ConfigError, errors.AgentDigestError)
    assert issubclass(errors.InputError, ValueError)
    assert (errors.ConfigError("x").exit_code, errors.InputError("x").exit_code, errors.SourceError("x").exit_code) == (2, 2, 3)
    assert errors.DeliveryError("x", retryable=True).retryable
    e = errors.ConfigError("unknown timezone", file="a.toml", key="reports[0].timezone")
    assert str(e) == "a.toml: reports[0].timezone: unknown timezone"
