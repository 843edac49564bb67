"""Replay and scenario grid per user bucket: in this process, and on a 2-worker Dask cluster.

The reference is always the one-table pandas run (``replay`` / ``scenario_grid``); the
partitioned runs must give the same KPIs — counts exactly, amounts within the documented
float bound (``AMOUNT_RTOL``: only the order in which per-user amounts are added changes).
The three-path check (pandas, Dask, SQL) is here too, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from _billing_data import T0, rate
from _scale_data import (
    BILLING,
    KNOBS,
    PRICE,
    assert_frames_match,
    assert_kpis_match,
    close,
    history_timeline,
    scale_usage,
)
from distributed import Client, LocalCluster
from sqlalchemy import create_engine

from hubkit.billing_settings import BillingSettings
from hubkit.domain import RateType
from hubkit.errors import ValidationError
from hubkit.replay import Kpis, ReplayResult, replay
from hubkit.replay.aggregate import ROUNDING_PER_CALL, aggregate_usage_frame
from hubkit.replay.timeline import load_rate_timeline, timeline_from_rates
from hubkit.scenarios import scenario_grid
from hubkit.scenarios.partitioned import (
    AMOUNT_RTOL,
    replay_dask,
    replay_dataset,
    scenario_grid_dask,
    scenario_grid_dataset,
)
from hubkit.usage.dataset import UsageDataset, user_bucket, write_usage_dataset
from hubkit.usage.sql import aggregate_usage, load_usage, usage_totals

# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = pytest.mark.soak

D = Decimal
MARGINS = [None, D(0), D(35)]
PRICES = [D("0.001"), D("0.0025")]
GRID_OPTIONS = {"settings": BILLING, "behaviour": KNOBS, "grants": [D(0), D(3)]}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A LocalCluster of 2 single-threaded workers (threads: light on a 2-core box)."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address="127.0.0.1:0",  # HTTP on a free loopback port, not *:8787
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture(scope="module")
def timeline() -> pd.DataFrame:
    return history_timeline()


@pytest.fixture(scope="module")
def usage() -> pd.DataFrame:
    return scale_usage()


@pytest.fixture(scope="module")
def dataset(usage: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> UsageDataset:
    root = tmp_path_factory.mktemp("scale") / "usage"
    chunks = (usage.iloc[lo : lo + 7_000] for lo in range(0, len(usage), 7_000))
    return write_usage_dataset(chunks, root, n_buckets=6)


@pytest.fixture(scope="module")
def whole(usage: pd.DataFrame, timeline: pd.DataFrame) -> ReplayResult:
    return replay(usage, timeline, BILLING, credit_price=PRICE, behaviour=KNOBS)


def _same_replay(got: ReplayResult, want: ReplayResult) -> None:
    assert_kpis_match(got.kpis, want.kpis)
    # Balance-dependent outcomes really happen in this data (else the test proves little).
    assert want.kpis.calls_refused and want.kpis.packs and want.kpis.credits_expired
    assert want.kpis.calls_unsupported and want.kpis.calls_without_unit_costs
    users = got.users.drop(columns=["grant_expires", "first_seen"])
    assert_frames_match(users, want.users.drop(columns=["grant_expires", "first_seen"]), ["user"])
    keys = ["provider", "model", "type"]
    assert_frames_match(got.models[want.models.columns], want.models, keys)


def test_replay_of_a_dataset_bucket_by_bucket_is_the_whole_replay(
    dataset: UsageDataset, timeline: pd.DataFrame, whole: ReplayResult
) -> None:
    seen: list[tuple[int, int]] = []
    result = replay_dataset(
        dataset.root, timeline, BILLING, credit_price=PRICE, behaviour=KNOBS,
        on_bucket=lambda bucket, calls: seen.append((bucket, calls)),
    )  # fmt: skip
    _same_replay(result, whole)
    assert [b for b, _ in seen] == dataset.buckets()
    assert sum(n for _, n in seen) == whole.kpis.calls


def test_a_dataset_over_the_memory_budget_is_replayed_in_partitions(
    dataset: UsageDataset, timeline: pd.DataFrame, whole: ReplayResult
) -> None:
    per_bucket = [dataset.estimated_bytes(b) for b in dataset.buckets()]
    budget = max(per_bucket) + 1
    assert sum(per_bucket) > 3 * budget  # the whole would not fit the budget
    seen: list[int] = []
    result = replay_dataset(
        dataset, timeline, BILLING, credit_price=PRICE, behaviour=KNOBS,
        memory_budget=budget, on_bucket=lambda _, calls: seen.append(calls),
    )  # fmt: skip
    assert len(seen) == len(per_bucket) and max(seen) < whole.kpis.calls / 3
    assert_kpis_match(result.kpis, whole.kpis)
    with pytest.raises(ValidationError, match=r"memory budget.*n_buckets ≥ \d+") as info:
        replay_dataset(dataset, timeline, BILLING, memory_budget=budget // 4)
    assert info.value.field == "memory_budget"


def test_replay_on_dask_from_a_dataset_a_dask_frame_and_an_address(
    client: Client,
    dataset: UsageDataset,
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    whole: ReplayResult,
) -> None:
    assert len(client.scheduler_info()["workers"]) == 2
    from_path = replay_dask(
        str(dataset.root), timeline, BILLING, credit_price=PRICE, behaviour=KNOBS, cluster=client
    )
    _same_replay(from_path, whole)
    frame = dd.from_pandas(usage, npartitions=4)
    from_frame = replay_dask(
        frame, timeline, BILLING, credit_price=PRICE, behaviour=KNOBS,
        cluster=client.scheduler.address, n_buckets=5,
    )  # fmt: skip
    _same_replay(from_frame, whole)
    with pytest.raises(ValidationError, match="totals only"):
        from_frame.calls()


def test_replay_on_a_local_cluster_started_for_the_call(
    usage: pd.DataFrame, timeline: pd.DataFrame, whole: ReplayResult
) -> None:
    # cluster=None: 2 worker processes, so everything crosses a process boundary (pickled).
    result = replay_dask(usage, timeline, BILLING, credit_price=PRICE, behaviour=KNOBS)
    _same_replay(result, whole)


def test_grid_on_dask_and_by_bucket_is_the_whole_grid(
    client: Client, dataset: UsageDataset, usage: pd.DataFrame, timeline: pd.DataFrame
) -> None:
    want = scenario_grid(usage, timeline, MARGINS, PRICES, **GRID_OPTIONS)
    assert len(want) == len(MARGINS) * len(PRICES) * 2
    assert want["calls_refused"].max() > 0 and want["packs"].max() > 0
    by_bucket = scenario_grid_dataset(dataset, timeline, MARGINS, PRICES, **GRID_OPTIONS)
    on_dask = scenario_grid_dask(
        dataset.root, timeline, MARGINS, PRICES, cluster=client, **GRID_OPTIONS
    )
    from_frame = scenario_grid_dask(
        dd.from_pandas(usage, npartitions=3), timeline, MARGINS, PRICES, cluster=client,
        **GRID_OPTIONS,
    )  # fmt: skip
    for got in (by_bucket, on_dask, from_frame):
        _same_grid(got, want)


def _same_grid(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for column in want.columns:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        if want[column].dtype.kind == "f":
            assert np.allclose(a, b, rtol=AMOUNT_RTOL, atol=1e-12, equal_nan=True), column
        else:
            assert (pd.Series(a).fillna(-1) == pd.Series(b).fillna(-1)).all(), column


def test_models_below_cost_counts_models_used_in_any_bucket(client: Client, tmp_path: Path) -> None:
    # Two models sold below cost at a credit price of 0.01, each used by one user only, in
    # different buckets: no bucket sees both, the combined grid must count 2.
    cost = ("0.0001", "0.0001")
    rates = [
        rate(1, "openai", "a", RateType.CHAT_COMPLETION, "0.001", "0.001", costs=cost),
        rate(2, "openai", "b", RateType.CHAT_COMPLETION, "0.001", "0.001", costs=cost),
        rate(3, "openai", "c", RateType.CHAT_COMPLETION, "0.5", "0.5", costs=cost),
    ]
    names = [f"u{i}" for i in range(200)]
    buckets = user_bucket(names, 4)
    first, second = (
        names[int(np.flatnonzero(buckets == 0)[0])],
        names[int(np.flatnonzero(buckets == 1)[0])],
    )
    users = [first, second, first, second, "u-other"]
    models = ["a", "b", "c", "c", "c"]
    usage = pd.DataFrame(
        {
            "time": [T0 + pd.Timedelta(hours=h) for h in range(5)],
            "user": users, "provider": "openai", "model": models, "type": "chatCompletion",
            "input_tokens": 10, "output_tokens": 5,
        }
    )  # fmt: skip
    timeline = timeline_from_rates(rates)
    margins, prices = [None], [D("0.01")]
    want = scenario_grid(usage, timeline, margins, prices, settings=BillingSettings())
    assert want["models_below_cost"].tolist() == [2]
    alone = [
        scenario_grid(usage[usage["user"] == name], timeline, margins, prices,
                      settings=BillingSettings())["models_below_cost"].iloc[0]
        for name in (first, second)
    ]  # fmt: skip
    assert alone == [1, 1]  # what the largest bucket alone would say
    root = tmp_path / "two"
    write_usage_dataset(usage, root, n_buckets=4)
    got = scenario_grid_dask(
        root, timeline, margins, prices, cluster=client, settings=BillingSettings()
    )
    assert got["models_below_cost"].tolist() == [2]
    _same_grid(got, want)


def test_pandas_dask_and_sql_agree_on_the_balance_independent_kpis(
    client: Client,
    db_url: str,
    dataset: UsageDataset,
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
) -> None:
    """The three paths on the same data: counts exactly, amounts within the stated bounds.

    With billing off every supported call is served, so the replay's credits_used and
    provider_cost are the list-price sums the SQL computes.
    """
    off = BillingSettings()
    pandas_kpis = replay(usage, timeline, off).kpis
    dask_kpis = replay_dask(dataset.root, timeline, off, cluster=client).kpis
    assert_kpis_match(dask_kpis, pandas_kpis)
    engine = create_engine(db_url)
    try:
        load_usage(engine, usage)
        load_rate_timeline(engine, timeline)
        totals = usage_totals(engine)
        by = ["model", "day", "user"]
        in_db = aggregate_usage(engine, by)
    finally:
        engine.dispose()
    for name in ("calls", "calls_unsupported", "users", "calls_without_unit_costs"):
        assert getattr(totals, name) == getattr(pandas_kpis, name) == getattr(dask_kpis, name)
    # Float path (no per-call rounding) vs SQL's per-call ROUND(x, 10): 1e-9 relative plus
    # half a unit of the 10th place per call.
    slack = ROUNDING_PER_CALL * pandas_kpis.calls
    for got in (pandas_kpis, dask_kpis):
        assert abs(float(totals.credits) - got.credits_used) <= (
            AMOUNT_RTOL * got.credits_used + slack
        )
        assert close(float(totals.provider_cost), got.provider_cost)
    in_memory = aggregate_usage_frame(usage, timeline, by)
    assert len(in_db) == len(in_memory)
    db = in_db.assign(
        credits=in_db["credits"].astype(float), provider_cost=in_db["provider_cost"].astype(float)
    )
    assert_frames_match(db.drop(columns=["credits"]), in_memory.drop(columns=["credits"]), by)
    merged = db.merge(in_memory, on=by, suffixes=("_db", "_mem"))
    gap = np.abs(merged["credits_db"] - merged["credits_mem"])
    assert (
        gap <= AMOUNT_RTOL * merged["credits_mem"] + ROUNDING_PER_CALL * merged["calls_db"]
    ).all()


def test_refusals(timeline: pd.DataFrame, client: Client) -> None:
    with pytest.raises(ValidationError, match="dataset path"):
        replay_dask([1, 2, 3], timeline, cluster=client)
    with pytest.raises(ValidationError, match="not a hubkit usage dataset"):
        replay_dask("/nonexistent/usage", timeline, cluster=client)
    # Grid arguments are checked before any work is sent (a typo must not reach a worker).
    with pytest.raises(ValidationError, match="unknown grid option"):
        scenario_grid_dask("/nonexistent", timeline, [None], [PRICE], grant=[D(1)])
    with pytest.raises(ValidationError, match="(?i)margin"):
        scenario_grid_dask("/nonexistent", timeline, [D(-5)], [PRICE])
    with pytest.raises(ValidationError, match="(?i)credit"):
        scenario_grid_dataset("/nonexistent", timeline, [None], [D(0)])


def test_an_empty_dataset_replays_to_zero(timeline: pd.DataFrame, tmp_path: Path) -> None:
    from hubkit.usage import empty_usage

    root = tmp_path / "empty"
    write_usage_dataset(empty_usage(), root, n_buckets=2)
    result = replay_dataset(root, timeline, BILLING)
    assert result.kpis == Kpis() and len(result.users) == 0
    with pytest.raises(ValidationError, match="no call"):
        scenario_grid_dataset(root, timeline, [None], [PRICE], settings=BILLING)
