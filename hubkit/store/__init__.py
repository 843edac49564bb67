"""The SQLAlchemy store: providers, encrypted credentials, rates, history, settings."""

from hubkit.store.store import Store
from hubkit.store.values import (
    ApplyResult,
    CatalogImportResult,
    CredentialInfo,
    HistoryEntry,
    OperatorSettings,
    Provider,
    RateAt,
)

__all__ = [
    "ApplyResult",
    "CatalogImportResult",
    "CredentialInfo",
    "HistoryEntry",
    "OperatorSettings",
    "Provider",
    "RateAt",
    "Store",
]
