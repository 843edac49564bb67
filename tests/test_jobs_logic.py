"""The jobs' logic in-process (no papermill): outcomes, files, rows, index, prune, sync."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from _jobs import MODELS, seed, snapshot

from hubkit._files import new_run_folder
from hubkit.config import get_settings
from hubkit.errors import GuardrailError, StorageError
from hubkit.jobs import JobStatus, bulk_rate_update, price_catalog_sync, prune, rebuild_index
from hubkit.jobs.runs import get_run
from hubkit.store import Store

pytestmark = pytest.mark.store(seed=seed)


def test_dry_run_reports_everything_and_writes_no_rate(store: Store) -> None:
    before = snapshot(store)
    result = bulk_rate_update(store=store, profit_margin="25")
    assert result.status is JobStatus.DRY_RUN and result.exit_code == 0
    assert snapshot(store) == before
    folder = result.run_dir
    assert folder.parent == get_settings().reports_dir and folder.name == result.run_id
    assert folder.name.endswith("Z-bulk-rate-update")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "dry_run" and summary["job_run_id"] == result.run_id
    assert summary["parameters"]["profit_margin"] == "25"
    assert summary["counts"]["changed"] == 3 and summary["counts"]["skipped"] == 1
    assert summary["pricing"] == {
        "profit_margin_pct": "25", "credit_price": "0.001", "currency": "USD",
    }  # fmt: skip
    assert summary["duration_seconds"] >= 0 and summary["finished_at"].endswith("Z")
    with (folder / "changes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == {m[1] for m in MODELS}
    assert all(r["refused"] == "False" for r in rows)
    # plain decimals only, never 2.5e-06
    assert not re.search(r"\d[eE][-+]?\d", (folder / "changes.csv").read_text())
    assert (folder / "figures" / "change_pct.html").exists()
    skipped = (folder / "skipped.csv").read_text()
    assert "text-embedding-3-small" in skipped and "no unitCosts" in skipped
    assert get_run(store, result.run_id).status is JobStatus.DRY_RUN


def test_apply_then_the_same_run_again_changes_nothing(store: Store) -> None:
    applied = bulk_rate_update(store=store, profit_margin="25", dry_run=False, reason="Q3")
    assert applied.status is JobStatus.APPLIED
    assert applied.summary["counts"]["applied"] == 3
    history = store.history(job_run_id=applied.run_id)
    assert len(history) == 3 and {h.reason for h in history} == {"Q3"}
    gpt = store.find_rate("openai", "gpt-4o", "chatCompletion")
    assert gpt.input_rate == Decimal("0.003125")  # 0.0000025 × 1.25 / 0.001
    after = snapshot(store)
    again = bulk_rate_update(store=store, profit_margin="25", dry_run=False, reason="Q3")
    assert again.status is JobStatus.UNCHANGED and again.exit_code == 0
    assert again.reason.startswith("nothing to change")
    assert snapshot(store) == after
    assert store.history(job_run_id=again.run_id) == []


def test_a_guardrail_trip_writes_nothing_and_lists_every_refused_rate(store: Store) -> None:
    before = snapshot(store)
    result = bulk_rate_update(store=store, profit_margin="100", dry_run=False)
    assert result.status is JobStatus.GUARDRAIL and result.exit_code == 8
    assert snapshot(store) == before
    refused = result.summary["refused"]
    assert sorted(r["model"] for r in refused) == sorted(m[1] for m in MODELS)
    assert "beyond max_change_pct=50" in refused[0]["reasons"][0]
    assert set(result.changes["refused"]) == {True}
    assert len(result.refused_frame()) == 3
    with pytest.raises(GuardrailError) as info:
        result.raise_for_status()
    assert len(info.value.refused) == 3


def test_the_filter_limits_what_changes(store: Store) -> None:
    result = bulk_rate_update(store=store, profit_margin="25", dry_run=False, providers="anthropic")
    assert result.summary["counts"]["applied"] == 1
    assert result.summary["warnings"] == []
    gpt = store.find_rate("openai", "gpt-4o", "chatCompletion")
    assert gpt.version == 1


def test_an_unknown_provider_in_the_filter_is_invalid(store: Store) -> None:
    # "poe" matched nothing and the run "applied" the rest with exit 0: a typo went unseen
    before = snapshot(store)
    result = bulk_rate_update(
        store=store, profit_margin="25", dry_run=False, providers="anthropic,poe"
    )
    assert result.status is JobStatus.INVALID and result.exit_code == 2
    assert "poe" in result.reason and "the store has: anthropic, openai" in result.reason
    assert snapshot(store) == before
    synced = price_catalog_sync(store=store, providers="opneai")
    assert synced.status is JobStatus.INVALID and "opneai" in synced.reason


def test_a_filter_matching_no_rate_exits_10(store: Store) -> None:
    result = bulk_rate_update(store=store, profit_margin="25", model_pattern="no-such-*")
    assert result.status is JobStatus.NOTHING_MATCHED and result.exit_code == 10
    assert "matches no rate" in result.reason
    assert get_run(store, result.run_id).status is JobStatus.NOTHING_MATCHED


def test_a_failure_half_way_rolls_everything_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(store)
    monkeypatch.setenv("HUBKIT_TEST_FAIL_AFTER_ROWS", "1")
    with pytest.raises(StorageError, match="injected failure"):
        bulk_rate_update(store=store, profit_margin="25", dry_run=False)
    assert snapshot(store) == before
    folder = max(get_settings().reports_dir.glob("*-bulk-rate-update"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == 1
    assert "injected failure" in summary["reason"]
    assert "nothing of this run was committed" in summary["reason"]
    assert get_run(store, summary["run_id"]).status is JobStatus.FAILED
    # the lock was given back: the next run goes through
    monkeypatch.delenv("HUBKIT_TEST_FAIL_AFTER_ROWS")
    assert bulk_rate_update(store=store, profit_margin="25").status is JobStatus.DRY_RUN


def test_a_held_lock_is_a_reported_ending(store: Store) -> None:
    from hubkit.jobs import Lease

    Lease(store, run_id="other").acquire()
    result = bulk_rate_update(store=store, profit_margin="25", dry_run=False)
    assert result.status is JobStatus.LOCK_HELD and result.exit_code == 75
    assert result.reason.startswith("another run holds the lock since")
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "lock_held"


# ---- reports folder -----------------------------------------------------------------------
def test_runs_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = new_run_folder(tmp_path, "bulk-rate-update", at)
    b = new_run_folder(tmp_path, "bulk-rate-update", at)
    assert (a.name, b.name) == (
        "20250102T030405Z-bulk-rate-update",
        "20250102T030405Z-bulk-rate-update-2",
    )


def test_index_lists_runs_newest_first_and_prune_keeps_the_newest(store: Store) -> None:
    runs = [bulk_rate_update(store=store, profit_margin=m).run_id for m in ("21", "22", "23")]
    reports_dir = get_settings().reports_dir
    (reports_dir / "README.md").write_text("not a run\n")
    with (reports_dir / "runs.csv").open() as fh:
        listed = [r["run_id"] for r in csv.DictReader(fh)]
    assert listed == sorted(runs, reverse=True)
    index = (reports_dir / "index.html").read_text()
    assert all(f'href="{r}/summary.json"' in index for r in runs)
    removed = prune(reports_dir, keep=1).removed
    assert sorted(p.name for p in removed) == sorted(runs)[:2]
    assert (reports_dir / "README.md").exists()
    with (reports_dir / "runs.csv").open() as fh:
        assert [r["run_id"] for r in csv.DictReader(fh)] == [max(runs)]
    assert rebuild_index(reports_dir)[0].exists()


# ---- price catalog sync -------------------------------------------------------------------
def _catalog(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    path = tmp_path / "prices.csv"
    lines = ["provider,model,type,input_cost,output_cost"]
    lines += [f"{p},{m},chatCompletion,{i},{o}" for p, m, i, o in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sync_refreshes_costs_and_records_drift_with_the_run_id(
    store: Store, tmp_path: Path
) -> None:
    path = _catalog(
        tmp_path,
        [
            ("openai", "gpt-4o", "0.0000025", "0.00001"),  # unchanged
            ("openai", "gpt-4o-mini", "0.000000155", "0.0000006"),  # +3.3 %: below threshold
            ("anthropic", "claude-3-haiku", "0.0000002", "0.000001"),  # −20 %: drift
            ("anthropic", "claude-9", "0.000001", "0.000002"),  # not in the store
        ],
    )
    dry = price_catalog_sync(store=store, catalog_path=str(path))
    assert dry.status is JobStatus.DRY_RUN
    assert dry.summary["counts"]["updated"] == 2 and dry.summary["counts"]["not_in_store"] == 1
    assert [d["model"] for d in dry.summary["drifted"]] == ["claude-3-haiku"]
    result = price_catalog_sync(store=store, catalog_path=str(path), dry_run=False)
    assert result.status is JobStatus.APPLIED, result.reason
    kinds = {h.model: h.change_type for h in store.history(job_run_id=result.run_id)}
    assert kinds == {"claude-3-haiku": "source_drift", "gpt-4o-mini": "catalog_import"}
    haiku = store.find_rate("anthropic", "claude-3-haiku", "chatCompletion")
    assert haiku.unit_costs.input == Decimal("0.0000002")
    again = price_catalog_sync(store=store, catalog_path=str(path), dry_run=False)
    assert again.status is JobStatus.UNCHANGED


def test_sync_refuses_costs_that_would_leave_rates_below_cost(store: Store, tmp_path: Path) -> None:
    # the provider raised its price 50 %: the stored 20 % markup no longer covers the cost
    path = _catalog(tmp_path, [("openai", "gpt-4o", "0.00000375", "0.000015")])
    before = snapshot(store)
    result = price_catalog_sync(store=store, catalog_path=str(path), dry_run=False)
    assert result.status is JobStatus.GUARDRAIL
    assert "below cost" in result.summary["refused"][0]["reasons"][0]
    assert snapshot(store) == before
    gpt = store.find_rate("openai", "gpt-4o", "chatCompletion")
    assert gpt.unit_costs.input == Decimal("0.0000025")
    # re-deriving the rates with the margin keeps them above cost: accepted
    rederived = price_catalog_sync(
        store=store, catalog_path=str(path), dry_run=False, rederive_rates=True, max_change_pct=60
    )
    assert rederived.status is JobStatus.APPLIED, rederived.reason
    gpt = store.find_rate("openai", "gpt-4o", "chatCompletion")
    assert gpt.input_rate == Decimal("0.0045")  # 0.00000375 × 1.20 / 0.001


def test_sync_can_create_missing_rates_for_known_providers(store: Store, tmp_path: Path) -> None:
    path = _catalog(
        tmp_path,
        [("anthropic", "claude-9", "0.000001", "0.000002"), ("xai", "grok-9", "0.1", "0.1")],
    )
    result = price_catalog_sync(
        store=store, catalog_path=str(path), dry_run=False, create_missing=True
    )
    assert result.summary["counts"]["created"] == 1
    assert result.summary["counts"]["not_in_store"] == 1  # xai is not a provider here
    created = store.find_rate("anthropic", "claude-9", "chatCompletion")
    assert created.input_rate == Decimal("0.0012")


def test_sync_refuses_a_catalog_in_another_currency(store: Store) -> None:
    store.set_operator_settings(currency="EUR")
    with pytest.raises(Exception, match="store's currency is EUR"):
        price_catalog_sync(store=store)


def test_a_refused_parameter_ends_the_run_before_any_kernel() -> None:
    from hubkit.jobs import run_job

    outcome = run_job("bulk-rate-update", {"hub_token": "sekrit-value", "profit_margin": "x"})
    assert outcome.status is JobStatus.INVALID and outcome.exit_code == 2
    assert "has no parameter hub_token" in outcome.reason
    summary = json.loads((outcome.run_dir / "summary.json").read_text())
    assert summary["parameters"] == {"hub_token": "(not a parameter)", "profit_margin": "x"}
    assert not list(outcome.run_dir.glob("*.ipynb"))
    for path in get_settings().reports_dir.rglob("*"):
        assert path.is_dir() or "sekrit" not in path.read_text()
