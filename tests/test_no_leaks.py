"""Nothing echoed: passwords in malformed URLs, keys typed where a name goes."""

from __future__ import annotations

import io

import pytest
from _stores import API_KEY, add_provider

from hubkit.cli import main
from hubkit.config import Settings
from hubkit.domain import looks_like_secret, validate_credential_name
from hubkit.errors import HubkitError, ValidationError
from hubkit.hub.client import HubClient
from hubkit.store import Store

PASSWORD = "s3cretLEAKCHECK"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg//app:{PASSWORD}@db.example.com/hubkit",  # missing ':'
        f"postgresql+psycopg:/app:{PASSWORD}@db.example.com/hubkit",
        f"postgresql+psycopg://app:{PASSWORD}@db.example.com:port/hubkit",  # bad port
        f"postgresql+nodriver://app:{PASSWORD}@db.example.com/hubkit",  # unknown driver
        f"app:{PASSWORD}@db.example.com/hubkit",  # no scheme
        f"postgresql+psycopg://app:{PASSWORD}/db.example.com/hubkit",  # '/' for '@'
    ],
)
def test_malformed_database_urls_never_show_their_password(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", url, "init"]) == 6
    captured = capsys.readouterr()
    assert "database URL" in captured.err
    assert PASSWORD not in captured.err + captured.out
    assert PASSWORD not in repr(Settings.from_env({"HUBKIT_DATABASE_URL": url}))


@pytest.mark.parametrize(
    "url",
    [
        f"https//ops:{PASSWORD}@hub.example.com",
        f"https://ops:{PASSWORD}@hub.example.com:port/",
        f"https://[::1:{PASSWORD}@hub.example.com/",
    ],
)
def test_malformed_hub_urls_never_show_their_password(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        HubClient(url, "token")
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(Settings.from_env({"HUBKIT_HUB_URL": url}))


@pytest.mark.parametrize(
    "name",
    [
        API_KEY,
        "AKIAIOSFODNN7EXAMPLE",
        "d41d8cd98f00b204e9800998ecf8427e",
        "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x",
        "xK9mP2qL7vR4tY8wZ3nB6cF1hJ5gD0sA",  # 32 random base62 characters
    ],
)
def test_a_key_typed_as_the_credential_name_is_refused_unechoed(
    name: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(sqlite_url) as store:
        add_provider(store, "openai")
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-the-real-value-0123456789\n"))
    argv = ["--database-url", sqlite_url, "credentials", "add", "openai", name, "--value-stdin"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "looks like a secret" in err and "put the key in the value" in err
    assert name not in err
    with Store.open(sqlite_url) as store:
        assert store.list_credentials() == []


@pytest.mark.parametrize(
    "name",
    ["main", "prod-2024", "backup key for team B", "TeamSharedAccount2025Q1Primary",
     "production-openai-key-2024-backup", "gpt4o-team-eu-west-1", "x" * 100],
)  # fmt: skip
def test_ordinary_names_are_accepted(name: str) -> None:
    assert not looks_like_secret(name)
    assert validate_credential_name(f" {name} ") == name


def test_a_too_long_name_is_not_echoed_either() -> None:
    with pytest.raises(HubkitError) as info:
        validate_credential_name("k" * 101 + API_KEY)
    assert API_KEY not in str(info.value)
