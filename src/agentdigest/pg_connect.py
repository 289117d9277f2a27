"""A PostgreSQL source's connection, opened from its URL: one host, or several as libpq names them.

``postgresql://reports@db1:5432,db2:5432/events?target_session_attrs=prefer-standby`` names a primary
and its replicas. Ibis's URL parsing (``ibis.connect``) read ``5432,db2:5432`` as the port and refused
the URL (exit 2), so psycopg opens it, reading it as libpq does (hosts tried in turn, each within
``connect_timeout``; ``target_session_attrs``, ``load_balance_hosts``), and Ibis takes the connection
(``ibis.postgres.from_connection``, which sets the session's time zone to UTC as ``ibis.connect`` did).
"""
from __future__ import annotations

import re
from typing import Any

from .errors import InputError, SourceError, first_line, install_extra
from .masking import mask_text, mask_url, url_secrets

# One line per failed attempt in psycopg's error when several were made:
# "- host: 'db1', port: '5432', hostaddr: '10.0.0.1': connection failed: ..."
_ATTEMPT = re.compile(r"^- host: (?:'([^']*)'|None), port: (?:'([^']*)'|None), hostaddr: (?:'[^']*'|None): (.*)$", re.M)
# libpq's own, one line per attempt, as psycopg2 (the ledger's other driver) passes it on:
# 'connection to server at "db1" (10.0.0.1), port 5432 failed: ...'
_LIBPQ_ATTEMPT = re.compile(r'^connection to server at "([^"]*)"(?: \([^)]*\))?, port (\d+) failed: (.*)$', re.M)
# What psycopg and libpq put before the reason itself
_PREFIX = re.compile(r"^(?:connection (?:failed|is bad): )?(?:connection to server at \"[^\"]*\", port \d+ failed: )?")


def connect(url: str) -> Any:
    """An Ibis postgres backend on a new connection to ``url`` (``postgres://``, ``postgresql://`` or
    ``postgresql+driver://``); InputError for a URL that cannot work, SourceError for servers that refuse."""
    import ibis

    try:
        import psycopg  # ibis's postgres backend needs it
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise SourceError(f"source: PostgreSQL needs psycopg; {install_extra('postgres')}") from None

    conninfo = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    if not re.search(r"[?&]connect_timeout=", conninfo):  # a server that accepts but never answers must not hang a run
        conninfo += ("&" if "?" in conninfo else "?") + "connect_timeout=10"
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:  # an unknown ?option, a malformed URL
        raise _not_usable(url, exc) from None
    if "/" in str(params.get("dbname") or ""):
        # Ibis read postgres://host/db/schema as a database and a search_path; libpq reads "db/schema" as the
        # database's name, which the server refuses as missing (exit 3): the schema belongs in `table`.
        schema = str(params["dbname"]).partition("/")[2]
        raise InputError(f"source.url: {mask_url(url)} is not a usable PostgreSQL URL (a schema in the URL's path "
                         f"is not read; write table = \"{schema}.<table>\")")
    hosts = _hosts(params)
    for port in {port for _, port in hosts if port}:
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise InputError(f"source.url: {mask_url(url)} is not a usable PostgreSQL URL (port {port!r} is not "
                             "a number from 1 to 65535)")
    try:
        # No server-side prepared statements: through PgBouncer in transaction mode (before 1.21) one lives on
        # one server connection of the pool, and Ibis prepares its column lookup: a second run through the pool
        # failed "prepared statement "_pg3_0" already exists", and where the pool resets its connections "...
        # does not exist" (measured, PgBouncer 1.18). Each of a report's queries runs once: preparing bought nothing.
        con = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
    except Exception as exc:
        why = _why(exc, url)
        # A value libpq refuses is the config's fault (exit 2), not the server's (found in a PostgreSQL audit:
        # "cannot connect (invalid connection option "sslmod")" exited 3).
        if isinstance(exc, (ValueError, psycopg.ProgrammingError)) or re.search(r"\binvalid \S+ value\b", why):
            raise _not_usable(url, exc) from exc
        if len(hosts) > 1:
            raise SourceError(f"source {mask_url(url)}: cannot connect to any of its {len(hosts)} hosts "
                              f"({each_host(str(exc), hosts, why, url)})") from exc
        raise SourceError(f"source {mask_url(url)}: cannot connect ({why})") from exc
    try:
        return ibis.postgres.from_connection(con)  # sets the time zone in a transaction
    except Exception as exc:
        con.close()
        raise SourceError(f"source {mask_url(url)}: cannot connect ({_why(exc, url)})") from exc


def _why(exc: Exception, url: str) -> str:
    why = mask_text(first_line(exc, 300), url_secrets(url))
    if "statement pooling" in why:  # PgBouncer's pool_mode = statement refuses every transaction block
        why += "; a report runs in one transaction: use a pool in transaction or session mode, or connect directly"
    return why


def _not_usable(url: str, exc: Exception) -> InputError:
    return InputError(f"source.url: {mask_url(url)} is not a usable PostgreSQL URL ({_why(exc, url)})")


def _hosts(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(host, port) for each host the URL names, as libpq pairs them: one port for all, or one each."""
    hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    return [(host, ports[i] if i < len(ports) else "") for i, host in enumerate(hosts)]


def each_host(message: str, hosts: list[tuple[str, str]], why: str, url: str) -> str:
    """Why each host failed, from psycopg's error listing its attempts, or libpq's (psycopg2's) lines (a host
    tried twice, as ``prefer-standby`` does, once per reason). psycopg tries only the hosts whose names resolve.
    The ledger says its connection failures with it too (ledger_url)."""
    attempts = _ATTEMPT.findall(message) or _LIBPQ_ATTEMPT.findall(message)
    if message.startswith("failed to resolve host") or (not attempts and message.startswith("could not translate")):
        return f"no host's name could be resolved: {why}"
    said: list[str] = []
    tried: set[str] = set()
    for host, port, reason in attempts:
        tried.add(host)
        line = f"{_host_port(host, port)}: {' '.join(_PREFIX.sub('', reason).split())}"
        if line not in said:
            said.append(line)
    if not said:  # a single attempt: the one host whose name resolved
        return f"{why}; the other hosts' names could not be resolved"
    said += [f"{_host_port(h, p)}: its name could not be resolved" for h, p in hosts if h not in tried]
    return mask_text("; ".join(said), url_secrets(url))


def _host_port(host: str, port: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host
