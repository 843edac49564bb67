"""The apply-due-proposals job: apply every approved rate proposal whose time has come.

``notebooks/jobs/apply_due_proposals.ipynb`` calls :func:`run_apply_due_proposals`; the
work is :func:`hubkit.proposals.apply_due` (each proposal in one transaction, exactly once
however many runs race, history rows carrying the proposal id and this run's id). Stale
proposals (their rates moved since approval) are closed as expired, never applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from hubkit.jobs.context import JobResult, JobRun, Outcome, execute_job
from hubkit.jobs.params import ApplyDueParams
from hubkit.jobs.push import push_step
from hubkit.jobs.status import JobStatus
from hubkit.pricing import RateFilter
from hubkit.proposals import Proposal, apply_due, changes_frame
from hubkit.store import Store

JOB = "apply-due-proposals"


def apply_due_proposals(*, store: Store | None = None, **parameters: Any) -> JobResult:
    """Check ``parameters`` (as the notebook names them) and run the job."""
    return run_apply_due_proposals(ApplyDueParams.create(**parameters), store=store)


def run_apply_due_proposals(params: ApplyDueParams, *, store: Store | None = None) -> JobResult:
    return execute_job(JOB, params, _body, store=store)


def _frame(proposals: list[Proposal]) -> pd.DataFrame:
    parts = []
    for p in proposals:
        frame = changes_frame(p)
        frame.insert(0, "proposal_id", p.id)
        parts.append(frame)
    if not parts:
        return changes_frame([]).assign(proposal_id=pd.Series(dtype="int64"))
    return pd.concat(parts, ignore_index=True)


def _body(run: JobRun, params: ApplyDueParams) -> Outcome:
    store = run.store
    now = datetime.fromisoformat(params.now.replace("Z", "+00:00")) if params.now else None
    due = store.due_proposals(now)
    counts = {"due": len(due), "applied": 0, "already_applied": 0, "expired": 0, "failed": 0,
              "history_rows": 0}  # fmt: skip
    details: dict[str, Any] = {"dry_run": params.dry_run, "due": [p.summary() for p in due]}
    if params.dry_run:
        return Outcome(
            JobStatus.DRY_RUN,
            f"dry run: {len(due)} approved proposals are due; nothing was written "
            "(dry_run=False to apply them)",
            counts=counts, changes=_frame(due), details=details,
        )  # fmt: skip
    run.check_lease()
    report = apply_due(store, now=now, job_run_id=run.run_id)
    run.committed = bool(report.applied)
    counts.update(
        applied=len(report.applied), already_applied=len(report.already_applied),
        expired=len(report.expired), failed=len(report.failed),
        history_rows=len(report.history_ids),
    )  # fmt: skip
    details["lines"] = report.lines()
    applied = [store.get_proposal(r.proposal_id) for r in report.applied]
    if report.failed:
        status = JobStatus.FAILED
    elif report.applied:
        status = JobStatus.APPLIED
    else:
        status = JobStatus.UNCHANGED
    reason = "; ".join(report.lines())
    if params.push_to_hub and report.applied:
        status, reason = push_step(store, run.run_id, RateFilter(), status, reason, details)
    return Outcome(status, reason, counts=counts, changes=_frame(applied), details=details)
