"""Writing usage to the database: the ``usage`` and ``usage_rate_periods`` tables.

The tables are part of the store's schema (:mod:`hubkit.store.schema`, created by the
migrations like every other table), so the team database that holds the store can hold
the calls too and price them with the store's own rate history. :mod:`hubkit.usage.sql`
turns a pandas table into rows and aggregates them; the statements that write them, and
the knowledge of which back end sums exactly, are here.

Functions take an engine, not a :class:`~hubkit.store.Store`: usage often lives in a
database opened for it alone (a finance copy, a test), and only needs the schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, insert

from hubkit.store.engine import migrate
from hubkit.store.schema import USAGE_AMOUNT, rate_periods_table, usage_table

__all__ = [
    "USAGE_AMOUNT",
    "append_usage",
    "ensure_usage_tables",
    "is_exact",
    "rate_periods_table",
    "replace_rate_periods",
    "usage_table",
]

# Columns whose values are amounts: Decimal where the back end is exact, float elsewhere.
_AMOUNT_COLUMNS = frozenset(c.name for c in rate_periods_table.columns if c.type is USAGE_AMOUNT)


def is_exact(engine: Engine) -> bool:
    """Does this back end sum amounts exactly (NUMERIC), returning Decimal?"""
    return engine.dialect.name != "sqlite"


def ensure_usage_tables(engine: Engine) -> None:
    """Migrate the database to the store's head revision, which has the usage tables.

    Idempotent and cheap once current (one SELECT); safe from several processes at once
    (see :func:`hubkit.store.engine.migrate`).
    """
    migrate(engine)


def append_usage(engine: Engine, chunks: Iterable[Mapping[str, Sequence[Any]]]) -> int:
    """Append calls to ``usage`` in one transaction; the number of rows written.

    Each chunk maps column names (those of :data:`usage_table` but ``id``) to equally long
    lists: ``time`` naive UTC datetimes, the counts ints, ``seconds`` floats (stored as
    their decimal text on an exact back end: 4.5 seconds is 4.5, not its binary expansion).
    """
    exact = is_exact(engine)
    ensure_usage_tables(engine)
    written = 0
    with engine.begin() as conn:
        for chunk in chunks:
            columns = dict(chunk)
            if exact:
                columns["seconds"] = [Decimal(str(s)) for s in columns["seconds"]]
            names = list(columns)
            rows = [
                dict(zip(names, values, strict=True))
                for values in zip(*columns.values(), strict=True)
            ]
            if rows:
                conn.execute(insert(usage_table), rows)
            written += len(rows)
    return written


def replace_rate_periods(engine: Engine, periods: Sequence[Mapping[str, Any]]) -> int:
    """Replace ``usage_rate_periods`` with ``periods`` in one transaction; their number.

    Amounts come as Decimal (or None); bounds as naive UTC datetimes (or None, open).
    """
    exact = is_exact(engine)
    ensure_usage_tables(engine)
    rows = [
        {
            name: (float(value) if value is not None and not exact else value)
            if name in _AMOUNT_COLUMNS
            else value
            for name, value in period.items()
        }
        for period in periods
    ]
    with engine.begin() as conn:
        conn.execute(delete(rate_periods_table))
        if rows:
            conn.execute(insert(rate_periods_table), rows)
    return len(rows)
