"""The monthly finance pack (issue 15): its tables against independent sums, the xlsx against
the CSVs, reconciliation only where the gateway stored credits, and the finance-month job
executed by papermill on the shipped sample (real SQLite store)."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _billing_data import calls, simple_rates
from _jobs import seed

from hubkit.billing_settings import BillingSettings
from hubkit.cli import main as cli_main
from hubkit.errors import ValidationError
from hubkit.finance import finance_pack, write_pack
from hubkit.finance.pack import NOT_APPLICABLE
from hubkit.jobs import JobStatus, run_job
from hubkit.jobs.finance_month import build_pack, finance_month
from hubkit.jobs.params import FinanceMonthParams
from hubkit.replay import Behaviour, timeline_from_rates
from hubkit.replay.timeline import price_exact
from hubkit.store import Store
from hubkit.widgets import seed_sample_data

D = Decimal
SIMPLE = timeline_from_rates(simple_rates())
ON = BillingSettings(
    credit_based_billing_enabled=True, new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=6, credit_expiration_days=20,
)  # fmt: skip


def _traffic() -> pd.DataFrame:
    rows = []
    for i in range(60):
        rows.append({"user": f"u{i % 7}", "day": (i * 37) % 58, "minute": i, "input": 3 + i % 5,
                     "output": i % 4, **({"type": "imageGeneration", "images": 1} if i % 9 == 0
                                         else {})})  # fmt: skip
    rows.append({"user": "u1", "day": 40, "model": "unknown-model", "input": 5})
    return calls(*rows)


def _dsum(values) -> Decimal:  # type: ignore[no-untyped-def]
    return sum((D(v) for v in values), D(0))


def test_kpis_and_headline_equal_independent_sums_from_the_calls() -> None:
    usage = _traffic()
    pack = finance_pack(usage, SIMPLE, ON, month="2025-02", credit_price="0.5",
                        behaviour=Behaviour(buy_probability=0.5, pack_amount=D(2)))  # fmt: skip
    row = pack.month_row
    by_model = pack.tables["kpis_by_model"]
    # the month's served calls, priced exactly, are the month's consumption
    feb = usage[(usage["time"] >= "2025-02-01") & (usage["time"] < "2025-03-01")]
    priced = price_exact(feb, SIMPLE)
    use = pack.events[(pack.events["event"] == "use")
                      & (pack.events["time"] >= pd.Timestamp("2025-02-01", tz="UTC"))]  # fmt: skip
    assert _dsum(by_model["credits"]) == row["consumed"] == _dsum(use["credits"])
    assert _dsum(by_model["promotional_credits"]) == row["consumed_promotional"]
    assert by_model["calls"].sum() == len(
        feb[priced["credits"].notna().to_numpy()]
    )  # every supported call of the month is served or refused; the unknown model is neither
    groups = use.groupby(["provider", "model", "type"])
    served_credits = {(p, m, t): _dsum(g["credits"]) for (p, m, t), g in groups}
    for r in by_model.itertuples(index=False):
        assert r.credits == served_credits.get((r.provider, r.model, r.type), D(0))
        assert r.revenue == r.paid_credits * D("0.5")
        assert r.gross_margin == r.revenue - r.provider_cost
    assert _dsum(pack.tables["kpis_by_provider"]["credits"]) == row["consumed"]
    headline = dict(zip(pack.tables["headline"]["item"], pack.tables["headline"]["value"],
                        strict=True))  # fmt: skip
    assert headline["closing balance"] == row["closing"]
    assert headline["identity difference (must be 0)"] == 0
    assert pack.reconciliation is None and pack.reconciliation_note == NOT_APPLICABLE
    assert "reconciliation" not in pack.tables


def test_reconciliation_is_shown_only_when_the_gateway_stored_credits() -> None:
    usage = calls(
        {"user": "a", "day": 31, "input": 2},  # 1 credit
        {"user": "a", "day": 32, "input": 3},  # 1.5 credits
        {"user": "b", "day": 33, "model": "unknown-model", "input": 1},
    )
    usage["stored_credits"] = [D("1.00000000"), D("1.50000001"), D("0.5")]
    usage["source_id"] = ["c1", "c2", "c3"]
    pack = finance_pack(usage, SIMPLE, ON, month="2025-02")
    s = pack.reconciliation
    assert s is not None and (s["rows"], s["match"], s["mismatch"], s["unsupported"]) == (
        3,
        1,
        1,
        1,
    )
    summary = pack.tables["reconciliation_summary"]
    total = summary[summary["status"] == "total"].iloc[0]
    parts = summary[summary["status"] != "total"]
    assert total["calls"] == parts["calls"].sum() == 3  # totals that add up
    assert total["difference"] == _dsum(parts["difference"]) == D("0.00000001")
    assert list(pack.tables["reconciliation"]["source_id"]) == ["c1", "c2", "c3"]
    for by, groups in (("user", 2), ("model", 2), ("day", 3)):  # per user, model, day
        table = pack.tables[f"reconciliation_by_{by}"]
        assert len(table) == groups and table["rows"].sum() == 3, by
        assert _dsum(table["difference_total"]) == total["difference"], by
    # the unknown model was charged by the gateway: the ledger uses what it stored
    assert "2 match" not in pack.reconciliation_note and "1 differ" in pack.reconciliation_note


def _csv_table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def assert_xlsx_matches_csvs(folder: Path, workbook: Path, currency: str) -> int:
    """Every sheet has its CSV's columns and rows; each number equals the CSV's cell (to
    Excel's 15 significant digits), and
    each numeric column sums to the CSV's sum; money carries the currency format."""
    book = openpyxl.load_workbook(workbook)
    checked = 0
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        table = _csv_table(folder / f"{sheet.title}.csv")
        header = list(rows[0])
        assert header == list(table[0].keys()) if table else True
        assert len(rows) - 1 == len(table), sheet.title
        for j, column in enumerate(header):
            cells = [r[j] for r in rows[1:]]
            numbers = [c for c in cells if isinstance(c, int | float) and not isinstance(c, bool)]
            if not numbers or len(numbers) != len(cells):
                assert not any(isinstance(c, str) and _is_number_text(c) for c in cells) or (
                    sheet.title == "headline"
                ), f"{sheet.title}.{column}: numbers stored as text"
                continue
            texts = [r[column] for r in table]
            # Excel keeps 15 significant digits; a credit like 1 / 0.003 has more in the CSV
            for text, cell in zip(texts, cells, strict=True):
                assert math.isclose(float(text), cell, rel_tol=1e-14, abs_tol=1e-14), (
                    sheet.title, column, text, cell,
                )  # fmt: skip
            csv_sum = _dsum(texts)
            assert math.isclose(math.fsum(numbers), float(csv_sum), rel_tol=1e-12, abs_tol=1e-12)
            checked += 1
        money_cells = [
            c for row in sheet.iter_rows(min_row=2) for c in row
            if isinstance(c.value, int | float) and currency in c.number_format
        ]  # fmt: skip
        if sheet.title in ("rollforward", "kpis_by_model", "headline"):
            assert money_cells, f"{sheet.title}: no money formatted in {currency}"
    return checked


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_workbook_has_a_sheet_per_table_and_its_sums_equal_the_csvs(tmp_path: Path) -> None:
    usage = _traffic()
    usage["stored_credits"] = [None] * (len(usage) - 1) + [D("2.5")]
    knobs = Behaviour(buy_probability=1, pack_amount=D(1))
    pack = finance_pack(
        usage, SIMPLE, ON, month="2025-02", credit_price="0.003", currency="EUR", behaviour=knobs
    )
    written = write_pack(pack, tmp_path)
    workbook = tmp_path / "finance-2025-02.xlsx"
    assert workbook in written
    book = openpyxl.load_workbook(workbook)
    assert book.sheetnames == list(pack.tables)
    assert assert_xlsx_matches_csvs(tmp_path, workbook, "EUR") > 20
    headline = {r[0]: r[1] for r in book["headline"].iter_rows(min_row=2, values_only=True)}
    assert isinstance(headline["recognised revenue"], int | float)


# ---- the job, executed by papermill on the shipped sample -----------------------------------
@pytest.mark.slow
@pytest.mark.store("sqlite", seed=seed_sample_data, url_in_env=True)
def test_finance_month_job_on_the_shipped_sample(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED": "true",
                        "NEW_USER_CREDIT_GRANT_ENABLED": "true",
                        "NEW_USER_CREDIT_GRANT_AMOUNT": "2",
                        "CREDIT_EXPIRATION_DAYS": "14"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    before = [(r.provider, r.model, r.input_rate, r.version) for r in store.list_rates()]
    parameters = {"month": "2026-11", "synthetic_calls": "3000", "seed": "3"}
    outcome = run_job("finance_month", parameters)
    assert outcome.status is JobStatus.REPORTED and outcome.exit_code == 0, outcome.reason
    folder = outcome.run_dir
    names = {p.name for p in folder.iterdir()}
    assert {"finance-month.ipynb", "finance-month.html", "finance-2026-11.xlsx", "headline.csv",
            "rollforward.csv", "rollforward_by_cohort.csv", "kpis_by_model.csv",
            "kpis_by_provider.csv", "summary.json", "plotly.min.js"} <= names  # fmt: skip
    assert "reconciliation.csv" not in names  # synthetic usage: not applicable, not zero
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "reported" and summary["job_run_id"] == outcome.run_id
    assert "figures/rollforward.html" in summary["files"]
    assert summary["totals"]["identity difference (must be 0)"] == "0"
    # the report's figures equal the pack computed again in this process
    pack = build_pack(store, FinanceMonthParams.create(**parameters))
    rolled = pd.read_csv(folder / "rollforward.csv", dtype=str)
    nov = rolled[rolled["month"] == "2026-11"].iloc[0]
    for column in ("opening", "granted", "purchased", "consumed", "expired", "closing"):
        assert D(nov[column]) == pack.month_row[column], column
        assert summary["totals"][next(k for k in summary["totals"] if k.startswith(
            {"opening": "opening", "granted": "granted", "purchased": "purchased",
             "consumed": "consumed", "expired": "expired", "closing": "closing"}[column]
        ))] == nov[column]  # fmt: skip
    assert D(nov["granted"]) > 0 and D(nov["consumed"]) > 0 and D(nov["difference"]) == 0
    assert assert_xlsx_matches_csvs(folder, folder / "finance-2026-11.xlsx", "USD") > 20
    html = (folder / "finance-month.html").read_text()
    assert "not applicable" in html and "Credit roll-forward by month" in html
    assert "https://cdn" not in html and 'src="plotly.min.js"' in html
    assert "run_finance_month" not in html  # no code in the report
    assert [(r.provider, r.model, r.input_rate, r.version) for r in store.list_rates()] == before

    # a bad month stops the run before anything is read (exit 2), via the CLI
    capsys.readouterr()
    assert cli_main(["job", "run", "finance-month", "-p", "month", "2026-13"]) == 2
    assert "month must look like 2026-11" in capsys.readouterr().err


# ---- the gateway's own records and its grants/purchases file --------------------------------
def _gateway_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE "AiProviders" (id TEXT PRIMARY KEY, name TEXT, displayName TEXT);
        CREATE TABLE "ModelCalls" (
            id TEXT PRIMARY KEY, providerId TEXT, model TEXT, credentialId TEXT, type TEXT,
            totalUsage INTEGER, usageMetrics JSON, credits DECIMAL(20, 8), status TEXT,
            duration DECIMAL(10, 1), errorReason TEXT, appDid TEXT, userDid TEXT,
            requestId TEXT, metadata JSON, callTime INTEGER, traceId TEXT, ttfb REAL,
            providerTtfb REAL, createdAt TEXT, updatedAt TEXT);
        INSERT INTO "AiProviders" VALUES ('p1', 'openai', 'OpenAI');
        """
    )
    day = int(pd.Timestamp("2026-11-03T12:00:00Z").timestamp())
    rows = [
        ("c1", "gpt-4o", {"inputTokens": 1000, "outputTokens": 100}, "4.20000000", "success", 0),
        ("c2", "gpt-4o", {"inputTokens": 10, "outputTokens": 1}, "0.04200001", "success", 1),
        ("c3", "gpt-4o", {"inputTokens": 99}, "0", "failed", 1),
        ("c4", "mystery", {"inputTokens": 5}, "1.00000000", "success", 2),
    ]  # fmt: skip
    for cid, model, metrics, credits, status, days in rows:
        conn.execute(
            'INSERT INTO "ModelCalls" (id, providerId, model, credentialId, type, totalUsage, '
            "usageMetrics, credits, status, appDid, userDid, callTime) "
            "VALUES (?, 'p1', ?, 'cred', 'chatCompletion', 0, ?, ?, ?, 'app1', 'did:u:1', ?)",
            (cid, model, json.dumps(metrics), credits, status, day + days * 86_400),
        )  # fmt: skip
    conn.commit()
    conn.close()
    return path


@pytest.mark.store("sqlite", "postgres", seed=seed, url_in_env=True)
def test_the_job_on_gateway_records_reconciles_and_rolls_the_grants_file_forward(
    store: Store, tmp_path: Path
) -> None:
    db = _gateway_db(tmp_path / "aigne-hub.db")
    grants = tmp_path / "grants.csv"
    grants.write_text(
        "time,user,kind,credits,amount,expires_at,id\n"
        "2026-11-01T00:00:00Z,did:u:1,grant,5,,2026-11-20T00:00:00Z,g1\n"
        "2026-11-02T00:00:00Z,did:u:1,purchase,10,0.01,,p1\n"
    )
    done = finance_month(store=store, month="2026-11", usage_source=str(db),
                         grants_file=str(grants))  # fmt: skip
    assert done.status is JobStatus.REPORTED, done.result.reason
    pack = done.pack
    assert pack is not None and pack.reconciliation is not None
    s = pack.reconciliation
    assert (s["rows"], s["match"], s["mismatch"], s["unsupported"]) == (3, 1, 1, 1)
    assert s["difference_total"] == D("0.00000001")  # the failed call is not billed
    row = pack.month_row
    # promotional first (it expires), then paid; each call used what the gateway stored
    # (0.04200001 for c2, 1 for the model hubkit has no rate for)
    assert (row["granted"], row["purchased"], row["consumed"]) == (5, 10, D("5.24200001"))
    assert (row["consumed_promotional"], row["consumed_paid"], row["expired"]) == (
        5, D("0.24200001"), 0,
    )  # fmt: skip
    assert row["closing"] == D("9.75799999") and row["difference"] == 0
    # money at the credit price 0.001, rounded once to 10 places
    assert row["cash_in"] == D("0.01") and row["deferred_revenue"] == D("0.0097580000")
    folder = done.result.run_dir
    assert {"reconciliation.csv", "reconciliation_summary.csv"} <= {
        p.name for p in folder.iterdir()
    }
    recon = pd.read_csv(folder / "reconciliation.csv", dtype=str)
    assert list(recon["status"]) == ["match", "mismatch", "unsupported"]
    assert assert_xlsx_matches_csvs(folder, folder / "finance-2026-11.xlsx", "USD") > 10


def test_job_parameters_are_checked_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "grants.csv"
    bad.write_text("time,user,kind,credits\n2026-11-01,a,gift,5\n")
    with pytest.raises(ValidationError, match=r"parameter grants_file=.*row 1, column 'kind'"):
        FinanceMonthParams.create(month="2026-11", grants_file=str(bad))
    for name, value, message in [
        ("month", "2026/11", "month must look like 2026-11"),
        ("usage_source", str(tmp_path / "nope.db"), "no such file"),
        ("buy_probability", "1.5", "within 0..1"),
        ("synthetic_calls", "0", "whole number from 1"),
        ("credit_price", "0", "creditPrice must be > 0"),
        ("nonsense", "1", "has no parameter nonsense"),
    ]:
        with pytest.raises(ValidationError, match=message):
            FinanceMonthParams.create(**{name: value})
    params = FinanceMonthParams.create(month="2026-11", credit_billing="none")
    assert params.credit_billing is None and params.usage_source is None
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_period("M")
    assert FinanceMonthParams.create().month == str(now - 1)  # default: the last full month
