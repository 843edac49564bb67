"""Import the gateway's own usage records (AIGNE Hub's SQLite database, the same tables on
PostgreSQL, or a CSV export of them) into the usage shape
(:func:`hubkit.replay.reconcile.reconcile` re-prices them against their stored credits).

Tables and columns (domain.md, "The gateway's usage records"):

- ``ModelCalls``: one row per call (``status`` processing | success | failed; only
  ``success`` is billed). Provider via ``providerId`` (joined to ``AiProviders.name`` when
  that table exists, as the gateway does), tokens in the ``usageMetrics`` JSON, time in
  ``callTime`` (unix seconds), stored ``credits`` with 8 decimal places.
- ``Usages``: the billing rows (written only for successful calls). ``model`` is
  ``provider/model``; counts in ``promptTokens``, ``completionTokens``,
  ``cacheCreationInputTokens``, ``cacheReadInputTokens``, ``numberOfImageGeneration``,
  ``mediaDuration``; stored ``usedCredits``; time ``createdAt``.

The gateway's facts the importer keeps: stored credits are read exactly (an Arrow
``decimal128(38, 10)`` column, ``stored_credits``: elements read as Decimal, missing ones
as ``pd.NA``) and compared at their 8 places by the reconciliation; a call that is not
``success`` is never imported as usage (it is listed in :attr:`HubImport.skipped`, reason
``not billed``); an image call keeps its input tokens (the rule bills them at inputRate);
cache counts are kept as they are (the rate timeline decides their price: a missing cache
rate falls back to the input rate, a 0 one is honoured).

A SQLite database is opened read-only (``file:…?mode=ro``), a PostgreSQL one in read-only
transactions: an import can never change the gateway. Rows are read a chunk at a time
(``chunk_rows``) with a progress callback, and ``known_ids`` (the gateway ids already
imported) makes a re-run import only new calls. Token counts are taken as the gateway
charges them (input excludes cached tokens); for providers whose input count *includes*
cache reads (OpenAI's ``prompt_tokens``), name them in ``input_includes_cache`` and the
importer subtracts the cache reads.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from hubkit._readers import read_csv_frame
from hubkit.domain import billing_rows
from hubkit.errors import StorageError, ValidationError
from hubkit.store.external import ReadOnlyPostgres
from hubkit.usage.schema import USAGE_COLUMNS, inapplicable_counts, validate_usage

__all__ = [
    "GATEWAY_TABLES",
    "SKIP_NOT_BILLED",
    "SKIP_UNSUPPORTED_TYPE",
    "STORED_CREDITS_TYPE",
    "HubImport",
    "HubImportReport",
    "ImportProgress",
    "is_database_url",
    "open_gateway",
    "read_hub_database",
    "read_hub_export",
    "stored_credits_array",
]

#: The gateway's tables hubkit reads (Sequelize names, quoted on PostgreSQL).
GATEWAY_TABLES = ("ModelCalls", "Usages", "AiModelRates", "AiModelRateHistories", "AiProviders")
#: Why a gateway row is not imported as usage (the reconciliation's causes of the same name).
SKIP_NOT_BILLED = "not billed"
SKIP_UNSUPPORTED_TYPE = "unsupported type"
#: Stored credits, exact: the rule's 10 places hold the gateway's 8.
STORED_CREDITS_TYPE = pa.decimal128(38, 10)
_STORED_PLACES = 10

#: Output counts a ModelCalls row keeps in ``usageMetrics`` under these keys, or else in
#: ``totalUsage``: read only for a type that bills them (:data:`hubkit.domain.BILLING`),
#: since a chat call's ``totalUsage`` is its tokens, not images or seconds.
_UNIT_METRICS = {"images": "numberOfImageGeneration", "seconds": "mediaDuration"}
_SKIPPED_COLUMNS = (
    "source_id", "time", "user", "provider", "model", "type", "status", "stored_credits",
    "reason",
)  # fmt: skip


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
    already_imported: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.source} [{self.table}]: {self.rows_imported} of {self.rows_read} rows"]
        if self.already_imported:
            out.append(f"  {self.already_imported} call(s) already imported (left as they are)")
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
    """The imported usage (with ``stored_credits`` and ``source_id`` columns), the report,
    and the calls not imported as usage, one row each with its ``reason``
    (:data:`SKIP_NOT_BILLED`, :data:`SKIP_UNSUPPORTED_TYPE`) and the gateway's ``status``."""

    usage: pd.DataFrame
    report: HubImportReport
    skipped: pd.DataFrame = field(default_factory=lambda: _empty_skipped())


@dataclass(frozen=True)
class ImportProgress:
    """How far an import is: rows read of the table's rows (``total`` None: unknown)."""

    rows_read: int
    total: int | None
    rows_kept: int


_EXPORT_HINT = "export the gateway's ModelCalls or Usages table as CSV with a header row"


def is_database_url(source: str | Path) -> bool:
    """Is ``source`` a PostgreSQL URL (else a file path)?"""
    return isinstance(source, str) and source.split(":", 1)[0].split("+", 1)[0] in (
        "postgresql",
        "postgres",
    )


# -- sources: a SQLite file or a PostgreSQL database ---------------------------------------


class _Source(Protocol):
    name: str

    def tables(self) -> set[str]: ...
    def count(self, table: str) -> int: ...

    placeholder: str

    def records(
        self, query: str, chunk_rows: int, params: Sequence[Any] = ()
    ) -> Iterator[list[dict[str, Any]]]: ...
    def close(self) -> None: ...


class _SqliteSource:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise StorageError(f"hub database not found: {path}")
        self.name = path.name
        self._path = path
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open hub database {path.name} read-only: {exc}") from None

    def tables(self) -> set[str]:
        try:
            rows = self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            raise ValidationError(
                f"hub database {self._path}: not a readable SQLite database ({exc}); give "
                "the gateway's own SQLite file (or a CSV export with read_hub_export)",
                field="path",
            ) from None
        return {r[0] for r in rows}

    def count(self, table: str) -> int:
        return int(self._conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])

    placeholder = "?"

    def records(
        self, query: str, chunk_rows: int, params: Sequence[Any] = ()
    ) -> Iterator[list[dict[str, Any]]]:
        try:
            cursor = self._conn.execute(query, tuple(params))
            columns = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(chunk_rows):
                yield [dict(zip(columns, row, strict=True)) for row in rows]
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read from {self.name}: {exc}") from None

    def close(self) -> None:
        self._conn.close()


def open_gateway(source: str | Path) -> _Source:
    """The gateway's database, read-only: a SQLite file or a PostgreSQL URL."""
    if is_database_url(source):
        return ReadOnlyPostgres(str(source), what="the gateway database")
    return _SqliteSource(Path(source))


def _query(table: str, tables: set[str]) -> tuple[str, str]:
    """The query reading ``table`` (ModelCalls joined to AiProviders) and its id column."""
    if table == "ModelCalls" and "AiProviders" in tables:
        return (
            'SELECT mc.*, p."name" AS "providerName" FROM "ModelCalls" mc '
            'LEFT JOIN "AiProviders" p ON p."id" = mc."providerId"'
        ), 'mc."id"'
    return f'SELECT * FROM "{table}"', '"id"'


#: a re-run fetches the new calls by id (not the whole table) when they are at most this
#: share of it; ids go to the database this many at a time
_BY_ID_SHARE = 0.5
_IDS_PER_QUERY = 500


def _new_rows(
    db: _Source, table: str, query: str, id_column: str, known: Collection[str], chunk_rows: int
) -> tuple[Iterator[list[dict[str, Any]]], int] | None:
    """The rows whose id is not in ``known``, read by id, and how many ids were known;
    None when a full read is cheaper (most rows are new)."""
    ids = [row["id"] for part in db.records(f'SELECT "id" FROM "{table}"', 100_000) for row in part]
    fresh = [i for i in ids if str(i) not in known]
    if len(fresh) > _BY_ID_SHARE * len(ids):
        return None

    def batches() -> Iterator[list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for lo in range(0, len(fresh), _IDS_PER_QUERY):
            batch = fresh[lo : lo + _IDS_PER_QUERY]
            marks = ", ".join(db.placeholder for _ in batch)
            sql = f"{query} WHERE {id_column} IN ({marks})"
            for part in db.records(sql, chunk_rows, batch):
                rows.extend(part)
            if len(rows) >= chunk_rows:
                yield rows
                rows = []
        if rows:
            yield rows

    return batches(), len(ids) - len(fresh)


ProgressCallback = Callable[[ImportProgress], None]


def read_hub_database(
    path: str | Path,
    *,
    table: str = "ModelCalls",
    input_includes_cache: Collection[str] = (),
    provider_of_model: Mapping[str, str] | None = None,
    known_ids: Collection[str] = (),
    chunk_rows: int = 50_000,
    progress: ProgressCallback | None = None,
) -> HubImport:
    """Import ``ModelCalls`` (default) or ``Usages`` from the gateway's database, read-only.

    ``path``: the gateway's SQLite file, or a PostgreSQL URL
    (``postgresql+psycopg://user@host/db``) of a gateway running on PostgreSQL. Calls
    whose id is in ``known_ids`` are counted as already imported and left out.
    """
    if table not in ("ModelCalls", "Usages"):
        raise ValidationError("table must be ModelCalls or Usages", field="table")
    db = open_gateway(path)
    try:
        tables = db.tables()
        if table not in tables:
            raise StorageError(f"{db.name} has no {table} table (tables: {sorted(tables)})")
        query, id_column = _query(table, tables)
        known = known_ids if isinstance(known_ids, set | frozenset) else set(known_ids)
        by_id = _new_rows(db, table, query, id_column, known, chunk_rows) if known else None
        if by_id is not None:
            rows, already = by_id
            return _import_frames(
                rows, table, db.name, input_includes_cache, provider_of_model, (), progress,
                None, already=already,
            )  # fmt: skip
        return _import_frames(
            db.records(query, chunk_rows),
            table,
            db.name,
            input_includes_cache,
            provider_of_model,
            known,
            progress,
            db.count(table),
        )
    finally:
        db.close()


def read_hub_export(
    path: str | Path,
    *,
    table: str | None = None,
    input_includes_cache: Collection[str] = (),
    provider_of_model: Mapping[str, str] | None = None,
    providers: Mapping[str, str] | None = None,
    known_ids: Collection[str] = (),
    progress: ProgressCallback | None = None,
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
    records = cast("list[dict[str, Any]]", raw.to_dict("records"))
    return _import_frames(
        iter([records]), table, file.name, input_includes_cache, provider_of_model, known_ids,
        progress, len(raw),
    )  # fmt: skip


# -- one row of the gateway in the usage shape ---------------------------------------------


def _int(value: Any) -> int:
    if type(value) is int:  # what JSON and the database give: the common case first
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return int(value)
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


#: the places of the gateway's credits columns (ModelCalls.credits, Usages.usedCredits)
_GATEWAY_PLACES = Decimal("1E-8")


def _stored(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        # SQLite keeps DECIMAL(20,8) as a binary float (REAL), and its text-to-float
        # conversion may land an ulp away from the nearest double: 0.18405001 can come back
        # as 0.18405000999999999. A float holds 15 significant digits exactly, so rounding
        # it to the column's 8 places recovers the decimal the gateway wrote.
        text = repr(value)
        point = text.find(".")
        if "e" not in text and (point < 0 or len(text) - point <= 9):
            return Decimal(text)  # 8 places or fewer already: the decimal as written
        return Decimal(text).quantize(_GATEWAY_PLACES, rounding=ROUND_HALF_UP).normalize()
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"stored credits {value!r} is not a number") from None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_STORED_PLACES:
        reduced = number.normalize()
        reduced_exp = reduced.as_tuple().exponent
        if isinstance(reduced_exp, int) and reduced_exp < -_STORED_PLACES:
            raise ValidationError(
                f"stored credits {value!r} have more than {_STORED_PLACES} decimal places "
                "(the gateway keeps 8): is this the credits column?"
            )
        number = reduced
    return number


def stored_credits_array(values: list[Decimal | None]) -> pa.Array:
    """Stored amounts (≤ 10 places each) as an exact Arrow decimal array."""
    return pa.array(values, type=STORED_CREDITS_TYPE)


def _split_model(model: str, known: Mapping[str, str] | None) -> tuple[str | None, str]:
    if "/" in model:
        provider, rest = model.split("/", 1)
        return provider.strip().lower(), rest.strip()
    if known and model in known:
        return known[model], model
    return None, model


def _from_model_call(rec: Mapping[str, Any], billed: Mapping[str, str]) -> dict[str, Any]:
    """One ModelCalls row in the usage shape; ``billed``: rate type → the count it bills.

    Every type keeps its input and cache tokens (an image call's prompt is billed at
    inputRate, as the rule says); the output count is the one the type bills.
    """
    metrics = _metrics(rec.get("usageMetrics"))
    kind = str(rec.get("type") or "chatCompletion")
    unit = billed.get(kind)
    counted = None
    if unit in _UNIT_METRICS:
        counted = metrics.get(_UNIT_METRICS[unit])
        if counted is None:
            # The billed unit is counted in totalUsage when the metrics do not count it.
            counted = rec.get("totalUsage")
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
        "images": _int(counted) if unit == "images" else 0,
        "seconds": float(Decimal(str(counted or 0))) if unit == "seconds" else 0.0,
        "stored_credits": _stored(rec.get("credits")),
        "source_id": rec.get("id"),
    }


def _not_billed(rec: Mapping[str, Any], status: str) -> dict[str, Any]:
    """A call that is not ``success``, as the skipped list shows it (its usage unread)."""
    try:
        stored = _stored(rec.get("credits"))
    except ValidationError:
        stored = None
    return {
        "source_id": rec.get("id"),
        "time": rec.get("callTime"),
        "user": rec.get("userDid") or "",
        "provider": rec.get("providerName") or rec.get("providerId"),
        "model": str(rec.get("model") or ""),
        "type": str(rec.get("type") or "chatCompletion"),
        "stored_credits": stored,
        "status": status,
        "reason": SKIP_NOT_BILLED,
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


# -- chunks → one import --------------------------------------------------------------------

_RECORD_COLUMNS = [*USAGE_COLUMNS, "stored_credits", "source_id"]


@dataclass
class _Tally:
    rows_read: int = 0
    already: int = 0
    clipped: int = 0
    skipped_status: Counter[str] = field(default_factory=Counter)
    skipped_types: Counter[str] = field(default_factory=Counter)
    unresolved: set[str] = field(default_factory=set)


def _import_frames(
    chunks: Iterator[list[dict[str, Any]]],
    table: str,
    source: str,
    input_includes_cache: Collection[str],
    provider_of_model: Mapping[str, str] | None,
    known_ids: Collection[str],
    progress: ProgressCallback | None,
    total: int | None,
    *,
    already: int = 0,
) -> HubImport:
    """Rows (a chunk at a time) → the import; ``already``: rows known before reading
    (counted as read and already imported)."""
    inclusive = {p.lower() for p in input_includes_cache}
    known = known_ids if isinstance(known_ids, set | frozenset) else set(known_ids)
    billed = {b.type: b.output for b in billing_rows()}  # the rate types and what they bill
    tally = _Tally(rows_read=already, already=already)
    parts: list[pd.DataFrame] = []
    skipped: list[dict[str, Any]] = []
    kept = 0
    for raw in chunks:
        first_row = tally.rows_read + 1
        tally.rows_read += len(raw)
        if known:
            fresh = [rec for rec in raw if str(rec.get("id")) not in known]
            tally.already += len(raw) - len(fresh)
            raw = fresh
        part = _chunk(raw, table, source, first_row, billed, inclusive, provider_of_model,
                      tally, skipped)  # fmt: skip
        kept += len(part)
        parts.append(part)
        if progress is not None:
            progress(ImportProgress(tally.rows_read, total, kept))
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({c: [] for c in _RECORD_COLUMNS})
    )
    stored = frame["stored_credits"]
    frame = frame.drop(columns=["stored_credits"])
    if table == "ModelCalls":
        seconds = pd.to_numeric(frame["time"])
        frame["time"] = pd.to_datetime(seconds, unit="s", utc=True)
    else:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="mixed")
    frame["seconds"] = frame["seconds"].astype(np.float64)
    usage = validate_usage(frame, source=f"{source} [{table}]")
    usage["stored_credits"] = pd.Series(
        pa.chunked_array([stored_credits_array(list(stored))], type=STORED_CREDITS_TYPE)
        if len(stored)
        else pa.chunked_array([], type=STORED_CREDITS_TYPE),
        dtype=pd.ArrowDtype(STORED_CREDITS_TYPE),
        index=usage.index,
    )
    usage["source_id"] = usage["source_id"].astype(object)
    report = HubImportReport(
        source=source,
        table=table,
        rows_read=tally.rows_read,
        rows_imported=len(usage),
        skipped_status=dict(tally.skipped_status),
        skipped_types=dict(tally.skipped_types),
        inapplicable_rows=int(inapplicable_counts(usage).sum()) if len(usage) else 0,
        clipped_input_rows=tally.clipped,
        unresolved_providers=tuple(sorted(tally.unresolved)),
        already_imported=tally.already,
    )
    return HubImport(usage=usage, report=report, skipped=_skipped_frame(skipped, table))


def _chunk(
    raw: list[dict[str, Any]],
    table: str,
    source: str,
    first_row: int,
    billed: Mapping[str, str],
    inclusive: set[str],
    provider_of_model: Mapping[str, str] | None,
    tally: _Tally,
    skipped: list[dict[str, Any]],
) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for row_no, rec in enumerate(raw, start=first_row):
        try:
            if table == "ModelCalls":
                status = str(rec.get("status") or "")
                if status != "success":
                    tally.skipped_status[status or "(empty)"] += 1
                    skipped.append(_not_billed(rec, status))
                    continue
                out = _from_model_call(rec, billed)
            else:
                status = "success"  # a billing row: written for billed calls only
                out = _from_usage_row(rec)
        except ValidationError as exc:
            raise ValidationError(f"{source} {table} row {row_no}: {exc}") from None
        if out["type"] not in billed:
            tally.skipped_types[out["type"]] += 1
            skipped.append({**out, "status": status, "reason": SKIP_UNSUPPORTED_TYPE})
            continue
        provider, model = out["provider"], out["model"]
        if provider and model.startswith(f"{provider}/"):
            model = model[len(provider) + 1 :]
        elif table == "Usages" or provider is None:
            split_provider, model = _split_model(out["model"], provider_of_model)
            provider = provider or split_provider
        if not provider:
            tally.unresolved.add(out["model"])
            provider = "unknown"
        out["provider"], out["model"] = provider, model
        if provider in inclusive:
            out["input_tokens"] -= out["cache_read_tokens"]
            if out["input_tokens"] < 0:
                tally.clipped += 1
                out["input_tokens"] = 0
        out["source_id"] = None if out["source_id"] is None else str(out["source_id"])
        records.append(out)
    return pd.DataFrame.from_records(records, columns=_RECORD_COLUMNS)


def _empty_skipped() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in _SKIPPED_COLUMNS})


def _skipped_frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    if not rows:
        return _empty_skipped()
    frame = pd.DataFrame.from_records(rows)
    frame["source_id"] = [None if v is None else str(v) for v in frame["source_id"]]
    if table == "ModelCalls":
        seconds = pd.to_numeric(frame["time"], errors="coerce")
        frame["time"] = pd.to_datetime(seconds, unit="s", utc=True)
    else:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="mixed", errors="coerce")
    frame["provider"] = [str(p) if p else "unknown" for p in frame["provider"]]
    return frame[list(_SKIPPED_COLUMNS)].reset_index(drop=True)
