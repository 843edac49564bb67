"""Canonical text for every field a plan compares, so a diff is an exact string compare.

Rates are quantised to 10 places (the hub's ``DECIMAL(20,10)``) and written as plain
decimal strings; unit costs keep every digit; JSON-ish fields (unit costs, caching,
model metadata, provider config) become compact, key-sorted JSON; "nothing" is ``None``
(an empty description, region, config or metadata counts as nothing, as the hub treats it).

The same texts are what a saved plan carries and what ``apply`` turns back into request
values (:func:`decode`), so nothing is lost between showing a plan and applying it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from hubkit.decimals import plain, quantize
from hubkit.domain import Caching, UnitCosts, validate_model_metadata
from hubkit.errors import ValidationError

#: Rate fields in the order plans show them; the first three are the money that bills.
RATE_FIELDS = (
    "inputRate",
    "outputRate",
    "unitCosts",
    "caching",
    "modelDisplay",
    "description",
    "modelMetadata",
)
#: Rate fields the hub's PUT cannot set back to "nothing" (the client sends only values).
UNCLEARABLE_RATE_FIELDS = frozenset({"unitCosts", "caching", "modelMetadata"})
PROVIDER_FIELDS = ("displayName", "baseUrl", "region", "enabled", "config")
#: Provider fields the hub's ``PUT /api/ai-providers/{id}`` ignores (hub-api.md).
MANUAL_PROVIDER_FIELDS = frozenset({"displayName", "config"})


# Read-only members (properties): the values passed in are frozen dataclasses, and a plain
# protocol attribute would demand a settable one.
class _RateLike(Protocol):
    @property
    def input_rate(self) -> Decimal: ...
    @property
    def output_rate(self) -> Decimal: ...
    @property
    def unit_costs(self) -> UnitCosts | None: ...
    @property
    def caching(self) -> Caching | None: ...
    @property
    def model_display(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def model_metadata(self) -> Mapping[str, Any] | None: ...


class _ProviderLike(Protocol):
    @property
    def display_name(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def config(self) -> Mapping[str, Any] | None: ...


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rate_text(value: Decimal) -> str:
    return plain(quantize(value)) or "0"


def costs_text(costs: UnitCosts | None) -> str | None:
    # zeros on both sides read back from the hub as none (hubkit.hub.models._unit_costs)
    if costs is None or (costs.input == 0 and costs.output == 0):
        return None
    return _json(costs.to_json())


def caching_text(caching: Caching | None) -> str | None:
    if caching is None:
        return None
    data = caching.to_json()
    return _json(data) if data else None


def metadata_text(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata:
        return None
    try:
        # validation also normalises (features sorted), so equal metadata compares equal
        clean = validate_model_metadata(metadata) or {}
    except ValidationError:
        clean = dict(metadata)
    return _json(clean) if clean else None


def _text(value: str | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def rate_fields(rate: _RateLike) -> dict[str, str | None]:
    """A local :class:`~hubkit.domain.Rate` or a :class:`~hubkit.hub.HubRate`, as texts."""
    return {
        "inputRate": rate_text(rate.input_rate),
        "outputRate": rate_text(rate.output_rate),
        "unitCosts": costs_text(rate.unit_costs),
        "caching": caching_text(rate.caching),
        "modelDisplay": _text(rate.model_display),
        "description": _text(rate.description),
        "modelMetadata": metadata_text(rate.model_metadata),
    }


def provider_fields(provider: _ProviderLike) -> dict[str, str | None]:
    """A local :class:`~hubkit.store.Provider` or a :class:`~hubkit.hub.HubProvider`."""
    config = dict(provider.config or {})
    return {
        "displayName": _text(provider.display_name),
        "baseUrl": _text(provider.base_url),
        "region": _text(provider.region),
        "enabled": "true" if provider.enabled else "false",
        "config": _json(config) if config else None,
    }


def decode(field: str, text: str | None) -> Any:
    """A plan's text back into the value a :class:`~hubkit.hub.HubClient` call takes."""
    if text is None:
        return None
    if field in ("unitCosts", "caching", "modelMetadata", "config"):
        return json.loads(text)
    if field == "enabled":
        return text == "true"
    return text
