"""Guardrails: all or nothing. One refused rate and the run writes nothing at all.

A rate is refused when either side would move by more than ``max_change_pct`` (a side
going from 0 to non-zero is an infinite move, so always beyond), or when a side would be
below cost (under the rounded break-even rate, domain.md) and below-cost is not allowed,
or when it would make a rate free (a priced side dropping to 0, or a side with a unit cost
rounding to 0: :func:`hubkit.pricing.zero_rate_reasons`) and zero rates are not allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hubkit.decimals import plain
from hubkit.domain import RateType, UnitCosts
from hubkit.pricing import (
    ALLOW_ZERO_RATES_HINT,
    BulkPreview,
    below_cost_check,
    change_pct,
    margin_rate,
    zero_rate_reasons,
)

_SIDES = ("input", "output")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One rate a job would write: before (None for a new rate) and after."""

    rate_id: int | None
    provider: str
    model: str
    type: RateType
    old_input_rate: Decimal | None
    old_output_rate: Decimal | None
    new_input_rate: Decimal
    new_output_rate: Decimal
    unit_costs: UnitCosts | None

    def side(self, side: str) -> tuple[Decimal | None, Decimal, Decimal | None]:
        """(old rate, new rate, unit cost) of ``input`` or ``output``."""
        cost = getattr(self.unit_costs, side) if self.unit_costs else None
        return (
            getattr(self, f"old_{side}_rate"),
            getattr(self, f"new_{side}_rate"),
            cost,
        )


class Guardrail(StrEnum):
    """Which guardrail a change trips (the apps word each one their own way)."""

    CHANGE_LIMIT = "change_limit"
    BELOW_COST = "below_cost"
    FREE = "free"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A rate the guardrails refused, with every reason (and which guardrail gave it)."""

    rate_id: int | None
    provider: str
    model: str
    type: RateType
    reasons: tuple[str, ...]
    #: parallel to ``reasons``
    tripped: tuple[Guardrail, ...] = ()
    #: the largest change % among the sides beyond the limit (None: from 0, or not tripped)
    largest_change_pct: Decimal | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.model, self.type.value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_id": self.rate_id,
            "provider": self.provider,
            "model": self.model,
            "type": self.type.value,
            "reasons": list(self.reasons),
        }


def candidates_from_preview(preview: BulkPreview) -> list[Candidate]:
    return [
        Candidate(
            c.rate_id,
            c.provider,
            c.model,
            c.type,
            c.old_input_rate,
            c.old_output_rate,
            c.new_input_rate,
            c.new_output_rate,
            c.unit_costs,
        )  # fmt: skip
        for c in preview.changed
    ]


def check(
    candidates: Iterable[Candidate],
    *,
    max_change_pct: Decimal | None,
    allow_below_cost: bool,
    credit_price: Decimal,
    allow_zero_rates: bool = False,
) -> list[Refusal]:
    """Every candidate that breaks a guardrail, with the reasons (empty: all may be written)."""
    refused: list[Refusal] = []
    is_below_cost = below_cost_check(credit_price)
    for cand in candidates:
        found: list[tuple[Guardrail, str]] = []
        largest: Decimal | None = None
        for side in _SIDES:
            old, new, cost = cand.side(side)
            if max_change_pct is not None and old is not None and old != new:
                pct = change_pct(old, new)
                if pct is None:
                    found.append((Guardrail.CHANGE_LIMIT,
                        f"{side} rate 0 → {plain(new)}: from zero counts as beyond "
                        f"max_change_pct={plain(max_change_pct)}"))  # fmt: skip
                elif abs(pct) > max_change_pct:
                    largest = pct if largest is None or abs(pct) > abs(largest) else largest
                    found.append((Guardrail.CHANGE_LIMIT,
                        f"{side} rate {plain(old)} → {plain(new)} ({pct:+.2f} %) is beyond "
                        f"max_change_pct={plain(max_change_pct)}"))  # fmt: skip
            if not allow_below_cost and is_below_cost(new, cost):
                breakeven = plain(margin_rate(cost, 0, credit_price))
                found.append((Guardrail.BELOW_COST,
                    f"{side} rate {plain(new)} is below cost (break-even {breakeven} at unit "
                    f"cost {plain(cost)}, credit price {plain(credit_price)}); "
                    "allow_below_cost=True to accept"))  # fmt: skip
        if not allow_zero_rates:
            found += [
                (Guardrail.FREE, f"{why}; {ALLOW_ZERO_RATES_HINT}")
                for why in zero_rate_reasons(
                    cand.unit_costs, cand.old_input_rate, cand.new_input_rate,
                    cand.old_output_rate, cand.new_output_rate,
                )
            ]  # fmt: skip
        if found:
            refused.append(
                Refusal(
                    cand.rate_id,
                    cand.provider,
                    cand.model,
                    cand.type,
                    tuple(why for _, why in found),
                    tuple(kind for kind, _ in found),
                    largest,
                )  # fmt: skip
            )
    return refused


def refusal_columns(
    keys: Iterable[tuple[str, str, str]], refused: Iterable[Refusal]
) -> tuple[list[bool], list[str]]:
    """``refused`` / ``refusal_reason`` columns for a changes table keyed like ``keys``."""
    by_key = {r.key: r for r in refused}
    flags, reasons = [], []
    for key in keys:
        r = by_key.get(key)
        flags.append(r is not None)
        reasons.append("; ".join(r.reasons) if r else "")
    return flags, reasons
