"""rate proposals: reviewed, content-hashed rate changes with their append-only events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:00:00

``rate_proposals`` (one immutable row per proposal) and ``rate_proposal_events`` (what
happened to it: proposed, approved, rejected, applied, superseded, expired); history rows
carry the proposal whose apply wrote them (``rate_history.proposal_id``).

Database-side rules, on both back ends: neither table takes an UPDATE or DELETE; an event
must carry its proposal's content hash; the proposer cannot approve; a proposal is applied
once (a partial unique index). On PostgreSQL the server also fills in who acted
(``session_user``, the login: a client cannot name someone else, nor act as another
role through ``SET ROLE``), checks role membership when the
hubkit roles exist (``python -m hubkit db roles``), and refuses an ``applied`` event
without the approvals the proposal requires. On SQLite the actor is what the client says
(the OS user): there the second approver is a convention, not a control.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hubkit.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("rate_proposals", "rate_proposal_events")

_SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: a proposal is never edited or
        deleted, only superseded'); END"""
        for table in _TABLES
        for verb in ("UPDATE", "DELETE")
    ),
    # INSERT OR REPLACE removes the old row without firing the DELETE trigger above
    *(
        f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
        WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: a proposal is never edited or
        deleted, only superseded'); END"""
        for table in _TABLES
    ),
    """CREATE TRIGGER rate_proposal_events_hash BEFORE INSERT ON rate_proposal_events
    WHEN NEW.content_hash IS NOT (SELECT content_hash FROM rate_proposals
                                  WHERE id = NEW.proposal_id)
    BEGIN SELECT RAISE(ABORT, 'the content hash does not match the proposal: it was changed
    or is another proposal; review it again'); END""",
    """CREATE TRIGGER rate_proposal_events_maker_checker BEFORE INSERT ON rate_proposal_events
    WHEN NEW.event = 'approved' AND NEW.actor = (SELECT proposer FROM rate_proposals
                                                 WHERE id = NEW.proposal_id)
    BEGIN SELECT RAISE(ABORT, 'the proposer cannot approve their own proposal: another
    person must'); END""",
]

#: hubkit.store.proposals.APPLY_LOCK_KEY: the advisory lock an apply holds (a test pins them)
_APPLY_LOCK = zlib.crc32(b"hubkit-proposal-apply") & 0x7FFFFFFF

_PG_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION hubkit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: a proposal is never edited or deleted, only '
            'superseded (% refused)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE OR REPLACE FUNCTION hubkit_role_allows(wanted text[]) RETURNS boolean
    LANGUAGE sql STABLE AS $$
        -- Without the hubkit roles (a single-login database) every login may act; with
        -- them, only members of one of the wanted roles (superusers are members of all).
        SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ANY (wanted))
            OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = ANY (wanted)
                       AND pg_has_role(session_user, r.oid, 'MEMBER'))
    $$""",
    """CREATE OR REPLACE FUNCTION hubkit_proposal_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.proposer := session_user;
        NEW.created_at := now();
        IF NEW.required_approvals < 1 THEN
            RAISE EXCEPTION 'a PostgreSQL store requires at least one approval per proposal'
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT hubkit_role_allows(ARRAY['hubkit_operator']) THEN
            RAISE EXCEPTION 'only members of hubkit_operator may propose rate changes (% is not)',
                session_user USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION hubkit_proposal_event_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        p rate_proposals%ROWTYPE;
        approvals integer;
    BEGIN
        -- an apply in flight holds this lock until it commits: a reject (or any event)
        -- waits for it, then sees its 'applied' and is refused as closed
        PERFORM pg_advisory_xact_lock(APPLY_LOCK, NEW.proposal_id);
        NEW.actor := session_user;
        NEW.at := now();
        SELECT * INTO p FROM rate_proposals WHERE id = NEW.proposal_id;
        IF NOT FOUND OR NEW.content_hash IS DISTINCT FROM p.content_hash THEN
            RAISE EXCEPTION 'the content hash does not match proposal %: it was changed or is '
                'another proposal; review it again', NEW.proposal_id
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM rate_proposal_events e WHERE e.proposal_id = NEW.proposal_id
                   AND e.event IN ('rejected', 'applied', 'superseded', 'expired')) THEN
            RAISE EXCEPTION 'proposal % is closed (rejected, applied, superseded or expired)',
                NEW.proposal_id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.event IN ('approved', 'rejected') THEN
            IF NOT hubkit_role_allows(ARRAY['hubkit_approver']) THEN
                RAISE EXCEPTION 'only members of hubkit_approver may % proposals (% is not)',
                    substr(NEW.event, 1, length(NEW.event) - 1), session_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.event = 'approved' AND NEW.actor = p.proposer THEN
                RAISE EXCEPTION 'maker-checker: % proposed proposal %, so another login must '
                    'approve it', p.proposer, NEW.proposal_id
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        ELSIF NEW.event IN ('applied', 'expired') THEN
            IF NOT hubkit_role_allows(ARRAY['hubkit_job', 'hubkit_operator']) THEN
                RAISE EXCEPTION 'only members of hubkit_job or hubkit_operator may mark proposals '
                    '% (% is not)', NEW.event, session_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.event = 'applied' THEN
                SELECT count(DISTINCT e.actor) INTO approvals FROM rate_proposal_events e
                    WHERE e.proposal_id = NEW.proposal_id AND e.event = 'approved'
                    AND e.content_hash = p.content_hash;
                IF approvals < p.required_approvals THEN
                    RAISE EXCEPTION 'proposal % has % of the % approvals it needs; it cannot be '
                        'applied', NEW.proposal_id, approvals, p.required_approvals
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
            END IF;
        ELSE
            IF NOT hubkit_role_allows(ARRAY['hubkit_operator']) THEN
                RAISE EXCEPTION 'only members of hubkit_operator may mark proposals % (% is not)',
                    NEW.event, session_user USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
        RETURN NEW;
    END $$""",
]

_PG_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION hubkit_append_only()"""
        for table in _TABLES
    ),
    *(
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION hubkit_append_only()"""
        for table in _TABLES
    ),
    """CREATE TRIGGER rate_proposals_insert BEFORE INSERT ON rate_proposals
    FOR EACH ROW EXECUTE FUNCTION hubkit_proposal_insert()""",
    """CREATE TRIGGER rate_proposal_events_insert BEFORE INSERT ON rate_proposal_events
    FOR EACH ROW EXECUTE FUNCTION hubkit_proposal_event_insert()""",
]


def upgrade() -> None:
    utc = hubkit.store.types.UTCDateTime(timezone=True)
    op.create_table(
        "rate_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("catalog_source", sa.String(length=500), nullable=True),
        sa.Column("catalog_version", sa.String(length=200), nullable=True),
        sa.Column("effective_at", utc, nullable=True),
        sa.Column("proposer", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.Column("reverts", sa.Integer(), nullable=True),
        sa.Column("impact", sa.JSON(), nullable=True),
        sa.Column("usage_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.ForeignKeyConstraint(["reverts"], ["rate_proposals.id"]),
        sa.ForeignKeyConstraint(["supersedes"], ["rate_proposals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "rate_proposal_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("at", utc, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["proposal_id"], ["rate_proposals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_rate_proposal_events_proposal", "rate_proposal_events", ["proposal_id"], unique=False
    )
    op.create_index(
        "ux_rate_proposal_events_applied",
        "rate_proposal_events",
        ["proposal_id"],
        unique=True,
        sqlite_where=sa.text("event = 'applied'"),
        postgresql_where=sa.text("event = 'applied'"),
    )
    op.add_column("rate_history", sa.Column("proposal_id", sa.Integer(), nullable=True))
    op.create_index("ix_rate_history_proposal", "rate_history", ["proposal_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*_PG_FUNCTIONS, *_PG_TRIGGERS):
            op.execute(statement.replace("APPLY_LOCK", str(_APPLY_LOCK)))
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_rate_history_proposal", table_name="rate_history")
    op.drop_column("rate_history", "proposal_id")
    # dropping a table drops its triggers
    op.drop_table("rate_proposal_events")
    op.drop_table("rate_proposals")
    if op.get_bind().dialect.name == "postgresql":
        for function in (
            "hubkit_proposal_event_insert()",
            "hubkit_proposal_insert()",
            "hubkit_role_allows(text[])",
            "hubkit_append_only()",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {function}")
