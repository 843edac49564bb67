"""Charts share one light plotly bundle: a chart's state is small, the bundle is sent once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from ipywidgets import Widget
from ipywidgets.widgets.widget import _instances
from plotly.basewidget import BaseFigureWidget
from plotly.serializers import _py_to_js

from hubkit.widgets._live_figure import LiveFigure
from hubkit.widgets._plotly_bundle import (
    FINANCE_JS,
    FINANCE_TRACES,
    figure_widget,
    figure_widget_class,
    finance_bundle,
    plotly_bundle,
    with_plotly_js,
)

# what plotly's widget bundle looks like around plotly.js (esbuild's CommonJS wrapper)
_LAYOUT = (
    "var a=1;var LQ=fbe((DQ,hA)=>{(function(Q,ne){typeof hA=='object'?hA.exports=ne():0})"
    "(self,()=>{var Q={};return window.Plotly=Q,Q})});var lodash=2;var Md=dbe(LQ());"
    "var TD=class{};export{TD as FigureModel};"
)


def _figure(n: int) -> go.Figure:
    return go.Figure(go.Scatter(x=list(range(n)), y=list(range(n))))


def _state_size(widget: Widget) -> int:
    return len(json.dumps(widget.get_state(), default=str))


def test_the_widget_code_gets_another_plotly_build() -> None:
    got = with_plotly_js(_LAYOUT, "UMD();")
    assert got == (
        "var a=1;var LQ=fbe((exports,module)=>{\nUMD();\n});var lodash=2;var Md=dbe(LQ());"
        "var TD=class{};export{TD as FigureModel};"
    )
    # another layout (a plotly upgrade): None, and the charts keep plotly's own widget
    assert with_plotly_js(_LAYOUT.replace("window.Plotly", "self.Plotly"), "UMD();") is None
    assert with_plotly_js(_LAYOUT.replace("dbe(LQ())", "dbe(XX())"), "UMD();") is None
    assert with_plotly_js("export default {}", "UMD();") is None


def test_the_installed_plotly_bundle_takes_the_finance_build() -> None:
    # fails loudly when a plotly upgrade changes its bundle (the charts would fall back
    # to plotly's own 5 MB widget each)
    bundle = finance_bundle()
    assert bundle is not None
    assert FINANCE_JS.read_text(encoding="utf-8") in bundle
    assert "FigureView" in bundle and "window.Plotly=Q" not in bundle
    assert len(bundle) < len(str(BaseFigureWidget._esm)) / 3


def test_charts_carry_no_plotly_js_and_one_light_bundle_does() -> None:
    charts = [LiveFigure(f"c{i}") for i in range(4)]
    for chart in charts:
        chart.show(_figure(10))
    bundle = plotly_bundle()
    assert bundle.bundle == finance_bundle()
    for chart in charts:
        assert isinstance(chart.widget, go.FigureWidget)  # plotly's API, unchanged
        assert len(chart.widget._esm) < 4_000
        assert _state_size(chart.widget) < 50_000
    # the page learns of the bundle before any chart that waits for it
    ids = list(_instances)  # in the order the kernel opened their comms
    assert ids.index(bundle.model_id) < min(ids.index(c.widget.model_id) for c in charts)
    assert plotly_bundle() is bundle  # one per kernel


def test_other_trace_types_get_plotlys_own_widget() -> None:
    heat = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]))
    assert "heatmap" not in FINANCE_TRACES
    widget = figure_widget(heat)
    assert not isinstance(widget, figure_widget_class()) and len(widget._esm) > 1_000_000
    chart = LiveFigure("c")
    chart.show(_figure(3))
    light, light_class = chart.widget, figure_widget_class()
    assert isinstance(light, light_class)
    chart.show(heat)  # a light widget cannot draw it: replaced, and closed
    assert chart.last_update == "created" and not isinstance(chart.widget, light_class)
    assert light.comm is None
    chart.show(_figure(4))  # plotly's own draws anything: patched in place
    assert chart.last_update == "replaced" and not isinstance(chart.widget, light_class)


def test_a_closed_bundle_is_made_again() -> None:
    first = plotly_bundle()
    first.close()
    again = figure_widget(_figure(3))
    assert plotly_bundle() is not first and plotly_bundle().comm is not None
    assert again.data[0].x == (0, 1, 2)


@pytest.mark.parametrize("kind", sorted(FINANCE_TRACES))
def test_the_finance_build_registers_every_trace_type_said(kind: str) -> None:
    assert f'moduleType:"trace",name:"{kind}"' in FINANCE_JS.read_text(encoding="utf-8")


def _echoed(widget: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[dict] = []
    monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: sent.append(msg))
    traces = {"trace_deltas": [{"uid": widget.data[0].uid}], "trace_edit_id": 0}
    layout = {"layout_delta": {}, "layout_edit_id": 0}
    widget.set_state({"_js2py_traceDeltas": traces, "_js2py_layoutDelta": layout})
    return [k for m in sent if m.get("method") == "echo_update" for k in m["state"]]


def test_what_the_browser_reports_is_not_echoed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _echoed(go.FigureWidget(_figure(3)), monkeypatch)  # plotly's own: echoed
    assert _echoed(figure_widget(_figure(3)), monkeypatch) == []


def test_times_reach_the_page_as_dates_not_nanoseconds() -> None:
    """A datetime64[ns] array went to the widget as integers: the balance chart's time axis
    read 1.736×10¹⁸ in the browser (the screenshot showed it)."""
    ns = np.array([1_736_000_000_000_000_000, 1_737_000_000_000_000_000], dtype=np.int64)
    times = pd.Series(pd.to_datetime(ns.view("datetime64[ns]"), utc=True))  # as replay makes them
    chart = LiveFigure("c")
    for n in (1, 2):  # created, then patched in place
        chart.show(go.Figure(go.Scatter(x=times, y=[n, n + 1], mode="lines+markers")))
        sent = _py_to_js(chart.widget._data, None)[0]["x"]
        assert sent == ["2025-01-04T14:13:20.000", "2025-01-16T04:00:00.000"], sent
    assert chart.last_update == "patched"
