"""The thin ipywidgets view of :class:`~hubkit.widgets.proposals.ProposalsState` (06).

``ProposalsApp(store)`` reviews: list, open, approve / reject with a reason, apply now.
``ProposalsApp(store, read_only=True)`` (and :func:`proposals_panel`, which the finance web
app shows) has the same list, diff, impact and charts and no action at all.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from hubkit.store import Store
from hubkit.widgets._common import (
    Message,
    counted,
    frame_html,
    gate,
    heading,
    message_area,
    message_html,
    show_message,
    text_input,
)
from hubkit.widgets._live_figure import LiveFigure
from hubkit.widgets._review_table import ReviewTable
from hubkit.widgets.proposals import (
    BELOW_COST_COLUMNS,
    CHANGE_COLUMNS,
    EVENT_COLUMNS,
    LIST_COLUMNS,
    SOURCE_CHOICES,
    STATE_CHOICES,
    ProposalsState,
)

_NONE = 0  # the pick list's "nothing opened" value (proposal ids start at 1)


class ProposalsApp(widgets.VBox):
    """Rate proposals: review and decide (or, ``read_only``, look only)."""

    def __init__(
        self, store: Store, *, read_only: bool = False, state: ProposalsState | None = None
    ) -> None:
        self.state = state or ProposalsState(store, read_only=read_only)
        s = self.state
        self._rendering = False
        self._identity = widgets.HTML()
        self._actor = text_input("acting as", s.actor, width="360px")
        self._act = widgets.Button(description="Use this name", icon="user")
        self._state_pick = widgets.Dropdown(
            options=STATE_CHOICES, value=s.state_filter, description="state"
        )
        self._source_pick = widgets.Dropdown(
            options=SOURCE_CHOICES, value=s.source_filter, description="source"
        )
        self._refresh = widgets.Button(description="Refresh", icon="refresh")
        self._summary = widgets.HTML()
        self._list = ReviewTable(
            "hubkit-proposals-list", LIST_COLUMNS, empty="no proposal matches", noun="proposal",
            download_name="proposals.csv", download_label="the proposals shown",
        )  # fmt: skip
        self._pick = widgets.Dropdown(description="open", layout=widgets.Layout(width="640px"))
        self._header = widgets.HTML()
        self._notices = widgets.HTML()
        self._window = widgets.HTML()
        self._totals = widgets.HTML()
        self._users = widgets.HTML()
        self._waterfall = LiveFigure("hubkit-proposals-waterfall", width="50%", height=480)
        self._bars = LiveFigure("hubkit-proposals-bars", width="50%", height=480)
        self._changes = ReviewTable(
            "hubkit-proposals-changes", CHANGE_COLUMNS, empty="no change", noun="rate change",
            download_name="proposal-changes.csv", download_label="exactly what it would write",
        )  # fmt: skip
        self._models = ReviewTable(
            "hubkit-proposals-models", s.model_columns(), empty="no usage of these models",
            noun="model", download_name="proposal-impact-by-model.csv",
            download_label="the impact by model",
        )  # fmt: skip
        self._below = widgets.HTML()
        self._events = widgets.HTML()
        self._reason = text_input(
            "reason", placeholder="why (required to reject or revert)", width="520px"
        )
        self._approve = widgets.Button(description="Approve", button_style="success", icon="check")
        self._reject = widgets.Button(description="Reject", button_style="danger", icon="times")
        self._apply = widgets.Button(description="Apply now", button_style="warning", icon="bolt")
        self._revert = widgets.Button(description="Propose a revert", icon="undo")
        self._approve_why, self._reject_why, self._apply_why, self._revert_why = (
            widgets.HTML(), widgets.HTML(), widgets.HTML(), widgets.HTML()
        )  # fmt: skip
        self._message = message_area()

        for w, name in (
            (self._identity, "identity"), (self._actor, "actor"), (self._act, "act"),
            (self._state_pick, "state"), (self._source_pick, "source"),
            (self._refresh, "refresh"), (self._summary, "summary"), (self._pick, "pick"),
            (self._header, "header"), (self._notices, "notices"), (self._window, "window"),
            (self._totals, "totals"), (self._users, "users"), (self._below, "below-cost"),
            (self._events, "events"), (self._reason, "reason"), (self._approve, "approve"),
            (self._reject, "reject"), (self._apply, "apply"),
            (self._approve_why, "approve-why"), (self._reject_why, "reject-why"),
            (self._apply_why, "apply-why"), (self._message, "message"),
            (self._revert, "revert"), (self._revert_why, "revert-why"),
        ):  # fmt: skip
            w.add_class(f"hubkit-proposals-{name}")  # stable selectors for the browser test
        self._state_pick.observe(self._on_filter, names="value")
        self._source_pick.observe(self._on_filter, names="value")
        self._pick.observe(self._on_pick, names="value")
        self._refresh.on_click(self._on_refresh)
        self._act.on_click(self._on_act)
        self._approve.on_click(self._on_approve)
        self._reject.on_click(self._on_reject)
        self._apply.on_click(self._on_apply)
        self._revert.on_click(self._on_revert)
        self._reason.observe(lambda _: self._render_actions(), names="value")

        who: list[widgets.Widget] = [self._identity]
        if s.can_act_as:
            who.append(widgets.HBox([self._actor, self._act]))
        actions: list[widgets.Widget] = []
        if not s.read_only:
            actions = [
                widgets.HTML("<b>Decide</b>"),
                widgets.HBox([self._reason, self._approve, self._reject, self._apply,
                              self._revert]),
                self._approve_why, self._reject_why, self._apply_why, self._revert_why,
            ]  # fmt: skip
        self.add_class("hubkit-proposals")
        if s.read_only:
            self.add_class("hubkit-proposals-read-only")
        super().__init__(
            [
                heading("Rate proposals" + (" (read-only)" if s.read_only else "")),
                *who,
                widgets.HBox([self._state_pick, self._source_pick, self._refresh]),
                self._summary,
                self._list.box,
                self._pick,
                self._header,
                self._notices,
                *actions,
                self._message,
                self._window,
                widgets.HTML("<b>Impact on the usage window</b> (in force → proposed)"),
                self._totals,
                self._users,
                widgets.HBox([self._waterfall.box, self._bars.box]),
                widgets.HTML("<b>The changes</b>"),
                self._changes.box,
                widgets.HTML("<b>Impact by model</b>"),
                self._models.box,
                widgets.HTML("<b>Rates below cost</b> (in force and proposed)"),
                self._below,
                widgets.HTML("<b>What happened to it</b>"),
                self._events,
            ]
        )
        self._render()

    # ---- drawing -------------------------------------------------------------------------
    def _render(self) -> None:
        s = self.state
        self._identity.value = f"<i>{html.escape(s.identity_note())}</i>"
        self._summary.value = f"<b>{html.escape(s.summary())}</b>"
        self._list.show(s.table())
        self._rendering = True
        try:
            options = [("— pick a proposal —", _NONE)] + [
                (f"#{p.id} {p.state.value} · {p.source.value} · {len(p.changes)} rate(s) · "
                 f"by {p.proposer} · {(p.reason or '')[:60]}", p.id)
                for p in s.proposals
            ]  # fmt: skip
            if s.selected is not None and s.selected.id not in {v for _, v in options}:
                options.append((f"#{s.selected.id} {s.selected.state.value} (filtered out)",
                                s.selected.id))  # fmt: skip
            self._pick.options = options
            self._pick.value = s.selected.id if s.selected is not None else _NONE
            if self._actor.value != s.actor:
                self._actor.value = s.actor
        finally:
            self._rendering = False
        self._render_selected()

    def _render_selected(self) -> None:
        s = self.state
        self._header.value = f"<b>{html.escape(s.header())}</b>"
        self._notices.value = "".join(message_html(m) for m in s.notices())
        self._window.value = f"<i>{html.escape(s.window_text())}</i>"
        totals = s.totals_table()
        self._totals.value = (
            "" if s.selected is None else frame_html(totals, empty="no impact computed")
        )
        self._users.value = html.escape(s.users_text())
        self._waterfall.show(s.waterfall())
        self._bars.show(s.bars())
        self._changes.show(s.changes_table())
        self._models.show(s.models_table())
        self._below.value = (
            "" if s.selected is None else frame_html(
                s.below_cost_table(), columns=BELOW_COST_COLUMNS, empty="none", height="200px"
            )
        )  # fmt: skip
        self._events.value = (
            "" if s.selected is None
            else frame_html(s.events_table(), columns=EVENT_COLUMNS, height="200px")
        )  # fmt: skip
        self._render_actions()

    def _render_actions(self) -> None:
        s = self.state
        if not s.read_only:
            gate(self._approve, self._approve_why, s.approve_blocker(),
                 ready="approve exactly what is shown (its content hash goes along)",
                 prefix="Approve: ")  # fmt: skip
            gate(self._reject, self._reject_why, s.reject_blocker(self._reason.value),
                 ready="reject it with this reason", prefix="Reject: ")  # fmt: skip
            gate(self._apply, self._apply_why, s.apply_blocker(),
                 ready="write its rates now, in one transaction", prefix="Apply now: ")  # fmt: skip
            revert_why = s.revert_blocker(self._reason.value)
            gate(self._revert, self._revert_why, revert_why,
                 ready="propose undoing it as a unit (reviewed like any proposal)",
                 prefix="Propose a revert: ")  # fmt: skip
            # only worth a line once there is something to revert
            applied = s.selected is not None and s.selected.state.value == "applied"
            self._revert.layout.display = "" if applied else "none"
            self._revert_why.layout.display = "" if applied else "none"
        message = s.message
        show_message(self._message, message if message and message.level != "info" else None)

    # ---- events --------------------------------------------------------------------------
    def _on_filter(self, _: dict[str, Any]) -> None:
        if not self._rendering:
            self.state.set_filter(self._state_pick.value, self._source_pick.value)
            self._render()

    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        self.state.select(change["new"] or None)
        self._render_selected()

    def _on_refresh(self, _: widgets.Button) -> None:
        self.state.refresh()
        self._render()

    def _on_act(self, _: widgets.Button) -> None:
        self.state.act_as(self._actor.value)
        self._render()

    def _on_approve(self, _: widgets.Button) -> None:
        if self.state.approve(self._reason.value):
            self._reason.value = ""
        self._render()

    def _on_reject(self, _: widgets.Button) -> None:
        if self.state.reject(self._reason.value):
            self._reason.value = ""
        self._render()

    def _on_revert(self, _: widgets.Button) -> None:
        if self.state.propose_revert(self._reason.value):
            self._reason.value = ""
        self._render()

    def _on_apply(self, _: widgets.Button) -> None:
        self.state.apply_now()
        self._render()


def proposals_panel(store: Store | None, *, open_now: bool = False) -> widgets.Widget:
    """The finance web app's read-only look at the proposals (nothing on it acts).

    Drawn on demand: a line saying how many there are and a *Show* button, so the page it
    sits on (04, whose first paint is measured) carries no proposal widgets until asked.
    """
    if store is None:
        return widgets.HTML(message_html(Message.info("no rate proposals to show yet")))
    if open_now:
        return ProposalsApp(store, read_only=True)
    proposals = store.list_proposals()
    waiting = sum(1 for p in proposals if not p.state.closed)
    line = widgets.HTML(
        f"<b>{html.escape(counted(len(proposals), 'rate proposal'))}</b>"
        f" ({waiting:,} open) · read-only"
    )
    show = widgets.Button(description="Show rate proposals", icon="list")
    show.add_class("hubkit-proposals-show")
    box = widgets.VBox([line, show])
    box.add_class("hubkit-proposals-panel")

    def open_panel(_: widgets.Button) -> None:
        box.children = (ProposalsApp(store, read_only=True),)

    show.on_click(open_panel)
    return box
