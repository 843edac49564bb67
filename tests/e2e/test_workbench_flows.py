"""The operators' main flows in a real JupyterLab, driven by chromium as a person would.

One JupyterLab (temp root, temp store seeded with the sample data) and three notebooks:

- 02 model rates: edit a rate and save; in *History & revert* the Revert button is disabled
  until a change is picked (and says why); pick it, revert: the rate is back in the
  database and the history shows the revert.
- 03 bulk update: a margin the scheduled job would refuse (5000 %) is held: Apply stays
  disabled and names what is unusual until the confirmation is ticked; then it writes,
  and records the margin as the operator setting.
- 05 hub sync (the bundled local hub): plan, apply for real; afterwards every panel shows
  the hub as it now is (pulled again, with the time), and the fresh plan has nothing left.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from e2e._lab import LabServer, chromium_page, open_and_run, seeded_lab
from hubkit.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["02-model-rates.ipynb", "03-bulk-rate-update.ipynb", "05-hub-sync.ipynb"]
TIMEOUT_MS = 60_000


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    with seeded_lab(
        tmp_path, [REPO / "notebooks" / n for n in NOTEBOOKS], unset=("HUBKIT_HUB_URL",)
    ) as server:  # fmt: skip  (05: the bundled hub)
        yield server


def test_revert_guardrail_and_hub_apply_as_an_operator_does_them(lab: LabServer) -> None:
    from playwright.sync_api import expect

    with Store.open() as store:
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        assert rate is not None
    label = f"openai / gpt-4o (chatCompletion) #{rate.id} v{rate.version}"

    with chromium_page(1500, 1200, timeout_ms=TIMEOUT_MS) as page:
        # ---- 02: save a change, then revert it -------------------------------------
        rates = open_and_run(page, lab, NOTEBOOKS[0], "hubkit-rates")
        rates.locator(".hubkit-rates-pick select").select_option(label=label)
        field = rates.locator(".hubkit-rates-edit-input_rate input")
        expect(field).to_have_value(str(rate.input_rate.normalize()))
        field.fill("0.000009")
        rates.locator(".hubkit-rates-edit-reason input").fill("e2e: try a price")
        rates.locator("button.hubkit-rates-save").click()
        expect(rates.locator(".hubkit-rates-message")).to_contain_text("saved openai/gpt-4o")
        with Store.open() as store:
            assert store.get_rate(rate.id).input_rate == Decimal("0.000009")
        rates.locator(".lm-TabBar-tab", has_text="History & revert").click()
        revert = rates.locator("button.hubkit-rates-revert")
        expect(revert).to_be_disabled()
        expect(rates.locator(".hubkit-rates-revert-why")).to_contain_text(
            "pick the change to revert"
        )
        rates.locator(".hubkit-rates-change select").select_option(index=1)
        expect(revert).to_be_enabled()
        revert.click()
        expect(rates.locator(".hubkit-rates-message")).to_contain_text("reverted change")
        expect(rates.locator(".hubkit-rates-history")).to_contain_text("revert")
        with Store.open() as store:
            back = store.get_rate(rate.id)
            assert back.input_rate == rate.input_rate
            assert store.history(rate_id=rate.id)[0].change_type == "revert"

        # ---- 03: a change the job would refuse needs a confirmation ---------------
        bulk = open_and_run(page, lab, NOTEBOOKS[1], "hubkit-bulk")
        bulk.locator(".hubkit-bulk-margin-text input").fill("5000")
        bulk.locator(".hubkit-bulk-reason input").fill("e2e: on purpose")
        apply = bulk.locator("button.hubkit-bulk-apply")
        expect(bulk.locator(".hubkit-bulk-unusual")).to_contain_text("move by more than 50 %")
        expect(apply).to_be_disabled()
        expect(bulk.locator(".hubkit-bulk-why-not")).to_contain_text("tick the confirmation")
        bulk.locator(".hubkit-bulk-confirm input").check()
        expect(apply).to_be_enabled()
        apply.click()
        expect(bulk.locator(".hubkit-bulk-written")).to_contain_text("History rows written")
        with Store.open() as store:
            assert store.get_operator_settings().target_margin == Decimal(5000)
            n_rates = len(store.list_rates())

        # ---- 05: push for real; the panels show the hub after it ------------------
        sync = open_and_run(page, lab, NOTEBOOKS[2], "hubkit-sync")
        sync.locator("button.hubkit-sync-plan").click()
        expect(sync.locator(".hubkit-sync-hub")).to_contain_text("0 rates (read")
        expect(sync.locator(".hubkit-sync-plan-table .hubkit-download")).to_be_visible()
        sync.locator(".hubkit-sync-dry-run input").uncheck()
        sync.locator("button.hubkit-sync-apply").click()
        expect(sync.locator(".hubkit-sync-message")).to_contain_text(
            "fresh plan: nothing left to do", timeout=180_000
        )
        expect(sync.locator(".hubkit-sync-hub")).to_contain_text(f"{n_rates:,} rates (read")
        expect(sync.locator(".hubkit-sync-plan-table")).to_contain_text("nothing to do")
        expect(sync.locator("button.hubkit-sync-apply")).to_be_disabled()
