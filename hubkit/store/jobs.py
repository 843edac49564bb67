"""The job tables: the lease lock (``job_locks``) and the run records (``job_runs``).

:mod:`hubkit.jobs` decides *when* to take the lock, how long to wait and what a run's
summary says; the SQL that does it lives here, behind ``Store.jobs`` (a :class:`JobTables`),
so the store stays the one door to the database.

The lease works the same on SQLite and PostgreSQL. Taking it is one INSERT that fails on the
primary key when someone holds it; a lease whose ``expires_at`` has passed (its holder died
without releasing it) is taken over with one ``UPDATE … WHERE expires_at < now``, which only
one contender can win. A live holder renews it and deletes the row when done. Nothing else in
hubkit looks at this table: operators' own edits are never blocked by it.

Each method is its own short transaction, apart from any rate write, and lets the
database's own errors through unchanged (the job runner reports them as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubkit.store.schema import JobLockRow, JobRunRow, RateHistoryRow
from hubkit.store.types import utcnow


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
            + f" since {utc_text(self.acquired_at)}, lease until {utc_text(self.expires_at)}"
        )  # fmt: skip


def utc_text(at: datetime) -> str:
    """A lease time as messages show it (UTC, to the second)."""
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class LeaseAttempt:
    """What one try for a lock found: taken (perhaps from an expired holder), or held."""

    taken: bool
    #: taken: the expired lease this one replaced, if any; not taken: the live holder
    other: LeaseInfo | None


@dataclass(frozen=True, slots=True)
class JobRunRecord:
    """One ``job_runs`` row as stored (status as text: the job layer parses it)."""

    id: str
    job: str
    status: str
    parameters: Mapping[str, Any]
    summary: Mapping[str, Any]
    report_dir: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None


def _lease_info(row: JobLockRow) -> LeaseInfo:
    return LeaseInfo(row.name, row.holder, row.run_id, row.acquired_at, row.expires_at)


def _run_record(row: JobRunRow) -> JobRunRecord:
    return JobRunRecord(
        id=row.id,
        job=row.job,
        status=row.status,
        parameters=row.parameters or {},
        summary=row.summary or {},
        report_dir=row.report_dir,
        actor=row.actor,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _rowcount(result: Result[Any]) -> int:
    # An UPDATE's result is a CursorResult (its rowcount is the rows matched); Session's
    # execute() is typed with the base class.
    return cast("CursorResult[Any]", result).rowcount


#: ``ending(record, history_rows, now)`` → the summary a dead run's row gets
DeadRunEnding = Callable[[JobRunRecord, int, datetime], Mapping[str, Any]]


class JobTables:
    """The lease and run-record statements over one engine (``Store.jobs``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- the lease ----------------------------------------------------------------------
    def try_lease(
        self, name: str, *, holder: str, run_id: str | None, seconds: float
    ) -> LeaseAttempt:
        """Take lock ``name`` for ``seconds`` if it is free or its lease expired."""
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    JobLockRow(
                        name=name,
                        holder=holder,
                        run_id=run_id,
                        acquired_at=now,
                        expires_at=expires,
                    )
                )
            return LeaseAttempt(taken=True, other=None)
        except IntegrityError:
            pass  # held, or left behind by a dead holder: try a takeover
        with Session(self.engine) as session, session.begin():
            previous = self._lease(session, name)
            taken = _rowcount(
                session.execute(
                    update(JobLockRow)
                    .where(JobLockRow.name == name, JobLockRow.expires_at < now)
                    .values(holder=holder, run_id=run_id, acquired_at=now, expires_at=expires)
                )
            )
        if taken == 1:
            return LeaseAttempt(taken=True, other=previous)
        current = self.lease(name)
        if current is None:  # released between our two statements: try once more
            return self.try_lease(name, holder=holder, run_id=run_id, seconds=seconds)
        return LeaseAttempt(taken=False, other=current)

    def renew_lease(self, name: str, *, holder: str, seconds: float) -> bool:
        """Push ``holder``'s expiry ``seconds`` from now; False if it no longer holds it."""
        expires = utcnow() + timedelta(seconds=seconds)
        with Session(self.engine) as session, session.begin():
            count = _rowcount(
                session.execute(
                    update(JobLockRow)
                    .where(JobLockRow.name == name, JobLockRow.holder == holder)
                    .values(expires_at=expires)
                )
            )
        return count == 1

    def release_lease(self, name: str, *, holder: str) -> None:
        """Give the lock back; a lease taken over by someone else is left to them."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(JobLockRow).where(JobLockRow.name == name, JobLockRow.holder == holder)
            )

    def lease(self, name: str) -> LeaseInfo | None:
        """The lock's current (or expired, not yet taken over) lease."""
        with Session(self.engine) as session:
            return self._lease(session, name)

    @staticmethod
    def _lease(session: Session, name: str) -> LeaseInfo | None:
        row = session.scalars(select(JobLockRow).where(JobLockRow.name == name)).first()
        return None if row is None else _lease_info(row)

    # ---- the run records ----------------------------------------------------------------
    def save_run(
        self,
        run_id: str,
        *,
        job: str,
        status: str,
        actor: str,
        parameters: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        report_dir: str | None = None,
        started_at: datetime | None = None,
        finished: bool = False,
    ) -> None:
        """Insert or update the run's row; ``None`` leaves a stored field as it is.

        ``parameters`` and ``summary`` must already be JSON values.
        """
        with Session(self.engine) as session, session.begin():
            row = session.get(JobRunRow, run_id)
            if row is None:
                row = JobRunRow(id=run_id, job=job, actor=actor, started_at=started_at or utcnow())
                session.add(row)
            row.status = status
            if parameters is not None:
                row.parameters = dict(parameters)
            if summary is not None:
                row.summary = dict(summary)
            if report_dir is not None:
                row.report_dir = report_dir
            if finished:
                row.finished_at = utcnow()

    def run(self, run_id: str) -> JobRunRecord | None:
        with Session(self.engine) as session:
            row = session.get(JobRunRow, run_id)
            return None if row is None else _run_record(row)

    def runs(self, *, limit: int = 50) -> list[JobRunRecord]:
        """Newest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(JobRunRow)
                .order_by(JobRunRow.started_at.desc(), JobRunRow.id.desc())
                .limit(limit)
            )
            return [_run_record(r) for r in rows]

    def add_to_summary(self, run_id: str, entries: Mapping[str, Any]) -> None:
        """Merge ``entries`` (JSON values) into the run's summary; no row, nothing done."""
        with Session(self.engine) as session, session.begin():
            row = session.get(JobRunRow, run_id)
            if row is not None:
                row.summary = {**(row.summary or {}), **entries}

    def end_dead_runs(
        self, *, running: str, ended: str, ending: DeadRunEnding
    ) -> list[JobRunRecord]:
        """Give every ``running`` row without a live lease the status ``ended``; the rows.

        A run holds the job lock for as long as it runs, so a ``running`` row whose lease
        is gone or expired belongs to a process that died. ``ending`` writes its summary
        (a JSON value) from the row, the number of history rows carrying its id (were its
        rates committed?) and the time found; all in one transaction.
        """
        now = utcnow()
        with Session(self.engine) as session, session.begin():
            live = {
                run_id
                for run_id, expires in session.execute(
                    select(JobLockRow.run_id, JobLockRow.expires_at)
                )
                if run_id and expires >= now
            }
            rows = [
                r
                for r in session.scalars(select(JobRunRow).where(JobRunRow.status == running))
                if r.id not in live
            ]
            ended_rows = []
            for row in rows:
                written = session.scalar(
                    select(func.count()).select_from(RateHistoryRow)
                    .where(RateHistoryRow.job_run_id == row.id)
                )  # fmt: skip
                row.summary = dict(ending(_run_record(row), int(written or 0), now))
                row.status = ended
                row.finished_at = now
                ended_rows.append(_run_record(row))
        return ended_rows
