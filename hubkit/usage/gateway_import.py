"""``python -m hubkit usage import``: the gateway's calls into the store or a Parquet file,
incrementally; and reading them back for a reconciliation or a replay.

The source is the gateway's SQLite file, a PostgreSQL URL of a gateway running there, or a
CSV export of ``ModelCalls`` / ``Usages`` (:mod:`hubkit.usage.gateway`). The target is

- the store's ``usage`` table (an engine): each call keeps its gateway id in ``source_id``
  (a unique index) and the credits it was charged in ``stored_credits``; or
- a Parquet file (``*.parquet``): the usage columns plus ``source_id`` and
  ``stored_credits`` (exact decimal128), rewritten whole with the new calls appended
  (written beside it and moved into place: a reader never sees half a file).

Either way a re-run imports only the calls whose id the target does not hold yet, and the
:class:`~hubkit.usage.gateway.HubImportReport` says how many were already there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hubkit.errors import ValidationError
from hubkit.store.usage import (
    Engine,
    append_usage,
    imported_source_ids,
    read_usage_rows,
)
from hubkit.usage.gateway import (
    STORED_CREDITS_TYPE,
    HubImport,
    ProgressCallback,
    is_database_url,
    read_hub_database,
    read_hub_export,
    stored_credits_array,
)
from hubkit.usage.schema import COUNT_COLUMNS, TEXT_COLUMNS, USAGE_COLUMNS, validate_usage

__all__ = ["import_gateway_usage", "read_imported_usage"]

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(_PARQUET_SUFFIXES)


def import_gateway_usage(
    source: str | Path,
    target: Engine | str | Path,
    *,
    table: str | None = None,
    providers: Mapping[str, str] | None = None,
    input_includes_cache: Collection[str] = (),
    provider_of_model: Mapping[str, str] | None = None,
    chunk_rows: int = 50_000,
    progress: ProgressCallback | None = None,
) -> HubImport:
    """Import the gateway's calls from ``source`` into ``target`` (an engine or a Parquet
    path); only calls ``target`` does not hold yet. Returns what was imported now."""
    parquet = None if isinstance(target, Engine) else Path(target)
    if parquet is not None and not _is_parquet(parquet):
        raise ValidationError(
            f"import target {parquet.name!r}: give the store (`store`) or a *.parquet file",
            field="to",
        )
    if parquet is None:
        assert isinstance(target, Engine)
        known = imported_source_ids(target)
        existing = None
    else:
        existing = read_imported_usage(parquet) if parquet.exists() else None
        known = set() if existing is None else set(existing["source_id"].astype(str))
    options: dict[str, Any] = {
        "input_includes_cache": input_includes_cache,
        "provider_of_model": provider_of_model,
        "known_ids": known,
        "progress": progress,
    }
    text = str(source)
    if not is_database_url(text) and text.lower().endswith(_CSV_SUFFIXES):
        imported = read_hub_export(source, table=table, providers=providers, **options)
    else:
        imported = read_hub_database(
            source, table=table or "ModelCalls", chunk_rows=chunk_rows, **options
        )
    if parquet is None:
        assert isinstance(target, Engine)
        append_usage(target, _store_chunks(imported.usage, chunk_rows))
    else:
        _write_parquet(parquet, imported.usage, existing)
    return imported


def _store_chunks(usage: pd.DataFrame, chunk_rows: int) -> Iterator[dict[str, list[Any]]]:
    for lo in range(0, len(usage), chunk_rows):
        part = usage.iloc[lo : lo + chunk_rows]
        naive = part["time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("us")
        columns: dict[str, list[Any]] = {"time": list(naive.dt.to_pydatetime())}
        for column in TEXT_COLUMNS:
            columns[column] = part[column].astype(str).tolist()
        for column in COUNT_COLUMNS:
            columns[column] = part[column].astype(np.int64).tolist()
        columns["seconds"] = part["seconds"].tolist()
        columns["source_id"] = part["source_id"].tolist()
        stored = pa.array(part["stored_credits"]).to_pylist()
        columns["stored_credits"] = [None if v is None else v.normalize() for v in stored]
        yield columns


def _write_parquet(path: Path, usage: pd.DataFrame, existing: pd.DataFrame | None) -> None:
    frame = usage.copy() if existing is None else pd.concat([existing, usage], ignore_index=True)
    stored = frame.pop("stored_credits")
    frame = validate_usage(frame)
    frame["stored_credits"] = _stored_series(stored.reset_index(drop=True))
    frame = frame[[*USAGE_COLUMNS, "source_id", "stored_credits"]]
    frame["source_id"] = frame["source_id"].astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False, engine="pyarrow")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stored_series(values: pd.Series) -> pd.Series:
    if (
        isinstance(values.dtype, pd.ArrowDtype)
        and values.dtype.pyarrow_dtype == STORED_CREDITS_TYPE
    ):
        return values
    array = stored_credits_array([None if pd.isna(v) else v for v in values.tolist()])
    return pd.Series(array, dtype=pd.ArrowDtype(STORED_CREDITS_TYPE), index=values.index)


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _arrow_decimals(kind: pa.DataType) -> pd.ArrowDtype | None:
    return pd.ArrowDtype(kind) if pa.types.is_decimal(kind) else None


def read_imported_usage(
    source: Engine | str | Path, *, since: Any = None, until: Any = None
) -> pd.DataFrame:
    """Imported calls (``source_id``, ``stored_credits`` kept) from the store or a Parquet
    file written by :func:`import_gateway_usage`; ``since`` ≤ time < ``until``."""
    if isinstance(source, Engine):
        rows = read_usage_rows(source, since=since, until=until, imported_only=True)
        rows["time"] = pd.to_datetime(rows["time"], utc=True)
        stored = rows.pop("stored_credits")
        usage = validate_usage(rows)
        usage["stored_credits"] = _stored_series(stored.astype(object))
        return usage
    path = Path(source)
    if not path.is_file():
        raise ValidationError(f"imported usage not found: {path}", field="path")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"cannot read {path.name} as Parquet: {exc}", field="path") from None
    if "stored_credits" not in table.column_names or "source_id" not in table.column_names:
        raise ValidationError(
            f"{path.name} holds no imported calls (no source_id / stored_credits columns); "
            "write one with `python -m hubkit usage import SOURCE --to FILE.parquet`",
            field="path",
        )
    frame = table.to_pandas(types_mapper=_arrow_decimals)
    stored = frame.pop("stored_credits")
    usage = validate_usage(frame, source=path.name)
    usage["stored_credits"] = _stored_series(stored.reset_index(drop=True))
    times = usage["time"]
    keep = np.ones(len(usage), dtype=bool)
    if since is not None:
        keep &= (times >= _utc(since)).to_numpy()
    if until is not None:
        keep &= (times < _utc(until)).to_numpy()
    if not keep.all():
        usage = usage.loc[keep].reset_index(drop=True)
    return usage
