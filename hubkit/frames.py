"""pandas views of store values, for notebooks, widgets, CSV exports and reports.

Money columns hold Decimal objects (exact; pandas ``object`` dtype). No frame here has a
column that could carry a secret: credentials appear only with their masked display text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from hubkit._columns import RATE_AMOUNTS

# the CSV form of a frame is the file writers' (hubkit._files); offered here with the views
from hubkit._files import plain_frame, to_csv
from hubkit.domain import Rate, masked_url
from hubkit.pricing import BulkPreview, implied_markup_pct, is_below_cost
from hubkit.store.values import CredentialInfo, HistoryEntry, Provider

__all__ = [
    "PREVIEW_COLUMNS",
    "RATE_COLUMNS",
    "credentials_frame",
    "history_frame",
    "plain_frame",
    "preview_frame",
    "providers_frame",
    "rates_frame",
    "skipped_frame",
    "to_csv",
]

RATE_COLUMNS = [
    "id", "provider", "model", "model_display", "type", *RATE_AMOUNTS,
    "input_markup_pct", "output_markup_pct", "below_cost", "deprecated", "version",
]  # fmt: skip


def rates_frame(rates: Iterable[Rate], credit_price: Any = 1) -> pd.DataFrame:
    """One row per rate, with implied markup on cost and a below-cost flag.

    ``credit_price=None`` (no usable price) leaves markup blank and below-cost False.
    """
    rows = []
    for r in rates:
        cin = r.unit_costs.input if r.unit_costs else None
        cout = r.unit_costs.output if r.unit_costs else None
        # markup needs a price: without one, judge nothing rather than fail the listing
        min_, mout = (None, None) if credit_price is None else (cin, cout)
        rows.append(
            {
                "id": r.id,
                "provider": r.provider,
                "model": r.model,
                "model_display": r.model_display,
                "type": r.type.value,
                "input_rate": r.input_rate,
                "output_rate": r.output_rate,
                "unit_cost_input": cin,
                "unit_cost_output": cout,
                "cache_read_rate": r.caching.read_rate if r.caching else None,
                "cache_write_rate": r.caching.write_rate if r.caching else None,
                "input_markup_pct": _round(implied_markup_pct(r.input_rate, min_, credit_price)),
                "output_markup_pct": _round(implied_markup_pct(r.output_rate, mout, credit_price)),
                "below_cost": is_below_cost(r.input_rate, min_, credit_price)
                or is_below_cost(r.output_rate, mout, credit_price),
                "deprecated": r.deprecated,
                "version": r.version,
            }
        )
    return pd.DataFrame(rows, columns=RATE_COLUMNS)


PREVIEW_COLUMNS = [
    "rate_id", "provider", "model", "type", "old_input_rate", "new_input_rate",
    "input_change_pct", "old_output_rate", "new_output_rate", "output_change_pct",
    "unit_cost_input", "unit_cost_output", "changed", "drops_to_zero", "below_cost",
]  # fmt: skip


def preview_frame(preview: BulkPreview) -> pd.DataFrame:
    """The bulk-update diff: old → new and change % per side (None % = from 0)."""
    below = {c.rate_id for c in preview.below_cost()}
    rows = [
        {
            "rate_id": c.rate_id,
            "provider": c.provider,
            "model": c.model,
            "type": c.type.value,
            "old_input_rate": c.old_input_rate,
            "new_input_rate": c.new_input_rate,
            "input_change_pct": _round(c.input_change_pct),
            "old_output_rate": c.old_output_rate,
            "new_output_rate": c.new_output_rate,
            "output_change_pct": _round(c.output_change_pct),
            "unit_cost_input": c.unit_costs.input,
            "unit_cost_output": c.unit_costs.output,
            "changed": c.changed,
            "drops_to_zero": ",".join(c.drops_to_zero),
            "below_cost": c.rate_id in below,
        }
        for c in preview.changes
    ]
    return pd.DataFrame(rows, columns=PREVIEW_COLUMNS)


def skipped_frame(preview: BulkPreview) -> pd.DataFrame:
    """Rates the bulk update leaves alone; ``reason`` is the text of each skip's code."""
    return pd.DataFrame(
        [
            {"rate_id": s.rate_id, "provider": s.provider, "model": s.model,
             "type": s.type.value, "reason": s.code.text}
            for s in preview.skipped
        ],
        columns=["rate_id", "provider", "model", "type", "reason"],
    )  # fmt: skip


def history_frame(entries: Sequence[HistoryEntry]) -> pd.DataFrame:
    rows = []
    for e in entries:
        row = asdict(e)
        prev, cur = row.pop("previous_unit_costs"), row.pop("current_unit_costs")
        row["type"] = e.type.value
        row["previous_unit_cost_input"] = prev["input"] if prev else None
        row["previous_unit_cost_output"] = prev["output"] if prev else None
        row["current_unit_cost_input"] = cur["input"] if cur else None
        row["current_unit_cost_output"] = cur["output"] if cur else None
        rows.append(row)
    return pd.DataFrame(rows)


def providers_frame(providers: Sequence[Provider]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"name": p.name, "display_name": p.display_name, "enabled": p.enabled,
             "base_url": masked_url(p.base_url), "region": p.region, "custom": p.custom,
             "credentials": p.credential_count, "rates": p.rate_count}
            for p in providers
        ],
        columns=["name", "display_name", "enabled", "base_url", "region", "custom",
                 "credentials", "rates"],
    )  # fmt: skip


def credentials_frame(credentials: Sequence[CredentialInfo]) -> pd.DataFrame:
    """Masked only: ``display_text`` is the one view of the secret."""
    return pd.DataFrame([asdict(c) for c in credentials])


def _round(pct: Decimal | None) -> Decimal | None:
    if pct is None:
        return None
    try:
        return pct.quantize(Decimal("0.01"))
    except InvalidOperation:
        # a cost near zero implies a markup beyond any precision (1E+247 %): shown unrounded
        return pct
