"""A PostgreSQL ledger URL naming several hosts, as libpq writes them, in the form SQLAlchemy takes.

libpq (and the source) name a primary and its replicas in the URL's host part:
``postgresql://reports@db1:5432,db2:5432/ledger?target_session_attrs=read-write``. SQLAlchemy's URL parser
reads ``5432,db2:5432`` as the port and refuses it; its psycopg and psycopg2 dialects take the hosts in the
query instead (``postgresql+psycopg://reports@/ledger?host=db1,db2&port=5432,5432``, the comma form of
"Specifying multiple fallback hosts", which keeps an IPv6 address whole where ``host=db1:5432`` would split
it) and hand them to libpq, which tries them in turn; the rest of the query (``target_session_attrs``)
passes through.
"""

from __future__ import annotations

from urllib.parse import quote

from .channel_settings import shown


def libpq_hosts(url: str) -> list[tuple[str, str]] | None:
    """(host, port) for each host a URL names when it names several, ``None`` when it names one (or none).

    ValueError, without the URL in it (it may hold a password), for a host part that cannot work."""
    scheme, sep, rest = url.partition("://")
    head = rest.partition("#")[0].partition("?")[0]
    hostpart = head.rpartition("@")[2].partition("/")[0]  # up to the last "@": a password may hold "/"
    if not sep or "," not in hostpart:
        return None
    hosts = []
    for entry in hostpart.split(","):
        if entry.startswith("["):  # an IPv6 address: [::1]:5432
            host, bracket, port = entry[1:].partition("]")
            if not bracket or (port and not port.startswith(":")):
                raise ValueError(f"host {shown(entry)} is not [IPv6 address] or [IPv6 address]:port")
            port = port[1:]
        else:
            host, _, port = entry.partition(":")
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"host {shown(host or entry)}: port {shown(port)} is not a number from 1 to 65535")
        if not host:
            raise ValueError(f"one of its {hostpart.count(',') + 1} hosts is empty (expected host1:port1,host2:port2)")
        hosts.append((host, port))
    return hosts


def sqlalchemy_url(url: str) -> str:
    """``url`` unchanged when it names one host; with several, the same URL with its hosts moved to the
    query as SQLAlchemy's psycopg dialects take them. ValueError (no secret in it) when they cannot work."""
    hosts = libpq_hosts(url)
    if hosts is None:
        return url
    scheme, _, rest = url.partition("://")
    rest, hash_, fragment = rest.partition("#")
    head, q, query = rest.partition("?")
    userinfo, at, hostpath = head.rpartition("@")
    path = hostpath.partition("/")[2]
    names = {part.partition("=")[0].lower() for part in query.split("&") if part}
    if names & {"host", "hostaddr", "port"}:
        raise ValueError("several hosts (host1,host2) and ?host=, ?hostaddr= or ?port= in the same URL: name "
                         "the hosts once")
    moved = "host=" + quote(",".join(h for h, _ in hosts), safe=",")
    if any(p for _, p in hosts):
        moved += "&port=" + ",".join(p for _, p in hosts)
    return f"{scheme}://{userinfo}{at}/{path}?{moved}" + (f"&{query}" if query else "") + hash_ + fragment
