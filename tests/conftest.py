"""Shared fixtures: real servers (SMTP with STARTTLS and AUTH, PostgreSQL) and fabricated archives.

Delivery fixtures (SMTP, TLS certificate, PostgreSQL, archived artifacts) come first; other
sections may be appended below.
"""

from __future__ import annotations

import asyncio

import glob
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip locally with a reason; in CI (CI=true) a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def postgres_account(base: Path) -> list[str]:
    """The command prefix that runs a PostgreSQL binary as the ``postgres`` account when the tests run as root
    (initdb and postgres refuse root), ``base`` (the server's folder) given to it; none otherwise. Skips (or fails in
    CI) when that cannot be done."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        skip_or_fail("running as root and there is no 'postgres' account to run PostgreSQL as")
    if not shutil.which("setpriv"):
        skip_or_fail("running as root and setpriv (util-linux) is missing")
    os.chown(base, account.pw_uid, account.pw_gid)
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- TLS --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    if not shutil.which("openssl"):
        skip_or_fail("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


# -- SMTP -------------------------------------------------------------------------------------

class ScriptedSMTP:
    """An aiosmtpd handler that plays a fault script and records what it accepted.

    ``rcpt``: address -> answer (a str: always; a list: one answer per attempt, then accept).
    ``data``: answers to DATA, one per attempt ("disconnect" drops the connection; "stored-disconnect"
    keeps the message, then drops it, as a relay that queued it and lost the connection), then accept.
    """

    def __init__(self, user: str, password: str, rcpt=None, data=None, ehlo=None):
        self.user, self.password = user, password
        self.ehlo = list(ehlo or [])  # answers to the first EHLOs (e.g. "421 too busy"), then the usual
        self.rcpt = {k: (list(v) if isinstance(v, list) else v) for k, v in (rcpt or {}).items()}
        self.data = list(data or [])
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpts: list[str] = []  # every RCPT TO address, refused or not, in order
        self.sessions: set = set()
        self.logins: list[bool] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions.add(session.peer)
        if self.ehlo:
            return [self.ehlo.pop(0)]
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts.append(address)
        answer = self.rcpt.get(address)
        if isinstance(answer, list) and answer:
            return answer.pop(0)
        if isinstance(answer, str):
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data:
            answer = self.data.pop(0)
            if answer.startswith("slow:"):  # a relay that scans the message before answering: accepted late
                await asyncio.sleep(float(answer[5:]))
                self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b""))
                return f"250 OK queued as m{len(self.messages)}"
            if answer in ("disconnect", "stored-disconnect"):
                if answer == "stored-disconnect":
                    self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b""))
                server.transport.abort()
                return "451 never seen"
            return answer
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b""))
        return f"250 OK queued as m{len(self.messages)}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = (auth_data.login.decode() == self.user and auth_data.password.decode() == self.password)
        self.logins.append(ok)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class SMTPServer:
    def __init__(self, handler: ScriptedSMTP, controller, scheme: str, port: int, host: str = "127.0.0.1"):
        self.handler, self.controller, self.scheme, self.port, self.host = handler, controller, scheme, port, host

    def url(self, user: str | None = None, password: str | None = None) -> str:
        from urllib.parse import quote

        user = self.handler.user if user is None else user
        password = self.handler.password if password is None else password
        return f"{self.scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"

    @property
    def messages(self):
        return self.handler.messages


@pytest.fixture
def smtp_server(tls_cert):
    """Factory: start an aiosmtpd server on loopback (STARTTLS or implicit TLS, AUTH required), on a free port of
    127.0.0.1 unless ``host`` and ``port`` are given (a privileged port needs root: the test is skipped, saying so)."""
    from aiosmtpd.controller import Controller

    started: list = []

    def start(scheme: str = "smtp+starttls", *, user="reports", password="p@ss:word/1", rcpt=None, data=None, ehlo=None,
              host: str = "127.0.0.1", port: int | None = None):
        cert, key = tls_cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        handler = ScriptedSMTP(user, password, rcpt, data, ehlo)
        if port is not None and port < 1024:
            try:
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
            except PermissionError:
                pytest.skip(f"binding {host}:{port} needs root (or a lower net.ipv4.ip_unprivileged_port_start)")
        port = port or free_port()
        kwargs = dict(hostname=host, port=port, authenticator=handler.authenticate, auth_required=True)
        if scheme == "smtps":
            kwargs.update(ssl_context=context, auth_require_tls=False)
        else:
            kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
        controller = Controller(handler, **kwargs)
        controller.start()
        started.append(controller)
        return SMTPServer(handler, controller, scheme, port, host)

    yield start
    for controller in started:
        controller.stop()


# -- PostgreSQL -------------------------------------------------------------------------------

def _pg_ctl(request) -> str | None:
    try:
        from pytest_postgresql.config import get_config

        configured = get_config(request).exec
    except Exception:  # pytest-postgresql missing or unconfigured
        configured = None
    candidates = [configured, shutil.which("pg_ctl"),
                  *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]), reverse=True)]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="session")
def pg_server(request):
    """A real PostgreSQL server for the session (pytest-postgresql's executor).

    initdb and postgres refuse to run as root; as root (CI) the server runs as the unprivileged
    ``postgres`` account through a setpriv wrapper, in a data folder that account owns.
    """
    try:
        from pytest_postgresql.executors import PostgreSQLExecutor
    except ImportError:
        skip_or_fail("pytest-postgresql is not installed")
    pg_ctl = _pg_ctl(request)
    if pg_ctl is None:
        skip_or_fail("no PostgreSQL server binaries (pg_ctl) found; set --postgresql-exec")
    base = Path(tempfile.mkdtemp(prefix="agentdigest-pg-"))
    executable = pg_ctl
    if as_postgres := postgres_account(base):
        executable = str(base / "pg_ctl-as-postgres")
        Path(executable).write_text(f"#!/bin/sh\nexec {' '.join(as_postgres)} {pg_ctl} \"$@\"\n")
        os.chmod(executable, 0o755)
    executor = PostgreSQLExecutor(
        executable=executable, host="127.0.0.1", port=free_port(), datadir=str(base / "data"),
        unixsocketdir=str(base), logfile=str(base / "postgresql.log"), startparams="-w",
        dbname="agentdigest_test", user="postgres", password=None)
    try:
        executor.start()
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        log = base / "postgresql.log"
        pytest.fail(f"PostgreSQL did not start: {exc} {log.read_text() if log.exists() else ''}")
    try:
        yield executor
    finally:
        executor.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server, request):
    """``postgresql://`` URL of a fresh, empty database on :func:`pg_server`, dropped afterwards."""
    from pytest_postgresql.janitor import DatabaseJanitor

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with DatabaseJanitor(user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name):
        yield f"postgresql://{pg_server.user}@{pg_server.host}:{pg_server.port}/{name}"


@pytest.fixture(scope="session")
def pgbouncer(pg_server):
    """Factory: a real PgBouncer in front of :func:`pg_server`, one process per configuration, kept for the session.

    ``pgbouncer(pool_mode, **settings)`` returns a function turning a URL of ``pg_server`` (a database of
    ``pg_url``, any role) into the same URL through that PgBouncer. Every database name is passed through
    (``*``); authentication is ``trust``, as the test server's. ``settings`` are more ``[pgbouncer]``
    lines, such as ``server_reset_query_always=1`` or ``default_pool_size=1``. As root, PgBouncer runs as
    the ``postgres`` account (it refuses root, as postgres does).
    """
    binary = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)
    if binary is None:
        skip_or_fail("the pgbouncer binary is not installed (Debian: apt-get install pgbouncer)")
    base = Path(tempfile.mkdtemp(prefix="agentdigest-pgbouncer-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        prefix = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
    started: dict[tuple, tuple[subprocess.Popen, int]] = {}

    def start(pool_mode: str, **settings):
        key = (pool_mode, *sorted(settings.items()))
        if key not in started:
            port, name = free_port(), f"p{len(started)}"
            # trust still looks the user up in auth_file; any role the tests create may connect.
            (base / "users.txt").write_text("".join(f'"{u}" ""\n' for u in ("postgres", *_BOUNCER_ROLES)))
            lines = ["listen_addr = 127.0.0.1", f"listen_port = {port}", "unix_socket_dir =", "auth_type = trust",
                     f"auth_file = {base / 'users.txt'}", f"pool_mode = {pool_mode}", f"logfile = {base / name}.log",
                     *(f"{k} = {v}" for k, v in settings.items())]
            ini = base / f"{name}.ini"
            ini.write_text(f"[databases]\n* = host={pg_server.host} port={pg_server.port}\n[pgbouncer]\n"
                           + "\n".join(lines) + "\n")
            for path in (ini, base / "users.txt"):
                os.chmod(path, 0o644)
            with open(base / f"{name}.err", "wb") as err:  # a file: a pipe nobody reads would fill and stop it
                proc = subprocess.Popen([*prefix, binary, str(ini)], stdout=subprocess.DEVNULL, stderr=err)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            else:
                proc.kill()
                pytest.fail(f"PgBouncer did not listen on {port}")
            if proc.poll() is not None:
                log = base / f"{name}.log"
                pytest.fail(f"PgBouncer did not start: {(base / f'{name}.err').read_text()} "
                            f"{log.read_text() if log.exists() else ''}")
            started[key] = (proc, port)
        port = started[key][1]
        return lambda url: url.replace(f"@{pg_server.host}:{pg_server.port}/", f"@127.0.0.1:{port}/")

    try:
        yield start
    finally:
        for proc, _ in started.values():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(base, ignore_errors=True)


#: The roles PostgreSQL tests may reach PgBouncer as (its auth_file lists them).
_BOUNCER_ROLES = ("agentdigest_pooled",)


# -- archived artifacts -----------------------------------------------------------------------

PDF_BYTES = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def checked_source_line(folder: Path, url: str, table: str) -> str:
    """``agentdigest check`` of a config in ``folder`` reading ``table`` at ``url`` (which must pass): its
    "source ..." line."""
    import sys

    (folder / "agentdigest.toml").write_text(f'[source]\nurl = "{url}"\ntable = "{table}"\n[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=folder, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("source "))


def make_artifacts(report_id: str = "weekly-exec", period_key: str = "2026-W48") -> dict[str, bytes]:
    """A small but valid set of archived artifacts, as the render step would leave them."""
    msg = EmailMessage()
    msg["From"] = "render@example.com"
    msg["To"] = "placeholder@example.com"
    msg["Subject"] = f"Agent Performance — {period_key}"
    msg["Date"] = "Mon, 30 Nov 2026 09:00:02 +0100"
    msg["Message-ID"] = "<render-placeholder@example.com>"
    msg.set_content("Conversations: 2,480 (+12.2%)")
    msg.add_alternative("<p>Conversations: <b>2,480</b> (+12.2%)</p>", subtype="html")
    msg.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="report.pdf")
    report = {"schema_version": 1, "report_id": report_id, "period": {"key": period_key},
              "metrics": {"conversations": {"value": 2480}}}
    slack = {"text": f"Agent Performance {period_key}",
             "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*2,480* conversations"}}]}
    return {"message.eml": msg.as_bytes(), "report.json": json.dumps(report).encode(),
            "slack.json": json.dumps(slack).encode(), "report.pdf": PDF_BYTES,
            "report.txt": b"Conversations: 2,480", "report.html": b"<p>2,480</p>"}


@pytest.fixture
def artifacts() -> dict[str, bytes]:
    return make_artifacts()


# -- Spark (engines) --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def spark():
    """One local Spark session (2 cores) for the whole run; sources opened on it reuse it.

    Skips locally without pyspark or Java 17; with CI=true their absence fails the run.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    from agentdigest.spark_session import spark_session
    from agentdigest.spark_url import check_java
    from agentdigest.errors import SourceError

    try:
        check_java()
    except SourceError as exc:
        skip_or_fail(str(exc))
    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
