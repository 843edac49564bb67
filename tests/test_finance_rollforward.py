"""The credit roll-forward (issue 15): the identity on every generated month, and every figure
equal to an independent computation — the Decimal reference replay
(:mod:`hubkit.replay.reference`, a separate implementation of the gateway's rules) run up to
each month's end, and hand-computed ledgers."""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

import pandas as pd
import pytest
from _billing_data import calls, simple_rates
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.billing_settings import BillingSettings
from hubkit.decimals import EXACT
from hubkit.errors import ValidationError
from hubkit.finance import (
    file_events,
    month_bounds,
    parse_month,
    read_credit_ledger,
    replay_events,
    roll_forward,
    validate_credit_ledger,
)
from hubkit.replay import Behaviour, timeline_from_rates
from hubkit.replay.reference import replay_reference

D = Decimal
SIMPLE = timeline_from_rates(simple_rates())  # chat: 0.5 in, 1 out; img: 4 per image
ONE_NS = pd.Timedelta(1, "ns")


def billing(grant: int = 0, days: int = 0, on: bool = True) -> BillingSettings:
    return BillingSettings(
        credit_based_billing_enabled=on,
        new_user_credit_grant_enabled=grant > 0,
        new_user_credit_grant_amount=grant,
        credit_expiration_days=days,
    )


def _sum(frame: pd.DataFrame, column: str) -> Decimal:
    with localcontext(EXACT):
        return sum((D(v) for v in frame[column]), D(0))


# ---- the identity and the reference, on generated months -----------------------------------
_call = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["a", "b", "c", "d"]),
        # three months from 2025-01-01: month ends, expiries and first calls fall anywhere
        "minute": st.integers(0, 89 * 24 * 60),
        "input": st.integers(0, 30),
        "output": st.integers(0, 10),
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


def _check_against_reference(
    usage: pd.DataFrame, settings_: BillingSettings, knobs: Behaviour, price: str
) -> pd.DataFrame:
    last_month = parse_month(usage["time"].max().strftime("%Y-%m"))
    as_of = month_bounds(last_month)[1] - ONE_NS
    events = replay_events(
        usage, SIMPLE, settings_, credit_price=price, behaviour=knobs, as_of=as_of
    )
    rolled = roll_forward(events, credit_price=price)
    cohorts = roll_forward(events, credit_price=price, by_cohort=True)
    with localcontext(EXACT):  # our sums are exact: check them exactly
        _check_months(usage, settings_, knobs, price, rolled, cohorts)
    return rolled


def _check_months(
    usage: pd.DataFrame, settings_: BillingSettings, knobs: Behaviour, price: str,
    rolled: pd.DataFrame, cohorts: pd.DataFrame,
) -> None:  # fmt: skip
    cumulative = {k: D(0) for k in ("granted", "purchased", "expired", "promo", "paid", "cash",
                                    "cost", "promo_cost", "consumed")}  # fmt: skip
    previous_close = D(0)
    cumulative_rows: list[str] = []
    for row in rolled.itertuples(index=False):
        # the identity, to the last decimal, and months chain
        assert row.opening + row.granted + row.purchased - row.consumed - row.expired == (
            row.closing
        )
        assert row.difference == 0
        assert row.opening == previous_close
        previous_close = row.closing
        # the cohorts of a month add up to the month
        mine = cohorts[cohorts["month"] == row.month]
        for column in ("opening", "granted", "purchased", "consumed", "expired", "closing"):
            assert _sum(mine, column) == getattr(row, column), (row.month, column)
        cumulative_rows.append(row.month)
        cumulative["granted"] += row.granted
        cumulative["purchased"] += row.purchased
        cumulative["expired"] += row.expired
        cumulative["promo"] += row.consumed_promotional
        cumulative["paid"] += row.consumed_paid + row.settled
        cumulative["cash"] += row.cash_in
        cumulative["cost"] += row.provider_cost
        cumulative["promo_cost"] += row.promotional_cost
        cumulative["consumed"] += row.consumed
        # independent: the reference replay of the calls up to this month's end
        end = month_bounds(row.month)[1]
        upto = usage[usage["time"] < end]
        if upto.empty:
            assert row.closing == 0
            continue
        ref = replay_reference(
            upto, SIMPLE, settings_, credit_price=price, behaviour=knobs, as_of=end - ONE_NS
        )
        assert row.closing_promotional == _sum(ref, "promo_outstanding")
        assert row.closing_paid == _sum(ref, "purchased_outstanding")
        assert row.closing_overdraft == _sum(ref, "overdraft")
        # money rounded once to 10 places: within one unit of the 10th place
        assert abs(row.deferred_revenue - _sum(ref, "deferred_revenue")) <= D("1E-10")
        assert cumulative["granted"] == _sum(ref, "granted")
        assert cumulative["purchased"] == _sum(ref, "purchased")
        assert cumulative["expired"] == _sum(ref, "expired")
        assert cumulative["promo"] == _sum(ref, "promo_consumed")
        assert cumulative["paid"] == _sum(ref, "purchased_consumed")
        # money is rounded to 10 places per month: the sum of months within a unit per month
        slack = D(len(cumulative_rows) + 1) * D("1E-10")
        assert abs(cumulative["cash"] - _sum(ref, "cash_in")) <= slack
        assert abs(cumulative["cost"] - _sum(ref, "provider_cost")) <= slack
        assert abs(cumulative["promo_cost"] - _sum(ref, "promotional_cost")) <= slack
        if settings_.credit_based_billing_enabled:
            assert cumulative["consumed"] == _sum(ref, "credits_used")


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(_call, min_size=1, max_size=40),
    grant=st.sampled_from([0, 4, 10, 25]),
    days=st.sampled_from([0, 1, 20, 45]),
    on=st.booleans(),
    buy=st.sampled_from([0.0, 0.5, 1.0]),
    pack=st.sampled_from(["1", "3", "8"]),
    # prices whose packs buy a whole number of 10-place credits, so the reference (which
    # keeps 1 / 0.003 as a 60-digit fraction) and the ledger agree exactly
    price=st.sampled_from(["0.5", "1", "0.002", "0.0025"]),
    seed=st.integers(0, 3),
)
def test_the_identity_holds_and_every_month_matches_the_reference_replay(
    rows: list[dict], grant: int, days: int, on: bool, buy: float, pack: str, price: str,
    seed: int,
) -> None:  # fmt: skip
    knobs = Behaviour(buy_probability=buy, pack_amount=D(pack), seed=seed)
    _check_against_reference(_usage(rows), billing(grant, days, on), knobs, price)


def test_a_month_by_hand_grant_expiry_purchase_and_overdraft() -> None:
    # user a: grant 10 on Jan 30 (expires after 5 days: Feb 4), uses 3 + 2 in January;
    # on Feb 10 the grant has expired (5 lost); a buyer: buys one pack (8 credits at price 1),
    # uses 9 → 1 credit of overdraft at the end of February; in March buys again (8), of
    # which 1 settles the overdraft, then uses 4.
    usage = calls(
        {"user": "a", "day": 29, "input": 6},  # 3 credits (0.5 per input token)
        {"user": "a", "day": 29, "minute": 5, "output": 2},  # 2 credits
        {"user": "a", "day": 40, "output": 9},  # Feb 10: 9 credits
        {"user": "a", "day": 60, "output": 4},  # Mar 2: 4 credits
    )
    knobs = Behaviour(buy_probability=1.0, pack_amount=D(8))
    rolled = _check_against_reference(usage, billing(10, 5), knobs, "1")
    jan, feb, mar = (
        rolled[rolled["month"] == m].iloc[0] for m in ("2025-01", "2025-02", "2025-03")
    )
    assert (jan.opening, jan.granted, jan.consumed, jan.expired, jan.closing) == (0, 10, 5, 0, 5)
    assert (feb.opening, feb.expired, feb.purchased, feb.consumed, feb.closing) == (5, 5, 8, 9, -1)
    assert (feb.closing_paid, feb.closing_overdraft, feb.consumed_overdraft) == (0, 1, 1)
    assert feb.deferred_revenue == 0 and feb.recognised_revenue == 8 and feb.cash_in == 8
    assert (mar.purchased, mar.settled, mar.consumed, mar.closing) == (8, 1, 4, 3)
    assert mar.recognised_revenue == 5  # 1 settled + 4 used, paid credit
    assert mar.deferred_revenue == 3 and mar.closing_paid == 3
    # provider cost of the promotional credits: the January calls (chat costs 0.25 / 0.5)
    assert jan.promotional_cost == D("1.5") + D("1.0") and jan.provider_cost == D("2.5")


def test_cohorts_are_the_month_of_first_call() -> None:
    usage = calls({"user": "a", "day": 1, "input": 2}, {"user": "b", "day": 33, "input": 4},
                  {"user": "a", "day": 34, "input": 2})  # fmt: skip
    events = replay_events(usage, SIMPLE, billing(10), as_of="2025-02-28T23:59:59Z")
    cohorts = roll_forward(events, months=["2025-02"], by_cohort=True)
    assert list(cohorts["cohort"]) == ["2025-01", "2025-02"]
    jan_users, feb_users = cohorts.iloc[0], cohorts.iloc[1]
    assert (jan_users.opening, jan_users.granted, jan_users.consumed) == (9, 0, 1)
    assert (feb_users.opening, feb_users.granted, feb_users.consumed) == (0, 10, 2)


def test_a_price_with_no_finite_credit_count_still_rolls_forward_exactly() -> None:
    # 1 / 0.003 credits per currency unit: a pack of 1 buys 333.3333333333 credits (10 places)
    usage = calls(*({"user": "a", "day": d, "input": 200} for d in range(0, 80, 3)))
    knobs = Behaviour(buy_probability=1.0, pack_amount=D(1))
    events = replay_events(usage, SIMPLE, billing(10, 1), credit_price="0.003", behaviour=knobs)
    bought = events[events["event"] == "purchase"]
    assert len(bought) > 1 and set(bought["credits"]) == {D("333.3333333333")}
    rolled = roll_forward(events, credit_price="0.003")
    assert len(rolled) == 3 and (rolled["difference"] == 0).all()
    for row in rolled.itertuples(index=False):
        assert row.opening + row.granted + row.purchased - row.consumed - row.expired == (
            row.closing
        )


def test_money_is_valued_at_the_credit_price() -> None:
    usage = calls({"user": "a", "input": 4})
    events = replay_events(
        usage, SIMPLE, billing(10), credit_price="0.002", as_of="2025-01-31T23:59:59Z"
    )
    (row,) = roll_forward(events, credit_price="0.002").itertuples(index=False)
    assert row.granted_money == D("0.020") and row.consumed_money == D("0.004")
    assert row.closing_money == D("0.016") and row.recognised_revenue == 0


def test_month_parameter_is_checked() -> None:
    assert str(parse_month("2026-11")) == "2026-11"
    start, end = month_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00",
    )  # fmt: skip
    for bad in ("", "November", "2026-13", None):
        with pytest.raises(ValidationError, match="month must look like 2026-11"):
            parse_month(bad)


# ---- a grants / purchases ledger file --------------------------------------------------------
def _ledger(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_ledger_file_consumption_order_expiring_first_promotional_on_a_tie() -> None:
    ledger = _ledger(
        {"time": "2025-01-01T00:00:00Z", "user": "a", "kind": "purchase", "credits": "10",
         "amount": "5"},
        {"time": "2025-01-01T00:00:00Z", "user": "a", "kind": "grant", "credits": "3",
         "expires_at": "2025-03-01T00:00:00Z"},
        {"time": "2025-01-01T00:00:00Z", "user": "a", "kind": "purchase", "credits": "4",
         "expires_at": "2025-03-01T00:00:00Z"},
        {"time": "2025-01-01T00:00:00Z", "user": "a", "kind": "grant", "credits": "2",
         "expires_at": "2025-02-01T00:00:00Z"},
    )  # fmt: skip
    # 2 + 3 + 4 + 1 = 10 credits used, in this order: the grant expiring first, then the tie
    # on March 1 (promotional before paid), then the never-expiring purchase
    usage = calls({"user": "a", "day": 2, "input": 20})
    events = file_events(usage, SIMPLE, ledger, as_of="2025-03-31T23:59:59Z")
    use = events[events["event"] == "use"].iloc[0]
    assert (use.promotional, use.paid, use.overdraft) == (D(-5), D(-5), D(0))
    rolled = roll_forward(events)
    jan = rolled.iloc[0]
    assert (jan.granted, jan.purchased, jan.consumed, jan.closing) == (5, 14, 10, 9)
    assert jan.cash_in == D("5") + D("4")  # the second purchase: credits × price 1
    assert rolled["expired"].sum() == 0  # nothing was left to expire
    assert rolled.iloc[-1].closing_paid == 9


def test_ledger_file_stored_credits_win_and_new_credit_settles_an_overdraft() -> None:
    ledger = _ledger(
        {"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "1",
         "expires_at": "2025-01-20"},
        {"time": "2025-02-03", "user": "a", "kind": "purchase", "credits": "10"},
    )  # fmt: skip
    usage = calls({"user": "a", "day": 1, "input": 2}, {"user": "a", "day": 2, "input": 2})
    usage["stored_credits"] = [D("1.00000000"), D("0.50000000")]  # the gateway charged these
    events = file_events(usage, SIMPLE, ledger, as_of="2025-02-28T23:59:59Z")
    jan, feb = roll_forward(events).itertuples(index=False)
    assert (jan.granted, jan.consumed, jan.closing, jan.closing_overdraft) == (
        1,
        D("1.5"),
        D("-0.5"),
        D("0.5"),
    )
    assert (feb.purchased, feb.settled, feb.closing, feb.closing_paid) == (
        10,
        D("0.5"),
        D("9.5"),
        D("9.5"),
    )
    assert feb.recognised_revenue == D("0.5") and feb.deferred_revenue == D("9.5")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"time": "2025-01-01", "user": "a", "credits": "1"}], "missing column"),
        ([{"time": "2025-01-01", "user": "a", "kind": "gift", "credits": "1"}],
         "row 1, column 'kind'"),
        ([{"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "-1"}],
         "column 'credits'"),
        ([{"time": "soon", "user": "a", "kind": "grant", "credits": "1"}], "is not a time"),
        ([{"time": "2025-01-01", "user": "", "kind": "grant", "credits": "1"}], "not a user"),
        ([{"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "1",
           "expires_at": "2024-12-01"}], "must be after time"),
        ([{"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "1", "amount": "3"}],
         "a grant is free"),
        ([{"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "1", "id": "g1"},
          {"time": "2025-01-02", "user": "b", "kind": "grant", "credits": "1", "id": "g1"}],
         "more than once"),
        ([{"time": "2025-01-01", "user": "a", "kind": "grant", "credits": "1", "who": "x"}],
         "unknown column"),
    ],
)  # fmt: skip
def test_a_malformed_ledger_is_refused_with_what_to_fix(rows: list[dict], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        validate_credit_ledger(pd.DataFrame(rows))
    assert "time, user, kind" in str(info.value)  # the expected shape is named


def test_a_ledger_file_is_read_and_a_broken_one_refused(tmp_path: Path) -> None:
    good = tmp_path / "grants.csv"
    good.write_text("time,user,kind,credits,amount,expires_at,id\n"
                    "2025-01-01T00:00:00Z,a,grant,5,,2025-02-01T00:00:00Z,g1\n"
                    "2025-01-03T00:00:00Z,a,purchase,100,1.5,,p1\n")  # fmt: skip
    frame = read_credit_ledger(good, credit_price="0.015")
    assert list(frame["credits"]) == [D(5), D(100)] and frame["amount"].iloc[1] == D("1.5")
    assert pd.isna(frame["expires_at"].iloc[1])
    with pytest.raises(ValidationError, match="credit ledger not found"):
        read_credit_ledger(tmp_path / "missing.csv")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValidationError, match="credit ledger"):
        read_credit_ledger(broken)
