"""The row-by-row reconciliation: the reference the vectorised one is pinned to.

Slow and plain on purpose: every call is priced by :func:`hubkit.replay.timeline.price_exact`
(:func:`hubkit.pricing.call_credits`, in Decimal), compared with its stored credits and
classified by the rules of :mod:`hubkit.replay.reconcile_rules`, one call at a time.
:func:`hubkit.replay.reconcile.reconcile` must return the same frame and summary (tests,
hypothesis too) and hands it the rows its fixed-point path cannot price exactly.
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
from pandas.api.extensions import ExtensionArray

from hubkit.decimals import EXACT
from hubkit.domain import billing_of
from hubkit.errors import ValidationError
from hubkit.pricing.rules import call_credits
from hubkit.replay.reconcile_rules import (
    AMOUNT_TYPE,
    CAUSE_CATEGORIES,
    STATUS_CATEGORIES,
    Cause,
    Status,
    amounts_series,
    check_places,
    exact_sum,
    stored_decimal,
)
from hubkit.replay.timeline import COUNTS, price_exact, timeline_rows, validate_timeline

__all__ = ["check_stored_column", "classify_rows", "reconcile_reference"]


def check_stored_column(usage: pd.DataFrame) -> None:
    if not isinstance(usage, pd.DataFrame) or "stored_credits" not in usage.columns:
        raise ValidationError(
            "reconcile needs a usage table with a stored_credits column (import the "
            "gateway's records with read_hub_database or `python -m hubkit usage import`)",
            field="stored_credits",
        )


class _Neighbours:
    """Per timeline row: the rows in force just before and just after it (same key)."""

    def __init__(self, timeline: pd.DataFrame) -> None:
        self.rows = list(timeline_rows(timeline))
        self.prev = [-1] * len(self.rows)
        self.next = [-1] * len(self.rows)
        for i in range(1, len(self.rows)):
            a, b = self.rows[i - 1], self.rows[i]
            if (a.provider, a.model, a.type) == (b.provider, b.model, b.type):
                self.prev[i], self.next[i - 1] = i - 1, i


def _price(rate: Any, counts: dict[str, Any]) -> Decimal:
    return call_credits(
        rate.type,
        input_rate=rate.input_rate,
        output_rate=rate.output_rate,
        cache_read_rate=rate.cache_read_rate,
        cache_write_rate=rate.cache_write_rate,
        **counts,
    )


def _no_usage(rate_type: str, counts: dict[str, Any]) -> bool:
    billed = billing_of(rate_type).output
    inputs = ("input_tokens", "cache_read_tokens", "cache_write_tokens")
    return all(counts[c] == 0 for c in inputs) and counts[billed] == 0


def classify_rows(
    usage: pd.DataFrame, timeline: pd.DataFrame, places: int
) -> tuple[list[Decimal | None], list[Decimal | None], list[str], list[str]]:
    """Re-priced credits, difference, status and cause of every call, one at a time.

    ``timeline`` must be validated (:func:`validate_timeline`): its row numbers are the
    ones :func:`price_exact` returns.
    """
    step = Decimal(1).scaleb(-places)
    priced = price_exact(usage, timeline)
    around = _Neighbours(timeline)
    stored_values = usage["stored_credits"].tolist()
    counts = {c: usage[c].tolist() for c in COUNTS}
    repriced: list[Decimal | None] = []
    diffs: list[Decimal | None] = []
    statuses: list[str] = []
    causes: list[str] = []
    for i, (row, credits) in enumerate(zip(priced["row"], priced["credits"], strict=True)):
        stored = stored_decimal(stored_values[i])
        repriced.append(credits)
        if row < 0:
            diffs.append(None)
            statuses.append(Status.UNSUPPORTED)
            causes.append(Cause.NO_RATE)
            continue
        if stored is None:
            diffs.append(None)
            statuses.append(Status.NO_STORED_CREDITS)
            causes.append(Cause.NO_STORED_CREDITS)
            continue
        diff = EXACT.subtract(stored, credits.quantize(step, rounding=ROUND_HALF_UP, context=EXACT))
        diffs.append(diff)
        if diff == 0:
            statuses.append(Status.MATCH)
            causes.append(Cause.NONE)
            continue
        statuses.append(Status.MISMATCH)
        call = {c: counts[c][i] for c in COUNTS}
        call["seconds"] = Decimal(str(call["seconds"]))
        rate = around.rows[row]
        if _no_usage(rate.type, call):
            causes.append(Cause.MISSING_USAGE)
            continue
        others = [around.rows[r] for r in (around.prev[row], around.next[row]) if r >= 0]
        if any(
            _price(other, call).quantize(step, rounding=ROUND_HALF_UP, context=EXACT) == stored
            for other in others
        ):
            causes.append(Cause.RATE_CHANGED)
        elif abs(diff) <= step:
            causes.append(Cause.ROUNDING)
        else:
            causes.append(Cause.UNEXPLAINED)
    return repriced, diffs, statuses, causes


def build_frame(
    usage: pd.DataFrame,
    repriced: pa.Array,
    difference: pa.Array,
    status: ExtensionArray,
    cause: ExtensionArray,
) -> pd.DataFrame:
    """The reconciliation frame: the call's key, stored, re-priced, difference, status, cause."""
    out = usage[["time", "user", "provider", "model", "type"]].copy()
    if "source_id" in usage.columns:
        out.insert(0, "source_id", usage["source_id"])  # as given, no copy to objects
    out["stored_credits"] = usage["stored_credits"]  # as given (Arrow decimals stay Arrow)
    out["repriced_credits"] = amounts_series(repriced, out.index)
    out["difference"] = amounts_series(difference, out.index)
    out["status"] = status
    out["cause"] = cause
    return out


def reconcile_reference(
    usage: pd.DataFrame, timeline: pd.DataFrame, *, places: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`hubkit.replay.reconcile.reconcile`, row by row in Decimal (same frame, summary)."""
    check_stored_column(usage)
    places = check_places(places)
    frame = validate_timeline(timeline)
    repriced, diffs, statuses, causes = classify_rows(usage, frame, places)
    out = build_frame(
        usage,
        pa.array(repriced, type=AMOUNT_TYPE),
        pa.array(diffs, type=AMOUNT_TYPE),
        pd.Categorical(statuses, categories=STATUS_CATEGORIES),
        pd.Categorical(causes, categories=CAUSE_CATEGORIES),
    )
    counts = Counter(statuses)
    stored_all = [stored_decimal(s) for s in usage["stored_credits"].tolist()]
    summary = {
        "rows": len(out),
        "match": counts.get(Status.MATCH, 0),
        "mismatch": counts.get(Status.MISMATCH, 0),
        "unsupported": counts.get(Status.UNSUPPORTED, 0),
        "no_stored_credits": counts.get(Status.NO_STORED_CREDITS, 0),
        "not_imported": 0,
        "stored_total": exact_sum(stored_all),
        "repriced_total": exact_sum(repriced),
        "difference_total": exact_sum(diffs),
        "causes": {c.value: n for c in Cause if (n := Counter(causes).get(c, 0))},
    }
    return out, summary
