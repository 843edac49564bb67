"""Plotly figures: each returns a Figure built from the numbers it is given."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from _billing_data import calls, simple_rates

from hubkit import charts
from hubkit.billing_settings import BillingSettings
from hubkit.errors import ValidationError
from hubkit.replay import Behaviour, ReplayResult, replay
from hubkit.replay.timeline import timeline_from_rates
from hubkit.scenarios import scenario_grid

D = Decimal
SETTINGS = BillingSettings(
    credit_based_billing_enabled=True,
    new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=D(10),
    credit_expiration_days=1,
)


@pytest.fixture(scope="module")
def result() -> ReplayResult:
    usage = calls(
        {"input": 8, "day": 0, "user": "ann"},
        {"input": 6, "day": 2, "user": "ann"},
        {"input": 30, "minute": 5, "user": "bob"},
        {"input": 4, "minute": 9, "user": "bob"},
        {"type": "imageGeneration", "images": 1, "minute": 20, "user": "bob"},
    )
    knobs = Behaviour(buy_probability=1.0, pack_amount=D(5))
    return replay(usage, timeline_from_rates(simple_rates()), SETTINGS, credit_price="0.5",
                  behaviour=knobs)  # fmt: skip


def test_margin_heatmap_lays_out_markup_by_price() -> None:
    usage = calls({"input": 10}, {"input": 10, "minute": 1, "user": "u2"})
    grid = scenario_grid(
        usage, simple_rates(), [None, D(0), D(50)], [D("0.5"), D(1)], settings=SETTINGS
    )
    fig = charts.margin_heatmap(grid)
    heat = fig.data[0]
    assert isinstance(fig, go.Figure) and isinstance(heat, go.Heatmap)
    assert list(heat.y) == ["current rates", "0.0", "50.0"] and list(heat.x) == ["0.5", "1"]
    assert "markup" in fig.layout.yaxis.title.text
    assert "share" not in fig.layout.yaxis.title.text
    assert "gross margin (% of revenue)" in fig.layout.title.text
    revenue = charts.margin_heatmap(grid, value="revenue").data[0].z
    assert revenue.shape == (3, 2)
    with pytest.raises(ValidationError, match="needs column"):
        charts.margin_heatmap(grid, value="nope")


def test_revenue_vs_cost_by_model_marks_models_below_cost(result: ReplayResult) -> None:
    fig = charts.revenue_vs_cost_by_model(result)
    revenue, cost, margin = fig.data
    models = result.models.sort_values("provider_cost", ascending=False)
    assert list(revenue.y) == models["revenue"].tolist()
    assert list(cost.y) == models["provider_cost"].tolist()
    assert list(margin.y) == (models["revenue"] - models["provider_cost"]).tolist()
    cheap = replay(calls({"input": 4}), timeline_from_rates(simple_rates()), SETTINGS,
                   credit_price="0.25")  # fmt: skip
    assert charts.revenue_vs_cost_by_model(cheap).data[0].x[0].startswith("⚠")


def test_ledger_waterfall_closes_on_outstanding(result: ReplayResult) -> None:
    fig = charts.ledger_waterfall(result)
    bars = fig.data[0]
    k = result.kpis
    assert list(bars.x) == ["granted", "purchased", "consumed", "expired", "outstanding"]
    assert list(bars.y) == pytest.approx(
        [k.credits_granted, k.credits_purchased, -k.credits_consumed, -k.credits_expired,
         k.credits_outstanding]
    )  # fmt: skip
    assert list(bars.measure)[-1] == "total"


def test_balance_over_time_follows_the_ledger(result: ReplayResult) -> None:
    fig = charts.balance_over_time(result, ["ann"])
    line = fig.data[0]
    ledger = result.ledger().query("user == 'ann'")
    assert list(line.y) == ledger["balance"].tolist() and line.name == "ann"
    assert line.mode == "lines" and line.line.shape == "hv"  # a step per event
    assert list(line.text) == ledger["event"].tolist()  # every event in the hover
    assert len(charts.balance_over_time(result).data) == 2  # both users by default


def test_refusals_over_time_counts_402s(result: ReplayResult) -> None:
    fig = charts.refusals_over_time(result)
    refused, bought = fig.data
    assert sum(refused.y) == result.kpis.calls_refused
    assert sum(bought.y) == result.kpis.payment_prompts
    assert sum(bought.y) > 0


def test_write_figure_writes_html_and_png_only_with_kaleido(
    tmp_path: Path, result: ReplayResult
) -> None:
    written = charts.write_figure(charts.ledger_waterfall(result), tmp_path / "figs" / "ledger")
    assert written[0] == tmp_path / "figs" / "ledger.html"
    html = written[0].read_text(encoding="utf-8")
    assert "plotly" in html.lower() and "outstanding" in html
    has_kaleido = importlib.util.find_spec("kaleido") is not None
    assert (tmp_path / "figs" / "ledger.png").exists() == has_kaleido
    assert charts.figures_dir().name == "figures"


@pytest.mark.parametrize("freq", ["D", "h", "15min"])
def test_refusals_per_period_are_pandas_floor_and_count(freq: str) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    ns = rng.integers(-(10**17), 2 * 10**18, n)  # before and after 1970
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(ns, utc=True),
            "status": rng.choice(["refused", "served"], n),
            "packs_bought": rng.integers(0, 3, n),
        }
    )
    data = charts.refusals_data(frame, freq=freq)
    period = frame["time"].dt.floor(freq)  # the reference: pandas' floor and groupby
    refused = (frame["status"] != "served").groupby(period).sum()
    bought = (frame["packs_bought"] > 0).groupby(period).sum()
    for trace, expected in zip(data.traces, (refused, bought), strict=True):
        times = pd.DatetimeIndex(trace["x"]).tz_localize("UTC")
        assert times.equals(expected.index) and trace["y"].tolist() == expected.tolist()
    with pytest.raises(ValidationError, match="fixed period"):
        charts.refusals_data(frame, freq="W")  # weeks start on a weekday: not fixed
