"""The margin × credit-price grid, with the work shared across scenarios.

What changes between scenarios is one number for every repriced rate: the new rate is
``unitCost × ρ`` with ρ = (1 + margin/100) / creditPrice. So each call's credits are
``ρ·scaled + fixed`` (:meth:`ScenarioBase.build` splits them once), and with per-user
running sums E (of ``scaled``) and B (of ``fixed``) every balance quantity the ledger needs
is a gather: ``S_j(ρ) = ρ·E_j + B_j``.

The one sequential question — *at which call does a user's spending reach the grant G?*
— becomes a count: ``S_i(ρ) < G ⇔ ρ < ρ*_i = (G − B_i)/E_i``, and ρ*_i never increases
along a user's calls, so the number of a user's calls below the grant in scenario ρ is
the number of its ρ*_i above ρ. One histogram of all ρ*_i against the sorted ρ of the
grid gives that count for every user and every scenario at once. From there each user's
ledger is closed form (:mod:`hubkit.replay.ledger`), evaluated as (users × scenarios) arrays in
chunks. Only a buyer who might buy several packs at one call (a call costing more than a
pack) is replayed call by call, and only in the scenarios where that can happen.

The grid prices repriced rates at ``unitCost × ρ`` before the gateway's 10-place rounding;
the column ``rate_rounding`` reports the largest relative difference that rounding would
make in each scenario (0 for most real price lists), and :func:`hubkit.scenarios.simulate`
replays any single scenario with the exact rounded rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import fields
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.billing_settings import BillingSettings
from hubkit.decimals import require_decimal
from hubkit.domain import Rate
from hubkit.errors import ValidationError
from hubkit.pricing.rules import RateFilter, is_below_cost, validate_credit_price, validate_margin
from hubkit.replay.engine import Kpis, buyer_draws
from hubkit.replay.inputs import Behaviour
from hubkit.replay.ledger import NEVER
from hubkit.replay.timeline import RateBook
from hubkit.scenarios.scenario import (
    ScenarioBase,
    margin_rates_vec,
    scenario_row,
    settings_for,
    simulate,
)
from hubkit.scenarios.sums import Family, UserSums

_NS_PER_DAY = 86_400 * 10**9
_CELLS_PER_CHUNK = 1_000_000  # users × scenarios evaluated at once (bounds memory)


def _below_counts(base: ScenarioBase, cache: dict[Any, Any]) -> tuple[np.ndarray, list[Any]]:
    if "used" not in cache:
        cache["used"] = np.bincount(base.prepared.key, minlength=len(base.book.keys)) > 0
        cache["rows"] = list(base.rates.itertuples(index=False))
    return cache["used"], cache["rows"]


def _models_below_cost(
    base: ScenarioBase, margin: Decimal | None, price: Decimal, cache: dict[Any, int]
) -> int:
    # Repriced rates (margin ≥ 0) are never below cost; rates that keep their value are
    # compared at this credit price, exactly.
    key = (margin is None, price)
    if key not in cache:
        used, rows = _below_counts(base, cache)
        count = 0
        for k, rate in enumerate(rows):
            if not used[k] or (margin is not None and base.eligible[k]):
                continue
            if is_below_cost(rate.input_rate, rate.unit_cost_input, price) or is_below_cost(
                rate.output_rate, rate.unit_cost_output, price
            ):
                count += 1
        cache[key] = count
    return cache[key]


def _rounding(
    base: ScenarioBase, margins: list[Decimal | None], prices: list[Decimal]
) -> dict[tuple[Decimal | None, Decimal], float]:
    """Largest relative change the 10-place rounding makes to a repriced, used rate."""
    used = np.bincount(base.prepared.key, minlength=len(base.book.keys)) > 0
    pick = used & base.eligible
    costs: list[float] = []
    for column in ("unit_cost_input", "unit_cost_output"):
        values = base.rates[column].to_numpy()[pick]
        costs.extend(float(v) for v in values if v is not None and v > 0)
    uc = np.array(costs)
    out: dict[tuple[Decimal | None, Decimal], float] = {}
    for margin in margins:
        for price in prices:
            if margin is None or not uc.size:
                out[(margin, price)] = 0.0
                continue
            exact = uc * (1 + float(margin) / 100) / float(price)
            rounded = margin_rates_vec(uc, float(margin), float(price))
            worst = float(np.max(np.abs(rounded - exact) / exact))
            out[(margin, price)] = worst if worst > 1e-12 else 0.0  # below: float noise
    return out


def run_grid(
    base: ScenarioBase,
    margins: list[Decimal | None],
    prices: list[Decimal],
    settings: BillingSettings,
    knobs: Behaviour,
    packs: list[Decimal],
) -> pd.DataFrame:
    """KPI rows for margins × prices × packs under one grant/expiry configuration."""
    prepared = base.prepared
    n = np.diff(prepared.starts)
    n_users = prepared.users.size
    billing = settings.credit_based_billing_enabled
    grant = float(settings.grant_amount)
    lifetime = settings.credit_expiration_days * _NS_PER_DAY
    expires = np.full(n_users, NEVER, dtype=np.int64)
    if grant > 0 and lifetime > 0:
        expires = prepared.first_seen + lifetime
    gone = expires <= prepared.as_of_ns
    buyer = buyer_draws(prepared.users, knobs.seed) < knobs.buy_probability
    scenarios: dict[str, list[tuple[Decimal | None, Decimal, float]]] = {"scaled": [], "keep": []}
    order = {}
    for i, margin in enumerate(margins):
        for j, price in enumerate(prices):
            order[(margin, price)] = (i, j)
            if margin is None:
                scenarios["keep"].append((margin, price, 1.0))
            else:
                scenarios["scaled"].append((margin, price, float((1 + margin / 100) / price)))
    below_cache: dict[Any, int] = {}
    rounding = _rounding(base, margins, prices)
    unsupported = int(prepared.unsupported_user.sum())
    frames: list[pd.DataFrame] = []
    for name, items in scenarios.items():
        if not items:
            continue
        if name == "scaled":
            family = Family(base, base.scaled, base.fixed)
        else:
            family = Family(base, np.zeros_like(base.base_credits), base.base_credits)
        pre = prepared.time < expires[family.user]
        n_pre = np.bincount(family.user, weights=pre, minlength=n_users).astype(np.int64)
        users = UserSums.build(family, n, n_pre, buyer, gone)
        rho_all = np.array([r for _, _, r in items])
        rho_sorted = np.unique(rho_all)
        crossing = None
        if billing and grant > 0:
            crossing = _crossings(family, pre, grant, rho_sorted, n_users, n_pre)
        price_max = max(float(p) for _, p, _ in items)
        can_buy = billing and knobs.buy_probability > 0
        big = {
            pack: _big_calls(family, n, buyer, float(rho_all.max()), float(pack) / price_max)
            for pack in packs
            if can_buy and pack > 0
        }
        chunk = max(1, _CELLS_PER_CHUNK // max(1, n_users))
        for lo in range(0, len(items), chunk):
            part = items[lo : lo + chunk]
            rho = np.array([r for _, _, r in part])
            chunk_prices = np.array([float(p) for _, p, _ in part])
            m = None
            if crossing is not None:
                m = (crossing[0], crossing[1][:, np.searchsorted(rho_sorted, rho)])
            for pack in packs:
                totals = _chunk_kpis(
                    family, users, billing, grant, rho, chunk_prices, float(pack),
                    can_buy and pack > 0, m, big.get(pack),
                )  # fmt: skip
                frame = pd.DataFrame(
                    [scenario_row(margin, p, settings, pack) for margin, p, _ in part]
                )
                totals["calls"] = totals["calls"] + unsupported
                totals["calls_unsupported"] = np.full(len(part), unsupported)
                totals["users"] = np.full(len(part), n_users)
                for column in KPI_FIELDS:
                    frame[column] = totals[column]
                frame["models_below_cost"] = [
                    _models_below_cost(base, margin, p, below_cache) for margin, p, _ in part
                ]
                frame["rate_rounding"] = [rounding[(margin, p)] for margin, p, _ in part]
                frame["_order"] = [
                    (packs.index(pack), *order[(margin, p)]) for margin, p, _ in part
                ]
                frames.append(frame)
    # Rows in the caller's order: pack, then margin, then credit price.
    result = pd.concat(frames, ignore_index=True).sort_values("_order", kind="stable")
    return with_derived_kpis(result.drop(columns="_order").reset_index(drop=True))


KPI_FIELDS = tuple(f.name for f in fields(Kpis))


def with_derived_kpis(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the KPI columns derived from the additive ones (as :class:`Kpis` defines them)."""
    out = frame.copy()
    out["n_402"] = out["calls_refused"] + out["payment_prompts"]
    out["credits_consumed"] = out["promo_consumed"] + out["purchased_consumed"]
    out["credits_outstanding"] = out["promo_outstanding"] + out["purchased_outstanding"]
    out["gross_margin"] = out["revenue"] - out["provider_cost"]
    revenue = out["revenue"].where(out["revenue"] != 0)
    out["gross_margin_pct"] = out["gross_margin"] / revenue * 100
    # Keep the model / rounding columns last, after the KPIs.
    tail = [c for c in ("models_below_cost", "rate_rounding") if c in out.columns]
    return out[[c for c in out.columns if c not in tail] + tail]


def _crossings(
    family: Family,
    pre: np.ndarray,
    grant: float,
    rho_sorted: np.ndarray,
    n_users: int,
    n_pre: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Users who reach the grant somewhere in the grid, and for each of them and each
    sorted ρ the number of pre-expiry calls that keep S below the grant."""
    E, B = family.values("E")[pre], family.values("B")[pre]
    user = family.user[pre]
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(E > 0, (grant - B) / E, np.where(B < grant, np.inf, -np.inf))
    # ρ < ρ*_i  ⇔  S_i(ρ) < G; position = how many grid ρ lie below ρ*_i. ρ* never
    # rises along a user's calls, so a user crosses somewhere iff their last one is ≤ ρ_max.
    pos = np.searchsorted(rho_sorted, threshold, side="left")
    q = rho_sorted.size
    last = np.full(n_users, q)
    has = n_pre > 0
    last[has] = pos[np.cumsum(n_pre)[has] - 1]
    crossing_users = np.flatnonzero(has & (last < q))
    rank = np.full(n_users, -1, dtype=np.int64)
    rank[crossing_users] = np.arange(crossing_users.size)
    keep = rank[user] >= 0
    hist = np.bincount(
        rank[user[keep]] * (q + 1) + pos[keep], minlength=crossing_users.size * (q + 1)
    ).reshape(crossing_users.size, q + 1)
    below_or_at = np.cumsum(hist[:, :q], axis=1, dtype=np.int32)
    return crossing_users, n_pre[crossing_users][:, None].astype(np.int32) - below_or_at


def _per_scenario(weights: np.ndarray, col_starts: np.ndarray) -> np.ndarray:
    """Sums of cell weights per scenario; cells are sorted by scenario (``col_starts``)."""
    ends = np.append(col_starts[1:], weights.size)
    sums = np.add.reduceat(weights, np.minimum(col_starts, weights.size - 1))
    return np.where(ends > col_starts, sums, 0.0)


def _chunk_kpis(
    family: Family,
    users: UserSums,
    billing: bool,
    grant: float,
    rho: np.ndarray,
    price: np.ndarray,
    pack_amount: float,
    can_buy: bool,
    m: tuple[np.ndarray, np.ndarray] | None,
    big: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Closed-form ledgers of all users for a chunk of scenarios, summed per scenario.

    Sums that are linear in ρ are taken once over users (ρ·ΣE + ΣB); only the cells
    where a user crosses the grant, and buyers who buy, are evaluated per scenario.
    """
    S = rho.size
    sums = users.sums
    n, n_pre, gone = users.n, users.n_pre, users.gone
    every = np.ones(n.size, dtype=bool)
    out: dict[str, np.ndarray] = {
        "calls": np.full(S, int(n.sum())),
        "credits_granted": np.full(S, grant * n.size),
    }
    zeros = np.zeros(S)
    if not billing:
        out |= {
            "calls_served": out["calls"].copy(),
            "calls_refused": zeros.astype(np.int64),
            "payment_prompts": zeros.astype(np.int64),
            "users_blocked": zeros.astype(np.int64),
            "users_paying": zeros.astype(np.int64),
            "credits_used": users.rank1("last", rho, every),
            "credits_granted": zeros,
            "provider_cost": np.full(S, sums["C_last"].sum()),
            "calls_without_unit_costs": np.full(S, int(round(sums["no_cost_last"].sum()))),
            "packs": zeros.astype(np.int64),
        }
        for key in (
            "credits_purchased", "promo_consumed", "purchased_consumed", "credits_expired",
            "promo_outstanding", "purchased_outstanding", "overdraft", "cash_in", "revenue",
            "deferred_revenue", "promotional_cost",
        ):  # fmt: skip
            out[key] = zeros.copy()
        return out

    buys = users.buyer & can_buy
    nb = ~buys
    # -- cells where a user's spending reaches the grant before it expires ------------
    if m is not None and grant > 0:
        # Column-major cells: per-scenario sums become one reduceat over contiguous runs.
        who, counts = m
        cols, local = np.nonzero((counts < n_pre[who][:, None]).T)
        mx = counts[local, cols].astype(np.int64)
        rows = who[local]
        col_starts = np.searchsorted(cols, np.arange(S))
        first = family.first[rows]
        prev = family.index(mx - 1, first)
        at_m = first + mx
        r = rho[cols]
        s_prev = family.take("E", prev) * r + family.take("B", prev)
        c_m = family.take("scaled", at_m) * r + family.take("fixed", at_m)
        cost_m = family.take("cost", at_m)
        share = np.divide(
            np.clip(grant - s_prev, 0.0, None), c_m, out=np.zeros(c_m.size), where=c_m > 0
        )
        promo_cost_x = family.take("C_pos", prev) + cost_m * np.minimum(share, 1.0)
        pre_spent_x = sums["E_pre"][rows] * r + sums["B_pre"][rows]
    else:
        rows = cols = mx = prev = at_m = np.zeros(0, dtype=np.int64)
        s_prev = c_m = cost_m = promo_cost_x = pre_spent_x = np.zeros(0)
    x_nb = nb[rows] if rows.size else np.zeros(0, bool)

    def corr(weights: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if not rows.size:
            return zeros.copy()
        w = np.asarray(weights if mask is None else np.where(mask, weights, 0.0), np.float64)
        return _per_scenario(w, col_starts)

    # -- promotional credits: spent up to the grant, the rest expires or stays --------
    # Without a crossing S_pre < G, so promo = S_pre; at a crossing promo = G.
    promo = expired = promo_cost = zeros
    if grant > 0:
        promo = users.rank1("pre", rho, every) + corr(grant - pre_spent_x)
        expired = grant * gone.sum() - users.rank1("pre", rho, gone)
        expired = expired - corr(grant - pre_spent_x, gone[rows])
        promo_cost = sums["C_pos_pre"].sum() + corr(promo_cost_x - sums["C_pos_pre"][rows])

    # -- non-buyers: served while below the grant (a prefix), refused after -----------
    nb_g = nb & (grant > 0)
    served_nb = np.full(S, float(n_pre[nb_g].sum()))
    spent_nb = users.rank1("pre", rho, nb_g)
    cost_nb = np.full(S, sums["C_pre"][nb_g].sum())
    nocost_nb = np.full(S, sums["no_cost_pre"][nb_g].sum())
    blocked_nb = np.full(S, float((nb & (n > np.where(nb_g, n_pre, 0))).sum()))
    if rows.size:
        spent_x = s_prev + c_m
        served_x = mx + 1
        served_nb += corr(served_x - n_pre[rows], x_nb)
        spent_nb += corr(spent_x - pre_spent_x, x_nb)
        cost_nb += corr(family.take("C", prev) + cost_m - sums["C_pre"][rows], x_nb)
        nocost_nb += corr(family.take("no_cost", at_m) - sums["no_cost_pre"][rows], x_nb)
        blocked_nb += corr((served_x < n[rows]).astype(np.float64) - (n_pre[rows] < n[rows]), x_nb)
    promo_nb = users.rank1("pre", rho, nb_g) + corr(grant - pre_spent_x, x_nb)
    overdraft_nb = spent_nb - promo_nb

    # -- buyers: every call served; packs bought whenever the balance is ≤ 0 ----------
    spent_b = users.rank1("last", rho, buys)
    promo_b = promo - promo_nb
    purchased = used = left = packs_total = paying = zeros.copy()
    overdraft_b = spent_b - promo_b
    prompts = zeros.copy()
    if buys.any():
        pack = pack_amount / price
        active = np.flatnonzero(buys & (n > 0))
        sp_pre = users.running("pre", rho, active)
        promo_a = np.minimum(grant, sp_pre)
        last_pre = (n_pre == n)[active][:, None]
        g_last = np.where(last_pre, grant, promo_a)
        deficit = users.running("lm1", rho, active) - g_last
        owned = np.where(deficit >= 0, np.floor(deficit / pack) + 1, 0.0)
        bought = owned * pack
        rest = users.running("last", rho, active) - promo_a
        used_a = np.minimum(bought, rest)
        purchased = bought.sum(axis=0)
        used = used_a.sum(axis=0)
        left = purchased - used
        overdraft_b = spent_b - promo_b - used
        packs_total = owned.sum(axis=0)
        paying = (owned > 0).sum(axis=0).astype(np.float64)
        prompts = packs_total.copy()
        if big is not None and big.size:
            prompts -= _multi_pack_extra(family, users, big, grant, rho, pack)

    out |= {
        "calls_served": np.rint(served_nb + n[buys].sum()).astype(np.int64),
        "calls_refused": np.rint(n[nb].sum() - served_nb).astype(np.int64),
        "payment_prompts": np.rint(prompts).astype(np.int64),
        "users_blocked": np.rint(blocked_nb).astype(np.int64),
        "users_paying": np.rint(paying).astype(np.int64),
        "credits_used": spent_nb + spent_b,
        "credits_purchased": purchased,
        "promo_consumed": promo,
        "purchased_consumed": used,
        "credits_expired": expired,
        "promo_outstanding": grant * n.size - promo - expired,
        "purchased_outstanding": left,
        "overdraft": overdraft_nb + overdraft_b,
        "packs": np.rint(packs_total).astype(np.int64),
        "cash_in": packs_total * pack_amount,
        "revenue": used * price,
        "deferred_revenue": left * price,
        "provider_cost": cost_nb + sums["C_last"][buys].sum(),
        "promotional_cost": promo_cost,
        "calls_without_unit_costs": np.rint(nocost_nb + sums["no_cost_last"][buys].sum()).astype(
            np.int64
        ),
    }
    return out


def _big_calls(
    family: Family, n: np.ndarray, buyer: np.ndarray, rho_max: float, pack_min: float
) -> np.ndarray:
    """Calls of buyers that may cost more than a pack somewhere in the grid (not a last call).

    Only after such a call can one 402 buy several packs, so that purchases ≠ packs.
    """
    credits_max = rho_max * family.scaled + family.fixed
    user = family.user
    starts = family.first - np.arange(family.first.size) - 1
    last = np.zeros(user.size, dtype=bool)
    nonempty = n > 0
    last[(starts + n - 1)[nonempty]] = True
    return np.flatnonzero(buyer[user] & ~last & (credits_max > pack_min))


def _multi_pack_extra(
    family: Family,
    users: UserSums,
    cand: np.ndarray,
    grant: float,
    rho: np.ndarray,
    pack: np.ndarray,
) -> np.ndarray:
    """Per scenario: packs bought beyond one at a single 402 (n_{j+1} − n_j − 1 after a
    call j dearer than a pack), so that purchases = packs − this."""
    user = family.user[cand]
    starts = family.first[user] - user - 1
    j = (cand - starts)[:, None]
    scaled = family.values("scaled")[cand][:, None]
    fixed = family.values("fixed")[cand][:, None]
    s_prev = family.running(
        family.index(j - 1 + np.zeros(rho.size, np.int64), family.first[user]), rho
    )
    s_j = s_prev + scaled * rho + fixed
    n_pre = users.n_pre[user][:, None]
    g_after = np.minimum(grant, users.running("pre", rho, user))
    g_j = np.where(j < n_pre, grant, g_after)
    g_next = np.where(j + 1 < n_pre, grant, g_after)
    extra = np.maximum(_owned(s_j - g_next, pack) - _owned(s_prev - g_j, pack) - 1, 0)
    per_scenario: np.ndarray = extra.sum(axis=0)  # numpy types a reduction as Any
    return per_scenario


def _owned(deficit: np.ndarray, pack: np.ndarray) -> np.ndarray:
    return np.where(deficit >= 0, np.floor(deficit / pack) + 1, 0).astype(np.int64)


# -- the public grid: every combination, and grids of partitions summed ----------------


def scenario_grid(
    usage: pd.DataFrame | ScenarioBase,
    rates: pd.DataFrame | RateBook | Iterable[Rate] | None,
    margins: Iterable[Any],
    credit_prices: Iterable[Any],
    *,
    grants: Iterable[Any] | None = None,
    expiry: Iterable[Any] | None = None,
    packs: Iterable[Any] | None = None,
    settings: BillingSettings | None = None,
    behaviour: Behaviour | None = None,
    base_credit_price: Any = 1,
    rate_filter: RateFilter | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """KPIs for every combination of margin × credit price (× grant × expiry × pack).

    ``usage`` may be a :class:`ScenarioBase` (then ``rates`` is ignored). ``margins`` are
    markups on cost in % (None = keep the current rates); ``grants`` override the grant
    amount (0 = none), ``expiry`` the expiry days, ``packs`` the pack amount. One row per
    scenario; see this module's docstring for how the work is shared.
    """
    if isinstance(usage, ScenarioBase):
        base = usage
    else:
        if rates is None:
            raise ValidationError("scenario_grid needs the rates", field="rates")
        base = ScenarioBase.build(
            usage,
            rates,
            base_credit_price=base_credit_price,
            rate_filter=rate_filter,
            as_of=as_of,
        )
    margin_list = [None if m is None else validate_margin(m) for m in margins]
    price_list = [validate_credit_price(p) for p in credit_prices]
    if not margin_list or not price_list:
        raise ValidationError("scenario_grid needs at least one margin and one credit price")
    knobs = behaviour or Behaviour()
    gateway = settings or BillingSettings.from_env()
    frames = []
    for grant in list(grants) if grants is not None else [None]:
        for days in list(expiry) if expiry is not None else [None]:
            config = settings_for(gateway, grant, days)
            pack_list = (
                [require_decimal(a, "pack") for a in packs]
                if packs is not None
                else [knobs.pack_amount]
            )
            if knobs.elasticity:
                frames.append(
                    _grid_by_simulation(base, margin_list, price_list, config, knobs, pack_list)
                )
            else:
                frames.append(run_grid(base, margin_list, price_list, config, knobs, pack_list))
    return pd.concat(frames, ignore_index=True)


def _grid_by_simulation(
    base: ScenarioBase,
    margins: list[Decimal | None],
    prices: list[Decimal],
    settings: BillingSettings,
    knobs: Behaviour,
    packs: list[Decimal],
) -> pd.DataFrame:
    # Volume elasticity makes every model's usage scale differently per scenario, which
    # breaks the shared scaling of the fast grid: replay each scenario exactly instead.
    rows = []
    for pack in packs:
        for margin in margins:
            for price in prices:
                result = simulate(
                    base,
                    margin,
                    price,
                    settings=settings,
                    behaviour=dataclasses.replace(knobs, pack_amount=pack),
                )
                rows.append(
                    scenario_row(margin, price, settings, pack)
                    | result.kpis.to_dict()
                    | {"models_below_cost": result.models_below_cost, "rate_rounding": 0.0}
                )
    return pd.DataFrame(rows)


def combine_grids(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Sum grids computed on disjoint user partitions (same scenarios) into one grid.

    The additive KPI columns add up; derived ones (gross margin %, n_402…) are recomputed.
    ``models_below_cost`` and ``rate_rounding`` depend on the rates and the models used:
    the largest partition value is kept (exact when every partition uses every model).
    """
    frames = list(parts)
    if not frames:
        raise ValidationError("combine_grids needs at least one grid")
    params = ["profit_margin", "credit_price", "grant", "expiry_days", "pack_amount", "billing"]
    stacked = pd.concat(frames, keys=range(len(frames)), names=["part", "row"]).reset_index()
    grouped = stacked.groupby("row", sort=True)
    out = grouped[params].first()
    for column in KPI_FIELDS:
        out[column] = grouped[column].sum()
    for column in ("models_below_cost", "rate_rounding"):
        out[column] = grouped[column].max()
    return with_derived_kpis(out.reset_index(drop=True))
