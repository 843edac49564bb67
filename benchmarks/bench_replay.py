"""How fast is pricing a million calls, against row-by-row Decimal and bare numpy?

    .venv/bin/python benchmarks/bench_replay.py           # 1,000,000 calls
    .venv/bin/python benchmarks/bench_replay.py --smoke   # 20,000 calls, one round

``RateBook.price`` takes the usage table itself (models category-coded, as the generator
and Parquet give them): the rate lookup by (provider, model, type) is included, and so are
cache tokens, images and seconds. Baselines, timed in the same run:

- row by row: the rate lookup + :func:`hubkit.pricing.call_credits` per row
  (:func:`hubkit.replay.timeline.price_exact`), timed on a sample and extrapolated (goal: ≥ 100×);
- bare numpy: ``tokens_in * in_rate[model_idx] + tokens_out * out_rate[model_idx]`` over
  the same arrays with the model index given (goal: within 3×).

Also prints the time of one full replay (validation, sort, pricing, ledger, summaries).
"""

from __future__ import annotations

import argparse

import numpy as np
from _billing_bench import CREDIT_PRICE, bench_rates, best_of

from hubkit.billing_settings import BillingSettings
from hubkit.replay import Behaviour, replay
from hubkit.replay.timeline import RateBook, price_exact, timeline_from_rates
from hubkit.usage import generate_usage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args(argv)
    n = 20_000 if args.smoke else args.calls
    rounds = 1 if args.smoke else args.rounds
    sample = min(n, 2_000 if args.smoke else args.sample)

    rates = bench_rates()
    timeline = timeline_from_rates(rates)
    usage = generate_usage(rates, n_calls=n, n_users=max(100, n // 100), seed=1)
    book = RateBook(timeline)

    vectorised = best_of(rounds, lambda: book.price(usage, cost=False))
    # Bare numpy over the same arrays, the model index already known.
    model_idx = book.rows_for(usage)
    tokens_in = usage["input_tokens"].to_numpy()
    tokens_out = usage["output_tokens"].to_numpy()
    in_rate, out_rate = book.arrays.input_rate, book.arrays.output_text
    bare = best_of(
        rounds, lambda: tokens_in * in_rate[model_idx] + tokens_out * out_rate[model_idx]
    )
    part = usage.iloc[:sample]
    per_row = best_of(1 if args.smoke else 2, lambda: price_exact(part, timeline)) / sample
    decimal_total = per_row * n

    settings = BillingSettings(
        credit_based_billing_enabled=True,
        new_user_credit_grant_enabled=True,
        new_user_credit_grant_amount=500,
        credit_expiration_days=14,
    )
    knobs = Behaviour(buy_probability=0.4, pack_amount=5, seed=1)
    full = best_of(
        max(1, rounds // 2),
        lambda: replay(usage, timeline, settings, credit_price=CREDIT_PRICE, behaviour=knobs),
    )
    priced = book.price(usage, cost=False).credits
    exact = price_exact(usage.iloc[:sample], timeline)["credits"]
    worst = float(np.max(np.abs(priced[:sample] - np.array([float(c) for c in exact]))))

    print(f"{n:,} calls, {len(rates)} rates; best of {rounds}")
    print(f"  RateBook.price (lookup + all counts):  {vectorised * 1000:9.1f} ms")
    print(f"  bare numpy gather-multiply-add:        {bare * 1000:9.1f} ms")
    print(
        f"  call_credits row by row (extrapolated): {decimal_total * 1000:9.1f} ms  "
        f"({per_row * 1e6:.1f} µs a row, sample {sample:,})"
    )
    print(f"  full replay (ledger, summaries):       {full * 1000:9.1f} ms")
    print(f"  largest |float − Decimal| on the sample: {worst:.2e} credits")
    print(f"ratio call_credits / RateBook.price: {decimal_total / vectorised:.0f}  (goal ≥ 100)")
    print(f"ratio RateBook.price / bare numpy:   {vectorised / bare:.2f}  (goal ≤ 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
