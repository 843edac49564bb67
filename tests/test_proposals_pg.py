"""Rate proposals on the real PostgreSQL server, with real login roles.

``python -m hubkit db roles`` (``hubkit.store.roles.install_roles``) sets up the four hubkit
roles; each person below logs in as their own role (a second ``psycopg`` connection, or a
Store opened with that login). What is checked is what the *server* refuses, whatever the
client sends: maker ≠ checker, the actor (``current_user``), the hash, role membership,
finance writing anything, and rows of the append-only tables changing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from _postgres import PostgresServer
from _proposals import two_apply_due_processes, two_apply_due_threads
from _stores import seed_rates, snapshot
from psycopg import errors as pg_errors

import hubkit.proposals as hp
from hubkit.cli import main as cli_main
from hubkit.errors import ConflictError, StaleVersionError, StorageError, ValidationError
from hubkit.proposals import ProposalState
from hubkit.store import Store
from hubkit.store.roles import install_roles

pytestmark = pytest.mark.postgres

LOGINS = {
    "hk_alice": "hubkit_operator",
    "hk_bob": "hubkit_approver",
    "hk_carol": "hubkit_approver",
    "hk_fin": "hubkit_finance",
    "hk_cron": "hubkit_job",
}


@dataclass
class Team:
    owner_url: str
    database: str
    server: PostgresServer

    def url(self, login: str) -> str:
        return sa.make_url(self.owner_url).set(username=login).render_as_string(False)

    def store(self, login: str, **kw: bool) -> Store:
        return Store.open(self.url(login), **kw)

    def connect(self, login: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            f"host={self.server.host} port={self.server.port} user={login} dbname={self.database}",
            autocommit=True,
        )


@pytest.fixture
def team(pg_url: str, postgres_server: PostgresServer) -> Iterator[Team]:
    with Store.open(pg_url) as owner:  # the owner migrates and seeds
        seed_rates(owner, 3, ["openai", "anthropic"])
        install_roles(owner.engine, LOGINS)
    yield Team(pg_url, sa.make_url(pg_url).database or "", postgres_server)


def _propose(team: Team) -> hp.Proposal:
    with team.store("hk_alice") as alice:
        return hp.propose_bulk(alice, "25", "0.001", reason="Q4", impact=False)


def _login_in_both_groups(team: Team, login: str) -> None:
    with psycopg.connect(team.server.conninfo(team.database), autocommit=True) as owner:
        owner.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') "
            f"THEN CREATE ROLE {login} LOGIN; END IF; END $$"
        )
        owner.execute(f"GRANT hubkit_operator, hubkit_approver TO {login}")


def _insert_event(conn: Any, proposal_id: int, event: str, actor: str, content_hash: str) -> None:
    """A proposal event written by hand, past the store: what the server itself must check."""
    conn.execute(
        "INSERT INTO rate_proposal_events (proposal_id, event, actor, content_hash, at) "
        "VALUES (%s, %s, %s, %s, now())",
        (proposal_id, event, actor, content_hash),
    )


def test_the_actor_is_the_login_and_maker_checker_is_enforced_by_the_server(team: Team) -> None:
    p = _propose(team)
    assert p.proposer == "hk_alice"  # current_user, whatever HUBKIT_ACTOR says
    with team.connect("hk_alice") as conn:
        # the proposer approving, claiming to be bob: the server names her and refuses
        with pytest.raises(pg_errors.InsufficientPrivilege, match="hubkit_approver"):
            _insert_event(conn, p.id, "approved", "hk_bob", p.content_hash)
        # a proposal written by hand claiming bob proposed it is recorded as hers
        conn.execute(
            "INSERT INTO rate_proposals (content_hash, changes, source, proposer, "
            "required_approvals, created_at) VALUES ('x', '[]', 'edit', 'hk_bob', 1, now())"
        )
        row = conn.execute("SELECT proposer FROM rate_proposals ORDER BY id DESC LIMIT 1")
        assert row.fetchone() == ("hk_alice",)
    # someone who may both propose and approve still cannot approve their own proposal
    _login_in_both_groups(team, "hk_dave")
    with team.store("hk_dave") as dave:
        own = hp.propose_bulk(dave, "30", "0.001", impact=False)
    with team.connect("hk_dave") as conn:
        with pytest.raises(pg_errors.InsufficientPrivilege, match="maker-checker"):
            _insert_event(conn, own.id, "approved", "hk_bob", own.content_hash)
    with team.store("hk_bob") as bob:
        approved = bob.approve_proposal(p.id, p.content_hash)
    assert approved.state is ProposalState.APPROVED and approved.approvals == ("hk_bob",)


def test_the_store_refuses_the_proposer_before_the_server_does(team: Team) -> None:
    p = _propose(team)
    with team.store("hk_alice") as alice:
        with pytest.raises(ConflictError, match="maker ≠ checker"):
            alice.approve_proposal(p.id, p.content_hash)


def test_finance_cannot_write_anything(team: Team) -> None:
    p = _propose(team)
    with team.connect("hk_fin") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        assert {"model_rates", "rate_proposals", "rate_proposal_events", "usage"} <= set(tables)
        refused = 0
        for table in tables:
            column = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position LIMIT 1",
                (table,),
            ).fetchone()
            assert column is not None
            for sql in (
                f'INSERT INTO "{table}" DEFAULT VALUES',
                f'UPDATE "{table}" SET "{column[0]}" = "{column[0]}"',
                f'DELETE FROM "{table}"',
                f'TRUNCATE "{table}"',
            ):
                with pytest.raises(pg_errors.InsufficientPrivilege):
                    conn.execute(sql)
                refused += 1
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() is not None
        assert refused == 4 * len(tables)
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE finance_notes (x int)")
        for event in ("approved", "rejected", "applied"):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                _insert_event(conn, p.id, event, "hk_fin", p.content_hash)
    with team.store("hk_fin", read_only=True) as fin:
        assert fin.get_proposal(p.id).state is ProposalState.PROPOSED  # reading is fine
    with team.store("hk_fin") as fin:
        rate = fin.list_rates()[0]
        with pytest.raises(StorageError):
            fin.update_rate(rate.id, rate.version, input_rate="0.000001")
        with pytest.raises(StorageError):
            fin.approve_proposal(p.id, p.content_hash)


def test_an_approver_cannot_edit_rates_or_propose(team: Team) -> None:
    with team.store("hk_bob") as bob:
        rate = bob.list_rates()[0]
        with pytest.raises(StorageError, match="permission denied"):
            bob.update_rate(rate.id, rate.version, input_rate="0.000001")
        with pytest.raises(StorageError, match="permission denied"):
            hp.propose_bulk(bob, "25", "0.001", impact=False)


def test_a_tampered_or_mismatched_hash_is_refused_by_the_server(team: Team) -> None:
    p = _propose(team)
    with team.store("hk_bob") as bob:
        with pytest.raises(ConflictError, match="does not match"):
            bob.approve_proposal(p.id, "f" * 64)
    with team.connect("hk_bob") as conn:
        with pytest.raises(pg_errors.CheckViolation, match="content hash does not match"):
            _insert_event(conn, p.id, "approved", "hk_bob", "f" * 64)
    # the stored proposal cannot be changed after review, not even by the owner
    with psycopg.connect(team.server.conninfo(team.database), autocommit=True) as owner:
        for sql in (
            "UPDATE rate_proposals SET changes = '[]'",
            "DELETE FROM rate_proposal_events",
            "TRUNCATE rate_proposals CASCADE",
        ):
            with pytest.raises(pg_errors.InsufficientPrivilege, match="append-only"):
                owner.execute(sql)


def test_a_stale_proposal_is_refused(team: Team) -> None:
    p = _propose(team)
    with team.store("hk_alice") as alice:
        rate = alice.get_rate(p.changes[0].rate_id or 0)
        alice.update_rate(rate.id, rate.version, input_rate="0.0000029")
    with team.store("hk_bob") as bob:
        with pytest.raises(StaleVersionError, match="re-propose"):
            bob.approve_proposal(p.id, p.content_hash)


def test_an_apply_needs_the_approvals_on_the_server_too(team: Team) -> None:
    p = _propose(team)
    with team.connect("hk_cron") as conn:
        with pytest.raises(pg_errors.InsufficientPrivilege, match="0 of the 1 approvals"):
            _insert_event(conn, p.id, "applied", "hk_cron", p.content_hash)
        with pytest.raises(pg_errors.InsufficientPrivilege, match="hubkit_approver"):
            _insert_event(conn, p.id, "approved", "hk_cron", p.content_hash)
    with team.store("hk_alice") as alice:
        with pytest.raises(ValidationError, match="PostgreSQL store needs at least 1"):
            alice.set_required_approvals(0)


@pytest.mark.soak
def test_two_concurrent_apply_due_runs_apply_exactly_once(team: Team) -> None:
    p = _propose(team)
    with team.store("hk_bob") as bob:
        bob.approve_proposal(p.id, p.content_hash)
    reports = two_apply_due_threads([team.store("hk_cron"), team.store("hk_cron")])
    assert len(reports) == 2
    assert sum(len(r.applied) for r in reports) == 1
    with Store.open(team.owner_url) as owner:
        events = [e.event for e in owner.get_proposal(p.id).events]
        assert events == ["proposed", "approved", "applied"]
        assert owner.get_proposal(p.id).events[-1].actor == "hk_cron"
        rows = [h for h in owner.history() if h.proposal_id == p.id]
        assert len(rows) == len(p.changes) and {h.actor for h in rows} == {"hk_cron"}
        assert not owner.preview_bulk_update("25", "0.001").changed


def test_finance_sees_the_impact_it_was_approved_with(team: Team) -> None:
    with team.store("hk_alice") as alice:
        p = hp.propose_bulk(alice, "25", "0.001", reason="Q4")
        before = snapshot(alice)
    with team.store("hk_fin", read_only=True) as fin:
        seen = fin.get_proposal(p.id)
        assert seen.impact == p.impact and seen.usage_fingerprint == p.usage_fingerprint
        assert snapshot(fin) == before


def test_db_roles_command_is_idempotent(team: Team, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        ["--database-url", team.owner_url, "db", "roles", "--login", "hk_dan=hubkit_operator"]
    )
    assert code == 0, capsys.readouterr().err
    assert "hubkit_finance" in capsys.readouterr().out
    with team.store("hk_dan") as dan:
        assert dan.current_actor() == "hk_dan"
        assert _propose(team).state is ProposalState.PROPOSED


def test_impact_from_the_store_usage_and_scheduled_prices_on_postgres(team: Team) -> None:
    from datetime import UTC, datetime, timedelta

    from hubkit.billing_settings import BillingSettings
    from hubkit.replay import replay, timeline_from_rates
    from hubkit.usage.sql import load_usage
    from hubkit.usage.synthetic import generate_usage

    with Store.open(team.owner_url) as owner:
        rates = owner.list_rates()
        usage = generate_usage(rates, n_calls=3_000, n_users=50, start="2026-10-01", days=45)
        load_usage(owner.engine, usage)
    start = datetime.now(UTC) + timedelta(days=30)
    with team.store("hk_alice") as alice:
        p = hp.propose_bulk(alice, "40", "0.001", reason="next month", effective_at=start)
    impact = hp.Impact.from_json(p.impact)
    assert impact is not None and impact.window["kind"] == "store" and not impact.synthetic
    last = usage["time"].max()
    window = usage[usage["time"] >= last - timedelta(days=30)]
    assert impact.window["calls"] == len(window)
    base = replay(window, timeline_from_rates(rates), BillingSettings(), credit_price="0.001")
    new = replay(
        window, hp.proposed_timeline(rates, p.changes), BillingSettings(), credit_price="0.001"
    )
    assert impact.total("credits_used", "before") == pytest.approx(base.kpis.credits_used)
    assert impact.total("credits_used", "after") == pytest.approx(new.kpis.credits_used)
    with team.store("hk_bob") as bob:
        bob.approve_proposal(p.id, p.content_hash)
    with team.store("hk_fin", read_only=True) as fin:
        change = p.changes[0]
        at = fin.rate_at(change.provider, change.model, change.type, start + timedelta(hours=1))
        assert at is not None and at.scheduled and at.proposal_id == p.id
        assert at.input_rate == change.value("after", "input_rate")
        timeline = fin.rate_timeline()
        assert timeline["scheduled"].sum() == len(p.changes)


@pytest.mark.soak
def test_two_apply_due_processes_apply_exactly_once_on_postgres(team: Team) -> None:
    p = _propose(team)
    with team.store("hk_bob") as bob:
        bob.approve_proposal(p.id, p.content_hash)
    outputs = two_apply_due_processes(team.url("hk_cron"))
    assert sum(f"proposal {p.id}: applied" in out for out in outputs) == 1
    with Store.open(team.owner_url) as owner:
        assert [e.event for e in owner.get_proposal(p.id).events].count("applied") == 1
        assert len([h for h in owner.history() if h.proposal_id == p.id]) == len(p.changes)


def test_set_role_does_not_turn_the_proposer_into_an_approver(team: Team) -> None:
    """``current_user`` follows ``SET ROLE``; the login (``session_user``) does not: the
    review found a proposer approving their own proposal as the group role."""
    _login_in_both_groups(team, "hk_eve")
    with team.store("hk_eve") as eve:
        own = hp.propose_bulk(eve, "30", "0.001", impact=False)
    with team.connect("hk_eve") as conn:
        conn.execute("SET ROLE hubkit_approver")
        with pytest.raises(pg_errors.InsufficientPrivilege, match="maker-checker"):
            _insert_event(conn, own.id, "approved", "x", own.content_hash)
    with team.store("hk_cron") as cron:
        assert cron.get_proposal(own.id).state is ProposalState.PROPOSED


def test_set_role_does_not_count_one_approver_twice(team: Team) -> None:
    with team.store("hk_alice") as alice:
        alice.set_required_approvals(2)
    p = _propose(team)
    with team.store("hk_bob") as bob:
        bob.approve_proposal(p.id, p.content_hash)
    with team.connect("hk_bob") as conn:
        conn.execute("SET ROLE hubkit_approver")
        _insert_event(conn, p.id, "approved", "x", p.content_hash)
    with team.store("hk_cron") as cron:
        q = cron.get_proposal(p.id)
        assert q.approvals == ("hk_bob",) and q.state is ProposalState.PROPOSED
        with pytest.raises(ConflictError):
            cron.apply_proposal(p.id)
    with team.connect("hk_cron") as conn:  # nor by hand: the server counts logins
        with pytest.raises(pg_errors.InsufficientPrivilege, match="1 of the 2 approvals"):
            _insert_event(conn, p.id, "applied", "x", p.content_hash)


@pytest.mark.soak
def test_a_reject_and_an_apply_in_flight_do_not_both_land(team: Team) -> None:
    """Every event waits for the apply's lock: a reject not yet committed holds it, so the
    apply waits, then sees the proposal closed and writes nothing."""
    p = _propose(team)
    with team.store("hk_bob") as bob:
        bob.approve_proposal(p.id, p.content_hash)
    carol = psycopg.connect(
        f"host={team.server.host} port={team.server.port} user=hk_carol dbname={team.database}"
    )  # a transaction left open
    carol.execute(
        "INSERT INTO rate_proposal_events (proposal_id, event, actor, reason, content_hash, at) "
        "VALUES (%s, 'rejected', 'x', 'no', %s, now())",
        (p.id, p.content_hash),
    )
    outcome: list[object] = []

    def apply() -> None:
        with team.store("hk_cron") as cron:
            try:
                outcome.append(cron.apply_proposal(p.id))
            except Exception as exc:  # noqa: BLE001 - what the apply raised is the result
                outcome.append(exc)

    worker = threading.Thread(target=apply)
    worker.start()
    worker.join(1.0)
    assert worker.is_alive() and not outcome  # waiting for the reject's transaction
    carol.commit()
    carol.close()
    worker.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError), outcome
    with team.store("hk_cron") as cron:
        events = [e.event for e in cron.get_proposal(p.id).events]
    assert "rejected" in events and "applied" not in events
