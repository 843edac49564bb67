"""A :class:`~hubkit.hub.plan.Plan` as frames, JSON, CSV, HTML and a ``reports/`` folder.

JSON carries everything (``Plan.from_json(p.to_json()) == p``). The CSV has one row per
field change (``item`` numbers the plan's items) after a first line
``# hubkit-hub-plan {…}`` holding the plan's own fields, so it round-trips too and still
opens in a spreadsheet. Values are the plan's canonical texts (plain decimal strings);
none of them is a secret: credentials appear only as their masked display text.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit._files import atomic_write_text, json_text, new_run_folder, write_summary
from hubkit._readers import read_text
from hubkit.config import get_settings
from hubkit.errors import ValidationError
from hubkit.hub.plan import Action, FieldChange, ItemKind, Plan, PlanItem, _check_items

FORMAT = "hubkit-hub-plan"
VERSION = 1
CSV_COLUMNS = ["item", "kind", "action", "provider", "name", "type", "local_version", "reason",
               "field", "old", "new"]  # fmt: skip
FRAME_COLUMNS = ["kind", "action", "target", "changes", "reason"]


# --- frames ---------------------------------------------------------------------------------


def plan_frame(plan: Plan) -> pd.DataFrame:
    rows = [
        {"kind": i.kind.value, "action": i.action.value, "target": i.target,
         "changes": "; ".join(str(c) for c in i.changes), "reason": i.reason}
        for i in plan.items
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _csv_rows(plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for n, item in enumerate(plan.items, start=1):
        base = {"item": n, "kind": item.kind.value, "action": item.action.value,
                "provider": item.provider, "name": item.name, "type": item.type,
                "local_version": "" if item.local_version is None else item.local_version,
                "reason": item.reason}  # fmt: skip
        changes = item.changes or (None,)
        for change in changes:
            rows.append(
                {**base, "field": change.field if change else "",
                 "old": (change.old if change else None) or "",
                 "new": (change.new if change else None) or ""}
            )  # fmt: skip
    return rows


def changes_frame(plan: Plan) -> pd.DataFrame:
    return pd.DataFrame(_csv_rows(plan), columns=CSV_COLUMNS)


# --- JSON -----------------------------------------------------------------------------------


def _meta(plan: Plan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "hub": plan.hub,
        "createdAt": plan.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "deletes": plan.deletes,
        "providers": list(plan.providers),
        "inSync": plan.in_sync,
    }


def _item_json(item: PlanItem) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "action": item.action.value,
        "provider": item.provider,
        "name": item.name,
        "type": item.type,
        "localVersion": item.local_version,
        "reason": item.reason,
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in item.changes],
    }


def plan_to_json(plan: Plan) -> str:
    data = {**_meta(plan), "summary": plan.summary(), "counts": plan.counts(),
            "items": [_item_json(i) for i in plan.items]}  # fmt: skip
    return json_text(data)


def plan_from_json(text: str, name: str = "") -> Plan:
    where = f"{name}: " if name else ""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ValidationError(
            f"{where}not a saved hub plan (invalid JSON: {problem}); {_PLAN_HINT}", field="plan"
        ) from None
    try:
        meta = _check_meta(data)
        items = data.get("items")
        if not isinstance(items, list):
            raise ValidationError("a saved hub plan needs an 'items' list", field="plan")
        return _build(meta, [_item_from(raw, n) for n, raw in enumerate(items, start=1)])
    except ValidationError as exc:
        if not name:
            raise
        raise ValidationError(f"{where}{exc}", field=exc.field, value=exc.value) from None


def _check_meta(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ValidationError(
            f"not a saved hub plan (expected format {FORMAT!r}); make one with "
            "`python -m hubkit hub plan --json FILE`",
            field="plan",
        )
    if data.get("version") != VERSION:
        raise ValidationError(
            f"hub plan version {data.get('version')!r} is not supported (this hubkit reads "
            f"version {VERSION}); make the plan again",
            field="plan",
        )
    return data


def _build(meta: Mapping[str, Any], items: list[PlanItem]) -> Plan:
    _check_items(items)
    try:
        created = datetime.fromisoformat(str(meta.get("createdAt")))
    except ValueError:
        raise ValidationError("the plan's createdAt is not a timestamp", field="plan") from None
    return Plan(
        items=tuple(items),
        hub=str(meta.get("hub") or ""),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        deletes=bool(meta.get("deletes")),
        providers=tuple(str(p) for p in meta.get("providers") or ()),
        in_sync=int(meta.get("inSync") or 0),
    )


def _item_from(raw: Any, n: int) -> PlanItem:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"plan item {n} is not an object", field="plan")
    try:
        # str(): a JSON null or number is no kind either, and fails the same ValueError
        kind, action = ItemKind(str(raw.get("kind"))), Action(str(raw.get("action")))
    except ValueError:
        raise ValidationError(
            f"plan item {n}: unknown kind/action {raw.get('kind')!r}/{raw.get('action')!r}",
            field="plan",
        ) from None
    changes = []
    for c in raw.get("changes") or ():
        if not isinstance(c, Mapping) or not isinstance(c.get("field"), str):
            raise ValidationError(f"plan item {n}: a change needs a field name", field="plan")
        changes.append(FieldChange(c["field"], _opt_text(c.get("old")), _opt_text(c.get("new"))))
    version = raw.get("localVersion")
    return PlanItem(
        kind=kind,
        action=action,
        provider=str(raw.get("provider") or ""),
        name=str(raw.get("name") or ""),
        type=str(raw.get("type") or ""),
        changes=tuple(changes),
        reason=str(raw.get("reason") or ""),
        local_version=None if version in (None, "") else int(version),
    )


def _opt_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# --- CSV ------------------------------------------------------------------------------------


def plan_to_csv(plan: Plan, path: Path) -> Path:
    buffer = io.StringIO()
    buffer.write(f"# {FORMAT} {json.dumps(_meta(plan), ensure_ascii=False)}\n")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_csv_rows(plan))
    atomic_write_text(path, buffer.getvalue())
    return path


_PLAN_HINT = "make one with `python -m hubkit hub plan --json FILE` (or --csv FILE)"


def read_plan(path: str | Path) -> Plan:
    """A plan saved as ``.json`` or ``.csv``; any unreadable file is a ValidationError."""
    file = Path(path)
    text = read_text(file, "saved hub plan", hint=_PLAN_HINT)
    if file.suffix.lower() == ".csv":
        return plan_from_csv(file, text)
    return plan_from_json(text, str(file))


def plan_from_csv(path: Path, text: str | None = None) -> Plan:
    if text is None:
        text = read_text(path, "saved hub plan", hint=_PLAN_HINT)
    first, _, rest = text.partition("\n")
    prefix = f"# {FORMAT} "
    if not first.startswith(prefix):
        raise ValidationError(
            f"{path.name} is not a saved hub plan (its first line should start {prefix!r})",
            field="plan",
        )
    try:
        meta = _check_meta(json.loads(first[len(prefix) :]))
    except (ValueError, RecursionError):
        raise ValidationError(
            f"{path.name}: the plan's first line is damaged", field="plan"
        ) from None
    try:
        rows = list(csv.DictReader(io.StringIO(rest)))
    except csv.Error as exc:
        raise ValidationError(
            f"{path.name}: the plan's rows are not well-formed CSV ({exc}); {_PLAN_HINT}",
            field="plan",
        ) from None
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = grouped.setdefault(
            row.get("item") or "",
            {"kind": row.get("kind"), "action": row.get("action"),
             "provider": row.get("provider"), "name": row.get("name"), "type": row.get("type"),
             "localVersion": row.get("local_version"), "reason": row.get("reason"),
             "changes": []},
        )  # fmt: skip
        if row.get("field"):
            item["changes"].append({"field": row["field"], "old": row.get("old"),
                                    "new": row.get("new")})  # fmt: skip
    items = [_item_from(raw, n) for n, raw in enumerate(grouped.values(), start=1)]
    return _build(meta, items)


# --- reports/ and HTML ----------------------------------------------------------------------


def report_folder(kind: str, folder: Path | None = None) -> Path:
    """``folder``, or a new ``reports/<UTC time>-<kind>/`` (``-2``… if taken, marked as
    hubkit's so ``reports prune`` may delete it)."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return new_run_folder(get_settings().reports_dir, kind)


def save_plan(plan: Plan, folder: Path | None) -> Path:
    target = report_folder("hub-plan", folder)
    atomic_write_text(target / "plan.json", plan_to_json(plan))
    plan_to_csv(plan, target / "plan.csv")
    summary = {
        "run_id": target.name,
        "job": "hub-plan",
        "status": "planned" if plan.actionable else "in_sync",
        "parameters": {"dry_run": True, "hub": plan.hub, "deletes": plan.deletes,
                       "providers": list(plan.providers)},
        "started_at": iso_seconds(plan.created_at),
        "counts": {"changed": len(plan.actionable), "refused": len(plan.manual),
                   **plan.counts()},
        "reason": plan.summary(),
    }  # fmt: skip
    write_summary(target, summary)
    return target


def plan_html(plan: Plan) -> str:
    head = (
        f"<p><b>Hub plan</b> against <code>{html.escape(plan.hub or '?')}</code>, made "
        f"{html.escape(iso_seconds(plan.created_at))}: {html.escape(plan.summary())}"
        + (" — <i>manual rows are shown, never applied</i>" if plan.manual else "")
        + "</p>"
    )
    if not plan.items:
        return head
    return head + plan_frame(plan).to_html(index=False, escape=True, border=0)


def iso_seconds(at: datetime) -> str:
    """``2025-01-01T02:00:00Z``: the timestamps plan and apply reports show."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
