"""Operator settings and price-catalog import (unit costs, optional re-derived rates)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Insert,
    Integer,
    String,
    Table,
    bindparam,
    false,
    func,
    insert,
    literal,
    null,
    select,
    update,
)

from hubkit._columns import RATE_AMOUNTS
from hubkit._gc import gc_paused
from hubkit.decimals import ROUNDING, plain, require_decimal
from hubkit.domain import (
    RATE_LIMIT,
    ChangeType,
    UnitCosts,
    checked_rate,
    checked_text,
    default_model_display,
    validate_model_metadata,
)
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.pricing.rules import (
    change_pct,
    margin_rate,
    margin_rate_by_factor,
    markup_factor,
    plausible_credit_price,
    plausible_margin,
    validate_credit_price,
    validate_margin,
)
from hubkit.store.base import StoreBase, fault_point, unit_costs_of, write_settings
from hubkit.store.schema import ProviderRow, RateHistoryRow, RateRow, SettingRow
from hubkit.store.staging import CHUNK, insert_history_select, stage, temporary_table
from hubkit.store.types import ExactDecimal, utcnow
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
            write_settings(session, updates)
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

        Set-based, as the bulk update: each entry is priced and checked in Python (the
        rules RateSpec applies), staged in a temporary table, and then rates are updated
        by one ``UPDATE … FROM`` (joined on the version read, so a rate that moved meanwhile
        is a StaleVersionError), created by one ``INSERT … SELECT``, and history written by
        one ``INSERT … SELECT``, in catalog order.
        """
        settings = self.get_operator_settings()
        # pricing rates (re-derived or created) is a bulk write: held to the plausible range
        pricing = rederive_rates or create_missing
        check_margin = plausible_margin if pricing else validate_margin
        check_price = plausible_credit_price if pricing else validate_credit_price
        margin = check_margin(settings.target_margin if profit_margin is None else profit_margin)
        price = check_price(settings.credit_price if credit_price is None else credit_price)
        threshold = require_decimal(drift_threshold_pct, "drift_threshold_pct")
        wanted = {p.lower() for p in providers} if providers else None
        pricer = Pricer(margin, price)
        counts = _Counts()
        drifted: list[tuple[str, str, str, Decimal | None]] = []
        stale: list[str] = []
        # gc paused: 200,000 entries and their staged rows (see hubkit._gc)
        with self._unit(write=True) as session, gc_paused():
            now = utcnow()
            conn = session.connection()
            provider_ids = {name: id_ for name, id_ in conn.execute(_PROVIDER_SELECT)}
            existing = {
                (pname, model, type_): (id_, version, in_rate, out_rate, cost_in, cost_out)
                for id_, pname, model, type_, version, in_rate, out_rate, cost_in, cost_out
                in conn.execute(_EXISTING_SELECT)
            }  # fmt: skip
            staging = _catalog_staging()
            staging.create(conn)
            chunk: list[tuple[Any, ...]] = []
            faults = [0]
            for entry in catalog.entries:
                provider = entry.provider
                if wanted is not None and provider not in wanted:
                    continue
                type_ = entry.type.value
                stored = existing.get((provider, entry.model, type_))
                if stored is None:
                    if not create_missing or provider not in provider_ids:
                        counts.not_in_store += 1
                        continue
                    chunk.append(_created(counts.staged, entry, provider_ids[provider], pricer))
                    counts.created += 1
                else:
                    rate_id, version, in_rate, out_rate, cost_in, cost_out = stored
                    if expected_versions is not None and expected_versions.get(rate_id) != version:
                        stale.append(f"{provider}/{entry.model}")
                        continue
                    old_costs = unit_costs_of(cost_in, cost_out)
                    costs = entry.unit_costs
                    new_in, new_out = in_rate, out_rate
                    if rederive_rates:
                        # through the rule RateSpec applies to created rates: ≤ DECIMAL(20,10)
                        new_in = pricer.rate(costs.input, "inputRate")
                        new_out = pricer.rate(costs.output, "outputRate")
                    after = unit_costs_of(costs.input, costs.output)
                    if (new_in, new_out, after) == (in_rate, out_rate, old_costs):
                        counts.unchanged += 1
                        continue
                    counts.updated += 1
                    drift = _drift_pct(old_costs, costs)
                    exceeds = (drift is None or abs(drift) > threshold) and old_costs is not None
                    pct = _stored_pct(drift)
                    if exceeds:
                        drifted.append((provider, entry.model, type_, pct))
                    chunk.append(
                        (
                            counts.staged, rate_id, version, provider_ids[provider], entry.model,
                            None, type_, plain(new_in), plain(new_out), plain(costs.input),
                            plain(costs.output), None, None, None, plain(in_rate),
                            plain(out_rate), plain(old_costs.input) if old_costs else None,
                            plain(old_costs.output) if old_costs else None,
                            _DRIFT if exceeds else _IMPORT, plain(pct),
                        )
                    )  # fmt: skip
                counts.staged += 1
                if len(chunk) == CHUNK:
                    stage(conn, staging, chunk)
                    fault_point(faults, len(chunk))
                    chunk = []
            stage(conn, staging, chunk)
            fault_point(faults, len(chunk))
            if stale:
                raise StaleVersionError(
                    f"{len(stale)} rates changed since the catalog sync was planned "
                    f"({', '.join(stale[:5])}); nothing was written — plan again"
                )
            ids: tuple[int, ...] = ()
            if counts.staged:
                _write_rates(conn, staging, counts, now)
                history = _history_from_staging(
                    staging,
                    {
                        "source": f"catalog:{catalog.source}",
                        "changed_at": now,
                        "metadata": {"profitMargin": plain(margin), "creditPrice": plain(price)},
                        "actor": self.actor,
                        "reason": reason,
                        "job_run_id": job_run_id,
                    },
                )
                ids = insert_history_select(conn, history)
            staging.drop(conn)
        return CatalogImportResult(
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            drifted=tuple(drifted),
            not_in_store=counts.not_in_store,
            history_ids=ids,
        )


# Mapped to Tables (see rates.py): cast from the FromClause SQLAlchemy types them as.
_RATES = cast(Table, RateRow.__table__)
_PROVIDERS = cast(Table, ProviderRow.__table__)
_HISTORY = cast(Table, RateHistoryRow.__table__)
_IMPORT = ChangeType.CATALOG_IMPORT.value
_DRIFT = ChangeType.SOURCE_DRIFT.value
_PROVIDER_SELECT = select(_PROVIDERS.c.name, _PROVIDERS.c.id)
# What an import reads of each stored rate (columns, not ORM objects: there may be 200,000)
_EXISTING_SELECT = select(
    _RATES.c.id, _PROVIDERS.c.name, _RATES.c.model, _RATES.c.type, _RATES.c.version,
    _RATES.c.input_rate, _RATES.c.output_rate, _RATES.c.unit_cost_input,
    _RATES.c.unit_cost_output,
).join(_PROVIDERS, _PROVIDERS.c.id == _RATES.c.provider_id)  # fmt: skip


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    not_in_store: int = 0
    staged: int = 0


class Pricer:
    """The margin rule with the margin and credit price validated once, not per entry.

    Same results and errors as ``checked_rate(margin_rate(cost, margin, price), field)``: a cost
    the rule would refuse goes through ``margin_rate`` itself, a rate at or above the
    DECIMAL(20,10) limit through ``checked_rate``.
    """

    def __init__(self, margin: Decimal, price: Decimal) -> None:
        self.margin, self.price = margin, price
        self.factor = markup_factor(margin)
        # cost → rate: a catalog repeats a few thousand prices over 200,000 entries; the
        # rate is quantised, so equal costs give identical rates (±0 aside: not kept)
        self._rates: dict[Decimal, Decimal] = {}
        self.texts = _Texts()
        self.metadata: dict[tuple[Any, ...], str] = {}

    def margin_rate(self, cost: Any) -> Decimal:
        # zero (±0) and anything the rule might refuse take the rule's own path
        if type(cost) is Decimal and cost.is_finite() and cost > 0:
            rate = self._rates.get(cost)
            if rate is None:
                rate = self._rates[cost] = margin_rate_by_factor(cost, self.factor, self.price)
            return rate
        return margin_rate(cost, self.margin, self.price)

    def rate(self, cost: Any, field: str) -> Decimal:
        return _limited(self.margin_rate(cost), field)


class _Texts(dict[Decimal, str]):
    """``plain()`` of the decimals an import repeats (costs, and the rates derived from them).

    ``plain`` depends on the value only (trailing zeros go), except for ±0: not kept.
    """

    def __missing__(self, value: Decimal) -> str:
        text = plain(value)
        assert text is not None
        if value:
            self[value] = text
        return text

    def of(self, value: Decimal | None) -> str | None:
        return None if value is None else self[value]


def _limited(rate: Decimal, field: str) -> Decimal:
    # margin rates are already quantised; only the DECIMAL(20,10) bound is left to check
    return rate if rate < RATE_LIMIT else checked_rate(rate, field)


def _created(pos: int, entry: CatalogEntry, provider_id: int, pricer: Pricer) -> tuple[Any, ...]:
    """The staged row of a rate to create, checked in the order ``RateSpec.create`` checks."""
    costs = entry.unit_costs
    in_rate = pricer.margin_rate(costs.input)
    out_rate = pricer.margin_rate(costs.output)
    read = None if entry.cache_read_cost is None else pricer.margin_rate(entry.cache_read_cost)
    write = None if entry.cache_write_cost is None else pricer.margin_rate(entry.cache_write_cost)
    model = checked_text(entry.model, "model", min_len=1, max_len=100)
    in_rate, out_rate = _limited(in_rate, "inputRate"), _limited(out_rate, "outputRate")
    if read is not None:
        read = _limited(read, "caching.readRate")
    if write is not None:
        write = _limited(write, "caching.writeRate")
    text = pricer.texts.of
    return (
        pos, None, None, provider_id, model, default_model_display(model), entry.type.value,
        text(in_rate), text(out_rate), text(costs.input), text(costs.output), text(read),
        text(write), metadata_json(entry.model_metadata, pricer.metadata), None, None, None,
        None, _IMPORT, None,
    )  # fmt: skip


_METADATA_KEYS = frozenset({"maxTokens", "features"})


def metadata_json(metadata: Any, known: dict[tuple[Any, ...], str]) -> str:
    """The stored JSON of ``validate_model_metadata(metadata)`` (an empty object: none).

    Catalog metadata is a token limit and a few features: the same few hundred shapes over
    200,000 entries, validated and serialised once each. Anything else goes the long way.
    """
    if type(metadata) is dict and metadata.keys() <= _METADATA_KEYS:
        limit, features = metadata.get("maxTokens"), metadata.get("features", ())
        if (
            (limit is None or type(limit) is int)
            and type(features) in (list, tuple)
            and all(type(f) is str for f in features)
        ):
            # the key order is part of the shape: it is the order of the stored object
            shape = (tuple(metadata), limit, tuple(features))
            text = known.get(shape)
            if text is None:
                text = known[shape] = json.dumps(validate_model_metadata(metadata) or None)
            return text
    return json.dumps(validate_model_metadata(metadata) or None)


_STAGED_DECIMALS = RATE_AMOUNTS  # prices and costs first: history stages those four


def _catalog_staging() -> Table:
    """The staged rates of one import: creates (``version`` NULL) and updates, by position."""
    return temporary_table(
        "hubkit_catalog_rates",
        Column("pos", Integer, primary_key=True),  # catalog order: history ids follow it
        Column("id", Integer),  # NULL for a create until its rate exists
        Column("version", Integer),  # as read (updates); NULL = create
        Column("provider_id", Integer, nullable=False),
        Column("model", String(100), nullable=False),
        Column("model_display", String(100)),
        Column("type", String(20), nullable=False),
        *(Column(name, ExactDecimal()) for name in _STAGED_DECIMALS),
        # JSON text, copied as is: 'null' for none, as the ORM wrote it
        Column("model_metadata", JSON()),
        *(Column(f"previous_{name}", ExactDecimal()) for name in _STAGED_DECIMALS[:4]),
        Column("change_type", String(20), nullable=False),
        Column("drift_pct", ExactDecimal()),
    )


def _write_rates(conn: Connection, staging: Table, counts: _Counts, now: datetime) -> None:
    """Update the staged existing rates, then create the new ones and note their ids."""
    s = staging.c
    if counts.updated:
        # joined on the version read: a rate edited meanwhile (PostgreSQL, READ COMMITTED)
        # drops out, and the row count reveals it
        result = conn.execute(
            update(_RATES)
            .where(_RATES.c.id == s.id, _RATES.c.version == s.version)
            .values(
                input_rate=s.input_rate,
                output_rate=s.output_rate,
                unit_cost_input=s.unit_cost_input,
                unit_cost_output=s.unit_cost_output,
                version=_RATES.c.version + 1,
                updated_at=now,
            )
        )
        if result.rowcount != counts.updated:
            raise StaleVersionError(
                "rates changed while the catalog import was writing; nothing was written — "
                "run it again"
            )
    if not counts.created:
        return
    at = bindparam("now", now, type_=_RATES.c.created_at.type)
    columns = ["provider_id", "model", "model_display", "type", *_STAGED_DECIMALS,
               "model_metadata"]  # fmt: skip
    conn.execute(
        insert(_RATES).from_select(
            [*columns, "description", "deprecated", "version", "created_at", "updated_at"],
            select(*(s[c] for c in columns), null(), false(), literal(1), at, at)
            .where(s.version.is_(None))
            .order_by(s.pos),
        )
    )
    # the unique (provider, model, type) index finds each new rate's id
    conn.execute(
        update(staging)
        .where(s.version.is_(None))
        .values(
            id=select(_RATES.c.id)
            .where(
                _RATES.c.provider_id == s.provider_id,
                _RATES.c.model == s.model,
                _RATES.c.type == s.type,
            )
            .scalar_subquery()
        )
    )


def _history_from_staging(staging: Table, constants: dict[str, Any]) -> Insert:
    """INSERT … SELECT one history row per staged rate, in catalog order."""
    h, s = _HISTORY.c, staging.c
    const = {
        name: bindparam(f"h_{name}", value, type_=h[name].type) for name, value in constants.items()
    }
    source = (
        select(
            s.id, _PROVIDERS.c.name, s.model, s.type, s.change_type, const["source"],
            s.previous_input_rate, s.previous_output_rate, s.input_rate, s.output_rate,
            s.previous_unit_cost_input, s.previous_unit_cost_output, s.unit_cost_input,
            s.unit_cost_output, s.drift_pct, const["changed_at"],
            func.coalesce(s.version + 1, 1), const["metadata"], const["actor"],
            const["reason"], const["job_run_id"],
        )
        .select_from(staging.join(_PROVIDERS, _PROVIDERS.c.id == s.provider_id))
        .order_by(s.pos)
    )  # fmt: skip
    columns = [
        h.rate_id, h.provider, h.model, h.type, h.change_type, h.source,
        h.previous_input_rate, h.previous_output_rate, h.current_input_rate,
        h.current_output_rate, h.previous_unit_cost_input, h.previous_unit_cost_output,
        h.current_unit_cost_input, h.current_unit_cost_output, h.drift_pct, h.changed_at,
        h.rate_version, h.metadata, h.actor, h.reason, h.job_run_id,
    ]  # fmt: skip
    return insert(_HISTORY).from_select(columns, source)


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
