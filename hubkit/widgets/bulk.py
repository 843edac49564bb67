"""Bulk rate update (margin mode): exact inputs, live preview diff, apply with a reason.

:class:`BulkUpdateState` keeps the margin and credit price as the *exact text* typed (the
sliders of :class:`BulkUpdateApp` are floats and only ever propose a text), previews
against the rates it read, and applies exactly that preview in one transaction. If any
rate changed since it was read, the store refuses with StaleVersionError and nothing is
written; the state then says so and waits for a re-read.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import pandas as pd

from hubkit.decimals import plain
from hubkit.domain import Rate, RateType
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.frames import history_frame, preview_frame, skipped_frame
from hubkit.pricing import (
    BulkPreview,
    RateFilter,
    SkipReason,
    bulk_preview,
    check_zero_rates,
)
from hubkit.store import ApplyResult, HistoryEntry, Store
from hubkit.widgets._common import (
    AppState,
    Message,
    PriceInputs,
    Progress,
    ProgressBar,
    counting,
    field_error,
    frame_html,
    heading,
    message_area,
    price_controls,
    show_message,
    text_input,
)
from hubkit.widgets.rates import HISTORY_COLUMNS

PREVIEW_COLUMNS = {
    "provider": "provider",
    "model": "model",
    "type": "type",
    "old_input_rate": "input old",
    "new_input_rate": "input new",
    "input_change_pct": "input change %",
    "old_output_rate": "output old",
    "new_output_rate": "output new",
    "output_change_pct": "output change %",
    "drops_to_zero": "drops to 0",
    "below_cost": "below cost",
}
SKIPPED_COLUMNS = {"provider": "provider", "model": "model", "type": "type", "reason": "reason"}
# the history rows an apply wrote, labelled as the rate editor's history shows them
WRITTEN_COLUMNS = {
    "id": HISTORY_COLUMNS["id"], "provider": "provider", "model": "model",
    **{k: v for k, v in HISTORY_COLUMNS.items() if k.startswith(("previous_", "current_"))},
    "actor": HISTORY_COLUMNS["actor"], "reason": HISTORY_COLUMNS["reason"],
}  # fmt: skip


class BulkUpdateState(PriceInputs, AppState):
    """Margin %, credit price, filters, the preview they give, and the last apply."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._start_from(store.get_operator_settings())
        self.rate_filter = RateFilter()
        self.errors: dict[str, str] = {}
        self.preview: BulkPreview | None = None
        self.result: ApplyResult | None = None
        self.written: list[HistoryEntry] = []
        self.stale = False
        #: confirms an apply that makes a priced rate 0 (free) or rounds one to 0
        self.allow_zero_rates = False
        self.provider_names: list[str] = []
        self._rates: list[Rate] = []
        self.reload()

    # ---- inputs --------------------------------------------------------------------------
    def reload(self, progress: Progress | None = None) -> None:
        """Re-read the rates (the versions an apply will insist on) and re-preview."""
        self.provider_names = [p.name for p in self.store.list_providers()]
        self._rates = self.store.list_rates()
        self.stale = False
        self.update_preview(progress)

    def set_margin(self, text: str, progress: Progress | None = None) -> bool:
        self.margin_text = str(text).strip()
        return self.update_preview(progress)

    def set_credit_price(self, text: str, progress: Progress | None = None) -> bool:
        self.credit_price_text = str(text).strip()
        return self.update_preview(progress)

    def set_filter(
        self,
        providers: Iterable[str] | str | None = None,
        types: Iterable[str] | str | None = None,
        model_pattern: str | None = None,
        progress: Progress | None = None,
    ) -> bool:
        ok, flt = self._attempt(lambda: RateFilter.create(providers, types, model_pattern))
        if not ok or flt is None:
            return False
        self.rate_filter = flt
        return self.update_preview(progress)

    @property
    def rate_count(self) -> int:
        """How many rates were read (what a preview walks through)."""
        return len(self._rates)

    # ---- preview -------------------------------------------------------------------------
    def update_preview(self, progress: Progress | None = None) -> bool:
        """Recompute the diff from the rates read; invalid inputs clear it and say why."""
        self.errors = {}
        rates = counting(self._rates, len(self._rates), progress)
        try:
            self.preview = bulk_preview(rates, self.margin_text, self.credit_price_text,
                                        self.rate_filter)  # fmt: skip
        except ValidationError as exc:
            self.preview = None
            self.errors = {"credit_price" if exc.field == "creditPrice" else "margin": str(exc)}
            self._fail(exc)
            return False
        self._say(Message.info(self.summary()))
        return True

    def summary(self) -> str:
        p = self.preview
        if p is None:
            return "no preview: fix the inputs"
        drops = sum(1 for c in p.changes if c.drops_to_zero)
        below = len(p.below_cost())
        text = (
            f"{len(p.changed)} rates would change, {len(p.unchanged)} unchanged, "
            f"{len(p.skipped)} skipped (margin {plain(p.profit_margin)} % markup on cost, "
            f"credit price {plain(p.credit_price)})"
        )
        if drops:
            text += f"; {drops} with a side dropping to 0"
        zero = len(p.zero_rates())
        if zero:
            text += (
                f"; {zero} would become FREE (rate 0): refused unless 'allow rates of 0' is ticked"
            )
        if below:
            text += f"; {below} BELOW COST"
        return text

    def preview_table(self, *, changed_only: bool = True) -> pd.DataFrame:
        if self.preview is None:
            return preview_frame(BulkPreview(Decimal(0), Decimal(1), (), ()))
        frame = preview_frame(self.preview)
        return frame[frame["changed"]].reset_index(drop=True) if changed_only else frame

    def skipped_table(self) -> pd.DataFrame:
        if self.preview is None:
            return skipped_frame(BulkPreview(Decimal(0), Decimal(1), (), ()))
        return skipped_frame(self.preview)

    # ---- apply ---------------------------------------------------------------------------
    def apply(self, reason: str, progress: Progress | None = None) -> bool:
        """Write the preview in one transaction; refused without a reason or when stale."""
        preview = self.preview
        if preview is None or not preview.changed:
            self._fail(ValidationError("nothing to apply: the preview changes no rate"))
            return False
        if not reason or not reason.strip():
            self.errors = {"reason": "a reason is required; it is kept in the rate history"}
            self._fail(ValidationError(self.errors["reason"], field="reason"))
            return False
        self.errors = {}
        ok, _ = self._attempt(
            lambda: check_zero_rates(preview, allow_zero_rates=self.allow_zero_rates)
        )
        if not ok:
            return False
        steps = 3
        if progress:
            progress(0, steps)
        ok, result = self._attempt(
            lambda: self.store.apply_bulk_update(preview, reason=reason.strip())
        )
        if not ok or result is None:
            self.stale = isinstance(self.error, StaleVersionError)
            if self.stale:
                self.message = Message.error(
                    f"{self.error} — click 'Reload rates' to preview against the current values"
                )
            return False
        if progress:
            progress(1, steps)
        ids = set(result.history_ids)
        written = [e for e in self.store.history(since=result.changed_at) if e.id in ids]
        if progress:
            progress(2, steps)
        self.reload()  # the new versions: a second apply must preview again
        self.result, self.written = result, written
        self._say(Message.success(
            f"applied: {result.updated} rates updated in one transaction, "
            f"{len(self.written)} history rows written (reason: {reason.strip()!r})"))  # fmt: skip
        if progress:
            progress(steps, steps)
        return True

    def written_table(self) -> pd.DataFrame:
        return history_frame(self.written)


# ==== the view =============================================================================


class BulkUpdateApp(widgets.VBox):
    """Margin bulk update with a live preview. ``BulkUpdateApp(store)`` in a notebook cell."""

    def __init__(self, store: Store, *, state: BulkUpdateState | None = None) -> None:
        self.state = state or BulkUpdateState(store)
        s = self.state
        self._rendering = False
        self._margin_slider, self._margin_text, self._price_slider, self._price_text = (
            price_controls(s, "margin", "260px")
        )
        self._margin_error, self._price_error = widgets.HTML(), widgets.HTML()
        self._providers = widgets.SelectMultiple(
            options=s.provider_names, description="providers", rows=4
        )
        self._types = widgets.SelectMultiple(
            options=[t.value for t in RateType], description="types", rows=4
        )
        self._pattern = text_input("model pattern", placeholder="glob, e.g. gpt-4o*", width="300px")
        self._summary = widgets.HTML()
        self._preview = widgets.HTML()
        self._skipped = widgets.HTML()
        self._reason = text_input("reason", placeholder="required: why these prices", width="520px")
        self._reason_error = widgets.HTML()
        self._allow_zero = widgets.Checkbox(
            value=s.allow_zero_rates, description="allow rates of 0 (free)", indent=False
        )
        self._apply = widgets.Button(description="Apply", button_style="danger", icon="check")
        self._reload = widgets.Button(description="Reload rates", icon="refresh")
        self._progress = ProgressBar()
        self._written = widgets.HTML()
        self._message = message_area()  # fmt: skip

        for w, cls in (
            (self._margin_slider, "margin-slider"),
            (self._margin_text, "margin-text"),
            (self._price_slider, "price-slider"),
            (self._price_text, "price-text"),
            (self._summary, "summary"),
            (self._preview, "preview"),
            (self._reason, "reason"),
            (self._apply, "apply"),
            (self._reload, "reload"),
            (self._written, "written"),
        ):
            w.add_class(f"hubkit-bulk-{cls}")  # stable selectors for the browser test
        self._margin_text.observe(self._on_margin, names="value")
        self._price_text.observe(self._on_price, names="value")
        for w in (self._providers, self._types, self._pattern):
            w.observe(self._on_filter, names="value")
        self._allow_zero.observe(self._on_allow_zero, names="value")
        self._apply.on_click(self._on_apply)
        self._reload.on_click(self._on_reload)
        self.add_class("hubkit-bulk")
        super().__init__(
            [
                heading("Bulk rate update (margin = markup on cost)"),
                widgets.HBox([self._margin_slider, self._margin_text, self._margin_error]),
                widgets.HBox([self._price_slider, self._price_text, self._price_error]),
                widgets.HBox([self._providers, self._types, self._pattern]),
                self._progress.bar,
                self._summary,
                self._preview,
                widgets.HTML(
                    f"<b>Skipped</b> ({SkipReason.summary()}: a margin cannot be applied)"
                ),
                self._skipped,
                widgets.HBox([self._reason, self._allow_zero, self._apply, self._reload]),
                self._reason_error,
                self._message,
                self._written,
            ]
        )  # fmt: skip
        self._render()

    def _render(self) -> None:
        s = self.state
        self._summary.value = f"<b>{s.summary()}</b>"
        self._preview.value = frame_html(
            s.preview_table(), columns=PREVIEW_COLUMNS, empty="no rate would change"
        )
        self._skipped.value = frame_html(
            s.skipped_table(), columns=SKIPPED_COLUMNS, empty="none", height="160px"
        )
        field_error(self._margin_error, s.errors.get("margin"))
        field_error(self._price_error, s.errors.get("credit_price"))
        field_error(self._reason_error, s.errors.get("reason"))
        self._apply.disabled = s.preview is None or not s.preview.changed
        self._written.value = (
            ""
            if not s.written
            else "<b>History rows written</b>"
            + frame_html(s.written_table(), columns=WRITTEN_COLUMNS, height="240px")
        )
        if list(self._providers.options) != s.provider_names:
            self._providers.options = s.provider_names
        show_message(self._message, s.message if s.message and s.message.level != "info" else None)

    def _run(self, label: str, work: Any) -> None:
        """Run state work with the progress bar showing, then redraw."""
        with self._progress.showing(label, max(self.state.rate_count, 1)) as report:
            work(report)
        self._render()

    def _on_margin(self, change: dict[str, Any]) -> None:
        self._run("previewing", lambda p: self.state.set_margin(change["new"], p))

    def _on_price(self, change: dict[str, Any]) -> None:
        self._run("previewing", lambda p: self.state.set_credit_price(change["new"], p))

    def _on_filter(self, _: dict[str, Any]) -> None:
        self._run("previewing", lambda p: self.state.set_filter(
            self._providers.value, self._types.value, self._pattern.value, p))  # fmt: skip

    def _on_allow_zero(self, change: dict[str, Any]) -> None:
        self.state.allow_zero_rates = bool(change["new"])

    def _on_reload(self, _: widgets.Button) -> None:
        self._run("reading rates", self.state.reload)

    def _on_apply(self, _: widgets.Button) -> None:
        ok = [False]

        def work(progress: Any) -> None:
            ok[0] = self.state.apply(self._reason.value, progress)

        self._run("applying", work)
        if ok[0]:
            self._reason.value = ""
