"""The bucketed Parquet usage dataset: stable user hash, layout, round trip, appends."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _scale_data import scale_usage

import hubkit.usage.dataset as usage_dataset
from hubkit.errors import ValidationError
from hubkit.usage import USAGE_COLUMNS, empty_usage
from hubkit.usage.dataset import (
    DATASET_SCHEMA,
    open_usage_dataset,
    user_bucket,
    write_usage_dataset,
)

TEXT = ["user", "app", "provider", "model", "type"]


@pytest.fixture(scope="module")
def usage() -> pd.DataFrame:
    return scale_usage(n_calls=6_000, n_users=120, seed=3)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(USAGE_COLUMNS)].astype({c: str for c in TEXT})
    for column in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                   "images"):  # fmt: skip
        out[column] = out[column].astype(np.int64)
    return out.sort_values(["user", "time", "model"], kind="stable").reset_index(drop=True)


def test_user_bucket_is_a_fixed_hash_the_same_for_every_input_form() -> None:
    # Pinned values: blake2b is the same everywhere, so a dataset written today is read
    # the same way by any later hubkit, Python or machine.
    names = ["user-000001", "user-000002", "did:abt:z1abc", "ünïcode"]
    pinned = user_bucket(names, 16)
    assert pinned.tolist() == [6, 11, 7, 3]
    assert user_bucket(pd.Series(names, dtype="category"), 16).tolist() == pinned.tolist()
    assert user_bucket(pd.Index(names), 16).tolist() == pinned.tolist()
    assert user_bucket(np.array(names, dtype=object), 16).tolist() == pinned.tolist()
    many = user_bucket([f"user-{i}" for i in range(40_000)], 8)
    assert many.min() == 0 and many.max() == 7
    # Roughly uniform: every bucket within 10 % of its fair share.
    assert np.abs(np.bincount(many) / 5_000 - 1).max() < 0.1
    assert user_bucket([], 4).size == 0


def test_user_bucket_refuses_bad_bucket_counts_and_missing_ids() -> None:
    for bad in (0, -1, 2.5, True, 100_000):
        with pytest.raises(ValidationError, match="n_buckets"):
            user_bucket(["a"], bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="missing"):
        user_bucket(pd.Series(["a", None], dtype="category"), 4)


def test_round_trip_in_chunks_keeps_every_call_and_the_schema(
    usage: pd.DataFrame, tmp_path: Path
) -> None:
    root = tmp_path / "usage"
    chunks = (usage.iloc[lo : lo + 2_500] for lo in range(0, len(usage), 2_500))
    dataset = write_usage_dataset(chunks, root, n_buckets=8)
    assert dataset.n_buckets == 8 and dataset.by_month
    assert dataset.rows() == len(usage)
    assert dataset.last_call() == usage["time"].max()
    assert dataset.months() == ["2025-01"]
    back = dataset.read_all()
    pd.testing.assert_frame_equal(_canonical(back), _canonical(usage))
    # Categoricals come back whatever dictionary each file holds.
    assert all(isinstance(back[c].dtype, pd.CategoricalDtype) for c in TEXT)
    for file in root.rglob("*.parquet"):
        assert pq.read_schema(file).remove_metadata().equals(DATASET_SCHEMA)
    meta = json.loads((root / "_hubkit_dataset.json").read_text())
    assert meta["n_buckets"] == 8 and meta["hash"].startswith("blake2b")


def test_every_user_lives_in_exactly_one_bucket(usage: pd.DataFrame, tmp_path: Path) -> None:
    dataset = write_usage_dataset(usage, tmp_path / "u", n_buckets=5)
    seen: dict[str, int] = {}
    total = 0
    for bucket, frame in dataset.iter_buckets():
        users = set(frame["user"].astype(str))
        assert set(user_bucket(sorted(users), 5)) == {bucket}
        assert not users & set(seen), "a user spans two buckets"
        seen |= dict.fromkeys(users, bucket)
        total += len(frame)
        assert dataset.rows(bucket) == len(frame)
        per_user = usage[usage["user"].astype(str).isin(users)]
        assert len(per_user) == len(frame)  # all of those users' calls, nothing else
    assert total == len(usage)
    assert set(seen) == set(usage["user"].astype(str))


def test_months_sub_partition_a_bucket(tmp_path: Path) -> None:
    usage = scale_usage(n_calls=3_000, n_users=40, seed=5)
    shifted = usage.copy()
    shifted["time"] = shifted["time"] + pd.Timedelta(days=31)  # the same users in February
    root = tmp_path / "m"
    dataset = write_usage_dataset(usage, root, n_buckets=3)
    dataset = write_usage_dataset(shifted, root, n_buckets=3, append=True)
    assert dataset.months() == ["2025-01", "2025-02"]
    assert dataset.rows() == 2 * len(usage)
    bucket = dataset.buckets()[0]
    jan = dataset.read_bucket(bucket, months=["2025-01"])
    both = dataset.read_bucket(bucket)
    assert len(both) == 2 * len(jan)
    assert (jan["time"] < pd.Timestamp("2025-02-01", tz="UTC")).all()
    folders = {p.parent.name for p in (root / f"bucket={bucket:05d}").rglob("*.parquet")}
    assert folders == {"month=2025-01", "month=2025-02"}


def test_without_months_one_folder_per_bucket(usage: pd.DataFrame, tmp_path: Path) -> None:
    dataset = write_usage_dataset(usage, tmp_path / "flat", n_buckets=4, by_month=False)
    assert dataset.months() == []
    files = list((tmp_path / "flat").rglob("*.parquet"))
    assert {f.parent.name for f in files} <= {f"bucket={b:05d}" for b in range(4)}
    assert dataset.rows() == len(usage)


def test_refusals_name_the_fix(usage: pd.DataFrame, tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_usage_dataset(usage.iloc[:100], root, n_buckets=4)
    with pytest.raises(ValidationError, match="append=True"):
        write_usage_dataset(usage.iloc[:100], root, n_buckets=4)
    with pytest.raises(ValidationError, match="same n_buckets"):
        write_usage_dataset(usage.iloc[:100], root, n_buckets=8, append=True)
    with pytest.raises(ValidationError, match="not a hubkit usage dataset"):
        open_usage_dataset(tmp_path)
    with pytest.raises(ValidationError, match="bucket must be within"):
        open_usage_dataset(root).read_bucket(4)
    bad = usage.iloc[:10].copy()
    bad.loc[3, "input_tokens"] = -1
    with pytest.raises(ValidationError, match="'input_tokens', row 4"):
        write_usage_dataset(bad, tmp_path / "bad", n_buckets=2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "_hubkit_dataset.json").write_text('{"format": "x"}')
    with pytest.raises(ValidationError, match="another format"):
        open_usage_dataset(tmp_path / "other")


def test_empty_dataset_reads_as_empty_usage(tmp_path: Path) -> None:
    dataset = write_usage_dataset(empty_usage(), tmp_path / "e", n_buckets=2)
    assert dataset.buckets() == [] and dataset.rows() == 0
    assert dataset.last_call() is None
    assert len(dataset.read_all()) == 0 and len(dataset.read_bucket(1)) == 0


def test_estimated_bytes_grows_with_the_bucket(usage: pd.DataFrame, tmp_path: Path) -> None:
    dataset = write_usage_dataset(usage, tmp_path / "s", n_buckets=4)
    sizes = {b: dataset.rows(b) for b in dataset.buckets()}
    big, small = max(sizes, key=sizes.get), min(sizes, key=sizes.get)  # type: ignore[arg-type]
    assert dataset.estimated_bytes(big) > dataset.estimated_bytes(small) > 0


def test_doctests() -> None:
    result = doctest.testmod(usage_dataset)
    assert result.attempted > 0 and result.failed == 0
