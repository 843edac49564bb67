"""The SQL twin of the credit rule: :func:`hubkit.pricing.rules.call_credits` as expressions.

One call's credits (and provider cost) built from the columns of a call and of the rate in
force, for the store's aggregate queries (:mod:`hubkit.store.usage`) to sum in the
database. The rule is the Decimal one, line for line:

- ``input_tokens × inputRate`` plus the count the type bills at ``outputRate``
  (:data:`hubkit.domain.BILLING`, read here, never re-typed) × ``outputRate``;
- cached tokens read / written at their cache rate, falling back to ``inputRate`` when the
  rate has none (NULL) — a cache rate of 0 is honoured, as in ``call_credits``;
- rounded per call to 10 places (``ROUND(x, 10)``: half away from zero, which is
  ROUND_HALF_UP for these non-negative amounts).

This module builds SQL but runs none, and takes the columns as arguments, so it knows no
table: the store owns the tables and the connection (the one declared exception to "SQL
only in the store" in ``pyproject.toml``'s import contracts). ``tests/test_usage_sql.py``
pins it to ``call_credits`` on generated calls.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal

from hubkit.domain import OUTPUT_COUNTS, billing_rows

__all__ = ["billed_units", "call_credits_sql", "provider_cost_sql"]


def billed_units(calls: Any) -> ColumnElement[Any]:
    """The count each call's type bills at outputRate (``calls``: columns named like the
    usage table's). A type with no row in :data:`hubkit.domain.BILLING` bills none (it has
    no rate either)."""
    rows = billing_rows()
    whens = [
        (calls.type.in_([b.type for b in rows if b.output == count]), getattr(calls, count))
        for count in OUTPUT_COUNTS
        if any(b.output == count for b in rows)
    ]
    return case(*whens, else_=literal(0))


def call_credits_sql(calls: Any, rates: Any) -> ColumnElement[Any]:
    """Credits of one call at the rate in force, rounded to 10 places.

    ``calls``: the usage columns (input_tokens, the output counts, cache_*_tokens, type);
    ``rates``: the rate columns (input_rate, output_rate, cache_read_rate, cache_write_rate).
    """
    raw = (
        calls.input_tokens * rates.input_rate
        + billed_units(calls) * rates.output_rate
        + calls.cache_write_tokens * func.coalesce(rates.cache_write_rate, rates.input_rate)
        + calls.cache_read_tokens * func.coalesce(rates.cache_read_rate, rates.input_rate)
    )
    return func.round(raw, 10)


def provider_cost_sql(calls: Any, rates: Any) -> ColumnElement[Any]:
    """The provider's cost of one call (not rounded); NULL when the rate has no unit costs.

    The twin of the Decimal cost in :func:`hubkit.replay.timeline.price_exact`: cached input
    tokens cost the provider's input price (unitCosts has no cache prices).
    """
    return case(
        (and_(rates.unit_cost_input.is_(None), rates.unit_cost_output.is_(None)), None),
        else_=(calls.input_tokens + calls.cache_read_tokens + calls.cache_write_tokens)
        * func.coalesce(rates.unit_cost_input, 0)
        + billed_units(calls) * func.coalesce(rates.unit_cost_output, 0),
    )
