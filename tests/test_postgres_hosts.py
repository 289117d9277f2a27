"""A PostgreSQL source named by several hosts, as libpq writes a primary and its replicas:
``postgresql://reports@db1:5432,db2:5432/events?target_session_attrs=read-write``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentdigest.config import SourceConfig
from agentdigest.errors import SourceError
from agentdigest.sources import open_source
from backend_loaders import load_postgres
from conftest import free_port
from test_engines import _report as scenario_report
from trapdata import trap_rows

SETTINGS = {"work_mem": "64MB", "statement_timeout": "60s"}


def _report(url: str) -> dict:
    return scenario_report({"url": url, "table": "events.agent_events", "settings": SETTINGS})


def _hosts(url: str, first: str) -> str:
    """``url`` with ``first`` (host:port) tried before its own host."""
    scheme, rest = url.split("://", 1)
    user, rest = rest.split("@", 1)
    return f"{scheme}://{user}@{first},{rest}"


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["", "?target_session_attrs=read-write", "?target_session_attrs=prefer-standby",
                                   "?target_session_attrs=any&connect_timeout=5"])
def test_a_closed_first_host_gives_the_same_report_from_the_next(pg_url, query):
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    url = _hosts(pg_url, f"127.0.0.1:{free_port()}") + query
    source = open_source(SourceConfig(url=url, table="events.agent_events", settings=SETTINGS))
    try:
        assert source.backend.con.info.port == int(pg_url.rsplit(":", 1)[1].split("/")[0])
        assert source.backend.con.prepare_threshold is None  # PgBouncer before 1.21 (engines)
        with source.transaction(), source.backend.con.cursor() as cur:  # a report's transaction (SET LOCAL)
            cur.execute("SELECT current_setting('TimeZone'), current_setting('jit'), current_setting('work_mem'), "
                        "current_setting('statement_timeout'), current_setting('DateStyle')")
            assert cur.fetchone() == ("UTC", "off", "64MB", "1min", "ISO, MDY")
    finally:
        source.close()
    assert _report(url) == _report(pg_url)


@pytest.mark.postgres
def test_a_session_no_host_can_give_names_each_hosts_reason(pg_url):
    """The test server is a primary: asked for a standby, it refuses, and the closed port refuses anyway."""
    closed = free_port()
    url = _hosts(pg_url, f"127.0.0.1:{closed}").replace("://postgres@", "://postgres:s3cret@")
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url=url + "?target_session_attrs=standby", table="events.agent_events"))
    server = pg_url.split("@", 1)[1].split("/", 1)[0]
    assert f"cannot connect to any of its 2 hosts (127.0.0.1:{closed}: Connection refused; {server}: server is " \
           "not in hot standby mode)" in str(err.value)
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("hosts,said", [
    ("127.0.0.1:{a},127.0.0.1:{b}", "cannot connect to any of its 2 hosts (127.0.0.1:{a}: Connection refused; "
                                    "127.0.0.1:{b}: Connection refused)"),
    ("127.0.0.1:{a},localhost:{b},127.0.0.1:{a}", "cannot connect to any of its 3 hosts (127.0.0.1:{a}: Connection "
                                                  "refused; localhost:{b}: Connection refused)"),
    ("127.0.0.1:{a}", "cannot connect (connection failed: connection to server at \"127.0.0.1\", port {a} failed: "
                      "Connection refused"),
])
@pytest.mark.parametrize("query", ["", "?target_session_attrs=read-write", "?target_session_attrs=prefer-standby"])
def test_unreachable_hosts_are_one_line_exit_3_without_the_password(tmp_path, hosts, said, query):
    ports = {"a": free_port(), "b": free_port()}
    url = f"postgresql://reports:${{PW}}@{hosts.format(**ports)}/events{query}"
    (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "{url}"\ntable = "agent_events"\n'
                                               '[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "r", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "COLUMNS": "300", "PW": "s3cr/et@x"})
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said.format(**ports) in lines[0], done.stderr
    masked = url.replace("${PW}", "***")
    assert lines[0].startswith(f"agentdigest: error: source {masked}: "), lines[0]
    assert "s3cr" not in done.stdout + done.stderr and "et%40x" not in done.stdout + done.stderr
