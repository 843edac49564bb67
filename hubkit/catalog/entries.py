"""Values shared by the catalog readers: entries, unmapped keys, and the cost reader.

Kept apart from :mod:`hubkit.catalog` so that the CSV reader and the drift report can use
them without importing the LiteLLM mapping (and without an import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hubkit.decimals import EXACT, ROUNDING, require_decimal
from hubkit.domain import RateType, UnitCosts
from hubkit.errors import ValidationError

CSV_COLUMNS: tuple[str, ...] = (
    "provider",
    "model",
    "type",
    "input_cost",
    "output_cost",
    "cache_read_cost",
    "cache_write_cost",
)

# Costs are stored as NUMERIC(38, 18) (domain.md "Storing exact numbers"); hubkit.domain
# bounds UnitCosts the same way, so a catalog never yields a cost the store must refuse.
COST_LIMIT = Decimal(10) ** 20
COST_QUANTUM = Decimal(1).scaleb(-18)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """Unit costs for one (provider, model, type), in the catalog's currency."""

    provider: str
    model: str
    type: RateType
    unit_costs: UnitCosts
    cache_read_cost: Decimal | None
    cache_write_cost: Decimal | None
    model_metadata: dict[str, Any] | None = field(hash=False)
    source_key: str

    @property
    def key(self) -> tuple[str, str, RateType]:
        return (self.provider, self.model, self.type)


@dataclass(frozen=True, slots=True)
class UnmappedEntry:
    """A catalog key that gives no rate, and why."""

    key: str
    litellm_provider: str | None
    mode: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CostReader:
    """Reads costs of one file: validated, exact, converted with the exchange rate.

    Every error names the file, the key or row (``where``) and the field.
    """

    name: str  # file name, for messages
    rate: Decimal | None  # currency units per USD; None = keep USD
    providers: frozenset[str] | None  # AIGNE Hub providers to keep; None = all
    # float → its cost: a 200,000-key map repeats a few thousand prices
    _floats: dict[float, Decimal] = field(default_factory=dict, compare=False, repr=False)

    def fail(self, where: str, field_name: str, message: str, value: Any = None) -> ValidationError:
        return ValidationError(
            f"{self.name}: {where}, field {field_name}: {message}", field=field_name, value=value
        )

    def cost(self, value: Any, where: str, field_name: str) -> Decimal:
        if type(value) is float:
            known = self._floats.get(value)
            if known is not None:
                return known
            amount = self._cost(value, where, field_name)
            if value:  # not ±0.0: they are equal as keys but not as Decimals
                self._floats[value] = amount
            return amount
        return self._cost(value, where, field_name)

    def _cost(self, value: Any, where: str, field_name: str) -> Decimal:
        # require_decimal turns floats into Decimal(repr(x)): 1.0003e-07 → Decimal('1.0003E-7')
        try:
            amount = require_decimal(value, field_name)
        except ValidationError as exc:
            raise self.fail(where, field_name, str(exc), value) from None
        if self.rate is not None:
            # exact product, then the 18 places the store keeps (one rounding, named mode)
            product = EXACT.multiply(amount, self.rate)
            amount = product.quantize(COST_QUANTUM, rounding=ROUNDING, context=EXACT)
            amount = amount.normalize(EXACT) if amount else Decimal(0)
        if amount >= COST_LIMIT:
            raise self.fail(where, field_name, f"must be below {COST_LIMIT:f}", value)
        return amount

    def optional_cost(self, value: Any, where: str, field_name: str) -> Decimal | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.cost(value, where, field_name)

    def keeps(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers
