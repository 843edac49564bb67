"""The gateway's own records: import (SQLite, PostgreSQL, CSV; store or Parquet, incremental),
its rate timeline, and the reconciliation of every call with its cause.

The databases carry AIGNE Hub's table and column names (tests/_gateway_db.py); each case of
:data:`_gateway_db.CALLS` must get the status and cause of :data:`_gateway_db.EXPECTED`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest
from _gateway_db import CHANGE, EXPECTED, T0, add_calls, build_postgres, build_sqlite, call

from hubkit.cli import main
from hubkit.errors import StorageError, ValidationError
from hubkit.replay.reconcile import (
    BREAKDOWNS,
    Cause,
    Status,
    reconcile,
    reconcile_breakdown,
    reconcile_import,
    reconcile_reference,
)
from hubkit.replay.timeline import validate_timeline
from hubkit.store import Store
from hubkit.store.external import ReadOnlyPostgres
from hubkit.usage.gateway import (
    SKIP_NOT_BILLED,
    SKIP_UNSUPPORTED_TYPE,
    ImportProgress,
    read_hub_database,
)
from hubkit.usage.gateway_import import import_gateway_usage, read_imported_usage
from hubkit.usage.gateway_rates import read_hub_rates


@pytest.fixture
def hub_db(tmp_path: Path) -> Path:
    return build_sqlite(tmp_path / "aigne-hub.db")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _classes(frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {
        str(r.source_id): (str(r.status), str(r.cause))
        for r in frame[["source_id", "status", "cause"]].itertuples(index=False)
    }


# -- every call classified, totals that add up ---------------------------------------------


def test_every_gateway_call_is_classified_and_the_totals_reconcile(hub_db: Path) -> None:
    before = _digest(hub_db)
    imported = read_hub_database(hub_db)
    timeline = read_hub_rates(hub_db)
    frame, summary = reconcile_import(imported, timeline)
    assert _digest(hub_db) == before  # read-only
    assert _classes(frame) == EXPECTED  # each call once, with its status and cause
    assert summary["rows"] == imported.report.rows_read == len(EXPECTED)
    statuses = ("match", "mismatch", "unsupported", "no_stored_credits", "not_imported")
    assert sum(summary[k] for k in statuses) == summary["rows"]
    assert sum(summary["causes"].values()) == summary["rows"]
    # the difference total is stored − re-priced (at 8 places) over the compared calls
    compared = frame[frame["status"].isin(["match", "mismatch"])]
    expected = sum(
        (Decimal(s) - Decimal(r).quantize(Decimal("1E-8"), ROUND_HALF_UP) for s, r in
         zip(compared["stored_credits"], compared["repriced_credits"], strict=True)),
        Decimal(0),
    )  # fmt: skip
    assert summary["difference_total"] == expected
    assert frame.loc[frame["source_id"] == "c03", "difference"].iloc[0] == Decimal("-0.0015")
    # per user, per model, per day: every column sums to the summary
    for by in BREAKDOWNS:
        table = reconcile_breakdown(frame, by)
        assert table["rows"].sum() == summary["rows"]
        for key in statuses:
            assert table[key].sum() == summary[key], (by, key)
        for key in ("stored_total", "repriced_total", "difference_total"):
            assert sum(table[key], Decimal(0)) == summary[key], (by, key)
        for cause, n in summary["causes"].items():
            assert table[f"cause: {cause}"].sum() == n


def test_the_gateway_rate_timeline_has_the_mid_period_change(hub_db: Path) -> None:
    timeline = validate_timeline(read_hub_rates(hub_db))
    gpt = timeline[timeline["model"] == "gpt-4o"]
    assert len(gpt) == 2
    old, new = gpt.iloc[0], gpt.iloc[1]
    assert pd.isna(old["valid_from"]) and old["valid_to"] == CHANGE
    assert (old["input_rate"], old["output_rate"]) == (Decimal("0.000002"), Decimal("0.000008"))
    assert new["valid_from"] == CHANGE and pd.isna(new["valid_to"])
    assert new["input_rate"] == Decimal("0.0000025")
    claude = timeline[timeline["model"] == "claude-sonnet"].iloc[0]
    assert claude["cache_read_rate"] == 0 and claude["cache_write_rate"] == Decimal("0.00000375")
    assert old["cache_read_rate"] is None  # no cache rate: the input rate applies


# -- the gateway's facts, one test each ----------------------------------------------------


def test_fact_stored_credits_have_8_places_rounded_half_up(hub_db: Path) -> None:
    # 10 embedding tokens × 0.0000000025 = 0.000000025: ROUND_HALF_UP at 8 places gives
    # 0.00000003 (half-even would give 0.00000002 and call a correct charge wrong)
    imported = read_hub_database(hub_db)
    frame, _ = reconcile(imported.usage, read_hub_rates(hub_db))
    row = frame[frame["source_id"] == "c04"].iloc[0]
    assert row["repriced_credits"] == Decimal("0.000000025")
    assert str(row["status"]) == "match"
    # the stored amount is read exactly, as the gateway's decimal
    stored = imported.usage.loc[imported.usage["source_id"] == "c04", "stored_credits"].iloc[0]
    assert stored == Decimal("0.00000003") and isinstance(stored, Decimal)
    # and comparing at 10 places instead shows the 8-place rounding
    frame10, _ = reconcile(imported.usage, read_hub_rates(hub_db), places=10)
    assert frame10.loc[frame10["source_id"] == "c04", "difference"].iloc[0] == Decimal("5E-9")


def test_fact_only_successful_calls_are_billed(hub_db: Path) -> None:
    imported = read_hub_database(hub_db)
    assert not {"c06", "c07"} & set(imported.usage["source_id"])
    assert imported.report.skipped_status == {"failed": 1, "processing": 1}
    skipped = imported.skipped.set_index("source_id")
    assert skipped.loc["c06", "reason"] == SKIP_NOT_BILLED == Cause.NOT_BILLED
    assert skipped.loc["c06", "status"] == "failed"
    assert skipped.loc["c12", "reason"] == SKIP_UNSUPPORTED_TYPE == Cause.UNSUPPORTED_TYPE


def test_fact_image_calls_also_bill_input_tokens(hub_db: Path) -> None:
    imported = read_hub_database(hub_db)
    image = imported.usage[imported.usage["source_id"] == "c09"].iloc[0]
    assert (image["input_tokens"], image["images"]) == (100, 2)
    frame, _ = reconcile(imported.usage, read_hub_rates(hub_db))
    # 100 × 0.000005 + 2 × 0.04, what the gateway stored
    assert frame.loc[frame["source_id"] == "c09", "repriced_credits"].iloc[0] == Decimal("0.0805")


def test_fact_cache_tokens_fall_back_to_the_input_rate_and_a_zero_rate_is_honoured(
    hub_db: Path,
) -> None:
    frame, _ = reconcile(read_hub_database(hub_db).usage, read_hub_rates(hub_db))
    price = dict(zip(frame["source_id"], frame["repriced_credits"], strict=True))
    # gpt-4o has no cache rate: 400 cache reads at its input rate 0.0000025
    assert price["c11"] == Decimal("0.00125")
    # claude: reads at 0 (free), writes at 0.00000375
    assert price["c10"] == Decimal("0.00105")


# -- vectorised = reference on the gateway's cases ------------------------------------------


def test_the_reference_path_agrees_on_the_gateway_cases(hub_db: Path) -> None:
    usage = read_hub_database(hub_db).usage
    timeline = read_hub_rates(hub_db)
    fast, fast_summary = reconcile(usage, timeline)
    slow, slow_summary = reconcile_reference(usage, timeline)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast_summary == slow_summary


def test_reconcile_needs_stored_credits_and_sane_places(hub_db: Path) -> None:
    usage = read_hub_database(hub_db).usage
    timeline = read_hub_rates(hub_db)
    with pytest.raises(ValidationError, match="stored_credits"):
        reconcile(usage.drop(columns=["stored_credits"]), timeline)
    with pytest.raises(ValidationError, match="places"):
        reconcile(usage, timeline, places=-1)


# -- import: incremental, into Parquet and the store ---------------------------------------


def test_import_to_parquet_is_incremental(hub_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "calls.parquet"
    first = import_gateway_usage(hub_db, target)
    assert first.report.rows_imported == 12 and first.report.already_imported == 0
    steps: list[ImportProgress] = []
    again = import_gateway_usage(hub_db, target, progress=steps.append)
    assert again.report.rows_imported == 0 and again.report.already_imported == 12
    assert again.report.rows_read == 15 and again.report.skipped_status == {
        "failed": 1, "processing": 1,
    }  # fmt: skip
    # a re-run reads only the ids it does not hold (3 calls), not the whole table
    assert [s.rows_read for s in steps] == [15] and steps[0].total is None
    add_calls(hub_db, [call("c99", "gpt-4o", "chatCompletion", {"inputTokens": 4}, "0.00001000",
                            when=int((CHANGE + pd.Timedelta(days=2)).timestamp()))])  # fmt: skip
    third = import_gateway_usage(hub_db, target)
    assert third.report.rows_imported == 1 and third.report.already_imported == 12
    usage = read_imported_usage(target)
    assert len(usage) == 13 and usage["source_id"].is_unique
    assert isinstance(usage["stored_credits"].dtype, pd.ArrowDtype)  # exact decimals
    frame, summary = reconcile(usage, read_hub_rates(hub_db))
    assert _classes(frame)["c99"] == ("match", "none")
    # a period
    march_11 = read_imported_usage(target, since=CHANGE, until=CHANGE + pd.Timedelta(days=1))
    assert set(march_11["source_id"]) == {"c02", "c03", "c11", "c13", "c14"}


def test_import_to_the_store_is_incremental_and_keeps_stored_credits(
    hub_db: Path, db_url: str
) -> None:
    with Store.open(db_url) as store:
        first = import_gateway_usage(hub_db, store.engine, chunk_rows=4)
        again = import_gateway_usage(hub_db, store.engine)
        usage = read_imported_usage(store.engine)
    assert first.report.rows_imported == 12
    assert again.report.rows_imported == 0 and again.report.already_imported == 12
    assert len(usage) == 12
    direct = read_hub_database(hub_db).usage.sort_values("source_id").reset_index(drop=True)
    back = usage.sort_values("source_id").reset_index(drop=True)
    assert back["source_id"].tolist() == direct["source_id"].tolist()
    assert back["stored_credits"].tolist() == direct["stored_credits"].tolist()
    assert back["input_tokens"].tolist() == direct["input_tokens"].tolist()
    assert (back["time"] == direct["time"]).all()


def test_progress_is_reported_per_chunk(hub_db: Path) -> None:
    steps = []
    read_hub_database(hub_db, chunk_rows=4, progress=steps.append)
    assert [s.rows_read for s in steps] == [4, 8, 12, 15]
    assert all(s.total == 15 for s in steps)
    assert steps[-1].rows_kept == 12


def test_csv_export_imports_like_the_database(hub_db: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(hub_db)
    pd.read_sql_query('SELECT * FROM "ModelCalls"', conn).to_csv(tmp_path / "mc.csv", index=False)
    conn.close()
    providers = {"p-openai": "openai", "p-anthropic": "anthropic"}
    exported = import_gateway_usage(tmp_path / "mc.csv", tmp_path / "x.parquet",
                                    providers=providers)  # fmt: skip
    direct = read_hub_database(hub_db)
    assert exported.report.rows_imported == direct.report.rows_imported
    assert exported.usage["stored_credits"].tolist() == direct.usage["stored_credits"].tolist()
    assert (
        exported.usage["provider"].astype(str).tolist()
        == direct.usage["provider"].astype(str).tolist()
    )


# -- the CLI -------------------------------------------------------------------------------


def test_cli_import_and_reconcile(
    hub_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "calls.parquet"
    assert main(["usage", "import", str(hub_db), "--to", str(target)]) == 0
    out = capsys.readouterr()
    assert "imported 12 new call(s)" in out.out
    assert "status 'failed'" in out.out and "read 15 of 15 rows" in out.err
    assert main(["usage", "import", str(hub_db), "--to", str(target), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "12 call(s) already imported" in out.out and "imported 0 new" in out.out
    report = tmp_path / "report"
    code = main(["usage", "reconcile", str(target), "--rates", str(hub_db), "--from",
                 "2025-03-01", "--to", "2025-04-01", "--out", str(report)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "reconciliation of 12 call(s)" in out and "rate changed mid-flight: 1" in out
    summary = json.loads((report / "summary.json").read_text())
    assert summary["rows"] == 12 and summary["mismatch"] == 4
    by_user = pd.read_csv(report / "by_user.csv", dtype=str)
    total = sum((Decimal(v) for v in by_user["difference_total"]), Decimal(0))
    assert total == Decimal(summary["difference_total"])
    calls = pd.read_csv(report / "calls.csv", dtype=str, keep_default_na=False)
    assert "E-" not in "".join(calls["repriced_credits"])  # plain decimals, never 5E-9
    # straight from the gateway's database: the calls it did not import are listed too
    assert main(["usage", "reconcile", str(hub_db)]) == 0
    out = capsys.readouterr().out
    assert "reconciliation of 15 call(s)" in out and "not imported: 3" in out


def test_cli_reconcile_of_an_empty_period_says_what_to_do(
    hub_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["usage", "reconcile", str(hub_db), "--from", "2030-01-01"])
    assert code == 0
    out = capsys.readouterr().out
    assert "reconciliation of 0 call(s)" in out and "usage import" in out


def test_cli_reconcile_refuses_a_bad_date(hub_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "reconcile", str(hub_db), "--from", "yesterday-ish"]) == 2
    assert "--from" in capsys.readouterr().err


def test_cli_import_into_the_store(
    hub_db: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", db_url, "usage", "import", str(hub_db), "--quiet"]) == 0
    assert "imported 12 new call(s) into the store" in capsys.readouterr().out
    code = main(["--database-url", db_url, "usage", "reconcile", "--rates", str(hub_db)])
    assert code == 0
    assert "reconciliation of 12 call(s)" in capsys.readouterr().out


# -- PostgreSQL: the gateway running on it --------------------------------------------------


@pytest.mark.postgres
def test_import_from_a_postgresql_gateway(pg_url: str, hub_db: Path, tmp_path: Path) -> None:
    build_postgres(pg_url)
    from_pg = read_hub_database(pg_url, chunk_rows=5)
    from_file = read_hub_database(hub_db)
    columns = ["source_id", "time", "user", "provider", "model", "type", "input_tokens",
               "output_tokens", "cache_read_tokens", "cache_write_tokens", "images"]  # fmt: skip
    pd.testing.assert_frame_equal(
        from_pg.usage[columns].astype({c: str for c in columns[2:6]}),
        from_file.usage[columns].astype({c: str for c in columns[2:6]}),
    )
    assert from_pg.usage["stored_credits"].tolist() == from_file.usage["stored_credits"].tolist()
    assert from_pg.report.skipped_status == from_file.report.skipped_status
    timeline = read_hub_rates(pg_url)
    frame, _ = reconcile_import(from_pg, timeline)
    assert _classes(frame) == EXPECTED
    # the importer's sessions are read-only transactions: a write through one fails
    db = ReadOnlyPostgres(pg_url, what="the gateway database")
    try:
        with pytest.raises(StorageError, match="cannot read from the gateway database"):
            list(db.records('DELETE FROM "ModelCalls" RETURNING "id"', 10))
    finally:
        db.close()
    assert len(read_hub_database(pg_url).usage) == 12
    # incremental from PostgreSQL into Parquet
    target = tmp_path / "pg.parquet"
    assert import_gateway_usage(pg_url, target).report.rows_imported == 12
    assert import_gateway_usage(pg_url, target).report.already_imported == 12


def test_statuses_and_causes_are_documented() -> None:
    from hubkit.replay import reconcile_rules

    doc = reconcile_rules.__doc__ or ""
    for value in [*Status, *Cause]:
        assert f"``{value.value}``" in doc, value


def test_t0_is_the_month(hub_db: Path) -> None:
    usage = read_hub_database(hub_db).usage
    assert usage["time"].min() >= T0


def test_fact_sqlite_keeps_credits_as_floats_and_the_import_recovers_8_places(
    tmp_path: Path,
) -> None:
    # DECIMAL(20,8) on SQLite is REAL; SQLite's text → float conversion can be an ulp off
    # the nearest double, whose shortest text then has 17 digits (seen in the benchmark's
    # million calls): the importer rounds a float to the column's 8 places.
    db = build_sqlite(tmp_path / "hub.db")
    conn = sqlite3.connect(db)
    conn.execute('UPDATE "ModelCalls" SET credits = ? WHERE id = ?', (0.18405000999999999, "c15"))
    conn.execute('UPDATE "ModelCalls" SET credits = ? WHERE id = ?', (0.0075, "c02"))
    conn.commit()
    conn.close()
    usage = read_hub_database(db).usage.set_index("source_id")
    assert usage.loc["c15", "stored_credits"] == Decimal("0.18405001")
    assert usage.loc["c02", "stored_credits"] == Decimal("0.0075")
