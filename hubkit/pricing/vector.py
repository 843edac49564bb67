"""The vectorised pricing kernel: per-rate float arrays and one gather-multiply-add pass.

The float64 twin of :func:`hubkit.pricing.call_credits` for simulation: the tests bound
its difference to the Decimal rule (:func:`hubkit.replay.timeline.price_exact`). Which count a
rate's output price multiplies comes from :data:`hubkit.domain.BILLING`: a rate is coded
by the position of that count in :data:`hubkit.domain.OUTPUT_COUNTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hubkit.domain import OUTPUT_COUNTS


def _slot(values: np.ndarray) -> np.ndarray:
    # One trailing zero: a gather with row -1 (unsupported) reads 0 instead of failing.
    return np.append(np.asarray(values, dtype=np.float64), 0.0)


@dataclass(frozen=True, eq=False)
class RateArrays:
    """Per-rate float64 arrays for vectorised pricing, each with a trailing 0 slot.

    Output prices (and costs) are split by the count they bill, one array per entry of
    :data:`~hubkit.domain.OUTPUT_COUNTS`, so that a count the type ignores is multiplied
    by 0; cache rates already fall back to the input rate.
    """

    input_rate: np.ndarray
    output: Mapping[str, np.ndarray]  # count → output rate where the rate bills it, else 0
    cache_read_rate: np.ndarray
    cache_write_rate: np.ndarray
    cost_input: np.ndarray
    cost_output: Mapping[str, np.ndarray]  # count → output unit cost where billed, else 0
    has_cost: np.ndarray  # bool, with a False slot

    @classmethod
    def build(
        cls,
        *,
        billed: np.ndarray,
        input_rate: np.ndarray,
        output_rate: np.ndarray,
        cache_read_rate: np.ndarray,
        cache_write_rate: np.ndarray,
        unit_cost_input: np.ndarray,
        unit_cost_output: np.ndarray,
        has_cost: np.ndarray,
    ) -> RateArrays:
        """``billed[r]``: the position in :data:`~hubkit.domain.OUTPUT_COUNTS` of the count
        rate r bills at its output rate (:attr:`hubkit.domain.Billing.output_index`).
        ``cache_*_rate`` NaN means "not set": fall back to the input rate."""
        read = np.where(np.isnan(cache_read_rate), input_rate, cache_read_rate)
        write = np.where(np.isnan(cache_write_rate), input_rate, cache_write_rate)
        bills = {count: billed == i for i, count in enumerate(OUTPUT_COUNTS)}
        return cls(
            input_rate=_slot(input_rate),
            output={c: _slot(np.where(m, output_rate, 0.0)) for c, m in bills.items()},
            cache_read_rate=_slot(read),
            cache_write_rate=_slot(write),
            cost_input=_slot(unit_cost_input),
            cost_output={c: _slot(np.where(m, unit_cost_output, 0.0)) for c, m in bills.items()},
            has_cost=np.append(np.asarray(has_cost, dtype=bool), False),
        )

    def scaled(self, factor: np.ndarray) -> RateArrays:
        """Every price and cost of rate r multiplied by ``factor[r]`` (volume elasticity)."""
        f = _slot(factor)
        return RateArrays(
            input_rate=self.input_rate * f,
            output={c: a * f for c, a in self.output.items()},
            cache_read_rate=self.cache_read_rate * f,
            cache_write_rate=self.cache_write_rate * f,
            cost_input=self.cost_input * f,
            cost_output={c: a * f for c, a in self.cost_output.items()},
            has_cost=self.has_cost,
        )

    def output_rate(self) -> np.ndarray:
        """Each rate's output price whatever count it bills (one array is non-zero per rate)."""
        return _sum(self.output)

    def output_cost(self) -> np.ndarray:
        """Each rate's output unit cost whatever count it bills."""
        return _sum(self.cost_output)


def _sum(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    parts = [arrays[c] for c in OUTPUT_COUNTS]
    out = parts[0].copy()
    for part in parts[1:]:
        out += part
    return out


COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "images",
    "seconds",
)
# Priced densely on every call, whatever the mix: most calls are chat calls with both.
_DENSE = ("input_tokens", "output_tokens")


def _gather_times(values: np.ndarray, row: np.ndarray, count: np.ndarray) -> np.ndarray:
    out = values.take(row)  # take + in-place multiply: no temporaries beyond the result
    out *= count
    return out


def _calls_with(columns: list[np.ndarray]) -> np.ndarray:
    """Calls where any of ``columns`` is non-zero (integer ORs, then one comparison)."""
    mask: np.ndarray | None = None
    by_dtype: dict[np.dtype, np.ndarray] = {}
    for values in columns:
        if values.dtype.kind in "iu":
            if values.dtype in by_dtype:
                by_dtype[values.dtype] |= values
            else:
                by_dtype[values.dtype] = values.copy()
        else:
            mask = values != 0 if mask is None else mask | (values != 0)
    for merged in by_dtype.values():
        mask = merged != 0 if mask is None else mask | (merged != 0)
    return np.flatnonzero(mask) if mask is not None else np.zeros(0, dtype=np.int64)


# A count present on more than this share of calls is priced densely (a gather over all
# calls is then cheaper than finding and gathering the calls that have it).
_DENSE_SHARE = 0.12


def price_arrays(
    row: np.ndarray,
    counts: Mapping[str, np.ndarray],
    rates: RateArrays,
    *,
    cost: bool = True,
) -> Priced:
    """Credits and provider cost per call: ``row`` indexes ``rates`` (−1 = unsupported).

    The one vectorised pricing kernel (the float twin of :func:`call_credits`): input and
    completion tokens as dense gather-multiply-adds; cache tokens, images and seconds
    densely too when many calls have them, otherwise only on the calls that do. Cached
    input tokens cost the provider's input price (unitCosts has no cache prices).
    """
    tokens_in, tokens_out = counts["input_tokens"], counts["output_tokens"]
    credits = _gather_times(rates.input_rate, row, tokens_in)
    credits += _gather_times(rates.output["output_tokens"], row, tokens_out)
    spent = None
    if cost:
        spent = _gather_times(rates.cost_input, row, tokens_in)
        spent += _gather_times(rates.cost_output["output_tokens"], row, tokens_out)
    plans = {
        "cache_read_tokens": (rates.cache_read_rate, rates.cost_input),
        "cache_write_tokens": (rates.cache_write_rate, rates.cost_input),
        **{c: (rates.output[c], rates.cost_output[c]) for c in OUTPUT_COUNTS if c not in _DENSE},
    }
    n = row.size
    sparse = []
    for column, (rate, unit_cost) in plans.items():
        present = np.count_nonzero(counts[column])
        if not present:
            continue
        if present > _DENSE_SHARE * n:
            credits += _gather_times(rate, row, counts[column])
            if spent is not None:
                spent += _gather_times(unit_cost, row, counts[column])
        else:
            sparse.append(column)
    if not sparse:
        return Priced(row=row, credits=credits, cost=spent)
    idx = _calls_with([counts[c] for c in sparse])
    sub = row[idx]
    add_credits = np.zeros(idx.size)
    add_cost = np.zeros(idx.size) if spent is not None else None
    for column in sparse:
        rate, unit_cost = plans[column]
        count = counts[column][idx]
        add_credits += count * rate[sub]
        if add_cost is not None:
            add_cost += count * unit_cost[sub]
    credits[idx] += add_credits
    if spent is not None and add_cost is not None:
        spent[idx] += add_cost
    return Priced(row=row, credits=credits, cost=spent)


@dataclass(frozen=True, eq=False)
class Priced:
    """Per-call pricing: ``row`` is the timeline row used (−1 = unsupported)."""

    row: np.ndarray
    credits: np.ndarray
    cost: np.ndarray | None

    @property
    def supported(self) -> np.ndarray:
        return self.row >= 0
