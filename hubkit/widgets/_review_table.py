"""A table a person must review before an action writes it: every row, none left out.

An HTML table of the first 200 rows hid the rest of a 309-rate diff that Apply then wrote.
:class:`ReviewTable` shows *all* rows in a DataTables grid (itables' anywidget): paged,
sortable, filterable, with its own horizontal scroll and the key columns first; no
downsampling (itables would otherwise drop rows of a table over 64 kB). Beside it, a
download of exactly the rows the action would write, as a CSV with plain decimals.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd

from hubkit._files import plain_frame
from hubkit.widgets._common import cell_text, counted

if TYPE_CHECKING:
    from itables.typing import ITableOptions
    from itables.widget import ITable

PAGE_LENGTH = 25


@dataclass(frozen=True)
class Rows:
    """A table's rows as shown (display texts, labelled columns) and its download link."""

    shown: pd.DataFrame
    download: str


class ReviewTable:
    """All rows of a frame, reviewable; :meth:`show` replaces them."""

    def __init__(
        self,
        css_class: str,
        columns: Mapping[str, str],
        *,
        empty: str,
        download_name: str,
        download_label: str,
        noun: str = "row",
    ) -> None:
        self.columns = dict(columns)
        self.empty = empty
        self.download_name = download_name
        self.download_label = download_label
        self.noun = noun
        self.table: ITable | None = None  # once there are rows
        self.note = widgets.HTML()
        self.download = widgets.HTML()
        self.box = widgets.VBox([self.note, self.download])
        self.box.add_class(css_class)
        #: the frame shown now (display texts, labelled columns), for tests and exports
        self.shown = pd.DataFrame(columns=list(self.columns.values()))
        #: the rows shown are not those of the inputs now (:meth:`mark_stale`)
        self.is_stale = False
        self._note = ""

    def mark_stale(self) -> None:
        """Say that the rows shown are being replaced (the inputs changed); :meth:`show`
        clears it. The box gets the class ``hubkit-review-stale`` meanwhile."""
        if self.is_stale:
            return
        self.is_stale = True
        self.box.add_class("hubkit-review-stale")
        self.note.value = (
            '<i style="color:#7a4f01">updating for the inputs you typed — the rows below are '
            "for the previous ones</i><br>" + self._note
        )

    def show(self, frame: pd.DataFrame, written: pd.DataFrame | None = None) -> None:
        """Show every row of ``frame``; offer ``written`` (default: ``frame``) as the CSV."""
        self.show_rows(self.prepare(frame, written))

    def prepare(self, frame: pd.DataFrame, written: pd.DataFrame | None = None) -> Rows:
        """The texts and the download :meth:`show_rows` puts on screen (for a caller that
        splits a big table's work in two: making the texts, then sending them)."""
        shown = _display(frame, self.columns)
        link = "" if shown.empty else _download_link(
            written if written is not None else frame, self.download_name, self.download_label
        )  # fmt: skip
        return Rows(shown, link)

    def show_rows(self, rows: Rows) -> None:
        """Show rows made by :meth:`prepare`."""
        shown = rows.shown
        self.shown = shown
        if self.is_stale:
            self.is_stale = False
            self.box.remove_class("hubkit-review-stale")
        if shown.empty:
            self.note.value = self._note = f"<i>{html.escape(self.empty)}</i>"
            self.download.value = ""
            self.box.children = (self.note,)
            return
        count, words = counted(len(shown), self.noun).split(" ", 1)
        self.note.value = self._note = (
            f'<b><span class="hubkit-review-count">{count}</span> {words}</b>, all of them below'
        )
        if self.table is None:
            # deferred: itables loads its DataTables bundle; only a table with rows needs it
            from itables.widget import ITable

            self.table = ITable(shown, **_OPTIONS)
        else:
            self.table.update(shown, **_OPTIONS)
        self.download.value = rows.download
        self.box.children = (self.note, self.table, self.download)


_OPTIONS: ITableOptions = {
    "maxBytes": 0,  # never downsample: every row is shown (paged), none dropped
    "scrollX": True,  # the table scrolls sideways, not the whole app
    "pageLength": PAGE_LENGTH,
    "lengthMenu": [10, 25, 100, 1000],
    "classes": "display nowrap compact cell-border",
}


def _display(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """The columns to review, in order, labelled, as text (decimals plain, flags yes/no)."""
    picked = [c for c in columns if c in frame.columns]
    out = pd.DataFrame(
        {columns[c]: [cell_text(v) for v in frame[c]] for c in picked},
        columns=[columns[c] for c in picked],
    )
    return out.reset_index(drop=True)


def _download_link(frame: pd.DataFrame, name: str, label: str) -> str:
    # A data: link works offline and in Voilà (no server route); decimals exact and plain.
    data = plain_frame(frame).to_csv(index=False).encode()
    href = "data:text/csv;charset=utf-8;base64," + base64.b64encode(data).decode()
    return (
        f'<a download="{html.escape(name)}" href="{href}" class="hubkit-download">'
        f"⬇ {html.escape(label)} ({counted(len(frame), 'row')}, CSV)</a>"
    )


def download_csv(link_html: str) -> str:
    """The CSV a download link carries (for tests and checks)."""
    payload = link_html.split("base64,", 1)[1].split('"', 1)[0]
    return base64.b64decode(payload).decode()
