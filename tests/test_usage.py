"""Usage schema, CSV/Parquet import and export, the generator, the hub database importer."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _billing_data import T0, calls, mixed_rates, simple_rates

from hubkit.errors import StorageError, ValidationError
from hubkit.replay.reconcile import reconcile
from hubkit.replay.timeline import timeline_from_rates
from hubkit.usage import (
    USAGE_COLUMNS,
    generate_usage,
    inapplicable_counts,
    read_hub_database,
    read_hub_export,
    read_usage,
    validate_usage,
    write_usage,
)

# -- generator ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traffic() -> pd.DataFrame:
    return generate_usage(mixed_rates(), n_calls=50_000, n_users=500, days=14, seed=7)


def test_generator_is_deterministic_per_seed() -> None:
    a = generate_usage(mixed_rates(), n_calls=2_000, n_users=50, seed=3)
    b = generate_usage(mixed_rates(), n_calls=2_000, n_users=50, seed=3)
    c = generate_usage(mixed_rates(), n_calls=2_000, n_users=50, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["input_tokens"].equals(c["input_tokens"])


def test_generator_shape_and_schema(traffic: pd.DataFrame) -> None:
    assert list(traffic.columns) == list(USAGE_COLUMNS)
    assert len(traffic) == 50_000
    assert traffic["time"].is_monotonic_increasing
    assert str(traffic["time"].dt.tz) == "UTC"
    # Already in the validated shape: validation keeps it as it is.
    pd.testing.assert_frame_equal(validate_usage(traffic), traffic)
    start, end = traffic["time"].min(), traffic["time"].max()
    assert start >= T0 and end < T0 + pd.Timedelta(days=14)


def test_generator_models_come_from_the_rates(traffic: pd.DataFrame) -> None:
    offered = {(r.provider, r.model, r.type.value) for r in mixed_rates()}
    used = set(traffic[["provider", "model", "type"]].astype(str).itertuples(index=False))
    assert used <= offered
    assert traffic["type"].astype(str).value_counts(normalize=True)["chatCompletion"] > 0.7


def test_generator_heavy_tail_and_arrivals(traffic: pd.DataFrame) -> None:
    per_user = traffic.groupby("user", observed=True).size().sort_values(ascending=False)
    top_decile = per_user.head(len(per_user) // 10).sum()
    assert top_decile / per_user.sum() > 0.4  # a few users make most calls
    first = traffic.groupby("user", observed=True)["time"].min()
    late = (first > T0 + pd.Timedelta(days=7)).mean()
    assert 0.05 < late < 0.6  # users keep arriving


def test_generator_diurnal_pattern(traffic: pd.DataFrame) -> None:
    hours = traffic["time"].dt.hour.value_counts(normalize=True)
    assert hours.loc[14:16].mean() > 2 * hours.loc[[2, 3, 4]].mean()


def test_generator_counts_per_type(traffic: pd.DataFrame) -> None:
    kind = traffic["type"].astype(str)
    chat = traffic[kind == "chatCompletion"]
    assert (chat["input_tokens"] + chat["cache_read_tokens"] > 0).all()
    assert (chat["images"] == 0).all() and (chat["seconds"] == 0).all()
    assert (chat["cache_read_tokens"] > 0).mean() > 0.1
    images = traffic[kind == "imageGeneration"]
    assert images["images"].between(1, 4).all() and (images["output_tokens"] == 0).all()
    video = traffic[kind == "video"]
    assert (video["seconds"] > 0).all()
    embed = traffic[kind == "embedding"]
    assert (embed["output_tokens"] == 0).all() and (embed["input_tokens"] > 0).all()
    assert not inapplicable_counts(traffic).any()


# -- files ----------------------------------------------------------------------------------


def test_csv_and_parquet_round_trip(tmp_path: Path, traffic: pd.DataFrame) -> None:
    sample = traffic.head(500)
    for name in ("usage.csv", "usage.parquet"):
        path = write_usage(sample, tmp_path / name)
        back = read_usage(path)
        assert list(back.columns) == list(USAGE_COLUMNS)
        pd.testing.assert_series_equal(back["time"], sample["time"], check_names=False)
        for column in ("user", "model", "type"):
            assert back[column].astype(str).tolist() == sample[column].astype(str).tolist()
        for column in ("input_tokens", "cache_read_tokens", "images"):
            assert back[column].tolist() == sample[column].tolist()
        assert np.allclose(back["seconds"], sample["seconds"])


def _write_csv(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


HEADER = (
    "time,user,app,provider,model,type,input_tokens,output_tokens,cache_read_tokens,"
    "cache_write_tokens,images,seconds\n"
)
GOOD = "2025-01-01T00:00:00Z,u1,a,openai,chat,chatCompletion,10,5,0,0,0,0\n"


@pytest.mark.parametrize(
    ("row", "column", "where"),
    [
        ("not-a-time,u1,a,openai,chat,chatCompletion,10,5,0,0,0,0\n", "time", "row 2 (line 3)"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,chatCompletion,-1,5,0,0,0,0\n", "input_tokens",
         "row 2 (line 3)"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,chatCompletion,1.5,5,0,0,0,0\n", "input_tokens",
         "row 2"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,chatCompletion,x,5,0,0,0,0\n", "input_tokens",
         "row 2"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,chat,10,5,0,0,0,0\n", "type", "row 2"),
        ("2025-01-01T00:00:00Z,,a,openai,chat,chatCompletion,10,5,0,0,0,0\n", "user", "row 2"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,chatCompletion,10,,0,0,0,0\n", "output_tokens",
         "row 2"),
        ("2025-01-01T00:00:00Z,u1,a,openai,chat,video,0,0,0,0,0,inf\n", "seconds", "row 2"),
    ],
)  # fmt: skip
def test_bad_csv_rows_name_column_and_row(
    tmp_path: Path, row: str, column: str, where: str
) -> None:
    path = _write_csv(tmp_path / "bad.csv", HEADER + GOOD + row)
    with pytest.raises(ValidationError) as info:
        read_usage(path)
    message = str(info.value)
    assert f"'{column}'" in message and where in message and "bad.csv" in message
    assert info.value.field == column


def test_missing_column_and_unknown_format(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "short.csv", "time,user,provider\n2025-01-01,u,openai\n")
    with pytest.raises(ValidationError, match="missing column.*'model'"):
        read_usage(path)
    with pytest.raises(ValidationError, match="cannot tell the format"):
        read_usage(tmp_path / "usage.xlsx")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match="Parquet"):
        read_usage(broken)


def test_bad_parquet_values_are_reported(tmp_path: Path) -> None:
    frame = calls({"input": 5}, {"input": 7, "user": "u2"})
    frame.loc[1, "input_tokens"] = -3
    frame.to_parquet(tmp_path / "neg.parquet")
    with pytest.raises(ValidationError, match=r"'input_tokens', row 2: -3 must be ≥ 0"):
        read_usage(tmp_path / "neg.parquet")


def test_optional_columns_default_and_naive_times_are_utc() -> None:
    frame = pd.DataFrame(
        {"time": ["2025-01-01 10:00"], "user": ["u"], "provider": ["p"], "model": ["m"],
         "type": ["embedding"], "input_tokens": [3]}
    )  # fmt: skip
    out = validate_usage(frame)
    assert out.loc[0, "time"] == pd.Timestamp("2025-01-01T10:00Z")
    assert out.loc[0, "app"] == "" and out.loc[0, "images"] == 0 and out.loc[0, "seconds"] == 0


def test_inapplicable_counts_are_flagged() -> None:
    frame = validate_usage(
        calls({"input": 1, "images": 2}, {"type": "imageGeneration", "images": 1, "output": 9})
    )
    assert inapplicable_counts(frame).tolist() == [True, True]


# -- the hub's own database -------------------------------------------------------------------


def _hub_db(path: Path) -> Path:
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
        CREATE TABLE "Usages" (
            id TEXT PRIMARY KEY, createdAt TEXT, updatedAt TEXT, promptTokens INTEGER,
            completionTokens INTEGER, cacheCreationInputTokens INTEGER,
            cacheReadInputTokens INTEGER, numberOfImageGeneration INTEGER,
            mediaDuration INTEGER, apiKey TEXT, type TEXT, model TEXT, modelParams JSON,
            appId TEXT, userDid TEXT, usageReportStatus TEXT, usedCredits DECIMAL);
        INSERT INTO "AiProviders" VALUES ('p1', 'openai', 'OpenAI');
        """
    )
    t = int(T0.timestamp())
    model_calls = [
        ("c1", "p1", "chat", "chatCompletion", 0,
         {"inputTokens": 100, "outputTokens": 10, "cacheReadInputTokens": 40}, "80.00000000",
         "success", t),
        ("c2", "p1", "chat", "chatCompletion", 0, {"inputTokens": 5}, "0", "failed", t + 1),
        ("c3", "p1", "chat", "chatCompletion", 0, None, "0", "processing", t + 2),
        ("c4", "p1", "img", "imageGeneration", 2, {}, "8.00000000", "success", t + 3),
        ("c5", "p1", "chat", "audioGeneration", 0, {}, "0", "success", t + 4),
        ("c6", "p1", "nope", "chatCompletion", 0, {"inputTokens": 1}, "1", "success", t + 5),
        ("c7", "p1", "chat", "chatCompletion", 0, {"inputTokens": 10, "outputTokens": 1},
         "9.00000000", "success", t + 6),
    ]  # fmt: skip
    for cid, pid, model, kind, total, metrics, credits, status, when in model_calls:
        conn.execute(
            'INSERT INTO "ModelCalls" (id, providerId, model, credentialId, type, totalUsage, '
            "usageMetrics, credits, status, appDid, userDid, callTime) "
            "VALUES (?, ?, ?, 'cred', ?, ?, ?, ?, ?, 'app1', 'did:user:1', ?)",
            (cid, pid, model, kind, total, None if metrics is None else json.dumps(metrics),
             credits, status, when),
        )  # fmt: skip
    conn.execute(
        'INSERT INTO "Usages" (id, createdAt, updatedAt, promptTokens, completionTokens, '
        "cacheCreationInputTokens, cacheReadInputTokens, numberOfImageGeneration, "
        "mediaDuration, type, model, appId, userDid, usedCredits) VALUES "
        "('u1', '2025-01-01 00:05:00.000 +00:00', '2025-01-01 00:05:00.000 +00:00', 20, 4, 0, "
        "0, 0, NULL, 'chatCompletion', 'openai/chat', 'app1', 'did:user:2', 14)"
    )
    conn.commit()
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hub_model_calls_import_is_read_only_and_bills_only_success(tmp_path: Path) -> None:
    db = _hub_db(tmp_path / "aigne-hub.db")
    before = _digest(db)
    result = read_hub_database(db)
    assert _digest(db) == before
    usage, report = result.usage, result.report
    assert report.rows_read == 7 and report.rows_imported == 4
    assert report.skipped_status == {"failed": 1, "processing": 1}
    assert report.skipped_types == {"audioGeneration": 1}
    assert usage["provider"].astype(str).unique().tolist() == ["openai"]
    first = usage.iloc[0]
    assert first["time"] == T0 and first["user"] == "did:user:1" and first["app"] == "app1"
    assert (first["input_tokens"], first["output_tokens"], first["cache_read_tokens"]) == (
        100, 10, 40,
    )  # fmt: skip
    image = usage[usage["type"] == "imageGeneration"].iloc[0]
    assert image["images"] == 2  # counted in totalUsage
    assert usage["stored_credits"].iloc[0] == Decimal("80.00000000")
    assert any("status 'failed'" in line for line in report.lines())


def test_hub_import_subtracts_cache_reads_for_inclusive_providers(tmp_path: Path) -> None:
    db = _hub_db(tmp_path / "hub.db")
    usage = read_hub_database(db, input_includes_cache=["openai"]).usage
    assert usage.iloc[0]["input_tokens"] == 60


def test_hub_database_is_opened_read_only(tmp_path: Path) -> None:
    db = _hub_db(tmp_path / "hub.db")
    # The importer's connection string: a write through it must fail.
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute('DELETE FROM "ModelCalls"')
    conn.close()
    with pytest.raises(StorageError, match="not found"):
        read_hub_database(tmp_path / "missing.db")


def test_hub_usages_table_and_csv_export(tmp_path: Path) -> None:
    db = _hub_db(tmp_path / "hub.db")
    usages = read_hub_database(db, table="Usages").usage
    assert len(usages) == 1
    row = usages.iloc[0]
    assert (row["provider"], row["model"], row["user"]) == ("openai", "chat", "did:user:2")
    assert row["time"] == T0 + pd.Timedelta(minutes=5)
    # A CSV export of ModelCalls (no AiProviders join there: map the ids).
    conn = sqlite3.connect(db)
    pd.read_sql_query('SELECT * FROM "ModelCalls"', conn).to_csv(tmp_path / "mc.csv", index=False)
    conn.close()
    exported = read_hub_export(tmp_path / "mc.csv", providers={"p1": "openai"})
    direct = read_hub_database(db)
    assert exported.report.rows_imported == direct.report.rows_imported
    assert exported.usage["input_tokens"].tolist() == direct.usage["input_tokens"].tolist()


def test_reconcile_reprices_and_compares(tmp_path: Path) -> None:
    usage = read_hub_database(_hub_db(tmp_path / "hub.db")).usage
    table, summary = reconcile(usage, timeline_from_rates(simple_rates()))
    status = dict(zip(table["source_id"], table["status"], strict=True))
    # c1: 100×0.5 + 10×1 + 40×0.5 (cache read falls back to inputRate) = 80 → match.
    assert status["c1"] == "match"
    assert status["c4"] == "match"  # 2 images × 4
    assert status["c6"] == "unsupported"  # no rate for 'nope'
    assert status["c7"] == "mismatch"  # 10×0.5 + 1×1 = 6, stored 9
    assert summary["mismatch"] == 1 and summary["unsupported"] == 1
    assert table.loc[table["source_id"] == "c7", "difference"].iloc[0] == Decimal("3")
