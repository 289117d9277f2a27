"""Time render_artifacts: both built-in reports (executive and engineering), every format.

    python bench/render.py [--repeat N]

Prints, in seconds (wall clock, and CPU time, which a busy machine disturbs less):
  cold   a fresh interpreter that has loaded what a run has loaded before it renders (the
         compute stack: numpy, pandas, pyarrow, duckdb, ibis), then imports the renderers and
         renders both reports once: what rendering adds to `agentdigest run` (the target);
         also from a bare interpreter, the worst case
  warm   both reports again in a process that has rendered before (a long-running scheduler)
  by format, warm, per report
Target (issue 3): rendering both reports adds <= 1.5 s to a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "src", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

TARGET_SECONDS = 1.5
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
# A realistic week: 2,480 conversations, 12 agents, two models, five failure examples, an
# incomplete day (so the banner and the gaps are drawn too).
REPORT = {"agents": 12, "failures": 5, "warning": True}

COLD = f"""
import sys, time, json
sys.path[:0] = {[str(ROOT / "src"), str(ROOT / "tests")]!r}
if sys.argv[1] == "run":
    import numpy, pandas, pyarrow, duckdb, ibis  # loaded by the compute step of a run
from render_fixtures import make_report
reports = [make_report(a, **{REPORT!r}) for a in ("executive", "engineering")]
wall, cpu = time.perf_counter(), time.process_time()
from agentdigest.render import render_artifacts
import weasyprint  # render_pdf imports it lazily; count it with the imports
wall_i, cpu_i = time.perf_counter(), time.process_time()
for data in reports:
    render_artifacts(data)
wall_d, cpu_d = time.perf_counter(), time.process_time()
print(json.dumps({{"imports": wall_i - wall, "render": wall_d - wall_i, "total": wall_d - wall,
                  "cpu_imports": cpu_i - cpu, "cpu_render": cpu_d - cpu_i, "cpu_total": cpu_d - cpu}}))
"""


def cold(mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", COLD, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def show(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    best = min(runs, key=lambda c: c["cpu_total"])
    print(f"{label} (best of {len(runs)}): wall {best['total']:.3f} s = imports {best['imports']:.3f} + "
          f"rendering {best['render']:.3f}; CPU {best['cpu_total']:.3f} s = imports {best['cpu_imports']:.3f} + "
          f"rendering {best['cpu_render']:.3f}")
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm repetitions (default 5)")
    args = parser.parse_args()

    from agentdigest.render import FORMATS, render_artifacts
    from render_fixtures import make_report

    reports = {a: make_report(a, **REPORT) for a in ("executive", "engineering")}
    best = show("cold, in a run", [cold("run") for _ in range(3)])
    show("cold, bare interpreter", [cold("bare") for _ in range(3)])

    for data in reports.values():  # warm-up
        render_artifacts(data, now=NOW)
    runs, cpus = [], []
    for _ in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        sizes = {a: render_artifacts(data, now=NOW) for a, data in reports.items()}
        runs.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    print(f"warm, both reports, all formats ({args.repeat} runs): wall median {statistics.median(runs):.3f} s, "
          f"best {min(runs):.3f} s; CPU median {statistics.median(cpus):.3f} s")

    print("warm, by format (median of 3, seconds):")
    print(f"  {'format':<7}" + "".join(f"{a:>13}" for a in reports))
    for fmt in FORMATS:
        cells = []
        for data in reports.values():
            times = []
            for _ in range(3):
                start = time.perf_counter()
                render_artifacts(data, {fmt}, now=NOW)
                times.append(time.perf_counter() - start)
            cells.append(f"{statistics.median(times):>13.3f}")
        print(f"  {fmt:<7}" + "".join(cells))
    print("artifact sizes (bytes):")
    for audience, files in sizes.items():
        print(f"  {audience:<12} " + ", ".join(f"{name} {len(body):,}" for name, body in files.items()))
    for label, key in (("wall", "total"), ("CPU", "cpu_total")):
        verdict = "within" if best[key] <= TARGET_SECONDS else "OVER"
        print(f"target: both reports add <= {TARGET_SECONDS} s to a run (cold, imports included), "
              f"{label}: {best[key]:.3f} s, {verdict}")
    if best["total"] > best["cpu_total"] * 1.3:
        print("note: wall clock well above CPU time: the machine is busy; the CPU figure is the fairer one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
