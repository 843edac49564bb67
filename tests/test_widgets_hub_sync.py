"""Hub sync app, headless, against the local hub on loopback: pull, plan, dry run, apply.

Real parts only: a SQLite store seeded by ``_hubsync.seed_store`` (two providers, five
rates, one key) and the bundled hub server (``hub`` fixture, reset per test).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest
from _hubsync import KEY, hub_credentials, hub_rates, seed_store, store_rate_keys
from _widget_helpers import assert_secret_absent

from hubkit.config import get_settings
from hubkit.domain import ChangeType
from hubkit.hub import HubClient
from hubkit.hub.redact import redact_url
from hubkit.pricing import mask_secret
from hubkit.store import Store
from hubkit.widgets import HubConnection, HubSyncApp, HubSyncState, connect_hub
from hubkit.widgets._review_table import download_csv

if TYPE_CHECKING:
    from hub_fixtures import HubHandle


# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [pytest.mark.soak, pytest.mark.store(seed=seed_store, close_widgets=True)]
EMPTY_HUB = "needs an empty hub"


@pytest.fixture
def connection(hub: HubHandle) -> HubConnection:
    hub.require_disposable(EMPTY_HUB)  # a floor: a test's own hub_needs mark came first
    return HubConnection(hub.client, redact_url(hub.url), "the test hub")


def _pushes(store: Store) -> list:
    return [e for e in store.history(limit=1000) if e.change_type == ChangeType.HUB_PUSH]


@pytest.mark.hub_needs("disposable", EMPTY_HUB)
def test_dry_run_is_the_default_and_writes_nothing(
    store: Store, connection: HubConnection, hub: HubHandle
) -> None:
    app = HubSyncApp(store, connection)
    assert app._dry_run.value is True and app.state.dry_run
    assert app._apply.disabled  # no plan yet
    app._pull.click()
    assert app.state.hub_summary().startswith("0 providers, 0 keys (masked), 0 rates (read ")
    app._plan.click()
    table = app.state.plan_table()
    assert table.equals(app.state.plan.to_frame())
    assert Counter(zip(table["kind"], table["action"], strict=True)) == Counter(
        {("provider", "create"): 2, ("credential", "create"): 1, ("rate", "create"): 5}
    )
    plan = app._plan_table.shown
    assert "gpt-4o-mini" in plan["target"].str.cat(sep=" ") and not app._apply.disabled
    assert len(plan) == len(app.state.plan.items)  # type: ignore[union-attr]  # every item
    assert app._apply.description == "Apply (dry run)"
    # a 10,000-item plan is sent to the page once: ticking "dry run" redraws the button only
    sent = app._plan_table.table._dt_args  # type: ignore[union-attr]
    app._dry_run.value = False
    assert app._apply.description == "Apply to the hub"
    assert app._plan_table.table._dt_args is sent  # type: ignore[union-attr]
    app._dry_run.value = True

    seen: list[tuple[int, int]] = []
    assert app.state.apply(lambda done, total: seen.append((done, total)))
    assert seen == [(n, 8) for n in range(9)]  # before the first item, then after each
    results = app.state.results_table()
    assert set(results["status"]) == {"dry_run"} and len(results) == 8
    with hub.client() as client:
        assert hub_rates(client) == Counter() and hub_credentials(client) == Counter()
    assert _pushes(store) == []
    assert "nothing was written" in app.state.message.text
    assert app.state.report_folder is not None and app.state.report_folder.name.endswith(
        "-hub-apply-dry-run"
    )


@pytest.mark.hub_needs("fake_keys")
def test_apply_for_real_pushes_every_item_and_plans_again(
    store: Store, connection: HubConnection, hub: HubHandle
) -> None:
    app = HubSyncApp(store, connection)
    app._plan.click()
    app._dry_run.value = False
    assert app._apply.description == "Apply to the hub" and app._apply.button_style == "danger"
    app._apply.click()
    results = app.state.results_table()
    assert set(results["status"]) == {"ok"} and len(results) == 8
    assert "Results" in app._results.note.value and "complete" in app._message.value
    assert len(app._results.shown) == len(app.state.report.results)  # type: ignore[union-attr]
    assert app._progress_text.value.startswith("8/8 items · ")
    assert "failed" not in app._progress_text.value
    with hub.client() as client:
        assert hub_rates(client) == Counter({k: 1 for k in store_rate_keys(store)})
        assert hub_credentials(client) == Counter({("openai", "main"): 1})
    assert len(_pushes(store)) == 5
    assert app.state.plan is not None and app.state.plan.is_empty  # planned again
    assert "nothing left to do" in app.state.message.text and app._apply.disabled
    folder = app.state.report_folder
    assert folder is not None and folder.parent == get_settings().reports_dir
    assert (folder / "results.csv").exists()


@pytest.mark.hub_needs("fake_keys")
def test_the_key_never_reaches_a_widget(store: Store, connection: HubConnection) -> None:
    app = HubSyncApp(store, connection)
    app._plan.click()
    assert mask_secret(KEY) in app._plan_table.shown.to_csv()
    pushed = download_csv(app._plan_table.download.value)
    assert KEY not in app._plan_table.shown.to_csv() and KEY not in pushed
    assert mask_secret(KEY) in pushed
    app._dry_run.value = False
    app._apply.click()
    app._pull.click()
    assert_secret_absent(KEY, root=app, state=app.state)
    assert KEY not in repr(app.state.connection)


@pytest.mark.hub_needs("disposable", EMPTY_HUB)
def test_providers_filter_and_deletes_reach_the_plan(
    store: Store, connection: HubConnection
) -> None:
    app = HubSyncApp(store, connection)
    app._providers.value = "anthropic"
    app._deletes.value = True
    app._plan.click()
    plan = app.state.plan
    assert plan is not None and plan.providers == ("anthropic",) and plan.deletes
    assert {i.provider for i in plan.items} == {"anthropic"}


@pytest.mark.hub_needs("disposable", EMPTY_HUB)
def test_a_read_only_store_only_dry_runs(
    store: Store, connection: HubConnection, sqlite_url: str
) -> None:
    with Store.open(sqlite_url, read_only=True) as ro:
        state = HubSyncState(ro, connection)
        assert state.make_plan()
        assert state.apply()  # a dry run reads only
        state.set_dry_run(False)
        assert not state.apply()
        assert "read-only" in state.message.text


def test_an_unreachable_hub_is_a_message_not_a_crash(store: Store) -> None:
    def factory() -> HubClient:
        return HubClient("http://127.0.0.1:9", "tok-unreachable-0123456789", retries=0, timeout=1)

    app = HubSyncApp(store, HubConnection(factory, "http://127.0.0.1:9", "nowhere"))
    app._plan.click()
    assert app.state.plan is None and app.state.message.is_error
    assert "hubkit-error" in app._message.value
    assert app.state.apply() is False and "make a plan first" in app.state.message.text


def test_connect_hub_uses_the_configured_hub(
    hub: HubHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_HUB_URL", hub.url)
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", hub.token)
    conn = connect_hub()
    assert not conn.is_local and conn.hub == redact_url(hub.url)
    assert hub.url in conn.description and hub.token not in conn.description
    with conn.factory() as client:
        assert client.base_url == hub.url.rstrip("/")
    conn.close()  # nothing to stop


def test_connect_hub_starts_the_local_hub_without_a_url(store: Store) -> None:
    conn = connect_hub()
    try:
        assert conn.is_local and "HUBKIT_HUB_URL is not set" in conn.description
        assert conn.local.token not in conn.description
        state = HubSyncState(store, conn)
        assert state.pull() and state.hub_summary().startswith("0 providers")
    finally:
        conn.close()
    assert not conn.local.running


@pytest.mark.hub_needs("fake_keys")
def test_after_a_real_apply_every_panel_shows_the_hub_as_it_is_now(
    store: Store, connection: HubConnection
) -> None:
    app = HubSyncApp(store, connection)
    app._plan.click()
    assert "0 providers, 0 keys (masked), 0 rates" in app._hub.value
    app._dry_run.value = False
    app._apply.click()
    # the hub panel was read again after the apply, not left at the empty hub of the plan
    assert app.state.hub_summary().startswith("2 providers, 1 key (masked), 5 rates (read ")
    assert "2 providers, 1 key (masked), 5 rates" in app._hub.value
    assert app.state.plan is not None and app.state.plan.is_empty
    assert "nothing to do" in app._plan_table.note.value
    assert "fresh plan: nothing left to do" in app._message.value
    assert app._apply.disabled
