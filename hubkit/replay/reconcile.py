"""Reconcile the gateway's stored credits with a re-pricing by the rates in force.

The gateway's records (:func:`hubkit.usage.read_hub_database` / ``read_hub_export``,
``python -m hubkit usage import``) carry the credits it charged; :func:`reconcile` prices
every call again with the rate in force at its time, compares at the stored precision and
says why each difference arose (:class:`~hubkit.replay.reconcile_rules.Cause`).

Vectorised and exact. Rates have 10 decimal places and counts are whole numbers, so a
call's credits in units of 1E-10 are a sum of int64 products: the fixed-point path prices,
rounds (ROUND_HALF_UP to ``places``) and compares every call in integers, with no float
rounding at all. A call it cannot price exactly that way — a rate with more than 10 places,
fractional seconds, a product beyond int64 (checked with a float bound first), a stored
amount it cannot read as a 10-place decimal — is decided by the Decimal path
(:mod:`hubkit.replay.reconcile_reference`, which is also the row-by-row reference the
tests pin this module to). It lives in the replay because it prices usage with a
timeline; the importer below it only reads records.

:func:`reconcile_breakdown` sums the frame per user, per model or per day; each table's
totals add up to the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hubkit.decimals import EXACT, ZERO
from hubkit.domain import OUTPUT_COUNTS
from hubkit.errors import ValidationError
from hubkit.replay.reconcile_reference import (
    build_frame,
    check_stored_column,
    classify_rows,
    reconcile_reference,
)
from hubkit.replay.reconcile_rules import (
    AMOUNT_TYPE,
    CAUSE_CATEGORIES,
    FRAME_COLUMNS,
    STATUS_CATEGORIES,
    STORED_PLACES,
    SUMMARY_KEYS,
    Cause,
    ReconcileCause,
    ReconcileStatus,
    Status,
    check_places,
    exact_sum,
    stored_decimal,
)
from hubkit.replay.timeline import COUNTS, RateBook, timeline_rows
from hubkit.usage.gateway import HubImport

__all__ = [
    "BREAKDOWNS",
    "FRAME_COLUMNS",
    "SUMMARY_KEYS",
    "ReconcileCause",
    "ReconcileStatus",
    "Cause",
    "Status",
    "reconcile",
    "reconcile_breakdown",
    "reconcile_import",
    "reconcile_reference",
    "summarise",
]

# A call's credits are priced in int64 only when a float estimate stays below this
# (int64 holds 9.2e18; the estimate's relative error is far below the margin).
_INT_LIMIT = float(2**61)
STATUS_DTYPE = pd.CategoricalDtype(list(STATUS_CATEGORIES))
CAUSE_DTYPE = pd.CategoricalDtype(list(CAUSE_CATEGORIES))
_STATUS = {s: i for i, s in enumerate(STATUS_CATEGORIES)}
_CAUSE = {c: i for i, c in enumerate(CAUSE_CATEGORIES)}


class _FixedRates:
    """Per timeline row, its prices as int64 units of 1E-10 (``exact`` False: it has more
    places, or is too large, and its calls go to the Decimal path)."""

    def __init__(self, book: RateBook) -> None:
        rows = list(timeline_rows(book.timeline))
        n = len(rows)
        self.exact = np.ones(n + 1, dtype=bool)
        self.exact[n] = False
        names = ("input_rate", "output_rate", "cache_read_rate", "cache_write_rate")
        units = {name: np.zeros(n + 1, dtype=np.int64) for name in names}
        limit = Decimal(2**62)
        for r, rate in enumerate(rows):
            for name in names:
                value = getattr(rate, name)
                if value is None:  # a missing cache rate falls back to the input rate
                    value = rate.input_rate
                scaled = value.scaleb(STORED_PLACES, context=EXACT)
                if scaled != scaled.to_integral_value() or abs(scaled) >= limit:
                    self.exact[r] = False
                    continue
                units[name][r] = int(scaled)
        self.input = units["input_rate"]
        self.read = units["cache_read_rate"]
        self.write = units["cache_write_rate"]
        # the output price sits under the count it bills (domain.BILLING); 0 elsewhere
        billed = np.append(book.billed, -1)
        self.output = {
            count: np.where(billed == i, units["output_rate"], 0)
            for i, count in enumerate(OUTPUT_COUNTS)
        }
        self.billed = billed
        # magnitudes, for the overflow bound (a sum of |rate| × count never cancels)
        self.floats = {name: np.abs(values).astype(np.float64) for name, values in units.items()}
        self.floats_output = {c: np.abs(v).astype(np.float64) for c, v in self.output.items()}
        key = np.append(book.key_of_row, -1)
        same = key[1:n] == key[: n - 1] if n > 1 else np.zeros(0, dtype=bool)
        self.prev = np.full(n + 1, -1, dtype=np.int64)
        self.next = np.full(n + 1, -1, dtype=np.int64)
        if n > 1:
            self.prev[1:n] = np.where(same, np.arange(n - 1), -1)
            self.next[: n - 1] = np.where(same, np.arange(1, n), -1)

    def price(
        self, row: np.ndarray, counts: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Credits in units of 1E-10 (int64) and whether each is exact (else: Decimal path)."""
        ok = self.exact.take(row)
        estimate = np.zeros(row.size)
        total = np.zeros(row.size, dtype=np.int64)
        terms = (
            ("input_tokens", self.input, self.floats["input_rate"]),
            ("cache_read_tokens", self.read, self.floats["cache_read_rate"]),
            ("cache_write_tokens", self.write, self.floats["cache_write_rate"]),
            *((c, self.output[c], self.floats_output[c]) for c in self.output),
        )
        for column, units, floats in terms:
            count = counts[column]
            if not count.any():
                continue
            if count.dtype.kind == "f":
                whole = count == np.floor(count)
                ok &= whole | (units.take(row) == 0)
                count = np.where(whole, count, 0).astype(np.int64)
            gathered = floats.take(row)
            gathered *= np.abs(count)
            estimate += gathered
            part = units.take(row)
            part *= count
            total += part
        ok &= estimate < _INT_LIMIT
        return total, ok


def _round_units(units: np.ndarray, places: int) -> np.ndarray:
    """Units of 1E-10 rounded ROUND_HALF_UP (away from zero on a tie) to ``places``."""
    if places >= STORED_PLACES:
        return units
    factor = 10 ** (STORED_PLACES - places)
    magnitude = (np.abs(units) + factor // 2) // factor * factor
    rounded: np.ndarray = np.where(units < 0, -magnitude, magnitude)
    return rounded


def _stored_units(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored amounts as int64 units of 1E-10: (units, present, exact).

    An Arrow decimal column (what the importer writes) is read from its buffer; other
    columns go through Arrow's conversion once. Amounts it cannot hold are left to the
    Decimal path (``exact`` False).
    """
    n = len(values)
    array: pa.Array | None = None
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_decimal(values.dtype.pyarrow_dtype):
        array = pa.array(values)
    else:
        try:
            raw = [None if v is pd.NA else v for v in values.tolist()]
            array = pa.array(raw, type=AMOUNT_TYPE, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            array = None
    if array is None:
        return np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != AMOUNT_TYPE:
        try:
            array = pc.cast(array, AMOUNT_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    present = array.is_valid().to_numpy(zero_copy_only=False)
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)
    words = words[2 * array.offset : 2 * (array.offset + n)].reshape(n, 2)
    lo, hi = words[:, 0], words[:, 1]
    fits = hi == np.where(lo < 0, -1, 0)  # the 128-bit value is its low word, sign-extended
    units = np.where(present, lo, 0)
    return units, present, ~present | fits


def _amounts(units: np.ndarray, valid: np.ndarray) -> pa.Array:
    """int64 units of 1E-10 as an Arrow decimal128(38, 10) array, nulls where not ``valid``."""
    words = np.empty((units.size, 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = np.where(units < 0, -1, 0)
    validity = pa.array(valid, type=pa.bool_()).buffers()[1] if not valid.all() else None
    return pa.Array.from_buffers(
        AMOUNT_TYPE, units.size, [validity, pa.py_buffer(words.tobytes())], null_count=-1
    )


def _exact_sum(units: np.ndarray) -> Decimal:
    """Σ units (int64, |u| < 2^62) exactly, as credits."""
    if float(np.abs(units).sum(dtype=np.float64)) < 2.0**62:
        total = int(units.sum())  # no int64 overflow possible
    else:
        high, low = np.divmod(units, 2**32)
        total = int(high.sum()) * 2**32 + int(low.sum())
    return Decimal(total).scaleb(-STORED_PLACES, context=EXACT) if total else ZERO


def reconcile(
    usage: pd.DataFrame, timeline: pd.DataFrame, *, places: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Re-price imported rows with the rates in force and compare with ``stored_credits``.

    The gateway stores ``ModelCalls.credits`` with 8 places: the re-priced credits (10
    places) are rounded ROUND_HALF_UP to ``places`` before the comparison. Returns one row
    per call — ``source_id`` (when the usage has it), time, user, provider, model, type,
    stored_credits, repriced_credits (10 places), difference (stored − re-priced at
    ``places``), status (:class:`Status`), cause (:class:`Cause`) — and a summary: rows,
    match, mismatch, unsupported, no_stored_credits, not_imported (0 here; see
    :func:`reconcile_import`), stored_total, repriced_total, difference_total (exact
    Decimal sums) and causes (cause → calls).

    ``repriced_credits`` / ``difference`` are exact Arrow decimals (elements read as
    :class:`~decimal.Decimal`, missing ones as ``pd.NA``). The result equals
    :func:`reconcile_reference` (the row-by-row Decimal path) on every row.
    """
    check_stored_column(usage)
    places = check_places(places)
    book = RateBook(timeline)
    fixed = _FixedRates(book)
    n = len(usage)
    row = book.rows_for(usage).astype(np.int64)
    supported = row >= 0
    counts = {c: usage[c].to_numpy() for c in COUNTS}
    credits, exact = fixed.price(row, counts)
    stored, present, stored_ok = _stored_units(usage["stored_credits"])
    exact &= stored_ok | ~supported
    exact |= ~supported  # no rate: nothing to price
    # status and cause, in integers
    rounded = _round_units(credits, places)
    diff = stored - rounded
    compared = supported & present
    status = np.full(n, _STATUS[Status.UNSUPPORTED], dtype=np.int8)
    status[supported & ~present] = _STATUS[Status.NO_STORED_CREDITS]
    status[compared] = np.where(
        diff[compared] == 0, _STATUS[Status.MATCH], _STATUS[Status.MISMATCH]
    )
    cause = np.full(n, _CAUSE[Cause.NO_RATE], dtype=np.int8)
    cause[supported & ~present] = _CAUSE[Cause.NO_STORED_CREDITS]
    cause[status == _STATUS[Status.MATCH]] = _CAUSE[Cause.NONE]
    off = np.flatnonzero((status == _STATUS[Status.MISMATCH]) & exact)
    if off.size:
        cause[off], undecided = _mismatch_causes(
            fixed, row[off], counts, off, diff[off], stored[off], places
        )
        exact[off[undecided]] = False
    # the Decimal path decides what the integers could not
    slow = np.flatnonzero(~exact)
    repriced_units = np.where(supported, credits, 0)
    valid_diff = compared.copy()
    slow_values: tuple[list[Decimal | None], list[Decimal | None]] | None = None
    if slow.size:
        sub = usage.iloc[slow]
        values, diffs, statuses, causes = classify_rows(sub, book.timeline, places)
        status[slow] = [_STATUS[Status(s)] for s in statuses]
        cause[slow] = [_CAUSE[Cause(c)] for c in causes]
        slow_values = (values, diffs)
        repriced_units[slow] = 0
        diff[slow] = 0
        valid_diff[slow] = False
    repriced = _amounts(repriced_units, supported)
    difference = _amounts(np.where(valid_diff, diff, 0), valid_diff)
    if slow_values is not None:
        repriced, difference = (
            _patch(repriced, slow, slow_values[0]),
            _patch(difference, slow, slow_values[1]),
        )
    out = build_frame(
        usage,
        repriced,
        difference,
        pd.Categorical.from_codes(status, dtype=STATUS_DTYPE),
        pd.Categorical.from_codes(cause, dtype=CAUSE_DTYPE),
    )
    summary = _summary(status, cause, stored, present, stored_ok, usage, repriced, difference)
    return out, summary


def _mismatch_causes(
    fixed: _FixedRates,
    row: np.ndarray,
    counts: dict[str, np.ndarray],
    calls: np.ndarray,
    diff: np.ndarray,
    stored: np.ndarray,
    places: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The cause of each mismatch, and which ones need the Decimal path (a neighbouring
    rate the integers cannot hold)."""
    sub = {c: counts[c][calls] for c in COUNTS}
    billed = fixed.billed.take(row)
    # no billed count at all: no input or cache tokens, and none of the count its type bills
    no_usage = (
        (sub["input_tokens"] == 0)
        & (sub["cache_read_tokens"] == 0)
        & (sub["cache_write_tokens"] == 0)
    )
    for i, count in enumerate(OUTPUT_COUNTS):
        no_usage &= (billed != i) | (sub[count] == 0)
    changed = np.zeros(calls.size, dtype=bool)
    undecided = np.zeros(calls.size, dtype=bool)
    for neighbour in (fixed.prev.take(row), fixed.next.take(row)):
        has = neighbour >= 0
        other = np.where(has, neighbour, fixed.exact.size - 1)
        price, ok = fixed.price(other, sub)
        undecided |= has & ~ok
        changed |= has & (_round_units(price, places) == stored)
    # one unit of the stored precision, in units of 1E-10 (finer than 1E-10: no unit can
    # be that small, every amount here is a multiple of 1E-10)
    step = 10 ** (STORED_PLACES - places) if places <= STORED_PLACES else 0
    out = np.full(calls.size, _CAUSE[Cause.UNEXPLAINED], dtype=np.int8)
    out[np.abs(diff) <= step] = _CAUSE[Cause.ROUNDING]
    out[changed] = _CAUSE[Cause.RATE_CHANGED]
    out[no_usage] = _CAUSE[Cause.MISSING_USAGE]
    return out, undecided & ~no_usage


def _patch(array: pa.Array, at: np.ndarray, values: Sequence[Decimal | None]) -> pa.Array:
    """``array`` with the elements at ``at`` replaced by ``values`` (the Decimal path's)."""
    mask = np.zeros(len(array), dtype=bool)
    mask[at] = True
    replacement = pa.array(list(values), type=AMOUNT_TYPE)
    # replace_with_mask fills masked slots in order with the replacement's values
    return pc.replace_with_mask(array, pa.array(mask), replacement)


def _summary(
    status: np.ndarray,
    cause: np.ndarray,
    stored: np.ndarray,
    present: np.ndarray,
    stored_ok: np.ndarray,
    usage: pd.DataFrame,
    repriced: pa.Array,
    difference: pa.Array,
) -> dict[str, Any]:
    by_status = np.bincount(status, minlength=len(STATUS_CATEGORIES))
    by_cause = np.bincount(cause, minlength=len(CAUSE_CATEGORIES))
    if stored_ok.all():
        stored_total = _exact_sum(np.where(present, stored, 0))
    else:
        values = (stored_decimal(v) for v in usage["stored_credits"].tolist())
        stored_total = exact_sum(values)
    return {
        "rows": int(status.size),
        "match": int(by_status[_STATUS[Status.MATCH]]),
        "mismatch": int(by_status[_STATUS[Status.MISMATCH]]),
        "unsupported": int(by_status[_STATUS[Status.UNSUPPORTED]]),
        "no_stored_credits": int(by_status[_STATUS[Status.NO_STORED_CREDITS]]),
        "not_imported": int(by_status[_STATUS[Status.NOT_IMPORTED]]),
        "stored_total": _plain(stored_total),
        "repriced_total": _arrow_total(repriced),
        "difference_total": _arrow_total(difference),
        "causes": {c: int(by_cause[i]) for i, c in enumerate(CAUSE_CATEGORIES) if by_cause[i]},
    }


def _arrow_total(values: pa.Array) -> Decimal:
    total = pc.sum(values).as_py()
    return _plain(total if total is not None else ZERO)


def _plain(value: Decimal) -> Decimal:
    # equal to the reference's sums; shown without the Arrow scale's trailing zeros
    return value if value != 0 else ZERO


def reconcile_import(
    imported: HubImport, timeline: pd.DataFrame, *, places: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`reconcile` of an import, with the calls it did not keep as usage appended
    (status ``not imported``, cause ``not billed`` or ``unsupported type``): every call the
    importer read is in the frame once, and the summary counts them all."""
    frame, _ = reconcile(imported.usage, timeline, places=places)
    skipped = imported.skipped
    if len(skipped):
        extra = skipped[["source_id", "time", "user", "provider", "model", "type"]].copy()
        extra["stored_credits"] = _stored_arrow(skipped["stored_credits"])
        missing = pa.nulls(len(skipped), type=AMOUNT_TYPE)
        extra["repriced_credits"] = pd.Series(missing, dtype=pd.ArrowDtype(AMOUNT_TYPE))
        extra["difference"] = pd.Series(missing, dtype=pd.ArrowDtype(AMOUNT_TYPE))
        extra["status"] = pd.Categorical(
            [Status.NOT_IMPORTED.value] * len(skipped), categories=STATUS_CATEGORIES
        )
        extra["cause"] = pd.Categorical(
            [Cause(r).value for r in skipped["reason"]], categories=CAUSE_CATEGORIES
        )
        if "source_id" not in frame.columns:
            extra = extra.drop(columns=["source_id"])
        for column in ("user", "provider", "model", "type"):
            frame[column] = frame[column].astype(str)
        frame["stored_credits"] = _stored_arrow(frame["stored_credits"])
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame, summarise(frame)


def _stored_arrow(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.ArrowDtype) and values.dtype.pyarrow_dtype == AMOUNT_TYPE:
        return values.reset_index(drop=True)
    array = pa.array([stored_decimal(v) for v in values.tolist()], type=AMOUNT_TYPE)
    return pd.Series(array, dtype=pd.ArrowDtype(AMOUNT_TYPE))


def summarise(frame: pd.DataFrame) -> dict[str, Any]:
    """The summary of a reconciliation frame (the keys :func:`reconcile` returns)."""
    status = frame["status"].astype(str)
    cause = frame["cause"].astype(str)
    stored = _group_sums(frame["stored_credits"], np.zeros(len(frame), dtype=np.int64), 1).iloc[0]
    return {
        "rows": len(frame),
        "match": int((status == Status.MATCH).sum()),
        "mismatch": int((status == Status.MISMATCH).sum()),
        "unsupported": int((status == Status.UNSUPPORTED).sum()),
        "no_stored_credits": int((status == Status.NO_STORED_CREDITS).sum()),
        "not_imported": int((status == Status.NOT_IMPORTED).sum()),
        "stored_total": stored,
        "repriced_total": _arrow_total(pa.array(frame["repriced_credits"])),
        "difference_total": _arrow_total(pa.array(frame["difference"])),
        "causes": {c: n for c in CAUSE_CATEGORIES if (n := int((cause == c).sum()))},
    }


#: what :func:`reconcile_breakdown` can group by
BREAKDOWNS = {"user": ("user",), "model": ("provider", "model", "type"), "day": ("day",)}


def reconcile_breakdown(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The reconciliation frame summed per ``by`` (``user``, ``model`` or ``day``, UTC).

    Columns: the keys, rows, one count per status, stored_total, repriced_total,
    difference_total (Decimal), then one count per cause that occurs. The columns sum to
    the summary of :func:`reconcile`: every call is in exactly one group.
    """
    if by not in BREAKDOWNS:
        raise ValidationError(
            f"cannot break a reconciliation down by {by!r}; choose from {list(BREAKDOWNS)}",
            field="by",
        )
    keys = list(BREAKDOWNS[by])
    if by == "day":
        key_frame = pd.DataFrame({"day": frame["time"].dt.tz_convert("UTC").dt.floor("D")})
    else:
        key_frame = frame[keys]
    grouped = key_frame.groupby(keys, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    out = grouped.size().rename("rows").reset_index()
    if by == "day":
        out["day"] = out["day"].dt.date
    else:
        for key in keys:
            out[key] = out[key].astype(str)
    n_groups = len(out)
    statuses = _tally(codes, _category_codes(frame["status"], STATUS_CATEGORIES), n_groups,
                      len(STATUS_CATEGORIES))  # fmt: skip
    for i, s in enumerate(STATUS_CATEGORIES):
        out[s.replace(" ", "_")] = statuses[:, i]
    out["stored_total"] = _group_sums(frame["stored_credits"], codes, n_groups)
    out["repriced_total"] = _group_sums(frame["repriced_credits"], codes, n_groups)
    out["difference_total"] = _group_sums(frame["difference"], codes, n_groups)
    causes = _tally(codes, _category_codes(frame["cause"], CAUSE_CATEGORIES), n_groups,
                    len(CAUSE_CATEGORIES))  # fmt: skip
    for i, c in enumerate(CAUSE_CATEGORIES):
        if causes[:, i].any():
            out[f"cause: {c}"] = causes[:, i]
    return out


def _category_codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Each value's position in ``categories`` (a status or cause column)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and tuple(values.cat.categories) == categories:
        codes: np.ndarray = values.cat.codes.to_numpy()
        return codes
    found = pd.Index(list(categories)).get_indexer(pd.Index(values.astype(str)))
    if (found < 0).any():
        raise ValidationError("not a reconciliation frame: unknown status or cause", field="frame")
    return found


def _tally(groups: np.ndarray, codes: np.ndarray, n_groups: int, n_codes: int) -> np.ndarray:
    """Calls per (group, code): an (n_groups, n_codes) int64 table."""
    flat = np.bincount(groups * n_codes + codes, minlength=n_groups * n_codes)
    return flat.reshape(n_groups, n_codes).astype(np.int64)


def _group_sums(values: pd.Series, codes: np.ndarray, n_groups: int) -> pd.Series:
    """Exact per-group sums of a column of amounts (Arrow decimals or Decimal objects)."""
    sums = [ZERO] * n_groups
    if isinstance(values.dtype, pd.ArrowDtype):
        table = pa.table({"g": pa.array(codes), "v": pa.array(values)})
        result = table.group_by("g").aggregate([("v", "sum")])
        for g, total in zip(
            result.column("g").to_pylist(), result.column("v_sum").to_pylist(), strict=True
        ):
            sums[g] = _plain(total if total is not None else ZERO)
    else:
        for g, value in zip(codes.tolist(), values.tolist(), strict=True):
            number = stored_decimal(value)
            if number is not None:
                sums[g] = EXACT.add(sums[g], number)
    return pd.Series(sums, dtype=object)
