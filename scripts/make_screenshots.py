"""Screenshots of the workbench apps for the README: ``docs/screenshots/<notebook>.png``.

Runs each top-level notebook in a throwaway JupyterLab (temp store seeded with the sample
data and one obviously fake key, so the credentials table has a masked row), drives it with
Debian's chromium and photographs the app. Nothing of the real ``.hubkit/`` is touched.

    .venv/bin/python scripts/make_screenshots.py [--out docs/screenshots]
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

# notebook → the CSS class of its app
APPS = {
    "01-providers-and-credentials.ipynb": "hubkit-providers",
    "02-model-rates.ipynb": "hubkit-rates",
    "03-bulk-rate-update.ipynb": "hubkit-bulk",
}
FAKE_KEY = "sk-demo-0000000000000000notreal"


def _seed(env: dict[str, str]) -> None:
    os.environ.update(env)
    from hubkit.store import Store
    from hubkit.widgets import seed_sample_data

    with Store.open() as store:
        seed_sample_data(store)
        store.add_credential("openai", "main", FAKE_KEY)


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
    page.wait_for_timeout(500)  # let the widget layout settle before the photo
    app.screenshot(path=str(out))
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hubkit-shots-") as tmp:
        work = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
        base.update(
            HUBKIT_DATA_DIR=str(work / "data"),
            HUBKIT_REPORTS_DIR=str(work / "reports"),
            HUBKIT_ACTOR="operator",
        )
        _seed(base)
        root = prepare_root(work, [REPO / "notebooks" / name for name in APPS])
        server = start_lab(root, jupyter_env(work, base), work / "lab.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1700, "height": 2200})
                    page.set_default_timeout(60_000)
                    for name, app_class in APPS.items():
                        out = args.out / f"{Path(name).stem}.png"
                        _photograph(page, server.url(f"lab/tree/{name}"), name, app_class, out)
                finally:
                    browser.close()
        finally:
            stop_lab(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
