"""Model rates: create, batch-create, edit with optimistic locking, delete, bulk apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Column,
    Connection,
    Insert,
    Integer,
    Table,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from hubkit._columns import RATE_AMOUNTS
from hubkit.decimals import plain
from hubkit.domain import Caching, ChangeType, Rate, RateSpec, RateType, UnitCosts
from hubkit.errors import ConflictError, NotFoundError, StaleVersionError, ValidationError
from hubkit.pricing import (
    BulkPreview,
    RateFilter,
    bulk_preview,
    plausible_credit_price,
    plausible_margin,
)
from hubkit.store.base import (
    StoreBase,
    fault_point,
    history_dict,
    rate_type,
    rate_value,
    unit_costs_of,
    write_settings,
)
from hubkit.store.schema import ProviderRow, RateHistoryRow, RateRow
from hubkit.store.staging import CHUNK, insert_history_select, stage, temporary_table
from hubkit.store.types import ExactDecimal, utcnow
from hubkit.store.values import ApplyResult

_UNSET: Any = object()


def rate_triple(row: RateRow) -> tuple[Decimal, Decimal, UnitCosts | None]:
    return (
        row.input_rate,
        row.output_rate,
        unit_costs_of(row.unit_cost_input, row.unit_cost_output),
    )


def row_history(
    row: RateRow,
    provider: str,
    change_type: ChangeType,
    *,
    before: tuple[Any, Any, UnitCosts | None] | None,
    changed_at: datetime,
    actor: str,
    **context: Any,
) -> dict[str, Any]:
    """The history row of a change that left ``row`` as it now is (its values, its version)."""
    return history_dict(
        rate_id=row.id,
        provider=provider,
        model=row.model,
        type=row.type,
        change_type=change_type,
        before=before,
        after=rate_triple(row),
        changed_at=changed_at,
        actor=actor,
        rate_version=row.version,
        **context,
    )


def spec_columns(spec: RateSpec) -> dict[str, Any]:
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


# Declarative classes with a __tablename__ are mapped to a Table; SQLAlchemy types
# __table__ as the wider FromClause, which insert()/update() do not take.
_HISTORY = cast(Table, RateHistoryRow.__table__)
_RATES = cast(Table, RateRow.__table__)
# What a Rate value needs (no timestamps: converting them is a third of a 10,000-rate read)
_RATE_VALUE_COLUMNS = [
    _RATES.c[name]
    for name in (
        "id", "model", "model_display", "type", *RATE_AMOUNTS,
        "model_metadata", "description", "deprecated", "deprecated_reason", "version",
    )
]  # fmt: skip


class _PreviewRate(NamedTuple):
    """The columns a bulk preview reads (a :class:`~hubkit.pricing.PricedRate`).

    Building 10,000 full ``Rate`` values (fourteen fields, caching, metadata) took longer
    than the SQL and the pricing together; a preview needs only these.
    """

    id: int
    provider: str
    model: str
    type: RateType
    version: int
    input_rate: Decimal
    output_rate: Decimal
    unit_costs: UnitCosts | None


# Same order as list_rates, so a preview lists its changes as the rates table does.
_PREVIEW_SELECT = (
    select(
        _RATES.c.id, ProviderRow.name, _RATES.c.model, _RATES.c.type, _RATES.c.version,
        _RATES.c.input_rate, _RATES.c.output_rate, _RATES.c.unit_cost_input,
        _RATES.c.unit_cost_output,
    )
    .join(ProviderRow)
    .order_by(ProviderRow.name, _RATES.c.model, _RATES.c.type)
)  # fmt: skip


def insert_history(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[int, ...]:
    """Insert history rows (dicts from ``history_dict``) and return their ids, in order."""
    if not rows:
        return ()
    stmt = insert(_HISTORY).returning(_HISTORY.c.id, sort_by_parameter_order=True)
    return tuple(session.scalars(stmt, list(rows)).all())


class RateOps(StoreBase):
    # ---- reading ---------------------------------------------------------------------
    def list_rates(
        self, rate_filter: RateFilter | None = None, *, include_deprecated: bool = True
    ) -> list[Rate]:
        with self._unit() as session:
            # Columns, not ORM objects: a bulk preview reads every rate, and identity-map
            # bookkeeping for 10,000 rows costs more than the pricing itself.
            stmt = (
                select(*_RATE_VALUE_COLUMNS, ProviderRow.name.label("provider_name"))
                .join(ProviderRow)
                .order_by(ProviderRow.name, _RATES.c.model, _RATES.c.type)
            )
            if not include_deprecated:
                stmt = stmt.where(_RATES.c.deprecated.is_(False))
            rows = session.connection().execute(stmt).all()
            rates = [rate_value(row, row.provider_name) for row in rows]
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
        with self._unit(write=True) as session:
            rows, _ = self.create_rows(
                session,
                spec,
                providers,
                reason=reason,
                source=source,
                job_run_id=job_run_id,
                change_type=change_type,
            )
            return [rate_value(row, row.provider.name) for row in rows]

    def create_rows(
        self,
        session: Session,
        spec: RateSpec,
        providers: Iterable[str],
        *,
        reason: str | None = None,
        source: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.BULK_CREATE,
        proposal_id: int | None = None,
        actor: str | None = None,
    ) -> tuple[list[RateRow], tuple[int, ...]]:
        """:meth:`create_rates_batch` inside the caller's transaction: rows, history ids."""
        names = list(dict.fromkeys(p.strip().lower() for p in providers if p.strip()))
        if not names:
            raise ValidationError("name at least one provider", field="providers")
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
                provider=found[name], created_at=now, updated_at=now, **spec_columns(spec)
            )
            session.add(row)
            rows.append(row)
        session.flush()
        ids = insert_history(
            session,
            [
                row_history(
                    row,
                    row.provider.name,
                    change_type,
                    before=None,
                    changed_at=now,
                    actor=actor or self.actor,
                    source=source,
                    reason=reason,
                    job_run_id=job_run_id,
                    proposal_id=proposal_id,
                )
                for row in rows
            ],
        )
        return rows, ids

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
        fields = {
            "input_rate": input_rate,
            "output_rate": output_rate,
            "unit_costs": unit_costs,
            "caching": caching,
            "model_display": model_display,
            "description": description,
            "model_metadata": model_metadata,
        }
        with self._unit(write=True) as session:
            row, _ = self.update_row(
                session,
                rate_id,
                expected_version,
                {k: v for k, v in fields.items() if v is not _UNSET},
                reason=reason,
                source=source,
                job_run_id=job_run_id,
                change_type=change_type,
            )
            return rate_value(row, row.provider.name)

    def update_row(
        self,
        session: Session,
        rate_id: int,
        expected_version: int,
        fields: dict[str, Any],
        *,
        reason: str | None = None,
        source: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.MANUAL_UPDATE,
        proposal_id: int | None = None,
        actor: str | None = None,
    ) -> tuple[RateRow, int | None]:
        """:meth:`update_rate` inside the caller's transaction (``fields``: the arguments
        given); the row and its history id (None when the prices did not change)."""
        row = self._rate_row(session, rate_id, lock=True)
        if row.version != expected_version:
            raise StaleVersionError.for_row(
                f"rate {row.provider.name}/{row.model} ({row.type})",
                expected_version,
                row.version,
            )
        before = rate_triple(row)
        # Re-validate the whole rate through RateSpec so one rule set guards every path.
        current = rate_value(row, row.provider.name)
        spec = RateSpec.create(
            current.provider,
            current.model,
            current.type,
            input_rate=fields.get("input_rate", current.input_rate),
            output_rate=fields.get("output_rate", current.output_rate),
            unit_costs=fields.get("unit_costs", _json_costs(current.unit_costs)),
            caching=fields.get("caching", _json_caching(current.caching)),
            model_display=fields.get("model_display", current.model_display),
            description=fields.get("description", current.description),
            model_metadata=fields.get("model_metadata", current.model_metadata),
        )
        for key, value in spec_columns(spec).items():
            if getattr(row, key) != value:
                setattr(row, key, value)
        if session.is_modified(row):
            row.updated_at = utcnow()
        session.flush()
        if rate_triple(row) == before:
            return row, None
        (history_id,) = insert_history(
            session,
            [
                row_history(
                    row,
                    row.provider.name,
                    change_type,
                    before=before,
                    changed_at=row.updated_at,
                    actor=actor or self.actor,
                    source=source,
                    reason=reason,
                    job_run_id=job_run_id,
                    proposal_id=proposal_id,
                )
            ],
        )
        return row, history_id

    def delete_rate(
        self, rate_id: int, expected_version: int | None = None, *, reason: str | None = None
    ) -> None:
        """Hard delete; the history keeps a snapshot so the delete can be reverted."""
        with self._unit(write=True) as session:
            self.delete_row(session, rate_id, expected_version, reason=reason)

    def delete_row(
        self,
        session: Session,
        rate_id: int,
        expected_version: int | None = None,
        *,
        reason: str | None = None,
        source: str | None = None,
        proposal_id: int | None = None,
        actor: str | None = None,
    ) -> int:
        """:meth:`delete_rate` inside the caller's transaction; the history row's id."""
        row = self._rate_row(session, rate_id, lock=True)
        if expected_version is not None and row.version != expected_version:
            raise StaleVersionError.for_row(f"rate {row.model}", expected_version, row.version)
        snapshot = rate_snapshot(row)
        (history_id,) = insert_history(
            session,
            [
                history_dict(
                    rate_id=row.id,
                    provider=row.provider.name,
                    model=row.model,
                    type=row.type,
                    change_type=ChangeType.DELETE,
                    before=rate_triple(row),
                    after=None,
                    changed_at=utcnow(),
                    actor=actor or self.actor,
                    reason=reason,
                    source=source,
                    metadata={"snapshot": snapshot},
                    proposal_id=proposal_id,
                )
            ],
        )
        session.delete(row)
        return history_id

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
        if profit_margin is None or credit_price is None:
            settings = self.get_operator_settings()
            profit_margin = settings.target_margin if profit_margin is None else profit_margin
            credit_price = settings.credit_price if credit_price is None else credit_price
        with self._unit() as session:
            # Streamed into the pricing loop: each row is dropped once priced, so a large
            # preview neither holds every row twice nor promotes them all to the GC's oldest
            # generation.
            rates = (
                _PreviewRate(
                    id_, provider, model, rate_type(type_), version, input_rate, output_rate,
                    unit_costs_of(cost_in, cost_out),
                )
                for id_, provider, model, type_, version, input_rate, output_rate, cost_in,
                cost_out in session.connection().execute(_PREVIEW_SELECT)
            )  # fmt: skip
            return bulk_preview(rates, profit_margin, credit_price, rate_filter)

    def apply_bulk_update(
        self,
        preview: BulkPreview,
        *,
        reason: str | None = None,
        job_run_id: str | None = None,
        change_type: ChangeType = ChangeType.BULK_UPDATE,
        source: str | None = None,
        record_settings: bool = False,
    ) -> ApplyResult:
        """Write exactly the preview's numbers in one transaction, with history rows.

        Every rate must still be at the version the preview saw; otherwise nothing is
        written and StaleVersionError names the rates to re-preview. ``record_settings``
        also stores the preview's margin and credit price as the operator settings (the
        target margin and credit price finance starts from), in the same transaction.
        """
        changed = preview.changed
        meta = {
            "profitMargin": plain(preview.profit_margin),
            "creditPrice": plain(preview.credit_price),
        }
        settings = {}  # checked before anything is written
        if record_settings:
            settings = {
                "target_margin": plain(plausible_margin(preview.profit_margin)) or "0",
                "credit_price": plain(plausible_credit_price(preview.credit_price)) or "1",
            }
        with self._unit(write=True) as session:
            now = utcnow()
            ids = self.write_staged_rates(
                session,
                [(c.rate_id, c.version, c.new_input_rate, c.new_output_rate) for c in changed],
                change_type=change_type,
                source=source,
                metadata=meta,
                reason=reason,
                job_run_id=job_run_id,
                now=now,
            )
            if settings:
                write_settings(session, settings)
        return ApplyResult(
            updated=len(changed),
            unchanged=len(preview.changes) - len(changed),
            skipped=len(preview.skipped),
            history_ids=ids,
            job_run_id=job_run_id,
            changed_at=now,
        )

    def write_staged_rates(
        self,
        session: Session,
        rows: Sequence[tuple[int, int, Decimal, Decimal]],
        *,
        change_type: ChangeType,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        reason: str | None = None,
        job_run_id: str | None = None,
        proposal_id: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> tuple[int, ...]:
        """New (input, output) rates for (rate id, expected version) rows, set-based, inside
        the caller's transaction; the history ids. A rate not at its expected version makes
        it a StaleVersionError (the caller's transaction then writes nothing)."""
        now = now or utcnow()
        conn = session.connection()
        # Set-based: stage the new values in a temporary table, then write history and
        # update rates with one statement each, both joined on the previewed version.
        staging = _staging_table()
        staging.create(conn)
        counter = [0]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            # rates travel as plain decimal strings: exact on both back ends
            stage(
                conn,
                staging,
                [(rate_id, version, plain(new_in), plain(new_out))
                 for rate_id, version, new_in, new_out in chunk],
            )  # fmt: skip
            fault_point(counter, len(chunk))
        history = _history_from_staging(
            staging,
            {
                "change_type": str(change_type),
                "source": source,
                "changed_at": now,
                "metadata": metadata,
                "actor": actor or self.actor,
                "reason": reason,
                "job_run_id": job_run_id,
                "proposal_id": proposal_id,
            },
        )
        # History is written only for rates still at the previewed version, so a short
        # count is the version check; only then look up which rates moved, to name them.
        ids = insert_history_select(conn, history)
        if len(ids) != len(rows):
            raise _stale_error(_stale_rows(conn, staging))
        # The version in the join makes a row that moved since the history was written
        # drop out (PostgreSQL, READ COMMITTED); the row count then reveals it.
        result = conn.execute(
            update(_RATES)
            .where(_RATES.c.id == staging.c.id, _RATES.c.version == staging.c.version)
            .values(
                input_rate=staging.c.input_rate,
                output_rate=staging.c.output_rate,
                version=_RATES.c.version + 1,
                updated_at=now,
            )
        )
        staging.drop(conn)
        if result.rowcount != len(rows):
            raise _stale_error([])
        return ids


def _staging_table() -> Table:
    """A per-transaction temporary table for the new rates of one bulk apply."""
    return temporary_table(
        "hubkit_bulk_rates",
        Column("id", Integer, primary_key=True),
        Column("version", Integer, nullable=False),
        Column("input_rate", ExactDecimal(), nullable=False),
        Column("output_rate", ExactDecimal(), nullable=False),
    )


def _stale_rows(conn: Connection, staging: Table) -> list[str]:
    """Staged rates that were deleted or moved to another version since the preview."""
    rows = conn.execute(
        select(staging.c.id, staging.c.version, _RATES.c.version.label("now"), _RATES.c.model)
        .select_from(staging.outerjoin(_RATES, _RATES.c.id == staging.c.id))
        .where(or_(_RATES.c.id.is_(None), _RATES.c.version != staging.c.version))
        .order_by(staging.c.id)
    ).all()
    return [
        f"#{r.id} deleted" if r.now is None else f"{r.model} (v{r.version}→v{r.now})" for r in rows
    ]


def _stale_error(stale: list[str]) -> StaleVersionError:
    if not stale:  # moved between two statements (PostgreSQL, READ COMMITTED)
        return StaleVersionError(
            "rates changed while applying the bulk update; nothing was applied — preview again"
        )
    return StaleVersionError(
        f"{len(stale)} rates changed since the preview ({', '.join(stale[:5])}); "
        "nothing was applied — preview again and re-apply"
    )


def _history_from_staging(staging: Table, constants: dict[str, Any]) -> Insert:
    """INSERT … SELECT one history row per staged rate, previous values read in place."""
    providers = ProviderRow.__table__
    h = _HISTORY.c
    const = {
        name: bindparam(f"h_{name}", value, type_=h[name].type) for name, value in constants.items()
    }
    source = (
        select(
            _RATES.c.id,
            providers.c.name,
            _RATES.c.model,
            _RATES.c.type,
            const["change_type"],
            const["source"],
            _RATES.c.input_rate,
            _RATES.c.output_rate,
            staging.c.input_rate,
            staging.c.output_rate,
            _RATES.c.unit_cost_input,
            _RATES.c.unit_cost_output,
            _RATES.c.unit_cost_input,
            _RATES.c.unit_cost_output,
            const["changed_at"],
            _RATES.c.version + 1,
            const["metadata"],
            const["actor"],
            const["reason"],
            const["job_run_id"],
            const["proposal_id"],
        )
        .select_from(
            staging.join(
                _RATES, (_RATES.c.id == staging.c.id) & (_RATES.c.version == staging.c.version)
            ).join(providers, providers.c.id == _RATES.c.provider_id)
        )
        .order_by(staging.c.id)
    )
    columns = [
        h.rate_id, h.provider, h.model, h.type, h.change_type, h.source,
        h.previous_input_rate, h.previous_output_rate, h.current_input_rate,
        h.current_output_rate, h.previous_unit_cost_input, h.previous_unit_cost_output,
        h.current_unit_cost_input, h.current_unit_cost_output, h.changed_at, h.rate_version,
        h.metadata, h.actor, h.reason, h.job_run_id, h.proposal_id,
    ]  # fmt: skip
    return insert(_HISTORY).from_select(columns, source)


def rate_snapshot(row: RateRow) -> dict[str, Any]:
    """A rate's whole definition as JSON values (decimals as plain text): what a delete's
    history row keeps, and what a rate proposal records before and after a change."""
    return {k: _jsonable(v) for k, v in _row_columns(row).items()}


def _row_columns(row: RateRow) -> dict[str, Any]:
    return {
        "provider": row.provider.name,
        **{k: getattr(row, k) for k in _SNAPSHOT_COLUMNS},
    }


_SNAPSHOT_COLUMNS = (
    "model",
    "model_display",
    "type",
    *RATE_AMOUNTS,
    "model_metadata",
    "description",
    # The soft-deprecation flag is part of the definition: a revert must bring it back too.
    "deprecated",
    "deprecated_at",
    "deprecated_reason",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return plain(value) if isinstance(value, Decimal) else value


def deprecation_from_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The deprecation columns a delete's snapshot recorded, for its revert.

    Deletes recorded before the snapshot carried them have no such keys: the rate comes
    back not deprecated, as it always did for those rows.
    """
    if "deprecated" not in snapshot:
        return {}
    at = snapshot.get("deprecated_at")
    return {
        "deprecated": bool(snapshot["deprecated"]),
        "deprecated_at": datetime.fromisoformat(at) if at else None,
        "deprecated_reason": snapshot.get("deprecated_reason"),
    }


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
