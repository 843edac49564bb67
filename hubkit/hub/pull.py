"""Reading a hub's state (``pull``) and initialising an empty store from it (``bootstrap``).

>>> state = pull(client)                      # doctest: +SKIP
>>> frames = state.to_frames()                # providers, credentials, rates
>>> result = bootstrap(Store.open(), client)  # doctest: +SKIP

One ``GET /api/ai-providers?includeModelRates=true`` gives everything: providers, their
credentials (masked metadata only: the client drops the encrypted ``credentialValue`` on
receipt) and their rates. Credentials cannot be pulled — the hub never returns a value —
so ``bootstrap`` lists them as needing keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from hubkit._columns import RATE_AMOUNTS
from hubkit.domain import ChangeType, ProviderSpec, RateSpec, RateType
from hubkit.errors import ConflictError, HubkitError
from hubkit.hub.models import HubCredential, HubProvider, HubRate
from hubkit.hub.redact import redact_url

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient
    from hubkit.store import Store


@dataclass(frozen=True)
class HubState:
    """What a hub holds at one moment: providers (with masked credentials and rates).

    Lookups by name go through indexes built on first use (no ``slots``: the cached
    properties live in the instance dict), so planning 10,000 rates stays linear.
    """

    hub: str  # the hub's base URL, redacted
    pulled_at: datetime
    providers: tuple[HubProvider, ...]

    def __repr__(self) -> str:
        return (
            f"HubState(hub={self.hub!r}, providers={len(self.providers)}, "
            f"credentials={len(self.credentials)}, rates={len(self.rates)})"
        )

    # --- lookups --------------------------------------------------------------------------

    @cached_property
    def _providers(self) -> dict[str, HubProvider]:
        index: dict[str, HubProvider] = {}
        for p in self.providers:
            index.setdefault(p.name, p)
        return index

    @cached_property
    def _rates(self) -> dict[tuple[str, str, RateType], HubRate]:
        index: dict[tuple[str, str, RateType], HubRate] = {}
        for name, rate in self.rates:
            index.setdefault((name, rate.model, rate.type), rate)
        return index

    def provider(self, name: str) -> HubProvider | None:
        return self._providers.get(name)

    @property
    def credentials(self) -> tuple[HubCredential, ...]:
        return tuple(c for p in self.providers for c in p.credentials)

    @property
    def rates(self) -> tuple[tuple[str, HubRate], ...]:
        """``(provider name, rate)`` pairs, deprecated rates included."""
        return tuple((p.name, r) for p in self.providers for r in p.model_rates or ())

    def credential(self, provider: str, name: str) -> HubCredential | None:
        found = self.provider(provider)
        if found is None:
            return None
        return next((c for c in found.credentials if c.name == name), None)

    def rate(self, provider: str, model: str, type: RateType | str) -> HubRate | None:
        return self._rates.get((provider, model, RateType.parse(type)))

    # --- domain values --------------------------------------------------------------------

    def provider_specs(self) -> list[ProviderSpec]:
        """The providers as validated :class:`~hubkit.domain.ProviderSpec` values."""
        return [p.to_spec() for p in self.providers]

    def rate_specs(self) -> list[RateSpec]:
        """The rates as validated :class:`~hubkit.domain.RateSpec` values."""
        return [rate.to_spec(name) for name, rate in self.rates]

    # --- frames ---------------------------------------------------------------------------

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """``{"providers", "credentials", "rates"}`` frames; money as Decimal, keys masked."""
        return {
            "providers": _providers_frame(self.providers),
            "credentials": _credentials_frame(self.providers),
            "rates": _rates_frame(self.rates),
        }


def pull(client: HubClient) -> HubState:
    """Read the hub's providers, credential metadata and rates (one request)."""
    providers = client.list_providers(include_model_rates=True)
    return HubState(
        hub=redact_url(client.base_url),
        pulled_at=datetime.now(UTC),
        providers=tuple(providers),
    )


def resolve_state(client_or_state: HubClient | HubState) -> HubState:
    return client_or_state if isinstance(client_or_state, HubState) else pull(client_or_state)


# --- bootstrap ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeedsKey:
    """A hub credential whose value hubkit cannot pull: add it locally with the same name."""

    provider: str
    name: str
    credential_type: str
    display_text: str  # masked, as the hub shows it

    def command(self) -> str:
        return f"python -m hubkit credentials add {self.provider} {self.name!r}"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    hub: str
    providers_added: tuple[str, ...]
    rates_added: int
    rates_deprecated: int
    needs_keys: tuple[NeedsKey, ...]
    not_imported: tuple[tuple[str, str], ...] = field(default=())  # (what, why)

    def summary(self) -> str:
        lines = [
            f"bootstrapped from {self.hub}: {len(self.providers_added)} providers, "
            f"{self.rates_added} rates ({self.rates_deprecated} deprecated)"
        ]
        if self.needs_keys:
            lines.append(
                f"{len(self.needs_keys)} credentials need their keys (the hub never returns "
                "values); add each locally under the same name, then `hub plan` re-pushes it:"
            )
            lines += [f"  {n.provider}/{n.name} ({n.display_text}): {n.command()}"
                      for n in self.needs_keys]  # fmt: skip
        for what, why in self.not_imported:
            lines.append(f"not imported: {what}: {why}")
        return "\n".join(lines)


def bootstrap(store: Store, client_or_state: HubClient | HubState) -> BootstrapResult:
    """Initialise an EMPTY store from a hub: its providers and rates (with history rows).

    Refuses a store that already has providers or rates (use ``plan`` to compare those).
    Credentials are listed in :attr:`BootstrapResult.needs_keys`: their values cannot be
    pulled. A rate the store's validation refuses is reported, not imported.
    """
    if store.list_providers() or store.list_rates():
        raise ConflictError(
            "bootstrap initialises an empty store, and this one already has providers or "
            "rates; compare it with the hub with `python -m hubkit hub plan` instead"
        )
    state = resolve_state(client_or_state)
    source = f"hub:{state.hub}"
    added: list[str] = []
    skipped: list[tuple[str, str]] = []
    for provider in state.providers:
        try:
            store.add_provider(provider.to_spec())
        except HubkitError as exc:
            skipped.append((f"provider {provider.name}", str(exc)))
            continue
        added.append(provider.name)
    rates = deprecated = 0
    for name, hub_rate in _rates_of(state, set(added)):
        what = f"rate {name}/{hub_rate.model} ({hub_rate.type.value})"
        try:
            made = store.create_rates_batch(
                hub_rate.to_spec(name),
                [name],
                source=source,
                reason="bootstrap from the hub",
                change_type=ChangeType.CREATE,
            )[0]
            rates += 1
            if hub_rate.deprecated:
                store.deprecate_rate(made.id, made.version, reason=hub_rate.deprecated_reason)
                deprecated += 1
        except HubkitError as exc:
            skipped.append((what, str(exc)))
    needs = tuple(
        NeedsKey(p.name, c.name, c.credential_type.value, c.display_text)
        for p in state.providers
        if p.name in added
        for c in p.credentials
    )
    return BootstrapResult(state.hub, tuple(added), rates, deprecated, needs, tuple(skipped))


def _rates_of(state: HubState, providers: set[str]) -> Iterator[tuple[str, HubRate]]:
    for name, rate in state.rates:
        if name in providers:
            yield name, rate


# --- frames ---------------------------------------------------------------------------------


def _providers_frame(providers: tuple[HubProvider, ...]) -> pd.DataFrame:
    columns = ["hub_id", "name", "display_name", "base_url", "region", "enabled",
               "credentials", "rates"]  # fmt: skip
    rows = [
        {"hub_id": p.id, "name": p.name, "display_name": p.display_name, "base_url": p.base_url,
         "region": p.region, "enabled": p.enabled, "credentials": len(p.credentials),
         "rates": len(p.model_rates or ())}
        for p in providers
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _credentials_frame(providers: tuple[HubProvider, ...]) -> pd.DataFrame:
    """Masked only: ``display_text`` is the hub's own masked view of the key."""
    columns = ["hub_id", "provider", "name", "credential_type", "display_text", "active",
               "weight", "usage_count", "error"]  # fmt: skip
    rows = [
        {"hub_id": c.id, "provider": p.name, "name": c.name,
         "credential_type": c.credential_type.value, "display_text": c.display_text,
         "active": c.active, "weight": c.weight, "usage_count": c.usage_count, "error": c.error}
        for p in providers
        for c in p.credentials
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _rates_frame(rates: tuple[tuple[str, HubRate], ...]) -> pd.DataFrame:
    columns = ["hub_id", "provider", "model", "model_display", "type", *RATE_AMOUNTS,
               "description", "deprecated"]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for name, r in rates:
        rows.append(
            {"hub_id": r.id, "provider": name, "model": r.model,
             "model_display": r.model_display, "type": r.type.value,
             "input_rate": r.input_rate, "output_rate": r.output_rate,
             "unit_cost_input": r.unit_costs.input if r.unit_costs else None,
             "unit_cost_output": r.unit_costs.output if r.unit_costs else None,
             "cache_read_rate": r.caching.read_rate if r.caching else None,
             "cache_write_rate": r.caching.write_rate if r.caching else None,
             "description": r.description, "deprecated": r.deprecated}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
