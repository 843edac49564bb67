"""Helpers shared by the job tests: a small priced store and ways to read it back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hubkit.domain import ProviderSpec, RateSpec
from hubkit.pricing import margin_rate
from hubkit.store import Store

CREDIT_PRICE = "0.001"
#: (provider, model, input cost, output cost) — priced at a 20 % markup by :func:`seed`
MODELS = [
    ("openai", "gpt-4o", "0.0000025", "0.00001"),
    ("openai", "gpt-4o-mini", "0.00000015", "0.0000006"),
    ("anthropic", "claude-3-haiku", "0.00000025", "0.00000125"),
]
BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
API_KEY = "sk-proj-JOBLEAKCHECK-abcdefghijklmnop1234"


def seed(store: Store, *, margin: str = "20") -> None:
    """Two providers, three chat rates with unit costs, one embedding rate without."""
    for name, url in BASE_URLS.items():
        store.add_provider(ProviderSpec.create(name, name.title(), base_url=url))
    for provider, model, cin, cout in MODELS:
        store.create_rate(
            RateSpec.create(
                provider,
                model,
                "chatCompletion",
                input_rate=margin_rate(cin, margin, CREDIT_PRICE),
                output_rate=margin_rate(cout, margin, CREDIT_PRICE),
                unit_costs={"input": cin, "output": cout},
            )
        )
    store.create_rate(
        RateSpec.create("openai", "text-embedding-3-small", "embedding", input_rate="0.00002")
    )
    store.set_operator_settings(credit_price=CREDIT_PRICE, target_margin="20")


def snapshot(store: Store) -> dict[tuple[str, str, str], tuple[Decimal, Decimal, int]]:
    """(provider, model, type) → (input rate, output rate, version)."""
    return {
        (r.provider, r.model, r.type.value): (r.input_rate, r.output_rate, r.version)
        for r in store.list_rates()
    }


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def expected_rate(model: str, side: int, margin: str) -> Decimal:
    row: Any = next(m for m in MODELS if m[1] == model)
    return margin_rate(row[2 + side], margin, CREDIT_PRICE)
