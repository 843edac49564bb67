"""Usage in a SQL database: a ``usage`` table and the aggregations pushed down to it.

When usage already lives in the team database, the sums that do not depend on anyone's
balance — calls, tokens, list-price credits and provider cost by model, day or user — are
one ``GROUP BY`` away; there is no need to pull every call into Python. This module holds:

- two tables of the store's schema (:mod:`hubkit.store.schema`, made by its migrations):
  :data:`usage_table` (``usage``: one row per call, the columns of
  :mod:`hubkit.usage.schema`) and :data:`rate_periods_table` (``usage_rate_periods``:
  the rate timeline, :mod:`hubkit.replay.timeline`, that prices the calls);
- :func:`create_usage_tables`, :func:`load_usage`, :func:`load_rate_timeline` (the rows
  are written by :mod:`hubkit.store.usage`);
- :func:`aggregate_usage` (``GROUP BY`` any of provider, model, type, day, user, app)
  and :func:`usage_totals`, and :func:`aggregate_usage_frame`, the same aggregation of
  a pandas table through the vectorised kernel (:meth:`hubkit.replay.timeline.RateBook.price`).

The SQL prices each call as :func:`hubkit.pricing.call_credits` does (domain.md, "Credits
for one call"): the rate in force at the call's time (``valid_from ≤ time < valid_to``),
the count the type bills (output tokens, images or seconds: :data:`hubkit.domain.BILLING`,
through :func:`_billed_units`), cache rates falling back to
the input rate, credits rounded per call to 10 places (``ROUND(x, 10)``, half away from
zero = ROUND_HALF_UP for these non-negative amounts); provider cost is not rounded. A call
with no rate in force is *unsupported*: counted, never priced.

Arithmetic and bounds:

- **PostgreSQL**: rates and seconds are ``NUMERIC``, counts ``BIGINT``; products and sums
  are exact ``NUMERIC``. Credits equal the sum of :func:`call_credits` exactly and cost the
  sum of the exact per-call costs. Amounts come back as :class:`~decimal.Decimal`.
- **SQLite** has no decimal arithmetic: rates are stored as REAL and amounts come back as
  float. Each product and sum rounds to float64, so an amount is within
  ``SQLITE_RTOL`` (1e-9) relative of the exact value for tables far beyond SQLite's use
  (n additions of non-negative terms: ≤ (n+2)·2⁻⁵³ relative).
- The pandas path (:func:`aggregate_usage_frame`, and the replay's ``credits_used`` /
  ``provider_cost`` with billing off) is float64 without the per-call rounding, so its
  credits differ from the exact ones by at most ``1e-9`` relative plus ``5e-11`` per call
  (half a unit of the 10th place, :data:`ROUNDING_PER_CALL`).

What is *not* here, on purpose: anything that depends on a balance — calls refused with a
402, credits used from the grant vs purchases, expiry, packs bought, revenue. Those need
every user's calls in time order and always go through the replay
(:func:`hubkit.replay.replay`, or :mod:`hubkit.scenarios.partitioned` for big tables).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    Engine,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from hubkit._columns import RATE_AMOUNTS
from hubkit.domain import OUTPUT_COUNTS, billing_rows
from hubkit.errors import ValidationError
from hubkit.replay.timeline import RateBook, timeline_rows, validate_timeline
from hubkit.store.usage import (
    USAGE_AMOUNT,
    append_usage,
    ensure_usage_tables,
    is_exact,
    rate_periods_table,
    replace_rate_periods,
    usage_table,
)
from hubkit.usage.schema import COUNT_COLUMNS, TEXT_COLUMNS, USAGE_COLUMNS, validate_usage

__all__ = [
    "DIMENSIONS",
    "ROUNDING_PER_CALL",
    "SQLITE_RTOL",
    "UsageTotals",
    "aggregate_usage",
    "aggregate_usage_frame",
    "create_usage_tables",
    "is_exact",
    "load_rate_timeline",
    "load_usage",
    "rate_periods_table",
    "usage_table",
    "usage_totals",
]

#: Largest difference per call between unrounded float credits and the gateway's rounding.
ROUNDING_PER_CALL = 5e-11
#: Relative bound of SQLite's float sums against the exact NUMERIC ones.
SQLITE_RTOL = 1e-9
#: What :func:`aggregate_usage` can group by.
DIMENSIONS = ("provider", "model", "type", "day", "user", "app")

# The amount type of the usage tables (NUMERIC exact, REAL on SQLite): hubkit.store.schema.
_Amount = USAGE_AMOUNT


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


def load_rate_timeline(engine: Engine, timeline: pd.DataFrame) -> int:
    """Replace ``usage_rate_periods`` with ``timeline`` (see :mod:`hubkit.replay.timeline`).

    ``Store.rate_timeline()`` or :func:`hubkit.replay.timeline.timeline_from_rates` give one.
    """
    frame = validate_timeline(timeline)
    rows = []
    for rate in timeline_rows(frame):
        rows.append(
            {
                "provider": rate.provider,
                "model": rate.model,
                "type": rate.type,
                **{name: getattr(rate, name) for name in RATE_AMOUNTS},
                "valid_from": None if pd.isna(rate.valid_from) else _bound(rate.valid_from),
                "valid_to": None if pd.isna(rate.valid_to) else _bound(rate.valid_to),
            }
        )
    return replace_rate_periods(engine, rows)


def _bound(value: Any) -> dt.datetime:
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

    The SQL twin of :func:`hubkit.pricing.call_credits` (credits) and of the Decimal cost
    reference in :func:`hubkit.replay.timeline.price_exact` (cost).
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
    units = _billed_units()
    raw = (
        u.input_tokens * r.input_rate
        + units * r.output_rate
        + u.cache_write_tokens * func.coalesce(r.cache_write_rate, r.input_rate)
        + u.cache_read_tokens * func.coalesce(r.cache_read_rate, r.input_rate)
    )
    credits = type_coerce(func.round(raw, 10), _Amount)
    # Cached input tokens cost the provider's input price (unitCosts has no cache prices).
    cost = case(
        (and_(r.unit_cost_input.is_(None), r.unit_cost_output.is_(None)), None),
        else_=(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens)
        * func.coalesce(r.unit_cost_input, 0)
        + units * func.coalesce(r.unit_cost_output, 0),
    )
    filters = []
    if since is not None:
        filters.append(u.time >= _bound(since))
    if until is not None:
        filters.append(u.time < _bound(until))
    return _Priced(joined, filters, credits, type_coerce(cost, _Amount))


def _billed_units() -> ColumnElement[Any]:
    """The count each call's type bills at outputRate, as SQL: read from
    :data:`hubkit.domain.BILLING` (the SQL twin of :func:`hubkit.pricing.call_credits`
    picks it the same way). A type with no row bills none (it has no rate either)."""
    u = usage_table.c
    rows = billing_rows()
    whens = [
        (u.type.in_([b.type for b in rows if b.output == count]), getattr(u, count))
        for count in OUTPUT_COUNTS
        if any(b.output == count for b in rows)
    ]
    return case(*whens, else_=literal(0))


def _measures(priced: _Priced) -> list[Any]:
    u, r = usage_table.c, rate_periods_table.c
    unsupported = case((r.id.is_(None), 1), else_=0)
    no_cost = case(
        (and_(r.id.is_not(None), r.unit_cost_input.is_(None), r.unit_cost_output.is_(None)), 1),
        else_=0,
    )
    zero = type_coerce(literal(0), _Amount)
    return [
        func.count().label("calls"),
        func.sum(unsupported).label("calls_unsupported"),
        *(func.sum(getattr(u, c)).label(c) for c in COUNT_COLUMNS),
        func.sum(u.seconds).label("seconds"),
        type_coerce(func.coalesce(func.sum(priced.credits), zero), _Amount).label("credits"),
        type_coerce(func.coalesce(func.sum(priced.cost), zero), _Amount).label("provider_cost"),
        func.sum(no_cost).label("calls_without_unit_costs"),
    ]


def _dimension(name: str, dialect: str) -> ColumnElement[Any]:
    if name not in DIMENSIONS:
        raise ValidationError(
            f"cannot group usage by {name!r}; choose from {list(DIMENSIONS)}", field="by"
        )
    u = usage_table.c
    if name != "day":
        return u[name].label(name)
    # SQLite's CAST(... AS DATE) is numeric affinity (it gives the year): use date().
    day = func.date(u.time) if dialect == "sqlite" else cast(u.time, Date)
    return day.label("day")


_INT_MEASURES = ("calls", "calls_unsupported", *COUNT_COLUMNS, "calls_without_unit_costs")


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
    dims = list(dict.fromkeys(by))
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


# -- the same aggregation of an in-memory table ------------------------------------------
def aggregate_usage_frame(
    usage: pd.DataFrame,
    rates: pd.DataFrame | RateBook,
    by: Iterable[str] = ("provider", "model", "type"),
) -> pd.DataFrame:
    """:func:`aggregate_usage` of a pandas usage table, priced by the vectorised kernel.

    Same columns and order; amounts are float64 without the per-call rounding (see the
    module docstring for the bound against the exact SQL sums).
    """
    dims = list(dict.fromkeys(by))
    for name in dims:
        if name not in DIMENSIONS:
            raise ValidationError(
                f"cannot group usage by {name!r}; choose from {list(DIMENSIONS)}", field="by"
            )
    frame = validate_usage(usage)
    book = rates if isinstance(rates, RateBook) else RateBook(rates)
    priced = book.price(frame, cost=True)
    assert priced.cost is not None
    supported = priced.supported
    has_cost = book.arrays.has_cost[priced.row]
    table = pd.DataFrame(
        {
            **{c: frame[c].astype(str) for c in dims if c != "day"},
            "calls": 1,
            "calls_unsupported": (~supported).astype(np.int64),
            **{c: frame[c].to_numpy().astype(np.int64) for c in COUNT_COLUMNS},
            "seconds": frame["seconds"].to_numpy(),
            "credits": np.where(supported, priced.credits, 0.0),
            "provider_cost": np.where(supported, priced.cost, 0.0),
            "calls_without_unit_costs": (supported & ~has_cost).astype(np.int64),
        }
    )
    if "day" in dims:
        table["day"] = frame["time"].dt.tz_convert("UTC").dt.date
    measures = [c for c in table.columns if c not in dims]
    if not dims:
        return table[measures].sum().to_frame().T.astype(table[measures].dtypes.to_dict())
    out = table.groupby(dims, sort=True, observed=True)[measures].sum().reset_index()
    return out[[*dims, *measures]]
