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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import pandas as pd

from hubkit.domain import KNOWN_PROVIDERS, Rate, parse_csv_list
from hubkit.errors import ValidationError
from hubkit.hub import _fields as F
from hubkit.hub.models import HubRate
from hubkit.hub.pull import HubState, resolve_state
from hubkit.store.values import CredentialInfo, Provider

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient
    from hubkit.store import Store


class ItemKind(StrEnum):
    PROVIDER = "provider"
    CREDENTIAL = "credential"
    RATE = "rate"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPUSH = "repush"  # send a credential's (rotated) value again
    DELETE = "delete"
    MANUAL = "manual"  # the hub's API cannot do it: shown, never applied


class _RateItemKey(TypedDict):
    """The PlanItem fields every item about one local rate shares (passed as ``**key``)."""

    provider: str
    name: str
    type: str
    local_version: int


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field, old (the hub's, None if absent) → new (the store's, None = remove)."""

    field: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.field}: {self.old if self.old is not None else '∅'} → " + (
            self.new if self.new is not None else "∅"
        )


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One step. ``name`` is the credential's name or the rate's model."""

    kind: ItemKind
    action: Action
    provider: str
    name: str = ""
    type: str = ""  # rate type, or credential type
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""
    local_version: int | None = None  # the local rate's version the plan saw

    @property
    def target(self) -> str:
        if self.kind is ItemKind.PROVIDER:
            return self.provider
        if self.kind is ItemKind.CREDENTIAL:
            return f"{self.provider}/{self.name}"
        return f"{self.provider}/{self.name} ({self.type})"

    @property
    def actionable(self) -> bool:
        return self.action is not Action.MANUAL

    def new(self, field: str) -> str | None:
        return next((c.new for c in self.changes if c.field == field), None)

    def describe(self) -> str:
        text = "; ".join(str(c) for c in self.changes)
        if self.reason:
            text = f"{text} — {self.reason}" if text else self.reason
        return text


@dataclass(frozen=True, slots=True)
class Plan:
    """A frozen diff of the local store against one hub (see the module docstring)."""

    items: tuple[PlanItem, ...]
    hub: str  # redacted base URL of the hub it was made against ("" if unknown)
    created_at: datetime
    deletes: bool = False
    providers: tuple[str, ...] = ()  # the provider filter, () = all
    in_sync: int = 0  # objects compared and found equal

    def __repr__(self) -> str:
        return f"Plan(hub={self.hub!r}, {self.summary()})"

    @property
    def actionable(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.actionable)

    @property
    def manual(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if not i.actionable)

    @property
    def is_empty(self) -> bool:
        """Nothing ``apply`` would do (manual notes may remain)."""
        return not self.actionable

    def only(
        self,
        *,
        kinds: Iterable[ItemKind | str] | None = None,
        keys: Iterable[tuple[str, str, str]] | None = None,
        in_sync: int | None = None,
    ) -> Plan:
        """The same plan narrowed to items of ``kinds`` and (if given) ``keys``.

        A key is ``(provider, name, type)`` as on :class:`PlanItem` — for a rate
        ``(provider, model, type value)``. E.g. a rate job pushes only its own rates:
        ``p.only(kinds=[ItemKind.RATE], keys={(r.provider, r.model, r.type.value) …})``.
        ``in_sync`` replaces the count (the plan cannot narrow it: it counts objects, not
        items); by default the whole plan's count is kept.
        """
        wanted_kinds = None if kinds is None else {ItemKind(k) for k in kinds}
        wanted_keys = None if keys is None else set(keys)
        items = tuple(
            i
            for i in self.items
            if (wanted_kinds is None or i.kind in wanted_kinds)
            and (wanted_keys is None or (i.provider, i.name, i.type) in wanted_keys)
        )
        return replace(self, items=items, in_sync=self.in_sync if in_sync is None else in_sync)

    def counts(self) -> dict[str, int]:
        """``{"rate.create": 3, "credential.repush": 1, …}`` plus ``in_sync``."""
        out: dict[str, int] = {}
        for item in self.items:
            key = f"{item.kind.value}.{item.action.value}"
            out[key] = out.get(key, 0) + 1
        out["in_sync"] = self.in_sync
        return out

    def summary(self) -> str:
        parts = []
        for kind in ItemKind:
            acts = [(a, sum(1 for i in self.items if i.kind is kind and i.action is a))
                    for a in Action]  # fmt: skip
            text = ", ".join(f"{n} {a.value}" for a, n in acts if n)
            if text:
                parts.append(f"{kind.value}s: {text}")
        parts.append(f"in sync: {self.in_sync}")
        return "; ".join(parts) if self.items else f"nothing to do; in sync: {self.in_sync}"

    # --- views and files (implemented in hubkit.hub._plan_io) ------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per item: kind, action, target, changes as ``field: old → new``, reason."""
        from hubkit.hub._plan_io import plan_frame

        return plan_frame(self)

    def changes_frame(self) -> pd.DataFrame:
        """One row per field change (the CSV's shape)."""
        from hubkit.hub._plan_io import changes_frame

        return changes_frame(self)

    def to_json(self) -> str:
        from hubkit.hub._plan_io import plan_to_json

        return plan_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        from hubkit.hub._plan_io import plan_from_json

        return plan_from_json(text)

    def to_csv(self, path: str | Path) -> Path:
        from hubkit.hub._plan_io import plan_to_csv

        return plan_to_csv(self, Path(path))

    @classmethod
    def from_csv(cls, path: str | Path) -> Plan:
        from hubkit.hub._plan_io import plan_from_csv

        return plan_from_csv(Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """A plan saved as ``.json`` or ``.csv``."""
        from hubkit.hub._plan_io import read_plan

        return read_plan(path)

    def save(self, folder: str | Path | None = None) -> Path:
        """Write plan.json, plan.csv and summary.json into ``folder`` (default: a new
        ``reports/<UTC>-hub-plan/``); returns the folder."""
        from hubkit.hub._plan_io import save_plan

        return save_plan(self, None if folder is None else Path(folder))

    def _repr_html_(self) -> str:
        from hubkit.hub._plan_io import plan_html

        return plan_html(self)


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


_ORDER = {
    (ItemKind.PROVIDER, Action.CREATE): 0,
    (ItemKind.PROVIDER, Action.UPDATE): 1,
    (ItemKind.PROVIDER, Action.MANUAL): 2,
    (ItemKind.CREDENTIAL, Action.CREATE): 3,
    (ItemKind.CREDENTIAL, Action.REPUSH): 4,
    (ItemKind.RATE, Action.CREATE): 5,
    (ItemKind.RATE, Action.UPDATE): 6,
    (ItemKind.RATE, Action.MANUAL): 7,
    (ItemKind.RATE, Action.DELETE): 8,
    (ItemKind.CREDENTIAL, Action.DELETE): 9,
    (ItemKind.CREDENTIAL, Action.MANUAL): 10,
}


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
            key=lambda i: (_ORDER[(i.kind, i.action)], i.provider, i.name, i.type),
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
            common = _RateItemKey(provider=rate.provider, name=rate.model, type=rate.type.value,
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
        self, rate: Rate, hub_r: HubRate, want: dict[str, str | None], common: _RateItemKey
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


def _check_items(items: Iterable[PlanItem]) -> None:
    for item in items:
        if (item.kind, item.action) not in _ORDER:
            raise ValidationError(
                f"a plan cannot {item.action.value} a {item.kind.value} ({item.target})",
                field="action",
            )
