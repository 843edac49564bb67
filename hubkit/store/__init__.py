"""The SQLAlchemy store, hubkit's one door to the database.

Providers, encrypted credentials, rates, history, settings (:class:`Store`); the job lock
and run records (``Store.jobs``, :mod:`hubkit.store.jobs`); the usage tables
(:mod:`hubkit.store.usage`). Every table is made by the alembic migrations.
"""

from hubkit.store.store import Store
from hubkit.store.values import (
    ApplyResult,
    CatalogImportResult,
    CredentialInfo,
    HistoryEntry,
    HubPush,
    OperatorSettings,
    Provider,
    RateAt,
)

__all__ = [
    "ApplyResult",
    "CatalogImportResult",
    "CredentialInfo",
    "HistoryEntry",
    "HubPush",
    "OperatorSettings",
    "Provider",
    "RateAt",
    "Store",
]
