"""What ``[source]`` may say: where the events are (a URL, and a table or files), which of the user's
columns are the canonical ones, and the engine's settings; with the canonical columns themselves
(README, Events). The rest of the config is :mod:`agentdigest.settings`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
#: says without a word, or made an error name the wrong thing. Each why is kept short (the one line was up to 390
#: characters, found in a new-user review); README's Spark section says more.
SPARK_FIXED_CONF = {
    "spark.sql.ansi.enabled": "with ANSI SQL off, bad values become nulls silently",
    "spark.master": "the master is the one in source.url",
    "spark.sql.session.timezone": "event times are read in UTC; a report's zone is its timezone",
    "spark.sql.csv.parser.columnpruning.enabled": "with CSV column pruning on, rows left out vary by query",
    "spark.sql.sources.partitioncolumntypeinference.enabled": "with it on, Spark reads a partition folder's 007 as 7",
    "spark.sql.parquet.inferTimestampNTZ.enabled".lower(): "naive Parquet timestamps are read as UTC",
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


#: Files read through ``files``, never opened as a DuckDB database (duckdb_source).
DATA_FILE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet")


def near(key: str, among: Iterable[str]) -> list[str]:
    """The names of ``among`` that ``key`` likely means, likeliest first: the same name in another letter case, the
    one name ``key`` begins (`latency`, `cost`), then those with at most one typo in each dot-separated part: a
    letter left out, added or replaced, or two side by side swapped (`cost_usb`, `latnecy_ms`, `analytcs.agent_evnts`,
    `spark.excutor.memroy`), fewest typos first; never merely alike (`event_time` is not `event_type`). The one
    rule of every "did you mean" of the sources: canonical columns, tables on every engine, [source.spark_conf]
    keys (whose check had a rule of its own: two edits anywhere, a swap counted as two). difflib's ratio does not
    fit it: `evnets` for `events` scores 0.83, `event_time` for `event_type` 0.80, and `spark.executor.cores` for
    `spark.executor.memory` 0.83."""
    folded = key.casefold()
    names = [n for n in dict.fromkeys(among) if n != key]
    case = [n for n in names if n.casefold() == folded]
    starts = [n for n in names if n.casefold().startswith(folded) and n not in case]
    first = starts if len(starts) == 1 else []
    typos = {n: _typos(n.casefold(), folded) for n in names if n not in case and n not in first}
    return case + first + sorted((n for n, count in typos.items() if count), key=lambda n: typos[n])


def _typos(a: str, b: str) -> int:
    """How many of the dot-separated parts of ``a`` and ``b`` differ by one typo; 0 when any differs by more or
    their number of parts does."""
    pairs = list(zip(a.split("."), b.split(".")))
    if len(pairs) != a.count(".") + 1 or len(pairs) != b.count(".") + 1:
        return 0
    if not all(x == y or _one_typo(x, y) for x, y in pairs):
        return 0
    return sum(x != y for x, y in pairs)


def _one_typo(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one letter left out, added or replaced, or two side by side swapped."""
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if abs(len(a) - len(b)) != 1:
        return False
    short, long = sorted((a, b), key=len)
    i = next((i for i, (x, y) in enumerate(zip(short, long)) if x != y), len(short))
    return short[i:] == long[i + 1:]


def meant(key: str, among: Iterable[str] = CANONICAL_COLUMNS) -> str | None:
    """The name of ``among`` (canonical columns unless given) ``key`` most likely means (:func:`near`), or None."""
    return next(iter(near(key, among)), None)


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

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        """A path without a scheme is refused: ibis.connect read `url = "events.duckdb"` relative to the shell's
        folder, not the config's, and created an empty database there (found installing as a new user)."""
        if "://" in value or not value.strip():  # an empty url is said so where the engine is picked
            return value
        if "@" in value or ":" in value or not value.lower().endswith((".duckdb", ".ddb", ".db") + DATA_FILE_SUFFIXES):
            # perhaps a database URL without its scheme (user:password@host/db): not repeated, nor guessed at
            raise ValueError("is not a URL (expected a URL such as duckdb://events.duckdb, "
                             "postgresql://user@host/db or pyspark://local[*])")
        if value.lower().endswith(DATA_FILE_SUFFIXES):
            raise ValueError(f"is not a URL (expected url = \"duckdb://\" and files = [{shown(value, path=True)}] "
                             "for Parquet or CSV files)")
        raise ValueError(f"is not a URL (expected url = {shown('duckdb://' + value, path=True).replace(chr(39), chr(34))}"
                         " for a DuckDB file)")

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
                theirs = value[canonical]
                if theirs in CANONICAL_COLUMNS:  # written the wrong way round: `lat = "latency_ms"`
                    raise ValueError(f"unknown canonical column {shown(canonical)}; a mapping is canonical = \"yours\" "
                                     f"(expected {theirs} = {shown(canonical).replace(chr(39), chr(34))})")
                # found by a new user: `latency = "lat"` listed all eleven columns (190 characters)
                close = meant(canonical)
                raise ValueError(f"unknown canonical column {shown(canonical)} " + (
                    f"(did you mean {close!r}?)" if close else f"(expected one of {', '.join(CANONICAL_COLUMNS)})"))
        return value

    @model_validator(mode="after")
    def _table_or_files(self) -> "SourceConfig":
        if bool(self.table) == bool(self.files):
            # url = "duckdb://events.parquet" alone: its file belongs in files (found trying agentdigest as a new user)
            path = self.url[len("duckdb://"):] if self.url.startswith("duckdb://") else ""
            data = (f" (url names a data file: expected url = \"duckdb://\" and files = [{shown(path, path=True)}])"
                    if not self.table and path.lower().endswith(DATA_FILE_SUFFIXES) else "")
            raise ValueError(f"expected exactly one of 'table' or 'files'{data}")
        return self

    @property
    def file_list(self) -> list[str]:
        if self.files is None:
            return []
        return [self.files] if isinstance(self.files, str) else list(self.files)
