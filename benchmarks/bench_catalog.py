"""How much does mapping a LiteLLM price map cost on top of parsing its JSON?

    .venv/bin/python benchmarks/bench_catalog.py           # the full reference map
    .venv/bin/python benchmarks/bench_catalog.py --smoke   # the shipped sample, one round

Baseline, timed in the same run: ``json.loads`` of the same file (the part no catalog
reader can avoid). Prints both times and their ratio; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from hubkit.catalog import load_catalog, shipped_catalog_path

REFERENCE = Path("/work/shared/data/litellm-model-prices-1.110.2.json")


def _best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    path = shipped_catalog_path() if args.smoke or not REFERENCE.exists() else REFERENCE
    rounds = 1 if args.smoke else args.rounds

    def parse_only() -> object:
        return json.loads(path.read_text(encoding="utf-8"))

    baseline = _best_of(rounds, parse_only)
    load = _best_of(rounds, lambda: load_catalog(path))
    catalog = load_catalog(path)
    print(f"file: {path.name} ({path.stat().st_size:,} bytes), best of {rounds}")
    print(f"  json.loads (baseline):  {baseline * 1000:8.1f} ms")
    print(
        f"  load_catalog:           {load * 1000:8.1f} ms  "
        f"({len(catalog.entries)} mapped, {len(catalog.unmapped)} unmapped)"
    )
    print(f"ratio load_catalog / json.loads: {load / baseline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
