"""Pushing a job's rates to the hub: the bundled local hub on loopback (tests/hub_fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from _jobs import API_KEY, BASE_URLS, seed, snapshot

from hubkit.domain import ProviderSpec, Rate, RateSpec, UnitCosts
from hubkit.hub import HubProvider, HubRate
from hubkit.hub.plan import Action, ItemKind
from hubkit.hub.pull import HubState
from hubkit.jobs import JobStatus, bulk_rate_update, run_job
from hubkit.jobs.push import plan_push
from hubkit.pricing import RateFilter
from hubkit.store import Store

# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [pytest.mark.soak, pytest.mark.hub_needs("switches", "injects faults into the push")]


def _local(store: Store, model: str, rin: str, cost: str | None = "0.000001", **kw: str) -> Rate:
    costs = {"input": cost, "output": "0"} if cost else None
    spec = RateSpec.create(
        kw.get("provider", "openai"), model, kw.get("type", "chatCompletion"), input_rate=rin,
        output_rate="0", unit_costs=costs,
    )  # fmt: skip
    return store.create_rate(spec)


def _hub_rate(local: Rate, rin: str, cost: str | None = "0.000001") -> HubRate:
    """The hub's copy of ``local``, with its own input rate and unit costs."""
    costs = UnitCosts(Decimal(cost), Decimal(0)) if cost else None
    return HubRate(
        id=f"r-{local.model}", provider_id="p1", model=local.model, type=local.type,
        input_rate=Decimal(rin), output_rate=Decimal(0), model_display=local.model_display,
        unit_costs=costs,
    )  # fmt: skip


def test_the_plan_sends_only_the_selected_rates_that_differ(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    for name in ("openai", "anthropic"):
        store.add_provider(ProviderSpec.create(name, name.title(), base_url=BASE_URLS[name]))
    store.add_credential("openai", "main", API_KEY)  # not on the hub: a rate job leaves it
    same = _local(store, "same", "0.5000000000")  # equal as numbers: in sync
    moved = _local(store, "moved", "0.5")
    costs = _local(store, "costs", "0.5")
    _local(store, "new", "0.5")
    other = _local(store, "zzz", "0.9")  # outside the filter: never planned
    gone = _local(store, "old", "0.5")
    store.deprecate_rate(gone.id, gone.version)  # deprecated and not on the hub: not offered
    _local(store, "c", "1", provider="anthropic")
    hub = HubState(
        hub="http://hub.test",
        pulled_at=datetime.now(UTC),
        providers=(
            HubProvider(
                id="p1", name="openai", display_name="OpenAI (hub)", base_url="https://x.test",
                region=None, enabled=True,
                model_rates=(_hub_rate(same, "0.5"), _hub_rate(moved, "0.4"),
                             _hub_rate(costs, "0.5", cost="0.000002"), _hub_rate(other, "0.1")),
            ),
        ),
    )  # fmt: skip
    pushed = plan_push(store, hub, RateFilter.create(model_pattern="[!z]*"))
    items = pushed.plan.items
    assert {i.kind for i in items} == {ItemKind.RATE}  # no provider fix, no credential push
    assert [(i.action, i.name) for i in items] == [
        (Action.CREATE, "new"), (Action.UPDATE, "costs"), (Action.UPDATE, "moved")
    ]  # fmt: skip
    assert [c.field for c in items[1].changes] == ["unitCosts"]
    assert [(c.field, c.old, c.new) for c in items[2].changes] == [("inputRate", "0.4", "0.5")]
    assert pushed.in_sync == pushed.plan.in_sync == 1
    assert [m.provider for m in pushed.missing] == ["anthropic"]
    assert "not on the hub" in (pushed.missing[0].error or "")
    assert pushed.planned == 4
    store.close()


@pytest.fixture
def pushing(hub, sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUBKIT_HUB_URL", hub.url)
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", hub.token)
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)
    for name in ("openai", "anthropic"):
        hub.provider(name)
    store = Store.open()
    seed(store)
    yield hub, store
    store.close()


def _hub_rates(hub) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    with hub.client() as client:
        return {
            (p.name, r.model): (r.input_rate, r.output_rate)
            for p in client.list_providers(include_model_rates=True)
            for r in p.model_rates or ()
        }


def _local_rates(store: Store) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    return {(k[0], k[1]): v[:2] for k, v in snapshot(store).items()}


def test_commit_push_verify_then_a_partial_push_is_finished_by_the_next_run(pushing) -> None:  # type: ignore[no-untyped-def]
    hub, store = pushing
    # what a full hub plan would also push; a rate job must leave both alone
    store.add_credential("openai", "job-push-no-key", API_KEY)
    store.update_provider("anthropic", base_url="https://anthropic-proxy.example/v1")
    first = bulk_rate_update(store=store, profit_margin="25", dry_run=False, push_to_hub=True)
    assert first.status is JobStatus.APPLIED, first.reason
    push = first.summary["push"]
    assert push["complete"] and push["planned"] == 4 and push["sent"] == 4
    assert "verified by re-reading" in first.reason
    assert _hub_rates(hub) == _local_rates(store)
    pushes = [h for h in store.history(job_run_id=first.run_id) if h.change_type == "hub_push"]
    assert sorted(h.model for h in pushes) == sorted(m for _, m in _local_rates(store))
    with hub.client() as client:
        openai, anthropic = client.get_provider("openai"), client.get_provider("anthropic")
    assert openai is not None and anthropic is not None
    assert "job-push-no-key" not in {c.name for c in openai.credentials}
    assert anthropic.base_url == hub.provider_urls["anthropic"]

    # the hub accepts one write, then fails: the local commit stands, the run is partial
    hub.set_faults(fail_after_writes={"writes": 1, "code": 500})
    partial = bulk_rate_update(store=store, profit_margin="30", dry_run=False, push_to_hub=True)
    assert partial.status is JobStatus.PUSH_PARTIAL and partial.exit_code == 9
    assert partial.summary["counts"]["applied"] == 3  # committed locally first
    failed = partial.summary["push"]["failed"]
    assert len(failed) == 2 and all("500" in f["error"] for f in failed)
    assert "run again to push the rest" in partial.reason
    assert _hub_rates(hub) != _local_rates(store)

    # the next run: nothing left to change locally, and it pushes only the two missing rates
    hub.clear_faults()
    writes_before = hub.request_count(method="PUT") + hub.request_count(method="POST")
    again = bulk_rate_update(store=store, profit_margin="30", dry_run=False, push_to_hub=True)
    assert again.status is JobStatus.UNCHANGED, again.reason
    assert again.summary["push"]["sent"] == 2 and again.summary["push"]["in_sync"] == 2
    writes = hub.request_count(method="PUT") + hub.request_count(method="POST") - writes_before
    assert writes == 2
    assert _hub_rates(hub) == _local_rates(store)


def test_the_runner_exits_9_when_the_hub_fails(pushing) -> None:  # type: ignore[no-untyped-def]
    hub, store = pushing
    hub.set_faults(status={"code": 500, "count": None})  # not retried: no backoff to sit out
    outcome = run_job(
        "bulk-rate-update", {"profit_margin": "25", "dry_run": False, "push_to_hub": True}
    )
    assert outcome.status is JobStatus.PUSH_PARTIAL and outcome.exit_code == 9, outcome.reason
    assert "could not read the hub" in outcome.reason
    assert len(store.history(job_run_id=outcome.run_id)) == 3  # the local commit stands
    text = (outcome.run_dir / "bulk-rate-update.ipynb").read_text()
    assert hub.token not in text and hub.token not in (outcome.run_dir / "summary.json").read_text()
