"""Replay and scenario grid beyond one table: bucket by bucket, or on a Dask cluster.

The replay and the grid need all the calls of a user at once and nothing across users, so
usage is cut by user hash (:func:`hubkit.usage.dataset.user_bucket`) and every piece runs
the *pandas* code path unchanged — :func:`hubkit.replay.prepare` +
:func:`hubkit.replay.replay_partition`, or :func:`hubkit.scenarios.scenario_grid` on a
:class:`~hubkit.scenarios.ScenarioBase` of the piece — then the pieces are added with
:func:`hubkit.replay.combine_results` / :func:`hubkit.scenarios.combine_grids`. Nothing
here prices a call or settles a ledger itself.

Three ways to run it, one per scale:

- :func:`replay_dataset` / :func:`scenario_grid_dataset`: a Parquet dataset
  (:mod:`hubkit.usage.dataset`) in this process, one bucket in memory at a time;
- :func:`replay_dask` / :func:`scenario_grid_dask`: the same work on Dask workers, from a
  dataset path (each worker reads its own buckets) or a ``dask.dataframe`` (shuffled by
  user bucket first).

``cluster`` is a :class:`distributed.Client`, a scheduler address (``"tcp://host:8786"``,
an existing cluster: workers must reach the dataset path, e.g. a shared disk or S3) or
None for a local cluster of 2 single-threaded worker processes, closed afterwards.

Exactness: a user never spans two pieces, so every per-user amount is computed by the same
code on the same calls, bit for bit; only the order in which per-user amounts are added
changes. Counts are integers and add exactly. Amounts (all non-negative sums of float64)
differ from the one-table replay by at most ``(n − 1)·2⁻⁵³`` relative for n addends —
under 1e-9 relative for up to 9 million users — and in practice by a few ulps
(``AMOUNT_RTOL``).

Dask is an optional extra (``pip install 'hubkit[scale]'``): it is imported when used.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from hubkit.billing_settings import BillingSettings
from hubkit.errors import ValidationError
from hubkit.pricing.rules import RateFilter, validate_credit_price, validate_margin
from hubkit.replay.engine import ReplayResult, combine_results, prepare, replay_partition
from hubkit.replay.inputs import Behaviour
from hubkit.replay.timeline import RateBook, timeline_from_rates
from hubkit.scenarios.grid import combine_grids, scenario_grid
from hubkit.scenarios.scenario import ScenarioBase
from hubkit.usage.dataset import UsageDataset, open_usage_dataset, user_bucket
from hubkit.usage.schema import empty_usage

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from hubkit.domain import Rate

    #: What the Dask functions accept as usage.
    UsageSource = str | Path | UsageDataset | pd.DataFrame | dd.DataFrame

_Job = TypeVar("_Job", "_ReplayJob", "_GridJob")
_GRID_OPTIONS = frozenset({"grants", "expiry", "packs", "settings", "behaviour"})

__all__ = [
    "AMOUNT_RTOL",
    "dask_client",
    "replay_dask",
    "replay_dataset",
    "scenario_grid_dask",
    "scenario_grid_dataset",
]

#: Relative bound between amounts of a partitioned and a one-table run (module docstring).
AMOUNT_RTOL = 1e-9
_BUCKET_COLUMN = "_hubkit_bucket"


def _as_ns(value: Any) -> int:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


# -- the per-piece work: the pandas code path, nothing else ------------------------------
@dataclass(frozen=True, eq=False)
class _ReplayJob:
    book: RateBook
    settings: BillingSettings
    credit_price: Decimal
    behaviour: Behaviour
    as_of_ns: int

    def run(self, frame: pd.DataFrame) -> ReplayResult | None:
        return self.replay(frame) if len(frame) else None

    def replay(self, frame: pd.DataFrame) -> ReplayResult:
        prepared = prepare(frame, self.book, as_of=pd.Timestamp(self.as_of_ns, tz="UTC"))
        result = replay_partition(
            prepared, self.settings, credit_price=self.credit_price, behaviour=self.behaviour
        )
        # Per-call arrays stay on the worker: only totals travel and get combined.
        return dataclasses.replace(
            result, prepared=None, user_calls=None, policy=None, payment_events=None
        )


@dataclass(frozen=True, eq=False)
class _GridJob:
    timeline: pd.DataFrame
    margins: tuple[Any, ...]
    prices: tuple[Any, ...]
    options: dict[str, Any]  # grants, expiry, packs, settings, behaviour
    base_credit_price: Any
    rate_filter: RateFilter | None
    as_of_ns: int

    def run(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, set[tuple[str, str, str]]] | None:
        if not len(frame):
            return None
        base = ScenarioBase.build(
            frame,
            self.timeline,
            base_credit_price=self.base_credit_price,
            rate_filter=self.rate_filter,
            as_of=pd.Timestamp(self.as_of_ns, tz="UTC"),
        )
        grid = scenario_grid(base, None, self.margins, self.prices, **self.options)
        used = np.unique(base.prepared.key)
        return grid, {base.book.keys[k] for k in used}

    def combine(
        self, parts: list[tuple[pd.DataFrame, set[tuple[str, str, str]]] | None]
    ) -> pd.DataFrame:
        done = [p for p in parts if p is not None]
        if not done:
            raise ValidationError("the usage holds no call: nothing to build a grid from")
        grid = combine_grids(p[0] for p in done)
        # Which models are below cost / rounded depends on the models used anywhere, not in
        # the largest piece: recompute those two columns over the union, with one call per
        # used model through the same grid code (a few rows: instant).
        used = set().union(*(p[1] for p in done))
        if used:
            probe = self.run(_one_call_per_key(sorted(used), self.as_of_ns))
            assert probe is not None
            for column in ("models_below_cost", "rate_rounding"):
                grid[column] = probe[0][column].to_numpy()
        return grid


def _one_call_per_key(keys: list[tuple[str, str, str]], as_of_ns: int) -> pd.DataFrame:
    frame = empty_usage().reindex(range(len(keys)))
    frame["time"] = pd.Timestamp(as_of_ns, tz="UTC")
    frame["user"], frame["app"] = "probe", ""
    frame["provider"] = [k[0] for k in keys]
    frame["model"] = [k[1] for k in keys]
    frame["type"] = [k[2] for k in keys]
    for column in frame.columns[6:]:
        frame[column] = 0
    return frame


def _combine_replays(job: _ReplayJob, parts: Iterable[ReplayResult | None]) -> ReplayResult:
    done = [p for p in parts if p is not None]
    return combine_results(done) if done else job.replay(empty_usage())


def _timeline(rates: pd.DataFrame | RateBook | Iterable[Rate]) -> pd.DataFrame:
    if isinstance(rates, RateBook):
        return rates.timeline
    if isinstance(rates, pd.DataFrame):
        return rates
    return timeline_from_rates(rates)


def _replay_job(
    rates: Any,
    settings: BillingSettings | None,
    credit_price: Any,
    behaviour: Behaviour | None,
    as_of_ns: int,
) -> _ReplayJob:
    return _ReplayJob(
        book=rates if isinstance(rates, RateBook) else RateBook(_timeline(rates)),
        settings=settings if settings is not None else BillingSettings.from_env(),
        credit_price=validate_credit_price(credit_price),
        behaviour=behaviour or Behaviour(),
        as_of_ns=as_of_ns,
    )


def _grid_job(
    rates: Any,
    margins: Iterable[Any],
    credit_prices: Iterable[Any],
    options: dict[str, Any],
    base_credit_price: Any,
    rate_filter: RateFilter | None,
    as_of_ns: int,
) -> _GridJob:
    unknown = sorted(set(options) - _GRID_OPTIONS)
    if unknown:
        raise ValidationError(
            f"unknown grid option(s) {unknown}; known: {sorted(_GRID_OPTIONS)}", field=unknown[0]
        )
    # Refuse bad margins / prices here, not in a worker's traceback.
    margins, credit_prices = tuple(margins), tuple(credit_prices)
    for margin in margins:
        if margin is not None:
            validate_margin(margin)
    for price in credit_prices:
        validate_credit_price(price)
    opts = dict(options)
    for name in ("grants", "expiry", "packs"):
        if opts.get(name) is not None:
            opts[name] = tuple(opts[name])
    if opts.get("settings") is None:
        opts["settings"] = BillingSettings.from_env()  # read here, not in a worker's env
    return _GridJob(
        timeline=_timeline(rates),
        margins=margins,
        prices=credit_prices,
        options=opts,
        base_credit_price=base_credit_price,
        rate_filter=rate_filter,
        as_of_ns=as_of_ns,
    )


# -- a dataset, bucket by bucket, in this process ----------------------------------------
def _dataset(source: str | Path | UsageDataset) -> UsageDataset:
    return source if isinstance(source, UsageDataset) else open_usage_dataset(source)


def _dataset_as_of(dataset: UsageDataset, as_of: Any) -> int:
    if as_of is not None:
        return _as_ns(as_of)
    last = dataset.last_call()
    return 0 if last is None else int(last.value)


def _check_budget(dataset: UsageDataset, memory_budget: int | None) -> None:
    if memory_budget is None:
        return
    for bucket in dataset.buckets():
        need = dataset.estimated_bytes(bucket)
        if need > memory_budget:
            factor = int(np.ceil(need / memory_budget))
            raise ValidationError(
                f"bucket {bucket} of {dataset.root} needs about {need / 2**20:,.0f} MiB to "
                f"replay, over the memory budget of {memory_budget / 2**20:,.0f} MiB: rewrite "
                f"the dataset with n_buckets ≥ {dataset.n_buckets * factor}",
                field="memory_budget",
                value=memory_budget,
            )


def _each_bucket(
    dataset: UsageDataset,
    work: Callable[[pd.DataFrame], Any],
    memory_budget: int | None,
    on_bucket: Callable[[int, int], None] | None,
) -> Iterator[Any]:
    _check_budget(dataset, memory_budget)
    for bucket, frame in dataset.iter_buckets():
        if on_bucket is not None:
            on_bucket(bucket, len(frame))
        yield work(frame)
        del frame  # one bucket in memory at a time


def replay_dataset(
    dataset: str | Path | UsageDataset,
    rates: pd.DataFrame | RateBook | Iterable[Any],
    settings: BillingSettings | None = None,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    as_of: Any = None,
    memory_budget: int | None = None,
    on_bucket: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """:func:`hubkit.replay.replay` of a Parquet dataset, one bucket in memory at a time.

    ``as_of`` defaults to the dataset's last call (the same for every bucket).
    ``memory_budget`` (bytes): refuse up front when one bucket would need more (the
    message says how many buckets to write instead). ``on_bucket(bucket, calls)`` is
    called before each bucket is replayed. The result holds totals (no per-call detail).
    """
    job = _replay_job(rates, settings, credit_price, behaviour, 0)  # arguments checked first
    data = _dataset(dataset)
    job = dataclasses.replace(job, as_of_ns=_dataset_as_of(data, as_of))
    return _combine_replays(job, _each_bucket(data, job.run, memory_budget, on_bucket))


def scenario_grid_dataset(
    dataset: str | Path | UsageDataset,
    rates: pd.DataFrame | RateBook | Iterable[Any],
    margins: Iterable[Any],
    credit_prices: Iterable[Any],
    *,
    base_credit_price: Any = 1,
    rate_filter: RateFilter | None = None,
    as_of: Any = None,
    memory_budget: int | None = None,
    on_bucket: Callable[[int, int], None] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`hubkit.scenarios.scenario_grid` of a dataset, bucket by bucket.

    ``options``: ``grants``, ``expiry``, ``packs``, ``settings``, ``behaviour`` as for
    :func:`~hubkit.scenarios.scenario_grid`.
    """
    job = _grid_job(rates, margins, credit_prices, options, base_credit_price, rate_filter, 0)
    data = _dataset(dataset)
    job = dataclasses.replace(job, as_of_ns=_dataset_as_of(data, as_of))
    return job.combine(list(_each_bucket(data, job.run, memory_budget, on_bucket)))


# -- on Dask ---------------------------------------------------------------------------
@contextmanager
def dask_client(
    cluster: Client | str | None = None,
    *,
    n_workers: int = 2,
    processes: bool = True,
    memory_limit: str | int = "auto",
) -> Iterator[Client]:
    """A :class:`distributed.Client` for ``cluster`` (see the module docstring).

    With ``cluster=None`` a :class:`distributed.LocalCluster` of ``n_workers``
    single-threaded workers is started (processes by default: the replay holds the GIL in
    places) and closed on exit; a Client passed in is used as is and left open.
    """
    # deferred: dask/distributed are the optional `scale` extra, loaded only for a Dask run
    from distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        yield cluster
        return
    if cluster is not None:
        with Client(str(cluster)) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            memory_limit=memory_limit,
            # The scheduler always serves HTTP (health, metrics), by default on *:8787 and
            # with a warning when that is taken: a free port on loopback instead.
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
            host="127.0.0.1",  # workers and scheduler on loopback only
        ) as local,
        Client(local) as client,
    ):
        yield client


def _bucket_of(users: pd.Series, n_buckets: int) -> pd.Series:
    return pd.Series(user_bucket(users, n_buckets), index=users.index, name=_BUCKET_COLUMN)


def _run_frame(job: _ReplayJob | _GridJob, frame: pd.DataFrame) -> Any:
    return job.run(frame.drop(columns=[_BUCKET_COLUMN], errors="ignore"))


def _run_bucket(job: _ReplayJob | _GridJob, dataset: UsageDataset, bucket: int) -> Any:
    return job.run(dataset.read_bucket(bucket))


def _on_dask(
    usage: UsageSource, client: Client, job_for: Callable[[int], _Job], as_of: Any,
    n_buckets: int | None,
) -> tuple[_Job, list[Any]]:  # fmt: skip
    """Run ``job_for(as_of_ns).run`` on every user bucket of ``usage``: (job, results)."""
    # deferred: the optional `scale` extra (see dask_client)
    import dask.dataframe as dd
    from dask.delayed import delayed

    if isinstance(usage, str | Path | UsageDataset):
        data = _dataset(usage)
        job = job_for(_dataset_as_of(data, as_of))
        buckets = data.buckets()
        shared = client.scatter(job, broadcast=True, hash=False)  # sent once per worker
        futures = client.map(
            _run_bucket, [shared] * len(buckets), [data] * len(buckets), buckets, pure=False
        )
        return job, list(client.gather(futures))
    if isinstance(usage, pd.DataFrame):
        usage = dd.from_pandas(usage, npartitions=max(1, len(client.nthreads())))
    if not isinstance(usage, dd.DataFrame):
        raise ValidationError(
            "usage must be a dataset path, a UsageDataset, a pandas or a dask DataFrame",
            field="usage",
        )
    if as_of is None:
        last = usage["time"].max().compute()
        as_of_ns = 0 if pd.isna(last) else _as_ns(last)
    else:
        as_of_ns = _as_ns(as_of)
    job = job_for(as_of_ns)
    parts = n_buckets or max(2, usage.npartitions)
    bucket = usage["user"].map_partitions(_bucket_of, parts, meta=(_BUCKET_COLUMN, "int32"))
    keyed = usage.assign(**{_BUCKET_COLUMN: bucket})
    # Every call of a bucket lands in one partition: a user never spans two.
    shuffled = keyed.shuffle(on=_BUCKET_COLUMN, npartitions=parts)
    tasks = [delayed(_run_frame)(job, piece) for piece in shuffled.to_delayed()]
    return job, list(client.gather(client.compute(tasks)))


def replay_dask(
    usage: UsageSource,
    rates: pd.DataFrame | RateBook | Iterable[Any],
    settings: BillingSettings | None = None,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    as_of: Any = None,
    cluster: Client | str | None = None,
    n_buckets: int | None = None,
) -> ReplayResult:
    """:func:`hubkit.replay.replay` on Dask: per user bucket, combined exactly.

    ``usage``: a dataset path / :class:`UsageDataset` (one task per bucket, read on the
    worker), a ``dask.dataframe.DataFrame`` (shuffled into ``n_buckets`` partitions by
    user hash; default: its partition count) or a pandas DataFrame. ``as_of`` defaults
    to the last call. Returns a totals-only :class:`ReplayResult`.
    """

    checked = _replay_job(rates, settings, credit_price, behaviour, 0)  # before any cluster
    with dask_client(cluster) as client:
        job, parts = _on_dask(
            usage, client, lambda ns: dataclasses.replace(checked, as_of_ns=ns), as_of, n_buckets
        )
    return _combine_replays(job, parts)


def scenario_grid_dask(
    usage: UsageSource,
    rates: pd.DataFrame | RateBook | Iterable[Any],
    margins: Iterable[Any],
    credit_prices: Iterable[Any],
    *,
    base_credit_price: Any = 1,
    rate_filter: RateFilter | None = None,
    as_of: Any = None,
    cluster: Client | str | None = None,
    n_buckets: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`hubkit.scenarios.scenario_grid` on Dask, per user bucket, combined exactly.

    ``usage`` and ``cluster`` as for :func:`replay_dask`; ``options`` as for
    :func:`scenario_grid_dataset`.
    """
    checked = _grid_job(rates, margins, credit_prices, options, base_credit_price, rate_filter, 0)
    with dask_client(cluster) as client:
        job, parts = _on_dask(
            usage, client, lambda ns: dataclasses.replace(checked, as_of_ns=ns), as_of, n_buckets
        )
    return job.combine(parts)
