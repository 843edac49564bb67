"""The vectorised pricing kernel: per-rate float arrays and one gather-multiply-add pass.

The float64 twin of :func:`hubkit.pricing.call_credits` for simulation: the tests bound
its difference to the Decimal rule (:func:`hubkit.replay.timeline.price_exact`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Rate kinds as the kernel codes them: what the output price multiplies.
KIND_TEXT, KIND_IMAGE, KIND_VIDEO = 0, 1, 2


def _slot(values: np.ndarray) -> np.ndarray:
    # One trailing zero: a gather with row -1 (unsupported) reads 0 instead of failing.
    return np.append(np.asarray(values, dtype=np.float64), 0.0)


@dataclass(frozen=True, eq=False)
class RateArrays:
    """Per-rate float64 arrays for vectorised pricing, each with a trailing 0 slot.

    Output prices are split by type (text / image / video) so that a count the type
    ignores is multiplied by 0; cache rates already fall back to the input rate.
    """

    input_rate: np.ndarray
    output_text: np.ndarray
    output_image: np.ndarray
    output_video: np.ndarray
    cache_read_rate: np.ndarray
    cache_write_rate: np.ndarray
    cost_input: np.ndarray
    cost_output_text: np.ndarray
    cost_output_image: np.ndarray
    cost_output_video: np.ndarray
    has_cost: np.ndarray  # bool, with a False slot

    @classmethod
    def build(
        cls,
        *,
        kind: np.ndarray,
        input_rate: np.ndarray,
        output_rate: np.ndarray,
        cache_read_rate: np.ndarray,
        cache_write_rate: np.ndarray,
        unit_cost_input: np.ndarray,
        unit_cost_output: np.ndarray,
        has_cost: np.ndarray,
    ) -> RateArrays:
        """``cache_*_rate`` NaN means "not set": fall back to the input rate."""
        read = np.where(np.isnan(cache_read_rate), input_rate, cache_read_rate)
        write = np.where(np.isnan(cache_write_rate), input_rate, cache_write_rate)
        text, image, video = (kind == KIND_TEXT), (kind == KIND_IMAGE), (kind == KIND_VIDEO)
        return cls(
            input_rate=_slot(input_rate),
            output_text=_slot(np.where(text, output_rate, 0.0)),
            output_image=_slot(np.where(image, output_rate, 0.0)),
            output_video=_slot(np.where(video, output_rate, 0.0)),
            cache_read_rate=_slot(read),
            cache_write_rate=_slot(write),
            cost_input=_slot(unit_cost_input),
            cost_output_text=_slot(np.where(text, unit_cost_output, 0.0)),
            cost_output_image=_slot(np.where(image, unit_cost_output, 0.0)),
            cost_output_video=_slot(np.where(video, unit_cost_output, 0.0)),
            has_cost=np.append(np.asarray(has_cost, dtype=bool), False),
        )

    def scaled(self, factor: np.ndarray) -> RateArrays:
        """Every price and cost of rate r multiplied by ``factor[r]`` (volume elasticity)."""
        f = _slot(factor)
        return RateArrays(
            **{
                name: (getattr(self, name) * f if name != "has_cost" else self.has_cost)
                for name in self.__dataclass_fields__
            }
        )


COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "images",
    "seconds",
)
_EXTRA_COUNTS = COUNTS[2:]


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
    credits += _gather_times(rates.output_text, row, tokens_out)
    spent = None
    if cost:
        spent = _gather_times(rates.cost_input, row, tokens_in)
        spent += _gather_times(rates.cost_output_text, row, tokens_out)
    plans = {
        "cache_read_tokens": (rates.cache_read_rate, rates.cost_input),
        "cache_write_tokens": (rates.cache_write_rate, rates.cost_input),
        "images": (rates.output_image, rates.cost_output_image),
        "seconds": (rates.output_video, rates.cost_output_video),
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
