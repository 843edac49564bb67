"""The gateway's own rates over time: ``AiModelRates`` and ``AiModelRateHistories``.

A reconciliation prices each call with the rate in force at its time. The store's history
(:meth:`hubkit.store.Store.rate_timeline`) knows only the changes hubkit made; the gateway's
database knows every change, so when it is at hand its rates make the timeline:

- ``AiModelRates``: the rates in force now — providerId, model, type, inputRate,
  outputRate, ``unitCosts`` JSON ``{input, output}``, ``caching`` JSON
  ``{readRate, writeRate}`` (a missing cache rate falls back to inputRate, a 0 one is
  honoured);
- ``AiModelRateHistories``: one row per change — providerId, model, type, ``createdAt``
  (when the change took effect), ``previousRates`` / ``currentRates`` JSON
  ``{inputRate, outputRate}``, optionally ``previousUnitCosts`` / ``currentUnitCosts``.

For a rate with changes at t1 < … < tk the periods are: before t1 the first change's
previous rates, [ti, ti+1) the i-th change's current rates, from tk on the rate in
``AiModelRates`` (a rate deleted since keeps its last change's rates). History does not
track cache rates: the current ones apply to every period (as the store's timeline does).
The result has the timeline's columns (:data:`hubkit._columns.TIMELINE_COLUMNS`);
:func:`hubkit.replay.timeline.validate_timeline` checks it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit._columns import TIMELINE_COLUMNS
from hubkit.decimals import to_decimal
from hubkit.errors import StorageError, ValidationError
from hubkit.usage.gateway import open_gateway

__all__ = ["read_hub_rates"]


def _json(value: Any, what: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(f"{what} is not JSON: {str(value)[:80]!r}", field=what) from None
    return parsed if isinstance(parsed, dict) else {}


def _amount(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return to_decimal(value, what, allow_none=True)


def _all(db: Any, table: str) -> list[dict[str, Any]]:
    return [rec for part in db.records(f'SELECT * FROM "{table}"', 100_000) for rec in part]


def read_hub_rates(source: str | Path) -> pd.DataFrame:
    """The gateway's rates in force over time, as a rate timeline (module docstring)."""
    db = open_gateway(source)
    try:
        tables = db.tables()
        if "AiModelRates" not in tables:
            raise StorageError(
                f"{db.name} has no AiModelRates table: reconcile against the store's rates "
                "instead (--rates store)"
            )
        providers: dict[str, str] = {}
        if "AiProviders" in tables:
            for rec in _all(db, "AiProviders"):
                providers[str(rec["id"])] = str(rec.get("name") or rec["id"])
        rates = _all(db, "AiModelRates")
        history = _all(db, "AiModelRateHistories") if "AiModelRateHistories" in tables else None
    finally:
        db.close()

    def provider_of(value: Any) -> str:
        return providers.get(str(value), str(value))

    current: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in rates:
        key = (provider_of(rec.get("providerId")), str(rec["model"]), str(rec["type"]))
        costs = _json(rec.get("unitCosts"), "AiModelRates.unitCosts")
        caching = _json(rec.get("caching"), "AiModelRates.caching")
        current[key] = {
            "input_rate": _amount(rec.get("inputRate"), "AiModelRates.inputRate"),
            "output_rate": _amount(rec.get("outputRate"), "AiModelRates.outputRate"),
            "cache_read_rate": _amount(caching.get("readRate"), "caching.readRate"),
            "cache_write_rate": _amount(caching.get("writeRate"), "caching.writeRate"),
            "unit_cost_input": _amount(costs.get("input"), "unitCosts.input"),
            "unit_cost_output": _amount(costs.get("output"), "unitCosts.output"),
        }
    changes: dict[tuple[str, str, str], list[tuple[pd.Timestamp, dict[str, Any], dict[str, Any]]]]
    changes = {}
    if history:
        for rec in history:
            key = (provider_of(rec.get("providerId")), str(rec["model"]), str(rec["type"]))
            stamp: Any = rec.get("createdAt")
            if stamp is None or stamp == "":
                raise ValidationError(
                    "AiModelRateHistories row without createdAt: cannot tell when the rate "
                    f"of {key} changed",
                    field="createdAt",
                )
            when = pd.Timestamp(pd.to_datetime(stamp, utc=True, format="mixed"))
            before = _json(rec.get("previousRates"), "AiModelRateHistories.previousRates")
            after = _json(rec.get("currentRates"), "AiModelRateHistories.currentRates")
            before_costs = _json(rec.get("previousUnitCosts"), "previousUnitCosts")
            after_costs = _json(rec.get("currentUnitCosts"), "currentUnitCosts")
            changes.setdefault(key, []).append(
                (when, {**before, **_costs(before_costs)}, {**after, **_costs(after_costs)})
            )
    records: list[dict[str, Any]] = []
    for key in sorted(set(current) | set(changes)):
        now = current.get(key)
        caching = (
            {"cache_read_rate": now["cache_read_rate"], "cache_write_rate": now["cache_write_rate"]}
            if now
            else {"cache_read_rate": None, "cache_write_rate": None}
        )
        steps = sorted(changes.get(key, []), key=lambda c: c[0])
        if not steps:
            if now is not None:
                records.append(_period(key, now, pd.NaT, pd.NaT))
            continue
        first_when, first_before, _ = steps[0]
        if "inputRate" in first_before and "outputRate" in first_before:
            records.append(_period(key, _values(first_before, now, caching), pd.NaT, first_when))
        for i, (when, _, after) in enumerate(steps):
            end = steps[i + 1][0] if i + 1 < len(steps) else pd.NaT
            if not pd.isna(end) and end <= when:
                continue  # two changes at one instant: the later one is in force
            last = pd.isna(end)
            values = now if (last and now is not None) else _values(after, now, caching)
            records.append(_period(key, values, when, end))
    return pd.DataFrame.from_records(records, columns=list(TIMELINE_COLUMNS))


def _costs(costs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    if "input" in costs:
        out["unit_cost_input"] = costs["input"]
    if "output" in costs:
        out["unit_cost_output"] = costs["output"]
    return out


def _values(
    rates: Mapping[str, Any], now: Mapping[str, Any] | None, caching: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "input_rate": _amount(rates.get("inputRate"), "inputRate"),
        "output_rate": _amount(rates.get("outputRate"), "outputRate"),
        **caching,
        "unit_cost_input": _amount(
            rates.get("unit_cost_input", now["unit_cost_input"] if now else None), "unitCosts"
        ),
        "unit_cost_output": _amount(
            rates.get("unit_cost_output", now["unit_cost_output"] if now else None), "unitCosts"
        ),
    }


def _period(
    key: tuple[str, str, str], values: Mapping[str, Any], start: Any, end: Any
) -> dict[str, Any]:
    provider, model, kind = key
    return {
        "provider": provider,
        "model": model,
        "type": kind,
        **values,
        "valid_from": start,
        "valid_to": end,
    }
