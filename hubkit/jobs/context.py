"""One job run from the inside: run id and folder, lock, job_runs row, report files.

A job body (``bulk.py``, ``catalog_sync.py``) only computes an :class:`Outcome`;
:func:`execute_job` wraps it: takes the lock (or adopts the one the runner took, named
in ``HUBKIT_JOB_LEASE_HOLDER``), records the run, and — whatever happens — writes
summary.json, changes.csv and the figure, updates ``job_runs`` and the reports index, and
lets the lock go. Under plain ``papermill`` the run id and folder are made here; under
``python -m hubkit job run`` the runner passes them in ``HUBKIT_JOB_RUN_ID`` /
``HUBKIT_JOB_RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from hubkit import _files
from hubkit.config import get_settings
from hubkit.errors import GuardrailError, JobError, LockHeldError
from hubkit.jobs import reports
from hubkit.jobs.guardrails import Refusal
from hubkit.jobs.lock import Lease
from hubkit.jobs.params import JobParams
from hubkit.jobs.runs import mark_interrupted, record_run
from hubkit.jobs.status import FinishedRun, JobStatus
from hubkit.store import Store
from hubkit.store.types import utcnow

ENV_RUN_ID = "HUBKIT_JOB_RUN_ID"
ENV_RUN_DIR = "HUBKIT_JOB_RUN_DIR"
ENV_LEASE_HOLDER = "HUBKIT_JOB_LEASE_HOLDER"

P = TypeVar("P", bound=JobParams)


@dataclass(frozen=True, eq=False)
class Outcome:
    """What a job body decided; :meth:`JobRun.finish` turns it into files and rows."""

    status: JobStatus
    reason: str
    counts: Mapping[str, int] = field(default_factory=dict)
    totals: Mapping[str, Any] = field(default_factory=dict)
    changes: pd.DataFrame | None = None
    refused: tuple[Refusal, ...] = ()
    figure: Any = None
    details: Mapping[str, Any] = field(default_factory=dict)
    #: more tables for the run folder, by file name (e.g. ``skipped.csv``)
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    #: files the body already wrote in the run folder (relative names), listed in the summary
    files: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class JobResult(FinishedRun):
    """A finished run as the notebook (and tests) see it: with its changes and figure."""

    changes: pd.DataFrame | None = None
    figure: Any = None

    def overview(self) -> pd.DataFrame:
        """A two-column table of the headline facts, for display."""
        rows: list[tuple[str, Any]] = [
            ("run id", self.run_id),
            ("status", self.status.value),
            ("reason", self.reason),
            ("report folder", str(self.run_dir)),
        ]
        rows += [(f"count: {k}", v) for k, v in (self.summary.get("counts") or {}).items()]
        rows += [(f"total: {k}", v) for k, v in (self.summary.get("totals") or {}).items()]
        return pd.DataFrame(rows, columns=["item", "value"])

    def refused_frame(self) -> pd.DataFrame:
        refused = self.summary.get("refused") or []
        return pd.DataFrame(
            [{**r, "reasons": "; ".join(r["reasons"])} for r in refused],
            columns=["rate_id", "provider", "model", "type", "reasons"],
        )

    def overview_table(self) -> Any:
        """:meth:`overview` as the report shows it (HTML, decimals plain)."""
        return _html(reports.table_html(self.overview()))

    def refused_table(self) -> Any:
        """The refused rates and why, or "none refused" (HTML, for the report)."""
        return _html(
            "<h4>Refused by the guardrails</h4>"
            + reports.table_html(self.refused_frame(), empty="none refused")
        )

    def changes_table(self) -> Any:
        """Every change, old → new, in full (HTML, decimals plain), or "no changes"."""
        frame = self.changes if self.changes is not None else pd.DataFrame()
        return _html(reports.table_html(frame, empty="no changes"))

    def figure_html(self) -> Any:
        """The figure for the notebook and its report, or a note without one.

        Carries both the plotly figure (JupyterLab draws it with its plotly extension) and
        an HTML snippet without plotly.js (the report loads the run folder's copy)."""
        if self.figure is None:
            return _html("<p>(no figure: nothing changed)</p>")
        return FigureOutput(self.figure)

    def raise_for_status(self) -> None:
        """Raise for anything but success, so plain papermill (and cron) exit non-zero."""
        if self.status.ok:
            return
        if self.status is JobStatus.GUARDRAIL:
            raise GuardrailError(self.reason, refused=list(self.summary.get("refused") or []))
        if self.status is JobStatus.LOCK_HELD:
            raise LockHeldError(self.reason)
        raise JobError(f"{self.status.value}: {self.reason}")


class JobRun:
    """The run in progress: its store, id, folder, lease and clock."""

    def __init__(
        self,
        job: str,
        parameters: Mapping[str, Any],
        store: Store,
        *,
        owns_store: bool,
        run_id: str,
        run_dir: Path,
        lease: Lease,
        owns_lease: bool,
    ) -> None:
        self.job = job
        self.parameters = dict(parameters)
        self.store = store
        self.owns_store = owns_store
        self.run_id = run_id
        self.run_dir = run_dir
        self.lease = lease
        self.owns_lease = owns_lease
        self.started_at = utcnow()
        self._clock = time.monotonic()
        self.recorded = False
        #: set by a body once its transaction committed (failure messages must not lie)
        self.committed = False

    @classmethod
    def open(cls, job: str, parameters: Mapping[str, Any], *, store: Store | None = None) -> JobRun:
        settings = get_settings()
        run_id = os.environ.get(ENV_RUN_ID, "").strip()
        if run_id:
            run_dir = Path(os.environ.get(ENV_RUN_DIR) or settings.reports_dir / run_id)
            _files.ensure_run_folder(run_dir)
        else:
            run_dir = _files.new_run_folder(settings.reports_dir, job)
            run_id = run_dir.name
        holder = os.environ.get(ENV_LEASE_HOLDER, "").strip() or None
        owns_store = store is None
        store = store or Store.open()
        lease = Lease(store, run_id=run_id, holder=holder)
        return cls(
            job, parameters, store, owns_store=owns_store, run_id=run_id, run_dir=run_dir,
            lease=lease, owns_lease=holder is None,
        )  # fmt: skip

    # ---- the lock -----------------------------------------------------------------------
    def lock(self) -> None:
        """Take the lock; a runner's lease (named in the environment) is adopted instead."""
        if self.owns_lease:
            self.lease.acquire()
        else:
            self.check_lease()

    def check_lease(self) -> None:
        """Still ours? Called right before writing; JobError if another run took it over."""
        self.lease.renew()

    def keep_alive(self) -> Any:
        return self.lease.kept_alive() if self.owns_lease else nullcontext()

    def release(self) -> None:
        if self.owns_lease and self.lease.held:
            self.lease.release()

    # ---- the record ---------------------------------------------------------------------
    def record_start(self) -> None:
        record_run(
            self.store, self.run_id, job=self.job, status=JobStatus.RUNNING,
            actor=self.store.actor, parameters=self.parameters, report_dir=str(self.run_dir),
            started_at=self.started_at,
        )  # fmt: skip
        self.recorded = True

    def finish(self, outcome: Outcome) -> JobResult:
        finished = utcnow()
        files: list[str] = []
        if outcome.changes is not None:
            reports.write_changes(self.run_dir, outcome.changes)
            files.append(reports.CHANGES)
        for name, table in outcome.tables.items():
            reports.write_csv(self.run_dir / name, table)
            files.append(name)
        if outcome.figure is not None:
            path = reports.write_figure(self.run_dir, "change_pct", outcome.figure)
            files.append(str(path.relative_to(self.run_dir)))
        files.extend(outcome.files)
        summary = {
            "job": self.job,
            "run_id": self.run_id,
            "job_run_id": self.run_id if self.recorded else None,
            "status": outcome.status.value,
            "exit_code": outcome.status.exit_code,
            "reason": outcome.reason,
            "parameters": self.parameters,
            "counts": dict(outcome.counts),
            "totals": dict(outcome.totals),
            "refused": [r.as_dict() for r in outcome.refused],
            "started_at": self.started_at,
            "finished_at": finished,
            "duration_seconds": round(time.monotonic() - self._clock, 3),
            "database": self.store.engine.url.render_as_string(hide_password=True),
            "actor": self.store.actor,
            "files": [_files.SUMMARY, *files],
            **dict(outcome.details),
        }
        if self.lease.took_over is not None:
            summary["lock_taken_over_from"] = self.lease.took_over.describe()
        _files.write_summary(self.run_dir, summary)
        if self.recorded:
            record_run(
                self.store, self.run_id, job=self.job, status=outcome.status,
                actor=self.store.actor, summary=summary, finished=True,
            )  # fmt: skip
        reports.rebuild_index(self.run_dir.parent)
        return JobResult(
            job=self.job,
            run_id=self.run_id,
            status=outcome.status,
            reason=outcome.reason,
            run_dir=self.run_dir,
            summary=_files.jsonable(summary),
            changes=outcome.changes,
            figure=outcome.figure,
        )

    def close(self) -> None:
        if self.owns_store:
            self.store.close()


@contextmanager
def _closing(run: JobRun) -> Iterator[JobRun]:
    try:
        yield run
    finally:
        try:
            run.release()
        finally:
            run.close()


def execute_job(
    job: str,
    params: P,
    body: Callable[[JobRun, P], Outcome],
    *,
    store: Store | None = None,
) -> JobResult:
    """Run ``body`` as job ``job`` under the lock; report whatever happens.

    Expected endings (dry run, applied, unchanged, guardrail, lock held, push partial) come
    back as a :class:`JobResult`; an unexpected error is reported as ``failed`` (summary,
    job_runs row, index) and then re-raised, so its traceback shows in the notebook.
    """
    with _closing(JobRun.open(job, params.as_dict(), store=store)) as run:
        try:
            run.lock()
        except LockHeldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return run.finish(Outcome(JobStatus.LOCK_HELD, str(exc)))
        # holding the lock, every other "running" row is a dead run: say so before starting
        mark_interrupted(run.store)
        run.record_start()
        try:
            with run.keep_alive():
                outcome = body(run, params)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}" + (
                " (after the rates were committed: see the rate history of this run)"
                if run.committed
                else " — nothing of this run was committed"
            )
            run.finish(Outcome(JobStatus.FAILED, reason))
            raise
        if not outcome.status.ok:
            print(f"error: {outcome.status.value}: {outcome.reason}", file=sys.stderr)
        return run.finish(outcome)


class FigureOutput:
    """A figure as two outputs at once: plotly's own JSON and a plotly.js-free snippet."""

    def __init__(self, figure: Any) -> None:
        self._figure = figure

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "application/vnd.plotly.v1+json": json.loads(self._figure.to_json()),
            "text/html": self._figure.to_html(include_plotlyjs=False, full_html=False),
        }


def _html(text: str) -> Any:
    # deferred: IPython is the notebook's; a job imported outside one never loads it
    from IPython.display import HTML

    return HTML(text)
