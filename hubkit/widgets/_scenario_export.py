"""Export of the scenario explorer's current scenario: ``<reports>/<UTC>-scenario/``.

- ``kpis.csv`` — one row per KPI: name, label, value, unit;
- ``models.csv`` — revenue, provider cost, gross margin and 402s per model;
- ``figures.html`` — the charts (and the grid heatmap when one was computed), one
  self-contained page: plotly.js is embedded once, so it opens without a network;
- ``grid.csv`` — the grid, when one was computed;
- ``summary.json`` — the knobs (exact decimals), the KPIs and where the data came from, in
  the shape the jobs' report index reads (``run_id``, ``job``, ``status``…).

Only files are written; the store is never touched (the explorer runs on a read-only one).
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from hubkit._files import atomic_write_text, atomic_write_with, new_run_folder, write_summary
from hubkit.config import get_settings
from hubkit.replay import ReplayResult
from hubkit.store import Store
from hubkit.widgets._common import Progress
from hubkit.widgets._scenario_parts import KPI_CARDS

JOB = "scenario"


class ExportedScenario(Protocol):
    """What an export reads of the explorer's state (``ScenarioExplorerState``, which
    imports this module: the export knows the state by this shape, not by its class)."""

    currency: str
    result: ReplayResult | None
    grid: pd.DataFrame | None
    sample_users: list[str]
    store: Store

    def summary(self) -> str: ...
    def kpis(self) -> dict[str, float]: ...
    def figures(self) -> dict[str, Any]: ...
    def heatmap(self) -> Any: ...
    def parameters(self) -> dict[str, Any]: ...


def export_scenario(state: ExportedScenario, progress: Progress | None = None) -> Path:
    """Write the current scenario's files into a new report folder; returns the folder."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    assert state.result is not None
    steps = 4
    if progress:
        progress(0, steps)
    folder = new_run_folder(get_settings().reports_dir, JOB, started)
    kpis = state.kpis()
    labels = {name: label for name, label, _ in KPI_CARDS}
    rows = [
        {
            "name": name,
            "label": labels.get(name, name.replace("_", " ")),
            "value": value,
            "unit": _unit(name, state.currency),
        }
        for name, value in kpis.items()
    ]
    _write_frame(
        folder / "kpis.csv", pd.DataFrame(rows, columns=["name", "label", "value", "unit"])
    )
    _write_frame(folder / "models.csv", state.result.models)
    if progress:
        progress(1, steps)
    figures = dict(state.figures())
    heatmap = state.heatmap()
    if heatmap is not None:
        figures["grid"] = heatmap
        assert state.grid is not None
        _write_frame(folder / "grid.csv", state.grid)
    atomic_write_text(folder / "figures.html", _figures_page(state, figures))
    if progress:
        progress(3, steps)
    write_summary(
        folder,
        {
            "run_id": folder.name,
            "job": JOB,
            "status": "exported",
            "parameters": state.parameters(),
            "started_at": started,
            "duration_seconds": round(time.monotonic() - clock, 3),
            "reason": state.summary(),
            "kpis": {k: _jsonable_number(v) for k, v in kpis.items()},
            "sample_users": state.sample_users,
            "store": {"read_only": state.store.read_only, "actor": state.store.actor},
            "files": sorted(p.name for p in folder.iterdir()) + ["summary.json"],
        },
    )
    if progress:
        progress(steps, steps)
    return folder


_MONEY = {"revenue", "deferred_revenue", "cash_in", "provider_cost", "promotional_cost",
          "gross_margin"}  # fmt: skip
_PCT = {"gross_margin_pct", "markup"}


def _unit(name: str, currency: str) -> str:
    if name in _MONEY:
        return currency
    if name in _PCT:
        return "%"
    if name.startswith(("credits_", "promo_", "purchased_")) or name == "overdraft":
        return "credits"
    return "count"


def _jsonable_number(value: Any) -> Any:
    number = float(value)
    return None if number != number else value  # NaN (no revenue) is not JSON


def _figures_page(state: ExportedScenario, figures: dict[str, Any]) -> str:
    parts = []
    for i, fig in enumerate(figures.values()):
        # plotly.js once, in the first figure; the others reuse it.
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    title = html.escape(f"Scenario: {state.summary()}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>hubkit scenario</title></head><body style='font-family:sans-serif'>"
        f"<h2>{title}</h2>" + "".join(f"<div>{p}</div>" for p in parts) + "</body></html>"
    )


def _write_frame(path: Path, frame: pd.DataFrame) -> None:
    # beside and renamed, 0600: a reader of the report folder never sees half a table
    atomic_write_with(path, lambda tmp: frame.to_csv(tmp, index=False))
