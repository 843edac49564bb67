"""What a reconciliation says about each call: its status and the cause of a difference.

Shared by the vectorised reconciliation (:mod:`hubkit.replay.reconcile`) and its row-by-row
reference (:mod:`hubkit.replay.reconcile_reference`), which must agree on every row.

Status (does the stored amount agree with the re-pricing at the stored precision?):

==================  ==============================================================
``match``           stored credits = re-priced credits rounded to ``places``
``mismatch``        they differ; ``cause`` says why (as far as hubkit can tell)
``unsupported``     no rate in force for the call's (provider, model, type) then
``no stored credits``  the gateway recorded no credits for the call
``not imported``    (:func:`~hubkit.replay.reconcile.reconcile_import` only) a call the
                    importer did not keep as usage: failed / processing, or its type
==================  ==============================================================

Causes (:class:`Cause`), checked in this order for a mismatch:

- ``missing usage``: the call carries no billed count (no tokens, images or seconds) yet
  the gateway charged it: its usage was lost, re-pricing gives 0;
- ``rate changed mid-flight``: the stored amount is what the rate in force just *before*
  or just *after* the call's period charges: the rate changed while the call ran (the
  gateway prices a call when it ends; ``callTime`` is when it began);
- ``rounding at the stored precision``: the difference is at most one unit of the
  stored precision (``1E-8``): the gateway rounded (or truncated) differently;
- ``unexplained``: any other difference: look at the call.

and for the other statuses: ``none`` (a match), ``no rate`` (unsupported: unknown
model, or no rate in force at the time), ``no stored credits``; calls the importer did not
keep (:attr:`hubkit.usage.HubImport.skipped`) are ``unsupported type`` (a type no rate
prices) or ``not billed`` (status failed / processing: only ``success`` is billed).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pandas as pd
import pyarrow as pa

from hubkit.decimals import EXACT
from hubkit.errors import ValidationError

__all__ = [
    "AMOUNT_TYPE",
    "FRAME_COLUMNS",
    "SUMMARY_KEYS",
    "Cause",
    "ReconcileCause",
    "ReconcileStatus",
    "Status",
    "amounts_series",
    "check_places",
    "exact_sum",
]


class ReconcileStatus(StrEnum):
    """Whether a call's stored credits agree with the re-pricing."""

    MATCH = "match"
    MISMATCH = "mismatch"
    UNSUPPORTED = "unsupported"
    NO_STORED_CREDITS = "no stored credits"
    #: a gateway call the importer did not keep as usage (failed, or a type no rate prices)
    NOT_IMPORTED = "not imported"


class ReconcileCause(StrEnum):
    """Why a call's stored credits differ (or cannot be compared); module docstring."""

    NONE = "none"
    MISSING_USAGE = "missing usage"
    RATE_CHANGED = "rate changed mid-flight"
    ROUNDING = "rounding at the stored precision"
    UNEXPLAINED = "unexplained"
    NO_RATE = "no rate"
    NO_STORED_CREDITS = "no stored credits"
    UNSUPPORTED_TYPE = "unsupported type"
    NOT_BILLED = "not billed"


#: the short names this package uses
Status = ReconcileStatus
Cause = ReconcileCause


#: the columns of a reconciliation frame (``source_id`` first when the usage has one)
FRAME_COLUMNS = (
    "source_id", "time", "user", "provider", "model", "type", "stored_credits",
    "repriced_credits", "difference", "status", "cause",
)  # fmt: skip
#: the keys of a reconciliation summary
SUMMARY_KEYS = (
    "rows", "match", "mismatch", "unsupported", "no_stored_credits", "not_imported",
    "stored_total",
    "repriced_total", "difference_total", "causes",
)  # fmt: skip

#: ``repriced_credits`` and ``difference`` are exact decimals with the rule's 10 places,
#: held by Arrow (an element reads as :class:`~decimal.Decimal`, a missing one as ``pd.NA``)
AMOUNT_TYPE = pa.decimal128(38, 10)
#: the most places a stored amount may have (the rule's; the gateway keeps 8)
STORED_PLACES = 10

STATUS_CATEGORIES = tuple(s.value for s in Status)
CAUSE_CATEGORIES = tuple(c.value for c in Cause)


def amounts_series(values: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow decimal array as a pandas column (elements read back as Decimal)."""
    return pd.Series(values, index=index, dtype=pd.ArrowDtype(values.type), copy=False)


def exact_sum(values: Iterable[Decimal | None]) -> Decimal:
    """Σ of the present values, exactly (Python's ``sum`` rounds to 28 digits)."""
    total = Decimal(0)
    for value in values:
        if value is not None:
            total = EXACT.add(total, value)
    return total


def check_places(places: Any) -> int:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 18:
        raise ValidationError(
            f"places must be a whole number within 0..18 (the gateway stores 8), got {places!r}",
            field="places",
            value=places,
        )
    return places


def stored_decimal(value: Any) -> Decimal | None:
    """One stored amount as the reconciliation reads it (None: not recorded)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Decimal):
        return check_stored_places(value) if value.is_finite() else None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise ValidationError(
            f"stored_credits {value!r} is not a number", field="stored_credits", value=value
        ) from None
    if not number.is_finite():
        return None
    return check_stored_places(number)


def check_stored_places(number: Decimal) -> Decimal:
    exponent = number.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -STORED_PLACES
        and number != number.quantize(Decimal(1).scaleb(-STORED_PLACES), context=EXACT)
    ):
        raise ValidationError(
            f"stored_credits {number} has more than {STORED_PLACES} decimal places: the "
            "gateway stores credits with 8; check the column holds the gateway's credits",
            field="stored_credits",
            value=number,
        )
    return number
