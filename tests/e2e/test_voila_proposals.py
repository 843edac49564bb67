"""The finance web app shows rate proposals and their impact, read-only (issue 14).

Voilà serves 04 as ``make app`` does (code hidden, the store opened read-only) over a store
holding one proposal; chromium opens the proposal under the scenario explorer: its diff,
the revenue waterfall, and no approve / reject / apply control anywhere. The database file
is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e._lab import CHROMIUM, chromium_page, jupyter_env
from e2e._voila import VoilaServer, start_voila, stop_voila
from hubkit.config import get_settings
from hubkit.proposals import propose_bulk
from hubkit.store import Store
from hubkit.widgets import seed_sample_data

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "04-margin-scenarios.ipynb"
TIMEOUT_MS = 60_000


@pytest.fixture
def proposal_db() -> tuple[Path, int]:
    with Store.open() as store:  # HUBKIT_DATA_DIR is this test's own (tests/conftest.py)
        assert seed_sample_data(store)
        proposal = propose_bulk(store, "25", None, reason="Q4 prices, for review")
    return get_settings().data_dir / "hubkit.db", proposal.id


@pytest.fixture
def voila(tmp_path: Path, proposal_db: tuple[Path, int]) -> Iterator[VoilaServer]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh` (as root)",
            pytrace=False,
        )
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy2(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    server = start_voila(root / NOTEBOOK, jupyter_env(tmp_path, dict(os.environ)),
                         tmp_path / "voila.log")  # fmt: skip
    try:
        yield server
    finally:
        stop_voila(server)


def test_finance_sees_a_proposal_and_its_impact_and_cannot_act(
    voila: VoilaServer, proposal_db: tuple[Path, int]
) -> None:
    from playwright.sync_api import expect

    path, proposal_id = proposal_db
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with chromium_page(1400, 1600, timeout_ms=TIMEOUT_MS) as page:
        page.goto(voila.url)
        show = page.locator("button.hubkit-proposals-show")
        expect(show).to_be_visible(timeout=120_000)
        expect(page.locator(".hubkit-proposals-panel")).to_contain_text("1 rate proposal (1 open)")
        show.click()
        panel = page.locator(".hubkit-proposals-read-only")
        expect(panel).to_have_count(1)
        expect(panel.locator(".hubkit-proposals-identity")).to_contain_text("read-only")
        expect(panel.locator(".hubkit-proposals-summary")).to_contain_text("1 proposal shown")
        panel.locator(".hubkit-proposals-pick select").select_option(index=1)
        expect(panel.locator(".hubkit-proposals-header")).to_contain_text(
            f"proposal {proposal_id} · proposed · bulk"
        )
        expect(panel.locator(".hubkit-proposals-totals")).to_contain_text("list revenue")
        expect(panel.locator(".hubkit-proposals-waterfall .js-plotly-plot")).to_have_count(1)
        expect(panel.locator(".hubkit-proposals-changes")).to_contain_text("rate changes")
        for action in ("approve", "reject", "apply", "actor", "act"):
            assert page.locator(f".hubkit-proposals-{action}").count() == 0, action
    stop_voila(voila)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "the web app wrote"
    with Store.open(read_only=True) as store:
        assert store.get_proposal(proposal_id).state.value == "proposed"
