"""Writing usage to the database: the ``usage`` and ``usage_rate_periods`` tables.

The tables are part of the store's schema (:mod:`hubkit.store.schema`, created by the
migrations like every other table), so the team database that holds the store can hold
the calls too and price them with the store's own rate history. :mod:`hubkit.usage.sql`
turns a pandas table into rows; the statements that write them, the list-price
aggregations that read them (:func:`aggregate_usage`, :func:`usage_totals`: each call
priced by :mod:`hubkit.pricing.sql`, the SQL twin of :func:`hubkit.pricing.call_credits`),
and the knowledge of which back end sums exactly, are here.

Arithmetic and bounds:

- **PostgreSQL**: rates and seconds are ``NUMERIC``, counts ``BIGINT``; products and sums
  are exact ``NUMERIC``. Credits equal the sum of ``call_credits`` exactly and cost the
  sum of the exact per-call costs. Amounts come back as :class:`~decimal.Decimal`.
- **SQLite** has no decimal arithmetic: rates are stored as REAL and amounts come back as
  float. Each product and sum rounds to float64, so an amount is within
  ``SQLITE_RTOL`` (1e-9) relative of the exact value for tables far beyond SQLite's use
  (n additions of non-negative terms: ≤ (n+2)·2⁻⁵³ relative).

A call with no rate in force is *unsupported*: counted, never priced. What is *not* here,
on purpose: anything that depends on a balance (refusals, grants, expiry, revenue); those
need every user's calls in time order and go through the replay.

Functions take an engine, not a :class:`~hubkit.store.Store`: usage often lives in a
database opened for it alone (a finance copy, a test), and only needs the schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Engine,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
)

from hubkit.errors import ValidationError
from hubkit.pricing.sql import call_credits_sql, provider_cost_sql
from hubkit.store.engine import migrate
from hubkit.store.schema import USAGE_AMOUNT, rate_periods_table, usage_table

__all__ = [
    "DIMENSIONS",
    "Engine",  # the type these functions take: the layers above annotate without SQLAlchemy
    "SQLITE_RTOL",
    "USAGE_AMOUNT",
    "USAGE_COUNTS",
    "UsageTotals",
    "aggregate_usage",
    "append_usage",
    "check_dimensions",
    "ensure_usage_tables",
    "imported_source_ids",
    "is_exact",
    "last_usage_time",
    "naive_utc",
    "rate_periods_table",
    "read_usage_rows",
    "replace_rate_periods",
    "usage_table",
    "usage_totals",
]

#: Relative bound of SQLite's float sums against the exact NUMERIC ones.
SQLITE_RTOL = 1e-9
#: What :func:`aggregate_usage` can group by.
DIMENSIONS = ("provider", "model", "type", "day", "user", "app")
#: The whole-number counts of a call, in the table's order (those of hubkit.usage.schema).
USAGE_COUNTS = tuple(
    c.name for c in usage_table.columns if isinstance(c.type, BigInteger) and not c.primary_key
)

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


def imported_source_ids(engine: Engine) -> set[str]:
    """The gateway ids of the calls already imported into ``usage`` (``source_id``)."""
    ensure_usage_tables(engine)
    column = usage_table.c.source_id
    with engine.connect() as conn:
        return set(conn.execute(select(column).where(column.is_not(None))).scalars())


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


def naive_utc(value: Any) -> dt.datetime:
    """A time (any pandas-readable value, naive = UTC) as the tables store it: naive UTC,
    to the microsecond."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).floor("us").to_pydatetime()


# -- the priced call, as SQL -------------------------------------------------------------


@dataclass(frozen=True)
class _Priced:
    joined: Any  # usage LEFT JOIN the rate period in force
    filters: list[ColumnElement[bool]]
    credits: ColumnElement[Any]  # per call, rounded to 10 places
    cost: ColumnElement[Any]  # per call, NULL without unit costs


def _priced_calls(since: Any, until: Any) -> _Priced:
    """Every call of ``usage`` with the rate period in force and its credits and cost.

    Credits and cost come from :mod:`hubkit.pricing.sql`, the SQL twin of
    :func:`hubkit.pricing.call_credits` (and of the Decimal cost in ``price_exact``).
    """
    u, r = usage_table.c, rate_periods_table.c
    in_force = and_(
        r.provider == u.provider,
        r.model == u.model,
        r.type == u.type,
        or_(r.valid_from.is_(None), r.valid_from <= u.time),
        or_(r.valid_to.is_(None), u.time < r.valid_to),
    )
    joined = usage_table.outerjoin(rate_periods_table, in_force)
    credits = type_coerce(call_credits_sql(u, r), USAGE_AMOUNT)
    cost = type_coerce(provider_cost_sql(u, r), USAGE_AMOUNT)
    filters = []
    if since is not None:
        filters.append(u.time >= naive_utc(since))
    if until is not None:
        filters.append(u.time < naive_utc(until))
    return _Priced(joined, filters, credits, cost)


def _total(amount: ColumnElement[Any], zero: ColumnElement[Any]) -> ColumnElement[Any]:
    # SUM over no rows is NULL: 0 of the amount type instead
    return type_coerce(func.coalesce(func.sum(amount), zero), USAGE_AMOUNT)


def _measures(priced: _Priced) -> list[Any]:
    u, r = usage_table.c, rate_periods_table.c
    unsupported = case((r.id.is_(None), 1), else_=0)
    no_cost = case(
        (and_(r.id.is_not(None), r.unit_cost_input.is_(None), r.unit_cost_output.is_(None)), 1),
        else_=0,
    )
    zero = type_coerce(literal(0), USAGE_AMOUNT)
    return [
        func.count().label("calls"),
        func.sum(unsupported).label("calls_unsupported"),
        *(func.sum(getattr(u, c)).label(c) for c in USAGE_COUNTS),
        func.sum(u.seconds).label("seconds"),
        _total(priced.credits, zero).label("credits"),
        _total(priced.cost, zero).label("provider_cost"),
        func.sum(no_cost).label("calls_without_unit_costs"),
    ]


def check_dimensions(by: Iterable[str]) -> list[str]:
    """``by`` without repeats, each one of :data:`DIMENSIONS` (else a ValidationError)."""
    dims = list(dict.fromkeys(by))
    for name in dims:
        if name not in DIMENSIONS:
            raise ValidationError(
                f"cannot group usage by {name!r}; choose from {list(DIMENSIONS)}", field="by"
            )
    return dims


def _dimension(name: str, dialect: str) -> ColumnElement[Any]:
    u = usage_table.c
    if name != "day":
        return u[name].label(name)
    # SQLite's CAST(... AS DATE) is numeric affinity (it gives the year): use date().
    day = func.date(u.time) if dialect == "sqlite" else cast(u.time, Date)
    return day.label("day")


_INT_MEASURES = ("calls", "calls_unsupported", *USAGE_COUNTS, "calls_without_unit_costs")


def aggregate_usage(
    engine: Engine,
    by: Sequence[str] = ("provider", "model", "type"),
    *,
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """List-price totals of the ``usage`` table grouped by ``by``, computed in the database.

    ``by``: any of :data:`DIMENSIONS` (``day`` is the UTC date). Columns: the dimensions,
    then calls, calls_unsupported, the counts, seconds, credits, provider_cost,
    calls_without_unit_costs; sorted by the dimensions. ``credits`` / ``provider_cost``
    are Decimal on PostgreSQL (exact), float on SQLite. ``since`` ≤ time < ``until``.
    """
    dims = check_dimensions(by)
    priced = _priced_calls(since, until)
    keys = [_dimension(name, engine.dialect.name) for name in dims]
    query = select(*keys, *_measures(priced)).select_from(priced.joined).where(*priced.filters)
    if keys:
        query = query.group_by(*keys).order_by(*keys)
    with engine.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return _normalise(frame, dims, exact=is_exact(engine))


def _normalise(frame: pd.DataFrame, dims: list[str], *, exact: bool) -> pd.DataFrame:
    # SUM(BIGINT) is NUMERIC on PostgreSQL and NULL over no rows: plain int64 counts.
    for column in _INT_MEASURES:
        frame[column] = frame[column].fillna(0).astype(np.int64)
    frame["seconds"] = frame["seconds"].fillna(0).astype(np.float64)
    for column in ("credits", "provider_cost"):
        if exact:
            frame[column] = frame[column].map(_plain_decimal)
        else:
            frame[column] = frame[column].fillna(0.0).astype(np.float64)
    if "day" in dims:
        frame["day"] = [
            v if isinstance(v, dt.date) else dt.date.fromisoformat(v) for v in frame["day"]
        ]
    return frame


def _plain_decimal(value: Decimal | None) -> Decimal:
    # NUMERIC sums carry the operands' scale (18 places); drop the trailing zeros so values
    # print as the Decimal reference does (integral values stay plain, not 1E+2).
    if value is None or value == 0:
        return Decimal(0)
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


@dataclass(frozen=True)
class UsageTotals:
    """The balance-independent KPIs of a usage table (compare with :class:`hubkit.replay.Kpis`
    of a replay with billing off: calls, calls_unsupported, users, credits_used,
    provider_cost, calls_without_unit_costs)."""

    calls: int
    calls_unsupported: int
    users: int
    credits: Decimal | float
    provider_cost: Decimal | float
    calls_without_unit_costs: int


def usage_totals(engine: Engine, *, since: Any = None, until: Any = None) -> UsageTotals:
    """One row of list-price totals over the whole ``usage`` table, in the database."""
    priced = _priced_calls(since, until)
    measures = [*_measures(priced), func.count(distinct(usage_table.c.user)).label("users")]
    query = select(*measures).select_from(priced.joined).where(*priced.filters)
    with engine.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["users"] = frame["users"].fillna(0).astype(np.int64)
    row = _normalise(frame, [], exact=is_exact(engine)).iloc[0]
    exact = is_exact(engine)
    return UsageTotals(
        calls=int(row["calls"]),
        calls_unsupported=int(row["calls_unsupported"]),
        users=int(row["users"]),
        credits=row["credits"] if exact else float(row["credits"]),
        provider_cost=row["provider_cost"] if exact else float(row["provider_cost"]),
        calls_without_unit_costs=int(row["calls_without_unit_costs"]),
    )


# -- reading calls back ------------------------------------------------------------------


def last_usage_time(engine: Engine) -> dt.datetime | None:
    """The time of the newest call in ``usage`` (tz-aware UTC), None when it is empty."""
    with engine.connect() as conn:
        last = conn.scalar(select(func.max(usage_table.c.time)))
    if last is None:
        return None
    if isinstance(last, str):  # SQLite may hand back text for an aggregate of a DATETIME
        last = dt.datetime.fromisoformat(last)
    moment: dt.datetime = last
    return moment.replace(tzinfo=dt.UTC)


def read_usage_rows(
    engine: Engine, *, since: Any = None, until: Any = None, imported_only: bool = False
) -> pd.DataFrame:
    """The calls of ``usage`` with ``since`` ≤ time < ``until``, as a usage table (the
    columns of :mod:`hubkit.usage.schema`, times tz-aware UTC, sorted by time), with the
    gateway's ``source_id`` and ``stored_credits`` (Decimal, or None) of imported calls.

    ``imported_only``: only the calls imported from the gateway (with a ``source_id``).
    """
    u = usage_table.c
    columns = [c for c in usage_table.columns if c.name != "id"]
    query = select(*columns).order_by(u.time, u.id)
    if since is not None:
        query = query.where(u.time >= naive_utc(since))
    if until is not None:
        query = query.where(u.time < naive_utc(until))
    if imported_only:
        query = query.where(u.source_id.is_not(None))
    with engine.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    for name in USAGE_COUNTS:
        frame[name] = frame[name].astype(np.int64)
    frame["seconds"] = frame["seconds"].astype(np.float64)
    return frame
