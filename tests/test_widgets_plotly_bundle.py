"""Charts share one plotly bundle: a chart widget's state is small, the bundle is sent once."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
from ipywidgets import Widget
from ipywidgets.widgets.widget import _instances
from plotly.basewidget import BaseFigureWidget

from hubkit.widgets._live_figure import LiveFigure
from hubkit.widgets._plotly_bundle import figure_widget, plotly_bundle


def _figure(n: int) -> go.Figure:
    return go.Figure(go.Scatter(x=list(range(n)), y=list(range(n))))


def _state_size(widget: Widget) -> int:
    return len(json.dumps(widget.get_state(), default=str))


@pytest.fixture
def bundle_text() -> str:
    text = str(BaseFigureWidget._esm)
    assert len(text) > 1_000_000  # plotly.js and its widget code
    return text


def test_charts_carry_no_plotly_js_and_one_bundle_does(bundle_text: str) -> None:
    charts = [LiveFigure(f"c{i}") for i in range(4)]
    for chart in charts:
        chart.show(_figure(10))
    bundle = plotly_bundle()
    assert bundle.bundle == bundle_text
    for chart in charts:
        assert isinstance(chart.widget, go.FigureWidget)  # plotly's API, unchanged
        assert len(chart.widget._esm) < 2_000
        assert _state_size(chart.widget) < 50_000
    # the page learns of the bundle before any chart that waits for it
    ids = list(_instances)  # in the order the kernel opened their comms
    assert ids.index(bundle.model_id) < min(ids.index(c.widget.model_id) for c in charts)
    assert plotly_bundle() is bundle  # one per kernel


def test_a_closed_bundle_is_made_again() -> None:
    first = plotly_bundle()
    first.close()
    again = figure_widget(_figure(3))
    assert plotly_bundle() is not first and plotly_bundle().comm is not None
    assert again.data[0].x == (0, 1, 2)
