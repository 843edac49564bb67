"""Usage in a SQL database: load a usage table into the store's ``usage`` table, and sum it.

When usage already lives in the team database, the sums that do not depend on anyone's
balance — calls, tokens, list-price credits and provider cost by model, day or user — are
one ``GROUP BY`` away; there is no need to pull every call into Python. The tables and the
queries are the store's (:mod:`hubkit.store.usage`: SQL lives in the store); this module is
the usage side of the door:

- :func:`create_usage_tables`, :func:`load_usage` (a validated pandas table, written in
  chunks);
- :func:`aggregate_usage` (``GROUP BY`` any of provider, model, type, day, user, app) and
  :func:`usage_totals`, re-exported from the store, priced by :mod:`hubkit.pricing.sql`
  (the SQL twin of :func:`hubkit.pricing.call_credits`; bounds in
  :mod:`hubkit.store.usage`).

The rate timeline that prices the calls is loaded by
:func:`hubkit.replay.timeline.load_rate_timeline`, and the same aggregation of an in-memory
table is :func:`hubkit.replay.aggregate.aggregate_usage_frame`: both read the replay's
timeline, a layer above this one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from hubkit.store.usage import (
    DIMENSIONS,
    SQLITE_RTOL,
    Engine,
    UsageTotals,
    aggregate_usage,
    append_usage,
    ensure_usage_tables,
    is_exact,
    rate_periods_table,
    usage_table,
    usage_totals,
)
from hubkit.usage.schema import COUNT_COLUMNS, TEXT_COLUMNS, USAGE_COLUMNS, validate_usage

__all__ = [
    "DIMENSIONS",
    "SQLITE_RTOL",
    "UsageTotals",
    "aggregate_usage",
    "create_usage_tables",
    "is_exact",
    "load_usage",
    "rate_periods_table",
    "usage_table",
    "usage_totals",
]


def create_usage_tables(engine: Engine) -> None:
    """Give the database the ``usage`` and ``usage_rate_periods`` tables if it lacks them.

    They are part of the store's schema: this migrates the database to the store's head
    revision (what ``python -m hubkit init`` does), a no-op once it is current.
    """
    ensure_usage_tables(engine)


def _naive_utc(values: pd.Series) -> list[dt.datetime]:
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("us")
    return list(naive.dt.to_pydatetime())


def load_usage(engine: Engine, usage: pd.DataFrame, *, chunk_rows: int = 20_000) -> int:
    """Append a usage table (validated first) to ``usage``; returns the rows written.

    Times are kept to the microsecond (both back ends' resolution).
    """
    frame = validate_usage(usage)[list(USAGE_COLUMNS)]
    return append_usage(engine, _usage_chunks(frame, chunk_rows))


def _usage_chunks(frame: pd.DataFrame, chunk_rows: int) -> Iterator[dict[str, list[Any]]]:
    # Column lists a chunk at a time: a big table is never all Python objects at once.
    for lo in range(0, len(frame), chunk_rows):
        part = frame.iloc[lo : lo + chunk_rows]
        columns: dict[str, list[Any]] = {"time": _naive_utc(part["time"])}
        for column in TEXT_COLUMNS:
            columns[column] = part[column].astype(str).tolist()
        for column in COUNT_COLUMNS:
            columns[column] = part[column].astype(np.int64).tolist()
        columns["seconds"] = part["seconds"].tolist()
        yield columns
