"""``python -m hubkit proposals …`` on a real SQLite store: the review flow and its exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _stores import seed_rates

from hubkit.cli import main
from hubkit.proposals import ProposalState
from hubkit.store import Store


@pytest.fixture
def url(sqlite_url: str) -> str:
    with Store.open(sqlite_url) as store:
        seed_rates(store, 3, ["openai", "anthropic"])
    return sqlite_url


def _as(monkeypatch: pytest.MonkeyPatch, actor: str) -> None:
    monkeypatch.setenv("HUBKIT_ACTOR", actor)


def test_the_review_flow_from_the_command_line(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _as(monkeypatch, "alice")
    argv = ["--database-url", url, "proposals"]
    assert main([*argv, "create", "--bulk", "--margin", "25", "--credit-price", "0.001",
                 "--reason", "Q4 prices"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "proposal 1 (bulk, proposed): 6 update" in out
    assert "SYNTHETIC usage" in out and "list_revenue" in out  # the impact, labelled
    digest = re.search(r"content hash: ([0-9a-f]{64})", out)
    assert digest is not None
    assert main([*argv, "list", "--state", "proposed"]) == 0
    assert "Q4 prices" in capsys.readouterr().out
    assert main([*argv, "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert digest.group(1) in shown and "approvals: 0 of 1" in shown and "events:" in shown

    # the proposer cannot approve; a wrong hash is refused; bob approves
    assert main([*argv, "approve", "1", "--hash", digest.group(1)]) == 4
    assert "maker ≠ checker" in capsys.readouterr().err
    _as(monkeypatch, "bob")
    assert main([*argv, "approve", "1", "--hash", "0" * 64]) == 4
    assert main([*argv, "approve", "1", "--hash", digest.group(1)]) == 0
    assert "it is due" in capsys.readouterr().out
    assert main([*argv, "apply-due"]) == 0
    assert "proposal 1: applied (0 created, 6 updated, 0 deleted)" in capsys.readouterr().out
    assert main([*argv, "apply-due"]) == 0
    assert "no proposal is due" in capsys.readouterr().out
    with Store.open(url) as store:
        assert store.get_proposal(1).state is ProposalState.APPLIED
        assert {h.proposal_id for h in store.history(limit=6)} == {1}
    assert main(["--database-url", url, "history", "--limit", "1"]) == 0
    assert "proposal_id" in capsys.readouterr().out

    # a revert, rejected with a reason
    _as(monkeypatch, "alice")
    assert main([*argv, "create", "--revert", "1", "--no-impact"]) == 0
    capsys.readouterr()
    _as(monkeypatch, "bob")
    with pytest.raises(SystemExit) as info:  # argparse: --reason is required
        main([*argv, "reject", "2"])
    assert info.value.code == 2
    assert main([*argv, "reject", "2", "--reason", "keep the Q4 prices"]) == 0
    assert main([*argv, "show", "9"]) == 3


def test_a_csv_proposal_and_a_stale_one(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _as(monkeypatch, "alice")
    path = tmp_path / "rates.csv"
    path.write_text("provider,model,type,input_rate\nopenai,model-00000,chatCompletion,0.000004\n")
    argv = ["--database-url", url, "proposals"]
    assert main([*argv, "create", "--csv", str(path), "--no-impact"]) == 0
    digest = re.search(r"content hash: ([0-9a-f]{64})", capsys.readouterr().out)
    assert digest is not None
    with Store.open(url) as store:
        rate = store.find_rate("openai", "model-00000", "chatCompletion")
        store.update_rate(rate.id, rate.version, output_rate="0.00002")
    assert main([*argv, "show", "1"]) == 0
    assert "STALE (re-propose)" in capsys.readouterr().out
    _as(monkeypatch, "bob")
    assert main([*argv, "approve", "1", "--hash", digest.group(1)]) == 4
    assert "re-propose" in capsys.readouterr().err
    assert main([*argv, "create", "--csv", str(tmp_path / "missing.csv")]) == 2
    assert main(["--database-url", url, "db", "roles"]) == 2  # PostgreSQL only
    assert main([*argv, "require", "0"]) == 0
    assert "no second person" in capsys.readouterr().err


def test_an_unknown_state_or_source_is_bad_input(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", url, "proposals", "list", "--state", "pending"]) == 2
    assert "draft, proposed, approved" in capsys.readouterr().err
    assert main(["--database-url", url, "proposals", "list", "--source", "magic"]) == 2
