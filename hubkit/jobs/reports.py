"""Run folders under ``reports/``: summary.json, changes.csv, figures, HTML, the index.

Layout (one folder per run, named ``<UTC timestamp>-<job>``, which is also the run id)::

    reports/
      index.html                      every run, newest first, linked
      runs.csv                        the same as a table
      20250101T020000Z-bulk-rate-update/
        summary.json                  parameters, counts, totals, status, reason, timing
        changes.csv                   old → new per rate, refused rates flagged with why
        skipped.csv                   rates left alone, and why (bulk update: no unit costs)
        figures/change_pct.html       distribution of the change % (plotly)
        bulk-rate-update.ipynb        the executed notebook (written by the runner/papermill)
        bulk-rate-update.html         its HTML rendering

The index is rebuilt from the summary.json files, so it never disagrees with them and
``prune`` needs no bookkeeping. Nothing here writes a secret: summaries hold parameters
(never tokens or keys) and the database URL with its password hidden.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit.decimals import plain
from hubkit.frames import to_csv

SUMMARY = "summary.json"
CHANGES = "changes.csv"
FIGURES = "figures"
_RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9-]+$")
INDEX_COLUMNS = [
    "run_id", "job", "status", "exit_code", "dry_run", "started_at", "duration_seconds",
    "changed", "refused", "reason", "folder",
]  # fmt: skip


def run_stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def new_run_folder(reports_dir: Path, job: str, at: datetime | None = None) -> Path:
    """Create ``<reports>/<UTC timestamp>-<job>/`` (``-2``, ``-3``… if that second is taken)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    base = f"{run_stamp(at)}-{job}"
    for n in range(1, 1000):
        folder = reports_dir / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder for {base} in {reports_dir}")


def jsonable(value: Any) -> Any:
    """Decimals as plain strings, datetimes as ISO UTC, paths as text; recursively."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def _atomic_write(path: Path, text: str) -> None:
    """Readers (and a concurrent index rebuild) see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    path = run_dir / SUMMARY
    _atomic_write(path, json.dumps(jsonable(summary), indent=2) + "\n")
    return path


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_changes(run_dir: Path, frame: pd.DataFrame) -> Path:
    path = run_dir / CHANGES
    to_csv(frame, path)
    return path


# ---- figures ------------------------------------------------------------------------------
def change_pct_figure(pcts: Iterable[Decimal | None], title: str) -> Any:
    """A histogram of change % (floats are fine here: it is a picture, not a price)."""
    import plotly.graph_objects as go

    values = [float(p) for p in pcts if p is not None]
    fig = go.Figure(go.Histogram(x=values, nbinsx=30, marker_color="#4c78a8"))
    fig.update_layout(
        title=title,
        xaxis_title="change of the larger side, % (0 → non-zero not shown)",
        yaxis_title="rates",
        height=360,
        margin={"l": 50, "r": 20, "t": 50, "b": 50},
    )
    return fig


def write_figure(run_dir: Path, name: str, figure: Any) -> Path:
    # plotly.js from its CDN keeps each report small; the numbers are in changes.csv anyway.
    path = run_dir / FIGURES / f"{name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(str(path), include_plotlyjs="cdn", full_html=True)
    return path


# ---- HTML rendering of the executed notebook ----------------------------------------------
def render_html(notebook: Path) -> Path:
    """``<name>.html`` beside the executed notebook (nbconvert's HTML exporter)."""
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    _atomic_write(target, body)
    return target


# ---- index and pruning -----------------------------------------------------------------
def run_folders(reports_dir: Path) -> list[Path]:
    """Run folders (named like ``20250101T020000Z-job``), oldest first."""
    if not reports_dir.is_dir():
        return []
    return sorted(p for p in reports_dir.iterdir() if p.is_dir() and _RUN_FOLDER.match(p.name))


def index_rows(reports_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for folder in reversed(run_folders(reports_dir)):
        s = read_summary(folder) or {}
        counts = s.get("counts") or {}
        rows.append(
            {
                "run_id": s.get("run_id", folder.name),
                "job": s.get("job", ""),
                "status": s.get("status", "unknown"),
                "exit_code": s.get("exit_code", ""),
                "dry_run": (s.get("parameters") or {}).get("dry_run", ""),
                "started_at": s.get("started_at", ""),
                "duration_seconds": s.get("duration_seconds", ""),
                "changed": counts.get("changed", ""),
                "refused": counts.get("refused", ""),
                "reason": s.get("reason") or "",
                "folder": folder.name,
            }
        )
    return rows


def rebuild_index(reports_dir: Path) -> tuple[Path, Path]:
    """Write ``runs.csv`` and ``index.html`` from the run folders' summaries."""
    rows = index_rows(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = reports_dir / "runs.csv", reports_dir / "index.html"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(csv_path, buffer.getvalue())
    _atomic_write(html_path, _index_html(rows, reports_dir))
    return csv_path, html_path


def _index_html(rows: list[dict[str, Any]], reports_dir: Path) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        return f"<td>{html.escape(str(row[key]))}</td>"

    lines = []
    for row in rows:
        folder = reports_dir / row["folder"]
        links = [f'<a href="{html.escape(row["folder"])}/{SUMMARY}">summary</a>']
        for name in sorted(p.name for p in folder.glob("*.html")):
            links.append(f'<a href="{html.escape(row["folder"])}/{html.escape(name)}">report</a>')
        if (folder / CHANGES).exists():
            links.append(f'<a href="{html.escape(row["folder"])}/{CHANGES}">changes</a>')
        status_class = "ok" if str(row["exit_code"]) == "0" else "bad"
        lines.append(
            f'<tr class="{status_class}">'
            + "".join(cell(row, k) for k in INDEX_COLUMNS if k != "folder")
            + f"<td>{' · '.join(links)}</td></tr>"
        )
    header = "".join(f"<th>{k}</th>" for k in INDEX_COLUMNS if k != "folder") + "<th>files</th>"
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>hubkit job runs</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        "tr.bad td{background:#fde8e8}</style></head><body>\n"
        f"<h1>hubkit job runs</h1><p>{len(rows)} runs, newest first "
        f"(table: <a href='runs.csv'>runs.csv</a>)</p>\n"
        f"<table><tr>{header}</tr>\n" + "\n".join(lines) + "\n</table></body></html>\n"
    )


def prune(reports_dir: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest run folders; rebuild the index. Returns the removed."""
    if keep < 0:
        from hubkit.errors import ValidationError

        raise ValidationError(f"--keep must be ≥ 0, got {keep}", field="keep", value=keep)
    folders = run_folders(reports_dir)
    doomed = folders[: max(0, len(folders) - keep)]
    for folder in doomed:
        shutil.rmtree(folder)
    rebuild_index(reports_dir)
    return doomed
