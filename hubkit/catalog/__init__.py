"""Price catalogs: provider unit costs from a LiteLLM price map or a CSV, and their drift
against the stored costs (pure: no database).

- :mod:`hubkit.catalog.litellm`: :class:`Catalog`, :func:`load_catalog` and the LiteLLM
  mapping (the provider route table);
- :mod:`hubkit.catalog.entries`: one catalog row (:class:`CatalogEntry`) and what was not
  mapped (:class:`UnmappedEntry`);
- :mod:`hubkit.catalog.csv_prices`: the CSV format, read and written;
- :mod:`hubkit.catalog.cost_drift`: catalog costs against stored costs (:func:`drift`).
  Not named ``drift.py``: the package exports the function :func:`drift`, which would
  shadow such a submodule.
"""

from __future__ import annotations

from hubkit.catalog.cost_drift import (
    DEFAULT_THRESHOLD_PCT,
    INFINITE_DRIFT,
    Drift,
    drift,
    drift_frame,
)
from hubkit.catalog.litellm import (
    CSV_COLUMNS,
    LITELLM_ROUTES,
    Catalog,
    CatalogEntry,
    LiteLLMRoute,
    UnmappedEntry,
    hub_provider,
    load_catalog,
    shipped_catalog_path,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_THRESHOLD_PCT",
    "INFINITE_DRIFT",
    "LITELLM_ROUTES",
    "Catalog",
    "CatalogEntry",
    "Drift",
    "LiteLLMRoute",
    "UnmappedEntry",
    "drift",
    "drift_frame",
    "hub_provider",
    "load_catalog",
    "shipped_catalog_path",
]
