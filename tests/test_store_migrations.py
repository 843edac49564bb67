"""Migrations across processes: two ``python -m hubkit init`` at once migrate once.

Real separate processes on a real SQLite file and a real PostgreSQL database. The test
holds the migration lock itself, starts two ``init`` processes, and proceeds only once the
operating system (``/proc/locks``) or PostgreSQL (``pg_locks``) shows both *blocked on
that lock* — no timing: a process that finishes while the lock is held fails the test.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from hubkit.store import Store
from hubkit.store.engine import (
    MIGRATION_LOCK_KEY,
    _head_revision,
    make_engine,
    migration_lock_path,
    schema_is_current,
)

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
    assert _version_rows(sqlite_url) == [_head_revision()]
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
    assert _version_rows(pg_url) == [_head_revision()]
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
