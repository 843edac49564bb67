"""The local hub (``hubkit.localhub``) speaks hub-api.md: checked over raw HTTP.

Validation, 404/409 and batch tests are contract tests: with HUBKIT_TEST_HUB_URL set they
run against that hub (they create only tracked, uniquely named rates); those that change
or wipe the hub's data run there too when HUBKIT_TEST_HUB_DISPOSABLE=1. Tests that need
the local hub's switches, its fake key checker or its state file skip there, saying why.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hubkit.domain import KNOWN_PROVIDERS
from hubkit.localhub.app import create_app
from hubkit.localhub.process import main, serve
from hubkit.pricing import default_model_display, margin_rate

if TYPE_CHECKING:
    from hub_fixtures import HubHandle


# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = pytest.mark.soak

BASE = "/api/ai-providers"
KEY = "sk-proj-abcdefghijklmnop1234"


@pytest.fixture
def api(hub: HubHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {hub.token}"}, timeout=5.0
    ) as client:
        yield client


def _error(response: httpx.Response) -> str:
    return str(response.json()["error"])


def _provider(api: httpx.Client, hub: HubHandle, name: str) -> dict[str, Any]:
    found = hub.provider(name)
    return {"id": found.id, "name": found.name, "displayName": found.display_name}


def _rate(api: httpx.Client, hub: HubHandle, pid: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "chatCompletion", "inputRate": "0.000001", "outputRate": "0.000002", **fields}
    response = api.post(f"{BASE}/{pid}/model-rates", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    hub.track_rate(pid, created["id"])
    return dict(created)


# --- auth, routing, bodies ------------------------------------------------------------------


def test_every_admin_route_needs_the_bearer_token(hub: HubHandle) -> None:
    with httpx.Client(base_url=hub.url, timeout=5.0) as anonymous:
        assert anonymous.get(BASE).status_code == 401
        wrong = anonymous.post(BASE, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # /health is public on the real hub too
        health = anonymous.get(f"{BASE}/health")
        assert health.status_code == 200 and "timestamp" in health.json()


@pytest.mark.hub_needs("local_hub", "checks the local hub's own 404 and JSON-parse answers")
def test_unknown_routes_and_bad_json_answer_json_errors(api: httpx.Client, hub: HubHandle) -> None:
    missing = api.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    bad = api.post(BASE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and _error(bad) == "Invalid JSON body"


# --- providers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"displayName": "X", "baseUrl": "https://x.io"}, '"name" is required'),
        (
            {"name": "openai", "displayName": "", "baseUrl": "https://x.io"},
            '"displayName" is not allowed to be empty',
        ),
        (
            {"name": "openai", "displayName": "x" * 101, "baseUrl": "https://x.io"},
            '"displayName" length must be less than or equal to 100 characters long',
        ),
        ({"name": "openai", "displayName": "OpenAI"}, '"baseUrl" is required'),
        (
            {"name": "openai", "displayName": "OpenAI", "baseUrl": "not a url"},
            '"baseUrl" must be a valid uri',
        ),
        ({"name": "bedrock", "displayName": "Bedrock"}, '"region" is required'),
        (
            {"name": "bedrock", "displayName": "B", "region": "r" * 51},
            '"region" length must be less than or equal to 50 characters long',
        ),
        (
            {"name": "openai", "displayName": "O", "baseUrl": "https://x.io", "enabled": "maybe"},
            '"enabled" must be a boolean',
        ),
        (
            {"name": "openai", "displayName": "O", "baseUrl": "https://x.io", "colour": "red"},
            '"colour" is not allowed',
        ),
    ],
)
def test_create_provider_reports_the_first_failing_field(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = api.post(BASE, json=body)
    assert response.status_code == 400
    assert _error(response) == message


def test_unknown_provider_names_are_refused_listing_the_known_ones(api: httpx.Client) -> None:
    response = api.post(
        BASE, json={"name": "acme", "displayName": "Acme", "baseUrl": "https://a.io"}
    )
    assert response.status_code == 400
    assert _error(response).startswith('"name" must be one of [openai, anthropic, bedrock')


def test_duplicate_provider_name_is_409(api: httpx.Client, hub: HubHandle) -> None:
    _provider(api, hub, "openai")
    again = api.post(
        BASE, json={"name": "openai", "displayName": "Again", "baseUrl": "https://x.io"}
    )
    assert again.status_code == 409
    assert _error(again) == "Provider with this name already exists"


@pytest.mark.hub_needs("disposable", "changes a provider (and checks Joi's when() on updates)")
def test_update_validates_like_create_and_404s(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    # Joi's when('name', is: 'bedrock'): an absent name takes the bedrock branch
    no_name = api.put(f"{BASE}/{pid}", json={"enabled": False})
    assert no_name.status_code == 400 and _error(no_name) == '"region" is required'
    ok = api.put(
        f"{BASE}/{pid}", json={"name": "openai", "baseUrl": "https://o.io/v1", "enabled": False}
    )
    assert ok.status_code == 200
    assert ok.json()["enabled"] is False and ok.json()["baseUrl"] == "https://o.io/v1"
    missing = api.put(f"{BASE}/nope", json={"name": "openai", "baseUrl": "https://o.io"})
    assert missing.status_code == 404 and _error(missing) == "Provider not found"


@pytest.mark.hub_needs(
    "fake_keys",
    "also expects a provider's rates and keys to go with it (the local hub's own choice)",
)
def test_delete_provider_takes_its_rates_and_credentials(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    _rate(api, hub, pid, model="gpt-4o")
    assert (
        api.post(f"{BASE}/{pid}/credentials", json={"name": "k", "value": KEY}).status_code == 200
    )
    deleted = api.delete(f"{BASE}/{pid}")
    assert deleted.json() == {"message": "Provider deleted successfully"}
    assert api.get(BASE).json() == []
    assert api.get(f"{BASE}/model-rates").json()["count"] == 0
    assert api.get(f"{BASE}/health").json()["providers"] == {}


# --- credentials ----------------------------------------------------------------------------


@pytest.mark.hub_needs("fake_keys", "also reads the local hub's state file")
def test_credentials_are_listed_masked_with_the_encrypted_value_and_never_stored_clear(
    api: httpx.Client, hub: HubHandle
) -> None:
    pid = _provider(api, hub, "bedrock")["id"]
    pair = {
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }
    created = api.post(
        f"{BASE}/{pid}/credentials",
        json={"name": "aws", "value": pair, "credentialType": "access_key_pair"},
    )
    assert created.status_code == 200
    assert "credentialValue" not in created.json()
    assert created.json()["displayText"] == "AKIDEXAMPLE / wJal****************EKEY"
    listed = api.get(BASE).json()[0]["credentials"][0]
    # like the real hub: the (encrypted) value comes along; the client must drop it
    assert set(listed["credentialValue"]) == {"access_key_id", "secret_access_key"}
    assert pair["secret_access_key"] not in json.dumps(listed["credentialValue"])
    assert listed["maskedValue"] == {
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJal****************EKEY",
    }
    assert pair["secret_access_key"] not in hub.read_state()  # type: ignore[attr-defined]


@pytest.mark.hub_needs("fake_keys")
def test_a_bad_key_is_refused_and_nothing_is_stored(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    refused = api.post(
        f"{BASE}/{pid}/credentials", json={"name": "k", "value": "sk-bad-0123456789abcdef"}
    )
    assert refused.status_code == 500 and "Incorrect API key" in _error(refused)
    assert api.get(BASE).json()[0]["credentials"] == []
    empty = api.post(f"{BASE}/{pid}/credentials", json={"name": "k", "value": ""})
    assert empty.status_code == 400 and _error(empty) == '"value" is not allowed to be empty'
    wrong_type = api.post(f"{BASE}/{pid}/credentials", json={"name": "k", "value": 5})
    assert _error(wrong_type) == '"value" must be one of [string, object]'


@pytest.mark.hub_needs("fake_keys", "also, six tests would lock a hub's key tests for 10 minutes")
def test_credential_tests_are_limited_to_five_per_ten_minutes(
    api: httpx.Client, hub: HubHandle
) -> None:
    pid = _provider(api, hub, "openai")["id"]
    url = f"{BASE}/{pid}/credentials/test"
    answers = [
        api.post(url, json={"value": KEY if i % 2 else "sk-bad-000000000000"}) for i in range(5)
    ]
    assert [a.status_code for a in answers] == [400, 200, 400, 200, 400]
    assert answers[0].json() == {
        "error": "Invalid credentials",
        "detail": answers[0].json()["detail"],
    }
    assert answers[1].json() == {"success": True}
    limited = api.post(url, json={"value": KEY})
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "Rate limit exceeded"
    assert 590 <= body["retryAfter"] <= 600
    assert f"try again in {body['retryAfter']} seconds" in body["message"]


@pytest.mark.hub_needs("fake_keys")
def test_check_marks_a_failing_credential_inactive(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    # stored as custom so the create-time check (api_key only) lets it in
    cred = api.post(
        f"{BASE}/{pid}/credentials",
        json={
            "name": "c",
            "value": {"token": "invalid-token-0000000000"},
            "credentialType": "custom",
        },
    )
    assert cred.status_code == 500  # custom values are checked too
    good = api.post(f"{BASE}/{pid}/credentials", json={"name": "g", "value": KEY}).json()
    check = api.get(f"{BASE}/{pid}/credentials/{good['id']}/check", params={"testModel": "gpt-4o"})
    assert check.status_code == 200 and check.json()["credentialValue"] == ""
    missing = api.get(f"{BASE}/{pid}/credentials/nope/check")
    assert missing.status_code == 400 and missing.json()["error"] == "Invalid credentials"
    assert api.get(f"{BASE}/health").json()["providers"] == {"openai": {"g": {"running": True}}}


# --- rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"model": None}, '"model" must be a string'),
        ({"model": ""}, '"model" is not allowed to be empty'),
        (
            {"type": "audio"},
            '"type" must be one of [chatCompletion, imageGeneration, embedding, video]',
        ),
        ({"inputRate": -1}, '"inputRate" must be greater than or equal to 0'),
        ({"outputRate": "abc"}, '"outputRate" must be a number'),
        # Joi converts only decimal-shaped strings (numberRx): these stay strings
        ({"inputRate": "Infinity"}, '"inputRate" must be a number'),
        ({"inputRate": "NaN"}, '"inputRate" must be a number'),
        ({"inputRate": "0x1F"}, '"inputRate" must be a number'),
        ({"inputRate": "1_000"}, '"inputRate" must be a number'),
        ({"unitCosts": {"input": 1}}, '"unitCosts.output" is required'),
        (
            {"unitCosts": {"input": 1, "output": -2}},
            '"unitCosts.output" must be greater than or equal to 0',
        ),
        (
            {"modelMetadata": {"features": ["tools", "telepathy"]}},
            '"modelMetadata.features[1]" must be one of [tools, thinking, vision]',
        ),
        (
            {"modelMetadata": {"maxTokens": 0}},
            '"modelMetadata.maxTokens" must be greater than or equal to 1',
        ),
    ],
)
def test_create_rate_validation(
    api: httpx.Client, hub: HubHandle, patch: dict[str, Any], message: str
) -> None:
    pid = _provider(api, hub, "openai")["id"]
    body = {"model": hub.unique_model(), "type": "chatCompletion", "inputRate": 0, "outputRate": 0}
    body.update(patch)
    response = api.post(f"{BASE}/{pid}/model-rates", json=body)
    assert response.status_code == 400
    assert _error(response) == message


def test_rates_are_unique_per_provider_model_type_and_get_a_default_display(
    api: httpx.Client, hub: HubHandle
) -> None:
    pid = _provider(api, hub, "openai")["id"]
    model = hub.unique_model("meta-llama/llama-3.1")
    created = _rate(api, hub, pid, model=model, modelDisplay="", inputRate="0.0000025")
    assert created["modelDisplay"] == default_model_display(model)
    assert Decimal(created["inputRate"]) == Decimal("0.0000025")
    assert isinstance(created["inputRate"], str) and "e" not in created["inputRate"].lower()
    again = api.post(
        f"{BASE}/{pid}/model-rates",
        json={"model": model, "type": "chatCompletion", "inputRate": 0, "outputRate": 0},
    )
    assert again.status_code == 409
    # another type of the same model is a different rate
    _rate(api, hub, pid, model=model, type="embedding")
    missing = api.put(f"{BASE}/{pid}/model-rates/nope", json={"inputRate": 1})
    assert missing.status_code == 404 and _error(missing) == "Model rate not found"


def test_batch_create_is_all_or_nothing_with_the_hubs_messages(
    api: httpx.Client, hub: HubHandle
) -> None:
    first = _provider(api, hub, "openai")
    second = _provider(api, hub, "anthropic")
    model = hub.unique_model()
    body = {"model": model, "type": "chatCompletion", "inputRate": "0.1", "outputRate": "0.2"}
    unknown = api.post(
        f"{BASE}/model-rates", json={**body, "providers": [first["id"], "ghost-a", "ghost-b"]}
    )
    assert unknown.status_code == 400 and _error(unknown) == "Providers not found: ghost-a, ghost-b"
    _rate(api, hub, second["id"], model=model)
    conflict = api.post(
        f"{BASE}/model-rates", json={**body, "providers": [first["id"], second["id"]]}
    )
    assert conflict.status_code == 409
    assert _error(conflict) == (
        f'Rate already exists for model "{model}" with type "chatCompletion" '
        f"in providers: {second['displayName']}"
    )
    # nothing was created for the first provider by either refused batch
    assert [
        r for r in api.get(f"{BASE}/{first['id']}/model-rates").json() if r["model"] == model
    ] == []
    other = hub.unique_model()
    done = api.post(
        f"{BASE}/model-rates",
        json={**body, "model": other, "providers": [first["id"], second["id"]]},
    )
    assert done.status_code == 200
    result = done.json()
    for rate in result["data"]:
        hub.track_rate(rate["providerId"], rate["id"])
    assert result["message"] == "Successfully created 2 model rates"
    assert result["summary"] == {"total": 2}
    assert {r["providerId"] for r in result["data"]} == {first["id"], second["id"]}
    # no unit costs given: stored as {}, yet every answer shows zeros, as the gateway does
    assert all(r["unitCosts"] == {"input": "0", "output": "0"} for r in result["data"])
    listed = api.get(f"{BASE}/{first['id']}/model-rates").json()
    assert [r["unitCosts"] for r in listed if r["model"] == other] == [
        {"input": "0", "output": "0"}
    ]


@pytest.mark.hub_needs("disposable", "needs exact counts on an otherwise empty hub")
def test_paged_list_filters_orders_and_caps_page_size(api: httpx.Client, hub: HubHandle) -> None:
    openai = _provider(api, hub, "openai")["id"]
    xai = _provider(api, hub, "xai")["id"]
    for i in range(23):
        _rate(
            api,
            hub,
            openai if i % 2 else xai,
            model=f"m-{i:02d}",
            type="embedding" if i < 3 else "chatCompletion",
        )
    page = api.get(f"{BASE}/model-rates", params={"page": 3, "pageSize": 10}).json()
    assert (
        page["count"] == 23
        and len(page["list"]) == 3
        and page["paging"] == {"page": 3, "pageSize": 10}
    )
    newest = api.get(f"{BASE}/model-rates", params={"pageSize": 1}).json()["list"][0]
    oldest = api.get(f"{BASE}/model-rates", params={"pageSize": 1, "o": "asc"}).json()["list"][0]
    assert (newest["model"], oldest["model"]) == ("m-22", "m-00")
    assert oldest["provider"]["name"] == "xai" and "credentials" not in oldest["provider"]
    only = api.get(f"{BASE}/model-rates", params={"providerId": openai, "pageSize": 500}).json()
    assert only["count"] == 11 and only["paging"]["pageSize"] == 100
    like = api.get(f"{BASE}/model-rates", params={"model": "M-1"}).json()
    assert sorted(r["model"] for r in like["list"]) == [f"m-1{i}" for i in range(10)]
    kv = api.get(f"{BASE}/model-rates", params={"q": "type:embedding"}).json()
    assert kv["count"] == 3
    per_provider = api.get(f"{BASE}/{openai}/model-rates").json()
    assert [r["model"] for r in per_provider] == sorted(r["model"] for r in per_provider)


# --- bulk updates ---------------------------------------------------------------------------


@pytest.mark.hub_needs("disposable", "margin mode rewrites every rate of the hub at once")
def test_margin_mode_ignores_dry_run_and_applies_at_once(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    tiny = _rate(
        api, hub, pid, model="tiny", unitCosts={"input": "0.000000025", "output": "0.0000001"}
    )
    _rate(api, hub, pid, model="free", unitCosts={"input": 0, "output": 0})
    _rate(api, hub, pid, model="bare")
    response = api.post(
        f"{BASE}/bulk-rate-update",
        json={"mode": "margin", "profitMargin": 0, "creditPrice": 1, "dryRun": True},
    )
    assert response.status_code == 200
    assert '"newInputRate": 2.5e-08' in response.text  # a JSON number, exponent and all
    body = response.json()
    assert (body["updated"], body["skipped"]) == (1, 2)
    assert body["summary"][0]["oldInputRate"] == tiny["inputRate"]  # old* are strings
    after = {r["model"]: r for r in api.get(f"{BASE}/{pid}/model-rates").json()}
    assert Decimal(after["tiny"]["inputRate"]) == Decimal("0.000000025")  # applied anyway
    assert Decimal(after["bare"]["inputRate"]) == Decimal("0.000001")


@pytest.mark.hub_needs("switches", "makes one rate fail with a fault")
def test_margin_mode_updates_in_batches_and_skips_failures_silently(
    api: httpx.Client, hub: HubHandle
) -> None:
    pid = _provider(api, hub, "openai")["id"]
    costs = {"input": "0.0000025", "output": "0.00001"}
    for i in range(23):
        _rate(api, hub, pid, model=f"m-{i:02d}", unitCosts=costs)
    hub.set_faults(margin_fail_models=["m-07"])
    body = api.post(
        f"{BASE}/bulk-rate-update", json={"profitMargin": 25, "creditPrice": "0.001"}
    ).json()
    assert (body["updated"], body["skipped"]) == (22, 1)
    assert body["parameters"] == {"profitMargin": 25.0, "creditPrice": 0.001}
    expected = margin_rate("0.0000025", 25, "0.001")
    rates = {
        r["model"]: Decimal(r["inputRate"]) for r in api.get(f"{BASE}/{pid}/model-rates").json()
    }
    assert rates.pop("m-07") == Decimal("0.000001")  # skipped: keeps its old rate
    assert set(rates.values()) == {expected}


def test_margin_mode_validation(api: httpx.Client, hub: HubHandle) -> None:
    no_price = api.post(f"{BASE}/bulk-rate-update", json={"mode": "margin", "profitMargin": 2})
    assert no_price.status_code == 400 and _error(no_price) == '"creditPrice" is required'
    zero = api.post(f"{BASE}/bulk-rate-update", json={"profitMargin": 2, "creditPrice": 0})
    assert _error(zero) == '"creditPrice" must be a positive number'
    negative = api.post(f"{BASE}/bulk-rate-update", json={"profitMargin": -1, "creditPrice": 1})
    assert _error(negative) == '"profitMargin" must be greater than or equal to 0'


@pytest.mark.hub_needs(
    "disposable", "applies a sync with deprecateUnmatched, which touches every rate"
)
def test_sync_mode_honours_dry_run_and_copies_costs_to_tier2(
    api: httpx.Client, hub: HubHandle
) -> None:
    openai = _provider(api, hub, "openai")["id"]
    openrouter = _provider(api, hub, "openrouter")["id"]
    poe = _provider(api, hub, "poe")["id"]
    old = {"input": "0.0000025", "output": "0.00001"}
    _rate(api, hub, openai, model="gpt-4o", unitCosts=old)
    _rate(api, hub, openai, model="gpt-3.5-turbo", unitCosts=old)
    _rate(api, hub, openrouter, model="openai/gpt-4o", unitCosts=old)
    _rate(api, hub, poe, model="gpt-4o", unitCosts=old)
    before = api.get(f"{BASE}/model-rates", params={"pageSize": 100}).json()
    request = {
        "mode": "sync",
        "updates": [
            # a dated id falls back to the undated rate
            {
                "providerId": "openai",
                "model": "gpt-4o-2024-08-06",
                "unitCosts": {"input": "0.000003", "output": 0.000012},
            },
            {"providerId": "openai", "model": "o9", "unitCosts": {"input": 1e-6, "output": 2e-6}},
            {
                "providerId": "openai",
                "model": "o9-mini",
                "unitCosts": {"input": 1e-7, "output": 2e-7},
                "isNew": True,
            },
            {
                "providerId": "deepseek",
                "model": "r9",
                "unitCosts": {"input": 1, "output": 1},
                "isNew": True,
            },
        ],
        "applyRates": True,
        "profitMargin": 2,
        "creditPrice": "0.001",
        "deprecateUnmatched": True,
        "dryRun": True,
    }
    dry = api.post(f"{BASE}/bulk-rate-update", json=request).json()
    assert dry["dryRun"] is True and dry["message"].startswith(
        "[DRY RUN] Sync completed: 3 updated, 1 created"
    )
    assert dry["summary"] == {
        "total": 6,
        "updated": 3,
        "unchanged": 0,
        "unmatched": 2,
        "created": 1,
        "errors": 0,
    }
    by_provider = {u["provider"]: u for u in dry["updated"]}
    assert by_provider["openrouter"]["source"] == "inherited:openai"
    assert by_provider["poe"]["source"] == "inherited:openai"
    new_rate = Decimal(str(by_provider["openai"]["newRates"]["inputRate"]))
    assert new_rate == margin_rate("0.000003", 2, "0.001")
    assert {u["reason"] for u in dry["unmatched"] if "reason" in u} == {"provider not configured"}
    assert [d["model"] for d in dry["deprecated"]] == ["gpt-3.5-turbo"]
    assert api.get(f"{BASE}/model-rates", params={"pageSize": 100}).json() == before

    applied = api.post(f"{BASE}/bulk-rate-update", json={**request, "dryRun": False}).json()
    assert applied["summary"]["updated"] == 3 and applied["message"].startswith("Sync completed")
    rows = api.get(
        f"{BASE}/model-rates", params={"pageSize": 100, "includeDeprecated": "true"}
    ).json()["list"]
    by_key = {(r["provider"]["name"], r["model"]): r for r in rows}
    assert by_key[("poe", "gpt-4o")]["unitCosts"] == {"input": "0.000003", "output": "0.000012"}
    assert Decimal(by_key[("openai", "gpt-4o")]["inputRate"]) == new_rate
    assert by_key[("openai", "o9-mini")]["modelDisplay"] == "O9 Mini"
    assert by_key[("openai", "gpt-3.5-turbo")]["deprecated"] is True
    # a deprecated rate leaves the default lists
    assert "gpt-3.5-turbo" not in [
        r["model"] for r in api.get(f"{BASE}/{openai}/model-rates").json()
    ]


def test_sync_dry_run_against_any_hub_changes_nothing(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    model = hub.unique_model()
    _rate(api, hub, pid, model=model, unitCosts={"input": "0.000001", "output": "0.000002"})
    request = {
        "mode": "sync",
        "updates": [
            {
                "providerId": "openai",
                "model": model,
                "unitCosts": {"input": "0.000002", "output": "0.000002"},
            }
        ],
        "dryRun": True,
    }
    result = api.post(f"{BASE}/bulk-rate-update", json=request).json()
    assert result["dryRun"] is True
    assert [u["model"] for u in result["updated"]] == [model]
    mine = [r for r in api.get(f"{BASE}/{pid}/model-rates").json() if r["model"] == model]
    assert Decimal(str(mine[0]["unitCosts"]["input"])) == Decimal("0.000001")
    missing = api.post(f"{BASE}/bulk-rate-update", json={"mode": "sync"})
    assert missing.status_code == 400
    assert _error(missing) == 'sync mode requires either "updates" or "entries" array'


# --- state file and restarts ----------------------------------------------------------------


@pytest.mark.hub_needs("switches")
def test_state_survives_a_restart(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    _rate(api, hub, pid, model="gpt-4o", inputRate="0.0000000001")
    api.post(f"{BASE}/{pid}/credentials", json={"name": "k", "value": KEY})
    before = api.get(BASE, params={"includeModelRates": "true"}).json()
    hub.kill()
    hub.restart()
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {hub.token}"}) as again:
        assert again.get(BASE, params={"includeModelRates": "true"}).json() == before
        # ids keep counting from where they were
        other = again.post(
            f"{BASE}/{pid}/model-rates",
            json={"model": "x", "type": "embedding", "inputRate": 0, "outputRate": 0},
        )
        assert int(other.json()["id"]) > int(before[0]["modelRates"][0]["id"])


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.hub_needs("switches")
def test_status_faults_hit_matching_requests_only_and_are_counted(
    api: httpx.Client, hub: HubHandle
) -> None:
    hub.set_faults(status={"code": 503, "count": 2, "path": f"{BASE}/model-rates", "method": "GET"})
    assert api.get(BASE).status_code == 200  # another path: untouched
    codes = [api.get(f"{BASE}/model-rates").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert hub.request_count(f"{BASE}/model-rates") == 3
    assert hub.request_count(method="GET") == 4
    hub.set_faults(status={"code": 429, "count": 1, "retry_after": 7, "retry_after_header": True})
    limited = api.get(BASE)
    assert limited.status_code == 429 and limited.json()["retryAfter"] == 7
    assert limited.headers["retry-after"] == "7"


@pytest.mark.hub_needs("switches")
def test_fail_after_n_writes_refuses_without_applying(api: httpx.Client, hub: HubHandle) -> None:
    pid = _provider(api, hub, "openai")["id"]
    hub.set_faults(fail_after_writes={"writes": 2})
    codes = [
        api.post(
            f"{BASE}/{pid}/model-rates",
            json={"model": f"m{i}", "type": "embedding", "inputRate": 0, "outputRate": 0},
        ).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 500, 500]
    assert api.get(f"{BASE}/model-rates").json()["count"] == 2  # reads still work
    assert hub.stats()["writes"] == 5  # the provider, then four rate attempts


@pytest.mark.hub_needs("switches")
def test_dropped_connection_after_apply_leaves_the_write_done(
    api: httpx.Client, hub: HubHandle
) -> None:
    # The promise: a transport error (no answer), and the write kept or not as configured.
    hub.set_faults(drop={"count": 1, "method": "POST"})
    with pytest.raises(httpx.TransportError):
        api.post(BASE, json={"name": "openai", "displayName": "O", "baseUrl": "https://o.io"})
    assert [p["name"] for p in api.get(BASE).json()] == ["openai"]
    hub.set_faults(drop={"count": 1, "method": "POST", "after_apply": False})
    with pytest.raises(httpx.TransportError):
        api.post(BASE, json={"name": "xai", "displayName": "X", "baseUrl": "https://x.io"})
    assert [p["name"] for p in api.get(BASE).json()] == ["openai"]


def _raw_exchange(hub: HubHandle, head: bytes, body: bytes) -> bytes:
    """Send head and body as two writes; read until the hub closes (a RST raises)."""
    host, port = hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        sock.sendall(body)  # a separate segment: it may arrive after the hub chose to drop
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize("after_apply", [True, False])
def test_a_drop_is_always_a_short_body_and_a_clean_close(
    api: httpx.Client, hub: HubHandle, after_apply: bool
) -> None:
    # One exact wire behaviour, every time: full headers, the start of the promised body,
    # then a FIN. Before, unread request bytes at close could turn it into a RST.
    for i in range(10):
        hub.set_faults(drop={"count": 1, "method": "POST", "after_apply": after_apply})
        body = json.dumps({"name": "openai", "displayName": f"O{i}", "baseUrl": "https://o.io"})
        head = (
            f"POST {BASE} HTTP/1.1\r\nHost: {hub.url.removeprefix('http://')}\r\n"
            f"Authorization: Bearer {hub.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        received = _raw_exchange(hub, head.encode(), body.encode())
        headers, _, partial = received.partition(b"\r\n\r\n")
        assert headers.startswith(b"HTTP/1.1 200 ") and b"content-length: 64" in headers
        assert partial == b'{"dropped": ', received
        assert [p["name"] for p in api.get(BASE).json()] == (["openai"] if after_apply else [])
        hub.reset()


@pytest.mark.hub_needs("switches")
def test_crash_kills_the_server_before_or_after_the_write(hub: HubHandle) -> None:
    body = {"name": "openai", "displayName": "O", "baseUrl": "https://o.io"}
    headers = {"Authorization": f"Bearer {hub.token}"}
    hub.set_faults(crash={"after_writes": 0})
    with pytest.raises(httpx.TransportError):
        httpx.post(hub.url + BASE, json=body, headers=headers, timeout=5)
    hub.restart()
    assert httpx.get(hub.url + BASE, headers=headers).json() == []
    hub.set_faults(crash={"after_writes": 0, "after_apply": True})
    with pytest.raises(httpx.TransportError):
        httpx.post(hub.url + BASE, json=body, headers=headers, timeout=5)
    hub.restart()
    assert [p["name"] for p in httpx.get(hub.url + BASE, headers=headers).json()] == ["openai"]


@pytest.mark.hub_needs("switches")
def test_a_restart_whose_port_was_taken_meanwhile_moves_to_a_free_one(hub: HubHandle) -> None:
    # kill → restart rebinds the old port; on a busy machine anything may have taken it
    hub.kill()
    old_url = hub.url
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", int(old_url.rsplit(":", 1)[1])))
        squatter.listen(1)
        hub.restart()
    assert hub.url != old_url
    headers = {"Authorization": f"Bearer {hub.token}"}
    assert httpx.get(hub.url + BASE, headers=headers, timeout=30).json() == []


@pytest.mark.hub_needs("switches")
def test_a_slow_write_still_applies_after_the_client_gave_up(
    api: httpx.Client, hub: HubHandle
) -> None:
    # A 1 s timeout against a 5 s delay: only a 4 s stall of this process could blur it.
    hub.set_faults(delay={"seconds": 5.0, "count": 1, "method": "POST"})
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            BASE,
            json={"name": "openai", "displayName": "O", "baseUrl": "https://o.io"},
            timeout=1.0,
        )
    deadline = time.monotonic() + 60
    while not api.get(BASE).json():
        assert time.monotonic() < deadline, "the delayed write never landed"
        time.sleep(0.05)


def _post_in_thread(hub: HubHandle, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def post() -> None:
        headers = {"Authorization": f"Bearer {hub.token}"}
        outcome.append(httpx.post(hub.url + BASE, json=body, headers=headers, timeout=120))

    thread = threading.Thread(target=post)
    thread.start()
    return thread, outcome


@pytest.mark.hub_needs("switches")
def test_a_held_write_waits_for_the_release(api: httpx.Client, hub: HubHandle) -> None:
    hub.set_faults(hold={"count": 1, "method": "POST"})
    thread, outcome = _post_in_thread(
        hub, {"name": "openai", "displayName": "O", "baseUrl": "https://o.io"}
    )
    hub.wait_for_request(BASE, "POST")
    assert api.get(BASE).json() == [] and outcome == []  # arrived, held, not applied
    hub.release()
    thread.join(120)
    assert outcome[0].status_code == 200, outcome[0].text
    assert [p["name"] for p in api.get(BASE).json()] == ["openai"]


@pytest.mark.hub_needs("switches")
def test_a_reset_lets_a_held_write_go_without_applying_it(
    api: httpx.Client, hub: HubHandle
) -> None:
    hub.set_faults(hold={"count": 1, "method": "POST"})
    thread, outcome = _post_in_thread(
        hub, {"name": "openai", "displayName": "O", "baseUrl": "https://o.io"}
    )
    hub.wait_for_request(BASE, "POST")
    hub.reset()  # releases it; it must not leak into what comes after the reset
    thread.join(120)
    assert outcome[0].status_code == 503 and "reset" in outcome[0].json()["error"]
    assert api.get(BASE).json() == []


@pytest.mark.hub_needs("switches")
def test_a_reset_while_a_held_body_is_still_arriving_counts_as_meanwhile(
    api: httpx.Client, hub: HubHandle
) -> None:
    # The hub counts a request once its headers are in; a reset from then on must keep
    # it out of the new state, even if the body only arrives after the reset.
    hub.set_faults(hold={"count": 1, "method": "POST"})
    body = json.dumps({"name": "openai", "displayName": "O", "baseUrl": "https://o.io"})
    host, port = hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(
            f"POST {BASE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {hub.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        hub.wait_for_request(BASE, "POST")
        hub.reset()
        sock.sendall(body.encode())
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert api.get(BASE).json() == []


@pytest.mark.hub_needs("switches")
def test_bad_fault_specs_are_refused(hub: HubHandle) -> None:
    with pytest.raises(AssertionError, match="unknown fault"):
        hub.set_faults(explode=True)
    with pytest.raises(AssertionError, match="status.code"):
        hub.set_faults(status={"code": 200})


def _ask(app: Any, *requests: tuple[str, str, dict[str, str]]) -> list[tuple[int, Any]]:
    """Send ``(method, path, headers)`` requests to an ASGI app in this process, in order."""

    async def run() -> list[tuple[int, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as web:
            answers = [await web.request(m, path, headers=h, json={}) for m, path, h in requests]
        return [(a.status_code, a.json()) for a in answers]

    return asyncio.run(run())


def test_the_test_switches_exist_only_when_asked_for(tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer tok-0123456789"}
    switches = [(m, p, auth) for m, p in (("POST", "/__test__/reset"), ("GET", "/__test__/stats"),
                                          ("POST", "/__test__/faults"),
                                          ("POST", "/__test__/release"))]  # fmt: skip
    plain_app = create_app(tmp_path / "a.json", "tok-0123456789")
    assert _ask(plain_app, *switches, ("GET", BASE, auth)) == [
        *[(404, {"error": "Not Found"})] * 4,
        (200, []),
    ]
    with_switches = create_app(tmp_path / "b.json", "tok-0123456789", test_faults=True)
    stats = ("GET", "/__test__/stats", auth)
    answers = _ask(with_switches, stats, ("GET", "/__test__/stats", {}), ("GET", BASE, auth), stats)
    assert [status for status, _ in answers] == [200, 401, 200, 200]  # same token as the API
    assert (answers[0][1]["total"], answers[3][1]["total"]) == (0, 1)


# --- entry points ---------------------------------------------------------------------------


def test_serve_refuses_non_loopback_hosts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        serve("0.0.0.0", 0, tmp_path / "s.json", "tok-0123456789")


def test_cli_needs_a_token_and_never_prints_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "s.json")
    assert main(["--port", "0", "--state", state]) == 2  # HUBKIT_HUB_TOKEN is not set
    assert "HUBKIT_HUB_TOKEN" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text("hubtok-cli-secret-0123456789\n")
    assert main(["--host", "10.1.2.3", "--state", state, "--token-file", str(token_file)]) == 1
    out = capsys.readouterr()
    assert "loopback" in out.err
    assert "hubtok-cli-secret" not in out.out + out.err


@pytest.mark.hub_needs("disposable", "pins the hub's whole list of provider names to hubkit's")
def test_known_providers_match_the_domain_list(api: httpx.Client, hub: HubHandle) -> None:
    response = api.post(BASE, json={"name": "acme", "displayName": "A", "baseUrl": "https://a.io"})
    assert _error(response) == f'"name" must be one of [{", ".join(KNOWN_PROVIDERS)}]'
    assert set(hub.provider_urls) <= set(KNOWN_PROVIDERS)
