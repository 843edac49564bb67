"""List-price totals of an in-memory usage table: :func:`aggregate_usage_frame`.

The pandas twin of the store's :func:`hubkit.store.usage.aggregate_usage` (same columns,
same order), priced by the vectorised kernel (:meth:`hubkit.replay.timeline.RateBook.price`).
It is float64 without the per-call rounding, so its credits differ from the exact ones by
at most ``1e-9`` relative plus ``5e-11`` per call (half a unit of the 10th place,
:data:`ROUNDING_PER_CALL`); the replay's ``credits_used`` / ``provider_cost`` with billing
off share that bound.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from hubkit.replay.timeline import RateBook
from hubkit.store.usage import check_dimensions
from hubkit.usage.schema import COUNT_COLUMNS, validate_usage

__all__ = ["ROUNDING_PER_CALL", "aggregate_usage_frame"]

#: Largest difference per call between unrounded float credits and the gateway's rounding.
ROUNDING_PER_CALL = 5e-11


def aggregate_usage_frame(
    usage: pd.DataFrame,
    rates: pd.DataFrame | RateBook,
    by: Iterable[str] = ("provider", "model", "type"),
) -> pd.DataFrame:
    """:func:`aggregate_usage` of a pandas usage table, priced by the vectorised kernel.

    Same columns and order; amounts are float64 without the per-call rounding (see the
    module docstring for the bound against the exact SQL sums).
    """
    dims = check_dimensions(by)
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
