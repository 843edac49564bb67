"""The catalog import as it was before it became set-based: one ORM flush per rate.

Kept verbatim (hubkit/store/imports.py at 1e4581c) as the reference the set-based
``Store.import_catalog`` must agree with, row for row (tests/test_store_catalog_import.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from hubkit.catalog import Catalog, CatalogEntry
from hubkit.decimals import ROUNDING, plain, require_decimal
from hubkit.domain import ChangeType, RateSpec, UnitCosts, checked_rate
from hubkit.errors import StaleVersionError
from hubkit.pricing import change_pct, margin_rate, validate_credit_price, validate_margin
from hubkit.store import Store
from hubkit.store.base import unit_costs_of
from hubkit.store.rates import insert_history, rate_triple, row_history, spec_columns
from hubkit.store.schema import ProviderRow, RateRow
from hubkit.store.types import utcnow
from hubkit.store.values import CatalogImportResult


def reference_import(store: Store, catalog: Catalog, **options: Any) -> CatalogImportResult:
    """``store.import_catalog(catalog, **options)`` with the per-row implementation."""
    return _Reference.import_catalog(store, catalog, **options)


class _Reference:
    def import_catalog(
        self: Any,
        catalog: Catalog,
        *,
        create_missing: bool = False,
        providers: list[str] | None = None,
        profit_margin: Any = None,
        credit_price: Any = None,
        rederive_rates: bool = False,
        drift_threshold_pct: Any = 10,
        reason: str | None = None,
        job_run_id: str | None = None,
        expected_versions: Mapping[int, int] | None = None,
    ) -> CatalogImportResult:
        """Refresh unit costs from a price catalog in one transaction.

        Existing rates get the catalog's unit costs (history ``catalog_import``, or
        ``source_drift`` when a side moved more than ``drift_threshold_pct``). With
        ``rederive_rates`` their rates are recomputed with the margin formula. With
        ``create_missing`` catalog models absent from the store are created for providers
        that exist in the store, priced with the margin formula (defaults: stored settings).
        ``expected_versions`` (rate id → version, as read when the change was planned) makes
        an operator's edit since then a StaleVersionError instead of being overwritten.
        """
        settings = self.get_operator_settings()  # type: ignore[attr-defined]
        margin = validate_margin(settings.target_margin if profit_margin is None else profit_margin)
        price = validate_credit_price(
            settings.credit_price if credit_price is None else credit_price
        )
        threshold = require_decimal(drift_threshold_pct, "drift_threshold_pct")
        wanted = {p.lower() for p in providers} if providers else None
        source = f"catalog:{catalog.source}"
        meta = {"profitMargin": plain(margin), "creditPrice": plain(price)}
        created = updated = unchanged = not_in_store = 0
        drifted: list[tuple[str, str, str, Decimal | None]] = []
        history: list[dict[str, Any]] = []
        stale: list[str] = []
        with self._unit(write=True) as session:
            now = utcnow()
            provider_rows = {p.name: p for p in session.scalars(select(ProviderRow))}
            existing = {
                (pname, r.model, r.type): r
                for r, pname in session.execute(select(RateRow, ProviderRow.name).join(ProviderRow))
            }
            for entry in catalog.entries:
                if wanted is not None and entry.provider not in wanted:
                    continue
                key = (entry.provider, entry.model, entry.type.value)
                row = existing.get(key)
                if row is None:
                    if not create_missing or entry.provider not in provider_rows:
                        not_in_store += 1
                        continue
                    row = RateRow(
                        provider=provider_rows[entry.provider],
                        created_at=now,
                        updated_at=now,
                        **spec_columns(_priced_spec(entry, margin, price)),
                    )
                    session.add(row)
                    session.flush()
                    created += 1
                    history.append(
                        row_history(
                            row,
                            entry.provider,
                            ChangeType.CATALOG_IMPORT,
                            before=None,
                            changed_at=now,
                            actor=self.actor,
                            source=source,
                            reason=reason,
                            job_run_id=job_run_id,
                            metadata=meta,
                        )
                    )
                    continue
                if expected_versions is not None and expected_versions.get(row.id) != row.version:
                    stale.append(f"{entry.provider}/{row.model}")
                    continue
                before = rate_triple(row)
                old_costs = unit_costs_of(row.unit_cost_input, row.unit_cost_output)
                drift = _drift_pct(old_costs, entry.unit_costs)
                row.unit_cost_input = entry.unit_costs.input
                row.unit_cost_output = entry.unit_costs.output
                if rederive_rates:
                    # through the rule RateSpec applies to created rates: ≤ DECIMAL(20,10)
                    row.input_rate = checked_rate(
                        margin_rate(entry.unit_costs.input, margin, price), "inputRate"
                    )
                    row.output_rate = checked_rate(
                        margin_rate(entry.unit_costs.output, margin, price), "outputRate"
                    )
                if rate_triple(row) == before:
                    unchanged += 1
                    continue
                row.updated_at = now
                session.flush()
                updated += 1
                exceeds = drift is None or abs(drift) > threshold
                if exceeds and old_costs is not None:
                    drifted.append((entry.provider, row.model, row.type, _stored_pct(drift)))
                history.append(
                    row_history(
                        row,
                        entry.provider,
                        (
                            ChangeType.SOURCE_DRIFT
                            if exceeds and old_costs is not None
                            else ChangeType.CATALOG_IMPORT
                        ),
                        before=before,
                        changed_at=now,
                        actor=self.actor,
                        source=source,
                        reason=reason,
                        job_run_id=job_run_id,
                        drift_pct=_stored_pct(drift),
                        metadata=meta,
                    )
                )
            if stale:
                raise StaleVersionError(
                    f"{len(stale)} rates changed since the catalog sync was planned "
                    f"({', '.join(stale[:5])}); nothing was written — plan again"
                )
            ids = insert_history(session, history)
        return CatalogImportResult(
            created=created,
            updated=updated,
            unchanged=unchanged,
            drifted=tuple(drifted),
            not_in_store=not_in_store,
            history_ids=ids,
        )


def _priced_spec(entry: CatalogEntry, margin: Decimal, price: Decimal) -> RateSpec:
    caching = None
    if entry.cache_read_cost is not None or entry.cache_write_cost is not None:
        caching = {
            "readRate": None
            if entry.cache_read_cost is None
            else margin_rate(entry.cache_read_cost, margin, price),
            "writeRate": None
            if entry.cache_write_cost is None
            else margin_rate(entry.cache_write_cost, margin, price),
        }
    return RateSpec.create(
        entry.provider,
        entry.model,
        entry.type,
        input_rate=margin_rate(entry.unit_costs.input, margin, price),
        output_rate=margin_rate(entry.unit_costs.output, margin, price),
        unit_costs=entry.unit_costs,
        caching=caching,
        model_metadata=entry.model_metadata,
    )


def _drift_pct(old: UnitCosts | None, new: UnitCosts) -> Decimal | None:
    """Largest relative move of either side in %; None = infinite (0 → non-zero)."""
    if old is None:
        return Decimal(0)
    worst = Decimal(0)
    for before, after in ((old.input, new.input), (old.output, new.output)):
        pct = change_pct(before, after)
        if pct is None:
            return None
        if abs(pct) > abs(worst):
            worst = pct
    # exact: the threshold is judged on this, as hubkit.catalog.drift judges it; rounding
    # is for storage only (_stored_pct)
    return worst


def _stored_pct(pct: Decimal | None) -> Decimal | None:
    return None if pct is None else pct.quantize(Decimal("0.0001"), rounding=ROUNDING)
