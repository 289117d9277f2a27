"""The ledger's schema migrations: from each version to the next, applied in order by :mod:`.ledger_db`, and the
views that show an older schema, read without being upgraded, as this version's tables."""

from __future__ import annotations

from sqlalchemy import inspect, text, update
from sqlalchemy.engine import Connection

from .ledger_schema import deliveries, heartbeats, metadata, runs


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[runs, deliveries, heartbeats])


def _add_run_owner(conn: Connection) -> None:
    # A ledger created at version 2 already has the column (create_all uses today's tables).
    if "owner" not in {c["name"] for c in inspect(conn).get_columns("runs")}:
        conn.execute(text("ALTER TABLE runs ADD COLUMN owner VARCHAR(200)"))


def _alarms_apart(conn: Connection) -> None:
    # Up to version 2 alarms were recorded as period deliveries on channel "alarm:<name>" with recipient
    # "late" or "failed", so a sent alarm made its report's period look delivered.
    d = deliveries.c
    conn.execute(update(deliveries).where(d.kind == "period", d.channel.like("alarm:%"),
                                          d.recipient.in_(("late", "failed"))).values(kind="alarm"))


def _add_destination(conn: Connection) -> None:
    # Rows from before have none: a channel renamed since sends them again, as it did then (renames.py).
    if "destination" not in {c["name"] for c in inspect(conn).get_columns("deliveries")}:
        conn.execute(text("ALTER TABLE deliveries ADD COLUMN destination VARCHAR(64)"))


def _add_failed_under(conn: Connection) -> None:
    # Rows from before have none: a target refused for good then is tried again by the next pass, as it was then.
    if "failed_under" not in {c["name"] for c in inspect(conn).get_columns("deliveries")}:
        conn.execute(text("ALTER TABLE deliveries ADD COLUMN failed_under VARCHAR(64)"))


# version -> upgrade from the version before; applied in order, each inside the schema lock.
MIGRATIONS = {1: _create_v1, 2: _add_run_owner, 3: _alarms_apart, 4: _add_destination, 5: _add_failed_under}


def older_schema_views(conn: Connection, version: int) -> None:
    """Temporary views that show a ledger of an older schema ``version``, read without being upgraded, as this
    version's tables: a column added since reads as NULL, and an alarm recorded as its period's delivery (up to
    version 2) as an alarm, as the upgrade would make them. SQLite and PostgreSQL both look an unqualified name up
    among temporary objects first, so every statement reads the views; nothing is written to the ledger's tables.

    Made in ``conn``'s transaction, and gone when it is rolled back (SQLite's and PostgreSQL's DDL is
    transactional): a connection keeps none for its next transaction, which through PgBouncer in transaction
    mode is another client's, or runs on another server connection."""
    sqlite = conn.dialect.name == "sqlite"
    schema = "main" if sqlite else conn.scalar(text("SELECT current_schema()"))
    for table in (runs, deliveries):
        if sqlite:
            present = {row[1] for row in conn.execute(text(f"PRAGMA main.table_info({table.name})"))}
        else:
            present = set(conn.scalars(text("SELECT column_name FROM information_schema.columns "
                                            "WHERE table_schema = :schema AND table_name = :table"),
                                       {"schema": schema, "table": table.name}))
        moved = table is deliveries and version < 3
        if set(table.c.keys()) <= present and not moved:
            continue
        columns = [f'NULL AS "{c.name}"' if c.name not in present else f'"{c.name}"' for c in table.c]
        if moved:  # as _alarms_apart does
            columns[list(table.c.keys()).index("kind")] = (
                "CASE WHEN kind = 'period' AND channel LIKE 'alarm:%' AND recipient IN ('late', 'failed') "
                "THEN 'alarm' ELSE kind END AS kind")  # text(): SQLAlchemy escapes the % for the driver
        conn.execute(text(f'CREATE TEMP VIEW {table.name} AS SELECT {", ".join(columns)} '
                          f'FROM "{schema}".{table.name}'))
