"""Hub plan/apply exit codes when nothing could be done (issue 16 B): 10, not 0."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _hubsync import add_provider, seed_store

from hubkit.cli import main
from hubkit.store import Store

if TYPE_CHECKING:
    from hub_fixtures import HubHandle

pytestmark = pytest.mark.hub_needs("disposable", "these tests need an empty hub")


@pytest.fixture
def run(
    hub: HubHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., tuple[int, str]]]:  # fmt: skip
    monkeypatch.setenv("HUBKIT_HUB_URL", hub.url)
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", hub.token)
    monkeypatch.setenv("HUBKIT_DATABASE_URL", f"sqlite:///{tmp_path / 'hubkit.db'}")

    def call(*argv: str) -> tuple[int, str]:
        code = main(["hub", *argv])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    yield call


@pytest.mark.hub_needs("fake_keys")
def test_an_apply_whose_every_item_is_skipped_exits_10(
    run: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    with Store.open() as store:
        seed_store(store)
    assert run("apply", "--yes")[0] == 0
    with Store.open() as store:
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        store.update_rate(rate.id, rate.version, input_rate="0.5", reason="raise")
    saved = tmp_path / "plan.json"
    code, _ = run("plan", "--json", str(saved))
    assert code == 0 and json.loads(saved.read_text())["counts"]["rate.update"] == 1
    with Store.open() as store:  # the rate moves again after the plan: its item is skipped
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        store.update_rate(rate.id, rate.version, input_rate="0.6", reason="again")
    code, out = run("apply", "--plan", str(saved), "--yes")
    assert code == 10, out
    assert "1 skipped" in out and "all 1 items were skipped" in out


def test_a_plan_of_only_manual_items_exits_10(run: Callable[..., tuple[int, str]]) -> None:
    with Store.open() as store:
        add_provider(store, "acme-ai", custom=True)  # the hub cannot create a custom provider
    code, out = run("plan")
    assert code == 10, out
    assert "needs manual action" in out
