"""Pushing a job's rates to the hub: the bundled local hub on loopback (tests/hub_fixtures)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _jobs import seed, snapshot

from hubkit.domain import Rate, RateType, UnitCosts
from hubkit.hub import HubProvider, HubRate
from hubkit.jobs import JobStatus, bulk_rate_update, run_job
from hubkit.jobs.push import plan_push
from hubkit.store import Store


def _rate(model: str, rin: str, cost: str | None = "0.000001") -> Rate:
    costs = UnitCosts(Decimal(cost), Decimal(0)) if cost else None
    return Rate(
        id=1, provider="openai", model=model, type=RateType.CHAT_COMPLETION,
        input_rate=Decimal(rin), output_rate=Decimal(0), model_display=model, version=1,
        unit_costs=costs,
    )  # fmt: skip


def _hub_rate(model: str, rin: str, cost: str | None = "0.000001") -> HubRate:
    costs = UnitCosts(Decimal(cost), Decimal(0)) if cost else None
    return HubRate(
        id=f"r-{model}", provider_id="p1", model=model, type=RateType.CHAT_COMPLETION,
        input_rate=Decimal(rin), output_rate=Decimal(0), model_display=model, unit_costs=costs,
    )  # fmt: skip


def test_the_plan_sends_only_what_differs() -> None:
    hub = {
        "openai": HubProvider(
            id="p1", name="openai", display_name="OpenAI", base_url=None, region=None,
            enabled=True, model_rates=(_hub_rate("same", "0.5"), _hub_rate("moved", "0.4"),
                                       _hub_rate("costs", "0.5", cost="0.000002")),
        )
    }  # fmt: skip
    local = [
        _rate("same", "0.5000000000"),  # equal as numbers: in sync
        _rate("moved", "0.5"),
        _rate("costs", "0.5"),
        _rate("new", "0.5"),
        Rate(
            id=9,
            provider="anthropic",
            model="c",
            type=RateType.CHAT_COMPLETION,
            input_rate=Decimal(1),
            output_rate=Decimal(1),
            model_display="c",
            version=1,
        ),  # fmt: skip
    ]
    todo, missing, in_sync = plan_push(local, hub)
    assert [(a, r.model) for a, r in todo] == [("update", "moved"), ("update", "costs"),
                                                ("create", "new")]  # fmt: skip
    assert in_sync == 1
    assert [m.provider for m in missing] == ["anthropic"] and "not on the hub" in missing[0].error


@pytest.fixture
def pushing(hub, sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    hub.require_local()
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
    first = bulk_rate_update(store=store, profit_margin="25", dry_run=False, push_to_hub=True)
    assert first.status is JobStatus.APPLIED, first.reason
    push = first.summary["push"]
    assert push["complete"] and push["planned"] == 4 and push["sent"] == 4
    assert "verified by re-reading" in first.reason
    assert _hub_rates(hub) == _local_rates(store)

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
