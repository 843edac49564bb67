"""``plan``: what it takes to make a hub match the local store, as a value to show and keep.

>>> p = plan(store, client)          # doctest: +SKIP
>>> p                                # a table in a notebook (``_repr_html_``)
>>> p.save()                         # reports/<UTC>-hub-plan/plan.json + plan.csv
>>> Plan.from_json(text)             # ... and applied later with hubkit.hub.apply

The local store is the desired state. Items, in the order ``apply`` runs them:

- providers: ``create``; ``update`` of baseUrl / region / enabled; ``manual`` for
  displayName and config (the hub's PUT ignores them) and for custom providers the hub
  cannot hold — their credentials and rates wait and are not planned;
- credentials: ``create``; ``repush`` when rotated (or created) after the last push from
  this store, since the hub never returns a value to compare; inactive local keys are not
  pushed. An item names the credential by provider and name, never carries its value:
  ``apply`` reveals the value from the store at the last moment;
- rates: ``create`` (deprecated local rates are not created), ``update`` with old → new
  per field (rates compared exactly after quantising to 10 places), ``manual`` for what
  the hub's API cannot do (clear unit costs / caching / metadata, change deprecation);
- only with ``deletes=True``: ``delete`` of hub rates and credentials the store lacks
  (under providers the store has), and ``manual`` notes for hub-only providers (hubkit never
  deletes a provider: the hub would drop its keys and rates with it) and deprecations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hubkit.domain import KNOWN_PROVIDERS, Rate, parse_csv_list
from hubkit.hub import _fields as F
from hubkit.hub.models import HubRate
from hubkit.hub.plan_values import (
    ORDER,
    Action,
    FieldChange,
    ItemKind,
    Plan,
    PlanItem,
    RateItemKey,
)
from hubkit.hub.pull import HubState, resolve_state
from hubkit.store.values import CredentialInfo, Provider

__all__ = ["Action", "FieldChange", "ItemKind", "Plan", "PlanItem", "needs_push", "plan"]

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient
    from hubkit.store import Store


# --- computing a plan ---------------------------------------------------------------------


def plan(
    store: Store,
    client_or_state: HubClient | HubState,
    *,
    deletes: bool = False,
    providers: str | Iterable[str] | None = None,
) -> Plan:
    """Diff the local store (desired) against the hub (current). Reads, never writes."""
    state = resolve_state(client_or_state)
    wanted = tuple(p.lower() for p in parse_csv_list(providers))

    def selected(name: str) -> bool:
        return not wanted or name in wanted

    local_providers = [p for p in store.list_providers() if selected(p.name)]
    local_credentials = [c for c in store.list_credentials() if selected(c.provider)]
    local_rates = [r for r in store.list_rates() if selected(r.provider)]
    builder = _Builder(state, deletes)
    builder.providers(local_providers, store)
    builder.credentials(local_credentials)
    builder.rates(local_rates)
    if deletes:
        builder.hub_only(local_providers, local_credentials, local_rates, selected)
    return Plan(
        items=tuple(builder.ordered()),
        hub=state.hub,
        created_at=datetime.now(UTC),
        deletes=deletes,
        providers=wanted,
        in_sync=builder.in_sync,
    )


def needs_push(info: CredentialInfo) -> str | None:
    """Why a credential's value should be sent (again), or None if the hub has it."""
    changed = info.rotated_at or info.created_at
    if info.last_pushed_at is None:
        return "never pushed from this store"
    if changed > info.last_pushed_at:
        return (
            f"{'rotated' if info.rotated_at else 'created'} locally at {changed:%Y-%m-%d %H:%M:%S}"
            f" UTC, after the last push at {info.last_pushed_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


def _changes(
    old: Mapping[str, str | None], new: Mapping[str, str | None], fields: Iterable[str]
) -> list[FieldChange]:
    return [FieldChange(f, old.get(f), new.get(f)) for f in fields if old.get(f) != new.get(f)]


class _Builder:
    """Accumulates items while walking providers, then credentials, then rates."""

    def __init__(self, state: HubState, deletes: bool) -> None:
        self.state = state
        self.deletes = deletes
        self.items: list[PlanItem] = []
        self.in_sync = 0
        self.blocked: set[str] = set()  # providers that cannot reach the hub: skip children

    def add(self, item: PlanItem) -> None:
        self.items.append(item)

    def ordered(self) -> list[PlanItem]:
        return sorted(
            self.items,
            key=lambda i: (ORDER[(i.kind, i.action)], i.provider, i.name, i.type),
        )

    def providers(self, local: list[Provider], store: Store) -> None:
        for provider in local:
            want = F.provider_fields(provider)
            hub_p = self.state.provider(provider.name)
            if hub_p is None:
                if provider.name not in KNOWN_PROVIDERS:
                    self.blocked.add(provider.name)
                    creds = len(store.list_credentials(provider.name))
                    self.add(PlanItem(
                        ItemKind.PROVIDER, Action.MANUAL, provider.name,
                        reason="manual action needed: a custom provider, and the hub only "
                        f"accepts {', '.join(KNOWN_PROVIDERS)}; its {creds} credentials and "
                        f"{provider.rate_count} rates are not planned",
                    ))  # fmt: skip
                    continue
                changes = [FieldChange(f, None, v) for f, v in want.items() if v is not None]
                self.add(PlanItem(ItemKind.PROVIDER, Action.CREATE, provider.name,
                                  changes=tuple(changes), reason="not on the hub"))  # fmt: skip
                continue
            diff = _changes(F.provider_fields(hub_p), want, F.PROVIDER_FIELDS)
            auto = tuple(c for c in diff if c.field not in F.MANUAL_PROVIDER_FIELDS)
            manual = tuple(c for c in diff if c.field in F.MANUAL_PROVIDER_FIELDS)
            if auto:
                self.add(PlanItem(ItemKind.PROVIDER, Action.UPDATE, provider.name, changes=auto))
            if manual:
                self.add(PlanItem(
                    ItemKind.PROVIDER, Action.MANUAL, provider.name, changes=manual,
                    reason="manual action needed: the hub's API cannot change "
                    f"{' or '.join(c.field for c in manual)}; edit it in the hub's admin UI",
                ))  # fmt: skip
            if not diff:
                self.in_sync += 1

    def credentials(self, local: list[CredentialInfo]) -> None:
        for info in local:
            if info.provider in self.blocked or not info.active:
                continue  # inactive keys stay local: the hub's PUT would re-activate them
            hub_c = self.state.credential(info.provider, info.name)
            if hub_c is None:
                item = PlanItem(
                    ItemKind.CREDENTIAL, Action.CREATE, info.provider, info.name,
                    info.credential_type, (FieldChange("key", None, info.display_text),),
                    "not on the hub",
                )  # fmt: skip
                self.add(item)
                continue
            why = needs_push(info)
            if hub_c.credential_type.value != info.credential_type:
                why = f"credential type on the hub is {hub_c.credential_type.value}"
            if why is None:
                self.in_sync += 1
                continue
            change = FieldChange("key", hub_c.display_text, info.display_text)
            self.add(PlanItem(ItemKind.CREDENTIAL, Action.REPUSH, info.provider, info.name,
                              info.credential_type, (change,), why))  # fmt: skip

    def rates(self, local: list[Rate]) -> None:
        for rate in local:
            if rate.provider in self.blocked:
                continue
            hub_r = self.state.rate(rate.provider, rate.model, rate.type)
            common = RateItemKey(provider=rate.provider, name=rate.model, type=rate.type.value,
                                  local_version=rate.version)  # fmt: skip
            want = F.rate_fields(rate)
            if hub_r is None:
                if rate.deprecated:
                    continue  # a deprecated rate is not offered anew
                changes = tuple(FieldChange(f, None, v) for f, v in want.items() if v is not None)
                self.add(PlanItem(ItemKind.RATE, Action.CREATE, changes=changes,
                                  reason="not on the hub", **common))  # fmt: skip
                continue
            self._rate_diff(rate, hub_r, want, common)

    def _rate_diff(
        self, rate: Rate, hub_r: HubRate, want: dict[str, str | None], common: RateItemKey
    ) -> None:
        diff = _changes(F.rate_fields(hub_r), want, F.RATE_FIELDS)
        stuck = tuple(c for c in diff if c.new is None and c.field in F.UNCLEARABLE_RATE_FIELDS)
        auto = tuple(c for c in diff if c not in stuck)
        if auto:
            self.add(PlanItem(ItemKind.RATE, Action.UPDATE, changes=auto, **common))
        if stuck:
            self.add(PlanItem(
                ItemKind.RATE, Action.MANUAL, changes=stuck,
                reason="manual action needed: the hub's API cannot remove "
                f"{' or '.join(c.field for c in stuck)} from a rate",
                **common,
            ))  # fmt: skip
        deprecation = self.deletes and rate.deprecated != hub_r.deprecated
        if deprecation:
            change = FieldChange("deprecated", str(hub_r.deprecated).lower(),
                                 str(rate.deprecated).lower())  # fmt: skip
            self.add(PlanItem(
                ItemKind.RATE, Action.MANUAL, changes=(change,),
                reason="manual action needed: the hub's API has no per-rate deprecation",
                **common,
            ))  # fmt: skip
        if not diff and not deprecation:
            self.in_sync += 1

    def hub_only(
        self,
        providers: list[Provider],
        credentials: list[CredentialInfo],
        rates: list[Rate],
        selected: Callable[[str], bool],
    ) -> None:
        """Deletes (asked for): hub rates/credentials the store lacks; hub-only providers."""
        local_providers = {p.name for p in providers}
        local_credentials = {(c.provider, c.name) for c in credentials}
        local_rates = {(r.provider, r.model, r.type) for r in rates}
        for hub_p in self.state.providers:
            if not selected(hub_p.name) or hub_p.name in self.blocked:
                continue
            if hub_p.name not in local_providers:
                self.add(PlanItem(
                    ItemKind.PROVIDER, Action.MANUAL, hub_p.name,
                    reason="on the hub only: hubkit never deletes a provider (the hub drops "
                    "its keys and rates with it); delete it in the hub's admin UI if unwanted",
                ))  # fmt: skip
                continue
            for cred in hub_p.credentials:
                if (hub_p.name, cred.name) in local_credentials:
                    continue
                change = FieldChange("key", cred.display_text, None)
                self.add(PlanItem(ItemKind.CREDENTIAL, Action.DELETE, hub_p.name, cred.name,
                                  cred.credential_type.value, (change,),
                                  "not in the local store"))  # fmt: skip
            for hub_r in hub_p.model_rates or ():
                if (hub_p.name, hub_r.model, hub_r.type) in local_rates:
                    continue
                old = F.rate_fields(hub_r)
                changes = tuple(
                    FieldChange(f, old[f], None)
                    for f in ("inputRate", "outputRate", "unitCosts")
                    if old[f] is not None
                )
                self.add(PlanItem(ItemKind.RATE, Action.DELETE, hub_p.name, hub_r.model,
                                  hub_r.type.value, changes, "not in the local store"))  # fmt: skip
