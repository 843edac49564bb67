"""The job lock: a lease row in job_locks, on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from _jobs import seed
from sqlalchemy import update
from sqlalchemy.orm import Session

import hubkit.jobs
from hubkit.errors import JobError, LockHeldError
from hubkit.jobs.lock import Lease
from hubkit.store import Store
from hubkit.store.schema import JobLockRow
from hubkit.store.types import utcnow

# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [pytest.mark.soak, pytest.mark.store("sqlite", "postgres")]


def expire(store: Store, name: str = "rates") -> None:
    """What a dead holder leaves behind: a lease nobody renews, now past its expiry."""
    with Session(store.engine) as session, session.begin():
        session.execute(
            update(JobLockRow)
            .where(JobLockRow.name == name)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_one_holder_at_a_time_and_the_second_learns_since_when(store: Store) -> None:
    first = Lease(store, run_id="run-1")
    first.acquire()
    second = Lease(store, run_id="run-2")
    with pytest.raises(LockHeldError) as info:
        second.acquire()
    message = str(info.value)
    assert message.startswith("another run holds the lock since ")
    assert "(run run-1)" in message and "--wait" in message
    assert info.value.holder == first.holder
    first.release()
    second.acquire()
    assert second.current() is not None and second.current().run_id == "run-2"
    second.release()
    assert second.current() is None


def test_an_expired_lease_is_taken_over_once(store: Store) -> None:
    dead = Lease(store, run_id="dead-run")
    dead.acquire()
    expire(store)
    heir = Lease(store, run_id="heir")
    heir.acquire()
    assert heir.took_over is not None and heir.took_over.run_id == "dead-run"
    # the dead holder, waking up, finds out instead of writing on
    with pytest.raises(JobError, match="lost the 'rates' lock"):
        dead.renew()
    late = Lease(store, run_id="late")
    with pytest.raises(LockHeldError, match=r"\(run heir\)"):
        late.acquire()
    dead.release()  # releasing a lease one no longer holds leaves the new holder alone
    assert heir.current().holder == heir.holder


def test_renewing_pushes_the_expiry_forward(store: Store) -> None:
    lease = Lease(store, seconds=60)
    lease.acquire()
    before = lease.current().expires_at
    expire(store)
    lease.renew()
    after = lease.current()
    assert after.expires_at > utcnow() and after.holder == lease.holder
    assert before > utcnow()
    lease.release()


def test_wait_gives_up_after_its_timeout(store: Store) -> None:
    Lease(store, run_id="busy").acquire()
    announced = []
    with pytest.raises(LockHeldError):
        Lease(store).acquire(wait=True, timeout=1.0, poll_seconds=0.05, on_wait=announced.append)
    assert [info.run_id for info in announced] == ["busy"]


def test_wait_takes_the_lock_once_it_is_released(store: Store) -> None:
    holder = Lease(store, run_id="busy")
    holder.acquire()
    waiter = Lease(store, run_id="next")
    released = threading.Event()

    def on_wait(_info: object) -> None:
        holder.release()  # the holder finishes while the waiter waits
        released.set()

    waiter.acquire(wait=True, timeout=30, poll_seconds=0.05, on_wait=on_wait)
    assert released.is_set() and waiter.current().run_id == "next"


def test_operators_edits_are_not_blocked_by_a_held_lease(store: Store) -> None:
    seed(store)
    Lease(store, run_id="long-job").acquire()
    rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
    edited = store.update_rate(rate.id, rate.version, input_rate="0.5", reason="operator")
    assert edited.input_rate == Decimal("0.5")


def test_kept_alive_renews_in_the_background(store: Store) -> None:
    lease = Lease(store, seconds=0.3)
    lease.acquire()
    with lease.kept_alive():
        expire(store)
        # within a renewal period (0.1 s) the thread pushes the expiry into the future again
        deadline = utcnow() + timedelta(seconds=20)
        while lease.current().expires_at < utcnow() and utcnow() < deadline:
            threading.Event().wait(0.02)
        assert lease.current().expires_at > utcnow()
    lease.release()


def test_the_jobs_package_reaches_the_database_only_through_the_store() -> None:
    # The lock and run-record SQL lives in hubkit.store.jobs; no jobs module imports
    # SQLAlchemy (or the store's tables) itself.
    package = Path(hubkit.jobs.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] == "sqlalchemy" or name == "hubkit.store.schema"
            ]
    assert len(list(package.glob("*.py"))) > 5  # the scan saw the package
    assert offenders == []
