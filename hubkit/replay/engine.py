"""Billing replay: price usage with the rates in force, settle every user's credit ledger,
and report it the way Finance reads it (domain.md, "Credits and money").

>>> from hubkit.replay import Behaviour
>>> Behaviour(buy_probability=0.5, pack_amount=10).pack_credits(credit_price="0.01")
1000.0

One pure code path does the work: :func:`replay_partition` takes the calls of *a set of
users* (all of them, or one hash bucket of a partitioned dataset), the rates and the
settings, and returns a :class:`ReplayResult` whose KPIs, per-user rows and per-model rows
add up across partitions (:func:`combine_results`). :func:`replay` is that function on
the whole table. Pass the same ``as_of`` to every partition.

Markup vs gross margin: ``profitMargin`` (what the bulk update applies) is a *markup on
cost*; :attr:`Kpis.gross_margin_pct` is a share of *revenue*. Both names are kept apart
everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.billing_settings import BillingSettings, payment_required_body
from hubkit.errors import ValidationError
from hubkit.pricing.rules import validate_credit_price
from hubkit.replay.frames import calls_frame, ledger_frame, models_frame, users_frame
from hubkit.replay.inputs import Behaviour, PreparedUsage
from hubkit.replay.ledger import (
    LedgerArrays,
    LedgerPolicy,
    PaymentEvents,
    UserCalls,
    settle,
    settle_totals,
)
from hubkit.replay.timeline import COUNTS, RateArrays, RateBook, price_arrays
from hubkit.usage.schema import to_ns, validate_usage

__all__ = [
    "Kpis",
    "ReplayResult",
    "buyer_draws",
    "combine_results",
    "policy_for",
    "prepare",
    "replay",
    "replay_partition",
]

_NS_PER_DAY = 86_400 * 10**9


def buyer_draws(users: Sequence[str] | pd.Index, seed: int) -> np.ndarray:
    """One uniform draw in [0, 1) per user name, stable across runs and partitions."""
    names = np.asarray(pd.Index(users).astype(str), dtype=object)
    if names.size == 0:
        return np.zeros(0)
    key = f"{seed % 10**16:016d}"
    hashed = pd.util.hash_array(names, hash_key=key, categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


@dataclass(frozen=True)
class Kpis:
    """Totals of one replay; every field adds across user partitions (``a + b``)."""

    calls: int = 0
    calls_served: int = 0
    calls_refused: int = 0  # 402s not followed by a purchase
    calls_unsupported: int = 0  # no rate: refused, never charged
    payment_prompts: int = 0  # 402s answered by buying packs
    users: int = 0
    users_blocked: int = 0  # users with at least one refused call
    users_paying: int = 0
    credits_used: float = 0.0  # credits of served calls
    credits_granted: float = 0.0
    credits_purchased: float = 0.0
    promo_consumed: float = 0.0
    purchased_consumed: float = 0.0
    credits_expired: float = 0.0
    promo_outstanding: float = 0.0
    purchased_outstanding: float = 0.0
    overdraft: float = 0.0
    packs: int = 0
    cash_in: float = 0.0
    revenue: float = 0.0  # recognised: purchased credits consumed × creditPrice
    deferred_revenue: float = 0.0
    provider_cost: float = 0.0
    promotional_cost: float = 0.0  # provider cost of usage paid with promotional credits
    calls_without_unit_costs: int = 0

    def __add__(self, other: Kpis) -> Kpis:
        if not isinstance(other, Kpis):
            return NotImplemented
        return Kpis(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )

    @property
    def n_402(self) -> int:
        return self.calls_refused + self.payment_prompts

    @property
    def credits_consumed(self) -> float:
        return self.promo_consumed + self.purchased_consumed

    @property
    def credits_outstanding(self) -> float:
        return self.promo_outstanding + self.purchased_outstanding

    @property
    def gross_margin(self) -> float:
        return self.revenue - self.provider_cost

    @property
    def gross_margin_pct(self) -> float:
        """Gross margin as a share of revenue (not the markup); NaN without revenue."""
        return self.gross_margin / self.revenue * 100 if self.revenue else float("nan")

    def to_dict(self) -> dict[str, float]:
        out: dict[str, Any] = dataclasses.asdict(self)
        for name in (
            "n_402",
            "credits_consumed",
            "credits_outstanding",
            "gross_margin",
            "gross_margin_pct",
        ):
            out[name] = getattr(self, name)
        return out


def prepare(
    usage: pd.DataFrame, rates: RateBook | pd.DataFrame, *, as_of: Any = None
) -> PreparedUsage:
    """Validate, look up and sort usage for replays (the part every scenario shares).

    Temporaries are int32 where they can be and dropped early: ten million calls must
    fit in a couple of gigabytes together with the caller's own table.
    """
    book = rates if isinstance(rates, RateBook) else RateBook(rates)
    frame = validate_usage(usage)
    when = to_ns(frame["time"])
    user_col = frame["user"]
    if isinstance(user_col.dtype, pd.CategoricalDtype):
        names = pd.Index(user_col.cat.categories.astype(str))
        user_code = user_col.cat.codes.to_numpy()
    else:
        user_code, uniques = pd.factorize(user_col)
        names = pd.Index(uniques.astype(str))
    user_code = user_code.astype(np.int16 if names.size < 2**15 else np.int32, copy=False)
    # Sort by (user, time): a stable sort by user keeps time order if the table has it.
    if when.size and bool(np.all(when[1:] >= when[:-1])):
        order = np.argsort(user_code, kind="stable")
    else:
        order = np.lexsort((when, user_code))
    order = order.astype(np.int32) if order.size < 2**31 else order
    user_sorted = user_code[order]
    n_users = names.size
    all_counts = np.bincount(user_sorted, minlength=n_users)
    all_starts = np.concatenate([[0], np.cumsum(all_counts)])
    present = all_counts > 0
    # Drop users who never called (unused categories) so per-user rows are real users.
    keep_users = np.flatnonzero(present)
    first_seen = when[order[all_starts[:-1][present]]]
    remap = np.full(n_users, -1, dtype=np.int32)
    remap[keep_users] = np.arange(keep_users.size)
    names = names[keep_users]
    user_sorted = remap[user_sorted]

    row_all = book.rows_for(frame) if order.size else np.zeros(0, np.int32)
    row_all = row_all[order]
    supported = row_all >= 0
    unsupported_user = np.bincount(user_sorted[~supported], minlength=names.size)
    counts_sup = np.bincount(user_sorted[supported], minlength=names.size)
    del user_sorted
    if (~supported).any():
        bad = frame.iloc[order[~supported]][["provider", "model", "type"]].astype(str)
        unsupported_keys = bad.value_counts().rename("calls").reset_index()
    else:
        unsupported_keys = pd.DataFrame(
            {"provider": [], "model": [], "type": [], "calls": []}
        ).astype({"calls": np.int64})
    idx = order[supported] if not supported.all() else order
    del order
    row = row_all[supported] if not supported.all() else row_all
    last = int(when.max()) if when.size else 0
    as_of_ns = last if as_of is None else _as_ns(as_of)
    if when.size and as_of_ns < last:
        raise ValidationError(
            f"as_of {pd.Timestamp(as_of_ns, tz='UTC')} is before the last call "
            f"{pd.Timestamp(last, tz='UTC')}",
            field="as_of",
        )
    return PreparedUsage(
        book=book,
        users=names,
        first_seen=first_seen,
        starts=np.concatenate([[0], np.cumsum(counts_sup)]).astype(np.int64),
        time=when[idx],
        row=row,
        key=book.key_of_row[row],
        counts={c: frame[c].to_numpy()[idx] for c in COUNTS},
        source_index=idx,
        unsupported_user=unsupported_user.astype(np.int64),
        unsupported_keys=unsupported_keys,
        as_of_ns=as_of_ns,
    )


def _as_ns(value: Any) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def policy_for(
    settings: BillingSettings, credit_price: Any, behaviour: Behaviour, as_of_ns: int
) -> LedgerPolicy:
    return LedgerPolicy(
        billing=settings.credit_based_billing_enabled,
        grant=float(settings.grant_amount),
        expiry_ns=settings.credit_expiration_days * _NS_PER_DAY,
        pack_credits=behaviour.pack_credits(credit_price) if behaviour.buy_probability else 0.0,
        as_of_ns=as_of_ns,
    )


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """One replay: KPIs, per-user and per-model summaries; per-call detail on demand."""

    kpis: Kpis
    users: pd.DataFrame
    models: pd.DataFrame
    settings: BillingSettings
    credit_price: Decimal
    behaviour: Behaviour
    prepared: PreparedUsage | None = None
    user_calls: UserCalls | None = None
    policy: LedgerPolicy | None = None
    #: the calls that met a 402 (from the same settling as the totals), None for totals
    payment_events: PaymentEvents | None = None

    @property
    def credits(self) -> np.ndarray | None:
        """Credits of every supported call (sorted by user, time), or None for totals."""
        return None if self.user_calls is None else self.user_calls.credits

    def ledger_arrays(self) -> LedgerArrays:
        """The per-call ledger (recomputed on demand: results keep totals only)."""
        self._need_detail()
        assert self.user_calls is not None and self.policy is not None
        return settle(self.user_calls, self.policy)

    @property
    def models_below_cost(self) -> int:
        """(provider, model, type) sold below cost on at least one served call."""
        return int(self.models["below_cost"].sum()) if len(self.models) else 0

    def calls(self) -> pd.DataFrame:
        """One row per supported call, sorted by (user, time), with its ledger effect."""
        detail = self.ledger_arrays()
        assert self.prepared is not None and self.user_calls is not None
        return calls_frame(self.prepared, self.user_calls.credits, self.user_calls.cost, detail)

    def ledger(self) -> pd.DataFrame:
        """The ledger as events: grant, purchase, usage, refused (402), expire."""
        detail = self.ledger_arrays()
        assert self.prepared is not None and self.user_calls is not None
        return ledger_frame(
            self.prepared, self.user_calls.credits, detail, self.behaviour, self.credit_price
        )

    def payment_required_body(self, when: Any = None) -> dict[str, Any]:
        """The 402 body the gateway would send these users (with the payment link)."""
        stamp = None if when is None else pd.Timestamp(when).to_pydatetime()
        return payment_required_body(self.settings, stamp)

    def _need_detail(self) -> None:
        if self.prepared is None or self.user_calls is None:
            raise ValidationError(
                "this result holds totals only (combined from partitions); replay one "
                "partition for per-call detail",
                field="detail",
            )


def replay_partition(
    prepared: PreparedUsage,
    settings: BillingSettings,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    rates: RateArrays | None = None,
    rate_index: np.ndarray | None = None,
    below_cost: np.ndarray | None = None,
) -> ReplayResult:
    """The replay of one set of users (pure: arrays in, summable results out).

    By default calls are priced with the timeline rows in force (``prepared.row``); a
    scenario passes its own ``rates`` with ``rate_index`` (usually ``prepared.key``) and
    the ``below_cost`` flag per rate.
    """
    knobs = behaviour or Behaviour()
    price = validate_credit_price(credit_price)
    book = prepared.book
    arrays = book.arrays if rates is None else rates
    index = prepared.row if rate_index is None else rate_index
    priced = price_arrays(index, prepared.counts, arrays, cost=True)
    assert priced.cost is not None
    draws = buyer_draws(prepared.users, knobs.seed)
    calls = UserCalls(
        starts=prepared.starts,
        first_seen=prepared.first_seen,
        buyer=draws < knobs.buy_probability,
        time=prepared.time,
        credits=priced.credits,
        cost=priced.cost,
    )
    policy = policy_for(settings, price, knobs, prepared.as_of_ns)
    flags = book.below_cost(price) if below_cost is None else below_cost
    totals = settle_totals(
        calls,
        policy,
        key=prepared.key,
        n_keys=len(book.keys),
        has_cost=arrays.has_cost[index],
        below_cost=flags[index],
    )
    users = users_frame(prepared, totals, calls.buyer, knobs, price)
    models = models_frame(prepared, totals, price)
    kpis = _kpis(users, models)
    return ReplayResult(
        kpis=kpis,
        users=users,
        models=models,
        settings=settings,
        credit_price=price,
        behaviour=knobs,
        prepared=prepared,
        user_calls=calls,
        policy=policy,
        payment_events=totals.payment_events,
    )


def _kpis(users: pd.DataFrame, models: pd.DataFrame) -> Kpis:
    def total(column: str) -> float:
        return float(users[column].sum())

    return Kpis(
        calls=int(users["calls"].sum()),
        calls_served=int(users["calls_served"].sum()),
        calls_refused=int(users["calls_refused"].sum()),
        calls_unsupported=int(users["calls_unsupported"].sum()),
        payment_prompts=int(users["payment_prompts"].sum()),
        users=len(users),
        users_blocked=int((users["calls_refused"] > 0).sum()),
        users_paying=int((users["packs"] > 0).sum()),
        credits_used=total("credits_used"),
        credits_granted=total("granted"),
        credits_purchased=total("purchased"),
        promo_consumed=total("promo_consumed"),
        purchased_consumed=total("purchased_consumed"),
        credits_expired=total("expired"),
        promo_outstanding=total("promo_outstanding"),
        purchased_outstanding=total("purchased_outstanding"),
        overdraft=total("overdraft"),
        packs=int(users["packs"].sum()),
        cash_in=total("cash_in"),
        revenue=total("revenue"),
        deferred_revenue=total("deferred_revenue"),
        provider_cost=total("provider_cost"),
        promotional_cost=total("promotional_cost"),
        calls_without_unit_costs=int(models["calls_without_unit_costs"].sum())
        if len(models)
        else 0,
    )


def replay(
    usage: pd.DataFrame,
    rates: pd.DataFrame | RateBook,
    settings: BillingSettings | None = None,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    as_of: Any = None,
) -> ReplayResult:
    """Replay ``usage`` against a rate timeline under the gateway's ``settings``.

    ``settings`` default to :meth:`BillingSettings.from_env`. ``credit_price`` is the
    operator's price of one credit (what packs cost per credit and what revenue is
    recognised at). ``as_of`` ends the period (default: the last call).
    """
    prepared = prepare(usage, rates, as_of=as_of)
    return replay_partition(
        prepared,
        settings if settings is not None else BillingSettings.from_env(),
        credit_price=credit_price,
        behaviour=behaviour,
    )


def combine_results(parts: Iterable[ReplayResult]) -> ReplayResult:
    """Sum partition results (disjoint user sets) into one totals-only result."""
    items = list(parts)
    if not items:
        raise ValidationError("combine_results needs at least one partition result")
    kpis = sum((p.kpis for p in items[1:]), items[0].kpis)
    users = pd.concat([p.users for p in items], ignore_index=True)
    models = pd.concat([p.models for p in items], ignore_index=True)
    keys = ["provider", "model", "type"]
    summed = models.drop(columns=["below_cost", "gross_margin"]).groupby(keys, as_index=False).sum()
    below = models.groupby(keys, as_index=False)["below_cost"].any()
    models = summed.merge(below, on=keys)
    models["gross_margin"] = models["revenue"] - models["provider_cost"]
    first = items[0]
    return ReplayResult(
        kpis=kpis,
        users=users,
        models=models,
        settings=first.settings,
        credit_price=first.credit_price,
        behaviour=first.behaviour,
    )
