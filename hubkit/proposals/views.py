"""Tables of a proposal for people: its changes (old → new) and its events."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from hubkit.pricing.rules import change_pct
from hubkit.store.proposals import Proposal, ProposedChange

__all__ = ["changes_frame", "events_frame", "proposals_frame"]

_CHANGE_COLUMNS = [
    "action", "provider", "model", "type", "rate_id", "base_version",
    "old_input_rate", "new_input_rate", "input_change_pct",
    "old_output_rate", "new_output_rate", "output_change_pct",
    "old_unit_cost_input", "new_unit_cost_input", "old_unit_cost_output", "new_unit_cost_output",
]  # fmt: skip


def _pct(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    if old is None or new is None:
        return None
    return change_pct(old, new)


def changes_frame(changes: Proposal | Sequence[ProposedChange]) -> pd.DataFrame:
    """One row per change: action, key, and each amount before → after (Decimal)."""
    items = changes.changes if isinstance(changes, Proposal) else changes
    rows = []
    for c in items:
        row: dict[str, Any] = {
            "action": c.action.value,
            "provider": c.provider,
            "model": c.model,
            "type": c.type.value,
            "rate_id": c.rate_id,
            "base_version": c.base_version,
        }
        for name in ("input_rate", "output_rate", "unit_cost_input", "unit_cost_output"):
            row[f"old_{name}"] = c.value("before", name)
            row[f"new_{name}"] = c.value("after", name)
        row["input_change_pct"] = _pct(row["old_input_rate"], row["new_input_rate"])
        row["output_change_pct"] = _pct(row["old_output_rate"], row["new_output_rate"])
        rows.append(row)
    return pd.DataFrame.from_records(rows, columns=_CHANGE_COLUMNS)


def events_frame(proposal: Proposal) -> pd.DataFrame:
    """What happened to the proposal, oldest first."""
    return pd.DataFrame.from_records(
        [
            {"at": e.at, "event": e.event, "actor": e.actor, "reason": e.reason,
             "content_hash": e.content_hash}
            for e in proposal.events
        ],
        columns=["at", "event", "actor", "reason", "content_hash"],
    )  # fmt: skip


def proposals_frame(proposals: Sequence[Proposal]) -> pd.DataFrame:
    """One row per proposal (the list view): id, state, source, counts, who, when."""
    rows = []
    for p in proposals:
        impact = p.impact or {}
        change = (impact.get("totals") or {}).get("change") or {}
        rows.append(
            {
                "id": p.id,
                "state": p.state.value,
                "source": p.source.value,
                "changes": len(p.changes),
                "proposer": p.proposer,
                "reason": p.reason,
                "approvals": f"{len(p.approvals)}/{p.required_approvals}",
                "effective_at": p.effective_at,
                "created_at": p.created_at,
                "list_revenue_change": change.get("list_revenue"),
                "provider_cost_change": change.get("provider_cost"),
                "users_newly_blocked": (impact.get("users") or {}).get("newly_blocked"),
                "content_hash": p.content_hash,
            }
        )
    return pd.DataFrame.from_records(
        rows,
        columns=[
            "id", "state", "source", "changes", "proposer", "reason", "approvals",
            "effective_at", "created_at", "list_revenue_change", "provider_cost_change",
            "users_newly_blocked", "content_hash",
        ],
    )  # fmt: skip
