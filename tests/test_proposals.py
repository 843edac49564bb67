"""Rate proposals on a real SQLite store: states, maker ≠ checker (a convention here, held by
the store and the database's triggers), hashes, staleness, apply once, effective dates,
rollback, and the impact replay checked against two independent replays.

PostgreSQL, with real login roles and the server's own checks: tests/test_proposals_pg.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from _proposals import two_apply_due_processes, two_apply_due_threads
from _stores import add_provider, chat_spec, seed_rates, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

import hubkit.proposals as hp
from hubkit.billing_settings import BillingSettings
from hubkit.config import get_settings
from hubkit.errors import ConflictError, StaleVersionError, ValidationError
from hubkit.proposals import ProposalAction, ProposalState, ProposedChange
from hubkit.replay import Behaviour, replay, timeline_from_rates
from hubkit.store import Store
from hubkit.usage.synthetic import generate_usage


def _as(url: str, actor: str) -> Store:
    return Store.open(url, settings=dataclasses.replace(get_settings(), actor=actor))


@pytest.fixture
def url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def alice(url: str) -> Iterator[Store]:
    store = _as(url, "alice")
    seed_rates(store, 4, ["openai", "anthropic"])
    yield store
    store.close()


@pytest.fixture
def bob(url: str, alice: Store) -> Iterator[Store]:
    store = _as(url, "bob")
    yield store
    store.close()


def _bulk(store: Store, margin: str = "25", price: str = "0.001") -> hp.Proposal:
    return hp.propose_bulk(store, margin, price, reason="Q4 prices", impact=False)


def test_a_bulk_proposal_changes_nothing_until_approved_and_applied(
    alice: Store, bob: Store
) -> None:
    before = snapshot(alice)
    p = _bulk(alice)
    assert p.state is ProposalState.PROPOSED
    assert p.proposer == "alice" and p.source.value == "bulk"
    assert len(p.changes) == 8 and all(c.action is ProposalAction.UPDATE for c in p.changes)
    assert snapshot(alice) == before  # proposing writes no rate
    with pytest.raises(ConflictError, match="only an approved"):
        alice.apply_proposal(p.id)
    approved = bob.approve_proposal(p.id, p.content_hash, reason="looks right")
    assert approved.state is ProposalState.APPROVED and approved.approvals == ("bob",)
    result = hp.apply_due(alice)
    assert [r.proposal_id for r in result.applied] == [p.id]
    assert alice.get_proposal(p.id).state is ProposalState.APPLIED
    preview = alice.preview_bulk_update("25", "0.001")
    assert not preview.changed  # the store now holds exactly the proposed rates
    history = alice.history(limit=8)
    assert {h.proposal_id for h in history} == {p.id}
    assert {h.change_type for h in history} == {"bulk_update"}
    assert result.history_ids == tuple(sorted(h.id for h in history))


def test_the_proposer_cannot_approve_and_the_database_refuses_it_too(
    alice: Store, url: str
) -> None:
    p = _bulk(alice)
    with pytest.raises(ConflictError, match="another person must approve"):
        alice.approve_proposal(p.id, p.content_hash)
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.IntegrityError, match="cannot approve their own"):
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO rate_proposal_events (proposal_id, event, actor, content_hash, at)"
                    " VALUES (:id, 'approved', 'alice', :h, '2026-01-01 00:00:00')"
                ),
                {"id": p.id, "h": p.content_hash},
            )
    engine.dispose()
    assert alice.get_proposal(p.id).state is ProposalState.PROPOSED


def test_proposals_and_events_are_append_only_in_the_database(alice: Store, url: str) -> None:
    p = _bulk(alice)
    engine = sa.create_engine(url)
    for sql in (
        "UPDATE rate_proposals SET reason = 'x'",
        "DELETE FROM rate_proposals",
        "UPDATE rate_proposal_events SET actor = 'bob'",
        "DELETE FROM rate_proposal_events",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(sql))
    engine.dispose()
    assert alice.get_proposal(p.id).events[0].actor == "alice"


def test_a_wrong_or_tampered_hash_is_refused(alice: Store, bob: Store, url: str) -> None:
    p = _bulk(alice)
    with pytest.raises(ConflictError, match="does not match"):
        bob.approve_proposal(p.id, "0" * 64)
    # tamper with the stored changes behind the store's back (dropping the guard first)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER rate_proposals_no_update"))
        changes = alice.get_proposal(p.id).changes
        doctored = [c.to_json() for c in changes]
        doctored[0]["after"]["input_rate"] = "0.0000000001"
        conn.execute(
            sa.text("UPDATE rate_proposals SET changes = :c WHERE id = :id"),
            {"c": json.dumps(doctored), "id": p.id},
        )
    engine.dispose()
    tampered = alice.get_proposal(p.id)
    assert not tampered.intact and tampered.content_hash == p.content_hash
    with pytest.raises(ConflictError, match="altered"):
        bob.approve_proposal(p.id, p.content_hash)
    assert alice.get_proposal(p.id).state is ProposalState.PROPOSED


def test_a_stale_proposal_cannot_be_approved_or_applied(alice: Store, bob: Store) -> None:
    p = _bulk(alice)
    rate = alice.get_rate(p.changes[0].rate_id or 0)
    alice.update_rate(rate.id, rate.version, input_rate="0.0000031")
    assert alice.proposal_staleness(p.id)
    with pytest.raises(StaleVersionError, match="re-propose"):
        bob.approve_proposal(p.id, p.content_hash)


def test_a_proposal_gone_stale_after_approval_is_expired_not_applied(
    alice: Store, bob: Store
) -> None:
    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    rate = alice.get_rate(p.changes[1].rate_id or 0)
    alice.update_rate(rate.id, rate.version, output_rate="0.000011")
    before = snapshot(alice)
    with pytest.raises(StaleVersionError):
        alice.apply_proposal(p.id)
    report = hp.apply_due(alice)
    assert [i for i, _ in report.expired] == [p.id]
    assert snapshot(alice) == before
    assert alice.get_proposal(p.id).state is ProposalState.EXPIRED


def test_rejection_needs_a_reason_and_closes_the_proposal(alice: Store, bob: Store) -> None:
    p = _bulk(alice)
    with pytest.raises(ValidationError, match="why"):
        bob.reject_proposal(p.id, "  ")
    rejected = bob.reject_proposal(p.id, "margin too high for Q4")
    assert rejected.state is ProposalState.REJECTED
    assert rejected.events[-1].reason == "margin too high for Q4"
    with pytest.raises(ConflictError, match="only a proposed"):
        bob.approve_proposal(p.id, p.content_hash)


def test_required_approvals_is_an_operator_setting(alice: Store, bob: Store, url: str) -> None:
    alice.set_required_approvals(2)
    p = _bulk(alice)
    assert bob.approve_proposal(p.id, p.content_hash).state is ProposalState.PROPOSED
    with pytest.raises(ConflictError, match="already approved"):
        bob.approve_proposal(p.id, p.content_hash)
    carol = _as(url, "carol")
    assert carol.approve_proposal(p.id, p.content_hash).state is ProposalState.APPROVED
    carol.close()
    # 0: a single-user SQLite store, approved as soon as it is proposed
    alice.set_required_approvals(0)
    alone = hp.propose_edit(alice, alice.list_rates()[0].id, input_rate="0.000004", impact=False)
    assert alone.state is ProposalState.APPROVED
    with pytest.raises(ValidationError):
        alice.set_required_approvals(-1)


def test_a_scheduled_proposal_applies_only_when_due(alice: Store, bob: Store) -> None:
    when = datetime.now(UTC) + timedelta(days=3)
    p = hp.propose_bulk(alice, "25", "0.001", effective_at=when, impact=False)
    bob.approve_proposal(p.id, p.content_hash)
    before = snapshot(alice)
    assert hp.apply_due(alice).lines() == ["no proposal is due"]
    with pytest.raises(ConflictError, match="not due"):
        alice.apply_proposal(p.id)
    assert snapshot(alice) == before
    assert [s.id for s in alice.scheduled_changes()] == [p.id]
    report = hp.apply_due(alice, now=when + timedelta(seconds=1))
    assert [r.proposal_id for r in report.applied] == [p.id]
    assert hp.apply_due(alice, now=when + timedelta(seconds=2)).applied == ()


@pytest.mark.soak
def test_two_concurrent_apply_due_runs_apply_a_due_proposal_exactly_once(
    alice: Store, bob: Store, url: str
) -> None:
    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    reports = two_apply_due_threads([_as(url, "job1"), _as(url, "job2")], timeout=60)
    applied = [r for rep in reports for r in rep.applied]
    assert len(applied) == 1 and len(reports) == 2
    assert sum(len(rep.already_applied) for rep in reports) <= 1
    events = [e.event for e in alice.get_proposal(p.id).events]
    assert events.count("applied") == 1
    assert len([h for h in alice.history() if h.proposal_id == p.id]) == len(p.changes)


def test_a_revert_is_a_proposal_that_restores_the_rates_as_a_unit(alice: Store, bob: Store) -> None:
    before = [(r.id, r.input_rate, r.output_rate) for r in alice.list_rates()]
    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    alice.apply_proposal(p.id)
    revert = hp.propose_revert(alice, p.id, impact=False)
    assert revert.source.value == "revert" and revert.reverts == p.id
    bob.approve_proposal(revert.id, revert.content_hash)
    alice.apply_proposal(revert.id)
    assert [(r.id, r.input_rate, r.output_rate) for r in alice.list_rates()] == before
    still_open = _bulk(alice)
    with pytest.raises(ConflictError, match="only an applied"):
        hp.propose_revert(alice, still_open.id)


def test_a_revert_is_refused_when_a_rate_moved_since(alice: Store, bob: Store) -> None:
    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    alice.apply_proposal(p.id)
    rate = alice.get_rate(p.changes[0].rate_id or 0)
    alice.update_rate(rate.id, rate.version, input_rate="0.000009")
    with pytest.raises(ConflictError, match="changed again"):
        hp.propose_revert(alice, p.id)


def test_creates_and_deletes_apply_and_revert(alice: Store, bob: Store) -> None:
    add_provider(alice, "deepseek")
    batch = hp.propose_batch_create(
        alice, chat_spec("openai", "new-model", unit_costs={"input": "1e-8", "output": "2e-8"}),
        ["openai", "deepseek"], reason="launch", impact=False,
    )  # fmt: skip
    victim = alice.list_rates()[0]
    delete = hp.propose_delete(alice, victim.id, reason="retired", impact=False)
    for p in (batch, delete):
        bob.approve_proposal(p.id, p.content_hash)
    report = hp.apply_due(alice)
    assert sorted(r.proposal_id for r in report.applied) == [batch.id, delete.id]
    keys = {(r.provider, r.model) for r in alice.list_rates()}
    assert {("openai", "new-model"), ("deepseek", "new-model")} <= keys
    assert (victim.provider, victim.model) not in keys
    for p in (batch, delete):
        undo = hp.propose_revert(alice, p.id, impact=False)
        bob.approve_proposal(undo.id, undo.content_hash)
        alice.apply_proposal(undo.id)
    keys = {(r.provider, r.model) for r in alice.list_rates()}
    assert ("openai", "new-model") not in keys and (victim.provider, victim.model) in keys


def test_a_csv_of_new_rates_updates_and_creates(alice: Store, tmp_path: Path) -> None:
    rate = alice.list_rates()[0]
    path = tmp_path / "rates.csv"
    path.write_text(
        "provider,model,type,input_rate,output_rate\n"
        f"{rate.provider},{rate.model},{rate.type.value},0.000005,\n"
        "openai,brand-new,chatCompletion,0.000001,0.000002\n"
    )
    p = hp.propose_csv(alice, path, reason="new list", impact=False)
    by_action = {c.action: c for c in p.changes}
    assert by_action[ProposalAction.UPDATE].value("after", "input_rate") == Decimal("0.000005")
    assert by_action[ProposalAction.UPDATE].value("after", "output_rate") == rate.output_rate
    assert by_action[ProposalAction.CREATE].model == "brand-new"
    bad = tmp_path / "bad.csv"
    bad.write_text("provider,model,type,input_rate\nopenai,x,chatCompletion,abc\n")
    with pytest.raises(ValidationError, match="line 2"):
        hp.propose_csv(alice, bad)


def test_superseding_closes_the_older_proposal(alice: Store) -> None:
    old = _bulk(alice, "25")
    new = hp.propose(
        alice, hp.bulk_changes(alice, alice.preview_bulk_update("30", "0.001")), source="bulk",
        supersedes=old.id, impact=False,
    )  # fmt: skip
    assert alice.get_proposal(old.id).state is ProposalState.SUPERSEDED
    assert new.supersedes == old.id and new.state is ProposalState.PROPOSED


def test_an_empty_or_duplicate_proposal_is_refused(alice: Store) -> None:
    with pytest.raises(ValidationError, match="changes nothing"):
        alice.create_proposal([], source="edit")
    change = hp.edit_change(alice, alice.list_rates()[0].id, input_rate="0.000007")
    with pytest.raises(ValidationError, match="at most once"):
        alice.create_proposal([change, change], source="edit")


# -- the hash -----------------------------------------------------------------------------
_DECIMALS = st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal(1000), places=10)


@settings(max_examples=60, deadline=None)
@given(a=_DECIMALS, b=_DECIMALS, pad=st.integers(0, 6))
def test_the_hash_is_of_the_values_not_their_spelling(a: Decimal, b: Decimal, pad: int) -> None:
    def change(x: Decimal, spelled: str) -> ProposedChange:
        after = {"model": "m", "type": "chatCompletion", "input_rate": spelled,
                 "output_rate": "1", "model_display": "M"}  # fmt: skip
        return ProposedChange("create", "openai", "m", "chatCompletion", after=after)

    plain_a = format(a.normalize(), "f")
    padded = format(a, "f") + "0" * pad
    h1 = hp.content_hash([change(a, plain_a)], None, "edit")
    assert h1 == hp.content_hash([change(a, padded)], None, "edit")
    if a != b:
        assert h1 != hp.content_hash([change(b, format(b, "f"))], None, "edit")
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert h1 != hp.content_hash([change(a, plain_a)], later, "edit")
    assert h1 != hp.content_hash([change(a, plain_a)], None, "csv")


# -- impact ---------------------------------------------------------------------------------
def _usage(store: Store, n: int = 30_000) -> pd.DataFrame:
    return generate_usage(store.list_rates(), n_calls=n, n_users=300, start="2026-10-01", seed=3)


@pytest.mark.parametrize("billing", [False, True])
def test_impact_equals_two_independent_replays(alice: Store, billing: bool) -> None:
    settings_ = BillingSettings(
        credit_based_billing_enabled=billing,
        new_user_credit_grant_enabled=billing,
        new_user_credit_grant_amount=Decimal(50),
    )
    behaviour = Behaviour(buy_probability=0.4, pack_amount=Decimal(5))
    usage = _usage(alice)
    rates = alice.list_rates()
    changes = hp.bulk_changes(alice, alice.preview_bulk_update("40", "0.001"))
    window = hp.usage_window(alice, usage=usage)
    impact = hp.compute_impact(
        rates, changes, window, settings=settings_, credit_price="0.001", behaviour=behaviour
    )
    assert impact.data["engine"] == "shared preparation"
    base = replay(usage, timeline_from_rates(rates), settings_, credit_price="0.001",
                  behaviour=behaviour)  # fmt: skip
    new = replay(usage, hp.proposed_timeline(rates, changes), settings_, credit_price="0.001",
                 behaviour=behaviour)  # fmt: skip
    for side, result in (("before", base), ("after", new)):
        k = result.kpis
        assert impact.total("revenue", side) == pytest.approx(k.revenue, rel=1e-12, abs=1e-12)
        assert impact.total("provider_cost", side) == pytest.approx(k.provider_cost, rel=1e-12)
        assert impact.total("credits_used", side) == pytest.approx(k.credits_used, rel=1e-12)
        assert impact.total("calls_refused", side) == k.calls_refused
        assert impact.total("gross_margin", side) == pytest.approx(k.gross_margin, abs=1e-9)
    assert impact.total("list_revenue") == pytest.approx(
        (new.kpis.credits_used - base.kpis.credits_used) * 0.001, rel=1e-9
    )
    was = set(base.users.loc[base.users["calls_refused"] > 0, "user"])
    now = set(new.users.loc[new.users["calls_refused"] > 0, "user"])
    assert impact.users_newly_blocked == len(now - was)
    assert impact.users_unblocked == len(was - now)
    if billing:
        assert impact.users_newly_blocked > 0  # dearer prices exhaust grants sooner
    models = impact.models_frame().set_index(["provider", "model", "type"])
    for row in new.models.itertuples():
        got = models.loc[(row.provider, row.model, row.type)]
        assert got["credits_used_after"] == pytest.approx(row.credits, rel=1e-12)
        assert got["provider_cost_after"] == pytest.approx(row.provider_cost, rel=1e-12)


def test_impact_with_creates_and_deletes_equals_two_replays(alice: Store) -> None:
    usage = _usage(alice, 5_000)
    rates = alice.list_rates()
    gone = rates[0]
    changes = [
        hp.delete_change(alice, gone.id),
        *hp.batch_create_changes(chat_spec("openai", "model-new"), ["openai"]),
    ]
    impact = hp.compute_impact(rates, changes, hp.usage_window(alice, usage=usage))
    assert impact.data["engine"] == "two preparations"
    new = replay(usage, hp.proposed_timeline(rates, changes), BillingSettings())
    assert impact.total("calls_served", "after") == new.kpis.calls_served
    assert impact.total("credits_used", "after") == pytest.approx(new.kpis.credits_used)
    assert impact.total("calls_served", "after") < impact.total("calls_served", "before")


def test_the_impact_is_stored_with_the_proposal_and_its_window(alice: Store) -> None:
    p = hp.propose_bulk(alice, "25", "0.001")
    impact = hp.Impact.from_json(alice.get_proposal(p.id).impact)
    assert impact is not None and impact.synthetic  # nothing imported: labelled so
    assert "SYNTHETIC" in impact.window["label"]
    assert p.usage_fingerprint == impact.fingerprint and len(impact.fingerprint) == 64
    assert set(impact.totals_frame()["metric"]) >= {"revenue", "provider_cost", "gross_margin"}


def test_the_impact_window_is_the_last_30_days_of_imported_usage(alice: Store) -> None:
    from hubkit.usage.sql import load_usage

    usage = generate_usage(alice.list_rates(), n_calls=2_000, start="2026-09-01", days=60)
    load_usage(alice.engine, usage)
    window = hp.usage_window(alice)
    assert window.kind == "store"
    last = usage["time"].max()
    expected = usage[usage["time"] >= last - pd.Timedelta(days=30)]
    assert len(window.usage) == len(expected) and 0 < len(expected) < len(usage)
    assert window.fingerprint == hp.usage_window(alice).fingerprint


def test_below_cost_rates_are_listed(alice: Store) -> None:
    rate = next(r for r in alice.list_rates() if r.unit_costs)
    assert rate.unit_costs is not None
    change = hp.edit_change(alice, rate.id, input_rate=rate.unit_costs.input / 2)
    impact = hp.compute_impact(
        alice.list_rates(), [change], hp.usage_window(alice, usage=_usage(alice, 500))
    )
    below = impact.below_cost_frame()
    assert list(below[["model", "side", "changed"]].itertuples(index=False, name=None)) == [
        (rate.model, "input", True)
    ]


# -- effective dates: rate_at and the replay timeline know scheduled changes ----------------
def test_rate_at_and_the_timeline_know_an_approved_scheduled_change(
    alice: Store, bob: Store
) -> None:
    rate = alice.find_rate("openai", "model-00000", "chatCompletion")
    start = datetime.now(UTC) + timedelta(days=20)
    p = hp.propose_edit(
        alice, rate.id, input_rate="0.000007", effective_at=start, reason="next month",
        impact=False,
    )  # fmt: skip
    key = ("openai", "model-00000", "chatCompletion")
    # proposed only: not scheduled yet
    assert alice.rate_at(*key, start + timedelta(days=1)).input_rate == rate.input_rate  # type: ignore[union-attr]
    bob.approve_proposal(p.id, p.content_hash)
    today = alice.rate_at(*key, datetime.now(UTC))
    assert today is not None and not today.scheduled and today.input_rate == rate.input_rate
    later = alice.rate_at(*key, start + timedelta(days=1))
    assert later is not None and later.scheduled and later.proposal_id == p.id
    assert later.input_rate == Decimal("0.000007") and later.since == start
    unflagged = alice.rate_at(*key, start + timedelta(days=1), scheduled=False)
    assert unflagged is not None and unflagged.input_rate == rate.input_rate

    timeline = alice.rate_timeline()
    rows = timeline[timeline["model"] == "model-00000"]
    rows = rows[rows["provider"] == "openai"].reset_index(drop=True)
    assert list(rows["scheduled"]) == [False, True]
    assert rows.loc[0, "valid_to"] == pd.Timestamp(start)
    assert rows.loc[1, "valid_from"] == pd.Timestamp(start) and rows.loc[1, "proposal_id"] == p.id
    # finance: this month's usage, shifted into next month, priced at next month's rates
    usage = generate_usage([rate], n_calls=500, start=start + timedelta(days=1), days=5, seed=1)
    scheduled = replay(usage, timeline, BillingSettings())
    today_prices = replay(usage, alice.rate_timeline(scheduled=False), BillingSettings())
    assert scheduled.kpis.credits_used > today_prices.kpis.credits_used
    # once applied, it is history, not a scheduled change
    hp.apply_due(alice, now=start + timedelta(seconds=1))
    assert not alice.rate_timeline()["scheduled"].any()


def test_a_catalog_sync_plan_becomes_a_proposal_with_its_source(alice: Store, bob: Store) -> None:
    from hubkit.catalog import load_catalog, shipped_catalog_path
    from hubkit.jobs.catalog_sync import plan_sync
    from hubkit.jobs.params import CatalogSyncParams

    catalog = load_catalog(shipped_catalog_path(), providers="openai,anthropic")
    params = CatalogSyncParams.create(create_missing=True, rederive_rates=True, profit_margin=20)
    plan = plan_sync(
        alice.list_rates(), catalog, params, providers_in_store={"openai", "anthropic"},
        margin=Decimal(20), credit_price=Decimal(1),
    )  # fmt: skip
    assert plan.changes
    p = hp.propose_catalog_sync(
        alice, plan.changes, catalog_source=str(catalog.source), catalog_version="sample-1",
        versions=dict(plan.versions), reason="catalog refresh", impact=False,
    )  # fmt: skip
    assert p.source.value == "catalog" and p.catalog_version == "sample-1"
    assert p.catalog_source and p.catalog_source.endswith(".json")
    assert len(p.changes) == len(plan.changes)
    creates = [c for c in p.changes if c.action is ProposalAction.CREATE]
    assert creates and all(c.value("after", "unit_cost_input") is not None for c in creates)
    bob.approve_proposal(p.id, p.content_hash)
    result = alice.apply_proposal(p.id)
    assert result.created == len(creates)
    history = [h for h in alice.history() if h.proposal_id == p.id]
    assert {h.change_type for h in history} <= {"create", "catalog_import", "manual_update"}
    # the catalog's source and version are part of what was signed
    other = hp.content_hash(p.changes, None, "catalog", p.catalog_source, "sample-2")
    assert other != p.content_hash


def test_a_draft_is_invisible_to_approvers_until_submitted(alice: Store, bob: Store) -> None:
    changes = hp.bulk_changes(alice, alice.preview_bulk_update("25", "0.001"))
    draft = hp.propose(alice, changes, source="bulk", impact=False, draft=True)
    assert draft.state is ProposalState.DRAFT
    with pytest.raises(ConflictError, match="only a proposed"):
        bob.approve_proposal(draft.id, draft.content_hash)
    assert alice.submit_proposal(draft.id).state is ProposalState.PROPOSED
    assert bob.approve_proposal(draft.id, draft.content_hash).state is ProposalState.APPROVED


@pytest.mark.soak
def test_two_apply_due_processes_apply_exactly_once(alice: Store, bob: Store, url: str) -> None:
    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    outputs = two_apply_due_processes(url)
    assert sum(f"proposal {p.id}: applied" in out for out in outputs) == 1
    assert [e.event for e in alice.get_proposal(p.id).events].count("applied") == 1
    assert len([h for h in alice.history() if h.proposal_id == p.id]) == len(p.changes)


# -- the migration ----------------------------------------------------------------------------
def test_migration_0004_upgrades_a_store_with_history_and_downgrades_cleanly(db_url: str) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from hubkit.store import engine as engine_module
    from hubkit.store.engine import make_engine, migrate
    from hubkit.store.schema import Base

    engine = make_engine(db_url)
    try:
        migrate(engine, "0003")
        assert "rate_proposals" not in sa.inspect(engine).get_table_names()
        migrate(engine)  # to head, over a store at 0003
        with Store.open(db_url) as store:
            seed_rates(store, 1, ["openai"])
            assert store.history()[0].proposal_id is None
            store.create_proposal(
                hp.bulk_changes(store, store.preview_bulk_update("25", "0.001")), source="bulk"
            )
        with engine.connect() as conn:
            assert list(compare_metadata(MigrationContext.configure(conn), Base.metadata)) == []
        cfg = Config()
        cfg.set_main_option(
            "script_location", str(Path(engine_module.__file__).parent / "migrations")
        )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        assert not {"rate_proposals", "rate_proposal_events"} & set(
            sa.inspect(engine).get_table_names()
        )
        columns = {c["name"] for c in sa.inspect(engine).get_columns("rate_history")}
        assert "proposal_id" not in columns
        migrate(engine)
        assert "rate_proposals" in set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert list(compare_metadata(MigrationContext.configure(conn), Base.metadata)) == []
    finally:
        engine.dispose()


# -- the rules under any sequence of actions ----------------------------------------------------
_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["approve", "approve_wrong_hash", "reject", "apply", "edit_rate"]),
        st.sampled_from(["alice", "bob", "carol"]),
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(actions=_ACTIONS, required=st.integers(1, 2))
def test_no_sequence_of_actions_breaks_the_rules(
    tmp_path_factory: pytest.TempPathFactory, actions: list[tuple[str, str]], required: int
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'hubkit.db'}"
    stores = {name: _as(url, name) for name in ("alice", "bob", "carol")}
    try:
        alice = stores["alice"]
        seed_rates(alice, 2, ["openai"])
        alice.set_required_approvals(required)
        p = _bulk(alice)
        original = snapshot(alice)
        for action, who in actions:
            store = stores[who]
            try:
                if action == "approve":
                    store.approve_proposal(p.id, p.content_hash)
                elif action == "approve_wrong_hash":
                    store.approve_proposal(p.id, "0" * 64)
                elif action == "reject":
                    store.reject_proposal(p.id, f"{who} says no")
                elif action == "apply":
                    store.apply_proposal(p.id)
                else:
                    rate = store.get_rate(p.changes[0].rate_id or 0)
                    store.update_rate(rate.id, rate.version, input_rate=rate.input_rate * 2)
            except (ConflictError, ValidationError):
                pass
            now = alice.get_proposal(p.id)
            events = [e.event for e in now.events]
            approvers = [e.actor for e in now.events if e.event == "approved"]
            # maker ≠ checker; each approver once; every event signs the proposal's hash
            assert "alice" not in approvers and len(approvers) == len(set(approvers))
            assert {e.content_hash for e in now.events} == {p.content_hash}
            # applied at most once, only with the approvals, never after a rejection
            assert events.count("applied") <= 1
            if "applied" in events:
                at = events.index("applied")
                assert len(set(approvers[: events[:at].count("approved")])) >= required
                assert "rejected" not in events[:at]
                assert now.state is ProposalState.APPLIED
            elif snapshot(alice) != original:
                # the rates moved only through direct edits, never through the proposal
                assert all(h.proposal_id is None for h in alice.history())
            # a closed proposal takes no further event
            closing = [i for i, e in enumerate(events) if e in ("applied", "rejected", "expired")]
            assert not closing or closing[0] == len(events) - 1
    finally:
        for store in stores.values():
            store.close()


def test_an_effective_time_in_the_past_is_refused(alice: Store) -> None:
    with pytest.raises(ValidationError, match="in the past"):
        hp.propose_bulk(alice, "25", "0.001", effective_at=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError, match="timezone-aware"):
        hp.propose_bulk(alice, "25", "0.001", effective_at=datetime(2030, 1, 1), impact=False)


def test_a_batch_create_into_an_empty_store_has_an_impact(url: str) -> None:
    store = _as(url, "alice")
    try:
        add_provider(store, "openai")
        p = hp.propose_batch_create(store, chat_spec("openai", "first-model"), ["openai"])
        impact = hp.Impact.from_json(p.impact)
        assert impact is not None and impact.synthetic
        assert impact.total("calls_served", "before") == 0  # no rate: every call refused
        assert impact.total("calls_served", "after") == impact.window["calls"] > 0
        from hubkit.usage.schema import empty_usage

        empty = hp.compute_impact([], [], hp.UsageWindow(empty_usage(), "given", "nothing"))
        assert empty.total("calls") == 0 and empty.models_frame().empty
    finally:
        store.close()


def test_a_delete_on_synthetic_usage_shows_the_calls_it_loses(alice: Store) -> None:
    """Synthetic usage drew only from the rates after the change: a deleted model had no
    calls in the window, and deleting it showed no loss at all."""
    gone = alice.list_rates()[0]
    p = hp.propose_delete(alice, gone.id, reason="retire")
    impact = hp.Impact.from_json(p.impact)
    assert impact is not None and impact.synthetic
    lost = impact.total("calls_served", "before") - impact.total("calls_served", "after")
    assert lost > 0  # the deleted model's calls are in the window, refused after the change
    assert impact.total("revenue", "after") <= impact.total("revenue", "before")


def test_insert_or_replace_cannot_swap_an_approved_proposal(
    alice: Store, bob: Store, url: str
) -> None:
    """SQLite's REPLACE deletes the old row without firing DELETE triggers: the review
    swapped an approved proposal's rates (hash recomputed) and apply_due wrote them."""
    import sqlite3

    from hubkit.store.proposals import content_hash

    p = _bulk(alice)
    bob.approve_proposal(p.id, p.content_hash)
    con = sqlite3.connect(sa.make_url(url).database or "")
    con.row_factory = sqlite3.Row
    try:
        for table in ("rate_proposals", "rate_proposal_events"):
            row = dict(con.execute(f"SELECT * FROM {table} ORDER BY id LIMIT 1").fetchone())
            if table == "rate_proposals":
                changes = json.loads(row["changes"])
                for change in changes:
                    change["after"]["input_rate"] = "7"
                row["changes"] = json.dumps(changes)
                row["content_hash"] = content_hash(
                    [ProposedChange.from_json(c) for c in changes], p.effective_at,
                    row["source"], row["catalog_source"], row["catalog_version"],
                )  # fmt: skip
            cols, marks = ", ".join(row), ", ".join("?" for _ in row)
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})",
                            list(row.values()))  # fmt: skip
    finally:
        con.close()
    assert alice.get_proposal(p.id).content_hash == p.content_hash


def test_the_migration_waits_on_the_lock_an_apply_takes() -> None:
    import importlib.util

    from hubkit.store.proposals import APPLY_LOCK_KEY

    path = Path(hp.__file__).parents[1] / "store/migrations/versions/0004_rate_proposals.py"
    spec = importlib.util.spec_from_file_location("m0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._APPLY_LOCK == APPLY_LOCK_KEY
