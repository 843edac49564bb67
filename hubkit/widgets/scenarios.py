"""Scenario explorer (finance): what a margin × credit-price decision does, never writing.

:class:`ScenarioExplorerState` reads the store once — current rates (:meth:`Store.rate_timeline`),
the operator's credit price and target margin as start values — and prepares the usage once
(:class:`~hubkit.scenarios.ScenarioBase`): a seeded synthetic month
(:func:`~hubkit.usage.generate_usage`, 100,000 calls by default) or a usage file
(:func:`~hubkit.usage.read_usage`). Every knob then re-simulates with
:func:`~hubkit.scenarios.simulate` (tens of milliseconds at 100,000 calls,
``benchmarks/bench_scenario_widget.py``), so KPIs and charts follow the sliders.

Two margins are kept apart everywhere: the *margin you set* is a **markup on cost** (what a
bulk update applies to unit costs); the KPI **gross margin (share of revenue)** is
(revenue − provider cost) / revenue. The state takes a Store and only ever reads it: the
finance web app opens it with ``Store.open(read_only=True)`` (:func:`open_finance_store`).
Exports go to ``<reports>/<UTC>-scenario/`` (:mod:`hubkit.widgets._scenario_export`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from hubkit._urls import mask_url
from hubkit.billing_settings import BillingSettings
from hubkit.config import get_settings
from hubkit.decimals import plain
from hubkit.errors import HubkitError, ValidationError
from hubkit.pricing import validate_credit_price, validate_margin
from hubkit.replay import Behaviour, ReplayResult
from hubkit.replay.ledger import PaymentEvents, settle
from hubkit.replay.reconcile import reconcile
from hubkit.scenarios import ScenarioBase, scenario_grid, simulate
from hubkit.store import Store
from hubkit.store.engine import display_url
from hubkit.usage import generate_usage, read_hub_database, read_hub_export, read_usage
from hubkit.usage.gateway import is_database_url
from hubkit.usage.gateway_import import read_imported_usage
from hubkit.widgets._common import AppState, Message, PriceInputs, Progress
from hubkit.widgets._scenario_export import export_scenario
from hubkit.widgets._scenario_parts import (
    KPI_CARDS,
    axis_steps,
    horizontal_bars,
    horizontal_data,
    kpi_text,
    money_text,
    parse_days,
    parse_grant,
    parse_pack_amount,
    parse_probability,
    pct_text,
    sample_ledger,
    sample_user_index,
    text_of,
)
from hubkit.widgets.workbench import environment_summary

#: KPIs the grid heatmap can show (column of :func:`scenario_grid` → label).
GRID_VALUES = {
    "gross_margin_pct": "gross margin (share of revenue)",
    "gross_margin": "gross margin",
    "revenue": "recognised revenue",
    "provider_cost": "provider cost",
    "users_blocked": "users blocked (402s)",
    "n_402": "402 responses",
}
DEFAULT_CALLS = 100_000
#: the explorer's charts (:meth:`ScenarioExplorerState.figure`)
CHARTS = ("revenue_vs_cost", "ledger", "refusals", "balances")
_BILLING_OFF = (
    "credit-based billing is off (AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED): nothing is refused "
    "or sold, so revenue is 0; tick 'credit-based billing' to explore it"
)
_STATUSES = ["refused", "served"]  # codes 0 / 1 = the ledger's ``served`` flag
#: Inputs beyond these are typos, and would overflow the exact 10-place pricing.
_MAX_MARKUP = Decimal(1_000_000)
_PRICE_RANGE = (Decimal("1e-12"), Decimal("1e12"))
_GRID_CHUNKS = 10  # progress steps while a grid computes


@dataclass(frozen=True, slots=True)
class KpiCard:
    name: str
    label: str
    value: float
    text: str
    bad: bool = False  # drawn in red (a loss, blocked users, models below cost)
    #: the same KPI at the prices in force (the fixed baseline), "" when there is none
    baseline_text: str = ""


@dataclass(frozen=True, slots=True)
class UsageSource:
    """Where the usage came from, in words and numbers."""

    kind: str  # "synthetic" | "file" | "frame" | "gateway" | "imported"
    description: str
    calls: int
    users: int
    unsupported: int  # calls with no current rate (never charged, counted as refused)


class ScenarioExplorerState(PriceInputs, AppState):
    """Scenario knobs, the usage they apply to, the replay they give, grid and export."""

    def __init__(
        self,
        store: Store,
        *,
        usage: pd.DataFrame | None = None,
        usage_file: str | Path | None = None,
        gateway: str | Path | None = None,
        n_calls: int = DEFAULT_CALLS,
        seed: int = 0,
        billing: BillingSettings | None = None,
        credit_billing: bool | None = None,
        buy_probability: float = 0.3,
        pack_amount: Any = None,
        sample_users: int = 5,
        progress: Progress | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        ops = store.get_operator_settings()
        self.currency = ops.currency
        self.base_credit_price = ops.credit_price
        self.stored_margin = ops.target_margin
        self._start_from(ops)
        #: what the rates in force earn on the usage (markup on cost, %); the margin knob
        #: starts there, not at the stored target, which a bulk update may not have recorded
        self.earned_markup: Decimal | None = None
        #: the scenario at the prices in force, with the same grant/expiry/pack knobs
        self.baseline: ReplayResult | None = None
        self._baseline_key: tuple[Any, ...] | None = None
        self._knobs_touched = False
        self.billing = billing or BillingSettings.from_env()
        self.billing_enabled = (
            self.billing.credit_based_billing_enabled if credit_billing is None else credit_billing
        )
        b = self.billing
        self.grant = (
            b.new_user_credit_grant_amount if b.new_user_credit_grant_enabled else Decimal(0)
        )
        self.expiry_days = b.credit_expiration_days
        self.pack_amount = (
            Behaviour().pack_amount if pack_amount is None else Decimal(str(pack_amount))
        )
        self.buy_probability = float(buy_probability)
        self.n_sample_users = sample_users
        self.errors: dict[str, str] = {}
        self.result: ReplayResult | None = None
        self._refusals = pd.DataFrame(columns=["time", "status", "packs_bought"])
        self._sample_ledger = pd.DataFrame(columns=["user", "time", "event", "balance"])
        #: the results the two frames above were taken from (they are made on demand)
        self._charted: dict[str, ReplayResult | None] = {"refusals": None, "ledger": None}
        self.sample_users: list[str] = []
        self.grid: pd.DataFrame | None = None
        self.grid_margins = (Decimal(0), Decimal(100))
        self.grid_prices = (ops.credit_price / 2, ops.credit_price * 2)
        self.grid_steps = 11
        self.grid_value = "gross_margin_pct"
        self.last_export: Path | None = None
        self.base: ScenarioBase | None = None
        self.source: UsageSource | None = None
        #: the gateway importer's report (what it read, skipped and why), when usage came
        #: from the gateway's records; [] otherwise
        self.import_report: list[str] = []
        #: the gateway's stored credits against a re-pricing by the store's rates
        #: (:func:`hubkit.replay.reconcile.reconcile`'s summary), when the usage has them
        self.reconciliation: dict[str, Any] | None = None
        self._sample_idx = np.zeros(0, dtype=np.int64)
        self._timeline = store.rate_timeline()
        #: when the rates were read: a page served from a preheated kernel says as of when
        self.rates_read_at = datetime.now(UTC)
        self.rate_count = int(self._timeline["valid_to"].isna().sum())
        if usage is not None:
            self._use(usage, "frame", "the usage table passed in", progress)
        elif gateway:
            self.load_gateway(gateway, progress)
        elif usage_file:
            self.load_usage_file(usage_file, progress)
        else:
            self.load_synthetic(n_calls, seed, progress)

    # ---- usage ---------------------------------------------------------------------------
    def load_synthetic(
        self, n_calls: int = DEFAULT_CALLS, seed: int = 0, progress: Progress | None = None
    ) -> bool:
        """Seeded synthetic usage over the store's current rates (same seed, same month)."""

        def make() -> pd.DataFrame:
            if self.rate_count == 0:
                raise ValidationError("the store has no rates: nothing to simulate", field="usage")
            if int(n_calls) < 1:
                raise ValidationError("the number of calls must be ≥ 1", field="usage")
            current = self._timeline[self._timeline["valid_to"].isna()]
            return generate_usage(current, n_calls=int(n_calls), seed=int(seed))

        what = f"synthetic (30 days, seed {int(seed)})"
        return self._load(make, "synthetic", what, progress)

    def load_usage_file(self, path: str | Path, progress: Progress | None = None) -> bool:
        """A usage file (CSV or Parquet, see :func:`hubkit.usage.read_usage`)."""
        text = str(path).strip()
        return self._load(lambda: read_usage(text), "file", f"file {text}", progress)

    def load_gateway(self, source: str | Path, progress: Progress | None = None) -> bool:
        """The gateway's own calls: its SQLite database (opened read-only), a PostgreSQL URL
        of a gateway running there, or a CSV export of ModelCalls / Usages. Only successful
        calls are kept; :attr:`import_report` says what was skipped and why."""
        text = str(source).strip()
        reports: list[list[str]] = []

        def make() -> pd.DataFrame:
            if not text:
                raise ValidationError(
                    "give the gateway's database file, a postgresql:// URL or a CSV export",
                    field="usage",
                )
            csv = not is_database_url(text) and text.lower().endswith((".csv", ".csv.gz"))
            imported = read_hub_export(text) if csv else read_hub_database(text)
            reports.append(imported.report.lines())
            return imported.usage

        name = mask_url(text) if is_database_url(text) else Path(text).name
        done = self._load(make, "gateway", f"the gateway's calls in {name}", progress)
        if reports:
            self.import_report = reports[0]
        return done

    def load_imported(self, progress: Progress | None = None) -> bool:
        """The gateway's calls imported into the store (``python -m hubkit usage import``)."""

        def make() -> pd.DataFrame:
            usage = read_imported_usage(self.store.engine)
            if usage.empty:
                raise ValidationError(
                    "the store holds no imported calls: run `python -m hubkit usage import "
                    "GATEWAY_DB` first",
                    field="usage",
                )
            return usage

        return self._load(make, "imported", "the gateway's calls imported into the store", progress)

    def _load(
        self, make: Callable[[], pd.DataFrame], kind: str, what: str, progress: Progress | None
    ) -> bool:
        if progress:
            progress(0, 3)
        ok, frame = self._attempt(make)
        if not ok or frame is None:
            self.errors = {"usage": self.message.text if self.message else "cannot load usage"}
            return False
        return self._use(frame, kind, what, progress)

    def _use(self, usage: pd.DataFrame, kind: str, what: str, progress: Progress | None) -> bool:
        if progress:
            progress(1, 3)
        ok, base = self._attempt(
            lambda: ScenarioBase.build(
                usage, self._timeline, base_credit_price=self.base_credit_price
            )
        )
        if not ok or base is None:
            self.errors = {"usage": self.message.text if self.message else "unusable usage"}
            return False
        self.base = base
        self.import_report = []
        self.reconciliation = None
        if "stored_credits" in usage.columns:
            ok, checked = self._attempt(lambda: reconcile(usage, self._timeline))
            self.reconciliation = checked[1] if ok and checked is not None else None
        prepared = base.prepared
        self.source = UsageSource(
            kind=kind,
            description=what,
            calls=int(len(usage)),
            users=int(prepared.users.size),
            unsupported=int(prepared.unsupported_user.sum()),
        )
        self._sample_idx = sample_user_index(np.diff(prepared.starts), self.n_sample_users)
        self.sample_users = [str(prepared.users[int(i)]) for i in self._sample_idx]
        self.grid = None  # computed on other usage
        self._baseline_key = None
        self.earned_markup = base.earned_markup()
        if self.earned_markup is not None and not self._knobs_touched:
            self.margin_text = plain(max(self.earned_markup, Decimal(0))) or "0"
        if progress:
            progress(2, 3)
        done = self.update()
        if progress:
            progress(3, 3)
        return done

    # ---- knobs ---------------------------------------------------------------------------
    def set_margin(self, text: str) -> bool:
        self.margin_text = str(text).strip()
        self._knobs_touched = True
        return self.update()

    def set_credit_price(self, text: str) -> bool:
        self.credit_price_text = str(text).strip()
        self._knobs_touched = True
        return self.update()

    def set_grant(self, value: Any) -> bool:
        return self._knob("grant", value, parse_grant)

    def set_expiry_days(self, value: Any) -> bool:
        return self._knob("expiry_days", value, parse_days)

    def set_pack_amount(self, value: Any) -> bool:
        return self._knob("pack_amount", value, parse_pack_amount)

    def set_buy_probability(self, value: Any) -> bool:
        return self._knob("buy_probability", value, parse_probability)

    def set_billing(self, enabled: bool) -> bool:
        self.billing_enabled = bool(enabled)
        return self.update()

    def _knob(self, name: str, value: Any, parse: Callable[[Any], Any]) -> bool:
        try:
            parsed = parse(value)
        except ValidationError as exc:
            self.errors = {name: str(exc)}
            self._fail(exc)
            return False
        setattr(self, name, parsed)
        return self.update()

    def settings(self) -> BillingSettings:
        """The gateway settings of this scenario (the environment's, with the knobs applied)."""
        return self.billing.replace(
            credit_based_billing_enabled=self.billing_enabled,
            new_user_credit_grant_enabled=self.grant > 0,
            new_user_credit_grant_amount=self.grant,
            credit_expiration_days=self.expiry_days,
        )

    def behaviour(self) -> Behaviour:
        return Behaviour(buy_probability=self.buy_probability, pack_amount=self.pack_amount)

    # ---- the scenario --------------------------------------------------------------------
    def update(self) -> bool:
        """Re-simulate the current knobs (the base is built once); invalid knobs say why."""
        self.errors = {}
        if self.base is None:
            self.result = None
            return False
        base = self.base
        try:
            margin = validate_margin(self.margin_text)
        except ValidationError as exc:
            return self._invalid("margin", exc)
        try:
            price = validate_credit_price(self.credit_price_text)
        except ValidationError as exc:
            return self._invalid("credit_price", exc)
        if margin > _MAX_MARKUP:
            too_big = f"a markup above {_MAX_MARKUP:,} % is not a price to explore"
            return self._invalid("margin", ValidationError(too_big, field="profitMargin"))
        if not _PRICE_RANGE[0] <= price <= _PRICE_RANGE[1]:
            off = "the credit price must be within 1e-12 … 1e12 (currency per credit)"
            return self._invalid("credit_price", ValidationError(off, field="creditPrice"))
        self._refresh_baseline(base)
        ok, result = self._attempt(
            lambda: simulate(
                base, margin, price, settings=self.settings(), behaviour=self.behaviour()
            )
        )
        if not ok or result is None:
            self.result = None
            field = getattr(self.error, "field", None)
            if field in ("profitMargin", "creditPrice") and self.message is not None:
                self.errors = {
                    "margin" if field == "profitMargin" else "credit_price": self.message.text
                }
            return False
        self.result = result  # the charts' data is taken from it when they are drawn
        if not self.billing_enabled:
            self._say(Message.warning(_BILLING_OFF))
        else:
            self._say(Message.info(self.summary()))
        return True

    def _refresh_baseline(self, base: ScenarioBase) -> None:
        """The prices-in-force scenario, recomputed only when a non-price knob moved."""
        key = (id(base), self.settings(), self.behaviour())
        if key == self._baseline_key:
            return
        self.baseline = simulate(
            base, None, self.base_credit_price, settings=self.settings(),
            behaviour=self.behaviour(),
        )  # fmt: skip
        self._baseline_key = key

    def _invalid(self, name: str, exc: ValidationError) -> bool:
        self.result = None
        self.errors = {name: str(exc)}
        self._fail(exc)
        return False

    # The 402 and balance charts' data: taken from the current result when first asked for
    # (the charts follow the KPI cards, which need only the result's totals).
    @property
    def refusals(self) -> pd.DataFrame:
        """The calls that met a 402: time, status (refused / served), packs bought."""
        result = self.result
        if result is not None and self._charted["refusals"] is not result:
            assert result.user_calls is not None and result.policy is not None
            calls = result.user_calls
            # Only calls that met a 402 matter to the 402 chart: the replay kept those.
            events = result.payment_events or PaymentEvents.of(settle(calls, result.policy))
            codes = events.served.astype(np.int8)
            self._refusals = pd.DataFrame(
                {
                    # as datetime64: pandas parses plain integers a 100× slower
                    "time": pd.to_datetime(
                        calls.time[events.call].view("datetime64[ns]"), utc=True
                    ),
                    "status": pd.Categorical.from_codes(codes, pd.Index(_STATUSES)),
                    "packs_bought": events.packs_bought,
                }
            )
            self._charted["refusals"] = result
        return self._refusals

    @property
    def sample_ledger(self) -> pd.DataFrame:
        """The ledger events of the sample users (:attr:`sample_users`)."""
        result = self.result
        if result is not None and self._charted["ledger"] is not result:
            self._sample_ledger = sample_ledger(result, self._sample_idx)
            self._charted["ledger"] = result
        return self._sample_ledger

    def summary(self) -> str:
        if self.result is None or self.source is None:
            return "no scenario: fix the inputs"
        k = self.result.kpis
        cur = self.currency
        return (
            f"markup on cost {self.margin_text} %, credit price {self.credit_price_text} {cur}: "
            f"revenue {money_text(k.revenue)} {cur}, provider cost {money_text(k.provider_cost)} "
            f"{cur}, gross margin {pct_text(k.gross_margin_pct)} of revenue; "
            f"{k.users_blocked:,} of {k.users:,} users blocked by 402s"
        )

    def kpis(self) -> dict[str, float]:
        """The current scenario's KPIs (with ``markup`` and ``models_below_cost``)."""
        if self.result is None:
            return {}
        out = dict(self.result.kpis.to_dict())
        out["markup"] = float(self.margin) if self.margin is not None else float("nan")
        out["models_below_cost"] = self.result.models_below_cost
        return out

    def baseline_kpis(self) -> dict[str, float]:
        """The KPIs at the prices in force (``markup``: what the rates earn)."""
        if self.baseline is None:
            return {}
        out = dict(self.baseline.kpis.to_dict())
        out["markup"] = (
            float(self.earned_markup) if self.earned_markup is not None else float("nan")
        )
        out["models_below_cost"] = self.baseline.models_below_cost
        return out

    def kpi_cards(self) -> list[KpiCard]:
        values, fixed = self.kpis(), self.baseline_kpis()
        cards = []
        for name, label, unit in KPI_CARDS:
            value = values.get(name, float("nan"))
            text = self._kpi_text(name, values, unit)
            bad = bool(values) and (
                (name in ("gross_margin", "gross_margin_pct") and value < 0)
                or (name in ("users_blocked", "models_below_cost") and value > 0)
            )
            in_force = self._kpi_text(name, fixed, unit) if fixed else ""
            cards.append(KpiCard(name, label, float(value), text, bad, in_force))
        return cards

    def _kpi_text(self, name: str, values: dict[str, float], unit: str) -> str:
        text = kpi_text(values.get(name, float("nan")), unit, self.currency)
        if name == "users_blocked" and values:
            text += f" ({int(values['n_402']):,} × 402)"
        return text

    def figures(self) -> dict[str, Any]:
        """Plotly figures of the current scenario (empty while there is none)."""
        if self.result is None:
            return {}
        return {name: self.figure(name) for name in CHARTS}

    def figure(self, name: str) -> Any:
        """One of the :data:`CHARTS` of the current scenario, None while there is none."""
        data = self.chart_data(name)
        return None if data is None else self.make_figure(name, data)

    def chart_data(self, name: str) -> Any:
        """What chart ``name`` plots now (:class:`hubkit.charts.ChartData`), or None."""
        # deferred: charts loads plotly (heavy); the explorer's state works without figures
        from hubkit import charts

        result = self.result
        if result is None:
            return None
        if name == "revenue_vs_cost":
            return horizontal_data(charts.revenue_vs_cost_data(result, top=12))
        if name == "ledger":
            return charts.ledger_waterfall_data(result.kpis)
        if name == "refusals":
            return charts.refusals_data(self.refusals)
        if name == "balances":
            return charts.balance_data(self.sample_ledger, self.sample_users)
        raise ValueError(f"unknown chart {name!r}; one of {', '.join(CHARTS)}")

    def make_figure(self, name: str, data: Any) -> Any:
        """The styled figure of chart ``name`` showing ``data`` (from :meth:`chart_data`)."""
        from hubkit import charts

        if name == "revenue_vs_cost":
            fig = horizontal_bars(charts.revenue_vs_cost_figure(horizontal_data(data)))
        elif name == "ledger":
            fig = charts.ledger_waterfall_figure(data)
        elif name == "refusals":
            fig = charts.refusals_figure(data)
        elif name == "balances":
            fig = charts.balance_figure(data)
        else:
            raise ValueError(f"unknown chart {name!r}; one of {', '.join(CHARTS)}")
        fig.update_layout(
            height=400,
            margin={"l": 60, "r": 20, "t": 80, "b": 50},
            legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
            title={"y": 0.98, "yanchor": "top"},
        )
        return fig

    # ---- the grid ------------------------------------------------------------------------
    def set_grid_range(
        self,
        margins: tuple[Any, Any] | None = None,
        prices: tuple[Any, Any] | None = None,
        steps: int | None = None,
        value: str | None = None,
    ) -> bool:
        """Margin range (markup %), credit-price range, points per axis, the KPI shown."""
        try:
            if margins is not None:
                lo, hi = sorted(validate_margin(text_of(m)) for m in margins)
                if lo < 0:
                    raise ValidationError("grid margins must be ≥ 0", field="grid")
                self.grid_margins = (lo, hi)
            if prices is not None:
                low, high = sorted(validate_credit_price(text_of(p)) for p in prices)
                self.grid_prices = (low, high)
            if steps is not None:
                if not 2 <= int(steps) <= 41:
                    raise ValidationError("grid points per axis must be within 2..41", field="grid")
                self.grid_steps = int(steps)
            if value is not None:
                if value not in GRID_VALUES:
                    raise ValidationError(f"unknown grid KPI {value!r}", field="grid")
                self.grid_value = value
        except ValidationError as exc:
            self.errors = {"grid": str(exc)}
            self._fail(exc)
            return False
        return True

    def grid_axes(self) -> tuple[list[Decimal], list[Decimal]]:
        return (
            axis_steps(*self.grid_margins, self.grid_steps),
            axis_steps(*self.grid_prices, self.grid_steps),
        )

    def compute_grid(self, progress: Progress | None = None) -> bool:
        """KPIs over margin × credit price with the other knobs as they are now."""
        if self.base is None:
            self._fail(ValidationError("no usage loaded", field="usage"))
            return False
        base = self.base
        margins, prices = self.grid_axes()
        chunks = [list(c) for c in np.array_split(np.array(margins, dtype=object), _GRID_CHUNKS)]
        chunks = [c for c in chunks if c]
        parts: list[pd.DataFrame] = []

        def grid_part(c: list[Any]) -> pd.DataFrame:  # the knobs are read inside _attempt
            return scenario_grid(
                base, None, c, prices, settings=self.settings(), behaviour=self.behaviour()
            )

        if progress:
            progress(0, len(chunks))
        for done, chunk in enumerate(chunks, start=1):
            ok, part = self._attempt(partial(grid_part, chunk))
            if not ok or part is None:
                return False
            parts.append(part)
            if progress:
                progress(done, len(chunks))
        self.grid = pd.concat(parts, ignore_index=True)
        # ignore_index above: the label idxmax finds is the row's position (one row, a Series)
        best = self.grid.iloc[cast(int, self.grid["gross_margin"].idxmax())]
        self._say(Message.success(
            f"grid of {len(self.grid)} scenarios; the highest gross margin: "
            f"{money_text(best['gross_margin'])} {self.currency} at markup "
            f"{best['profit_margin']:g} % and credit price {best['credit_price']:g}"))  # fmt: skip
        return True

    def heatmap(self) -> Any:
        # deferred: charts loads plotly (heavy), needed only when a heatmap is drawn
        from hubkit.charts import margin_heatmap

        if self.grid is None:
            return None
        fig = margin_heatmap(self.grid, value=self.grid_value)
        fig.update_layout(height=460, margin={"l": 70, "r": 20, "t": 60, "b": 60})
        return fig

    # ---- export --------------------------------------------------------------------------
    def export(self, progress: Progress | None = None) -> Path | None:
        """KPIs CSV, per-model CSV, figures HTML and summary JSON in ``reports/<UTC>-scenario/``."""
        if self.result is None:
            self._fail(ValidationError("no scenario to export: fix the inputs first"))
            return None
        ok, folder = self._attempt(lambda: export_scenario(self, progress))
        if not ok or folder is None:
            return None
        self.last_export = folder
        # the web app names the export, not where the server keeps it
        where = f"as {folder.name} (with the reports)" if in_web_app() else f"to {folder}"
        self._say(Message.success(f"exported the scenario {where}"))
        return folder

    def parameters(self) -> dict[str, Any]:
        """The knobs of the current scenario, as exact values (for the export's summary)."""
        return {
            "profit_margin_markup_on_cost_pct": self.margin,
            "credit_price": self.credit_price,
            "currency": self.currency,
            "credit_based_billing_enabled": self.billing_enabled,
            "new_user_credit_grant_amount": self.grant,
            "credit_expiration_days": self.expiry_days,
            "pack_amount": self.pack_amount,
            "buy_probability": self.buy_probability,
            "usage": dataclasses.asdict(self.source) if self.source else None,
            "rates": self.rate_count,
        }


def open_finance_store(settings: Any = None) -> Store | None:
    """The store opened read-only (SQLite ``mode=ro``, PostgreSQL read-only transactions).

    None when there is nothing to explore yet (no database, no schema, or no rates):
    :func:`finance_summary` then says why and what to do.
    """
    try:
        store = Store.open(settings=settings, read_only=True)
    except HubkitError:
        return None
    if not store.list_rates():
        store.close()
        return None
    return store


def in_web_app() -> bool:
    """True in a kernel Voilà started (the finance web app), which sets ``VOILA_SERVER_URL``."""
    return bool(os.environ.get("VOILA_SERVER_URL"))


def finance_summary(store: Store | None, settings: Any = None, *, web: bool | None = None) -> str:
    """The environment summary for a read-only store, or why there is no store to explore.

    In the web app (``web``; default: :func:`in_web_app`) it speaks to finance: no
    environment names, commands or server paths, which are the operator's business.
    """
    web = in_web_app() if web is None else web
    if web:
        if store is None:
            return (
                "NO DATA TO EXPLORE YET: the operator has not set up the rates this page reads. "
                "Ask them to, then reload this page."
            )
        return "Read-only: explore prices freely; nothing on this page changes a rate."
    settings = settings or get_settings()
    url = display_url(settings.database_url)  # an unparsable one: Store.open said so already
    if store is None:
        return (
            f"NO DATA TO EXPLORE: the database {url} is missing, empty or not initialised.\n"
            "Seed it once with write access — open notebook 01, 02 or 03 (they fill an empty "
            "store with the sample data) or run `python -m hubkit demo` — then reload this page."
        )
    lines = environment_summary(store, settings).splitlines()
    return "\n".join(
        f"database:  {url} (read-only)" if line.startswith("database:") else line for line in lines
    )
