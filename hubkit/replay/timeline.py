"""Rates in force over time (the "rate timeline") and pricing calls with them.

A timeline is a DataFrame with one row per period a rate was in force::

    provider, model, type                     str
    input_rate, output_rate                   Decimal
    cache_read_rate, cache_write_rate         Decimal or None (None: fall back to inputRate)
    unit_cost_input, unit_cost_output         Decimal or None (None: provider cost unknown)
    valid_from, valid_to                      tz-aware UTC; NaT = since forever / still in force

A call at time t uses the row of its (provider, model, type) with
``valid_from ≤ t < valid_to``; a call with no such row is *unsupported* (the gateway refuses
it; it is never charged 0).

Two ways to price, pinned together by tests:

- :class:`RateBook` — the timeline compiled into numpy arrays; :meth:`RateBook.price`
  prices millions of calls with gathers and multiply-adds (float64, for simulation);
- :func:`price_exact` — the reference: :func:`hubkit.pricing.call_credits` row by row, in
  Decimal with the gateway's rounding.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit._columns import (
    CACHE_COLUMNS,
    COST_COLUMNS,
    PRICE_COLUMNS,
    RATE_AMOUNTS,
    RATE_KEY,
    TIMELINE_COLUMNS,
)
from hubkit.decimals import EXACT, ZERO, to_decimal
from hubkit.domain import Rate, RateType, billing_of, billing_rows
from hubkit.errors import ValidationError
from hubkit.pricing.rules import call_credits, is_below_cost
from hubkit.pricing.vector import COUNTS, Priced, RateArrays, price_arrays
from hubkit.store.usage import Engine, naive_utc, replace_rate_periods
from hubkit.usage.schema import to_ns

__all__ = [
    "COUNTS",
    "TIMELINE_COLUMNS",
    "Priced",
    "RateArrays",
    "RateBook",
    "current_rates",
    "price_arrays",
    "price_exact",
    "timeline_from_rates",
    "validate_timeline",
]

_OPTIONAL_DECIMALS = (*CACHE_COLUMNS, *COST_COLUMNS)


def timeline_from_rates(rates: Iterable[Rate]) -> pd.DataFrame:
    """The current rates as a timeline: each rate in force forever."""
    records = []
    for rate in rates:
        caching = rate.caching
        costs = rate.unit_costs
        records.append(
            {
                "provider": rate.provider,
                "model": rate.model,
                "type": RateType.parse(rate.type).value,
                "input_rate": rate.input_rate,
                "output_rate": rate.output_rate,
                "cache_read_rate": caching.read_rate if caching else None,
                "cache_write_rate": caching.write_rate if caching else None,
                "unit_cost_input": costs.input if costs else None,
                "unit_cost_output": costs.output if costs else None,
                "valid_from": pd.NaT,
                "valid_to": pd.NaT,
            }
        )
    return validate_timeline(pd.DataFrame.from_records(records, columns=list(TIMELINE_COLUMNS)))


def _decimal_column(values: pd.Series, column: str, *, optional: bool) -> list[Decimal | None]:
    out: list[Decimal | None] = []
    for row, value in enumerate(values.tolist()):
        missing = value is None or value is pd.NA or (isinstance(value, float) and value != value)
        if missing:
            if not optional:
                raise ValidationError(
                    f"timeline column {column!r}, row {row + 1}: missing", field=column
                )
            out.append(None)
            continue
        try:
            out.append(to_decimal(value, column))
        except ValidationError as exc:
            raise ValidationError(
                f"timeline column {column!r}, row {row + 1}: {exc}", field=column, value=value
            ) from None
    return out


def _times(values: pd.Series, column: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        out = values.dt.tz_localize("UTC")
    else:
        out = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        bad = out.isna().to_numpy() & values.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                f"timeline column {column!r}, row {row + 1}: {values.iloc[row]!r} is not a time",
                field=column,
            )
    utc: pd.Series = out.astype("datetime64[ns, UTC]")  # a dtype string: the stubs say Any
    return utc


def validate_timeline(timeline: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise a timeline; periods of one (provider, model, type) must not overlap.

    Returns a copy sorted by (provider, model, type, valid_from) with Decimal rates,
    None for missing optional values and UTC timestamps.
    """
    if not isinstance(timeline, pd.DataFrame):
        raise ValidationError("a rate timeline must be a pandas DataFrame", field="timeline")
    required = (*RATE_KEY, *PRICE_COLUMNS)
    missing = [c for c in required if c not in timeline.columns]
    if missing:
        raise ValidationError(
            f"rate timeline is missing column(s) {missing}; columns: {list(TIMELINE_COLUMNS)}",
            field=missing[0],
        )
    body = timeline.reset_index(drop=True)
    n = len(body)
    out: dict[str, Any] = {}
    for column in ("provider", "model"):
        text = body[column].astype(object)
        for row, value in enumerate(text.tolist()):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(
                    f"timeline column {column!r}, row {row + 1}: {value!r} is not a name",
                    field=column,
                )
        out[column] = [v.strip() for v in text.tolist()]
    types = []
    for row, value in enumerate(body["type"].tolist()):
        try:
            types.append(billing_of(value).type)  # the rate types BILLING knows
        except ValidationError as exc:
            raise ValidationError(f"timeline row {row + 1}: {exc}", field="type") from None
    out["type"] = types
    for column in PRICE_COLUMNS:
        out[column] = _decimal_column(body[column], column, optional=False)
    for column in _OPTIONAL_DECIMALS:
        values = body[column] if column in body else pd.Series([None] * n, dtype=object)
        out[column] = _decimal_column(values, column, optional=True)
    frame = pd.DataFrame({c: pd.Series(out[c], dtype=object) for c in TIMELINE_COLUMNS[:9]})
    for column in ("provider", "model", "type"):
        frame[column] = frame[column].astype(str)
    for column in ("valid_from", "valid_to"):
        values = body[column] if column in body else pd.Series([pd.NaT] * n)
        frame[column] = _times(values, column).reset_index(drop=True)
    _check_periods(frame)
    lo = frame["valid_from"].fillna(pd.Timestamp.min.tz_localize("UTC"))
    order = np.lexsort((lo.to_numpy(), frame["type"], frame["model"], frame["provider"]))
    return frame.iloc[order].reset_index(drop=True)


def _check_periods(frame: pd.DataFrame) -> None:
    start = to_ns(frame["valid_from"])
    end = to_ns(frame["valid_to"])
    nat = np.iinfo(np.int64).min
    lo = np.where(start == nat, np.iinfo(np.int64).min + 1, start)
    hi = np.where(end == nat, np.iinfo(np.int64).max, end)
    bad = np.flatnonzero(lo >= hi)
    if bad.size:
        row = int(bad[0])
        raise ValidationError(
            f"timeline row {row + 1}: valid_from must be before valid_to "
            f"({frame['valid_from'].iloc[row]} ≥ {frame['valid_to'].iloc[row]})",
            field="valid_from",
        )
    keys = list(zip(frame["provider"], frame["model"], frame["type"], strict=True))
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for row, key in enumerate(keys):
        by_key.setdefault(key, []).append(row)
    for key, rows in by_key.items():
        rows.sort(key=lambda r: lo[r])
        for a, b in zip(rows, rows[1:], strict=False):
            if hi[a] > lo[b]:
                raise ValidationError(
                    f"timeline rows {a + 1} and {b + 1} overlap for {key}: one rate in force "
                    "at a time per (provider, model, type)",
                    field="valid_from",
                )


def current_rates(timeline: pd.DataFrame) -> pd.DataFrame:
    """The rows still in force (valid_to NaT), as a timeline valid forever."""
    frame = validate_timeline(timeline)
    now = frame[frame["valid_to"].isna()].reset_index(drop=True)
    now["valid_from"] = pd.Series(pd.NaT, index=now.index, dtype="datetime64[ns, UTC]")
    return now


def _f(values: Iterable[Decimal | None]) -> np.ndarray:
    return np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)


def _f_or_nan(values: Iterable[Decimal | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class RateBook:
    """A validated timeline compiled for vectorised lookup and pricing.

    Arrays per timeline row carry one extra trailing slot of zeros, so that a gather with
    row −1 (unsupported) reads 0 instead of failing; callers use :attr:`Priced.row` to
    refuse those calls.
    """

    def __init__(self, timeline: pd.DataFrame) -> None:
        frame = validate_timeline(timeline)
        self.timeline = frame
        n = len(frame)
        keys = list(zip(frame["provider"], frame["model"], frame["type"], strict=True))
        self.keys: list[tuple[str, str, str]] = list(dict.fromkeys(keys))
        key_index = {k: i for i, k in enumerate(self.keys)}
        self.key_of_row = np.array([key_index[k] for k in keys], dtype=np.int32)
        self.providers = pd.Index(sorted({k[0] for k in self.keys}))
        self.models = pd.Index(sorted({k[1] for k in self.keys}))
        self.type_names = pd.Index([b.type for b in billing_rows()])
        lut = np.full(
            (len(self.providers) + 1, len(self.models) + 1, len(self.type_names) + 1),
            -1,
            dtype=np.int32,
        )
        for i, (p, m, t) in enumerate(self.keys):
            lut[self.providers.get_loc(p), self.models.get_loc(m), self.type_names.get_loc(t)] = i
        self._lut = lut
        # Periods → a (key, epoch) table: epochs are the spans between all period bounds.
        start = to_ns(frame["valid_from"])
        end = to_ns(frame["valid_to"])
        nat = np.iinfo(np.int64).min
        bounds = np.concatenate([start[start != nat], end[end != nat]])
        self.breakpoints = np.unique(bounds)
        n_epochs = self.breakpoints.size + 1
        table = np.full((len(self.keys) + 1, n_epochs), -1, dtype=np.int32)
        for row in range(n):
            first = (
                0
                if start[row] == nat
                else int(np.searchsorted(self.breakpoints, start[row], "right"))
            )
            last = (
                n_epochs
                if end[row] == nat
                else int(np.searchsorted(self.breakpoints, end[row], "right"))
            )
            table[self.key_of_row[row], first:last] = row
        self._table = table
        #: per timeline row: which count its output rate bills (index into OUTPUT_COUNTS)
        self.billed = np.array([billing_of(k[2]).output_index for k in keys], dtype=np.int8)
        self.arrays = RateArrays.build(
            billed=self.billed,
            input_rate=_f(frame["input_rate"]),
            output_rate=_f(frame["output_rate"]),
            cache_read_rate=_f_or_nan(frame["cache_read_rate"]),
            cache_write_rate=_f_or_nan(frame["cache_write_rate"]),
            unit_cost_input=_f(frame["unit_cost_input"]),
            unit_cost_output=_f(frame["unit_cost_output"]),
            has_cost=frame["unit_cost_input"].notna().to_numpy()
            | frame["unit_cost_output"].notna().to_numpy(),
        )

    def __len__(self) -> int:
        return len(self.timeline)

    # -- lookup -------------------------------------------------------------------------
    def _flat_codes(self, usage: pd.DataFrame, table: np.ndarray) -> np.ndarray:
        # Map each column's categories (few) to the book's names, build a small lookup in
        # the usage's own category space, then one flat ``take`` per call: a handful of
        # in-place int32 operations instead of three gathers and a 3-D fancy index.
        codes, maps = [], []
        for column, names in (
            ("provider", self.providers),
            ("model", self.models),
            ("type", self.type_names),
        ):
            values = usage[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                col_codes = values.cat.codes.to_numpy()
                cats = values.cat.categories
            else:
                col_codes, cats = pd.factorize(values)
            codes.append(col_codes)
            # Slot 0 is "missing value" (code −1): it maps to the book's "no rate" slot (−1).
            maps.append(np.concatenate([[-1], names.get_indexer(pd.Index(cats).astype(str))]))
        s1, s2 = maps[1].size, maps[2].size
        grid = table[np.ix_(maps[0], maps[1], maps[2])].ravel()
        # (c0 + 1)·s1·s2 + (c1 + 1)·s2 + (c2 + 1), with the +1s folded into one offset.
        idx = codes[0].astype(np.int32)
        idx *= s1
        idx += codes[1]
        idx *= s2
        idx += codes[2]
        idx += s1 * s2 + s2 + 1
        priced_rows: np.ndarray = grid.take(idx)
        return priced_rows

    def key_codes(self, usage: pd.DataFrame) -> np.ndarray:
        """Each call's (provider, model, type) as an index into :attr:`keys` (−1: no rate)."""
        return self._flat_codes(usage, self._lut)

    def rows_for(self, usage: pd.DataFrame, keys: np.ndarray | None = None) -> np.ndarray:
        """Each call's timeline row in force at its time (−1: unsupported)."""
        if keys is None and self.breakpoints.size == 0:
            # One period per key: the key lookup can return the row directly.
            return self._flat_codes(usage, self._table[self._lut, 0])
        key = self.key_codes(usage) if keys is None else keys
        # numpy's stubs type a fancy index of an ndarray[Any] as Any
        found: np.ndarray
        if self.breakpoints.size == 0:
            found = self._table[key, 0]
            return found
        epoch = np.searchsorted(self.breakpoints, to_ns(usage["time"]), side="right")
        found = self._table[key, epoch]
        return found

    # -- pricing ------------------------------------------------------------------------
    def price(
        self, usage: pd.DataFrame, *, cost: bool = True, rows: np.ndarray | None = None
    ) -> Priced:
        """Credits (and provider cost) of every call, vectorised in float64: the twin of
        :func:`hubkit.pricing.call_credits` (and of :func:`price_exact`'s cost)."""
        row = self.rows_for(usage) if rows is None else rows
        return price_arrays(row, {c: usage[c].to_numpy() for c in COUNTS}, self.arrays, cost=cost)

    def below_cost(self, credit_price: Any) -> np.ndarray:
        """Per timeline row: is either side sold below cost at ``credit_price``?"""
        flags = [
            is_below_cost(r.input_rate, r.unit_cost_input, credit_price)
            or is_below_cost(r.output_rate, r.unit_cost_output, credit_price)
            for r in timeline_rows(self.timeline)
        ]
        return np.append(np.array(flags, dtype=bool), False)


def timeline_rows(timeline: pd.DataFrame) -> Iterator[Any]:
    """A validated timeline's rows. validate_timeline fixed each column's type (the module
    docstring lists them); pandas' stubs can only type a row's fields as any scalar."""
    return timeline.itertuples(index=False)


# -- the Decimal reference -----------------------------------------------------------------
class _ExactIndex:
    def __init__(self, timeline: pd.DataFrame) -> None:
        frame = validate_timeline(timeline)
        self.rows = list(timeline_rows(frame))
        self.periods: dict[tuple[str, str, str], list[tuple[int, int, int]]] = {}
        lo_default, hi_default = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        for i, r in enumerate(self.rows):
            lo = lo_default if pd.isna(r.valid_from) else pd.Timestamp(r.valid_from).value
            hi = hi_default if pd.isna(r.valid_to) else pd.Timestamp(r.valid_to).value
            self.periods.setdefault((r.provider, r.model, r.type), []).append((lo, hi, i))
        for spans in self.periods.values():
            spans.sort()

    def find(self, provider: str, model: str, type_: str, when: int) -> int:
        spans = self.periods.get((provider, model, type_))
        if not spans:
            return -1
        pos = bisect.bisect_right([s[0] for s in spans], when) - 1
        if pos >= 0 and spans[pos][0] <= when < spans[pos][1]:
            return spans[pos][2]
        return -1


def price_exact(usage: pd.DataFrame, timeline: pd.DataFrame) -> pd.DataFrame:
    """Reference pricing: the rate in force and :func:`call_credits` for every row, in Decimal.

    Returns columns ``row`` (timeline row, −1 = unsupported), ``credits`` (Decimal, None when
    unsupported) and ``cost`` (Decimal provider cost; None when unsupported or the rate has
    no unit costs).
    """
    index = _ExactIndex(timeline)
    rows: list[int] = []
    credits: list[Decimal | None] = []  # None: unsupported (no rate in force)
    costs: list[Decimal | None] = []  # None: unsupported, or no unit costs
    when = to_ns(usage["time"])
    columns = [usage[c].astype(str).tolist() for c in ("provider", "model", "type")]
    counts = {c: usage[c].tolist() for c in COUNTS}
    for i in range(len(usage)):
        found = index.find(columns[0][i], columns[1][i], columns[2][i], int(when[i]))
        rows.append(found)
        if found < 0:
            credits.append(None)
            costs.append(None)
            continue
        rate = index.rows[found]
        call = {c: counts[c][i] for c in counts}
        call["seconds"] = Decimal(str(call["seconds"]))
        credits.append(
            call_credits(
                rate.type,
                input_rate=rate.input_rate,
                output_rate=rate.output_rate,
                cache_read_rate=rate.cache_read_rate,
                cache_write_rate=rate.cache_write_rate,
                **call,
            )
        )
        costs.append(_exact_cost(rate, call))
    return pd.DataFrame({"row": rows, "credits": credits, "cost": costs}, index=usage.index)


def _exact_cost(rate: Any, call: dict[str, Any]) -> Decimal | None:
    """Provider cost of one call in Decimal, not rounded: the reference the cost twins
    (:func:`hubkit.pricing.vector.price_arrays`, :mod:`hubkit.pricing.sql`) are pinned to.
    The output unit cost prices the count :data:`hubkit.domain.BILLING` says it bills."""
    if rate.unit_cost_input is None and rate.unit_cost_output is None:
        return None
    uc_in = rate.unit_cost_input or ZERO
    uc_out = rate.unit_cost_output or ZERO
    units = Decimal(call[billing_of(rate.type).output])  # seconds are already Decimal
    # Cached input tokens cost the provider's input price (unitCosts has no cache prices).
    tokens_in = Decimal(
        call["input_tokens"] + call["cache_read_tokens"] + call["cache_write_tokens"]
    )
    return EXACT.add(EXACT.multiply(tokens_in, uc_in), EXACT.multiply(units, uc_out))


def load_rate_timeline(engine: Engine, timeline: pd.DataFrame) -> int:
    """Replace ``usage_rate_periods`` with ``timeline`` (see :mod:`hubkit.replay.timeline`).

    ``Store.rate_timeline()`` or :func:`hubkit.replay.timeline.timeline_from_rates` give one.
    """
    frame = validate_timeline(timeline)
    rows = []
    for rate in timeline_rows(frame):
        rows.append(
            {
                "provider": rate.provider,
                "model": rate.model,
                "type": rate.type,
                **{name: getattr(rate, name) for name in RATE_AMOUNTS},
                "valid_from": None if pd.isna(rate.valid_from) else naive_utc(rate.valid_from),
                "valid_to": None if pd.isna(rate.valid_to) else naive_utc(rate.valid_to),
            }
        )
    return replace_rate_periods(engine, rows)
