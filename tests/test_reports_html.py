"""Job reports as people read them: plain decimals, "none" for empty tables, no code, and
nothing fetched from the network (the browser half is tests/e2e/test_report_offline.py)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import nbformat
import pandas as pd
import plotly.graph_objects as go

from hubkit.jobs import BulkRateParams, reports
from hubkit.jobs.context import FigureOutput

_REMOTE_SRC = re.compile(r"""<(?:script|link|img)[^>]*(?:src|href)=["']?(?:https?:)?//""", re.I)


def _notebook(path: Path, *, with_figure: bool) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    code = nbformat.v4.new_code_cell("secret_looking_code = run_the_job(params)")
    table = reports.table_html(pd.DataFrame({"rate": [Decimal("1.02E-7"), Decimal("0E-10")]}))
    code.outputs = [nbformat.v4.new_output("display_data", data={"text/html": table})]
    cells = [nbformat.v4.new_markdown_cell("# A report"), code]
    if with_figure:
        bundle = FigureOutput(go.Figure(go.Histogram(x=[1, 2, 2, 3])))._repr_mimebundle_()
        figure_cell = nbformat.v4.new_code_cell("result.figure_html()")
        figure_cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
        cells.append(figure_cell)
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def test_report_tables_print_decimals_plain_and_say_none_when_empty() -> None:
    frame = pd.DataFrame(
        {
            "model": ["a<b>", "c"],
            "new_rate": [Decimal("1.02E-7"), Decimal("0E-10")],
            "old_rate": [Decimal("1.5000000000"), None],
        }
    )
    text = reports.table_html(frame)
    cells = re.findall(r"<td>(.*?)</td>", text)
    assert cells == ["a&lt;b&gt;", "0.000000102", "1.5", "c", "0", ""]
    assert "E-" not in text and "None" not in text and "NaN" not in text
    assert "none" in reports.table_html(frame.iloc[0:0])
    assert "<table" not in reports.table_html(frame.iloc[0:0])
    assert "no changes" in reports.table_html(pd.DataFrame(), empty="no changes")


def test_rendered_report_has_no_code_and_loads_nothing_from_the_network(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "job.ipynb", with_figure=True)
    page = reports.render_html(notebook).read_text()
    assert "run_the_job" not in page and "result.figure_html" not in page
    assert not _REMOTE_SRC.search(page), _REMOTE_SRC.search(page)
    assert "require.min.js" not in page and "mathjax" not in page.lower()
    # plotly.js once, from the run folder, before the figure that needs it
    assert page.count('<script src="plotly.min.js"></script>') == 1
    assert page.index("plotly.min.js") < page.index("Plotly.newPlot")
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert "0.000000102" in page and "1.02E-7" not in page


def test_a_report_without_figures_carries_no_plotly(tmp_path: Path) -> None:
    page = reports.render_html(_notebook(tmp_path / "job.ipynb", with_figure=False)).read_text()
    assert "plotly.min.js" not in page and not (tmp_path / "plotly.min.js").exists()
    assert not _REMOTE_SRC.search(page)


def test_figure_files_share_the_run_folders_plotly(tmp_path: Path) -> None:
    figure = reports.change_pct_figure([Decimal(5), Decimal(10), None], "change")
    one = reports.write_figure(tmp_path, "one", figure)
    two = reports.write_figure(tmp_path, "two", figure)
    for path in (one, two):
        text = path.read_text()
        assert '<script charset="utf-8" src="../plotly.min.js"></script>' in text
        assert not _REMOTE_SRC.search(text)
    assert [p.name for p in tmp_path.glob("*.js")] == ["plotly.min.js"]


def test_parameters_show_as_a_table_in_words() -> None:
    params = BulkRateParams.create(profit_margin="25", max_change_pct=None)
    shown = params._repr_html_()
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", shown))
    assert rows["profit_margin"] == "25" and rows["credit_price"] == "the store&#x27;s setting"
    assert rows["providers"] == "all" and rows["dry_run"] == "yes"
    assert rows["max_change_pct"] == "no limit"
    assert "Decimal(" not in shown
