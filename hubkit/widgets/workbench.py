"""What every workbench notebook does first: open the store, seed a fresh one, say where it is.

Kept here, not in the notebooks, so that each notebook stays one import and one call.
"""

from __future__ import annotations

import sys

from hubkit import __version__
from hubkit.catalog import load_catalog, shipped_catalog_path
from hubkit.config import EnvironmentSettings, get_settings
from hubkit.demo import ensure_demo_providers
from hubkit.hub.redact import redact_url
from hubkit.store import Store

SAMPLE_REASON = "sample data for the workbench notebooks"


def store_is_empty(store: Store) -> bool:
    """No provider and no rate yet (a store someone has started filling is never seeded)."""
    return not store.list_providers()


def seed_sample_data(store: Store) -> bool:
    """Give an empty store the sample providers and the shipped catalog's models.

    Rates are created at the stored target margin and credit price, with history rows
    (``catalog_import``). Returns False, changing nothing, when the store is not empty.
    """
    if not store_is_empty(store):
        return False
    ensure_demo_providers(store)
    store.import_catalog(
        load_catalog(shipped_catalog_path()), create_missing=True, reason=SAMPLE_REASON
    )
    return True


def open_workbench_store(
    *, seed_if_empty: bool = True, settings: EnvironmentSettings | None = None
) -> Store:
    """The store named by HUBKIT_DATABASE_URL (default: the embedded SQLite file).

    With ``seed_if_empty`` a brand-new store gets the sample data, so every notebook runs
    top to bottom on a fresh checkout.
    """
    store = Store.open(settings=settings)
    if seed_if_empty:
        seed_sample_data(store)
    return store


def environment_summary(store: Store, settings: EnvironmentSettings | None = None) -> str:
    """Which Python, which database, which folders: the first thing to check in a notebook.

    Never shows a secret: the database URL's password is hidden and the hub token is only
    reported as set or not.
    """
    settings = settings or get_settings()
    hub = "not configured (HUBKIT_HUB_URL unset)"
    if settings.hub_url:
        token = "set" if settings.hub_token else "NOT set (HUBKIT_HUB_TOKEN)"
        hub = f"{redact_url(settings.hub_url)} (token {token})"
    lines = [
        f"python:    {sys.executable}",
        f"hubkit:    {__version__}",
        f"database:  {store.engine.url.render_as_string(hide_password=True)}",
        f"data dir:  {settings.data_dir}",
        f"reports:   {settings.reports_dir}",
        f"actor:     {store.actor}",
        f"hub:       {hub}",
    ]
    return "\n".join(lines)
