"""Talking to an AIGNE Hub: the HTTP client, its parsed values, and a local hub for tests.

- :class:`HubClient` — typed, retrying, secret-safe client for hub-api.md's admin routes.
- :mod:`hubkit.hub.models` — frozen values for the hub's answers (Decimal money).
- :mod:`hubkit.hub.server` — a faithful local hub (``python -m hubkit.hub.server``).
- :mod:`hubkit.hub.redact` — masking tokens and keys in logs and error texts (import it
  from there: the module's name would be shadowed by a re-exported function).

The server is not imported here: it needs starlette/uvicorn, the client does not.
"""

from __future__ import annotations

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

__all__ = [
    "TIER2_PROVIDERS",
    "BatchCreateResult",
    "BulkUpdateItem",
    "BulkUpdateResult",
    "CredentialCheck",
    "Health",
    "HubClient",
    "HubCredential",
    "HubProvider",
    "HubProviderRef",
    "HubRate",
    "RatePage",
    "RatePair",
    "SyncItem",
    "SyncResult",
    "SyncSummary",
    "SyncUpdate",
]
