"""What ``[source]`` may say: where the events are (a URL, and a table or files), which of the user's
columns are the canonical ones, and the engine's settings; with the canonical columns themselves
(README, Events). The rest of the config is :mod:`agentdigest.settings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .channel_settings import StrictModel

CANONICAL_COLUMNS = (
    "event_id", "conversation_id", "event_ts", "event_type", "agent_id", "token_count",
    "latency_ms", "error_type", "error_message", "model", "cost_usd",
)
REQUIRED_COLUMNS = ("conversation_id", "event_ts", "event_type")


class SourceConfig(StrictModel):
    url: str = "duckdb://"
    table: str | None = None
    files: str | list[str] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    epoch_unit: Literal["s", "ms", "us"] | None = None  # a number in event_ts: seconds, ms or µs since 1970 (UTC)
    max_conversation_hours: float = Field(24.0, gt=0, le=24 * 366, strict=True)  # a year at most: 1e12 overflowed dates
    # Engine settings, e.g. DuckDB memory_limit = "4GB", threads = 2.
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    spark_conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for canonical in value:
            if canonical not in CANONICAL_COLUMNS:
                raise ValueError(
                    f"unknown canonical column {canonical!r} (expected one of {', '.join(CANONICAL_COLUMNS)})"
                )
        return value

    @model_validator(mode="after")
    def _table_or_files(self) -> "SourceConfig":
        if bool(self.table) == bool(self.files):
            raise ValueError("expected exactly one of 'table' or 'files'")
        return self

    @property
    def file_list(self) -> list[str]:
        if self.files is None:
            return []
        return [self.files] if isinstance(self.files, str) else list(self.files)
