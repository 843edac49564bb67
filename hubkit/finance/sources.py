"""Where a month's usage comes from: the gateway's records, a usage file, or synthetic calls.

:func:`load_usage_source` reads one text the way the ``finance_month`` job and notebook 07
take it:

- ``""``: synthetic calls over the rates in force (seeded), spread over the month and the
  month before it (so the month opens with balances);
- a gateway SQLite database (``*.db``, ``*.sqlite``, ``*.sqlite3``): its ``ModelCalls``,
  opened read-only (:func:`hubkit.usage.read_hub_database`), with the credits it stored;
- a CSV export of the gateway's ``ModelCalls`` or ``Usages`` (told apart by its header),
  with the credits it stored;
- any other CSV or Parquet file: a usage file (:func:`hubkit.usage.read_usage`), without
  stored credits.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit._readers import check_file
from hubkit.finance.rollforward import month_bounds
from hubkit.usage import generate_usage, read_hub_database, read_hub_export, read_usage

__all__ = ["UsageSource", "load_usage_source"]

_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_GATEWAY_HEADERS = ("callTime", "promptTokens")


@dataclass(frozen=True, eq=False)
class UsageSource:
    """The usage read, and where it came from in words (for the pack and its reports)."""

    usage: pd.DataFrame
    kind: str  # "synthetic" | "gateway database" | "gateway export" | "usage file"
    description: str
    notes: tuple[str, ...] = ()


def _looks_like_gateway_export(path: Path) -> bool:
    if not path.name.lower().endswith(".csv"):
        return False
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return False  # read_usage says what is wrong with it
    return any(h.strip() in _GATEWAY_HEADERS for h in header)


def load_usage_source(
    source: str | Path | None,
    timeline: pd.DataFrame,
    *,
    month: Any,
    n_calls: int = 20_000,
    n_users: int = 500,
    seed: int = 0,
) -> UsageSource:
    """Read ``source`` (see the module docstring); synthetic usage needs ``timeline``."""
    text = str(source or "").strip()
    if not text:
        start, end = month_bounds(month)
        opening = (start - pd.DateOffset(months=1)).tz_convert("UTC")
        days = (end - opening) / pd.Timedelta(days=1)
        usage = generate_usage(
            timeline, n_calls=n_calls, n_users=n_users, start=opening, days=days, seed=seed
        )
        return UsageSource(
            usage,
            "synthetic",
            f"synthetic: {n_calls:,} calls by {n_users:,} users over {opening:%Y-%m} and "
            f"{start:%Y-%m} (seed {seed})",
        )
    path = Path(text).expanduser()
    if path.suffix.lower() in _DATABASE_SUFFIXES:
        imported = read_hub_database(path)
        return UsageSource(
            imported.usage, "gateway database", f"the gateway's database {path.name} (read-only)",
            tuple(imported.report.lines()),
        )  # fmt: skip
    check_file(path, "usage source", hint="give a usage file, a gateway export or database")
    if _looks_like_gateway_export(path):
        imported = read_hub_export(path)
        return UsageSource(
            imported.usage, "gateway export", f"the gateway's export {path.name}",
            tuple(imported.report.lines()),
        )  # fmt: skip
    return UsageSource(read_usage(path), "usage file", f"usage file {path.name}")
