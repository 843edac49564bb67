"""Catalog sync in the workbench: plan it, then Apply it or Propose it (shown in 02).

What the ``price_catalog_sync`` job does (:func:`hubkit.jobs.catalog_sync.plan_sync`: unit
costs from a catalog, drift flagged, optional re-derived rates, missing models created),
as a plan a person reads first. **Apply** writes it in one transaction, refused when the
job's guardrails trip (as the scheduled job would be); **Propose** stores it as a
proposal with its impact, which another person approves in 06 — guardrails or not, since
the approver then sees exactly what trips them.

:class:`CatalogSyncState` holds it; :class:`CatalogSyncApp` is the thin view.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from hubkit.catalog import Catalog, load_catalog
from hubkit.decimals import plain
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.jobs import guardrails
from hubkit.jobs.catalog_sync import SyncPlan, changes_frame, plan_sync
from hubkit.jobs.params import CatalogSyncParams
from hubkit.proposals import Proposal, propose_catalog_sync
from hubkit.store import Store
from hubkit.widgets._common import (
    AppState,
    Message,
    counted,
    field_error,
    gate,
    heading,
    message_area,
    show_message,
    text_input,
)
from hubkit.widgets._propose import ProposeControls, parse_effective_at, proposed_message
from hubkit.widgets._review_table import ReviewTable

PLAN_COLUMNS = {
    "action": "action",
    "model": "model",
    "provider": "provider",
    "type": "type",
    "refused": "held by a guardrail",
    "refusal_reason": "why held",
    "input_change_pct": "input change %",
    "output_change_pct": "output change %",
    "below_cost": "below cost",
    "drift_exceeds": "drift over threshold",
    "old_unit_cost_input": "unit cost in old",
    "new_unit_cost_input": "unit cost in new",
    "old_unit_cost_output": "unit cost out old",
    "new_unit_cost_output": "unit cost out new",
    "old_input_rate": "input old",
    "new_input_rate": "input new",
    "old_output_rate": "output old",
    "new_output_rate": "output new",
}


class CatalogSyncState(AppState):
    """A catalog sync plan of the store's rates, and the last apply or proposal."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.catalog_path = ""  # "" = the sample catalog shipped with hubkit
        self.rederive_rates = False
        self.create_missing = False
        self.errors: dict[str, str] = {}
        self.params: CatalogSyncParams | None = None
        self.catalog: Catalog | None = None
        self.catalog_version: str | None = None
        self.plan: SyncPlan | None = None
        self.refused: list[guardrails.Refusal] = []
        self.proposal: Proposal | None = None
        self.stale = False

    def set_options(
        self,
        catalog_path: str | None = None,
        *,
        rederive_rates: bool | None = None,
        create_missing: bool | None = None,
    ) -> bool:
        if catalog_path is not None:
            self.catalog_path = catalog_path.strip()
        if rederive_rates is not None:
            self.rederive_rates = bool(rederive_rates)
        if create_missing is not None:
            self.create_missing = bool(create_missing)
        return self.make_plan()

    def make_plan(self) -> bool:
        """Read the catalog and the rates, and plan (nothing is written)."""
        self.errors, self.plan, self.refused, self.stale = {}, None, [], False
        ok, params = self._attempt(
            lambda: CatalogSyncParams.create(
                catalog_path=self.catalog_path, rederive_rates=self.rederive_rates,
                create_missing=self.create_missing,
            )
        )  # fmt: skip
        if not ok or params is None:
            self.errors = {"catalog_path": str(self.error)}
            return False
        settings = self.store.get_operator_settings()
        if settings.currency != params.currency:
            self._fail(ValidationError(
                f"the store's currency is {settings.currency}; the workbench reads catalogs in "
                "USD only — run the price-catalog-sync job with currency and exchange_rate",
                field="currency"))  # fmt: skip
            return False
        ok, catalog = self._attempt(lambda: load_catalog(params.catalog_path))
        if not ok or catalog is None:
            self.errors = {"catalog_path": str(self.error)}
            return False
        self.params, self.catalog = params, catalog
        self.catalog_version = "sha256:" + _digest(params.catalog_path)[:16]
        self.plan = plan_sync(
            self.store.list_rates(), catalog, params,
            providers_in_store={p.name for p in self.store.list_providers()},
            margin=settings.target_margin, credit_price=settings.credit_price,
        )  # fmt: skip
        self.refused = guardrails.check(
            [r.candidate() for r in self.plan.changes], max_change_pct=params.max_change_pct,
            allow_below_cost=params.allow_below_cost, credit_price=settings.credit_price,
            allow_zero_rates=params.allow_zero_rates,
        )  # fmt: skip
        self._say(Message.info(self.summary()))
        return True

    def summary(self) -> str:
        plan = self.plan
        if plan is None or self.catalog is None:
            return "no plan: pick a catalog"
        changes = plan.changes
        created = sum(1 for r in changes if r.action == "create")
        text = (
            f"{self.catalog.source}: {counted(len(changes) - created, 'rate')} to update, "
            f"{created:,} to create, {len(plan.rows) - len(changes):,} unchanged, "
            f"{plan.not_in_store:,} catalog models not in the store "
            f"(margin {plain(plan.margin)} %, credit price {plain(plan.credit_price)}"
            f"{', rates re-derived' if self.rederive_rates else ', unit costs only'})"
        )
        if self.refused:
            text += f"; {counted(len(self.refused), 'change')} held by the guardrails"
        return text

    def table(self) -> pd.DataFrame:
        if self.plan is None:
            return pd.DataFrame(columns=list(PLAN_COLUMNS))
        return changes_frame(self.plan, self.refused)

    def _blocker(self, reason: str) -> str | None:
        if self.plan is None:
            return "plan the sync first"
        if not self.plan.changes:
            return "nothing to change: the store already matches the catalog"
        if self.stale:
            return "rates changed since the plan: click 'Plan'"
        if not reason.strip():
            return "type a reason"
        return None

    def apply_blocker(self, reason: str) -> str | None:
        why = self._blocker(reason)
        if why is None and self.refused:
            return (
                f"{counted(len(self.refused), 'change')} held by the guardrails (as the "
                "scheduled job would be): propose it instead, for another person to judge"
            )
        return why

    def propose_blocker(self, reason: str) -> str | None:
        return self._blocker(reason)

    def apply(self, reason: str) -> bool:
        why = self.apply_blocker(reason)
        plan, params = self.plan, self.params
        if why is not None or plan is None or params is None:
            self._fail(ValidationError(f"nothing was written: {why}", field="apply"))
            return False
        ok, result = self._attempt(
            lambda: self.store.import_catalog(
                plan.catalog, create_missing=params.create_missing, profit_margin=plan.margin,
                credit_price=plan.credit_price, rederive_rates=params.rederive_rates,
                drift_threshold_pct=params.drift_threshold_pct, reason=reason.strip(),
                expected_versions=plan.versions,
            )
        )  # fmt: skip
        if not ok or result is None:
            self.stale = isinstance(self.error, StaleVersionError)
            return False
        self.make_plan()
        self._say(Message.success(
            f"applied in one transaction: {result.created:,} created, {result.updated:,} "
            f"updated, {counted(len(result.history_ids), 'history row')} written"))  # fmt: skip
        return True

    def propose(self, reason: str, effective_at: str = "") -> bool:
        why = self.propose_blocker(reason)
        plan = self.plan
        if why is not None or plan is None or self.catalog is None:
            self._fail(ValidationError(f"nothing was proposed: {why}", field="propose"))
            return False
        ok, when = self._attempt(lambda: parse_effective_at(effective_at))
        if not ok:
            self.errors = {"effective_at": str(self.error)}
            return False
        source, version = self.catalog.source, self.catalog_version
        ok, made = self._attempt(
            lambda: propose_catalog_sync(
                self.store, plan.changes, catalog_source=source, catalog_version=version,
                versions=dict(plan.versions), reason=reason.strip(), effective_at=when,
            )
        )  # fmt: skip
        if not ok or made is None:
            self.stale = isinstance(self.error, StaleVersionError)
            return False
        self.proposal = made
        self._say(proposed_message(made))
        return True


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CatalogSyncApp(widgets.VBox):
    """Plan a catalog sync; Apply it, or Propose it for another person to approve."""

    def __init__(self, store: Store, *, state: CatalogSyncState | None = None) -> None:
        self.state = state or CatalogSyncState(store)
        self._path = text_input(
            "catalog file", placeholder="blank = the sample catalog shipped with hubkit",
            width="620px",
        )  # fmt: skip
        self._path_error = widgets.HTML()
        self._rederive = widgets.Checkbox(
            value=False, indent=False, description="also re-derive the rates (margin formula)"
        )
        self._create = widgets.Checkbox(
            value=False, indent=False, description="create catalog models missing from the store"
        )
        self._plan = widgets.Button(description="Plan", icon="search")
        self._summary = widgets.HTML()
        self._table = ReviewTable(
            "hubkit-catalog-plan", PLAN_COLUMNS, empty="nothing to change", noun="rate change",
            download_name="catalog-sync-plan.csv", download_label="exactly what it would write",
        )  # fmt: skip
        self._reason = text_input("reason", placeholder="required: why", width="520px")
        self._apply = widgets.Button(description="Apply", button_style="danger", icon="check")
        self._why_not = widgets.HTML()
        self._proposer = ProposeControls("hubkit-catalog")
        self._effective_error = widgets.HTML()
        self._message = message_area()
        for w, name in (
            (self._path, "path"), (self._plan, "plan"), (self._summary, "summary"),
            (self._reason, "reason"), (self._apply, "apply"), (self._why_not, "why-not"),
            (self._message, "message"), (self._rederive, "rederive"), (self._create, "create"),
        ):  # fmt: skip
            w.add_class(f"hubkit-catalog-{name}")
        self._plan.on_click(self._on_plan)
        self._apply.on_click(self._on_apply)
        self._proposer.button.on_click(self._on_propose)
        self._reason.observe(lambda _: self._render_actions(), names="value")
        self.add_class("hubkit-catalog")
        super().__init__(
            [
                heading("Catalog sync (unit costs from a price catalog)"),
                widgets.HBox([self._path, self._path_error]),
                widgets.HBox([self._rederive, self._create, self._plan]),
                self._summary,
                self._table.box,
                widgets.HBox([self._reason, self._apply]),
                self._why_not,
                widgets.HBox([self._proposer.effective, self._proposer.button,
                              self._effective_error]),
                self._proposer.why_not,
                self._message,
            ]
        )  # fmt: skip
        self._render()

    def _render(self) -> None:
        s = self.state
        self._summary.value = f"<b>{html.escape(s.summary())}</b>"
        self._table.show(s.table())
        field_error(self._path_error, s.errors.get("catalog_path"))
        self._render_actions()

    def _render_actions(self) -> None:
        s = self.state
        reason = self._reason.value
        gate(self._apply, self._why_not, s.apply_blocker(reason),
             ready="write the plan in one transaction", prefix="Apply: ")  # fmt: skip
        gate(self._proposer.button, self._proposer.why_not, s.propose_blocker(reason),
             ready="store the plan as a proposal for another person to approve",
             prefix="Propose: ")  # fmt: skip
        field_error(self._effective_error, s.errors.get("effective_at"))
        message = s.message
        show_message(self._message, message if message and message.level != "info" else None)

    def _on_plan(self, _: Any) -> None:
        self.state.set_options(
            self._path.value, rederive_rates=self._rederive.value,
            create_missing=self._create.value,
        )  # fmt: skip
        self._render()

    def _on_apply(self, _: Any) -> None:
        if self.state.apply(self._reason.value):
            self._reason.value = ""
        self._render()

    def _on_propose(self, _: Any) -> None:
        if self.state.propose(self._reason.value, self._proposer.effective.value):
            self._reason.value = ""
            self._proposer.effective.value = ""
        self._render()
