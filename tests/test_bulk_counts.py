"""The bulk summary's numpy counts equal the exact Decimal preview's, every time.

:func:`hubkit.pricing.bulk_counts.bulk_counts` answers a keystroke in the bulk app without
making the 10,000-rate preview; it is exact (a float decides a side only where no half-way
point is near, the Decimal rule decides the rest), so these tests compare with ``==``.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.domain import RateType, UnitCosts
from hubkit.errors import ValidationError
from hubkit.pricing import RateFilter, bulk_preview
from hubkit.pricing.bulk_counts import BulkCounts, RateColumns, bulk_counts

D = Decimal


@dataclass(frozen=True)
class _Priced:
    """A :class:`~hubkit.pricing.PricedRate` with no validation: any numbers a store holds,
    and some it cannot (more than 10 places, costs too small for a float)."""

    id: int
    provider: str
    model: str
    type: RateType
    version: int
    input_rate: Decimal
    output_rate: Decimal
    unit_costs: UnitCosts | None


def _exactly_as_the_preview(rates: list[_Priced], margin: object, price: object,
                            flt: RateFilter | None = None) -> BulkCounts:  # fmt: skip
    counts = bulk_counts(RateColumns(rates), margin, price, flt)
    assert counts == BulkCounts.of(bulk_preview(rates, margin, price, flt))
    return counts


def _random_rates(n: int, seed: int) -> list[_Priced]:
    rng = random.Random(seed)

    def number(low: int, high: int) -> Decimal:
        return D(rng.randint(0, 10 ** rng.randint(0, 9))).scaleb(-rng.randint(low, high))

    out = []
    for i in range(n):
        costs = None
        if rng.random() > 0.05:
            costs = UnitCosts(
                number(9, 18) if rng.random() > 0.1 else D(0),
                number(9, 18) if rng.random() > 0.1 else D(0),
            )
        out.append(_Priced(
            i, rng.choice(["openai", "anthropic", "google"]), f"m-{i}",
            rng.choice(list(RateType)), 1,
            number(4, 10), number(4, 10) if rng.random() > 0.05 else D(0), costs,
        ))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("margin", "price"),
    [("25", "0.001"), ("0", "1"), ("12.345", "0.002"), ("50", "0.000001"), ("0", "3"),
     ("33.3", "0.7"), ("10000", "0.5"), ("0.0000001", "1000000")],
)  # fmt: skip
def test_counts_equal_the_exact_previews_on_random_rates(margin: str, price: str) -> None:
    rates = _random_rates(3000, seed=zlib.crc32(f"{margin}/{price}".encode()))
    counts = _exactly_as_the_preview(rates, margin, price)
    assert counts.changed + counts.unchanged + counts.skipped == len(rates)


def test_counts_follow_the_filter() -> None:
    rates = _random_rates(2000, seed=7)
    columns = RateColumns(rates)
    for flt in (RateFilter.create("openai"), RateFilter.create(types="imageGeneration"),
                RateFilter.create(model_pattern="m-1*"), RateFilter()):  # fmt: skip
        assert bulk_counts(columns, 25, "0.01", flt) == BulkCounts.of(
            bulk_preview(rates, 25, "0.01", flt)
        )


def test_half_way_points_are_decided_by_the_decimal_rule() -> None:
    # cost / price lands exactly on x.5 × 10^-10: ROUND_HALF_UP goes up, a float may not
    rates = [
        _Priced(i, "openai", f"h-{i}", RateType.CHAT_COMPLETION, 1, D("1E-10"), D(0),
                UnitCosts(D(2 * i + 1).scaleb(-11), D("0.00000000015")))
        for i in range(500)
    ]  # fmt: skip
    for margin, price in (("0", "1"), ("100", "2"), ("0", "0.5"), ("50", "1.5")):
        _exactly_as_the_preview(rates, margin, price)


def test_numbers_a_float_cannot_hold_go_the_decimal_way() -> None:
    odd = [
        # an old rate with more than 10 places (never stored, but a PricedRate may carry it)
        _Priced(1, "openai", "a", RateType.CHAT_COMPLETION, 1, D("0.00000000001"), D(1),
                UnitCosts(D("0.000001"), D(0))),
        # a cost too small for a float: 0.0 there, > 0 for the rule
        _Priced(2, "openai", "b", RateType.CHAT_COMPLETION, 1, D("0.5"), D(0),
                UnitCosts(D("1E-400"), D(0))),
        # a large rate: beyond the float's exact integers once scaled by 10^10
        _Priced(3, "openai", "c", RateType.CHAT_COMPLETION, 1, D("123456.1234567891"), D(0),
                UnitCosts(D("123.4561234567891"), D(0))),
    ]  # fmt: skip
    for margin, price in (("0", "1"), ("25", "0.001"), ("7", "0.000001")):
        _exactly_as_the_preview(odd, margin, price)


def test_refuses_what_the_preview_refuses() -> None:
    rates = _random_rates(50, seed=3)
    huge = _Priced(99, "openai", "huge", RateType.CHAT_COMPLETION, 1, D(1), D(1),
                   UnitCosts(D(100000), D(0)))  # fmt: skip
    for margin, price, field in (("abc", "1", "profitMargin"), ("10", "0", "creditPrice"),
                                 ("20000", "1", "profitMargin")):  # fmt: skip
        with pytest.raises(ValidationError) as exact:
            bulk_preview(rates, margin, price)
        with pytest.raises(ValidationError) as quick:
            bulk_counts(RateColumns(rates), margin, price)
        assert (quick.value.field, str(quick.value)) == (exact.value.field, str(exact.value))
        assert quick.value.field == field
    # a new rate beyond DECIMAL(20,10): the same refusal, naming the same rate
    with pytest.raises(ValidationError) as exact:
        bulk_preview([*rates, huge], 0, "0.000001")
    with pytest.raises(ValidationError) as quick:
        bulk_counts(RateColumns([*rates, huge]), 0, "0.000001")
    assert str(quick.value) == str(exact.value) and "openai/huge" in str(quick.value)


costs = st.decimals(min_value=0, max_value=D("0.01"), places=18)
old_rates = st.decimals(min_value=0, max_value=D(1000), places=10)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(costs, costs, old_rates, old_rates), min_size=1, max_size=20),
    st.decimals(min_value=0, max_value=1000, places=4),
    st.decimals(min_value=D("0.000001"), max_value=1000, places=6),
)
def test_counts_equal_the_preview_for_any_numbers(
    sides: list[tuple[Decimal, Decimal, Decimal, Decimal]], margin: Decimal, price: Decimal
) -> None:
    rates = [
        _Priced(i, "openai", f"m{i}", RateType.CHAT_COMPLETION, 1, old_in, old_out,
                UnitCosts(cin, cout))
        for i, (cin, cout, old_in, old_out) in enumerate(sides)
    ]  # fmt: skip
    try:
        expected = BulkCounts.of(bulk_preview(rates, margin, price))
    except ValidationError as exc:
        with pytest.raises(ValidationError, match=re.escape(str(exc).split(" would be")[0])):
            bulk_counts(RateColumns(rates), margin, price)
        return
    assert bulk_counts(RateColumns(rates), margin, price) == expected


def test_a_previews_own_counts_also_say_below_cost() -> None:
    # a margin is never below cost; a preview can still hold such a rate (made elsewhere)
    rate = _Priced(1, "openai", "x", RateType.CHAT_COMPLETION, 1, D(1), D(1),
                   UnitCosts(D("0.002"), D(0)))  # fmt: skip
    preview = bulk_preview([rate], 0, "0.001")
    change = preview.changes[0]
    cheap = replace(change, new_input_rate=D("1.9"))
    counts = BulkCounts.of(replace(preview, changes=(cheap,)))
    assert counts.below == 1 and counts.changed == 1
