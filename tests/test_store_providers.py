"""Store: providers and credentials on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from _stores import API_KEY, AWS_ID, AWS_SECRET, CUSTOM_TOKEN, add_provider, chat_spec, table_rows

from hubkit.cli import main
from hubkit.domain import ProviderSpec
from hubkit.errors import ConflictError, NotFoundError, ValidationError
from hubkit.frames import providers_frame
from hubkit.store import Store

pytestmark = pytest.mark.store("sqlite", "postgres")


# --- providers -------------------------------------------------------------------------------


def test_add_get_list_providers(store: Store) -> None:
    openai = store.add_provider(
        ProviderSpec.create(
            "openai", "OpenAI", base_url="https://api.openai.com/v1", config={"org": "o-1"}
        )
    )
    assert (openai.name, openai.display_name, openai.enabled, openai.custom) == (
        "openai",
        "OpenAI",
        True,
        False,
    )
    assert openai.config == {"org": "o-1"}
    store.add_provider(ProviderSpec.create("bedrock", "Bedrock", region="eu-west-1"))
    store.add_provider(
        ProviderSpec.create("acme-llm", "Acme", base_url="http://127.0.0.1:9", custom=True)
    )
    assert [p.name for p in store.list_providers()] == ["openai", "bedrock", "acme-llm"]
    bedrock = store.get_provider("BEDROCK")
    assert (bedrock.region, bedrock.base_url) == ("eu-west-1", None)
    assert store.get_provider("acme-llm").custom is True


def test_duplicate_provider_is_a_conflict(store: Store) -> None:
    add_provider(store, "openai")
    with pytest.raises(ConflictError, match="already exists"):
        add_provider(store, "openai")
    assert len(store.list_providers()) == 1


def test_provider_validation_reaches_the_store(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.add_provider(ProviderSpec.create("mistral", base_url="https://api.mistral.ai"))
    assert info.value.field == "provider"
    with pytest.raises(ValidationError) as info:
        store.add_provider(ProviderSpec.create("bedrock"))
    assert info.value.field == "region"
    with pytest.raises(ValidationError) as info:
        store.add_provider(ProviderSpec.create("anthropic"))
    assert info.value.field == "baseUrl"
    assert store.list_providers() == []


def test_update_provider_revalidates_the_whole_provider(store: Store) -> None:
    add_provider(store, "openai")
    add_provider(store, "bedrock")
    updated = store.update_provider("openai", display_name="OpenAI EU", enabled=False)
    assert (updated.display_name, updated.enabled) == ("OpenAI EU", False)
    assert store.get_provider("openai").display_name == "OpenAI EU"
    with pytest.raises(ValidationError) as info:
        store.update_provider("openai", base_url=None)
    assert info.value.field == "baseUrl"
    with pytest.raises(ValidationError) as info:
        store.update_provider("bedrock", region="")
    assert info.value.field == "region"
    with pytest.raises(ValidationError, match="custom"):
        store.update_provider("openai", custom=True)
    with pytest.raises(NotFoundError, match="providers add"):
        store.update_provider("xai", enabled=False)
    # nothing of the refused updates was written
    assert store.get_provider("openai").base_url == "https://api.openai.com/v1"
    assert store.get_provider("bedrock").region == "us-east-1"


URL_PASSWORD = "hunter2-LEAKCHECK-pw"
URL_WITH_PASSWORD = f"https://admin:{URL_PASSWORD}@api.openai.com/v1"


def test_provider_with_a_password_in_its_url_is_refused_unechoed(store: Store) -> None:
    with pytest.raises(ValidationError) as created:
        store.add_provider(ProviderSpec.create("openai", base_url=URL_WITH_PASSWORD))
    add_provider(store, "openai")
    with pytest.raises(ValidationError) as updated:
        store.update_provider("openai", base_url=URL_WITH_PASSWORD)
    for err in (created.value, updated.value):
        assert err.field == "baseUrl"
        assert URL_PASSWORD not in f"{err} {err!r} {vars(err)!r}"
    assert store.get_provider("openai").base_url == "https://api.openai.com/v1"


def test_cli_refuses_a_password_in_the_base_url_unechoed(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--database-url", db_url, "providers", "add", "openai", "--base-url"]
    assert main([*argv, URL_WITH_PASSWORD]) == 2
    captured = capsys.readouterr()
    assert "store the key as a credential" in captured.err
    assert URL_PASSWORD not in captured.out + captured.err


def test_a_url_stored_with_a_password_before_is_listed_masked(db_url: str) -> None:
    # Rows from before such URLs were refused: shown masked wherever hubkit lists them.
    with Store.open(db_url) as store:
        add_provider(store, "openai")
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE providers SET base_url = :u"), {"u": URL_WITH_PASSWORD})
    finally:
        engine.dispose()
    with Store.open(db_url) as store:
        frame = providers_frame(store.list_providers())
    assert list(frame["base_url"]) == ["https://***@api.openai.com/v1"]


def test_delete_provider_refused_while_it_has_rates(store: Store) -> None:
    add_provider(store, "openai")
    store.add_credential("openai", "main", API_KEY)
    rate = store.create_rate(chat_spec())
    with pytest.raises(ConflictError, match="1 model rates"):
        store.delete_provider("openai")
    assert store.get_provider("openai").rate_count == 1
    assert store.get_provider("openai").credential_count == 1
    store.delete_rate(rate.id)
    store.delete_provider("openai")
    assert store.list_providers() == []
    assert store.list_credentials() == []


def test_provider_counts(store: Store) -> None:
    add_provider(store, "openai")
    add_provider(store, "anthropic")
    store.add_credential("openai", "a", API_KEY)
    store.add_credential("openai", "b", API_KEY + "b")
    store.create_rate(chat_spec())
    counts = {p.name: (p.credential_count, p.rate_count) for p in store.list_providers()}
    assert counts == {"openai": (2, 1), "anthropic": (0, 0)}


# --- credentials -----------------------------------------------------------------------------


def _all_text(row: dict[str, object]) -> str:
    return json.dumps(row, default=str)


def test_credentials_are_encrypted_at_rest(store: Store, db_url: str) -> None:
    add_provider(store, "openai")
    add_provider(store, "bedrock")
    add_provider(store, "acme", custom=True)
    store.add_credential("openai", "main", API_KEY)
    store.add_credential(
        "bedrock",
        "aws",
        {"access_key_id": AWS_ID, "secret_access_key": AWS_SECRET},
        credential_type="access_key_pair",
    )
    store.add_credential("acme", "tok", {"token": CUSTOM_TOKEN}, credential_type="custom")
    rows = table_rows(db_url, "credentials")
    assert len(rows) == 3
    for row in rows:
        text = _all_text(row)
        for secret in (API_KEY, AWS_SECRET, CUSTOM_TOKEN):
            assert secret not in text
        # nor a recognisable part of it
        assert "LEAKCHECK" not in text
        assert str(row["encrypted_value"]).startswith("gAAAA")  # a Fernet token
    # the access key id identifies and is kept readable (domain.md: not encrypted)
    pair = next(r for r in rows if r["credential_type"] == "access_key_pair")
    public = pair["public_fields"]
    if isinstance(public, str):
        public = json.loads(public)
    assert public == {"access_key_id": AWS_ID}


def test_masked_display_per_domain_md(store: Store) -> None:
    add_provider(store, "openai")
    add_provider(store, "bedrock")
    add_provider(store, "acme", custom=True)
    api = store.add_credential("openai", "main", API_KEY)
    assert api.display_text == "sk-p****************1234"
    pair = store.add_credential(
        "bedrock",
        "aws",
        {"access_key_id": AWS_ID, "secret_access_key": AWS_SECRET},
        credential_type="access_key_pair",
    )
    assert pair.display_text == f"{AWS_ID} / wJal{'*' * 16}HECK"
    custom = store.add_credential(
        "acme", "tok", {"token": CUSTOM_TOKEN, "org": "org-1"}, credential_type="custom"
    )
    assert custom.display_text == f"org: ***, token: cust{'*' * 16}6789"
    short = store.add_credential("openai", "short", "sk-123")
    assert short.display_text == "***"
    listed = {c.name: c.display_text for c in store.list_credentials()}
    assert listed == {
        "aws": pair.display_text,
        "tok": custom.display_text,
        "main": api.display_text,
        "short": "***",
    }


def test_reveal_returns_the_plaintext(store: Store) -> None:
    add_provider(store, "openai")
    add_provider(store, "bedrock")
    store.add_credential("openai", "main", f"  {API_KEY}  ")
    store.add_credential(
        "bedrock",
        "aws",
        {"access_key_id": AWS_ID, "secret_access_key": AWS_SECRET},
        credential_type="access_key_pair",
    )
    assert store.reveal_credential("OpenAI", "main") == {"api_key": API_KEY}
    assert store.reveal_credential("bedrock", "aws") == {
        "access_key_id": AWS_ID,
        "secret_access_key": AWS_SECRET,
    }
    with pytest.raises(NotFoundError, match="credentials list"):
        store.reveal_credential("openai", "nope")


def test_credential_defaults_and_metadata(store: Store) -> None:
    add_provider(store, "openai")
    info = store.add_credential("openai", "main", API_KEY)
    assert (info.provider, info.name, info.credential_type) == ("openai", "main", "api_key")
    assert (info.weight, info.active, info.usage_count) == (100, True, 0)
    assert info.created_at.tzinfo is not None
    assert info.rotated_at is None and info.last_used_at is None
    changed = store.update_credential("openai", "main", active=False, weight=5)
    assert (changed.active, changed.weight) == (False, 5)
    assert [(c.active, c.weight) for c in store.list_credentials("openai")] == [(False, 5)]


def test_credential_validation(store: Store) -> None:
    add_provider(store, "openai")
    with pytest.raises(ValidationError, match="Credential cannot be empty"):
        store.add_credential("openai", "main", "   ")
    with pytest.raises(ValidationError) as info:
        store.add_credential("openai", "", API_KEY)
    assert info.value.field == "name"
    with pytest.raises(ValidationError) as info:
        store.add_credential("openai", "w", API_KEY, weight=-1)
    assert info.value.field == "weight"
    with pytest.raises(ValidationError) as info:
        store.add_credential("openai", "t", API_KEY, credential_type="password")
    assert info.value.field == "credentialType"
    with pytest.raises(NotFoundError, match="provider 'xai' not found"):
        store.add_credential("xai", "main", API_KEY)
    store.add_credential("openai", "main", API_KEY)
    with pytest.raises(ConflictError, match="already has a credential named 'main'"):
        store.add_credential("openai", "main", API_KEY + "2")
    with pytest.raises(ValidationError) as info:
        store.update_credential("openai", "main", weight=True)  # type: ignore[arg-type]
    assert info.value.field == "weight"
    assert [c.name for c in store.list_credentials()] == ["main"]
    assert store.reveal_credential("openai", "main") == {"api_key": API_KEY}


def test_rotate_credential_replaces_the_secret(store: Store, db_url: str) -> None:
    add_provider(store, "openai")
    store.add_credential("openai", "main", API_KEY)
    before = table_rows(db_url, "credentials")[0]["encrypted_value"]
    new_key = "sk-proj-NEWNEWNEWabcdefghijklmnop9999"
    rotated = store.rotate_credential("openai", "main", new_key)
    assert rotated.rotated_at is not None
    assert rotated.display_text == "sk-p****************9999"
    assert store.reveal_credential("openai", "main") == {"api_key": new_key}
    after = table_rows(db_url, "credentials")[0]["encrypted_value"]
    assert after != before and new_key not in str(after)


def test_delete_credential(store: Store) -> None:
    add_provider(store, "openai")
    store.add_credential("openai", "a", API_KEY)
    store.add_credential("openai", "b", API_KEY)
    store.delete_credential("openai", "a")
    assert [c.name for c in store.list_credentials()] == ["b"]
    with pytest.raises(NotFoundError):
        store.delete_credential("openai", "a")


def test_mark_credentials_pushed(store: Store) -> None:
    add_provider(store, "openai")
    info = store.add_credential("openai", "a", API_KEY)
    store.mark_credentials_pushed([info.id])
    (after,) = store.list_credentials()
    assert after.last_pushed_at is not None and after.last_pushed_at >= info.created_at
