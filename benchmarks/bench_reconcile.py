"""The gateway's records at scale: import of a 1,000,000-call gateway database, and the
reconciliation of the imported calls, vectorised vs the row-by-row reference.

    .venv/bin/python benchmarks/bench_reconcile.py            # 1,000,000 calls
    .venv/bin/python benchmarks/bench_reconcile.py --smoke    # 20,000 calls

The gateway database is generated with AIGNE Hub's tables and columns (ModelCalls with its
usageMetrics JSON, AiProviders, AiModelRates, AiModelRateHistories): the calls of
:func:`hubkit.usage.generate_usage` over a month, gpt-4o's prices raised mid-month, its
credits as the gateway stores them (8 places), then 1 % failed calls, 0.5 % unknown models,
1 % stored a unit off at the 8th place and 0.5 % stored at the old rate after the change.

- **Import** (``import_gateway_usage(db, FILE.parquet)``, what ``python -m hubkit usage
  import DB --to FILE.parquet`` runs) in a child process, so that its peak memory
  (``ru_maxrss``) is its own; the baseline is the child reading every ModelCalls row with
  plain ``sqlite3`` (``fetchall``), the read no importer avoids.
- **Reconciliation** of the imported calls (read back from the Parquet file, stored credits
  as exact Arrow decimals) against the gateway's own rate timeline: :func:`reconcile`
  (vectorised, exact) on all of them; :func:`reconcile_reference` (row by row in Decimal)
  on a sample of SAMPLE calls, **scaled** to the full count (row-by-row time is linear in
  the calls; the output says so). The two are checked equal on the sample.

Prints times, calls/s, peak memory and the ratios; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from _billing_data import mixed_rates  # noqa: E402

from hubkit.replay.reconcile import reconcile, reconcile_reference  # noqa: E402
from hubkit.replay.timeline import RateBook, timeline_from_rates  # noqa: E402
from hubkit.usage import generate_usage  # noqa: E402

FULL_CALLS = 1_000_000
SMOKE_CALLS = 20_000
FULL_SAMPLE = 20_000
SMOKE_SAMPLE = 2_000
START = pd.Timestamp("2025-03-01T00:00:00Z")
CHANGE = START + pd.Timedelta(days=15)
OLD_GPT4O = ("0.002", "0.008")  # gpt-4o's prices before the change (now 0.0025 / 0.01)

_DDL = [
    'CREATE TABLE "AiProviders" ("id" TEXT PRIMARY KEY, "name" TEXT, "displayName" TEXT)',
    'CREATE TABLE "AiModelRates" ("id" TEXT PRIMARY KEY, "providerId" TEXT, "model" TEXT, '
    '"type" TEXT, "inputRate" DECIMAL(20,10), "outputRate" DECIMAL(20,10), "unitCosts" JSON, '
    '"caching" JSON)',
    'CREATE TABLE "AiModelRateHistories" ("id" TEXT PRIMARY KEY, "providerId" TEXT, '
    '"model" TEXT, "type" TEXT, "changeType" TEXT, "previousRates" JSON, "currentRates" JSON, '
    '"createdAt" TEXT)',
    'CREATE TABLE "ModelCalls" ("id" TEXT PRIMARY KEY, "providerId" TEXT, "model" TEXT, '
    '"credentialId" TEXT, "type" TEXT, "totalUsage" INTEGER, "usageMetrics" JSON, '
    '"credits" DECIMAL(20,8), "status" TEXT, "duration" REAL, "appDid" TEXT, "userDid" TEXT, '
    '"callTime" BIGINT)',
]


def _timeline(*, old_forever: bool = False) -> pd.DataFrame:
    """The rates in force: gpt-4o at its old prices until CHANGE, then at today's
    (``old_forever``: at its old prices throughout, to price calls the gateway priced late)."""
    now = timeline_from_rates(mixed_rates())
    is_gpt = now["model"] == "gpt-4o"
    old = now[is_gpt].copy()
    old["input_rate"] = [Decimal(OLD_GPT4O[0])]
    old["output_rate"] = [Decimal(OLD_GPT4O[1])]
    if old_forever:
        return pd.concat([now[~is_gpt], old], ignore_index=True)
    old["valid_to"] = CHANGE
    new = now[is_gpt].copy()
    new["valid_from"] = CHANGE
    return pd.concat([now[~is_gpt], old, new], ignore_index=True)


def build_gateway(path: Path, n_calls: int, seed: int = 7) -> dict[str, int]:
    """A gateway SQLite file with ``n_calls`` ModelCalls (module docstring)."""
    rates = mixed_rates()
    timeline = _timeline()
    usage = generate_usage(rates, n_calls=n_calls, n_users=max(50, n_calls // 200), days=30,
                           start=START, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)
    credits = RateBook(timeline).price(usage, cost=False).credits
    units = np.rint(credits * 1e8).astype(np.int64)  # the gateway's 8 places (float: a tie
    # may land a unit off, like the gateway's own rounding would be judged)
    off = rng.random(n_calls) < 0.01
    units[off] += 1
    late = (rng.random(n_calls) < 0.005) & (usage["model"].astype(str) == "gpt-4o").to_numpy()
    late &= (usage["time"] >= CHANGE).to_numpy()
    if late.any():
        old_book = RateBook(_timeline(old_forever=True))
        old_units = np.rint(old_book.price(usage, cost=False).credits * 1e8).astype(np.int64)
        units[late] = old_units[late]
    status = np.where(rng.random(n_calls) < 0.01, "failed", "success")
    model = usage["model"].astype(str).to_numpy().copy()
    model[rng.random(n_calls) < 0.005] = "gpt-9-preview"
    providers = {"openai": "p1", "anthropic": "p2", "google": "p3", "ollama": "p4"}
    provider_id = usage["provider"].astype(str).map(providers).to_numpy()
    seconds = (usage["time"].astype("int64") // 10**9).to_numpy()
    cols = {c: usage[c].to_numpy() for c in
            ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
             "images", "seconds")}  # fmt: skip
    kinds = usage["type"].astype(str).to_numpy()
    users = usage["user"].astype(str).to_numpy()

    def metrics(i: int) -> str:
        return (
            f'{{"inputTokens":{cols["input_tokens"][i]},"outputTokens":{cols["output_tokens"][i]},'
            f'"cacheReadInputTokens":{cols["cache_read_tokens"][i]},'
            f'"cacheCreationInputTokens":{cols["cache_write_tokens"][i]},'
            f'"numberOfImageGeneration":{cols["images"][i]},'
            f'"mediaDuration":{int(cols["seconds"][i])}}}'
        )

    def rows() -> Iterator[tuple[object, ...]]:
        for i in range(n_calls):
            u = int(units[i])
            yield (f"mc{i:08d}", provider_id[i], model[i], "cred1", kinds[i], 0, metrics(i),
                   f"{u // 10**8}.{u % 10**8:08d}", status[i], 1.0, "app1", users[i],
                   int(seconds[i]))  # fmt: skip

    conn = sqlite3.connect(path)
    for statement in _DDL:
        conn.execute(statement)
    conn.executemany('INSERT INTO "AiProviders" VALUES (?, ?, ?)',
                     [(v, k, k.title()) for k, v in providers.items()])  # fmt: skip
    for i, rate in enumerate(rates):
        caching = rate.caching.to_json() if rate.caching else None
        conn.execute(
            'INSERT INTO "AiModelRates" VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            (f"r{i}", providers[rate.provider], rate.model, rate.type.value,
             str(rate.input_rate), str(rate.output_rate), None,
             json.dumps(caching) if caching else None),
        )  # fmt: skip
    conn.execute(
        'INSERT INTO "AiModelRateHistories" VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        ("h1", "p1", "gpt-4o", "chatCompletion", "manual_update",
         json.dumps({"inputRate": OLD_GPT4O[0], "outputRate": OLD_GPT4O[1]}),
         json.dumps({"inputRate": "0.0025", "outputRate": "0.01"}),
         CHANGE.strftime("%Y-%m-%d %H:%M:%S.000 +00:00")),
    )  # fmt: skip
    conn.executemany('INSERT INTO "ModelCalls" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)', rows())
    conn.commit()
    conn.close()
    return {"failed": int((status == "failed").sum()), "late": int(late.sum())}


_CHILD = """
import json, resource, sqlite3, sys, time
sys.path.insert(0, {repo!r})
from hubkit.usage.gateway_import import import_gateway_usage
db, target, mode = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if mode == "bare":
    conn = sqlite3.connect("file:" + db + "?mode=ro", uri=True)
    n = len(conn.execute('SELECT * FROM "ModelCalls"').fetchall())
else:
    n = import_gateway_usage(db, target).report.rows_imported
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "rows": n, "peak": peak}}))
"""


def _child(db: Path, target: Path, mode: str) -> dict[str, float]:
    code = _CHILD.format(repo=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, str(db), str(target), mode],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"the {mode} child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_CALLS:,} calls")
    parser.add_argument("--calls", type=int, help="calls in the gateway database")
    args = parser.parse_args()
    n = args.calls or (SMOKE_CALLS if args.smoke else FULL_CALLS)
    sample = min(n, SMOKE_SAMPLE if args.smoke else FULL_SAMPLE)
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        folder = Path(tmp)
        db = folder / "aigne-hub.db"
        t0 = time.perf_counter()
        made = build_gateway(db, n)
        print(f"gateway database: {n:,} ModelCalls ({made['failed']:,} failed, "
              f"{made['late']:,} priced at the old rate), {db.stat().st_size / 2**20:.0f} MiB, "
              f"built in {time.perf_counter() - t0:.1f} s")  # fmt: skip

        target = folder / "calls.parquet"
        bare = _child(db, target, "bare")
        imported = _child(db, target, "import")
        print(f"read every row (sqlite3 fetchall, baseline): {bare['seconds']:.2f} s, "
              f"peak {bare['peak'] / 2**30:.2f} GiB")  # fmt: skip
        print(f"import → Parquet: {imported['seconds']:.2f} s for {int(imported['rows']):,} "
              f"calls ({n / imported['seconds']:,.0f} rows/s), peak memory "
              f"{imported['peak'] / 2**30:.2f} GiB; ratio import / bare read "
              f"{imported['seconds'] / bare['seconds']:.1f}x")  # fmt: skip
        again = _child(db, target, "import")
        print(f"re-run (incremental, nothing new): {again['seconds']:.2f} s, "
              f"{int(again['rows'])} new calls")  # fmt: skip

        from hubkit.usage.gateway_import import read_imported_usage
        from hubkit.usage.gateway_rates import read_hub_rates

        usage = read_imported_usage(target)
        timeline = read_hub_rates(db)
        reconcile(usage.head(1000), timeline)  # warm up imports and caches
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            frame, summary = reconcile(usage, timeline)
            best = min(best, time.perf_counter() - start)
        print(f"reconcile (vectorised, exact) {len(usage):,} calls: {best * 1000:.0f} ms "
              f"(best of 3); {summary['match']:,} match, {summary['mismatch']:,} mismatch, "
              f"{summary['unsupported']:,} unsupported; causes {summary['causes']}")  # fmt: skip
        rows = np.random.default_rng(1).choice(len(usage), size=sample, replace=False)
        part = usage.iloc[np.sort(rows)]
        start = time.perf_counter()
        slow, slow_summary = reconcile_reference(part, timeline)
        slow_s = time.perf_counter() - start
        fast, fast_summary = reconcile(part, timeline)
        pd.testing.assert_frame_equal(fast, slow)
        assert fast_summary == slow_summary
        scaled = slow_s * len(usage) / sample
        print(f"reconcile row by row (Decimal reference): {slow_s:.2f} s on a sample of "
              f"{sample:,} calls, scaled to {len(usage):,}: {scaled:.1f} s (same frame as the "
              "vectorised path on the sample)")  # fmt: skip
        print(f"ratio row-by-row / vectorised: {scaled / best:.0f}x (goal ≥ 50x)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"this process's peak memory (build + reconcile): {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
