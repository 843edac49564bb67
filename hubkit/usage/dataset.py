"""Usage as a partitioned Parquet dataset: bucketed by a hash of the user, then by month.

A gateway that logs hundreds of millions of calls cannot hold them in one DataFrame, but
the replay only ever needs *all the calls of a set of users* at once (a user's ledger runs
over their own calls). So the dataset is partitioned first by a user-hash bucket — every
call of a user, in every month, lands in the same bucket — and each bucket is replayed on
its own (:mod:`hubkit.scenarios.partitioned`). Months may sub-partition a bucket, so that appending
a new month writes new files and never rewrites old ones.

Layout (hive style, so pyarrow, Dask, DuckDB and Spark read it as is)::

    root/
      _hubkit_dataset.json                 n_buckets, month partitioning, hash, version
      bucket=00007/month=2025-01/part-<chunk>-<uuid>.parquet
      ...

The bucket of a user is ``blake2b(user id, 8 bytes) mod n_buckets`` (:func:`user_bucket`):
a standard hash, the same in every Python, process and library version (Python's own
``hash`` is salted per process; pandas' hash is an implementation detail).

Every file has the same Arrow schema (:data:`DATASET_SCHEMA`): text columns as
dictionary<int32, string> (they read back as pandas categoricals, whatever dictionary each
file holds), counts as int64, ``seconds`` as float64, ``time`` as UTC nanoseconds.

>>> user_bucket(["user-000001", "user-000002"], 16).tolist()
[6, 11]
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hubkit.errors import ValidationError
from hubkit.usage.schema import (
    COUNT_COLUMNS,
    TEXT_COLUMNS,
    USAGE_COLUMNS,
    empty_usage,
    validate_usage,
)

__all__ = [
    "DATASET_SCHEMA",
    "DEFAULT_BUCKETS",
    "UsageDataset",
    "open_usage_dataset",
    "user_bucket",
    "write_usage_dataset",
]

DEFAULT_BUCKETS = 16
_META_FILE = "_hubkit_dataset.json"
_FORMAT_VERSION = 1
_HASH = "blake2b-64-le mod n"
_TEXT_TYPE = pa.dictionary(pa.int32(), pa.string())

#: The one Arrow schema of every file of a usage dataset.
DATASET_SCHEMA = pa.schema(
    [pa.field("time", pa.timestamp("ns", tz="UTC"), nullable=False)]
    + [pa.field(c, _TEXT_TYPE, nullable=False) for c in TEXT_COLUMNS]
    + [pa.field(c, pa.int64(), nullable=False) for c in COUNT_COLUMNS]
    + [pa.field("seconds", pa.float64(), nullable=False)]
)

# Bytes one row takes in memory once read (int32 category codes, int64 counts, float64
# seconds, int64 time) plus the replay's own per-call arrays (sort order, rate row, key,
# credits, cost, ledger temporaries): measured ~3.5× the table with benchmarks/bench_memory.py.
_TABLE_BYTES_PER_ROW = 8 + 4 * len(TEXT_COLUMNS) + 8 * len(COUNT_COLUMNS) + 8
_REPLAY_FACTOR = 3.5


def _hash64(name: str) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def user_bucket(users: Sequence[str] | pd.Series | pd.Index, n_buckets: int) -> np.ndarray:
    """The bucket (0 … n_buckets − 1) of every user id, stable everywhere (blake2b).

    Hashes each *distinct* id once (a categorical column hashes only its categories).
    """
    _check_buckets(n_buckets)
    if isinstance(users, pd.Series | pd.Index) and isinstance(users.dtype, pd.CategoricalDtype):
        cat = pd.Categorical(users)
        codes, names = np.asarray(cat.codes), [str(c) for c in cat.categories]
    else:
        codes, uniques = pd.factorize(np.asarray(users, dtype=object))
        names = [str(u) for u in uniques]
    if (codes < 0).any():
        raise ValidationError("user ids must not be missing", field="user")
    per_name = np.array([_hash64(n) % n_buckets for n in names], dtype=np.int32)
    return per_name[codes] if per_name.size else np.zeros(len(codes), dtype=np.int32)


def _check_buckets(n_buckets: int) -> None:
    if (
        not isinstance(n_buckets, int)
        or isinstance(n_buckets, bool)
        or not 1 <= n_buckets <= 99_999
    ):
        raise ValidationError(
            f"n_buckets must be a whole number within 1..99999, got {n_buckets!r}",
            field="n_buckets",
            value=n_buckets,
        )


def _bucket_dir(bucket: int) -> str:
    return f"bucket={bucket:05d}"


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A validated usage frame as a table of :data:`DATASET_SCHEMA` (categoricals kept)."""
    arrays = [pa.array(frame["time"].to_numpy(dtype="datetime64[ns]"), pa.timestamp("ns"))]
    arrays[0] = arrays[0].cast(pa.timestamp("ns", tz="UTC"))
    for column in TEXT_COLUMNS:
        series = frame[column]  # categorical after validate_usage
        codes = pa.array(series.cat.codes.to_numpy().astype(np.int32, copy=False))
        names = pa.array([str(c) for c in series.cat.categories], pa.string())
        arrays.append(pa.DictionaryArray.from_arrays(codes, names))
    for column in COUNT_COLUMNS:
        arrays.append(pa.array(frame[column].to_numpy().astype(np.int64, copy=False)))
    arrays.append(pa.array(frame["seconds"].to_numpy(dtype=np.float64)))
    return pa.Table.from_arrays(arrays, schema=DATASET_SCHEMA)


def _months(time: pd.Series) -> np.ndarray:
    """Month index (months since 1970-01) of every call, from UTC nanoseconds."""
    ns = time.to_numpy(dtype="datetime64[ns]")
    return ns.astype("datetime64[M]").astype(np.int64)


def _month_name(month: int) -> str:
    return str(np.datetime64(int(month), "M"))


def write_usage_dataset(
    usage: pd.DataFrame | Iterable[pd.DataFrame],
    root: str | Path,
    *,
    n_buckets: int = DEFAULT_BUCKETS,
    by_month: bool = True,
    append: bool = False,
    compression: str = "zstd",
) -> UsageDataset:
    """Write usage (one frame, or an iterable of chunks) as a bucketed Parquet dataset.

    Each chunk is validated, split by user bucket (and month) and written as new files, so
    memory stays at one chunk however large the dataset: generate or read the calls chunk
    by chunk and pass a generator. ``append=True`` adds to an existing dataset (its own
    bucket count and month setting must match); otherwise ``root`` must be empty or absent.
    Returns the opened dataset.
    """
    _check_buckets(n_buckets)
    folder = Path(root)
    meta = folder / _META_FILE
    if append and meta.exists():
        existing = open_usage_dataset(folder)
        if existing.n_buckets != n_buckets or existing.by_month != by_month:
            raise ValidationError(
                f"{folder} has {existing.n_buckets} buckets (by_month={existing.by_month}); "
                f"append with the same n_buckets and by_month",
                field="n_buckets",
            )
    elif folder.exists() and any(folder.iterdir()):
        raise ValidationError(
            f"{folder} is not empty: write a dataset into a new folder, or pass append=True",
            field="root",
        )
    folder.mkdir(parents=True, exist_ok=True)
    meta.write_text(
        json.dumps(
            {
                "format": "hubkit-usage-dataset",
                "version": _FORMAT_VERSION,
                "n_buckets": n_buckets,
                "by_month": by_month,
                "hash": _HASH,
            },
            indent=2,
        )
        + "\n"
    )
    chunks = [usage] if isinstance(usage, pd.DataFrame) else usage
    for chunk in chunks:
        _write_chunk(chunk, folder, n_buckets, by_month, compression)
    return open_usage_dataset(folder)


def _write_chunk(
    chunk: pd.DataFrame, folder: Path, n_buckets: int, by_month: bool, compression: str
) -> None:
    frame = validate_usage(chunk)[list(USAGE_COLUMNS)]
    if not len(frame):
        return
    bucket = user_bucket(frame["user"], n_buckets).astype(np.int64)
    month = _months(frame["time"]) if by_month else np.zeros(len(frame), dtype=np.int64)
    # One stable sort by (bucket, month) keeps each piece in the chunk's time order.
    group = bucket * (month.max() - month.min() + 1) + (month - month.min())
    order = np.argsort(group, kind="stable")
    edges = np.flatnonzero(np.diff(group[order])) + 1
    table = _to_arrow(frame)
    tag = uuid.uuid4().hex[:12]  # unique per chunk: appends never overwrite a file
    for piece in np.split(order, edges):
        first = int(piece[0])
        where = folder / _bucket_dir(int(bucket[first]))
        if by_month:
            where = where / f"month={_month_name(int(month[first]))}"
        where.mkdir(parents=True, exist_ok=True)
        part = table.take(pa.array(piece))
        # Pieces are written unified so that each file carries a small dictionary.
        pq.write_table(
            part.unify_dictionaries().combine_chunks(),
            where / f"part-{tag}.parquet",
            compression=compression,
        )


@dataclass(frozen=True)
class UsageDataset:
    """An opened usage dataset: which buckets exist and how to read one."""

    root: Path
    n_buckets: int
    by_month: bool

    def files(self, bucket: int, months: Iterable[str] | None = None) -> list[Path]:
        """Parquet files of one bucket (optionally only some months, ``"2025-01"``)."""
        if not 0 <= bucket < self.n_buckets:
            raise ValidationError(
                f"bucket must be within 0..{self.n_buckets - 1}, got {bucket!r}", field="bucket"
            )
        folder = self.root / _bucket_dir(bucket)
        if not folder.is_dir():
            return []
        found = sorted(folder.rglob("*.parquet"))
        if months is not None:
            wanted = {f"month={m}" for m in months}
            found = [f for f in found if f.parent.name in wanted]
        return found

    def buckets(self) -> list[int]:
        """Buckets holding at least one file, in order."""
        return [b for b in range(self.n_buckets) if self.files(b)]

    def months(self) -> list[str]:
        """Months present (``YYYY-MM``), when the dataset is partitioned by month."""
        if not self.by_month:
            return []
        return sorted({p.name.split("=", 1)[1] for p in self.root.glob("bucket=*/month=*")})

    def rows(self, bucket: int | None = None) -> int:
        """Calls in one bucket (or all), from the Parquet footers: nothing is read."""
        picked = [bucket] if bucket is not None else range(self.n_buckets)
        return sum(pq.ParquetFile(f).metadata.num_rows for b in picked for f in self.files(b))

    def estimated_bytes(self, bucket: int | None = None) -> int:
        """Rough peak memory of replaying one bucket (or the whole dataset as one table)."""
        return int(self.rows(bucket) * _TABLE_BYTES_PER_ROW * _REPLAY_FACTOR)

    def last_call(self) -> pd.Timestamp | None:
        """Time of the latest call, from the Parquet column statistics (None if empty)."""
        latest: int | None = None
        for bucket in range(self.n_buckets):
            for file in self.files(bucket):
                meta = pq.ParquetFile(file).metadata
                index = meta.schema.to_arrow_schema().get_field_index("time")
                for group in range(meta.num_row_groups):
                    stats = meta.row_group(group).column(index).statistics
                    if stats is None or not stats.has_min_max:
                        return self._scan_last_call()
                    value = pd.Timestamp(stats.max).value
                    latest = value if latest is None else max(latest, value)
        return None if latest is None else pd.Timestamp(latest, tz="UTC")

    def _scan_last_call(self) -> pd.Timestamp | None:
        latest = None
        for bucket in self.buckets():
            times = pq.read_table(self.files(bucket), columns=["time"]).column("time")
            value = pd.Timestamp(pc.max(times).as_py())
            latest = value if latest is None else max(latest, value)
        return latest

    def read_bucket(
        self, bucket: int, *, months: Iterable[str] | None = None, validate: bool = True
    ) -> pd.DataFrame:
        """All calls of one bucket as a usage frame (every call of its users)."""
        files = self.files(bucket, months)
        if not files:
            return empty_usage()
        table = pq.read_table(files, schema=DATASET_SCHEMA)
        # Files carry their own dictionaries; unify once so pandas gets one categorical.
        frame = table.unify_dictionaries().to_pandas(self_destruct=True, split_blocks=True)
        frame["time"] = frame["time"].astype("datetime64[ns, UTC]")
        return validate_usage(frame) if validate else frame

    def iter_buckets(
        self, *, months: Iterable[str] | None = None
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """(bucket, frame) for every non-empty bucket, one in memory at a time."""
        month_list = list(months) if months is not None else None
        for bucket in self.buckets():
            frame = self.read_bucket(bucket, months=month_list)
            if len(frame):
                yield bucket, frame

    def read_all(self) -> pd.DataFrame:
        """The whole dataset in memory (small datasets, tests)."""
        frames = [frame for _, frame in self.iter_buckets()]
        if not frames:
            return empty_usage()
        return validate_usage(pd.concat(frames, ignore_index=True))


def open_usage_dataset(root: str | Path) -> UsageDataset:
    """Open a dataset written by :func:`write_usage_dataset` (reads its small JSON file)."""
    folder = Path(root)
    meta = folder / _META_FILE
    if not meta.is_file():
        raise ValidationError(
            f"{folder} is not a hubkit usage dataset (no {_META_FILE}); write one with "
            "write_usage_dataset()",
            field="root",
        )
    try:
        info: dict[str, Any] = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{meta} is not valid JSON: {exc}", field="root") from None
    if info.get("format") != "hubkit-usage-dataset" or info.get("hash") != _HASH:
        raise ValidationError(
            f"{meta} describes another format or hash ({info.get('format')!r}, "
            f"{info.get('hash')!r}); this hubkit writes {_HASH!r}",
            field="root",
        )
    if int(info.get("version", 0)) > _FORMAT_VERSION:
        raise ValidationError(
            f"{folder} was written by a newer hubkit (format {info['version']}): upgrade hubkit",
            field="root",
        )
    n_buckets = int(info["n_buckets"])
    _check_buckets(n_buckets)
    return UsageDataset(root=folder, n_buckets=n_buckets, by_month=bool(info["by_month"]))
