"""Scenario explorer, headless: on a read-only store, knobs → KPIs and charts, grid, export.

Every app here runs on ``Store.open(url, read_only=True)`` over a store seeded beforehand
with a writable one; the database file is hashed before and compared after.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest
from _widget_helpers import assert_secret_absent, close_all_widgets, seeded_store

from hubkit.billing_settings import BillingSettings
from hubkit.config import get_settings
from hubkit.errors import ValidationError
from hubkit.replay import Behaviour
from hubkit.scenarios import ScenarioBase, scenario_grid, simulate
from hubkit.store import Store
from hubkit.usage import generate_usage, write_usage
from hubkit.widgets import (
    ScenarioExplorerApp,
    ScenarioExplorerState,
    finance_summary,
    open_finance_store,
    scenario_explorer,
)
from hubkit.widgets._live_figure import times_as_text
from hubkit.widgets._scenario_parts import (
    parse_days,
    parse_grant,
    parse_pack_amount,
    parse_probability,
    sample_ledger,
)
from hubkit.widgets.scenarios import CHARTS

KEY = "sk-proj-SCENARIOsecret-0123456789abcdef"
CALLS = 4000  # small usage for most tests; one test runs the default 100,000
PLOTLY = "application/vnd.plotly.v1+json"
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04-margin-scenarios.ipynb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db_file(sqlite_url: str) -> Iterator[Path]:
    """A seeded store (with one key), closed; its file is unchanged when the test ends."""
    with seeded_store(sqlite_url) as store:
        store.add_credential("openai", "main", KEY)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = _digest(path)
    yield path
    close_all_widgets()
    assert _digest(path) == before, "the read-only explorer changed the database file"


@pytest.fixture
def ro(db_file: Path, sqlite_url: str) -> Iterator[Store]:
    with Store.open(sqlite_url, read_only=True) as store:
        yield store


def _app(store: Store, **options: object) -> ScenarioExplorerApp:
    options.setdefault("n_calls", CALLS)
    options.setdefault("credit_billing", True)
    return ScenarioExplorerApp(store, **options)  # type: ignore[arg-type]


def _values(data: object) -> np.ndarray:
    """A trace's numbers as plotly serialised them (a list, or a base64 typed array)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return np.asarray(data, dtype=float)


def _chart_figures(app: ScenarioExplorerApp) -> dict[str, dict]:
    shown = {name: app._charts.figure_json(name) for name in app._charts.names}
    return {name: fig for name, fig in shown.items() if fig is not None}


def test_starts_from_the_stored_and_gateway_settings_on_100k_calls(
    ro: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED", "true")
    monkeypatch.setenv("NEW_USER_CREDIT_GRANT_ENABLED", "true")
    monkeypatch.setenv("NEW_USER_CREDIT_GRANT_AMOUNT", "3")
    monkeypatch.setenv("CREDIT_EXPIRATION_DAYS", "14")
    app = ScenarioExplorerApp(ro, credit_billing=None)  # billing from the environment
    s = app.state
    assert ro.read_only and s.store is ro
    assert (app._margin_text.value, app._price_text.value) == ("2", "1")
    assert (app._grant.value, app._expiry.value, app._billing.value) == (3.0, 14, True)
    assert s.source is not None and s.source.calls == 100_000 and s.source.kind == "synthetic"
    assert s.rate_count == len(ro.list_rates())
    k = s.result.kpis
    assert k.calls == 100_000 and k.credits_granted == pytest.approx(3 * k.users)
    assert "100,000 calls" in app._source.value and "read-only" in app._source.value
    assert set(_chart_figures(app)) == {"revenue_vs_cost", "ledger", "refusals", "balances"}
    assert "hubkit-kpi-gross_margin_pct" in app._kpis.value


def test_moving_the_margin_re_simulates_exactly(ro: Store) -> None:
    app = _app(ro, buy_probability=0.5, seed=3)
    before = app.state.result.kpis.revenue
    app._margin_slider.value = 30.0
    assert app._margin_text.value == "30" and app.state.margin == Decimal(30)
    # The same scenario computed from scratch: usage, base, simulate.
    usage = generate_usage([r for r in ro.list_rates()], n_calls=CALLS, seed=3)
    base = ScenarioBase.build(usage, ro.rate_timeline(), base_credit_price=1)
    settings = BillingSettings(credit_based_billing_enabled=True)
    expected = simulate(base, 30, 1, settings=settings, behaviour=Behaviour(0.5, Decimal(10)))
    assert app.state.result.kpis == expected.kpis
    assert app.state.result.kpis.revenue > before
    assert f"{expected.kpis.revenue:,.2f} USD" in app._kpis.value
    figs = _chart_figures(app)
    bars = figs["revenue_vs_cost"]["data"][0]
    assert _values(bars["x"]).sum() == pytest.approx(  # horizontal bars: values along x
        expected.models.sort_values("provider_cost", ascending=False)["revenue"].head(12).sum()
    )


def test_exact_text_counts_and_markup_is_not_gross_margin(ro: Store) -> None:
    app = _app(ro)
    app._margin_text.value = "12.345"
    app._price_text.value = "0.5"
    s = app.state
    assert (s.margin, s.credit_price) == (Decimal("12.345"), Decimal("0.5"))
    assert app._margin_slider.value == pytest.approx(12.345)
    cards = {c.name: c for c in s.kpi_cards()}
    assert cards["markup"].label == "markup on cost (the margin you set)"
    assert cards["gross_margin_pct"].label == "gross margin (share of revenue)"
    k = s.result.kpis
    assert cards["gross_margin_pct"].value == pytest.approx(
        (k.revenue - k.provider_cost) / k.revenue * 100
    )
    assert cards["markup"].value == pytest.approx(12.345)
    assert "12.345 %" in s.summary()


def test_invalid_inputs_say_why_and_clear_the_scenario(ro: Store) -> None:
    app = _app(ro)
    app._margin_text.value = "abc"
    assert app.state.result is None and app._export.disabled
    assert "margin must be a number" in app._margin_error.value
    assert "profitMargin" not in app._margin_error.value
    assert all(app._charts.figure_json(name) is None for name in app._charts.names)
    app._margin_text.value = "-10"
    assert "must be ≥ 0" in app._margin_error.value and app.state.result is None
    app._margin_text.value = "1e400"  # beyond exact pricing: refused, never an exception
    assert "1,000,000 %" in app._margin_error.value
    app._margin_text.value = "10"
    app._price_text.value = "0"
    assert "credit price must be &gt; 0" in app._price_error.value
    app._price_text.value = "1"
    assert app.state.result is not None and not app._export.disabled
    assert app.state.set_grant("-5") is False and "grant" in app.state.errors
    assert app.state.set_expiry_days("1.5") is False and "whole days" in app.state.message.text
    assert app.state.set_buy_probability("2") is False
    assert app.state.set_pack_amount("0") is False
    assert app.state.set_pack_amount("25") is True and app.state.pack_amount == Decimal(25)


@pytest.mark.parametrize(
    ("parse", "good", "value", "bad", "field", "says"),
    [
        (parse_grant, " 0 ", Decimal(0), "-0.5", "grant", "credits ≥ 0 (0 = no grant)"),
        (parse_pack_amount, "2.50", Decimal("2.50"), "0", "pack_amount", "money > 0"),
        (parse_days, "30", 30, "1.5", "expiry_days", "whole days ≥ 0"),
        (parse_probability, "0.25", 0.25, "1.01", "buy_probability", "within 0..1"),
    ],
)
def test_knob_texts_parse_exactly_or_say_what_they_need(
    parse, good: str, value: object, bad: str, field: str, says: str
) -> None:
    assert parse(good) == value and type(parse(good)) is type(value)
    for wrong in (bad, "abc", "inf", ""):
        with pytest.raises(ValidationError, match=re.escape(says)) as info:
            parse(wrong)
        assert info.value.field == field and f"got {wrong!r}" in str(info.value)


def test_knobs_reach_the_gateway_settings_and_user_behaviour(ro: Store) -> None:
    app = _app(ro)
    app._grant.value = 2.5
    app._expiry.value = 7
    app._pack.value = 20.0
    app._buyers.value = 0.25
    s = app.state
    settings = s.settings()
    assert settings.grant_amount == Decimal("2.5") and settings.credit_expiration_days == 7
    assert s.behaviour() == Behaviour(buy_probability=0.25, pack_amount=Decimal(20))
    k = s.result.kpis
    assert k.credits_granted == pytest.approx(2.5 * k.users)
    assert k.cash_in == pytest.approx(20 * k.packs)
    app._billing.value = False
    assert s.result.kpis.revenue == 0 and s.result.kpis.calls_refused == 0
    assert "credit-based billing is off" in app._message.value


def test_charts_come_from_the_same_ledger_as_the_full_replay(ro: Store) -> None:
    app = _app(ro, buy_probability=0.4)
    app._grant.value = 1.0
    app._expiry.value = 10
    result = app.state.result
    full = result.ledger()
    sample = app.state.sample_ledger
    assert len(app.state.sample_users) == 5
    expected = full[full["user"].isin(app.state.sample_users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        sample.sort_values(["user", "time", "event"]).reset_index(drop=True),
        expected.sort_values(["user", "time", "event"]).reset_index(drop=True),
    )
    calls = result.calls()
    refusals = app.state.refusals
    assert (refusals["status"] == "refused").sum() == (calls["status"] != "served").sum()
    assert refusals["packs_bought"].sum() == calls["packs_bought"].sum()
    waterfall = _chart_figures(app)["ledger"]["data"][0]
    assert _values(waterfall["y"])[0] == pytest.approx(result.kpis.credits_granted)


def test_a_knob_step_makes_the_kpis_first_and_each_chart_data_once(
    ro: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubkit.widgets import scenarios

    state = ScenarioExplorerState(ro, n_calls=CALLS, credit_billing=True)
    settled: list[int] = []
    real = scenarios.settle
    monkeypatch.setattr(scenarios, "settle", lambda *a: settled.append(1) or real(*a))
    assert state.set_margin("3")
    assert settled == []  # the KPI cards need the totals only
    first = state.refusals
    # the 402 chart takes the 402s the replay kept: no second settling of every call
    assert settled == [] and state.refusals is first  # made once per scenario
    result = state.result
    assert result is not None and result.user_calls is not None and result.policy is not None
    detail = real(result.user_calls, result.policy)  # what a second settling would give
    hit = ~detail.served | (detail.packs_bought > 0)
    assert hit.any() and len(first) == int(hit.sum())
    assert (first["time"].astype("int64").to_numpy() == result.user_calls.time[hit]).all()
    assert ((first["status"] == "served").to_numpy() == detail.served[hit]).all()
    assert (first["packs_bought"].to_numpy() == detail.packs_bought[hit]).all()
    assert state.figure("refusals") is not None and settled == []
    assert state.set_margin("4") and state.refusals is not first and settled == []
    with pytest.raises(ValueError, match="unknown chart"):
        state.figure("pie")


def test_grid_over_two_ranges_with_progress(ro: Store) -> None:
    app = _app(ro, buy_probability=0.3)
    app._grid_margins.value = [10.0, 50.0]
    app._grid_prices.value = [0.5, 2.0]
    app._grid_steps.value = 5
    app._grid_value.value = "revenue"
    seen: list[tuple[int, int]] = []
    assert app.state.compute_grid(lambda done, total: seen.append((done, total)))
    grid = app.state.grid
    assert len(grid) == 25 and seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert sorted(grid["profit_margin"].unique()) == [10, 20, 30, 40, 50]
    assert sorted(grid["credit_price"].unique()) == [0.5, 0.875, 1.25, 1.625, 2.0]
    s = app.state
    direct = scenario_grid(
        s.base,
        None,
        [Decimal(30)],
        [Decimal("1.25")],
        settings=s.settings(),
        behaviour=s.behaviour(),
    )
    row = grid[(grid["profit_margin"] == 30) & (grid["credit_price"] == 1.25)].iloc[0]
    assert row["revenue"] == pytest.approx(direct.iloc[0]["revenue"])
    app._grid_run.click()
    heat = app._heatmap.outputs[0]["data"][PLOTLY]
    assert heat["data"][0]["type"] == "heatmap"
    assert "recognised revenue" in json.dumps(heat["layout"]["title"])
    assert app.state.set_grid_range(steps=1) is False and "2..41" in app.state.errors["grid"]


def test_export_writes_the_scenario_files_and_never_the_store(ro: Store) -> None:
    app = _app(ro)
    app._margin_text.value = "40"
    app._grid_steps.value = 3
    app._grid_run.click()
    app._export.click()
    folder = app.state.last_export
    assert folder is not None and folder.parent == get_settings().reports_dir
    assert folder.name.endswith("Z-scenario")
    names = {p.name for p in folder.iterdir()}
    assert names == {
        ".hubkit-run",
        "kpis.csv",
        "models.csv",
        "figures.html",
        "summary.json",
        "grid.csv",
    }
    kpis = pd.read_csv(folder / "kpis.csv").set_index("name")
    k = app.state.result.kpis
    assert kpis.loc["revenue", "value"] == pytest.approx(k.revenue)
    assert kpis.loc["revenue", "unit"] == "USD"
    assert kpis.loc["gross_margin_pct", "label"] == "gross margin (share of revenue)"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["job"] == "scenario" and summary["run_id"] == folder.name
    assert summary["parameters"]["profit_margin_markup_on_cost_pct"] == "40"
    assert summary["parameters"]["credit_price"] == "1"
    assert summary["store"]["read_only"] is True
    page = (folder / "figures.html").read_text()
    assert page.count("Plotly.newPlot") == 5  # four charts and the heatmap
    assert str(folder) in app._message.value
    assert len(pd.read_csv(folder / "grid.csv")) == 9


def test_a_usage_file_replaces_the_synthetic_usage(ro: Store, tmp_path: Path) -> None:
    app = _app(ro)
    usage = generate_usage(ro.list_rates(), n_calls=1500, n_users=40, seed=9)
    path = write_usage(usage, tmp_path / "usage.parquet")
    app._usage_path.value = str(path)
    app._usage_load.click()
    s = app.state
    assert s.source.kind == "file" and s.source.calls == 1500
    assert s.source.users == usage["user"].nunique()
    assert s.result.kpis.calls == 1500 and "usage.parquet" in app._source.value
    app._usage_path.value = str(tmp_path / "missing.csv")
    app._usage_load.click()
    assert "usage file not found" in app._usage_error.value
    assert s.result is not None and s.source.calls == 1500  # the loaded usage stays
    app._n_calls.value = 2000
    app._synthetic.click()
    assert s.source.kind == "synthetic" and s.result.kpis.calls == 2000


def test_no_secret_in_any_widget_state(ro: Store) -> None:
    app = _app(ro)
    app._margin_slider.value = 20.0
    app._grid_run.click()
    app._export.click()
    assert_secret_absent(KEY, root=app, state=app.state)


def test_a_missing_or_empty_store_is_said_plainly(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    monkeypatch.setenv("HUBKIT_DATABASE_URL", url)
    assert open_finance_store() is None
    assert not (tmp_path / "none.db").exists()  # opening read-only created nothing
    assert "NO DATA TO EXPLORE" in finance_summary(None)
    web = finance_summary(None, web=True)  # finance reads this one in the web app:
    assert "NO DATA TO EXPLORE YET" in web  # no environment names, commands or paths
    assert not any(t in web for t in ("HUBKIT_", "hubkit demo", "/", "Store.open")), web
    box = scenario_explorer(None)
    assert "NO DATA TO EXPLORE" in box.value and url in box.value
    Store.open(url).close()  # a schema, no rates
    assert open_finance_store() is None


def test_open_finance_store_is_read_only(db_file: Path, sqlite_url: str, monkeypatch) -> None:
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)
    store = open_finance_store()
    assert store is not None and store.read_only
    try:
        assert f"database:  {sqlite_url} (read-only)" in finance_summary(store)
        web = finance_summary(store, web=True)
        assert web.startswith("Read-only") and "/" not in web and "HUBKIT_" not in web
        state = ScenarioExplorerState(store, n_calls=500)
        assert state.result is not None
    finally:
        store.close()


def test_notebook_parameters() -> None:
    params = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(params) == {
        "usage_file", "gateway", "n_calls", "seed", "credit_billing", "buy_probability",
    }  # fmt: skip
    assert params["gateway"]["default"] == '""'  # empty: not the gateway's calls
    assert params["n_calls"]["default"] == "100000"


def test_sample_ledger_of_no_user_is_empty(ro: Store) -> None:
    state = ScenarioExplorerState(ro, n_calls=300, credit_billing=True)
    empty = sample_ledger(state.result, np.zeros(0, dtype=np.int64))
    assert empty.empty and "balance" in empty.columns


def test_finance_starts_from_the_prices_in_force_not_the_stored_target(sqlite_url: str) -> None:
    with seeded_store(sqlite_url) as store:  # rates at the stored 2 %
        # an operator applies 25 % without recording it: the stored target still says 2 %
        store.apply_bulk_update(store.preview_bulk_update(25, 1))
        assert store.get_operator_settings().target_margin == Decimal(2)
        app = _app(store)
        s = app.state
        assert s.earned_markup == Decimal("25.00") and app._margin_text.value == "25"
        # at the start the scenario is the prices in force: every KPI equals its baseline
        for card in s.kpi_cards():
            assert card.baseline_text == card.text, card.name
        assert "in force: " in app._kpis.value
        assert "the rates in force earn 25 % markup on cost (stored target margin: 2 %)" in (
            app._source.value
        )
        fixed = s.baseline_kpis()

        app._margin_text.value = "40"  # a knob moves the scenario, never the baseline
        assert s.baseline_kpis() == fixed
        revenue = next(c for c in s.kpi_cards() if c.name == "revenue")
        assert revenue.text != revenue.baseline_text

        app._grant.value = 5.0  # a non-price knob applies to both
        assert s.baseline_kpis()["credits_granted"] != fixed["credits_granted"]
        assert s.baseline_kpis()["markup"] == 25.0


@pytest.mark.parametrize("margin", ["0", "7.5", "33.33", "150"])
def test_the_earned_markup_is_the_margin_the_rates_were_set_at(
    sqlite_url: str, margin: str
) -> None:
    with seeded_store(sqlite_url) as store:
        store.apply_bulk_update(store.preview_bulk_update(margin, "0.001"))
        store.set_operator_settings(credit_price="0.001")
        timeline = store.rate_timeline()
    usage = generate_usage(timeline[timeline["valid_to"].isna()], n_calls=CALLS, seed=3)
    base = ScenarioBase.build(usage, timeline, base_credit_price="0.001")
    assert base.earned_markup() == Decimal(margin).quantize(Decimal("0.01"))
    close_all_widgets()


def _traces(figure: object) -> list[dict]:
    """A figure's traces as plain values (typed arrays decoded), to compare numbers."""
    import plotly.io as pio

    data = json.loads(pio.to_json(figure, validate=False))["data"]
    return [{k: _plain(v) for k, v in trace.items() if k != "uid"} for trace in data]


def _plain(value: object) -> object:
    if isinstance(value, dict) and "bdata" in value:
        return _values(value).tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_a_knob_step_patches_the_charts_in_one_message(ro: Store) -> None:
    app = _app(ro)
    panel = app._charts
    widget, wholes = panel.widget, dict(panel.widget.figures)
    assert set(wholes) == set(CHARTS) and all(f["figure"] for f in wholes.values())
    revenue_before = copy.deepcopy(_chart_figures(app)["revenue_vs_cost"]["data"])
    built: list[str] = []
    make_figure = app.state.make_figure
    app.state.make_figure = lambda name, data: built.append(name) or make_figure(name, data)  # type: ignore[method-assign]
    sent: list[dict] = []
    widget.observe(lambda change: sent.append(change["new"]), names="patch")

    app._margin_text.value = "60"
    # a step sends the charts' numbers alone, all charts in one patch: no plotly figure is
    # built (and validated), no whole figure re-sent, and the page keeps its widget
    assert panel.widget is widget and widget.figures == wholes and built == []
    assert len(sent) == 1 and set(sent[0]["charts"]) <= set(CHARTS)
    assert set(panel.last_update.values()) == {"patched"}
    # what the kernel holds for the page is the new scenario's figure, number for number
    expected = app.state.figures()
    for figure in expected.values():
        times_as_text(figure)  # as the view sends times to the page (ISO text, not ns)
    for name in CHARTS:
        assert _traces(panel.figure_json(name)) == _traces(expected[name]), name
    assert _chart_figures(app)["revenue_vs_cost"]["data"] != revenue_before
    # and so does the page: its whole figures with the patches applied as plotly.js does
    page = {name: copy.deepcopy(f["figure"]) for name, f in wholes.items()}
    for patch in sent:
        _apply(page, patch)
    assert {n: _traces(f) for n, f in page.items()} == {
        n: _traces(panel.figure_json(n)) for n in CHARTS
    }

    app._margin_text.value = "60.0"  # same scenario: nothing to send
    assert len(sent) == 1
    app._margin_text.value = "abc"  # no scenario: hidden in place, the page keeps its height
    assert all(f["figure"] is None for f in widget.figures.values())
    assert set(panel.last_update.values()) == {"hidden"} and widget.height == 400
    app._margin_text.value = "10"
    assert panel.widget is widget and set(panel.last_update.values()) == {"created"}


def _apply(page: dict[str, dict], patch: dict) -> None:
    """A patch applied to whole figures as the panel's page code does (Plotly.update)."""
    for name, update in patch["charts"].items():
        figure = page[name]
        for key, values in update["restyle"].items():
            for i, value in zip(update["traces"], values, strict=True):
                figure["data"][i][key] = value
        figure["layout"].update(update["relayout"])


# ---- the gateway's own calls (issue 15) ----------------------------------------------------


def test_the_gateway_database_loads_read_only_with_its_report(ro: Store, tmp_path: Path) -> None:
    from _gateway_db import build_sqlite

    gateway = build_sqlite(tmp_path / "aigne-hub.db")
    before = _digest(gateway)
    app = _app(ro)
    app._gateway_path.value = str(gateway)
    app._gateway_load.click()
    s = app.state
    assert s.source is not None and s.source.kind == "gateway"
    assert s.source.calls == 12  # 15 calls: 2 not billed, 1 of a type no rate prices
    assert "aigne-hub.db" in app._source.value
    note = app._gateway_note.value
    assert "status &#x27;failed&#x27;" in note and "audioGeneration" in note
    assert s.reconciliation is not None and s.reconciliation["rows"] == 12
    assert "the gateway stored" in note
    assert _digest(gateway) == before  # opened read-only
    app._gateway_path.value = str(tmp_path / "missing.db")
    app._gateway_load.click()
    assert "not found" in app._usage_error.value
    assert s.source.kind == "gateway"  # the loaded usage stays


def test_the_calls_imported_into_the_store_load(sqlite_url: str, tmp_path: Path) -> None:
    from _gateway_db import build_sqlite

    from hubkit.usage.gateway_import import import_gateway_usage

    gateway = build_sqlite(tmp_path / "aigne-hub.db")
    with seeded_store(sqlite_url) as store:
        empty = ScenarioExplorerState(store, n_calls=500, credit_billing=True)
        assert not empty.load_imported()
        assert "usage import" in empty.errors["usage"]
        import_gateway_usage(gateway, store.engine)
    with Store.open(sqlite_url, read_only=True) as ro:
        s = ScenarioExplorerState(ro, n_calls=500, credit_billing=True)
        assert s.load_imported()
        assert s.source is not None and (s.source.kind, s.source.calls) == ("imported", 12)
        assert s.reconciliation is not None and s.reconciliation["rows"] == 12
        synthetic = ScenarioExplorerState(ro, n_calls=500, credit_billing=True)
        assert synthetic.reconciliation is None and synthetic.import_report == []
    close_all_widgets()


@pytest.mark.slow
def test_notebook_04_runs_on_the_gateway_database(
    db_file: Path, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # papermill with the `gateway` parameter, as a scheduled run or the CLI would pass it
    from _gateway_db import build_sqlite

    gateway = build_sqlite(tmp_path / "aigne-hub.db")
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)  # the kernel inherits the env
    out = tmp_path / "04.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), parameters={"gateway": str(gateway), "n_calls": 500},
        kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False,
    )  # fmt: skip
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    state = json.dumps(nb["metadata"].get("widgets", {}))
    assert "the gateway&#x27;s calls in aigne-hub.db" in state or "aigne-hub.db" in state
