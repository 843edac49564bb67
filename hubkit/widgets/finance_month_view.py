"""Notebook 07's thin view: month picker, usage source, the pack's tables and charts, export.

Everything it shows comes from :class:`~hubkit.widgets.finance_month.FinanceMonthState`.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from hubkit.store import Store
from hubkit.widgets._common import frame_html, message_area, show_message, text_input
from hubkit.widgets._live_figure import LiveFigure
from hubkit.widgets.finance_month import FinanceMonthState
from hubkit.widgets.scenarios import finance_summary

#: the pack's tables in the order the page shows them (reconciliation has its own block)
SHOWN = ("headline", "rollforward", "rollforward_by_cohort", "kpis_by_provider", "kpis_by_model")
_FIGURES = ("rollforward", "months", "models")


class FinanceMonthApp(widgets.VBox):
    """The monthly finance pack of one usage source, one month at a time."""

    def __init__(self, store: Store, **options: Any) -> None:
        self.state = FinanceMonthState(store, **options)
        self.source = widgets.HTML()
        self.source.add_class("hubkit-fin-source")
        self.usage = text_input(
            "usage source", options.get("usage_source", ""), width="560px",
            placeholder="empty: a synthetic month; or a usage file / the gateway's records",
        )  # fmt: skip
        self.load_button = widgets.Button(description="Load", icon="upload")
        self.month = widgets.Dropdown(description="month", layout=widgets.Layout(width="240px"))
        self.month.add_class("hubkit-fin-month")
        self.export_button = widgets.Button(description="Export pack", icon="download")
        self.export_button.add_class("hubkit-fin-export")
        self.message = message_area()
        self.message.add_class("hubkit-fin-message")
        self.tables = {name: widgets.HTML() for name in SHOWN}
        for name, area in self.tables.items():
            area.add_class(f"hubkit-fin-{name}")
        self.reconciliation = widgets.HTML()
        self.reconciliation.add_class("hubkit-fin-reconciliation")
        self.charts = {
            name: LiveFigure(f"hubkit-fin-chart-{name}", width="100%", height=400)
            for name in _FIGURES
        }
        self.load_button.on_click(lambda _b: self._load())
        self.export_button.on_click(lambda _b: self._export())
        self._syncing = False
        self.month.observe(self._on_month, names="value")
        super().__init__(
            [
                self.source,
                widgets.HBox([self.usage, self.load_button]),
                widgets.HBox([self.month, self.export_button]),
                self.message,
                self.tables["headline"],
                self.charts["rollforward"].box,
                self.tables["rollforward"],
                self.charts["months"].box,
                self.tables["rollforward_by_cohort"],
                self.reconciliation,
                self.tables["kpis_by_provider"],
                self.charts["models"].box,
                self.tables["kpis_by_model"],
            ]
        )
        self._refresh()

    def _load(self) -> None:
        self.state.load(self.usage.value)
        self._refresh()

    def _on_month(self, change: dict[str, Any]) -> None:
        if self._syncing or not change["new"]:
            return
        self.state.select_month(change["new"])
        self._refresh()

    def _export(self) -> None:
        self.state.export()
        show_message(self.message, self.state.message)

    def _refresh(self) -> None:
        state = self.state
        self.source.value = f"<i>{html.escape(state.source_text())}</i>"
        self._syncing = True
        try:
            self.month.options = state.months
            self.month.value = state.month or None
        finally:
            self._syncing = False
        self.export_button.disabled = state.pack is None
        show_message(self.message, state.message)
        for name, area in self.tables.items():
            frame = state.table(name)
            title = f"<h4 style='margin:8px 0 4px'>{html.escape(state.title(name))}</h4>"
            area.value = title + ("" if frame is None else frame_html(frame, height="320px"))
        recon = state.table("reconciliation_summary")
        self.reconciliation.value = (
            f"<h4 style='margin:8px 0 4px'>{html.escape(state.title('reconciliation_summary'))}"
            f"</h4><p>{html.escape(state.reconciliation_text())}</p>"
            + ("" if recon is None else frame_html(recon, height="240px"))
        )
        figures = state.figures()
        for name, chart in self.charts.items():
            chart.show(figures.get(name))


def finance_month_app(store: Store | None, **options: Any) -> widgets.Widget:
    """The app for ``store``, or a message saying why there is nothing to show."""
    if store is None:
        text = html.escape(finance_summary(None)).replace("\n", "<br>")
        box = widgets.HTML(
            f"<div style='color:#7a4f01;background:#fef7e0;padding:10px;border-radius:6px'>"
            f"<b>{text}</b></div>"
        )
        box.add_class("hubkit-fin-missing")
        return box
    return FinanceMonthApp(store, **options)
