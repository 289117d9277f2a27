"""Compute benchmark: agentdigest against a bare scan and against the article's query, on every engine.

    python bench/compute.py [--events 10000000] [--full] [--skip postgres,spark] [--repeat 3]

One run prints one table. Each row runs in a fresh process (so peak memory is its own), after an
untimed open of the source (Spark's JVM start-up is not counted); the time is the best of
``--repeat`` runs. Rows:

  bare scan        DuckDB: count, min and max of every needed column of the whole table (the limit)
  agentdigest      compute_report on the DuckDB file, on Parquet through DuckDB, on PostgreSQL, on Spark local[2]
  article query    psycopg2, the article's two ``BETWEEN`` queries (this week and last week) on PostgreSQL
  read-only role   compute_report on PostgreSQL as a role without temporary tables (a hot standby's case):
                   the steps kept in agentdigest's own DuckDB; memory is the server's and the process's

Ratios: P1 = agentdigest DuckDB / bare scan (target <= 4); P2 = article query / agentdigest DuckDB
(target >= 5); P3 = agentdigest PostgreSQL / article query (target <= 2). ``--full`` adds a
100M-event dataset (100 weeks at the same weekly volume) for DuckDB: report <= 5 s, peak RSS <= 4 GB.
Data goes to bench/data/ and results to bench/results/ (both git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402

DATA, RESULTS = HERE / "data", HERE / "results"
TARGETS = {"P1": ("<=", 4.0), "P2": (">=", 5.0), "P3": ("<=", 2.0)}
ARTICLE_SQL = """SELECT count(DISTINCT conversation_id) AS conversations,
       count(*) FILTER (WHERE event_type = 'resolution') AS resolutions,
       avg(latency_ms) AS avg_latency
FROM agent_events WHERE event_ts BETWEEN %s AND %s"""
SCAN_COLUMNS = dataset.COLUMNS
RESULT_MARK = "@@result@@"


# -- workers (run in a fresh process each) ----------------------------------------------------

def _vm_hwm(pid: int | str = "self") -> int:
    """Peak resident set size of a process, in bytes (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def worker(kind: str, target: str, repeat: int, report_out: str | None) -> dict:
    from datetime import timedelta

    times: list[float] = []
    if kind == "scan":
        import duckdb

        con = duckdb.connect(target, read_only=True)
        con.execute("SET enable_progress_bar = false")
        sql = "SELECT count(*), " + ", ".join(f"min({c}), max({c})" for c in SCAN_COLUMNS) + " FROM agent_events"
        for _ in range(repeat):
            times.append(dataset.timed(lambda: con.execute(sql).fetchall())[0])
        return {"times": times, "rss": _vm_hwm()}
    if kind == "article":
        import psycopg2

        con = psycopg2.connect(target)
        with con.cursor() as cur:
            cur.execute("SELECT 1")
        weeks = [(dataset.END - timedelta(days=7), dataset.END), (dataset.END - timedelta(days=14), dataset.END - timedelta(days=7))]

        def article() -> list:
            rows = []
            with con.cursor() as cur:
                for lo, hi in weeks:
                    cur.execute(ARTICLE_SQL, (lo, hi))
                    rows.append(cur.fetchone())
            return rows

        for _ in range(repeat):
            times.append(dataset.timed(article)[0])
        return {"times": times, "rss": _vm_hwm(), "answer": [[None if x is None else float(x) for x in row] for row in article()]}

    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import last_complete
    from agentdigest.sources import open_source

    settings = json.loads(target)
    source = open_source(SourceConfig(**settings))
    report = ReportConfig(id="bench", period="week", timezone="UTC")
    now = dataset.now_for_report()
    period = last_complete("week", now, "UTC")
    data = None
    for _ in range(repeat):
        elapsed, data = dataset.timed(lambda: compute_report(source, report, period, now=now))
        times.append(elapsed)
    if report_out and data is not None:
        Path(report_out).write_text(data.to_json(), encoding="utf-8")
    out = {"times": times, "rss": _vm_hwm()}
    if kind == "spark":
        out["jvm_rss"] = sum(_vm_hwm(pid) for pid in _children(os.getpid()))
    source.close()
    return out


# -- orchestration -----------------------------------------------------------------------------

def _pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_worker(kind: str, target: str, repeat: int, *, server=None, report_out: Path | None = None) -> dict:
    """Run one measurement in a fresh process; sample the server's memory while it runs."""
    cmd = [sys.executable, __file__, "--worker", kind, "--target", target, "--repeat", str(repeat)]
    if report_out:
        cmd += ["--report-out", str(report_out)]
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _pss(server.pids()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True) if server else None
    if sampler:
        sampler.start()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    done.set()
    if sampler:
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.rsplit(RESULT_MARK, 1)[1].strip())
    if server:
        out["server_pss"] = peak[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000, help="events in the main dataset (default 10M)")
    ap.add_argument("--full", action="store_true", help="also run DuckDB on a 100M-event dataset")
    ap.add_argument("--skip", default="", help="comma list of engines to leave out: postgres, spark, parquet")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per row (the best counts)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--report-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("\n" + RESULT_MARK + json.dumps(worker(args.worker, args.target, args.repeat, args.report_out)))
        return 0

    from rich.console import Console

    import report_table

    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = 140  # a log or CI output: the table unfolded, as on a wide terminal
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    sizes = [args.events] + ([100_000_000] if args.full and args.events != 100_000_000 else [])
    files = report_table.prepare(console, DATA, sizes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    reports = RESULTS / f"reports-{stamp}"
    reports.mkdir()
    rows: list[dict] = []

    def add(name: str, engine: str, n: int, result: dict, memory_of: str) -> dict:
        row = {"name": name, "engine": engine, "events": n, "seconds": min(result["times"]), "times": result["times"],
               "peak_rss": result.get("server_pss") or (result["rss"] + result.get("jvm_rss", 0)),
               "memory_of": memory_of, **{k: v for k, v in result.items() if k not in ("times",)}}
        rows.append(row)
        console.print(f"  {name} ({n:,} events): {row['seconds']:.2f} s")
        return row

    main_db, main_parquet, n = files[args.events]
    console.print("[bold]Measuring[/bold] (best of %d runs each)" % args.repeat)
    add("bare DuckDB scan", "duckdb", n, run_worker("scan", str(main_db), args.repeat), "process")
    add("agentdigest", "duckdb", n, run_worker("duckdb", json.dumps({"url": f"duckdb://{main_db}", "table": "agent_events"}),
                                              args.repeat, report_out=reports / "duckdb.json"), "process")
    if "parquet" not in skip:
        add("agentdigest", "parquet (DuckDB)", n, run_worker("duckdb", json.dumps({"url": "duckdb://", "files": str(main_parquet)}),
                                                           args.repeat, report_out=reports / "parquet.json"), "process")
    if "postgres" not in skip:
        report_table.postgres_rows(console, add, run_worker, DATA, main_db, n, args.repeat, reports)
    missing = report_table.missing_spark()
    if "spark" not in skip and missing:
        console.print(f"[yellow]Spark row skipped: {missing}[/yellow]")
    elif "spark" not in skip and args.events <= 10_000_000:
        spark = {"url": "pyspark://local[2]", "files": str(main_parquet), "spark_conf": {"spark.driver.memory": "4g"}}
        add("agentdigest", "spark local[2]", n, run_worker("spark", json.dumps(spark), args.repeat,
                                                          report_out=reports / "spark.json"), "python + JVM")
    for size in sizes[1:]:
        db, _, big = files[size]
        add("bare DuckDB scan", "duckdb", big, run_worker("scan", str(db), args.repeat), "process")
        add("agentdigest", "duckdb", big, run_worker("duckdb", json.dumps({"url": f"duckdb://{db}", "table": "agent_events"}),
                                                    args.repeat, report_out=reports / f"duckdb-{size}.json"), "process")

    summary = report_table.summarize(rows, n, TARGETS, reports)
    report_table.show(console, rows, summary)
    out = RESULTS / f"compute-{stamp}.json"
    out.write_text(json.dumps({"when": stamp, "machine": report_table.machine(), "rows": rows, **summary}, indent=2))
    (RESULTS / "compute-latest.json").write_text(out.read_text())
    console.print(f"results: {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
