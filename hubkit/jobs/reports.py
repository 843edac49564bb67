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
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit import _files
from hubkit._files import SUMMARY, read_summary

# Making a run folder and its summary.json is hubkit._files' (hub plans and scenario exports
# write run folders too); this module writes the jobs' other files and indexes them all.
from hubkit.errors import StorageError, ValidationError
from hubkit.frames import to_csv  # noqa: F401 (re-exported for jobs)

CHANGES = "changes.csv"
PLOTLY_JS = "plotly.min.js"
FIGURES = "figures"
_RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9-]+$")
INDEX_COLUMNS = [
    "run_id", "job", "status", "exit_code", "dry_run", "started_at", "duration_seconds",
    "changed", "refused", "reason", "folder",
]  # fmt: skip


def write_changes(run_dir: Path, frame: pd.DataFrame) -> Path:
    return write_csv(run_dir / CHANGES, frame)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A report table, written beside and renamed (a reader never sees half a CSV)."""
    return _files.atomic_write_csv(path, frame)


# ---- figures ------------------------------------------------------------------------------
def change_pct_figure(pcts: Iterable[Decimal | None], title: str) -> Any:
    """A histogram of change % (floats are fine here: it is a picture, not a price)."""
    # deferred: plotly is heavy to load and only a run that draws a figure needs it
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
    """``figures/<name>.html``, drawn by the run folder's own copy of plotly.js (offline)."""
    write_plotlyjs(run_dir)
    path = run_dir / FIGURES / f"{name}.html"
    src = f"../{PLOTLY_JS}"
    return _files.atomic_write_with(
        path, lambda tmp: figure.write_html(str(tmp), include_plotlyjs=src, full_html=True)
    )


def write_plotlyjs(run_dir: Path) -> Path:
    """plotly.js, once per run folder: its figures and its report load it from there, so a
    report opened from disk with no network draws them (3.6 MB, not one copy per figure)."""
    path = run_dir / PLOTLY_JS
    if not path.is_file():
        # deferred: plotly is heavy to load and only a run that draws a figure needs it
        from plotly.offline import get_plotlyjs

        _files.atomic_write_text(path, get_plotlyjs())
    return path


# ---- HTML rendering of the executed notebook ----------------------------------------------
_TEMPLATE_DIR = Path(__file__).with_name("report_template")
_PLOTLY_MARKERS = ("plotly-graph-div", "application/vnd.plotly.v1+json")


def render_html(notebook: Path) -> Path:
    """``<name>.html`` beside the executed notebook: what was found, for people, offline.

    nbconvert's lab look without code cells or prompts, and without anything fetched from
    the network (see ``report_template/hubkit-report.html.j2``); figures use the run folder's
    plotly.js.
    """
    # deferred: nbconvert (and its template machinery) loads only when a report is rendered
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_template_paths=[str(_TEMPLATE_DIR)],
        template_file="hubkit-report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources: dict[str, Any] = {}
    if any(marker in notebook.read_text(encoding="utf-8") for marker in _PLOTLY_MARKERS):
        write_plotlyjs(notebook.parent)
        resources["plotlyjs_src"] = PLOTLY_JS
    body, _resources = exporter.from_filename(str(notebook), resources=resources)
    target = notebook.with_suffix(".html")
    _files.atomic_write_text(target, body)
    return target


# ---- tables in a report -------------------------------------------------------------------
def table_html(frame: pd.DataFrame, *, empty: str = "none") -> str:
    """Every row of ``frame`` as an HTML table, Decimals plain (``0.0000001``, never
    ``1.02E-7`` or padded zeros); an empty frame says ``empty`` instead of a bare header."""
    if frame.empty:
        return f'<p class="hubkit-empty"><i>{html.escape(empty)}</i></p>'
    shown = _files.plain_frame(frame).astype(object)
    shown = shown.where(shown.notna(), "")
    return str(shown.to_html(index=False, escape=True, border=0, classes="hubkit-report"))


# ---- index and pruning -----------------------------------------------------------------
def run_folders(reports_dir: Path) -> list[Path]:
    """Run folders (named like ``20250101T020000Z-job``, real folders), oldest first."""
    if not reports_dir.is_dir():
        return []
    return sorted(
        p
        for p in reports_dir.iterdir()
        if _RUN_FOLDER.match(p.name) and not p.is_symlink() and p.is_dir()
    )


def is_hubkit_run(folder: Path) -> bool:
    """True for a folder hubkit made: it holds the marker naming it, or (runs from before
    the marker existed) a regular ``summary.json`` whose ``run_id`` is the folder's name."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if _files.has_run_marker(folder):
        return True
    summary = folder / SUMMARY
    if summary.is_symlink() or not summary.is_file():
        return False
    data = read_summary(folder)
    return data is not None and data.get("run_id") == folder.name


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` removed, and what it left alone because hubkit did not make it."""

    removed: tuple[Path, ...]
    kept: tuple[Path, ...]
    #: (path, why) for every entry named like a run that is not a hubkit run folder
    skipped: tuple[tuple[Path, str], ...]


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
    _files.atomic_write_text(csv_path, buffer.getvalue())
    _files.atomic_write_text(html_path, _index_html(rows, reports_dir))
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


def prune(reports_dir: Path, keep: int) -> PruneResult:
    """Delete all but the ``keep`` newest run folders hubkit made; rebuild the index.

    Only folders with hubkit's marker (or, from before the marker, a summary.json naming
    the folder as its run) are candidates. Symlinks are never followed nor removed, and
    folders a user made that merely look like runs are left alone: both are reported in
    ``skipped``. Everything is checked before the first folder is deleted.
    """
    if keep < 0:
        raise ValidationError(f"--keep must be ≥ 0, got {keep}", field="keep", value=keep)
    ours: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    entries = sorted(reports_dir.iterdir()) if reports_dir.is_dir() else []
    for entry in entries:
        if not _RUN_FOLDER.match(entry.name):
            continue
        if entry.is_symlink():
            skipped.append((entry, "a symlink: never followed"))
        elif not entry.is_dir():
            skipped.append((entry, "not a folder"))
        elif not is_hubkit_run(entry):
            skipped.append((entry, f"no {_files.RUN_MARKER} marker: not made by hubkit"))
        else:
            ours.append(entry)
    doomed = ours[: max(0, len(ours) - keep)]
    _check_deletable(reports_dir, doomed)
    for folder in doomed:
        shutil.rmtree(folder)
    rebuild_index(reports_dir)
    return PruneResult(tuple(doomed), tuple(ours[len(doomed) :]), tuple(skipped))


def _check_deletable(reports_dir: Path, doomed: list[Path]) -> None:
    # All or nothing: a folder that cannot be removed is found before any is.
    if doomed and not os.access(reports_dir, os.W_OK | os.X_OK):
        raise StorageError(f"cannot delete run folders in {reports_dir}: no write permission")
    for folder in doomed:
        for root, dirs, _files_in in os.walk(folder, followlinks=False):
            if not os.access(root, os.W_OK | os.X_OK):
                raise StorageError(
                    f"cannot delete {folder}: {root} is not writable; nothing was deleted"
                )
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
