"""Talking to an AIGNE Hub: the HTTP client, its parsed values and sync (the client side).

- :class:`HubClient` — typed, retrying, secret-safe client for hub-api.md's admin routes.
- :mod:`hubkit.hub.models` — frozen values for the hub's answers (Decimal money).
- :mod:`hubkit.hub.pull` / :mod:`~hubkit.hub.plan` / :mod:`~hubkit.hub.apply` — read a hub
  (:class:`HubState`), diff the store against it (:class:`Plan`), carry a plan out
  (:class:`ApplyReport`); :mod:`hubkit.hub.verify` cross-checks the margin arithmetic.
- :mod:`hubkit.hub.redact` — masking tokens and keys in logs and error texts.
- :func:`start_local_hub` — runs the bundled local hub (:mod:`hubkit.localhub`, a server
  with its own copy of the gateway's rules) in a subprocess; talk to it with
  ``HubClient(hub.url, hub.token)``.

For notebooks::

    from hubkit.hub import HubClient, pull_hub, plan_sync, apply_plan
    state = pull_hub(client); p = plan_sync(store, state); report = apply_plan(p, store, client)

:class:`HubState` is what :func:`pull_hub` read from a hub; the local hub's own data is
:class:`hubkit.localhub.state.LocalHubState`, a different thing.

The functions are re-exported under those names, never as ``plan`` / ``pull`` / ``apply``
/ ``redact``: a package attribute with a submodule's name would shadow the submodule
(``hubkit.hub.plan`` must stay the module).

The local hub is not imported here: ``start_local_hub`` and ``LocalHubProcess`` are loaded
from its process starter (:mod:`hubkit.localhub.process`) on first use, so the client's
import path holds no server, no starlette and no test-only fault switches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubkit.hub.apply import ApplyReport, ItemResult, ItemStatus
from hubkit.hub.apply import apply as apply_plan
from hubkit.hub.client import HubClient
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

if TYPE_CHECKING:
    from hubkit.localhub.process import LocalHubProcess, start_local_hub

#: names served by the local hub's process starter, imported when first asked for
_FROM_LOCALHUB = ("LocalHubProcess", "start_local_hub")


def __getattr__(name: str) -> Any:
    if name in _FROM_LOCALHUB:
        # The client reaches the local hub only here, and only when a hub is wanted.
        from hubkit.localhub import process

        return getattr(process, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_LOCALHUB})


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
