"""The bulk-update notebook in a real JupyterLab, driven by chromium through Playwright.

Starts JupyterLab on 127.0.0.1 (token auth, temp root, temp store seeded with the sample
data), opens ``03-bulk-rate-update.ipynb``, runs all cells, moves the margin slider one
step, sees the preview change, types a reason and clicks Apply; then reads the database
and finds the new rates and their history rows. A screenshot goes to ``test-artifacts/``.
And ``04-margin-scenarios.ipynb``: its four charts are drawn and follow a slider step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from e2e._lab import LabServer, chromium_page, open_and_run, seeded_lab
from hubkit.pricing import bulk_preview, margin_rate
from hubkit.store import HistoryEntry, Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "03-bulk-rate-update.ipynb"
SCENARIOS = "04-margin-scenarios.ipynb"
#: JS: the drawn bars' path data (they change when the revenue bars move)
_WIDTHS = "(paths) => paths.map((p) => p.getAttribute('d'))"
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 60_000
REASON = "e2e: margin one step up"
NOTIFICATIONS = "@jupyterlab/apputils-extension:notification"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    with seeded_lab(tmp_path, sorted((REPO / "notebooks").glob("*.ipynb"))) as server:
        yield server


def _bulk_history(store: Store) -> list[HistoryEntry]:
    return [e for e in store.history(limit=5000) if e.change_type == "bulk_update"]


def test_bulk_update_notebook_in_jupyterlab(lab: LabServer) -> None:
    from playwright.sync_api import expect

    with Store.open() as store:
        rates = store.list_rates()
        settings = store.get_operator_settings()
    new_margin = settings.target_margin + Decimal("0.5")  # one step of the margin slider
    expected = bulk_preview(rates, new_margin, settings.credit_price)
    assert expected.changed

    with chromium_page(1500, 1100, timeout_ms=TIMEOUT_MS) as page:
        open_and_run(page, lab, NOTEBOOK, "hubkit-bulk")
        summary = page.locator(".hubkit-bulk-summary")
        expect(summary).to_contain_text("0 rates would change")
        outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
        expect(outputs.first).to_contain_text(f"python:    {sys.executable}")

        page.locator(".hubkit-bulk-margin-slider .noUi-handle").press("ArrowRight")
        expect(summary).to_contain_text(f"{len(expected.changed)} rates would change")
        expect(page.locator(".hubkit-bulk-margin-text input")).to_have_value(str(new_margin))
        preview = page.locator(".hubkit-bulk-preview")
        expect(preview).to_contain_text(f"{len(expected.changed)} rate changes")
        # every row is reachable: the last page shows the preview's last change ...
        preview.locator(".dt-paging-button.last").click()
        expect(preview.locator("tbody")).to_contain_text(expected.changed[-1].model)
        # ... and the filter finds any rate among all of them
        preview.locator(".dt-search input").fill("gpt-4o-mini")
        expect(preview.locator("tbody tr").first).to_contain_text("gpt-4o-mini")
        expect(preview.locator(".hubkit-download")).to_contain_text(
            f"exactly what Apply would write ({len(expected.changed)} rows, CSV)"
        )

        page.locator(".hubkit-bulk-reason input").fill(REASON)
        page.locator(".hubkit-bulk-reason input").press("Tab")
        page.locator("button.hubkit-bulk-apply").click()

        written = _wait_for_history(len(expected.changed))
        expect(page.locator(".hubkit-bulk-written")).to_contain_text("History rows written")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-bulk-update.png"), full_page=True)

    assert {e.reason for e in written} == {REASON}
    assert {e.actor for e in written} == {"pytest"}
    # the project's lab defaults (jupyter/labconfig) are in force: no news prompt, no
    # update check, with a user settings folder that says nothing about either
    got = httpx.get(lab.url(f"lab/api/settings/{NOTIFICATIONS}"), timeout=30).json()
    assert got["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert got["schema"]["properties"]["checkForUpdates"]["default"] is False
    assert "fetchNews" not in got["raw"]
    with Store.open() as store:
        after = {r.id: r for r in store.list_rates()}
    for change in expected.changed:
        rate = after[change.rate_id]
        assert rate.input_rate == margin_rate(change.unit_costs.input, new_margin, 1)
        assert rate.output_rate == margin_rate(change.unit_costs.output, new_margin, 1)
        assert rate.version == change.version + 1


def test_scenario_charts_draw_and_follow_the_slider_in_jupyterlab(lab: LabServer) -> None:
    # the charts share one light plotly bundle (hubkit/widgets/_plotly_bundle.py): in
    # JupyterLab too, each is drawn and a slider step redraws it
    from playwright.sync_api import expect

    charts = ("revenue_vs_cost", "ledger", "refusals", "balances")
    with chromium_page(1500, 1100, timeout_ms=TIMEOUT_MS) as page:
        app = open_and_run(page, lab, SCENARIOS, "hubkit-scenarios")
        for name in charts:
            expect(app.locator(f".hubkit-scn-chart-{name} .main-svg").first).to_be_attached()
        bars = app.locator(".hubkit-scn-chart-revenue_vs_cost g.trace.bars path")
        expect(bars.first).to_be_attached()
        revenue = app.locator(".hubkit-kpi-revenue .v")
        expect(revenue).to_contain_text("USD")
        before, widths = revenue.inner_text(), bars.evaluate_all(_WIDTHS)
        app.locator(".hubkit-scn-margin-slider .noUi-handle").press("ArrowRight")
        expect(revenue).not_to_have_text(before)
        page.wait_for_function(
            f"(w) => JSON.stringify(({_WIDTHS})(Array.from(document.querySelectorAll("
            "'.hubkit-scn-chart-revenue_vs_cost g.trace.bars path')))) !== JSON.stringify(w)",
            arg=widths,
        )


def _wait_for_history(count: int, timeout: float = 60) -> list[HistoryEntry]:
    """The click reaches the kernel asynchronously: poll the database for its rows."""
    deadline = time.monotonic() + timeout
    rows: list[HistoryEntry] = []
    while time.monotonic() < deadline:
        with Store.open() as store:
            rows = _bulk_history(store)
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"expected {count} bulk_update history rows, found {len(rows)}")
