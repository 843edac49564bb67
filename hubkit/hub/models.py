"""The hub's answers as frozen, validated values (parsed from JSON with ``parse_float=Decimal``).

Every parser takes the decoded JSON and either returns a value or raises
:class:`BadHubResponse` naming the field; the client turns that into a
:class:`hubkit.errors.HubError` carrying the request's method and path.

Money is Decimal throughout: rates are quantised to 10 places (the hub stores
``DECIMAL(20,10)``); unit costs keep every digit. The encrypted ``credentialValue`` the
hub sends with credentials is never read: parsers pick the fields they know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from hubkit.decimals import plain, quantize
from hubkit.domain import (
    Caching,
    CredentialType,
    ProviderSpec,
    RateSpec,
    RateType,
    UnitCosts,
)
from hubkit.errors import ValidationError

#: Providers whose costs the hub's sync mode copies from tier-1 providers (a side effect).
TIER2_PROVIDERS: tuple[str, ...] = ("openrouter", "poe")


class BadHubResponse(ValueError):
    """The hub's JSON did not have the shape hub-api.md promises."""


# --- field readers ----------------------------------------------------------------------------


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadHubResponse(f"{what} should be a JSON object, got {type(data).__name__}")
    return data


def _list(data: Any, what: str) -> Sequence[Any]:
    if not isinstance(data, list):
        raise BadHubResponse(f"{what} should be a JSON array, got {type(data).__name__}")
    return data


def _str(data: Mapping[str, Any], key: str, what: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and key.endswith("id"):
        return str(value)  # some hubs send numeric ids
    if not isinstance(value, str):
        raise BadHubResponse(f"{what}.{key} should be text, got {value!r}")
    return value


def _id(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise BadHubResponse(f"{what}.{key} should be a non-empty id, got {value!r}")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    return default if value is None else bool(value)


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadHubResponse(f"{key} should be an integer, got {value!r}") from None


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise BadHubResponse(f"{what} should be a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadHubResponse(f"{what} should be a number, got {value!r}") from None
    elif isinstance(value, float):  # only if someone decoded without parse_float=Decimal
        result = Decimal(repr(value))
    else:
        raise BadHubResponse(f"{what} should be a number, got {value!r}")
    if not result.is_finite():
        raise BadHubResponse(f"{what} should be finite, got {value!r}")
    return result


def _rate(value: Any, what: str) -> Decimal:
    return quantize(_decimal(value, what))


def _opt_decimal(value: Any, what: str) -> Decimal | None:
    return None if value is None else _decimal(value, what)


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise BadHubResponse(f"{what} should be a timestamp, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadHubResponse(f"{what} should be an ISO timestamp, got {value!r}") from None


_Value = TypeVar("_Value")


def _domain(call: Callable[[], _Value], what: str) -> _Value:
    """Run a domain parser; its ValidationError becomes a BadHubResponse."""
    try:
        return call()
    except ValidationError as exc:
        raise BadHubResponse(f"{what}: {exc}") from None


def _unit_costs(value: Any, what: str) -> UnitCosts | None:
    """The hub's ``unitCosts`` as hubkit reads them: zeros are *no unit costs*.

    The gateway answers ``{"input": "0", "output": "0"}`` for a rate batch-created without
    unit costs (it stores ``{}``), so zeros on both sides cannot be told apart from none.
    hubkit reads them as none: a margin then skips the rate (reported, never guessed)
    instead of pricing it at 0, and :func:`hubkit.hub._fields.costs_text` compares a local
    0/0 as none too, so a plan settles either way.
    """
    if value is None or (isinstance(value, Mapping) and not value):
        return None
    costs = _domain(lambda: UnitCosts.parse(value), f"{what}.unitCosts")
    if costs is None or (costs.input == 0 and costs.output == 0):
        return None
    return costs


def _caching(value: Any, what: str) -> Caching | None:
    if value is None or (isinstance(value, Mapping) and not value):
        return None
    return _domain(lambda: Caching.parse(value), f"{what}.caching")


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubProviderRef:
    """The short provider object the paged rate list embeds."""

    id: str
    name: str
    display_name: str

    @classmethod
    def from_json(cls, data: Any) -> HubProviderRef:
        obj = _obj(data, "provider")
        return cls(
            id=_id(obj, "id", "provider"),
            name=_str(obj, "name", "provider") or "",
            display_name=_str(obj, "displayName", "provider", optional=True) or "",
        )


@dataclass(frozen=True, slots=True)
class HubCredential:
    """A credential's metadata as the hub shows it; masked only, never the value."""

    id: str
    provider_id: str
    name: str
    credential_type: CredentialType
    active: bool
    display_text: str
    masked_value: Mapping[str, str] = field(default_factory=dict, hash=False)
    weight: int = 100
    usage_count: int = 0
    error: str | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> HubCredential:
        obj = _obj(data, "credential")
        masked = obj.get("maskedValue")
        masked_map = (
            {str(k): str(v) for k, v in masked.items() if isinstance(v, str)}
            if isinstance(masked, Mapping)
            else {}
        )
        return cls(
            id=_id(obj, "id", "credential"),
            provider_id=_id(obj, "providerId", "credential"),
            name=_str(obj, "name", "credential") or "",
            credential_type=_domain(
                lambda: CredentialType.parse(obj.get("credentialType") or "api_key"),
                "credential.credentialType",
            ),
            active=_bool(obj, "active", True),
            display_text=_str(obj, "displayText", "credential", optional=True) or "***",
            masked_value=masked_map,
            weight=_int(obj, "weight", 100),
            usage_count=_int(obj, "usageCount", 0),
            error=_str(obj, "error", "credential", optional=True),
            last_used_at=_time(obj.get("lastUsedAt"), "credential.lastUsedAt"),
            created_at=_time(obj.get("createdAt"), "credential.createdAt"),
            updated_at=_time(obj.get("updatedAt"), "credential.updatedAt"),
        )


@dataclass(frozen=True, slots=True)
class HubRate:
    """One AiModelRate as the hub stores it (rates quantised to 10 places)."""

    id: str
    provider_id: str
    model: str
    type: RateType
    input_rate: Decimal
    output_rate: Decimal
    model_display: str
    description: str | None = None
    unit_costs: UnitCosts | None = None
    caching: Caching | None = None
    model_metadata: Mapping[str, Any] | None = field(default=None, hash=False)
    deprecated: bool = False
    deprecated_at: datetime | None = None
    deprecated_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    provider: HubProviderRef | None = None

    @classmethod
    def from_json(cls, data: Any) -> HubRate:
        obj = _obj(data, "rate")
        what = f"rate {obj.get('id')!r}"
        model = _str(obj, "model", what) or ""
        provider = obj.get("provider")
        return cls(
            id=_id(obj, "id", what),
            provider_id=_id(obj, "providerId", what),
            model=model,
            type=_domain(lambda: RateType.parse(obj.get("type")), f"{what}.type"),
            input_rate=_rate(obj.get("inputRate"), f"{what}.inputRate"),
            output_rate=_rate(obj.get("outputRate"), f"{what}.outputRate"),
            model_display=_str(obj, "modelDisplay", what, optional=True) or model,
            description=_str(obj, "description", what, optional=True) or None,
            unit_costs=_unit_costs(obj.get("unitCosts"), what),
            caching=_caching(obj.get("caching"), what),
            model_metadata=_mapping(obj.get("modelMetadata")),
            deprecated=_bool(obj, "deprecated", False),
            deprecated_at=_time(obj.get("deprecatedAt"), f"{what}.deprecatedAt"),
            deprecated_reason=_str(obj, "deprecatedReason", what, optional=True),
            created_at=_time(obj.get("createdAt"), f"{what}.createdAt"),
            updated_at=_time(obj.get("updatedAt"), f"{what}.updatedAt"),
            provider=HubProviderRef.from_json(provider) if isinstance(provider, Mapping) else None,
        )

    @property
    def key(self) -> tuple[str, str, RateType]:
        """(provider id, model, type): unique on the hub."""
        return (self.provider_id, self.model, self.type)

    def to_spec(self, provider_name: str) -> RateSpec:
        """This rate as hubkit's validated :class:`~hubkit.domain.RateSpec`."""
        return RateSpec.create(
            provider_name,
            self.model,
            self.type,
            input_rate=self.input_rate,
            output_rate=self.output_rate,
            model_display=self.model_display,
            unit_costs=self.unit_costs,
            caching=self.caching,
            model_metadata=self.model_metadata,
            description=self.description,
        )


@dataclass(frozen=True, slots=True)
class HubProvider:
    """A provider with its credentials (masked) and, when asked for, its rates."""

    id: str
    name: str
    display_name: str
    base_url: str | None
    region: str | None
    enabled: bool
    config: Mapping[str, Any] | None = field(default=None, hash=False)
    credentials: tuple[HubCredential, ...] = ()
    model_rates: tuple[HubRate, ...] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> HubProvider:
        obj = _obj(data, "provider")
        what = f"provider {obj.get('name')!r}"
        rates = obj.get("modelRates")
        return cls(
            id=_id(obj, "id", what),
            name=_str(obj, "name", what) or "",
            display_name=_str(obj, "displayName", what, optional=True) or "",
            base_url=_str(obj, "baseUrl", what, optional=True) or None,
            region=_str(obj, "region", what, optional=True) or None,
            enabled=_bool(obj, "enabled", True),
            config=_mapping(obj.get("config")),
            credentials=tuple(
                HubCredential.from_json(c)
                for c in _list(obj.get("credentials") or [], f"{what}.credentials")
            ),
            model_rates=None
            if rates is None
            else tuple(HubRate.from_json(r) for r in _list(rates, f"{what}.modelRates")),
            created_at=_time(obj.get("createdAt"), f"{what}.createdAt"),
            updated_at=_time(obj.get("updatedAt"), f"{what}.updatedAt"),
        )

    def to_spec(self) -> ProviderSpec:
        """This provider as hubkit's :class:`~hubkit.domain.ProviderSpec`."""
        return ProviderSpec.create(
            self.name,
            self.display_name or self.name,
            base_url=self.base_url,
            region=self.region,
            enabled=self.enabled,
            config=self.config,
            custom=True,
        )


@dataclass(frozen=True, slots=True)
class RatePage:
    """One page of ``GET /api/ai-providers/model-rates``."""

    count: int
    items: tuple[HubRate, ...]
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.page_size)) if self.page_size else 1

    @classmethod
    def from_json(cls, data: Any) -> RatePage:
        obj = _obj(data, "rate page")
        paging = _obj(obj.get("paging") or {}, "paging")
        return cls(
            count=_int(obj, "count", 0),
            items=tuple(HubRate.from_json(r) for r in _list(obj.get("list"), "list")),
            page=_int(paging, "page", 1),
            page_size=_int(paging, "pageSize", 20),
        )


@dataclass(frozen=True, slots=True)
class BatchCreateResult:
    message: str
    rates: tuple[HubRate, ...]
    total: int

    @classmethod
    def from_json(cls, data: Any) -> BatchCreateResult:
        obj = _obj(data, "batch create result")
        summary = _obj(obj.get("summary") or {}, "summary")
        rates = tuple(HubRate.from_json(r) for r in _list(obj.get("data"), "data"))
        return cls(
            message=str(obj.get("message") or ""),
            rates=rates,
            total=_int(summary, "total", len(rates)),
        )


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """Outcome of a credential test/check: ``ok`` or the hub's (redacted) reason."""

    ok: bool
    detail: str | None = None
    credential: HubCredential | None = None


@dataclass(frozen=True, slots=True)
class BulkUpdateItem:
    id: str
    model: str
    provider: str
    old_input_rate: Decimal
    new_input_rate: Decimal
    old_output_rate: Decimal
    new_output_rate: Decimal

    @classmethod
    def from_json(cls, data: Any) -> BulkUpdateItem:
        obj = _obj(data, "summary item")
        what = f"summary {obj.get('id')!r}"
        return cls(
            id=_id(obj, "id", what),
            model=_str(obj, "model", what) or "",
            provider=str(obj.get("provider") or ""),
            # old* arrive as strings, new* as JSON numbers (``2.5e-08``): both exact here.
            old_input_rate=_rate(obj.get("oldInputRate"), f"{what}.oldInputRate"),
            new_input_rate=_rate(obj.get("newInputRate"), f"{what}.newInputRate"),
            old_output_rate=_rate(obj.get("oldOutputRate"), f"{what}.oldOutputRate"),
            new_output_rate=_rate(obj.get("newOutputRate"), f"{what}.newOutputRate"),
        )


@dataclass(frozen=True, slots=True)
class BulkUpdateResult:
    """What the hub's margin-mode bulk update *did* (it has already been applied)."""

    message: str
    updated: int
    skipped: int
    profit_margin: Decimal | None
    credit_price: Decimal | None
    summary: tuple[BulkUpdateItem, ...]

    @classmethod
    def from_json(cls, data: Any) -> BulkUpdateResult:
        obj = _obj(data, "bulk update result")
        params = _obj(obj.get("parameters") or {}, "parameters")
        return cls(
            message=str(obj.get("message") or ""),
            updated=_int(obj, "updated", 0),
            skipped=_int(obj, "skipped", 0),
            profit_margin=_opt_decimal(params.get("profitMargin"), "parameters.profitMargin"),
            credit_price=_opt_decimal(params.get("creditPrice"), "parameters.creditPrice"),
            summary=tuple(
                BulkUpdateItem.from_json(s) for s in _list(obj.get("summary") or [], "summary")
            ),
        )


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """One item of a sync-mode request: new unit costs for (provider *name*, model)."""

    provider: str
    model: str
    unit_costs: UnitCosts
    caching: Caching | None = None
    is_new: bool = False
    model_type: RateType | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "providerId": self.provider,
            "model": self.model,
            "unitCosts": self.unit_costs.to_json(),
        }
        if self.caching is not None:
            body["caching"] = self.caching.to_json()
        if self.is_new:
            body["isNew"] = True
        if self.model_type is not None:
            body["modelType"] = RateType.parse(self.model_type).value
        if self.source:
            body["source"] = self.source
        return body


@dataclass(frozen=True, slots=True)
class RatePair:
    input_rate: Decimal
    output_rate: Decimal

    @classmethod
    def from_json(cls, data: Any, what: str) -> RatePair | None:
        if not isinstance(data, Mapping) or data.get("inputRate") is None:
            return None
        return cls(
            input_rate=_rate(data.get("inputRate"), f"{what}.inputRate"),
            output_rate=_rate(data.get("outputRate"), f"{what}.outputRate"),
        )


@dataclass(frozen=True, slots=True)
class SyncItem:
    """A row of a sync result (updated / unchanged / unmatched / created / deprecated / error).

    Fields the hub does not send for that list stay None.
    """

    model: str
    provider: str
    id: str | None = None
    type: RateType | None = None
    old_unit_costs: UnitCosts | None = None
    new_unit_costs: UnitCosts | None = None
    old_rates: RatePair | None = None
    new_rates: RatePair | None = None
    old_caching: Caching | None = None
    new_caching: Caching | None = None
    source: str | None = None
    reason: str | None = None
    error: str | None = None

    @property
    def is_tier2_side_effect(self) -> bool:
        """A tier-2 (openrouter, poe) rate the hub changed because a tier-1 cost changed."""
        return self.provider in TIER2_PROVIDERS and (self.source or "").startswith("inherited:")

    @classmethod
    def from_json(cls, data: Any) -> SyncItem:
        obj = _obj(data, "sync item")
        what = f"sync item {obj.get('provider')}/{obj.get('model')}"
        raw_type = obj.get("type")
        rates = obj.get("rates")  # created entries carry {rates: {inputRate, outputRate}}
        return cls(
            model=str(obj.get("model") or ""),
            provider=str(obj.get("provider") or ""),
            id=None if obj.get("id") is None else str(obj.get("id")),
            type=None
            if raw_type is None
            else _domain(lambda: RateType.parse(raw_type), f"{what}.type"),
            old_unit_costs=_unit_costs(obj.get("oldUnitCosts"), what),
            new_unit_costs=_unit_costs(obj.get("newUnitCosts") or obj.get("unitCosts"), what),
            old_rates=RatePair.from_json(obj.get("oldRates"), f"{what}.oldRates"),
            new_rates=RatePair.from_json(obj.get("newRates") or rates, f"{what}.newRates"),
            old_caching=_caching(obj.get("oldCaching"), what),
            new_caching=_caching(obj.get("newCaching") or obj.get("caching"), what),
            source=None if obj.get("source") is None else str(obj.get("source")),
            reason=None if obj.get("reason") is None else str(obj.get("reason")),
            error=None if obj.get("error") is None else str(obj.get("error")),
        )


@dataclass(frozen=True, slots=True)
class SyncSummary:
    total: int
    updated: int
    unchanged: int
    unmatched: int
    created: int
    errors: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The hub's sync-mode answer; with ``dry_run`` nothing was written."""

    message: str
    dry_run: bool
    summary: SyncSummary
    updated: tuple[SyncItem, ...]
    unchanged: tuple[SyncItem, ...]
    unmatched: tuple[SyncItem, ...]
    created: tuple[SyncItem, ...]
    errors: tuple[SyncItem, ...]
    deprecated: tuple[SyncItem, ...]

    @property
    def tier2_side_effects(self) -> tuple[SyncItem, ...]:
        return tuple(item for item in self.updated if item.is_tier2_side_effect)

    @classmethod
    def from_json(cls, data: Any) -> SyncResult:
        obj = _obj(data, "sync result")
        summary = _obj(obj.get("summary") or {}, "summary")

        def items(key: str) -> tuple[SyncItem, ...]:
            return tuple(SyncItem.from_json(i) for i in _list(obj.get(key) or [], key))

        return cls(
            message=str(obj.get("message") or ""),
            dry_run=bool(obj.get("dryRun")),
            summary=SyncSummary(
                **{k: _int(summary, k, 0) for k in SyncSummary.__dataclass_fields__}
            ),
            updated=items("updated"),
            unchanged=items("unchanged"),
            unmatched=items("unmatched"),
            created=items("created"),
            errors=items("errors"),
            deprecated=items("deprecated"),
        )


@dataclass(frozen=True, slots=True)
class Health:
    """``{provider name: {credential name: running}}`` and the hub's clock."""

    providers: Mapping[str, Mapping[str, bool]] = field(hash=False)
    timestamp: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> Health:
        obj = _obj(data, "health")
        providers = _obj(obj.get("providers") or {}, "health.providers")
        return cls(
            providers={
                str(p): {
                    str(c): bool(_obj(s, "health credential").get("running"))
                    for c, s in _obj(creds, f"health.providers.{p}").items()
                }
                for p, creds in providers.items()
            },
            timestamp=_time(obj.get("timestamp"), "health.timestamp"),
        )


def decimal_json(value: Decimal | None) -> str | None:
    """A Decimal as the plain string the hub expects (``"0.0000025"``, never ``2.5e-06``)."""
    return plain(value)
