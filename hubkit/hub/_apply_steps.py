"""The per-item steps of ``apply``: check against the hub as it is now, then send.

Every step returns ``(status, message, hub id)`` with status ``ok`` / ``skipped`` /
``dry_run``, or raises :class:`~hubkit.errors.HubError` (a failure). Checks first, so a
plan applied twice, late, or after a partial failure does nothing twice:

- a create whose object is already on the hub with the planned values is ``ok``;
- an update whose fields already hold the new values is ``ok``; one whose fields hold
  neither the plan's old nor its new values changed on the hub since: ``skipped``;
- a rate whose local version moved since the plan (as apply starts) is ``skipped``
  (re-plan), so the ``hub_push`` history rows record values the store holds.

A credential's value is revealed from the store inside the step that sends it and goes
nowhere else; the client redacts it from any error.

Steps run on several threads at once (``apply(concurrency=N)``): what one item's step
notes as it goes (a POST that landed although it failed, the local rate's id) is kept per
thread, and the store is used by one step at a time (its writes are short; the hub's
round trips are what run side by side).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hubkit.domain import RateType, UnitCosts
from hubkit.errors import HubError, HubkitError, HubStatusError
from hubkit.hub import _fields as F
from hubkit.hub._group_commit import GroupCommit
from hubkit.hub.models import HubCredential, HubProvider, HubRate
from hubkit.hub.plan import Action, ItemKind, PlanItem, needs_push
from hubkit.hub.pull import HubState
from hubkit.store.values import CredentialInfo, HubPush

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient
    from hubkit.store import Store

Outcome = tuple[str, str, str | None]
_DEFINITE = frozenset({400, 401, 403, 404, 422})  # answers that say "not applied"
_ALREADY = "already on the hub (nothing sent)"
_REPLAN = "make a fresh plan"
_PENDING = "(created by this plan)"  # a dry run's stand-in id: never sent


class Steps:
    def __init__(
        self,
        store: Store,
        client: HubClient,
        state: HubState,
        *,
        dry_run: bool,
        source: str,
        job_run_id: str | None,
    ) -> None:
        self.store = store
        self.client = client
        self.state = state
        self.dry_run = dry_run
        self.source = source
        self.job_run_id = job_run_id
        self.provider_ids = {p.name: p.id for p in state.providers}
        # the local rates as apply starts (one query, not one per item)
        self.local_rates = {(r.provider, r.model, r.type.value): r for r in store.list_rates()}
        self._item = threading.local()  # what the step of the item on this thread noted
        self._store_lock = threading.Lock()
        # history rows of rates that finished together share one commit
        self._pushes = GroupCommit(self._record_pushes)

    # what one item's step notes as it goes, per thread
    @property
    def landed_after(self) -> str | None:
        return getattr(self._item, "landed_after", None)

    @landed_after.setter
    def landed_after(self, value: str | None) -> None:
        self._item.landed_after = value

    @property
    def local_rate_id(self) -> int | None:
        return getattr(self._item, "local_rate_id", None)

    @local_rate_id.setter
    def local_rate_id(self, value: int | None) -> None:
        self._item.local_rate_id = value

    def _record_pushes(self, pushes: Sequence[HubPush]) -> None:
        with self._store() as store:
            store.record_hub_pushes(pushes)

    @contextmanager
    def _store(self) -> Iterator[Store]:
        with self._store_lock:
            yield self.store

    def run(self, item: PlanItem) -> Outcome:
        self.landed_after = None
        self.local_rate_id = None
        handler: Callable[[PlanItem], Outcome] = {
            (ItemKind.PROVIDER, Action.CREATE): self.provider_create,
            (ItemKind.PROVIDER, Action.UPDATE): self.provider_update,
            (ItemKind.CREDENTIAL, Action.CREATE): self.credential_push,
            (ItemKind.CREDENTIAL, Action.REPUSH): self.credential_push,
            (ItemKind.CREDENTIAL, Action.DELETE): self.credential_delete,
            (ItemKind.RATE, Action.CREATE): self.rate_create,
            (ItemKind.RATE, Action.UPDATE): self.rate_update,
            (ItemKind.RATE, Action.DELETE): self.rate_delete,
        }[(item.kind, item.action)]
        return handler(item)

    # --- shared -----------------------------------------------------------------------------

    def _provider_id(self, item: PlanItem) -> str | None:
        return self.provider_ids.get(item.provider)

    def _no_provider(self, item: PlanItem) -> Outcome:
        return ("skipped", f"provider {item.provider!r} is not on the hub (its create failed or "
                f"was skipped); {_REPLAN} once it is there", None)  # fmt: skip

    def _post(self, send: Callable[[], Any], landed: Callable[[], Any | None]) -> Any:
        """Send a POST; if it failed in a way that may have reached the hub, look first."""
        try:
            return send()
        except HubError as exc:
            if isinstance(exc, HubStatusError) and exc.status in _DEFINITE:
                raise
            try:
                found = landed()
            except HubError as again:
                raise HubError(
                    f"{exc}; and re-reading the hub to see whether it landed failed too "
                    f"({again}); {_REPLAN} once the hub answers",
                    method=exc.method,
                    path=exc.path,
                    status=exc.status,
                ) from None
            if found is None:
                raise
            self.landed_after = str(exc)
            return found

    def _ok(self, text: str) -> str:
        if self.landed_after:
            text = f"{text}; it landed although the call failed ({self.landed_after})"
            self.landed_after = None
        return text

    @staticmethod
    def _precheck(
        item: PlanItem, current: Mapping[str, str | None]
    ) -> tuple[str, str, None] | None:
        """None if the hub holds the plan's old values; else the outcome to report."""
        if all(current.get(c.field) == c.new for c in item.changes):
            return ("ok", _ALREADY, None)
        moved = [c for c in item.changes if current.get(c.field) != c.old]
        if moved:
            fields = ", ".join(f"{c.field} is now {current.get(c.field)}" for c in moved)
            return ("skipped", f"changed on the hub since the plan ({fields}); {_REPLAN}", None)
        return None

    # --- providers --------------------------------------------------------------------------

    def provider_create(self, item: PlanItem) -> Outcome:
        existing = self.state.provider(item.provider)
        if existing is not None:
            self.provider_ids[item.provider] = existing.id
            return self._already(item, F.provider_fields(existing), existing.id)
        if self.dry_run:
            # later items of a dry run may assume it exists; they send nothing either
            self.provider_ids[item.provider] = _PENDING
            return ("dry_run", "would create the provider", None)
        made: HubProvider = self._post(
            lambda: self.client.create_provider(
                item.provider,
                F.decode("displayName", item.new("displayName")) or item.provider,
                base_url=item.new("baseUrl"),
                region=item.new("region"),
                enabled=F.decode("enabled", item.new("enabled")) is not False,
                config=F.decode("config", item.new("config")),
            ),
            lambda: self.client.get_provider(item.provider),
        )
        self.provider_ids[item.provider] = made.id
        return ("ok", self._ok("created"), made.id)

    def _already(self, item: PlanItem, current: Mapping[str, str | None], hub_id: str) -> Outcome:
        if all(current.get(c.field) == c.new for c in item.changes):
            return ("ok", _ALREADY, hub_id)
        return ("skipped", f"already on the hub with other values; {_REPLAN}", hub_id)

    def provider_update(self, item: PlanItem) -> Outcome:
        hub_p = self.state.provider(item.provider)
        if hub_p is None:
            return ("skipped", f"no longer on the hub; {_REPLAN}", None)
        current = F.provider_fields(hub_p)
        if (early := self._precheck(item, current)) is not None:
            return early[0], early[1], hub_p.id
        if self.dry_run:
            return ("dry_run", "would update " + ", ".join(c.field for c in item.changes), hub_p.id)
        want = {**current, **{c.field: c.new for c in item.changes}}
        self.client.update_provider(
            hub_p.id,
            name=hub_p.name,
            base_url=want["baseUrl"],
            region=want["region"] or ("" if hub_p.name != "bedrock" else None),
            enabled=want["enabled"] == "true",
        )
        return ("ok", "updated", hub_p.id)

    # --- credentials ------------------------------------------------------------------------

    def _local_credential(self, item: PlanItem) -> CredentialInfo | None:
        with self._store() as store:
            found = [c for c in store.list_credentials(item.provider) if c.name == item.name]
        return found[0] if found else None

    def credential_push(self, item: PlanItem) -> Outcome:
        provider_id = self._provider_id(item)
        if provider_id is None:
            return self._no_provider(item)
        info = self._local_credential(item)
        if info is None or not info.active:
            why = "no longer in the local store" if info is None else "deactivated locally"
            return ("skipped", f"{why}; {_REPLAN}", None)
        hub_c = self.state.credential(item.provider, item.name)
        if hub_c is not None and needs_push(info) is None:
            return (
                "ok",
                f"already pushed at {info.last_pushed_at:%Y-%m-%d %H:%M:%S} UTC",
                hub_c.id,
            )
        verb = "create" if hub_c is None else "re-push"
        if self.dry_run:
            return ("dry_run", f"would {verb} the key ({info.display_text})", None)
        done = "created" if hub_c is None else "re-pushed"
        version = info.rotated_at or info.created_at  # the value about to be revealed
        with self._store() as store:
            secret = store.reveal_credential(item.provider, item.name)
        value: str | dict[str, str] = (
            secret["api_key"] if info.credential_type == "api_key" else secret
        )
        if hub_c is None:
            sent: HubCredential = self._post(
                lambda: self.client.create_credential(
                    provider_id, item.name, value, credential_type=info.credential_type
                ),
                lambda: self._hub_credential(item.provider, item.name),
            )
        else:
            sent = self.client.update_credential(
                provider_id, hub_c.id, item.name, value, credential_type=info.credential_type
            )
        note = self._mark_pushed(item, version)
        return ("ok", self._ok(f"{done} the key ({sent.display_text})") + note, sent.id)

    def _mark_pushed(self, item: PlanItem, version: datetime) -> str:
        """Set last_pushed_at — unless the key was rotated again while it was being sent."""
        now = self._local_credential(item)
        if now is None or (now.rotated_at or now.created_at) != version:
            return " (rotated again locally meanwhile: the next plan pushes the new key)"
        with self._store() as store:
            store.mark_credentials_pushed([now.id])
        return ""

    def _hub_credential(self, provider: str, name: str) -> HubCredential | None:
        found = self.client.get_provider(provider)
        return (
            None if found is None else next((c for c in found.credentials if c.name == name), None)
        )

    def credential_delete(self, item: PlanItem) -> Outcome:
        hub_c = self.state.credential(item.provider, item.name)
        if hub_c is None:
            return ("ok", "already gone from the hub", None)
        if self._local_credential(item) is not None:
            return ("skipped", f"now in the local store; {_REPLAN}", hub_c.id)
        if self.dry_run:
            return ("dry_run", "would delete the key from the hub", hub_c.id)
        self.client.delete_credential(hub_c.provider_id, hub_c.id)
        return ("ok", "deleted", hub_c.id)

    # --- rates ------------------------------------------------------------------------------

    def _local_rate_moved(self, item: PlanItem) -> tuple[str, str, None] | None:
        local = self.local_rates.get((item.provider, item.name, item.type))
        if local is None:
            return ("skipped", f"no longer in the local store; {_REPLAN}", None)
        if item.local_version is not None and local.version != item.local_version:
            return ("skipped", f"changed locally since the plan (version {item.local_version} → "
                    f"{local.version}); {_REPLAN}", None)  # fmt: skip
        self.local_rate_id = local.id
        return None

    def rate_create(self, item: PlanItem) -> Outcome:
        provider_id = self._provider_id(item)
        if provider_id is None:
            return self._no_provider(item)
        if (moved := self._local_rate_moved(item)) is not None:
            return moved
        existing = self.state.rate(item.provider, item.name, item.type)
        if existing is not None:
            return self._already(item, F.rate_fields(existing), existing.id)
        if self.dry_run:
            return ("dry_run", "would create the rate", None)
        made: HubRate = self._post(
            lambda: self.client.create_rate(
                provider_id,
                model=item.name,
                type=item.type,
                input_rate=item.new("inputRate") or "0",
                output_rate=item.new("outputRate") or "0",
                model_display=item.new("modelDisplay"),
                description=item.new("description"),
                unit_costs=F.decode("unitCosts", item.new("unitCosts")),
                caching=F.decode("caching", item.new("caching")),
                model_metadata=F.decode("modelMetadata", item.new("modelMetadata")),
            ),
            lambda: self._landed_rate(item, provider_id),
        )
        return ("ok", self._ok("created") + self._record(item, None, made, "create"), made.id)

    def _landed_rate(self, item: PlanItem, provider_id: str) -> HubRate | None:
        """The rate, if the failed create did land with the planned values."""
        rtype = RateType.parse(item.type)
        for rate in self.client.list_rates(provider_id, include_deprecated=True):
            if rate.model == item.name and rate.type == rtype:
                current = F.rate_fields(rate)
                # other values: report the failure; the next plan shows the update it needs
                return rate if all(current.get(c.field) == c.new for c in item.changes) else None
        return None

    def rate_update(self, item: PlanItem) -> Outcome:
        hub_r = self.state.rate(item.provider, item.name, item.type)
        if hub_r is None:
            return ("skipped", f"no longer on the hub; {_REPLAN}", None)
        if (moved := self._local_rate_moved(item)) is not None:
            return moved[0], moved[1], hub_r.id
        if (early := self._precheck(item, F.rate_fields(hub_r))) is not None:
            return early[0], early[1], hub_r.id
        if self.dry_run:
            return ("dry_run", "would update " + ", ".join(c.field for c in item.changes), hub_r.id)
        changes: dict[str, Any] = {}
        names = {"inputRate": "input_rate", "outputRate": "output_rate",
                 "modelDisplay": "model_display", "description": "description",
                 "unitCosts": "unit_costs", "caching": "caching",
                 "modelMetadata": "model_metadata"}  # fmt: skip
        for change in item.changes:
            value = F.decode(change.field, change.new)
            # the hub keeps "" as "no description"; None would mean "leave it" to the client
            changes[names[change.field]] = (
                "" if change.field == "description" and value is None else value
            )
        updated = self.client.update_rate(hub_r.provider_id, hub_r.id, **changes)
        note = self._record(item, hub_r, updated, "update")
        return ("ok", "updated " + ", ".join(c.field for c in item.changes) + note, hub_r.id)

    def rate_delete(self, item: PlanItem) -> Outcome:
        hub_r = self.state.rate(item.provider, item.name, item.type)
        if hub_r is None:
            return ("ok", "already gone from the hub", None)
        if (item.provider, item.name, item.type) in self.local_rates:
            return ("skipped", f"now in the local store; {_REPLAN}", hub_r.id)
        current = F.rate_fields(hub_r)
        moved = [c.field for c in item.changes if current.get(c.field) != c.old]
        if moved:
            return ("skipped", f"changed on the hub since the plan ({', '.join(moved)}); "
                    f"{_REPLAN}", hub_r.id)  # fmt: skip
        if self.dry_run:
            return ("dry_run", "would delete the rate from the hub", hub_r.id)
        self.client.delete_rate(hub_r.provider_id, hub_r.id)
        return ("ok", "deleted" + self._record(item, hub_r, None, "delete"), hub_r.id)

    def _record(
        self, item: PlanItem, before: HubRate | None, after: HubRate | None, what: str
    ) -> str:
        """A ``hub_push`` history row; "" or a note (a failure here does not undo the push)."""
        hub_rate = after or before
        push = HubPush(
            provider=item.provider,
            model=item.name,
            type=item.type,
            rate_id=self.local_rate_id if what != "delete" else None,
            before=_triple(before),
            after=_triple(after),
            rate_version=item.local_version if what != "delete" else None,
            source=self.source,
            reason=f"hub apply: {what}",
            metadata={
                "action": what,
                "hubRateId": hub_rate.id if hub_rate else None,
                "fields": [c.field for c in item.changes],
            },
            job_run_id=self.job_run_id,
        )
        error = self._pushes.commit(push)
        if isinstance(error, HubkitError):
            return f" (but recording it in the local history failed: {error})"
        if error is not None:
            raise error
        return ""


def _triple(rate: HubRate | None) -> tuple[Any, Any, UnitCosts | None] | None:
    return None if rate is None else (rate.input_rate, rate.output_rate, rate.unit_costs)
