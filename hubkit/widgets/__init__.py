"""The operator workbench: ipywidgets apps over the store, one module per app.

Each app is a plain state class (actions + state, no widgets, unit-tested) and a thin
``ipywidgets.VBox`` view that wires widgets to it. In a notebook::

    from hubkit.widgets import BulkUpdateApp, open_workbench_store
    store = open_workbench_store()
    BulkUpdateApp(store)

Adding an app = a new module here with its ``…State`` and ``…App``, plus its two names
below. Shared view helpers live in :mod:`hubkit.widgets._common`.
"""

from hubkit.widgets.bulk import BulkUpdateApp, BulkUpdateState
from hubkit.widgets.catalog_sync import CatalogSyncApp, CatalogSyncState
from hubkit.widgets.finance_month import FinanceMonthState
from hubkit.widgets.finance_month_view import FinanceMonthApp, finance_month_app
from hubkit.widgets.hub_sync import HubConnection, HubSyncApp, HubSyncState, connect_hub
from hubkit.widgets.proposals import ProposalsState
from hubkit.widgets.proposals_view import ProposalsApp, proposals_panel
from hubkit.widgets.providers import ProvidersApp, ProvidersState
from hubkit.widgets.rates import RateEditorState
from hubkit.widgets.rates_view import RateEditorApp
from hubkit.widgets.scenarios import ScenarioExplorerState, finance_summary, open_finance_store
from hubkit.widgets.scenarios_view import ScenarioExplorerApp, scenario_explorer
from hubkit.widgets.workbench import (
    environment_summary,
    open_workbench_store,
    seed_sample_data,
)

__all__ = [
    "BulkUpdateApp",
    "BulkUpdateState",
    "CatalogSyncApp",
    "CatalogSyncState",
    "FinanceMonthApp",
    "FinanceMonthState",
    "HubConnection",
    "HubSyncApp",
    "HubSyncState",
    "ProposalsApp",
    "ProposalsState",
    "ProvidersApp",
    "ProvidersState",
    "RateEditorApp",
    "RateEditorState",
    "ScenarioExplorerApp",
    "ScenarioExplorerState",
    "connect_hub",
    "environment_summary",
    "finance_month_app",
    "finance_summary",
    "open_finance_store",
    "open_workbench_store",
    "proposals_panel",
    "scenario_explorer",
    "seed_sample_data",
]
