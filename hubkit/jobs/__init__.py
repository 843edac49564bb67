"""Scheduled rate jobs: papermill notebooks that reprice rates, guarded, atomic, reported.

- :func:`bulk_rate_update` / :func:`price_catalog_sync` / :func:`apply_due_proposals` —
  the jobs themselves (what the
  notebooks in ``notebooks/jobs/`` call); each returns a :class:`JobResult`.
- :func:`run_job` — run a job notebook through papermill into ``reports/<time>-<job>/``
  (what ``python -m hubkit job run`` does); returns a :class:`RunOutcome`.
- :class:`JobStatus` — how a run ended and its exit code (the one table of them).
- :class:`Lease` — the job lock (a lease row in ``job_locks``).
- :func:`prune` / :func:`rebuild_index` — the ``reports/`` folder.
"""

from __future__ import annotations

from hubkit.jobs.bulk import bulk_rate_update, run_bulk_rate_update
from hubkit.jobs.catalog_sync import price_catalog_sync, run_price_catalog_sync
from hubkit.jobs.context import JobResult
from hubkit.jobs.lock import RATES_LOCK, Lease, LeaseInfo
from hubkit.jobs.params import ApplyDueParams, BulkRateParams, CatalogSyncParams
from hubkit.jobs.proposals import apply_due_proposals, run_apply_due_proposals
from hubkit.jobs.reports import prune, rebuild_index
from hubkit.jobs.runner import JOBS, RunOutcome, run_job
from hubkit.jobs.status import JobStatus

__all__ = [
    "JOBS",
    "RATES_LOCK",
    "ApplyDueParams",
    "BulkRateParams",
    "CatalogSyncParams",
    "JobResult",
    "JobStatus",
    "Lease",
    "LeaseInfo",
    "RunOutcome",
    "apply_due_proposals",
    "bulk_rate_update",
    "price_catalog_sync",
    "prune",
    "rebuild_index",
    "run_apply_due_proposals",
    "run_bulk_rate_update",
    "run_job",
    "run_price_catalog_sync",
]
