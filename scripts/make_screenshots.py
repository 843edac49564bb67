"""Screenshots of the workbench apps for the README: ``docs/screenshots/<notebook>.png``.

Runs each top-level notebook in a throwaway JupyterLab (temp store seeded with the sample
data and one obviously fake key, so the credentials table has a masked row), drives it with
Debian's chromium and photographs the app. Nothing of the real ``.hubkit/`` is touched.

    .venv/bin/python scripts/make_screenshots.py [--out docs/screenshots] [--only 04 05]

The proposals notebook is shown with a sample bulk proposal opened (the seed proposes it as
the operator). The margin-scenarios notebook is also photographed as the finance web app
(Voilà, code hidden, read-only store): ``04-margin-scenarios-web-app.png``. The hub-sync notebook
starts its bundled local hub (HUBKIT_HUB_URL is unset here) and is shown after a plan and
a dry run.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the JupyterLab helpers the browser test uses

from e2e._lab import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    KERNEL_READY_JS,
    jupyter_env,
    prepare_root,
    start_lab,
    stop_lab,
)
from e2e._voila import start_voila, stop_voila  # noqa: E402

# notebook → the CSS class of its app
APPS = {
    "01-providers-and-credentials.ipynb": "hubkit-providers",
    "02-model-rates.ipynb": "hubkit-rates",
    "03-bulk-rate-update.ipynb": "hubkit-bulk",
    "04-margin-scenarios.ipynb": "hubkit-scenarios",
    "05-hub-sync.ipynb": "hubkit-sync",
    "06-proposals.ipynb": "hubkit-proposals",
}
FAKE_KEY = "sk-demo-0000000000000000notreal"
# The gateway's billing settings for the scenario pictures: a grant that expires, so that
# every line of the credit ledger shows.
BILLING_ENV = {
    "AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED": "true",
    "NEW_USER_CREDIT_GRANT_ENABLED": "true",
    "NEW_USER_CREDIT_GRANT_AMOUNT": "2",
    "CREDIT_EXPIRATION_DAYS": "14",
}


def _seed(env: dict[str, str]) -> None:
    os.environ.update(env)
    from hubkit.store import Store
    from hubkit.widgets import seed_sample_data

    with Store.open() as store:
        seed_sample_data(store)
        store.add_credential("openai", "main", FAKE_KEY)
        if not store.list_proposals():  # something for 06 (and the web app) to review
            from hubkit.proposals import propose_bulk

            propose_bulk(store, "25", None, reason="sample: Q4 prices at a 25 % markup")


def _photograph(page, url: str, name: str, app_class: str, out: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_function(KERNEL_READY_JS, arg=name, timeout=90_000)
    # Room for the app: no file browser, and the notebook as wide as the window.
    page.evaluate("window.jupyterapp.shell.collapseLeft()")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_selector(f".{app_class}, .jp-Dialog")
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog button.jp-mod-accept").click()
    app = page.locator(f".{app_class}")
    app.wait_for()
    if app_class == "hubkit-bulk":  # show a real diff: margin 25 %, one provider
        page.locator(".hubkit-bulk-margin-text input").fill("25")
        page.locator(".hubkit-bulk-margin-text input").press("Enter")
        page.locator(".hubkit-bulk-summary").filter(
            has_text=re.compile(r"[1-9]\d* rates would")
        ).wait_for()
    if app_class == "hubkit-scenarios":
        _scenario_moves(page)
    if app_class == "hubkit-proposals":  # the sample proposal opened, as a reviewer sees it
        page.locator(".hubkit-proposals-pick select").select_option(index=1)
        page.locator(".hubkit-proposals-waterfall .js-plotly-plot").wait_for()
        page.locator(".hubkit-proposals-bars .js-plotly-plot").wait_for()
    if app_class == "hubkit-sync":  # a plan against the empty local hub, then a dry run
        page.locator("button.hubkit-sync-plan").click()
        page.locator(".hubkit-sync-plan-table table").first.wait_for()
        page.locator("button.hubkit-sync-apply").click()
        page.locator(".hubkit-sync-results table").first.wait_for()
    page.mouse.move(0, 0)  # no hover toolbar over a chart
    page.wait_for_timeout(500)  # let the widget layout settle before the photo
    app.screenshot(path=str(out))
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


def _scenario_moves(page) -> None:  # type: ignore[no-untyped-def]
    """A 30 % markup, and the grid around it, so that every part of the app shows."""
    page.locator(".hubkit-kpi-revenue .v").filter(has_text="USD").wait_for()
    page.locator(".hubkit-scn-margin-text input").fill("30")
    page.locator(".hubkit-scn-margin-text input").press("Enter")
    page.locator(".hubkit-scn-message").filter(has_text="markup on cost 30 %").wait_for()
    page.locator("button.hubkit-scn-grid-run").click()
    page.locator(".hubkit-scn-heatmap .js-plotly-plot").wait_for()
    page.locator(".hubkit-scn-message").filter(has_text="grid of").wait_for()


def _photograph_web_app(browser, work: Path, env: dict[str, str], out: Path) -> None:  # type: ignore[no-untyped-def]
    """The scenario explorer as finance sees it: Voilà, no code, read-only store."""
    name = "04-margin-scenarios.ipynb"
    (work / "voila").mkdir()
    notebook = work / "voila" / name
    notebook.write_bytes((REPO / "notebooks" / name).read_bytes())
    server = start_voila(notebook, jupyter_env(work, env), work / "voila.log")
    try:
        # Tall enough for the whole app: Voila scrolls inside its own container, which a
        # full-page screenshot would not unroll.
        page = browser.new_page(viewport={"width": 1400, "height": 2700})
        page.set_default_timeout(120_000)
        page.goto(server.url)
        _scenario_moves(page)
        page.mouse.move(0, 0)  # no hover toolbar over a chart
        page.evaluate("document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
        page.wait_for_timeout(800)  # plotly's resize animation
        page.screenshot(path=str(out), full_page=True)
        page.close()
        print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    finally:
        stop_voila(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument(
        "--only", nargs="+", metavar="NN", help="only these notebooks, by number (e.g. 04 05)"
    )
    args = parser.parse_args(argv)
    apps = {n: c for n, c in APPS.items() if not args.only or n[:2] in args.only}
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hubkit-shots-") as tmp:
        work = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
        base.update(
            HUBKIT_DATA_DIR=str(work / "data"),
            HUBKIT_REPORTS_DIR=str(work / "reports"),
            HUBKIT_ACTOR="operator",
            **BILLING_ENV,
        )
        _seed(base)
        root = prepare_root(work, [REPO / "notebooks" / name for name in apps])
        server = start_lab(root, jupyter_env(work, base), work / "lab.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1700, "height": 2200})
                    page.set_default_timeout(60_000)
                    for name, app_class in apps.items():
                        out = args.out / f"{Path(name).stem}.png"
                        _photograph(page, server.url(f"lab/tree/{name}"), name, app_class, out)
                    if "04-margin-scenarios.ipynb" in apps:
                        web_app = args.out / "04-margin-scenarios-web-app.png"
                        _photograph_web_app(browser, work, base, web_app)
                finally:
                    browser.close()
        finally:
            stop_lab(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
