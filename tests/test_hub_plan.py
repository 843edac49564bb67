"""pull, bootstrap and plan against the local hub on loopback (``hub`` fixture).

Plans are read-only: every test here also checks that the hub received no write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _hubsync import (
    KEY,
    MARGIN,
    MODELS,
    PRICE,
    add_provider,
    assert_no_secret,
    files_text,
    priced_spec,
    seed_store,
    store_rate_keys,
)

from hubkit.domain import ChangeType, RateSpec, RateType
from hubkit.errors import ConflictError, ValidationError
from hubkit.hub import HubClient
from hubkit.hub.plan import Action, FieldChange, ItemKind, Plan, plan
from hubkit.hub.pull import HubState, bootstrap, pull
from hubkit.pricing import margin_rate
from hubkit.store import Store

if TYPE_CHECKING:
    from hub_fixtures import HubHandle


# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [
    pytest.mark.soak,
    pytest.mark.hub_needs("disposable", "these tests need an empty hub"),
]


@pytest.fixture
def client(hub: HubHandle) -> Iterator[HubClient]:
    with hub.client() as c:
        yield c


def _seed_hub(client: HubClient) -> dict[str, str]:
    """openai (two rates, one key) and anthropic (one rate) on the hub; returns ids.

    The key is made up: tests that call this need the local hub's fake key checker."""
    openai = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    anthropic = client.create_provider(
        "anthropic", "Anthropic", base_url="https://api.anthropic.com"
    )
    client.create_credential(openai.id, "main", KEY)
    for model, cin, cout in MODELS["openai"][:2]:
        client.create_rate_from_spec(openai.id, priced_spec("openai", model, cin, cout))
    client.create_rate(
        anthropic.id,
        model="claude-3-haiku",
        type="chatCompletion",
        input_rate="0.0003125",
        output_rate="0.0015625",
        unit_costs={"input": "0.00000025", "output": "0.00000125"},
        caching={"readRate": "0.00003125"},
        model_metadata={"maxTokens": 4096, "features": ["vision", "tools"]},
    )
    return {"openai": openai.id, "anthropic": anthropic.id}


def _writes(hub: HubHandle) -> int:
    return int(hub.stats()["writes"])


# --- pull -------------------------------------------------------------------------------------


@pytest.mark.hub_needs("fake_keys")
def test_pull_gives_domain_values_and_masked_frames(hub: HubHandle, client: HubClient) -> None:
    _seed_hub(client)
    state = pull(client)
    assert isinstance(state, HubState)
    assert [p.name for p in state.providers] == ["openai", "anthropic"]
    assert len(state.rates) == 3 and len(state.credentials) == 1
    haiku = state.rate("anthropic", "claude-3-haiku", RateType.CHAT_COMPLETION)
    assert haiku is not None and haiku.input_rate == Decimal("0.0003125")
    assert haiku.caching is not None and haiku.caching.read_rate == Decimal("0.00003125")
    specs = {s.key: s for s in state.rate_specs()}
    assert specs[("openai", "gpt-4o", RateType.CHAT_COMPLETION)].output_rate == margin_rate(
        "0.00001", MARGIN, PRICE
    )
    assert {p.name for p in state.provider_specs()} == {"openai", "anthropic"}
    frames = state.to_frames()
    assert list(frames["rates"]["model"]) == ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]
    assert frames["rates"]["input_rate"].map(type).eq(Decimal).all()
    creds = frames["credentials"]
    assert creds.loc[0, "display_text"] == "sk-p****************1234"
    assert_no_secret(repr(state) + "".join(f.to_csv() for f in frames.values()), "pull frames")
    assert "credentialValue" not in repr(state.credentials)


# --- bootstrap --------------------------------------------------------------------------------


@pytest.mark.hub_needs("switches", "counts the hub's writes")
def test_bootstrap_fills_an_empty_store_and_then_the_plan_is_empty(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    _seed_hub(client)
    result = bootstrap(store, client)
    assert result.providers_added == ("openai", "anthropic")
    assert (result.rates_added, result.rates_deprecated, result.not_imported) == (3, 0, ())
    assert [(n.provider, n.name) for n in result.needs_keys] == [("openai", "main")]
    assert "credentials add openai 'main'" in result.summary()
    haiku = store.find_rate("anthropic", "claude-3-haiku", "chatCompletion")
    assert haiku.output_rate == Decimal("0.0015625")
    assert haiku.model_metadata == {"maxTokens": 4096, "features": ["tools", "vision"]}
    created = store.history(provider="openai")
    assert {h.change_type for h in created} == {ChangeType.CREATE.value}
    assert all(h.source == f"hub:{hub.url}" for h in created)
    writes = _writes(hub)

    again = plan(store, client)
    assert again.items == () and again.is_empty
    assert again.in_sync == 5  # 2 providers + 3 rates; the key is not local yet
    # the operator adds the key locally under the hub's name: pushed once, not duplicated
    store.add_credential("openai", "main", KEY)
    repush = plan(store, client)
    assert [(i.kind, i.action, i.target) for i in repush.items] == [
        (ItemKind.CREDENTIAL, Action.REPUSH, "openai/main")
    ]
    assert repush.items[0].reason == "never pushed from this store"
    assert _writes(hub) == writes  # planning never writes


@pytest.mark.hub_needs("fake_keys")
def test_bootstrap_refuses_a_store_that_is_not_empty(client: HubClient, store: Store) -> None:
    _seed_hub(client)
    add_provider(store, "deepseek")
    with pytest.raises(ConflictError, match="empty store"):
        bootstrap(store, client)
    assert [p.name for p in store.list_providers()] == ["deepseek"]


# --- plan -------------------------------------------------------------------------------------


def _desired(store: Store) -> None:
    """The local store: openai changed (URL, display name, gpt-4o dearer), a new model,
    a deprecated rate, anthropic with one rate, and a key."""
    add_provider(store, "openai", "OpenAI (prod)", base_url="https://api.openai.com/v2")
    gpt4o = priced_spec("openai", "gpt-4o", "0.000003", "0.000012")
    store.create_rate(gpt4o)
    store.create_rate(priced_spec("openai", "o3-mini", "0.0000011", "0.0000044"))
    old = store.create_rate(priced_spec("openai", "gpt-3.5-turbo", "0.0000005", "0.0000015"))
    store.deprecate_rate(old.id, old.version, reason="retired")
    add_provider(store, "deepseek")
    store.create_rate(priced_spec("deepseek", "deepseek-chat", "0.00000027", "0.0000011"))
    store.add_credential("openai", "main", KEY)


@pytest.mark.hub_needs("switches", "counts the hub's writes")
def test_plan_lists_creates_updates_manual_fields_and_deletes_only_when_asked(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    _seed_hub(client)
    _desired(store)
    writes = _writes(hub)
    p = plan(store, client)
    got = {(i.kind, i.action, i.target) for i in p.items}
    assert got == {
        (ItemKind.PROVIDER, Action.UPDATE, "openai"),
        (ItemKind.PROVIDER, Action.MANUAL, "openai"),
        (ItemKind.PROVIDER, Action.CREATE, "deepseek"),
        (ItemKind.CREDENTIAL, Action.REPUSH, "openai/main"),  # on the hub, never pushed
        (ItemKind.RATE, Action.UPDATE, "openai/gpt-4o (chatCompletion)"),
        (ItemKind.RATE, Action.CREATE, "openai/o3-mini (chatCompletion)"),
        (ItemKind.RATE, Action.CREATE, "deepseek/deepseek-chat (chatCompletion)"),
    }  # no create of the deprecated gpt-3.5-turbo, no delete of the hub-only rates
    by_target = {(i.action, i.target): i for i in p.items}
    update = by_target[(Action.UPDATE, "openai")]
    assert update.changes == (
        FieldChange("baseUrl", "https://api.openai.com/v1", "https://api.openai.com/v2"),
    )
    manual = by_target[(Action.MANUAL, "openai")]
    assert manual.changes == (FieldChange("displayName", "OpenAI", "OpenAI (prod)"),)
    assert "manual action needed" in manual.reason
    rate = by_target[(Action.UPDATE, "openai/gpt-4o (chatCompletion)")]
    assert [c.field for c in rate.changes] == ["inputRate", "outputRate", "unitCosts"]
    assert rate.changes[0] == FieldChange(
        "inputRate",
        str(margin_rate("0.0000025", MARGIN, PRICE).normalize()),
        str(margin_rate("0.000003", MARGIN, PRICE).normalize()),
    )
    assert rate.local_version == store.find_rate("openai", "gpt-4o", "chatCompletion").version
    # the order apply needs: providers, then keys, then rates
    kinds = [i.kind for i in p.actionable]
    assert kinds == sorted(kinds, key=[ItemKind.PROVIDER, ItemKind.CREDENTIAL, ItemKind.RATE].index)
    assert p.counts() == {
        "provider.create": 1, "provider.update": 1, "provider.manual": 1,
        "credential.repush": 1, "rate.create": 2, "rate.update": 1, "in_sync": 0,
    }  # fmt: skip
    assert "rates: 2 create, 1 update" in p.summary()

    with_deletes = plan(store, client, deletes=True)
    extra = set((i.kind, i.action, i.target) for i in with_deletes.items) - got
    assert extra == {
        (ItemKind.RATE, Action.DELETE, "openai/gpt-4o-mini (chatCompletion)"),
        (ItemKind.PROVIDER, Action.MANUAL, "anthropic"),  # hub-only providers are never deleted
    }
    delete = next(i for i in with_deletes.items if i.action is Action.DELETE)
    assert all(c.new is None and c.old for c in delete.changes)
    assert _writes(hub) == writes


def test_plan_compares_rates_exactly_after_quantising_to_ten_places(
    client: HubClient, store: Store
) -> None:
    openai = client.create_provider("openai", "Openai", base_url="https://api.openai.com/v1")
    for model, rate in (("a", "0.00000250000"), ("b", "0.0000025001"), ("c", "0.0000025")):
        client.create_rate(
            openai.id,
            model=model,
            type="embedding",
            input_rate=rate,
            output_rate=0,
            unit_costs={"input": "0.000000002", "output": "0"},
        )
    add_provider(store, "openai", "Openai")
    for model in ("a", "b"):
        store.create_rate(
            RateSpec.create(
                "openai",
                model,
                "embedding",
                input_rate="0.0000025",
                unit_costs={"input": "0.000000002", "output": "0"},
            )
        )
    store.create_rate(
        RateSpec.create(
            "openai",
            "c",
            "embedding",
            input_rate="0.0000025",
            unit_costs={"input": "0.0000000020000000001", "output": 0},
        )
    )
    p = plan(store, client)
    assert {i.name: i.changes for i in p.items} == {
        "b": (FieldChange("inputRate", "0.0000025001", "0.0000025"),),
        # unit costs keep every digit (18 places), so a tiny cost change shows
        "c": (
            FieldChange(
                "unitCosts",
                '{"input":"0.000000002","output":"0"}',
                '{"input":"0.0000000020000000001","output":"0"}',
            ),
        ),
    }
    assert p.in_sync == 2  # the provider and rate "a" (trailing zeros are not a change)


def test_plan_marks_what_the_hub_api_cannot_do_as_manual(client: HubClient, store: Store) -> None:
    openai = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    client.create_rate(
        openai.id,
        model="m",
        type="chatCompletion",
        input_rate="0.1",
        output_rate="0.2",
        unit_costs={"input": "0.0001", "output": "0.0002"},
    )
    add_provider(store, "openai", "OpenAI", config={"organization": "org-1"})
    store.create_rate(
        RateSpec.create("openai", "m", "chatCompletion", input_rate="0.1", output_rate="0.3")
    )
    add_provider(store, "acme", custom=True)
    store.create_rate(RateSpec.create("acme", "x", "chatCompletion", input_rate="1"))
    p = plan(store, client)
    actions = {(i.kind, i.action, i.target): i for i in p.items}
    config = actions[(ItemKind.PROVIDER, Action.MANUAL, "openai")]
    assert config.changes == (FieldChange("config", None, '{"organization":"org-1"}'),)
    update = actions[(ItemKind.RATE, Action.UPDATE, "openai/m (chatCompletion)")]
    assert update.changes == (FieldChange("outputRate", "0.2", "0.3"),)
    stuck = actions[(ItemKind.RATE, Action.MANUAL, "openai/m (chatCompletion)")]
    assert [c.field for c in stuck.changes] == ["unitCosts"] and "cannot remove" in stuck.reason
    custom = actions[(ItemKind.PROVIDER, Action.MANUAL, "acme")]
    assert "1 rates are not planned" in custom.reason
    assert not any(i.provider == "acme" and i.kind is ItemKind.RATE for i in p.items)
    assert [i.target for i in p.actionable] == ["openai/m (chatCompletion)"]


def test_plan_filters_by_provider(client: HubClient, store: Store) -> None:
    seed_store(store)
    p = plan(store, client, providers="anthropic")
    assert {i.provider for i in p.items} == {"anthropic"}
    assert p.providers == ("anthropic",)
    assert len([i for i in p.items if i.kind is ItemKind.RATE]) == len(MODELS["anthropic"])


# --- the plan as a value: JSON, CSV, reports/, HTML -------------------------------------------


@pytest.mark.hub_needs("fake_keys")
def test_plan_round_trips_through_json_and_csv_and_holds_no_secret(
    hub: HubHandle, client: HubClient, store: Store, tmp_path: Path
) -> None:
    _seed_hub(client)
    _desired(store)
    p = plan(store, client, deletes=True)
    assert p.items and any(i.kind is ItemKind.CREDENTIAL for i in p.items)
    assert Plan.from_json(p.to_json()) == p
    assert Plan.load(p.to_csv(tmp_path / "plan.csv")) == p
    data = json.loads(p.to_json())
    assert data["counts"]["rate.delete"] == 1 and data["hub"] == hub.url
    folder = p.save()
    assert folder.parent == Path(store.settings.reports_dir)
    # the marker makes the folder one `reports prune` may delete
    assert sorted(f.name for f in folder.iterdir()) == [
        ".hubkit-run",
        "plan.csv",
        "plan.json",
        "summary.json",
    ]
    assert Plan.load(folder / "plan.json") == p
    html = p._repr_html_()
    assert "openai/gpt-4o (chatCompletion)" in html and "<table" in html
    frame = p.to_frame()
    assert list(frame.columns) == ["kind", "action", "target", "changes", "reason"]
    assert "inputRate: " in frame.loc[frame["target"] == "openai/gpt-4o (chatCompletion)",
                                      "changes"].iloc[0]  # fmt: skip
    text = p.to_json() + (tmp_path / "plan.csv").read_text() + files_text(folder) + html
    assert_no_secret(text + frame.to_csv() + repr(p), "a plan")


def test_a_damaged_or_foreign_plan_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a saved hub plan"):
        Plan.from_json('{"items": []}')
    with pytest.raises(ValidationError, match="invalid JSON"):
        Plan.from_json("{")
    bad = {"format": "hubkit-hub-plan", "version": 1, "createdAt": "2025-01-01T00:00:00Z",
           "items": [{"kind": "provider", "action": "delete", "provider": "openai"}]}  # fmt: skip
    with pytest.raises(ValidationError, match="cannot delete a provider"):
        Plan.from_json(json.dumps(bad))
    (tmp_path / "x.csv").write_text("kind,action\nrate,create\n")
    with pytest.raises(ValidationError, match="first line"):
        Plan.load(tmp_path / "x.csv")


def test_an_empty_store_against_an_empty_hub_plans_nothing(client: HubClient, store: Store) -> None:
    p = plan(store, client)
    assert (p.items, p.in_sync, p.summary()) == ((), 0, "nothing to do; in sync: 0")
    assert "nothing to do" in p._repr_html_()
    assert store_rate_keys(store) == set()


def test_zero_unit_costs_settle_as_none_both_ways(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    """The hub answers zeros for a rate batch-created without unit costs: hubkit reads
    them as none (a margin skips the rate, never prices it at 0), and a local rate whose
    costs are 0/0 is in sync with it, so neither plan keeps proposing a change."""
    openai = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    batch = client.batch_create_rates(
        [openai.id], model="free-a", type="chatCompletion", input_rate=1, output_rate=2
    )
    assert batch.rates[0].unit_costs is None
    bootstrap(store, client)
    assert store.find_rate("openai", "free-a", "chatCompletion").unit_costs is None
    zero = {"input": 0, "output": 0}
    spec = RateSpec.create("openai", "free-b", "chatCompletion", input_rate=1, unit_costs=zero)
    store.create_rate(spec)
    first = plan(store, client)
    # free-a (zeros on the hub, none here) is in sync; only the new free-b is pushed
    assert [(i.action, i.target) for i in first.items] == [
        (Action.CREATE, "openai/free-b (chatCompletion)")
    ]
    from hubkit.hub.apply import apply

    report = apply(first, store, client, dry_run=False)
    assert report.complete, report.summary()
    again = plan(store, client)
    assert again.is_empty, [str(i) for i in again.items]
