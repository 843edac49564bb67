"""Operator settings and price-catalog import (unit costs, optional re-derived rates)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hubkit.decimals import ROUNDING, plain, require_decimal
from hubkit.domain import ChangeType, RateSpec, UnitCosts, _rate
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.pricing import (
    change_pct,
    margin_rate,
    plausible_credit_price,
    plausible_margin,
    validate_credit_price,
    validate_margin,
)
from hubkit.store.base import StoreBase, unit_costs_of
from hubkit.store.rates import _spec_columns, _triple, insert_history, row_history
from hubkit.store.schema import ProviderRow, RateRow, SettingRow
from hubkit.store.types import utcnow
from hubkit.store.values import CatalogImportResult, OperatorSettings

if TYPE_CHECKING:
    from hubkit.catalog import Catalog, CatalogEntry

_DEFAULTS = OperatorSettings()


def _stored(key: str, values: Mapping[str, str], default: Decimal) -> Decimal:
    # Written by set_operator_settings (validated), but a hand-edited or older row must
    # surface as a ValidationError naming the setting, not as decimal.InvalidOperation.
    if key not in values:
        return default
    return require_decimal(values[key], f"stored setting {key} (fix it with `python -m hubkit "
                           f"settings --{key.replace('_', '-')} …`)")  # fmt: skip


class SettingsOps(StoreBase):
    def get_operator_settings(self) -> OperatorSettings:
        with self._unit() as session:
            values = {r.key: r.value for r in session.scalars(select(SettingRow))}
        return OperatorSettings(
            currency=values.get("currency", _DEFAULTS.currency),
            credit_price=_stored("credit_price", values, _DEFAULTS.credit_price),
            target_margin=_stored("target_margin", values, _DEFAULTS.target_margin),
        )

    def set_operator_settings(
        self,
        *,
        currency: str | None = None,
        credit_price: Any = None,
        target_margin: Any = None,
    ) -> OperatorSettings:
        updates: dict[str, str] = {}
        if currency is not None:
            code = currency.strip().upper()
            if not (len(code) == 3 and code.isalpha()):
                raise ValidationError(
                    f"currency must be a 3-letter ISO code such as USD, got {currency!r}",
                    field="currency",
                )
            updates["currency"] = code
        if credit_price is not None:
            updates["credit_price"] = plain(plausible_credit_price(credit_price)) or "1"
        if target_margin is not None:
            updates["target_margin"] = plain(plausible_margin(target_margin)) or "0"
        with self._unit(write=True) as session:
            for key, value in updates.items():
                row = session.get(SettingRow, key)
                if row is None:
                    session.add(SettingRow(key=key, value=value))
                else:
                    row.value = value
                    row.updated_at = utcnow()
        return self.get_operator_settings()


class CatalogOps(StoreBase):
    def import_catalog(
        self,
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
        # pricing rates (re-derived or created) is a bulk write: held to the plausible range
        pricing = rederive_rates or create_missing
        check_margin = plausible_margin if pricing else validate_margin
        check_price = plausible_credit_price if pricing else validate_credit_price
        margin = check_margin(settings.target_margin if profit_margin is None else profit_margin)
        price = check_price(settings.credit_price if credit_price is None else credit_price)
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
                        **_spec_columns(_priced_spec(entry, margin, price)),
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
                before = _triple(row)
                old_costs = unit_costs_of(row.unit_cost_input, row.unit_cost_output)
                drift = _drift_pct(old_costs, entry.unit_costs)
                row.unit_cost_input = entry.unit_costs.input
                row.unit_cost_output = entry.unit_costs.output
                if rederive_rates:
                    # through the rule RateSpec applies to created rates: ≤ DECIMAL(20,10)
                    row.input_rate = _rate(
                        margin_rate(entry.unit_costs.input, margin, price), "inputRate"
                    )
                    row.output_rate = _rate(
                        margin_rate(entry.unit_costs.output, margin, price), "outputRate"
                    )
                if _triple(row) == before:
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
