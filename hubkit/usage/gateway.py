"""Import the gateway's own usage records (AIGNE Hub's SQLite database or a CSV export of
its tables) into the usage shape (:func:`hubkit.replay.reconcile.reconcile` re-prices them against
their stored credits).

Tables and columns (domain.md, "The gateway's usage records"):

- ``ModelCalls``: one row per call (``status`` processing | success | failed; only
  ``success`` is billed). Provider via ``providerId`` (joined to ``AiProviders.name`` when
  that table exists, as the gateway does), tokens in the ``usageMetrics`` JSON, time in
  ``callTime`` (unix seconds), stored ``credits`` with 8 decimal places.
- ``Usages``: the billing rows (written only for successful calls). ``model`` is
  ``provider/model``; counts in ``promptTokens``, ``completionTokens``,
  ``cacheCreationInputTokens``, ``cacheReadInputTokens``, ``numberOfImageGeneration``,
  ``mediaDuration``; stored ``usedCredits``; time ``createdAt``.

The database is opened read-only (``file:…?mode=ro``): an import can never change it.
Token counts are taken as the gateway charges them (input excludes cached tokens); for
providers whose input count *includes* cache reads (OpenAI's ``prompt_tokens``), name them
in ``input_includes_cache`` and the importer subtracts the cache reads.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from hubkit._readers import read_csv_frame
from hubkit.domain import billing_rows
from hubkit.errors import StorageError, ValidationError
from hubkit.usage.schema import inapplicable_counts, validate_usage

#: Output counts a ModelCalls row keeps in ``usageMetrics`` under these keys, or else in
#: ``totalUsage``: read only for a type that bills them (:data:`hubkit.domain.BILLING`),
#: since a chat call's ``totalUsage`` is its tokens, not images or seconds.
_UNIT_METRICS = {"images": "numberOfImageGeneration", "seconds": "mediaDuration"}


@dataclass(frozen=True)
class HubImportReport:
    """What the importer read, kept, skipped and noticed."""

    source: str
    table: str
    rows_read: int
    rows_imported: int
    skipped_status: Mapping[str, int] = field(default_factory=dict)
    skipped_types: Mapping[str, int] = field(default_factory=dict)
    inapplicable_rows: int = 0
    clipped_input_rows: int = 0
    unresolved_providers: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [f"{self.source} [{self.table}]: {self.rows_imported} of {self.rows_read} rows"]
        for status, n in sorted(self.skipped_status.items()):
            out.append(f"  skipped {n} call(s) with status {status!r} (only success is billed)")
        for kind, n in sorted(self.skipped_types.items()):
            out.append(f"  skipped {n} call(s) of type {kind!r} (no rate type prices it)")
        if self.inapplicable_rows:
            out.append(
                f"  {self.inapplicable_rows} row(s) carry a count their type ignores "
                "(kept; the gateway's rule ignores it)"
            )
        if self.clipped_input_rows:
            out.append(
                f"  {self.clipped_input_rows} row(s) had fewer input tokens than cache reads "
                "(input set to 0)"
            )
        if self.unresolved_providers:
            out.append(
                "  no provider known for model(s) "
                f"{', '.join(self.unresolved_providers)} (provider set to 'unknown')"
            )
        return out


@dataclass(frozen=True, eq=False)
class HubImport:
    """The imported usage (with ``stored_credits`` and ``source_id`` columns) + report."""

    usage: pd.DataFrame
    report: HubImportReport


_EXPORT_HINT = "export the gateway's ModelCalls or Usages table as CSV with a header row"


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StorageError(f"hub database not found: {path}")
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open hub database {path.name} read-only: {exc}") from None


def _tables(conn: sqlite3.Connection, file: Path) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        raise ValidationError(
            f"hub database {file}: not a readable SQLite database ({exc}); give the "
            "gateway's own SQLite file (or a CSV export with read_hub_export)",
            field="path",
        ) from None
    return {r[0] for r in rows}


def read_hub_database(
    path: str | Path,
    *,
    table: str = "ModelCalls",
    input_includes_cache: Collection[str] = (),
    provider_of_model: Mapping[str, str] | None = None,
) -> HubImport:
    """Import ``ModelCalls`` (default) or ``Usages`` from a hub SQLite file, read-only."""
    file = Path(path)
    conn = _connect_read_only(file)
    try:
        tables = _tables(conn, file)
        if table not in ("ModelCalls", "Usages"):
            raise ValidationError("table must be ModelCalls or Usages", field="table")
        if table not in tables:
            raise StorageError(f"{file.name} has no {table} table (tables: {sorted(tables)})")
        if table == "ModelCalls":
            if "AiProviders" in tables:
                query = (
                    'SELECT mc.*, p."name" AS "providerName" FROM "ModelCalls" mc '
                    'LEFT JOIN "AiProviders" p ON p."id" = mc."providerId"'
                )
            else:
                query = 'SELECT * FROM "ModelCalls"'
        else:
            query = 'SELECT * FROM "Usages"'
        try:
            raw = pd.read_sql_query(query, conn, dtype=object)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise StorageError(f"cannot read {table} from {file.name}: {exc}") from None
    finally:
        conn.close()
    return _normalise(raw, table, file.name, input_includes_cache, provider_of_model)


def read_hub_export(
    path: str | Path,
    *,
    table: str | None = None,
    input_includes_cache: Collection[str] = (),
    provider_of_model: Mapping[str, str] | None = None,
    providers: Mapping[str, str] | None = None,
) -> HubImport:
    """Import a CSV export of ``ModelCalls`` or ``Usages`` (told apart by their columns).

    ``providers`` maps ``providerId`` → provider name for a ModelCalls export (the export
    has no join to AiProviders).
    """
    file = Path(path)
    raw = read_csv_frame(
        file, "hub export", hint=_EXPORT_HINT, dtype=object, keep_default_na=False,
        na_values=[""],
    )  # fmt: skip
    raw = raw.astype(object).where(raw.notna(), None)
    if table is None:
        if "callTime" in raw.columns:
            table = "ModelCalls"
        elif "promptTokens" in raw.columns:
            table = "Usages"
        else:
            raise ValidationError(
                f"{file.name} looks like neither ModelCalls (callTime, usageMetrics…) nor "
                "Usages (promptTokens, completionTokens…)",
                field="path",
            )
    if table == "ModelCalls" and providers:
        raw["providerName"] = [providers.get(str(p)) for p in raw.get("providerId", [])]
    return _normalise(raw, table, file.name, input_includes_cache, provider_of_model)


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{value!r} is not a count") from None
    return int(number)


def _metrics(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(f"usageMetrics is not JSON: {str(value)[:80]!r}") from None
    return parsed if isinstance(parsed, dict) else {}


def _stored(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _split_model(model: str, known: Mapping[str, str] | None) -> tuple[str | None, str]:
    if "/" in model:
        provider, rest = model.split("/", 1)
        return provider.strip().lower(), rest.strip()
    if known and model in known:
        return known[model], model
    return None, model


def _normalise(
    raw: pd.DataFrame,
    table: str,
    source: str,
    input_includes_cache: Collection[str],
    provider_of_model: Mapping[str, str] | None,
) -> HubImport:
    inclusive = {p.lower() for p in input_includes_cache}
    n_read = len(raw)
    skipped_status: Counter[str] = Counter()
    skipped_types: Counter[str] = Counter()
    unresolved: set[str] = set()
    clipped = 0
    records: list[dict[str, Any]] = []
    billed = {b.type: b.output for b in billing_rows()}  # the rate types and what they bill
    # the gateway's tables and CSV headers name their columns with strings
    records_in = cast("list[dict[str, Any]]", raw.to_dict("records"))
    for row_no, rec in enumerate(records_in, start=1):
        try:
            if table == "ModelCalls":
                status = str(rec.get("status") or "")
                if status != "success":
                    skipped_status[status or "(empty)"] += 1
                    continue
                out = _from_model_call(rec, billed)
            else:
                out = _from_usage_row(rec)
        except ValidationError as exc:
            raise ValidationError(f"{source} {table} row {row_no}: {exc}") from None
        if out["type"] not in billed:
            skipped_types[out["type"]] += 1
            continue
        provider, model = out["provider"], out["model"]
        if provider and model.startswith(f"{provider}/"):
            model = model[len(provider) + 1 :]
        elif table == "Usages" or provider is None:
            split_provider, model = _split_model(out["model"], provider_of_model)
            provider = provider or split_provider
        if not provider:
            unresolved.add(out["model"])
            provider = "unknown"
        out["provider"], out["model"] = provider, model
        if provider in inclusive:
            out["input_tokens"] -= out["cache_read_tokens"]
            if out["input_tokens"] < 0:
                clipped += 1
                out["input_tokens"] = 0
        records.append(out)
    columns = [
        "time", "user", "app", "provider", "model", "type", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "images", "seconds", "stored_credits",
        "source_id",
    ]  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=columns)
    if table == "ModelCalls":
        frame["time"] = pd.to_datetime(pd.to_numeric(frame["time"]), unit="s", utc=True)
    else:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="mixed")
    frame["seconds"] = frame["seconds"].astype(np.float64)
    usage = validate_usage(frame, source=f"{source} [{table}]")
    usage["stored_credits"] = frame["stored_credits"].to_numpy()
    report = HubImportReport(
        source=source,
        table=table,
        rows_read=n_read,
        rows_imported=len(usage),
        skipped_status=dict(skipped_status),
        skipped_types=dict(skipped_types),
        inapplicable_rows=int(inapplicable_counts(usage).sum()) if len(usage) else 0,
        clipped_input_rows=clipped,
        unresolved_providers=tuple(sorted(unresolved)),
    )
    return HubImport(usage=usage, report=report)


def _from_model_call(rec: Mapping[str, Any], billed: Mapping[str, str]) -> dict[str, Any]:
    """One ModelCalls row in the usage shape; ``billed``: rate type → the count it bills."""
    metrics = _metrics(rec.get("usageMetrics"))
    kind = str(rec.get("type") or "chatCompletion")
    units = {column: metrics.get(key) for column, key in _UNIT_METRICS.items()}
    unit = billed.get(kind)
    if unit in units and units[unit] is None:
        # The billed unit is counted in totalUsage when the metrics do not count it.
        units[unit] = rec.get("totalUsage")
    return {
        "time": rec.get("callTime"),
        "user": rec.get("userDid") or "",
        "app": rec.get("appDid") or "",
        "provider": rec.get("providerName") or rec.get("providerId"),
        "model": str(rec.get("model") or ""),
        "type": kind,
        "input_tokens": _int(metrics.get("inputTokens")),
        "output_tokens": _int(metrics.get("outputTokens")),
        "cache_read_tokens": _int(metrics.get("cacheReadInputTokens")),
        "cache_write_tokens": _int(metrics.get("cacheCreationInputTokens")),
        "images": _int(units["images"]) if unit == "images" else 0,
        "seconds": float(Decimal(str(units["seconds"] or 0))) if unit == "seconds" else 0.0,
        "stored_credits": _stored(rec.get("credits")),
        "source_id": rec.get("id"),
    }


def _from_usage_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "time": rec.get("createdAt"),
        "user": rec.get("userDid") or "",
        "app": rec.get("appId") or "",
        "provider": None,
        "model": str(rec.get("model") or ""),
        "type": str(rec.get("type") or "chatCompletion"),
        "input_tokens": _int(rec.get("promptTokens")),
        "output_tokens": _int(rec.get("completionTokens")),
        "cache_read_tokens": _int(rec.get("cacheReadInputTokens")),
        "cache_write_tokens": _int(rec.get("cacheCreationInputTokens")),
        "images": _int(rec.get("numberOfImageGeneration")),
        "seconds": float(Decimal(str(rec.get("mediaDuration") or 0))),
        "stored_credits": _stored(rec.get("usedCredits")),
        "source_id": rec.get("id"),
    }
