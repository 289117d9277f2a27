"""Shared set-up of the scheduling tests: real DuckDB events, configs on disk, CLI processes, counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from agentdigest.synthetic import generate

SRC = Path(__file__).resolve().parent.parent / "src"


def make_events(path: Path, *, end: datetime, days: int, conversations: int = 3000) -> Path:
    """A real DuckDB file of synthetic agent events covering the ``days`` before ``end``."""
    con = duckdb.connect(str(path))
    try:
        generate(con, conversations=conversations, end=end, days=days)
    finally:
        con.close()
    return path


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for these configs: scalars, lists, tables, tables of tables, arrays of tables."""
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any], header: str) -> None:
        lines.append(header)
        nested = []
        for key, value in body.items():
            if isinstance(value, dict):
                nested.append((key, value))
            elif value is not None:
                lines.append(f"{key} = {_value(value)}")
        lines.append("")
        for key, value in nested:
            table(f"{prefix}.{key}", value, f"[{prefix}.{key}]")

    for name, section in data.items():
        if isinstance(section, list):
            for item in section:
                table(name, item, f"[[{name}]]")
        elif all(isinstance(v, dict) for v in section.values()) and section:
            for key, value in section.items():
                table(f"{name}.{key}", value, f"[{name}.{key}]")
        else:
            table(name, section, f"[{name}]")
    return "\n".join(lines) + "\n"


def write_config(folder: Path, *, events: Path, reports: list[dict[str, Any]], channels: dict[str, dict[str, Any]],
                 ledger_url: str | None = None, alarms: dict[str, Any] | None = None) -> Path:
    """An ``agentdigest.toml`` in ``folder`` (archive ``reports/``, ledger ``ledger.db`` unless given).

    Secrets come only from the environment: each channel's secret settings go into this process's
    environment (inherited by the CLI processes :func:`env` starts) and the file says ``${VAR}``."""
    channels = {name: dict(settings) for name, settings in channels.items()}
    for name, settings in channels.items():
        for key in ("smtp_url", "webhook_url", "bot_token", "secret", "url"):
            if key in settings:
                var = f"AGENTDIGEST_TEST_{name.upper()}_{key.upper()}"
                os.environ[var] = settings[key]
                settings[key] = "${" + var + "}"
    data: dict[str, Any] = {
        "source": {"url": f"duckdb://{events}", "table": "agent_events"},
        "archive": {"path": str(folder / "reports")},
        "ledger": {"url": ledger_url or f"sqlite:///{folder / 'ledger.db'}"},
        "channels": channels,
    }
    if alarms:
        data["alarms"] = alarms
    data["reports"] = reports
    path = folder / "agentdigest.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def outbox(channel: str = "box", **settings: Any) -> dict[str, dict[str, Any]]:
    return {channel: {"type": "outbox", **settings}}


def sent_files(outbox_dir: Path, report_id: str | None = None) -> Counter:
    """How many .eml files the outbox holds per (report, period)."""
    counts: Counter = Counter()
    for path in Path(outbox_dir).glob("*/*/*.eml"):
        rid, key = path.parent.parent.name, path.parent.name
        if report_id is None or rid == report_id:
            counts[(rid, key)] += 1
    return counts


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), out.get("PYTHONPATH")]))
    out.update(extra)
    return out


def cli(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``agentdigest ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], capture_output=True, text=True,
                          env=env(**(extra_env or {})), timeout=timeout)


def spawn(*args: str, log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """``agentdigest ARGS`` in the background, stderr (the log) to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "agentdigest.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"), env=env(**(extra_env or {})))


def wait_for(predicate: Any, *, timeout: float = 90, what: str = "condition", proc: subprocess.Popen | None = None,
             log: Path | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with the log when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}" + (f" (process exited {proc.returncode})" if proc and
                                                          proc.returncode is not None else "") + f"\n{tail}")


def json_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def events_of(log: Path, event: str, report: str | None = None) -> list[dict[str, Any]]:
    try:
        entries = json_lines(log)
    except json.JSONDecodeError:
        return []
    return [e for e in entries if e.get("event") == event and (report is None or e.get("report") == report)]


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
    """Send ``sig`` and wait; returns (exit code, seconds it took)."""
    started = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=timeout)
    return code, time.monotonic() - started


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def cron_far_from_now(now: datetime | None = None) -> str:
    """A daily crontab (UTC) that fires twelve hours away from ``now``: it cannot fire during a test."""
    now = now or datetime.now(timezone.utc)
    return f"{now.minute} {(now + timedelta(hours=12)).hour} * * *"
