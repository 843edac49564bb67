"""Scenarios: the bulk-update formula per scenario, the shared-work grid, single scenarios."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from _billing_data import mixed_rates, rate
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.billing_settings import BillingSettings
from hubkit.domain import RateType
from hubkit.errors import ValidationError
from hubkit.pricing import bulk_preview, margin_rate
from hubkit.replay import Behaviour, prepare, replay_partition
from hubkit.replay.timeline import RateArrays, timeline_from_rates
from hubkit.scenarios import (
    ScenarioBase,
    combine_grids,
    margin_rates_vec,
    scenario_grid,
    simulate,
)
from hubkit.usage import generate_usage

D = Decimal
ON = BillingSettings(
    credit_based_billing_enabled=True,
    new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=D(300),
    credit_expiration_days=5,
)
KNOBS = Behaviour(buy_probability=0.5, pack_amount=D("0.2"), seed=3)


def exact_rates() -> list:
    """Unit costs for which cost × (1 + m/100) / p has ≤ 10 places on the test grid, so the
    gateway's rounding changes nothing and the grid must equal the exact replay."""
    return [
        rate(1, "openai", "big", RateType.CHAT_COMPLETION, "0.003", "0.012",
             costs=("0.000002", "0.000008"), caching={"readRate": "0.0003"}),
        rate(2, "openai", "small", RateType.CHAT_COMPLETION, "0.0002", "0.0008",
             costs=("0.0000002", "0.0000008")),
        rate(3, "openai", "img", RateType.IMAGE_GENERATION, "0", "50", costs=("0", "0.04")),
        rate(4, "google", "vid", RateType.VIDEO, "0", "400", costs=("0", "0.4")),
        rate(5, "ollama", "local", RateType.CHAT_COMPLETION, "0.0001", "0.0001"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def base() -> ScenarioBase:
    rates = exact_rates()
    usage = generate_usage(rates, n_calls=12_000, n_users=150, days=12, seed=21)
    return ScenarioBase.build(usage, timeline_from_rates(rates))


MARGINS = [None, D(0), D(10), D(50)]
PRICES = [D("0.001"), D("0.002"), D("0.004")]
INTEGER_KPIS = [
    "calls", "calls_served", "calls_refused", "calls_unsupported", "payment_prompts", "users",
    "users_blocked", "users_paying", "packs", "calls_without_unit_costs", "models_below_cost",
]  # fmt: skip
MONEY_KPIS = [
    "credits_used", "credits_granted", "credits_purchased", "promo_consumed",
    "purchased_consumed", "credits_expired", "promo_outstanding", "purchased_outstanding",
    "overdraft", "cash_in", "revenue", "deferred_revenue", "provider_cost", "promotional_cost",
    "gross_margin",
]  # fmt: skip


def _assert_row_matches(row: pd.Series, kpis: dict) -> None:
    for column in INTEGER_KPIS:
        assert row[column] == kpis[column], column
    for column in MONEY_KPIS:
        assert row[column] == pytest.approx(kpis[column], rel=1e-9, abs=1e-9), column


def _margin(value: object) -> Decimal | None:
    return None if value is None or pd.isna(value) else D(str(value))


# -- the formula ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    cost=st.decimals(min_value=D(0), max_value=D("0.01"), places=12),
    margin=st.decimals(min_value=D(0), max_value=D(300), places=2),
    price=st.sampled_from([D("0.0001"), D("0.001"), D("0.003"), D("0.25"), D(1), D(7)]),
)
def test_vectorised_margin_rate_equals_margin_rate(
    cost: Decimal, margin: Decimal, price: Decimal
) -> None:
    fast = margin_rates_vec(float(cost), float(margin), float(price))
    assert float(fast) == float(margin_rate(cost, margin, price))


def test_vectorised_margin_rate_settles_ties_in_decimal() -> None:
    # 5e-11 sits exactly on a rounding tie: half-up gives 1e-10.
    costs = np.array([5e-11, 1.5e-10, 2.5e-10, 1.0003e-7])
    out = margin_rates_vec(costs, 0, 1)
    assert out.tolist() == [float(margin_rate(str(c), 0, 1)) for c in costs]
    with pytest.raises(ValidationError):
        margin_rates_vec(1e-6, -1, 1)


def test_scenario_rates_are_the_bulk_update(base: ScenarioBase) -> None:
    rates = exact_rates()
    table = base.scenario_rates(D(25), D("0.003")).set_index("model")
    preview = bulk_preview(rates, D(25), D("0.003"))
    for change in preview.changes:
        assert table.loc[change.model, "new_input_rate"] == change.new_input_rate
        assert table.loc[change.model, "new_output_rate"] == change.new_output_rate
    assert {s.model for s in preview.skipped} == {"local"}
    assert table.loc["local", "new_input_rate"] == D("0.0001")  # no unit costs: kept
    assert not table["below_cost"].any()
    kept = base.scenario_rates(None, D("0.0001")).set_index("model")
    assert (kept["new_input_rate"] == kept["old_input_rate"]).all()
    assert kept.loc["big", "below_cost"]  # 0.003 credits × 0.0001 < 0.000002 unit cost


# -- the grid against exact single-scenario replays ------------------------------------------


def test_grid_equals_exact_replays_scenario_by_scenario(base: ScenarioBase) -> None:
    grid = scenario_grid(base, None, MARGINS, PRICES, settings=ON, behaviour=KNOBS)
    assert len(grid) == len(MARGINS) * len(PRICES)
    assert grid["rate_rounding"].max() == 0
    assert grid["payment_prompts"].gt(0).all() and grid["calls_refused"].gt(0).all()
    assert (grid["packs"] > grid["payment_prompts"]).any()  # some 402s bought several packs
    for _, row in grid.iterrows():
        result = simulate(base, _margin(row["profit_margin"]), D(str(row["credit_price"])),
                          settings=ON, behaviour=KNOBS)  # fmt: skip
        kpis = result.kpis.to_dict() | {"models_below_cost": result.models_below_cost}
        _assert_row_matches(row, kpis)


@pytest.mark.parametrize(
    "overrides",
    [
        {"grants": [0, 50], "expiry": [0, 2]},
        {"packs": [D("0.05"), D(3)]},
    ],
)
def test_grid_over_grants_expiry_and_packs(base: ScenarioBase, overrides: dict) -> None:
    grid = scenario_grid(
        base, None, [D(0), D(20)], [D("0.002")], settings=ON, behaviour=KNOBS, **overrides
    )
    for _, row in grid.iterrows():
        result = simulate(
            base,
            _margin(row["profit_margin"]),
            D(str(row["credit_price"])),
            settings=ON,
            behaviour=KNOBS,
            grant=row["grant"] if "grants" in overrides else None,
            expiry_days=int(row["expiry_days"]) if "expiry" in overrides else None,
            pack_amount=D(str(row["pack_amount"])),
        )
        _assert_row_matches(row, result.kpis.to_dict() | {"models_below_cost": 0})


def test_grid_with_billing_off_costs_everything_and_sells_nothing(base: ScenarioBase) -> None:
    off = ON.replace(credit_based_billing_enabled=False)
    grid = scenario_grid(base, None, [D(0), D(30)], [D("0.001")], settings=off, behaviour=KNOBS)
    result = simulate(base, D(30), D("0.001"), settings=off, behaviour=KNOBS)
    _assert_row_matches(grid.iloc[1], result.kpis.to_dict() | {"models_below_cost": 0})
    assert (grid["calls_refused"] == 0).all() and (grid["revenue"] == 0).all()
    # Only the repriced part scales (cache reads at a fixed rate and the no-cost model do not).
    extra = grid["credits_used"].iloc[1] - grid["credits_used"].iloc[0]
    assert extra == pytest.approx(0.3 / 0.001 * base.scaled.sum())


def test_grid_engine_equals_the_per_call_ledger_when_rates_would_round() -> None:
    # Costs with many digits: the grid prices at cost × ρ before rounding. Replaying the
    # same unrounded rates call by call must give the same ledger.
    rates = [
        rate(1, "openai", "a", RateType.CHAT_COMPLETION, "0.003", "0.01",
             costs=("0.0000010003", "0.0000040007")),
        rate(2, "openai", "b", RateType.CHAT_COMPLETION, "0.001", "0.002",
             costs=("0.00000033333", "0.0000011111"), caching={"readRate": "0.0001"}),
    ]  # fmt: skip
    usage = generate_usage(rates, n_calls=6_000, n_users=80, days=10, seed=5)
    scenario = ScenarioBase.build(usage, rates)
    grid = scenario_grid(scenario, None, [D(7)], [D("0.0013")], settings=ON, behaviour=KNOBS)
    assert grid["rate_rounding"].iloc[0] > 0
    rho = float((1 + D(7) / 100) / D("0.0013"))
    frame = scenario.rates
    uc_in = np.array([float(v) for v in frame["unit_cost_input"]])
    uc_out = np.array([float(v) for v in frame["unit_cost_output"]])
    arrays = RateArrays.build(
        kind=scenario.book.kind,
        input_rate=uc_in * rho,
        output_rate=uc_out * rho,
        cache_read_rate=np.array([np.nan if v is None else float(v)
                                  for v in frame["cache_read_rate"]]),
        cache_write_rate=np.full(len(frame), np.nan),
        unit_cost_input=uc_in,
        unit_cost_output=uc_out,
        has_cost=np.ones(len(frame), bool),
    )  # fmt: skip
    result = replay_partition(
        scenario.prepared, ON, credit_price=D("0.0013"), behaviour=KNOBS, rates=arrays,
        rate_index=scenario.prepared.key, below_cost=np.zeros(len(frame) + 1, bool),
    )  # fmt: skip
    _assert_row_matches(grid.iloc[0], result.kpis.to_dict() | {"models_below_cost": 0})


def test_keeping_rates_at_a_lower_credit_price_sells_models_below_cost(
    base: ScenarioBase,
) -> None:
    # Current rates were set at about 0.001 per credit; selling credits at 0.0001 makes every
    # model with unit costs a loss, which the grid counts (repriced rates never are).
    grid = scenario_grid(base, None, [None, D(0)], [D("0.0001")], settings=ON, behaviour=KNOBS)
    assert grid["models_below_cost"].tolist() == [4, 0]
    assert grid["gross_margin"].iloc[0] < grid["gross_margin"].iloc[1]


def test_markup_and_gross_margin_are_different_numbers() -> None:
    rates = [r for r in exact_rates() if r.model in ("small", "img")]
    usage = generate_usage(rates, n_calls=2_000, n_users=30, seed=2)
    off = ON.replace(new_user_credit_grant_enabled=False)
    everyone_buys = Behaviour(buy_probability=1.0, pack_amount=D(1000))
    grid = scenario_grid(usage, rates, [D(25)], [D("0.001")], settings=off, behaviour=everyone_buys)
    row = grid.iloc[0]
    # Every call paid with purchased credits: revenue = cost × 1.25, so a 25 % markup on
    # cost is a 20 % gross margin on revenue.
    assert row["overdraft"] == pytest.approx(0, abs=1e-6)
    assert row["revenue"] == pytest.approx(row["provider_cost"] * 1.25, rel=1e-9)
    assert row["gross_margin_pct"] == pytest.approx(20.0, rel=1e-9)


def test_grid_from_usage_and_rates_and_partition_sums(base: ScenarioBase) -> None:
    rates = exact_rates()
    usage = generate_usage(rates, n_calls=5_000, n_users=90, days=8, seed=8)
    whole = scenario_grid(usage, rates, [D(0), D(40)], PRICES, settings=ON, behaviour=KNOBS)
    bucket = pd.util.hash_array(usage["user"].astype(str).to_numpy(dtype=object)) % 2
    as_of = usage["time"].max()
    timeline = timeline_from_rates(rates)
    parts = [
        scenario_grid(
            ScenarioBase.build(prepare(usage[bucket == b], timeline, as_of=as_of), timeline),
            None, [D(0), D(40)], PRICES, settings=ON, behaviour=KNOBS,
        )
        for b in (0, 1)
    ]  # fmt: skip
    combined = combine_grids(parts)
    for column in INTEGER_KPIS + MONEY_KPIS + ["gross_margin_pct", "n_402"]:
        assert np.allclose(combined[column], whole[column], rtol=1e-9), column


def test_elasticity_moves_volume_against_price(base: ScenarioBase) -> None:
    # The current rates were set for credits sold at 0.001: that is the baseline price.
    today = ScenarioBase.build(base.prepared, base.book, base_credit_price=D("0.001"))
    elastic_knobs = Behaviour(buy_probability=0.5, pack_amount=D("0.2"), seed=3, elasticity=1)
    billing_off = ON.replace(credit_based_billing_enabled=False)

    def cost(margin: Decimal, price: str, knobs: Behaviour) -> float:
        return simulate(
            today, margin, D(price), settings=billing_off, behaviour=knobs
        ).kpis.provider_cost

    # Dearer than today: less usage of the repriced models; cheaper: more.
    assert cost(D(100), "0.001", elastic_knobs) < cost(D(100), "0.001", KNOBS)
    assert cost(D(0), "0.002", elastic_knobs) > cost(D(0), "0.002", KNOBS)
    # Doubling every repriced price with elasticity 1 halves their volume (and cost).
    table = today.scenario_rates(None, D("0.001"))
    factors = today.volume_factors(today.rate_arrays(table), D("0.002"), 1.0)
    assert factors is not None and np.allclose(factors, 0.5)
    grid = scenario_grid(today, None, [D(100)], [D("0.001")], settings=ON, behaviour=elastic_knobs)
    exact = simulate(today, D(100), D("0.001"), settings=ON, behaviour=elastic_knobs)
    assert grid["provider_cost"].iloc[0] == pytest.approx(exact.kpis.provider_cost)


def test_simulate_is_one_exact_replay(base: ScenarioBase) -> None:
    result = simulate(base, D(10), D("0.002"), settings=ON, behaviour=KNOBS)
    assert result.credit_price == D("0.002")
    assert len(result.calls()) == base.prepared.n_calls
    assert result.kpis.calls == base.prepared.n_calls + int(base.prepared.unsupported_user.sum())
    with pytest.raises(ValidationError):
        simulate(base, D(-1), D("0.002"), settings=ON)
    with pytest.raises(ValidationError):
        scenario_grid(base, None, [], [D(1)], settings=ON)


def test_scenarios_use_the_current_rates_of_a_timeline() -> None:
    rates = mixed_rates()
    timeline = timeline_from_rates(rates)
    old = timeline.iloc[[0]].copy()
    old["input_rate"] = D(99)
    old["valid_to"] = pd.Timestamp("2024-12-01", tz="UTC")
    old["valid_from"] = pd.Timestamp("2024-01-01", tz="UTC")
    timeline.loc[0, "valid_from"] = pd.Timestamp("2024-12-01", tz="UTC")
    history = pd.concat([old, timeline], ignore_index=True)
    usage = generate_usage(rates, n_calls=500, n_users=10, seed=1)
    scenario = ScenarioBase.build(usage, history)
    assert len(scenario.rates) == len(rates)
    assert D(99) not in set(scenario.rates["input_rate"])
