"""``HubClient`` against the local hub on loopback (or HUBKIT_TEST_HUB_URL's hub), plus
``httpx.MockTransport`` cases a real server cannot produce on demand.

Retries, timeouts and 429 waits are observed through the hub's request counters and an
injected ``sleep`` that records instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hubkit.config import Settings
from hubkit.domain import RateSpec, RateType, UnitCosts
from hubkit.errors import (
    HubError,
    HubRateLimitedError,
    HubStatusError,
    HubTimeoutError,
    ValidationError,
)
from hubkit.hub import HubClient, HubCredential, SyncUpdate
from hubkit.hub.redact import redact, redact_mapping, redact_url
from hubkit.pricing import default_model_display, margin_rate

if TYPE_CHECKING:
    from hub_fixtures import HubHandle


# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = pytest.mark.soak

KEY = "sk-proj-abcdefghijklmnop1234"
OTHER_KEY = "sk-live-ZYXWVUTSRQPONMLK9876"


class Sleeps(list[float]):
    """An injected ``sleep`` that records the wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(hub: HubHandle, sleeps: Sleeps) -> Iterator[HubClient]:
    with hub.client(sleep=sleeps, timeout=5.0) as c:
        yield c


# --- providers --------------------------------------------------------------------------------


def test_provider_lifecycle(hub: HubHandle, client: HubClient) -> None:
    created = hub.fresh_provider("xai", display_name="xAI")
    assert (created.name, created.display_name, created.enabled) == ("xai", "xAI", True)
    assert created.base_url == hub.provider_urls["xai"]
    listed = client.list_providers(name="xai")
    assert [p.id for p in listed] == [created.id]
    assert listed[0].model_rates is None  # not asked for
    updated = client.update_provider(
        created.id, name="xai", base_url="https://api.x.ai/v2", enabled=False
    )
    assert (updated.base_url, updated.enabled) == ("https://api.x.ai/v2", False)
    assert (
        client.get_provider("xai") == client.list_providers(name="xai", include_model_rates=True)[0]
    )
    assert client.delete_provider(created.id) == "Provider deleted successfully"
    assert client.get_provider("xai") is None
    spec = created.to_spec()
    assert (spec.name, spec.base_url) == ("xai", hub.provider_urls["xai"])


def test_provider_errors_carry_method_path_status_and_the_hubs_message(
    hub: HubHandle, client: HubClient
) -> None:
    hub.provider("openai")
    with pytest.raises(HubStatusError) as conflict:
        client.create_provider("openai", "Again", base_url="https://x.io")
    err = conflict.value
    assert (err.method, err.path, err.status) == ("POST", "/api/ai-providers", 409)
    assert err.hub_message == "Provider with this name already exists"
    assert "409" in str(err) and "already exists" in str(err)
    with pytest.raises(HubStatusError) as missing:
        client.update_provider("no-such-id", name="openai", base_url="https://x.io")
    assert missing.value.status == 404 and missing.value.path == "/api/ai-providers/no-such-id"
    with pytest.raises(ValidationError, match="base_url"):
        client.update_provider("any", name="openai")  # the hub would say "baseUrl is required"
    with pytest.raises(ValidationError, match="region"):
        client.update_provider("any", name="bedrock")


# --- credentials ------------------------------------------------------------------------------


@pytest.mark.hub_needs("fake_keys")
def test_credential_lifecycle_masks_and_drops_the_encrypted_value(
    hub: HubHandle, client: HubClient
) -> None:
    provider = hub.provider("openai")
    cred = client.create_credential(provider.id, "main", KEY, test_model="gpt-4o-mini")
    assert isinstance(cred, HubCredential)
    assert cred.display_text == "sk-p****************1234"
    assert cred.masked_value == {"api_key": "sk-p****************1234"}
    assert not hasattr(cred, "credential_value") and KEY not in repr(cred)
    # the raw listing carries credentialValue (as the real hub does); the parsed one cannot
    raw = httpx.get(
        hub.url + "/api/ai-providers", headers={"Authorization": f"Bearer {hub.token}"}
    ).json()
    assert "credentialValue" in raw[0]["credentials"][0]
    listed = client.get_provider("openai")
    assert listed is not None and listed.credentials == (cred,)
    assert "credentialValue" not in repr(listed) and "enc:" not in repr(listed)

    rotated = client.update_credential(provider.id, cred.id, "main", OTHER_KEY)
    assert rotated.display_text == "sk-l****************9876" and rotated.active
    assert client.check_credential(provider.id, cred.id).ok
    assert client.health().providers == {"openai": {"main": True}}
    assert client.delete_credential(provider.id, cred.id) == "Credential deleted successfully"
    assert client.health().providers == {}


@pytest.mark.hub_needs(
    "switches",
    "counts the key-test requests; its made-up keys pass only the local hub's fake key "
    "checker, and six tests would lock a hub's key tests for 10 minutes",
)
def test_credential_test_reports_a_bad_key_and_then_the_rate_limit(
    hub: HubHandle, client: HubClient, sleeps: Sleeps
) -> None:
    provider = hub.provider("openai")
    bad = client.test_credential(provider.id, "sk-bad-0123456789abcdef")
    assert not bad.ok and bad.detail and "Incorrect API key" in bad.detail
    pair = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "s3cr3t-s3cr3t-s3cr3t-0000"}
    assert client.test_credential(provider.id, pair, credential_type="access_key_pair").ok
    for _ in range(3):
        assert client.test_credential(provider.id, KEY).ok
    with pytest.raises(HubRateLimitedError) as limited:
        client.test_credential(provider.id, KEY)
    err = limited.value
    assert err.status == 429 and err.retry_after is not None and 590 <= err.retry_after <= 600
    assert "retry in" in str(err) and "HUBKIT_HUB_MAX_WAIT" in str(err)
    assert sleeps == []  # ten minutes is past max_wait: no waiting at all
    assert hub.request_count("*/credentials/test") == 6
    with pytest.raises(HubError):  # a failed create is a 500 from the real route too
        client.create_credential(provider.id, "bad", "sk-bad-0123456789abcdef")


# --- rates ------------------------------------------------------------------------------------


def test_rate_lifecycle_with_exact_decimals(hub: HubHandle, client: HubClient) -> None:
    provider = hub.provider("openai")
    model = hub.unique_model()
    rate = client.create_rate(
        provider.id,
        model=model,
        type=RateType.CHAT_COMPLETION,
        input_rate=Decimal("2.5E-8"),  # goes out as "0.000000025", never "2.5E-8"
        output_rate="0.00001",
        unit_costs={"input": "1.0003E-7", "output": 0},
        caching={"readRate": "0.0000000001"},
        model_metadata={"maxTokens": 128000, "features": ["tools", "vision"]},
        description="test rate",
    )
    hub.track_rate(provider.id, rate.id)
    assert rate.input_rate == Decimal("0.000000025") and rate.output_rate == Decimal("0.00001")
    assert rate.unit_costs == UnitCosts(Decimal("1.0003E-7"), Decimal(0))
    assert rate.caching is not None and rate.caching.read_rate == Decimal("1E-10")
    assert rate.model_metadata == {"maxTokens": 128000, "features": ["tools", "vision"]}
    assert rate.model_display == default_model_display(model)
    assert [r.id for r in client.list_rates(provider.id) if r.model == model] == [rate.id]

    changed = client.update_rate(provider.id, rate.id, output_rate="0.00002", description="new")
    assert (changed.output_rate, changed.description, changed.input_rate) == (
        Decimal("0.00002"),
        "new",
        rate.input_rate,
    )
    spec = changed.to_spec("openai")
    assert spec.key == ("openai", model, RateType.CHAT_COMPLETION)
    assert client.delete_rate(provider.id, rate.id) == "Model rate deleted successfully"
    with pytest.raises(HubStatusError) as gone:
        client.update_rate(provider.id, rate.id, input_rate=1)
    assert gone.value.status == 404 and gone.value.hub_message == "Model rate not found"


def test_create_from_spec_batch_and_pages(hub: HubHandle, client: HubClient) -> None:
    first, second = hub.provider("openai"), hub.provider("anthropic")
    spec = RateSpec.create("openai", hub.unique_model(), "embedding", input_rate="0.0000001")
    one = client.create_rate_from_spec(first.id, spec)
    hub.track_rate(first.id, one.id)
    assert (one.model, one.type, one.model_display) == (spec.model, spec.type, spec.model_display)
    model = hub.unique_model()
    batch = client.batch_create_rates(
        [first.id, second.id], model=model, type="chatCompletion", input_rate=1, output_rate=2
    )
    for rate in batch.rates:
        hub.track_rate(rate.provider_id, rate.id)
    assert batch.total == 2 and {r.provider_id for r in batch.rates} == {first.id, second.id}
    # the hub answers zeros for a rate batch-created without unit costs: read as none
    assert all(r.unit_costs is None for r in batch.rates)
    with pytest.raises(HubStatusError) as conflict:
        client.batch_create_rates(
            [first.id], model=model, type="chatCompletion", input_rate=1, output_rate=2
        )
    assert conflict.value.status == 409 and model in str(conflict.value)

    page = client.list_rates_page(
        page=1, page_size=2, model=model, provider_ids=[first.id, second.id]
    )
    assert page.count == 2 and page.page_size == 2 and page.pages == 1
    assert {r.provider.name for r in page.items if r.provider} == {"openai", "anthropic"}
    every = [r.id for r in client.iter_rates(page_size=1, model=model)]
    assert sorted(every) == sorted(r.id for r in batch.rates)


def test_sync_dry_run_shows_tier2_side_effects_and_the_hubs_numbers(
    hub: HubHandle, client: HubClient
) -> None:
    openai, openrouter = hub.provider("openai"), hub.provider("openrouter")
    model = hub.unique_model("gpt-x")  # gpt- prefix: openrouter's plain id follows openai
    for provider in (openai, openrouter):
        rate = client.create_rate(
            provider.id,
            model=model,
            type="chatCompletion",
            input_rate=0,
            output_rate=0,
            unit_costs={"input": "0.0000025", "output": "0.00001"},
        )
        hub.track_rate(provider.id, rate.id)
    update = SyncUpdate(
        "openai", model, UnitCosts.parse({"input": "0.000003", "output": "0.000012"})
    )
    with pytest.raises(ValidationError, match="profit_margin"):
        client.sync_rates([update], apply_rates=True)
    result = client.sync_rates([update], apply_rates=True, profit_margin=25, credit_price="0.001")
    assert result.dry_run and result.message.startswith("[DRY RUN]")
    assert [i.provider for i in result.tier2_side_effects] == ["openrouter"]
    mine = next(i for i in result.updated if i.provider == "openai")
    assert mine.new_rates is not None
    # the hub's arithmetic equals hubkit's after quantising to 10 places
    assert mine.new_rates.input_rate == margin_rate("0.000003", 25, "0.001")
    assert mine.new_unit_costs == UnitCosts(Decimal("0.000003"), Decimal("0.000012"))
    assert [r.input_rate for r in client.list_rates(openai.id) if r.model == model] == [Decimal(0)]


def test_margin_bulk_update_needs_confirmation_and_parses_exponent_numbers(
    hub: HubHandle, client: HubClient
) -> None:
    with pytest.raises(ValidationError, match="ignores dryRun") as refused:
        client.apply_margin_to_all_rates(2, 1)
    assert "confirm=True" in str(refused.value)
    hub.require_switches("counts the requests margin mode sends")
    before = hub.request_count()
    provider = hub.provider("openai")
    client.create_rate(
        provider.id,
        model="tiny",
        type="chatCompletion",
        input_rate=1,
        output_rate=1,
        unit_costs={"input": "0.000000025", "output": "0.00000000004"},
    )
    result = client.apply_margin_to_all_rates(0, 1, confirm=True)
    (item,) = result.summary
    assert item.new_input_rate == Decimal("2.5E-8")  # arrived as the JSON number 2.5e-08
    assert item.new_output_rate == Decimal("0.0000000000")  # 4e-11 rounds to 0 at 10 places
    assert (item.old_input_rate, result.updated, result.skipped) == (Decimal(1), 1, 0)
    assert result.profit_margin == 0 and result.credit_price == 1
    assert hub.request_count("*/bulk-rate-update") == 1 and hub.request_count() > before


def test_health(hub: HubHandle, client: HubClient) -> None:
    health = client.health()
    assert health.timestamp is not None and health.timestamp.tzinfo is not None
    assert isinstance(health.providers, dict)


# --- retries, timeouts, rate limits on the loopback hub ---------------------------------------


@pytest.mark.hub_needs("switches")
def test_get_is_retried_on_503_with_exponential_backoff(
    hub: HubHandle, client: HubClient, sleeps: Sleeps
) -> None:
    hub.set_faults(status={"code": 503, "count": 2, "method": "GET"})
    assert client.list_providers() == []
    assert hub.request_count("/api/ai-providers", "GET") == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.hub_needs("switches")
def test_get_gives_up_after_the_retries(hub: HubHandle, client: HubClient, sleeps: Sleeps) -> None:
    hub.set_faults(status={"code": 502, "method": "GET"})
    with pytest.raises(HubStatusError, match="still failing after 4 attempts") as failed:
        client.health()
    assert failed.value.status == 502
    assert hub.request_count(method="GET") == 4 and sleeps == [0.5, 1.0, 2.0]


@pytest.mark.hub_needs("switches")
def test_post_is_never_retried_on_503(hub: HubHandle, client: HubClient, sleeps: Sleeps) -> None:
    hub.set_faults(status={"code": 503, "count": 1, "method": "POST"})
    with pytest.raises(HubStatusError, match="may have applied") as failed:
        client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    assert failed.value.status == 503 and failed.value.method == "POST"
    assert hub.request_count(method="POST") == 1 and sleeps == []


@pytest.mark.hub_needs("switches")
def test_post_is_retried_after_429_honouring_retry_after(
    hub: HubHandle, client: HubClient, sleeps: Sleeps
) -> None:
    hub.set_faults(status={"code": 429, "count": 1, "retry_after": 3, "method": "POST"})
    created = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    assert created.name == "openai" and sleeps == [3.0]
    assert hub.request_count(method="POST") == 2
    assert [p.id for p in client.list_providers()] == [created.id]  # created exactly once


@pytest.mark.hub_needs("switches")
def test_429_waits_are_capped_by_max_wait(hub: HubHandle, sleeps: Sleeps) -> None:
    hub.set_faults(status={"code": 429, "count": 3, "retry_after": 4, "retry_after_header": True})
    with hub.client(sleep=sleeps, max_wait=10) as capped, pytest.raises(HubRateLimitedError) as err:
        capped.list_providers()
    assert sleeps == [4.0, 4.0]  # a third wait would pass 10 s in total
    assert err.value.retry_after == 4 and "already waited 8 s" in str(err.value)
    assert hub.request_count() == 3


@pytest.mark.hub_needs("switches")
def test_a_slow_get_is_retried_and_a_slow_post_is_not(hub: HubHandle, sleeps: Sleeps) -> None:
    # Held requests time out whatever the load; 5 s (as everywhere) for the ones not held.
    with hub.client(sleep=sleeps, timeout=5.0) as fast:
        hub.set_faults(hold={"count": 1, "method": "GET"})
        assert fast.list_providers() == []
        assert hub.request_count(method="GET") == 2 and sleeps == [0.5]
        hub.set_faults(hold={"count": 1, "method": "POST"})
        with pytest.raises(HubTimeoutError, match="re-read its state") as timed_out:
            fast.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
        assert timed_out.value.method == "POST" and hub.request_count(method="POST") == 1
    # the hub does apply it after the client gave up: that is why a POST is not retried
    with hub.client() as reader:
        assert reader.list_providers() == []  # still held
        hub.release()
        deadline = time.monotonic() + 60
        while not reader.list_providers():
            assert time.monotonic() < deadline, "the released write never landed"
            time.sleep(0.05)


@pytest.mark.hub_needs("switches")
def test_a_dropped_answer_is_retried_for_get_and_delete_but_not_for_post(
    hub: HubHandle, client: HubClient
) -> None:
    hub.set_faults(drop={"count": 1, "method": "POST"})
    with pytest.raises(HubError, match="may have applied"):
        client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    (provider,) = client.list_providers()  # it was applied: re-reading shows it
    hub.set_faults(drop={"count": 1, "method": "GET"})
    assert [p.id for p in client.list_providers()] == [provider.id]
    # a DELETE whose answer was lost: the retry's 404 means our delete happened
    hub.set_faults(drop={"count": 1, "method": "DELETE"})
    assert client.delete_provider(provider.id) == "already deleted"
    assert hub.request_count(method="DELETE") == 2 and client.list_providers() == []


@pytest.mark.hub_needs("switches")
def test_an_unreachable_hub_says_so_after_retrying(hub: HubHandle, sleeps: Sleeps) -> None:
    hub.kill()
    with (
        hub.client(sleep=sleeps) as offline,
        pytest.raises(HubError, match="cannot connect") as err,
    ):
        offline.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    # the POST never reached anything, so retrying it was safe
    assert sleeps == [0.5, 1.0, 2.0]
    assert "HUBKIT_HUB_URL" in str(err.value) and hub.token not in str(err.value)
    hub.restart()


@pytest.mark.hub_needs("switches")
def test_fail_after_writes_leaves_earlier_writes_done(hub: HubHandle, client: HubClient) -> None:
    provider = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    hub.set_faults(fail_after_writes={"writes": 2})
    created = []
    with pytest.raises(HubStatusError) as failed:
        for i in range(4):
            created.append(
                client.create_rate(
                    provider.id, model=f"m{i}", type="embedding", input_rate=0, output_rate=0
                )
            )
    assert failed.value.status == 500 and len(created) == 2
    assert sorted(r.model for r in client.list_rates(provider.id)) == ["m0", "m1"]


# --- secrets never leak -----------------------------------------------------------------------


@pytest.mark.hub_needs(
    "switches", "drops an answer with a fault, and reads the local hub's state file"
)
def test_no_token_or_key_in_logs_exceptions_or_reprs(
    hub: HubHandle, client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    texts: list[str] = [repr(client)]
    provider = hub.provider("openai")
    cred = client.create_credential(provider.id, "main", KEY)
    client.update_credential(provider.id, cred.id, "main", {"api_key": OTHER_KEY})
    texts.append(repr(client.test_credential(provider.id, KEY)))
    texts.append(repr(client.list_providers(include_model_rates=True)))
    for call in (
        lambda: client.create_credential(provider.id, "bad", "sk-bad-" + KEY),
        lambda: client.create_credential("missing", "x", KEY),
        lambda: client.update_credential(provider.id, "missing", "x", OTHER_KEY),
    ):
        with pytest.raises(HubError) as err:
            call()
        texts += [str(err.value), repr(err.value), str(err.value.hub_message)]
    hub.set_faults(drop={"count": 1, "method": "PUT"})
    with pytest.raises(HubError) as dropped:
        client.update_credential(provider.id, "missing", "x", OTHER_KEY)
    texts.append(str(dropped.value))
    records = [r.getMessage() for r in caplog.records]
    assert any("credentials" in m for m in records)  # requests were logged...
    assert any('"value": "***"' in m for m in records)  # ...with the value masked
    for text in texts + records:
        for secret in (hub.token, KEY, OTHER_KEY, KEY[8:]):
            assert secret not in text
    assert hub.token not in hub.read_state() and KEY not in hub.read_state()  # type: ignore[attr-defined]


def test_from_settings_names_the_missing_variable() -> None:
    with pytest.raises(ValidationError, match="HUBKIT_HUB_URL") as no_url:
        HubClient.from_settings(Settings.from_env({}))
    assert no_url.value.field == "HUBKIT_HUB_URL"
    with pytest.raises(ValidationError, match="HUBKIT_HUB_TOKEN"):
        HubClient.from_settings(Settings.from_env({"HUBKIT_HUB_URL": "http://127.0.0.1:9"}))
    env = {
        "HUBKIT_HUB_URL": "http://user:pw@127.0.0.1:9/prefix/",
        "HUBKIT_HUB_TOKEN": "tok-from-env-123456",
        "HUBKIT_HUB_TIMEOUT": "2.5",
    }
    with HubClient.from_settings(Settings.from_env(env)) as configured:
        assert configured.base_url == "http://user:pw@127.0.0.1:9/prefix"
        assert (
            repr(configured) == "HubClient(base_url='http://***@127.0.0.1:9/prefix', token='***')"
        )
    with pytest.raises(ValidationError, match="http"):
        HubClient("ftp://hub", "tok-123456")
    with pytest.raises(ValidationError, match="HUBKIT_HUB_TOKEN"):
        HubClient("http://127.0.0.1:9", "  ")


def test_the_push_concurrency_comes_from_the_environment_and_is_bounded() -> None:
    env = {"HUBKIT_HUB_URL": "http://127.0.0.1:9", "HUBKIT_HUB_TOKEN": "tok-from-env-123456"}
    with HubClient.from_settings(Settings.from_env(env)) as default:
        assert default.concurrency == 8
    with HubClient.from_settings(Settings.from_env({**env, "HUBKIT_HUB_CONCURRENCY": " 3 "})) as c:
        assert c.concurrency == 3
    for bad in ("0", "33", "2.5", "eight", "-1"):
        with pytest.raises(ValidationError, match="HUBKIT_HUB_CONCURRENCY must be a whole") as e:
            Settings.from_env({**env, "HUBKIT_HUB_CONCURRENCY": bad})
        assert e.value.field == "HUBKIT_HUB_CONCURRENCY"
    with pytest.raises(ValidationError, match="concurrency must be a whole number from 1 to 32"):
        HubClient("http://127.0.0.1:9", "tok-123456", concurrency=0)


# --- MockTransport: answers a loopback server cannot be asked for -----------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def _mock(
    handler: Handler, sleeps: Sleeps | None = None, **kwargs: Any
) -> tuple[HubClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = HubClient(
        "http://hub.test/prefix",
        "tok-mock-0123456789",
        transport=httpx.MockTransport(record),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,
    )
    return client, seen


RATE = {
    "id": "r1",
    "providerId": "p1",
    "model": "m",
    "type": "chatCompletion",
    "inputRate": "0.0000025000",
    "outputRate": "0.00001",
    "modelDisplay": "M",
}


def test_mock_requests_carry_the_token_and_plain_decimal_strings() -> None:
    client, seen = _mock(lambda r: httpx.Response(200, json=RATE))
    rate = client.create_rate(
        "p 1", model="m", type="chatCompletion", input_rate=Decimal("8E-8"), output_rate=0
    )
    assert rate.input_rate == Decimal("0.0000025")
    request = seen[0]
    assert request.url.raw_path == b"/prefix/api/ai-providers/p%201/model-rates"
    assert request.headers["authorization"] == "Bearer tok-mock-0123456789"
    body = json.loads(request.content)
    assert body["inputRate"] == "0.00000008" and body["outputRate"] == "0"


def test_mock_bodies_carry_exactly_the_fields_given() -> None:
    provider = {"id": "p1", "name": "openai", "displayName": "OpenAI", "enabled": True}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=RATE if "model-rates" in request.url.path else provider)

    client, seen = _mock(answer)
    client.create_rate("p1", model="m", type="chatCompletion", input_rate=1, output_rate=2)
    client.create_rate(
        "p1", model="m", type="chatCompletion", input_rate=1, output_rate=2, model_display="M",
        description="d", unit_costs={"input": "1E-7", "output": 0}, caching={"readRate": 0},
        model_metadata={"maxTokens": 8},
    )  # fmt: skip
    client.update_rate("p1", "r1", description="only this")
    client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    client.update_provider("p1", name="openai", base_url="https://x.test", enabled=False)
    bodies = [json.loads(r.content) for r in seen]
    key = {"model": "m", "type": "chatCompletion", "inputRate": "1", "outputRate": "2"}
    assert bodies[0] == key
    assert bodies[1] == {
        **key, "modelDisplay": "M", "description": "d", "caching": {"readRate": "0"},
        "unitCosts": {"input": "0.0000001", "output": "0"}, "modelMetadata": {"maxTokens": 8},
    }  # fmt: skip
    assert bodies[2] == {"description": "only this"}
    assert bodies[3] == {"name": "openai", "displayName": "OpenAI", "enabled": True,
                         "baseUrl": "https://api.openai.com/v1"}  # fmt: skip
    assert bodies[4] == {"name": "openai", "baseUrl": "https://x.test", "enabled": False}


def test_mock_exponent_numbers_parse_exactly() -> None:
    raw = (
        b'{"message": "ok", "updated": 1, "skipped": 0, "parameters": {"profitMargin": 2, '
        b'"creditPrice": 0.001}, "summary": [{"id": "r1", "model": "m", "provider": "OpenAI", '
        b'"oldInputRate": "0.0000000100", "newInputRate": 2.5e-08, '
        b'"oldOutputRate": "0", "newOutputRate": 1.02e-05}]}'
    )
    client, seen = _mock(lambda r: httpx.Response(200, content=raw))
    item = client.apply_margin_to_all_rates(2, "0.001", confirm=True).summary[0]
    # no dryRun (the hub would ignore it) and no mode (older hubs refuse the key)
    assert json.loads(seen[0].content) == {"profitMargin": "2", "creditPrice": "0.001"}
    assert item.new_input_rate == Decimal("2.5E-8") and str(item.new_input_rate) == "2.50E-8"
    assert item.new_output_rate == Decimal("0.0000102")
    assert item.old_input_rate == Decimal("1E-8")


def test_mock_margin_update_without_confirm_sends_nothing() -> None:
    client, seen = _mock(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValidationError, match="immediately"):
        client.apply_margin_to_all_rates(2, 1, confirm="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="creditPrice"):
        client.apply_margin_to_all_rates(2, 0, confirm=True)
    assert seen == []


def test_mock_retry_after_http_date_header_is_honoured() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    answers = iter(
        [
            httpx.Response(
                429,
                json={"error": "slow down"},
                headers={"Retry-After": "Wed, 01 Jan 2025 12:00:07 GMT"},
            ),
            httpx.Response(200, json=[]),
        ]
    )
    sleeps = Sleeps()
    client, seen = _mock(lambda r: next(answers), sleeps, clock=lambda: now)
    assert client.list_providers() == []
    assert sleeps == [7.0] and len(seen) == 2


def test_mock_rate_limit_error_says_when_to_retry() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    client, seen = _mock(
        lambda r: httpx.Response(429, json={"error": "Rate limit exceeded", "retryAfter": 120}),
        clock=lambda: now,
        max_wait=60,
    )
    with pytest.raises(HubRateLimitedError) as err:
        client.health()
    assert "retry in 120 s (after 2025-01-01 12:02:00 UTC)" in str(err.value)
    assert err.value.hub_message == "Rate limit exceeded" and len(seen) == 1


def test_mock_connect_errors_retry_a_post_but_read_errors_do_not() -> None:
    calls = iter(
        [httpx.ConnectError("refused"), httpx.Response(200, json={"id": "p1", "name": "openai"})]
    )

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client, seen = _mock(flaky)
    assert client.create_provider("openai", "OpenAI", base_url="https://o.io").id == "p1"
    assert len(seen) == 2

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer")

    client, seen = _mock(reset)
    with pytest.raises(HubError, match="may have applied"):
        client.create_provider("openai", "OpenAI", base_url="https://o.io")
    assert len(seen) == 1


# How a lost answer reaches the client (FIN → RemoteProtocolError, RST → ReadError) is up
# to the network; the client must treat every such way the same: "may have applied".
LOST_ANSWERS = [
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ReadError("[Errno 104] Connection reset by peer"),
    httpx.WriteError("[Errno 32] Broken pipe"),
]


@pytest.mark.parametrize("lost", LOST_ANSWERS, ids=lambda e: type(e).__name__)
def test_mock_every_lost_answer_is_ambiguous_alike(lost: httpx.TransportError) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise lost

    client, seen = _mock(drop)
    with pytest.raises(HubError, match="may have applied it: re-read its state") as err:
        client.create_provider("openai", "OpenAI", base_url="https://o.io")
    assert len(seen) == 1 and "lost before an answer" in str(err.value)  # never retried

    answers = iter([lost, httpx.Response(404, json={"error": "Provider not found"})])

    def then_gone(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client, seen = _mock(then_gone)
    # the retry's 404 is our own first DELETE having landed
    assert client.delete_provider("p1") == "already deleted" and len(seen) == 2


def test_mock_redirects_are_not_followed() -> None:
    client, seen = _mock(
        lambda r: httpx.Response(301, headers={"Location": "https://evil.test/?token=abc123456"})
    )
    with pytest.raises(HubStatusError, match="redirected to https://evil.test/") as err:
        client.list_providers()
    assert err.value.status == 301 and "abc123456" not in str(err.value) and len(seen) == 1


def test_mock_unexpected_answers_become_hub_errors() -> None:
    client, _ = _mock(lambda r: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(HubError, match="not JSON") as not_json:
        client.list_providers()
    assert not_json.value.status == 200
    client, _ = _mock(lambda r: httpx.Response(200, json=[{"name": "openai"}]))
    with pytest.raises(HubError, match="unexpected answer.*id"):
        client.list_providers()
    client, _ = _mock(lambda r: httpx.Response(401, json={"error": "Unauthorized"}))
    with pytest.raises(HubStatusError, match="HUBKIT_HUB_TOKEN") as unauthorised:
        client.health()
    assert unauthorised.value.status == 401


def test_mock_secrets_echoed_by_the_hub_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def echo(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        token = request.headers["authorization"]
        return httpx.Response(
            500,
            json={"error": f"provider refused key {sent['value']} (auth: {token})", "detail": KEY},
        )

    client, _ = _mock(echo)
    with pytest.raises(HubStatusError) as err:
        client.create_credential("p1", "main", KEY)
    texts = [str(err.value), repr(err.value), str(err.value.hub_message)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert KEY not in text and "tok-mock-0123456789" not in text
    assert "***" in str(err.value)


# Credential values with no secret-looking shape (no "sk-", no secret-named field), one
# spelt differently by repr/JSON (quotes, a backslash): only knowing the value masks them.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKCHECK"
CUSTOM_VALUE = "plain'quoted\"back\\slash-LEAKCHECK-42"


def _leak_texts(exc: BaseException) -> list[str]:
    """Everything of an exception a log, a traceback or an error tracker might show."""
    texts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    chained = exc.__cause__ or exc.__context__
    return texts + (_leak_texts(chained) if chained is not None else [])


@pytest.mark.parametrize(
    ("credential_type", "value"),
    [
        (
            "access_key_pair",
            {"access_key_id": "AKIDLEAKCHECK0042", "secret_access_key": AWS_SECRET},
        ),
        ("custom", {"tenant": "acme-tenant-7", "client_blob": CUSTOM_VALUE}),
        ("api_key", CUSTOM_VALUE),
    ],
)
def test_mock_malformed_answer_echoing_the_credential_masks_its_values(
    caplog: pytest.LogCaptureFixture, credential_type: str, value: Any
) -> None:
    caplog.set_level(logging.DEBUG)

    def echo(request: httpx.Request) -> httpx.Response:
        # A broken hub: the credential comes back with the sent value where "weight" belongs.
        sent = json.loads(request.content)
        answer = {"id": "c1", "providerId": "p1", "name": "main", "weight": sent["value"]}
        return httpx.Response(200, json=answer)

    secrets = list(value.values()) if isinstance(value, dict) else [value]
    client, _ = _mock(echo)
    texts: list[str] = []
    for call in (
        lambda: client.create_credential("p1", "main", value, credential_type=credential_type),
        lambda: client.update_credential(
            "p1", "c1", "main", value, credential_type=credential_type
        ),
        lambda: client.test_credential("p1", value, credential_type=credential_type),
    ):
        with pytest.raises(HubError, match="unexpected answer.*weight") as err:
            call()
        texts += _leak_texts(err.value)
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        for secret in [*secrets, "tok-mock-0123456789"]:
            assert secret not in text
            assert repr(secret)[1:-1] not in text and json.dumps(secret)[1:-1] not in text
    assert any("***" in t for t in texts)


def _raise(error: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("injected", request=request)

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        _raise(httpx.ReadTimeout),
        _raise(httpx.ConnectError),
        _raise(httpx.RemoteProtocolError),
        lambda r: httpx.Response(200, content=b"<html>echo " + r.content),  # not JSON
    ],
    ids=["timeout", "connect", "dropped", "not-json"],
)
def test_mock_transport_failures_keep_no_unredacted_exception_as_context(
    handler: Handler,
) -> None:
    # The httpx exception's request holds the bearer header and the body with the key, and
    # a JSONDecodeError holds the whole (echoing) body: neither may ride along as context.
    client, _ = _mock(handler, retries=0)
    with pytest.raises(HubError) as err:
        client.create_credential("p1", "main", CUSTOM_VALUE)
    assert err.value.__context__ is None and err.value.__cause__ is None
    for text in _leak_texts(err.value):
        assert CUSTOM_VALUE not in text and "tok-mock-0123456789" not in text


def test_mock_hub_echoing_a_base_url_with_a_password_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "hunter2-LEAKCHECK-pw"

    def refuse(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        return httpx.Response(400, json={"error": f"Invalid baseUrl {sent['baseUrl']}"})

    client, _ = _mock(refuse)
    with pytest.raises(HubStatusError) as err:
        client.create_provider("openai", "OpenAI", base_url=f"https://a:{password}@x.example/v1")
    texts = _leak_texts(err.value) + [str(err.value.hub_message)]
    texts += [r.getMessage() for r in caplog.records]
    assert all(password not in t for t in texts)
    assert "https://***@x.example/v1" in str(err.value)


def test_mock_credential_value_is_dropped_on_receipt() -> None:
    answer = {
        "id": "c1",
        "providerId": "p1",
        "name": "main",
        "credentialType": "api_key",
        "credentialValue": {"api_key": KEY},  # even if a hub sent it in clear
        "displayText": "sk-p****************1234",
        "maskedValue": {"api_key": "sk-p****************1234"},
    }
    client, _ = _mock(lambda r: httpx.Response(200, json=answer))
    cred = client.create_credential("p1", "main", KEY)
    assert KEY not in repr(cred) and cred.display_text.endswith("1234")


def test_redact_helpers() -> None:
    assert (
        redact("Bearer abcdefghijkl and sk-ant-api03-XXXXXXXXXXXX", ["zz"])
        == "Bearer *** and sk-a***XXXX"
    )
    assert redact('{"api_key": "plain", "name": "x"}') == '{"api_key": "***", "name": "x"}'
    assert redact("token mysecret123 leaked", ["mysecret123"]) == "token *** leaked"
    assert redact_url("https://h/x?token=abc&page=1") == "https://h/x?token=***&page=1"
    assert redact_mapping({"value": {"api_key": "k"}, "nested": [{"secret_access_key": "s"}]}) == {
        "value": "***",
        "nested": [{"secret_access_key": "***"}],
    }


def test_redact_keeps_prose_after_a_secret_name_but_masks_real_values() -> None:
    hint = "check HUBKIT_HUB_TOKEN: it must be an admin access key of that hub"
    assert redact(hint) == hint
    assert redact("Authorization: it is missing") == "Authorization: it is missing"
    # real values: any digit/symbol, a quoted value, name=value, or a long word
    assert redact("token: abc123secret") == "token: ***"
    assert redact("token: abc") == "token: abc"  # a short plain word reads as prose
    assert redact("token: ab1 x") == "token: *** x"
    assert redact("token: hunter") == "token: ***"
    assert redact('token: "it"') == 'token: "***"'
    assert redact("HUBKIT_HUB_TOKEN=it") == "HUBKIT_HUB_TOKEN=***"
    assert redact("token:it") == "token:***"
    # an Authorization header's credential, however short
    assert redact("Authorization: Bearer x") == "Authorization: Bearer ***"
    assert redact("authorization: Basic dXNlcjpwYXNz") == "authorization: Basic ***"
    assert redact('{"Authorization": "Bearer x"}') == '{"Authorization": "Bearer ***"}'
    assert redact("Authorization: abc123") == "Authorization: ***"
    both = f"{hint}; sent Authorization: Bearer x and token: abc123secret"
    assert redact(both) == f"{hint}; sent Authorization: Bearer *** and token: ***"


def test_mock_401_hint_survives_redaction_and_the_token_does_not_leak() -> None:
    client, _ = _mock(
        lambda r: httpx.Response(
            401, json={"error": f"bad token: {r.headers['authorization'].split()[1]}"}
        )
    )
    with pytest.raises(HubStatusError) as err:
        client.health()
    text = str(err.value)
    assert "check HUBKIT_HUB_TOKEN: it must be an admin access key of that hub" in text
    assert "tok-mock-0123456789" not in text and "bad token: ***" in text


def test_mock_check_credential_reports_the_hubs_reason_and_other_400s_raise() -> None:
    answers = iter(
        [
            httpx.Response(400, json={"error": "Invalid credentials", "detail": f"bad key {KEY}"}),
            httpx.Response(400, json={"error": "Credential value is required"}),
        ]
    )
    client, seen = _mock(lambda r: next(answers))
    check = client.check_credential("p1", "c1", test_model="gpt-4o-mini")
    assert not check.ok and check.credential is None
    assert (
        check.detail is not None and check.detail.startswith("bad key") and KEY not in check.detail
    )
    assert seen[0].url.params["testModel"] == "gpt-4o-mini"
    with pytest.raises(HubStatusError, match="Credential value is required"):
        client.test_credential("p1", KEY)


@pytest.mark.hub_needs("disposable", "applies a sync, and expects the only rate of its provider")
def test_sync_apply_writes_and_reports_what_it_did(hub: HubHandle, client: HubClient) -> None:
    provider = hub.provider("deepseek")
    update = SyncUpdate(
        "deepseek",
        "deepseek-r9",
        UnitCosts.parse({"input": "0.00000055", "output": "0.00000219"}),
        is_new=True,
        model_type=RateType.CHAT_COMPLETION,
    )
    result = client.sync_rates(
        [update], dry_run=False, apply_rates=True, profit_margin=0, credit_price=1
    )
    assert not result.dry_run and result.summary.created == 1
    (created,) = result.created
    assert created.new_rates is not None and created.new_rates.input_rate == Decimal("0.00000055")
    (rate,) = client.list_rates(provider.id)
    assert (rate.id, rate.model, rate.input_rate) == (
        created.id,
        "deepseek-r9",
        Decimal("0.00000055"),
    )
    again = client.sync_rates([update], dry_run=False)
    assert again.summary.unchanged == 1 and again.summary.created == 0


def test_redact_doctests() -> None:
    import doctest
    import importlib

    module = importlib.import_module("hubkit.hub.redact")
    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0
