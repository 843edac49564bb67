"""hubkit: the operator workbench for a credit-billed AI gateway (AIGNE Hub style).

Import everything a notebook needs from here::

    from hubkit import Store, RateSpec, call_credits, margin_rate
"""

from hubkit.billing_settings import BillingSettings, payment_required_body
from hubkit.catalog import (
    Catalog,
    CatalogEntry,
    Drift,
    UnmappedEntry,
    drift,
    drift_frame,
    load_catalog,
    shipped_catalog_path,
)
from hubkit.config import PROJECT_ROOT, EnvironmentSettings, Settings, get_settings
from hubkit.decimals import plain, quantize, to_decimal
from hubkit.domain import (
    KNOWN_PROVIDERS,
    Caching,
    ChangeType,
    CredentialType,
    ProviderSpec,
    Rate,
    RateSpec,
    RateType,
    UnitCosts,
)
from hubkit.errors import (
    ConflictError,
    CredentialError,
    GuardrailError,
    HubError,
    HubkitError,
    HubRateLimitedError,
    HubStatusError,
    HubTimeoutError,
    JobError,
    LockHeldError,
    NotFoundError,
    ReadOnlyError,
    StaleVersionError,
    StorageError,
    UnsupportedModelError,
    ValidationError,
)
from hubkit.finance import FinancePack, finance_pack, read_credit_ledger, roll_forward
from hubkit.frames import (
    credentials_frame,
    history_frame,
    plain_frame,
    preview_frame,
    providers_frame,
    rates_frame,
    skipped_frame,
    to_csv,
)
from hubkit.pricing import (
    BulkPreview,
    RateChange,
    RateFilter,
    SkippedRate,
    bulk_preview,
    call_credits,
    change_pct,
    credential_display_text,
    default_model_display,
    implied_markup_pct,
    is_below_cost,
    margin_rate,
    mask_secret,
    rate_credits,
)
from hubkit.proposals import (
    Impact,
    Proposal,
    ProposalState,
    ProposedChange,
    apply_due,
    propose,
    propose_bulk,
)
from hubkit.replay import Behaviour, Kpis, ReplayResult
from hubkit.replay.reconcile import (
    ReconcileCause,
    ReconcileStatus,
    reconcile,
    reconcile_breakdown,
    reconcile_import,
)
from hubkit.replay.timeline import RateBook, price_exact, timeline_from_rates, validate_timeline
from hubkit.scenarios import ScenarioBase, simulate
from hubkit.scenarios.partitioned import (
    dask_client,
    replay_dask,
    replay_dataset,
    scenario_grid_dask,
    scenario_grid_dataset,
)
from hubkit.store import (
    ApplyResult,
    CatalogImportResult,
    CredentialInfo,
    HistoryEntry,
    OperatorSettings,
    Provider,
    RateAt,
    Store,
)
from hubkit.usage import (
    USAGE_COLUMNS,
    HubImport,
    generate_usage,
    read_hub_database,
    read_hub_export,
    read_usage,
    validate_usage,
    write_usage,
)
from hubkit.usage.dataset import UsageDataset, open_usage_dataset, write_usage_dataset
from hubkit.usage.gateway_import import import_gateway_usage, read_imported_usage
from hubkit.usage.gateway_rates import read_hub_rates
from hubkit.usage.sql import aggregate_usage, usage_totals

__version__ = "0.1.0"

__all__ = [
    "ApplyResult",
    "Behaviour",
    "BillingSettings",
    "BulkPreview",
    "Caching",
    "Catalog",
    "CatalogEntry",
    "CatalogImportResult",
    "ChangeType",
    "ConflictError",
    "CredentialError",
    "CredentialInfo",
    "CredentialType",
    "Drift",
    "EnvironmentSettings",
    "FinancePack",
    "GuardrailError",
    "HistoryEntry",
    "HubError",
    "HubImport",
    "HubRateLimitedError",
    "HubStatusError",
    "HubTimeoutError",
    "HubkitError",
    "Impact",
    "JobError",
    "KNOWN_PROVIDERS",
    "Kpis",
    "LockHeldError",
    "NotFoundError",
    "OperatorSettings",
    "PROJECT_ROOT",
    "Proposal",
    "ProposalState",
    "ProposedChange",
    "Provider",
    "ProviderSpec",
    "Rate",
    "RateAt",
    "RateBook",
    "RateChange",
    "RateFilter",
    "RateSpec",
    "RateType",
    "ReadOnlyError",
    "ReconcileCause",
    "ReconcileStatus",
    "ReplayResult",
    "ScenarioBase",
    "Settings",
    "SkippedRate",
    "StaleVersionError",
    "StorageError",
    "Store",
    "USAGE_COLUMNS",
    "UnitCosts",
    "UnmappedEntry",
    "UnsupportedModelError",
    "UsageDataset",
    "ValidationError",
    "aggregate_usage",
    "apply_due",
    "bulk_preview",
    "call_credits",
    "change_pct",
    "credential_display_text",
    "credentials_frame",
    "dask_client",
    "default_model_display",
    "drift",
    "drift_frame",
    "finance_pack",
    "generate_usage",
    "get_settings",
    "history_frame",
    "implied_markup_pct",
    "import_gateway_usage",
    "is_below_cost",
    "load_catalog",
    "margin_rate",
    "mask_secret",
    "open_usage_dataset",
    "payment_required_body",
    "plain",
    "plain_frame",
    "preview_frame",
    "price_exact",
    "propose",
    "propose_bulk",
    "providers_frame",
    "quantize",
    "rate_credits",
    "rates_frame",
    "read_credit_ledger",
    "read_hub_database",
    "read_hub_export",
    "read_hub_rates",
    "read_imported_usage",
    "read_usage",
    "reconcile",
    "reconcile_breakdown",
    "reconcile_import",
    "replay_dask",
    "replay_dataset",
    "roll_forward",
    "scenario_grid_dask",
    "scenario_grid_dataset",
    "shipped_catalog_path",
    "simulate",
    "skipped_frame",
    "timeline_from_rates",
    "to_csv",
    "to_decimal",
    "usage_totals",
    "validate_timeline",
    "validate_usage",
    "write_usage",
    "write_usage_dataset",
]

# Reprs and tracebacks show the public path (``hubkit.Store``, not
# ``hubkit.store.store.Store``), as httpx does: the place a class is defined is an internal
# detail that later moves must not leak. Classes only; pickle then finds each one under
# ``hubkit.<name>``, which works because every one of them is importable from here.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
