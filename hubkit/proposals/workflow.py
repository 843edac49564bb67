"""Propose (with the impact computed and stored), and apply what is due.

>>> p = propose_bulk(store, profit_margin=25, credit_price="0.001", reason="Q4 prices")
>>> p.state, p.content_hash                      # proposed, what the approver signs
>>> approver_store.approve_proposal(p.id, p.content_hash)
>>> apply_due(job_store)                          # the scheduled job; idempotent
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit.billing_settings import BillingSettings
from hubkit.domain import Rate, RateSpec
from hubkit.errors import ConflictError, StaleVersionError
from hubkit.pricing import RateFilter
from hubkit.proposals.build import (
    CatalogRow,
    batch_create_changes,
    bulk_changes,
    catalog_changes,
    csv_changes,
    delete_change,
    edit_change,
    revert_changes,
)
from hubkit.proposals.impact import Impact, compute_impact, proposed_rates, usage_window
from hubkit.replay import Behaviour
from hubkit.store import Store
from hubkit.store.proposals import (
    Proposal,
    ProposalApplyResult,
    ProposedChange,
    check_effective_at,
)
from hubkit.store.types import utcnow

__all__ = [
    "ApplyDueReport",
    "apply_due",
    "assess",
    "propose",
    "propose_batch_create",
    "propose_bulk",
    "propose_catalog_sync",
    "propose_csv",
    "propose_delete",
    "propose_edit",
    "propose_revert",
]

log = logging.getLogger(__name__)


def assess(
    store: Store,
    changes: Sequence[ProposedChange],
    *,
    usage: pd.DataFrame | None = None,
    usage_file: str | Path | None = None,
    days: int = 30,
    settings: BillingSettings | None = None,
    credit_price: Any = None,
    behaviour: Behaviour | None = None,
) -> Impact:
    """The impact of ``changes`` on the store's current rates (nothing is written).

    ``credit_price`` defaults to the operator setting; ``settings`` to the gateway's billing
    settings from the environment (:meth:`BillingSettings.from_env`).
    """
    rates = store.list_rates()
    window = usage_window(
        store, usage=usage, usage_file=usage_file, days=days,
        # synthetic usage draws from the rates before and after the change: a batch create
        # into an empty store has calls to price, and a delete has calls that lose their rate
        synthetic_rates=_before_and_after(rates, changes),
    )  # fmt: skip
    price = credit_price if credit_price is not None else store.get_operator_settings().credit_price
    return compute_impact(
        rates,
        changes,
        window,
        settings=settings,
        credit_price=price,
        behaviour=behaviour,
    )


def propose(
    store: Store,
    changes: Sequence[ProposedChange],
    *,
    source: str,
    reason: str | None = None,
    effective_at: datetime | None = None,
    catalog_source: str | None = None,
    catalog_version: str | None = None,
    supersedes: int | None = None,
    reverts: int | None = None,
    metadata: dict[str, Any] | None = None,
    impact: bool = True,
    usage: pd.DataFrame | None = None,
    usage_file: str | Path | None = None,
    days: int = 30,
    settings: BillingSettings | None = None,
    credit_price: Any = None,
    behaviour: Behaviour | None = None,
    draft: bool = False,
) -> Proposal:
    """Store a proposal of ``changes`` with its impact (unless ``impact=False``)."""
    check_effective_at(effective_at)  # before the replay, not after it
    assessed = None
    if impact:
        assessed = assess(
            store,
            changes,
            usage=usage,
            usage_file=usage_file,
            days=days,
            settings=settings,
            credit_price=credit_price,
            behaviour=behaviour,
        )
    return store.create_proposal(
        changes,
        source=source,
        reason=reason,
        effective_at=effective_at,
        catalog_source=catalog_source,
        catalog_version=catalog_version,
        supersedes=supersedes,
        reverts=reverts,
        impact=None if assessed is None else assessed.to_json(),
        usage_fingerprint=None if assessed is None else assessed.fingerprint,
        metadata=metadata,
        draft=draft,
    )


def propose_edit(
    store: Store, rate_id: int, *, reason: str | None = None, expected_version: int | None = None,
    effective_at: datetime | None = None, impact: bool = True, **fields: Any,
) -> Proposal:  # fmt: skip
    """A single rate edit (``fields``: input_rate, output_rate, unit_costs, caching, …)."""
    change = edit_change(store, rate_id, expected_version=expected_version, **fields)
    return propose(
        store, [change], source="edit", reason=reason, effective_at=effective_at, impact=impact
    )


def propose_delete(
    store: Store, rate_id: int, *, reason: str | None = None,
    effective_at: datetime | None = None, impact: bool = True,
) -> Proposal:  # fmt: skip
    return propose(
        store, [delete_change(store, rate_id)], source="edit", reason=reason,
        effective_at=effective_at, impact=impact,
    )  # fmt: skip


def propose_batch_create(
    store: Store,
    spec: RateSpec,
    providers: Sequence[str],
    *,
    reason: str | None = None,
    effective_at: datetime | None = None,
    impact: bool = True,
) -> Proposal:
    changes = batch_create_changes(spec, providers)
    return propose(
        store, changes, source="batch", reason=reason, effective_at=effective_at, impact=impact
    )


def propose_bulk(
    store: Store,
    profit_margin: Any = None,
    credit_price: Any = None,
    rate_filter: RateFilter | None = None,
    *,
    reason: str | None = None,
    effective_at: datetime | None = None,
    **options: Any,
) -> Proposal:
    """A margin × credit-price bulk update (the preview 03 shows) as a proposal.

    The impact is computed at the proposal's credit price (what revenue would be
    recognised at once it applies).
    """
    preview = store.preview_bulk_update(profit_margin, credit_price, rate_filter)
    changes = bulk_changes(store, preview)
    meta = {
        "profit_margin": str(preview.profit_margin),
        "credit_price": str(preview.credit_price),
        "skipped": len(preview.skipped),
    }
    options.setdefault("credit_price", preview.credit_price)
    return propose(
        store, changes, source="bulk", reason=reason, effective_at=effective_at, metadata=meta,
        **options,
    )  # fmt: skip


def propose_catalog_sync(
    store: Store,
    rows: Sequence[CatalogRow],
    *,
    catalog_source: str | None,
    catalog_version: str | None = None,
    versions: dict[int, int] | None = None,
    reason: str | None = None,
    effective_at: datetime | None = None,
    impact: bool = True,
) -> Proposal:
    """A catalog sync plan (hubkit.jobs.catalog_sync.plan_sync's rows) as a proposal."""
    changes = catalog_changes(store, rows, versions)
    return propose(
        store, changes, source="catalog", reason=reason, effective_at=effective_at,
        catalog_source=catalog_source, catalog_version=catalog_version, impact=impact,
    )  # fmt: skip


def propose_csv(
    store: Store,
    csv: str | Path | pd.DataFrame,
    *,
    reason: str | None = None,
    effective_at: datetime | None = None,
    impact: bool = True,
) -> Proposal:
    changes = csv_changes(store, csv)
    name = None if isinstance(csv, pd.DataFrame) else Path(csv).name
    return propose(
        store, changes, source="csv", reason=reason, effective_at=effective_at,
        metadata={"file": name} if name else None, impact=impact,
    )  # fmt: skip


def propose_revert(
    store: Store,
    proposal_id: int,
    *,
    reason: str | None = None,
    effective_at: datetime | None = None,
    impact: bool = True,
) -> Proposal:
    """Undo an applied proposal as a unit: itself a proposal (reviewed like any other)."""
    changes = revert_changes(store, proposal_id)
    return propose(
        store, changes, source="revert", reason=reason or f"revert proposal {proposal_id}",
        effective_at=effective_at, reverts=proposal_id, impact=impact,
    )  # fmt: skip


@dataclass(frozen=True)
class ApplyDueReport:
    """What one apply-due run did."""

    applied: tuple[ProposalApplyResult, ...] = ()
    already_applied: tuple[int, ...] = ()  # applied by another run meanwhile
    expired: tuple[tuple[int, str], ...] = ()  # stale: closed with the reason
    failed: tuple[tuple[int, str], ...] = ()
    at: datetime = field(default_factory=utcnow)

    @property
    def history_ids(self) -> tuple[int, ...]:
        return tuple(i for r in self.applied for i in r.history_ids)

    def lines(self) -> list[str]:
        out = [
            f"proposal {r.proposal_id}: applied ({r.created} created, {r.updated} updated, "
            f"{r.deleted} deleted)"
            for r in self.applied
        ]
        out += [f"proposal {i}: already applied by another run" for i in self.already_applied]
        out += [f"proposal {i}: expired — {why}" for i, why in self.expired]
        out += [f"proposal {i}: FAILED — {why}" for i, why in self.failed]
        return out or ["no proposal is due"]


def apply_due(
    store: Store, *, now: datetime | None = None, job_run_id: str | None = None
) -> ApplyDueReport:
    """Apply every approved proposal whose time has come, each in its own transaction.

    Idempotent and safe to run concurrently: a proposal another run applied first is
    reported as such, never applied twice. A stale one (its rates moved since) is closed
    as ``expired`` with the reason: it must be re-proposed.
    """
    moment = now or utcnow()
    applied: list[ProposalApplyResult] = []
    already: list[int] = []
    expired: list[tuple[int, str]] = []
    failed: list[tuple[int, str]] = []
    for proposal in store.due_proposals(moment):
        try:
            result = store.apply_proposal(proposal.id, now=moment, job_run_id=job_run_id)
        except StaleVersionError as exc:
            why = str(exc)
            try:
                store.expire_proposal(proposal.id, why[:500])
            except ConflictError:
                pass  # closed meanwhile by another run
            expired.append((proposal.id, why))
            continue
        except ConflictError as exc:
            if store.get_proposal(proposal.id).applied_at is not None:
                already.append(proposal.id)
            else:
                failed.append((proposal.id, str(exc)))
            continue
        if result.applied:
            applied.append(result)
        else:
            already.append(proposal.id)
    report = ApplyDueReport(tuple(applied), tuple(already), tuple(expired), tuple(failed), moment)
    for line in report.lines():
        log.info(line)
    return report


def _before_and_after(rates: Sequence[Rate], changes: Sequence[ProposedChange]) -> list[Rate]:
    """The rates in force, and the ones the changes would create."""
    keys = {(r.provider, r.model, r.type.value) for r in rates}
    after = proposed_rates(rates, changes)
    return [*rates, *(r for r in after if (r.provider, r.model, r.type.value) not in keys)]
