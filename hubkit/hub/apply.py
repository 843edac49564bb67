"""``apply``: carry out a :class:`~hubkit.hub.plan.Plan` item by item, dry run by default.

>>> report = apply(p, store, client)               # doctest: +SKIP  (dry run: reads only)
>>> report = apply(p, store, client, dry_run=False) # doctest: +SKIP
>>> report.save()                                   # doctest: +SKIP  reports/<UTC>-hub-apply/

Each item ends ``ok``, ``failed`` (with the hub's redacted reason) or ``skipped`` (why),
or ``dry_run`` (what it would do). Before anything, the hub is read again and every item
is checked against it, so a plan applied late or twice never repeats work: what is
already on the hub is ``ok`` ("already on the hub"), what changed there or locally since
the plan is ``skipped`` ("re-plan"). After a partial failure, a fresh plan contains only
what is still missing, and applying it finishes the job.

POSTs are never blindly retried (the client refuses); when one fails in a way that may
have reached the hub (timeout, dropped connection, 5xx, 409), the hub is re-read to see
whether it landed before the item is reported. After three items in a row fail because
the hub does not answer at all, the rest are skipped rather than each waiting for its
timeouts. Pushed rates are recorded as ``hub_push`` history rows; pushed credentials get
their ``last_pushed_at`` set.

Items run ``concurrency`` at a time (default ``HUBKIT_HUB_CONCURRENCY``, 8), each after
those it depends on (see :mod:`hubkit.hub._schedule`): at a 50 ms round trip, one at a
time is ~20 items a second whatever the hub could take. A 429 pauses every worker until
the hub's ``Retry-After`` (the client shares it). The hub's batch routes are not used:
margin-mode bulk update ignores ``dryRun`` and rewrites every rate with unit costs, and
sync mode computes rates from unit costs itself and copies costs to tier-2 providers —
neither can carry a plan's item-by-item changes exactly.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hubkit._files import atomic_write_csv, atomic_write_text, json_text, write_summary
from hubkit.config import hub_concurrency
from hubkit.decimals import plain
from hubkit.errors import HubError, HubkitError, HubStatusError, ValidationError
from hubkit.hub._apply_steps import Steps
from hubkit.hub._schedule import Scheduler, dependencies
from hubkit.hub.plan import Action, ItemKind, Plan, PlanItem
from hubkit.hub.plan_values import iso_seconds, plan_to_json, report_folder
from hubkit.hub.pull import pull
from hubkit.hub.redact import redact_url
from hubkit.hub.verify import ArithmeticCheck, verify_against_hub_arithmetic

if TYPE_CHECKING:
    from hubkit.hub.client import HubClient
    from hubkit.store import Store

logger = logging.getLogger("hubkit.hub.apply")
Progress = Callable[[int, int], None]
#: Items in a row that may fail with "no answer at all" before the rest are skipped.
UNREACHABLE_AFTER = 3


class ItemStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"  # a dry run: what would be sent


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: PlanItem
    status: ItemStatus
    message: str = ""
    hub_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """Per-item results of one ``apply``."""

    plan: Plan
    results: tuple[ItemResult, ...]
    dry_run: bool
    hub: str
    started_at: datetime
    finished_at: datetime
    cross_check: ArithmeticCheck | None = field(default=None)

    def __repr__(self) -> str:
        return f"ApplyReport(hub={self.hub!r}, dry_run={self.dry_run}, {self.summary()})"

    def count(self, status: ItemStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        return tuple(r for r in self.results if r.status is ItemStatus.FAILED)

    @property
    def complete(self) -> bool:
        """Every applicable item is on the hub (manual items never count)."""
        return not self.dry_run and all(
            r.status is ItemStatus.OK for r in self.results if r.item.actionable
        )

    def counts(self) -> dict[str, int]:
        return {s.value: self.count(s) for s in ItemStatus}

    def summary(self) -> str:
        text = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n) or "nothing to do"
        if self.dry_run:
            return f"dry run: {text}; nothing was written"
        if self.complete:
            return f"{text}; complete"
        return f"{text}; not complete: make a fresh plan and apply it to finish"

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {"kind": r.item.kind.value, "action": r.item.action.value, "target": r.item.target,
             "status": r.status.value, "message": r.message, "hub_id": r.hub_id,
             "changes": "; ".join(str(c) for c in r.item.changes)}
            for r in self.results
        ]  # fmt: skip
        columns = ["kind", "action", "target", "status", "message", "hub_id", "changes"]
        return pd.DataFrame(rows, columns=columns)

    def to_json(self) -> str:
        return report_to_json(self)

    def save(self, folder: str | Path | None = None) -> Path:
        """report.json, results.csv, plan.json, summary.json in ``folder`` (default: a new
        ``reports/<UTC>-hub-apply/``, or ``-hub-apply-dry-run``); returns the folder."""
        return save_report(self, None if folder is None else Path(folder))

    def _repr_html_(self) -> str:
        return report_html(self)


def apply(
    plan: Plan,
    store: Store,
    client: HubClient,
    *,
    dry_run: bool = True,
    progress: Progress | None = None,
    cross_check: tuple[Any, Any] | None = None,
    job_run_id: str | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
    concurrency: int | None = None,
) -> ApplyReport:
    """Apply ``plan`` to the hub behind ``client`` (see the module docstring).

    ``cross_check=(profit_margin, credit_price)`` first compares the plan's rates with the
    hub's own arithmetic (sync mode, dry run) and raises
    :class:`~hubkit.hub.verify.ArithmeticMismatchError` — before any write — when they
    differ. ``progress(done, total)`` is called before the first item and after each one;
    ``on_result(result)`` with each item's outcome (:class:`~hubkit.hub.progress.PushProgress`
    takes both), on the caller's thread in the order items finish.

    ``concurrency`` items are in flight at once (default: the client's, i.e.
    ``HUBKIT_HUB_CONCURRENCY``, 8; 1: one by one in plan order). An item never
    starts before the items it depends on have finished: its provider's, and earlier ones
    on the same provider, credential or rate. The report lists results in plan order.
    """
    concurrency = hub_concurrency(client.concurrency if concurrency is None else concurrency)
    hub = redact_url(client.base_url)
    if plan.hub and plan.hub != hub:
        raise ValidationError(
            f"this plan was made against {plan.hub}, not {hub}; make a plan for this hub",
            field="plan",
        )
    started = datetime.now(UTC)
    check = None
    if cross_check is not None:
        check = verify_against_hub_arithmetic(plan, client, *cross_check)
    total = len(plan.items)
    if progress is not None:
        progress(0, total)
    try:
        state = pull(client)
    except HubError as exc:
        reason = f"not attempted: could not read the hub before applying: {exc}"
        results = tuple(_manual(i) or ItemResult(i, ItemStatus.FAILED, reason) for i in plan.items)
        if on_result is not None:
            for result in results:
                on_result(result)
        if progress is not None:
            progress(total, total)
        return ApplyReport(plan, results, dry_run, hub, started, datetime.now(UTC), check)
    steps = Steps(store, client, state, dry_run=dry_run, source=f"hub:{hub}", job_run_id=job_run_id)
    silent = 0  # items in a row (as they finish) whose calls got no answer at all
    done = 0

    def finished(_index: int, outcome: _Outcome) -> None:
        nonlocal done, silent
        result, no_answer = outcome
        silent = silent + 1 if no_answer else 0
        done += 1
        if on_result is not None:
            on_result(result)
        # messages come from the client (redacted) or from hubkit; never a key
        logger.info(
            "%s %s %s: %s — %s",
            "dry run:" if dry_run else "apply:",
            result.item.action.value,
            result.item.target,
            result.status.value,
            result.message,
        )
        if progress is not None:
            progress(done, total)

    def not_started(item: PlanItem) -> _Outcome:
        return _manual(item) or ItemResult(
            item,
            ItemStatus.SKIPPED,
            f"not attempted: the hub stopped answering ({UNREACHABLE_AFTER} items in a row "
            "got no answer); once it is back, make a fresh plan and apply it",
        ), False

    outcomes = Scheduler(
        plan.items,
        dependencies(plan.items, _key, _parent),
        run=lambda item: _run(steps, item),
        not_started=not_started,
        on_done=finished,
        stop_after=lambda _outcome: silent >= UNREACHABLE_AFTER,
        concurrency=concurrency,
    ).results()
    results = tuple(result for result, _no_answer in outcomes)
    return ApplyReport(plan, results, dry_run, hub, started, datetime.now(UTC), check)


_Outcome = tuple["ItemResult", bool]  # the result, and whether the hub gave no answer at all


def _key(item: PlanItem) -> tuple[str, ...]:
    """What an item changes: items with the same key run in plan order."""
    if item.kind is ItemKind.PROVIDER:
        return _provider_key(item.provider)
    if item.kind is ItemKind.CREDENTIAL:
        return (item.kind.value, item.provider, item.name)
    return (item.kind.value, item.provider, item.name, item.type)


def _parent(item: PlanItem) -> tuple[str, ...] | None:
    """A provider's items come before its credentials' and rates'."""
    return None if item.kind is ItemKind.PROVIDER else _provider_key(item.provider)


def _provider_key(name: str) -> tuple[str, ...]:
    return (ItemKind.PROVIDER.value, name)


def _manual(item: PlanItem) -> ItemResult | None:
    if item.action is Action.MANUAL:
        return ItemResult(item, ItemStatus.SKIPPED, item.reason or "manual action needed")
    return None


def _run(steps: Steps, item: PlanItem) -> _Outcome:
    manual = _manual(item)
    if manual is not None:
        return manual, False
    try:
        status, message, hub_id = steps.run(item)
    except HubError as exc:
        return ItemResult(item, ItemStatus.FAILED, str(exc)), not isinstance(exc, HubStatusError)
    except HubkitError as exc:  # local trouble: a key that cannot be decrypted, a bad value
        return ItemResult(item, ItemStatus.FAILED, f"{type(exc).__name__}: {exc}"), False
    return ItemResult(item, ItemStatus(status), message, hub_id), False


# --- the report as JSON, HTML and a reports/ folder ----------------------------------------
# report.json (every item's result), results.csv (the same as a table), plan.json (what was
# applied) and the summary.json the reports index reads. Messages are the client's, already
# redacted; credentials appear only masked.


def check_json(check: ArithmeticCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "profitMargin": plain(check.profit_margin),
        "creditPrice": plain(check.credit_price),
        "compared": check.compared,
        "agreed": check.agreed,
        "mismatches": [m.describe() for m in check.mismatches],
        "notCompared": list(check.not_compared),
        "tier2SideEffects": list(check.tier2_side_effects),
    }


def report_to_json(report: ApplyReport) -> str:
    data = {
        "format": "hubkit-hub-apply-report",
        "hub": report.hub,
        "dryRun": report.dry_run,
        "startedAt": iso_seconds(report.started_at),
        "finishedAt": iso_seconds(report.finished_at),
        "complete": report.complete,
        "summary": report.summary(),
        "counts": report.counts(),
        "crossCheck": check_json(report.cross_check),
        "results": [
            {"kind": r.item.kind.value, "action": r.item.action.value, "target": r.item.target,
             "status": r.status.value, "message": r.message, "hubId": r.hub_id,
             "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in r.item.changes]}
            for r in report.results
        ],
    }  # fmt: skip
    return json_text(data)


def save_report(report: ApplyReport, folder: Path | None) -> Path:
    kind = "hub-apply-dry-run" if report.dry_run else "hub-apply"
    target = report_folder(kind, folder)
    atomic_write_text(target / "report.json", report_to_json(report))
    atomic_write_text(target / "plan.json", plan_to_json(report.plan))
    atomic_write_csv(target / "results.csv", report.to_frame())
    counts = report.counts()
    status = "dry_run" if report.dry_run else ("success" if report.complete else "push_partial")
    summary = {
        "run_id": target.name,
        "job": "hub-apply",
        "status": status,
        "parameters": {"dry_run": report.dry_run, "hub": report.hub},
        "started_at": iso_seconds(report.started_at),
        "duration_seconds": round((report.finished_at - report.started_at).total_seconds(), 3),
        "counts": {"changed": counts["ok"], "refused": counts["failed"], **counts},
        "reason": report.summary(),
    }
    write_summary(target, summary)
    return target


_COLOURS = {"ok": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700", "dry_run": "#0969da"}


def report_html(report: ApplyReport) -> str:
    head = (
        f"<p><b>Hub apply</b> to <code>{html.escape(report.hub)}</code>: "
        f"{html.escape(report.summary())}</p>"
    )
    if not report.results:
        return head
    rows = []
    for r in report.results:
        colour = _COLOURS.get(r.status.value, "inherit")
        rows.append(
            "<tr>"
            f"<td>{html.escape(r.item.kind.value)}</td><td>{html.escape(r.item.action.value)}</td>"
            f"<td>{html.escape(r.item.target)}</td>"
            f"<td style='color:{colour}'><b>{html.escape(r.status.value)}</b></td>"
            f"<td>{html.escape(r.message)}</td>"
            "</tr>"
        )
    return (
        head + "<table><thead><tr><th>kind</th><th>action</th><th>target</th><th>status</th>"
        "<th>message</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
