"""The rate editor's thin ipywidgets view over :class:`~hubkit.widgets.rates.RateEditorState`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import ipywidgets as widgets

from hubkit.domain import RateType
from hubkit.errors import StaleVersionError
from hubkit.store import Store
from hubkit.widgets._common import (
    counted,
    field_error,
    frame_html,
    gate,
    heading,
    message_area,
    show_message,
    text_input,
)
from hubkit.widgets._propose import ProposeControls
from hubkit.widgets._review_table import ReviewTable
from hubkit.widgets.rates import (
    EDIT_FIELDS,
    HISTORY_COLUMNS,
    NUMBER_FIELDS,
    RATE_COLUMNS,
    SORTABLE,
    RateEditorState,
)

# the table leads with what a reviewer judges (which rate, its markup, a red flag)
_KEY_FIRST = ("model", "provider", "type", "input_markup_pct", "output_markup_pct", "below_cost")
_TABLE_COLUMNS = {
    **{c: RATE_COLUMNS[c] for c in _KEY_FIRST},
    **{c: label for c, label in RATE_COLUMNS.items() if c not in _KEY_FIRST},
}
# the form names a number as the table heads its column
_LABELS = {**{n: RATE_COLUMNS[n] for n in NUMBER_FIELDS}, "model_display": "display name"}


class _Form:
    """Text fields with an inline error label beside each."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.texts = {n: text_input(_LABELS.get(n, n.replace("_", " "))) for n in names}
        self.errors = {n: widgets.HTML() for n in names}

    def rows(self) -> list[widgets.Widget]:
        return [widgets.HBox([self.texts[n], self.errors[n]]) for n in self.texts]

    def values(self) -> dict[str, str]:
        return {n: t.value for n, t in self.texts.items()}

    def fill(self, values: dict[str, str]) -> None:
        for name, text in self.texts.items():
            text.value = values.get(name, "")

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, area in self.errors.items():
            field_error(area, errors.get(name))


class RateEditorApp(widgets.VBox):
    """Filter, sort and edit model rates; batch-create; history with revert."""

    def __init__(self, store: Store, *, state: RateEditorState | None = None) -> None:
        self.state = state or RateEditorState(store)
        self._rendering = False
        s = self.state
        # filters and table
        self._f_providers = widgets.SelectMultiple(
            options=s.provider_names, description="provider", rows=4
        )
        self._f_types = widgets.SelectMultiple(
            options=[t.value for t in RateType], description="type", rows=4
        )
        self._f_model = text_input("model (glob)", placeholder="e.g. gpt-4o*", width="300px")
        self._sort = widgets.Dropdown(options=SORTABLE, value=s.sort_by, description="sort by")
        self._descending = widgets.Checkbox(value=False, description="descending")
        self._refresh = widgets.Button(description="Refresh", icon="refresh")
        self._count = widgets.HTML()
        self._table = ReviewTable(
            "hubkit-rates-table", _TABLE_COLUMNS, empty="no rates match", noun="rate",
            download_name="rates.csv", download_label="the rates shown",
        )  # fmt: skip
        # edit one rate
        self._pick = widgets.Dropdown(description="rate", layout=widgets.Layout(width="520px"))
        self._edit = _Form(EDIT_FIELDS)
        self._edit_reason = text_input("reason", placeholder="why (kept in history)")
        self._save = widgets.Button(description="Save", button_style="primary")
        self._reload = widgets.Button(description="Reload", button_style="warning", icon="refresh")
        # beside Save / Create: the same change as a proposal another person approves (06)
        self._e_propose = ProposeControls("hubkit-rates")
        self._b_propose = ProposeControls("hubkit-rates-batch")
        # batch create
        self._b_providers = widgets.SelectMultiple(
            options=s.provider_names, description="providers", rows=5
        )
        self._b_model = text_input("model", placeholder="e.g. gpt-4o-mini")
        self._b_type = widgets.Dropdown(options=[t.value for t in RateType], description="type")
        self._batch = _Form(EDIT_FIELDS)
        self._b_errors = {"model": widgets.HTML(), "providers": widgets.HTML()}
        self._b_reason = text_input("reason", placeholder="why (kept in history)")
        self._create = widgets.Button(description="Create for all", button_style="primary")
        # history
        self._history = widgets.HTML()
        self._h_pick = widgets.Dropdown(description="change")
        self._h_force = widgets.Checkbox(value=False, description="force (overwrite later changes)")
        self._h_reason = text_input("reason", placeholder="why revert")
        self._revert = widgets.Button(description="Revert change", button_style="warning")
        self._revert_why = widgets.HTML()
        self._message = message_area()  # fmt: skip

        for w in (self._f_providers, self._f_types, self._f_model, self._sort, self._descending):
            w.observe(self._on_filter, names="value")
        self._pick.observe(self._on_pick, names="value")
        self._refresh.on_click(self._on_refresh)
        self._save.on_click(self._on_save)
        self._reload.on_click(self._on_reload)
        self._create.on_click(self._on_create)
        self._e_propose.button.on_click(self._on_propose_edit)
        self._b_propose.button.on_click(self._on_propose_batch)
        self._revert.on_click(self._on_revert)
        self._h_pick.observe(self._on_history_pick, names="value")
        for w, name in (
            (self._h_pick, "change"), (self._revert, "revert"), (self._revert_why, "revert-why"),
            (self._history, "history"), (self._pick, "pick"), (self._save, "save"),
            (self._edit_reason, "edit-reason"), (self._message, "message"),
        ):  # fmt: skip
            w.add_class(f"hubkit-rates-{name}")  # stable selectors for the browser test
        for name, text in self._edit.texts.items():
            text.add_class(f"hubkit-rates-edit-{name}")

        tabs = widgets.Tab(
            [
                widgets.VBox([self._pick, *self._edit.rows(), self._edit_reason,
                              widgets.HBox([self._save, self._reload]),
                              widgets.HBox([self._e_propose.effective, self._e_propose.button]),
                              self._e_propose.why_not]),
                widgets.VBox([widgets.HBox([self._b_providers, self._b_errors["providers"]]),
                              widgets.HBox([self._b_model, self._b_errors["model"]]), self._b_type,
                              *self._batch.rows(), self._b_reason, self._create,
                              widgets.HBox([self._b_propose.effective, self._b_propose.button]),
                              self._b_propose.why_not]),
                widgets.VBox([self._history, self._h_pick, self._h_force, self._h_reason,
                              widgets.HBox([self._revert, self._revert_why])]),
            ],
            titles=("Edit selected rate", "Create for several providers", "History & revert"),
        )  # fmt: skip
        self.add_class("hubkit-rates")
        super().__init__(
            [
                heading("Model rates"),
                widgets.HBox([self._f_providers, self._f_types]),
                widgets.HBox([self._f_model, self._sort, self._descending, self._refresh]),
                self._count,
                self._table.box,
                tabs,
                self._message,
            ]
        )
        self._render()

    # ---- drawing -------------------------------------------------------------------------
    def _render(self) -> None:
        s = self.state
        table = s.table()
        below = int(table["below_cost"].sum()) if not table.empty else 0
        self._count.value = (
            f"<b>{counted(len(table), 'rate')}</b> shown · markup on cost at credit price "
            f"{s.credit_price} · <b>{below}</b> below cost"
        )
        self._table.show(table)
        self._rendering = True
        try:
            self._pick.options = [("— pick a rate —", 0)] + [
                (f"{r.provider} / {r.model} ({r.type}) #{r.id} v{r.version}", int(r.id))
                # the table's columns (ids are ints); pandas' stubs type fields as any scalar
                for r in cast("Iterable[Any]", table.itertuples())
            ]
            self._pick.value = (
                s.selected.id if s.selected and s.selected.id in self._pick_ids() else 0
            )
            entries = s.history_entries()
            # nothing is picked until the person picks: a revert is never a default
            self._h_pick.options = [("— pick a change —", None)] + [
                (f"#{e.id} {e.change_type} {e.changed_at:%Y-%m-%d %H:%M}", e.id) for e in entries
            ]
            self._h_pick.value = None
            for w, names in (
                (self._f_providers, s.provider_names),
                (self._b_providers, s.provider_names),
            ):
                if list(w.options) != names:
                    w.options = names
        finally:
            self._rendering = False
        self._history.value = frame_html(
            s.history(), columns=HISTORY_COLUMNS, empty="select a rate to see its history"
        )
        self._render_form()

    def _pick_ids(self) -> list[int]:
        return [v for _, v in self._pick.options]

    def _render_form(self) -> None:
        s = self.state
        self._edit.show_errors(s.errors)
        self._batch.show_errors(s.errors)
        for name, area in self._b_errors.items():
            field_error(area, s.errors.get(name))
        self._save.disabled = s.selected is None
        self._e_propose.button.disabled = s.selected is None
        for controls in (self._e_propose, self._b_propose):
            field_error(controls.why_not, s.errors.get("effective_at"))
        self._render_revert()
        stale = s.stale or isinstance(s.error, StaleVersionError)
        self._reload.layout.display = "" if stale else "none"
        show_message(self._message, s.message)

    def _render_revert(self) -> None:
        gate(self._revert, self._revert_why, self.state.revert_blocker(self._h_pick.value),
             ready="undo this change (kept in history)")  # fmt: skip

    # ---- events --------------------------------------------------------------------------
    def _on_history_pick(self, _: dict[str, Any]) -> None:
        if not self._rendering:
            self._render_revert()

    def _on_filter(self, _: dict[str, Any]) -> None:
        if self._rendering:
            return
        self.state.set_filter(self._f_providers.value, self._f_types.value, self._f_model.value)
        self.state.set_sort(self._sort.value, ascending=not self._descending.value)
        self._render()

    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        self.state.select(change["new"] or None)
        self._edit.fill(self.state.form_values())
        self._render()

    def _on_refresh(self, _: widgets.Button) -> None:
        self.state.refresh()
        self._render()

    def _on_save(self, _: widgets.Button) -> None:
        if self.state.save(**self._edit.values(), reason=self._edit_reason.value):
            self._edit.fill(self.state.form_values())  # the stored, normalised values
            self._edit_reason.value = ""
        self._render()

    def _on_reload(self, _: widgets.Button) -> None:
        self.state.reload()
        self._edit.fill(self.state.form_values())
        self._render()

    def _on_create(self, _: widgets.Button) -> None:
        ok = self.state.batch_create(
            self._b_providers.value,
            self._b_model.value,
            self._b_type.value,
            **self._batch.values(),
            reason=self._b_reason.value,
        )
        if ok:
            self._b_model.value = ""
        self._render()

    def _on_propose_edit(self, _: widgets.Button) -> None:
        if self.state.propose_edit(
            **self._edit.values(), reason=self._edit_reason.value,
            effective_at=self._e_propose.effective.value,
        ):  # fmt: skip
            self._edit_reason.value = ""
            self._e_propose.effective.value = ""
        self._render()

    def _on_propose_batch(self, _: widgets.Button) -> None:
        if self.state.propose_batch_create(
            self._b_providers.value, self._b_model.value, self._b_type.value,
            **self._batch.values(), reason=self._b_reason.value,
            effective_at=self._b_propose.effective.value,
        ):  # fmt: skip
            self._b_reason.value = ""
            self._b_propose.effective.value = ""
        self._render()

    def _on_revert(self, _: widgets.Button) -> None:
        if self.state.revert(
            self._h_pick.value, force=self._h_force.value, reason=self._h_reason.value
        ):
            self._edit.fill(self.state.form_values())
            self._h_reason.value = ""
        self._render()
