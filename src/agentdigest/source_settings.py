"""What ``[source]`` may say: where the events are (a URL, and a table or files), which of the user's
columns are the canonical ones, and the engine's settings; with the canonical columns themselves
(README, Events). The rest of the config is :mod:`agentdigest.settings`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .channel_settings import StrictModel, shown

CANONICAL_COLUMNS = (
    "event_id", "conversation_id", "event_ts", "event_type", "agent_id", "token_count",
    "latency_ms", "error_type", "error_message", "model", "cost_usd",
)
REQUIRED_COLUMNS = ("conversation_id", "event_ts", "event_type")

#: [source.spark_conf] keys refused (any letter case; Spark's keys are case-sensitive, so "Spark.Master"
#: would be ignored rather than refused), with why. Found in a Spark audit: each changed what a report
#: says without a word, or made an error name the wrong thing.
SPARK_FIXED_CONF = {
    "spark.sql.ansi.enabled": "with ANSI SQL off, a value that does not convert to its column's type becomes "
                              "null without an error, and silently leaves the metrics",
    "spark.master": "the master is the one in source.url (pyspark://<master>); this one would override it "
                    "and errors would then name the wrong one",
    "spark.sql.session.timezone": "event times are read in UTC (naive ones are UTC, as the event contract says; "
                                  "Ibis resets the session to UTC anyway); a report's own timezone is its "
                                  "`timezone` in [[reports]]",
    "spark.sql.csv.parser.columnpruning.enabled": "with CSV column pruning on, Spark checks a row's shape only "
                                                  "against the columns a query reads: whether a row with a field "
                                                  "too many or too few is left out would depend on the query, and "
                                                  "the rows counted unreadable would not be the rows left out",
    "spark.sql.sources.partitioncolumntypeinference.enabled": "with it on, Spark reads a partition folder's value "
                                                              "as a number where it can: agents in agent_id=007/ "
                                                              "and agent_id=012/ became '7' and '12'",
    "spark.sql.parquet.inferTimestampNTZ.enabled".lower(): "naive Parquet timestamps are read as UTC, as the event "
                                                           "contract says; with it on, Spark reads them as "
                                                           "TIMESTAMP_NTZ, which it cannot merge with a time zone's: "
                                                           "files that DuckDB reads were refused",
}


def refused_spark_conf(conf: dict[str, Any]) -> tuple[str, str] | None:
    """The first [source.spark_conf] key of :data:`SPARK_FIXED_CONF` with what to say of it, or None.
    Refused when the config is read (found in a new-user audit: `check` said "config ok" first, and a
    missing pyspark or Java hid the refusal)."""
    for key in conf:
        why = SPARK_FIXED_CONF.get(key.lower())
        if why:
            return key, f"agentdigest sets this itself ({why}); expected it left out"
    return None


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
    # PostgreSQL without temporary tables: the memory of the in-process DuckDB that keeps a report's steps
    client_memory_limit: str | None = None

    @field_validator("client_memory_limit")
    @classmethod
    def _a_size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*(k|m|g|t)i?b\s*", value, re.I):
            raise ValueError(f"{shown(value)} is not a size (expected a number and a unit, such as \"256MB\" or \"2GB\")")
        return value.strip()

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for canonical in value:
            if canonical not in CANONICAL_COLUMNS:
                raise ValueError(
                    f"unknown canonical column {shown(canonical)} (expected one of {', '.join(CANONICAL_COLUMNS)})"
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
