"""What ``[ledger]`` may say: :class:`LedgerConfig`, its ``url`` checked with the config (the scheme, the
driver installed and synchronous, the port), so ``check`` refuses a URL every run would fail on, naming the file.

Opening the database it names is :mod:`agentdigest.ledger_schema`'s and :mod:`agentdigest.ledger_db`'s business.
"""

from __future__ import annotations

from pydantic import field_validator

from .channel_settings import StrictModel, shown
from .ledger_url import sqlalchemy_url


class LedgerConfig(StrictModel):
    url: str = "sqlite:///./agentdigest.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        """Checked with the config (so ``check`` catches it and the error names the file); the driver
        and the connection are the ledger's business when it opens."""
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if not (scheme in ("postgresql", "postgres") or scheme.startswith(("postgresql+", "sqlite"))):
            raise ValueError("expected sqlite:///path or postgresql://user@host/db")
        # Found in a config audit: these passed check (sqlite://x.db read as "in memory") and every run then
        # failed with "unexpected error".
        rest = value.partition("://")[2]
        if scheme.startswith("sqlite") and rest and not rest.startswith("/"):
            # not repeating the value: it may come from a variable, and hold a password (a re-check)
            raise ValueError("expected sqlite:///path (three slashes before a relative path, four before an "
                             "absolute one)")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        if not scheme.startswith("sqlite"):
            try:  # several hosts, as libpq and the source name them: h1:5432,h2:5432 (ledger_url)
                value_hosts = sqlalchemy_url(value)
            except ValueError as exc:  # no URL in it: the value may hold a password
                raise ValueError(f"not a usable PostgreSQL URL: {exc}") from None
        else:
            value_hosts = value
        try:  # postgres:// (libpq's spelling, which the source takes) is SQLAlchemy's postgresql://
            url = make_url("postgresql" + value_hosts[len(scheme):] if scheme == "postgres" else value_hosts)
            dialect = url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"unknown database driver {shown(scheme)} (expected postgresql:// or "
                             "postgresql+psycopg2://)") from None
        except (ArgumentError, ValueError):
            raise ValueError("not a database URL: the port must be a number, and a password holding / ? # @ "
                             "must be URL-encoded") from None
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(f"port {url.port} is not a port (1-65535)")
        # Found in a config re-check: asyncpg, pg8000 or aiosqlite passed, and the run ended "unexpected error:
        # ModuleNotFoundError". The ledger is synchronous: no async driver; the driver must be installed.
        if getattr(dialect, "is_async", False):
            raise ValueError(f"{shown(scheme)} is an async driver; the ledger needs postgresql:// (psycopg) or "
                             "sqlite:///")
        try:  # a plain postgresql:// gets whichever of psycopg and psycopg2 is installed (ledger_schema.engine_url)
            if "+" in scheme:
                dialect.import_dbapi()
        except ImportError as exc:
            raise ValueError(f"the driver of {shown(scheme)} is not installed ({exc.name or exc}); use postgresql:// "
                             "(agentdigest's postgres extra), or install it") from None
        return value
