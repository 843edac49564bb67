"""``python -m hubkit job run``: one job notebook through papermill, into its run folder.

The runner checks the parameters (exit 2 before any kernel starts), takes the job lock
(exit 75 at once, or waits with ``wait``), keeps the lease alive while papermill executes
the notebook into ``reports/<UTC timestamp>-<job>/<job>.ipynb``, renders it to HTML, and
reads the run's ending from the summary.json the notebook wrote. If the notebook died
before writing one (a kernel crash, a bad parameter caught in the notebook), the runner
writes it, so every run folder says how the run ended and why.

The kernel learns its run id, folder and lease from ``HUBKIT_JOB_RUN_ID``,
``HUBKIT_JOB_RUN_DIR`` and ``HUBKIT_JOB_LEASE_HOLDER`` (see :mod:`hubkit.jobs.context`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubkit import _files
from hubkit.config import PROJECT_ROOT, get_settings
from hubkit.errors import HubkitError, LockHeldError, ValidationError
from hubkit.jobs import reports
from hubkit.jobs.context import ENV_LEASE_HOLDER, ENV_RUN_DIR, ENV_RUN_ID
from hubkit.jobs.lock import Lease, LeaseInfo
from hubkit.jobs.params import (
    APPLY_DUE_DEFAULTS,
    BULK_DEFAULTS,
    FINANCE_DEFAULTS,
    SYNC_DEFAULTS,
    ApplyDueParams,
    BulkRateParams,
    CatalogSyncParams,
    FinanceMonthParams,
    JobParams,
)
from hubkit.jobs.runs import get_run, mark_interrupted, record_run
from hubkit.jobs.status import FinishedRun, JobStatus
from hubkit.store import Store
from hubkit.store.types import utcnow

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks" / "jobs"
KERNEL = "python3"


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    notebook: str  # file name in notebooks/jobs/
    create: Callable[..., JobParams]
    defaults: Mapping[str, Any]

    @property
    def path(self) -> Path:
        return NOTEBOOK_DIR / self.notebook


JOBS: dict[str, JobSpec] = {
    "bulk-rate-update": JobSpec(
        "bulk-rate-update", "bulk_rate_update.ipynb", BulkRateParams.create, BULK_DEFAULTS
    ),
    "price-catalog-sync": JobSpec(
        "price-catalog-sync", "price_catalog_sync.ipynb", CatalogSyncParams.create, SYNC_DEFAULTS
    ),
    "finance-month": JobSpec(
        "finance-month", "finance_month.ipynb", FinanceMonthParams.create, FINANCE_DEFAULTS
    ),
    "apply-due-proposals": JobSpec(
        "apply-due-proposals",
        "apply_due_proposals.ipynb",
        ApplyDueParams.create,
        APPLY_DUE_DEFAULTS,
    ),  # fmt: skip
}


@dataclass(frozen=True)
class RunOutcome(FinishedRun):
    """How a runner-driven run ended; ``exit_code`` is the process's."""


def job_name(name: str) -> str:
    """A job's name as the runner knows it: ``finance_month`` (the notebook's spelling) is
    ``finance-month``."""
    return name.strip().replace("_", "-")


def job_spec(name: str) -> JobSpec:
    try:
        return JOBS[job_name(name)]
    except KeyError:
        raise ValidationError(
            f"no job {name!r}; jobs: {', '.join(sorted(JOBS))}", field="job", value=name
        ) from None


def cli_value(text: str) -> Any:
    """``-p name value`` text → what the notebook gets: booleans and None resolved,
    everything else kept as text (numbers are read exactly from text by the job)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    return text


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """The kernel papermill starts inherits os.environ: set the run's variables for it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class _Run:
    """The runner's side of one run: folder, clock, and the final summary."""

    def __init__(self, spec: JobSpec, parameters: Mapping[str, Any]) -> None:
        self.spec = spec
        self.parameters = dict(parameters)
        self.started_at = utcnow()
        self.clock = time.monotonic()
        self.run_dir = _files.new_run_folder(get_settings().reports_dir, spec.name)
        self.run_id = self.run_dir.name
        self.notebook = self.run_dir / f"{spec.name}.ipynb"

    def finish(
        self,
        status: JobStatus,
        reason: str,
        *,
        store: Store | None = None,
        error: str = "",
        lease: Lease | None = None,
    ) -> RunOutcome:
        summary = _files.read_summary(self.run_dir)
        if summary is None or JobStatus.parse(summary.get("status")) is JobStatus.RUNNING:
            summary = {
                "job": self.spec.name,
                "run_id": self.run_id,
                "job_run_id": None,
                "parameters": {k: v for k, v in self.parameters.items()},
                "status": status.value,
                "reason": reason,
            }
        elif error and JobStatus.parse(summary["status"]).ok:
            # the job reported success, then a later cell failed: the run did not end well
            summary["status"] = JobStatus.FAILED.value
            summary["reason"] = f"{summary.get('reason')}; then the notebook failed: {error}"
        final = JobStatus.parse(summary["status"])
        if lease is not None and lease.took_over is not None:
            summary["lock_taken_over_from"] = lease.took_over.describe()
        summary["exit_code"] = final.exit_code
        summary["started_at"] = self.started_at
        summary["finished_at"] = utcnow()
        summary["duration_seconds"] = round(time.monotonic() - self.clock, 3)
        files = set(summary.get("files") or [_files.SUMMARY])
        for extra in (self.notebook, self.notebook.with_suffix(".html")):
            if extra.exists():
                files.add(extra.name)
        summary["files"] = sorted(files)
        _files.write_summary(self.run_dir, summary)
        if store is not None:
            self._fix_job_run(store, final, summary)
        reports.rebuild_index(self.run_dir.parent)
        return RunOutcome(
            self.spec.name, self.run_id, final, str(summary.get("reason") or ""), self.run_dir,
            _files.jsonable(summary),
        )  # fmt: skip

    def _fix_job_run(self, store: Store, status: JobStatus, summary: dict[str, Any]) -> None:
        """A kernel that died mid-run leaves its job_runs row "running": close it."""
        try:
            row = get_run(store, self.run_id)
        except HubkitError:
            return
        if row.status is not status:
            record_run(
                store, self.run_id, job=self.spec.name, status=status,
                actor=store.actor, summary=summary, finished=True,
            )  # fmt: skip


def run_job(
    job: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    wait: bool = False,
    wait_timeout: float | None = None,
    on_wait: Callable[[LeaseInfo], None] | None = None,
    database_url: str | None = None,
    notebook: Path | None = None,
    execution_timeout: float | None = None,
) -> RunOutcome:
    """Run job ``job`` with ``parameters`` (names as in its notebook) and report it."""
    spec = job_spec(job)
    given = dict(parameters or {})
    # an unknown name's value is not echoed into the report: it could be anything
    run = _Run(
        spec, {k: v if k in spec.defaults else "(not a parameter)" for k, v in given.items()}
    )
    try:
        params = spec.create(**given)
    except ValidationError as exc:
        return run.finish(JobStatus.INVALID, str(exc))
    run.parameters = params.as_dict()
    try:
        store = Store.open(database_url)
    except HubkitError as exc:
        return run.finish(JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
    try:
        lease = Lease(store, run_id=run.run_id)
        try:
            lease.acquire(wait=wait, timeout=wait_timeout, on_wait=on_wait)
        except LockHeldError as exc:
            return run.finish(JobStatus.LOCK_HELD, str(exc), store=store)
        mark_interrupted(store)
        env = {
            ENV_RUN_ID: run.run_id,
            ENV_RUN_DIR: str(run.run_dir),
            ENV_LEASE_HOLDER: lease.holder,
        }
        if database_url:
            env["HUBKIT_DATABASE_URL"] = database_url
        error = ""
        try:
            with lease.kept_alive(), _environment(env):
                error = _execute(notebook or spec.path, run.notebook, given, execution_timeout)
        finally:
            if lease.held:
                lease.release()
        _render(run.notebook)
        status = JobStatus.INVALID if error.startswith("ValidationError") else JobStatus.FAILED
        return run.finish(
            status, error or "the notebook ended without a report", store=store, error=error,
            lease=lease,
        )  # fmt: skip
    finally:
        store.close()


def _execute(
    source: Path, target: Path, parameters: Mapping[str, Any], timeout: float | None
) -> str:
    """Execute with papermill; the error as ``"Name: message"`` ("" when the run went through)."""
    # deferred: papermill (with jupyter_client, nbformat, traitlets) takes seconds to load and
    # only a job run needs it, not the CLI or the widgets that import the jobs package
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    if not source.is_file():
        return f"FileNotFoundError: job notebook {source} is missing"
    # IPC sockets in a private folder rather than TCP on loopback: no other local user can
    # reach the kernel (and ipykernel has nothing to warn about on stderr, which cron mails).
    sockets = tempfile.mkdtemp(prefix="hubkit-kernel-")
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=dict(parameters),
            kernel_name=KERNEL,
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            config=config,
            # the job's work is saved once the last cell ran: no need to wait for a graceful exit
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # the kernel died or could not start: still report the run
        return f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return ""


def _render(notebook: Path) -> None:
    if not notebook.exists():
        return
    try:
        reports.render_html(notebook)
    except Exception:  # a report without its HTML copy is still a report
        logging.getLogger(__name__).warning("could not render %s to HTML", notebook, exc_info=True)
