"""Billing replay: the rate timeline, vectorised vs Decimal pricing, the ledger rules.

Hand-computed cases use rates whose credits are exact in binary floats (chat: 0.5 credit
per input token, 1 per output token; images: 4 per image; unit costs are half of that), so
the vectorised replay must hit the numbers exactly.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _billing_data import T0, calls, mixed_rates, simple_rates
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.billing_settings import BillingSettings, payment_required_body
from hubkit.errors import ValidationError
from hubkit.replay import (
    Behaviour,
    Kpis,
    buyer_draws,
    combine_results,
    prepare,
    replay,
    replay_partition,
)
from hubkit.replay.reference import replay_reference
from hubkit.replay.timeline import RateBook, current_rates, price_exact, timeline_from_rates
from hubkit.usage import generate_usage

D = Decimal
SIMPLE = timeline_from_rates(simple_rates())


def billing(grant: float = 0, days: int = 0, *, on: bool = True) -> BillingSettings:
    return BillingSettings(
        credit_based_billing_enabled=on,
        new_user_credit_grant_enabled=grant > 0,
        new_user_credit_grant_amount=D(str(grant)),
        credit_expiration_days=days,
        credit_payment_link="https://pay.example/credits",
    )


BUYER = Behaviour(buy_probability=1.0, pack_amount=D(5))  # 5 money / 0.5 = 10 credits a pack


def user_row(result: object, name: str = "u1") -> pd.Series:
    users = result.users.set_index("user")  # type: ignore[attr-defined]
    return users.loc[name]


def conserved(users: pd.DataFrame, *, billing_on: bool = True) -> None:
    lhs = users["granted"] + users["purchased"]
    rhs = (
        users["promo_consumed"]
        + users["purchased_consumed"]
        + users["expired"]
        + users["promo_outstanding"]
        + users["purchased_outstanding"]
    )
    assert np.allclose(lhs, rhs, rtol=1e-12, atol=1e-9)
    balance = users["promo_outstanding"] + users["purchased_outstanding"] - users["overdraft"]
    assert np.allclose(users["balance"], balance)
    if billing_on:  # with billing off nothing is consumed from a balance
        used = users["promo_consumed"] + users["purchased_consumed"] + users["overdraft"]
        assert np.allclose(users["credits_used"], used, rtol=1e-12, atol=1e-9)


# -- the rate timeline ---------------------------------------------------------------------


def test_timeline_from_rates_and_validation_errors() -> None:
    frame = timeline_from_rates(mixed_rates())
    assert frame["valid_from"].isna().all() and frame["valid_to"].isna().all()
    gpt = frame[frame["model"] == "gpt-4o"].iloc[0]
    assert gpt["cache_read_rate"] == D("0.00125") and gpt["cache_write_rate"] is None
    assert frame[frame["model"] == "llama3"]["unit_cost_input"].iloc[0] is None
    with pytest.raises(ValidationError, match="missing column"):
        RateBook(frame.drop(columns=["input_rate"]))
    bad = frame.copy()
    bad.loc[0, "input_rate"] = "-1"
    with pytest.raises(ValidationError, match="'input_rate', row"):
        RateBook(bad)
    twice = pd.concat([frame.iloc[:1], frame.iloc[:1]], ignore_index=True)
    with pytest.raises(ValidationError, match="overlap"):
        RateBook(twice)
    backwards = frame.iloc[:1].copy()
    backwards["valid_from"] = pd.Timestamp("2025-02-01", tz="UTC")
    backwards["valid_to"] = pd.Timestamp("2025-01-01", tz="UTC")
    with pytest.raises(ValidationError, match="before valid_to"):
        RateBook(backwards)


def _history() -> pd.DataFrame:
    """chat: 0.5/1 until day 1, then 1/2 (and unit costs doubled); img unchanged."""
    frame = SIMPLE.copy()
    day1 = T0 + pd.Timedelta(days=1)
    later = frame.iloc[[0]].copy()
    later["input_rate"], later["output_rate"] = D(1), D(2)
    later["unit_cost_input"], later["unit_cost_output"] = D("0.5"), D(1)
    later["valid_from"] = day1
    frame.loc[0, "valid_to"] = day1
    return pd.concat([frame, later], ignore_index=True)


def test_rate_change_mid_period_prices_each_call_with_the_rate_in_force() -> None:
    usage = calls(
        {"input": 10, "output": 1, "minute": 0},
        {"input": 10, "output": 1, "day": 1},  # exactly at the change: the new rate
        {"input": 10, "output": 1, "day": 2},
    )
    result = replay(usage, _history(), billing(on=False))
    detail = result.calls()
    assert detail["credits"].tolist() == [6.0, 12.0, 12.0]
    assert detail["provider_cost"].tolist() == [3.0, 6.0, 6.0]
    exact = price_exact(usage, _history())
    assert exact["credits"].tolist() == [D("6.0000000000"), D("12.0000000000")] * 1 + [
        D("12.0000000000")
    ]
    assert current_rates(_history())["input_rate"].tolist() == [D(1), D(0)]


def test_calls_without_a_rate_are_unsupported_never_free() -> None:
    usage = calls({"input": 4, "model": "unknown", "minute": 0}, {"input": 4, "minute": 1})
    result = replay(usage, SIMPLE, billing(grant=10))
    k = result.kpis
    assert (k.calls, k.calls_unsupported, k.calls_served, k.credits_used) == (2, 1, 1, 2.0)
    unknown = result.models.set_index("model").loc["unknown"]
    assert unknown["calls_unsupported"] == 1 and unknown["credits"] == 0
    # The unsupported call was the user's first sign-in: the grant dates from it.
    assert user_row(result)["first_seen"] == T0


# -- vectorised pricing against the Decimal reference ----------------------------------------


def test_vectorised_pricing_is_within_the_bound_of_call_credits() -> None:
    rates = mixed_rates()
    usage = generate_usage(rates, n_calls=3_000, n_users=40, seed=11)
    timeline = timeline_from_rates(rates)
    fast = RateBook(timeline).price(usage)
    exact = price_exact(usage, timeline)
    credits = np.array([float(c) for c in exact["credits"]])
    cost = np.array([0.0 if c is None else float(c) for c in exact["cost"]])
    assert (fast.row >= 0).all()
    # Decimal rounds each call to 10 places; the float path does not round and carries
    # ~1e-16 relative error per operation: together ≤ 5e-11 + 1e-14·|credits|.
    bound = 5e-11 + 1e-14 * np.abs(credits)
    assert np.all(np.abs(fast.credits - credits) <= bound)
    assert np.all(np.abs(fast.cost - cost) <= 1e-14 * np.abs(cost) + 1e-15)
    assert (credits > 0).all()


# -- hand-computed ledgers ---------------------------------------------------------------------


def test_grant_then_402_and_negative_balance_after_the_last_served_call() -> None:
    # Credits 3, 4, 5, 1 against a grant of 10: 10 → 7 → 3 → −2 (any positive balance lets
    # the call through), then 402.
    usage = calls(
        {"input": 2, "output": 2, "minute": 0},
        {"input": 4, "output": 2, "minute": 1},
        {"input": 6, "output": 2, "minute": 2},
        {"input": 2, "minute": 3},
    )
    result = replay(usage, SIMPLE, billing(grant=10))
    row = user_row(result)
    assert (row["calls_served"], row["calls_refused"]) == (3, 1)
    assert row["promo_consumed"] == 10 and row["overdraft"] == 2 and row["balance"] == -2
    assert row["credits_used"] == 12 and row["provider_cost"] == 6
    # The grant pays calls 1-2 and 3/5 of call 3: cost 1.5 + 2 + 2.5·3/5.
    assert row["promotional_cost"] == pytest.approx(5.0)
    assert row["revenue"] == 0
    detail = result.calls()
    assert detail["balance_after"].tolist() == [7.0, 3.0, -2.0, -2.0]
    assert detail["status"].tolist() == ["served"] * 3 + ["refused (402)"]
    assert detail["overdraft_credits"].tolist() == [0, 0, 2, 0]
    conserved(result.users)


def test_grant_expiry_removes_only_the_unconsumed_part() -> None:
    usage = calls({"input": 8, "day": 0}, {"input": 6, "day": 2})  # 4 credits, then 3
    result = replay(usage, SIMPLE, billing(grant=10, days=1))
    row = user_row(result)
    assert row["promo_consumed"] == 4 and row["expired"] == 6 and row["calls_refused"] == 1
    assert row["grant_expires"] == T0 + pd.Timedelta(days=1)
    conserved(result.users)
    ledger = result.ledger()
    assert ledger["event"].tolist() == ["grant", "usage", "expire", "refused (402)"]
    assert ledger["balance"].tolist() == [10.0, 6.0, 0.0, 0.0]
    # Not yet expired when the period ends before the expiry: outstanding, not expired.
    early = replay(usage.iloc[:1], SIMPLE, billing(grant=10, days=1))
    assert user_row(early)["expired"] == 0 and user_row(early)["promo_outstanding"] == 6


def test_a_call_at_the_expiry_instant_finds_the_grant_gone() -> None:
    usage = calls({"input": 2, "day": 0}, {"input": 2, "day": 1})
    result = replay(usage, SIMPLE, billing(grant=10, days=1))
    assert user_row(result)["calls_refused"] == 1 and user_row(result)["expired"] == 9


def test_buyer_buys_a_pack_after_expiry_and_revenue_is_recognised_on_use() -> None:
    usage = calls({"input": 8, "day": 0}, {"input": 6, "day": 2})
    result = replay(usage, SIMPLE, billing(grant=10, days=1), credit_price="0.5", behaviour=BUYER)
    row = user_row(result)
    assert row["packs"] == 1 and row["purchased"] == 10 and row["cash_in"] == 5
    assert row["purchased_consumed"] == 3 and row["purchased_outstanding"] == 7
    assert row["revenue"] == 1.5 and row["deferred_revenue"] == 3.5
    assert row["payment_prompts"] == 1 and row["calls_refused"] == 0
    conserved(result.users)
    purchase = result.ledger().query("event == 'purchase'").iloc[0]
    assert purchase["credits"] == 10 and purchase["money"] == 5


def test_packs_repay_an_overdraft_first() -> None:
    # Grant 5; credits 4, 4, 4, 12, 1; packs of 10 credits bought whenever balance ≤ 0.
    # 5 → 1 → −3 | buy → 7 → 3 → −9 | buy → 1 → 0.
    usage = calls(*({"input": 2 * c, "minute": i} for i, c in enumerate([4, 4, 4, 12, 1])))
    result = replay(usage, SIMPLE, billing(grant=5), credit_price="0.5", behaviour=BUYER)
    row = user_row(result)
    assert (row["packs"], row["payment_prompts"]) == (2, 2)
    assert row["purchased_consumed"] == 20 and row["promo_consumed"] == 5
    assert row["overdraft"] == 0 and row["balance"] == 0
    assert result.calls()["packs_bought"].tolist() == [0, 0, 1, 0, 1]
    assert result.calls()["balance_after"].tolist() == [1.0, -3.0, 3.0, -9.0, 0.0]
    conserved(result.users)


def test_one_402_can_buy_several_packs() -> None:
    usage = calls({"input": 50, "minute": 0}, {"input": 2, "minute": 1})  # 25, then 1
    result = replay(usage, SIMPLE, billing(), credit_price="0.5", behaviour=BUYER)
    row = user_row(result)
    # 0 → buy 1 → 10 → −15 → buy 2 → 5 → 4.
    assert (row["packs"], row["payment_prompts"], row["balance"]) == (3, 2, 4)
    assert result.calls()["packs_bought"].tolist() == [1, 2]
    conserved(result.users)


def test_no_grant_no_purchase_means_every_call_is_refused() -> None:
    usage = calls({"input": 2, "minute": 0}, {"input": 2, "minute": 1})
    result = replay(usage, SIMPLE, billing())
    assert result.kpis.calls_refused == 2 and result.kpis.users_blocked == 1
    assert result.kpis.n_402 == 2 and result.kpis.provider_cost == 0
    body = result.payment_required_body(T0)
    assert body["error"]["type"] == "NOT_ENOUGH"
    assert body["error"]["link"] == "https://pay.example/credits"
    assert body["error"]["message"].endswith("link below. https://pay.example/credits")
    assert body["error"]["timestamp"] == "2025-01-01T00:00:00.000Z"


def test_billing_disabled_refuses_nothing_but_still_costs_usage() -> None:
    usage = calls({"input": 20, "minute": 0}, {"input": 20, "minute": 1})
    result = replay(usage, SIMPLE, billing(grant=5, on=False), behaviour=BUYER)
    k = result.kpis
    assert (k.calls_served, k.calls_refused, k.credits_used, k.provider_cost) == (2, 0, 20, 10)
    assert (k.credits_granted, k.packs, k.revenue, k.overdraft) == (0, 0, 0, 0)
    assert k.gross_margin == -10 and np.isnan(k.gross_margin_pct)


def test_settings_come_from_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED", "true")
    monkeypatch.setenv("NEW_USER_CREDIT_GRANT_ENABLED", "true")
    monkeypatch.setenv("NEW_USER_CREDIT_GRANT_AMOUNT", "3")
    result = replay(calls({"input": 6}, {"input": 6, "minute": 1}), SIMPLE)  # 3 → 0 → 402
    assert result.kpis.credits_granted == 3 and result.kpis.calls_refused == 1


def test_models_summary_splits_credits_by_funding_and_flags_below_cost() -> None:
    usage = calls(
        {"input": 8, "minute": 0},
        {"type": "imageGeneration", "images": 2, "minute": 1},
        {"input": 8, "minute": 2},
    )
    result = replay(usage, SIMPLE, billing(grant=6), credit_price="0.5", behaviour=BUYER)
    models = result.models.set_index("model")
    # 6 promo: chat 4 + img 2 of 8; then the img's other 6 overdraw; a pack pays them.
    assert models.loc["chat", "promo_credits"] == 4 and models.loc["img", "promo_credits"] == 2
    assert (
        models["credits"].sum()
        == models[["promo_credits", "purchased_credits", "overdraft_credits"]].sum().sum()
    )
    assert models["revenue"].sum() == pytest.approx(result.kpis.revenue)
    # 0.5 credits × 0.5 per credit < 0.25 unit cost? equal: not below; img 4 × 0.5 = 2 = cost.
    assert not models["below_cost"].any()
    cheap = replay(usage, SIMPLE, billing(grant=6), credit_price="0.25")
    assert cheap.models_below_cost == 2


# -- partitions add up ----------------------------------------------------------------------------


def test_partitions_by_user_add_up_to_the_whole() -> None:
    rates = mixed_rates()
    usage = generate_usage(rates, n_calls=4_000, n_users=60, seed=5)
    timeline = timeline_from_rates(rates)
    settings = billing(grant=2, days=3)
    knobs = Behaviour(buy_probability=0.5, pack_amount=D(1), seed=2)
    as_of = usage["time"].max()
    whole = replay(usage, timeline, settings, credit_price="0.001", behaviour=knobs, as_of=as_of)
    bucket = pd.util.hash_array(usage["user"].astype(str).to_numpy(dtype=object)) % 2
    parts = [
        replay_partition(
            prepare(usage[bucket == b], timeline, as_of=as_of),
            settings,
            credit_price="0.001",
            behaviour=knobs,
        )
        for b in (0, 1)
    ]
    combined = combine_results(parts)
    for field, value in whole.kpis.to_dict().items():
        assert combined.kpis.to_dict()[field] == pytest.approx(value, rel=1e-12), field
    assert len(combined.users) == len(whole.users)
    merged = combined.models.set_index(["provider", "model", "type"]).sort_index()
    alone = whole.models.set_index(["provider", "model", "type"]).sort_index()
    assert np.allclose(merged["credits"], alone["credits"])
    assert (merged["below_cost"] == alone["below_cost"]).all()
    with pytest.raises(ValidationError, match="totals only"):
        combined.calls()


def test_as_of_before_the_last_call_is_refused() -> None:
    with pytest.raises(ValidationError, match="as_of"):
        prepare(calls({"input": 1, "day": 2}), SIMPLE, as_of=T0)


def test_buyer_draws_are_stable_uniforms() -> None:
    names = [f"user-{i}" for i in range(2_000)]
    a, b = buyer_draws(names, 1), buyer_draws(names[::-1], 1)[::-1]
    assert np.array_equal(a, b) and ((a >= 0) & (a < 1)).all()
    assert 0.45 < (a < 0.5).mean() < 0.55
    assert not np.array_equal(a, buyer_draws(names, 2))


# -- vectorised ledger against the Decimal event-by-event reference ------------------------------

_COLUMNS = [
    "calls", "calls_served", "calls_refused", "calls_unsupported", "payment_prompts", "packs",
    "granted", "purchased", "cash_in", "promo_consumed", "purchased_consumed", "expired",
    "promo_outstanding", "purchased_outstanding", "overdraft", "credits_used", "provider_cost",
    "promotional_cost", "revenue", "deferred_revenue",
]  # fmt: skip


def _compare(usage: pd.DataFrame, settings: BillingSettings, knobs: Behaviour, price: str) -> None:
    fast = replay(usage, SIMPLE, settings, credit_price=price, behaviour=knobs)
    slow = replay_reference(usage, SIMPLE, settings, credit_price=price, behaviour=knobs)
    a = fast.users.set_index("user")[_COLUMNS].sort_index()
    b = slow.set_index("user")[_COLUMNS].sort_index().astype(float)
    pd.testing.assert_frame_equal(a.astype(float), b, check_exact=False, rtol=1e-12, atol=1e-9)
    conserved(fast.users, billing_on=settings.credit_based_billing_enabled)
    total = fast.kpis
    assert total.credits_granted + total.credits_purchased == pytest.approx(
        total.credits_consumed + total.credits_expired + total.credits_outstanding
    )


_call = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["a", "b", "c"]),
        "minute": st.integers(0, 4 * 24 * 60),
        "input": st.integers(0, 30),
        "output": st.integers(0, 10),
        "cache_read": st.integers(0, 3),
        "kind": st.sampled_from(["chat", "chat", "chat", "img", "nope"]),
    }
)


def _usage(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        if r["kind"] == "img":
            out.append({**r, "type": "imageGeneration", "images": 1 + r["output"] % 3})
        else:
            out.append({**r, "model": "chat" if r["kind"] == "chat" else "nope"})
    return calls(*out)


@settings(max_examples=60)
@given(
    rows=st.lists(_call, min_size=1, max_size=40),
    grant=st.sampled_from([0, 4, 10, 25]),
    days=st.sampled_from([0, 1, 2]),
    on=st.booleans(),
    buy=st.sampled_from([0.0, 0.5, 1.0]),
    pack=st.sampled_from(["1", "3", "8"]),
    price=st.sampled_from(["0.5", "1", "2"]),
    seed=st.integers(0, 3),
)
def test_vectorised_ledger_matches_the_reference_and_conserves_credits(
    rows: list[dict],
    grant: int,
    days: int,
    on: bool,
    buy: float,
    pack: str,
    price: str,
    seed: int,
) -> None:
    knobs = Behaviour(buy_probability=buy, pack_amount=D(pack), seed=seed)
    _compare(_usage(rows), billing(grant=grant, days=days, on=on), knobs, price)


def test_reference_agrees_on_generated_traffic() -> None:
    rates = mixed_rates()
    timeline = timeline_from_rates(rates)
    usage = generate_usage(rates, n_calls=1_500, n_users=25, days=6, seed=9)
    settings = billing(grant=3, days=2)
    knobs = Behaviour(buy_probability=0.6, pack_amount=D("2"), seed=4)
    fast = replay(usage, timeline, settings, credit_price="0.001", behaviour=knobs)
    slow = replay_reference(usage, timeline, settings, credit_price="0.001", behaviour=knobs)
    a = fast.users.set_index("user")[_COLUMNS].sort_index().astype(float)
    b = slow.set_index("user")[_COLUMNS].sort_index().astype(float)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)
    assert fast.kpis.payment_prompts > 0 and fast.kpis.calls_refused > 0


# -- billing settings ------------------------------------------------------------------------------


def test_billing_settings_from_env_file_and_overrides(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED=true\nNEW_USER_CREDIT_GRANT_ENABLED=yes\n"
        "NEW_USER_CREDIT_GRANT_AMOUNT=2.5\nCREDIT_EXPIRATION_DAYS=30\n"
        "CREDIT_PAYMENT_LINK=https://hub.example/pay\nUNRELATED=1\n"
    )
    from_file = BillingSettings.from_env_file(env)
    assert from_file.grant_amount == D("2.5") and from_file.credit_expiration_days == 30
    assert from_file.payment_link == "https://hub.example/pay"
    # The environment wins over the file.
    mixed = BillingSettings.from_env({"CREDIT_EXPIRATION_DAYS": "0"}, env_file=env)
    assert mixed.credit_expiration_days == 0 and mixed.grant_amount == D("2.5")
    assert BillingSettings.from_env(mixed.to_env()) == mixed
    assert from_file.replace(credit_based_billing_enabled=False).grant_amount == 0
    assert BillingSettings().payment_link.endswith("/checkout/pay/default-credit-link")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED": "maybe"}, "AIGNE_HUB_CREDIT_BASED_BILLING"),
        ({"NEW_USER_CREDIT_GRANT_AMOUNT": "-5"}, "NEW_USER_CREDIT_GRANT_AMOUNT"),
        ({"CREDIT_EXPIRATION_DAYS": "1.5"}, "CREDIT_EXPIRATION_DAYS"),
        ({"CREDIT_EXPIRATION_DAYS": "-1"}, "CREDIT_EXPIRATION_DAYS"),
    ],
)
def test_bad_billing_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        BillingSettings.from_env(env)


def test_unknown_override_and_behaviour_validation() -> None:
    with pytest.raises(ValidationError, match="unknown billing setting"):
        BillingSettings().replace(grant=5)
    with pytest.raises(ValidationError, match="buy_probability"):
        Behaviour(buy_probability=1.5)
    with pytest.raises(ValidationError, match="elasticity"):
        Behaviour(elasticity=-1)
    body = payment_required_body(BillingSettings())
    assert body["error"]["link"] in body["error"]["message"]


def test_kpis_add_and_derive() -> None:
    a = Kpis(revenue=10.0, provider_cost=4.0, calls_refused=1, payment_prompts=2)
    total = a + a
    assert (total.revenue, total.n_402) == (20.0, 6)
    assert total.gross_margin_pct == pytest.approx(60.0)
    assert "gross_margin_pct" in total.to_dict()


def test_ledger_totals_do_not_depend_on_the_user_blocks() -> None:
    from hubkit.replay.ledger import settle, settle_totals

    rates = mixed_rates()
    usage = generate_usage(rates, n_calls=2_000, n_users=30, seed=6)
    result = replay(usage, timeline_from_rates(rates), billing(grant=1, days=2),
                    credit_price="0.001", behaviour=Behaviour(buy_probability=0.5))  # fmt: skip
    calls, policy = result.user_calls, result.policy
    assert calls is not None and policy is not None
    flags = np.zeros(calls.time.size, dtype=bool)
    prepared = result.prepared
    assert prepared is not None
    whole = settle(calls, policy)
    for block in (1, 7, 10_000):
        totals = settle_totals(calls, policy, key=prepared.key, n_keys=len(prepared.book.keys),
                               has_cost=~flags, below_cost=flags, block_calls=block)  # fmt: skip
        for name, values in totals.users.items():
            assert np.allclose(values, getattr(whole, name)), (block, name)
        assert totals.keys["credits"].sum() == pytest.approx(result.kpis.credits_used)


def test_empty_usage_and_users_with_only_unsupported_calls() -> None:
    from hubkit.usage import empty_usage

    nothing = replay(empty_usage(), SIMPLE, billing(grant=5))
    assert (nothing.kpis.calls, len(nothing.users), len(nothing.calls())) == (0, 0, 0)
    # A user whose only calls have no rate still signed in: the grant is given and expires.
    lost = replay(calls({"model": "zzz"}, {"model": "zzz", "day": 3}), SIMPLE, billing(5, 1))
    row = user_row(lost)
    assert (row["calls_unsupported"], row["granted"], row["expired"]) == (2, 5, 5)
    assert row["provider_cost"] == 0.0 and lost.users["provider_cost"].dtype == np.float64
    conserved(lost.users)


def test_credit_is_drawn_earliest_expiry_first_promotional_before_paid_never_last() -> None:
    from hubkit.replay.credit_buckets import CreditBucket, draw_credits

    never = CreditBucket("paid", D("5"), None, 1)
    late_paid = CreditBucket("paid", D("2"), 200, 1)
    late_promo = CreditBucket("promotional", D("1"), 200, 0)
    early = CreditBucket("paid", D("1"), 100, 1)
    taken, unfunded, left = draw_credits([never, late_paid, late_promo, early], D("3.5"))
    # early (1), then the promotional of the two expiring at 200 (1), then its paid (1.5)
    assert taken == {"paid": D("2.5"), "promotional": D("1")} and unfunded == 0
    assert left == [never, late_paid] and late_paid.remaining == D("0.5")
    taken, unfunded, left = draw_credits(left, D("7"))
    assert taken == {"paid": D("5.5")} and unfunded == D("1.5") and left == []
