"""hubkit.decimals: the one way numbers enter hubkit, one rounding, one plain format."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubkit.decimals import EXACT, QUANTUM, plain, quantize, require_decimal, to_decimal
from hubkit.errors import HubkitError, ValidationError

# --- to_decimal ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("0.0000000001"), Decimal("0.0000000001")),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),  # through str: never the binary expansion 0.1000000000000000055…
        (2.5e-7, Decimal("2.5E-7")),
        ("0.00000008", Decimal("0.00000008")),
        ("  1.0003E-7 ", Decimal("1.0003E-7")),
        ("0", Decimal(0)),
    ],
)
def test_to_decimal_accepts_numbers_exactly(raw: object, expected: Decimal) -> None:
    result = to_decimal(raw, "inputRate")
    assert isinstance(result, Decimal)
    assert result == expected
    assert str(result) == str(expected)


def test_to_decimal_takes_numpy_scalars_through_their_decimal_text() -> None:
    # pandas hands out numpy scalars; np.float64 is a float subclass whose repr is
    # "np.float64(0.1)" on numpy 2, which must not break the conversion.
    assert to_decimal(np.float64(0.1), "unitCost") == Decimal("0.1")
    assert to_decimal(np.int64(12), "images") == Decimal(12)
    assert to_decimal(np.float32(0.5), "x") == Decimal("0.5")


@pytest.mark.parametrize(
    "raw",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "sNaN",
        "Infinity",
        "-inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        np.float64("nan"),
    ],
)
def test_to_decimal_rejects_non_finite_values(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(raw, "outputRate")
    assert info.value.field == "outputRate"
    assert "outputRate" in str(info.value)


@pytest.mark.parametrize("raw", ["abc", "", "1,5", "0x10", "ten", [1], {"a": 1}, object()])
def test_to_decimal_rejects_non_numeric_values(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(raw, "unitCosts.input")
    assert info.value.field == "unitCosts.input"
    assert "unitCosts.input" in str(info.value)


@pytest.mark.parametrize("raw", [True, False])
def test_to_decimal_rejects_booleans(raw: bool) -> None:
    with pytest.raises(ValidationError, match="boolean") as info:
        to_decimal(raw, "images")
    assert info.value.field == "images"


@pytest.mark.parametrize("raw", [-1, "-0.0000000001", -0.5, Decimal("-3")])
def test_to_decimal_rejects_negatives_unless_allowed(raw: object) -> None:
    with pytest.raises(ValidationError, match="≥ 0") as info:
        to_decimal(raw, "inputRate")
    assert info.value.field == "inputRate"
    assert info.value.value == raw
    assert to_decimal(raw, "delta", allow_negative=True) == Decimal(str(raw))


def test_to_decimal_none_and_blank() -> None:
    with pytest.raises(ValidationError, match="required") as info:
        to_decimal(None, "creditPrice")
    assert info.value.field == "creditPrice"
    assert to_decimal(None, "caching.readRate", allow_none=True) is None
    assert to_decimal("   ", "caching.readRate", allow_none=True) is None
    with pytest.raises(ValidationError):
        to_decimal("   ", "caching.readRate")


def test_validation_errors_are_hubkit_and_value_errors() -> None:
    with pytest.raises(HubkitError):
        require_decimal("x", "inputRate")
    with pytest.raises(ValueError):
        require_decimal("x", "inputRate")


def test_require_decimal_never_returns_none() -> None:
    assert require_decimal("1.5", "x") == Decimal("1.5")
    with pytest.raises(ValidationError):
        require_decimal(None, "x")


# --- quantize --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.00000000005", "0.0000000001"),  # half rounds up, not to even
        ("0.00000000015", "0.0000000002"),
        ("0.00000000025", "0.0000000003"),  # banker's rounding would give ...2
        ("0.000000000049999", "0.0000000000"),
        ("1.23456789012345", "1.2345678901"),
        ("-0.00000000005", "-0.0000000001"),  # half away from zero
        ("3", "3.0000000000"),
    ],
)
def test_quantize_is_ten_places_round_half_up(raw: str, expected: str) -> None:
    result = quantize(Decimal(raw))
    assert format(result, "f") == expected
    assert result.as_tuple().exponent == -10


def test_quantum_and_exact_context() -> None:
    assert QUANTUM == Decimal("0.0000000001")
    # 60 digits keep big token counts × tiny rates exact before the final rounding
    product = EXACT.multiply(Decimal(10**15), Decimal("0.0000000001234567891"))
    assert product == Decimal("123456.7891")


# --- plain -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("8E-8"), "0.00000008"),
        (Decimal("1E-10"), "0.0000000001"),
        (Decimal("1.0003E-7"), "0.00000010003"),
        (Decimal("1E+2"), "100"),
        (Decimal("2.5000000000"), "2.5"),
        (Decimal("0E-10"), "0"),
        (Decimal("0"), "0"),
        (Decimal("10"), "10"),
        (Decimal("-0.50"), "-0.5"),
    ],
)
def test_plain_examples(value: Decimal, expected: str) -> None:
    assert plain(value) == expected


def test_plain_none() -> None:
    assert plain(None) is None


finite_decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda digits, exp: Decimal(digits).scaleb(exp),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.integers(min_value=-40, max_value=40),
    ),
)


@given(finite_decimals)
def test_plain_never_uses_exponent_notation_and_round_trips(value: Decimal) -> None:
    text = plain(value)
    assert text is not None
    assert "e" not in text.lower()
    assert Decimal(text) == value
    # no trailing zeros after the point, no dangling point
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
