"""PostgreSQL roles for a team store: who may propose, approve, read, and apply.

``python -m hubkit db roles`` (run by the database owner, after ``init``) creates four
group roles (NOLOGIN) and grants them what they may do in this database:

=================  ==========================================================================
hubkit_operator    read everything; write providers, credentials, rates, history, settings,
                   usage and job records; propose (insert proposals and their events)
hubkit_approver    read everything; approve or reject (insert proposal events) — nothing else
hubkit_finance     read only: SELECT, no write of any kind
hubkit_job         read everything; apply approved, due proposals (rates, history, events,
                   job records)
=================  ==========================================================================

People and cron jobs log in as their own roles, members of one of these
(``--login alice=hubkit_operator`` creates such a login; passwords are the DBA's business).
The migration's triggers (0004) then hold on the server whatever a client sends: the actor
of a proposal or event is the login (``session_user``; ``SET ROLE`` does not change it),
the proposer cannot approve, events carry the proposal's hash, approvals and rejections
come from ``hubkit_approver`` members, an apply has its approvals, and neither proposal
table takes an UPDATE, DELETE or TRUNCATE.

Idempotent: run it again after an upgrade that adds tables (grants are per table).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from hubkit.errors import StorageError, ValidationError

__all__ = ["ROLES", "install_roles"]

#: The group roles and what each is for.
ROLES = {
    "hubkit_operator": "propose and edit rates",
    "hubkit_approver": "approve or reject proposals",
    "hubkit_finance": "read only",
    "hubkit_job": "apply approved, due proposals",
}

_OPERATOR_WRITES = (
    "providers", "credentials", "model_rates", "rate_history", "operator_settings",
    "key_check", "job_runs", "job_locks", "usage", "usage_rate_periods",
)  # fmt: skip
_JOB_WRITES = ("model_rates", "rate_history", "job_runs", "job_locks")
_APPEND_ONLY = ("rate_proposals", "rate_proposal_events")


def _ident(conn: Connection, name: str) -> str:
    quoted = conn.exec_driver_sql("SELECT quote_ident(%(n)s)", {"n": name}).scalar()
    return str(quoted)


def install_roles(engine: Engine, logins: Mapping[str, str] | None = None) -> list[str]:
    """Create the hubkit roles (and ``logins``: name → group role) and grant them; the
    statements run, for the record. PostgreSQL only; the caller must own the tables and be
    allowed to create roles."""
    if engine.dialect.name != "postgresql":
        raise ValidationError(
            "database roles exist only on PostgreSQL; on SQLite the OS user acts and the "
            "second approver is a convention, not a control",
            field="database_url",
        )
    for login, role in (logins or {}).items():
        if role not in ROLES:
            raise ValidationError(
                f"{login}: {role!r} is not a hubkit role; choose from {sorted(ROLES)}",
                field="login",
            )
    done: list[str] = []
    try:
        with engine.begin() as conn:

            def run(sql: str) -> None:
                conn.execute(text(sql))
                done.append(sql)

            database = _ident(conn, str(conn.execute(text("SELECT current_database()")).scalar()))
            tables = [
                str(t)
                for t in conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "ORDER BY tablename"
                    )
                ).scalars()
            ]
            missing = [t for t in ("model_rates", *_APPEND_ONLY) if t not in tables]
            if missing:
                raise StorageError(
                    f"the store has no {', '.join(missing)} table yet: run "
                    "`python -m hubkit init` (as the owner) first"
                )
            for role in ROLES:
                # CREATE ROLE has no IF NOT EXISTS; roles are cluster-wide
                run(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                    f"'{role}') THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
                )
            everyone = ", ".join(ROLES)
            quoted = [_ident(conn, t) for t in tables]
            run(f"GRANT CONNECT ON DATABASE {database} TO {everyone}")
            run(f"GRANT USAGE ON SCHEMA public TO {everyone}")
            # start from nothing, so a second run also takes back what a table no longer needs
            run(f"REVOKE ALL ON {', '.join(quoted)} FROM {everyone}")
            run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {everyone}")
            run(f"GRANT SELECT ON {', '.join(quoted)} TO {everyone}")
            writers = "hubkit_operator, hubkit_approver, hubkit_job"
            run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {writers}")
            operator = [t for t in _OPERATOR_WRITES if t in tables]
            run(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(operator)} TO hubkit_operator")
            run(f"GRANT INSERT ON {', '.join(_APPEND_ONLY)} TO hubkit_operator")
            run("GRANT INSERT ON rate_proposal_events TO hubkit_approver")
            run(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(_JOB_WRITES)} TO hubkit_job")
            run("GRANT INSERT ON rate_proposal_events TO hubkit_job")
            for login, role in (logins or {}).items():
                name = _ident(conn, login)
                literal = login.replace("'", "''")
                run(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                    f"'{literal}') THEN CREATE ROLE {name} LOGIN; END IF; END $$"
                )
                run(f"GRANT {role} TO {name}")
    except StorageError:
        raise
    except Exception as exc:  # the server's own refusal (not the owner, no CREATEROLE, …)
        orig = getattr(exc, "orig", exc)
        raise StorageError(f"could not set up the hubkit roles: {orig}") from None
    return done
