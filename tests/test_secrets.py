"""Keys and secrets: rotation, env-key mode, missing/wrong keys, and no plaintext anywhere."""

from __future__ import annotations

import io
import logging
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _stores import API_KEY, AWS_ID, AWS_SECRET, CUSTOM_TOKEN, add_provider, table_rows

from hubkit.crypto import generate_key, write_key_file
from hubkit.errors import (
    ConflictError,
    CredentialError,
    HubkitError,
    NotFoundError,
    ValidationError,
)
from hubkit.frames import credentials_frame, providers_frame, to_csv
from hubkit.store import Store

pytestmark = pytest.mark.store("sqlite", "postgres")

SECRETS = (API_KEY, AWS_SECRET, CUSTOM_TOKEN)


def _fill(store: Store) -> None:
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


def _revealed(store: Store) -> dict[str, dict[str, str]]:
    return {c.name: store.reveal_credential(c.provider, c.name) for c in store.list_credentials()}


EXPECTED = {
    "main": {"api_key": API_KEY},
    "aws": {"access_key_id": AWS_ID, "secret_access_key": AWS_SECRET},
    "tok": {"token": CUSTOM_TOKEN},
}


def _ciphertexts(url: str) -> dict[str, str]:
    return {r["name"]: r["encrypted_value"] for r in table_rows(url, "credentials")}


# --- key file mode ---------------------------------------------------------------------------


def test_first_credential_creates_a_0600_key_file(store: Store) -> None:
    key_file = store.settings.key_file
    assert not key_file.exists()
    add_provider(store, "openai")
    assert not key_file.exists()  # no credential, no key
    store.add_credential("openai", "main", API_KEY)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len([ln for ln in key_file.read_text().splitlines() if not ln.startswith("#")]) == 1


def test_rotation_reencrypts_every_credential(store: Store, db_url: str) -> None:
    _fill(store)
    key_file = store.settings.key_file
    old_keys = key_file.read_text()
    before = _ciphertexts(db_url)
    assert store.rotate_keys() == 3
    after = _ciphertexts(db_url)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before)
    assert _revealed(store) == EXPECTED
    keys = [ln for ln in key_file.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(keys) == 2 and keys[1] in old_keys  # newest first, the old one kept
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    store.drop_old_keys()
    keys_now = [ln for ln in key_file.read_text().splitlines() if ln and not ln.startswith("#")]
    assert keys_now == keys[:1]
    assert _revealed(store) == EXPECTED


@pytest.mark.soak
def test_concurrent_rotations_leave_every_credential_readable(store: Store, db_url: str) -> None:
    # Two operators rotating at once: the second must build on the first's new key, or the
    # key file ends up without the key the rows were sealed with.
    import threading

    _fill(store)
    errors: list[BaseException] = []
    for _ in range(3):
        barrier = threading.Barrier(2)

        def rotate(barrier: threading.Barrier = barrier) -> None:
            with Store.open(db_url, settings=store.settings) as other:
                barrier.wait()
                try:
                    other.rotate_keys()
                except BaseException as exc:  # collected: asserted below
                    errors.append(exc)

        threads = [threading.Thread(target=rotate) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert _revealed(store) == EXPECTED


def test_drop_refused_while_an_old_key_is_needed(store: Store, db_url: str) -> None:
    _fill(store)
    key_file = store.settings.key_file
    (old,) = [ln for ln in key_file.read_text().splitlines() if not ln.startswith("#")]
    # a new key added by hand (newest first): the credentials still need the old one
    write_key_file(key_file, [generate_key(), old])
    assert _revealed(store) == EXPECTED  # old keys stay readable before the drop
    with pytest.raises(CredentialError, match="3 credentials still need an old key") as info:
        store.drop_old_keys()
    assert "keys rotate" in str(info.value)
    assert old in key_file.read_text()
    store.rotate_keys()
    store.drop_old_keys()
    assert old not in key_file.read_text()
    assert _revealed(store) == EXPECTED


# --- env-key mode ----------------------------------------------------------------------------


def test_env_key_mode_rotation(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("HUBKIT_SECRET_KEY", old)
    with Store.open(db_url) as store:
        _fill(store)
        key_file = store.settings.key_file
    assert not key_file.exists()  # env mode never writes a key file
    before = _ciphertexts(db_url)
    monkeypatch.setenv("HUBKIT_SECRET_KEY", new)
    monkeypatch.setenv("HUBKIT_OLD_SECRET_KEYS", old)
    with Store.open(db_url) as store:
        assert _revealed(store) == EXPECTED  # the old key still reads
        with pytest.raises(CredentialError, match="still need an old key"):
            store.drop_old_keys()
        assert store.rotate_keys() == 3
        with pytest.raises(CredentialError, match="unset HUBKIT_OLD_SECRET_KEYS"):
            store.drop_old_keys()
    after = _ciphertexts(db_url)
    assert all(after[name] != before[name] for name in before)
    monkeypatch.delenv("HUBKIT_OLD_SECRET_KEYS")
    with Store.open(db_url) as store:
        assert _revealed(store) == EXPECTED  # the new key alone suffices now
    assert not key_file.exists()


# --- missing and wrong keys ------------------------------------------------------------------


def test_missing_key_with_existing_credentials(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Store.open(db_url) as store:
        _fill(store)
        key_file = store.settings.key_file
    elsewhere = tmp_path / "moved.key"
    monkeypatch.setenv("HUBKIT_KEY_FILE", str(elsewhere))
    with Store.open(db_url) as store:
        for action in (
            lambda: store.reveal_credential("openai", "main"),
            lambda: store.add_credential("openai", "second", API_KEY),
            lambda: store.rotate_credential("openai", "main", API_KEY),
            lambda: store.rotate_keys(),
        ):
            with pytest.raises(CredentialError) as info:
                action()
            message = str(info.value)
            assert "HUBKIT_SECRET_KEY" in message and "HUBKIT_KEY_FILE" in message
            assert API_KEY not in message
        # no new key was silently made: it would have left the old credentials unreadable
        assert not elsewhere.exists()
        assert [c.name for c in store.list_credentials("openai")] == ["main"]
    assert key_file.exists()


def test_wrong_key_says_what_to_do(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(db_url) as store:
        _fill(store)
    monkeypatch.setenv("HUBKIT_SECRET_KEY", generate_key())
    with Store.open(db_url) as store:
        with pytest.raises(CredentialError) as info:
            store.reveal_credential("openai", "main")
        message = str(info.value)
        assert "HUBKIT_SECRET_KEY" in message and "HUBKIT_OLD_SECRET_KEYS" in message
        with pytest.raises(CredentialError):
            store.rotate_keys()
    monkeypatch.setenv("HUBKIT_SECRET_KEY", "not-a-fernet-key")
    with Store.open(db_url) as store:
        with pytest.raises(CredentialError, match="keys generate") as info:
            store.reveal_credential("openai", "main")
        assert "not-a-fernet-key" not in str(info.value)


# --- no plaintext anywhere -------------------------------------------------------------------


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"
    assert "LEAKCHECK" not in text, f"part of a secret leaked into {where}"


def _failures(store: Store) -> list[Callable[[], Any]]:
    return [
        lambda: store.add_credential("openai", "main", API_KEY),  # duplicate name
        lambda: store.add_credential("xai", "main", API_KEY),  # unknown provider
        lambda: store.add_credential("openai", "w", API_KEY, weight=-3),
        lambda: store.add_credential("openai", "", API_KEY),
        lambda: store.add_credential("openai", "t", API_KEY, credential_type="nope"),
        lambda: store.add_credential(
            "bedrock", "x", {"access_key_id": AWS_ID}, credential_type="access_key_pair"
        ),
        lambda: store.add_credential("bedrock", "x", AWS_SECRET, credential_type="access_key_pair"),
        lambda: store.add_credential(
            "acme", "x", {"token": CUSTOM_TOKEN, "n": 5}, credential_type="custom"
        ),
        lambda: store.rotate_credential("openai", "missing", API_KEY),
        lambda: store.rotate_credential("bedrock", "aws", API_KEY),  # a string for a key pair
        lambda: store.reveal_credential("openai", "missing"),
    ]


def test_secrets_never_leak(db_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)  # everything, SQL statements and parameters included
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "alembic", "psycopg"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with Store.open(db_url) as store:
            _fill(store)
            returned: list[Any] = [store, store.settings]
            returned += store.list_credentials()
            returned += store.list_providers()
            returned.append(store.rotate_credential("openai", "main", API_KEY))
            returned.append(store.update_credential("openai", "main", weight=7))
            store.rotate_keys()
            for value in returned:
                _assert_clean(repr(value), f"repr of {type(value).__name__}")
                _assert_clean(str(value), f"str of {type(value).__name__}")
            for failure in _failures(store):
                with pytest.raises(HubkitError) as info:
                    failure()
                assert isinstance(
                    info.value, ConflictError | NotFoundError | ValidationError | CredentialError
                )
                exc = info.value
                _assert_clean(str(exc), f"str of {type(exc).__name__}")
                _assert_clean(repr(exc), f"repr of {type(exc).__name__}")
                _assert_clean(repr(vars(exc)), f"attributes of {type(exc).__name__}")
                if exc.__cause__ is not None:
                    _assert_clean(str(exc.__cause__), "the cause of a store error")
            # frames and CSV exports show the masked text only
            creds = credentials_frame(store.list_credentials())
            assert "sk-p****************1234" in set(creds["display_text"])
            for frame in (creds, providers_frame(store.list_providers())):
                _assert_clean(frame.to_string(), "a DataFrame")
                buffer = io.StringIO()
                to_csv(frame, buffer)
                _assert_clean(buffer.getvalue(), "a CSV export")
            to_csv(creds, tmp_path / "credentials.csv")
            _assert_clean((tmp_path / "credentials.csv").read_text(), "a CSV file")
            # the one explicit way in still works
            assert _revealed(store) == EXPECTED
    finally:
        for name in ("sqlalchemy.engine", "sqlalchemy.pool", "alembic", "psycopg"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert any("INSERT INTO credentials" in r.getMessage() for r in caplog.records), (
        "SQL logging was not captured: the log check would prove nothing"
    )
    for record in caplog.records:
        _assert_clean(record.getMessage(), f"log record from {record.name}")
        _assert_clean(repr(record.args), f"log args from {record.name}")


def test_secrets_absent_from_the_sqlite_files(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        _fill(store)
        store.rotate_credential("openai", "main", API_KEY)
        store.rotate_keys()
        path = Path(sqlite_url.removeprefix("sqlite:///"))
        files = sorted(path.parent.glob(path.name + "*"))
        assert path in files
        for file in files:  # the database and its WAL / shared-memory files
            data = file.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, f"a secret is in {file.name}"
            assert b"LEAKCHECK" not in data
        assert _revealed(store) == EXPECTED


def test_settings_repr_hides_url_passwords() -> None:
    # Settings is printed in notebooks and logs: a PostgreSQL password in the database URL
    # (or user-info in the hub URL) must not show, while the rest of the address does.
    from hubkit.config import Settings

    settings = Settings.from_env(
        {
            "HUBKIT_DATABASE_URL": "postgresql+psycopg://ops:hunter2pw@db.local:5432/hubkit",
            "HUBKIT_HUB_URL": "https://admin:hubpass99@hub.local/api",
        }
    )
    text = repr(settings)
    assert "hunter2pw" not in text and "hubpass99" not in text
    assert "ops:***@db.local:5432/hubkit" in text and "hub.local/api" in text
    assert settings.database_url.endswith("ops:hunter2pw@db.local:5432/hubkit")  # value intact
