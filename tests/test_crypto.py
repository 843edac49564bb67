"""hubkit.crypto: where keys come from, the key file, MultiFernet encryption and rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hubkit.config import Settings
from hubkit.crypto import Keyring, generate_key, write_key_file
from hubkit.errors import CredentialError

SECRET = {"api_key": "sk-proj-abcdefghijklmnop1234"}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"HUBKIT_DATA_DIR": str(tmp_path), **env})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_created_on_first_use_with_mode_0600(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert not settings.key_file.exists()
    ring = Keyring.load(settings, create=True)
    assert settings.key_file == tmp_path / "secret.key"
    assert _mode(settings.key_file) == 0o600
    assert ring.key_file == settings.key_file
    assert len(ring.keys) == 1
    # the same key comes back next time, and nothing new is generated
    again = Keyring.load(settings)
    assert again.keys == ring.keys
    assert again.decrypt(ring.encrypt(SECRET)) == SECRET


def test_missing_key_names_both_variables_and_creates_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(CredentialError) as info:
        Keyring.load(settings)
    message = str(info.value)
    assert "HUBKIT_SECRET_KEY" in message and "HUBKIT_KEY_FILE" in message
    assert str(settings.key_file) in message
    assert not settings.key_file.exists()


def test_env_key_and_old_keys(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    old_ring = Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=old))
    token = old_ring.encrypt(SECRET)
    ring = Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=new, HUBKIT_OLD_SECRET_KEYS=old))
    assert ring.keys == (new, old)
    assert ring.origin == "HUBKIT_SECRET_KEY" and ring.key_file is None
    assert ring.decrypt(token) == SECRET
    assert not ring.decrypts_with_newest_only(token)
    rotated = ring.reencrypt(token)
    assert rotated != token
    assert ring.decrypts_with_newest_only(rotated)
    assert Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=new)).decrypt(rotated) == SECRET
    # the env key wins over a key file, which is never created in env mode
    assert not (tmp_path / "secret.key").exists()


def test_key_file_holds_several_keys_newest_first(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hubkit.key"
    old, new = generate_key(), generate_key()
    write_key_file(path, [new, old])
    assert _mode(path) == 0o600
    text = path.read_text()
    assert text.startswith("#")  # a comment says what the file is
    assert text.index(new) < text.index(old)
    ring = Keyring.load(_settings(tmp_path, HUBKIT_KEY_FILE=str(path)))
    assert ring.keys == (new, old)
    token = Fernet(old.encode()).encrypt(b'{"api_key": "x"}').decode()
    assert ring.decrypt(token) == {"api_key": "x"}


def test_rewriting_the_key_file_keeps_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    write_key_file(path, [generate_key()])
    path.chmod(0o644)
    write_key_file(path, [generate_key(), generate_key()])
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temp file left


def test_with_new_key_and_newest_only(tmp_path: Path) -> None:
    ring = Keyring.load(_settings(tmp_path), create=True)
    token = ring.encrypt(SECRET)
    bigger = ring.with_new_key()
    assert len(bigger.keys) == 2 and bigger.keys[1:] == ring.keys
    assert bigger.decrypt(token) == SECRET
    rotated = bigger.reencrypt(token)
    assert bigger.newest_only().keys == bigger.keys[:1]
    assert bigger.newest_only().decrypt(rotated) == SECRET
    with pytest.raises(CredentialError):
        bigger.newest_only().decrypt(token)


def test_wrong_key_says_what_to_do(tmp_path: Path) -> None:
    token = Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=generate_key())).encrypt(SECRET)
    wrong = Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=generate_key()))
    with pytest.raises(CredentialError) as info:
        wrong.decrypt(token)
    message = str(info.value)
    assert "HUBKIT_SECRET_KEY" in message and "HUBKIT_OLD_SECRET_KEYS" in message
    assert SECRET["api_key"] not in message
    with pytest.raises(CredentialError):
        wrong.reencrypt(token)


@pytest.mark.parametrize("bad", ["not-a-key", "x" * 44, "c2hvcnQ="])
def test_invalid_keys_are_named_by_origin(tmp_path: Path, bad: str) -> None:
    with pytest.raises(CredentialError, match="HUBKIT_SECRET_KEY") as info:
        Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=bad))
    assert bad not in str(info.value)
    with pytest.raises(CredentialError, match="HUBKIT_OLD_SECRET_KEYS"):
        Keyring.load(
            _settings(tmp_path, HUBKIT_SECRET_KEY=generate_key(), HUBKIT_OLD_SECRET_KEYS=bad)
        )
    path = tmp_path / "bad.key"
    path.write_text(bad + "\n")
    with pytest.raises(CredentialError, match="key file"):
        Keyring.load(_settings(tmp_path, HUBKIT_KEY_FILE=str(path)))


def test_empty_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("# nothing here\n\n")
    with pytest.raises(CredentialError, match="empty"):
        Keyring.load(_settings(tmp_path), create=True)
    assert path.read_text() == "# nothing here\n\n"


def test_keys_never_show_in_repr(tmp_path: Path) -> None:
    key = generate_key()
    ring = Keyring.load(_settings(tmp_path, HUBKIT_SECRET_KEY=key, HUBKIT_OLD_SECRET_KEYS=key))
    assert key not in repr(ring) and key not in str(ring)
    settings = _settings(tmp_path, HUBKIT_SECRET_KEY=key, HUBKIT_HUB_TOKEN="hub-token-123456")
    assert key not in repr(settings) and "hub-token-123456" not in repr(settings)


def test_ciphertexts_hide_the_secret(tmp_path: Path) -> None:
    ring = Keyring.load(_settings(tmp_path), create=True)
    first, second = ring.encrypt(SECRET), ring.encrypt(SECRET)
    assert first != second  # Fernet tokens carry a random IV
    for token in (first, second):
        assert SECRET["api_key"] not in token
        assert ring.decrypt(token) == SECRET
