"""The scenario explorer's view: sliders, KPI cards, plotly charts, grid heatmap, export.

Thin by design: every number comes from :class:`~hubkit.widgets.scenarios.ScenarioExplorerState`;
this module only wires widgets to it. Charts are plotly figures put into ``Output``
widgets as plotly's own mime bundle (JupyterLab and Voila draw them with the
jupyterlab-plotly renderer that ships with plotly).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import plotly.io as pio

from hubkit.decimals import plain
from hubkit.store import Store
from hubkit.widgets._chart_panel import ChartPanel
from hubkit.widgets._common import (
    ProgressBar,
    field_error,
    heading,
    message_area,
    price_controls,
    show_message,
    slider_text,
    text_input,
)
from hubkit.widgets.scenarios import (
    CHARTS,
    GRID_VALUES,
    KpiCard,
    ScenarioExplorerState,
    finance_summary,
)

_KPI_CSS = (
    ".hubkit-kpis{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}"
    ".hubkit-kpi{border:1px solid #dadce0;border-radius:6px;padding:6px 10px;min-width:150px;"
    "max-width:210px;background:#fff}"
    ".hubkit-kpi .v{font-size:18px;font-weight:600;color:#202124}"
    ".hubkit-kpi .l{font-size:11px;color:#5f6368;line-height:1.2}"
    ".hubkit-kpi.bad .v{color:#a50e0e}"
    ".hubkit-kpi .b{font-size:11px;color:#5f6368;border-top:1px dotted #dadce0;margin-top:3px}"
)


def figure_output(fig: Any) -> dict[str, Any]:
    """A plotly figure as one ``display_data`` output (what an Output widget holds)."""
    data = json.loads(pio.to_json(fig, validate=False))
    data["config"] = {"responsive": True, "displaylogo": False}
    return {
        "output_type": "display_data",
        "data": {"application/vnd.plotly.v1+json": data, "text/plain": "<plotly figure>"},
        "metadata": {},
    }


def _start_note(s: ScenarioExplorerState) -> str:
    if s.earned_markup is None:
        return ""
    note = f" · the rates in force earn {plain(s.earned_markup)} % markup on cost"
    if s.earned_markup != s.stored_margin:
        note += f" (stored target margin: {plain(s.stored_margin)} %)"
    return note


def gateway_note_html(s: ScenarioExplorerState) -> str:
    """What the gateway importer skipped, and how its stored credits compare ("" if none)."""
    lines = list(s.import_report[1:])  # the first line repeats the counts shown above
    rec = s.reconciliation
    if rec is not None:
        lines.insert(
            0,
            f"the gateway stored {plain(rec['stored_total']) or '0'} credits; the rates in "
            f"force re-price them at {plain(rec['repriced_total']) or '0'}: {rec['match']:,} "
            f"calls match, {rec['mismatch']:,} differ, {rec['unsupported']:,} have no rate "
            "(details: python -m hubkit usage reconcile)",
        )
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines)
    return f"<ul class='hubkit-scn-gateway' style='color:#5f6368;margin:2px 0'>{items}</ul>"


def kpi_cards_html(cards: list[KpiCard]) -> str:
    items = "".join(
        f'<div class="hubkit-kpi hubkit-kpi-{c.name}{" bad" if c.bad else ""}">'
        f'<div class="v">{html.escape(c.text)}</div><div class="l">{html.escape(c.label)}</div>'
        + (
            f'<div class="b">in force: {html.escape(c.baseline_text)}</div>'
            if c.baseline_text
            else ""
        )
        + "</div>"
        for c in cards
    )
    return f'<div class="hubkit-kpis">{items}</div>'


def _range_text(slider: widgets.FloatRangeSlider) -> tuple[str, str]:
    """A range slider's two ends as exact texts, at the slider's step precision."""
    low, high = slider.value
    return slider_text(low, slider.step), slider_text(high, slider.step)


def _nice_max(value: float) -> float:
    """1, 2 or 5 × a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    power: float = 10 ** math.floor(math.log10(value))  # int ** int: typeshed says Any
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _float_slider(description: str, value: float, lo: float, hi: float, step: float,
                  fmt: str = ".4g") -> widgets.FloatSlider:  # fmt: skip
    return widgets.FloatSlider(
        value=value, min=lo, max=hi, step=step, description=description,
        continuous_update=False, readout_format=fmt, style={"description_width": "110px"},
        layout=widgets.Layout(width="380px"),
    )  # fmt: skip


class ScenarioExplorerApp(widgets.VBox):
    """Finance's what-if explorer. ``ScenarioExplorerApp(store)`` in a notebook cell."""

    def __init__(
        self, store: Store, *, state: ScenarioExplorerState | None = None, **options: Any
    ) -> None:
        self.state = state or ScenarioExplorerState(store, **options)
        s = self.state
        price = float(s.credit_price or 1)
        self._margin_slider, self._margin_text, self._price_slider, self._price_text = (
            price_controls(s, "markup", "280px")
        )
        self._margin_error, self._price_error = widgets.HTML(), widgets.HTML()
        grant_max = _nice_max(max(float(s.grant) * 4, 20 / price))
        self._grant_step = grant_max / 400
        self._grant = _float_slider(
            "grant (credits)", float(s.grant), 0, grant_max, self._grant_step
        )
        self._expiry = widgets.IntSlider(
            value=s.expiry_days, min=0, max=max(365, s.expiry_days), description="expiry days",
            continuous_update=False, style={"description_width": "110px"},
            layout=widgets.Layout(width="380px"),
        )  # fmt: skip
        pack_max = _nice_max(max(float(s.pack_amount) * 4, 100))
        self._pack = _float_slider(f"pack ({s.currency})", float(s.pack_amount), 0.5, pack_max, 0.5)
        self._buyers = _float_slider("buyers (share)", s.buy_probability, 0, 1, 0.05, ".2f")
        self._billing = widgets.Checkbox(
            value=s.billing_enabled, description="credit-based billing"
        )
        self._knob_error = widgets.HTML()
        self._source = widgets.HTML()
        self._kpis = widgets.HTML()
        self._charts = ChartPanel(CHARTS, "hubkit-scn-chart-")
        lo, hi = (float(p) for p in s.grid_prices)
        self._grid_margins = widgets.FloatRangeSlider(
            value=[float(m) for m in s.grid_margins], min=0, max=200, step=5,
            description="markup % from–to", continuous_update=False, readout_format=".0f",
            style={"description_width": "130px"}, layout=widgets.Layout(width="460px"),
        )  # fmt: skip
        self._grid_prices = widgets.FloatRangeSlider(
            value=[lo, hi], min=price / 10, max=price * 10, step=price / 100,
            description="credit price from–to", continuous_update=False, readout_format=".3g",
            style={"description_width": "130px"}, layout=widgets.Layout(width="460px"),
        )  # fmt: skip
        self._grid_steps = widgets.IntSlider(
            value=s.grid_steps, min=2, max=41, description="points per axis",
            continuous_update=False, style={"description_width": "110px"},
        )  # fmt: skip
        self._grid_value = widgets.Dropdown(
            options=[(label, name) for name, label in GRID_VALUES.items()], value=s.grid_value,
            description="colour by", layout=widgets.Layout(width="340px"),
        )  # fmt: skip
        self._grid_run = widgets.Button(description="Compute grid", icon="th", button_style="info")
        self._grid_error = widgets.HTML()
        self._heatmap = widgets.Output()
        self._usage_path = text_input(
            "usage file", placeholder="CSV or Parquet path", width="520px"
        )
        self._usage_load = widgets.Button(description="Load file", icon="upload")
        self._gateway_path = text_input(
            "gateway", placeholder="the gateway's SQLite file, postgresql:// URL or CSV export",
            width="520px",
        )  # fmt: skip
        self._gateway_load = widgets.Button(description="Load gateway", icon="database")
        self._imported_load = widgets.Button(description="Imported calls", icon="history")
        self._gateway_note = widgets.HTML()
        self._n_calls = widgets.BoundedIntText(
            value=s.source.calls if s.source else 100_000, min=1, max=50_000_000, step=10_000,
            description="synthetic calls", style={"description_width": "110px"},
        )  # fmt: skip
        self._seed = widgets.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed")
        self._synthetic = widgets.Button(description="Synthetic usage", icon="random")
        self._usage_error = widgets.HTML()
        self._export = widgets.Button(
            description="Export scenario", icon="download", button_style="primary"
        )
        self._progress = ProgressBar()
        self._message = message_area()
        self._classes()
        self._wire()
        self.add_class("hubkit-scenarios")
        row = widgets.HBox
        super().__init__(
            [
                # once, not with every KPI update: a new <style> restyles the whole page
                widgets.HTML(f"<style>{_KPI_CSS}</style>"),
                heading("Margin scenarios: what a price decision does (read-only)"),
                self._source,
                row([self._margin_slider, self._margin_text, self._margin_error]),
                row([self._price_slider, self._price_text, self._price_error]),
                row([self._grant, self._expiry, self._billing]),
                row([self._pack, self._buyers]),
                self._knob_error,
                self._progress.bar,
                self._kpis,
                self._message,
                self._charts.widget,
                heading("Grid: markup × credit price"),
                row([self._grid_margins, self._grid_prices]),
                row([self._grid_steps, self._grid_value, self._grid_run]),
                self._grid_error,
                self._heatmap,
                heading("Usage and export"),
                row([self._usage_path, self._usage_load]),
                row([self._gateway_path, self._gateway_load, self._imported_load]),
                self._gateway_note,
                row([self._n_calls, self._seed, self._synthetic]),
                self._usage_error,
                self._export,
            ]
        )
        self._render()

    def _classes(self) -> None:
        for w, cls in (
            (self._margin_slider, "margin-slider"), (self._margin_text, "margin-text"),
            (self._price_slider, "price-slider"), (self._price_text, "price-text"),
            (self._grant, "grant"), (self._expiry, "expiry"), (self._pack, "pack"),
            (self._buyers, "buyers"), (self._billing, "billing"), (self._kpis, "kpis"),
            (self._source, "source"), (self._message, "message"), (self._grid_run, "grid-run"),
            (self._heatmap, "heatmap"), (self._usage_path, "usage-path"),
            (self._usage_load, "usage-load"), (self._synthetic, "synthetic"),
            (self._export, "export"),
        ):  # fmt: skip
            w.add_class(f"hubkit-scn-{cls}")  # stable selectors for the browser test

    def _wire(self) -> None:
        s = self.state
        self._margin_text.observe(
            lambda c: self._run(lambda: s.set_margin(c["new"])), names="value"
        )
        self._price_text.observe(
            lambda c: self._run(lambda: s.set_credit_price(c["new"])), names="value"
        )
        self._grant.observe(self._on_grant, names="value")
        self._expiry.observe(
            lambda c: self._run(lambda: s.set_expiry_days(c["new"])), names="value"
        )
        self._pack.observe(
            lambda c: self._run(lambda: s.set_pack_amount(slider_text(c["new"], 0.5))),
            names="value",
        )
        self._buyers.observe(
            lambda c: self._run(lambda: s.set_buy_probability(slider_text(c["new"], 0.05))),
            names="value",
        )
        self._billing.observe(lambda c: self._run(lambda: s.set_billing(c["new"])), names="value")
        for w in (self._grid_margins, self._grid_prices, self._grid_steps, self._grid_value):
            w.observe(self._on_grid_range, names="value")
        self._grid_run.on_click(self._on_grid)
        self._usage_load.on_click(self._on_load)
        self._gateway_load.on_click(self._on_gateway)
        self._imported_load.on_click(self._on_imported)
        self._synthetic.on_click(self._on_synthetic)
        self._export.on_click(self._on_export)

    # ---- drawing -------------------------------------------------------------------------
    def _render(self, *, charts: bool = True) -> None:
        s = self.state
        src = s.source
        store_mode = "read-only" if s.store.read_only else "read-write (this app never writes)"
        if src is not None:
            unsupported = (
                f", {src.unsupported:,} calls without a current rate" if src.unsupported else ""
            )
            self._source.value = (
                f"<span style='color:#5f6368'>usage: {html.escape(src.description)}, "
                f"{src.calls:,} calls by {src.users:,} users{unsupported} · "
                f"{s.rate_count:,} current rates as of {s.rates_read_at:%Y-%m-%d %H:%M} UTC · "
                f"store {store_mode}"
                f"{html.escape(_start_note(s))}</span>"
            )
        field_error(self._margin_error, s.errors.get("margin"))
        field_error(self._price_error, s.errors.get("credit_price"))
        knob = next((s.errors[k] for k in ("grant", "expiry_days", "pack_amount",
                                           "buy_probability") if k in s.errors), None)  # fmt: skip
        field_error(self._knob_error, knob)
        field_error(self._grid_error, s.errors.get("grid"))
        field_error(self._usage_error, s.errors.get("usage"))
        self._gateway_note.value = gateway_note_html(s)
        self._kpis.value = kpi_cards_html(s.kpi_cards())
        self._export.disabled = s.result is None
        show_message(self._message, s.message)
        if charts:
            # The KPI cards above are already sent; the charts follow in one message and
            # change together on the page.
            self._charts.show({name: s.chart_data(name) for name in CHARTS}, s.make_figure)

    def _run(self, work: Callable[[], Any], *, label: str = "", charts: bool = True) -> None:
        if label:
            self._progress.start(label)
        try:
            work()
        finally:
            if label:
                self._progress.finish()
        self._render(charts=charts)

    def _on_grant(self, change: dict[str, Any]) -> None:
        self._run(lambda: self.state.set_grant(slider_text(change["new"], self._grant_step)))

    def _on_grid_range(self, _: dict[str, Any]) -> None:
        ok = self.state.set_grid_range(
            margins=_range_text(self._grid_margins),
            prices=_range_text(self._grid_prices),
            steps=self._grid_steps.value,
            value=self._grid_value.value,
        )
        field_error(self._grid_error, None if ok else self.state.errors.get("grid"))
        if ok and self.state.grid is not None:
            self._draw_heatmap()

    def _draw_heatmap(self) -> None:
        fig = self.state.heatmap()
        self._heatmap.outputs = () if fig is None else (figure_output(fig),)

    def _on_grid(self, _: widgets.Button) -> None:
        with self._progress.showing("grid") as report:
            self.state.compute_grid(report)
        self._draw_heatmap()
        self._render(charts=False)

    def _on_load(self, _: widgets.Button) -> None:
        with self._progress.showing("loading usage", 3) as report:
            self.state.load_usage_file(self._usage_path.value, report)
        self._heatmap.outputs = ()
        self._render()

    def _on_gateway(self, _: widgets.Button) -> None:
        with self._progress.showing("reading the gateway's calls", 3) as report:
            self.state.load_gateway(self._gateway_path.value, report)
        self._heatmap.outputs = ()
        self._render()

    def _on_imported(self, _: widgets.Button) -> None:
        with self._progress.showing("reading the imported calls", 3) as report:
            self.state.load_imported(report)
        self._heatmap.outputs = ()
        self._render()

    def _on_synthetic(self, _: widgets.Button) -> None:
        with self._progress.showing("generating usage", 3) as report:
            self.state.load_synthetic(self._n_calls.value, self._seed.value, report)
        self._heatmap.outputs = ()
        self._render()

    def _on_export(self, _: widgets.Button) -> None:
        with self._progress.showing("exporting", 4) as report:
            self.state.export(report)
        self._render(charts=False)


def scenario_explorer(store: Store | None, **options: Any) -> widgets.Widget:
    """The explorer for ``store``, or a message saying why there is nothing to explore."""
    if store is None:
        text = html.escape(finance_summary(None)).replace("\n", "<br>")
        box = widgets.HTML(
            f"<div style='color:#7a4f01;background:#fef7e0;padding:10px;border-radius:6px'>"
            f"<b>{text}</b></div>"
        )
        box.add_class("hubkit-scn-missing")
        return box
    return ScenarioExplorerApp(store, **options)
