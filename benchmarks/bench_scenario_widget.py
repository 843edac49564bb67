"""How fast does the scenario explorer follow a slider, at 100,000 usage rows?

    .venv/bin/python benchmarks/bench_scenario_widget.py           # 100,000 calls
    .venv/bin/python benchmarks/bench_scenario_widget.py --smoke   # 5,000 calls, for CI

A throwaway SQLite store is seeded with the sample data and opened read-only, as the
finance web app opens it. Measured in the same run, on the same usage:

- baseline: what one re-simulation would cost without the prepared base — usage read
  against the rates from scratch (:meth:`ScenarioBase.build`) plus :func:`simulate`;
- update: :meth:`ScenarioExplorerState.set_margin` — what every slider move runs (one
  :func:`simulate` on the prebuilt base, the KPIs, and the ledger data the 402 and balance
  charts draw). Goal: under 100 ms at 100,000 calls;
- figures: building the four plotly figures from that state (the view's part, for scale).

Timings alternate the margin (no caching can help) and keep the best of several rounds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from decimal import Decimal
from pathlib import Path

from _billing_bench import best_of

BUDGET_S = 0.100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    n = 5_000 if args.smoke else args.calls
    rounds = 2 if args.smoke else args.rounds

    with tempfile.TemporaryDirectory(prefix="hubkit-bench-") as tmp:
        # Before hubkit reads its settings: the real .hubkit/ and reports/ stay untouched.
        os.environ["HUBKIT_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["HUBKIT_REPORTS_DIR"] = str(Path(tmp) / "reports")
        return _run(n, rounds)


def _run(n: int, rounds: int) -> int:
    from hubkit.billing_settings import BillingSettings
    from hubkit.scenarios import ScenarioBase, simulate
    from hubkit.store import Store
    from hubkit.widgets import ScenarioExplorerState, seed_sample_data

    with Store.open() as writable:
        seed_sample_data(writable)
    settings = BillingSettings(
        credit_based_billing_enabled=True,
        new_user_credit_grant_enabled=True,
        new_user_credit_grant_amount=Decimal(2),
        credit_expiration_days=14,
    )
    with Store.open(read_only=True) as store:
        state = ScenarioExplorerState(store, n_calls=n, billing=settings, buy_probability=0.4)
        assert state.result is not None and state.base is not None
        usage_calls = state.source.calls if state.source else 0
        from hubkit.usage import generate_usage

        timeline = store.rate_timeline()
        usage = generate_usage(timeline[timeline["valid_to"].isna()], n_calls=n, seed=0)
        margins = itertools.cycle(["10", "20.5", "30", "45"])

        def rebuild() -> object:
            base = ScenarioBase.build(usage, timeline, base_credit_price=1)
            return simulate(base, Decimal(30), 1, settings=state.settings(),
                            behaviour=state.behaviour())  # fmt: skip

        def update() -> object:
            assert state.set_margin(next(margins))
            return state.result

        def figures() -> object:
            return state.figures()

        baseline_s, update_s = float("inf"), float("inf")
        for _ in range(rounds):
            baseline_s = min(baseline_s, best_of(1, rebuild))
            update_s = min(update_s, best_of(1, update))
        figures()  # the first call imports and warms plotly's validators
        figures_s = best_of(max(1, rounds // 3), figures)
        k = state.result.kpis

    print(f"{usage_calls:,} calls, {state.source.users:,} users, {state.rate_count} rates")
    print(f"  baseline: build base + simulate:   {baseline_s * 1000:8.1f} ms")
    print(f"  widget update (set_margin):        {update_s * 1000:8.1f} ms")
    print(f"  four figures (view side):          {figures_s * 1000:8.1f} ms")
    print(
        f"  last scenario: revenue {k.revenue:,.2f}, provider cost {k.provider_cost:,.2f}, "
        f"{k.users_blocked:,} users blocked"
    )
    print(f"ratio update / rebuild: {update_s / baseline_s:.2f}  (goal < 1)")
    print(f"ratio update / 100 ms budget: {update_s / BUDGET_S:.2f}  (goal < 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
