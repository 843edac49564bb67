"""Reconcile the gateway's stored credits with a re-pricing by the rates in force.

The gateway's records (:func:`hubkit.usage.read_hub_database` / ``read_hub_export``)
carry the credits it charged; :func:`reconcile` prices each call again with
:func:`hubkit.replay.timeline.price_exact` (the Decimal rule) and compares. It lives in the
replay because it prices usage with a timeline; the importer below it only reads records.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.decimals import EXACT, quantize
from hubkit.errors import ValidationError
from hubkit.replay.timeline import price_exact

__all__ = ["reconcile"]


def reconcile(
    usage: pd.DataFrame, timeline: pd.DataFrame, *, places: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Re-price imported rows with the rates in force and compare with ``stored_credits``.

    The gateway stores ``ModelCalls.credits`` with 8 places: the re-priced credits (10
    places) are compared after rounding to ``places``. Returns one row per call (status
    ``match`` / ``mismatch`` / ``unsupported`` / ``no stored credits``) and a summary.
    """
    if "stored_credits" not in usage.columns:
        raise ValidationError(
            "reconcile needs a stored_credits column (import with read_hub_database)",
            field="stored_credits",
        )
    priced = price_exact(usage, timeline)
    step = Decimal(1).scaleb(-places)
    statuses: list[str] = []
    diffs: list[Decimal | None] = []  # None: unsupported, or no stored credits to compare
    for stored, credits in zip(usage["stored_credits"], priced["credits"], strict=True):
        if credits is None:
            statuses.append("unsupported")
            diffs.append(None)
        elif stored is None:
            statuses.append("no stored credits")
            diffs.append(None)
        else:
            diff = EXACT.subtract(Decimal(stored), quantize(credits).quantize(step))
            diffs.append(diff)
            statuses.append("match" if diff == 0 else "mismatch")
    out = usage[["time", "user", "provider", "model", "type"]].copy()
    if "source_id" in usage.columns:
        out.insert(0, "source_id", usage["source_id"].to_numpy())
    out["stored_credits"] = usage["stored_credits"].to_numpy()
    out["repriced_credits"] = priced["credits"].to_numpy()
    out["difference"] = np.array(diffs, dtype=object)  # Decimals (and None) as they are
    out["status"] = statuses
    counts = Counter(statuses)
    total_diff = sum((d for d in diffs if d is not None), Decimal(0))
    summary = {
        "rows": len(out),
        "match": counts.get("match", 0),
        "mismatch": counts.get("mismatch", 0),
        "unsupported": counts.get("unsupported", 0),
        "no_stored_credits": counts.get("no stored credits", 0),
        "stored_total": sum(
            (Decimal(s) for s in usage["stored_credits"] if s is not None), Decimal(0)
        ),
        "repriced_total": sum((c for c in priced["credits"] if c is not None), Decimal(0)),
        "difference_total": total_diff,
    }
    return out, summary
