"""Model rates: create, batch-create, edit with optimistic locking, delete, bulk apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from hubkit.decimals import plain
from hubkit.domain import Caching, ChangeType, Rate, RateSpec, RateType, UnitCosts
from hubkit.errors import ConflictError, NotFoundError, StaleVersionError, ValidationError
from hubkit.pricing import BulkPreview, RateFilter, bulk_preview
from hubkit.store.base import (
    StoreBase,
    fault_point,
    history_dict,
    rate_value,
    unit_costs_of,
)
from hubkit.store.schema import ProviderRow, RateHistoryRow, RateRow
from hubkit.store.types import utcnow
from hubkit.store.values import ApplyResult

_UNSET: Any = object()
_CHUNK = 500  # rows per executemany: bounded memory, and well under SQLite's variable limit


def _triple(row: RateRow) -> tuple[Decimal, Decimal, UnitCosts | None]:
    return (
        row.input_rate,
        row.output_rate,
        unit_costs_of(row.unit_cost_input, row.unit_cost_output),
    )


def _spec_columns(spec: RateSpec) -> dict[str, Any]:
    return {
        "model": spec.model,
        "model_display": spec.model_display,
        "type": spec.type.value,
        "input_rate": spec.input_rate,
        "output_rate": spec.output_rate,
        "unit_cost_input": spec.unit_costs.input if spec.unit_costs else None,
        "unit_cost_output": spec.unit_costs.output if spec.unit_costs else None,
        "cache_read_rate": spec.caching.read_rate if spec.caching else None,
        "cache_write_rate": spec.caching.write_rate if spec.caching else None,
        "model_metadata": dict(spec.model_metadata) if spec.model_metadata else None,
        "description": spec.description,
    }


def insert_history(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[int, ...]:
    if not rows:
        return ()
    stmt = insert(RateHistoryRow).returning(RateHistoryRow.id, sort_by_parameter_order=True)
    return tuple(session.scalars(stmt, list(rows)).all())


class RateOps(StoreBase):
    # ---- reading ---------------------------------------------------------------------
    def list_rates(
        self, rate_filter: RateFilter | None = None, *, include_deprecated: bool = True
    ) -> list[Rate]:
        with self._unit() as session:
            stmt = (
                select(RateRow, ProviderRow.name)
                .join(ProviderRow)
                .order_by(ProviderRow.name, RateRow.model, RateRow.type)
            )
            if not include_deprecated:
                stmt = stmt.where(RateRow.deprecated.is_(False))
            rates = [rate_value(row, pname) for row, pname in session.execute(stmt)]
        if rate_filter is not None:
            rates = [r for r in rates if rate_filter.matches(r)]
        return rates

    def get_rate(self, rate_id: int) -> Rate:
        with self._unit() as session:
            row = self._rate_row(session, rate_id)
            return rate_value(row, row.provider.name)

    def find_rate(self, provider: str, model: str, type: Any) -> Rate:
        rtype = RateType.parse(type)
        with self._unit() as session:
            row = session.scalars(
                select(RateRow)
                .join(ProviderRow)
                .where(
                    ProviderRow.name == provider.lower(),
                    RateRow.model == model,
                    RateRow.type == rtype.value,
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no rate for {provider}/{model} ({rtype.value})")
            return rate_value(row, row.provider.name)

    # ---- single-rate writes ----------------------------------------------------------
    def create_rate(
        self,
        spec: RateSpec,
        *,
        reason: str | None = None,
        source: str | None = None,
        job_run_id: str | None = None,
    ) -> Rate:
        return self.create_rates_batch(
            spec,
            [spec.provider],
            reason=reason,
            source=source,
            job_run_id=job_run_id,
            change_type=ChangeType.CREATE,
        )[0]

    def create_rates_batch(
        self,
        spec: RateSpec,
        providers: Iterable[str],
        *,
        reason: str | None = None,
        source: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.BULK_CREATE,
    ) -> list[Rate]:
        """One definition for several providers: all created or none (domain.md)."""
        names = list(dict.fromkeys(p.strip().lower() for p in providers if p.strip()))
        if not names:
            raise ValidationError("name at least one provider", field="providers")
        with self._unit(write=True) as session:
            found = {
                r.name: r
                for r in session.scalars(select(ProviderRow).where(ProviderRow.name.in_(names)))
            }
            missing = [n for n in names if n not in found]
            if missing:
                raise NotFoundError(f"Providers not found: {', '.join(missing)}")
            clash = session.scalars(
                select(ProviderRow.name)
                .join(RateRow)
                .where(
                    ProviderRow.name.in_(names),
                    RateRow.model == spec.model,
                    RateRow.type == spec.type.value,
                )
            ).all()
            if clash:
                raise ConflictError(
                    f'Rate already exists for model "{spec.model}" with type "{spec.type.value}" '
                    f"in providers: {', '.join(sorted(clash))}"
                )
            now = utcnow()
            rows = []
            for name in names:
                row = RateRow(
                    provider=found[name], created_at=now, updated_at=now, **_spec_columns(spec)
                )
                session.add(row)
                rows.append(row)
            session.flush()
            insert_history(
                session,
                [
                    history_dict(
                        rate_id=row.id,
                        provider=row.provider.name,
                        model=row.model,
                        type=row.type,
                        change_type=change_type,
                        before=None,
                        after=_triple(row),
                        changed_at=now,
                        actor=self.actor,
                        rate_version=row.version,
                        source=source,
                        reason=reason,
                        job_run_id=job_run_id,
                    )
                    for row in rows
                ],
            )
            return [rate_value(row, row.provider.name) for row in rows]

    def update_rate(
        self,
        rate_id: int,
        expected_version: int,
        *,
        input_rate: Any = _UNSET,
        output_rate: Any = _UNSET,
        unit_costs: Any = _UNSET,
        caching: Any = _UNSET,
        model_display: Any = _UNSET,
        description: Any = _UNSET,
        model_metadata: Any = _UNSET,
        reason: str | None = None,
        source: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.MANUAL_UPDATE,
    ) -> Rate:
        """Edit one rate; fails with StaleVersionError if it changed since ``expected_version``.

        model and type are immutable (as on the hub): delete and re-create instead.
        """
        with self._unit(write=True) as session:
            row = self._rate_row(session, rate_id, lock=True)
            if row.version != expected_version:
                raise StaleVersionError.for_row(
                    f"rate {row.provider.name}/{row.model} ({row.type})",
                    expected_version,
                    row.version,
                )
            before = _triple(row)
            # Re-validate the whole rate through RateSpec so one rule set guards every path.
            current = rate_value(row, row.provider.name)
            spec = RateSpec.create(
                current.provider,
                current.model,
                current.type,
                input_rate=current.input_rate if input_rate is _UNSET else input_rate,
                output_rate=current.output_rate if output_rate is _UNSET else output_rate,
                unit_costs=_json_costs(current.unit_costs) if unit_costs is _UNSET else unit_costs,
                caching=_json_caching(current.caching) if caching is _UNSET else caching,
                model_display=current.model_display if model_display is _UNSET else model_display,
                description=current.description if description is _UNSET else description,
                model_metadata=(
                    current.model_metadata if model_metadata is _UNSET else model_metadata
                ),
            )
            for key, value in _spec_columns(spec).items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
            if session.is_modified(row):
                row.updated_at = utcnow()
            session.flush()
            after = _triple(row)
            if after != before:
                insert_history(
                    session,
                    [
                        history_dict(
                            rate_id=row.id,
                            provider=row.provider.name,
                            model=row.model,
                            type=row.type,
                            change_type=change_type,
                            before=before,
                            after=after,
                            changed_at=row.updated_at,
                            actor=self.actor,
                            rate_version=row.version,
                            source=source,
                            reason=reason,
                            job_run_id=job_run_id,
                        )
                    ],
                )
            return rate_value(row, row.provider.name)

    def delete_rate(
        self, rate_id: int, expected_version: int | None = None, *, reason: str | None = None
    ) -> None:
        """Hard delete; the history keeps a snapshot so the delete can be reverted."""
        with self._unit(write=True) as session:
            row = self._rate_row(session, rate_id, lock=True)
            if expected_version is not None and row.version != expected_version:
                raise StaleVersionError.for_row(f"rate {row.model}", expected_version, row.version)
            snapshot = {k: _jsonable(v) for k, v in _row_columns(row).items()}
            insert_history(
                session,
                [
                    history_dict(
                        rate_id=row.id,
                        provider=row.provider.name,
                        model=row.model,
                        type=row.type,
                        change_type=ChangeType.DELETE,
                        before=_triple(row),
                        after=None,
                        changed_at=utcnow(),
                        actor=self.actor,
                        reason=reason,
                        metadata={"snapshot": snapshot},
                    )
                ],
            )
            session.delete(row)

    def deprecate_rate(
        self, rate_id: int, expected_version: int, *, reason: str | None = None, undo: bool = False
    ) -> Rate:
        """Soft deprecation: the rate stays (and keeps pricing old usage) but is flagged."""
        with self._unit(write=True) as session:
            row = self._rate_row(session, rate_id, lock=True)
            if row.version != expected_version:
                raise StaleVersionError.for_row(f"rate {row.model}", expected_version, row.version)
            row.deprecated = not undo
            row.deprecated_at = None if undo else utcnow()
            row.deprecated_reason = None if undo else reason
            session.flush()
            return rate_value(row, row.provider.name)

    # ---- bulk update -----------------------------------------------------------------
    def preview_bulk_update(
        self,
        profit_margin: Any = None,
        credit_price: Any = None,
        rate_filter: RateFilter | None = None,
    ) -> BulkPreview:
        """The diff a margin bulk update would apply (defaults: the stored settings)."""
        settings = self.get_operator_settings()  # type: ignore[attr-defined]
        margin = settings.target_margin if profit_margin is None else profit_margin
        price = settings.credit_price if credit_price is None else credit_price
        return bulk_preview(self.list_rates(), margin, price, rate_filter)

    def apply_bulk_update(
        self,
        preview: BulkPreview,
        *,
        reason: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.BULK_UPDATE,
        source: str | None = None,
    ) -> ApplyResult:
        """Write exactly the preview's numbers in one transaction, with history rows.

        Every rate must still be at the version the preview saw; otherwise nothing is
        written and StaleVersionError names the rates to re-preview.
        """
        changed = preview.changed
        meta = {
            "profitMargin": plain(preview.profit_margin),
            "creditPrice": plain(preview.credit_price),
        }
        with self._unit(write=True) as session:
            now = utcnow()
            stale = self._stale_versions(session, {c.rate_id: c.version for c in changed})
            if stale:
                raise StaleVersionError(
                    f"{len(stale)} rates changed since the preview ({', '.join(stale[:5])}); "
                    "nothing was applied — preview again and re-apply"
                )
            table = RateRow.__table__
            stmt = (
                update(table)
                .where(and_(table.c.id == _bind("b_id"), table.c.version == _bind("b_version")))
                .values(
                    input_rate=_bind("b_in", RateRow.input_rate),
                    output_rate=_bind("b_out", RateRow.output_rate),
                    version=table.c.version + 1,
                    updated_at=now,
                )
            )
            counter = [0]
            history: list[dict[str, Any]] = []
            for start in range(0, len(changed), _CHUNK):
                chunk = changed[start : start + _CHUNK]
                params = [
                    {
                        "b_id": c.rate_id,
                        "b_version": c.version,
                        "b_in": c.new_input_rate,
                        "b_out": c.new_output_rate,
                    }
                    for c in chunk
                ]
                result = session.execute(stmt, params)
                if result.rowcount != len(chunk):
                    raise StaleVersionError(
                        "rates changed while applying the bulk update; nothing was applied — "
                        "preview again"
                    )
                fault_point(counter, len(chunk))
                history.extend(
                    history_dict(
                        rate_id=c.rate_id,
                        provider=c.provider,
                        model=c.model,
                        type=c.type,
                        change_type=change_type,
                        before=(c.old_input_rate, c.old_output_rate, c.unit_costs),
                        after=(c.new_input_rate, c.new_output_rate, c.unit_costs),
                        changed_at=now,
                        actor=self.actor,
                        rate_version=c.version + 1,
                        source=source,
                        reason=reason,
                        job_run_id=job_run_id,
                        metadata=meta,
                    )
                    for c in chunk
                )
            ids = insert_history(session, history)
        return ApplyResult(
            updated=len(changed),
            unchanged=len(preview.unchanged),
            skipped=len(preview.skipped),
            history_ids=ids,
            job_run_id=job_run_id,
            changed_at=now,
        )

    def _stale_versions(self, session: Session, expected: dict[int, int]) -> list[str]:
        stale: list[str] = []
        ids = list(expected)
        for start in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(RateRow.id, RateRow.version, RateRow.model).where(
                    RateRow.id.in_(ids[start : start + _CHUNK])
                )
            ).all()
            seen = {r.id: r for r in rows}
            for rid in ids[start : start + _CHUNK]:
                row = seen.get(rid)
                if row is None:
                    stale.append(f"#{rid} deleted")
                elif row.version != expected[rid]:
                    stale.append(f"{row.model} (v{expected[rid]}→v{row.version})")
        return stale


def _bind(name: str, like: Any = None) -> Any:
    return bindparam(name, type_=like.type if like is not None else None)


def _row_columns(row: RateRow) -> dict[str, Any]:
    return {
        "provider": row.provider.name,
        **{k: getattr(row, k) for k in _SNAPSHOT_COLUMNS},
    }


_SNAPSHOT_COLUMNS = (
    "model",
    "model_display",
    "type",
    "input_rate",
    "output_rate",
    "unit_cost_input",
    "unit_cost_output",
    "cache_read_rate",
    "cache_write_rate",
    "model_metadata",
    "description",
)


def _jsonable(value: Any) -> Any:
    return plain(value) if isinstance(value, Decimal) else value


def _json_costs(costs: UnitCosts | None) -> dict[str, Any] | None:
    return None if costs is None else {"input": costs.input, "output": costs.output}


def _json_caching(caching: Caching | None) -> dict[str, Any] | None:
    if caching is None:
        return None
    return {"readRate": caching.read_rate, "writeRate": caching.write_rate}


def spec_from_snapshot(snapshot: dict[str, Any]) -> RateSpec:
    """Rebuild a deleted rate's definition from its history snapshot (for revert)."""
    costs = None
    if snapshot.get("unit_cost_input") is not None or snapshot.get("unit_cost_output") is not None:
        costs = {
            "input": snapshot.get("unit_cost_input") or "0",
            "output": snapshot.get("unit_cost_output") or "0",
        }
    caching = None
    if snapshot.get("cache_read_rate") is not None or snapshot.get("cache_write_rate") is not None:
        caching = {
            "readRate": snapshot.get("cache_read_rate"),
            "writeRate": snapshot.get("cache_write_rate"),
        }
    return RateSpec.create(
        snapshot["provider"],
        snapshot["model"],
        snapshot["type"],
        input_rate=snapshot["input_rate"],
        output_rate=snapshot["output_rate"],
        model_display=snapshot.get("model_display"),
        unit_costs=costs,
        caching=caching,
        model_metadata=snapshot.get("model_metadata"),
        description=snapshot.get("description"),
    )
