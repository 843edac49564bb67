"""Values the store hands out: detached from sessions, never carrying a secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from hubkit.domain import RateType, UnitCosts


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The operator's pricing settings (defaults: the gateway's baseCreditPrice 1, margin 2 %)."""

    currency: str = "USD"
    credit_price: Decimal = Decimal(1)
    target_margin: Decimal = Decimal(2)


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    name: str
    display_name: str
    base_url: str | None
    region: str | None
    enabled: bool
    custom: bool
    config: Mapping[str, Any] = field(default_factory=dict)
    credential_count: int = 0
    rate_count: int = 0


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A credential's metadata and masked display text; the secret is only in ``reveal``."""

    id: int
    provider: str
    name: str
    credential_type: str
    display_text: str
    weight: int
    active: bool
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    last_pushed_at: datetime | None
    usage_count: int
    error: str | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    rate_id: int | None
    provider: str
    model: str
    type: RateType
    change_type: str
    source: str | None
    previous_input_rate: Decimal | None
    previous_output_rate: Decimal | None
    current_input_rate: Decimal | None
    current_output_rate: Decimal | None
    previous_unit_costs: UnitCosts | None
    current_unit_costs: UnitCosts | None
    drift_pct: Decimal | None
    changed_at: datetime
    rate_version: int | None
    metadata: Mapping[str, Any] | None
    actor: str
    reason: str | None
    job_run_id: str | None
    proposal_id: int | None = None  # the rate proposal whose apply wrote it


@dataclass(frozen=True, slots=True)
class HubPush:
    """One rate pushed to the hub, as :meth:`hubkit.store.Store.record_hub_pushes` keeps it.

    ``before`` is what the hub had (None: no such rate), ``after`` what it has now (None:
    deleted there), each as (input rate, output rate, unit costs).
    """

    provider: str
    model: str
    type: Any
    rate_id: int | None
    before: tuple[Any, Any, UnitCosts | None] | None
    after: tuple[Any, Any, UnitCosts | None] | None
    rate_version: int | None = None
    source: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    job_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class RateAt:
    """The rate in force for a (provider, model, type) at a point in time."""

    provider: str
    model: str
    type: RateType
    input_rate: Decimal
    output_rate: Decimal
    unit_costs: UnitCosts | None
    since: datetime
    history_id: int | None
    # an approved rate proposal due at ``since``, not applied yet (effective dates)
    scheduled: bool = False
    proposal_id: int | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a bulk apply (or import) wrote, all in one transaction."""

    updated: int
    unchanged: int
    skipped: int
    created: int = 0
    history_ids: tuple[int, ...] = ()
    job_run_id: str | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CatalogImportResult:
    created: int
    updated: int
    unchanged: int
    drifted: tuple[tuple[str, str, str, Decimal | None], ...]
    not_in_store: int
    history_ids: tuple[int, ...] = ()
