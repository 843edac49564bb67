"""A store with many rates, fast: what the bulk-update and browser benchmarks start from."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hubkit.domain import ProviderSpec
from hubkit.store import Store
from hubkit.store.schema import ProviderRow, RateRow
from hubkit.store.types import utcnow

PROVIDERS = ("openai", "anthropic", "deepseek", "google", "xai")
CUSTOM = tuple(f"bench-{i}" for i in range(5))


def seed(store: Store, n_rates: int, *, providers: tuple[str, ...] = PROVIDERS + CUSTOM) -> None:
    """``n_rates`` chat rates with unit costs over ``providers`` (default: five known, five
    custom ones; one Core insert)."""
    for name in providers:
        store.add_provider(
            ProviderSpec.create(name, base_url=f"https://{name}.example.com/v1", custom=True)
        )
    with Session(store.engine) as session, session.begin():
        ids = dict(session.execute(select(ProviderRow.name, ProviderRow.id)).all())
        names = providers
        now = utcnow()
        rows = []
        for i in range(n_rates):
            cost = Decimal(i % 997 + 1).scaleb(-9)  # 1e-9 … 9.97e-7 USD per token
            rows.append(
                {
                    "provider_id": ids[names[i % len(names)]],
                    "model": f"model-{i:06d}",
                    "model_display": f"Model {i:06d}",
                    "type": "chatCompletion",
                    "input_rate": Decimal("0.001"),
                    "output_rate": Decimal("0.002"),
                    "unit_cost_input": cost,
                    "unit_cost_output": cost * 4,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(RateRow), rows)
