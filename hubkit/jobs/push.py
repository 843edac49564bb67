"""Pushing a job's rates to the hub: after the local commit, plan → apply → verify.

The job's push is the hub layer's (:mod:`hubkit.hub.plan` / :mod:`hubkit.hub.apply`),
narrowed to the RATE items of the rates the job selected: a rate job never creates
providers or pushes credentials as a side effect. The local store is the source of truth;
only the differences are sent (``apply`` re-reads the hub first and never repeats what is
already there, and records each pushed rate as a ``hub_push`` history row carrying the
run's id). Then a fresh plan, narrowed the same way, must be empty: every rate still
different, whatever the calls said, is reported. A failed push leaves the local commit in
place and the run ends ``push_partial`` (exit 9); the next run's plan contains only what
is still different, so nothing that succeeded is sent twice.

A selected rate whose provider is not on the hub is reported, not pushed: creating the
provider (and its keys) is ``python -m hubkit hub plan`` / ``apply``'s job. ``manual``
items (what the hub's API cannot do, e.g. clearing unit costs) count as not pushed too:
the hub does not hold the store's values until someone edits it there.

This module is imported only by runs that push (``push_to_hub``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hubkit.errors import HubError, ValidationError
from hubkit.hub.apply import ApplyReport, ItemStatus, apply
from hubkit.hub.client import HubClient
from hubkit.hub.plan import ItemKind, Plan, PlanItem, plan
from hubkit.hub.pull import HubState, pull
from hubkit.jobs.status import JobStatus
from hubkit.pricing import RateFilter

if TYPE_CHECKING:
    from hubkit.store import Store

RateKey = tuple[str, str, str]  # (provider, model, type value), as a rate PlanItem names it


@dataclass(frozen=True, slots=True)
class PushItem:
    """One rate not on the hub as stored: ``create`` / ``update`` / ``manual``, or the
    ``connect`` / ``read`` step that kept the push from starting."""

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
    planned: int  # selected rates that differed from the hub (or lacked their provider) before
    sent: int  # plan items the hub now holds (sent, or found already there by apply)
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


@dataclass(frozen=True, slots=True)
class RatePushPlan:
    """The hub plan narrowed to a job's selected rates, plus what it cannot contain."""

    plan: Plan  # RATE items of the selected rates whose provider is on the hub
    missing: tuple[PushItem, ...]  # selected rates whose provider is not on the hub
    in_sync: int  # selected rates on the hub with the store's values

    @property
    def planned(self) -> int:
        """Selected rates that differ: each counted once (an update can come with a manual
        item for the same rate)."""
        return len({_key(i) for i in self.plan.items}) + len(self.missing)


def _key(item: PlanItem) -> RateKey:
    return (item.provider, item.name, item.type)


def plan_push(store: Store, state: HubState, rate_filter: RateFilter | None = None) -> RatePushPlan:
    """Diff the store's selected rates against ``state`` with :func:`hubkit.hub.plan.plan`."""
    selected = store.list_rates(rate_filter)
    on_hub = [r for r in selected if state.provider(r.provider) is not None]
    keys = {(r.provider, r.model, r.type.value) for r in on_hub}
    # providers=() would mean all of them; with none on the hub the keys select nothing anyway
    full = plan(store, state, providers=sorted({r.provider for r in on_hub}))
    rates_only = full.only(kinds=[ItemKind.RATE], keys=keys)
    differing = {_key(i) for i in rates_only.items}
    in_sync = sum(
        1
        for r in on_hub
        if (r.provider, r.model, r.type.value) not in differing
        and state.rate(r.provider, r.model, r.type) is not None  # not a deprecated local-only
    )
    missing = tuple(
        PushItem("create", r.provider, r.model, r.type.value,
                 f"provider {r.provider!r} is not on the hub: create it there first "
                 "(python -m hubkit hub plan / apply)")
        for r in selected
        # a deprecated rate is not offered anew (as in the plan), so it is not missing either
        if state.provider(r.provider) is None and not r.deprecated
    )  # fmt: skip
    return RatePushPlan(rates_only.only(in_sync=in_sync), missing, in_sync)


def _failures(
    before: RatePushPlan, after: RatePushPlan | None, report: ApplyReport, reread: str
) -> tuple[PushItem, ...]:
    """What is not on the hub as stored: the fresh plan's items (or, if the hub could not
    be re-read, every planned one), each with apply's message for it when there was one."""
    why = {_key(r.item): r.message for r in report.results if r.status is not ItemStatus.OK}
    left = before if after is None else after
    seen: set[RateKey] = set()
    failed: list[PushItem] = list(left.missing)
    for item in left.plan.items:
        if _key(item) in seen:
            continue
        seen.add(_key(item))
        if not item.actionable:
            error = item.reason or "manual action needed"
        elif after is None:
            error = why.get(_key(item)) or reread
        else:
            error = why.get(_key(item)) or "still different after push"
        failed.append(PushItem(item.action.value, item.provider, item.name, item.type, error))
    return tuple(failed)


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
    own = client is None
    try:
        client = client or HubClient.from_settings()
    except ValidationError as exc:
        return PushResult(0, 0, 0, (PushItem("connect", "", "", "", str(exc)),), str(exc))
    try:
        try:
            before = plan_push(store, pull(client), rate_filter)
        except HubError as exc:
            reason = f"could not read the hub: {exc}"
            return PushResult(0, 0, 0, (PushItem("read", "", "", "", str(exc)),), reason)
        report = apply(before.plan, store, client, dry_run=False, job_run_id=run_id)
        sent = report.count(ItemStatus.OK)
        # verify: a fresh plan, narrowed the same way, must be empty
        after: RatePushPlan | None
        reread = ""
        try:
            after = plan_push(store, pull(client), rate_filter)
        except HubError as exc:
            after, reread = None, f"could not re-read the hub to verify: {exc}"
        failed = _failures(before, after, report, reread)
        if failed:
            reason = (
                f"{len(failed)} of {before.planned} rates not on the hub as stored "
                f"(first: {failed[0].provider}/{failed[0].model}: {failed[0].error}); "
                "run again to push the rest"
            )
        else:
            reason = (
                f"pushed {sent} rates, {before.in_sync} already in sync, verified by re-reading"
            )
        return PushResult(before.planned, sent, before.in_sync, failed, reason)
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
