"""Pushing a job's rates to the hub: after the local commit, plan → apply → verify.

The local store is the source of truth: its selected rates are compared with the hub's
(rates and unit costs, matched by provider name, model and type); only the differences
are sent, one call per rate; then the hub is read again and every rate still different is
reported. A failed push leaves the local commit in place and the run ends
``push_partial`` (exit 9); the next run's plan contains only what is still different,
so nothing that succeeded is sent twice.

This is a rates-only plan over :class:`hubkit.hub.HubClient`, imported lazily so the jobs
work without a hub configured. When ``hubkit.hub`` grows its general pull / plan / apply
layer, :func:`push_rates_to_hub` should delegate to it; the job side (what it returns and
how a run reports it) stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hubkit.domain import Rate
from hubkit.errors import HubError, ValidationError
from hubkit.jobs.status import JobStatus
from hubkit.pricing import RateFilter

if TYPE_CHECKING:
    from hubkit.hub import HubClient, HubProvider, HubRate
    from hubkit.store import Store


@dataclass(frozen=True, slots=True)
class PushItem:
    """One rate the plan sends: ``create`` (absent on the hub) or ``update`` (different)."""

    action: str
    provider: str
    model: str
    type: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "provider": self.provider, "model": self.model,
                "type": self.type, "error": self.error}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PushResult:
    planned: int  # rates that differed from the hub before the push
    sent: int  # of those, accepted by the hub
    in_sync: int  # selected rates the hub already had right
    failed: tuple[PushItem, ...]  # refused by the hub, unreachable, or still different
    reason: str

    @property
    def complete(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "planned": self.planned,
            "sent": self.sent,
            "in_sync": self.in_sync,
            "failed": [f.as_dict() for f in self.failed],
            "reason": self.reason,
        }


def _hub_index(client: HubClient) -> dict[str, HubProvider]:
    return {p.name: p for p in client.list_providers(include_model_rates=True)}


def _hub_rate(provider: HubProvider | None, rate: Rate) -> HubRate | None:
    for hub_rate in (provider.model_rates or ()) if provider else ():
        if hub_rate.model == rate.model and hub_rate.type == rate.type:
            return hub_rate
    return None


def _differs(rate: Rate, hub_rate: HubRate) -> bool:
    return (rate.input_rate, rate.output_rate, rate.unit_costs) != (
        hub_rate.input_rate, hub_rate.output_rate, hub_rate.unit_costs,
    )  # fmt: skip


def plan_push(
    rates: Iterable[Rate], hub: dict[str, HubProvider]
) -> tuple[list[tuple[str, Rate]], list[PushItem], int]:
    """(to send as (action, rate), provider missing on the hub, already in sync)."""
    todo: list[tuple[str, Rate]] = []
    missing: list[PushItem] = []
    in_sync = 0
    for rate in rates:
        provider = hub.get(rate.provider)
        if provider is None:
            missing.append(
                PushItem("create", rate.provider, rate.model, rate.type.value,
                         f"provider {rate.provider!r} is not on the hub: create it there first")
            )  # fmt: skip
            continue
        hub_rate = _hub_rate(provider, rate)
        if hub_rate is None:
            todo.append(("create", rate))
        elif _differs(rate, hub_rate):
            todo.append(("update", rate))
        else:
            in_sync += 1
    return todo, missing, in_sync


def _send(client: HubClient, hub: dict[str, HubProvider], action: str, rate: Rate) -> None:
    provider = hub[rate.provider]
    if action == "create":
        client.create_rate(
            provider.id, model=rate.model, type=rate.type, input_rate=rate.input_rate,
            output_rate=rate.output_rate, model_display=rate.model_display,
            description=rate.description, unit_costs=rate.unit_costs, caching=rate.caching,
            model_metadata=rate.model_metadata,
        )  # fmt: skip
        return
    hub_rate = _hub_rate(provider, rate)
    assert hub_rate is not None
    client.update_rate(
        provider.id, hub_rate.id, input_rate=rate.input_rate, output_rate=rate.output_rate,
        unit_costs=rate.unit_costs,
    )  # fmt: skip


def push_rates_to_hub(
    store: Store,
    run_id: str,
    rate_filter: RateFilter | None = None,
    *,
    client: HubClient | None = None,
) -> PushResult:
    """Make the hub's selected rates equal the store's; report what is still different.

    Never raises for hub trouble (that is a ``push_partial`` run, not a failed one); the
    client redacts the token from every message kept here.
    """
    from hubkit.hub import HubClient

    own = client is None
    try:
        client = client or HubClient.from_settings()
    except ValidationError as exc:
        return PushResult(0, 0, 0, (PushItem("connect", "", "", "", str(exc)),), str(exc))
    try:
        rates = store.list_rates(rate_filter)
        try:
            hub = _hub_index(client)
        except HubError as exc:
            reason = f"could not read the hub: {exc}"
            return PushResult(0, 0, 0, (PushItem("read", "", "", "", str(exc)),), reason)
        todo, missing, in_sync = plan_push(rates, hub)
        sent = 0
        errors: dict[tuple[str, str, str], str] = {}
        for action, rate in todo:
            try:
                _send(client, hub, action, rate)
                sent += 1
            except HubError as exc:
                errors[(rate.provider, rate.model, rate.type.value)] = str(exc)
        # verify: read back; whatever still differs is unfinished, whatever the calls said
        try:
            still, missing, _ = plan_push(rates, _hub_index(client))
        except HubError as exc:
            still = todo
            errors.setdefault(("", "", ""), f"could not re-read the hub to verify: {exc}")
        failed = tuple(missing) + tuple(
            PushItem(action, r.provider, r.model, r.type.value,
                     errors.get((r.provider, r.model, r.type.value), "still different after push"))
            for action, r in still
        )  # fmt: skip
        if failed:
            reason = (
                f"{len(failed)} of {len(todo) + len(missing)} rates not on the hub as stored "
                f"(first: {failed[0].provider}/{failed[0].model}: {failed[0].error}); "
                "run again to push the rest"
            )
        else:
            reason = f"pushed {sent} rates, {in_sync} already in sync, verified by re-reading"
        return PushResult(len(todo) + len(missing), sent, in_sync, failed, reason)
    finally:
        if own:
            client.close()


def push_step(
    store: Store,
    run_id: str,
    rate_filter: RateFilter,
    status: JobStatus,
    reason: str,
    details: dict[str, Any],
) -> tuple[JobStatus, str]:
    """The jobs' last step with ``push_to_hub``: push, record, and adjust the run's ending."""
    push = push_rates_to_hub(store, run_id, rate_filter)
    details["push"] = push.as_dict()
    if not push.complete:
        return (
            JobStatus.PUSH_PARTIAL,
            f"{reason}; but the push to the hub did not finish: {push.reason}",
        )
    return status, f"{reason}; hub: {push.reason}"
