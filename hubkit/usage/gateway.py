"""Import the gateway's own usage records (AIGNE Hub's SQLite database or a CSV export of
its tables) into the usage shape, and reconcile their stored credits with a re-pricing.

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
from hubkit.decimals import EXACT, quantize
from hubkit.domain import RateType
from hubkit.errors import StorageError, ValidationError
from hubkit.usage.schema import inapplicable_counts, validate_usage

_RATE_TYPES = frozenset(t.value for t in RateType)


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
    # the gateway's tables and CSV headers name their columns with strings
    records_in = cast("list[dict[str, Any]]", raw.to_dict("records"))
    for row_no, rec in enumerate(records_in, start=1):
        try:
            if table == "ModelCalls":
                status = str(rec.get("status") or "")
                if status != "success":
                    skipped_status[status or "(empty)"] += 1
                    continue
                out = _from_model_call(rec)
            else:
                out = _from_usage_row(rec)
        except ValidationError as exc:
            raise ValidationError(f"{source} {table} row {row_no}: {exc}") from None
        if out["type"] not in _RATE_TYPES:
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


def _from_model_call(rec: Mapping[str, Any]) -> dict[str, Any]:
    metrics = _metrics(rec.get("usageMetrics"))
    kind = str(rec.get("type") or "chatCompletion")
    total = rec.get("totalUsage")
    images = metrics.get("numberOfImageGeneration")
    seconds = metrics.get("mediaDuration")
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
        # Image and video calls count their units in totalUsage when the metrics do not.
        "images": _int(images if images is not None else total)
        if kind == RateType.IMAGE_GENERATION.value
        else 0,
        "seconds": float(Decimal(str(seconds if seconds is not None else (total or 0))))
        if kind == RateType.VIDEO.value
        else 0.0,
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


def reconcile(
    usage: pd.DataFrame, timeline: pd.DataFrame, *, places: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Re-price imported rows with the rates in force and compare with ``stored_credits``.

    The gateway stores ``ModelCalls.credits`` with 8 places: the re-priced credits (10
    places) are compared after rounding to ``places``. Returns one row per call (status
    ``match`` / ``mismatch`` / ``unsupported`` / ``no stored credits``) and a summary.
    """
    if "stored_credits" not in usage.columns:
        raise ValidationError(
            "reconcile needs a stored_credits column (import with read_hub_database)",
            field="stored_credits",
        )
    # Imported here: the replay timeline reads the usage schema (hubkit.usage), so a
    # module-level import would make the two packages import each other at load time.
    from hubkit.replay.timeline import price_exact

    priced = price_exact(usage, timeline)
    step = Decimal(1).scaleb(-places)
    statuses: list[str] = []
    diffs: list[Decimal | None] = []  # None: unsupported, or no stored credits to compare
    for stored, credits in zip(usage["stored_credits"], priced["credits"], strict=True):
        if credits is None:
            statuses.append("unsupported")
            diffs.append(None)
        elif stored is None:
            statuses.append("no stored credits")
            diffs.append(None)
        else:
            diff = EXACT.subtract(Decimal(stored), quantize(credits).quantize(step))
            diffs.append(diff)
            statuses.append("match" if diff == 0 else "mismatch")
    out = usage[["time", "user", "provider", "model", "type"]].copy()
    if "source_id" in usage.columns:
        out.insert(0, "source_id", usage["source_id"].to_numpy())
    out["stored_credits"] = usage["stored_credits"].to_numpy()
    out["repriced_credits"] = priced["credits"].to_numpy()
    out["difference"] = np.array(diffs, dtype=object)  # Decimals (and None) as they are
    out["status"] = statuses
    counts = Counter(statuses)
    total_diff = sum((d for d in diffs if d is not None), Decimal(0))
    summary = {
        "rows": len(out),
        "match": counts.get("match", 0),
        "mismatch": counts.get("mismatch", 0),
        "unsupported": counts.get("unsupported", 0),
        "no_stored_credits": counts.get("no stored credits", 0),
        "stored_total": sum(
            (Decimal(s) for s in usage["stored_credits"] if s is not None), Decimal(0)
        ),
        "repriced_total": sum((c for c in priced["credits"] if c is not None), Decimal(0)),
        "difference_total": total_diff,
    }
    return out, summary
