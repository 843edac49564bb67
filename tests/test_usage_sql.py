"""The SQL usage table and its pushed-down aggregations, on SQLite and PostgreSQL.

The reference is the Decimal rule itself (:func:`hubkit.replay.timeline.price_exact`, i.e.
``call_credits`` per call): PostgreSQL's NUMERIC sums must equal it exactly; SQLite's float
sums within ``SQLITE_RTOL``; the vectorised pandas path within its stated bound.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _billing_data import T0, calls, rate
from _scale_data import CHANGE, VIDEO_FROM, history_timeline, scale_usage
from _stores import seed_rates
from sqlalchemy import Engine, create_engine, inspect

from hubkit.billing_settings import BillingSettings
from hubkit.decimals import ZERO
from hubkit.domain import RateType
from hubkit.errors import ValidationError
from hubkit.replay import replay
from hubkit.replay.aggregate import ROUNDING_PER_CALL, aggregate_usage_frame
from hubkit.replay.timeline import load_rate_timeline, price_exact, timeline_from_rates
from hubkit.store import Store
from hubkit.store.engine import schema_is_current
from hubkit.store.schema import Base
from hubkit.usage.schema import USAGE_COLUMNS
from hubkit.usage.sql import (
    DIMENSIONS,
    SQLITE_RTOL,
    aggregate_usage,
    create_usage_tables,
    is_exact,
    load_usage,
    usage_table,
    usage_totals,
)

D = Decimal


@pytest.fixture
def engine(db_url: str) -> Any:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _reference(usage: pd.DataFrame, timeline: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Decimal sums of call_credits and of the exact cost, grouped in plain Python."""
    exact = price_exact(usage, timeline)
    frame = usage.assign(
        credits_=exact["credits"].map(lambda v: ZERO if v is None else v),
        cost_=exact["cost"].map(lambda v: ZERO if v is None else v),
        unsupported_=(exact["row"] < 0).astype(int),
        day=usage["time"].dt.date,
    )
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in frame.itertuples(index=False):
        key = tuple(str(getattr(row, d)) if d != "day" else row.day for d in by)
        acc = sums.setdefault(key, [0, 0, ZERO, ZERO])
        acc[0] += 1
        acc[1] += row.unsupported_
        acc[2] += row.credits_
        acc[3] += row.cost_
    out = pd.DataFrame(
        [(*k, *v) for k, v in sorted(sums.items())],
        columns=[*by, "calls", "calls_unsupported", "credits", "provider_cost"],
    )
    return out


def _check_amounts(got: pd.Series, want: pd.Series, engine: Engine) -> None:
    if is_exact(engine):
        assert all(isinstance(v, Decimal) for v in got)
        assert got.tolist() == want.tolist()  # NUMERIC: exactly the Decimal rule
    else:
        a, b = got.astype(float).to_numpy(), want.astype(float).to_numpy()
        assert np.allclose(a, b, rtol=SQLITE_RTOL, atol=1e-12)


def _same(got: Any, want: Decimal, engine: Engine) -> bool:
    if is_exact(engine):
        return isinstance(got, Decimal) and got == want
    return isinstance(got, float) and got == pytest.approx(float(want), rel=SQLITE_RTOL)


def test_the_tables_are_the_stores_made_by_its_migrations(engine: Engine, db_url: str) -> None:
    assert usage_table.metadata is Base.metadata  # migrated with the store, no create_all
    # the usage columns, then the gateway's id and stored credits of imported calls
    assert [c.name for c in usage_table.columns] == [
        "id", *USAGE_COLUMNS, "source_id", "stored_credits",
    ]  # fmt: skip
    with Store.open(db_url) as store:  # the team database: the store's migrated schema
        seed_rates(store, 2, ["openai"])
    names = set(inspect(engine).get_table_names())
    assert {"usage", "usage_rate_periods", "model_rates", "rate_history"} <= names
    create_usage_tables(engine)  # already current: nothing to do
    assert load_usage(engine, calls({"input": 5})) == 1
    with Store.open(db_url, read_only=True) as store:  # the store still opens read-only
        assert len(store.list_rates()) == 2


def test_loading_into_an_empty_database_migrates_it_first(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    assert load_usage(engine, calls({"input": 5}, {"input": 7, "minute": 1})) == 2
    assert schema_is_current(engine)
    assert usage_totals(engine).calls == 2


@pytest.mark.parametrize("by", [["model", "day", "user"], ["provider", "model", "type"], []])
def test_grouped_sums_equal_the_decimal_rule(engine: Engine, by: list[str]) -> None:
    usage = scale_usage(n_calls=2_500, n_users=60, seed=11)
    timeline = history_timeline()
    assert load_usage(engine, usage, chunk_rows=1_000) == len(usage)
    assert load_rate_timeline(engine, timeline) == len(timeline)
    got = aggregate_usage(engine, by)
    want = _reference(usage, timeline, by)
    assert len(got) == len(want)
    for column in [*by, "calls", "calls_unsupported"]:
        assert got[column].tolist() == want[column].tolist(), column
    _check_amounts(got["credits"], want["credits"], engine)
    _check_amounts(got["provider_cost"], want["provider_cost"], engine)
    if "day" in by:
        assert all(isinstance(v, dt.date) for v in got["day"])
    for column in ("input_tokens", "images", "calls_without_unit_costs"):
        assert got[column].dtype == np.int64
    assert int(got["images"].sum()) == int(usage["images"].sum())


def test_the_rate_in_force_prices_each_call(engine: Engine) -> None:
    timeline = history_timeline()
    usage = calls(
        # gpt-4o at 0.0025 before the change, 0.003 after; cache reads at their own rate
        {"provider": "openai", "model": "gpt-4o", "input": 1_000, "output": 100,
         "cache_read": 40, "day": 2},
        {"provider": "openai", "model": "gpt-4o", "input": 1_000, "output": 100,
         "minute": int((CHANGE - T0).total_seconds() // 60)},
        # veo-2 before its first rate: unsupported, never priced; after: 4.5 s of video
        {"provider": "google", "model": "veo-2", "type": "video", "seconds": 4.5},
        {"provider": "google", "model": "veo-2", "type": "video", "seconds": 4.5,
         "minute": int((VIDEO_FROM - T0).total_seconds() // 60)},
        # images ignore tokens; llama3 has no unit costs
        {"provider": "openai", "model": "dall-e-3", "type": "imageGeneration", "images": 2,
         "input": 999},
        {"provider": "ollama", "model": "llama3", "input": 10, "output": 10},
    )  # fmt: skip
    load_usage(engine, usage)
    load_rate_timeline(engine, timeline)
    got = aggregate_usage(engine, ["model"]).set_index("model")
    assert _same(got.loc["gpt-4o", "credits"], D("7.55"), engine)  # 2.5+1+0.05, then 3+1
    assert got.loc["veo-2", "calls"] == 2 and got.loc["veo-2", "calls_unsupported"] == 1
    assert _same(got.loc["veo-2", "credits"], D("2250"), engine)  # 4.5 s × 500
    assert _same(got.loc["dall-e-3", "credits"], D("80"), engine)
    assert got.loc["llama3", "calls_without_unit_costs"] == 1
    assert got.loc["llama3", "provider_cost"] == 0
    assert _same(got.loc["veo-2", "provider_cost"], D("2.25"), engine)
    totals = usage_totals(engine)
    assert (totals.calls, totals.calls_unsupported, totals.users) == (6, 1, 1)


def test_credits_are_rounded_per_call_half_up(engine: Engine) -> None:
    # 3 tokens × 0.00000000005 = 1.5e-10 → 2e-10 per call (ROUND_HALF_UP), 4e-10 for two
    # calls; summing first and rounding once would give 3e-10.
    timeline = timeline_from_rates(
        [rate(1, "openai", "tiny", RateType.CHAT_COMPLETION, "0.00000000005", "0")]
    )
    usage = calls({"model": "tiny", "input": 3}, {"model": "tiny", "input": 3, "minute": 1})
    load_usage(engine, usage)
    load_rate_timeline(engine, timeline)
    assert _same(usage_totals(engine).credits, D("4E-10"), engine)


def test_since_until_and_dimensions(engine: Engine) -> None:
    usage = scale_usage(n_calls=1_500, n_users=30, seed=2)
    load_usage(engine, usage)
    load_rate_timeline(engine, history_timeline())
    day2 = T0 + pd.Timedelta(days=2)
    window = aggregate_usage(engine, ["day"], since=day2, until=day2 + pd.Timedelta(days=1))
    assert window["day"].tolist() == [dt.date(2025, 1, 3)]
    inside = ((usage["time"] >= day2) & (usage["time"] < day2 + pd.Timedelta(days=1))).sum()
    assert window["calls"].iloc[0] == inside
    by_app = aggregate_usage(engine, ["app"])
    assert by_app["calls"].sum() == len(usage)
    with pytest.raises(ValidationError, match="cannot group usage by 'tokens'"):
        aggregate_usage(engine, ["tokens"])
    assert set(DIMENSIONS) >= {"model", "day", "user"}


def test_the_pandas_twin_and_the_billing_off_replay_agree_with_sql(engine: Engine) -> None:
    usage = scale_usage(n_calls=3_000, n_users=50, seed=9)
    timeline = history_timeline()
    load_usage(engine, usage)
    load_rate_timeline(engine, timeline)
    by = ["provider", "model", "type", "user"]
    in_db = aggregate_usage(engine, by)
    in_memory = aggregate_usage_frame(usage, timeline, by)
    assert list(in_memory.columns) == list(in_db.columns)
    assert in_memory[by].astype(str).equals(in_db[by].astype(str))
    counts = [
        "calls", "calls_unsupported", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "images", "calls_without_unit_costs",
    ]  # fmt: skip
    assert (in_memory[counts].to_numpy() == in_db[counts].to_numpy()).all()
    credits = in_db["credits"].astype(float).to_numpy()
    bound = 1e-9 * credits + ROUNDING_PER_CALL * in_db["calls"].to_numpy()
    assert (np.abs(in_memory["credits"].to_numpy() - credits) <= bound).all()
    cost = in_db["provider_cost"].astype(float).to_numpy()
    assert np.allclose(in_memory["provider_cost"], cost, rtol=1e-9, atol=1e-15)
    kpis = replay(usage, timeline, BillingSettings()).kpis
    totals = usage_totals(engine)
    assert (totals.calls, totals.calls_unsupported, totals.users) == (
        kpis.calls, kpis.calls_unsupported, kpis.users,
    )  # fmt: skip
    assert totals.calls_without_unit_costs == kpis.calls_without_unit_costs
    assert abs(float(totals.credits) - kpis.credits_used) <= (
        1e-9 * kpis.credits_used + ROUNDING_PER_CALL * kpis.calls
    )


def test_store_history_prices_usage_in_the_same_database(db_url: str, engine: Engine) -> None:
    """Usage in the team database, priced with the store's own rate history."""
    with Store.open(db_url) as store:
        (created,) = seed_rates(store, 1, ["openai"])
        store.update_rate(created.id, created.version, input_rate=D("0.00000005"))
        timeline = store.rate_timeline()
    change = timeline["valid_to"].dropna().iloc[0]
    usage = calls(
        {"model": created.model, "input": 1_000_000},
        {"model": created.model, "input": 1_000_000},
    )
    usage["time"] = [change - pd.Timedelta(hours=1), change + pd.Timedelta(seconds=1)]
    load_usage(engine, usage)
    load_rate_timeline(engine, timeline)
    totals = usage_totals(engine)
    assert totals.calls_unsupported == 0
    want = D(1_000_000) * created.input_rate + D(1_000_000) * D("0.00000005")
    assert _same(totals.credits, want, engine)


def test_empty_table_sums_to_zero(engine: Engine) -> None:
    create_usage_tables(engine)
    totals = usage_totals(engine)
    assert (totals.calls, totals.users, totals.calls_unsupported) == (0, 0, 0)
    assert totals.credits == 0 and totals.provider_cost == 0
    assert len(aggregate_usage(engine, ["model"])) == 0
