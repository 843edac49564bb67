"""Inputs that used to destroy data silently, and exit codes that used to lie (issue 16 B).

Each case runs the real CLI (``hubkit.cli.main`` in-process, on a real SQLite file), the
job, or the bulk app's state class, and checks both the refusal and that nothing moved.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _jobs import seed, snapshot
from sqlalchemy import update
from sqlalchemy.orm import Session

from hubkit.cli import main
from hubkit.domain import RateSpec
from hubkit.errors import ValidationError
from hubkit.jobs import JobStatus, bulk_rate_update
from hubkit.jobs.lock import Lease
from hubkit.jobs.runs import get_run, mark_interrupted, record_run
from hubkit.pricing import (
    CREDIT_PRICE_RANGE,
    bulk_preview,
    check_zero_rates,
    plausible_credit_price,
    plausible_margin,
)
from hubkit.store import Store
from hubkit.store.schema import JobLockRow, SettingRow
from hubkit.store.types import utcnow
from hubkit.widgets.bulk import BulkUpdateState

pytestmark = pytest.mark.store(seed=seed)

D = Decimal


def cli(url: str, *args: str) -> int:
    return main(["--database-url", url, *args])


# ---- the plausible range, defined once ----------------------------------------------------
@pytest.mark.parametrize("price", ["1e400", "1e-400", "0.0000009", "1000001", "1E+7"])
def test_implausible_credit_prices_are_refused_naming_the_range(price: str) -> None:
    with pytest.raises(ValidationError, match=r"plausible range 0\.000001 – 1000000") as info:
        plausible_credit_price(price)
    assert info.value.field == "creditPrice"


def test_the_range_ends_are_plausible() -> None:
    low, high = CREDIT_PRICE_RANGE
    assert plausible_credit_price(low) == low and plausible_credit_price(high) == high
    assert plausible_margin("10000") == 10000
    with pytest.raises(ValidationError, match="profitMargin"):
        plausible_margin("10000.1")


# ---- bulk update: CLI -------------------------------------------------------------------
def test_cli_bulk_update_with_an_absurd_credit_price_is_refused(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: every rate became 0, the below-cost check agreed (break-even 0), exit 0
    before = snapshot(store)
    code = cli(sqlite_url, "rates", "bulk-update", "--credit-price", "1e400", "--apply")
    assert code == 2
    assert "plausible range" in capsys.readouterr().err
    assert snapshot(store) == before


def test_cli_bulk_update_rounding_rates_to_zero_needs_confirmation(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1,000,000 per credit is plausible, but unit costs of 1.5e-7 give 1.8e-13: rounds to 0
    before = snapshot(store)
    args = ("rates", "bulk-update", "--credit-price", "1000000", "--margin", "20")
    assert cli(sqlite_url, *args) == 0  # a dry run looks, and warns
    assert "--apply would refuse this" in capsys.readouterr().err
    assert cli(sqlite_url, *args, "--apply") == 2
    err = capsys.readouterr().err
    assert "rounds to 0 at 10 places" in err and "--allow-zero-rates" in err
    assert snapshot(store) == before
    assert cli(sqlite_url, *args, "--apply", "--allow-zero-rates") == 0
    assert any(r.input_rate == 0 for r in store.list_rates() if r.unit_costs)


def test_cli_bulk_update_making_a_priced_side_free_needs_confirmation(
    store: Store, sqlite_url: str
) -> None:
    rate = store.create_rate(
        RateSpec.create(
            "openai", "free-out", "chatCompletion", input_rate="0.001", output_rate="0.002",
            unit_costs={"input": "0.000001", "output": "0"},
        )
    )  # fmt: skip
    args = ("rates", "bulk-update", "--model", "free-out", "--credit-price", "0.001", "--apply")
    assert cli(sqlite_url, *args) == 2
    assert store.get_rate(rate.id).output_rate == D("0.002")
    assert cli(sqlite_url, *args, "--allow-zero-rates") == 0
    assert store.get_rate(rate.id).output_rate == 0


def test_cli_unknown_provider_filter_is_bad_input_naming_the_known_ones(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(store)
    assert cli(sqlite_url, "rates", "bulk-update", "--provider", "opneai", "--apply") == 2
    err = capsys.readouterr().err
    assert "opneai" in err and "the store has: anthropic, openai" in err
    assert snapshot(store) == before


def test_cli_filter_matching_nothing_exits_10(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(sqlite_url, "rates", "bulk-update", "--model", "nothing-*", "--apply") == 10
    assert "matches no rate" in capsys.readouterr().err


# ---- settings -----------------------------------------------------------------------------
def test_settings_refuse_an_implausible_credit_price(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(sqlite_url, "settings", "--credit-price", "1e400") == 2
    assert "plausible range 0.000001 – 1000000" in capsys.readouterr().err
    assert store.get_operator_settings().credit_price == D("0.001")  # as seeded
    assert cli(sqlite_url, "settings", "--target-margin", "1e9") == 2


@pytest.mark.parametrize("stored", ["1E-400", "not a number", "1E+400"])
def test_rates_list_never_crashes_on_stored_settings(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str], stored: str
) -> None:
    # a row written before the range existed, or by hand
    with Session(store.engine) as session, session.begin():
        session.merge(SettingRow(key="credit_price", value=stored))
    assert cli(sqlite_url, "rates", "list") == 0
    out, err = capsys.readouterr()
    assert "gpt-4o-mini" in out and "settings --credit-price" in err


# ---- bulk update: job and app -------------------------------------------------------------
def test_job_refuses_an_absurd_credit_price_even_without_max_change(store: Store) -> None:
    # the papermill runner reports this ValidationError as status invalid, exit 2
    before = snapshot(store)
    with pytest.raises(ValidationError, match="parameter credit_price='1e400'.*plausible range"):
        bulk_rate_update(store=store, credit_price="1e400", max_change_pct=None, dry_run=False)
    with pytest.raises(ValidationError, match="profit_margin.*plausible range"):
        bulk_rate_update(store=store, profit_margin="1e9")
    assert snapshot(store) == before


def test_job_guardrail_refuses_rates_rounding_to_zero_unless_allowed(store: Store) -> None:
    before = snapshot(store)
    params: dict[str, Any] = {"credit_price": "1000000", "max_change_pct": None, "dry_run": False}
    result = bulk_rate_update(store=store, **params)
    assert result.status is JobStatus.GUARDRAIL and result.exit_code == 8
    assert any("rounds to 0" in why for r in result.summary["refused"] for why in r["reasons"])
    assert snapshot(store) == before
    allowed = bulk_rate_update(store=store, allow_zero_rates=True, **params)
    assert allowed.status is JobStatus.APPLIED


def test_app_refuses_zero_rates_unless_the_box_is_ticked(store: Store) -> None:
    state = BulkUpdateState(store)
    assert not state.set_credit_price("1e400")
    assert "plausible range" in state.errors["credit_price"]
    before = snapshot(store)
    assert state.set_credit_price("1000000")
    assert "FREE" in state.summary()
    assert not state.apply("typo test")
    assert "3 rates would become free (0 credits)" in str(state.error)
    assert snapshot(store) == before
    state.allow_zero_rates = True
    assert state.apply("free on purpose")


def test_one_check_for_all_three() -> None:
    # the CLI and the app call check_zero_rates; the job's guardrail the same reasons
    from hubkit.domain import Rate, RateType, UnitCosts

    rate = Rate(1, "openai", "m", RateType.CHAT_COMPLETION, D("0.001"), D("0.002"), "M", 1,
                UnitCosts(D("0.000001"), D("0")))  # fmt: skip
    preview = bulk_preview([rate], 0, "0.001")
    assert preview.zero_rates()[0].zero_rate_reasons() == (
        "output rate 0.002 → 0 (its unit cost is 0): it becomes free",
    )
    with pytest.raises(ValidationError, match="1 of 1 rate changes would make a rate 0"):
        check_zero_rates(preview)
    check_zero_rates(preview, allow_zero_rates=True)


# ---- creating a rate ----------------------------------------------------------------------
def test_a_rate_below_the_quantum_is_refused_not_stored_as_zero(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("rates", "set", "openai", "tiny", "chatCompletion", "--output-rate", "1")
    assert cli(sqlite_url, *args, "--input-rate", "1e-12") == 2
    assert "rounds to 0" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="inputRate"):
        RateSpec.create("openai", "tiny", "chatCompletion", input_rate="4E-11")
    # half the quantum rounds up, as the gateway does: a rate, not a refusal
    assert RateSpec.create("openai", "t", "embedding", input_rate="5E-11").input_rate == D("1E-10")
    assert cli(sqlite_url, *args, "--input-rate", "0") == 0


def test_a_new_rate_needs_its_rates(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(sqlite_url, "rates", "set", "openai", "unpriced", "chatCompletion") == 2
    assert "--input-rate and --output-rate" in capsys.readouterr().err
    assert cli(sqlite_url, "rates", "set", "openai", "half", "chatCompletion",
               "--input-rate", "0.1") == 2  # fmt: skip
    assert "--output-rate" in capsys.readouterr().err
    assert [r.model for r in store.list_rates() if r.model in ("unpriced", "half")] == []


def test_minus_zero_is_stored_and_shown_as_zero(
    store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(sqlite_url, "rates", "set", "openai", "neg", "chatCompletion",
               "--input-rate", "-0", "--output-rate", "-0.000")  # fmt: skip
    assert code == 0
    rate = store.find_rate("openai", "neg", "chatCompletion")
    assert not rate.input_rate.is_signed() and not rate.output_rate.is_signed()
    capsys.readouterr()
    assert cli(sqlite_url, "rates", "list", "--model", "neg") == 0
    assert "-0" not in capsys.readouterr().out


# ---- runs that died -----------------------------------------------------------------------
def _dead_run(store: Store, run_id: str, report_dir: Path | None = None) -> None:
    record_run(store, run_id, job="bulk-rate-update", status=JobStatus.RUNNING,
               actor="cron", report_dir=str(report_dir) if report_dir else None)  # fmt: skip


def test_a_run_killed_after_its_commit_is_marked_interrupted(
    store: Store, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "20250101T000000Z-bulk-rate-update"
    folder.mkdir()
    _dead_run(store, "killed", folder)
    preview = store.preview_bulk_update("25", "0.001")
    store.apply_bulk_update(preview, reason="job", job_run_id="killed")  # committed, then kill
    assert cli(sqlite_url, "job", "list") == 0
    out, err = capsys.readouterr()
    assert "killed" in out and "interrupted" in out and "marked interrupted" in err
    info = get_run(store, "killed")
    assert info.status is JobStatus.INTERRUPTED and info.status.exit_code == 1
    assert "committed (3 history rows" in info.summary["reason"]
    assert info.finished_at is not None
    assert '"interrupted"' in (folder / "summary.json").read_text()


def test_a_live_run_is_left_running_and_an_expired_one_is_not(store: Store) -> None:
    _dead_run(store, "alive")
    lease = Lease(store, run_id="alive")
    lease.acquire()
    assert mark_interrupted(store) == []
    assert get_run(store, "alive").status is JobStatus.RUNNING
    with Session(store.engine) as session, session.begin():
        session.execute(update(JobLockRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert mark_interrupted(store) == ["alive"]
    reason = get_run(store, "alive").summary["reason"]
    assert "nothing of it was committed" in reason


def test_the_next_job_run_marks_a_dead_one(store: Store) -> None:
    _dead_run(store, "dead")
    bulk_rate_update(store=store, profit_margin="25")
    assert get_run(store, "dead").status is JobStatus.INTERRUPTED
