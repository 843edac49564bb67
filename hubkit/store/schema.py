"""The store's tables. Changes go through alembic migrations.

The store's own rows are SQLAlchemy 2.0 typed ORM classes; the usage tables that
:mod:`hubkit.store.usage` aggregates are Core tables on the same metadata (bulk inserts and
one ``GROUP BY``, no objects per call), so the migrations create them too.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hubkit.store.types import ExactDecimal, UTCDateTime, utcnow

Money = Annotated[Decimal, "exact"]
UTC = Annotated[datetime, "utc"]


class Base(DeclarativeBase):
    type_annotation_map = {Money: ExactDecimal(), UTC: UTCDateTime(), dict[str, Any]: JSON()}


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    base_url: Mapped[str | None] = mapped_column(String(500))
    region: Mapped[str | None] = mapped_column(String(50))
    enabled: Mapped[bool] = mapped_column(default=True)
    custom: Mapped[bool] = mapped_column(default=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[UTC] = mapped_column(default=utcnow)
    updated_at: Mapped[UTC] = mapped_column(default=utcnow, onupdate=utcnow)

    credentials: Mapped[list[CredentialRow]] = relationship(back_populates="provider")
    rates: Mapped[list[RateRow]] = relationship(back_populates="provider")


class CredentialRow(Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("provider_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    credential_type: Mapped[str] = mapped_column(String(20))
    # Fields that are not secret (a key pair's access_key_id) stay readable without the key.
    public_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    encrypted_value: Mapped[str] = mapped_column(String(4000))
    display_text: Mapped[str] = mapped_column(String(500))
    weight: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[UTC] = mapped_column(default=utcnow)
    rotated_at: Mapped[UTC | None]
    last_used_at: Mapped[UTC | None]
    last_pushed_at: Mapped[UTC | None]
    usage_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))

    provider: Mapped[ProviderRow] = relationship(back_populates="credentials")


class RateRow(Base):
    __tablename__ = "model_rates"
    # AUTOINCREMENT on SQLite: ids are never reused after a delete, so history rows that
    # name a deleted rate's id never point at a newer rate.
    __table_args__ = (
        UniqueConstraint("provider_id", "model", "type"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    model: Mapped[str] = mapped_column(String(100))
    model_display: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    input_rate: Mapped[Money]
    output_rate: Mapped[Money]
    unit_cost_input: Mapped[Money | None]
    unit_cost_output: Mapped[Money | None]
    cache_read_rate: Mapped[Money | None]
    cache_write_rate: Mapped[Money | None]
    model_metadata: Mapped[dict[str, Any] | None]
    description: Mapped[str | None] = mapped_column(String(100))
    deprecated: Mapped[bool] = mapped_column(default=False)
    deprecated_at: Mapped[UTC | None]
    deprecated_reason: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[UTC] = mapped_column(default=utcnow)
    updated_at: Mapped[UTC] = mapped_column(default=utcnow)

    provider: Mapped[ProviderRow] = relationship(back_populates="rates")

    # Optimistic locking: every ORM UPDATE checks and bumps the version, so a concurrent
    # edit fails loudly instead of being lost.
    __mapper_args__ = {"version_id_col": version}


class RateHistoryRow(Base):
    __tablename__ = "rate_history"
    __table_args__ = (
        Index("ix_rate_history_key_time", "provider", "model", "type", "changed_at"),
        Index("ix_rate_history_job_run", "job_run_id"),
        Index("ix_rate_history_proposal", "proposal_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: history outlives a deleted rate.
    rate_id: Mapped[int | None] = mapped_column(index=True)
    provider: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    change_type: Mapped[str] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(200))
    previous_input_rate: Mapped[Money | None]
    previous_output_rate: Mapped[Money | None]
    current_input_rate: Mapped[Money | None]
    current_output_rate: Mapped[Money | None]
    previous_unit_cost_input: Mapped[Money | None]
    previous_unit_cost_output: Mapped[Money | None]
    current_unit_cost_input: Mapped[Money | None]
    current_unit_cost_output: Mapped[Money | None]
    drift_pct: Mapped[Money | None]
    changed_at: Mapped[UTC] = mapped_column(default=utcnow)
    # the rate's version after this change (None for deletes): revert uses it to detect
    # a later edit
    rate_version: Mapped[int | None]
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
    job_run_id: Mapped[str | None] = mapped_column(String(64))
    # the rate proposal whose apply wrote this row (hubkit.store.proposals)
    proposal_id: Mapped[int | None]


class SettingRow(Base):
    __tablename__ = "operator_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[UTC] = mapped_column(default=utcnow)


class KeyCheckRow(Base):
    """One row (id 1): a Fernet token of a known constant, made with the store's key.

    A key that cannot read it is not this store's key: every credential write checks it
    first, so a valid but different key can never seal a value no one can read.
    """

    __tablename__ = "key_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[UTC] = mapped_column(default=utcnow)


class JobRunRow(Base):
    __tablename__ = "job_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30))
    parameters: Mapped[dict[str, Any] | None]
    summary: Mapped[dict[str, Any] | None]
    report_dir: Mapped[str | None] = mapped_column(String(1000))
    actor: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[UTC] = mapped_column(default=utcnow)
    finished_at: Mapped[UTC | None]


class JobLockRow(Base):
    """A lease: held by ``holder`` until ``expires_at``; a dead holder's lease is taken over."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64))
    acquired_at: Mapped[UTC]
    expires_at: Mapped[UTC]


class RateProposalRow(Base):
    """A proposed set of rate changes: written once, never updated (hubkit.store.proposals).

    Its state is derived from its events (:class:`RateProposalEventRow`); on both back ends
    triggers refuse an UPDATE or DELETE of either table (migration 0004).
    """

    __tablename__ = "rate_proposals"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    changes: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    catalog_source: Mapped[str | None] = mapped_column(String(500))
    catalog_version: Mapped[str | None] = mapped_column(String(200))
    effective_at: Mapped[UTC | None]
    proposer: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
    required_approvals: Mapped[int] = mapped_column(default=1)
    supersedes: Mapped[int | None] = mapped_column(ForeignKey("rate_proposals.id"))
    reverts: Mapped[int | None] = mapped_column(ForeignKey("rate_proposals.id"))
    impact: Mapped[dict[str, Any] | None]
    usage_fingerprint: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[UTC] = mapped_column(default=utcnow)


class RateProposalEventRow(Base):
    """What happened to a proposal (proposed, approved, rejected, applied, superseded,
    expired), by whom, against which content hash: append-only."""

    __tablename__ = "rate_proposal_events"
    __table_args__ = (
        Index("ix_rate_proposal_events_proposal", "proposal_id"),
        # a proposal is applied at most once, whatever runs concurrently
        Index(
            "ux_rate_proposal_events_applied",
            "proposal_id",
            unique=True,
            sqlite_where=text("event = 'applied'"),
            postgresql_where=text("event = 'applied'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("rate_proposals.id"))
    event: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[UTC] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any] | None]


# -- usage: one row per call, and the rate timeline that prices them ---------------------
# Amounts are NUMERIC on PostgreSQL, so the database's sums are exact; REAL on SQLite, which
# has no decimal arithmetic (its NUMERIC goes through floats anyway, and SQLAlchemy's
# Numeric would warn there): hubkit.store.usage states the bound that gives.
USAGE_AMOUNT = Numeric(38, 18, asdecimal=True).with_variant(Float(asdecimal=False), "sqlite")
USAGE_SECONDS = Numeric(20, 6, asdecimal=True).with_variant(Float(asdecimal=False), "sqlite")
# SQLite autoincrements INTEGER keys only.
_USAGE_ID = BigInteger().with_variant(Integer(), "sqlite")

#: One row per call, the columns of hubkit.usage.schema (a test pins the two together);
#: times are UTC, stored without a zone, to the microsecond.
usage_table = Table(
    "usage",
    Base.metadata,
    Column("id", _USAGE_ID, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=False), nullable=False),
    Column("user", String(255), nullable=False),
    Column("app", String(255), nullable=False, default=""),
    Column("provider", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_tokens", BigInteger, nullable=False, default=0),
    Column("images", BigInteger, nullable=False, default=0),
    Column("seconds", USAGE_SECONDS, nullable=False, default=0),
    # Calls imported from the gateway (``python -m hubkit usage import``): its id, unique
    # so that a re-run imports only new calls, and the credits it stored (exact).
    Column("source_id", String(255), nullable=True),
    Column("stored_credits", ExactDecimal(), nullable=True),
    Index("ix_usage_key_time", "provider", "model", "type", "time"),
    Index("ix_usage_user_time", "user", "time"),
    Index("ux_usage_source_id", "source_id", unique=True),
)

#: The rate timeline (hubkit.replay.timeline): one row per period a rate was in force (NULL
#: bound = open).
rate_periods_table = Table(
    "usage_rate_periods",
    Base.metadata,
    Column("id", _USAGE_ID, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("input_rate", USAGE_AMOUNT, nullable=False),
    Column("output_rate", USAGE_AMOUNT, nullable=False),
    Column("cache_read_rate", USAGE_AMOUNT),
    Column("cache_write_rate", USAGE_AMOUNT),
    Column("unit_cost_input", USAGE_AMOUNT),
    Column("unit_cost_output", USAGE_AMOUNT),
    Column("valid_from", DateTime(timezone=False)),
    Column("valid_to", DateTime(timezone=False)),
    Index("ix_usage_rate_periods_key", "provider", "model", "type"),
)
