"""The review apps on the real PostgreSQL server, each person logged in as their own role.

The operator proposes from 03's state; the page names the database login and offers no
way to act as anyone else; the proposer's approval is refused (by the page first, by the
store and the server if the page is fooled); the approver approves; the approver's role
cannot apply (the server refuses, the page says so); the job role applies; finance reads
everything read-only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from _stores import seed_rates, snapshot

from hubkit.proposals import ProposalState
from hubkit.store import Store
from hubkit.store.roles import install_roles
from hubkit.widgets import BulkUpdateState, ProposalsState

pytestmark = pytest.mark.postgres

LOGINS = {
    "hkw_alice": "hubkit_operator",
    "hkw_bob": "hubkit_approver",
    "hkw_fin": "hubkit_finance",
    "hkw_cron": "hubkit_job",
}


@pytest.fixture
def url_of(pg_url: str) -> Iterator[object]:
    with Store.open(pg_url) as owner:  # the owner migrates and seeds
        seed_rates(owner, 3, ["openai", "anthropic"])
        install_roles(owner.engine, LOGINS)

    def url(login: str) -> str:
        return sa.make_url(pg_url).set(username=login).render_as_string(False)

    yield url


def test_review_by_database_logins(url_of) -> None:  # type: ignore[no-untyped-def]
    with Store.open(url_of("hkw_alice")) as alice:
        before = snapshot(alice)
        bulk = BulkUpdateState(alice)
        assert bulk.set_margin("25") and bulk.propose("Q4 prices")
        assert bulk.proposal is not None
        pid = bulk.proposal.id
        assert alice.get_proposal(pid).proposer == "hkw_alice"

        mine = ProposalsState(alice)
        assert not mine.can_act_as and not mine.act_as("hkw_bob")
        assert "database login 'hkw_alice'" in mine.identity_note()
        mine.select(pid)
        assert "another person must approve it" in (mine.approve_blocker() or "")
        mine.actor = "hkw_bob"  # a page fooled into thinking so: the store asks the server
        assert not mine.approve()
        assert "SAME PERSON" in mine.message.text  # type: ignore[union-attr]

    with Store.open(url_of("hkw_bob")) as bob:
        review = ProposalsState(bob)
        review.select(pid)
        assert review.approve_blocker() is None
        assert review.approve("checked the impact")
        assert bob.get_proposal(pid).approvals == ("hkw_bob",)
        assert not review.apply_now()  # an approver's role writes no rate: the server says no
        assert review.message.is_error and "permission denied" in review.message.text  # type: ignore[union-attr]
        assert bob.get_proposal(pid).state is ProposalState.APPROVED

    with Store.open(url_of("hkw_fin"), read_only=True) as fin:
        finance = ProposalsState(fin, read_only=True)
        finance.select(pid)
        assert len(finance.changes_table()) == len(finance.selected.changes)  # type: ignore[union-attr]
        assert finance.apply_blocker() == "this page is read-only"

    with Store.open(url_of("hkw_cron")) as cron:
        job = ProposalsState(cron)
        job.select(pid)
        assert job.apply_now(), job.message
        assert cron.get_proposal(pid).state is ProposalState.APPLIED
        assert snapshot(cron) != before
