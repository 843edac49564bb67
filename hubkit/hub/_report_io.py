"""An :class:`~hubkit.hub.apply.ApplyReport` as JSON, HTML and a ``reports/`` folder.

The folder (``reports/<UTC>-hub-apply/``) holds ``report.json`` (every item's result),
``results.csv`` (the same as a table), ``plan.json`` (what was applied) and a
``summary.json`` the reports index reads. Messages are the client's, already redacted;
credentials appear only masked.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubkit._files import atomic_write_csv, atomic_write_text, json_text, write_summary
from hubkit.decimals import plain
from hubkit.hub._plan_io import iso_seconds, plan_to_json, report_folder

if TYPE_CHECKING:
    from hubkit.hub.apply import ApplyReport
    from hubkit.hub.verify import ArithmeticCheck


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
