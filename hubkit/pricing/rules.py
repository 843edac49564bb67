"""The exact pricing rules (pure functions on Decimal). One implementation of each rule.

Doctests pin the examples from domain.md:

>>> mask_secret("sk-proj-abcdefghijklmnop1234")
'sk-p****************1234'
>>> margin_rate("0.0000025", 25, "0.001")
Decimal('0.0031250000')
>>> call_credits("imageGeneration", input_rate=0, output_rate="0.04", images=3)
Decimal('0.1200000000')
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

from hubkit.decimals import EXACT, ZERO, plain, quantize, require_decimal, to_decimal
from hubkit.domain import (
    FRACTIONAL_COUNTS,
    RATE_LIMIT,
    Rate,
    RateType,
    UnitCosts,
    billing_of,
    parse_csv_list,
)
from hubkit.errors import ValidationError

_HUNDRED = Decimal(100)


def mask_secret(value: str) -> str:
    """First 4 + ``*`` × min(16, len − 8) + last 4; ``***`` below 16 characters."""
    if len(value) < 16:
        return "***"
    return value[:4] + "*" * min(16, len(value) - 8) + value[-4:]


def credential_display_text(credential_type: str, value: Mapping[str, str]) -> str:
    """What a person may see of a credential: masked, never the secret."""
    if credential_type == "api_key":
        return mask_secret(value.get("api_key", ""))
    if credential_type == "access_key_pair":
        return (
            f"{value.get('access_key_id', '')} / {mask_secret(value.get('secret_access_key', ''))}"
        )
    return ", ".join(f"{k}: {mask_secret(v)}" for k, v in sorted(value.items()))


def margin_rate(unit_cost: Any, profit_margin: Any, credit_price: Any) -> Decimal:
    """``unitCost × (1 + margin/100) / creditPrice``, exact, then 10 places ROUND_HALF_UP."""
    cost = require_decimal(unit_cost, "unitCost")
    margin = validate_margin(profit_margin)
    price = validate_credit_price(credit_price)
    return margin_rate_by_factor(cost, markup_factor(margin), price)


def markup_factor(margin: Decimal) -> Decimal:
    return EXACT.add(1, EXACT.divide(margin, _HUNDRED))


def margin_rate_by_factor(cost: Decimal, factor: Decimal, price: Decimal) -> Decimal:
    # The rule's arithmetic on validated operands: margin_rate and bulk_preview share it,
    # so a preview of 10,000 rates validates the margin and price once, not 20,000 times.
    try:
        return quantize(EXACT.divide(EXACT.multiply(cost, factor), price))
    except InvalidOperation:
        # more digits than the exact context holds: no gateway rate could store it
        raise ValidationError(
            f"profitMargin / creditPrice are out of range: unit cost {cost} × "
            f"{factor} / {price} has no 10-place rate; use a margin in % (e.g. 25) and a "
            "credit price in currency per credit (e.g. 0.001)",
            field="creditPrice",
        ) from None


def validate_margin(profit_margin: Any) -> Decimal:
    return require_decimal(profit_margin, "profitMargin")


#: The plausible credit price, in currency per credit: what settings store and what a bulk
#: update may price with. AIGNE Hub's default is 1 and real deployments sell credits at
#: 0.0001–1 currency each; a millionth of a cent is already a price no payment link can
#: charge, and a million per credit prices a token in the thousands. Anything outside
#: these twelve orders of magnitude is a typo (``1e400``, a missed decimal point) whose
#: bulk update would round every rate to 0 or beyond DECIMAL(20,10); refuse it instead.
CREDIT_PRICE_RANGE = (Decimal("0.000001"), Decimal("1000000"))
#: The plausible markup on cost, in %: 0 sells at cost, 10,000 % at 101× cost. More is a
#: typo (margin given in basis points, or a price pasted into the margin field).
MARGIN_RANGE = (Decimal(0), Decimal(10000))


def _shown(value: Any) -> str:
    # "1E+400", not "Decimal('1E+400')"; text keeps its quotes so blanks show
    return str(value) if isinstance(value, Decimal) else repr(value)


def plausible_credit_price(credit_price: Any) -> Decimal:
    """:func:`validate_credit_price` and within :data:`CREDIT_PRICE_RANGE`."""
    price = validate_credit_price(credit_price)
    _check_plausible(
        price, credit_price, CREDIT_PRICE_RANGE, "creditPrice", "currency per credit, e.g. 0.001"
    )
    return price


def plausible_margin(profit_margin: Any) -> Decimal:
    """:func:`validate_margin` and within :data:`MARGIN_RANGE`."""
    margin = validate_margin(profit_margin)
    _check_plausible(
        margin, profit_margin, MARGIN_RANGE, "profitMargin", "a markup on cost in %, e.g. 25"
    )
    return margin


def _check_plausible(
    value: Decimal, given: Any, bounds: tuple[Decimal, Decimal], field: str, unit: str
) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValidationError(
            f"{field} {_shown(given)} is outside the plausible range {plain(low)} – "
            f"{plain(high)} ({unit}); check for a typo",
            field=field,
            value=given,
        )


def validate_credit_price(credit_price: Any) -> Decimal:
    price = require_decimal(credit_price, "creditPrice")
    if price <= 0:
        raise ValidationError(
            f"creditPrice must be > 0 (currency per credit, e.g. 0.001), got {credit_price!r}",
            field="creditPrice",
            value=credit_price,
        )
    return price


def _count(value: Any, field: str, *, integral: bool = True) -> Decimal:
    number = require_decimal(value, field)
    if integral and number != number.to_integral_value():
        raise ValidationError(f"{field} must be a whole number, got {value!r}", field=field)
    return number


def call_credits(
    type: Any,
    *,
    input_rate: Any,
    output_rate: Any,
    input_tokens: Any = 0,
    output_tokens: Any = 0,
    images: Any = 0,
    seconds: Any = 0,
    cache_read_tokens: Any = 0,
    cache_write_tokens: Any = 0,
    cache_read_rate: Any = None,
    cache_write_rate: Any = None,
) -> Decimal:
    """Credits for one call (domain.md, "Credits for one call").

    The rule every twin mirrors; which count the type bills at outputRate comes from
    :data:`hubkit.domain.BILLING`. A count that does not apply to the type (images on a
    chat call, output tokens on an image call) is ignored, as the gateway does. A cache
    rate of 0 is honoured; only a missing one (None) falls back to inputRate.
    """
    billed = billing_of(type).output
    in_rate = require_decimal(input_rate, "inputRate")
    out_rate = require_decimal(output_rate, "outputRate")
    read_rate = to_decimal(cache_read_rate, "cache_read_rate", allow_none=True)
    write_rate = to_decimal(cache_write_rate, "cache_write_rate", allow_none=True)
    n_in = _count(input_tokens, "input_tokens")
    n_read = _count(cache_read_tokens, "cache_read_tokens")
    n_write = _count(cache_write_tokens, "cache_write_tokens")
    given = {"output_tokens": output_tokens, "images": images, "seconds": seconds}
    units = _count(given[billed], billed, integral=billed not in FRACTIONAL_COUNTS)
    total = EXACT.add(EXACT.multiply(n_in, in_rate), EXACT.multiply(units, out_rate))
    total = EXACT.add(total, EXACT.multiply(n_write, in_rate if write_rate is None else write_rate))
    total = EXACT.add(total, EXACT.multiply(n_read, in_rate if read_rate is None else read_rate))
    return quantize(total)


def rate_credits(rate: Rate, **counts: Any) -> Decimal:
    """:func:`call_credits` with the rates (and cache rates) of a stored :class:`Rate`."""
    caching = rate.caching
    return call_credits(
        rate.type,
        input_rate=rate.input_rate,
        output_rate=rate.output_rate,
        cache_read_rate=caching.read_rate if caching else None,
        cache_write_rate=caching.write_rate if caching else None,
        **counts,
    )


def is_below_cost(rate: Decimal, unit_cost: Decimal | None, credit_price: Any) -> bool:
    """Below the rounded break-even rate; rounding alone never counts as below cost."""
    if unit_cost is None or unit_cost <= 0:
        return False
    return rate < margin_rate(unit_cost, 0, credit_price)


def below_cost_check(credit_price: Any) -> Callable[[Decimal, Decimal | None], bool]:
    """:func:`is_below_cost` at one credit price, validated once: for a whole preview
    (validating it twice per rate was most of a 10,000-rate check)."""
    try:
        price = validate_credit_price(credit_price)
    except ValidationError:  # raised as before, by the first rate with a unit cost
        return lambda rate, unit_cost: is_below_cost(rate, unit_cost, credit_price)
    one = Decimal(1)

    def below(rate: Decimal, unit_cost: Decimal | None) -> bool:
        if unit_cost is None or unit_cost <= 0:
            return False
        return rate < margin_rate_by_factor(require_decimal(unit_cost, "unitCost"), one, price)

    return below


def implied_markup_pct(
    rate: Decimal, unit_cost: Decimal | None, credit_price: Any
) -> Decimal | None:
    """Markup on cost the rate implies: ``(rate × creditPrice / unitCost − 1) × 100``."""
    if unit_cost is None or unit_cost <= 0:
        return None
    price = validate_credit_price(credit_price)
    ratio = EXACT.divide(EXACT.multiply(rate, price), unit_cost)
    return EXACT.multiply(EXACT.subtract(ratio, 1), _HUNDRED)


def change_pct(old: Decimal, new: Decimal) -> Decimal | None:
    """Relative change in %; None when going from 0 to non-zero (an infinite change)."""
    if old == new:
        return ZERO
    if old == 0:
        return None
    return EXACT.multiply(EXACT.divide(new - old, old), _HUNDRED)


class RateKey(Protocol):
    """What a :class:`RateFilter` reads: a stored rate, a preview row, a catalog entry."""

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def type(self) -> RateType: ...


class PricedRate(RateKey, Protocol):
    """What :func:`bulk_preview` reads of a rate: a :class:`~hubkit.domain.Rate`, or the
    store's lighter preview row (it reads only these columns for a 10,000-rate preview)."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def input_rate(self) -> Decimal: ...
    @property
    def output_rate(self) -> Decimal: ...
    @property
    def unit_costs(self) -> UnitCosts | None: ...


@dataclass(frozen=True, slots=True)
class RateFilter:
    """Which rates a bulk operation touches: empty lists mean "all"."""

    providers: tuple[str, ...] = ()
    types: tuple[RateType, ...] = ()
    model_pattern: str = ""

    @classmethod
    def create(
        cls,
        providers: str | Iterable[str] | None = None,
        types: str | Iterable[str] | None = None,
        model_pattern: str | None = None,
    ) -> RateFilter:
        return cls(
            providers=tuple(p.lower() for p in parse_csv_list(providers)),
            types=tuple(RateType.parse(t) for t in parse_csv_list(types)),
            model_pattern=(model_pattern or "").strip(),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.providers or self.types or self.model_pattern)

    def check_providers(self, known: Iterable[str]) -> RateFilter:
        """Refuse a provider filter naming a provider the store does not have.

        A typo (``opneai``) would otherwise match nothing and "apply 0 rates" with success.
        """
        names = sorted(set(known))
        unknown = [p for p in self.providers if p not in names]
        if unknown:
            raise ValidationError(
                f"unknown provider{'s' if len(unknown) > 1 else ''} in the filter: "
                f"{', '.join(unknown)}; the store has: {', '.join(names) or '(no providers)'}",
                field="providers",
                value=",".join(unknown),
            )
        return self

    def describe(self) -> str:
        parts = []
        if self.providers:
            parts.append(f"providers {','.join(self.providers)}")
        if self.types:
            parts.append(f"types {','.join(t.value for t in self.types)}")
        if self.model_pattern:
            parts.append(f"model {self.model_pattern!r}")
        return ", ".join(parts) or "all rates"

    def matches(self, rate: RateKey) -> bool:
        if self.providers and rate.provider not in self.providers:
            return False
        if self.types and rate.type not in self.types:
            return False
        if self.model_pattern and not fnmatch.fnmatchcase(
            rate.model.lower(), self.model_pattern.lower()
        ):
            return False
        return True


def zero_rate_reasons(
    unit_costs: UnitCosts | None,
    old_input_rate: Decimal | None,
    new_input_rate: Decimal,
    old_output_rate: Decimal | None,
    new_output_rate: Decimal,
) -> tuple[str, ...]:
    """The sanity bound every bulk write is held to: why it would make a rate free.

    A side is named when its new rate is 0 although it was priced (old rate > 0; ``None``
    for a rate being created), or although it has a unit cost > 0 — a non-zero rate that
    rounds to 0 at 10 places because the credit price is far too high for the cost. Either
    sells calls for nothing, and neither counts as "below cost" (the rounded break-even
    rate is 0 as well). :func:`check_zero_rates` (CLI, app) and the job guardrails refuse
    such a change unless it is confirmed with ``allow_zero_rates``.
    """
    reasons = []
    for side, old, new in (
        ("input", old_input_rate, new_input_rate),
        ("output", old_output_rate, new_output_rate),
    ):
        if new != 0 or old == 0:
            continue  # priced, or already 0 before this change (not its doing)
        cost = getattr(unit_costs, side) if unit_costs is not None else None
        if cost is not None and cost > 0:
            reasons.append(
                f"{side} rate rounds to 0 at 10 places (unit cost {plain(cost)}): the "
                "credit price is far too high for it"
            )
        elif old is not None and old > 0:
            reasons.append(f"{side} rate {plain(old)} → 0 (its unit cost is 0): it becomes free")
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class RateChange:
    """One row of a bulk-update preview: the numbers apply will write."""

    rate_id: int
    provider: str
    model: str
    type: RateType
    version: int
    unit_costs: UnitCosts
    old_input_rate: Decimal
    new_input_rate: Decimal
    old_output_rate: Decimal
    new_output_rate: Decimal

    @property
    def input_change_pct(self) -> Decimal | None:
        return change_pct(self.old_input_rate, self.new_input_rate)

    @property
    def output_change_pct(self) -> Decimal | None:
        return change_pct(self.old_output_rate, self.new_output_rate)

    @property
    def changed(self) -> bool:
        return (
            self.old_input_rate != self.new_input_rate
            or self.old_output_rate != self.new_output_rate
        )

    @property
    def drops_to_zero(self) -> tuple[str, ...]:
        """Sides that go from non-zero to 0 because their unit cost is 0."""
        sides = []
        if self.old_input_rate > 0 and self.new_input_rate == 0:
            sides.append("input")
        if self.old_output_rate > 0 and self.new_output_rate == 0:
            sides.append("output")
        return tuple(sides)

    def zero_rate_reasons(self) -> tuple[str, ...]:
        """Why this change would make a rate free (empty: it would not)."""
        return zero_rate_reasons(
            self.unit_costs, self.old_input_rate, self.new_input_rate,
            self.old_output_rate, self.new_output_rate,
        )  # fmt: skip

    def max_abs_change_pct(self) -> Decimal | None:
        """Largest |change %| of the two sides; None means infinite (0 → non-zero)."""
        worst = ZERO
        for pct in (self.input_change_pct, self.output_change_pct):
            if pct is None:
                return None
            worst = max(worst, abs(pct))
        return worst


class SkipReason(StrEnum):
    """Why a margin bulk update leaves a rate alone (domain.md, "Bulk update").

    Views render a skip from here: :attr:`text` per rate (``skipped.csv``, the app's list),
    :meth:`summary` in count lines ("3 skipped (no unit costs)").
    """

    NO_UNIT_COSTS = "no_unit_costs"
    ZERO_UNIT_COSTS = "zero_unit_costs"

    @property
    def text(self) -> str:
        """The reason for one rate, as every view shows it."""
        return _SKIP_TEXT[self][0]

    @property
    def label(self) -> str:
        """The reason in plain words, shared by the kinds of skip it groups."""
        return _SKIP_TEXT[self][1]

    @classmethod
    def summary(cls) -> str:
        """Why rates are skipped at all, for a count line: the distinct labels."""
        return ", ".join(dict.fromkeys(member.label for member in cls))


_SKIP_TEXT = {
    SkipReason.NO_UNIT_COSTS: ("no unitCosts", "no unit costs"),
    SkipReason.ZERO_UNIT_COSTS: ("unitCosts are both 0", "no unit costs"),
}


def skip_reason(unit_costs: UnitCosts | None) -> SkipReason | None:
    """Why a margin bulk update skips a rate with these unit costs; None: it reprices it."""
    if unit_costs is None:
        return SkipReason.NO_UNIT_COSTS
    return None if unit_costs.is_eligible else SkipReason.ZERO_UNIT_COSTS


@dataclass(frozen=True, slots=True)
class SkippedRate:
    """A rate a bulk update leaves alone, with the :class:`SkipReason` why."""

    rate_id: int
    provider: str
    model: str
    type: RateType
    code: SkipReason

    @property
    def reason(self) -> str:
        """The reason as text (:attr:`SkipReason.text`)."""
        return self.code.text


@dataclass(frozen=True, slots=True)
class BulkPreview:
    """What a margin bulk update would do; ``apply`` writes exactly these numbers."""

    profit_margin: Decimal
    credit_price: Decimal
    changes: tuple[RateChange, ...]
    skipped: tuple[SkippedRate, ...]

    @property
    def changed(self) -> tuple[RateChange, ...]:
        return tuple(c for c in self.changes if c.changed)

    @property
    def unchanged(self) -> tuple[RateChange, ...]:
        return tuple(c for c in self.changes if not c.changed)

    def zero_rates(self) -> tuple[RateChange, ...]:
        """Changes that would make a rate free: a priced side dropping to 0, or a side with
        a unit cost whose new rate rounds to 0 (refused by :func:`check_zero_rates`)."""
        return tuple(c for c in self.changed if c.zero_rate_reasons())

    def below_cost(self) -> tuple[RateChange, ...]:
        """Rates whose new value would sell below cost (never, for margin ≥ 0)."""
        below = below_cost_check(self.credit_price)
        return tuple(
            c
            for c in self.changes
            if below(c.new_input_rate, c.unit_costs.input)
            or below(c.new_output_rate, c.unit_costs.output)
        )


def bulk_preview(
    rates: Iterable[PricedRate],
    profit_margin: Any,
    credit_price: Any,
    rate_filter: RateFilter | None = None,
) -> BulkPreview:
    """Margin-mode bulk update as a diff (domain.md, "Bulk update").

    Every filtered rate with a unit cost > 0 on either side is recomputed on both sides;
    the others are skipped with the reason. ``rates`` may be :class:`~hubkit.domain.Rate`
    values or any :class:`PricedRate` (the store's preview reads only the columns needed).
    """
    margin = plausible_margin(profit_margin)
    price = plausible_credit_price(credit_price)
    factor = markup_factor(margin)
    flt = None if rate_filter is None or rate_filter.is_empty else rate_filter
    changes: list[RateChange] = []
    skipped: list[SkippedRate] = []
    for rate in rates:
        if flt is not None and not flt.matches(rate):
            continue
        costs = rate.unit_costs
        code = skip_reason(costs)
        if code is not None:
            skipped.append(SkippedRate(rate.id, rate.provider, rate.model, rate.type, code))
            continue
        assert costs is not None  # skip_reason names every rate without unit costs
        # Positional, in RateChange field order: passing keywords was ~8% of this loop.
        changes.append(
            RateChange(
                rate.id,
                rate.provider,
                rate.model,
                rate.type,
                rate.version,
                costs,
                rate.input_rate,
                margin_side(costs.input, factor, price, rate),
                rate.output_rate,
                margin_side(costs.output, factor, price, rate),
            )
        )
    return BulkPreview(margin, price, tuple(changes), tuple(skipped))


ALLOW_ZERO_RATES_HINT = (
    "check the credit price and margin; to make these rates free on purpose, confirm with "
    "--allow-zero-rates (CLI), allow_zero_rates=True (job, store) or the 'allow rates of 0' "
    "box (app)"
)


def check_zero_rates(preview: BulkPreview, *, allow_zero_rates: bool = False) -> None:
    """Refuse a bulk update that would make a rate free unless ``allow_zero_rates``.

    The one sanity check of the CLI, the job and the bulk app: a priced (non-zero) side
    dropping to 0, or a side with a unit cost whose new rate rounds to 0 at 10 places
    (a credit price far too high for it). Both sell calls for nothing and neither shows up
    as "below cost", since the rounded break-even rate is 0 as well.
    """
    if allow_zero_rates:
        return
    bad = preview.zero_rates()
    if not bad:
        return
    shown = "; ".join(
        f"{c.provider}/{c.model} ({c.type.value}): {', '.join(c.zero_rate_reasons())}"
        for c in bad[:5]
    )
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise ValidationError(
        f"refused: {len(bad)} of {len(preview.changed)} rate changes would make a rate 0 "
        f"(free): {shown}{more}; nothing was written — {ALLOW_ZERO_RATES_HINT}",
        field="allow_zero_rates",
    )


def margin_side(cost: Decimal, factor: Decimal, price: Decimal, rate: PricedRate) -> Decimal:
    """One side's new rate in a bulk update, refused beyond DECIMAL(20,10) (validated
    operands: :func:`bulk_preview` and :mod:`hubkit.pricing.bulk_counts` share it)."""
    return _fitting_rate(margin_rate_by_factor(cost, factor, price), rate)


def _fitting_rate(value: Decimal, rate: PricedRate) -> Decimal:
    if value >= RATE_LIMIT:
        raise ValidationError(
            f"the new rate for {rate.provider}/{rate.model} would be {value}, beyond the "
            "gateway's DECIMAL(20,10) rates: the credit price is far too small for its unit "
            "costs (credit price is currency per credit, e.g. 0.001)",
            field="creditPrice",
        )
    return value
