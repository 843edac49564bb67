"""Talking to an AIGNE Hub: the HTTP client, its parsed values, sync, and a local hub.

- :class:`HubClient` — typed, retrying, secret-safe client for hub-api.md's admin routes.
- :mod:`hubkit.hub.models` — frozen values for the hub's answers (Decimal money).
- :mod:`hubkit.hub.pull` / :mod:`~hubkit.hub.plan` / :mod:`~hubkit.hub.apply` — read a hub
  (:class:`HubState`), diff the store against it (:class:`Plan`), carry a plan out
  (:class:`ApplyReport`); :mod:`hubkit.hub.verify` cross-checks the margin arithmetic.
- :mod:`hubkit.localhub.process` — :func:`start_local_hub` runs the bundled hub in a subprocess.
- :mod:`hubkit.localhub.app` — a faithful local hub (``python -m hubkit.localhub.app``).
- :mod:`hubkit.hub.redact` — masking tokens and keys in logs and error texts.

For notebooks::

    from hubkit.hub import HubClient, pull_hub, plan_sync, apply_plan
    state = pull_hub(client); p = plan_sync(store, state); report = apply_plan(p, store, client)

The functions are re-exported under those names, never as ``plan`` / ``pull`` / ``apply``
/ ``redact``: a package attribute with a submodule's name would shadow the submodule
(``hubkit.hub.plan`` must stay the module). The server is not imported here: it needs
starlette/uvicorn, the client does not.
"""

from __future__ import annotations

from hubkit.hub.apply import ApplyReport, ItemResult, ItemStatus
from hubkit.hub.apply import apply as apply_plan
from hubkit.hub.client import HubClient
from hubkit.localhub.process import LocalHubProcess, start_local_hub
from hubkit.hub.models import (
    TIER2_PROVIDERS,
    BatchCreateResult,
    BulkUpdateItem,
    BulkUpdateResult,
    CredentialCheck,
    Health,
    HubCredential,
    HubProvider,
    HubProviderRef,
    HubRate,
    RatePage,
    RatePair,
    SyncItem,
    SyncResult,
    SyncSummary,
    SyncUpdate,
)
from hubkit.hub.plan import Action, FieldChange, ItemKind, Plan, PlanItem
from hubkit.hub.plan import plan as plan_sync
from hubkit.hub.pull import BootstrapResult, HubState, NeedsKey, bootstrap
from hubkit.hub.pull import pull as pull_hub
from hubkit.hub.verify import (
    ArithmeticCheck,
    ArithmeticMismatch,
    ArithmeticMismatchError,
    verify_against_hub_arithmetic,
)

__all__ = [
    "TIER2_PROVIDERS",
    "Action",
    "ApplyReport",
    "ArithmeticCheck",
    "ArithmeticMismatch",
    "ArithmeticMismatchError",
    "BatchCreateResult",
    "BootstrapResult",
    "BulkUpdateItem",
    "BulkUpdateResult",
    "CredentialCheck",
    "FieldChange",
    "Health",
    "HubClient",
    "HubCredential",
    "HubProvider",
    "HubProviderRef",
    "HubRate",
    "HubState",
    "ItemKind",
    "ItemResult",
    "ItemStatus",
    "LocalHubProcess",
    "NeedsKey",
    "Plan",
    "PlanItem",
    "RatePage",
    "RatePair",
    "SyncItem",
    "SyncResult",
    "SyncSummary",
    "SyncUpdate",
    "apply_plan",
    "bootstrap",
    "plan_sync",
    "pull_hub",
    "start_local_hub",
    "verify_against_hub_arithmetic",
]
