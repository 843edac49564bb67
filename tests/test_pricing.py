"""hubkit.pricing: the gateway's rules, checked against domain.md and with hypothesis."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubkit.domain import Caching, Rate, RateType, UnitCosts
from hubkit.errors import ValidationError
from hubkit.frames import skipped_frame
from hubkit.pricing import (
    RateFilter,
    SkipReason,
    bulk_preview,
    call_credits,
    change_pct,
    credential_display_text,
    default_model_display,
    implied_markup_pct,
    is_below_cost,
    margin_rate,
    mask_secret,
    rate_credits,
    skip_reason,
)

HALF_UNIT = Fraction(1, 2 * 10**10)  # half a unit of the 10th decimal


def D(text: str) -> Decimal:
    return Decimal(text)


# --- conformance: every example in domain.md -------------------------------------------------


@pytest.mark.parametrize(
    ("model", "display"),
    [
        ("gpt-4o-mini", "Gpt 4o Mini"),
        ("openai/gpt-4.1", "Gpt 4.1"),
        ("dall-e-3", "Dall E 3"),
        ("meta-llama/llama-3.1-8b-instruct", "Llama 3.1 8b Instruct"),
        ("text_embedding-3", "Text_embedding 3"),
        ("a/", "a/"),
        # beyond the examples: the rule as stated
        ("claude-3-opus-20240229", "Claude 3 Opus 20240229"),
        ("anthropic.claude-v2:1", "Anthropic.Claude V2:1"),
        ("a/b/c-d", "C D"),
        ("", ""),
        ("GPT-4o", "GPT 4o"),  # only first letters change; the rest is kept
        ("über-modell", "üBer Modell"),  # ASCII words only, like JavaScript's \b\w
    ],
)
def test_default_model_display(model: str, display: str) -> None:
    assert default_model_display(model) == display


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-proj-abcdefghijklmnop1234", "sk-p****************1234"),  # domain.md
        ("abcdefghijklmnop", "abcd********mnop"),  # 16 chars: the shortest shown
        ("abcdefghijklmno", "***"),  # 15 chars: hubkit hides it all
        ("12345678", "***"),  # the hub would show all 8: hubkit does not
        ("", "***"),
        ("x" * 100, "xxxx" + "*" * 16 + "xxxx"),  # at most 16 stars
    ],
)
def test_mask_secret(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked


def test_credential_display_text() -> None:
    key = "sk-proj-abcdefghijklmnop1234"
    assert credential_display_text("api_key", {"api_key": key}) == "sk-p****************1234"
    pair = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"}
    # the access key id identifies, it is shown; the secret is masked (21 chars: 13 stars)
    assert credential_display_text("access_key_pair", pair) == (
        "AKIAIOSFODNN7EXAMPLE / wJal*************DENG"
    )
    custom = {"token": "tok-0123456789abcdef", "org": "short"}
    assert credential_display_text("custom", custom) == "org: ***, token: tok-************cdef"


@pytest.mark.parametrize(
    ("cost", "margin", "price", "expected"),
    [
        ("0.0000025", 25, "0.001", "0.0031250000"),  # the doctest example
        ("0.0000025", 2, 1, "0.0000025500"),  # AIGNE Hub defaults: margin 2 %, price 1
        ("1.0003E-7", 2, 1, "0.0000001020"),  # 1.020306E-7 rounds down
        ("0.00000000005", 0, 1, "0.0000000001"),  # exactly half: ROUND_HALF_UP
        ("0.00000000004999", 0, 1, "0"),
        ("0.04", 0, 1, "0.04"),
        (0, 50, "0.5", "0"),
        ("0.00001", "33.333", "0.003", "0.0044444333"),  # 0.00444443333… rounded
    ],
)
def test_margin_rate(cost: Any, margin: Any, price: Any, expected: str) -> None:
    result = margin_rate(cost, margin, price)
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -10


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("0.1", 2, 0), "creditPrice"),
        (("0.1", 2, "-1"), "creditPrice"),
        (("0.1", 2, "NaN"), "creditPrice"),
        (("0.1", -1, 1), "profitMargin"),
        (("0.1", "abc", 1), "profitMargin"),
        (("-0.1", 2, 1), "unitCost"),
        ((float("inf"), 2, 1), "unitCost"),
        ((True, 2, 1), "unitCost"),
    ],
)
def test_margin_rate_rejects_bad_input(args: tuple[Any, Any, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        margin_rate(*args)
    assert info.value.field == field
    assert field in str(info.value)


# --- call_credits ----------------------------------------------------------------------------

GPT4O = {"input_rate": D("0.0000025"), "output_rate": D("0.00001")}


def test_chat_credits() -> None:
    credits = call_credits("chatCompletion", **GPT4O, input_tokens=1000, output_tokens=500)
    assert credits == D("0.0075")
    assert credits.as_tuple().exponent == -10
    assert call_credits("chatCompletion", **GPT4O) == 0


def test_embedding_credits_use_output_tokens_too() -> None:
    credits = call_credits(
        "embedding", input_rate="0.00000002", output_rate="0.0001", input_tokens=10, output_tokens=1
    )
    assert credits == D("0.0001002")


def test_cache_rates_set() -> None:
    credits = call_credits(
        "chatCompletion",
        **GPT4O,
        input_tokens=1000,
        cache_read_tokens=2000,
        cache_write_tokens=100,
        cache_read_rate="0.00000125",
        cache_write_rate="0.000003125",
    )
    assert credits == D("0.0025") + D("0.0025") + D("0.0003125")


def test_cache_rate_zero_is_honoured() -> None:
    credits = call_credits(
        "chatCompletion",
        **GPT4O,
        input_tokens=10,
        cache_read_tokens=1_000_000,
        cache_write_tokens=1_000_000,
        cache_read_rate=0,
        cache_write_rate="0",
    )
    assert credits == D("0.000025")


def test_missing_cache_rates_fall_back_to_input_rate() -> None:
    credits = call_credits("chatCompletion", **GPT4O, cache_read_tokens=400, cache_write_tokens=600)
    assert credits == 1000 * D("0.0000025")
    only_read = call_credits(
        "chatCompletion",
        **GPT4O,
        cache_read_tokens=400,
        cache_write_tokens=600,
        cache_read_rate="0.000001",
    )
    assert only_read == 400 * D("0.000001") + 600 * D("0.0000025")


def test_image_credits() -> None:
    assert call_credits("imageGeneration", input_rate=0, output_rate="0.04", images=3) == D("0.12")
    with_prompt = call_credits(
        "imageGeneration", input_rate="0.000005", output_rate="0.04", images=2, input_tokens=100
    )
    assert with_prompt == D("0.0805")


def test_video_credits_per_second() -> None:
    assert call_credits("video", input_rate=0, output_rate="0.1", seconds=8) == D("0.8")
    # seconds need not be whole
    assert call_credits("video", input_rate=0, output_rate="0.1", seconds="2.5") == D("0.25")


@pytest.mark.parametrize(
    ("type_", "extra"),
    [
        ("chatCompletion", {"images": 7, "seconds": 30}),
        ("embedding", {"images": 7, "seconds": 30}),
        ("imageGeneration", {"output_tokens": 5000, "seconds": 30}),
        ("video", {"output_tokens": 5000, "images": 7}),
    ],
)
def test_counts_that_do_not_apply_are_ignored(type_: str, extra: dict[str, int]) -> None:
    base = call_credits(type_, input_rate="0.001", output_rate="0.01", input_tokens=3)
    assert call_credits(type_, input_rate="0.001", output_rate="0.01", input_tokens=3, **extra) == (
        base
    )
    assert base == D("0.003")


def test_rounding_is_half_up_at_ten_places() -> None:
    # an unquantised rate: 1 × 0.00000000015 = 1.5e-10 → 2e-10
    assert call_credits(
        "chatCompletion", input_rate="0.00000000015", output_rate=0, input_tokens=1
    ) == (D("0.0000000002"))
    assert call_credits(
        "chatCompletion", input_rate="0.00000000014", output_rate=0, input_tokens=1
    ) == (D("0.0000000001"))


def test_big_counts_stay_exact() -> None:
    credits = call_credits(
        "chatCompletion",
        input_rate="0.0000000001",
        output_rate="0.0000000003",
        input_tokens=10**15 + 1,
        output_tokens=10**15 + 1,
    )
    assert credits == D("400000.0000000004")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": "NaN"}, "output_tokens"),
        ({"cache_read_tokens": float("inf")}, "cache_read_tokens"),
        ({"cache_write_tokens": "lots"}, "cache_write_tokens"),
        ({"input_tokens": True}, "input_tokens"),
        ({"input_tokens": "1.5"}, "input_tokens"),  # tokens are whole
        ({"input_rate": "-0.1"}, "inputRate"),
        ({"output_rate": "inf"}, "outputRate"),
        ({"output_rate": None}, "outputRate"),
        ({"input_rate": False}, "inputRate"),
        ({"cache_read_rate": "-1"}, "cache_read_rate"),
        ({"cache_write_rate": "x"}, "cache_write_rate"),
        ({"type": "audioGeneration"}, "type"),
        ({"type": "chat"}, "type"),
    ],
)
def test_call_credits_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"type": "chatCompletion", **GPT4O, "input_tokens": 10, **kwargs}
    type_ = args.pop("type")
    with pytest.raises(ValidationError) as info:
        call_credits(type_, **args)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"images": -1}, "images"), ({"images": "2.5"}, "images"), ({"images": True}, "images")],
)
def test_image_counts_are_validated(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call_credits("imageGeneration", input_rate=0, output_rate="0.04", **kwargs)
    assert info.value.field == field


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        call_credits("video", input_rate=0, output_rate="0.1", seconds="-2")
    assert info.value.field == "seconds"


def _rate(**kw: Any) -> Rate:
    base: dict[str, Any] = {
        "id": 1,
        "provider": "openai",
        "model": "gpt-4o",
        "type": RateType.CHAT_COMPLETION,
        "input_rate": D("0.0000025"),
        "output_rate": D("0.00001"),
        "model_display": "Gpt 4o",
        "version": 1,
    }
    base.update(kw)
    return Rate(**base)


def test_rate_credits_uses_the_stored_cache_rates() -> None:
    rate = _rate(caching=Caching(read_rate=D("0"), write_rate=None))
    credits = rate_credits(rate, input_tokens=100, cache_read_tokens=500, cache_write_tokens=10)
    assert credits == 110 * D("0.0000025")
    plain_rate = _rate()
    assert rate_credits(plain_rate, cache_read_tokens=500) == 500 * D("0.0000025")


# --- hypothesis: credits ---------------------------------------------------------------------

rates = st.decimals(min_value=0, max_value=D("0.05"), places=13, allow_nan=False)
counts = st.integers(min_value=0, max_value=10**9)
optional_rates = st.one_of(st.none(), rates)
COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "images",
    "seconds",
    "cache_read_tokens",
    "cache_write_tokens",
)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    call: dict[str, Any] = {
        "type": draw(st.sampled_from(list(RateType))),
        "input_rate": draw(rates),
        "output_rate": draw(rates),
        "cache_read_rate": draw(optional_rates),
        "cache_write_rate": draw(optional_rates),
    }
    for name in COUNT_FIELDS:
        call[name] = draw(counts)
    call["seconds"] = draw(st.decimals(min_value=0, max_value=10**5, places=3))
    return call


def _exact(call: dict[str, Any]) -> Fraction:
    """The credits of domain.md's formula in exact rational arithmetic (no rounding)."""
    rtype = RateType(call["type"])
    f = {k: Fraction(v) for k, v in call.items() if k != "type" and v is not None}
    units = {
        RateType.CHAT_COMPLETION: f["output_tokens"],
        RateType.EMBEDDING: f["output_tokens"],
        RateType.IMAGE_GENERATION: f["images"],
        RateType.VIDEO: f["seconds"],
    }[rtype]
    return (
        f["input_tokens"] * f["input_rate"]
        + units * f["output_rate"]
        + f["cache_write_tokens"] * f.get("cache_write_rate", f["input_rate"])
        + f["cache_read_tokens"] * f.get("cache_read_rate", f["input_rate"])
    )


def _credits(call: dict[str, Any]) -> Decimal:
    args = dict(call)
    return call_credits(args.pop("type"), **args)


@given(calls())
def test_credits_within_half_a_unit_of_the_exact_sum(call: dict[str, Any]) -> None:
    credits = _credits(call)
    assert credits.as_tuple().exponent == -10
    assert abs(Fraction(credits) - _exact(call)) <= HALF_UNIT


@given(calls(), st.sampled_from(COUNT_FIELDS), st.integers(min_value=0, max_value=10**6))
def test_credits_are_monotone_in_every_count(call: dict[str, Any], name: str, more: int) -> None:
    bigger = dict(call)
    bigger[name] = call[name] + more
    assert _credits(bigger) >= _credits(call)


@given(
    st.integers(min_value=0, max_value=10**7),
    st.decimals(min_value=0, max_value=1000, places=10),
    st.integers(min_value=0, max_value=10**9),
)
def test_image_call_with_input_rate_zero_costs_images_times_output_rate(
    n_images: int, output_rate: Decimal, prompt_tokens: int
) -> None:
    credits = call_credits(
        "imageGeneration",
        input_rate=0,
        output_rate=output_rate,
        images=n_images,
        input_tokens=prompt_tokens,
        output_tokens=prompt_tokens,
    )
    assert credits == n_images * output_rate


# --- hypothesis: bulk update and its inverse -------------------------------------------------

unit_costs = st.decimals(min_value=0, max_value=D("0.5"), places=15)
margins = st.decimals(min_value=0, max_value=500, places=3)
prices = st.decimals(min_value=D("0.0001"), max_value=100, places=4)


@given(unit_costs, unit_costs, margins, prices)
def test_bulk_update_then_its_inverse_recovers_the_unit_cost(
    cost_in: Decimal, cost_out: Decimal, margin: Decimal, price: Decimal
) -> None:
    rate = _rate(unit_costs=UnitCosts(cost_in, cost_out))
    preview = bulk_preview([rate], margin, price)
    if cost_in == 0 and cost_out == 0:
        assert preview.changes == () and len(preview.skipped) == 1
        return
    (change,) = preview.changes
    factor = 1 + Fraction(margin) / 100
    bound = HALF_UNIT * Fraction(price) / factor
    for new_rate, cost in ((change.new_input_rate, cost_in), (change.new_output_rate, cost_out)):
        recovered = Fraction(new_rate) * Fraction(price) / factor
        assert abs(recovered - Fraction(cost)) <= bound
        assert new_rate == margin_rate(cost, margin, price)


@given(unit_costs, margins, prices)
def test_margin_rates_are_never_below_cost(cost: Decimal, margin: Decimal, price: Decimal) -> None:
    assert not is_below_cost(margin_rate(cost, margin, price), cost, price)


# --- hypothesis: masking ---------------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="*"), max_size=60))
def test_mask_never_reveals_more_than_eight_chars_nor_the_middle(secret: str) -> None:
    masked = mask_secret(secret)
    if len(secret) < 16:
        assert masked == "***"
        return
    shown = [ch for ch in masked if ch != "*"]
    assert len(shown) == 8
    assert masked[:4] == secret[:4] and masked[-4:] == secret[-4:]
    assert set(masked[4:-4]) == {"*"}
    assert len(masked) <= 24
    middle = secret[4:-4]
    assert middle not in masked


# --- bulk preview ----------------------------------------------------------------------------


def test_bulk_preview_diff_skips_and_flags() -> None:
    rates = [
        _rate(id=1, model="a", unit_costs=UnitCosts(D("0.000002"), D("0.000008"))),
        _rate(id=2, model="b", unit_costs=None),
        _rate(id=3, model="c", unit_costs=UnitCosts(D(0), D(0))),
        # input cost 0 but a non-zero input rate: recomputed to 0 and flagged
        _rate(id=4, model="d", input_rate=D("0.000001"), unit_costs=UnitCosts(D(0), D("0.01"))),
        _rate(
            id=5,
            model="e",
            input_rate=D("0.00000204"),
            output_rate=D("0.00000816"),
            unit_costs=UnitCosts(D("0.000002"), D("0.000008")),
        ),
    ]
    preview = bulk_preview(rates, 2, 1)
    assert [c.rate_id for c in preview.changes] == [1, 4, 5]
    assert [(s.rate_id, s.code, s.reason) for s in preview.skipped] == [
        (2, SkipReason.NO_UNIT_COSTS, "no unitCosts"),
        (3, SkipReason.ZERO_UNIT_COSTS, "unitCosts are both 0"),
    ]
    first = preview.changes[0]
    assert (first.new_input_rate, first.new_output_rate) == (D("0.00000204"), D("0.00000816"))
    assert first.input_change_pct == D("-18.4")  # 0.0000025 → 0.00000204
    assert preview.changes[1].drops_to_zero == ("input",)
    assert preview.changes[1].new_input_rate == 0
    assert [c.rate_id for c in preview.unchanged] == [5]
    assert [c.rate_id for c in preview.changed] == [1, 4]
    assert preview.below_cost() == ()
    assert preview.profit_margin == 2 and preview.credit_price == 1


def test_skip_reasons_are_codes_every_view_renders() -> None:
    assert skip_reason(None) is SkipReason.NO_UNIT_COSTS
    assert skip_reason(UnitCosts(D(0), D(0))) is SkipReason.ZERO_UNIT_COSTS
    assert skip_reason(UnitCosts(D(0), D("0.01"))) is None
    assert SkipReason.summary() == "no unit costs"  # the count lines of CLI, app and demo
    rates = [_rate(id=2, model="b"), _rate(id=3, model="c", unit_costs=UnitCosts(D(0), D(0)))]
    frame = skipped_frame(bulk_preview(rates, 2, 1))  # skipped.csv and the app's list
    assert frame["reason"].tolist() == ["no unitCosts", "unitCosts are both 0"]


def test_bulk_preview_filter() -> None:
    rates = [
        _rate(id=1, provider="openai", model="gpt-4o", unit_costs=UnitCosts(D(1), D(1))),
        _rate(id=2, provider="anthropic", model="claude-3", unit_costs=UnitCosts(D(1), D(1))),
        _rate(
            id=3,
            provider="openai",
            model="dall-e-3",
            type=RateType.IMAGE_GENERATION,
            unit_costs=UnitCosts(D(0), D(1)),
        ),
    ]
    only_openai_chat = RateFilter.create("OpenAI", "chatCompletion")
    assert [c.rate_id for c in bulk_preview(rates, 0, 1, only_openai_chat).changes] == [1]
    by_model = RateFilter.create(model_pattern="GPT-*")
    assert [c.rate_id for c in bulk_preview(rates, 0, 1, by_model).changes] == [1]
    assert len(bulk_preview(rates, 0, 1, RateFilter.create()).changes) == 3
    with pytest.raises(ValidationError):
        RateFilter.create(types="chat")


class _Priced(NamedTuple):
    """Only what bulk_preview reads (PricedRate): the store's column-only preview rows."""

    id: int
    provider: str
    model: str
    type: RateType
    version: int
    input_rate: Decimal
    output_rate: Decimal
    unit_costs: UnitCosts | None


def test_bulk_preview_takes_any_priced_rate() -> None:
    rates = [
        _rate(id=1, model="a", unit_costs=UnitCosts(D("0.000002"), D("0.000008"))),
        _rate(id=2, model="b", unit_costs=None),
        _rate(id=3, model="c", unit_costs=UnitCosts(D(0), D(0)), caching=Caching(D(1), None)),
        _rate(id=4, provider="anthropic", model="d", version=7, unit_costs=UnitCosts(D(0), D(1))),
    ]
    rows = [
        _Priced(r.id, r.provider, r.model, r.type, r.version, r.input_rate, r.output_rate,
                r.unit_costs)
        for r in rates
    ]  # fmt: skip
    for flt in (None, RateFilter.create(), RateFilter.create("anthropic")):
        assert bulk_preview(rows, "12.5", "0.003", flt) == bulk_preview(rates, "12.5", "0.003", flt)
    assert [c.rate_id for c in bulk_preview(rows, 1, 1).changes] == [1, 4]
    assert RateFilter.create().is_empty and not RateFilter.create(model_pattern="g*").is_empty


@pytest.mark.parametrize(
    ("margin", "price", "field"), [(-1, 1, "profitMargin"), (2, 0, "creditPrice")]
)
def test_bulk_preview_rejects_bad_settings(margin: Any, price: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        bulk_preview([], margin, price)
    assert info.value.field == field


def test_below_cost_and_markup() -> None:
    cost = D("0.000002")
    assert is_below_cost(D("0.0000019999"), cost, 1)
    assert not is_below_cost(D("0.000002"), cost, 1)
    # rounding alone is never below cost: break-even 4.9e-11 rounds to 0
    assert not is_below_cost(D(0), D("0.000000000049"), 1)
    assert is_below_cost(D(0), D("0.00000000005"), 1)
    assert not is_below_cost(D(0), None, 1)
    # markup on cost, not gross margin
    assert implied_markup_pct(D("0.0000025"), cost, 1) == D(25)
    assert implied_markup_pct(D("0.0025"), cost, "0.001") == D(25)
    assert implied_markup_pct(D(1), D(0), 1) is None


def test_change_pct() -> None:
    assert change_pct(D(2), D(3)) == D(50)
    assert change_pct(D(0), D(0)) == 0
    assert change_pct(D(0), D(1)) is None
    assert change_pct(D(4), D(0)) == D(-100)


@pytest.mark.parametrize(
    ("margin", "price"), [("1e400", "1"), ("10", "1e-60")], ids=["huge-margin", "tiny-price"]
)
def test_extreme_margin_or_price_is_a_validation_error(margin: str, price: str) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        margin_rate("0.000001", margin, price)
