"""A job report opened from disk with the network cut: its figure is drawn, nothing leaves.

A real bulk-rate-update dry run (papermill, SQLite) writes the run folder; chromium opens
``bulk-rate-update.html`` from ``file://`` while every http(s) request is refused and
recorded. The page must draw the change-% histogram with the run folder's plotly.js, show
no code and no scientific notation, and not have tried to reach any server.
"""

from __future__ import annotations

import os

import pytest
from _jobs import seed

from e2e._lab import CHROMIUM, chromium
from hubkit.jobs import JobStatus, run_job
from hubkit.store import Store

pytestmark = [
    pytest.mark.browser,
    pytest.mark.soak,
    pytest.mark.timeout(300),
    pytest.mark.store("sqlite", seed=seed, url_in_env=True),
]


def test_job_report_renders_offline_from_disk(store: Store) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh`")
    outcome = run_job("bulk-rate-update", {"profit_margin": "25"})
    assert outcome.status is JobStatus.DRY_RUN, outcome.reason
    report = outcome.run_dir / "bulk-rate-update.html"
    changed = outcome.summary["counts"]["changed"]
    assert changed > 0

    tried: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1300, "height": 900})

        def refuse(route) -> None:  # type: ignore[no-untyped-def]
            tried.append(route.request.url)
            route.abort("internetdisconnected")

        context.route("http://**/*", refuse)
        context.route("https://**/*", refuse)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(report.as_uri(), wait_until="load")
        bars = page.locator(".js-plotly-plot g.trace.bars g.point path")
        bars.first.wait_for(state="attached", timeout=30_000)
        drawn = bars.count()
        text = page.inner_text("body")

    assert drawn > 0, "the histogram has no bars"
    assert tried == [], f"the report tried to reach the network: {tried}"
    assert errors == [], errors
    assert f"{changed} rates would change" in text or str(changed) in text
    assert "run_bulk_rate_update" not in text and "E-" not in text.replace("E-mail", "")


def test_finance_month_report_renders_offline_from_disk(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh`")
    for name, value in {"AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED": "true",
                        "NEW_USER_CREDIT_GRANT_ENABLED": "true",
                        "NEW_USER_CREDIT_GRANT_AMOUNT": "3",
                        "CREDIT_EXPIRATION_DAYS": "10"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    outcome = run_job("finance-month", {"month": "2026-11", "synthetic_calls": "2000"})
    assert outcome.status is JobStatus.REPORTED, outcome.reason
    report = outcome.run_dir / "finance-month.html"

    tried: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1300, "height": 900})

        def refuse(route) -> None:  # type: ignore[no-untyped-def]
            tried.append(route.request.url)
            route.abort("internetdisconnected")

        context.route("http://**/*", refuse)
        context.route("https://**/*", refuse)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(report.as_uri(), wait_until="load")
        steps = page.locator(".js-plotly-plot g.trace.bars g.point path")  # waterfall too
        steps.first.wait_for(state="attached", timeout=30_000)
        plots = page.locator(".js-plotly-plot").count()
        text = page.inner_text("body")

    assert plots == 3, "the waterfall, the months and the models are drawn"
    assert tried == [], f"the report tried to reach the network: {tried}"
    assert errors == [], errors
    assert "Credit roll-forward by month" in text and "not applicable" in text
    assert "identity difference (must be 0)" in text
    assert "run_finance_month" not in text and "E-" not in text.replace("E-mail", "")
