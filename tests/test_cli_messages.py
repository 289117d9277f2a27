"""What a new user meets first, from the outside: the real `agentdigest` command on real files and a real
DuckDB. Each test is one finding of a new-user audit (2026-11-29)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest


def cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], cwd=home, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess, code: int) -> str:
    """The one line on stderr of a command that exited with ``code``."""
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def write_config(home: Path, source: str, reports: str | None = None) -> Path:
    path = home / "agentdigest.toml"
    path.write_text(source + (reports if reports is not None else """
[[reports]]
id = "monthly"
period = "month"
timezone = "UTC"
"""))
    return path


def conversations(home: Path, report: str, period: str) -> int:
    return json.loads((home / "reports" / report / period / "report.json").read_text())["metrics"]["conversations"]["value"]


# --- 1. recursive globs and folders ----------------------------------------------------------------

def _hive(folder: Path) -> None:
    """Parquet files in Hive layout: <folder>/month=MM/day=DD/part.parquet, one conversation each."""
    with duckdb.connect() as con:
        for month in ("10", "11"):
            for day in ("01", "02", "03"):
                part = folder / f"month={month}" / f"day={day}"
                part.mkdir(parents=True)
                con.execute(f"COPY (SELECT 'c{month}{day}' AS conversation_id, TIMESTAMPTZ '2026-{month}-{day} 10:00:00+00' "
                            f"AS event_ts, 'message' AS event_type) TO '{part / 'part.parquet'}'")
        (folder / "_SUCCESS").write_text("")  # a Spark job's marker, not events


@pytest.mark.parametrize("files", ["hive/**/*.parquet", "hive", "hive/", "flat/**/*.parquet"])
def test_recursive_globs_and_folders_read_every_file(tmp_path, files):
    """Found by a new user: `files = "hive/**/*.parquet"` said "no file matches" (exit 2), though DuckDB
    reads it; a flat folder with `flat/**/*.parquet` too."""
    _hive(tmp_path / "hive")
    (tmp_path / "flat").mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_parquet('{tmp_path}/hive/month=10/*/*.parquet')) "
                    f"TO '{tmp_path / 'flat' / 'october.parquet'}'")
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 3


def test_a_folder_of_csv_files_is_read_as_csv(tmp_path):
    (tmp_path / "csv" / "2026-10").mkdir(parents=True)
    (tmp_path / "csv" / "2026-10" / "a.csv").write_text(
        "conversation_id,event_ts,event_type\nc1,2026-10-02 10:00:00,message\nc2,2026-10-03 10:00:00,message\n")
    write_config(tmp_path, '[source]\nurl = "duckdb://"\nfiles = "csv"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 2


@pytest.mark.parametrize("files,words", [("nothing/**/*.parquet", "no file matches"), ("empty", "no file in the folder")])
def test_files_that_match_nothing_are_one_line(tmp_path, files, words):
    (tmp_path / "empty").mkdir()
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    assert words in one_line(cli(tmp_path, "run", "--dry-run", "--format", "json"), 2)


def test_spark_refuses_a_recursive_glob_it_would_not_follow(tmp_path):
    """Spark's globs have no recursive `**` (it matches one folder: `hive/**/*.parquet` is PATH_NOT_FOUND
    for month=/day= folders, and uneven folders would be read in part). Refused before Spark starts."""
    _hive(tmp_path / "hive")
    write_config(tmp_path, '[source]\nurl = "pyspark://local[1]"\nfiles = "hive/**/*.parquet"\n')
    line = one_line(cli(tmp_path, "run", "--dry-run", "--format", "json"), 2)
    assert "no recursive '**'" in line and "name the folder" in line
