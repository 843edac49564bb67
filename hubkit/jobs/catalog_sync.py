"""The price-catalog-sync job: unit costs from a catalog, drift flagged, optional re-pricing.

What the gateway's sync mode does, done locally and guarded: the catalog (LiteLLM JSON or
CSV; default the shipped sample) refreshes the unit costs of the selected rates, a move
beyond ``drift_threshold_pct`` is recorded as ``source_drift`` history, and with
``rederive_rates`` the rates are recomputed with the margin formula. The plan is computed
first (nothing written) so the guardrails can refuse it as a whole; the write is one
:meth:`Store.import_catalog` transaction carrying the run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import pandas as pd

from hubkit.catalog import Catalog, CatalogEntry, drift, load_catalog
from hubkit.decimals import plain
from hubkit.domain import Rate, RateType, UnitCosts
from hubkit.errors import ValidationError
from hubkit.jobs import guardrails
from hubkit.jobs.bulk import filter_problem
from hubkit.jobs.context import JobResult, JobRun, Outcome, execute_job
from hubkit.jobs.params import CatalogSyncParams
from hubkit.jobs.push import push_step
from hubkit.jobs.reports import change_pct_figure
from hubkit.jobs.status import JobStatus
from hubkit.pricing import change_pct, is_below_cost, margin_rate
from hubkit.store import Store

JOB = "price-catalog-sync"
_PCT = Decimal("0.01")


def price_catalog_sync(*, store: Store | None = None, **parameters: Any) -> JobResult:
    """Check ``parameters`` (as the notebook names them) and run the job."""
    return run_price_catalog_sync(CatalogSyncParams.create(**parameters), store=store)


def run_price_catalog_sync(params: CatalogSyncParams, *, store: Store | None = None) -> JobResult:
    return execute_job(JOB, params, _body, store=store)


@dataclass(frozen=True, slots=True)
class SyncRow:
    """What the sync would do to one (provider, model, type)."""

    action: str  # create | update | unchanged
    rate_id: int | None
    provider: str
    model: str
    type: RateType
    old_costs: UnitCosts | None
    new_costs: UnitCosts
    drift_input_pct: Decimal | None  # Infinity = from 0; None = nothing stored to drift from
    drift_output_pct: Decimal | None
    drift_exceeds: bool
    old_input_rate: Decimal | None
    old_output_rate: Decimal | None
    new_input_rate: Decimal
    new_output_rate: Decimal

    def candidate(self) -> guardrails.Candidate:
        return guardrails.Candidate(
            self.rate_id, self.provider, self.model, self.type, self.old_input_rate,
            self.old_output_rate, self.new_input_rate, self.new_output_rate, self.new_costs,
        )  # fmt: skip

    @property
    def max_abs_drift(self) -> Decimal | None:
        sides = [abs(p) for p in (self.drift_input_pct, self.drift_output_pct) if p is not None]
        worst = max(sides, default=None)
        return None if worst is None or not worst.is_finite() else worst


@dataclass(frozen=True, slots=True)
class SyncPlan:
    catalog: Catalog  # only the selected entries
    rows: tuple[SyncRow, ...]
    not_in_store: int
    margin: Decimal
    credit_price: Decimal
    # rate id → version as planned: the write refuses if an operator edited one since
    versions: Mapping[int, int] = field(default_factory=dict)

    @property
    def changes(self) -> tuple[SyncRow, ...]:
        return tuple(r for r in self.rows if r.action != "unchanged")


def plan_sync(
    rates: list[Rate],
    catalog: Catalog,
    params: CatalogSyncParams,
    *,
    providers_in_store: set[str],
    margin: Decimal,
    credit_price: Decimal,
) -> SyncPlan:
    """What :meth:`Store.import_catalog` would write, row by row (pure: nothing written)."""
    # RateFilter.matches reads only provider, model and type, which catalog entries have too.
    selected = [e for e in catalog.entries if params.rate_filter.matches(cast(Rate, e))]
    subset = Catalog(
        tuple(selected), catalog.unmapped, catalog.source, catalog.currency, catalog.exchange_rate
    )
    stored = {(r.provider, r.model, r.type): r for r in rates}
    drifts = {d.rate_id: d for d in drift(rates, subset, params.drift_threshold_pct)}
    rows: list[SyncRow] = []
    missing = 0
    for entry in selected:
        rate = stored.get(entry.key)
        if rate is None:
            if not params.create_missing or entry.provider not in providers_in_store:
                missing += 1
                continue
            rows.append(_new_row(entry, margin, credit_price))
            continue
        d = drifts.get(rate.id)
        new_in, new_out = rate.input_rate, rate.output_rate
        if params.rederive_rates:
            new_in = margin_rate(entry.unit_costs.input, margin, credit_price)
            new_out = margin_rate(entry.unit_costs.output, margin, credit_price)
        same = (rate.unit_costs, rate.input_rate, rate.output_rate) == (
            entry.unit_costs, new_in, new_out,
        )  # fmt: skip
        rows.append(
            SyncRow(
                action="unchanged" if same else "update",
                rate_id=rate.id,
                provider=rate.provider,
                model=rate.model,
                type=rate.type,
                old_costs=rate.unit_costs,
                new_costs=entry.unit_costs,
                drift_input_pct=d.input_pct if d else None,
                drift_output_pct=d.output_pct if d else None,
                drift_exceeds=bool(d and d.exceeds),
                old_input_rate=rate.input_rate,
                old_output_rate=rate.output_rate,
                new_input_rate=new_in,
                new_output_rate=new_out,
            )
        )
    versions = {r.id: r.version for r in rates}
    return SyncPlan(subset, tuple(rows), missing, margin, credit_price, versions)


def _new_row(entry: CatalogEntry, margin: Decimal, price: Decimal) -> SyncRow:
    return SyncRow(
        action="create", rate_id=None, provider=entry.provider, model=entry.model,
        type=entry.type, old_costs=None, new_costs=entry.unit_costs, drift_input_pct=None,
        drift_output_pct=None, drift_exceeds=False, old_input_rate=None, old_output_rate=None,
        new_input_rate=margin_rate(entry.unit_costs.input, margin, price),
        new_output_rate=margin_rate(entry.unit_costs.output, margin, price),
    )  # fmt: skip


def _pct(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite():
        return value
    return value.quantize(_PCT)


def _rate_pct(old: Decimal | None, new: Decimal) -> Decimal | str | None:
    if old is None:
        return None
    pct = change_pct(old, new)
    return "from 0" if pct is None else pct.quantize(_PCT)


def changes_frame(plan: SyncPlan, refused: list[guardrails.Refusal]) -> pd.DataFrame:
    """One row per rate the sync creates or updates: costs and rates old → new, drift."""
    rows = []
    for r in plan.changes:
        below = any(
            is_below_cost(rate, cost, plan.credit_price)
            for rate, cost in ((r.new_input_rate, r.new_costs.input),
                               (r.new_output_rate, r.new_costs.output))
        )  # fmt: skip
        rows.append(
            {
                "action": r.action, "rate_id": r.rate_id, "provider": r.provider,
                "model": r.model, "type": r.type.value,
                "old_unit_cost_input": r.old_costs.input if r.old_costs else None,
                "new_unit_cost_input": r.new_costs.input,
                "input_cost_drift_pct": _pct(r.drift_input_pct),
                "old_unit_cost_output": r.old_costs.output if r.old_costs else None,
                "new_unit_cost_output": r.new_costs.output,
                "output_cost_drift_pct": _pct(r.drift_output_pct),
                "drift_exceeds": r.drift_exceeds,
                "old_input_rate": r.old_input_rate, "new_input_rate": r.new_input_rate,
                "input_change_pct": _rate_pct(r.old_input_rate, r.new_input_rate),
                "old_output_rate": r.old_output_rate, "new_output_rate": r.new_output_rate,
                "output_change_pct": _rate_pct(r.old_output_rate, r.new_output_rate),
                "below_cost": below,
            }
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    keys = [(r.provider, r.model, r.type.value) for r in plan.changes]
    frame["refused"], frame["refusal_reason"] = guardrails.refusal_columns(keys, refused)
    return frame


def _body(run: JobRun, params: CatalogSyncParams) -> Outcome:
    store = run.store
    problem = filter_problem(store, params.rate_filter)
    if problem is not None:
        return problem
    settings = store.get_operator_settings()
    if params.currency != settings.currency:
        raise ValidationError(
            f"the store's currency is {settings.currency} but the catalog is read as "
            f"{params.currency}; pass currency={settings.currency!r} with exchange_rate "
            f"({settings.currency} per USD)",
            field="currency",
        )
    catalog = load_catalog(
        params.catalog_path, currency=params.currency, exchange_rate=params.exchange_rate
    )
    margin = settings.target_margin if params.profit_margin is None else params.profit_margin
    price = settings.credit_price if params.credit_price is None else params.credit_price
    providers = {p.name for p in store.list_providers()}
    plan = plan_sync(
        store.list_rates(), catalog, params, providers_in_store=providers, margin=margin,
        credit_price=price,
    )  # fmt: skip
    refused = guardrails.check(
        [r.candidate() for r in plan.changes],
        max_change_pct=params.max_change_pct,
        allow_below_cost=params.allow_below_cost,
        credit_price=price,
        allow_zero_rates=params.allow_zero_rates,
    )
    changes = plan.changes
    counts = {
        "catalog_entries": len(catalog.entries),
        "catalog_unmapped": len(catalog.unmapped),
        "selected": len(plan.catalog.entries),
        "created": sum(1 for r in changes if r.action == "create"),
        "updated": sum(1 for r in changes if r.action == "update"),
        "unchanged": len(plan.rows) - len(changes),
        "not_in_store": plan.not_in_store,
        "drift_over_threshold": sum(1 for r in changes if r.drift_exceeds),
        "changed": len(changes),
        "refused": len(refused),
        "applied": 0,
        "history_rows": 0,
    }
    details: dict[str, Any] = {
        "dry_run": params.dry_run,
        "catalog": {"source": catalog.source, "currency": catalog.currency},
        "pricing": {"profit_margin_pct": plain(margin), "credit_price": plain(price),
                    "rederive_rates": params.rederive_rates},
        "drifted": [
            {"provider": r.provider, "model": r.model, "type": r.type.value,
             "input_pct": _pct(r.drift_input_pct), "output_pct": _pct(r.drift_output_pct)}
            for r in changes if r.drift_exceeds
        ],
        "warnings": [],
    }  # fmt: skip
    drifts = [r.max_abs_drift for r in changes if r.action == "update"]
    figure = (
        change_pct_figure(drifts, f"unit cost drift against {catalog.source}")
        if any(d is not None for d in drifts)
        else None
    )

    def outcome(status: JobStatus, reason: str) -> Outcome:
        return Outcome(
            status, reason, counts=counts, totals={"max_abs_drift_pct": plain(
                max((d for d in drifts if d is not None), default=None))},
            changes=changes_frame(plan, refused), refused=tuple(refused), figure=figure,
            details=details,
        )  # fmt: skip

    if refused:
        return outcome(
            JobStatus.GUARDRAIL,
            f"{len(refused)} of {len(changes)} rate changes refused by the guardrails "
            f"(max_change_pct={plain(params.max_change_pct)}, allow_below_cost="
            f"{params.allow_below_cost}); nothing was written",
        )
    if params.dry_run:
        return outcome(
            JobStatus.DRY_RUN,
            f"dry run: {counts['updated']} rates would be updated and {counts['created']} "
            f"created ({counts['drift_over_threshold']} with drift above "
            f"{plain(params.drift_threshold_pct)} %); nothing was written",
        )
    if not changes:
        status, reason = (
            JobStatus.UNCHANGED,
            f"nothing to change: the {len(plan.rows)} selected rates already match the "
            "catalog; nothing was written",
        )
    else:
        status, reason = _apply(run, params, plan, counts, details)
    if params.push_to_hub:
        status, reason = push_step(store, run.run_id, params.rate_filter, status, reason, details)
    return outcome(status, reason)


def _apply(
    run: JobRun,
    params: CatalogSyncParams,
    plan: SyncPlan,
    counts: dict[str, int],
    details: dict[str, Any],
) -> tuple[JobStatus, str]:
    run.check_lease()
    result = run.store.import_catalog(
        plan.catalog,
        create_missing=params.create_missing,
        profit_margin=plan.margin,
        credit_price=plan.credit_price,
        rederive_rates=params.rederive_rates,
        drift_threshold_pct=params.drift_threshold_pct,
        reason=params.reason or f"{JOB} {run.run_id}",
        job_run_id=run.run_id,
        expected_versions=plan.versions,
    )
    run.committed = True
    counts["applied"] = result.created + result.updated
    counts["history_rows"] = len(result.history_ids)
    if (result.created, result.updated) != (counts["created"], counts["updated"]):
        details["warnings"].append(
            f"the store changed between plan and write: planned {counts['created']} created / "
            f"{counts['updated']} updated, wrote {result.created} / {result.updated}"
        )
    return (
        JobStatus.APPLIED,
        f"applied: {result.updated} rates updated, {result.created} created in one "
        f"transaction ({len(result.drifted)} recorded as source_drift; job_run_id {run.run_id})",
    )
