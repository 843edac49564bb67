"""usage: the gateway's call id (unique) and stored credits, for incremental imports

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-01 09:00:00

``python -m hubkit usage import`` keeps each imported call's gateway id (``ModelCalls.id``)
in ``source_id`` — unique, so a re-run imports only new calls, and two runs racing cannot
both insert one call — and the credits the gateway charged in ``stored_credits`` (exact:
decimal text on SQLite, NUMERIC elsewhere), which the reconciliation compares with a
re-pricing. Both are NULL for calls loaded from a usage file. The definitions are frozen
here as the migration made them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hubkit.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A usage table made by hubkit.usage.sql's create_all (adopted by 0003) may already
    # have the columns: add only what is missing.
    inspector = sa.inspect(op.get_bind())
    found = {column["name"] for column in inspector.get_columns("usage")}
    columns = [
        sa.Column("source_id", sa.String(length=255), nullable=True),
        sa.Column("stored_credits", hubkit.store.types.ExactDecimal(length=64), nullable=True),
    ]
    missing = [column for column in columns if column.name not in found]
    if missing:
        with op.batch_alter_table("usage") as batch:
            for column in missing:
                batch.add_column(column)
    if "ux_usage_source_id" not in {ix["name"] for ix in inspector.get_indexes("usage")}:
        op.create_index("ux_usage_source_id", "usage", ["source_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_usage_source_id", table_name="usage")
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("stored_credits")
        batch.drop_column("source_id")
