""" "Propose" beside "Apply": what the change apps (02, 03) share to make a proposal.

A proposal writes no rate: it is stored with its impact on the usage window and waits for
another person's approval in notebook 06 (:mod:`hubkit.widgets.proposals`). It needs a
reason, and may take effect at a future UTC time (blank: as soon as it is approved).
"""

from __future__ import annotations

from datetime import UTC, datetime

import ipywidgets as widgets
import pandas as pd

from hubkit.errors import ValidationError
from hubkit.proposals import Impact, Proposal
from hubkit.store.types import utcnow
from hubkit.widgets._common import Message, counted, text_input

#: what the effective-time field says when left blank
ON_APPROVAL = "blank = as soon as it is approved"


def parse_effective_at(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """The UTC time a proposal takes effect: blank = on approval; else a future time
    (``2027-01-01 00:00``, ISO 8601; no zone = UTC)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        parsed: object = pd.Timestamp(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if not isinstance(parsed, pd.Timestamp) or pd.isna(parsed):
        raise ValidationError(
            f"effective time {text!r} is not a time; type e.g. 2027-01-01 00:00 (UTC), or "
            "leave it blank to apply on approval",
            field="effective_at",
        )
    stamp = parsed
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    moment = stamp.to_pydatetime().astimezone(UTC)
    if moment <= (now or utcnow()):
        raise ValidationError(
            f"effective time {moment:%Y-%m-%d %H:%M} UTC is not in the future; leave it blank "
            "to apply on approval",
            field="effective_at",
        )
    return moment


def proposed_message(proposal: Proposal) -> Message:
    """What the proposer is told: the id, what it holds, its impact in one line, what next."""
    when = (
        "on approval"
        if proposal.effective_at is None
        else f"at {proposal.effective_at:%Y-%m-%d %H:%M} UTC"
    )
    text = (
        f"proposed: proposal {proposal.id} ({counted(len(proposal.changes), 'rate change')}, "
        f"effective {when}); nothing is written until another person approves it in "
        "06 · Rate proposals"
    )
    impact = Impact.from_json(proposal.impact)
    if impact is not None:
        change = impact.total("list_revenue")
        text += f"; list revenue change on the usage window {change:+,.2f}"
        if impact.synthetic:
            text += " (SYNTHETIC usage)"
    return Message.success(text)


class ProposeControls:
    """The effective-time field and the Propose button a change app puts beside Apply."""

    def __init__(self, css_prefix: str, *, width: str = "420px") -> None:
        self.effective = text_input("effective (UTC)", placeholder=ON_APPROVAL, width=width)
        self.button = widgets.Button(
            description="Propose", icon="paper-plane", button_style="info",
            tooltip="store the change as a proposal for another person to approve",
        )  # fmt: skip
        self.why_not = widgets.HTML()
        self.effective.add_class(f"{css_prefix}-effective")
        self.button.add_class(f"{css_prefix}-propose")
        self.why_not.add_class(f"{css_prefix}-propose-why-not")
