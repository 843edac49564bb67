"""A bulk preview's counts without the preview: numpy over the rates, exact all the same.

The bulk app's summary line ("9,998 rates would change, 2 unchanged, …") must follow every
keystroke in the margin field; the full :func:`~hubkit.pricing.bulk_preview` makes 20,000
Decimal rates for 10,000 rates, so :func:`bulk_counts` gets the same numbers from float64
arrays built once per read (:class:`RateColumns`).

Exact, not approximate: a new rate is ``cost × factor / price`` rounded ROUND_HALF_UP to 10
places. In float64 that quotient, scaled by 10^10, is within :data:`_REL_ERROR` (six
roundings of 2^-53 each, with a wide margin) of the exact one, so its rounding can differ
only where a half-way point lies within that distance. Those sides, and any rate whose
numbers do not fit the int64 comparison, are priced by the Decimal rule itself
(:func:`~hubkit.pricing.rules.margin_side`). The tests hold :func:`bulk_counts` equal to
:meth:`BulkCounts.of` (the counts of the Decimal preview) on random and edge-case rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from hubkit.decimals import PLACES
from hubkit.pricing.rules import (
    BulkPreview,
    PricedRate,
    RateChange,
    RateFilter,
    margin_side,
    markup_factor,
    plausible_credit_price,
    plausible_margin,
    skip_reason,
)

_SCALE = 10**PLACES
# float64 keeps integers exact below 2^53; stay well below it, and below int64's range
_INT_LIMIT = 2**52
# |float − exact| / exact for ((cost × factor) / price) × 10^10 from Decimal operands: three
# conversions and three operations, each within 2^-53, is below 6.7e-16. 15× that for margin.
_REL_ERROR = 1e-14


@dataclass(frozen=True, slots=True)
class BulkCounts:
    """What a bulk preview's summary line says: counts, and the inputs they are for."""

    profit_margin: Decimal
    credit_price: Decimal
    changed: int
    unchanged: int
    skipped: int
    #: changes with a side going from non-zero to 0 (:attr:`RateChange.drops_to_zero`)
    drops: int
    #: changed rates that would become free (:meth:`BulkPreview.zero_rates`)
    zero: int
    #: rates that would sell below cost (:meth:`BulkPreview.below_cost`)
    below: int

    @classmethod
    def of(cls, preview: BulkPreview) -> BulkCounts:
        """The counts of an exact preview (the reference :func:`bulk_counts` must equal)."""
        changed = len(preview.changed)
        return cls(
            preview.profit_margin,
            preview.credit_price,
            changed,
            len(preview.changes) - changed,
            len(preview.skipped),
            sum(1 for c in preview.changes if c.drops_to_zero),
            len(preview.zero_rates()),
            len(preview.below_cost()),
        )


def _scaled(value: Decimal) -> int | None:
    """``value × 10^10`` as an int when that is exact and small enough, else None."""
    scaled = value.scaleb(PLACES)
    if scaled != scaled.to_integral_value() or abs(scaled) >= _INT_LIMIT:
        return None
    return int(scaled)


class RateColumns:
    """The rates a bulk preview reads, as arrays: built once per read, then every
    keystroke's counts are a few numpy passes (:func:`bulk_counts`)."""

    def __init__(self, rates: Sequence[PricedRate]) -> None:
        self.rates = list(rates)
        n = len(self.rates)
        self.eligible = np.zeros(n, dtype=bool)
        self.cost = np.zeros((2, n))  # input, output unit cost (float)
        self.old = np.zeros((2, n), dtype=np.int64)  # old rate × 10^10
        #: rates whose numbers the int64 path cannot hold: priced by the Decimal rule
        self.by_rule = np.zeros(n, dtype=bool)
        for i, rate in enumerate(self.rates):
            costs = rate.unit_costs
            if skip_reason(costs) is not None:
                continue
            assert costs is not None  # skip_reason names every rate without unit costs
            self.eligible[i] = True
            self.cost[0, i], self.cost[1, i] = float(costs.input), float(costs.output)
            old_in, old_out = _scaled(rate.input_rate), _scaled(rate.output_rate)
            # a cost too small for a float (1E-400 becomes 0.0) is priced by the rule
            lost = any((float(c) > 0) != (c > 0) for c in (costs.input, costs.output))
            if old_in is None or old_out is None or lost:
                self.by_rule[i] = True
            else:
                self.old[0, i], self.old[1, i] = old_in, old_out
        self._selected: dict[RateFilter | None, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rates)

    def selected(self, rate_filter: RateFilter | None) -> np.ndarray:
        """Positions of the rates ``rate_filter`` keeps (cached: filters change rarely)."""
        flt = None if rate_filter is None or rate_filter.is_empty else rate_filter
        if flt not in self._selected:
            self._selected[flt] = np.fromiter(
                (i for i, r in enumerate(self.rates) if flt is None or flt.matches(r)),
                dtype=np.intp,
            )
        return self._selected[flt]


def _rounded(cost: np.ndarray, factor: float, price: float) -> tuple[np.ndarray, np.ndarray]:
    """``round_half_up(cost × factor / price, 10) × 10^10`` as int64, and where a float
    cannot tell (near a half-way point, or too large): those the caller prices exactly."""
    y = cost * factor
    y /= price
    y *= _SCALE
    whole = np.floor(y)
    frac = y - whole
    unsure = (np.abs(frac - 0.5) <= _REL_ERROR * np.abs(y)) | ~(np.abs(y) < _INT_LIMIT)
    up = frac > 0.5
    whole = np.clip(whole, -_INT_LIMIT, _INT_LIMIT)  # the unsure ones: any value, no overflow
    return whole.astype(np.int64) + up, unsure


def bulk_counts(
    columns: RateColumns,
    profit_margin: object,
    credit_price: object,
    rate_filter: RateFilter | None = None,
) -> BulkCounts:
    """:meth:`BulkCounts.of` ``(bulk_preview(rates, …))`` without making the preview.

    Validates the inputs as :func:`~hubkit.pricing.bulk_preview` does and raises the same
    ValidationError (also for a new rate beyond DECIMAL(20,10)).
    """
    margin = plausible_margin(profit_margin)
    price = plausible_credit_price(credit_price)
    factor = markup_factor(margin)
    picked = columns.selected(rate_filter)
    eligible = picked[columns.eligible[picked]]
    skipped = len(picked) - len(eligible)
    cost = columns.cost[:, eligible]
    old = columns.old[:, eligible]
    new, unsure = _rounded(cost, float(factor), float(price))
    even, unsure_even = _rounded(cost, 1.0, float(price))  # the break-even rates
    exact = columns.by_rule[eligible] | (unsure | unsure_even).any(axis=0)
    fast = ~exact
    new, even, old, has_cost = new[:, fast], even[:, fast], old[:, fast], cost[:, fast] > 0

    changed = (new != old).any(axis=0)
    drops = ((old > 0) & (new == 0)).any(axis=0)
    free = (changed & ((new == 0) & (old != 0) & (has_cost | (old > 0))).any(axis=0)).sum()
    below = (has_cost & (new < even)).any(axis=0)
    counts = [int(changed.sum()), int(drops.sum()), int(free), int(below.sum())]

    # the sides a float cannot decide: the Decimal rule, rate by rate
    slow = [_exact_change(columns.rates[i], factor, price) for i in eligible[exact]]
    tail = BulkCounts.of(BulkPreview(margin, price, tuple(slow), ()))
    counts = [a + b for a, b in zip(counts, (tail.changed, tail.drops, tail.zero, tail.below),
                                    strict=True)]  # fmt: skip
    n_changed, n_drops, n_zero, n_below = counts
    return BulkCounts(
        margin, price, n_changed, len(eligible) - n_changed, skipped, n_drops, n_zero, n_below
    )


def _exact_change(rate: PricedRate, factor: Decimal, price: Decimal) -> RateChange:
    costs = rate.unit_costs
    assert costs is not None  # only eligible rates get here
    return RateChange(
        rate.id, rate.provider, rate.model, rate.type, rate.version, costs,
        rate.input_rate, margin_side(costs.input, factor, price, rate),
        rate.output_rate, margin_side(costs.output, factor, price, rate),
    )  # fmt: skip
