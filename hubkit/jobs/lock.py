"""The job lock: a lease row in ``job_locks`` that works the same on SQLite and PostgreSQL.

Taking it is one INSERT that fails on the primary key when someone holds it; a lease
whose ``expires_at`` has passed (its holder died without releasing it) is taken over with
one ``UPDATE … WHERE expires_at < now``, which only one contender can win. A live holder
renews the lease (a background thread, every third of its lifetime) and deletes the row
when done. Nothing else in hubkit looks at this table: operators' own edits in notebooks,
widgets or the CLI are never blocked, and a job's writes stay safe against them through
the store's version checks.

The clock is the callers' (UTC): hosts sharing a database need clocks closer together
than the lease time (``HUBKIT_JOB_LEASE_SECONDS``, default 120).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubkit.errors import JobError, LockHeldError, ValidationError
from hubkit.store.schema import JobLockRow
from hubkit.store.types import utcnow

log = logging.getLogger(__name__)

#: One lock for every job that writes rates: a bulk update and a catalog sync must not
#: interleave either.
RATES_LOCK = "rates"
LEASE_ENV = "HUBKIT_JOB_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 120.0


def lease_seconds() -> float:
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValidationError(f"{LEASE_ENV} must be a number of seconds > 0, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds (or held) a lock, for messages and reports."""

    name: str
    holder: str
    run_id: str | None
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        return (
            f"{self.holder}" + (f" (run {self.run_id})" if self.run_id else "")
            + f" since {_fmt(self.acquired_at)}, lease until {_fmt(self.expires_at)}"
        )  # fmt: skip


def _fmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


def _rowcount(result: Result[Any]) -> int:
    # an UPDATE's result is a CursorResult (it has a rowcount); Session types it as Result
    return cast("CursorResult[Any]", result).rowcount


def new_holder_id() -> str:
    """Host, process and a random part: unique per run, readable in messages."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One contender for the lock ``name``; ``holder`` identifies it in the table."""

    def __init__(
        self,
        engine: Engine,
        name: str = RATES_LOCK,
        *,
        run_id: str | None = None,
        holder: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.run_id = run_id
        self.holder = holder or new_holder_id()
        self.seconds = seconds if seconds is not None else lease_seconds()
        #: the expired lease this one replaced, if any (for the report)
        self.took_over: LeaseInfo | None = None
        self.held = False

    # ---- taking and giving back ---------------------------------------------------------
    def try_acquire(self) -> LeaseInfo | None:
        """Take the lock if free or expired; otherwise return who holds it."""
        now = utcnow()
        expires = now + timedelta(seconds=self.seconds)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    JobLockRow(
                        name=self.name,
                        holder=self.holder,
                        run_id=self.run_id,
                        acquired_at=now,
                        expires_at=expires,
                    )
                )
            self.held = True
            return None
        except IntegrityError:
            pass  # held, or left behind by a dead holder: try a takeover
        with Session(self.engine) as session, session.begin():
            previous = self._current(session)
            taken = _rowcount(session.execute(
                update(JobLockRow)
                .where(JobLockRow.name == self.name, JobLockRow.expires_at < now)
                .values(holder=self.holder, run_id=self.run_id, acquired_at=now, expires_at=expires)
            ))  # fmt: skip
        if taken == 1:
            self.held = True
            self.took_over = previous
            if previous is not None:
                log.warning("took over the expired lease of %s", previous.describe())
            return None
        current = self.current()
        if current is None:  # released between our two statements: try once more
            return self.try_acquire()
        return current

    def acquire(
        self,
        *,
        wait: bool = False,
        timeout: float | None = None,
        poll_seconds: float = 1.0,
        on_wait: Callable[[LeaseInfo], None] | None = None,
    ) -> None:
        """Take the lock, or raise LockHeldError (at once, or after ``timeout`` with ``wait``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if not wait or out_of_time:
                raise LockHeldError(
                    f"another run holds the lock since {_fmt(holder.acquired_at)}: "
                    f"{holder.describe()}; try again later, or pass --wait to queue behind it",
                    holder=holder.holder,
                    since=holder.acquired_at,
                )
            if not announced and on_wait is not None:
                on_wait(holder)
                announced = True
            time.sleep(poll_seconds)

    def renew(self) -> None:
        """Push the expiry forward; JobError if the lease was lost (expired and taken over)."""
        expires = utcnow() + timedelta(seconds=self.seconds)
        with Session(self.engine) as session, session.begin():
            count = _rowcount(session.execute(
                update(JobLockRow)
                .where(JobLockRow.name == self.name, JobLockRow.holder == self.holder)
                .values(expires_at=expires)
            ))  # fmt: skip
        if count != 1:
            self.held = False
            raise JobError(
                f"this run lost the {self.name!r} lock (its lease expired and another run took "
                "it over); nothing more is written by this run"
            )
        self.held = True

    def release(self) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(JobLockRow).where(
                    JobLockRow.name == self.name, JobLockRow.holder == self.holder
                )
            )
        self.held = False

    # ---- reading ----------------------------------------------------------------------
    def current(self) -> LeaseInfo | None:
        with Session(self.engine) as session:
            return self._current(session)

    def _current(self, session: Session) -> LeaseInfo | None:
        row = session.scalars(select(JobLockRow).where(JobLockRow.name == self.name)).first()
        if row is None:
            return None
        return LeaseInfo(row.name, row.holder, row.run_id, row.acquired_at, row.expires_at)

    # ---- keeping it ---------------------------------------------------------------------
    @contextmanager
    def kept_alive(self) -> Iterator[Lease]:
        """Renew in a background thread while the block runs (a long job keeps its lease)."""
        stop = threading.Event()

        def renew_until_stopped() -> None:
            while not stop.wait(self.seconds / 3):
                try:
                    self.renew()
                except Exception as exc:  # lost or database down: the job checks before writing
                    log.warning("could not renew the job lease: %s", exc)

        thread = threading.Thread(target=renew_until_stopped, name="hubkit-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)
