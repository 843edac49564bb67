"""Proposed changes from every change path: an edit, a delete, a batch create, a bulk update
preview, a catalog sync plan, a CSV of new rates, and the revert of an applied proposal.

Each function reads the rates as they are now (their versions become the changes' base
versions) and returns :class:`ProposedChange` values; nothing is written. Pass them to
:func:`hubkit.proposals.propose` (which also computes the impact) or
:meth:`hubkit.store.Store.create_proposal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from hubkit.decimals import to_decimal
from hubkit.domain import Rate, RateSpec, RateType, UnitCosts
from hubkit.errors import ConflictError, ValidationError
from hubkit.pricing import BulkPreview
from hubkit.store import Store
from hubkit.store.proposals import ProposalAction, ProposalState, ProposedChange
from hubkit.store.rates import spec_columns

__all__ = [
    "CatalogRow",
    "batch_create_changes",
    "bulk_changes",
    "catalog_changes",
    "csv_changes",
    "delete_change",
    "edit_change",
    "revert_changes",
    "spec_snapshot",
]

_UNSET: Any = object()


def spec_snapshot(spec: RateSpec) -> dict[str, Any]:
    """A new rate's definition as a proposal's ``after`` snapshot."""
    columns = spec_columns(spec)
    return {"provider": spec.provider, **columns}


def _costs_json(costs: UnitCosts | None) -> dict[str, Any] | None:
    return None if costs is None else {"input": costs.input, "output": costs.output}


def _spec_of(rate: Rate, **overrides: Any) -> RateSpec:
    """``rate``'s definition with ``overrides`` (the arguments of Store.update_rate)."""
    caching = rate.caching
    current: dict[str, Any] = {
        "input_rate": rate.input_rate,
        "output_rate": rate.output_rate,
        "unit_costs": _costs_json(rate.unit_costs),
        "caching": None
        if caching is None
        else {"readRate": caching.read_rate, "writeRate": caching.write_rate},
        "model_display": rate.model_display,
        "description": rate.description,
        "model_metadata": rate.model_metadata,
    }
    current.update({k: v for k, v in overrides.items() if v is not _UNSET})
    return RateSpec.create(rate.provider, rate.model, rate.type, **current)


def _after(before: Mapping[str, Any], spec: RateSpec) -> dict[str, Any]:
    after = dict(before)
    after.update(spec_snapshot(spec))
    return after


def edit_change(
    store: Store,
    rate_id: int,
    *,
    expected_version: int | None = None,
    input_rate: Any = _UNSET,
    output_rate: Any = _UNSET,
    unit_costs: Any = _UNSET,
    caching: Any = _UNSET,
    model_display: Any = _UNSET,
    description: Any = _UNSET,
    model_metadata: Any = _UNSET,
) -> ProposedChange:
    """One rate edit (the arguments of :meth:`Store.update_rate`) as a proposed update.

    ``expected_version``: the version the editor saw; a rate at another version is a
    StaleVersionError now rather than a stale proposal later.
    """
    rate = store.get_rate(rate_id)
    version, before = store.rate_snapshots([rate_id])[rate_id]
    if expected_version is not None and expected_version != version:
        from hubkit.errors import StaleVersionError

        raise StaleVersionError.for_row(
            f"rate {rate.provider}/{rate.model} ({rate.type.value})", expected_version, version
        )
    spec = _spec_of(
        rate,
        input_rate=input_rate,
        output_rate=output_rate,
        unit_costs=unit_costs,
        caching=caching,
        model_display=model_display,
        description=description,
        model_metadata=model_metadata,
    )
    after = _after(before, spec)
    return ProposedChange(
        ProposalAction.UPDATE, rate.provider, rate.model, rate.type, rate_id, version, before,
        after,
    )  # fmt: skip


def delete_change(store: Store, rate_id: int) -> ProposedChange:
    """Deleting one rate, as a proposed change."""
    rate = store.get_rate(rate_id)
    version, before = store.rate_snapshots([rate_id])[rate_id]
    return ProposedChange(
        ProposalAction.DELETE, rate.provider, rate.model, rate.type, rate_id, version, before
    )


def batch_create_changes(spec: RateSpec, providers: Iterable[str]) -> list[ProposedChange]:
    """One definition for several providers (the rate editor's batch create)."""
    names = list(dict.fromkeys(p.strip().lower() for p in providers if p.strip()))
    if not names:
        raise ValidationError("name at least one provider", field="providers")
    out = []
    for name in names:
        snap = spec_snapshot(spec)
        snap["provider"] = name
        out.append(ProposedChange(ProposalAction.CREATE, name, spec.model, spec.type, after=snap))
    return out


def bulk_changes(store: Store, preview: BulkPreview) -> list[ProposedChange]:
    """The rates a bulk update preview changes (margin × credit price), as proposed updates.

    Base versions are the preview's: a rate edited since the preview makes the proposal
    stale, exactly as it would make the bulk apply refuse.
    """
    changed = preview.changed
    snapshots = store.rate_snapshots(c.rate_id for c in changed)
    out = []
    for c in changed:
        _, before = snapshots[c.rate_id]
        after = dict(before)
        after["input_rate"] = c.new_input_rate
        after["output_rate"] = c.new_output_rate
        out.append(
            ProposedChange(
                ProposalAction.UPDATE,
                c.provider,
                c.model,
                c.type,
                c.rate_id,
                c.version,
                before,
                after,
            )  # fmt: skip
        )
    return out


class CatalogRow(Protocol):
    """A row of a catalog sync plan (hubkit.jobs.catalog_sync.SyncRow has these)."""

    @property
    def action(self) -> str: ...
    @property
    def rate_id(self) -> int | None: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def type(self) -> RateType: ...
    @property
    def new_costs(self) -> UnitCosts: ...
    @property
    def new_input_rate(self) -> Decimal: ...
    @property
    def new_output_rate(self) -> Decimal: ...


def catalog_changes(
    store: Store, rows: Sequence[CatalogRow], versions: Mapping[int, int] | None = None
) -> list[ProposedChange]:
    """A catalog sync plan's creates and updates (unit costs, re-derived rates).

    ``versions``: rate id → version as planned (the plan's ``versions``); default: now.
    """
    todo = [r for r in rows if r.action in ("create", "update")]
    ids = [r.rate_id for r in todo if r.rate_id is not None]
    snapshots = store.rate_snapshots(ids)
    out = []
    for r in todo:
        costs = {"unit_cost_input": r.new_costs.input, "unit_cost_output": r.new_costs.output}
        if r.action == "create":
            spec = RateSpec.create(
                r.provider,
                r.model,
                r.type,
                input_rate=r.new_input_rate,
                output_rate=r.new_output_rate,
                unit_costs={"input": r.new_costs.input, "output": r.new_costs.output},
            )
            out.append(
                ProposedChange(
                    ProposalAction.CREATE, r.provider, r.model, r.type, after=spec_snapshot(spec)
                )
            )
            continue
        assert r.rate_id is not None
        version, before = snapshots[r.rate_id]
        if versions is not None and r.rate_id in versions:
            version = versions[r.rate_id]
        after = dict(before)
        after.update(costs)
        after["input_rate"] = r.new_input_rate
        after["output_rate"] = r.new_output_rate
        out.append(
            ProposedChange(
                ProposalAction.UPDATE,
                r.provider,
                r.model,
                r.type,
                r.rate_id,
                version,
                before,
                after,
            )  # fmt: skip
        )
    return out


_CSV_REQUIRED = ("provider", "model", "type")
_CSV_OPTIONAL = ("input_rate", "output_rate", "unit_cost_input", "unit_cost_output")


def csv_changes(store: Store, source: str | Path | pd.DataFrame) -> list[ProposedChange]:
    """New rates from a CSV (or a DataFrame): columns provider, model, type and any of
    input_rate, output_rate, unit_cost_input, unit_cost_output.

    A row naming an existing rate updates it (blank cells keep the current value); a row
    naming no rate creates one (both rates required). Rows that change nothing are left
    out. A bad cell is a ValidationError naming its line.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValidationError(f"no such CSV file: {path}", field="csv", value=str(source))
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:  # empty, not CSV, not text
            raise ValidationError(
                f"{path.name} is not a CSV of rates: {exc}", field="csv"
            ) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in _CSV_REQUIRED if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"the CSV needs columns {list(_CSV_REQUIRED)} (and any of {list(_CSV_OPTIONAL)}); "
            f"missing {missing}",
            field=missing[0],
        )
    rates = {(r.provider, r.model, r.type.value): r for r in store.list_rates()}
    snapshots = store.rate_snapshots()
    out: list[ProposedChange] = []
    seen: set[tuple[str, str, str]] = set()
    for pos, record in enumerate(frame.to_dict("records")):
        line = pos + 2  # the header is line 1
        provider = str(record["provider"]).strip().lower()
        model = str(record["model"]).strip()
        try:
            rtype = RateType.parse(str(record["type"]).strip())
        except ValidationError as exc:
            raise ValidationError(f"CSV line {line}: {exc}", field="type") from None
        key = (provider, model, rtype.value)
        if key in seen:
            raise ValidationError(f"CSV line {line}: {provider}/{model} ({rtype.value}) twice")
        seen.add(key)
        values: dict[str, Decimal] = {}
        for name in _CSV_OPTIONAL:
            raw = record.get(name)
            if raw is None or (isinstance(raw, float) and raw != raw) or str(raw).strip() == "":
                continue
            try:
                number = to_decimal(str(raw).strip(), name)
            except ValidationError as exc:
                raise ValidationError(f"CSV line {line}: {exc}", field=name) from None
            if number is not None:
                values[name] = number
        costs: Any = _UNSET
        if "unit_cost_input" in values or "unit_cost_output" in values:
            costs = {
                "input": values.get("unit_cost_input", Decimal(0)),
                "output": values.get("unit_cost_output", Decimal(0)),
            }
        rate = rates.get(key)
        try:
            if rate is None:
                if "input_rate" not in values or "output_rate" not in values:
                    raise ValidationError(
                        "a new rate needs both input_rate and output_rate (0 for free)"
                    )
                spec = RateSpec.create(
                    provider, model, rtype, input_rate=values["input_rate"],
                    output_rate=values["output_rate"],
                    unit_costs=None if costs is _UNSET else costs,
                )  # fmt: skip
                out.append(
                    ProposedChange(
                        ProposalAction.CREATE, provider, model, rtype, after=spec_snapshot(spec)
                    )
                )
                continue
            if rate.unit_costs is not None and costs is not _UNSET:
                costs = {
                    "input": values.get("unit_cost_input", rate.unit_costs.input),
                    "output": values.get("unit_cost_output", rate.unit_costs.output),
                }
            spec = _spec_of(
                rate,
                input_rate=values.get("input_rate", _UNSET),
                output_rate=values.get("output_rate", _UNSET),
                unit_costs=costs,
            )
        except ValidationError as exc:
            raise ValidationError(f"CSV line {line}: {exc}", field=exc.field) from None
        version, before = snapshots[rate.id]
        after = _after(before, spec)
        if after == before:
            continue
        out.append(
            ProposedChange(
                ProposalAction.UPDATE, provider, model, rtype, rate.id, version, before, after
            )
        )
    return out


def revert_changes(store: Store, proposal_id: int) -> list[ProposedChange]:
    """The changes that undo an applied proposal as a unit (for a ``revert`` proposal).

    Refused (ConflictError) when a rate it changed has moved since: the revert would
    overwrite that later change.
    """
    proposal = store.get_proposal(proposal_id)
    if proposal.state is not ProposalState.APPLIED:
        raise ConflictError(
            f"proposal {proposal_id} is {proposal.state.value}: only an applied proposal can "
            "be reverted"
        )
    current = {(r.provider, r.model, r.type.value): r for r in store.list_rates()}
    snapshots = store.rate_snapshots(r.id for r in current.values())
    out: list[ProposedChange] = []
    moved: list[str] = []
    for change in proposal.changes:
        rate = current.get(change.key)
        label = f"{change.provider}/{change.model} ({change.type.value})"
        if change.action is ProposalAction.DELETE:
            if rate is not None:
                moved.append(f"{label} was re-created")
                continue
            assert change.before is not None
            out.append(
                ProposedChange(
                    ProposalAction.CREATE,
                    change.provider,
                    change.model,
                    change.type,
                    after={k: v for k, v in change.before.items() if not k.startswith("deprec")},
                )  # fmt: skip
            )
            continue
        if rate is None:
            moved.append(f"{label} was deleted")
            continue
        version, now = snapshots[rate.id]
        assert change.after is not None
        if any(now.get(k) != v for k, v in change.after.items()):
            moved.append(f"{label} changed again")
            continue
        if change.action is ProposalAction.CREATE:
            out.append(
                ProposedChange(
                    ProposalAction.DELETE,
                    change.provider,
                    change.model,
                    change.type,
                    rate.id,
                    version,
                    now,
                )  # fmt: skip
            )
        else:
            assert change.before is not None
            out.append(
                ProposedChange(
                    ProposalAction.UPDATE,
                    change.provider,
                    change.model,
                    change.type,
                    rate.id,
                    version,
                    now,
                    dict(change.before),
                )  # fmt: skip
            )
    if moved:
        raise ConflictError(
            f"cannot revert proposal {proposal_id}: {'; '.join(moved[:10])} since it was "
            "applied; propose the rates you want instead"
        )
    return out
