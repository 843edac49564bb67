"""The bulk-rate-update job: margin-mode repricing, guarded, atomic, reported.

``notebooks/jobs/bulk_rate_update.ipynb`` calls :func:`run_bulk_rate_update`; the numbers
come from :meth:`Store.preview_bulk_update` (the pricing rules) and are written by
:meth:`Store.apply_bulk_update` in one transaction whose history rows carry the run id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from hubkit.decimals import plain
from hubkit.errors import ValidationError
from hubkit.frames import preview_frame, skipped_frame
from hubkit.jobs import guardrails
from hubkit.jobs.context import JobResult, JobRun, Outcome, execute_job
from hubkit.jobs.params import BulkRateParams
from hubkit.jobs.push import push_step
from hubkit.jobs.reports import change_pct_figure
from hubkit.jobs.status import JobStatus
from hubkit.pricing import BulkPreview, RateFilter
from hubkit.store import Store

JOB = "bulk-rate-update"


def bulk_rate_update(*, store: Store | None = None, **parameters: Any) -> JobResult:
    """Check ``parameters`` (as the notebook names them) and run the job."""
    return run_bulk_rate_update(BulkRateParams.create(**parameters), store=store)


def run_bulk_rate_update(params: BulkRateParams, *, store: Store | None = None) -> JobResult:
    return execute_job(JOB, params, _body, store=store)


def changes_frame(preview: BulkPreview, refused: list[guardrails.Refusal]) -> pd.DataFrame:
    """The preview's rows (old → new, change %) plus ``refused`` and ``refusal_reason``."""
    frame = preview_frame(preview)
    keys = [(c.provider, c.model, c.type.value) for c in preview.changes]
    frame["refused"], frame["refusal_reason"] = guardrails.refusal_columns(keys, refused)
    return frame


def totals(preview: BulkPreview) -> dict[str, Any]:
    changed = preview.changed
    pcts = [c.max_abs_change_pct() for c in changed]
    finite = [p for p in pcts if p is not None]
    return {
        "old_input_rate_sum": plain(sum((c.old_input_rate for c in changed), Decimal(0))),
        "new_input_rate_sum": plain(sum((c.new_input_rate for c in changed), Decimal(0))),
        "old_output_rate_sum": plain(sum((c.old_output_rate for c in changed), Decimal(0))),
        "new_output_rate_sum": plain(sum((c.new_output_rate for c in changed), Decimal(0))),
        "max_abs_change_pct": plain(max(finite).quantize(Decimal("0.01"))) if finite else None,
        "from_zero": sum(1 for p in pcts if p is None),
        "drops_to_zero": sum(1 for c in changed if c.drops_to_zero),
        "increases": sum(1 for c in changed if c.new_input_rate + c.new_output_rate
                         > c.old_input_rate + c.old_output_rate),
    }  # fmt: skip


def filter_problem(store: Store, rate_filter: RateFilter) -> Outcome | None:
    """An ``invalid`` ending for a provider filter naming a provider the store lacks."""
    try:
        rate_filter.check_providers(p.name for p in store.list_providers())
    except ValidationError as exc:
        return Outcome(JobStatus.INVALID, f"{exc}; nothing was read or written")
    return None


def nothing_matched(rate_filter: RateFilter, selected: int) -> Outcome | None:
    """A ``nothing_matched`` ending (exit 10) when a filter selects no rate at all."""
    if rate_filter.is_empty or selected:
        return None
    return Outcome(
        JobStatus.NOTHING_MATCHED,
        f"the filter ({rate_filter.describe()}) matches no rate: nothing to do; nothing was "
        "written (check it with `python -m hubkit rates list` and the same filter)",
        counts={"selected": 0, "changed": 0, "applied": 0},
    )


def _body(run: JobRun, params: BulkRateParams) -> Outcome:
    store = run.store
    problem = filter_problem(store, params.rate_filter)
    if problem is not None:
        return problem
    preview = store.preview_bulk_update(
        params.profit_margin, params.credit_price, params.rate_filter
    )
    empty = nothing_matched(params.rate_filter, len(preview.changes) + len(preview.skipped))
    if empty is not None:
        return empty
    refused = guardrails.check(
        guardrails.candidates_from_preview(preview),
        max_change_pct=params.max_change_pct,
        allow_below_cost=params.allow_below_cost,
        credit_price=preview.credit_price,
        allow_zero_rates=params.allow_zero_rates,
    )
    changed = preview.changed
    counts = {
        "selected": len(preview.changes) + len(preview.skipped),
        "changed": len(changed),
        "unchanged": len(preview.unchanged),
        "skipped": len(preview.skipped),
        "refused": len(refused),
        "applied": 0,
        "history_rows": 0,
    }
    details: dict[str, Any] = {
        "dry_run": params.dry_run,
        "pricing": {
            "profit_margin_pct": plain(preview.profit_margin),
            "credit_price": plain(preview.credit_price),
            "currency": store.get_operator_settings().currency,
        },
        "warnings": [],
    }
    figure = (
        change_pct_figure(
            [c.max_abs_change_pct() for c in changed],
            f"bulk rate update: {len(changed)} rates change (margin "
            f"{plain(preview.profit_margin)} %, credit price {plain(preview.credit_price)})",
        )
        if changed
        else None
    )

    def outcome(status: JobStatus, reason: str) -> Outcome:
        return Outcome(
            status, reason, counts=counts, totals=totals(preview),
            changes=changes_frame(preview, refused), refused=tuple(refused), figure=figure,
            details=details, tables={"skipped.csv": skipped_frame(preview)},
        )  # fmt: skip

    if refused:
        return outcome(
            JobStatus.GUARDRAIL,
            f"{len(refused)} of {len(changed)} rate changes refused by the guardrails "
            f"(max_change_pct={plain(params.max_change_pct)}, allow_below_cost="
            f"{params.allow_below_cost}, allow_zero_rates={params.allow_zero_rates}); nothing "
            "was written — see refused in summary.json and changes.csv",
        )
    if params.dry_run:
        return outcome(
            JobStatus.DRY_RUN,
            f"dry run: {len(changed)} rates would change, {len(preview.unchanged)} already "
            "at these values; nothing was written (dry_run=False to apply)",
        )
    if not changed:
        status, reason = (
            JobStatus.UNCHANGED,
            f"nothing to change: all {len(preview.changes)} selected rates already have these "
            "values; nothing was written",
        )
    else:
        run.check_lease()
        result = store.apply_bulk_update(
            preview, reason=params.reason or f"{JOB} {run.run_id}", job_run_id=run.run_id
        )
        run.committed = True
        counts["applied"] = result.updated
        counts["history_rows"] = len(result.history_ids)
        status, reason = (
            JobStatus.APPLIED,
            f"applied: {result.updated} rates updated in one transaction "
            f"(history job_run_id {run.run_id})",
        )
    if params.push_to_hub:
        status, reason = push_step(store, run.run_id, params.rate_filter, status, reason, details)
    return outcome(status, reason)
