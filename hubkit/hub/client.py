"""``HubClient``: a typed, careful, synchronous client for AIGNE Hub's admin API.

One method per route of ``hub-api.md``; answers come back as the frozen values of
:mod:`hubkit.hub.models`. Money goes out as plain decimal strings and comes back as
Decimal. Retries, timeouts and error mapping live in :mod:`hubkit.hub._http`.

>>> with HubClient("http://127.0.0.1:9", "tok-123456") as hub:  # doctest: +SKIP
...     providers = hub.list_providers(include_model_rates=True)

Two routes deserve care:

- :meth:`HubClient.apply_margin_to_all_rates` sends the hub's margin-mode
  ``bulk-rate-update``, which **rewrites every rate with unit costs at once and ignores
  dryRun**. It refuses to run without ``confirm=True``; preview locally with
  :func:`hubkit.pricing.bulk_preview` instead.
- :meth:`HubClient.sync_rates` (sync mode) honours ``dry_run`` (the default), and its
  result lists the tier-2 side effects (openrouter, poe) the hub adds on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, overload
from urllib.parse import quote, urlsplit

import httpx

from hubkit.config import HUB_CONCURRENCY_DEFAULT, EnvironmentSettings, hub_concurrency
from hubkit.decimals import plain, quantize, require_decimal
from hubkit.domain import Caching, CredentialType, RateSpec, RateType, UnitCosts
from hubkit.errors import HubError, ValidationError
from hubkit.hub._http import Reply, RequestEngine
from hubkit.hub.models import (
    BadHubResponse,
    BatchCreateResult,
    BulkUpdateResult,
    CredentialCheck,
    Health,
    HubCredential,
    HubProvider,
    HubRate,
    RatePage,
    SyncResult,
    SyncUpdate,
)
from hubkit.hub.redact import MASK, redact, redact_url
from hubkit.pricing import validate_credit_price, validate_margin

BASE = "/api/ai-providers"
_NOT_GIVEN: Any = object()
#: What a call's parser makes of the hub's JSON (a model from hubkit.hub.models).
_Parsed = TypeVar("_Parsed")


def _seg(value: str) -> str:
    """One URL path segment (ids are opaque to us: quote everything)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"an id must be a non-empty string, got {value!r}", field="id")
    return quote(value, safe="")


def _rate_text(value: Any, field: str) -> str:
    """A rate as the hub stores it: ≥ 0, finite, 10 places, plain string."""
    return plain(quantize(require_decimal(value, field))) or "0"


def _given(**fields: Any) -> dict[str, Any]:
    """The body fields that were given: None means "not sent" (the hub keeps or defaults it)."""
    return {name: value for name, value in fields.items() if value is not None}


def _rate_extras(
    model_display: str | None,
    description: str | None,
    unit_costs: Any,
    caching: Any,
    model_metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A rate body's optional fields, as create and update send them alike."""
    costs, cache = UnitCosts.parse(unit_costs), Caching.parse(caching)
    return _given(
        modelDisplay=model_display,
        description=description,
        unitCosts=None if costs is None else costs.to_json(),
        caching=None if cache is None else cache.to_json(),
        modelMetadata=None if model_metadata is None else dict(model_metadata),
    )


def _rate_body(
    model: str, type: RateType | str, input_rate: Any, output_rate: Any, extras: dict[str, Any]
) -> dict[str, Any]:
    """What create and batch-create send: the rate's key, both rates, then its extras."""
    return {
        "model": model,
        "type": RateType.parse(type).value,
        "inputRate": _rate_text(input_rate, "inputRate"),
        "outputRate": _rate_text(output_rate, "outputRate"),
        **extras,
    }


def _credential_body(
    name: str, value: str | Mapping[str, str], credential_type: Any, test_model: str | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    ctype = CredentialType.parse(credential_type)
    if isinstance(value, str):
        if not value.strip():
            raise ValidationError("Credential cannot be empty", field="value")
        payload: str | dict[str, str] = value
        secrets: tuple[str, ...] = (value,)
    elif isinstance(value, Mapping):
        payload = {str(k): v for k, v in value.items() if v is not None}
        if not payload or any(not isinstance(v, str) for v in payload.values()):
            raise ValidationError(
                "Credential cannot be empty and every field must be text", field="value"
            )
        secrets = tuple(payload.values())
    else:
        raise ValidationError("Credential value must be a string or a mapping", field="value")
    body: dict[str, Any] = {"name": name, "value": payload, "credentialType": ctype.value}
    if test_model:
        body["testModel"] = test_model
    return body, secrets


class HubClient:
    """Talks to one AIGNE Hub. One client may be shared by threads, as ``httpx.Client`` may
    (``apply`` does): a 429 answered to one of them pauses all of them.

    ``timeout`` (s) applies to every call; ``retries`` is the number of *re*-tries of an
    idempotent call; ``max_wait`` caps the total time spent waiting on 429 answers;
    ``sleep`` and ``clock`` are injectable so tests observe waits without waiting;
    ``concurrency`` is how many requests ``apply`` keeps in flight through it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_wait: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        concurrency: int = HUB_CONCURRENCY_DEFAULT,
    ) -> None:
        self.base_url = _validate_base_url(base_url)
        #: requests ``apply`` keeps in flight through this client
        self.concurrency = hub_concurrency(concurrency)
        if not isinstance(token, str) or not token.strip():
            raise ValidationError(
                "the hub token is empty; set HUBKIT_HUB_TOKEN to an admin access key of the hub",
                field="HUBKIT_HUB_TOKEN",
            )
        if any(c in token for c in "\r\n"):
            raise ValidationError(
                "the hub token contains a line break; copy it again without one",
                field="HUBKIT_HUB_TOKEN",
            )
        if timeout <= 0 or max_wait < 0 or retries < 0:
            raise ValidationError("timeout must be > 0, max_wait ≥ 0 and retries ≥ 0")
        self._token = token.strip()
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "User-Agent": "hubkit",
            },
            follow_redirects=False,
        )
        self._engine = RequestEngine(
            self._http,
            self._token,
            timeout=timeout,
            max_wait=max_wait,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            sleep=sleep,
            clock=clock or (lambda: datetime.now(UTC)),
        )

    @classmethod
    def from_settings(cls, settings: EnvironmentSettings | None = None, **kwargs: Any) -> HubClient:
        """A client for ``HUBKIT_HUB_URL`` with ``HUBKIT_HUB_TOKEN`` (and its timeouts)."""
        settings = settings or EnvironmentSettings.from_env()
        if not settings.hub_url:
            raise ValidationError(
                "no hub configured: set HUBKIT_HUB_URL to the hub's base URL "
                "(e.g. https://hub.example.com), or start the local one with "
                "`python -m hubkit hub serve-local`",
                field="HUBKIT_HUB_URL",
            )
        if not settings.hub_token:
            raise ValidationError(
                "HUBKIT_HUB_TOKEN is not set: set it (in the environment or .env, never in a "
                "notebook) to an admin access key of the hub",
                field="HUBKIT_HUB_TOKEN",
            )
        kwargs.setdefault("timeout", settings.hub_timeout)
        kwargs.setdefault("max_wait", settings.hub_max_wait)
        kwargs.setdefault("concurrency", settings.hub_concurrency)
        return cls(settings.hub_url, settings.hub_token, **kwargs)

    def __repr__(self) -> str:
        return f"HubClient(base_url={redact_url(self.base_url)!r}, token={MASK!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    @overload
    def _call(self, method: str, path: str, parse: None = None, **kwargs: Any) -> Any: ...
    @overload
    def _call(
        self, method: str, path: str, parse: Callable[[Any], _Parsed], **kwargs: Any
    ) -> _Parsed: ...
    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        reply: Reply = self._engine.send(method, path, **kwargs)
        if parse is None:
            return reply.data
        return self._parse(method, path, parse, reply.data, kwargs.get("secrets", ()))

    def _parse(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], _Parsed],
        data: Any,
        secrets: Iterable[str] = (),
    ) -> _Parsed:
        """``parse(data)``; a malformed answer raises HubError with every known secret masked.

        A hub that echoes the request back (a credential's value in the wrong field) puts
        that value into the parser's message: mask the request's credential values as well
        as the token.
        """
        try:
            return parse(data)
        except BadHubResponse as exc:
            detail = str(exc)
        # Raised outside the ``except``: ``from None`` hides the parser's exception from
        # tracebacks but still keeps it as ``__context__``, unredacted.
        raise HubError(
            redact(
                f"{method} {path}: unexpected answer from the hub: {detail}",
                (self._token, *secrets),
            ),
            method=method,
            path=path,
        )

    @staticmethod
    def _message(data: Any) -> str:
        return str(data.get("message") or "") if isinstance(data, Mapping) else ""

    # --- providers ------------------------------------------------------------------------

    def list_providers(
        self, *, name: str | None = None, include_model_rates: bool = False
    ) -> list[HubProvider]:
        """All providers, oldest first, with masked credentials (and rates when asked)."""
        params: dict[str, Any] = {"name": name}
        if include_model_rates:  # the hub treats any value, even "false", as true
            params["includeModelRates"] = True
        return self._call(
            "GET", BASE, lambda d: [HubProvider.from_json(p) for p in _as_list(d)], params=params
        )

    def get_provider(self, name: str) -> HubProvider | None:
        """The provider called ``name`` (with its rates), or None."""
        found = self.list_providers(name=name, include_model_rates=True)
        return next((p for p in found if p.name == name), None)

    def create_provider(
        self,
        name: str,
        display_name: str,
        *,
        base_url: str | None = None,
        region: str | None = None,
        enabled: bool = True,
        config: Mapping[str, Any] | None = None,
    ) -> HubProvider:
        """Create a provider; 409 when the name exists (hub-api.md)."""
        body = {"name": name, "displayName": display_name, "enabled": enabled,
                **_given(baseUrl=base_url, region=region,
                         config=None if config is None else dict(config))}  # fmt: skip
        return self._call("POST", BASE, HubProvider.from_json, body=body)

    def update_provider(
        self,
        provider_id: str,
        *,
        name: str,
        base_url: str | None = None,
        region: str | None = None,
        enabled: bool | None = None,
    ) -> HubProvider:
        """Update name/baseUrl/region/enabled (displayName and config cannot be updated).

        The hub re-validates on every update as if creating: ``name`` is always sent, and
        ``base_url`` is required unless the provider is bedrock (then ``region`` is). A
        non-bedrock region not sent is reset to "" by the hub.
        """
        if name != "bedrock" and not base_url:
            raise ValidationError(
                f"update_provider needs base_url for {name!r}: the hub re-checks baseUrl on "
                "every update; pass the current one if it does not change",
                field="baseUrl",
            )
        if name == "bedrock" and not region:
            raise ValidationError(
                "update_provider needs region for bedrock: the hub re-checks it on every update",
                field="region",
            )
        body = {"name": name, **_given(baseUrl=base_url, region=region, enabled=enabled)}
        return self._call("PUT", f"{BASE}/{_seg(provider_id)}", HubProvider.from_json, body=body)

    def delete_provider(self, provider_id: str) -> str:
        return self._message(self._call("DELETE", f"{BASE}/{_seg(provider_id)}"))

    # --- credentials ----------------------------------------------------------------------

    def create_credential(
        self,
        provider_id: str,
        name: str,
        value: str | Mapping[str, str],
        *,
        credential_type: CredentialType | str = CredentialType.API_KEY,
        test_model: str | None = None,
    ) -> HubCredential:
        """Add a key (the hub tests it live first). Returns masked metadata only."""
        body, secrets = _credential_body(name, value, credential_type, test_model)
        path = f"{BASE}/{_seg(provider_id)}/credentials"
        return self._call("POST", path, HubCredential.from_json, body=body, secrets=secrets)

    def update_credential(
        self,
        provider_id: str,
        credential_id: str,
        name: str,
        value: str | Mapping[str, str],
        *,
        credential_type: CredentialType | str = CredentialType.API_KEY,
        test_model: str | None = None,
    ) -> HubCredential:
        """Replace a credential's value (re-activates it)."""
        body, secrets = _credential_body(name, value, credential_type, test_model)
        path = f"{BASE}/{_seg(provider_id)}/credentials/{_seg(credential_id)}"
        return self._call("PUT", path, HubCredential.from_json, body=body, secrets=secrets)

    def delete_credential(self, provider_id: str, credential_id: str) -> str:
        path = f"{BASE}/{_seg(provider_id)}/credentials/{_seg(credential_id)}"
        return self._message(self._call("DELETE", path))

    def test_credential(
        self,
        provider_id: str,
        value: str | Mapping[str, str],
        *,
        credential_type: CredentialType | str = CredentialType.API_KEY,
        test_model: str | None = None,
    ) -> CredentialCheck:
        """Test a key without saving it. The hub allows 5 tests per 10 minutes."""
        body, secrets = _credential_body("test", value, credential_type, test_model)
        body.pop("name")
        path = f"{BASE}/{_seg(provider_id)}/credentials/test"
        # Nothing is written by a test, so a retry after a lost answer is harmless.
        reply = self._engine.send(
            "POST", path, body=body, secrets=secrets, idempotent=True, accept=(400,)
        )
        return self._check_result(reply, secrets, "POST", path)

    def check_credential(
        self, provider_id: str, credential_id: str, *, test_model: str | None = None
    ) -> CredentialCheck:
        """Re-test a stored credential; the hub updates its ``active``/``error`` fields."""
        path = f"{BASE}/{_seg(provider_id)}/credentials/{_seg(credential_id)}/check"
        reply = self._engine.send("GET", path, params={"testModel": test_model}, accept=(400,))
        return self._check_result(reply, (), "GET", path)

    def _check_result(
        self, reply: Reply, secrets: tuple[str, ...], method: str, path: str
    ) -> CredentialCheck:
        data = reply.data
        if reply.status == 400:
            error = data.get("error") if isinstance(data, Mapping) else None
            if error != "Invalid credentials":
                raise self._engine.status_error(
                    method, path, 400, data, True, (self._token, *secrets)
                )
            detail = data.get("detail") if isinstance(data, Mapping) else None
            return CredentialCheck(
                ok=False, detail=redact(str(detail or error), (self._token, *secrets))
            )
        credential = None
        if isinstance(data, Mapping) and "id" in data:
            credential = self._parse(method, path, HubCredential.from_json, data, secrets)
        return CredentialCheck(ok=True, detail=None, credential=credential)

    # --- model rates ----------------------------------------------------------------------

    def list_rates(self, provider_id: str, *, include_deprecated: bool = False) -> list[HubRate]:
        """One provider's rates, by model then type."""
        params = {"includeDeprecated": "true"} if include_deprecated else None
        return self._call(
            "GET",
            f"{BASE}/{_seg(provider_id)}/model-rates",
            lambda d: [HubRate.from_json(r) for r in _as_list(d)],
            params=params,
        )

    def list_rates_page(
        self,
        *,
        page: int = 1,
        page_size: int = 20,
        provider_ids: Iterable[str] | None = None,
        model: str | None = None,
        q: str | None = None,
        order: str = "desc",
        include_deprecated: bool = False,
    ) -> RatePage:
        """One page of all rates (newest first unless ``order="asc"``), each with its provider."""
        if order not in ("asc", "desc"):
            raise ValidationError(f"order must be 'asc' or 'desc', got {order!r}", field="o")
        params: dict[str, Any] = {
            "page": page,
            "pageSize": page_size,
            "providerId": ",".join(provider_ids) if provider_ids else None,
            "model": model or None,
            "q": q or None,
            "o": order,
        }
        if include_deprecated:
            params["includeDeprecated"] = "true"
        return self._call("GET", f"{BASE}/model-rates", RatePage.from_json, params=params)

    def iter_rates(self, *, page_size: int = 100, **filters: Any) -> Iterator[HubRate]:
        """Every rate matching ``filters`` (as :meth:`list_rates_page`), oldest first."""
        filters.setdefault("order", "asc")
        page = 1
        seen = 0
        while True:
            result = self.list_rates_page(page=page, page_size=page_size, **filters)
            yield from result.items
            seen += len(result.items)
            if not result.items or seen >= result.count:
                return
            page += 1

    def create_rate(
        self,
        provider_id: str,
        *,
        model: str,
        type: RateType | str,
        input_rate: Any,
        output_rate: Any,
        model_display: str | None = None,
        description: str | None = None,
        unit_costs: Any = None,
        caching: Any = None,
        model_metadata: Mapping[str, Any] | None = None,
    ) -> HubRate:
        """Create one rate; 409 if (provider, model, type) exists; blank display → default."""
        extras = _rate_extras(model_display, description, unit_costs, caching, model_metadata)
        body = _rate_body(model, type, input_rate, output_rate, extras)
        path = f"{BASE}/{_seg(provider_id)}/model-rates"
        return self._call("POST", path, HubRate.from_json, body=body)

    def create_rate_from_spec(self, provider_id: str, spec: RateSpec) -> HubRate:
        """Create the rate a :class:`~hubkit.domain.RateSpec` describes under ``provider_id``."""
        return self.create_rate(provider_id, **_spec_fields(spec))

    def batch_create_rates(
        self,
        provider_ids: Iterable[str],
        *,
        model: str,
        type: RateType | str,
        input_rate: Any,
        output_rate: Any,
        model_display: str | None = None,
        description: str | None = None,
        unit_costs: Any = None,
        caching: Any = None,
        model_metadata: Mapping[str, Any] | None = None,
    ) -> BatchCreateResult:
        """One rate for several providers, all or nothing (400 unknown, 409 existing)."""
        ids = list(provider_ids)
        if not ids:
            raise ValidationError("batch_create_rates needs at least one provider id")
        extras = _rate_extras(model_display, description, unit_costs, caching, model_metadata)
        body = _rate_body(model, type, input_rate, output_rate, extras)
        body["providers"] = ids
        return self._call("POST", f"{BASE}/model-rates", BatchCreateResult.from_json, body=body)

    def update_rate(
        self,
        provider_id: str,
        rate_id: str,
        *,
        input_rate: Any = _NOT_GIVEN,
        output_rate: Any = _NOT_GIVEN,
        model_display: str | None = None,
        description: str | None = None,
        unit_costs: Any = None,
        caching: Any = None,
        model_metadata: Mapping[str, Any] | None = None,
    ) -> HubRate:
        """Change the given fields (model and type are immutable); 404 if missing."""
        body: dict[str, Any] = {}
        if input_rate is not _NOT_GIVEN:
            body["inputRate"] = _rate_text(input_rate, "inputRate")
        if output_rate is not _NOT_GIVEN:
            body["outputRate"] = _rate_text(output_rate, "outputRate")
        body |= _rate_extras(model_display, description, unit_costs, caching, model_metadata)
        if not body:
            raise ValidationError("update_rate: nothing to change (pass at least one field)")
        path = f"{BASE}/{_seg(provider_id)}/model-rates/{_seg(rate_id)}"
        return self._call("PUT", path, HubRate.from_json, body=body)

    def delete_rate(self, provider_id: str, rate_id: str) -> str:
        path = f"{BASE}/{_seg(provider_id)}/model-rates/{_seg(rate_id)}"
        return self._message(self._call("DELETE", path))

    # --- bulk -----------------------------------------------------------------------------

    def apply_margin_to_all_rates(
        self, profit_margin: Any, credit_price: Any, *, confirm: bool = False
    ) -> BulkUpdateResult:
        """Send the hub's margin-mode bulk update. **It applies at once; there is no dry run.**

        The hub recomputes *every* rate that has unit costs (``unitCost × (1 + margin/100)
        / creditPrice``), 10 at a time, skipping failures silently, and ignores ``dryRun``.
        Preview with :func:`hubkit.pricing.bulk_preview`; push reviewed changes rate by rate.
        Refuses unless ``confirm=True``.
        """
        margin = validate_margin(profit_margin)
        price = validate_credit_price(credit_price)
        if confirm is not True:
            raise ValidationError(
                "apply_margin_to_all_rates rewrites every rate with unit costs on the hub "
                f"immediately (margin {plain(margin)} %, credit price {plain(price)}); the hub "
                "ignores dryRun, so there is no preview on its side. Preview with "
                "hubkit.pricing.bulk_preview, then call again with confirm=True.",
                field="confirm",
            )
        # No "mode": margin is the default, and hubs from before sync mode refuse the key.
        body = {"profitMargin": plain(margin), "creditPrice": plain(price)}
        return self._call("POST", f"{BASE}/bulk-rate-update", BulkUpdateResult.from_json, body=body)

    def sync_rates(
        self,
        updates: Iterable[SyncUpdate],
        *,
        dry_run: bool = True,
        apply_rates: bool = False,
        profit_margin: Any = None,
        credit_price: Any = None,
        deprecate_unmatched: bool = False,
    ) -> SyncResult:
        """Sync-mode bulk update: new unit costs by provider *name* + model. Dry run by default.

        The hub also copies cost changes to tier-2 providers (openrouter, poe): see
        :attr:`SyncResult.tier2_side_effects`. With ``apply_rates`` it recomputes rates
        with ``profit_margin``/``credit_price`` (both required then).
        """
        items = [u.to_json() for u in updates]
        body: dict[str, Any] = {
            "mode": "sync",
            "updates": items,
            "dryRun": bool(dry_run),
            "applyRates": bool(apply_rates),
            "deprecateUnmatched": bool(deprecate_unmatched),
        }
        if apply_rates:
            if profit_margin is None or credit_price is None:
                raise ValidationError(
                    "sync_rates(apply_rates=True) needs profit_margin and credit_price",
                    field="profitMargin" if profit_margin is None else "creditPrice",
                )
        if profit_margin is not None:
            body["profitMargin"] = plain(validate_margin(profit_margin))
        if credit_price is not None:
            body["creditPrice"] = plain(validate_credit_price(credit_price))
        return self._call(
            "POST",
            f"{BASE}/bulk-rate-update",
            SyncResult.from_json,
            body=body,
            idempotent=bool(dry_run),  # a dry run writes nothing: safe to retry
        )

    # --- health ---------------------------------------------------------------------------

    def health(self) -> Health:
        return self._call("GET", f"{BASE}/health", Health.from_json)


def _as_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadHubResponse(f"expected a JSON array, got {type(data).__name__}")
    return data


def _spec_fields(spec: RateSpec) -> dict[str, Any]:
    return {
        "model": spec.model,
        "type": spec.type,
        "input_rate": spec.input_rate,
        "output_rate": spec.output_rate,
        "model_display": spec.model_display,
        "description": spec.description,
        "unit_costs": spec.unit_costs,
        "caching": spec.caching,
        "model_metadata": spec.model_metadata,
    }


def _validate_base_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(
            "the hub URL is empty; set HUBKIT_HUB_URL (e.g. https://hub.example.com)",
            field="HUBKIT_HUB_URL",
        )
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"HUBKIT_HUB_URL must be an http(s) URL such as https://hub.example.com; "
            f"got {redact_url(text)!r}",
            field="HUBKIT_HUB_URL",
        )
    if parts.query or parts.fragment:
        raise ValidationError(
            "HUBKIT_HUB_URL must not have a query or fragment; give the hub's base URL",
            field="HUBKIT_HUB_URL",
        )
    return text.rstrip("/")
