"""The store's shared machinery: units of work, error mapping, row → value conversion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from hubkit.config import EnvironmentSettings
from hubkit.domain import Caching, Rate, RateType, UnitCosts
from hubkit.errors import ConflictError, HubkitError, NotFoundError, ReadOnlyError, StorageError
from hubkit.store.schema import RateHistoryRow, RateRow, SettingRow
from hubkit.store.types import utcnow
from hubkit.store.values import HistoryEntry, OperatorSettings


class StoreBase:
    """Holds the engine and settings; every public operation is one unit of work."""

    def __init__(
        self, engine: Engine, settings: EnvironmentSettings, *, read_only: bool = False
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.read_only = read_only
        self.actor = settings.actor

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"<Store {self.engine.url.render_as_string(hide_password=True)} {mode}>"

    if TYPE_CHECKING:
        # SettingsOps implements it; the rate and catalog mixins price with the stored
        # settings through it (declared for the checker only, so the MRO is unchanged).
        def get_operator_settings(self) -> OperatorSettings: ...

    @contextmanager
    def _unit(self, *, write: bool = False) -> Iterator[Session]:
        """One Session, one transaction: commits on success, rolls back on any error."""
        if write and self.read_only:
            raise ReadOnlyError(
                "this store was opened read-only (e.g. for the finance web app); open it "
                "with Store.open() to make changes"
            )
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except HubkitError:
            raise
        except StaleDataError as exc:
            raise ConflictError(
                "a rate was changed by someone else while you edited it; reload and retry"
            ) from exc
        except IntegrityError as exc:
            raise ConflictError(f"the change conflicts with stored data: {exc.orig}") from exc
        except (OperationalError, ProgrammingError) as exc:
            if "readonly" in str(exc.orig).lower() or "read-only" in str(exc.orig).lower():
                raise ReadOnlyError("the database is open read-only; nothing was written") from exc
            raise StorageError(f"the database refused the operation: {exc.orig}") from exc

    def _rate_row(self, session: Session, rate_id: int, *, lock: bool = False) -> RateRow:
        stmt = select(RateRow).where(RateRow.id == rate_id)
        if lock:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
        if row is None:
            raise NotFoundError(
                f"no model rate with id {rate_id}; list rates with `python -m hubkit rates list`"
            )
        return row


def write_settings(session: Session, updates: dict[str, str]) -> None:
    """Upsert operator settings rows inside the caller's transaction (values already checked)."""
    for key, value in updates.items():
        row = session.get(SettingRow, key)
        if row is None:
            session.add(SettingRow(key=key, value=value))
        else:
            row.value = value
            row.updated_at = utcnow()


def fault_point(counter: list[int], rows: int) -> None:
    """Test hook: ``HUBKIT_TEST_FAIL_AFTER_ROWS=N`` makes a write fail after N rows.

    Lets tests (and papermill subprocesses) prove that a failure half-way through a
    multi-row write leaves nothing applied.
    """
    limit = os.environ.get("HUBKIT_TEST_FAIL_AFTER_ROWS")
    counter[0] += rows
    if limit and counter[0] > int(limit):
        raise StorageError(f"injected failure after {limit} rows (HUBKIT_TEST_FAIL_AFTER_ROWS)")


def unit_costs_of(inp: Decimal | None, out: Decimal | None) -> UnitCosts | None:
    if inp is None and out is None:
        return None
    return UnitCosts(inp or Decimal(0), out or Decimal(0))


# Members by value: RateType(value) goes through EnumType.__call__ (~0.7 µs, forty times a
# dict lookup), paid once per row when a preview reads 10,000 rates.
_RATE_TYPES = {member.value: member for member in RateType}


def rate_type(value: str) -> RateType:
    """The stored type column as a RateType (an unknown value still raises ValueError)."""
    member = _RATE_TYPES.get(value)
    return RateType(value) if member is None else member


# A Core row of the rates table's columns reads like the ORM row (the bulk read's fast path).
def rate_value(row: RateRow | Row[*tuple[Any, ...]], provider_name: str) -> Rate:
    caching = None
    if row.cache_read_rate is not None or row.cache_write_rate is not None:
        caching = Caching(row.cache_read_rate, row.cache_write_rate)
    return Rate(
        id=row.id,
        provider=provider_name,
        model=row.model,
        type=rate_type(row.type),
        input_rate=row.input_rate,
        output_rate=row.output_rate,
        model_display=row.model_display,
        version=row.version,
        unit_costs=unit_costs_of(row.unit_cost_input, row.unit_cost_output),
        caching=caching,
        model_metadata=row.model_metadata,
        description=row.description,
        deprecated=row.deprecated,
        deprecated_reason=row.deprecated_reason,
    )


def history_value(row: RateHistoryRow) -> HistoryEntry:
    return HistoryEntry(
        id=row.id,
        rate_id=row.rate_id,
        provider=row.provider,
        model=row.model,
        type=RateType(row.type),
        change_type=row.change_type,
        source=row.source,
        previous_input_rate=row.previous_input_rate,
        previous_output_rate=row.previous_output_rate,
        current_input_rate=row.current_input_rate,
        current_output_rate=row.current_output_rate,
        previous_unit_costs=unit_costs_of(
            row.previous_unit_cost_input, row.previous_unit_cost_output
        ),
        current_unit_costs=unit_costs_of(row.current_unit_cost_input, row.current_unit_cost_output),
        drift_pct=row.drift_pct,
        changed_at=row.changed_at,
        rate_version=row.rate_version,
        metadata=row.extra,
        actor=row.actor,
        reason=row.reason,
        job_run_id=row.job_run_id,
        proposal_id=row.proposal_id,
    )


def history_dict(
    *,
    rate_id: int | None,
    provider: str,
    model: str,
    type: str,
    change_type: str,
    before: tuple[Any, Any, UnitCosts | None] | None,
    after: tuple[Any, Any, UnitCosts | None] | None,
    changed_at: datetime,
    actor: str,
    rate_version: int | None = None,
    source: str | None = None,
    reason: str | None = None,
    job_run_id: str | None = None,
    drift_pct: Decimal | None = None,
    metadata: dict[str, Any] | None = None,
    proposal_id: int | None = None,
) -> dict[str, Any]:
    """A history row keyed by column (Core inserts); ``before``/``after`` = (in, out, costs)."""
    b_in, b_out, b_costs = before if before else (None, None, None)
    a_in, a_out, a_costs = after if after else (None, None, None)
    return {
        "rate_id": rate_id,
        "provider": provider,
        "model": model,
        "type": str(type),
        "change_type": str(change_type),
        "source": source,
        "previous_input_rate": b_in,
        "previous_output_rate": b_out,
        "current_input_rate": a_in,
        "current_output_rate": a_out,
        "previous_unit_cost_input": b_costs.input if b_costs else None,
        "previous_unit_cost_output": b_costs.output if b_costs else None,
        "current_unit_cost_input": a_costs.input if a_costs else None,
        "current_unit_cost_output": a_costs.output if a_costs else None,
        "drift_pct": drift_pct,
        "changed_at": changed_at,
        "rate_version": rate_version,
        "metadata": metadata,
        "actor": actor,
        "reason": reason,
        "job_run_id": job_run_id,
        "proposal_id": proposal_id,
    }
