"""``POST /api/ai-providers/bulk-rate-update`` for the local hub: margin and sync modes.

Margin mode does what the real route does — including what makes it dangerous: it never
reads ``dryRun``, rewrites every rate with unit costs at once (10 at a time, saving after
each batch), and skips a failed update silently. The arithmetic is the local hub's own
:func:`hubkit.localhub.rules.margin_rate` (exact, 10 places, ROUND_HALF_UP); the summary's
``newInputRate``/``newOutputRate`` are JSON numbers (``2.5e-08``) and ``old*`` strings.

Sync mode follows ``handleSyncMode`` and ``libs/bulk-rate-sync.ts``: matches by provider
*name* (or id) and model (with the date-suffix / ``-0`` fallbacks), honours ``dryRun``,
creates ``isNew`` rates, copies tier-1 cost changes to tier-2 providers (openrouter, poe)
and can deprecate tier-1 chat rates the update list does not mention.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from hubkit.localhub.rules import (
    RATE_TYPES,
    RateOutOfRange,
    decimal_text,
    margin_rate,
    rate_text,
)
from hubkit.localhub.state import LocalHubState, now_iso
from hubkit.localhub.validation import (
    MISSING,
    ApiError,
    check_object,
    fail,
    get_array,
    get_boolean,
    get_number,
    get_object,
    get_string,
    parse_caching,
    parse_unit_costs,
    reject_unknown,
)

TIER1 = ("openai", "anthropic", "google", "xai", "deepseek", "doubao")
TIER2 = ("poe", "openrouter", "rock")
_BATCH = 10

_ALIASES = {
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "google": "google",
    "anthropic": "anthropic",
    "openai": "openai",
    "text-completion-openai": "openai",
    "chatgpt": "openai",
    "deepseek": "deepseek",
    "xai": "xai",
    "x-ai": "xai",
    "openrouter": "openrouter",
    "volcengine": "doubao",
}
_MODEL_OVERRIDES = {
    "gemini-flash-2.5": "gemini-2.5-flash",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct",
}
_PREFIX_PROVIDER = {
    "claude-": "anthropic",
    "gpt-": "openai",
    "o1-": "openai",
    "o3-": "openai",
    "o4-": "openai",
    "gemini-": "google",
    "grok-": "xai",
    "deepseek-": "deepseek",
}


def _num(value: Any) -> float:
    """A JSON number as the real route sends it (``Number(...)``)."""
    return float(Decimal(str(value)))


def _margin_rate(unit_cost: Decimal, profit_margin: Decimal, credit_price: Decimal) -> Decimal:
    """:func:`~hubkit.localhub.rules.margin_rate`, its overflow answered as a 500."""
    try:
        return margin_rate(unit_cost, profit_margin, credit_price)
    except RateOutOfRange as exc:
        # The text the local hub has always answered here (the real hub's is undocumented).
        raise ApiError(500, f"ValidationError: {exc}") from None


# --- request ----------------------------------------------------------------------------------


def parse_request(body: Any) -> dict[str, Any]:
    body = check_object(body)
    mode = get_string(body, "mode", valid=("margin", "sync"), default="margin")
    apply_rates = body.get("applyRates") in (True, "true")
    needed = mode == "margin" or apply_rates
    out: dict[str, Any] = {"mode": mode}
    out["profitMargin"] = get_number(body, "profitMargin", required=needed, minimum=0)
    out["creditPrice"] = get_number(body, "creditPrice", required=needed, positive=True)
    updates = get_array(body, "updates")
    if updates is not MISSING:
        out["updates"] = [_parse_update(u, f"updates[{i}]") for i, u in enumerate(updates)]
    entries = get_array(body, "entries")
    if entries is not MISSING:
        out["entries"] = [_parse_entry(e, f"entries[{i}]") for i, e in enumerate(entries)]
    out["applyRates"] = get_boolean(body, "applyRates", default=False)
    out["deprecateUnmatched"] = get_boolean(body, "deprecateUnmatched", default=False)
    out["dryRun"] = get_boolean(body, "dryRun", default=False)
    reject_unknown(
        body,
        (
            "mode",
            "profitMargin",
            "creditPrice",
            "updates",
            "entries",
            "applyRates",
            "deprecateUnmatched",
            "dryRun",
        ),
    )
    return out


def _parse_update(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f'"{path}" must be of type object')
    out = {
        "providerId": get_string(value, "providerId", path=f"{path}.providerId", required=True),
        "model": get_string(value, "model", path=f"{path}.model", required=True),
        "unitCosts": get_object(
            value, "unitCosts", parse_unit_costs, required=True, path=f"{path}.unitCosts"
        ),
    }
    caching = get_object(value, "caching", parse_caching, path=f"{path}.caching")
    out["caching"] = None if caching is MISSING else caching
    out["source"] = get_string(value, "source", path=f"{path}.source", default=None)
    out["isNew"] = get_boolean(value, "isNew", path=f"{path}.isNew", default=False)
    out["modelType"] = get_string(value, "modelType", path=f"{path}.modelType", default=None)
    reject_unknown(
        value,
        ("providerId", "model", "unitCosts", "caching", "source", "isNew", "modelType"),
        f"{path}.",
    )
    return out


def _parse_entry(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f'"{path}" must be of type object')
    get_string(value, "provider", path=f"{path}.provider", required=True)
    get_string(value, "modelId", path=f"{path}.modelId", required=True)
    for key in ("inputCostPerToken", "outputCostPerToken", "cachedInputCostPerToken"):
        get_number(value, key, path=f"{path}.{key}", allow_null=True)
    return dict(value)  # unknown keys allowed for entries


def _normalize_provider(name: str) -> str | None:
    lower = name.lower()
    if lower in _ALIASES:
        return _ALIASES[lower]
    for alias, canonical in _ALIASES.items():
        if lower.startswith(alias):
            return canonical
    return "bedrock" if lower.startswith("bedrock") else None


def entries_to_updates(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``officialPricingToSyncUpdates``: token-priced catalogue entries → sync updates."""
    updates = []
    for entry in entries:
        if entry.get("inputCostPerToken") is None and entry.get("outputCostPerToken") is None:
            continue
        update: dict[str, Any] = {
            "providerId": _normalize_provider(entry["provider"]) or entry["provider"],
            "model": entry["modelId"],
            "unitCosts": {
                "input": Decimal(str(entry.get("inputCostPerToken") or 0)),
                "output": Decimal(str(entry.get("outputCostPerToken") or 0)),
            },
            "source": "official-pricing-catalog",
            "isNew": bool(entry.get("isNew")),
            "modelType": entry.get("modelType"),
            "caching": None,
        }
        read = entry.get("cachedInputCostPerToken")
        writes = [t for t in entry.get("cacheTiers") or [] if "write" in str(t.get("label", ""))]
        if read is not None or writes:
            update["caching"] = {}
            if read is not None:
                update["caching"]["readRate"] = Decimal(str(read))
            if writes:
                top = max(writes, key=lambda t: Decimal(str(t.get("costPerToken", 0))))
                update["caching"]["writeRate"] = Decimal(str(top["costPerToken"]))
        updates.append(update)
    return updates


# --- margin mode ------------------------------------------------------------------------------


def margin_update(
    state: LocalHubState, params: Mapping[str, Any], fail_models: Iterable[str] = ()
) -> dict[str, Any]:
    """Rewrite every rate with unit costs, now, whatever ``dryRun`` says (as the hub does)."""
    margin, price = params["profitMargin"], params["creditPrice"]
    failing = set(fail_models)
    rates = state.rates
    if not rates:
        return {
            "message": "No model rates found to update",
            "updated": 0,
            "skipped": 0,
            "summary": [],
        }
    valid = [r for r in rates if _has_costs(r.get("unitCosts"))]
    summary: list[dict[str, Any]] = []
    failed = 0
    for start in range(0, len(valid), _BATCH):
        for rate in valid[start : start + _BATCH]:
            if rate["model"] in failing:
                failed += 1  # the hub logs the error and skips the rate silently
                continue
            costs = rate["unitCosts"]
            new_in = _margin_rate(Decimal(costs.get("input") or 0), margin, price)
            new_out = _margin_rate(Decimal(costs.get("output") or 0), margin, price)
            provider = state.find_provider(rate["providerId"])
            summary.append(
                {
                    "id": rate["id"],
                    "model": rate["model"],
                    "provider": provider["displayName"] if provider else "Unknown",
                    "oldInputRate": rate["inputRate"],
                    "newInputRate": float(new_in),
                    "oldOutputRate": rate["outputRate"],
                    "newOutputRate": float(new_out),
                }
            )
            rate.update(inputRate=rate_text(new_in), outputRate=rate_text(new_out))
            rate["updatedAt"] = now_iso()
        state.write_now()  # one batch of 10 at a time: a crash leaves earlier batches applied
    updated = len(summary)
    return {
        "message": f"Successfully updated {updated} model rates",
        "updated": updated,
        "skipped": len(rates) - len(valid) + failed,
        "parameters": {"profitMargin": _num(margin), "creditPrice": _num(price)},
        "summary": summary,
    }


def _has_costs(costs: Any) -> bool:
    if not isinstance(costs, Mapping):
        return False
    return Decimal(costs.get("input") or 0) > 0 or Decimal(costs.get("output") or 0) > 0


# --- sync mode --------------------------------------------------------------------------------


def _fallbacks(model: str) -> list[str]:
    if model in _MODEL_OVERRIDES:
        return [_MODEL_OVERRIDES[model]]
    out = []
    if re.match(r"^claude-.*-\d+-0$", model):
        out.append(re.sub(r"-0$", "", model))
    dated = re.match(r"^(.+)-(\d{4}-\d{2}-\d{2})$", model)
    if dated:
        out.append(dated.group(1))
    return out


def _match(rows: list[dict[str, Any]], provider: str, model: str) -> dict[str, Any] | None:
    def same(r: Mapping[str, Any]) -> bool:
        return bool(r["providerId"] == provider or r["_providerName"] == provider)

    for candidate in (model, *_fallbacks(model)):
        hit = next((r for r in rows if same(r) and r["model"] == candidate), None)
        if hit is not None:
            return hit
    return None


def _primary(model: str, provider_name: str) -> tuple[str, str]:
    """``resolveModelMapping``: which tier-1 (provider, model) a tier-2 rate follows."""
    canonical = _normalize_provider(provider_name) or provider_name
    resolved = _MODEL_OVERRIDES.get(model, model)
    if canonical not in TIER2:
        return canonical, resolved
    if canonical == "openrouter" and "/" in resolved:
        prefix, _, rest = resolved.partition("/")
        mapped = _normalize_provider(prefix)
        if mapped in TIER1:
            return mapped, rest
    for prefix, provider in _PREFIX_PROVIDER.items():
        if resolved.startswith(prefix):
            return provider, resolved
    return canonical, resolved


def _costs_changed(old: Any, new: Mapping[str, Decimal]) -> bool:
    if not isinstance(old, Mapping) or not old:
        return True
    return (
        Decimal(old.get("input") or 0) != new["input"]
        or Decimal(old.get("output") or 0) != new["output"]
    )


def _costs_out(costs: Any) -> dict[str, float] | None:
    if not isinstance(costs, Mapping) or not costs:
        return None
    return {k: _num(v) for k, v in costs.items() if v is not None}


def sync_update(state: LocalHubState, params: Mapping[str, Any]) -> dict[str, Any]:
    """The hub's sync mode; nothing is written when ``dryRun`` is true."""
    if "updates" in params:
        updates = params["updates"]
    elif "entries" in params:
        updates = entries_to_updates(params["entries"])
    else:
        raise ApiError(400, 'sync mode requires either "updates" or "entries" array')
    dry = params["dryRun"]
    apply_rates = params["applyRates"]
    margin, price = params.get("profitMargin", MISSING), params.get("creditPrice", MISSING)
    can_rate = apply_rates and margin is not MISSING and price is not MISSING
    names = {p["id"]: p["name"].lower() for p in state.providers}
    ids_by_name = {p["name"].lower(): p["id"] for p in state.providers}
    rows = state.snapshot_rates()  # a working copy: committed at the end unless dryRun
    for row in rows:
        row["_providerName"] = names.get(row["providerId"], "")
    result: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("updated", "unchanged", "unmatched", "created", "errors")
    }
    new_rows: list[dict[str, Any]] = []
    tier1: dict[str, Mapping[str, Decimal]] = {}

    def rates_for(costs: Mapping[str, Decimal]) -> tuple[Decimal, Decimal] | None:
        if not can_rate:
            return None
        return _margin_rate(costs["input"], margin, price), _margin_rate(
            costs["output"], margin, price
        )

    for update in updates:
        match = _match(rows, update["providerId"], update["model"])
        if match is None:
            _sync_unmatched(state, update, rows, new_rows, ids_by_name, rates_for, dry, result)
            continue
        pname = match["_providerName"] or match["providerId"]
        new_costs = update["unitCosts"]
        caching = update.get("caching")
        old_caching = match.get("caching") or {}
        caching_changed = bool(caching) and any(
            Decimal(old_caching.get(k) or 0) != Decimal(caching.get(k) or 0)
            for k in ("readRate", "writeRate")
        )
        new_rates = rates_for(new_costs)
        rates_changed = new_rates is not None and (
            Decimal(match["inputRate"]) != new_rates[0]
            or Decimal(match["outputRate"]) != new_rates[1]
        )
        costs_changed = _costs_changed(match.get("unitCosts"), new_costs)
        if not (costs_changed or rates_changed or caching_changed):
            result["unchanged"].append(
                {"id": match["id"], "model": match["model"], "provider": pname}
            )
            continue
        old_rates = {"inputRate": _num(match["inputRate"]), "outputRate": _num(match["outputRate"])}
        entry = {
            "id": match["id"],
            "model": match["model"],
            "provider": pname,
            "oldUnitCosts": _costs_out(match.get("unitCosts")),
            "newUnitCosts": _costs_out(new_costs),
            "oldRates": old_rates,
            "newRates": old_rates
            if new_rates is None
            else {"inputRate": _num(new_rates[0]), "outputRate": _num(new_rates[1])},
            "oldCaching": _costs_out(old_caching) if old_caching else None,
            "newCaching": _costs_out(caching) if caching else None,
        }
        if not dry:
            if costs_changed:
                match["unitCosts"] = {k: decimal_text(v) for k, v in new_costs.items()}
            if caching:
                match["caching"] = {k: rate_text(v) for k, v in caching.items()}
            if match.get("deprecated"):
                match.update(deprecated=False, deprecatedAt=None, deprecatedReason=None)
            if new_rates is not None:
                match.update(inputRate=rate_text(new_rates[0]), outputRate=rate_text(new_rates[1]))
            match["updatedAt"] = now_iso()
        result["updated"].append(entry)
        tier1[f"{pname}:{match['model']}"] = new_costs

    _propagate_tier2(rows, tier1, rates_for, dry, result)
    deprecated = _deprecate_unmatched(rows, result, dry) if params["deprecateUnmatched"] else []
    if not dry:
        for row in rows:
            row.pop("_providerName", None)
        state.rates = rows + new_rows
        state.save()
    summary = {k: len(v) for k, v in result.items()}
    summary["total"] = sum(summary.values())
    message = (
        f"{'[DRY RUN] ' if dry else ''}Sync completed: {summary['updated']} updated, "
        f"{summary['created']} created, {summary['unchanged']} unchanged, "
        f"{summary['unmatched']} unmatched, {len(deprecated)} deprecated"
    )
    return {
        "message": message,
        "dryRun": bool(dry),
        **result,
        "summary": summary,
        "deprecated": deprecated,
    }


def _sync_unmatched(
    state: LocalHubState,
    update: Mapping[str, Any],
    rows: list[dict[str, Any]],
    new_rows: list[dict[str, Any]],
    ids_by_name: Mapping[str, str],
    rates_for: Callable[[Mapping[str, Decimal]], tuple[Decimal, Decimal] | None],
    dry: bool,
    result: dict[str, list[dict[str, Any]]],
) -> None:
    provider, model, source = update["providerId"], update["model"], update.get("source")
    if not update.get("isNew"):
        result["unmatched"].append({"model": model, "provider": provider, "source": source})
        return
    provider_id = ids_by_name.get(provider.lower())
    if provider_id is None:
        result["unmatched"].append(
            {
                "model": model,
                "provider": provider,
                "source": source,
                "reason": "provider not configured",
            }
        )
        return
    rtype = update.get("modelType") or "chatCompletion"
    if rtype not in RATE_TYPES:
        result["unmatched"].append(
            {
                "model": model,
                "provider": provider,
                "source": source,
                "reason": f"unsupported type: {rtype}",
            }
        )
        return
    existing = next(
        (
            r
            for r in rows
            if r["providerId"] == provider_id and r["model"] == model and r["type"] == rtype
        ),
        None,
    )
    if existing is not None:
        result["unchanged"].append({"id": existing["id"], "model": model, "provider": provider})
        return
    if any(
        r["providerId"] == provider_id and r["model"] == model and r["type"] == rtype
        for r in new_rows
    ):
        result["errors"].append(
            {"model": model, "provider": provider, "error": "create failed: Validation error"}
        )
        return
    costs = update["unitCosts"]
    rates = rates_for(costs)
    entry: dict[str, Any] = {
        "id": f"new-{provider}-{model}",
        "model": model,
        "provider": provider,
        "type": rtype,
        "unitCosts": _costs_out(costs),
    }
    if rates is not None:
        entry["rates"] = {"inputRate": _num(rates[0]), "outputRate": _num(rates[1])}
    if update.get("caching"):
        entry["caching"] = _costs_out(update["caching"])
    if not dry:
        fields = {
            "model": model,
            "type": rtype,
            "inputRate": rates[0] if rates else Decimal(0),
            "outputRate": rates[1] if rates else Decimal(0),
            "unitCosts": costs,
        }
        if update.get("caching"):
            fields["caching"] = update["caching"]
        row = state.new_rate(provider_id, fields, batch=False)
        new_rows.append(row)
        entry["id"] = row["id"]
    result["created"].append(entry)


def _propagate_tier2(
    rows: list[dict[str, Any]],
    tier1: Mapping[str, Mapping[str, Decimal]],
    rates_for: Callable[[Mapping[str, Decimal]], tuple[Decimal, Decimal] | None],
    dry: bool,
    result: dict[str, list[dict[str, Any]]],
) -> None:
    for rate in [r for r in rows if (r["_providerName"] or r["providerId"]) in TIER2]:
        pname = rate["_providerName"] or rate["providerId"]
        primary, primary_model = _primary(rate["model"], pname)
        costs = tier1.get(f"{primary}:{primary_model}")
        if costs is None:
            continue
        changed = _costs_changed(rate.get("unitCosts"), costs)
        new_rates = rates_for(costs)
        rates_changed = new_rates is not None and (
            Decimal(rate["inputRate"]) != new_rates[0]
            or Decimal(rate["outputRate"]) != new_rates[1]
        )
        if not (changed or rates_changed):
            continue
        old_rates = {"inputRate": _num(rate["inputRate"]), "outputRate": _num(rate["outputRate"])}
        old_costs = _costs_out(rate.get("unitCosts"))
        if not dry:
            if changed:
                rate["unitCosts"] = {k: decimal_text(v) for k, v in costs.items()}
            if new_rates is not None:
                rate.update(inputRate=rate_text(new_rates[0]), outputRate=rate_text(new_rates[1]))
            rate["updatedAt"] = now_iso()
        result["updated"].append(
            {
                "id": rate["id"],
                "model": rate["model"],
                "provider": pname,
                "oldUnitCosts": old_costs,
                "newUnitCosts": _costs_out(costs),
                "oldRates": old_rates,
                "newRates": old_rates
                if new_rates is None
                else {"inputRate": _num(new_rates[0]), "outputRate": _num(new_rates[1])},
                "oldCaching": _costs_out(rate.get("caching")) if rate.get("caching") else None,
                "source": f"inherited:{primary}",
            }
        )


def _deprecate_unmatched(
    rows: list[dict[str, Any]], result: Mapping[str, list[dict[str, Any]]], dry: bool
) -> list[dict[str, Any]]:
    matched = {f"{u['provider']}:{u['model']}" for u in [*result["updated"], *result["unchanged"]]}
    deprecated = []
    for rate in rows:
        pname = rate["_providerName"] or rate["providerId"]
        if pname not in TIER1 or rate.get("deprecated") or rate["type"] != "chatCompletion":
            continue
        if f"{pname}:{rate['model']}" in matched:
            continue
        if not dry:
            rate.update(
                deprecated=True,
                deprecatedAt=now_iso(),
                deprecatedReason="Model not found in official pricing data",
            )
        deprecated.append({"id": rate["id"], "model": rate["model"], "provider": pname})
    return deprecated
