"""Cross-check hubkit's margin arithmetic against the hub's own, before pushing rates.

The hub's sync-mode ``bulk-rate-update`` honours ``dryRun``: given unit costs, a margin
and a credit price it answers with the rates *it* would compute, writing nothing.
:func:`verify_against_hub_arithmetic` sends the unit costs of every rate a plan (or a
local bulk-update preview) is about to push, and compares the hub's numbers with
hubkit's after quantising both to 10 places. Any difference raises
:class:`ArithmeticMismatchError` listing the rates: then hubkit and the hub do not agree
on what a rate should be, and nothing should be pushed until someone finds out why.

The margin-mode bulk update is never used here: it ignores ``dryRun`` and rewrites every
rate at once (see :meth:`hubkit.hub.HubClient.apply_margin_to_all_rates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hubkit.decimals import plain, quantize
from hubkit.domain import RateType, UnitCosts
from hubkit.errors import ConflictError, ValidationError
from hubkit.hub import _fields as F
from hubkit.hub.models import HubRate, SyncItem, SyncUpdate
from hubkit.hub.plan import Action, ItemKind, Plan
from hubkit.hub.pull import HubState, pull
from hubkit.pricing import BulkPreview, skip_reason, validate_credit_price, validate_margin

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient


@dataclass(frozen=True, slots=True)
class ArithmeticMismatch:
    provider: str
    model: str
    type: RateType
    side: str  # "input" or "output"
    hubkit: Decimal
    hub: Decimal

    def describe(self) -> str:
        return (
            f"{self.provider}/{self.model} ({self.type.value}) {self.side}: "
            f"hubkit {plain(self.hubkit)} ≠ hub {plain(self.hub)}"
        )


@dataclass(frozen=True, slots=True)
class ArithmeticCheck:
    """The outcome of one cross-check (``ok`` when every compared rate agrees)."""

    profit_margin: Decimal
    credit_price: Decimal
    compared: int
    agreed: int
    mismatches: tuple[ArithmeticMismatch, ...]
    not_compared: tuple[str, ...] = ()  # "provider/model: why"
    tier2_side_effects: tuple[str, ...] = ()  # what a real sync would also change

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        text = (
            f"{self.agreed} of {self.compared} rates agree with the hub's arithmetic "
            f"(margin {plain(self.profit_margin)} %, credit price {plain(self.credit_price)})"
        )
        if self.not_compared:
            text += f"; {len(self.not_compared)} not compared"
        return text


class ArithmeticMismatchError(ConflictError):
    """hubkit's rates and the hub's own arithmetic differ: nothing should be pushed."""

    def __init__(self, message: str, check: ArithmeticCheck) -> None:
        super().__init__(message)
        self.check = check
        self.mismatches = check.mismatches


@dataclass(frozen=True, slots=True)
class _Candidate:
    provider: str
    model: str
    type: RateType
    unit_costs: UnitCosts
    input_rate: Decimal
    output_rate: Decimal
    on_hub: HubRate | None

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model} ({self.type.value})"


def verify_against_hub_arithmetic(
    source: Plan | BulkPreview,
    client: HubClient,
    profit_margin: Any = None,
    credit_price: Any = None,
) -> ArithmeticCheck:
    """Compare the rates ``source`` would push with the hub's sync-mode dry run.

    ``source`` is a :class:`~hubkit.hub.plan.Plan` (its rate creates/updates with unit
    costs) or a :class:`~hubkit.pricing.BulkPreview` (margin and price default to the
    preview's). Returns the check, or raises :class:`ArithmeticMismatchError`.
    """
    if isinstance(source, BulkPreview):
        profit_margin = source.profit_margin if profit_margin is None else profit_margin
        credit_price = source.credit_price if credit_price is None else credit_price
    if profit_margin is None or credit_price is None:
        raise ValidationError(
            "verify_against_hub_arithmetic needs the profit margin and credit price the rates "
            "were computed with",
            field="profitMargin" if profit_margin is None else "creditPrice",
        )
    margin, price = validate_margin(profit_margin), validate_credit_price(credit_price)
    state = pull(client)
    candidates, skipped = _candidates(source, state)
    if not candidates:
        return ArithmeticCheck(margin, price, 0, 0, (), tuple(skipped))
    updates = [
        SyncUpdate(
            provider=c.provider,
            model=c.model,
            unit_costs=c.unit_costs,
            is_new=c.on_hub is None,
            model_type=c.type if c.on_hub is None else None,
        )
        for c in candidates
    ]
    result = client.sync_rates(
        updates, dry_run=True, apply_rates=True, profit_margin=margin, credit_price=price
    )
    computed: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for entry in (*result.updated, *result.created):
        if not entry.is_tier2_side_effect and entry.new_rates is not None:
            computed[(entry.provider, entry.model)] = (
                entry.new_rates.input_rate,
                entry.new_rates.output_rate,
            )
    unchanged = {(e.provider, e.model) for e in result.unchanged}
    refused = {(e.provider, e.model): _why(e) for e in (*result.unmatched, *result.errors)}
    mismatches: list[ArithmeticMismatch] = []
    compared = agreed = 0
    for c in candidates:
        key = (c.provider, c.model)
        hub_rates = computed.get(key)
        if hub_rates is None and key in unchanged and c.on_hub is not None:
            # "unchanged": the hub's stored rates already equal what it computes
            hub_rates = (c.on_hub.input_rate, c.on_hub.output_rate)
        if hub_rates is None:
            skipped.append(f"{c.label}: {refused.get(key, 'the hub did not report it')}")
            continue
        compared += 1
        sides = (("input", c.input_rate, hub_rates[0]), ("output", c.output_rate, hub_rates[1]))
        wrong = [
            ArithmeticMismatch(c.provider, c.model, c.type, side, quantize(ours), quantize(theirs))
            for side, ours, theirs in sides
            if quantize(ours) != quantize(theirs)
        ]
        mismatches += wrong
        agreed += not wrong
    check = ArithmeticCheck(
        margin,
        price,
        compared,
        agreed,
        tuple(mismatches),
        tuple(skipped),
        tuple(f"{e.provider}/{e.model}" for e in result.tier2_side_effects),
    )
    if mismatches:
        listed = "; ".join(m.describe() for m in mismatches[:10])
        more = f" (and {len(mismatches) - 10} more)" if len(mismatches) > 10 else ""
        raise ArithmeticMismatchError(
            f"refusing to push: hubkit's rates and the hub's own arithmetic disagree on "
            f"{compared - agreed} of {compared} rates (margin {plain(margin)} %, credit price "
            f"{plain(price)}): {listed}{more}. Nothing was applied; check the margin and "
            "credit price the local rates were computed with, or re-run the local bulk update",
            check,
        )
    return check


def _why(entry: SyncItem) -> str:
    return entry.reason or entry.error or "the hub's sync did not match it"


def _candidates(source: Plan | BulkPreview, state: HubState) -> tuple[list[_Candidate], list[str]]:
    found: list[_Candidate] = []
    skipped: list[str] = []
    if isinstance(source, BulkPreview):
        for change in source.changes:
            found.append(
                _Candidate(
                    change.provider,
                    change.model,
                    change.type,
                    change.unit_costs,
                    change.new_input_rate,
                    change.new_output_rate,
                    state.rate(change.provider, change.model, change.type),
                )
            )
    else:
        for item in source.items:
            if item.kind is not ItemKind.RATE or item.action not in (Action.CREATE, Action.UPDATE):
                continue
            fields = {c.field for c in item.changes}
            if not fields & {"inputRate", "outputRate", "unitCosts"}:
                continue
            hub_r = state.rate(item.provider, item.name, item.type)
            want = {**(F.rate_fields(hub_r) if hub_r else {})}
            want.update({c.field: c.new for c in item.changes})
            costs = UnitCosts.parse(F.decode("unitCosts", want.get("unitCosts")))
            why = skip_reason(costs)
            if why is not None:
                skipped.append(f"{item.target}: {why.label}, so no margin arithmetic")
                continue
            assert costs is not None  # skip_reason gives no reason only for real unit costs
            found.append(
                _Candidate(
                    item.provider,
                    item.name,
                    RateType.parse(item.type),
                    costs,
                    Decimal(want.get("inputRate") or "0"),
                    Decimal(want.get("outputRate") or "0"),
                    hub_r,
                )
            )
    unique: dict[tuple[str, str], _Candidate] = {}
    for c in found:
        if (c.provider, c.model) in unique:
            # the hub's sync matches by provider and model only: one type per model
            skipped.append(f"{c.label}: the same model under another type is compared instead")
            continue
        unique[(c.provider, c.model)] = c
    return list(unique.values()), skipped
