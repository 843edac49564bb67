"""Peak memory of replaying ten million calls (goal: under 2 GB).

    .venv/bin/python benchmarks/bench_memory.py           # 10,000,000 calls
    .venv/bin/python benchmarks/bench_memory.py --smoke   # 100,000 calls

Each measurement runs in a fresh subprocess and reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so nothing of one run is counted in
another:

- baseline: generate the usage table and hold it (what any analysis of it costs);
- replay: the same, then one replay with grant, expiry, 402 and pack purchases on.

Prints both peaks, the table's own size, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from decimal import Decimal
sys.path.insert(0, {bench!r})
from _billing_bench import CREDIT_PRICE, bench_rates
from hubkit.billing_settings import BillingSettings
from hubkit.replay import Behaviour, replay
from hubkit.replay.timeline import timeline_from_rates
from hubkit.usage import generate_usage

n, mode = {n}, {mode!r}
rates = bench_rates()
timeline = timeline_from_rates(rates)
start = time.perf_counter()
usage = generate_usage(rates, n_calls=n, n_users=max(100, n // 100), seed=1)
out = {{"table_bytes": int(usage.memory_usage(deep=True).sum()),
        "generate_s": time.perf_counter() - start}}
if mode == "replay":
    settings = BillingSettings(credit_based_billing_enabled=True,
        new_user_credit_grant_enabled=True, new_user_credit_grant_amount=500,
        credit_expiration_days=14)
    start = time.perf_counter()
    result = replay(usage, timeline, settings, credit_price=CREDIT_PRICE,
                    behaviour=Behaviour(buy_probability=0.4, pack_amount=Decimal(5), seed=1))
    out["replay_s"] = time.perf_counter() - start
    out["calls_served"] = result.kpis.calls_served
out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def _run(n: int, mode: str) -> dict:
    bench = str(Path(__file__).resolve().parent)
    code = _CHILD.format(bench=bench, n=n, mode=mode)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=1200
    )
    if done.returncode != 0:
        raise SystemExit(f"child run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--calls", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    n = 100_000 if args.smoke else args.calls
    gib = 2**30
    held = _run(n, "generate")
    full = _run(n, "replay")
    print(f"{n:,} calls (usage table {held['table_bytes'] / 2**20:,.0f} MiB)")
    print(
        f"  peak RSS, generate and hold the table (baseline): {held['peak_bytes'] / gib:6.2f} GiB"
        f"  ({held['generate_s']:.1f} s)"
    )
    print(
        f"  peak RSS, generate + replay:                      {full['peak_bytes'] / gib:6.2f} GiB"
        f"  (replay {full['replay_s']:.1f} s, {full['calls_served']:,} calls served)"
    )
    print(f"ratio replay peak / baseline peak: {full['peak_bytes'] / held['peak_bytes']:.2f}")
    print(f"ratio replay peak / 2 GiB budget:  {full['peak_bytes'] / (2 * gib):.2f}  (goal < 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
