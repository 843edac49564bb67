"""The finance web app opens notebook 07 (issue 15): Voilà serves ``jupyter/finance-app`` as
``make app`` does (links to 04 and 07 only), chromium picks another month, the pack follows,
Export writes the workbook, and the store's file is byte-identical at the end (read-only)."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from e2e._lab import CHROMIUM, chromium_page, jupyter_env
from e2e._voila import VoilaServer, start_voila, stop_voila
from hubkit.config import get_settings
from hubkit.store import Store
from hubkit.widgets import seed_sample_data

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "jupyter" / "finance-app"
SOURCE_MARKERS = ("open_finance_store", "finance_month_app(", "usage_source =", "from hubkit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def seeded_db() -> Path:
    with Store.open() as store:  # HUBKIT_DATA_DIR is this test's own (tests/conftest.py)
        assert seed_sample_data(store)
    return get_settings().data_dir / "hubkit.db"


@pytest.fixture
def voila(tmp_path: Path, seeded_db: Path) -> Iterator[VoilaServer]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh`")
    env = jupyter_env(tmp_path, dict(os.environ))
    env.update(
        AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED="true",
        NEW_USER_CREDIT_GRANT_ENABLED="true",
        NEW_USER_CREDIT_GRANT_AMOUNT="2",
        CREDIT_EXPIRATION_DAYS="14",
    )
    server = start_voila(APP_DIR, env, tmp_path / "voila.log")
    try:
        yield server
    finally:
        stop_voila(server)


def test_the_app_folder_links_only_the_finance_notebooks() -> None:
    links = sorted(p.name for p in APP_DIR.iterdir())
    assert links == ["04-margin-scenarios.ipynb", "07-finance-month.ipynb"]
    for link in APP_DIR.iterdir():
        assert link.is_symlink() and link.resolve().parent == REPO / "notebooks"


def _exports() -> list[Path]:
    reports = get_settings().reports_dir
    return sorted(reports.glob("*-finance-month-app/summary.json")) if reports.is_dir() else []


def test_finance_opens_the_monthly_pack_read_only(voila: VoilaServer, seeded_db: Path) -> None:
    from playwright.sync_api import expect

    base = f"http://127.0.0.1:{voila.port}"
    with pytest.raises(urllib.error.HTTPError) as info:  # the operator notebooks are not served
        urllib.request.urlopen(
            f"{base}/voila/render/01-providers-and-credentials.ipynb?token={voila.token}",
            timeout=60,
        )
    assert info.value.code == 404
    before = _digest(seeded_db)
    url = f"{base}/voila/render/07-finance-month.ipynb?token={voila.token}"
    with chromium_page(1400, 1600, timeout_ms=60_000) as page:
        page.goto(url)
        headline = page.locator(".hubkit-fin-headline")
        expect(headline).to_contain_text("closing balance", timeout=120_000)
        expect(page.locator(".hubkit-fin-reconciliation")).to_contain_text("not applicable")
        expect(page.locator(".hubkit-fin-chart-rollforward .js-plotly-plot")).to_have_count(1)
        first = headline.inner_text()
        months = page.locator(".hubkit-fin-month select")
        options = months.locator("option").all_inner_texts()
        assert len(options) == 2, options
        months.select_option(options[0])
        expect(page.locator(".hubkit-fin-message")).to_contain_text(options[0])
        expect(headline).not_to_have_text(first)
        page.locator("button.hubkit-fin-export").click()
        expect(page.locator(".hubkit-fin-message")).to_contain_text("exported")
        content = page.content()
    deadline = time.monotonic() + 30
    while not _exports() and time.monotonic() < deadline:
        time.sleep(0.5)
    (export,) = _exports()
    assert (export.parent / f"finance-{options[0]}.xlsx").is_file()
    leaked = [m for m in SOURCE_MARKERS if m in content]
    assert not leaked, f"code visible in the web app: {leaked}"
    text = BeautifulSoup(content, "html.parser").get_text(" ")
    shown = [t for t in ("HUBKIT_", "AIGNE_HUB_", "Store.open", str(REPO)) if t in text]
    assert shown == [], f"the web app shows developer material: {shown}"
    stop_voila(voila)
    assert _digest(seeded_db) == before
