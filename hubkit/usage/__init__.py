"""Usage data: the table schema, CSV / Parquet import and export, the synthetic generator
and the AIGNE Hub database importer, behind one module.

>>> from hubkit.usage import USAGE_COLUMNS
>>> USAGE_COLUMNS[:4]
('time', 'user', 'app', 'provider')

- :func:`read_usage` / :func:`write_usage`: CSV (optionally gzipped) or Parquet (pyarrow),
  validated by :func:`validate_usage` with errors naming the column and the row (and the
  file line for CSV).
- :func:`generate_usage`: seeded synthetic traffic (``hubkit.usage.synthetic``).
- :func:`read_hub_database` / :func:`read_hub_export`: the gateway's own records
  (``hubkit.usage.gateway``: its SQLite file read-only, a PostgreSQL URL, a CSV export);
  :func:`read_hub_rates` its rates over time; :func:`import_gateway_usage` /
  :func:`read_imported_usage` (``python -m hubkit usage import``) keep them in the store or
  a Parquet file, incrementally; :func:`hubkit.replay.reconcile.reconcile` re-prices them
  against the stored credits.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hubkit._readers import check_file, read_csv_frame
from hubkit.errors import ValidationError
from hubkit.usage.gateway import (
    HubImport,
    HubImportReport,
    ImportProgress,
    read_hub_database,
    read_hub_export,
)
from hubkit.usage.gateway_import import import_gateway_usage, read_imported_usage
from hubkit.usage.gateway_rates import read_hub_rates
from hubkit.usage.schema import (
    COUNT_COLUMNS,
    TEXT_COLUMNS,
    USAGE_COLUMNS,
    empty_usage,
    inapplicable_counts,
    validate_usage,
)
from hubkit.usage.synthetic import generate_usage

__all__ = [
    "COUNT_COLUMNS",
    "TEXT_COLUMNS",
    "USAGE_COLUMNS",
    "HubImport",
    "HubImportReport",
    "ImportProgress",
    "empty_usage",
    "generate_usage",
    "import_gateway_usage",
    "inapplicable_counts",
    "read_hub_database",
    "read_hub_export",
    "read_hub_rates",
    "read_imported_usage",
    "read_usage",
    "validate_usage",
    "write_usage",
]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _kind(path: Path, format: str | None) -> str:
    if format:
        kind = format.lower()
        if kind not in ("csv", "parquet"):
            raise ValidationError(f"format must be csv or parquet, got {format!r}", field="format")
        return kind
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise ValidationError(
        f"cannot tell the format of {path.name!r}: name it *.csv or *.parquet, or pass format=",
        field="path",
    )


_USAGE_HINT = (
    "give a usage CSV or Parquet file with the columns of hubkit.usage.schema "
    "(`write_usage` writes one)"
)


def read_usage(path: str | Path, *, format: str | None = None) -> pd.DataFrame:
    """Read a usage file (CSV or Parquet) and validate it (see :func:`validate_usage`)."""
    file = Path(path)
    kind = _kind(file, format)
    check_file(file, "usage file", hint=_USAGE_HINT)
    if kind == "csv":
        # Everything as text: validation then reports the exact cell that is wrong.
        raw = read_csv_frame(
            file, "usage file", hint=_USAGE_HINT, dtype=str, keep_default_na=False, na_values=[]
        )
        raw.columns = [str(c).strip() for c in raw.columns]
        return validate_usage(raw, line_offset=1, source=file.name)
    try:
        raw = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise ValidationError(
            f"cannot read {file.name} as Parquet: {exc}; {_USAGE_HINT}", field="path"
        ) from None
    return validate_usage(raw, source=file.name)


def write_usage(
    usage: pd.DataFrame, path: str | Path, *, format: str | None = None, extra: bool = False
) -> Path:
    """Write usage in the same shape :func:`read_usage` reads; returns the path.

    Only the canonical columns are written unless ``extra`` is true. CSV times are ISO 8601
    UTC with microseconds.
    """
    file = Path(path)
    kind = _kind(file, format)
    frame = validate_usage(usage)
    columns = list(frame.columns) if extra else list(USAGE_COLUMNS)
    frame = frame[columns]
    file.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        out = frame.copy()
        out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.to_csv(file, index=False)
    else:
        frame.to_parquet(file, index=False, engine="pyarrow")
    return file
