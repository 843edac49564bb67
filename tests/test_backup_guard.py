"""``backup`` never overwrites without --force, nor the live database or key; files are 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from _stores import API_KEY, add_provider

from hubkit.cli import main
from hubkit.config import get_settings
from hubkit.store import Store


def _store(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        add_provider(store, "openai")
        store.add_credential("openai", "main", API_KEY)


def test_backup_refuses_an_existing_file_without_force(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(sqlite_url)
    precious = tmp_path / "thesis.txt"
    precious.write_text("years of work\n")
    assert main(["--database-url", sqlite_url, "backup", str(precious)]) == 4
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert precious.read_text() == "years of work\n"
    assert main(["--database-url", sqlite_url, "backup", str(precious), "--force"]) == 0
    assert precious.read_bytes().startswith(b"SQLite format 3")


def test_backup_refuses_the_live_database_even_with_force(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(sqlite_url)
    live = Path(sqlite_url.removeprefix("sqlite:///"))
    before = live.read_bytes()
    link = tmp_path / "link.db"
    link.symlink_to(live)
    (tmp_path / "sub").mkdir()
    dotted = tmp_path / "sub" / ".." / live.name
    for target in (live, link, dotted):
        assert main(["--database-url", sqlite_url, "backup", str(target), "--force"]) == 6
        assert "refusing to back up onto the live database" in capsys.readouterr().err
    assert live.read_bytes() == before and link.is_symlink()
    with Store.open(sqlite_url) as store:
        assert store.reveal_credential("openai", "main") == {"api_key": API_KEY}
    key_file = get_settings().key_file
    key = key_file.read_text()
    assert main(["--database-url", sqlite_url, "backup", str(key_file), "--force"]) == 6
    assert key_file.read_text() == key


def test_backups_are_private_whatever_the_umask(sqlite_url: str, tmp_path: Path) -> None:
    _store(sqlite_url)
    old = os.umask(0o022)
    try:
        assert main(["--database-url", sqlite_url, "backup", str(tmp_path / "copy.db")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600


def test_a_new_sqlite_store_and_its_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "hubkit.db"
    old = os.umask(0o022)
    try:
        with Store.open(f"sqlite:///{db}") as store:
            add_provider(store, "openai")
            assert stat.S_IMODE(db.stat().st_mode) == 0o600
            wal = db.with_name("hubkit.db-wal")
            assert not wal.exists() or stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
