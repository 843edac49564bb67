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
    pieces = []
    granted = np.flatnonzero(ledger.granted > 0)
    pieces.append(_events(granted, prepared.first_seen[granted], "grant", ledger.granted[granted]))
    gone = np.flatnonzero(ledger.expired > 0)
    pieces.append(_events(gone, ledger.grant_expires[gone], "expire", -ledger.expired[gone]))
    bought = np.flatnonzero(ledger.packs_bought > 0)
    events = _events(
        call_user[bought],
        prepared.time[bought],
        "purchase",
        ledger.packs_bought[bought] * pack,
    )
    events["money"] = ledger.packs_bought[bought] * float(behaviour.pack_amount)
    pieces.append(events)
    served = np.flatnonzero(ledger.served)
    pieces.append(_events(call_user[served], prepared.time[served], "usage", -credits[served]))
    refused = np.flatnonzero(~ledger.served)
    pieces.append(
        _events(call_user[refused], prepared.time[refused], "refused (402)", np.zeros(refused.size))
    )
    frame = pd.concat(pieces, ignore_index=True)
    frame["money"] = frame["money"].fillna(0.0)
    frame["_order"] = frame["event"].map(_EVENT_ORDER)
    frame = frame.sort_values(["_user", "time_ns", "_order"], kind="stable").reset_index(drop=True)
    frame["balance"] = frame.groupby("_user", sort=False)["credits"].cumsum()
    frame.insert(0, "user", users[frame["_user"].to_numpy()])
    frame.insert(1, "time", _times(frame["time_ns"].to_numpy()))
    return frame.drop(columns=["_user", "time_ns", "_order"])


def _events(user: np.ndarray, when: np.ndarray, event: str, credits: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_user": np.asarray(user, dtype=np.int64),
            "time_ns": np.asarray(when, dtype=np.int64),
            "event": event,
            "credits": np.asarray(credits, dtype=np.float64),
            "money": np.nan,
        }
    )
