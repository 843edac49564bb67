"""The usage table every part of hubkit speaks, and its validation.

One row per API call, columns (domain.md, "Credits for one call"):

==================  =========================================================
time                when the call was made (UTC, tz-aware)
user                the caller (the gateway's userDid)
app                 the calling application ("" when unknown)
provider            provider name (``openai``)
model               the provider's model id (``gpt-4o``)
type                chatCompletion | imageGeneration | embedding | video
input_tokens        prompt tokens *not* served from cache
output_tokens       completion tokens
cache_read_tokens   cached input tokens read
cache_write_tokens  cached input tokens written
images              images generated
seconds             seconds of video generated
==================  =========================================================

:func:`validate_usage` turns any DataFrame into this shape (categorical text columns,
integer counts, float seconds, UTC times) or raises :class:`ValidationError` naming the
column and the first bad row. Other columns are kept after the canonical ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hubkit.domain import RateType
from hubkit.errors import ValidationError

TEXT_COLUMNS = ("user", "app", "provider", "model", "type")
COUNT_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "images",
)
USAGE_COLUMNS = ("time", *TEXT_COLUMNS, *COUNT_COLUMNS, "seconds")
RATE_TYPES = tuple(t.value for t in RateType)
#: Columns that may be left out of a file: they default to 0 / "".
OPTIONAL_COLUMNS = frozenset({"app", *COUNT_COLUMNS, "seconds"})


def _where(row: int, line_offset: int | None) -> str:
    text = f"row {row + 1}"
    if line_offset is not None:
        text += f" (line {row + 1 + line_offset})"
    return text


def _bad(column: str, row: int, value: object, problem: str, line_offset: int | None) -> None:
    if isinstance(value, np.generic):
        value = value.item()  # show -3, not np.int64(-3)
    raise ValidationError(
        f"usage column {column!r}, {_where(row, line_offset)}: {value!r} {problem}",
        field=column,
        value=value,
    )


def _check_time(series: pd.Series, line_offset: int | None) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        out = series.dt.tz_localize("UTC")  # naive times are taken as UTC
    else:
        out = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
        bad = out.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _bad(
                "time",
                row,
                series.iloc[row],
                "is not a time (use ISO 8601, e.g. 2025-01-31T12:00:00Z)",
                line_offset,
            )
    missing = out.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        _bad("time", row, series.iloc[row], "is missing", line_offset)
    utc: pd.Series = out.astype("datetime64[ns, UTC]")  # a dtype string: the stubs say Any
    return utc


def _check_count(
    series: pd.Series, column: str, line_offset: int | None, *, integral: bool
) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        _bad(column, 0, series.iloc[0], "is a boolean, not a count", line_offset)
    if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(
        series.dtype, pd.api.extensions.ExtensionDtype
    ):
        values = series
    else:
        values = pd.to_numeric(series, errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raw = series.iloc[row]
            empty = raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw) == ""
            _bad(column, row, raw, "is empty" if empty else "is not a number", line_offset)
    arr = values.to_numpy(dtype=np.float64) if not integral else values.to_numpy()
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            _bad(column, row, series.iloc[row], "is not a finite number", line_offset)
    negative = arr < 0
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        _bad(column, row, series.iloc[row], "must be ≥ 0", line_offset)
    if not integral:
        return pd.Series(arr.astype(np.float64, copy=False), index=series.index, name=column)
    if arr.dtype.kind == "f":
        fractional = arr != np.floor(arr)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            _bad(column, row, series.iloc[row], "must be a whole number", line_offset)
        if arr.size and arr.max() >= 2**62:
            row = int(np.argmax(arr))
            _bad(column, row, series.iloc[row], "is too large", line_offset)
        arr = arr.astype(np.int64)
    return pd.Series(arr, index=series.index, name=column)


def _check_text(series: pd.Series, column: str, line_offset: int | None) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = series.cat.categories
        if all(isinstance(c, str) and c == c.strip() for c in cats):
            return _check_categorical(series, column, line_offset)
        series = series.astype(object)  # unusual categories: check them as plain text
    nulls = series.isna().to_numpy()
    if nulls.any() and column != "app":
        row = int(np.flatnonzero(nulls)[0])
        _bad(column, row, None, "is empty", line_offset)
    text = series.fillna("").astype(str).str.strip()
    if column != "app":
        empty = (text == "").to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            _bad(column, row, series.iloc[row], "is empty", line_offset)
    if column == "type":
        known = text.isin(RATE_TYPES).to_numpy()
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            _bad(column, row, series.iloc[row], _NOT_A_TYPE, line_offset)
    return text.astype("category")


_NOT_A_TYPE = f"is not a rate type (one of {', '.join(RATE_TYPES)})"


def _check_categorical(series: pd.Series, column: str, line_offset: int | None) -> pd.Series:
    # The fast path for generated / Parquet data: checks run on the few categories.
    cats = series.cat.categories
    codes = series.cat.codes.to_numpy()
    if column == "app":
        if (codes < 0).any():
            if "" not in cats:
                series = series.cat.add_categories([""])
            series = series.fillna("")
        return _drop_unused(series)
    empty_codes = np.flatnonzero(np.asarray(cats == ""))
    bad = (codes < 0) | np.isin(codes, empty_codes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        _bad(column, row, None if codes[row] < 0 else "", "is empty", line_offset)
    if column == "type":
        unknown = np.flatnonzero(~np.isin(np.asarray(cats, dtype=object), RATE_TYPES))
        hit = np.isin(codes, unknown)
        if hit.any():
            row = int(np.flatnonzero(hit)[0])
            _bad(column, row, series.iloc[row], _NOT_A_TYPE, line_offset)
    return _drop_unused(series)


def _drop_unused(series: pd.Series) -> pd.Series:
    # remove_unused_categories sorts the codes (np.unique); a bincount is far cheaper.
    codes = series.cat.codes.to_numpy()
    n_cats = len(series.cat.categories)
    used = np.bincount(codes[codes >= 0], minlength=n_cats) > 0 if codes.size else np.zeros(0, bool)
    if used.all():
        return series
    remap = np.full(n_cats + 1, -1, dtype=np.int32)
    remap[np.flatnonzero(used)] = np.arange(int(used.sum()))
    new_codes = remap[codes]  # code -1 reads the last slot: stays -1
    categories = series.cat.categories[used]
    return pd.Series(
        pd.Categorical.from_codes(new_codes, categories=categories),
        index=series.index,
        name=series.name,
    )


def validate_usage(
    frame: pd.DataFrame, *, line_offset: int | None = None, source: str | None = None
) -> pd.DataFrame:
    """Return ``frame`` in the usage shape or raise ValidationError naming column and row.

    ``line_offset`` maps a data row to a file line (1 for a CSV with a header line).
    Missing optional columns (app, counts, seconds) default to "" / 0.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError("usage must be a pandas DataFrame", field="usage")
    where = f" in {source}" if source else ""
    missing = [c for c in USAGE_COLUMNS if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValidationError(
            f"usage{where} is missing column(s) {missing}; required: "
            f"{[c for c in USAGE_COLUMNS if c not in OPTIONAL_COLUMNS]}",
            field=missing[0],
        )
    index = pd.RangeIndex(len(frame))
    body = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    try:
        out["time"] = _check_time(body["time"], line_offset)
        for column in TEXT_COLUMNS:
            if column in body:
                out[column] = _check_text(body[column], column, line_offset)
            else:
                out[column] = pd.Series(pd.Categorical([""] * len(body)), index=index, name=column)
        for column in COUNT_COLUMNS:
            if column in body:
                out[column] = _check_count(body[column], column, line_offset, integral=True)
            else:
                out[column] = pd.Series(np.zeros(len(body), np.int64), index=index, name=column)
        if "seconds" in body:
            out["seconds"] = _check_count(body["seconds"], "seconds", line_offset, integral=False)
        else:
            out["seconds"] = pd.Series(np.zeros(len(body)), index=index, name="seconds")
    except ValidationError as exc:
        if source:
            message = f"{exc} (in {source})"
            raise ValidationError(message, field=exc.field, value=exc.value) from None
        raise
    result = pd.DataFrame(out, index=index, copy=False)
    extras = [c for c in body.columns if c not in USAGE_COLUMNS]
    for column in extras:
        result[column] = body[column].to_numpy()
    return result


def empty_usage() -> pd.DataFrame:
    """A usage table with no rows (the right columns and dtypes)."""
    frame = pd.DataFrame({c: [] for c in USAGE_COLUMNS})
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return validate_usage(frame)


def inapplicable_counts(usage: pd.DataFrame) -> pd.Series:
    """Rows carrying a count the gateway ignores for their type (domain.md): a bool mask.

    Output tokens on an image or video call, images on a non-image call, seconds on a
    non-video call. The rule ignores them; importers report them.
    """
    kind = usage["type"].astype(str).to_numpy()
    text = np.isin(kind, (RateType.CHAT_COMPLETION.value, RateType.EMBEDDING.value))
    image = kind == RateType.IMAGE_GENERATION.value
    video = kind == RateType.VIDEO.value
    mask = (~text & (usage["output_tokens"].to_numpy() > 0)) | (
        ~image & (usage["images"].to_numpy() > 0)
    )
    mask |= ~video & (usage["seconds"].to_numpy() > 0)
    return pd.Series(mask, index=usage.index, name="inapplicable_counts")


def to_ns(times: pd.Series | pd.Index) -> np.ndarray:
    """UTC nanoseconds since the epoch as int64 (NaT → the int64 minimum), any resolution."""
    return np.asarray(times.to_numpy(dtype="datetime64[ns]")).view(np.int64)


def usage_columns(extra: Sequence[str] = ()) -> list[str]:
    return [*USAGE_COLUMNS, *extra]
