"""The store's key check value: a key that cannot read the store never writes to it."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from _stores import API_KEY, add_provider

from hubkit.cli import main
from hubkit.crypto import generate_key
from hubkit.store import Store

OTHER_VALUE = "sk-other-LEAKCHECK-0123456789abcdef"


def _cli(monkeypatch: pytest.MonkeyPatch, db_url: str, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin + "\n"))
    return main(["--database-url", db_url, *argv])


def _names(db_url: str) -> list[str]:
    with Store.open(db_url) as store:
        return [f"{c.provider}/{c.name}" for c in store.list_credentials()]


def _revealed(db_url: str, name: str) -> str:
    with Store.open(db_url) as store:
        return store.reveal_credential("openai", name)["api_key"]


def _seed(monkeypatch: pytest.MonkeyPatch, db_url: str, key: str) -> None:
    monkeypatch.setenv("HUBKIT_SECRET_KEY", key)
    with Store.open(db_url) as store:
        add_provider(store, "openai")
    assert _cli(monkeypatch, db_url, "credentials", "add", "openai", "main", "--value-stdin",
                stdin=API_KEY) == 0  # fmt: skip


def test_a_different_valid_key_is_refused_for_every_credential_write(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    right = generate_key()
    _seed(monkeypatch, db_url, right)
    capsys.readouterr()
    monkeypatch.setenv("HUBKIT_SECRET_KEY", generate_key())  # valid, but not this store's
    add = ("credentials", "add", "openai", "second", "--value-stdin")
    assert _cli(monkeypatch, db_url, *add, stdin=OTHER_VALUE) == 5
    err = capsys.readouterr().err
    assert "not this store's key" in err and "HUBKIT_SECRET_KEY" in err
    assert "HUBKIT_OLD_SECRET_KEYS" in err and OTHER_VALUE not in err
    rotate = ("credentials", "rotate-key", "openai", "main", "--value-stdin")
    assert _cli(monkeypatch, db_url, *rotate, stdin=OTHER_VALUE) == 5
    assert _cli(monkeypatch, db_url, "keys", "rotate") == 5
    # nothing was written: the right key still reads the one credential there is
    monkeypatch.setenv("HUBKIT_SECRET_KEY", right)
    assert _names(db_url) == ["openai/main"]
    assert _revealed(db_url, "main") == API_KEY


def test_a_store_without_check_value_gets_one_only_from_a_key_that_reads_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    right = generate_key()
    _seed(monkeypatch, db_url, right)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # a store from before the check value existed
        conn.execute(sa.text("DELETE FROM key_check"))
    capsys.readouterr()
    monkeypatch.setenv("HUBKIT_SECRET_KEY", generate_key())
    add = ("credentials", "add", "openai", "second", "--value-stdin")
    assert _cli(monkeypatch, db_url, *add, stdin=OTHER_VALUE) == 5
    err = capsys.readouterr().err
    assert "cannot read 1 stored credential: openai/main" in err and API_KEY not in err
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM key_check")) == 0
    monkeypatch.setenv("HUBKIT_SECRET_KEY", right)
    assert _cli(monkeypatch, db_url, *add, stdin=OTHER_VALUE) == 0
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM key_check")) == 1
    engine.dispose()
    assert _revealed(db_url, "second") == OTHER_VALUE


def test_keys_rotate_names_each_unreadable_credential(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = generate_key()
    _seed(monkeypatch, db_url, old)
    # a newer key with the old one still readable: a second credential under the new key
    new = generate_key()
    monkeypatch.setenv("HUBKIT_SECRET_KEY", new)
    monkeypatch.setenv("HUBKIT_OLD_SECRET_KEYS", old)
    for name in ("second", "third"):
        assert _cli(monkeypatch, db_url, "credentials", "add", "openai", name, "--value-stdin",
                    stdin=OTHER_VALUE) == 0  # fmt: skip
    capsys.readouterr()
    # the new key is lost: the old one alone reads the check value and openai/main only
    monkeypatch.setenv("HUBKIT_SECRET_KEY", old)
    monkeypatch.delenv("HUBKIT_OLD_SECRET_KEYS")
    assert _cli(monkeypatch, db_url, "keys", "rotate") == 5
    err = capsys.readouterr().err
    assert "cannot read 2 stored credentials: openai/second, openai/third" in err
    assert "openai/main" not in err and OTHER_VALUE not in err


def test_key_rotation_moves_the_check_value_to_the_new_key(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # key-file mode: rotate writes a new key, re-seals, and the check value follows it
    with Store.open(db_url) as store:
        add_provider(store, "openai")
        store.add_credential("openai", "main", API_KEY)
        assert store.rotate_keys() == 1
        store.drop_old_keys()  # refused if the check value still needed the old key
        store.add_credential("openai", "second", OTHER_VALUE)
        assert store.reveal_credential("openai", "second")["api_key"] == OTHER_VALUE
