"""Set-based writes: rows staged in a temporary table, then one statement per change.

Shared by the bulk update (:mod:`hubkit.store.rates`) and the catalog import
(:mod:`hubkit.store.imports`). Per-row ORM flushes cost milliseconds a row (the unit of
work, the statement compile, a round trip); staging costs microseconds. The writer stages
its rows chunk by chunk with :func:`stage`, then joins the staging table to the real ones
(``INSERT … SELECT``, ``UPDATE … FROM``); (:func:`insert_history_select`) runs the history
``INSERT … SELECT`` and returns the new ids in staging order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, Connection, Insert, Integer, MetaData, Table, func, select
from sqlalchemy import text as sql_text

from hubkit.store.schema import RateHistoryRow
from hubkit.store.types import ExactDecimal

CHUNK = 1000  # rows per staging statement: bounded memory, one round trip per chunk

_HISTORY = RateHistoryRow.__table__


def temporary_table(name: str, *columns: Column[Any]) -> Table:
    """A per-transaction temporary table (dropped on commit on PostgreSQL; drop it anyway)."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def stage(conn: Connection, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Put one chunk of rows (values in ``table``'s column order) into ``table``.

    Values arrive in their stored form: decimals as plain decimal strings (exact, and on
    SQLite the very text ExactDecimal stores), JSON columns as JSON text. Not SQLAlchemy's
    executemany: its per-row parameter handling was most of a 10,000-rate bulk apply on
    SQLite, and on PostgreSQL each row is a round trip.
    """
    if not rows:
        return
    names = ", ".join(c.name for c in table.columns)
    if conn.dialect.name == "sqlite":
        # The driver's own executemany (in C).
        marks = ", ".join("?" for _ in table.columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
        return
    # PostgreSQL: the chunk as one JSON document, unpacked and cast (exactly) by the server.
    casts = ", ".join(f"(e->>{i})::{_pg_type(c)}" for i, c in enumerate(table.columns))
    conn.execute(
        sql_text(
            f"INSERT INTO {table.name} ({names}) SELECT {casts} "
            "FROM json_array_elements(CAST(:rows AS json)) AS e"
        ),
        {"rows": json.dumps(rows)},
    )


def _pg_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, ExactDecimal):
        return "numeric"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, JSON):
        return "json"
    return "text"


def insert_history_select(conn: Connection, history: Insert) -> tuple[int, ...]:
    """Run a history ``INSERT … SELECT``; the new rows' ids in the SELECT's order."""
    ids = _HISTORY.c.id
    if conn.dialect.name != "sqlite":
        # ids are drawn in the SELECT's order; RETURNING's order is not promised
        return tuple(sorted(conn.execute(history.returning(ids)).scalars().all()))
    # RETURNING doubles SQLite's own cost of a 10,000-row INSERT … SELECT. The unit holds
    # the write lock (BEGIN IMMEDIATE) and new ids only go up, so the rows above the old
    # maximum are exactly these: n of them in (before, after] with after − before = n fill
    # that range (always, with AUTOINCREMENT); otherwise read them.
    before = conn.scalar(select(func.max(ids))) or 0
    inserted = conn.execute(history).rowcount
    after = conn.scalar(select(func.max(ids))) or 0
    if after - before == inserted:
        return tuple(range(before + 1, after + 1))
    return tuple(conn.scalars(select(ids).where(ids > before).order_by(ids)).all())
