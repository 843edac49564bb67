"""Column types that keep money exact and times in UTC on every back end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from hubkit.decimals import plain


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal text on SQLite (its NUMERIC goes through floats), NUMERIC(38, 18) elsewhere.

    Unit costs need more than 10 places (the catalog has 1.0003E-7 USD per token), hence 18.
    """

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"ExactDecimal columns take Decimal, got {type(value).__name__}")
        return plain(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return (_from_sqlite if dialect.name == "sqlite" else _from_numeric)(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # The conversion itself, without TypeDecorator's wrapper around process_result_value:
        # one Python call per value instead of two, on the 40,000 values of a bulk preview.
        # (Neither impl has a processor of its own: psycopg already returns Decimal.)
        if self.impl_instance.result_processor(dialect, coltype) is not None:
            return super().result_processor(dialect, coltype)
        return _from_sqlite if dialect.name == "sqlite" else _from_numeric


def _from_sqlite(value: Any) -> Decimal | None:
    # stored by plain(): already in its shortest form
    return None if value is None else Decimal(value)


def _from_numeric(value: Any) -> Decimal | None:
    # PostgreSQL pads to the column's 18 places; normalise so values compare and print the
    # same on both back ends.
    if value is None:
        return None
    return _normalise(value if type(value) is Decimal else Decimal(str(value)))


def _normalise(value: Decimal) -> Decimal:
    if value == 0:
        return Decimal(0)
    normal = value.normalize()
    # normalize() turns 100 into 1E+2: put integral values back in plain form
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("UTCDateTime columns take timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value  # the DateTime impl reads datetimes
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
