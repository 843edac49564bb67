"""Gateway databases as AIGNE Hub keeps them: its own table and column names.

``ModelCalls``, ``Usages``, ``AiModelRates``, ``AiModelRateHistories``, ``AiProviders`` with
Sequelize's mixed-case column names, on SQLite (a file) or PostgreSQL (quoted identifiers,
the same names). :data:`CALLS` is one of each case the reconciliation must classify, with
the status and cause each must get (:data:`EXPECTED`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

T0 = pd.Timestamp("2025-03-01T00:00:00Z")
#: the gateway raised gpt-4o's prices ten days into the month
CHANGE = T0 + pd.Timedelta(days=10)
_T = int(T0.timestamp())
_CHANGE = int(CHANGE.timestamp())

PROVIDERS = [("p-openai", "openai", "OpenAI"), ("p-anthropic", "anthropic", "Anthropic")]
#: id, providerId, model, type, inputRate, outputRate, unitCosts, caching
RATES = [
    ("r1", "p-openai", "gpt-4o", "chatCompletion", "0.0000025", "0.00001",
     {"input": "0.0000025", "output": "0.00001"}, None),
    ("r2", "p-openai", "gpt-image-1", "imageGeneration", "0.000005", "0.04", None, None),
    ("r3", "p-openai", "text-embedding-3-small", "embedding", "0.0000000025", "0", None, None),
    # a cache read rate of 0 is honoured (cached tokens free); writes have their own rate
    ("r4", "p-anthropic", "claude-sonnet", "chatCompletion", "0.000003", "0.000015", None,
     {"readRate": "0", "writeRate": "0.00000375"}),
]  # fmt: skip
#: id, providerId, model, type, createdAt, previousRates, currentRates
HISTORY = [
    ("h1", "p-openai", "gpt-4o", "chatCompletion", CHANGE,
     {"inputRate": "0.000002", "outputRate": "0.000008"},
     {"inputRate": "0.0000025", "outputRate": "0.00001"}),
]  # fmt: skip


def _mc(
    cid: str, model: str, kind: str, metrics: dict[str, Any] | None, credits: str | None,
    *, status: str = "success", when: int = _T + 3600, provider: str = "p-openai",
    total: int = 0, user: str = "did:user:alice",
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": cid, "providerId": provider, "model": model, "type": kind,
        "usageMetrics": metrics, "credits": credits, "status": status, "callTime": when,
        "totalUsage": total, "userDid": user,
    }  # fmt: skip


OLD = {"inputTokens": 1000, "outputTokens": 500}  # old rate: 0.002 + 0.004 = 0.006
CALLS = [
    _mc("c01", "gpt-4o", "chatCompletion", OLD, "0.00600000", when=_CHANGE - 60),
    # new rate: 1000 × 0.0000025 + 500 × 0.00001 = 0.0075
    _mc("c02", "gpt-4o", "chatCompletion", OLD, "0.00750000", when=_CHANGE + 60),
    # priced when it ended, at the old rate, though it began after the change
    _mc(
        "c03", "gpt-4o", "chatCompletion", OLD, "0.00600000", when=_CHANGE + 1, user="did:user:bob"
    ),
    # 10 × 0.0000000025 = 0.000000025: 8 places ROUND_HALF_UP → 0.00000003 (half-even: …02)
    _mc("c04", "text-embedding-3-small", "embedding", {"inputTokens": 10}, "0.00000003"),
    # the same call stored truncated: one unit of the 8th place
    _mc("c05", "text-embedding-3-small", "embedding", {"inputTokens": 10}, "0.00000002"),
    _mc("c06", "gpt-4o", "chatCompletion", {"inputTokens": 5}, "0", status="failed"),
    _mc("c07", "gpt-4o", "chatCompletion", None, None, status="processing"),
    _mc("c08", "gpt-9", "chatCompletion", {"inputTokens": 10}, "0.00010000"),  # unknown model
    # an image call bills its prompt too: 100 × 0.000005 + 2 images × 0.04 = 0.0805
    _mc(
        "c09",
        "gpt-image-1",
        "imageGeneration",
        {"inputTokens": 100, "numberOfImageGeneration": 2},
        "0.08050000",
    ),
    # cache reads free (readRate 0), writes 0.00000375: 100 × 0.000003 + 200 × 0.00000375
    _mc(
        "c10",
        "claude-sonnet",
        "chatCompletion",
        {"inputTokens": 100, "cacheReadInputTokens": 1000, "cacheCreationInputTokens": 200},
        "0.00105000",
        provider="p-anthropic",
        user="did:user:bob",
    ),
    # no cache rate on gpt-4o: 400 cache reads at the input rate: (100 + 400) × 0.0000025
    _mc(
        "c11",
        "gpt-4o",
        "chatCompletion",
        {"inputTokens": 100, "cacheReadInputTokens": 400},
        "0.00125000",
        when=_CHANGE + 7200,
    ),
    _mc("c12", "tts-1", "audioGeneration", {"inputTokens": 10}, "0.00100000"),
    _mc("c13", "gpt-4o", "chatCompletion", None, "0.50000000", when=_CHANGE + 60),
    _mc("c14", "gpt-4o", "chatCompletion", OLD, None, when=_CHANGE + 60),
    _mc("c15", "gpt-4o", "chatCompletion", OLD, "1.00000000", when=_CHANGE + 86400),
]
#: source_id → (status, cause) the reconciliation must give
EXPECTED = {
    "c01": ("match", "none"),
    "c02": ("match", "none"),
    "c03": ("mismatch", "rate changed mid-flight"),
    "c04": ("match", "none"),
    "c05": ("mismatch", "rounding at the stored precision"),
    "c06": ("not imported", "not billed"),
    "c07": ("not imported", "not billed"),
    "c08": ("unsupported", "no rate"),
    "c09": ("match", "none"),
    "c10": ("match", "none"),
    "c11": ("match", "none"),
    "c12": ("not imported", "unsupported type"),
    "c13": ("mismatch", "missing usage"),
    "c14": ("no stored credits", "no stored credits"),
    "c15": ("mismatch", "unexplained"),
}
#: a Usages row (the billing table): model as provider/model, createdAt as text
USAGES = [
    {"id": "u1", "createdAt": "2025-03-02 00:05:00.000 +00:00", "promptTokens": 1000,
     "completionTokens": 500, "type": "chatCompletion", "model": "openai/gpt-4o",
     "appId": "app1", "userDid": "did:user:carol", "usedCredits": "0.006"},
]  # fmt: skip

_DDL = {
    "AiProviders": [("id", "TEXT PRIMARY KEY"), ("name", "TEXT"), ("displayName", "TEXT")],
    "AiModelRates": [
        ("id", "TEXT PRIMARY KEY"), ("providerId", "TEXT"), ("model", "TEXT"),
        ("type", "TEXT"), ("inputRate", "DECIMAL(20,10)"), ("outputRate", "DECIMAL(20,10)"),
        ("unitCosts", "JSON"), ("caching", "JSON"), ("createdAt", "TIMESTAMPTZ"),
    ],
    "AiModelRateHistories": [
        ("id", "TEXT PRIMARY KEY"), ("providerId", "TEXT"), ("model", "TEXT"),
        ("type", "TEXT"), ("changeType", "TEXT"), ("previousRates", "JSON"),
        ("currentRates", "JSON"), ("createdAt", "TIMESTAMPTZ"),
    ],
    "ModelCalls": [
        ("id", "TEXT PRIMARY KEY"), ("providerId", "TEXT"), ("model", "TEXT"),
        ("credentialId", "TEXT"), ("type", "TEXT"), ("totalUsage", "INTEGER"),
        ("usageMetrics", "JSON"), ("credits", "DECIMAL(20,8)"), ("status", "TEXT"),
        ("duration", "REAL"), ("errorReason", "TEXT"), ("appDid", "TEXT"),
        ("userDid", "TEXT"), ("requestId", "TEXT"), ("metadata", "JSON"),
        ("callTime", "BIGINT"), ("traceId", "TEXT"),
    ],
    "Usages": [
        ("id", "TEXT PRIMARY KEY"), ("createdAt", "TIMESTAMPTZ"), ("promptTokens", "INTEGER"),
        ("completionTokens", "INTEGER"), ("cacheCreationInputTokens", "INTEGER"),
        ("cacheReadInputTokens", "INTEGER"), ("numberOfImageGeneration", "INTEGER"),
        ("mediaDuration", "INTEGER"), ("type", "TEXT"), ("model", "TEXT"),
        ("appId", "TEXT"), ("userDid", "TEXT"), ("usageReportStatus", "TEXT"),
        ("usedCredits", "DECIMAL(20,8)"),
    ],
}  # fmt: skip


def ddl(postgres: bool) -> list[str]:
    out = []
    for table, columns in _DDL.items():
        parts = []
        for name, kind in columns:
            if not postgres and kind == "TIMESTAMPTZ":
                kind = "TEXT"  # Sequelize on SQLite keeps dates as text
            parts.append(f'"{name}" {kind}')
        out.append(f'CREATE TABLE "{table}" ({", ".join(parts)})')
    return out


def _rows(postgres: bool) -> dict[str, list[dict[str, Any]]]:
    def js(value: Any) -> Any:
        return None if value is None else json.dumps(value)

    def when(stamp: pd.Timestamp) -> Any:
        return stamp.to_pydatetime() if postgres else stamp.strftime("%Y-%m-%d %H:%M:%S.000 +00:00")

    return {
        "AiProviders": [{"id": i, "name": n, "displayName": d} for i, n, d in PROVIDERS],
        "AiModelRates": [
            {
                "id": i,
                "providerId": p,
                "model": m,
                "type": t,
                "inputRate": Decimal(a),
                "outputRate": Decimal(b),
                "unitCosts": js(c),
                "caching": js(k),
                "createdAt": when(T0 - pd.Timedelta(days=30)),
            }
            for i, p, m, t, a, b, c, k in RATES
        ],  # fmt: skip
        "AiModelRateHistories": [
            {
                "id": i,
                "providerId": p,
                "model": m,
                "type": t,
                "changeType": "manual_update",
                "previousRates": js(before),
                "currentRates": js(after),
                "createdAt": when(at),
            }
            for i, p, m, t, at, before, after in HISTORY
        ],  # fmt: skip
        "ModelCalls": [
            {
                **c,
                "usageMetrics": js(c["usageMetrics"]),
                "credentialId": "cred-1",
                "appDid": "app1",
                "credits": None if c["credits"] is None else Decimal(c["credits"]),
            }
            for c in CALLS
        ],  # fmt: skip
        "Usages": [
            {
                **u,
                "createdAt": u["createdAt"]
                if not postgres
                else pd.Timestamp(u["createdAt"]).to_pydatetime(),
                "usedCredits": Decimal(u["usedCredits"]),
            }
            for u in USAGES
        ],  # fmt: skip
    }


def _insert(table: str, row: dict[str, Any], placeholder: str) -> tuple[str, list[Any]]:
    names = ", ".join(f'"{k}"' for k in row)
    marks = ", ".join(placeholder for _ in row)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values())


def build_sqlite(path: Path, extra_calls: Iterable[dict[str, Any]] = ()) -> Path:
    """The gateway's SQLite file with :data:`CALLS` (and ``extra_calls``)."""
    conn = sqlite3.connect(path)
    for statement in ddl(postgres=False):
        conn.execute(statement)
    rows = _rows(postgres=False)
    rows["ModelCalls"] += [_sqlite_call(c) for c in extra_calls]
    for table, records in rows.items():
        for record in records:
            values = [str(v) if isinstance(v, Decimal) else v for v in record.values()]
            sql, _ = _insert(table, record, "?")
            conn.execute(sql, values)
    conn.commit()
    conn.close()
    return path


def _sqlite_call(call: dict[str, Any]) -> dict[str, Any]:
    metrics = call.get("usageMetrics")
    return {
        **call,
        "usageMetrics": None if metrics is None else json.dumps(metrics),
        "credentialId": "cred-1",
        "appDid": "app1",
    }


def add_calls(path: Path, calls: Sequence[dict[str, Any]]) -> None:
    """More calls into an existing SQLite gateway database."""
    conn = sqlite3.connect(path)
    for call in calls:
        record = _sqlite_call(call)
        sql, values = _insert("ModelCalls", record, "?")
        conn.execute(sql, values)
    conn.commit()
    conn.close()


def build_postgres(url: str) -> None:
    """The same gateway database on PostgreSQL (quoted mixed-case identifiers)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in ddl(postgres=True):
            conn.exec_driver_sql(statement)
        for table, records in _rows(postgres=True).items():
            for record in records:
                sql, values = _insert(table, record, "%s")
                conn.exec_driver_sql(sql, tuple(values))
    engine.dispose()


call = _mc
