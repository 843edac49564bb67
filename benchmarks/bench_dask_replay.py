"""Replay of a bucketed Parquet dataset of synthetic calls: in one process, then on Dask
with 1 and 2 workers (throughput, peak memory, scaling).

    .venv/bin/python benchmarks/bench_dask_replay.py                  # 50,000,000 calls
    .venv/bin/python benchmarks/bench_dask_replay.py --calls 10000000 # a size that fits 10 min
    .venv/bin/python benchmarks/bench_dask_replay.py --smoke          # 200,000 calls (CI)

Steps, each in a fresh subprocess so that one's peak memory is not counted in another's
(peak = ``ru_maxrss``; for Dask, of the driver and of every worker process):

1. generate: ``--chunk`` calls at a time (``generate_usage``, a fresh population of users
   per chunk, spread over three months), appended to the dataset by
   ``write_usage_dataset`` — memory stays at one chunk however many calls;
2. serial: ``replay_dataset`` — one bucket in memory at a time, no Dask (the baseline);
3. dask ×1 and dask ×2: ``replay_dask`` on a LocalCluster of 1 and 2 single-threaded
   worker processes, each worker reading its own buckets.

All runs must report the same KPIs (counts equal, amounts within 1e-9 relative); the
benchmark prints the largest difference. The memory budget (``--budget``, default 2 GiB)
is checked per bucket before replaying; the whole table would need far more.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from _billing_bench import CREDIT_PRICE, bench_rates

from hubkit.billing_settings import BillingSettings
from hubkit.replay import Behaviour
from hubkit.replay.timeline import timeline_from_rates
from hubkit.usage import generate_usage
from hubkit.usage.dataset import open_usage_dataset, write_usage_dataset

GIB = 2**30
SETTINGS = BillingSettings(
    credit_based_billing_enabled=True,
    new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=500,
    credit_expiration_days=14,
)
KNOBS = Behaviour(buy_probability=0.4, pack_amount=Decimal(5), seed=1)
_MONTHS = ("2025-01-01", "2025-02-01", "2025-03-01")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _chunks(calls: int, chunk: int) -> Iterator[pd.DataFrame]:
    rates = bench_rates()
    for i, lo in enumerate(range(0, calls, chunk)):
        n = min(chunk, calls - lo)
        usage = generate_usage(
            rates, n_calls=n, n_users=max(100, n // 100), seed=1000 + i,
            start=_MONTHS[i % len(_MONTHS)], days=28,
        )  # fmt: skip
        # Every chunk is its own population: user ids unique across chunks.
        usage["user"] = usage["user"].cat.rename_categories(lambda name, i=i: f"c{i:04d}-{name}")
        yield usage


def _phase_generate(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    dataset = write_usage_dataset(_chunks(args.calls, args.chunk), args.dir, n_buckets=args.buckets)
    return {
        "seconds": time.perf_counter() - start,
        "rows": dataset.rows(),
        "buckets": len(dataset.buckets()),
        "months": dataset.months(),
        "bytes_on_disk": sum(f.stat().st_size for f in Path(args.dir).rglob("*.parquet")),
        "largest_bucket_bytes": max(dataset.estimated_bytes(b) for b in dataset.buckets()),
        "peak": _peak(),
    }


def _kpis(result: Any) -> dict[str, float]:
    return {k: float(v) for k, v in result.kpis.to_dict().items()}


def _phase_serial(args: argparse.Namespace) -> dict[str, Any]:
    from hubkit.scenarios.partitioned import replay_dataset

    timeline = timeline_from_rates(bench_rates())
    load, cpu, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
    result = replay_dataset(
        args.dir, timeline, SETTINGS, credit_price=CREDIT_PRICE, behaviour=KNOBS,
        memory_budget=args.budget,
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "load": max(load, os.getloadavg()[0]),
        "peak": _peak(),
        "kpis": _kpis(result),
    }


def _warm_up() -> None:
    # A long-lived cluster has these imported already: not part of the replay's time.
    import hubkit.scenarios.partitioned  # noqa: F401


def _worker_peak() -> int:
    import resource as res

    return res.getrusage(res.RUSAGE_SELF).ru_maxrss * 1024


def _worker_cpu() -> float:
    import time as clock

    return clock.process_time()


def _phase_dask(args: argparse.Namespace) -> dict[str, Any]:
    from hubkit.scenarios.partitioned import dask_client, replay_dask

    timeline = timeline_from_rates(bench_rates())
    # Each worker process gets the memory budget: more is a bug to find, not to absorb.
    with dask_client(None, n_workers=args.workers, memory_limit=args.budget) as client:
        started = time.perf_counter()
        client.run(_warm_up)
        warm = time.perf_counter() - started
        cpu_before = client.run(_worker_cpu)
        load, start = os.getloadavg()[0], time.perf_counter()
        result = replay_dask(
            args.dir, timeline, SETTINGS, credit_price=CREDIT_PRICE, behaviour=KNOBS,
            cluster=client,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        cpu = sum(client.run(_worker_cpu).values()) - sum(cpu_before.values())
        workers = list(client.run(_worker_peak).values())
    return {
        "seconds": seconds,
        "cpu": cpu,
        "load": max(load, os.getloadavg()[0]),
        "warm_up": warm,
        "peak": _peak(),
        "workers": workers,
        "kpis": _kpis(result),
    }


_PHASES = {"generate": _phase_generate, "serial": _phase_serial, "dask": _phase_dask}


def _run(args: argparse.Namespace, phase: str, **extra: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--dir", str(args.dir),
               "--calls", str(args.calls), "--chunk", str(args.chunk),
               "--buckets", str(args.buckets), "--budget", str(args.budget)]  # fmt: skip
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worst_gap(a: dict[str, float], b: dict[str, float]) -> float:
    worst = 0.0
    for key, value in a.items():
        other = b[key]
        if value != value and other != other:  # both NaN
            continue
        scale = max(abs(value), abs(other))
        worst = max(worst, abs(value - other) / scale if scale else 0.0)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--calls", type=int, default=50_000_000)
    parser.add_argument("--chunk", type=int, default=2_500_000, help="calls generated at once")
    parser.add_argument("--buckets", type=int, default=32)
    parser.add_argument("--budget", type=int, default=2 * GIB, help="bytes per bucket / worker")
    parser.add_argument("--dir", type=Path, default=None, help="dataset folder (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    parser.add_argument("--rounds", type=int, default=1, help="dask runs per worker count")
    parser.add_argument("--phase", choices=sorted(_PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(_PHASES[args.phase](args)))
        return 0
    if args.smoke:
        args.calls, args.chunk, args.buckets = 200_000, 100_000, 4
    owned = args.dir is None
    if owned:
        args.dir = Path(tempfile.mkdtemp(prefix="hubkit-bench-dask-")) / "usage"
    try:
        report(args)
    finally:
        if owned and not args.keep:
            shutil.rmtree(args.dir.parent, ignore_errors=True)
    return 0


def report(args: argparse.Namespace) -> None:
    made = _run(args, "generate")
    n = made["rows"]
    print(f"{n:,} calls in {made['buckets']} buckets × {len(made['months'])} months, "
          f"{made['bytes_on_disk'] / 2**20:,.0f} MiB of Parquet at {args.dir}")  # fmt: skip
    print(f"  generate + write, {args.chunk:,} calls at a time: {made['seconds']:8.1f} s  "
          f"peak {made['peak'] / GIB:5.2f} GiB")  # fmt: skip
    whole = open_usage_dataset(args.dir).estimated_bytes()
    biggest = made["largest_bucket_bytes"]
    print(f"  replay memory, estimated: whole table {whole / GIB:6.2f} GiB, largest bucket "
          f"{biggest / GIB:5.2f} GiB, budget {args.budget / GIB:.2f} GiB")  # fmt: skip
    serial = _run(args, "serial")
    # Interleaved rounds, best wall clock of each: other work on a shared box comes and goes.
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            runs[workers].append(_run(args, "dask", workers=workers))
    one = min(runs[1], key=lambda r: r["seconds"])
    two = min(runs[2], key=lambda r: r["seconds"])
    print(f"  {'':20s} {'wall':>8s}  {'throughput':>14s}  {'CPU':>7s}  {'load':>4s}  peak memory")
    for name, run in (("serial, one process", serial), ("dask, 1 worker", one),
                      ("dask, 2 workers", two)):  # fmt: skip
        memory = f"{run['peak'] / GIB:5.2f} GiB"
        if run.get("workers"):
            memory += f" driver, {max(run['workers']) / GIB:5.2f} GiB largest worker"
        print(f"  {name:20s} {run['seconds']:7.1f}s  {n / run['seconds'] / 1e6:6.2f} M calls/s  "
              f"{run['cpu']:6.1f}s  {run['load']:4.1f}  {memory}")  # fmt: skip
    print("  (CPU: seconds of the replaying processes; load: the box's 1-minute load average,")
    print("   other work included — on 2 cores a load above ~1 during a run slows it down)")
    everyone = [serial, *runs[1], *runs[2]]
    gap = max(_worst_gap(serial["kpis"], run["kpis"]) for run in everyone)
    print(f"  largest relative KPI difference between the runs: {gap:.1e}  (bound 1e-9)")
    print(f"  calls {int(two['kpis']['calls']):,}, refused {int(two['kpis']['calls_refused']):,}, "
          f"packs {int(two['kpis']['packs']):,}; best of {args.rounds} round(s)")  # fmt: skip
    print(
        f"ratio 2 workers / 1 worker throughput: {one['seconds'] / two['seconds']:.2f}  "
        "(ideal 2 on an idle 2-core box)"
    )
    # CPU seconds do not depend on what else runs: the speed-up an idle box would give.
    print(f"ratio 2 workers / 1 worker, from CPU seconds: {2 * one['cpu'] / two['cpu']:.2f}")
    print(f"ratio dask 2 workers / serial throughput: {serial['seconds'] / two['seconds']:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
