"""Rate proposals under review (notebook 06): list, open one, approve or reject; apply.

:class:`ProposalsState` is the plain state the view (:mod:`hubkit.widgets.proposals_view`)
draws: the proposals filtered by state and source; the one opened, with its diff, its
impact on the usage window (totals, per model, rates below cost) and the two charts; and
the reviewer's actions. Every rule is the store's (maker ≠ checker, the content hash,
staleness, apply once): the state only asks first, so a button can say *why* it is
disabled, and turns a refusal into a message that says what to do.

``read_only=True`` is the finance web app's mode: the same lists, diff, impact and charts,
no action at all (and a read-only store underneath, so none could write anyway).

The actor: on PostgreSQL the database login (``session_user``), which nothing here can
change. On SQLite the OS user or ``HUBKIT_ACTOR`` stands in, and :meth:`act_as` names
another reviewer: there the second approver is a convention, not a control — said on
screen (:meth:`ProposalsState.identity_note`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from hubkit.charts import impact_by_model, revenue_change_waterfall
from hubkit.errors import ConflictError, HubkitError, StaleVersionError, ValidationError
from hubkit.proposals import (
    Impact,
    Proposal,
    ProposalSource,
    ProposalState,
    changes_frame,
    events_frame,
    proposals_frame,
    propose_revert,
)
from hubkit.store import Store
from hubkit.store.types import utcnow
from hubkit.widgets._common import AppState, Message, counted

#: the list's columns and labels, in order (what a reviewer scans first)
LIST_COLUMNS = {
    "id": "id",
    "state": "state",
    "source": "source",
    "changes": "rates",
    "proposer": "proposed by",
    "reason": "why",
    "approvals": "approvals",
    "effective_at": "effective (UTC)",
    "created_at": "proposed at (UTC)",
    "list_revenue_change": "list revenue change",
    "users_newly_blocked": "users newly blocked",
}
CHANGE_COLUMNS = {
    "action": "action",
    "model": "model",
    "provider": "provider",
    "type": "type",
    "input_change_pct": "input change %",
    "output_change_pct": "output change %",
    "old_input_rate": "input old",
    "new_input_rate": "input new",
    "old_output_rate": "output old",
    "new_output_rate": "output new",
    "old_unit_cost_input": "unit cost in old",
    "new_unit_cost_input": "unit cost in new",
    "old_unit_cost_output": "unit cost out old",
    "new_unit_cost_output": "unit cost out new",
    "base_version": "base version",
}
TOTAL_LABELS = {
    "calls": "calls",
    "calls_served": "calls served",
    "calls_refused": "calls refused (402)",
    "credits_used": "credits used",
    "revenue": "recognised revenue",
    "list_revenue": "list revenue (credits × credit price)",
    "provider_cost": "provider cost",
    "gross_margin": "gross margin",
    "gross_margin_pct": "gross margin % of revenue",
    "list_margin": "list margin",
    "list_margin_pct": "list margin % of list revenue",
}
MODEL_METRICS = ("list_revenue", "provider_cost", "list_margin", "credits_used", "calls_refused")
BELOW_COST_COLUMNS = {
    "provider": "provider",
    "model": "model",
    "type": "type",
    "side": "side",
    "rate": "rate",
    "unit_cost": "unit cost",
    "break_even": "break-even rate",
    "changed": "changed by this proposal",
}
EVENT_COLUMNS = {"at": "when (UTC)", "event": "event", "actor": "who", "reason": "why"}
#: what the state filter offers; "open" = draft, proposed or approved
STATE_CHOICES = ("open", *(s.value for s in ProposalState), "all")
SOURCE_CHOICES = ("all", *(s.value for s in ProposalSource))
_COUNTS = frozenset({"calls", "calls_served", "calls_refused"})
_OPEN = (ProposalState.DRAFT, ProposalState.PROPOSED, ProposalState.APPROVED)
_PCT = Decimal("0.01")


class ProposalsState(AppState):
    """Proposals filtered, one opened, and the reviewer's actions on it."""

    def __init__(self, store: Store, *, read_only: bool = False) -> None:
        super().__init__()
        self.store = store
        self.read_only = read_only
        self.state_filter = "all"
        self.source_filter = "all"
        self.proposals: list[Proposal] = []
        #: the proposal opened, as read when it was opened (what the reviewer sees and signs)
        self.selected: Proposal | None = None
        self.impact: Impact | None = None
        #: why the opened proposal's base versions no longer hold (empty: not stale)
        self.staleness: list[str] = []
        self._default_actor = store.actor
        self.actor = store.current_actor()
        self.refresh()

    # ---- who reviews ----------------------------------------------------------------------
    @property
    def can_act_as(self) -> bool:
        """On SQLite the reviewer's name may be given here (a convention); on PostgreSQL
        the database login is the actor and cannot be changed from the page."""
        return not self.read_only and not self.store.enforces_identity

    def identity_note(self) -> str:
        if self.read_only:
            return "read-only: nothing on this page approves, rejects or applies a proposal"
        if self.store.enforces_identity:
            return (
                f"acting as the database login {self.actor!r}: the database records who "
                "approves and refuses the proposer's own approval"
            )
        return (
            f"acting as {self.actor!r} — on this SQLite store the reviewer's name is a "
            "convention, not a control: the second approver is whoever says so"
        )

    def act_as(self, name: str) -> bool:
        """Review under another name (SQLite only; blank: back to the default actor)."""
        if not self.can_act_as:
            self._fail(ValidationError(
                "the reviewer is the database login here; sign in as another role to act as "
                "someone else", field="actor"))  # fmt: skip
            return False
        name = name.strip()
        if len(name) > 200:
            self._fail(ValidationError("a reviewer name is at most 200 characters", field="actor"))
            return False
        self.store.actor = name or self._default_actor
        self.actor = self.store.current_actor()
        self._say(Message.info(f"acting as {self.actor!r}"))
        return True

    # ---- the list -------------------------------------------------------------------------
    def set_filter(self, state: str | None = None, source: str | None = None) -> bool:
        if state is not None:
            if state not in STATE_CHOICES:
                self._fail(ValidationError(
                    f"unknown state {state!r}; pick one of {', '.join(STATE_CHOICES)}",
                    field="state"))  # fmt: skip
                return False
            self.state_filter = state
        if source is not None:
            if source not in SOURCE_CHOICES:
                self._fail(ValidationError(
                    f"unknown source {source!r}; pick one of {', '.join(SOURCE_CHOICES)}",
                    field="source"))  # fmt: skip
                return False
            self.source_filter = source
        self.refresh()
        return True

    def _states(self) -> Iterable[str] | None:
        if self.state_filter == "all":
            return None
        if self.state_filter == "open":
            return [s.value for s in _OPEN]
        return [self.state_filter]

    def refresh(self) -> None:
        """Re-read the proposals; the one opened is read again (its state may have moved)."""
        source = None if self.source_filter == "all" else self.source_filter
        self.proposals = self.store.list_proposals(state=self._states(), source=source)
        if self.selected is not None:
            self._open(self.selected.id)

    def table(self) -> pd.DataFrame:
        frame = proposals_frame(self.proposals)
        if frame.empty:
            return frame
        for column in ("list_revenue_change",):
            frame[column] = [_money(v) for v in frame[column]]
        return frame

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for p in self.proposals:
            counts[p.state.value] = counts.get(p.state.value, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in counts.items())
        shown = counted(len(self.proposals), "proposal")
        return f"{shown} shown" + (f" ({parts})" if parts else "")

    # ---- one proposal ---------------------------------------------------------------------
    def select(self, proposal_id: int | None) -> bool:
        """Open a proposal: its diff, impact and charts; None closes it."""
        if proposal_id is None:
            self.selected, self.impact, self.staleness = None, None, []
            return True
        ok, _ = self._attempt(lambda: self._open(int(proposal_id)))
        if not ok:
            self.selected, self.impact, self.staleness = None, None, []
        return ok

    def _open(self, proposal_id: int) -> None:
        proposal = self.store.get_proposal(proposal_id)
        self.selected = proposal
        self.impact = Impact.from_json(proposal.impact)
        self.staleness = [] if proposal.state.closed else self.store.proposal_staleness(proposal_id)

    def header(self) -> str:
        """One line about the opened proposal: what, who, when, state."""
        p = self.selected
        if p is None:
            return "pick a proposal to review"
        when = "on approval" if p.effective_at is None else f"{p.effective_at:%Y-%m-%d %H:%M} UTC"
        approvals = f"{len(p.approvals)} of {p.required_approvals} approval(s)"
        if p.approvals:
            approvals += " (" + ", ".join(p.approvals) + ")"
        return (
            f"proposal {p.id} · {p.state.value} · {p.source.value} · "
            f"{counted(len(p.changes), 'rate change')} · proposed by {p.proposer} on "
            f"{p.created_at:%Y-%m-%d %H:%M} UTC · effective {when} · {approvals}"
        )

    def notices(self) -> list[Message]:
        """What the reviewer must know before judging: tampering, staleness, synthetic
        usage, rates below cost, their own proposal."""
        p = self.selected
        if p is None:
            return []
        out: list[Message] = []
        if not p.intact:
            out.append(Message.error(
                "HASH MISMATCH: the stored changes no longer match the content hash this "
                "proposal was made with; it cannot be approved or applied — re-propose it"
            ))  # fmt: skip
        if self.staleness:
            out.append(Message.error(
                "STALE: " + "; ".join(self.staleness[:5])
                + (f"; and {len(self.staleness) - 5} more" if len(self.staleness) > 5 else "")
                + " — it cannot be approved or applied; re-propose it from the current rates"
            ))  # fmt: skip
        if self.impact is None:
            out.append(Message.warning("no impact was computed for this proposal"))
        else:
            if self.impact.synthetic:
                out.append(Message.warning(
                    f"{self.impact.window.get('label')}: the impact below is an illustration, "
                    "not what real users would have paid"))  # fmt: skip
            below = self.impact.below_cost_frame()
            changed = below[below["changed"].astype(bool)] if not below.empty else below
            if len(changed):
                out.append(Message.warning(
                    f"{counted(len(changed), 'proposed rate')} would be BELOW COST (listed "
                    "under the impact)"))  # fmt: skip
        if not self.read_only and p.state is ProposalState.PROPOSED and self.actor == p.proposer:
            out.append(Message.info(
                f"you ({self.actor}) proposed this: another person must approve it "
                "(maker ≠ checker)"))  # fmt: skip
        return out

    def window_text(self) -> str:
        if self.impact is None:
            return ""
        w = self.impact.window
        return (
            f"usage window: {w.get('label')} · {w.get('calls', 0):,} calls, "
            f"{w.get('users', 0):,} users · fingerprint {str(w.get('fingerprint', ''))[:12]}…"
        )

    def changes_table(self) -> pd.DataFrame:
        if self.selected is None:
            return changes_frame([])
        frame = changes_frame(self.selected)
        for column in ("input_change_pct", "output_change_pct"):
            frame[column] = pd.Series([_pct(v) for v in frame[column]], dtype=object)
        return frame

    def totals_table(self) -> pd.DataFrame:
        """One row per metric: in force, proposed, change (rounded for reading)."""
        columns = ["metric", "in force", "proposed", "change"]
        if self.impact is None:
            return pd.DataFrame(columns=columns)
        totals = self.impact.totals_frame()
        whole = [m in _COUNTS for m in totals["metric"]]

        def texts(side: str, sign: bool = False) -> list[str]:
            pairs = zip(totals[side], whole, strict=True)
            return [_number(v, sign=sign, whole=w) for v, w in pairs]

        return pd.DataFrame(
            {
                "metric": [TOTAL_LABELS.get(m, m) for m in totals["metric"]],
                "in force": texts("before"),
                "proposed": texts("after"),
                "change": texts("change", sign=True),
            },
            columns=columns,
        )

    def users_text(self) -> str:
        if self.impact is None:
            return ""
        users = self.impact.data.get("users") or {}
        text = (
            f"users newly blocked by a 402: {self.impact.users_newly_blocked:,} · "
            f"users unblocked: {self.impact.users_unblocked:,}"
        )
        names = users.get("newly_blocked_users") or []
        if names:
            text += " (newly blocked: " + ", ".join(map(str, names[:20]))
            text += ", …)" if len(names) > 20 else ")"
        return text

    def models_table(self) -> pd.DataFrame:
        """Per model: each metric in force → proposed and its change (largest moves first)."""
        if self.impact is None:
            return pd.DataFrame(columns=["provider", "model", "type"])
        frame = self.impact.models_frame()
        out = frame[["provider", "model", "type"]].copy()
        for metric in MODEL_METRICS:
            for side in ("before", "after", "change"):
                column = f"{metric}_{side}"
                if column in frame.columns:
                    whole = metric in _COUNTS
                    out[column] = [
                        _number(v, sign=side == "change", whole=whole) for v in frame[column]
                    ]
        return out

    def model_columns(self) -> dict[str, str]:
        labels = {"before": "in force", "after": "proposed", "change": "change"}
        out = {"model": "model", "provider": "provider", "type": "type"}
        for metric in MODEL_METRICS:
            for side, word in labels.items():
                out[f"{metric}_{side}"] = f"{TOTAL_LABELS[metric]}: {word}"
        return out

    def below_cost_table(self) -> pd.DataFrame:
        if self.impact is None:
            return pd.DataFrame(columns=list(BELOW_COST_COLUMNS))
        return self.impact.below_cost_frame()

    def events_table(self) -> pd.DataFrame:
        if self.selected is None:
            return pd.DataFrame(columns=list(EVENT_COLUMNS))
        return events_frame(self.selected)

    def waterfall(self) -> go.Figure | None:
        """The revenue change (list revenue: credits used × credit price), by model."""
        if self.impact is None or self.impact.models_frame().empty:
            return None
        fig = revenue_change_waterfall(
            self.impact.models_frame(), metric="list_revenue", top=12, horizontal=True
        )
        return _sized(fig)

    def bars(self) -> go.Figure | None:
        if self.impact is None or self.impact.models_frame().empty:
            return None
        return _sized(impact_by_model(self.impact.models_frame(), top=12, horizontal=True))

    # ---- actions --------------------------------------------------------------------------
    def _review_blocker(self) -> str | None:
        if self.read_only:
            return "this page is read-only"
        p = self.selected
        if p is None:
            return "pick a proposal first"
        if not p.intact:
            return "its content hash does not match its changes (tampered): re-propose it"
        return None

    def approve_blocker(self) -> str | None:
        """Why Approve cannot run now, in the screen's words (None: it can)."""
        why = self._review_blocker()
        if why is not None:
            return why
        p = self.selected
        assert p is not None
        if p.state is not ProposalState.PROPOSED:
            return f"it is {p.state.value}: only a proposed one can be approved"
        if self.staleness:  # nobody can approve it: said first
            return "it is stale (its rates moved since): re-propose it"
        if self.actor == p.proposer:
            return f"you ({self.actor}) proposed it: another person must approve it"
        if self.actor in p.approvals:
            return f"you ({self.actor}) have approved it already"
        return None

    def reject_blocker(self, reason: str) -> str | None:
        why = self._review_blocker()
        if why is not None and self.selected is not None and not self.selected.intact:
            why = None  # a tampered proposal can and should be rejected
        if why is not None:
            return why
        p = self.selected
        assert p is not None
        if p.state.closed:
            return f"it is {p.state.value} already"
        if not reason.strip():
            return "type the reason for rejecting it"
        return None

    def apply_blocker(self) -> str | None:
        """Why Apply now cannot run (None: approved, due, not stale)."""
        why = self._review_blocker()
        if why is not None:
            return why
        p = self.selected
        assert p is not None
        if p.state is not ProposalState.APPROVED:
            return f"it is {p.state.value}: only an approved one is applied"
        if not p.is_due(utcnow()):
            assert p.effective_at is not None
            return (
                f"it takes effect at {p.effective_at:%Y-%m-%d %H:%M} UTC: the scheduled job "
                "applies it then"
            )
        if self.staleness:
            return "it is stale (its rates moved since): re-propose it"
        return None

    def revert_blocker(self, reason: str) -> str | None:
        """Why "Propose a revert" cannot run (None: it can): applied proposals only."""
        why = self._review_blocker()
        if why is not None:
            return why
        p = self.selected
        assert p is not None
        if p.state is not ProposalState.APPLIED:
            return f"it is {p.state.value}: only an applied proposal is reverted"
        if not reason.strip():
            return "type the reason for reverting it"
        return None

    def propose_revert(self, reason: str) -> bool:
        """Undo the opened (applied) proposal as a unit: a new proposal, reviewed like any
        other, opened here once made."""
        why = self.revert_blocker(reason)
        p = self.selected
        if why is not None or p is None:
            self._fail(ValidationError(f"no revert proposed: {why}", field="reason"))
            return False
        ok, made = self._attempt(lambda: propose_revert(self.store, p.id, reason=reason.strip()))
        if not ok or made is None:
            return self._refused(p.id, "reverted")
        self.refresh()
        self._open(made.id)
        self._say(Message.success(
            f"proposed the revert of proposal {p.id} as proposal {made.id}: another person "
            "approves it"
        ))  # fmt: skip
        return True

    def approve(self, reason: str = "") -> bool:
        """Approve the opened proposal *as it was read* (its content hash goes along)."""
        why = self.approve_blocker()
        p = self.selected
        if why is not None or p is None:
            self._fail(ValidationError(f"not approved: {why}", field="approve"))
            return False
        ok, done = self._attempt(
            lambda: self.store.approve_proposal(p.id, p.content_hash, reason=reason.strip() or None)
        )
        if not ok or done is None:
            return self._refused(p.id, "approved")
        self._after(p.id)
        more = (
            "; it is approved"
            + (" and due: apply it now, or let the scheduled job do it"
               if done.is_due(utcnow()) else f" and takes effect {_when(done)}")
            if done.state is ProposalState.APPROVED
            else f"; {len(done.approvals)} of {done.required_approvals} approvals so far"
        )  # fmt: skip
        self._say(Message.success(f"approved proposal {p.id} as {self.actor}{more}"))
        return True

    def reject(self, reason: str) -> bool:
        why = self.reject_blocker(reason)
        p = self.selected
        if why is not None or p is None:
            self._fail(ValidationError(f"not rejected: {why}", field="reason"))
            return False
        ok, _ = self._attempt(lambda: self.store.reject_proposal(p.id, reason.strip()))
        if not ok:
            return self._refused(p.id, "rejected")
        self._after(p.id)
        self._say(Message.success(f"rejected proposal {p.id} (reason: {reason.strip()!r})"))
        return True

    def apply_now(self) -> bool:
        """Apply the opened proposal now (approved and due), in one transaction."""
        why = self.apply_blocker()
        p = self.selected
        if why is not None or p is None:
            self._fail(ValidationError(f"not applied: {why}", field="apply"))
            return False
        ok, result = self._attempt(
            lambda: self.store.apply_proposal(p.id, content_hash=p.content_hash)
        )
        if not ok or result is None:
            return self._refused(p.id, "applied")
        self._after(p.id)
        if not result.applied:
            self._say(Message.info(f"proposal {p.id} was applied already: nothing written"))
            return True
        self._say(Message.success(
            f"applied proposal {p.id} in one transaction: {result.created} created, "
            f"{result.updated} updated, {result.deleted} deleted, "
            f"{counted(len(result.history_ids), 'history row')} carrying the proposal id"
        ))  # fmt: skip
        return True

    def _after(self, proposal_id: int) -> None:
        self.refresh()
        if self.selected is None or self.selected.id != proposal_id:
            self._open(proposal_id)

    def _refused(self, proposal_id: int, verb: str) -> bool:
        """A refusal from the store: say it plainly, and show the proposal as it is now."""
        exc = self.error
        text = str(exc)
        if isinstance(exc, StaleVersionError):
            text = f"not {verb} — STALE: {text}"
        elif isinstance(exc, ConflictError) and "content hash" in text:
            text = (
                f"not {verb} — HASH MISMATCH: the proposal is no longer what you reviewed ({text})"
            )
        elif isinstance(exc, ConflictError) and "another person" in text:
            text = f"not {verb} — SAME PERSON: {text}"
        else:
            text = f"not {verb}: {text}"
        error = exc
        try:
            self._after(proposal_id)
        except HubkitError:  # the refusal is what the person must see
            pass
        self.message, self.error = Message.error(text), error
        return False


def _sized(fig: go.Figure) -> go.Figure:
    fig.update_layout(
        height=480, margin={"l": 60, "r": 20, "t": 90, "b": 50},
        title={"y": 0.98, "yanchor": "top", "font": {"size": 14}},
    )  # fmt: skip
    return fig


def _when(p: Proposal) -> str:
    return "on approval" if p.effective_at is None else f"{p.effective_at:%Y-%m-%d %H:%M} UTC"


def _pct(value: Any) -> Decimal | None:
    if value is None:
        return None
    d = Decimal(value)
    return d if not d.is_finite() else d.quantize(_PCT)


def _money(value: Any) -> str:
    return "" if value is None else _number(value, sign=True)


def _number(value: Any, *, sign: bool = False, whole: bool = False) -> str:
    """A float figure of the replay, for reading: 2 decimals (4 under 1), thousands split;
    ``whole``: a count (calls), no decimals."""
    if value is None:
        return ""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if f != f:  # NaN: a percentage of nothing
        return "—"
    places = 0 if whole else 4 if 0 < abs(f) < 1 else 2
    return f"{f:{'+' if sign else ''},.{places}f}"
