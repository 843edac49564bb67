"""Decimal discipline: one rounding mode, one quantum, one way in from user input.

The gateway (bignumber.js) rounds credits and rates to 10 decimal places, ROUND_HALF_UP.
Every Decimal entering hubkit passes through :func:`to_decimal`; floats are converted via
``str()`` so ``0.1`` means ``Decimal("0.1")``, never its binary expansion.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from hubkit.errors import ValidationError

ROUNDING = ROUND_HALF_UP
PLACES = 10
QUANTUM = Decimal(1).scaleb(-PLACES)  # Decimal("1E-10")
ZERO = Decimal(0)

# A wide context so that products of big token counts and tiny rates stay exact before
# the single final rounding; 60 digits is far more than any DECIMAL(38, 18) operand needs.
EXACT = Context(prec=60, rounding=ROUNDING)


def quantize(value: Decimal) -> Decimal:
    """Round to 10 decimal places, ROUND_HALF_UP, as the gateway does."""
    return value.quantize(QUANTUM, rounding=ROUNDING, context=EXACT)


def to_decimal(
    value: Any,
    field: str = "value",
    *,
    allow_negative: bool = False,
    allow_none: bool = False,
) -> Decimal | None:
    """Return ``value`` as a finite Decimal or raise :class:`ValidationError` naming ``field``.

    Accepts Decimal, int, float (through ``str``) and numeric strings. Rejects bools,
    NaN, infinities and (unless ``allow_negative``) negative numbers.
    """
    if value is None or (isinstance(value, str) and not value.strip() and allow_none):
        if allow_none:
            return None
        raise ValidationError(f"{field} is required (got None)", field=field, value=value)
    if isinstance(value, bool):
        raise ValidationError(
            f"{field} must be a number, got the boolean {value!r}", field=field, value=value
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{field} must be a finite number, got {value!r}", field=field, value=value
            )
        # str, not repr: numpy's float64 (a float subclass) reprs as "np.float64(0.1)"
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(
                f"{field} must be a number, got {value!r}", field=field, value=value
            ) from None
    else:
        # numpy scalars and the like: go through their str form, never binary floats
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError(
                f"{field} must be a number, got {value!r}", field=field, value=value
            ) from None
    if not result.is_finite():
        raise ValidationError(
            f"{field} must be a finite number, got {value!r}", field=field, value=value
        )
    if result.is_zero() and result.is_signed():
        # "-0" is zero: kept signed it would be stored, shown and pushed to the hub as "-0"
        result = result.copy_abs()
    if not allow_negative and result < 0:
        raise ValidationError(
            f"{field} must be ≥ 0, got {value!r}; use 0 for free", field=field, value=value
        )
    return result


def require_decimal(value: Any, field: str, *, allow_negative: bool = False) -> Decimal:
    """Like :func:`to_decimal` but never returns None (for type checkers)."""
    result = to_decimal(value, field, allow_negative=allow_negative)
    assert result is not None
    return result


def plain(value: Decimal | None) -> str | None:
    """Serialise as a plain decimal string (``"0.00000008"``, never ``"8E-8"``)."""
    if value is None:
        return None
    if value.is_zero():
        value = value.copy_abs()  # never "-0": a stored -0 from before it was normalised
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
