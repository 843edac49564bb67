"""Shared pieces of the billing benchmarks: a synthetic rate card and a best-of timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from hubkit.domain import Caching, Rate, RateType, UnitCosts
from hubkit.pricing import margin_rate

CREDIT_PRICE = Decimal("0.001")  # currency per credit the benchmark rates are set for


def bench_rates(n_chat: int = 40, seed: int = 0) -> list[Rate]:
    """A rate card like a real gateway's: many chat models (some with cache rates), a few
    embeddings, image and video models; rates = unit cost × 1.2 / credit price."""
    rng = np.random.default_rng(seed)
    rates: list[Rate] = []

    def add(
        provider: str, model: str, kind: RateType, uc_in: str, uc_out: str, cache: bool
    ) -> None:
        costs = UnitCosts(Decimal(uc_in), Decimal(uc_out))
        caching = None
        if cache:
            read = margin_rate(Decimal(uc_in) / 10, 20, CREDIT_PRICE)
            caching = Caching(read_rate=read)
        rates.append(
            Rate(
                id=len(rates) + 1,
                provider=provider,
                model=model,
                type=kind,
                input_rate=margin_rate(costs.input, 20, CREDIT_PRICE),
                output_rate=margin_rate(costs.output, 20, CREDIT_PRICE),
                model_display=model,
                version=1,
                unit_costs=costs,
                caching=caching,
            )
        )

    providers = ["openai", "anthropic", "google", "deepseek", "xai", "openrouter"]
    for i in range(n_chat):
        uc_in = float(rng.choice([0.1, 0.15, 0.25, 0.4, 0.8, 1, 2.5, 3, 5, 15])) / 1e6
        add(providers[i % len(providers)], f"chat-{i:02d}", RateType.CHAT_COMPLETION,
            f"{uc_in:.12f}", f"{uc_in * 4:.12f}", cache=i % 3 == 0)  # fmt: skip
    for i in range(3):
        add("openai", f"embed-{i}", RateType.EMBEDDING, f"{0.02 * (i + 1) / 1e6:.12f}", "0", False)
    add("openai", "image-1", RateType.IMAGE_GENERATION, "0", "0.04", False)
    add("openai", "image-2", RateType.IMAGE_GENERATION, "0", "0.08", False)
    add("google", "video-1", RateType.VIDEO, "0", "0.5", False)
    return rates


def best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
