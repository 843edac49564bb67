"""Bulk rate update (margin mode): exact inputs, live preview diff, apply with a reason.

:class:`BulkUpdateState` keeps the margin and credit price as the *exact text* typed (the
sliders of :class:`BulkUpdateApp` are floats and only ever propose a text), previews
against the rates it read, and applies exactly that preview in one transaction. If any
rate changed since it was read, the store refuses with StaleVersionError and nothing is
written; the state then says so and waits for a re-read.

Typing is answered in two speeds. An input changed with ``defer=True`` (the app's fields)
updates the summary's counts at once (:func:`~hubkit.pricing.bulk_counts.bulk_counts`,
numpy over the rates read, equal to the exact preview's counts) and leaves the exact
preview :attr:`~BulkUpdateState.pending`; :meth:`~BulkUpdateState.refresh` makes it,
which the app does once the typing pauses. Until then Apply is refused: only the preview
of the inputs on screen is ever written.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import pandas as pd

from hubkit._gc import gc_paused
from hubkit.decimals import plain
from hubkit.domain import Rate, RateType
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.frames import history_frame, preview_frame, skipped_frame
from hubkit.jobs.guardrails import Guardrail, candidates_from_preview
from hubkit.jobs.guardrails import check as check_guardrails
from hubkit.jobs.params import BULK_DEFAULTS
from hubkit.pricing import (
    BulkPreview,
    RateFilter,
    SkipReason,
    bulk_preview,
    check_zero_rates,
)
from hubkit.pricing.bulk_counts import BulkCounts, RateColumns, bulk_counts
from hubkit.proposals import Proposal, bulk_changes, propose
from hubkit.store import ApplyResult, HistoryEntry, Store
from hubkit.widgets._common import (
    AppState,
    Message,
    PriceInputs,
    Progress,
    ProgressBar,
    counted,
    counting,
    field_error,
    frame_html,
    gate,
    heading,
    message_area,
    price_controls,
    show_message,
    text_input,
)
from hubkit.widgets._debounce import Debouncer, Later, on_running_loop
from hubkit.widgets._propose import ProposeControls, parse_effective_at, proposed_message
from hubkit.widgets._review_table import ReviewTable, Rows
from hubkit.widgets.rates import HISTORY_COLUMNS

# what a reviewer judges first (which rate, how far it moves, any red flag), then the numbers
PREVIEW_COLUMNS = {
    "model": "model",
    "provider": "provider",
    "type": "type",
    "input_change_pct": "input change %",
    "output_change_pct": "output change %",
    "below_cost": "below cost",
    "drops_to_zero": "drops to 0",
    "old_input_rate": "input old",
    "new_input_rate": "input new",
    "old_output_rate": "output old",
    "new_output_rate": "output new",
}
SKIPPED_COLUMNS = {"provider": "provider", "model": "model", "type": "type", "reason": "reason"}
# the history rows an apply wrote, labelled as the rate editor's history shows them
WRITTEN_COLUMNS = {
    "id": HISTORY_COLUMNS["id"], "provider": "provider", "model": "model",
    **{k: v for k, v in HISTORY_COLUMNS.items() if k.startswith(("previous_", "current_"))},
    "actor": HISTORY_COLUMNS["actor"], "reason": HISTORY_COLUMNS["reason"],
}  # fmt: skip


#: the scheduled job's default limit: the app holds a change beyond it for confirmation
APP_MAX_CHANGE_PCT = Decimal(str(BULK_DEFAULTS["max_change_pct"]))
#: what an exact preview is made from: margin text, credit price text, filter
_Inputs = tuple[str, str, RateFilter]
#: why Apply waits while the exact preview of new inputs is being made
PENDING = "the preview of the inputs you typed is being made: apply once it shows"


class BulkUpdateState(PriceInputs, AppState):
    """Margin %, credit price, filters, the preview they give, and the last apply.

    The scheduled job's guardrails (a change beyond ``max_change_pct``, a rate below cost,
    a rate becoming free) hold an apply here too: :meth:`unusual` names what trips them,
    and Apply needs :attr:`confirmed` for that very preview (any new preview unconfirms).
    """

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._start_from(store.get_operator_settings())
        self.rate_filter = RateFilter()
        self.errors: dict[str, str] = {}
        #: the exact preview of the inputs (None while :attr:`pending`, or if invalid)
        self.preview: BulkPreview | None = None
        #: the summary's counts of the inputs now (None: invalid inputs)
        self.counts: BulkCounts | None = None
        self._previewed: _Inputs | None = None  # what ``preview`` is of
        self._confirmed_for: BulkPreview | None = None
        self._unusual: tuple[BulkPreview, Decimal | None, list[str]] | None = None
        self._columns = RateColumns([])
        self.result: ApplyResult | None = None
        self.written: list[HistoryEntry] = []
        #: the last proposal made here (:meth:`propose`)
        self.proposal: Proposal | None = None
        self.stale = False
        self.max_change_pct: Decimal | None = APP_MAX_CHANGE_PCT
        #: an apply also stores its margin and credit price as the operator settings, so
        #: finance (04, the web app) and the next preview start from the prices in force
        self.record_settings = True
        self.provider_names: list[str] = []
        self._rates: list[Rate] = []
        self.reload()

    # ---- inputs --------------------------------------------------------------------------
    def reload(self, progress: Progress | None = None) -> None:
        """Re-read the rates (the versions an apply will insist on) and re-preview."""
        self.provider_names = [p.name for p in self.store.list_providers()]
        self._rates = self.store.list_rates()
        self._columns = RateColumns(self._rates)
        self.stale = False
        self.update_preview(progress)

    def set_margin(
        self, text: str, progress: Progress | None = None, *, defer: bool = False
    ) -> bool:
        """A new margin text: the preview now, or with ``defer`` only the counts (see the
        module's doc; :meth:`refresh` makes the preview later)."""
        self.margin_text = str(text).strip()
        return self._inputs_changed(progress, defer)

    def set_credit_price(
        self, text: str, progress: Progress | None = None, *, defer: bool = False
    ) -> bool:
        self.credit_price_text = str(text).strip()
        return self._inputs_changed(progress, defer)

    def set_filter(
        self,
        providers: Iterable[str] | str | None = None,
        types: Iterable[str] | str | None = None,
        model_pattern: str | None = None,
        progress: Progress | None = None,
        *,
        defer: bool = False,
    ) -> bool:
        ok, flt = self._attempt(lambda: RateFilter.create(providers, types, model_pattern))
        if not ok or flt is None:
            return False
        self.rate_filter = flt
        return self._inputs_changed(progress, defer)

    def _inputs(self) -> _Inputs:
        return (self.margin_text, self.credit_price_text, self.rate_filter)

    def _inputs_changed(self, progress: Progress | None, defer: bool) -> bool:
        return self.update_counts() if defer else self.update_preview(progress)

    @property
    def pending(self) -> bool:
        """The inputs changed since the exact preview was made (:meth:`refresh` makes it)."""
        return self._previewed != self._inputs()

    @property
    def rate_count(self) -> int:
        """How many rates were read (what a preview walks through)."""
        return len(self._rates)

    # ---- preview -------------------------------------------------------------------------
    def update_counts(self) -> bool:
        """The summary's counts of the inputs now, at once (numpy over the rates read, exact
        all the same); the preview waits for :meth:`refresh`. Invalid inputs say why."""
        self.errors = {}
        self.preview, self._previewed = None, None
        try:
            self.counts = bulk_counts(
                self._columns, self.margin_text, self.credit_price_text, self.rate_filter
            )
        except ValidationError as exc:
            self._invalid(exc)
            return False
        self._say(Message.info(self.summary()))
        return True

    def refresh(self, progress: Progress | None = None) -> bool:
        """Make the exact preview of the inputs now, unless it is made already."""
        if not self.pending:
            return self.preview is not None
        return self.update_preview(progress)

    def update_preview(self, progress: Progress | None = None) -> bool:
        """Recompute the diff from the rates read; invalid inputs clear it and say why."""
        self.errors = {}
        inputs = self._inputs()
        rates = counting(self._rates, len(self._rates), progress)
        try:
            with gc_paused():  # 10,000 RateChanges, no cycles (see hubkit._gc)
                self.preview = bulk_preview(rates, self.margin_text, self.credit_price_text,
                                            self.rate_filter)  # fmt: skip
        except ValidationError as exc:
            self._invalid(exc)
            return False
        self._previewed = inputs
        self.counts = BulkCounts.of(self.preview)
        self._say(Message.info(self.summary()))
        return True

    def _invalid(self, exc: ValidationError) -> None:
        self.preview, self.counts = None, None
        self._previewed = self._inputs()  # nothing to make: these inputs have no preview
        self.errors = {"credit_price" if exc.field == "creditPrice" else "margin": str(exc)}
        self._fail(exc)

    def summary(self) -> str:
        c = self.counts
        if c is None:
            return "no preview: fix the inputs"
        text = (
            f"{counted(c.changed, 'rate')} would change, {c.unchanged:,} unchanged, "
            f"{c.skipped:,} skipped (margin {plain(c.profit_margin)} % markup on cost, "
            f"credit price {plain(c.credit_price)})"
        )
        if c.drops:
            text += f"; {c.drops:,} with a side dropping to 0"
        if c.zero:
            text += f"; {c.zero:,} would become FREE (rate 0)"
        if c.below:
            text += f"; {c.below:,} BELOW COST"
        return text

    def unusual(self) -> list[str]:
        """What in the preview the scheduled job's guardrails would refuse, in words."""
        p = self.preview
        if p is None:
            return []
        cached = self._unusual
        if cached is None or cached[0] is not p or cached[1] != self.max_change_pct:
            with gc_paused():
                cached = self._unusual = (p, self.max_change_pct, self._unusual_of(p))
        return list(cached[2])

    def _unusual_of(self, p: BulkPreview) -> list[str]:
        if not p.changed:
            return []
        refused = check_guardrails(
            candidates_from_preview(p), max_change_pct=self.max_change_pct,
            allow_below_cost=False, credit_price=p.credit_price, allow_zero_rates=False,
        )  # fmt: skip
        by_kind = {kind: [r for r in refused if kind in r.tripped] for kind in Guardrail}
        out = []
        if by_kind[Guardrail.CHANGE_LIMIT]:
            pcts = [r.largest_change_pct for r in by_kind[Guardrail.CHANGE_LIMIT]]
            finite = [x for x in pcts if x is not None]
            largest = max(finite, key=abs) if finite else None
            text = (
                f"{counted(len(by_kind[Guardrail.CHANGE_LIMIT]), 'rate')} "
                f"{'moves' if len(by_kind[Guardrail.CHANGE_LIMIT]) == 1 else 'move'} by more "
                f"than {plain(self.max_change_pct)} %"
            )
            if largest is not None:
                text += f" (largest {largest:+,.2f} %)"
            if len(finite) < len(pcts):
                text += ", some from 0"
            out.append(text)
        if by_kind[Guardrail.BELOW_COST]:
            n = len(by_kind[Guardrail.BELOW_COST])
            out.append(f"{counted(n, 'rate')} would be below cost")
        if by_kind[Guardrail.FREE]:
            n = len(by_kind[Guardrail.FREE])
            out.append(f"{counted(n, 'rate')} would become free (0 credits)")
        return out

    def confirm(self, yes: bool = True) -> None:
        """The user read :meth:`unusual` and wants this preview applied anyway (this very
        preview: any other, even of the same inputs after a reload, needs its own)."""
        self._confirmed_for = self.preview if yes else None

    @property
    def confirmed(self) -> bool:
        """The user confirmed the unusual changes of the current preview."""
        return self.preview is not None and self._confirmed_for is self.preview

    @confirmed.setter
    def confirmed(self, value: bool) -> None:
        self.confirm(bool(value))

    @property
    def allow_zero_rates(self) -> bool:
        # the app's one confirmation covers free rates too (kept for older callers)
        return self.confirmed

    @allow_zero_rates.setter
    def allow_zero_rates(self, value: bool) -> None:
        self.confirm(bool(value))

    def apply_blocker(self, reason: str) -> str | None:
        """Why Apply cannot run now, in the screen's words (None: it can)."""
        if self.pending:
            return PENDING
        if self.preview is None:
            return "fix the margin or credit price first"
        if not self.preview.changed:
            return "nothing to apply: no rate would change"
        if self.stale:
            return "the rates changed since they were read: click Reload rates"
        if not reason.strip():
            return "type a reason (it is kept in the rate history)"
        unusual = self.unusual()
        if unusual and not self.confirmed:
            return "tick the confirmation: " + "; ".join(unusual)
        return None

    def propose_blocker(self, reason: str) -> str | None:
        """Why Propose cannot run now (None: it can). Unusual changes need no confirmation
        here: the approver sees them, with their impact, before anything is written."""
        if self.pending:
            return PENDING.replace("apply", "propose")
        if self.preview is None:
            return "fix the margin or credit price first"
        if not self.preview.changed:
            return "nothing to propose: no rate would change"
        if self.stale:
            return "rates changed since they were read: click 'Reload rates'"
        if not reason.strip():
            return "type a reason (the approver reads it)"
        return None

    def propose(self, reason: str, effective_at: str = "") -> bool:
        """Store the preview as a proposal (with its impact); no rate is written."""
        why = self.propose_blocker(reason or "")
        preview = self.preview
        if why is not None or preview is None:
            if not (reason or "").strip():
                self.errors = {"reason": "a reason is required; the approver reads it"}
            self._fail(ValidationError(f"nothing was proposed: {why}", field="propose"))
            return False
        self.errors = {}
        ok, when = self._attempt(lambda: parse_effective_at(effective_at))
        if not ok:
            self.errors = {"effective_at": str(self.error)}
            return False
        meta = {
            "profit_margin": str(preview.profit_margin),
            "credit_price": str(preview.credit_price),
            "skipped": len(preview.skipped),
        }
        ok, made = self._attempt(
            lambda: propose(
                self.store, bulk_changes(self.store, preview), source="bulk",
                reason=reason.strip(), effective_at=when, metadata=meta,
                credit_price=preview.credit_price,
            )
        )  # fmt: skip
        if not ok or made is None:
            self.stale = isinstance(self.error, StaleVersionError)
            if self.stale:
                self.message = Message.error(
                    f"{self.error} — click 'Reload rates' to preview against the current values"
                )
            return False
        self.proposal = made
        self._say(proposed_message(made))
        return True

    def preview_table(self, *, changed_only: bool = True) -> pd.DataFrame:
        if self.preview is None:
            return preview_frame(BulkPreview(Decimal(0), Decimal(1), (), ()))
        with gc_paused():
            frame = preview_frame(self.preview)
        return frame[frame["changed"]].reset_index(drop=True) if changed_only else frame

    def skipped_table(self) -> pd.DataFrame:
        if self.preview is None:
            return skipped_frame(BulkPreview(Decimal(0), Decimal(1), (), ()))
        return skipped_frame(self.preview)

    # ---- apply ---------------------------------------------------------------------------
    def apply(self, reason: str, progress: Progress | None = None) -> bool:
        """Write the preview in one transaction; refused without a reason or when stale."""
        if self.pending:  # a keystroke came after the preview on screen: never write that one
            self._fail(ValidationError(f"nothing was written: {PENDING}", field="preview"))
            return False
        preview = self.preview
        if preview is None or not preview.changed:
            self._fail(ValidationError("nothing to apply: the preview changes no rate"))
            return False
        if not reason or not reason.strip():
            self.errors = {"reason": "a reason is required; it is kept in the rate history"}
            self._fail(ValidationError(self.errors["reason"], field="reason"))
            return False
        self.errors = {}
        unusual = self.unusual()
        if unusual and not self.confirmed:
            self.errors = {"confirm": "; ".join(unusual)}
            self._fail(ValidationError(
                "nothing was written: confirm the unusual changes first (" + "; ".join(unusual)
                + ")", field="confirm"))  # fmt: skip
            return False
        ok, _ = self._attempt(lambda: check_zero_rates(preview, allow_zero_rates=self.confirmed))
        if not ok:
            return False
        steps = 3
        if progress:
            progress(0, steps)
        ok, result = self._attempt(
            lambda: self.store.apply_bulk_update(
                preview, reason=reason.strip(), record_settings=self.record_settings
            )
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
        recorded = (
            f"; margin {plain(preview.profit_margin)} % and credit price "
            f"{plain(preview.credit_price)} recorded as the operator settings"
            if self.record_settings else ""
        )  # fmt: skip
        self._say(Message.success(
            f"applied: {counted(result.updated, 'rate')} updated in one transaction, "
            f"{counted(len(self.written), 'history row')} written "
            f"(reason: {reason.strip()!r}){recorded}"))  # fmt: skip
        if progress:
            progress(steps, steps)
        return True

    def written_table(self) -> pd.DataFrame:
        return history_frame(self.written)


# ==== the view =============================================================================


_NOT_SHOWN = object()
#: the pause in typing after which the exact preview and its grid are made (seconds)
PAUSE_S = 0.4


class BulkUpdateApp(widgets.VBox):
    """Margin bulk update with a live preview. ``BulkUpdateApp(store)`` in a notebook cell.

    Each keystroke repaints the summary at once (the state's counts); the exact preview, its
    guardrails and the grid follow once the typing pauses for :data:`PAUSE_S`, in four loop
    steps (:class:`~hubkit.widgets._debounce.Debouncer`; preview, checks, grid texts, grid):
    a burst of keystrokes draws the grid once. Until then the grid says it is updating and
    Apply waits.
    """

    def __init__(
        self, store: Store, *, state: BulkUpdateState | None = None, later: Later | None = None
    ) -> None:
        self.state = state or BulkUpdateState(store)
        s = self.state
        self._rendering = False
        # each step well under the goal of a keystroke's answer: one arriving meanwhile
        # waits for the step under way only (and drops the steps after it)
        self._refresher = Debouncer(
            [self._refresh_preview, self._render_preview, self._prepare_grid, self._refresh_grid],
            PAUSE_S, later=later or on_running_loop,
        )  # fmt: skip
        self._grid_of: object = _NOT_SHOWN  # the preview the grid shows
        self._grid_next: tuple[BulkPreview | None, Rows] | None = None  # made, not sent yet
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
        self._preview = ReviewTable(
            "hubkit-bulk-preview", PREVIEW_COLUMNS, empty="no rate would change",
            download_name="bulk-update-preview.csv",
            download_label="exactly what Apply would write", noun="rate change",
        )  # fmt: skip
        self._skipped = widgets.HTML()
        self._reason = text_input("reason", placeholder="required: why these prices", width="520px")
        self._reason_error = widgets.HTML()
        self._unusual = widgets.HTML()
        self._confirm = widgets.Checkbox(
            value=False, description="apply these unusual changes anyway", indent=False,
            layout=widgets.Layout(width="auto"),
        )  # fmt: skip
        self._why_not = widgets.HTML()
        self._record = widgets.Checkbox(
            value=s.record_settings, indent=False, layout=widgets.Layout(width="auto"),
            description="also record this margin and credit price as the operator settings "
            "(finance starts from them)",
        )  # fmt: skip
        self._apply = widgets.Button(description="Apply", button_style="danger", icon="check")
        # beside Apply: the same preview as a proposal another person approves (06)
        self._proposer = ProposeControls("hubkit-bulk")
        self._effective_error = widgets.HTML()
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
            (self._reason, "reason"),
            (self._apply, "apply"),
            (self._why_not, "why-not"),
            (self._unusual, "unusual"),
            (self._confirm, "confirm"),
            (self._record, "record"),
            (self._reload, "reload"),
            (self._written, "written"),
        ):
            w.add_class(f"hubkit-bulk-{cls}")  # stable selectors for the browser test
        self._margin_text.observe(self._on_margin, names="value")
        self._price_text.observe(self._on_price, names="value")
        for w in (self._providers, self._types, self._pattern):
            w.observe(self._on_filter, names="value")
        self._confirm.observe(self._on_confirm, names="value")
        self._record.observe(self._on_record, names="value")
        self._reason.observe(self._on_reason, names="value")
        self._apply.on_click(self._on_apply)
        self._proposer.button.on_click(self._on_propose)
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
                self._preview.box,
                widgets.HTML(
                    f"<b>Skipped</b> ({SkipReason.summary()}: a margin cannot be applied)"
                ),
                self._skipped,
                self._unusual,
                self._confirm,
                widgets.HBox([self._reason, self._apply, self._reload]),
                self._record,
                self._why_not,
                widgets.HBox([self._proposer.effective, self._proposer.button,
                              self._effective_error]),
                self._proposer.why_not,
                self._reason_error,
                self._message,
                self._written,
            ]
        )  # fmt: skip
        self._render()

    def _render(self) -> None:
        """Everything, the grid too (after a reload or an apply)."""
        self._render_preview()
        self._refresh_grid()

    def _render_inputs(self) -> None:
        """What a keystroke changes at once: the summary, the field errors, the gate."""
        s = self.state
        self._summary.value = f"<b>{html.escape(s.summary())}</b>"
        field_error(self._margin_error, s.errors.get("margin"))
        field_error(self._price_error, s.errors.get("credit_price"))
        self._rendering = True
        try:
            self._confirm.value = s.confirmed
        finally:
            self._rendering = False
        self._confirm.disabled = s.pending  # only a preview on screen can be confirmed
        if s.pending:
            self._preview.mark_stale()
        elif s.preview is None:
            self._refresh_grid()  # invalid inputs: no rows to show (cheap)
        self._render_apply()
        show_message(self._message, s.message if s.message and s.message.level != "info" else None)

    def _render_preview(self) -> None:
        """All but the grid: what the exact preview of the inputs says."""
        s = self.state
        self._render_inputs()
        self._skipped.value = frame_html(
            s.skipped_table(), columns=SKIPPED_COLUMNS, empty="none", height="160px"
        )
        field_error(self._reason_error, s.errors.get("reason"))
        unusual = s.unusual()
        self._unusual.value = (
            "" if not unusual else
            "<div style='color:#a61b1b'><b>Unusual, held for your confirmation</b> (the "
            "scheduled job would refuse these):<ul>"
            + "".join(f"<li>{html.escape(u)}</li>" for u in unusual) + "</ul></div>"
        )  # fmt: skip
        self._confirm.layout.display = "" if unusual else "none"
        self._written.value = (
            ""
            if not s.written
            else "<b>History rows written</b>"
            + frame_html(s.written_table(), columns=WRITTEN_COLUMNS, height="240px")
        )
        if list(self._providers.options) != s.provider_names:
            self._providers.options = s.provider_names

    def _run(self, label: str, work: Any) -> None:
        """Run state work with the progress bar showing, then redraw."""
        with self._progress.showing(label, max(self.state.rate_count, 1)) as report:
            work(report)
        self._render()
        if self.state.pending:  # typed, then clicked (Apply refused): the preview still comes
            self._refresher.poke()
        else:  # the work made the preview of the inputs now: nothing waits any more
            self._refresher.cancel()

    def _typed(self) -> None:
        """Inputs changed (the state has their counts): repaint those, preview after a pause."""
        self._render_inputs()
        self._refresher.poke()

    def _refresh_preview(self) -> None:
        if self.state.pending:
            with self._progress.showing("previewing", max(self.state.rate_count, 1)) as report:
                self.state.refresh(report)

    def _grid_current(self) -> bool:
        """The grid shows the preview of the inputs now, or that preview is not made yet."""
        s = self.state
        return s.pending or (s.preview is self._grid_of and not self._preview.is_stale)

    def _prepare_grid(self) -> None:
        if not self._grid_current():
            preview = self.state.preview
            self._grid_next = (preview, self._preview.prepare(self.state.preview_table()))

    def _refresh_grid(self) -> None:
        if self._grid_current():
            return
        preview = self.state.preview
        if self._grid_next is None or self._grid_next[0] is not preview:
            self._prepare_grid()
        assert self._grid_next is not None  # made just now if it was not
        self._preview.show_rows(self._grid_next[1])
        self._grid_of, self._grid_next = preview, None

    def _on_margin(self, change: dict[str, Any]) -> None:
        self.state.set_margin(change["new"], defer=True)
        self._typed()

    def _on_price(self, change: dict[str, Any]) -> None:
        self.state.set_credit_price(change["new"], defer=True)
        self._typed()

    def _on_filter(self, _: dict[str, Any]) -> None:
        self.state.set_filter(self._providers.value, self._types.value, self._pattern.value,
                              defer=True)  # fmt: skip
        self._typed()

    def _render_apply(self) -> None:
        gate(self._apply, self._why_not, self.state.apply_blocker(self._reason.value),
             ready="write these rates in one transaction", prefix="Apply: ")  # fmt: skip
        gate(self._proposer.button, self._proposer.why_not,
             self.state.propose_blocker(self._reason.value),
             ready="store this preview as a proposal for another person to approve",
             prefix="Propose: ")  # fmt: skip
        field_error(self._effective_error, self.state.errors.get("effective_at"))

    def _on_confirm(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        self.state.confirm(bool(change["new"]))
        self._render_apply()

    def _on_record(self, change: dict[str, Any]) -> None:
        self.state.record_settings = bool(change["new"])

    def _on_reason(self, _: dict[str, Any]) -> None:
        self._render_apply()

    def _on_reload(self, _: widgets.Button) -> None:
        self._run("reading rates", self.state.reload)

    def _on_apply(self, _: widgets.Button) -> None:
        ok = [False]

        def work(progress: Any) -> None:
            ok[0] = self.state.apply(self._reason.value, progress)

        self._run("applying", work)
        if ok[0]:
            self._reason.value = ""

    def _on_propose(self, _: widgets.Button) -> None:
        ok = [False]

        def work(progress: Any) -> None:
            ok[0] = self.state.propose(self._reason.value, self._proposer.effective.value)

        self._run("proposing (replaying the usage window twice)", work)
        if ok[0]:
            self._reason.value = ""
            self._proposer.effective.value = ""
