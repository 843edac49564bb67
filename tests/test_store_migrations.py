"""Migrations: across processes, and an existing store moving forward to head.

Two ``python -m hubkit init`` at once migrate once: real separate processes on a real
SQLite file and a real PostgreSQL database. The test holds the migration lock itself,
starts two ``init`` processes, and proceeds only once the operating system
(``/proc/locks``) or PostgreSQL (``pg_locks``) shows both *blocked on that lock* — no
timing: a process that finishes while the lock is held fails the test.

A store at the previous head gains the usage tables (0003), keeping any that hubkit's
``create_all`` made before, and refusing a foreign table of the same name.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from _billing_data import calls
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from hubkit.errors import StorageError
from hubkit.store import Store
from hubkit.store import engine as engine_module
from hubkit.store.engine import (
    MIGRATION_LOCK_KEY,
    head_revision,
    make_engine,
    migrate,
    migration_lock_path,
    schema_is_current,
)
from hubkit.store.schema import Base, rate_periods_table, usage_table
from hubkit.usage.sql import load_usage, usage_totals

_BLOCKED_WITHIN = 300.0  # s: a generous bound for two interpreters to start on 2 busy cores


def _start_init(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hubkit", "--database-url", url, "init"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_until_blocked(
    procs: list[subprocess.Popen[str]], blocked: Callable[[set[int]], set[int]]
) -> None:
    """Poll until every process waits on the lock; fail if one ends first."""
    pids = {p.pid for p in procs}
    for _ in range(int(_BLOCKED_WITHIN / 0.05)):
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"init finished while the migration lock was held:\n{out}{err}")
        if blocked(pids) == pids:
            return
        try:
            procs[0].wait(timeout=0.05)  # the poll interval; an early exit is caught above
        except subprocess.TimeoutExpired:
            pass
    pytest.fail("the init processes never blocked on the migration lock")


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=_BLOCKED_WITHIN)
        assert proc.returncode == 0, out + err
        assert "store ready" in out


def _version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


@contextmanager
def _killed_on_exit(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()  # reaps it and closes its pipes


# --- SQLite: an flock beside the database ------------------------------------------------------


def _flock_waiters(path: Path) -> Callable[[set[int]], set[int]]:
    def blocked(pids: set[int]) -> set[int]:
        inode = f":{path.stat().st_ino} "
        found: set[int] = set()
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if inode in f"{line} " and "->" in fields:  # "->": waiting, not holding
                pid = int(fields[fields.index("->") + 4])
                found |= {pid} & pids
        return found

    return blocked


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_two_inits_on_one_sqlite_file_migrate_once(sqlite_url: str) -> None:
    lock_path = migration_lock_path(make_engine(sqlite_url))
    with lock_path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [_start_init(sqlite_url), _start_init(sqlite_url)]
        with _killed_on_exit(procs):
            _wait_until_blocked(procs, _flock_waiters(lock_path))
            db_file = Path(sqlite_url.removeprefix("sqlite:///"))
            # blocked before alembic read (let alone created) anything
            assert (
                not db_file.exists()
                or "alembic_version"
                not in sa.inspect(
                    sa.create_engine(sqlite_url, poolclass=NullPool)
                ).get_table_names()
            )
            fcntl.flock(held, fcntl.LOCK_UN)
            _finish(procs)
    assert _version_rows(sqlite_url) == [head_revision()]
    with Store.open(sqlite_url) as store:
        assert schema_is_current(store.engine)


# --- PostgreSQL: pg_advisory_lock ---------------------------------------------------------------


def _advisory_waiters(conn: sa.Connection) -> Callable[[set[int]], set[int]]:
    def blocked(pids: set[int]) -> set[int]:
        waiting = conn.scalars(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = 0 AND objid = :key AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": MIGRATION_LOCK_KEY},
        ).all()
        conn.rollback()  # a fresh snapshot for the next poll
        return set(waiting)

    return blocked


@pytest.mark.postgres
def test_two_inits_on_one_postgres_database_migrate_once(pg_url: str) -> None:
    engine = sa.create_engine(pg_url, poolclass=NullPool)
    try:
        with engine.connect() as holder, engine.connect() as observer:
            holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            holder.commit()
            procs = [_start_init(pg_url), _start_init(pg_url)]
            with _killed_on_exit(procs):
                # pg_locks names server backends, not our client processes: wait for two
                # waiters, whoever they are (the database is this test's alone).
                waiters = _advisory_waiters(observer)
                _wait_until_blocked(
                    procs, lambda pids: pids if len(waiters(pids)) == len(pids) else set()
                )
                assert not sa.inspect(observer).has_table("alembic_version")
                observer.rollback()
                holder.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                holder.commit()
                _finish(procs)
    finally:
        engine.dispose()
    assert _version_rows(pg_url) == [head_revision()]
    with Store.open(pg_url) as store:
        assert schema_is_current(store.engine)


# --- the already-migrated path ---------------------------------------------------------------


@pytest.mark.postgres
def test_an_already_migrated_store_opens_without_the_migration_lock(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held elsewhere (a stuck process): opening a current store must not wait for it.
    # lock_timeout (through libpq's PGOPTIONS) turns a wait into an error, never a hang.
    with Store.open(pg_url):
        pass
    engine = sa.create_engine(pg_url, poolclass=NullPool)
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            holder.commit()
            monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=2000")
            with Store.open(pg_url) as store:
                assert store.list_providers() == []
    finally:
        engine.dispose()


def test_an_already_migrated_sqlite_store_does_not_touch_the_lock_file(sqlite_url: str) -> None:
    with Store.open(sqlite_url):
        pass
    lock_path = migration_lock_path(make_engine(sqlite_url))
    assert lock_path.exists()  # the first open migrated under the lock
    lock_path.unlink()
    with Store.open(sqlite_url) as store:
        assert store.list_providers() == []
    assert not lock_path.exists()


# --- 0003: the usage tables join the migrated schema -----------------------------------------


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


@pytest.fixture
def at_0002(db_url: str) -> Iterator[sa.Engine]:
    """A store as the revision before the usage tables left it."""
    engine = make_engine(db_url)
    migrate(engine, "0002")
    assert _version_rows(db_url) == ["0002"]
    assert not {"usage", "usage_rate_periods"} & _tables(engine)
    yield engine
    engine.dispose()


def test_a_store_at_the_previous_head_gains_the_usage_tables(
    at_0002: sa.Engine, db_url: str
) -> None:
    with Store.open(db_url) as store:
        assert schema_is_current(store.engine)
    assert {"usage", "usage_rate_periods"} <= _tables(at_0002)
    assert _diff(at_0002) == []  # exactly what the schema declares
    assert load_usage(at_0002, calls({"input": 3})) == 1


def test_usage_tables_made_by_create_all_are_kept_with_their_rows(
    at_0002: sa.Engine, db_url: str
) -> None:
    # What hubkit.usage.sql's create_all made before 0003 (the same definitions), with rows
    # in it, and one index lost: the upgrade keeps the tables and adds only what is missing.
    old = sa.MetaData()
    usage = usage_table.to_metadata(old)
    periods = rate_periods_table.to_metadata(old)
    old.create_all(at_0002)
    with at_0002.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_usage_user_time"))
        conn.execute(
            usage.insert(),
            [{"time": dt.datetime(2025, 1, 1), "user": "u1", "provider": "openai",
              "model": "chat", "type": "chatCompletion", "input_tokens": 1_000}],
        )  # fmt: skip
        conn.execute(
            periods.insert(),
            [{"provider": "openai", "model": "chat", "type": "chatCompletion",
              "input_rate": Decimal("0.002"), "output_rate": Decimal("0.008")}],
        )  # fmt: skip
    with Store.open(db_url) as store:
        assert schema_is_current(store.engine)
    assert "ix_usage_user_time" in {ix["name"] for ix in sa.inspect(at_0002).get_indexes("usage")}
    assert _diff(at_0002) == []
    totals = usage_totals(at_0002)
    assert (totals.calls, totals.calls_unsupported) == (1, 0)
    assert totals.credits == 2  # 1,000 tokens × 0.002, priced by the kept rate period


def test_a_foreign_usage_table_stops_the_upgrade(at_0002: sa.Engine, db_url: str) -> None:
    with at_0002.begin() as conn:
        conn.execute(sa.text("CREATE TABLE usage (id INTEGER PRIMARY KEY, note VARCHAR(20))"))
    with pytest.raises(StorageError, match=r"table 'usage' that hubkit did not make.*'model'"):
        Store.open(db_url)
    assert _version_rows(db_url) == ["0002"]  # nothing half-done
    assert [c["name"] for c in sa.inspect(at_0002).get_columns("usage")] == ["id", "note"]


def test_downgrading_0003_drops_the_usage_tables_and_upgrading_brings_them_back(
    at_0002: sa.Engine, db_url: str
) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(engine_module.__file__).parent / "migrations"))
    migrate(at_0002)
    with at_0002.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert not {"usage", "usage_rate_periods"} & _tables(at_0002)
    assert _version_rows(db_url) == ["0002"]
    migrate(at_0002)
    assert {"usage", "usage_rate_periods"} <= _tables(at_0002)
    assert _diff(at_0002) == []
