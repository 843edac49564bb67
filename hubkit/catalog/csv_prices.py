"""The CSV price catalog format: read rows into entries, write entries back.

One rate per row, header required (cache columns optional)::

    provider,model,type,input_cost,output_cost,cache_read_cost,cache_write_cost
    openai,gpt-4o,chatCompletion,0.0000025,0.00001,0.00000125,
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hubkit.catalog.entries import CSV_COLUMNS, CatalogEntry, CostReader
from hubkit.decimals import plain
from hubkit.domain import RateType, UnitCosts, validate_provider_name
from hubkit.errors import ValidationError

_REQUIRED = CSV_COLUMNS[:5]


def read_csv_entries(text: str, reader_ctx: CostReader) -> list[CatalogEntry]:
    """Entries of a CSV catalog; any bad row raises naming the file, row and column."""
    reader = csv.DictReader(text.splitlines())
    try:
        return _entries(reader, reader_ctx)
    except csv.Error as exc:  # a field over the csv module's limit, a NUL byte, …
        raise ValidationError(
            f"catalog file {reader_ctx.name}: not a well-formed CSV file (line "
            f"{reader.line_num}: {exc}); give a LiteLLM JSON or a hubkit CSV catalog",
            field="path",
        ) from None


def _entries(reader: csv.DictReader[str], reader_ctx: CostReader) -> list[CatalogEntry]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise ValidationError(
            f"{reader_ctx.name}: {'; '.join(problems)}; the header must be "
            f"{','.join(_REQUIRED)}[,{','.join(CSV_COLUMNS[5:])}]",
            field=(missing or unknown)[0],
        )
    reader.fieldnames = header
    entries: list[CatalogEntry] = []
    seen: dict[tuple[str, str, RateType], str] = {}
    for row in reader:
        where = f"row {reader.line_num}"  # the file's line number, header = line 1
        if None in row:
            raise reader_ctx.fail(
                where, "(row)", f"has more fields than the header ({len(header)})"
            )
        entry = _entry(row, where, reader_ctx)
        if entry is None:
            continue
        if entry.key in seen:
            raise reader_ctx.fail(
                where,
                "model",
                f"duplicates {seen[entry.key]} ({entry.provider}, {entry.model}, "
                f"{entry.type.value})",
                entry.model,
            )
        seen[entry.key] = where
        entries.append(entry)
    return entries


def _entry(row: Mapping[str, Any], where: str, ctx: CostReader) -> CatalogEntry | None:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    try:
        provider = validate_provider_name(cell("provider"))
        rate_type = RateType.parse(cell("type"))
    except ValidationError as exc:
        raise ctx.fail(where, exc.field or "provider", str(exc), exc.value) from None
    if not ctx.keeps(provider):
        return None
    model = cell("model")
    if not 1 <= len(model) <= 100:
        raise ctx.fail(where, "model", f"must be 1–100 characters, got {model!r}", model)
    for name in ("input_cost", "output_cost"):
        if not cell(name):
            raise ctx.fail(where, name, "is required (use 0 for free)")
    return CatalogEntry(
        provider=provider,
        model=model,
        type=rate_type,
        unit_costs=UnitCosts(
            ctx.cost(cell("input_cost"), where, "input_cost"),
            ctx.cost(cell("output_cost"), where, "output_cost"),
        ),
        cache_read_cost=ctx.optional_cost(cell("cache_read_cost"), where, "cache_read_cost"),
        cache_write_cost=ctx.optional_cost(cell("cache_write_cost"), where, "cache_write_cost"),
        model_metadata=None,
        source_key=where,
    )


def write_csv(entries: Iterable[CatalogEntry], path: str | Path) -> Path:
    """Write entries with plain decimal strings (never ``1E-7``); cache cost empty = none."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            writer.writerow(
                [
                    e.provider,
                    e.model,
                    e.type.value,
                    plain(e.unit_costs.input),
                    plain(e.unit_costs.output),
                    plain(e.cache_read_cost) or "",
                    plain(e.cache_write_cost) or "",
                ]
            )
    return target
