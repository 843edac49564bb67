"""usage tables: ``usage`` and ``usage_rate_periods`` join the migrated schema

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-12 09:00:00

Before this revision hubkit.usage.sql made these two tables itself (``MetaData.create_all``,
outside the migrations), so a database may already have them, rows and all. Such tables
are adopted as they are: only a missing table or index is created, and the rows stay. A
table of the same name without the columns hubkit writes is someone else's: the upgrade
stops with a message instead of writing into it.

The definitions are a copy, frozen here as the migration made them: a later change to the
tables is a later migration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from hubkit.errors import StorageError

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _amount() -> sa.types.TypeEngine[Any]:
    return sa.Numeric(38, 18, asdecimal=True).with_variant(sa.Float(asdecimal=False), "sqlite")


def _id() -> sa.Column[Any]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def _usage_columns() -> list[sa.Column[Any]]:
    counts = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "images")
    return [
        _id(),
        sa.Column("time", sa.DateTime(timezone=False), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("app", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in counts),
        sa.Column(
            "seconds",
            sa.Numeric(20, 6, asdecimal=True).with_variant(sa.Float(asdecimal=False), "sqlite"),
            nullable=False,
        ),
    ]


def _rate_period_columns() -> list[sa.Column[Any]]:
    return [
        _id(),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("input_rate", _amount(), nullable=False),
        sa.Column("output_rate", _amount(), nullable=False),
        sa.Column("cache_read_rate", _amount(), nullable=True),
        sa.Column("cache_write_rate", _amount(), nullable=True),
        sa.Column("unit_cost_input", _amount(), nullable=True),
        sa.Column("unit_cost_output", _amount(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=False), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=False), nullable=True),
    ]


# table → (its columns, its indexes: name → columns)
_TABLES: dict[str, tuple[Callable[[], list[sa.Column[Any]]], dict[str, list[str]]]] = {
    "usage": (
        _usage_columns,
        {
            "ix_usage_key_time": ["provider", "model", "type", "time"],
            "ix_usage_user_time": ["user", "time"],
        },
    ),
    "usage_rate_periods": (
        _rate_period_columns,
        {"ix_usage_rate_periods_key": ["provider", "model", "type"]},
    ),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, (columns, indexes) in _TABLES.items():
        if inspector.has_table(table):
            # made by create_all before this revision: keep it (and its rows)
            wanted = {column.name for column in columns()}
            found = {column["name"] for column in inspector.get_columns(table)}
            if missing := sorted(wanted - found):
                raise StorageError(
                    f"the database already has a table {table!r} that hubkit did not make "
                    f"(it lacks the columns {missing}); rename or drop it, or keep hubkit's "
                    "store in another database"
                )
            present = {index["name"] for index in inspector.get_indexes(table)}
        else:
            op.create_table(table, *columns())
            present = set()
        for name, on in indexes.items():
            if name not in present:
                op.create_index(name, table, on, unique=False)


def downgrade() -> None:
    for table, (_columns, indexes) in reversed(_TABLES.items()):
        for name in indexes:
            op.drop_index(name, table_name=table)
        op.drop_table(table)
