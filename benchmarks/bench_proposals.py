"""What does a proposal's impact cost, against one replay?

    .venv/bin/python benchmarks/bench_proposals.py           # 10,000 rates, 1,000,000 calls
    .venv/bin/python benchmarks/bench_proposals.py --smoke   # 200 rates, 20,000 calls

A SQLite store holds ``--rates`` chat rates with unit costs; the proposal is the bulk update
of all of them (a new margin and credit price), made with :func:`hubkit.proposals.bulk_changes`.
Both sides replay the same usage with every balance rule on (grant, expiry, 402, packs):

- baseline: one :func:`hubkit.replay.replay` of the usage under the rates in force;
- impact: :func:`hubkit.proposals.compute_impact`: the usage replayed under the rates in
  force and under the proposed rates, sharing the preparation, plus the per-model and
  per-user comparison (goal: ≤ 3× the baseline); also shown with the usage window's
  fingerprint (SHA-256 of every call) included.

Timings interleave the two sides and keep the best of several rounds (the machine is shared).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _billing_bench import best_of
from _many_rates import seed

from hubkit.billing_settings import BillingSettings
from hubkit.proposals import bulk_changes, compute_impact
from hubkit.proposals.impact import UsageWindow, usage_fingerprint
from hubkit.replay import Behaviour, replay
from hubkit.replay.timeline import timeline_from_rates
from hubkit.store import Store
from hubkit.usage import generate_usage

SETTINGS = BillingSettings(
    credit_based_billing_enabled=True,
    new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=Decimal(500),
    credit_expiration_days=14,
)
KNOBS = Behaviour(buy_probability=0.4, pack_amount=Decimal(5), seed=1)
CREDIT_PRICE = Decimal("0.001")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rates", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    n_calls = 20_000 if args.smoke else args.calls
    n_rates = 200 if args.smoke else args.rates
    rounds = 1 if args.smoke else args.rounds

    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            seed(store, n_rates)
            rates = store.list_rates()
            started = time.perf_counter()
            preview = store.preview_bulk_update("30", CREDIT_PRICE)
            changes = bulk_changes(store, preview)
            build_s = time.perf_counter() - started
        finally:
            store.close()
    usage = generate_usage(rates, n_calls=n_calls, n_users=max(100, n_calls // 100), seed=1)
    timeline = timeline_from_rates(rates)

    def one_replay() -> object:
        return replay(usage, timeline, SETTINGS, credit_price=CREDIT_PRICE, behaviour=KNOBS)

    window = UsageWindow(usage, "given", "benchmark usage")

    def impact() -> object:
        return compute_impact(
            rates, changes, window, settings=SETTINGS, credit_price=CREDIT_PRICE, behaviour=KNOBS
        )

    replay_s, impact_s = float("inf"), float("inf")
    for _ in range(rounds):
        replay_s = min(replay_s, best_of(1, one_replay))
        impact_s = min(impact_s, best_of(1, impact))
    fingerprint_s = best_of(rounds, lambda: usage_fingerprint(usage))
    result = compute_impact(
        rates, changes, window, settings=SETTINGS, credit_price=CREDIT_PRICE, behaviour=KNOBS
    )
    change = result.data["totals"]["change"]

    print(f"{n_calls:,} calls, {usage['user'].nunique():,} users, {len(rates):,} rates")
    print(f"  proposal of {len(changes):,} rate changes built in {build_s:.2f} s (not timed below)")
    print(f"  one replay (baseline):           {replay_s * 1000:9.1f} ms")
    engine = result.data["engine"]
    print(f"  impact (two replays, shared):    {impact_s * 1000:9.1f} ms  [{engine}]")
    print(f"  usage fingerprint (SHA-256):     {fingerprint_s * 1000:9.1f} ms")
    print(
        f"  impact: revenue {change['revenue']:+,.2f}, list revenue {change['list_revenue']:+,.2f},"
        f" provider cost {change['provider_cost']:+,.2f}, 402s {change['calls_refused']:+,}, "
        f"users newly blocked {result.users_newly_blocked:,}, unblocked {result.users_unblocked:,}"
    )
    print(f"ratio impact / one replay: {impact_s / replay_s:.2f}  (goal ≤ 3)")
    print(f"ratio impact + fingerprint / one replay: {(impact_s + fingerprint_s) / replay_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
