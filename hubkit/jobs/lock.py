"""The job lock: a lease in ``job_locks``, taken, renewed and given back through the store.

The statements (one INSERT to take a free lock, one ``UPDATE … WHERE expires_at < now`` to
take over the lease of a holder that died, so only one contender wins) are
:class:`hubkit.store.jobs.JobTables`'s; this module decides how long a lease lasts, how
long to wait for one, and renews it in a background thread (every third of its
lifetime) while a job runs. Nothing else in hubkit looks at the lock: operators' own edits
in notebooks, widgets or the CLI are never blocked, and a job's writes stay safe against
them through the store's version checks.

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

from hubkit.errors import JobError, LockHeldError, ValidationError
from hubkit.store import Store
from hubkit.store.jobs import LeaseInfo, utc_text

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "LEASE_ENV",
    "RATES_LOCK",
    "Lease",
    "LeaseInfo",
    "lease_seconds",
    "new_holder_id",
]

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


def new_holder_id() -> str:
    """Host, process and a random part: unique per run, readable in messages."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One contender for the lock ``name`` in ``store``; ``holder`` identifies it in the table."""

    def __init__(
        self,
        store: Store,
        name: str = RATES_LOCK,
        *,
        run_id: str | None = None,
        holder: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self.store = store
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
        attempt = self.store.jobs.try_lease(
            self.name, holder=self.holder, run_id=self.run_id, seconds=self.seconds
        )
        if not attempt.taken:
            return attempt.other
        self.held = True
        if attempt.other is not None:
            self.took_over = attempt.other
            log.warning("took over the expired lease of %s", attempt.other.describe())
        return None

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
                    f"another run holds the lock since {utc_text(holder.acquired_at)}: "
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
        if not self.store.jobs.renew_lease(self.name, holder=self.holder, seconds=self.seconds):
            self.held = False
            raise JobError(
                f"this run lost the {self.name!r} lock (its lease expired and another run took "
                "it over); nothing more is written by this run"
            )
        self.held = True

    def release(self) -> None:
        self.store.jobs.release_lease(self.name, holder=self.holder)
        self.held = False

    # ---- reading ----------------------------------------------------------------------
    def current(self) -> LeaseInfo | None:
        return self.store.jobs.lease(self.name)

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
