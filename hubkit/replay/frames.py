"""DataFrames of a replay: per user, per model, per call and the ledger as events.

Built from the arrays of :mod:`hubkit.replay.ledger`; every numeric column of the per-user and
per-model frames adds up across user partitions.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd

from hubkit.replay.inputs import Behaviour, PreparedUsage
from hubkit.replay.ledger import NEVER, LedgerArrays, LedgerTotals

_EVENT_ORDER = {"grant": 0, "expire": 1, "purchase": 2, "usage": 3, "refused (402)": 3}


def _times(ns: np.ndarray) -> pd.Series:
    values = np.where(ns == NEVER, np.iinfo(np.int64).min, ns).astype(np.int64, copy=False)
    # as datetime64 (int64 min is NaT): pandas parses plain integers a 100× slower
    return pd.Series(pd.to_datetime(values.view("datetime64[ns]"), utc=True))


def users_frame(
    prepared: PreparedUsage,
    totals: LedgerTotals,
    buyer: np.ndarray,
    behaviour: Behaviour,
    credit_price: Decimal,
) -> pd.DataFrame:
    price = float(credit_price)
    ledger = SimpleNamespace(**totals.users)
    refused = ledger.calls - ledger.calls_served
    frame = pd.DataFrame(
        {
            "user": prepared.users.to_numpy(),
            "first_seen": _times(prepared.first_seen),
            "buyer": buyer,
            "calls": ledger.calls + prepared.unsupported_user,
            "calls_served": ledger.calls_served,
            "calls_refused": refused,
            "calls_unsupported": prepared.unsupported_user,
            "payment_prompts": ledger.payment_prompts,
            "granted": ledger.granted,
            "grant_expires": _times(
                np.where(ledger.granted > 0, ledger.grant_expires, NEVER).astype(np.int64)
            ),
            "packs": ledger.packs,
            "purchased": ledger.purchased,
            "cash_in": ledger.packs * float(behaviour.pack_amount),
            "promo_consumed": ledger.promo_consumed,
            "purchased_consumed": ledger.purchased_consumed,
            "expired": ledger.expired,
            "promo_outstanding": ledger.promo_outstanding,
            "purchased_outstanding": ledger.purchased_outstanding,
            "overdraft": ledger.overdraft,
            "credits_used": ledger.credits_used,
            "revenue": ledger.purchased_consumed * price,
            "deferred_revenue": ledger.purchased_outstanding * price,
            "provider_cost": ledger.provider_cost,
            "promotional_cost": ledger.promotional_cost,
        }
    )
    frame["balance"] = (
        frame["promo_outstanding"] + frame["purchased_outstanding"] - frame["overdraft"]
    )
    return frame


def _pack_credits(behaviour: Behaviour, price: float) -> float:
    return float(behaviour.pack_amount) / price if price else 0.0


def models_frame(
    prepared: PreparedUsage, totals: LedgerTotals, credit_price: Decimal
) -> pd.DataFrame:
    """Per (provider, model, type): calls, credits by funding source, revenue, cost."""
    keys = prepared.book.keys
    sums = totals.keys
    n = len(keys)
    frame = pd.DataFrame(
        {
            "provider": [k[0] for k in keys],
            "model": [k[1] for k in keys],
            "type": [k[2] for k in keys],
            "calls": sums["calls"].astype(np.int64),
            "calls_served": sums["calls_served"].astype(np.int64),
            "calls_unsupported": np.zeros(n, dtype=np.int64),
            "credits": sums["credits"],
            "promo_credits": sums["promo_credits"],
            "purchased_credits": sums["purchased_credits"],
            "overdraft_credits": sums["overdraft_credits"],
            "revenue": sums["purchased_credits"] * float(credit_price),
            "provider_cost": sums["provider_cost"],
            "calls_without_unit_costs": sums["calls_without_unit_costs"].astype(np.int64),
            "below_cost": sums["calls_below_cost"] > 0,
        }
    )
    frame["calls_refused"] = frame["calls"] - frame["calls_served"]
    bad = prepared.unsupported_keys
    if len(bad):
        extra = pd.DataFrame(
            {
                "provider": bad["provider"].to_numpy(),
                "model": bad["model"].to_numpy(),
                "type": bad["type"].to_numpy(),
                "calls": bad["calls"].to_numpy(dtype=np.int64),
                "calls_unsupported": bad["calls"].to_numpy(dtype=np.int64),
            }
        )
        frame = pd.concat([frame, extra], ignore_index=True).fillna(
            {c: 0 for c in frame.columns if c not in ("provider", "model", "type", "below_cost")}
            | {"below_cost": False}
        )
        frame = frame.groupby(["provider", "model", "type"], as_index=False, sort=False).agg(
            {c: ("any" if c == "below_cost" else "sum") for c in frame.columns[3:]}
        )
    frame = frame[frame["calls"] > 0].reset_index(drop=True)
    frame["gross_margin"] = frame["revenue"] - frame["provider_cost"]
    for column in ("calls", "calls_served", "calls_unsupported", "calls_refused"):
        frame[column] = frame[column].astype(np.int64)
    frame["calls_without_unit_costs"] = frame["calls_without_unit_costs"].astype(np.int64)
    frame["below_cost"] = frame["below_cost"].astype(bool)
    return frame


def calls_frame(
    prepared: PreparedUsage,
    credits: np.ndarray | None,
    cost: np.ndarray | None,
    ledger: LedgerArrays,
) -> pd.DataFrame:
    keys = prepared.book.keys
    key_names = pd.Index([f"{p}\x1f{m}\x1f{t}" for p, m, t in keys])
    parts = key_names.str.split("\x1f")
    user = np.repeat(np.arange(prepared.users.size), np.diff(prepared.starts))
    frame = pd.DataFrame(
        {
            "time": _times(prepared.time),
            "user": pd.Categorical.from_codes(user, categories=prepared.users),
            "provider": pd.Categorical([p[0] for p in parts])[prepared.key],
            "model": pd.Categorical([p[1] for p in parts])[prepared.key],
            "type": pd.Categorical([p[2] for p in parts])[prepared.key],
            **{c: v for c, v in prepared.counts.items()},
            "credits": credits,
            "provider_cost": cost,
            "status": np.where(ledger.served, "served", "refused (402)"),
            "packs_bought": ledger.packs_bought,
            "promo_credits": ledger.promo_used,
            "purchased_credits": ledger.purchased_used,
            "overdraft_credits": ledger.overdraft_used,
            "balance_after": ledger.balance_after,
        }
    )
    return frame


def ledger_frame(
    prepared: PreparedUsage,
    credits: np.ndarray | None,
    ledger: LedgerArrays,
    behaviour: Behaviour,
    credit_price: Decimal,
) -> pd.DataFrame:
    """Events per user in time order; ``balance`` is the running sum of ``credits``."""
    assert credits is not None
    users = prepared.users.to_numpy()
    call_user = np.repeat(np.arange(users.size), np.diff(prepared.starts))
    pack = _pack_credits(behaviour, float(credit_price))
    granted = np.flatnonzero(ledger.granted > 0)
    gone = np.flatnonzero(ledger.expired > 0)
    bought = np.flatnonzero(ledger.packs_bought > 0)
    served = np.flatnonzero(ledger.served)
    refused = np.flatnonzero(~ledger.served)
    packs = ledger.packs_bought[bought]
    # (event, user, time, credits, money) as arrays, sorted once: a DataFrame per event type
    # and their concat were most of a small ledger's time (the explorer's balance chart)
    parts = [
        ("grant", granted, prepared.first_seen[granted], ledger.granted[granted], None),
        ("expire", gone, ledger.grant_expires[gone], -ledger.expired[gone], None),
        ("purchase", call_user[bought], prepared.time[bought], packs * pack,
         packs * float(behaviour.pack_amount)),
        ("usage", call_user[served], prepared.time[served], -credits[served], None),
        ("refused (402)", call_user[refused], prepared.time[refused], np.zeros(refused.size),
         None),
    ]  # fmt: skip
    sizes = [len(part[1]) for part in parts]
    user = np.concatenate([part[1] for part in parts]).astype(np.int64)
    when = np.concatenate([part[2] for part in parts]).astype(np.int64)
    amount = np.concatenate([part[3] for part in parts]).astype(np.float64)
    money = np.concatenate(
        [np.zeros(n) if part[4] is None else part[4] for part, n in zip(parts, sizes, strict=True)]
    ).astype(np.float64)
    kind = np.repeat(np.arange(len(parts)), sizes)
    rank = np.array([_EVENT_ORDER[part[0]] for part in parts])[kind]
    # by user, time, then event order; ties keep the order above (lexsort is stable)
    order = np.lexsort((rank, when, user))
    user, when, kind = user[order], when[order], kind[order]
    amount, money = amount[order], money[order]
    balance = pd.Series(amount).groupby(user, sort=False).cumsum().to_numpy()
    names = np.array([part[0] for part in parts], dtype=str)
    return pd.DataFrame(
        {
            "user": users[user],
            "time": _times(when),
            "event": names[kind],
            "credits": amount,
            "money": money,
            "balance": balance,
        }
    )
