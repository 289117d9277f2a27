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


# -- the ledger: the same URLs, through SQLAlchemy (ledger_url) ------------------------------------

def test_a_ledger_url_with_several_hosts_is_mapped_to_sqlalchemys_form():
    from agentdigest.ledger_schema import engine_url

    assert engine_url("postgresql://u@db1:5432,db2:5433/ledger?target_session_attrs=read-write") == \
        "postgresql+psycopg://u@/ledger?host=db1,db2&port=5432,5433&target_session_attrs=read-write"
    assert engine_url("postgresql+psycopg2://u@db1,[::1]:5433/ledger") == \
        "postgresql+psycopg2://u@/ledger?host=db1,%3A%3A1&port=,5433"
    assert engine_url("postgres://u@db1:5432/ledger") == "postgresql+psycopg://u@db1:5432/ledger"  # one host: as is


def test_a_malformed_ledger_url_with_several_hosts_is_one_masked_config_error():
    from agentdigest.errors import ConfigError
    from agentdigest.ledger import Ledger

    with pytest.raises(ConfigError) as err:
        Ledger("postgresql://reports:pw-PLANTED@db1:5432,db2:x/ledger")
    assert str(err.value) == ("ledger.url: invalid ledger url 'postgresql://reports:***@db1:5432,db2:x/ledger' "
                              "(host 'db2': port 'x' is not a number from 1 to 65535)")


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
@pytest.mark.parametrize("attrs", ["read-write", "prefer-standby"])
@pytest.mark.parametrize("how,said", [("open", "cannot open the ledger"), ("check", "cannot reach the ledger")])
def test_a_ledger_none_of_whose_hosts_answers_names_each_hosts_reason_in_one_masked_line(scheme, attrs, how, said):
    """As the source says it: every host and its reason, once each (prefer-standby tries each twice), where
    the driver's first line named one host only."""
    from agentdigest.ledger import Ledger
    from agentdigest.ledger_schema import LedgerError, probe

    a, b = free_port(), free_port()
    url = f"{scheme}://reports:pw-PLANTED@127.0.0.1:{a},127.0.0.1:{b}/none?target_session_attrs={attrs}&connect_timeout=2"
    with pytest.raises(LedgerError) as err:
        Ledger(url) if how == "open" else probe(url)
    assert str(err.value) == (f"{said} {scheme}://reports:***@127.0.0.1:{a},127.0.0.1:{b}/none?target_session_attrs="
                              f"{attrs}&connect_timeout=2: cannot connect to any of its 2 hosts (127.0.0.1:{a}: "
                              f"Connection refused; 127.0.0.1:{b}: Connection refused)")


class SilentServer:
    """A TCP listener on loopback that accepts every connection and never answers (a hung server, a black-holed
    proxy), counting the connections it accepted."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port, self.accepted, self.kept = self.sock.getsockname()[1], 0, []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            self.kept.append(conn)

    def close(self):
        for conn in [*self.kept, self.sock]:
            conn.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
@pytest.mark.parametrize("attrs,tries", [("prefer-standby", 2), ("any", 1)])
def test_a_ledger_whose_hosts_never_answer_tries_each_as_libpq_does_once(scheme, attrs, tries):
    """prefer-standby tries every host twice (a standby first, then any), each within connect_timeout; opening the
    ledger then asked the unreachable servers why it could not write, waiting as long again (4 tries a host)."""
    from agentdigest.ledger import Ledger
    from agentdigest.ledger_schema import LedgerError

    servers = [SilentServer(), SilentServer()]
    try:
        url = (f"{scheme}://u:pw-PLANTED@127.0.0.1:{servers[0].port},127.0.0.1:{servers[1].port}/x"
               f"?target_session_attrs={attrs}&connect_timeout=1")
        with pytest.raises(LedgerError) as err:
            Ledger(url)
        assert [s.accepted for s in servers] == [tries, tries]
        assert f"cannot connect to any of its 2 hosts (127.0.0.1:{servers[0].port}: " in str(err.value)
        assert "timeout expired" in str(err.value) and "PLANTED" not in str(err.value)
    finally:
        for server in servers:
            server.close()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
def test_a_ledger_whose_first_host_is_closed_records_a_delivery_on_the_next(pg_url, scheme):
    from agentdigest.ledger import Ledger
    from agentdigest.ledger_schema import probe

    url = scheme + _hosts(pg_url, f"127.0.0.1:{free_port()}")[len("postgresql"):] + "?target_session_attrs=read-write"
    assert probe(url) == "reachable, empty; the first run creates its tables"  # what check says
    ledger = Ledger(url)
    try:
        with ledger.engine.connect() as conn:  # the test server answered, not the closed port
            assert conn.exec_driver_sql("SELECT inet_server_port()").scalar() == int(pg_url.rsplit(":", 1)[1].split("/")[0])
        claim = ledger.claim("weekly", "2026-W48", "mail", "cto@example.com", owner="one", lease_seconds=60)
        assert claim is not None and ledger.mark_sent(claim, "<id@example.com>")
        with ledger.hold_period("weekly", "2026-W48"):  # the period lock: an engine of its own, same hosts
            pass
    finally:
        ledger.close()
    again = Ledger(url)
    try:
        assert again.delivery_state("weekly", "2026-W48", "mail", "cto@example.com") == "sent"
        assert again.deliveries("weekly", "2026-W48")[0]["sends"] == 1
    finally:
        again.close()
    assert probe(url).startswith("reachable, schema version ")


# -- a real streaming replica (pg_standby): what a source and a ledger pointed at it do ------------

@pytest.fixture(scope="module")
def replica(request):
    """A primary and its hot standby for this module, the trap events loaded on the primary and replayed on
    the standby (database ``events``); stopped at the end."""
    from conftest import _pg_ctl
    from pg_standby import start_replica, stop_replica

    pair = start_replica(_pg_ctl(request))
    try:
        import psycopg

        with psycopg.connect(pair.url(pair.primary), autocommit=True) as con:
            con.execute("CREATE DATABASE events")
        load_postgres(trap_rows("berlin-fall-week"), pair.url(pair.primary, "events"))
        pair.replayed("events", "SELECT count(*) FROM events.agent_events", len(trap_rows("berlin-fall-week")))
        yield pair
    finally:
        stop_replica(pair)


@pytest.fixture
def ledger_db(replica, request):
    """A fresh database on the primary for a ledger, replayed on the standby: its name."""
    import psycopg

    import hashlib

    name = "l_" + hashlib.blake2b(request.node.name.encode(), digest_size=8).hexdigest()  # parameters differ at the end
    with psycopg.connect(replica.url(replica.primary), autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    replica.replayed(name, "SELECT 1", 1)
    return name


def _server(source) -> tuple[int, bool]:
    """The port of the server a source's session landed on, and whether it is a standby."""
    with source.backend.con.cursor() as cur:
        cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        port, standby = cur.fetchone()
    source.backend.con.commit()
    return port, standby


@pytest.mark.postgres
@pytest.mark.parametrize("order,attrs", [("standby,primary", "prefer-standby"), ("primary,standby", "prefer-standby"),
                                         ("primary,standby", "standby")])
def test_a_report_through_a_replicas_url_runs_on_the_standby_and_equals_the_primarys(replica, order, attrs):
    ports = [getattr(replica, name) for name in order.split(",")]
    url = replica.hosts(*ports, db="events", query=f"?target_session_attrs={attrs}")
    source = open_source(SourceConfig(url=url, table="events.agent_events", settings=SETTINGS))
    try:
        assert _server(source) == (replica.standby, True)
        assert source.temp_tables is False  # a hot standby refuses CREATE TEMP TABLE: each step computed inline
    finally:
        source.close()
    # Inline steps sum floats in another order than temporary tables do: costs differ in the 16th digit
    assert _report(url) == _floats_approx(_report(replica.url(replica.primary, "events")))


def _floats_approx(doc):
    """``doc`` (report.json) with every float compared to 1e-12, everything else exactly."""
    if isinstance(doc, dict):
        return {key: _floats_approx(value) for key, value in doc.items()}
    if isinstance(doc, list):
        return [_floats_approx(value) for value in doc]
    return pytest.approx(doc, rel=1e-12, abs=0) if isinstance(doc, float) else doc


@pytest.mark.postgres
def test_a_ledger_url_naming_the_standby_first_with_read_write_records_on_the_primary(replica, ledger_db):
    from agentdigest.ledger import Ledger

    url = replica.hosts(replica.standby, replica.primary, db=ledger_db, query="?target_session_attrs=read-write")
    ledger = Ledger(url)
    try:
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT inet_server_port(), pg_is_in_recovery()").one() == (replica.primary, False)
        claim = ledger.claim("weekly", "2026-W48", "mail", "cto@example.com", owner="one", lease_seconds=60)
        assert claim is not None and ledger.mark_sent(claim, "<id@example.com>")
        with ledger.hold_period("weekly", "2026-W48"):  # its own engine, the same hosts: the primary too
            pass
    finally:
        ledger.close()
    again = Ledger(url)
    try:
        assert again.delivery_state("weekly", "2026-W48", "mail", "cto@example.com") == "sent"
    finally:
        again.close()
    replica.replayed(ledger_db, "SELECT count(*) FROM deliveries WHERE state = 'sent'", 1)  # written on the primary


def _agentdigest(folder, *args: str, source: str = "duckdb://", ledger: str = "sqlite:///ledger.db",
                 password: str = "s3cr/et@x") -> subprocess.CompletedProcess:
    """The CLI on a config of ``source`` (events.agent_events) and ``ledger``, ``${PW}`` being ``password``."""
    (folder / "agentdigest.toml").write_text(
        f'[source]\nurl = "{source}"\ntable = "events.agent_events"\n[ledger]\nurl = "{ledger}"\n'
        '[archive]\npath = "archive"\n[channels.box]\ntype = "outbox"\npath = "outbox"\n'
        '[[reports]]\nid = "r"\ntimezone = "Europe/Berlin"\nchannels = ["box"]\n')
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=folder, timeout=120,
                          env={**os.environ, "COLUMNS": "300", "PW": password})


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["history"], ["run", "r", "--period", "2026-W43"]])
def test_a_ledger_on_the_standby_alone_with_read_write_fails_in_one_line_as_a_closed_port_does(
        replica, ledger_db, tmp_path, command):
    said = {}
    for name, port in (("closed", free_port()), ("standby", replica.standby)):
        ledger = f"postgresql://postgres:${{PW}}@127.0.0.1:{port}/{ledger_db}?target_session_attrs=read-write"
        done = _agentdigest(tmp_path, *command, source=replica.url(replica.standby, "events"), ledger=ledger)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "s3cr" not in done.stdout + done.stderr, done.stderr
        said[name] = (done.returncode, lines[0])
    assert said["standby"][0] == said["closed"][0] == 1, said
    assert said["standby"][1].endswith(f"port {replica.standby} failed: session is read-only"), said


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
def test_a_ledger_whose_hosts_are_a_closed_port_and_the_standby_names_both_reasons(replica, ledger_db, tmp_path,
                                                                                     scheme):
    closed = free_port()
    ledger = (f"{scheme}://postgres:${{PW}}@127.0.0.1:{closed},127.0.0.1:{replica.standby}/{ledger_db}"
              "?target_session_attrs=read-write")
    done = _agentdigest(tmp_path, "history", ledger=ledger)
    assert done.returncode == 1 and "s3cr" not in done.stdout + done.stderr, done.stderr
    assert done.stderr.strip() == (f"agentdigest: error: cannot reach the ledger {ledger.replace('${PW}', '***')}: "
                                   f"cannot connect to any of its 2 hosts (127.0.0.1:{closed}: Connection refused; "
                                   f"127.0.0.1:{replica.standby}: session is read-only)"), done.stderr


@pytest.mark.postgres
def test_check_against_the_standby_says_the_source_has_no_temporary_tables_and_the_ledger_cannot_be_written(
        replica, ledger_db, tmp_path):
    """The first thing pointed at a replica: check. A ledger on it (no read-write) passed check as "reachable,
    empty", and the run then failed "cannot execute CREATE TABLE in a read-only transaction"."""
    done = _agentdigest(tmp_path, "check", source=replica.url(replica.standby, "events"),
                        ledger=replica.url(replica.standby, ledger_db))
    lines = {line.split(" ", 1)[0]: line for line in done.stdout.splitlines()}
    assert "no temporary tables (read-only): reports compute more slowly" in lines["source"], done.stdout
    assert done.returncode == 1 and "FAILED" in lines["ledger"], done.stdout
    assert "is a standby" in lines["ledger"] and "target_session_attrs=read-write" in lines["ledger"], lines["ledger"]
    run = _agentdigest(tmp_path, "run", "r", "--period", "2026-W43", source=replica.url(replica.standby, "events"),
                       ledger=replica.url(replica.standby, ledger_db))
    assert run.returncode == 1 and "is a standby" in run.stderr, run.stderr
    assert "No runs or deliveries" in _agentdigest(tmp_path, "history", ledger=replica.url(replica.standby, ledger_db)).stdout


@pytest.mark.postgres
def test_a_query_the_standby_cancels_for_a_recovery_conflict_says_what_to_set(replica):
    """A long query on a hot standby is cancelled when the primary's VACUUM removes rows its snapshot needs and
    the replay may not wait (``max_standby_streaming_delay``): the one line names the settings that allow it."""
    import threading

    import psycopg

    from agentdigest.sources import query_error

    conf = replica.base / "standby" / "postgresql.conf"
    kept = conf.read_text()
    with psycopg.connect(replica.url(replica.primary), autocommit=True) as con:
        con.execute("CREATE TABLE conflicted AS SELECT generate_series(1, 1000) AS i")
    replica.replayed("postgres", "SELECT count(*) FROM conflicted", 1000)
    conf.write_text(kept + "max_standby_streaming_delay = 0\n")
    replica.pg_ctl("standby", "reload")
    failed: list[BaseException] = []

    def long_query() -> None:
        try:
            with psycopg.connect(replica.url(replica.standby), autocommit=True) as con:
                con.execute("SELECT pg_sleep(20), count(*) FROM conflicted").fetchone()
        except psycopg.Error as exc:
            failed.append(exc)

    try:
        reader = threading.Thread(target=long_query)
        reader.start()
        replica.replayed("postgres", "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%' "
                         "AND state = 'active'", True)  # the long query runs: it holds its snapshot
        with psycopg.connect(replica.url(replica.primary), autocommit=True) as con:
            con.execute("DELETE FROM conflicted")
            con.execute("VACUUM conflicted")
        reader.join(60)
    finally:
        conf.write_text(kept)
        replica.pg_ctl("standby", "reload")
    assert failed and "conflict with recovery" in str(failed[0])
    said = str(query_error(failed[0]))
    assert said.startswith("query failed: canceling statement due to conflict with recovery")
    assert "hot_standby_feedback = on" in said and "max_standby_streaming_delay" in said
    assert "\n" not in said
