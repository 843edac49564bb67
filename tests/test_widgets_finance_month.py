"""Notebook 07's app: the state class (months of one usage source, one pack at a time, export)
and its thin view, on a real read-only SQLite store."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _jobs import seed

from hubkit.billing_settings import BillingSettings
from hubkit.config import get_settings
from hubkit.finance import finance_pack
from hubkit.store import Store
from hubkit.usage import write_usage
from hubkit.widgets import FinanceMonthApp, FinanceMonthState, finance_month_app

pytestmark = pytest.mark.store("sqlite", seed=seed)

ON = BillingSettings(
    credit_based_billing_enabled=True, new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=5, credit_expiration_days=10,
)  # fmt: skip


def _read_only(store: Store) -> Store:
    return Store.open(store.engine.url.render_as_string(hide_password=False), read_only=True)


def test_state_replays_once_and_shows_each_month_like_the_job(store: Store) -> None:
    ro = _read_only(store)
    try:
        state = FinanceMonthState(ro, month="2026-11", settings=ON, synthetic_calls=2000, seed=2)
        assert state.months == ["2026-10", "2026-11"] and state.month == "2026-11"
        assert state.message is not None and state.message.text.startswith("2026-11: closing")
        events = state.events
        assert state.select_month("2026-10") and state.events is events  # not replayed again
        october = state.pack
        assert october is not None and october.month == "2026-10"
        # the same month computed from scratch (the job's way) gives the same tables
        alone = finance_pack(
            state.source.usage, state.timeline, ON, month="2026-10",  # type: ignore[union-attr]
            credit_price=state.credit_price, behaviour=state.behaviour,
        )  # fmt: skip
        for name, table in alone.tables.items():
            pd.testing.assert_frame_equal(october.tables[name], table, check_dtype=False)
        assert state.reconciliation_text().startswith("Reconciliation is not applicable")
        assert not state.select_month("2027-01")
        assert "not a month of this usage" in state.message.text  # type: ignore[union-attr]
        assert state.pack is october  # a refused choice changes nothing
    finally:
        ro.close()


def test_export_writes_the_pack_and_nothing_in_the_store(store: Store) -> None:
    db = Path(store.engine.url.database or "")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    ro = _read_only(store)
    try:
        state = FinanceMonthState(ro, month="2026-11", settings=ON, synthetic_calls=1500)
        folder = state.export()
    finally:
        ro.close()
    assert folder is not None and folder.parent == get_settings().reports_dir
    names = {p.name for p in folder.iterdir()}
    assert {"finance-2026-11.xlsx", "rollforward.csv", "kpis_by_model.csv", "summary.json"} <= names
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["store"]["read_only"] is True
    assert openpyxl.load_workbook(folder / "finance-2026-11.xlsx").sheetnames[0] == "headline"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_usage_file_and_a_bad_one(store: Store, tmp_path: Path) -> None:
    usage = pd.DataFrame(
        {
            "time": pd.to_datetime(["2026-09-03T10:00:00Z", "2026-10-05T10:00:00Z"]),
            "user": ["a", "a"],
            "provider": ["openai", "openai"],
            "model": ["gpt-4o", "gpt-4o"],
            "type": ["chatCompletion", "chatCompletion"],
            "input_tokens": [1000, 2000],
            "output_tokens": [10, 20],
        }
    )
    path = write_usage(usage, tmp_path / "usage.csv")
    ro = _read_only(store)
    try:
        state = FinanceMonthState(ro, usage_source=str(path), settings=ON)
        assert state.months == ["2026-09", "2026-10"] and state.month == "2026-10"
        # Sept 3: grant 5 (10 days), 1000 in × 0.003 + 10 out × 0.012 = 3.12 credits used,
        # 1.88 expire on Sept 13; October opens at 0
        rolled = state.table("rollforward")
        assert rolled is not None
        sept = rolled[rolled["month"] == "2026-09"].iloc[0]
        assert (sept["granted"], sept["consumed"], sept["expired"], sept["closing"]) == (
            5, Decimal("3.12"), Decimal("1.88"), 0,
        )  # fmt: skip
        assert state.pack.month_row["opening"] == 0  # type: ignore[union-attr]
        assert "usage file usage.csv" in state.source_text()
        assert not state.load(str(tmp_path / "missing.csv"))
        assert "not found" in state.message.text  # type: ignore[union-attr]
        assert state.months == ["2026-09", "2026-10"]  # the loaded usage stays
    finally:
        ro.close()


def test_the_view_draws_the_pack_and_follows_the_month(store: Store) -> None:
    ro = _read_only(store)
    try:
        app = finance_month_app(ro, month="2026-11", settings=ON, synthetic_calls=1500)
        assert isinstance(app, FinanceMonthApp)
        assert "closing balance" in app.tables["headline"].value
        assert "not applicable" in app.reconciliation.value
        assert app.charts["rollforward"].widget is not None
        app.month.value = "2026-10"
        assert app.state.month == "2026-10" and "2026-10" in app.message.value
        assert not app.export_button.disabled
    finally:
        ro.close()
    assert "NO DATA" in finance_month_app(None).value
