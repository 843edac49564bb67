"""Job run records: one row per run that took the lock, for the trail.

The rows live in the store's ``job_runs`` table (:class:`hubkit.store.jobs.JobTables`
reads and writes them); here they become :class:`JobRunInfo` values with a
:class:`JobStatus`, and a dead run gets its ending written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hubkit._files import SUMMARY, jsonable, write_summary
from hubkit.errors import NotFoundError
from hubkit.jobs.status import JobStatus
from hubkit.store import Store
from hubkit.store.jobs import JobRunRecord


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


def _info(record: JobRunRecord) -> JobRunInfo:
    return JobRunInfo(
        id=record.id,
        job=record.job,
        status=JobStatus.parse(record.status),
        parameters=record.parameters,
        summary=record.summary,
        report_dir=record.report_dir,
        actor=record.actor,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def record_run(
    store: Store,
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
    store.jobs.save_run(
        run_id,
        job=job,
        status=status.value,
        actor=actor,
        parameters=None if parameters is None else jsonable(dict(parameters)),
        summary=None if summary is None else jsonable(dict(summary)),
        report_dir=report_dir,
        started_at=started_at,
        finished=finished,
    )


def get_run(store: Store, run_id: str) -> JobRunInfo:
    record = store.jobs.run(run_id)
    if record is None:
        raise NotFoundError(f"no job run {run_id!r}; list runs with `python -m hubkit job list`")
    return _info(record)


def list_runs(store: Store, *, limit: int = 50) -> list[JobRunInfo]:
    """Newest first."""
    return [_info(r) for r in store.jobs.runs(limit=limit)]


def note_revert(store: Store, run_id: str, note: Mapping[str, Any]) -> None:
    """Remember on the run's row that (and when, by whom) it was reverted."""
    store.jobs.add_to_summary(run_id, {"reverted": jsonable(dict(note))})


def mark_interrupted(store: Store) -> list[str]:
    """Mark every run still ``running`` without a live lease as ``interrupted``; its ids.

    A run holds the job lock for as long as it runs (its lease is renewed in the
    background), so a ``running`` row whose lease is gone or expired belongs to a process
    that died (killed, machine lost) before it could write its ending: without this it
    would stay ``running`` for ever and cron would never hear of it. The summary says
    whether the run's rates were committed (history rows carry its id) and what to do.
    """
    ended = store.jobs.end_dead_runs(
        running=JobStatus.RUNNING.value, ended=JobStatus.INTERRUPTED.value, ending=_interrupted
    )
    for record in ended:
        _write_missing_summary(record.report_dir, record.summary)
    return [record.id for record in ended]


def _interrupted(run: JobRunRecord, written: int, now: datetime) -> dict[str, Any]:
    reason = (
        "interrupted: the run's process ended without recording how (killed, or "
        "its machine lost) and its lease expired; "
        + (
            f"its rate changes were committed ({written} history rows with this job "
            f"run id): check them with `python -m hubkit history --job-run {run.id}`, "
            f"undo with `python -m hubkit job revert {run.id}`"
            if written
            else "nothing of it was committed: run the job again"
        )
    )
    summary = dict(run.summary)
    summary.update({
        "job": run.job, "run_id": run.id, "status": JobStatus.INTERRUPTED.value,
        "exit_code": JobStatus.INTERRUPTED.exit_code, "reason": reason,
        "history_rows": written, "detected_at": now,
    })  # fmt: skip
    stored: dict[str, Any] = jsonable(summary)
    return stored


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
