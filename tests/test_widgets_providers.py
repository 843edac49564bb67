"""Providers & credentials app, headless: set values, click, check state, store and secrets."""

from __future__ import annotations

import json

import httpx
import pytest
from _widget_helpers import (
    assert_secret_absent,
    close_all_widgets,
    live_widget_count,
    seed_sample,
    seeded_store,
)

from hubkit.store import Store
from hubkit.widgets import ProvidersApp, ProvidersState

pytestmark = pytest.mark.store(seed=seed_sample, close_widgets=True)

SECRET = "sk-proj-abcdefghijklmnop1234"
SECRET_2 = "sk-proj-ZYXWVUTSRQPONMLKJ9876"
HUB_TOKEN = "hub-admin-token-0123456789"


def _add(app: ProvidersApp, provider: str, name: str, secret: str, **extra: object) -> None:
    app._pick.value = provider
    app._cred_name.value = name
    for attr, value in extra.items():
        getattr(app, attr).value = value
    app._secret.value = secret
    app._add_cred.click()


def _pick_credential(app: ProvidersApp, provider: str, name: str) -> None:
    app._cred_pick.value = f"{provider}\x00{name}"


def test_lists_providers_with_counts(store: Store) -> None:
    app = ProvidersApp(store)
    html = app._providers_html.value
    for header in ("enabled", "base URL", "region", "credentials"):
        assert f"<th>{header}</th>" in html
    assert "https://api.openai.com/v1" in html and "us-east-1" in html
    assert app.state.providers_table().set_index("name").loc["openai", "credentials"] == 0
    assert app._test.layout.display == "none"  # no HUBKIT_HUB_URL: no hub button


def test_add_credential_encrypts_masks_and_clears_the_password(store: Store) -> None:
    app = ProvidersApp(store)
    _add(app, "openai", "main", SECRET)

    assert app._secret.value == ""
    assert store.reveal_credential("openai", "main") == {"api_key": SECRET}
    assert "sk-p****************1234" in app._credentials_html.value
    assert app.state.message is not None and not app.state.message.is_error
    assert app.state.providers_table().set_index("name").loc["openai", "credentials"] == 1
    assert_secret_absent(SECRET, root=app, state=app.state)


def test_a_failed_add_clears_the_password_too_and_never_echoes_it(store: Store) -> None:
    app = ProvidersApp(store)
    _add(app, "openai", "main", SECRET)
    _add(app, "openai", "main", SECRET_2)  # same name: a conflict

    assert app.state.message is not None and app.state.message.is_error
    assert "already has a credential" in app.state.message.text
    assert app._secret.value == ""
    assert store.reveal_credential("openai", "main") == {"api_key": SECRET}
    assert_secret_absent(SECRET_2, root=app, state=app.state)


def test_empty_secret_is_refused_and_nothing_is_stored(store: Store) -> None:
    app = ProvidersApp(store)
    _add(app, "openai", "main", "   ")
    assert app.state.message is not None and "cannot be empty" in app.state.message.text
    assert store.list_credentials("openai") == []


def test_access_key_pair_shows_the_id_and_masks_the_secret(store: Store) -> None:
    app = ProvidersApp(store)
    app._cred_type.value = "access_key_pair"
    assert app._access_key_id.layout.display == ""
    _add(app, "bedrock", "aws", SECRET, _access_key_id="AKIAEXAMPLE")
    assert store.reveal_credential("bedrock", "aws") == {
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": SECRET,
    }
    assert "AKIAEXAMPLE / sk-p****************1234" in app._credentials_html.value
    assert_secret_absent(SECRET, root=app, state=app.state)


def test_rotate_replaces_the_secret(store: Store) -> None:
    app = ProvidersApp(store)
    _add(app, "openai", "main", SECRET)
    _pick_credential(app, "openai", "main")
    app._secret.value = SECRET_2
    app._rotate.click()

    assert app._secret.value == ""
    assert store.reveal_credential("openai", "main") == {"api_key": SECRET_2}
    assert store.list_credentials("openai")[0].rotated_at is not None
    assert "sk-p****************9876" in app._credentials_html.value
    for secret in (SECRET, SECRET_2):
        assert_secret_absent(secret, root=app, state=app.state)


def test_disable_enable_and_delete_with_confirmation(store: Store) -> None:
    app = ProvidersApp(store)
    _add(app, "openai", "main", SECRET)
    _pick_credential(app, "openai", "main")
    assert app._toggle.description == "Disable"
    app._toggle.click()
    assert store.list_credentials("openai")[0].active is False
    assert app._toggle.description == "Enable"
    app._toggle.click()
    assert store.list_credentials("openai")[0].active is True

    app._delete_cred.click()  # not confirmed
    assert len(store.list_credentials("openai")) == 1
    assert app.state.message is not None and "really delete" in app.state.message.text
    app._confirm_delete.value = True
    app._delete_cred.click()
    assert store.list_credentials("openai") == []
    assert app._confirm_delete.value is False


def test_add_and_edit_a_provider(store: Store) -> None:
    app = ProvidersApp(store)
    app._pick.value = ""
    app._name.value = "ollama"
    app._display.value = "Local Ollama"
    app._base_url.value = "http://127.0.0.1:11434"
    app._save.click()
    assert store.get_provider("ollama").display_name == "Local Ollama"
    assert app._pick.value == "ollama" and app._name.disabled

    app._display.value = "Ollama (lab box)"
    app._enabled.value = False
    app._save.click()
    got = store.get_provider("ollama")
    assert (got.display_name, got.enabled) == ("Ollama (lab box)", False)


@pytest.mark.parametrize(
    ("name", "base_url", "region", "expected"),
    [
        ("ollama", "not a url", "", "baseUrl must be an http(s) URL"),
        ("notaprovider", "https://x.example", "", "unknown provider"),
    ],
)
def test_invalid_provider_is_reported_and_not_written(
    store: Store, name: str, base_url: str, region: str, expected: str
) -> None:
    app = ProvidersApp(store)
    before = store.list_providers()
    app._pick.value = ""
    app._name.value, app._base_url.value, app._region.value = name, base_url, region
    app._save.click()
    assert app.state.message is not None and expected in app.state.message.text
    assert store.list_providers() == before
    # on screen, the message names the field as its label does
    assert "baseUrl" not in app._message.value
    if "baseUrl" in expected:
        assert expected.replace("baseUrl", "base URL") in app._message.value


def test_a_password_in_the_base_url_is_refused_and_never_shown(store: Store) -> None:
    password = "hunter2-LEAKCHECK-pw"
    app = ProvidersApp(store)
    before = store.list_providers()
    app._pick.value = ""
    app._name.value = "ollama"
    app._base_url.value = f"http://admin:{password}@127.0.0.1:11434"
    app._save.click()
    assert app.state.message is not None
    assert "store the key as a credential" in app.state.message.text
    assert password not in app.state.message.text
    assert store.list_providers() == before
    # the field itself still holds what the operator typed until they correct it
    app._base_url.value = "http://127.0.0.1:11434"
    app._save.click()
    assert_secret_absent(password, root=app, state=app.state)


def test_bedrock_edit_without_region_is_refused(store: Store) -> None:
    app = ProvidersApp(store)
    app._pick.value = "bedrock"
    app._region.value = ""
    app._save.click()
    assert app.state.message is not None and "region is required" in app.state.message.text
    assert store.get_provider("bedrock").region == "us-east-1"


def test_delete_provider_refused_while_it_has_rates(store: Store) -> None:
    app = ProvidersApp(store)
    app._pick.value = "openai"
    app._delete_provider.click()
    assert app.state.message is not None and "still has" in app.state.message.text
    assert store.get_provider("openai")


def test_state_class_makes_no_widgets(store: Store) -> None:
    before = live_widget_count()
    state = ProvidersState(store)
    state.select("openai")
    assert state.add_credential("openai", "main", SECRET)
    assert state.rotate_credential("openai", "main", SECRET_2)
    assert state.set_credential_active("openai", "main", False)
    assert live_widget_count() == before
    assert SECRET_2 not in repr(vars(state))


# ---- test against the hub ---------------------------------------------------------------


def _hub_handler(seen: list[dict[str, object]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {HUB_TOKEN}"
        if request.method == "GET" and request.url.path == "/api/ai-providers":
            return httpx.Response(200, json=[{"id": "prov-1", "name": "openai", "enabled": True}])
        if request.url.path == "/api/ai-providers/prov-1/credentials/test":
            body = json.loads(request.content)
            seen.append(body)
            if body["value"] == SECRET:
                return httpx.Response(200, json={"success": True})
            return httpx.Response(
                400, json={"error": "Invalid credentials", "detail": f"bad key {body['value']}"}
            )
        return httpx.Response(404, json={"message": "not found"})

    return httpx.MockTransport(handle)


def test_button_shows_when_a_hub_is_configured(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hubkit.hub.client")
    monkeypatch.setenv("HUBKIT_HUB_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", HUB_TOKEN)
    store = seeded_store(sqlite_url)
    try:
        app = ProvidersApp(store)
        assert app.state.hub_available and app._test.layout.display == ""
    finally:
        close_all_widgets()
        store.close()


def test_credential_checked_against_the_hub(store: Store) -> None:
    client = pytest.importorskip("hubkit.hub.client")
    seen: list[dict[str, object]] = []

    def factory() -> object:
        return client.HubClient(
            "http://127.0.0.1:9", HUB_TOKEN, transport=_hub_handler(seen), retries=0
        )

    app = ProvidersApp(store, state=ProvidersState(store, hub_factory=factory))
    assert app._test.layout.display == ""
    _add(app, "openai", "good", SECRET)
    _add(app, "openai", "bad", SECRET_2)

    _pick_credential(app, "openai", "good")
    app._test.click()
    assert app.state.message is not None and "hub accepted" in app.state.message.text

    _pick_credential(app, "openai", "bad")
    app._test.click()
    assert app.state.message is not None and "hub rejected" in app.state.message.text
    assert [b["value"] for b in seen] == [SECRET, SECRET_2]
    for secret in (SECRET, SECRET_2, HUB_TOKEN):
        assert_secret_absent(secret, root=app, state=app.state)
