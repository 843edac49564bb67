"""The ``job_runs`` table: one row per run that took the lock, for the trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hubkit.errors import NotFoundError
from hubkit.jobs.reports import jsonable
from hubkit.jobs.status import JobStatus
from hubkit.store.schema import JobRunRow
from hubkit.store.types import utcnow


@dataclass(frozen=True, slots=True)
class JobRunInfo:
    id: str
    job: str
    status: JobStatus
    parameters: Mapping[str, Any]
    summary: Mapping[str, Any]
    report_dir: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None


def _info(row: JobRunRow) -> JobRunInfo:
    return JobRunInfo(
        id=row.id,
        job=row.job,
        status=JobStatus.parse(row.status),
        parameters=row.parameters or {},
        summary=row.summary or {},
        report_dir=row.report_dir,
        actor=row.actor,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def record_run(
    engine: Engine,
    run_id: str,
    *,
    job: str,
    status: JobStatus,
    actor: str,
    parameters: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    report_dir: str | None = None,
    started_at: datetime | None = None,
    finished: bool = False,
) -> None:
    """Insert or update the run's row (its own short transaction, apart from the rates)."""
    with Session(engine) as session, session.begin():
        row = session.get(JobRunRow, run_id)
        if row is None:
            row = JobRunRow(id=run_id, job=job, actor=actor, started_at=started_at or utcnow())
            session.add(row)
        row.status = status.value
        if parameters is not None:
            row.parameters = jsonable(dict(parameters))
        if summary is not None:
            row.summary = jsonable(dict(summary))
        if report_dir is not None:
            row.report_dir = report_dir
        if finished:
            row.finished_at = utcnow()


def get_run(engine: Engine, run_id: str) -> JobRunInfo:
    with Session(engine) as session:
        row = session.get(JobRunRow, run_id)
        if row is None:
            raise NotFoundError(
                f"no job run {run_id!r}; list runs with `python -m hubkit job list`"
            )
        return _info(row)


def list_runs(engine: Engine, *, limit: int = 50) -> list[JobRunInfo]:
    """Newest first."""
    with Session(engine) as session:
        rows = session.scalars(
            select(JobRunRow)
            .order_by(JobRunRow.started_at.desc(), JobRunRow.id.desc())
            .limit(limit)
        )
        return [_info(r) for r in rows]


def note_revert(engine: Engine, run_id: str, note: Mapping[str, Any]) -> None:
    """Remember on the run's row that (and when, by whom) it was reverted."""
    with Session(engine) as session, session.begin():
        row = session.get(JobRunRow, run_id)
        if row is not None:
            summary = dict(row.summary or {})
            summary["reverted"] = jsonable(dict(note))
            row.summary = summary
