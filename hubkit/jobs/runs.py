"""The ``job_runs`` table: one row per run that took the lock, for the trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from hubkit._files import SUMMARY, jsonable, write_summary
from hubkit.errors import NotFoundError
from hubkit.jobs.status import JobStatus
from hubkit.store.schema import JobLockRow, JobRunRow, RateHistoryRow
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


def mark_interrupted(engine: Engine) -> list[str]:
    """Mark every run still ``running`` without a live lease as ``interrupted``; its ids.

    A run holds the job lock for as long as it runs (its lease is renewed in the
    background), so a ``running`` row whose lease is gone or expired belongs to a process
    that died (killed, machine lost) before it could write its ending: without this it
    would stay ``running`` for ever and cron would never hear of it. The summary says
    whether the run's rates were committed (history rows carry its id) and what to do.
    """
    now = utcnow()
    with Session(engine) as session, session.begin():
        live = {
            run_id
            for run_id, expires in session.execute(select(JobLockRow.run_id, JobLockRow.expires_at))
            if run_id and expires >= now
        }
        rows = [
            r
            for r in session.scalars(select(JobRunRow).where(JobRunRow.status == "running"))
            if r.id not in live
        ]
        marked = []
        for row in rows:
            written = session.scalar(
                select(func.count()).select_from(RateHistoryRow)
                .where(RateHistoryRow.job_run_id == row.id)
            )  # fmt: skip
            reason = (
                "interrupted: the run's process ended without recording how (killed, or "
                "its machine lost) and its lease expired; "
                + (
                    f"its rate changes were committed ({written} history rows with this job "
                    f"run id): check them with `python -m hubkit history --job-run {row.id}`, "
                    f"undo with `python -m hubkit job revert {row.id}`"
                    if written
                    else "nothing of it was committed: run the job again"
                )
            )
            summary = dict(row.summary or {})
            summary.update({
                "job": row.job, "run_id": row.id, "status": JobStatus.INTERRUPTED.value,
                "exit_code": JobStatus.INTERRUPTED.exit_code, "reason": reason,
                "history_rows": written, "detected_at": now,
            })  # fmt: skip
            row.status = JobStatus.INTERRUPTED.value
            row.summary = jsonable(summary)
            row.finished_at = now
            marked.append((row.id, row.report_dir, summary))
    for _, report_dir, summary in marked:
        _write_missing_summary(report_dir, summary)
    return [run_id for run_id, _, _ in marked]


def _write_missing_summary(report_dir: str | None, summary: Mapping[str, Any]) -> None:
    # The run folder got no summary.json from the dead process; give it the ending found.
    if not report_dir:
        return
    folder = Path(report_dir)
    if folder.is_dir() and not (folder / SUMMARY).exists():
        try:
            write_summary(folder, summary)
        except OSError:
            pass  # the row says it already; a read-only reports folder must not hide that
