"""The Decimal reference replay: the gateway's rules event by event, one call at a time.

Slow and plain on purpose: :func:`hubkit.replay.timeline.price_exact` prices each call with
:func:`hubkit.pricing.call_credits`, and a list of credit buckets (each with its kind and
expiry) is drawn down earliest-expiring first (never-expiring last; on a tie promotional
before purchased), exactly as domain.md states it. The vectorised replay
(:mod:`hubkit.replay.ledger`) must agree with it; the tests hold them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.billing_settings import BillingSettings
from hubkit.decimals import EXACT, ZERO
from hubkit.pricing.rules import validate_credit_price
from hubkit.replay.credit_buckets import CreditBucket, draw_credits
from hubkit.replay.engine import buyer_draws
from hubkit.replay.inputs import Behaviour
from hubkit.replay.timeline import price_exact
from hubkit.usage.schema import to_ns, validate_usage

_NS_PER_DAY = 86_400 * 10**9
_PROMOTIONAL, _PURCHASED = 0, 1  # ranks: promotional credit before paid (credit_buckets)


@dataclass
class _User:
    buyer: bool
    buckets: list[CreditBucket] = field(default_factory=list)
    debt: Decimal = ZERO
    totals: dict[str, Any] = field(default_factory=dict)


_FIELDS = (
    "calls",
    "calls_served",
    "calls_refused",
    "calls_unsupported",
    "payment_prompts",
    "granted",
    "packs",
    "purchased",
    "cash_in",
    "promo_consumed",
    "purchased_consumed",
    "expired",
    "promo_outstanding",
    "purchased_outstanding",
    "overdraft",
    "credits_used",
    "provider_cost",
    "promotional_cost",
)


def _expire(state: _User, now: int) -> None:
    keep = []
    for bucket in state.buckets:
        if bucket.expires is not None and bucket.expires <= now:
            state.totals["expired"] += bucket.remaining
        else:
            keep.append(bucket)
    state.buckets = keep


def _draw(state: _User, amount: Decimal) -> dict[str, Decimal]:
    """Take ``amount`` from the buckets in the gateway's order; the rest becomes debt."""
    taken, unfunded, state.buckets = draw_credits(state.buckets, amount)
    state.debt += unfunded
    return {kind: taken.get(kind, ZERO) for kind in ("promotional", "purchased")}


def replay_reference(
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    settings: BillingSettings,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """Per-user ledger totals in Decimal (same columns as ``ReplayResult.users``)."""
    knobs = behaviour or Behaviour()
    price = validate_credit_price(credit_price)
    frame = validate_usage(usage)
    priced = price_exact(frame, timeline)
    when = to_ns(frame["time"])
    order = np.lexsort((np.arange(len(frame)), when, frame["user"].astype(str).to_numpy()))
    billing = settings.credit_based_billing_enabled
    grant = settings.grant_amount
    lifetime = settings.credit_expiration_days * _NS_PER_DAY
    pack = EXACT.divide(knobs.pack_amount, price) if knobs.buy_probability else ZERO
    names = sorted(set(frame["user"].astype(str)))
    draws = dict(zip(names, buyer_draws(names, knobs.seed), strict=True))
    states: dict[str, _User] = {}
    users = frame["user"].astype(str).to_numpy()
    for i in order:
        name = users[i]
        now = int(when[i])
        state = states.get(name)
        if state is None:
            state = _User(buyer=bool(draws[name] < knobs.buy_probability))
            state.totals = {f: ZERO for f in _FIELDS}
            states[name] = state
            if billing and grant > 0:
                expires = now + lifetime if lifetime > 0 else None
                state.buckets.append(CreditBucket("promotional", grant, expires, _PROMOTIONAL))
                state.totals["granted"] = grant
                state.totals["grant_expires"] = expires
        totals = state.totals
        totals["calls"] += 1
        _expire(state, now)
        credits, cost = priced["credits"].iloc[i], priced["cost"].iloc[i]
        if credits is None:
            totals["calls_unsupported"] += 1
            continue
        if billing:
            balance = sum((b.remaining for b in state.buckets), ZERO) - state.debt
            if balance <= 0:
                if not (state.buyer and pack > 0):
                    totals["calls_refused"] += 1
                    continue
                packs = 0
                while balance + packs * pack <= 0:
                    packs += 1
                totals["payment_prompts"] += 1
                totals["packs"] += packs
                totals["purchased"] += packs * pack
                totals["cash_in"] += packs * knobs.pack_amount
                bought = EXACT.multiply(packs, pack)
                repay = min(bought, state.debt)
                state.debt -= repay
                totals["purchased_consumed"] += repay
                state.buckets.append(CreditBucket("purchased", bought - repay, None, _PURCHASED))
        totals["calls_served"] += 1
        totals["credits_used"] += credits
        spent = cost if cost is not None else ZERO
        totals["provider_cost"] += spent
        if not billing:
            continue
        taken = _draw(state, credits)
        totals["promo_consumed"] += taken["promotional"]
        totals["purchased_consumed"] += taken["purchased"]
        if credits > 0:
            totals["promotional_cost"] += EXACT.divide(
                EXACT.multiply(spent, taken["promotional"]), credits
            )
    end = int(when.max()) if len(frame) else 0
    if as_of is not None:
        stamp = pd.Timestamp(as_of)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        end = int(stamp.as_unit("ns").value)
    rows = []
    for name in names:
        state = states[name]
        _expire(state, end)
        totals = state.totals
        for bucket in state.buckets:
            key = "promo_outstanding" if bucket.kind == "promotional" else "purchased_outstanding"
            totals[key] += bucket.remaining
        totals["overdraft"] = state.debt
        # Debt repaid by a later purchase was counted as purchased consumption already;
        # what is still owed at the end is the overdraft, consumed from nothing.
        totals["revenue"] = totals["purchased_consumed"] * price
        totals["deferred_revenue"] = totals["purchased_outstanding"] * price
        rows.append({"user": name, "buyer": state.buyer, **totals})
    return pd.DataFrame(rows)
