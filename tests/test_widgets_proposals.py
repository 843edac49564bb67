"""Rate proposals in the workbench, headless: propose from 03 and 02, review in 06 (list,
filter, open, diff, impact, charts), approve as a second actor, reject with a reason, apply;
stale, tampered and same-actor proposals shown as clear messages; the read-only mode the
finance web app uses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from _stores import seed_rates, snapshot
from _widget_helpers import close_all_widgets
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.charts import impact_by_model, revenue_change_waterfall
from hubkit.config import get_settings
from hubkit.errors import ValidationError
from hubkit.proposals import ProposalState
from hubkit.store import Store
from hubkit.widgets import (
    BulkUpdateApp,
    BulkUpdateState,
    ProposalsApp,
    ProposalsState,
    RateEditorApp,
    RateEditorState,
    proposals_panel,
)
from hubkit.widgets._common import iter_widgets
from hubkit.widgets._propose import parse_effective_at


def _as(url: str, actor: str) -> Store:
    return Store.open(url, settings=dataclasses.replace(get_settings(), actor=actor))


@pytest.fixture
def alice(sqlite_url: str) -> Iterator[Store]:
    store = _as(sqlite_url, "alice")
    seed_rates(store, 3, ["openai", "anthropic"])
    yield store
    store.close()
    close_all_widgets()


@pytest.fixture
def bob(sqlite_url: str, alice: Store) -> Iterator[Store]:
    store = _as(sqlite_url, "bob")
    yield store
    store.close()


def _bulk_proposal(store: Store, margin: str = "25", reason: str = "Q4 prices", **kw: str) -> int:
    state = BulkUpdateState(store)
    assert state.set_margin(margin)
    assert state.propose(reason, **kw), state.message
    assert state.proposal is not None
    return state.proposal.id


# ---- propose from 03 --------------------------------------------------------------------------


def test_bulk_propose_stores_a_proposal_with_its_impact_and_writes_no_rate(alice: Store) -> None:
    before = snapshot(alice)
    state = BulkUpdateState(alice)
    state.set_filter(model_pattern="no-such-model*")
    assert state.propose_blocker("Q4") == "nothing to propose: no rate would change"
    state.set_filter(model_pattern="")
    state.set_margin("25", defer=True)
    assert "being made" in (state.propose_blocker("Q4") or "")  # only a preview on screen
    state.refresh()
    assert state.propose_blocker("") == "type a reason (the approver reads it)"
    assert not state.propose("  ")
    assert state.errors["reason"] and alice.list_proposals() == []
    assert state.propose("Q4 prices")
    p = alice.get_proposal(state.proposal.id)  # type: ignore[union-attr]
    assert p.state is ProposalState.PROPOSED and p.source.value == "bulk"
    assert p.proposer == "alice" and p.reason == "Q4 prices" and p.effective_at is None
    assert len(p.changes) == len(state.preview.changed)  # type: ignore[union-attr]
    assert p.impact is not None and p.metadata["profit_margin"] == "25"  # type: ignore[index]
    assert "proposal" in state.message.text and "another person" in state.message.text  # type: ignore[union-attr]
    assert snapshot(alice) == before  # nothing written to the rates


def test_bulk_propose_takes_a_future_effective_time_and_refuses_a_bad_one(alice: Store) -> None:
    state = BulkUpdateState(alice)
    state.set_margin("25")
    assert not state.propose("Q4", effective_at="next tuesday")
    assert "not a time" in state.errors["effective_at"]
    assert not state.propose("Q4", effective_at="2001-01-01 00:00")
    assert "not in the future" in state.errors["effective_at"]
    assert alice.list_proposals() == []
    assert state.propose("Q4", effective_at="2099-01-01 00:00")
    assert alice.get_proposal(state.proposal.id).effective_at == datetime(2099, 1, 1, tzinfo=UTC)  # type: ignore[union-attr]


def test_bulk_app_has_propose_beside_apply(alice: Store) -> None:
    app = BulkUpdateApp(alice)
    app._margin_text.value = "25"
    app.state.refresh()
    app._render()
    assert app._proposer.button.disabled and "type a reason" in app._proposer.why_not.value
    app._reason.value = "Q4"
    assert not app._proposer.button.disabled
    app._proposer.effective.value = "2099-06-01T12:00Z"
    app._on_propose(app._proposer.button)
    (p,) = alice.list_proposals()
    assert p.effective_at == datetime(2099, 6, 1, 12, tzinfo=UTC)
    assert app._reason.value == "" and "proposed: proposal" in app._message.value


def test_a_stale_bulk_preview_is_not_proposed(alice: Store) -> None:
    state = BulkUpdateState(alice)
    state.set_margin("25")
    rate = alice.list_rates()[0]
    alice.update_rate(rate.id, rate.version, input_rate="0.0000031")  # someone else, meanwhile
    assert not state.propose("Q4")
    assert state.stale and "Reload rates" in state.message.text  # type: ignore[union-attr]
    assert alice.list_proposals() == []


# ---- propose from 02 --------------------------------------------------------------------------


def test_rate_editor_proposes_an_edit_and_a_batch_create(alice: Store) -> None:
    before = snapshot(alice)
    state = RateEditorState(alice)
    rate = alice.list_rates()[0]
    state.select(rate.id)
    values = state.form_values()
    assert not state.propose_edit(**{**values, "input_rate": "0.00001"}, reason="")
    assert "reason" in state.errors
    assert not state.propose_edit(**values, reason="no change")
    assert "nothing to propose" in state.message.text  # type: ignore[union-attr]
    assert state.propose_edit(**{**values, "input_rate": "0.00001"}, reason="cheaper")
    (p,) = alice.list_proposals()
    assert p.source.value == "edit" and p.changes[0].rate_id == rate.id
    assert p.changes[0].value("after", "input_rate") == Decimal("0.00001")
    assert p.changes[0].base_version == rate.version

    assert not state.propose_batch_create(
        ["openai"], rate.model, rate.type.value, input_rate="1", output_rate="1", reason="dup"
    )
    assert "exists already" in state.message.text  # type: ignore[union-attr]
    assert state.propose_batch_create(
        ["openai", "anthropic"], "new-model", "chatCompletion", input_rate="0.000001",
        output_rate="0.000002", reason="launch", effective_at="2099-01-01",
    )  # fmt: skip
    batch = alice.list_proposals(source="batch")[0]
    assert [c.provider for c in batch.changes] == ["openai", "anthropic"]
    assert batch.effective_at == datetime(2099, 1, 1, tzinfo=UTC)
    assert snapshot(alice) == before


def test_rate_editor_refuses_to_propose_from_a_stale_form(alice: Store) -> None:
    state = RateEditorState(alice)
    rate = alice.list_rates()[0]
    state.select(rate.id)
    alice.update_rate(rate.id, rate.version, input_rate="0.0000031")
    assert not state.propose_edit(**{**state.form_values(), "output_rate": "1"}, reason="x")
    assert state.stale and alice.list_proposals() == []


def test_rate_editor_app_proposes_from_both_tabs(alice: Store) -> None:
    app = RateEditorApp(alice)
    rate = alice.list_rates()[1]
    app._pick.value = rate.id
    app._edit.texts["output_rate"].value = "0.00003"
    app._edit_reason.value = "dearer"
    app._e_propose.effective.value = "yesterday-ish"
    app._e_propose.button.click()
    assert "not a time" in app._e_propose.why_not.value and alice.list_proposals() == []
    app._e_propose.effective.value = ""
    app._e_propose.button.click()
    assert len(alice.list_proposals(source="edit")) == 1
    app._b_providers.value = ("openai",)
    app._b_model.value = "brand-new"
    app._batch.texts["input_rate"].value = "0.000001"
    app._batch.texts["output_rate"].value = "0.000001"
    app._b_reason.value = "launch"
    app._b_propose.button.click()
    assert len(alice.list_proposals(source="batch")) == 1


# ---- review in 06 -----------------------------------------------------------------------------


def test_list_filter_and_open_a_proposal(alice: Store, bob: Store) -> None:
    first = _bulk_proposal(alice)
    second = _bulk_proposal(alice, "40", reason="later")
    bob.reject_proposal(first, "too much")
    state = ProposalsState(bob)
    assert list(state.table()["id"]) == [second, first]
    assert state.summary() == "2 proposals shown (1 proposed, 1 rejected)"
    assert state.set_filter(state="open")
    assert list(state.table()["id"]) == [second]
    assert state.set_filter(state="rejected", source="bulk")
    assert list(state.table()["id"]) == [first]
    assert state.set_filter(state="all", source="csv") and state.table().empty
    assert not state.set_filter(state="nonsense")
    assert "unknown state" in state.message.text  # type: ignore[union-attr]

    state.set_filter(state="all", source="all")
    assert state.select(second)
    p = alice.get_proposal(second)
    changes = state.changes_table()
    assert len(changes) == len(p.changes)
    assert set(changes["action"]) == {"update"}
    assert all(v is None or v == v.quantize(Decimal("0.01")) for v in changes["input_change_pct"])
    totals = state.totals_table()
    assert list(totals.columns) == ["metric", "in force", "proposed", "change"]
    assert "list revenue (credits × credit price)" in set(totals["metric"])
    assert "proposal" in state.header() and "proposed by alice" in state.header()
    notices = [m.text for m in state.notices()]
    assert any("SYNTHETIC" in n for n in notices)  # no usage imported: labelled
    assert "usage window" in state.window_text()
    assert not state.select(9999) and state.selected is None
    assert "no rate proposal 9999" in state.message.text  # type: ignore[union-attr]


def test_charts_of_a_proposal_add_up(alice: Store, bob: Store) -> None:
    state = ProposalsState(bob)
    state.select(_bulk_proposal(alice))
    impact = state.impact
    assert impact is not None
    fig = state.waterfall()
    assert fig is not None
    bars = fig.data[0]  # horizontal: the names along y, the amounts along x
    assert bars.orientation == "h"
    assert bars.y[0] == "in force" and bars.y[-1] == "proposed"
    assert bars.x[0] == pytest.approx(impact.total("list_revenue", "before"))
    assert bars.x[-1] == pytest.approx(impact.total("list_revenue", "after"))
    assert bars.x[0] + sum(bars.x[1:-1]) == pytest.approx(bars.x[-1])
    per_model = state.bars()
    assert per_model is not None
    assert [t.name for t in per_model.data][0].startswith("list revenue")
    moved = int((impact.models_frame()["list_revenue_change"] != 0).sum())
    assert len(per_model.data[0].y) == min(moved, 12)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 10),
)
def test_the_waterfall_always_adds_up_whatever_is_folded_into_other(
    rows: list[tuple[float, float]], top: int
) -> None:
    frame = pd.DataFrame(
        {
            "provider": ["p"] * len(rows),
            "model": [f"m{i}" for i in range(len(rows))],
            "type": ["chatCompletion"] * len(rows),
            "list_revenue_before": [b for b, _ in rows],
            "list_revenue_change": [c for _, c in rows],
        }
    )
    frame["list_revenue_after"] = frame["list_revenue_before"] + frame["list_revenue_change"]
    trace = revenue_change_waterfall(frame, top=top).data[0]
    flipped = revenue_change_waterfall(frame, top=top, horizontal=True).data[0]
    assert (list(flipped.y), list(flipped.x)) == (list(trace.x), list(trace.y))
    moved = int((frame["list_revenue_change"] != 0).sum())
    assert len(trace.x) == 2 + min(moved, top) + (1 if moved > top else 0)
    assert len(set(trace.x)) == len(trace.x)  # plotly merges equal categories
    total = trace.y[0] + sum(trace.y[1:-1])
    assert total == pytest.approx(trace.y[-1], rel=1e-9, abs=1e-6)
    fig = impact_by_model(frame.assign(provider_cost_change=0.0, list_margin_change=0.0))
    assert len(fig.data[0].x) == min(moved, 20)


def test_charts_name_a_model_with_several_types_apart() -> None:
    frame = pd.DataFrame(
        {
            "provider": ["openai", "openai"], "model": ["gpt", "gpt"],
            "type": ["chatCompletion", "imageGeneration"],
            "list_revenue_before": [1.0, 2.0], "list_revenue_after": [2.0, 1.0],
            "list_revenue_change": [1.0, -1.0],
        }
    )  # fmt: skip
    x = list(revenue_change_waterfall(frame).data[0].x)
    assert x == ["in force", "openai/gpt (chatCompletion)", "openai/gpt (imageGeneration)",
                 "proposed"]  # fmt: skip
    with pytest.raises(ValidationError, match="needs column"):
        revenue_change_waterfall(frame.drop(columns="list_revenue_change"))


def test_the_proposer_cannot_approve_and_is_told_so(alice: Store) -> None:
    pid = _bulk_proposal(alice)
    state = ProposalsState(alice)
    state.select(pid)
    assert "another person must approve it" in (state.approve_blocker() or "")
    assert any("maker ≠ checker" in m.text for m in state.notices())
    assert not state.approve()
    assert alice.get_proposal(pid).state is ProposalState.PROPOSED
    # the store is the judge: a state that believes otherwise is refused by it, clearly
    state.actor = "mallory"
    assert state.approve_blocker() is None
    assert not state.approve()
    assert state.message.is_error and "SAME PERSON" in state.message.text  # type: ignore[union-attr]
    assert alice.get_proposal(pid).state is ProposalState.PROPOSED


def test_a_second_actor_approves_then_applies(alice: Store) -> None:
    before = snapshot(alice)
    pid = _bulk_proposal(alice)
    state = ProposalsState(alice)
    assert state.can_act_as and "convention, not a control" in state.identity_note()
    assert state.act_as("bob") and state.actor == "bob"
    state.select(pid)
    assert state.apply_blocker() == "it is proposed: only an approved one is applied"
    assert state.approve_blocker() is None
    assert state.approve("looks right")
    assert "approved proposal" in state.message.text and "due" in state.message.text  # type: ignore[union-attr]
    p = alice.get_proposal(pid)
    assert p.state is ProposalState.APPROVED and p.approvals == ("bob",)
    assert "only a proposed one" in (state.approve_blocker() or "")  # nothing more to approve
    assert snapshot(alice) == before  # approving writes no rate
    assert state.apply_blocker() is None
    assert state.apply_now()
    assert state.selected is not None and state.selected.state is ProposalState.APPLIED
    assert "history rows carrying the proposal id" in state.message.text  # type: ignore[union-attr]
    changed = {c.rate_id: c for c in p.changes}
    for rate in alice.list_rates():
        if rate.id in changed:
            assert rate.input_rate == changed[rate.id].value("after", "input_rate")
    history = alice.history(since=p.created_at)
    assert history and {h.proposal_id for h in history} == {pid}
    assert state.act_as("") and state.actor == "alice"  # back to the default actor
    # rollback: the applied proposal undone as a unit, itself a proposal to review
    assert state.revert_blocker(" ") == "type the reason for reverting it"
    applied = snapshot(alice)
    assert state.propose_revert("undo Q4")
    undo = state.selected
    assert undo is not None and undo.id != pid and undo.reverts == pid
    assert undo.source.value == "revert" and undo.state is ProposalState.PROPOSED
    assert {c.rate_id for c in undo.changes} == set(changed)
    assert "only an applied proposal" in (state.revert_blocker("again") or "")
    assert snapshot(alice) == applied  # proposing the revert wrote no rate


def test_a_scheduled_approval_waits_for_its_time(alice: Store, bob: Store) -> None:
    pid = _bulk_proposal(alice, effective_at="2099-01-01 00:00")
    state = ProposalsState(bob)
    state.select(pid)
    assert state.approve()
    assert "takes effect 2099-01-01 00:00 UTC" in state.message.text  # type: ignore[union-attr]
    assert "scheduled job applies it then" in (state.apply_blocker() or "")
    assert not state.apply_now()
    assert alice.get_proposal(pid).state is ProposalState.APPROVED


def test_reject_needs_a_reason(alice: Store, bob: Store) -> None:
    pid = _bulk_proposal(alice)
    state = ProposalsState(bob)
    state.select(pid)
    assert state.reject_blocker("  ") == "type the reason for rejecting it"
    assert not state.reject("")
    assert state.reject("margin too high")
    p = alice.get_proposal(pid)
    assert p.state is ProposalState.REJECTED
    assert p.events[-1].reason == "margin too high" and p.events[-1].actor == "bob"
    assert state.reject_blocker("again") == "it is rejected already"
    assert "only a proposed one" in (state.approve_blocker() or "")


def test_a_stale_proposal_is_shown_stale_and_cannot_be_approved(alice: Store, bob: Store) -> None:
    pid = _bulk_proposal(alice)
    state = ProposalsState(bob)
    state.select(pid)  # read before the rate moved: the store still refuses
    rate = alice.get_rate(alice.get_proposal(pid).changes[0].rate_id or 0)
    alice.update_rate(rate.id, rate.version, input_rate="0.0000031")
    assert not state.approve()
    assert state.message.is_error and state.message.text.startswith("not approved — STALE")  # type: ignore[union-attr]
    assert state.staleness  # re-read: the page now says why
    assert any(m.text.startswith("STALE") for m in state.notices())
    assert "stale" in (state.approve_blocker() or "")
    assert alice.get_proposal(pid).state is ProposalState.PROPOSED


def test_a_tampered_proposal_shows_a_hash_mismatch(
    alice: Store, bob: Store, sqlite_url: str
) -> None:
    pid = _bulk_proposal(alice)
    state = ProposalsState(bob)
    state.select(pid)  # what bob reviews
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # behind the store's back, its guard dropped first
        conn.execute(sa.text("DROP TRIGGER rate_proposals_no_update"))
        doctored = [c.to_json() for c in alice.get_proposal(pid).changes]
        doctored[0]["after"]["input_rate"] = "0.0000000001"
        conn.execute(
            sa.text("UPDATE rate_proposals SET changes = :c WHERE id = :id"),
            {"c": json.dumps(doctored), "id": pid},
        )
    engine.dispose()
    assert not state.approve()
    assert "HASH MISMATCH" in state.message.text  # type: ignore[union-attr]
    assert state.selected is not None and not state.selected.intact
    assert state.notices()[0].text.startswith("HASH MISMATCH")
    assert "tampered" in (state.approve_blocker() or "")
    assert state.reject_blocker("tampered") is None  # it can still be closed
    assert state.reject("tampered with")
    assert alice.get_proposal(pid).state is ProposalState.REJECTED


def test_the_app_drives_the_review_with_its_buttons(alice: Store) -> None:
    pid = _bulk_proposal(alice)
    app = ProposalsApp(alice)
    assert f"#{pid} proposed" in app._pick.options[1][0]
    app._pick.value = pid
    assert app._waterfall.figure_json() is not None and app._bars.figure_json() is not None
    assert len(app._changes.shown) == len(alice.get_proposal(pid).changes)
    assert app._approve.disabled and "another person" in app._approve_why.value
    assert app._reject.disabled and "type the reason" in app._reject_why.value
    app._actor.value = "bob"
    app._act.click()
    assert not app._approve.disabled
    app._approve.click()
    assert "approved proposal" in app._message.value
    assert not app._apply.disabled
    assert app._revert.layout.display == "none"  # nothing to revert yet
    app._apply.click()
    assert "applied proposal" in app._message.value
    assert "applied" in app._header.value
    assert alice.get_proposal(pid).state is ProposalState.APPLIED
    assert app._revert.layout.display == "" and app._revert.disabled
    app._reason.value = "undo it"
    assert not app._revert.disabled
    app._revert.click()
    assert f"proposed the revert of proposal {pid}" in app._message.value
    assert alice.list_proposals(source="revert")[0].reverts == pid


def test_read_only_mode_shows_everything_and_acts_on_nothing(
    alice: Store, bob: Store, sqlite_url: str
) -> None:
    pid = _bulk_proposal(alice)
    bob.approve_proposal(pid, alice.get_proposal(pid).content_hash)
    finance = Store.open(sqlite_url, read_only=True)
    try:
        state = ProposalsState(finance, read_only=True)
        assert not state.can_act_as and state.identity_note().startswith("read-only")
        state.select(pid)
        assert len(state.changes_table()) and not state.totals_table().empty
        assert state.waterfall() is not None
        for why in (state.approve_blocker(), state.reject_blocker("x"), state.apply_blocker()):
            assert why == "this page is read-only"
        assert not state.apply_now() and not state.act_as("bob")
        panel = proposals_panel(finance)  # drawn on demand: 04's first paint stays light
        assert (
            "1 rate proposal" in panel.children[0].value and "(1 open)" in panel.children[0].value
        )
        panel.children[1].click()
        (app,) = panel.children
        assert isinstance(app, ProposalsApp)
        shown = set(iter_widgets(app))
        assert not {app._approve, app._reject, app._apply, app._actor} & shown
        assert "read-only" in app._identity.value
        assert alice.get_proposal(pid).state is ProposalState.APPROVED
    finally:
        finance.close()
    assert "no rate proposals" in proposals_panel(None).value


def test_parse_effective_at() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_effective_at("", now=now) is None
    assert parse_effective_at("2030-02-01", now=now) == datetime(2030, 2, 1, tzinfo=UTC)
    assert parse_effective_at("2030-02-01T10:00+02:00", now=now) == datetime(
        2030, 2, 1, 8, tzinfo=UTC
    )
    for bad in ("soon", "2029-12-31 23:59", "2030-01-01"):
        with pytest.raises(ValidationError):
            parse_effective_at(bad, now=now)
    assert parse_effective_at("2030-01-01 00:01", now=now) == now + timedelta(minutes=1)


# ---- catalog sync (02) ------------------------------------------------------------------------


def test_catalog_sync_plans_then_proposes_or_applies(sqlite_url: str) -> None:
    from hubkit.widgets import CatalogSyncApp, seed_sample_data

    with _as(sqlite_url, "alice") as store:
        seed_sample_data(store)
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        costs = {"input": "0.000001", "output": "0.000002"}
        moved = store.update_rate(rate.id, rate.version, unit_costs=costs)
        app = CatalogSyncApp(store)
        assert app._apply.disabled and "plan the sync first" in app._why_not.value
        app._rederive.value = True
        app._plan.click()
        assert "1 rate to update" in app._summary.value
        assert list(app._table.shown["model"]) == ["gpt-4o"]
        assert "type a reason" in app._proposer.why_not.value
        app._reason.value = "catalog refresh"
        before = snapshot(store)
        app._proposer.button.click()
        (p,) = store.list_proposals()
        assert p.source.value == "catalog" and p.catalog_source and p.catalog_version
        assert p.catalog_version.startswith("sha256:")
        assert p.changes[0].rate_id == rate.id and p.changes[0].base_version == moved.version
        assert p.changes[0].value("after", "unit_cost_input") == rate.unit_costs.input
        assert snapshot(store) == before and "proposed: proposal" in app._message.value
        app._reason.value = "catalog refresh, now"
        app._apply.click()
        assert "applied in one transaction" in app._message.value
        assert store.get_rate(rate.id).unit_costs == rate.unit_costs
        assert "nothing to change" in app.state.propose_blocker("x")  # type: ignore[operator]
        # the proposal made before the apply is now stale: 06 says so
        review = ProposalsState(store)
        review.select(p.id)
        assert review.staleness and "stale" in (review.approve_blocker() or "")


def test_catalog_sync_holds_what_the_guardrails_refuse_but_lets_it_be_proposed(
    sqlite_url: str,
) -> None:
    from hubkit.widgets import CatalogSyncState, seed_sample_data

    with _as(sqlite_url, "alice") as store:
        seed_sample_data(store)
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        store.update_rate(rate.id, rate.version, input_rate="0.000000001",
                          unit_costs={"input": "0.0000001", "output": "0.0000001"})  # fmt: skip
        state = CatalogSyncState(store)
        assert state.set_options(rederive_rates=True)
        assert state.refused  # the re-derived rate moves by far more than 50 %
        assert "held by the guardrails" in (state.apply_blocker("x") or "")
        assert not state.apply("x") and store.list_proposals() == []
        assert state.propose_blocker("x") is None
        assert state.propose("let a second person judge")
        assert not state.set_options("/no/such/catalog.json")
        assert "no such file" in state.errors["catalog_path"]


def test_figures_read_as_counts_and_amounts(alice: Store, bob: Store) -> None:
    state = ProposalsState(bob)
    state.select(_bulk_proposal(alice))
    totals = state.totals_table().set_index("metric")
    assert totals.loc["calls", "in force"] == "20,000"  # a count: no decimals
    assert totals.loc["calls", "change"] == "+0"
    money = totals.loc["list revenue (credits × credit price)", "in force"]
    assert money.replace(",", "").replace(".", "").isdigit() and "." in money
    models = state.models_table()
    assert all("." not in v for v in models["calls_refused_before"])
