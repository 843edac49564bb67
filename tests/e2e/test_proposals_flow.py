"""Issue 14's flow in a real JupyterLab, driven by chromium as two people would do it.

03 bulk update: a margin and a reason, then **Propose** (not Apply): a proposal is stored
with its impact and no rate moves. 06 rate proposals: a second person (on SQLite the
reviewer's name is typed: a convention, not a control, and the page says so) opens it,
sees its diff and the revenue waterfall, is refused nothing, approves, applies it now; the
store then holds exactly the proposed rates, with history rows carrying the proposal id.
Before that, the proposer's own attempt is shown disabled, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e._lab import LabServer, chromium_page, open_and_run, seeded_lab
from hubkit.proposals import ProposalState
from hubkit.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["03-bulk-rate-update.ipynb", "06-proposals.ipynb"]
TIMEOUT_MS = 60_000
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    with seeded_lab(tmp_path, [REPO / "notebooks" / n for n in NOTEBOOKS]) as server:
        yield server


def test_propose_in_03_approve_as_a_second_actor_in_06_and_see_it_applied(lab: LabServer) -> None:
    from playwright.sync_api import expect

    with Store.open() as store:
        before = {r.id: (r.input_rate, r.output_rate, r.version) for r in store.list_rates()}
        proposer = store.actor

    with chromium_page(1500, 1400, timeout_ms=TIMEOUT_MS) as page:
        # ---- 03: propose, do not apply -------------------------------------------------
        bulk = open_and_run(page, lab, NOTEBOOKS[0], "hubkit-bulk")
        bulk.locator(".hubkit-bulk-margin-text input").fill("25")
        propose = bulk.locator("button.hubkit-bulk-propose")
        expect(bulk.locator(".hubkit-bulk-propose-why-not")).to_contain_text("type a reason")
        bulk.locator(".hubkit-bulk-reason input").fill("e2e: Q4 prices")
        expect(propose).to_be_enabled()
        propose.click()
        expect(bulk.locator(".hubkit-message.hubkit-success")).to_contain_text("proposed: proposal")
        with Store.open() as store:
            (proposal,) = store.list_proposals()
            assert proposal.state is ProposalState.PROPOSED and proposal.proposer == proposer
            assert {
                r.id: (r.input_rate, r.output_rate, r.version) for r in store.list_rates()
            } == before  # nothing written

        # ---- 06: the proposer cannot approve; a second person can ----------------------
        review = open_and_run(page, lab, NOTEBOOKS[1], "hubkit-proposals")
        review.locator(".hubkit-proposals-pick select").select_option(index=1)
        expect(review.locator(".hubkit-proposals-header")).to_contain_text(
            f"proposal {proposal.id} · proposed · bulk"
        )
        expect(review.locator(".hubkit-proposals-waterfall .js-plotly-plot")).to_have_count(1)
        expect(review.locator(".hubkit-proposals-notices")).to_contain_text("SYNTHETIC")
        approve = review.locator("button.hubkit-proposals-approve")
        expect(approve).to_be_disabled()
        expect(review.locator(".hubkit-proposals-approve-why")).to_contain_text(
            "another person must approve it"
        )
        review.locator(".hubkit-proposals-actor input").fill("e2e-reviewer")
        review.locator("button.hubkit-proposals-act").click()
        expect(review.locator(".hubkit-proposals-identity")).to_contain_text(
            "acting as 'e2e-reviewer'"
        )
        expect(review.locator(".hubkit-proposals-identity")).to_contain_text("convention")
        expect(approve).to_be_enabled()
        approve.click()
        expect(review.locator(".hubkit-proposals-message")).to_contain_text(
            f"approved proposal {proposal.id} as e2e-reviewer"
        )
        apply = review.locator("button.hubkit-proposals-apply")
        expect(apply).to_be_enabled()
        apply.click()
        expect(review.locator(".hubkit-proposals-message")).to_contain_text(
            f"applied proposal {proposal.id} in one transaction"
        )
        expect(review.locator(".hubkit-proposals-header")).to_contain_text("· applied ·")
        expect(review.locator(".hubkit-proposals-events")).to_contain_text("e2e-reviewer")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "06-proposals.png"), full_page=True)

    with Store.open() as store:
        done = store.get_proposal(proposal.id)
        assert done.state is ProposalState.APPLIED and done.approvals == ("e2e-reviewer",)
        rates = {r.id: r for r in store.list_rates()}
        for change in done.changes:
            assert change.rate_id is not None
            rate = rates[change.rate_id]
            assert rate.input_rate == change.value("after", "input_rate")
            assert rate.output_rate == change.value("after", "output_rate")
        assert not store.preview_bulk_update("25", proposal.metadata["credit_price"]).changed  # type: ignore[index]
        history = store.history(since=done.created_at)
        assert len(history) == len(done.changes)
        assert {h.proposal_id for h in history} == {proposal.id}
