"""The benchmark's data preparation (with progress bars), PostgreSQL rows, ratios and result table."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import dataset
from pgserver import Server, pg_bin

GB = 1024 ** 3


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn())


def prepare(console: Console, folder: Path, sizes: list[int]) -> dict[int, tuple[Path, Path, int]]:
    """Generate (or reuse) each dataset, with a progress bar."""
    files = {}
    with _progress() as bar:
        for size in sizes:
            task = bar.add_task(f"generate {size:,} events", total=1.0, note="")
            files[size] = dataset.generate(folder, size, lambda f, note, t=task: bar.update(t, completed=f, note=note))
    return files


def postgres_rows(console: Console, add: Callable, run_worker: Callable, folder: Path, db: Path, n: int,
                  repeat: int, reports: Path) -> None:
    """Start the benchmark's PostgreSQL, load the data once, and measure the article's query and agentdigest."""
    if pg_bin() is None:
        console.print("[yellow]PostgreSQL rows skipped: no server binaries (install postgresql-15)[/yellow]")
        return
    try:
        import psycopg  # noqa: F401
        import psycopg2  # noqa: F401  (the article's client)
    except ImportError as exc:
        console.print(f"[yellow]PostgreSQL rows skipped: {exc} (pip install 'agentdigest[postgres,test]')[/yellow]")
        return
    server = Server(folder / "pg").start()
    try:
        with _progress() as bar:
            task = bar.add_task("load PostgreSQL", total=1.0, note="")
            dataset.load_postgres(server.url, db, n, folder, lambda f, note: bar.update(task, completed=f, note=note))
        add("article query (2x BETWEEN)", "postgres", n, run_worker("article", server.url, repeat,
                                                                    server=server), "server (PSS)")
        add("agentdigest", "postgres", n, run_worker("postgres", json.dumps({"url": server.url, "table": "agent_events"}),
                                                     repeat, server=server, report_out=reports / "postgres.json"),
            "server (PSS)")
        # A hot standby or a read-only role: no temporary tables, the steps kept in agentdigest's own DuckDB
        # (client_tables), whose memory counts too.
        done = run_worker("postgres", json.dumps({"url": _read_only(server.url), "table": "agent_events"}),
                          repeat, server=server, report_out=reports / "postgres_read_only.json")
        done["server_pss"] += done["rss"]
        add("agentdigest, read-only role", "postgres", n, done, "server (PSS) + process")
    finally:
        server.stop()


def _read_only(url: str) -> str:
    """``url`` as a role that may only read agent_events, in read-only transactions (as on a hot standby)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DO $$ BEGIN CREATE ROLE bench_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        con.execute("GRANT SELECT ON agent_events TO bench_reader")
        con.execute("ALTER ROLE bench_reader SET default_transaction_read_only = on")
    return url.replace("://postgres@", "://bench_reader@")


def missing_spark() -> str | None:
    """Why the Spark row cannot run here (no pyspark, no Java), or None."""
    try:
        import pyspark  # noqa: F401

        from agentdigest.spark_url import check_java
        check_java()
    except ImportError:
        return "pyspark is not installed (pip install 'agentdigest[spark]')"
    except Exception as exc:  # SourceError: no Java 17
        return str(exc)
    return None


def _ratio(rows: list[dict], num: tuple[str, str], den: tuple[str, str], n: int) -> float | None:
    pick = {(r["name"], r["engine"]): r["seconds"] for r in rows if r["events"] == n}
    a, b = pick.get(num), pick.get(den)
    return a / b if a and b else None


def _agree(reports: Path) -> dict[str, Any]:
    """Do the engines' report.json agree with DuckDB's? (counts exact, values 1e-6; Spark quantiles 1%)."""
    base_path = reports / "duckdb.json"
    if not base_path.exists():
        return {}
    base = json.loads(base_path.read_text())["metrics"]
    out: dict[str, Any] = {}
    for path in sorted(reports.glob("*.json")):
        if path.name == "duckdb.json" or "-" in path.stem:
            continue
        other = json.loads(path.read_text())["metrics"]
        worst = 0.0
        for name, m in base.items():
            a, b = m["value"], other.get(name, {}).get("value")
            if a is None or b is None:
                worst = max(worst, 0.0 if a is b else 1.0)
                continue
            worst = max(worst, abs(a - b) / max(abs(a), 1e-12))
        out[path.stem] = worst
    return out


def summarize(rows: list[dict], n: int, targets: dict, reports: Path) -> dict[str, Any]:
    ratios = {
        "P1": _ratio(rows, ("agentdigest", "duckdb"), ("bare DuckDB scan", "duckdb"), n),
        "P2": _ratio(rows, ("article query (2x BETWEEN)", "postgres"), ("agentdigest", "duckdb"), n),
        "P3": _ratio(rows, ("agentdigest", "postgres"), ("article query (2x BETWEEN)", "postgres"), n),
    }
    met = {}
    for key, value in ratios.items():
        op, limit = targets[key]
        met[key] = None if value is None else (value <= limit if op == "<=" else value >= limit)
    big = [r for r in rows if r["events"] >= 100_000_000 and r["name"] == "agentdigest"]
    full = None
    if big:
        r = big[0]
        full = {"seconds": r["seconds"], "peak_rss_gb": r["peak_rss"] / GB,
                "met": r["seconds"] <= 5.0 and r["peak_rss"] <= 4 * GB}
    return {"ratios": ratios, "targets": {k: f"{op} {v}" for k, (op, v) in targets.items()}, "met": met,
            "full_100m": full, "max_relative_difference_vs_duckdb": _agree(reports)}


def show(console: Console, rows: list[dict], summary: dict[str, Any]) -> None:
    table = Table(title="agentdigest compute benchmark", title_justify="left")
    for col, justify in (("row", "left"), ("engine", "left"), ("events", "right"), ("wall s", "right"),
                         ("events/s", "right"), ("peak memory", "right"), ("memory of", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(r["name"], r["engine"], f"{r['events']:,}", f"{r['seconds']:.2f}",
                      f"{r['events'] / r['seconds']:,.0f}", f"{r['peak_rss'] / GB:.2f} GB", r["memory_of"])
    console.print(table)
    for key, value in summary["ratios"].items():
        target = summary["targets"][key]
        verdict = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "n/a"}[summary["met"][key]]
        console.print(f"{key} = {'n/a' if value is None else f'{value:.2f}'} (target {target}): {verdict}")
    if summary["full_100m"]:
        f = summary["full_100m"]
        console.print(f"100M: DuckDB report {f['seconds']:.2f} s, peak RSS {f['peak_rss_gb']:.2f} GB "
                      f"(target <= 5 s, <= 4 GB): {'[green]met[/green]' if f['met'] else '[red]missed[/red]'}")
    for engine, diff in summary["max_relative_difference_vs_duckdb"].items():
        console.print(f"report.json metrics, {engine} vs DuckDB: largest relative difference {diff:.2e}")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": load, "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB}
