"""``python -m hubkit usage …``: the gateway's calls imported, and reconciled.

- ``usage import SOURCE [--to store|FILE.parquet]``: the gateway's SQLite file (opened
  read-only), a PostgreSQL URL of a gateway running there, or a CSV export of its
  ModelCalls / Usages table. Incremental (only calls the target does not hold yet), with
  progress on stderr and a report of what was skipped and why.
- ``usage reconcile [SOURCE] [--from DAY] [--to DAY]``: every call of the period re-priced
  at the rate in force at its time and compared with what the gateway stored, per call,
  per user, per model and per day, each difference with its cause; ``--out DIR`` writes the
  tables as CSV and the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from hubkit.decimals import plain
from hubkit.errors import ValidationError
from hubkit.frames import to_csv
from hubkit.replay.reconcile import (
    BREAKDOWNS,
    reconcile,
    reconcile_breakdown,
    reconcile_import,
)
from hubkit.store import Store
from hubkit.usage.gateway import HubImport, ImportProgress, is_database_url, read_hub_database
from hubkit.usage.gateway import read_hub_export as read_export
from hubkit.usage.gateway_import import import_gateway_usage, read_imported_usage
from hubkit.usage.gateway_rates import read_hub_rates

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("usage", help="import the gateway's calls; reconcile its stored credits")
    usub = p.add_subparsers(dest="action", required=True)
    q = usub.add_parser(
        "import", help="the gateway's calls (SQLite file, PostgreSQL URL or CSV export)"
    )
    q.add_argument("source", help="the gateway's SQLite file, postgresql://… URL, or a CSV export")
    q.add_argument(
        "--to", default="store", help="`store` (default: the store's usage table) or FILE.parquet"
    )
    q.add_argument("--table", choices=("ModelCalls", "Usages"), help="default: ModelCalls")
    q.add_argument(
        "--providers",
        default="",
        help="providerId=name,… for a ModelCalls CSV export (it has no AiProviders join)",
    )
    q.add_argument(
        "--input-includes-cache",
        default="",
        help="providers whose input count includes cache reads (e.g. openai), comma-separated",
    )
    q.add_argument("--chunk-rows", type=int, default=50_000, help="rows read at a time")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_usage_import)

    q = usub.add_parser("reconcile", help="re-price a period's calls and compare with the gateway")
    q.add_argument(
        "source",
        nargs="?",
        default="store",
        help="`store` (imported calls, default), FILE.parquet, or the gateway's database / URL",
    )
    q.add_argument("--from", dest="since", help="first day (UTC, inclusive), e.g. 2025-01-01")
    q.add_argument("--to", dest="until", help="end (UTC, exclusive), e.g. 2025-02-01")
    q.add_argument(
        "--rates",
        help="`store` (the store's rate history) or the gateway's database / URL "
        "(AiModelRates + AiModelRateHistories); default: the source when it is the gateway's "
        "database, else the store",
    )
    q.add_argument("--places", type=int, default=8, help="the stored precision (the gateway: 8)")
    q.add_argument("--out", help="folder for calls.csv, by_user/by_model/by_day.csv, summary.json")
    q.add_argument("--show", type=int, default=20, help="differences to print (default 20)")
    q.set_defaults(func=cmd_usage_reconcile)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _providers(text: str) -> dict[str, str]:
    out = {}
    for item in _names(text):
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise ValidationError(
                f"--providers takes providerId=name pairs, got {item!r}", field="providers"
            )
        out[key.strip()] = name.strip()
    return out


class _Progress:
    """Progress lines on ``stream``: at most one a second, and the last one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, step: ImportProgress) -> None:
        now = time.monotonic()
        done = step.total is not None and step.rows_read >= step.total
        if not done and now - self.last < 1.0:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        of = f" of {step.total:,}" if step.total is not None else ""
        pct = f" ({100 * step.rows_read / step.total:.0f} %)" if step.total else ""
        print(
            f"read {step.rows_read:,}{of} rows{pct}, {step.rows_kept:,} new calls, "
            f"{step.rows_read / elapsed:,.0f} rows/s",
            file=self.stream,
            flush=True,
        )


def cmd_usage_import(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "table": args.table,
        "providers": _providers(args.providers) or None,
        "input_includes_cache": _names(args.input_includes_cache),
        "chunk_rows": args.chunk_rows,
        "progress": None if args.quiet else _Progress(sys.stderr),
    }
    if args.chunk_rows < 1:
        raise ValidationError("--chunk-rows must be at least 1", field="chunk_rows")
    if args.to == "store":
        with Store.open(getattr(args, "database_url", None)) as store:
            imported = import_gateway_usage(args.source, store.engine, **options)
        where = "the store's usage table"
    else:
        imported = import_gateway_usage(args.source, Path(args.to), **options)
        where = args.to
    for line in imported.report.lines():
        print(line)
    print(f"imported {imported.report.rows_imported} new call(s) into {where}")
    return 0


def _is_gateway(source: str) -> bool:
    return source != "store" and not source.lower().endswith((".parquet", ".pq"))


def _load(args: argparse.Namespace, store: Store | None) -> tuple[pd.DataFrame, HubImport | None]:
    source = args.source
    if source == "store":
        assert store is not None
        return read_imported_usage(store.engine, since=args.since, until=args.until), None
    if not _is_gateway(source):
        return read_imported_usage(Path(source), since=args.since, until=args.until), None
    if not is_database_url(source) and source.lower().endswith((".csv", ".csv.gz")):
        imported = read_export(source)
    else:
        imported = read_hub_database(source)
    return imported.usage, _period(imported, args.since, args.until)


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _within(times: pd.Series, since: Any, until: Any) -> pd.Series:
    keep = pd.Series(True, index=times.index)
    if since:
        keep &= times >= _utc(since)
    if until:
        keep &= times < _utc(until)
    return keep


def _period(imported: HubImport, since: Any, until: Any) -> HubImport:
    if not since and not until:
        return imported
    usage = imported.usage.loc[_within(imported.usage["time"], since, until)]
    skipped = imported.skipped.loc[_within(imported.skipped["time"], since, until)]
    return HubImport(
        usage=usage.reset_index(drop=True),
        report=imported.report,
        skipped=skipped.reset_index(drop=True),
    )


def cmd_usage_reconcile(args: argparse.Namespace) -> int:
    for value, flag in ((args.since, "--from"), (args.until, "--to")):
        if value:
            try:
                _utc(value)
            except ValueError:
                raise ValidationError(
                    f"{flag} {value!r} is not a date (use e.g. 2025-01-31)", field=flag
                ) from None
    rates = args.rates or (args.source if _is_gateway(args.source) else "store")
    needs_store = args.source == "store" or rates == "store"
    store = Store.open(getattr(args, "database_url", None), read_only=True) if needs_store else None
    try:
        timeline = store.rate_timeline() if rates == "store" and store else read_hub_rates(rates)
        usage, imported = _load(args, store)
    finally:
        if store is not None:
            store.close()
    if imported is not None:
        frame, summary = reconcile_import(imported, timeline, places=args.places)
    else:
        frame, summary = reconcile(usage, timeline, places=args.places)
    _print_summary(summary, args)
    if summary["rows"] == 0:
        print(
            "  no calls in that period: import the gateway's calls first "
            "(python -m hubkit usage import GATEWAY_DB), or widen --from / --to"
        )
    differences = frame[frame["status"].astype(str) == "mismatch"]
    if len(differences) and args.show > 0:
        print(f"\nfirst {min(args.show, len(differences))} of {len(differences)} difference(s):")
        shown = differences.head(args.show)[
            [c for c in ("source_id", "time", "user", "model", "stored_credits",
                         "repriced_credits", "difference", "cause") if c in frame.columns]
        ]  # fmt: skip
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(shown.to_string(index=False))
    if args.out:
        _write(Path(args.out), frame, summary)
    return 0


def _print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    period = f"{args.since or 'the start'} to {args.until or 'now'}"
    print(f"reconciliation of {summary['rows']} call(s), {period} (stored at {args.places} places)")
    for key in ("match", "mismatch", "unsupported", "no_stored_credits", "not_imported"):
        if summary.get(key):
            print(f"  {key.replace('_', ' ')}: {summary[key]}")
    for cause, n in summary["causes"].items():
        if cause != "none":
            print(f"  cause {cause}: {n}")
    for key in ("stored_total", "repriced_total", "difference_total"):
        print(f"  {key.replace('_', ' ')}: {plain(summary[key])}")


def _write(folder: Path, frame: pd.DataFrame, summary: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    to_csv(frame, folder / "calls.csv")
    for by in BREAKDOWNS:
        to_csv(reconcile_breakdown(frame, by), folder / f"by_{by}.csv")
    text = json.dumps(summary, indent=2, default=lambda v: plain(v), sort_keys=True)
    (folder / "summary.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote calls.csv, by_user.csv, by_model.csv, by_day.csv, summary.json to {folder}")
