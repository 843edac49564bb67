"""The apply-due-proposals job notebook, really executed by papermill through the runner."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from _stores import seed_rates, snapshot

import hubkit.proposals as hp
from hubkit.config import get_settings
from hubkit.jobs import JobStatus, run_job
from hubkit.pricing import RateFilter
from hubkit.proposals import ProposalState
from hubkit.store import Store


def test_the_job_applies_what_is_due_once_and_reports_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)
    settings = get_settings()
    alice = Store.open(sqlite_url, settings=dataclasses.replace(settings, actor="alice"))
    bob = Store.open(sqlite_url, settings=dataclasses.replace(settings, actor="bob"))
    seed_rates(alice, 3, ["openai"])
    others = RateFilter.create(None, None, "model-0000[12]")  # not the rate edited below
    now_p = hp.propose_bulk(alice, "25", "0.001", others, reason="now", impact=False)
    later = datetime.now(UTC) + timedelta(days=10)
    rate = alice.find_rate("openai", "model-00000", "chatCompletion")
    later_p = hp.propose_edit(
        alice, rate.id, input_rate="0.000009", effective_at=later, reason="later", impact=False
    )
    for p in (now_p, later_p):
        bob.approve_proposal(p.id, p.content_hash)
    before = snapshot(alice)

    dry = run_job("apply-due-proposals", {"dry_run": True})
    assert dry.status is JobStatus.DRY_RUN, dry.reason
    assert dry.summary["counts"]["due"] == 1 and snapshot(alice) == before

    applied = run_job("apply-due-proposals", {})
    assert applied.status is JobStatus.APPLIED and applied.exit_code == 0, applied.reason
    assert applied.summary["counts"]["applied"] == 1
    rows = alice.history(job_run_id=applied.run_id)
    assert len(rows) == 2 and {h.proposal_id for h in rows} == {now_p.id}
    assert "changes.csv" in applied.summary["files"]
    assert alice.get_proposal(later_p.id).state is ProposalState.APPROVED  # not due yet

    again = run_job("apply-due-proposals", {})
    assert again.status is JobStatus.UNCHANGED and again.summary["counts"]["applied"] == 0

    when = (later + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = run_job("apply-due-proposals", {"now": when})
    assert scheduled.status is JobStatus.APPLIED, scheduled.reason
    assert str(alice.get_rate(rate.id).input_rate) == "0.000009"
    bad = run_job("apply-due-proposals", {"now": "next tuesday"})
    assert bad.exit_code == 2
    alice.close()
    bob.close()
