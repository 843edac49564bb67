"""Helpers shared by the store tests: open a store, add providers, seed rates quickly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hubkit.domain import ProviderSpec, Rate, RateSpec
from hubkit.store import Store

BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "deepseek": "https://api.deepseek.com",
    "google": "https://generativelanguage.googleapis.com",
    "xai": "https://api.x.ai/v1",
}

# Secrets the leak tests look for; long enough to be masked rather than shown as "***".
API_KEY = "sk-proj-LEAKCHECKabcdefghijklmnop1234"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKCHECK"
CUSTOM_TOKEN = "custom-LEAKCHECK-token-0123456789"


def add_provider(store: Store, name: str, **kw: Any) -> None:
    if name == "bedrock":
        kw.setdefault("region", "us-east-1")
    else:
        kw.setdefault("base_url", BASE_URLS.get(name, f"https://{name}.example.com/v1"))
    kw.setdefault("custom", name not in BASE_URLS)
    store.add_provider(ProviderSpec.create(name, **kw))


def two_providers(store: Store) -> None:
    """The store tests' usual start: openai and anthropic, no rates yet."""
    add_provider(store, "openai")
    add_provider(store, "anthropic")


def chat_spec(
    provider: str = "openai",
    model: str = "gpt-4o",
    *,
    input_rate: Any = "0.0000025",
    output_rate: Any = "0.00001",
    unit_costs: Any = None,
    **kw: Any,
) -> RateSpec:
    return RateSpec.create(
        provider,
        model,
        kw.pop("type", "chatCompletion"),
        input_rate=input_rate,
        output_rate=output_rate,
        unit_costs=unit_costs,
        **kw,
    )


def seed_rates(
    store: Store, models: int, providers: list[str], *, with_costs: bool = True
) -> list[Rate]:
    """``models`` × ``providers`` rates, one batch-create transaction per model."""
    for name in providers:
        if name not in {p.name for p in store.list_providers()}:
            add_provider(store, name)
    created: list[Rate] = []
    for i in range(models):
        cost_in = Decimal(i + 1).scaleb(-8)  # 1e-8, 2e-8, ...
        costs = {"input": cost_in, "output": cost_in * 4} if with_costs else None
        created += store.create_rates_batch(
            chat_spec(providers[0], f"model-{i:05d}", unit_costs=costs), providers
        )
    return created


def table_rows(url: str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as the database holds it (Core, bypassing the store)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        meta = sa.MetaData()
        tbl = sa.Table(table, meta, autoload_with=engine)
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(tbl))]
    finally:
        engine.dispose()


def count_rows(url: str, table: str) -> int:
    return len(table_rows(url, table))


def snapshot(store: Store) -> list[tuple[Any, ...]]:
    """What a failed write must leave untouched: every rate's values and version."""
    return [
        (r.id, r.provider, r.model, r.type, r.input_rate, r.output_rate, r.unit_costs, r.version)
        for r in store.list_rates()
    ]
