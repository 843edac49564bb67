"""Store: settings, backup, read-only mode, migrations and concurrency, on both databases."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import _postgres
import pytest
import sqlalchemy as sa
from _stores import API_KEY, add_provider, chat_spec, count_rows, seed_rates, snapshot, table_rows
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hubkit.domain import ProviderSpec
from hubkit.errors import (
    ReadOnlyError,
    StaleVersionError,
    StorageError,
    ValidationError,
)
from hubkit.store import OperatorSettings, Store
from hubkit.store.engine import make_engine, schema_is_current
from hubkit.store.schema import Base

pytestmark = pytest.mark.store("sqlite", "postgres")

D = Decimal
COSTS = {"input": "0.000002", "output": "0.000008"}


# --- operator settings -----------------------------------------------------------------------


def test_settings_defaults_and_persistence(store: Store, db_url: str) -> None:
    assert store.get_operator_settings() == OperatorSettings("USD", D(1), D(2))
    saved = store.set_operator_settings(currency="eur", credit_price="0.0025", target_margin=15)
    assert saved == OperatorSettings("EUR", D("0.0025"), D(15))
    store.set_operator_settings(target_margin="17.5")
    with Store.open(db_url) as again:
        assert again.get_operator_settings() == OperatorSettings("EUR", D("0.0025"), D("17.5"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "€"}, "currency"),
        ({"credit_price": 0}, "creditPrice"),
        ({"credit_price": "-1"}, "creditPrice"),
        ({"credit_price": "NaN"}, "creditPrice"),
        ({"target_margin": -5}, "profitMargin"),
        ({"target_margin": "lots"}, "profitMargin"),
    ],
)
def test_bad_settings_write_nothing(store: Store, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.set_operator_settings(**{"currency": "GBP", **kwargs})
    assert info.value.field == field
    assert store.get_operator_settings() == OperatorSettings()


# --- migrations ------------------------------------------------------------------------------


def test_migrations_build_the_schema_on_an_empty_database(db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        assert sa.inspect(engine).get_table_names() == []
        Store.open(db_url).close()
        tables = set(sa.inspect(engine).get_table_names())
        assert {
            "providers",
            "credentials",
            "model_rates",
            "rate_history",
            "operator_settings",
            "job_runs",
            "job_locks",
            "alembic_version",
        } <= tables
        assert schema_is_current(engine)
        # the migrations produce exactly what the ORM models declare
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        # opening again is a no-op, and keeps the data
        with Store.open(db_url) as store:
            add_provider(store, "openai")
        with Store.open(db_url) as store:
            assert [p.name for p in store.list_providers()] == ["openai"]
    finally:
        engine.dispose()


def test_bad_database_urls_are_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a database URL"):
        Store.open("no-scheme-here")
    with pytest.raises(StorageError, match="unsupported database 'mysql'"):
        Store.open("mysql://u@localhost/db")
    with pytest.raises(StorageError, match="SQLite file"):
        Store.open("sqlite://")


def test_a_new_store_file_is_born_in_wal_mode_so_no_opener_has_to_switch_it(
    tmp_path: Path,
) -> None:
    """Switching to WAL needs an exclusive lock, and SQLite refuses it at once ("database is
    locked", no busy wait) while another connection holds the file: concurrent first opens
    of a new store raced there (a fresh-clone run failed the test below that way)."""
    path = tmp_path / "new" / "hubkit.db"
    make_engine(f"sqlite:///{path}")  # creates the file, connects nowhere
    assert [p.name for p in path.parent.iterdir()] == ["hubkit.db"]  # no temporary left
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # a reader holding the file does not stop a new opener: there is nothing to switch
        raw.execute("BEGIN")
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with Store.open(f"sqlite:///{path}") as store:
            assert store.list_rates() == []
    finally:
        raw.close()


@pytest.mark.soak
def test_concurrent_opens_of_a_fresh_database(db_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4, timeout=30)

    def open_and_read() -> None:
        try:
            barrier.wait()
            with Store.open(db_url) as own:
                own.list_rates()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with Store.open(db_url) as store:
        assert store.list_rates() == []


@pytest.mark.soak
def test_bulk_apply_racing_a_single_edit(db_url: str) -> None:
    """Whoever commits first wins; the other is refused whole, never half-applied."""
    with Store.open(db_url) as store:
        seed_rates(store, 40, ["openai", "anthropic", "deepseek", "google", "xai"])
        preview = store.preview_bulk_update(30, 1)
        target = store.list_rates()[100]
        before_history = count_rows(db_url, "rate_history")
    barrier = threading.Barrier(2, timeout=30)
    outcome: dict[str, Any] = {}

    def bulk() -> None:
        with Store.open(db_url) as own:
            barrier.wait()
            try:
                outcome["bulk"] = own.apply_bulk_update(preview)
            except Exception as exc:  # asserted below
                outcome["bulk"] = exc

    def edit() -> None:
        with Store.open(db_url) as own:
            barrier.wait()
            try:
                outcome["edit"] = own.update_rate(target.id, target.version, input_rate="0.9")
            except Exception as exc:  # asserted below
                outcome["edit"] = exc

    threads = [threading.Thread(target=bulk), threading.Thread(target=edit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = [k for k, v in outcome.items() if isinstance(v, Exception)]
    assert len(outcome) == 2 and len(failed) == 1, outcome
    assert isinstance(outcome[failed[0]], StaleVersionError), repr(outcome[failed[0]])
    with Store.open(db_url) as store:
        rates = store.list_rates()
        after_history = count_rows(db_url, "rate_history")
    if failed == ["bulk"]:
        assert [r.version for r in rates].count(2) == 1
        assert after_history == before_history + 1
    else:
        assert all(r.version == 2 for r in rates)
        assert after_history == before_history + 200


# --- read-only -------------------------------------------------------------------------------


def _fill(store: Store) -> None:
    add_provider(store, "openai")
    store.add_credential("openai", "main", API_KEY)
    rate = store.create_rate(chat_spec(unit_costs=COSTS))
    store.update_rate(rate.id, 1, input_rate="0.000003")


def _db_state(url: str) -> dict[str, list[dict[str, Any]]]:
    tables = ("providers", "credentials", "model_rates", "rate_history", "operator_settings")
    return {t: table_rows(url, t) for t in tables}


def _sqlite_files(url: str) -> dict[str, str]:
    path = Path(url.removeprefix("sqlite:///"))
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.glob(path.name + "*"))
        if not p.name.endswith("-shm")  # the WAL index is shared memory, touched by readers
    }


def test_read_only_store_refuses_every_write(db_url: str) -> None:
    with Store.open(db_url) as writer:
        _fill(writer)
        preview_source = writer.preview_bulk_update(50, 1)
        history_id = writer.history()[0].id
    before = _db_state(db_url)
    files = _sqlite_files(db_url) if db_url.startswith("sqlite") else {}
    key_file = writer.settings.key_file
    keys = key_file.read_text()
    with Store.open(db_url, read_only=True) as ro:
        assert "read-only" in repr(ro)
        rate = ro.list_rates()[0]
        writes = [
            lambda: ro.add_provider(ProviderSpec.create("xai", base_url="https://api.x.ai")),
            lambda: ro.update_provider("openai", enabled=False),
            lambda: ro.delete_provider("openai"),
            lambda: ro.add_credential("openai", "second", API_KEY),
            lambda: ro.rotate_credential("openai", "main", API_KEY + "x"),
            lambda: ro.update_credential("openai", "main", weight=1),
            lambda: ro.delete_credential("openai", "main"),
            lambda: ro.create_rate(chat_spec(model="new")),
            lambda: ro.create_rates_batch(chat_spec(model="new"), ["openai"]),
            lambda: ro.update_rate(rate.id, rate.version, input_rate=1),
            lambda: ro.delete_rate(rate.id),
            lambda: ro.deprecate_rate(rate.id, rate.version),
            lambda: ro.apply_bulk_update(preview_source),
            lambda: ro.set_operator_settings(target_margin=9),
            lambda: ro.revert(history_id),
            lambda: ro.rotate_keys(),
            lambda: ro.drop_old_keys(),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyError, match="read-only"):
                write()
        # reading still works, including a preview (which writes nothing)
        assert ro.preview_bulk_update(50, 1).changes == preview_source.changes
        assert len(ro.history()) == 2 and not ro.rate_timeline().empty
        assert ro.reveal_credential("openai", "main") == {"api_key": API_KEY}
    assert _db_state(db_url) == before
    assert key_file.read_text() == keys  # no key was added or dropped either
    if files:
        assert _sqlite_files(db_url) == files


def test_read_only_is_enforced_by_the_database_too(db_url: str) -> None:
    with Store.open(db_url) as writer:
        _fill(writer)
    with Store.open(db_url, read_only=True) as ro:
        if db_url.startswith("sqlite"):
            assert "mode=ro" in str(ro.engine.url)
        # even a raw statement on the store's engine cannot write
        with pytest.raises(sa.exc.DBAPIError) as info:
            with ro.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM model_rates"))
        assert "read" in str(info.value.orig).lower()
    assert count_rows(db_url, "model_rates") == 1


def test_read_only_needs_an_existing_current_database(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()  # an empty file is an empty database
    with pytest.raises(StorageError, match="hubkit init"):
        Store.open(db_url, read_only=True)
    with pytest.raises(StorageError, match="does not exist"):
        Store.open(f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)
    assert not (tmp_path / "missing.db").exists()


# --- backup ----------------------------------------------------------------------------------


def test_sqlite_backup_is_a_working_copy(sqlite_url: str, tmp_path: Path) -> None:
    with Store.open(sqlite_url) as store:
        _fill(store)
        store.set_operator_settings(credit_price="0.01")
        target = store.backup(tmp_path / "backups" / "copy.db")
        rates = snapshot(store)
    assert target == tmp_path / "backups" / "copy.db" and target.exists()
    with Store.open(f"sqlite:///{target}", read_only=True) as copy:
        assert snapshot(copy) == rates
        assert len(copy.history()) == 2
        assert copy.get_operator_settings().credit_price == D("0.01")
        # same key, same secrets: a backup is only useful with its key
        assert copy.reveal_credential("openai", "main") == {"api_key": API_KEY}
    assert API_KEY.encode() not in target.read_bytes()


def test_a_failed_backup_keeps_the_previous_one(sqlite_url: str, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    with Store.open(sqlite_url) as store:
        _fill(store)
        store.backup(target)
        good = target.read_bytes()
        # the source vanishes mid-way: the copy fails, the last good backup must survive
        (tmp_path / "hubkit.db").rename(tmp_path / "moved.db")
        with pytest.raises(StorageError, match="back it up"):
            store.backup(target, overwrite=True)
    assert target.read_bytes() == good
    # nor a half-written copy beside it (the temp file is ".copy.db.<random>.tmp")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_credential_names_are_looked_up_as_stored(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        _fill(store)
        store.add_credential("openai", " spaced ", "sk-spaced-abcdefghijklmnop1234")
        assert store.reveal_credential("openai", " spaced ") == {
            "api_key": "sk-spaced-abcdefghijklmnop1234"
        }
        store.update_credential("openai", "spaced ", active=False)
        store.delete_credential("openai", " spaced")


def test_postgres_backup_restores(
    pg_url: str, postgres_server: _postgres.PostgresServer, tmp_path: Path
) -> None:
    with Store.open(pg_url) as store:
        _fill(store)
        dump = store.backup(tmp_path / "hubkit.dump")
        rates = snapshot(store)
    assert dump.stat().st_size > 0
    assert API_KEY.encode() not in dump.read_bytes()
    name = _postgres.database_name("restored")
    _postgres.create_database(postgres_server, name)
    try:
        subprocess.run(
            [
                str(postgres_server.bindir / "pg_restore"),
                "--no-owner",
                f"--dbname={postgres_server.conninfo(name)}",
                str(dump),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with Store.open(postgres_server.url(name), read_only=True) as copy:
            assert snapshot(copy) == rates
            assert copy.reveal_credential("openai", "main") == {"api_key": API_KEY}
    finally:
        _postgres.drop_database(postgres_server, name)


def test_postgres_backup_without_pg_dump_says_what_to_install(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(pg_url) as store:
        monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
        with pytest.raises(StorageError, match="postgresql-client"):
            store.backup(tmp_path / "hubkit.dump")
    assert not (tmp_path / "hubkit.dump").exists()


def test_default_store_lives_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUBKIT_DATA_DIR", str(tmp_path / "data"))
    with Store.open() as store:
        add_provider(store, "openai")
        store.add_credential("openai", "main", API_KEY)
    assert (tmp_path / "data" / "hubkit.db").exists()
    assert (tmp_path / "data" / "secret.key").exists()
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("HUBKIT_DATABASE_URL", f"sqlite:///{other}")
    with Store.open() as store:
        assert store.list_providers() == []
    assert other.exists()
