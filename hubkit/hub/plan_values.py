"""A plan as a value (:class:`Plan`, its items and changes) and its forms: frames, JSON,
CSV, HTML and a ``reports/`` folder. :func:`hubkit.hub.plan.plan` computes one.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from hubkit._files import atomic_write_text, json_text, new_run_folder, write_summary
from hubkit._readers import read_text
from hubkit.config import get_settings
from hubkit.errors import ValidationError


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


class RateItemKey(TypedDict):
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

    # --- views and files (below in this module) ---------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per item: kind, action, target, changes as ``field: old → new``, reason."""
        return plan_frame(self)

    def changes_frame(self) -> pd.DataFrame:
        """One row per field change (the CSV's shape)."""
        return changes_frame(self)

    def to_json(self) -> str:
        return plan_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return plan_from_json(text)

    def to_csv(self, path: str | Path) -> Path:
        return plan_to_csv(self, Path(path))

    @classmethod
    def from_csv(cls, path: str | Path) -> Plan:
        return plan_from_csv(Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """A plan saved as ``.json`` or ``.csv``."""
        return read_plan(path)

    def save(self, folder: str | Path | None = None) -> Path:
        """Write plan.json, plan.csv and summary.json into ``folder`` (default: a new
        ``reports/<UTC>-hub-plan/``); returns the folder."""
        return save_plan(self, None if folder is None else Path(folder))

    def _repr_html_(self) -> str:
        return plan_html(self)


#: the pairs a plan can hold, in the order ``apply`` runs them
ORDER = {
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


def check_items(items: Iterable[PlanItem]) -> None:
    """Refuse an item no plan can hold (a kind/action pair ``apply`` has no step for)."""
    for item in items:
        if (item.kind, item.action) not in ORDER:
            raise ValidationError(
                f"a plan cannot {item.action.value} a {item.kind.value} ({item.target})",
                field="action",
            )


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
    check_items(items)
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
