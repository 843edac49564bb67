"""Pricing scenarios: what a margin × credit-price decision does to revenue, cost and users.

A scenario applies the bulk update's formula (domain.md, "Bulk update") to the *current*
rates that have unit costs — ``rate = unitCost × (1 + margin/100) / creditPrice`` on both
sides, other rates keep theirs — sells packs at its credit price and replays all usage
with those rates (for all periods: "what if these had been our prices").
``margin=None`` keeps the current rates and only changes the credit price.

- :func:`simulate` — one scenario, exact (rates from :func:`hubkit.pricing.margin_rate`,
  the per-call replay of :mod:`hubkit.replay`); fast enough for a slider
  (build a :class:`ScenarioBase` once, then call it on every move);
- :func:`hubkit.scenarios.grid.scenario_grid` — KPIs for every (margin, credit price[,
  grant, expiry, pack]) combination, sharing the work across the grid.

``profit_margin`` is a markup on cost; the KPI ``gross_margin_pct`` is a share of revenue.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.billing_settings import BillingSettings
from hubkit.decimals import ZERO, require_decimal
from hubkit.domain import OUTPUT_COUNTS, Rate, RateType
from hubkit.errors import ValidationError
from hubkit.pricing.rules import (
    RateFilter,
    below_cost_check,
    margin_rate,
    margin_rate_by_factor,
    markup_factor,
    validate_credit_price,
    validate_margin,
)
from hubkit.replay.engine import ReplayResult, prepare, replay_partition
from hubkit.replay.inputs import Behaviour, PreparedUsage
from hubkit.replay.timeline import (
    RateArrays,
    RateBook,
    current_rates,
    timeline_from_rates,
    timeline_rows,
)

_QUANTUM = 1e10


def margin_rates_vec(unit_cost: Any, profit_margin: Any, credit_price: Any) -> np.ndarray:
    """Vectorised :func:`margin_rate` in float64: same values, ties settled in Decimal.

    ``unit_cost × (1 + margin/100) / credit_price`` rounded half-up to 10 places; the few
    values within a hair of a rounding tie (or too large for a float grid) are computed
    with :func:`margin_rate` itself, so the result equals ``float(margin_rate(...))``.
    """
    uc, margin, price = (
        np.atleast_1d(np.asarray(v, dtype=np.float64)).copy()
        for v in np.broadcast_arrays(unit_cost, profit_margin, credit_price)
    )
    if (price <= 0).any() or (margin < 0).any() or (uc < 0).any():
        raise ValidationError(
            "margin rates need unit costs ≥ 0, margins ≥ 0 and credit prices > 0",
            field="creditPrice",
        )
    scaled = uc * (1 + margin / 100) / price * _QUANTUM
    out = np.floor(scaled + 0.5) / _QUANTUM
    frac = scaled - np.floor(scaled)
    # Float error grows with the value (a few ulps of ``scaled``): near a tie, ask Decimal.
    unsure = (np.abs(frac - 0.5) < 1e-6 + scaled * 1e-13) | (scaled > 2**50)
    for i in zip(*np.nonzero(unsure), strict=True):
        exact = margin_rate(*(Decimal(str(float(v[i]))) for v in (uc, margin, price)))
        out[i] = float(exact)
    shape = np.broadcast_shapes(
        np.shape(unit_cost), np.shape(profit_margin), np.shape(credit_price)
    )
    return out.reshape(shape)


@dataclass(frozen=True, eq=False)
class ScenarioBase:
    """Usage prepared against the current rates, with what every scenario shares.

    ``eligible[k]``: the bulk update recomputes key k (unit costs on some side and
    matching ``rate_filter``). Per call: ``scaled`` credits per unit of
    (1 + margin/100)/creditPrice and ``fixed`` credits that no margin changes.
    """

    prepared: PreparedUsage
    rates: pd.DataFrame  # current rates, one row per key (the book's order)
    eligible: np.ndarray
    base_credit_price: Decimal
    scaled: np.ndarray
    fixed: np.ndarray
    base_credits: np.ndarray
    cost: np.ndarray
    key_tokens: np.ndarray  # per key: tokens by (input, output units, cache read, write)

    @property
    def book(self) -> RateBook:
        return self.prepared.book

    @classmethod
    def build(
        cls,
        usage: pd.DataFrame | PreparedUsage,
        rates: pd.DataFrame | RateBook | Iterable[Rate],
        *,
        base_credit_price: Any = 1,
        rate_filter: RateFilter | None = None,
        as_of: Any = None,
    ) -> ScenarioBase:
        if isinstance(rates, RateBook):
            timeline = rates.timeline
        elif isinstance(rates, pd.DataFrame):
            timeline = rates
        else:
            timeline = timeline_from_rates(rates)
        now = current_rates(timeline)
        book = RateBook(now)
        if isinstance(usage, PreparedUsage):
            if usage.book.keys != book.keys or len(usage.book) != len(book.keys):
                raise ValidationError(
                    "prepared usage must be prepared against the current rates "
                    "(ScenarioBase.build(usage_frame, rates) does that)",
                    field="usage",
                )
            prepared = usage
        else:
            prepared = prepare(usage, book, as_of=as_of)
        flt = rate_filter or RateFilter()
        eligible = np.array(
            [
                _eligible(r) and _matches(flt, r.provider, r.model, r.type)
                for r in timeline_rows(book.timeline)
            ],
            dtype=np.bool_,
        )
        scaled, fixed, base_credits, cost, tokens = _decompose(prepared, book, eligible)
        return cls(
            prepared=prepared,
            rates=book.timeline,
            eligible=eligible,
            base_credit_price=validate_credit_price(base_credit_price),
            scaled=scaled,
            fixed=fixed,
            base_credits=base_credits,
            cost=cost,
            key_tokens=tokens,
        )

    def earned_markup(self) -> Decimal | None:
        """The markup on cost (%, 2 places) the rates in force earn on this usage.

        The margin at which the scenario charges, in total, what the current rates charge:
        solves ``Σ scaled × (1 + m/100) / base price + Σ fixed = Σ base credits`` (a
        usage-weighted figure; rates the margin does not reprice are the fixed part). A
        finance scenario starts there. None when no call has a unit cost to mark up.
        """
        scaled = float(self.scaled.sum())
        if scaled <= 0:
            return None
        repriced = float(self.base_credits.sum()) - float(self.fixed.sum())
        factor = repriced * float(self.base_credit_price) / scaled
        return Decimal(f"{(factor - 1) * 100:.2f}")

    # -- one scenario's rates --------------------------------------------------------
    def scenario_rates(self, profit_margin: Any, credit_price: Any) -> pd.DataFrame:
        """Per current rate: old and new rates (exact, via margin_rate) and below-cost flags.

        ``profit_margin=None`` keeps every rate (only the credit price changes).
        """
        price = validate_credit_price(credit_price)
        margin = None if profit_margin is None else validate_margin(profit_margin)
        frame = self.rates
        cost_in, cost_out = list(frame["unit_cost_input"]), list(frame["unit_cost_output"])
        new_in, new_out = list(frame["input_rate"]), list(frame["output_rate"])
        repriced = [bool(ok) and margin is not None for ok in self.eligible]
        if margin is not None:
            # margin_rate's arithmetic with the margin and price validated once (a knob
            # step reprices every rate: validating them per rate was most of this)
            factor = markup_factor(margin)
            for i in np.flatnonzero(repriced):
                new_in[i] = margin_rate_by_factor(cost_in[i] or ZERO, factor, price)
                new_out[i] = margin_rate_by_factor(cost_out[i] or ZERO, factor, price)
        below = below_cost_check(price)
        return pd.DataFrame(
            {
                "provider": frame["provider"].to_numpy(),
                "model": frame["model"].to_numpy(),
                "type": frame["type"].to_numpy(),
                "old_input_rate": frame["input_rate"].to_numpy(),
                "new_input_rate": new_in,
                "old_output_rate": frame["output_rate"].to_numpy(),
                "new_output_rate": new_out,
                "unit_cost_input": cost_in,
                "unit_cost_output": cost_out,
                "repriced": repriced,
                "below_cost": [
                    below(a, ca) or below(b, cb)
                    for a, ca, b, cb in zip(new_in, cost_in, new_out, cost_out, strict=True)
                ],
            }
        )

    def rate_arrays(self, table: pd.DataFrame) -> RateArrays:
        frame = self.rates
        return RateArrays.build(
            billed=self.book.billed,
            input_rate=table["new_input_rate"].astype(float).to_numpy(),
            output_rate=table["new_output_rate"].astype(float).to_numpy(),
            cache_read_rate=_floats_or_nan(frame["cache_read_rate"]),
            cache_write_rate=_floats_or_nan(frame["cache_write_rate"]),
            unit_cost_input=_floats(frame["unit_cost_input"]),
            unit_cost_output=_floats(frame["unit_cost_output"]),
            has_cost=frame["unit_cost_input"].notna().to_numpy()
            | frame["unit_cost_output"].notna().to_numpy(),
        )

    def volume_factors(
        self, arrays: RateArrays, credit_price: Decimal, elasticity: float
    ) -> np.ndarray | None:
        """Per key: usage volume multiplier (price ratio vs the current rates)^(−elasticity)."""
        if not elasticity:
            return None
        base = self.book.arrays
        money_new = _key_money(self.key_tokens, arrays) * float(credit_price)
        money_old = _key_money(self.key_tokens, base) * float(self.base_credit_price)
        ratio = np.divide(money_new, money_old, out=np.ones_like(money_new), where=(money_old > 0))
        ratio = np.where(money_new > 0, ratio, 1.0)
        return ratio ** (-elasticity)


def _eligible(rate: Any) -> bool:
    costs = [rate.unit_cost_input, rate.unit_cost_output]
    return any(c is not None and c > 0 for c in costs)


def _matches(flt: RateFilter, provider: str, model: str, kind: str) -> bool:
    if flt.providers and provider not in flt.providers:
        return False
    if flt.types and RateType(kind) not in flt.types:
        return False
    if flt.model_pattern:
        return fnmatch.fnmatchcase(model.lower(), flt.model_pattern.lower())
    return True


def _floats(values: pd.Series) -> np.ndarray:
    return np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)


def _floats_or_nan(values: pd.Series) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _key_money(tokens: np.ndarray, arrays: RateArrays) -> np.ndarray:
    """Credits per key of its summed counts (:func:`_decompose`'s ``key_tokens``) at
    ``arrays``' prices: the numpy twin of :func:`hubkit.pricing.call_credits` on sums."""
    n = tokens.shape[0]
    out = arrays.output_rate()[:n]
    money: np.ndarray = (
        tokens[:, 0] * arrays.input_rate[:n]
        + tokens[:, 1] * out
        + tokens[:, 2] * arrays.cache_read_rate[:n]
        + tokens[:, 3] * arrays.cache_write_rate[:n]
    )
    return money


def _decompose(
    prepared: PreparedUsage, book: RateBook, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split every call's credits into a part that scales with (1+m/100)/p and a fixed one.

    For a repriced key the new rates are unitCost × scale, so its input/output tokens (and
    cache tokens without a cache rate of their own, which fall back to the input rate)
    scale; tokens priced by a fixed cache rate, and every token of a key that is not
    repriced, do not. The numpy twin (split in two) of :func:`hubkit.pricing.call_credits`:
    ``units`` is the count :data:`hubkit.domain.BILLING` says each call's type bills.
    """
    frame = book.timeline
    key = prepared.key
    counts = prepared.counts
    billed = book.billed[key]
    units = np.select(
        [billed == i for i in range(len(OUTPUT_COUNTS))], [counts[c] for c in OUTPUT_COUNTS]
    ).astype(np.float64)
    tin = counts["input_tokens"].astype(np.float64)
    cr = counts["cache_read_tokens"].astype(np.float64)
    cw = counts["cache_write_tokens"].astype(np.float64)
    uc_in = _floats(frame["unit_cost_input"])
    uc_out = _floats(frame["unit_cost_output"])
    read_set = frame["cache_read_rate"].notna().to_numpy()
    write_set = frame["cache_write_rate"].notna().to_numpy()
    el = eligible[key]
    scaled = el * (
        tin * uc_in[key]
        + units * uc_out[key]
        + cr * np.where(read_set, 0.0, uc_in)[key]
        + cw * np.where(write_set, 0.0, uc_in)[key]
    )
    arrays = book.arrays
    base = arrays.input_rate[key] * tin + units * arrays.output_rate()[key]
    base += cr * arrays.cache_read_rate[key] + cw * arrays.cache_write_rate[key]
    fixed_repriced = (
        cr * np.where(read_set, arrays.cache_read_rate[:-1], 0.0)[key]
        + cw * (np.where(write_set, arrays.cache_write_rate[:-1], 0.0)[key])
    )
    fixed = np.where(el, fixed_repriced, base)
    cost = tin * arrays.cost_input[key] + units * arrays.output_cost()[key]
    cost += (cr + cw) * arrays.cost_input[key]
    n_keys = len(book.keys)
    tokens = np.stack(
        [np.bincount(key, weights=w, minlength=n_keys) for w in (tin, units, cr, cw)], axis=1
    )
    return scaled, fixed, base, cost, tokens


def settings_for(
    settings: BillingSettings, grant: Any = None, expiry_days: Any = None
) -> BillingSettings:
    """``settings`` with a scenario's grant amount and expiry days (None: keep theirs)."""
    changes: dict[str, Any] = {}
    if grant is not None:
        amount = require_decimal(grant, "grant")
        changes["new_user_credit_grant_amount"] = amount
        changes["new_user_credit_grant_enabled"] = amount > 0
    if expiry_days is not None:
        changes["credit_expiration_days"] = expiry_days
    return settings.replace(**changes) if changes else settings


def simulate(
    base: ScenarioBase,
    profit_margin: Any,
    credit_price: Any,
    *,
    settings: BillingSettings | None = None,
    behaviour: Behaviour | None = None,
    grant: Any = None,
    expiry_days: Any = None,
    pack_amount: Any = None,
) -> ReplayResult:
    """One scenario, exactly: the written rates, the per-call replay, elasticity included."""
    knobs = behaviour or Behaviour()
    if pack_amount is not None:
        knobs = dataclasses.replace(knobs, pack_amount=require_decimal(pack_amount, "pack"))
    gateway = settings_for(settings or BillingSettings.from_env(), grant, expiry_days)
    price = validate_credit_price(credit_price)
    table = base.scenario_rates(profit_margin, price)
    arrays = base.rate_arrays(table)
    factors = base.volume_factors(arrays, price, knobs.elasticity)
    if factors is not None:
        arrays = arrays.scaled(factors)
    below = np.append(table["below_cost"].to_numpy(dtype=bool), False)
    return replay_partition(
        base.prepared,
        gateway,
        credit_price=price,
        behaviour=knobs,
        rates=arrays,
        rate_index=base.prepared.key,
        below_cost=below,
    )


def scenario_row(
    margin: Decimal | None, price: Decimal, settings: BillingSettings, pack: Decimal
) -> dict[str, Any]:
    """The parameter columns of one grid row."""
    return {
        "profit_margin": None if margin is None else float(margin),
        "credit_price": float(price),
        "grant": float(settings.grant_amount),
        "expiry_days": settings.credit_expiration_days,
        "pack_amount": float(pack),
        "billing": settings.credit_based_billing_enabled,
    }
