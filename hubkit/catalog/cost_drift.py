"""Drift between stored unit costs and a price catalog (domain.md, "Rate history").

>>> _side_pct(Decimal("0.000002"), Decimal("0.0000025"))
Decimal('25.00')
>>> _side_pct(Decimal(0), Decimal("0.01"))
Decimal('Infinity')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hubkit.catalog.litellm import Catalog
from hubkit.decimals import require_decimal
from hubkit.domain import Rate, RateType, UnitCosts
from hubkit.pricing.rules import change_pct

if TYPE_CHECKING:
    import pandas as pd

INFINITE_DRIFT = Decimal("Infinity")
DEFAULT_THRESHOLD_PCT = Decimal(10)
_COLUMNS = (
    "rate_id",
    "provider",
    "model",
    "type",
    "stored_input",
    "catalog_input",
    "input_pct",
    "stored_output",
    "catalog_output",
    "output_pct",
    "exceeds",
    "source_key",
)


@dataclass(frozen=True, slots=True)
class Drift:
    """Stored unit costs of one rate against the catalog's; each pct relative to stored.

    A side stored as 0 that the catalog prices above 0 has infinite drift
    (``Decimal('Infinity')``); a catalog price lower than stored gives a negative pct.
    """

    rate_id: int
    provider: str
    model: str
    type: RateType
    stored: UnitCosts
    catalog: UnitCosts
    input_pct: Decimal
    output_pct: Decimal
    exceeds: bool
    source_key: str

    @property
    def max_abs_pct(self) -> Decimal:
        return max(abs(self.input_pct), abs(self.output_pct))


def _side_pct(stored: Decimal, catalog: Decimal) -> Decimal:
    pct = change_pct(stored, catalog)  # None means 0 → non-zero
    return INFINITE_DRIFT if pct is None else pct


def drift(
    rates: Iterable[Rate], catalog: Catalog, threshold_pct: Any = DEFAULT_THRESHOLD_PCT
) -> list[Drift]:
    """Compare each rate's stored unit costs with the catalog's (same key), in rate order.

    Rates not in the catalog, and rates without stored unit costs (nothing to drift
    from), are left out. ``exceeds`` is true when either side moved by more than
    ``threshold_pct`` percent (domain.md flags > 10 % as ``source_drift``). Both sides
    must be in one currency: load the catalog in the store's currency.
    """
    threshold = require_decimal(threshold_pct, "threshold_pct")
    out: list[Drift] = []
    for rate in rates:
        entry = catalog.find(rate.provider, rate.model, rate.type)
        if entry is None or rate.unit_costs is None:
            continue
        stored, listed = rate.unit_costs, entry.unit_costs
        input_pct = _side_pct(stored.input, listed.input)
        output_pct = _side_pct(stored.output, listed.output)
        out.append(
            Drift(
                rate_id=rate.id,
                provider=rate.provider,
                model=rate.model,
                type=rate.type,
                stored=stored,
                catalog=listed,
                input_pct=input_pct,
                output_pct=output_pct,
                exceeds=abs(input_pct) > threshold or abs(output_pct) > threshold,
                source_key=entry.source_key,
            )
        )
    return out


def drift_frame(drifts: Iterable[Drift]) -> pd.DataFrame:
    """``drift(...)`` as a table: Decimal columns (object dtype), infinity kept as is."""
    import pandas as pd  # lazily: the catalog itself does not need pandas

    rows = [
        (
            d.rate_id,
            d.provider,
            d.model,
            d.type.value,
            d.stored.input,
            d.catalog.input,
            d.input_pct,
            d.stored.output,
            d.catalog.output,
            d.output_pct,
            d.exceeds,
            d.source_key,
        )
        for d in drifts
    ]
    return pd.DataFrame(rows, columns=list(_COLUMNS))
