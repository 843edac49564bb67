"""Small rate sets and usage builders shared by the usage / replay / scenario tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from hubkit.domain import Caching, Rate, RateType, UnitCosts

D = Decimal
T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def rate(
    rid: int,
    provider: str,
    model: str,
    kind: RateType,
    input_rate: str,
    output_rate: str,
    *,
    costs: tuple[str, str] | None = None,
    caching: dict[str, str] | None = None,
) -> Rate:
    return Rate(
        id=rid,
        provider=provider,
        model=model,
        type=kind,
        input_rate=D(input_rate),
        output_rate=D(output_rate),
        model_display=model,
        version=1,
        unit_costs=UnitCosts(D(costs[0]), D(costs[1])) if costs else None,
        caching=Caching.parse(caching) if caching else None,
    )


def simple_rates() -> list[Rate]:
    """Rates whose credits are exact in binary floats (for hand-computed cases)."""
    return [
        rate(1, "openai", "chat", RateType.CHAT_COMPLETION, "0.5", "1", costs=("0.25", "0.5")),
        rate(2, "openai", "img", RateType.IMAGE_GENERATION, "0", "4", costs=("0", "2")),
    ]


def mixed_rates() -> list[Rate]:
    """A realistic little catalogue: cache rates, an embedding, images, video, no-cost rate."""
    return [
        rate(1, "openai", "gpt-4o", RateType.CHAT_COMPLETION, "0.0025", "0.01",
             costs=("0.0000025", "0.00001"), caching={"readRate": "0.00125"}),
        rate(2, "openai", "gpt-4o-mini", RateType.CHAT_COMPLETION, "0.00015", "0.0006",
             costs=("0.00000015", "0.0000006")),
        rate(3, "anthropic", "claude-3-5-haiku", RateType.CHAT_COMPLETION, "0.0008", "0.004",
             costs=("0.0000008", "0.000004"),
             caching={"readRate": "0.00008", "writeRate": "0.001"}),
        rate(4, "openai", "text-embedding-3-small", RateType.EMBEDDING, "0.00002", "0",
             costs=("0.00000002", "0")),
        rate(5, "openai", "dall-e-3", RateType.IMAGE_GENERATION, "0", "40", costs=("0", "0.04")),
        rate(6, "google", "veo-2", RateType.VIDEO, "0", "500", costs=("0", "0.5")),
        rate(7, "ollama", "llama3", RateType.CHAT_COMPLETION, "0.0001", "0.0001"),
    ]  # fmt: skip


def calls(*rows: dict[str, Any]) -> pd.DataFrame:
    """A usage table from short dicts: minutes after T0, user, model; counts default 0."""
    records = []
    for row in rows:
        kind = row.get("type", "chatCompletion")
        records.append(
            {
                "time": T0 + pd.Timedelta(minutes=row.get("minute", 0), days=row.get("day", 0)),
                "user": row.get("user", "u1"),
                "app": row.get("app", "app"),
                "provider": row.get("provider", "openai"),
                "model": row.get("model", "chat" if kind == "chatCompletion" else "img"),
                "type": kind,
                "input_tokens": row.get("input", 0),
                "output_tokens": row.get("output", 0),
                "cache_read_tokens": row.get("cache_read", 0),
                "cache_write_tokens": row.get("cache_write", 0),
                "images": row.get("images", 0),
                "seconds": row.get("seconds", 0.0),
            }
        )
    return pd.DataFrame.from_records(records)
