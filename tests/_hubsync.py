"""Helpers for the hub pull / plan / apply tests: a seeded local store and hub snapshots."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from hubkit.domain import ProviderSpec, RateSpec
from hubkit.hub import HubClient
from hubkit.pricing import margin_rate
from hubkit.store import Store

# Secrets the leak checks look for (long enough to be masked, not shown as "***").
KEY = "sk-proj-HUBSYNCabcdefghijklmnop1234"
NEW_KEY = "sk-live-HUBSYNCzyxwvutsrqponml9876"
BAD_KEY = "sk-bad-HUBSYNCqwertyuiopasdfgh5678"  # the local hub's live test refuses it
SECRETS = (KEY, NEW_KEY, BAD_KEY)

BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "deepseek": "https://api.deepseek.com",
}
MARGIN = Decimal(25)
PRICE = Decimal("0.001")

#: (model, input cost, output cost) per provider: rates are priced at MARGIN / PRICE.
MODELS = {
    "openai": [("gpt-4o", "0.0000025", "0.00001"), ("gpt-4o-mini", "0.00000015", "0.0000006"),
               ("o3-mini", "0.0000011", "0.0000044")],
    "anthropic": [("claude-3-5-sonnet", "0.000003", "0.000015"),
                  ("claude-3-haiku", "0.00000025", "0.00000125")],
}  # fmt: skip


def add_provider(store: Store, name: str, display: str | None = None, **kw: Any) -> None:
    kw.setdefault("base_url", BASE_URLS.get(name, f"https://{name}.example.com/v1"))
    store.add_provider(ProviderSpec.create(name, display or name.title(), **kw))


def priced_spec(provider: str, model: str, cin: str, cout: str, **kw: Any) -> RateSpec:
    return RateSpec.create(
        provider,
        model,
        kw.pop("type", "chatCompletion"),
        input_rate=margin_rate(cin, MARGIN, PRICE),
        output_rate=margin_rate(cout, MARGIN, PRICE),
        unit_costs={"input": cin, "output": cout},
        **kw,
    )


def seed_store(
    store: Store, providers: tuple[str, ...] = ("openai", "anthropic"), *, key: str | None = KEY
) -> None:
    """Providers, one key for the first, and MODELS' rates priced at MARGIN / PRICE."""
    for name in providers:
        add_provider(store, name)
        for model, cin, cout in MODELS.get(name, []):
            store.create_rate(priced_spec(name, model, cin, cout))
    if key is not None:
        store.add_credential(providers[0], "main", key)


def seed_more_rates(store: Store, n: int, provider: str = "openai") -> None:
    """``n`` more rates under ``provider`` (already in the store), priced like the others."""
    for i in range(n):
        cin, cout = f"0.00000{i % 9 + 1}", f"0.0000{i % 9 + 1}"
        store.create_rate(priced_spec(provider, f"bulk-model-{i:03d}", cin, cout))


def hub_rates(client: HubClient) -> Counter[tuple[str, str, str]]:
    """How many times each (provider, model, type) is on the hub (duplicates show as 2+)."""
    names = {p.id: p.name for p in client.list_providers()}
    return Counter(
        (names[r.provider_id], r.model, r.type.value) for r in client.iter_rates(page_size=100)
    )


def hub_credentials(client: HubClient) -> Counter[tuple[str, str]]:
    return Counter((p.name, c.name) for p in client.list_providers() for c in p.credentials)


def store_rate_keys(store: Store) -> set[tuple[str, str, str]]:
    return {(r.provider, r.model, r.type.value) for r in store.list_rates() if not r.deprecated}


def files_text(folder: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()
    )


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"
        assert secret[8:-4] not in text, f"part of a secret leaked into {where}"
