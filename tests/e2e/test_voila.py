"""The finance web app: Voilà serves the margin-scenarios notebook, chromium drives it.

Starts ``python -m voila`` on 127.0.0.1 (token auth, ``--strip_sources=True`` as
``make app`` does) over a temp copy of ``04-margin-scenarios.ipynb`` and a temp store
seeded beforehand; Playwright opens the page, moves the markup slider one step, sees a KPI
change, clicks Export and the test finds the export files. The page shows no code, and
the database file is byte-identical at the end: the web app opened it read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from e2e import _voila
from e2e._lab import CHROMIUM, chromium_page, jupyter_env
from e2e._voila import VoilaServer, start_voila, stop_voila
from hubkit.config import get_settings
from hubkit.store import Store
from hubkit.widgets import seed_sample_data

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "04-margin-scenarios.ipynb"
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 60_000
#: Code of the notebook that must not reach the page (``--strip_sources=True``).
SOURCE_MARKERS = ("open_finance_store", "scenario_explorer(", "usage_file =", "from hubkit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def seeded_db() -> Path:
    with Store.open() as store:  # HUBKIT_DATA_DIR is this test's own (tests/conftest.py)
        assert seed_sample_data(store)
    path = get_settings().data_dir / "hubkit.db"
    assert path.is_file()
    return path


@pytest.fixture
def voila(tmp_path: Path, seeded_db: Path) -> Iterator[VoilaServer]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh` (as root)",
            pytrace=False,
        )
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy2(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    env = jupyter_env(tmp_path, dict(os.environ))
    env.update(  # a gateway with a new-user grant that expires: every ledger line moves
        AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED="true",
        NEW_USER_CREDIT_GRANT_ENABLED="true",
        NEW_USER_CREDIT_GRANT_AMOUNT="2",
        CREDIT_EXPIRATION_DAYS="14",
    )
    server = start_voila(root / NOTEBOOK, env, tmp_path / "voila.log")
    try:
        yield server
    finally:
        stop_voila(server)


def test_a_port_taken_before_voila_binds_it_is_retried_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # free_port() then the server's bind: anything may take the port in between. Here
    # something surely has, once; start_voila must come up on another port, not hang.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        handed_out = iter([taken])
        real_free_port = _voila.free_port
        monkeypatch.setattr(_voila, "free_port", lambda: next(handed_out, 0) or real_free_port())
        root = tmp_path / "root"
        root.mkdir()
        shutil.copy2(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
        env = jupyter_env(tmp_path, dict(os.environ))
        server = start_voila(root / NOTEBOOK, env, tmp_path / "voila.log")
        try:
            assert server.port != taken and server.process.poll() is None
        finally:
            stop_voila(server)


def _exports() -> list[Path]:
    reports = get_settings().reports_dir
    return sorted(reports.glob("*-scenario/summary.json")) if reports.is_dir() else []


def test_finance_explores_and_exports_without_writing(voila: VoilaServer, seeded_db: Path) -> None:
    from playwright.sync_api import expect

    before = _digest(seeded_db)
    with chromium_page(1400, 1600, timeout_ms=TIMEOUT_MS) as page:
        page.goto(voila.url)
        revenue = page.locator(".hubkit-kpi-revenue .v")
        expect(revenue).to_contain_text("USD", timeout=120_000)  # the kernel ran the notebook
        expect(page.locator(".hubkit-scn-source")).to_contain_text("read-only")
        expect(page.locator(".hubkit-scn-source")).to_contain_text("current rates as of")
        expect(page.locator(".hubkit-kpi-credits_granted .v")).not_to_have_text("0.00")
        expect(page.locator(".hubkit-scn-chart-revenue_vs_cost .js-plotly-plot")).to_have_count(1)
        first = revenue.inner_text()

        page.locator(".hubkit-scn-margin-slider .noUi-handle").press("ArrowRight")
        expect(page.locator(".hubkit-scn-margin-text input")).to_have_value("2.5")
        expect(revenue).not_to_have_text(first)

        page.locator("button.hubkit-scn-export").click()
        expect(page.locator(".hubkit-scn-message")).to_contain_text("exported the scenario")
        exports = _wait_for(_exports)

        content = page.content()
        editors = page.locator(".jp-InputArea-editor, .jp-CodeMirrorEditor").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "voila-margin-scenarios.png"), full_page=True)

    leaked = [m for m in SOURCE_MARKERS if m in content]
    assert not leaked, f"code visible in the web app: {leaked}"
    assert editors == 0, "code cells are shown"
    # developer material stays out of the web app: environment names, calls, server paths
    text = BeautifulSoup(content, "html.parser").get_text(" ")
    shown = [t for t in ("HUBKIT_", "AIGNE_HUB_", "NEW_USER_CREDIT", "Store.open",
                         str(seeded_db.parent), str(REPO)) if t in text]  # fmt: skip
    assert shown == [], f"the web app shows developer material: {shown}"
    # the page came from a kernel that had run the notebook before anyone asked
    # (jupyter/voila.json: preheat_kernel, on JUPYTER_CONFIG_PATH as `make app` puts it)
    assert "Using pre-heated kernel" in voila.log.read_text(errors="replace"), voila.log_tail()
    summary = json.loads(exports[0].read_text())
    assert summary["parameters"]["profit_margin_markup_on_cost_pct"] == "2.5"
    assert summary["store"]["read_only"] is True
    folder = exports[0].parent
    assert {"kpis.csv", "models.csv", "figures.html"} <= {p.name for p in folder.iterdir()}
    stop_voila(voila)  # the kernel is gone: nothing can write any more
    assert _digest(seeded_db) == before, "the web app wrote to the database"


def _wait_for(find, timeout: float = 60):  # type: ignore[no-untyped-def]
    """The click reaches the kernel asynchronously: poll for its effect."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("the export folder did not appear")
