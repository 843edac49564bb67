"""The per-user credit ledger in closed form, vectorised over calls sorted by (user, time).

The gateway's rules (domain.md, "Billing workflow" and "Credits and money") make a user's
balance path simple enough to settle without a sequential loop:

- the only promotional credits are one grant G at first sign-in, expiring at T (or never);
  purchased packs never expire, so "earliest-expiring first, promotional first on a tie"
  always means *promotional first*;
- a purchase happens only when the balance is ≤ 0, i.e. when every bucket is empty;
- whether a user buys (rather than churns) at a 402 is one seeded draw per user.

With S the running sum of a user's credits and G_eff = G before T and min(G, S_pre)
after it (expiry removes the unconsumed promotional part, S_pre = credits spent before
T), the balance before call i is ``G_eff + n·K − S_{i−1}``, so:

- a *buyer* owns ``n_i = ⌊(S_{i−1} − G_eff)/K⌋ + 1`` packs after the check at call i (0
  while S_{i−1} < G_eff), buys ``n_i − n_{i−1}`` there, and every call is served;
- a *non-buyer* is served exactly while ``t_i < T`` and ``S_{i−1} < G`` — a prefix of
  their calls — and refused (402) from then on.

Everything else (consumption split, expiry, overdraft) follows from those running sums
with numpy; :mod:`hubkit.replay.reference` replays the same rules event by event in
Decimal and the tests pin the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    """The numbers the ledger needs, already in float / ns (see :class:`BillingSettings`)."""

    billing: bool
    grant: float = 0.0
    expiry_ns: int = 0  # grant lifetime; 0 = never expires
    pack_credits: float = 0.0  # credits one pack buys (amount / creditPrice); 0 = no packs
    as_of_ns: int = NEVER  # end of the replayed period: expiries up to it count


@dataclass(frozen=True, eq=False)
class UserCalls:
    """Supported calls of a set of users, sorted by (user, time).

    ``starts`` has one offset per user plus the end; a user may have no supported call
    (signed in with an unsupported one) and still receive the grant at ``first_seen``.
    """

    starts: np.ndarray  # int64, len n_users + 1
    first_seen: np.ndarray  # int64 ns per user
    buyer: np.ndarray  # bool per user
    time: np.ndarray  # int64 ns per call
    credits: np.ndarray  # float64 per call
    cost: np.ndarray  # float64 per call

    @property
    def n_users(self) -> int:
        return int(self.starts.size - 1)

    def user_of_call(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_users, dtype=np.int32), np.diff(self.starts))


@dataclass(frozen=True, eq=False)
class LedgerArrays:
    """Per-call and per-user results; every per-user array sums across user partitions."""

    # per call
    served: np.ndarray
    packs_bought: np.ndarray
    promo_used: np.ndarray
    purchased_used: np.ndarray
    overdraft_used: np.ndarray
    balance_after: np.ndarray
    # per user
    granted: np.ndarray
    grant_expires: np.ndarray  # ns; NEVER when it does not expire (or no grant)
    packs: np.ndarray
    purchased: np.ndarray
    promo_consumed: np.ndarray
    purchased_consumed: np.ndarray
    expired: np.ndarray
    promo_outstanding: np.ndarray
    purchased_outstanding: np.ndarray
    overdraft: np.ndarray
    credits_used: np.ndarray
    provider_cost: np.ndarray
    promotional_cost: np.ndarray
    calls: np.ndarray
    calls_served: np.ndarray
    payment_prompts: np.ndarray


def segment_cumsum(values: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Running sum restarting at every user (accumulated per user, not globally)."""
    if values.size == 0:
        return values.astype(np.float64)
    out = pd.Series(values).groupby(user, sort=False).cumsum()
    return out.to_numpy(dtype=np.float64)


def _at(values: np.ndarray, starts: np.ndarray, count: np.ndarray) -> np.ndarray:
    """values[start + count − 1] per user, 0 where count is 0."""
    idx = starts[:-1] + count - 1
    has = count > 0
    out = np.zeros(count.size)
    out[has] = values[idx[has]]
    return out


def _sum_by(user: np.ndarray, weights: np.ndarray, n_users: int) -> np.ndarray:
    # float64 even with no calls at all (bincount of nothing is an integer array)
    return np.bincount(user, weights=weights, minlength=n_users).astype(np.float64)


def settle(calls: UserCalls, policy: LedgerPolicy) -> LedgerArrays:
    """Replay the balances of ``calls`` under ``policy`` (see the module docstring)."""
    n_users = calls.n_users
    user = calls.user_of_call()
    c = calls.credits
    counts = np.diff(calls.starts)
    grant = policy.grant if policy.billing else 0.0
    expires = np.full(n_users, NEVER, dtype=np.int64)
    if grant > 0 and policy.expiry_ns > 0:
        expires = calls.first_seen + policy.expiry_ns
    pre = calls.time < expires[user]
    running = segment_cumsum(c, user)
    # The running sum before each call, shifted rather than ``running - c`` so that the
    # 402 comparisons see exactly the sums the balances are built from.
    before = np.empty_like(running)
    if running.size:
        before[1:] = running[:-1]
        before[calls.starts[:-1][counts > 0]] = 0.0
    pack = policy.pack_credits
    buys = calls.buyer & (pack > 0) & policy.billing
    buyer_call = buys[user]

    if policy.billing:
        served = buyer_call | (pre & (before < grant))
    else:
        served = np.ones(c.size, dtype=bool)
    n_served = np.bincount(user, weights=served, minlength=n_users).astype(np.int64)
    n_pre_served = np.bincount(user, weights=served & pre, minlength=n_users).astype(np.int64)
    # Served calls and served pre-expiry calls are prefixes of each user's calls, so the
    # running sum at their last index is the user's total.
    spent = _at(running, calls.starts, n_served)
    spent_pre = _at(running, calls.starts, n_pre_served)

    g_eff = np.where(pre, grant, np.minimum(grant, spent_pre[user]))
    owned = np.zeros(c.size, dtype=np.int64)
    if buys.any():
        deficit = before - g_eff
        need = buyer_call & (deficit >= 0)
        owned[need] = np.floor(deficit[need] / pack).astype(np.int64) + 1
    bought = np.diff(owned, prepend=0)
    if owned.size:
        bought[calls.starts[:-1][counts > 0]] = owned[calls.starts[:-1][counts > 0]]
    packs = _at(owned.astype(np.float64), calls.starts, counts).astype(np.int64)

    consumed_so_far = np.where(served, running, spent[user])
    balance_after = g_eff + owned * pack - consumed_so_far

    promo_consumed = np.minimum(grant, spent_pre)
    expired = np.zeros(n_users)
    if grant > 0 and policy.expiry_ns > 0:
        gone = expires <= policy.as_of_ns
        expired[gone] = grant - promo_consumed[gone]
    granted = np.full(n_users, grant)
    promo_outstanding = granted - promo_consumed - expired
    purchased = packs * pack
    rest = spent - promo_consumed
    purchased_consumed = np.minimum(purchased, rest)
    overdraft = rest - purchased_consumed
    purchased_outstanding = purchased - purchased_consumed
    if not policy.billing:
        # No credit system: calls are costed, nothing is granted, bought or owed.
        overdraft = np.zeros(n_users)
        balance_after = np.zeros(c.size)

    promo_used = np.where(served & pre, np.minimum(running, grant) - np.minimum(before, grant), 0.0)
    overdraft_used = np.zeros(c.size)
    last_served = calls.starts[:-1] + n_served - 1
    has = (n_served > 0) & (overdraft > 0)
    overdraft_used[last_served[has]] = overdraft[has]
    purchased_used = np.where(served, c - promo_used - overdraft_used, 0.0)
    if not policy.billing:
        purchased_used = np.zeros(c.size)

    cost_served = np.where(served, calls.cost, 0.0)
    share = np.divide(promo_used, c, out=np.zeros(c.size), where=c > 0)
    prompts = buyer_call & (bought > 0)  # 402s answered by a purchase
    return LedgerArrays(
        served=served,
        packs_bought=np.where(buyer_call, bought, 0).astype(np.int32),
        promo_used=promo_used,
        purchased_used=purchased_used,
        overdraft_used=overdraft_used,
        balance_after=balance_after,
        granted=granted,
        grant_expires=expires,
        packs=packs,
        purchased=purchased,
        promo_consumed=promo_consumed,
        purchased_consumed=purchased_consumed,
        expired=expired,
        promo_outstanding=promo_outstanding,
        purchased_outstanding=purchased_outstanding,
        overdraft=overdraft,
        credits_used=spent,
        provider_cost=_sum_by(user, cost_served, n_users),
        promotional_cost=_sum_by(user, cost_served * share, n_users),
        calls=counts.astype(np.int64),
        calls_served=n_served,
        payment_prompts=np.bincount(user, weights=prompts, minlength=n_users).astype(np.int64),
    )


_PER_USER = (
    "granted", "grant_expires", "packs", "purchased", "promo_consumed", "purchased_consumed",
    "expired", "promo_outstanding", "purchased_outstanding", "overdraft", "credits_used",
    "provider_cost", "promotional_cost", "calls", "calls_served", "payment_prompts",
)  # fmt: skip
_PER_KEY = (
    "calls", "calls_served", "credits", "promo_credits", "purchased_credits",
    "overdraft_credits", "provider_cost", "calls_without_unit_costs", "calls_below_cost",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class PaymentEvents:
    """The calls that met a 402: refused, or served once the user bought a pack.

    Kept from the settling that made the totals, so a 402 chart needs no second settling;
    only these calls, so memory follows the 402s, not the calls.
    """

    call: np.ndarray  # int64: position among the settled calls (sorted by user, time)
    served: np.ndarray  # bool: a pack was bought and the call went through
    packs_bought: np.ndarray  # int32: packs bought at that call

    @classmethod
    def of(cls, detail: LedgerArrays, offset: int = 0) -> PaymentEvents:
        hit = ~detail.served | (detail.packs_bought > 0)
        return cls(
            call=np.flatnonzero(hit).astype(np.int64) + offset,
            served=detail.served[hit],
            packs_bought=detail.packs_bought[hit],
        )

    @classmethod
    def concat(cls, parts: Sequence[PaymentEvents]) -> PaymentEvents:
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int32))
        return cls(
            call=np.concatenate([p.call for p in parts]),
            served=np.concatenate([p.served for p in parts]),
            packs_bought=np.concatenate([p.packs_bought for p in parts]),
        )


@dataclass(frozen=True, eq=False)
class LedgerTotals:
    """Per-user ledger totals and per-rate-key sums, and the calls that met a 402."""

    users: dict[str, np.ndarray]
    keys: dict[str, np.ndarray]
    payment_events: PaymentEvents


def _blocks(starts: np.ndarray, block_calls: int) -> list[tuple[int, int]]:
    """User ranges holding about ``block_calls`` calls each (a bigger user stays whole)."""
    out, first, n_users = [], 0, starts.size - 1
    while first < n_users:
        last = int(np.searchsorted(starts, starts[first] + block_calls, side="right")) - 1
        last = min(max(last, first + 1), n_users)
        out.append((first, last))
        first = last
    return out


def settle_totals(
    calls: UserCalls,
    policy: LedgerPolicy,
    *,
    key: np.ndarray,
    n_keys: int,
    has_cost: np.ndarray,
    below_cost: np.ndarray,
    block_calls: int = 1_000_000,
) -> LedgerTotals:
    """:func:`settle` in blocks of users, keeping totals only (bounded memory).

    ``key`` is each call's rate key (for the per-key sums); ``has_cost`` and
    ``below_cost`` are per-call flags.
    """
    n_users = calls.n_users
    users: dict[str, np.ndarray] = {}
    keys = {name: np.zeros(n_keys) for name in _PER_KEY}
    events: list[PaymentEvents] = []
    # (bincount of an empty block is integer-typed: the float accumulators keep them float)
    for first, last in _blocks(calls.starts, block_calls):
        lo, hi = int(calls.starts[first]), int(calls.starts[last])
        block = UserCalls(
            starts=calls.starts[first : last + 1] - lo,
            first_seen=calls.first_seen[first:last],
            buyer=calls.buyer[first:last],
            time=calls.time[lo:hi],
            credits=calls.credits[lo:hi],
            cost=calls.cost[lo:hi],
        )
        part = settle(block, policy)
        events.append(PaymentEvents.of(part, lo))
        for name in _PER_USER:
            values = getattr(part, name)
            if name not in users:
                users[name] = np.zeros(n_users, dtype=values.dtype)
            users[name][first:last] = values
        k = key[lo:hi]
        served = part.served
        sums = {
            "calls": None,
            "calls_served": served,
            "credits": np.where(served, block.credits, 0.0),
            "promo_credits": part.promo_used,
            "purchased_credits": part.purchased_used,
            "overdraft_credits": part.overdraft_used,
            "provider_cost": np.where(served, block.cost, 0.0),
            "calls_without_unit_costs": served & ~has_cost[lo:hi],
            "calls_below_cost": below_cost[lo:hi],
        }
        for name, weights in sums.items():
            keys[name] += np.bincount(k, weights=weights, minlength=n_keys)
    if not users:  # no user at all
        empty = settle(calls, policy)
        users = {name: getattr(empty, name) for name in _PER_USER}
    return LedgerTotals(users=users, keys=keys, payment_events=PaymentEvents.concat(events))
