"""Live charts in one panel: whole figures once, then one small patch per step."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from hubkit.charts import ChartData
from hubkit.widgets._chart_panel import ChartPanel, sendable
from hubkit.widgets._plotly_bundle import FINANCE_JS, plotly_bundle


def _data(ys: list[list[float]], note: str = "") -> ChartData:
    traces = tuple({"x": np.arange(len(y)), "y": np.asarray(y, dtype=float)} for y in ys)
    return ChartData(traces, {"annotations": [{"text": note}] if note else []})


def _make(name: str, data: ChartData) -> go.Figure:
    figure = go.Figure([go.Scatter(name=f"{name}-{i}", **t) for i, t in enumerate(data.traces)])
    figure.update_layout(title=name, annotations=data.layout["annotations"])
    return figure


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def _page(panel: ChartPanel, patches: list[dict[str, Any]]) -> dict[str, Any]:
    """What a page shows: the whole figures, then each patch as the page code applies it
    (``Plotly.update`` with the patch's traces), skipping patches of another revision."""
    shown = {n: copy.deepcopy(f) for n, f in panel.widget.figures.items()}
    for patch in patches:
        for name, update in patch["charts"].items():
            if shown[name]["rev"] != update["rev"]:
                continue
            figure = shown[name]["figure"]
            for key, values in update["restyle"].items():
                for i, value in zip(update["traces"], values, strict=True):
                    figure["data"][i][key] = value
            figure["layout"].update(update["relayout"])
    return {n: f["figure"] for n, f in shown.items()}


@pytest.fixture
def panel() -> ChartPanel:
    return ChartPanel(("a", "b"), "test-chart-")


def test_a_step_sends_only_the_traces_that_changed_in_one_patch(panel: ChartPanel) -> None:
    sent: list[dict[str, Any]] = []
    panel.widget.observe(lambda change: sent.append(change["new"]), names="patch")
    panel.show({"a": _data([[1, 2], [3, 4]]), "b": _data([[5, 6]], "x")}, _make)
    assert panel.last_update == {"a": "created", "b": "created"} and sent == []
    wholes = copy.deepcopy(panel.widget.figures)
    assert wholes["a"]["figure"]["layout"]["title"]["text"] == "a"

    panel.show({"a": _data([[1, 2], [3, 9]]), "b": _data([[5, 6]], "y")}, _make)
    assert panel.widget.figures == wholes  # no whole figure sent again
    assert len(sent) == 1
    a, b = sent[0]["charts"]["a"], sent[0]["charts"]["b"]
    assert a["traces"] == [1] and [_numbers(v) for v in a["restyle"]["y"]] == [[3, 9]]
    assert a["relayout"] == {}  # the annotations did not change
    assert b["traces"] == [] and b["relayout"] == {"annotations": [{"text": "y"}]}
    assert _numbers(panel.figure_json("a")["data"][1]["y"]) == [3, 9]

    panel.show({"a": _data([[1, 2], [3, 9]]), "b": _data([[5, 6]], "y")}, _make)
    assert len(sent) == 1  # nothing changed: nothing sent, nothing redrawn
    panel.show({"a": _data([[7, 2], [3, 9]])}, _make)  # one chart alone
    assert len(sent) == 2 and set(sent[1]["charts"]) == {"a"}
    # the page, from the whole figures and the patches, shows what the kernel holds
    page = _page(panel, sent)
    assert page == {"a": panel.figure_json("a"), "b": panel.figure_json("b")}


def test_another_shape_is_drawn_whole_and_hidden_charts_keep_their_place(
    panel: ChartPanel,
) -> None:
    panel.show({"a": _data([[1, 2]]), "b": _data([[1]])}, _make)
    rev = panel.widget.figures["a"]["rev"]
    panel.show({"a": _data([[1, 2], [3, 4]]), "b": _data([[2]])}, _make)  # a trace more
    assert panel.last_update == {"a": "created", "b": "patched"}
    assert panel.widget.figures["a"]["rev"] > rev
    assert len(panel.widget.figures["a"]["figure"]["data"]) == 2

    panel.show({"a": None, "b": _data([[2]])}, _make)
    assert panel.widget.figures["a"]["figure"] is None and panel.figure_json("a") is None
    assert panel.last_update["a"] == "hidden" and panel.widget.height == 400
    panel.show({"a": _data([[5, 6]])}, _make)
    assert panel.last_update["a"] == "created"
    assert _numbers(panel.widget.figures["a"]["figure"]["data"][0]["y"]) == [5, 6]
    with pytest.raises(ValueError, match="unknown chart 'c'"):
        panel.show({"c": _data([[1]])}, _make)


def test_a_page_opened_after_patches_gets_todays_whole_figures(panel: ChartPanel) -> None:
    panel.show({"a": _data([[1, 2]]), "b": _data([[1]])}, _make)
    before = copy.deepcopy(panel.widget.figures)
    panel._on_msg(panel.widget, {"event": "view"}, [])
    assert panel.widget.figures == before  # nothing was patched: its figures are today's

    panel.show({"a": _data([[1, 3]]), "b": _data([[1]])}, _make)
    panel._on_msg(panel.widget, {"event": "view"}, [])
    now = panel.widget.figures
    assert all(now[n]["rev"] > before[n]["rev"] for n in ("a", "b"))
    assert _numbers(now["a"]["figure"]["data"][0]["y"]) == [1, 3]
    # the last patch is of the old revision: the new page (and the others) skip it
    assert panel.widget.patch["charts"]["a"]["rev"] == before["a"]["rev"]
    # a copy: later patches change the kernel's figure, not what was sent
    panel.show({"a": _data([[4, 4]])}, _make)
    assert _numbers(now["a"]["figure"]["data"][0]["y"]) == [1, 3]


def test_sendable_numbers_are_typed_arrays_and_times_iso_text() -> None:
    floats = sendable(np.array([1.5, np.nan, -2.0]))
    assert floats["dtype"] == "f8"
    assert np.array_equal(_numbers(floats), [1.5, np.nan, -2.0], equal_nan=True)
    assert sendable(np.array([1, 2**31 - 1]))["dtype"] == "i4"  # plotly.js has no int64
    assert sendable(np.array([2**40])) == [2**40]
    times = np.array(["2026-01-02T03:04:05.678"], dtype="datetime64[ns]")
    assert sendable(times) == ["2026-01-02T03:04:05.678"]
    assert sendable(np.array(["a", "b"], dtype=object)) == ["a", "b"]
    assert sendable({"k": (np.int64(3), np.array([], dtype=float))}) == {"k": [3, []]}
    json.dumps(sendable({"x": np.arange(3.0), "t": times}))  # all JSON


def test_the_panel_carries_no_plotly_js_and_the_bundle_draws_for_it(panel: ChartPanel) -> None:
    panel.show({"a": _data([[1, 2]]), "b": _data([[1]])}, _make)
    state = panel.widget.get_state()
    assert len(str(state["_esm"])) < 10_000  # the page's one bundle holds plotly.js
    assert plotly_bundle().comm is not None
    # the panel's page code draws with the bundle's plotly.js, which says where it is
    assert "window.Plotly = Plotly;" in FINANCE_JS.read_text(encoding="utf-8")


def test_a_chart_that_fails_leaves_the_page_with_what_the_kernel_holds(
    panel: ChartPanel,
) -> None:
    panel.show({"a": _data([[1, 2]]), "b": _data([[1]])}, _make)
    sent: list[dict[str, Any]] = []
    panel.widget.observe(lambda change: sent.append(change["new"]), names="patch")

    def broken(name: str, data: ChartData) -> go.Figure:
        raise RuntimeError("no figure")

    with pytest.raises(RuntimeError, match="no figure"):
        # a's patch is made, then b needs a whole figure (a trace more) and fails
        panel.show({"a": _data([[1, 5]]), "b": _data([[1], [2]])}, broken)
    assert len(sent) == 1 and set(sent[0]["charts"]) == {"a"}  # a's change reached the page
    assert _page(panel, sent) == {"a": panel.figure_json("a"), "b": panel.figure_json("b")}


def test_sendable_takes_pandas_durations_and_tables() -> None:
    assert sendable(np.datetime64("2026-01-02T03:04:05.678", "ns")) == "2026-01-02T03:04:05.678"
    assert _numbers(sendable(pd.Series([1.0, 2.0]))) == [1.0, 2.0]
    assert _numbers(sendable(np.array([1500, 2], dtype="timedelta64[ms]"))) == [1500.0, 2.0]
    assert sendable(np.arange(4.0).reshape(2, 2)) == [[0.0, 1.0], [2.0, 3.0]]


def test_the_panel_draws_when_a_plotly_release_moves_its_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from plotly.basewidget import BaseFigureWidget

    from hubkit.widgets import _plotly_bundle

    monkeypatch.setattr(_plotly_bundle, "finance_bundle", lambda: None)
    monkeypatch.setattr(_plotly_bundle, "_BUNDLE", [])
    panel = ChartPanel(("a",), "test-chart-")  # the page gets plotly's own (full) bundle
    assert _plotly_bundle.plotly_bundle().bundle == str(BaseFigureWidget._esm)
    panel.show({"a": _data([[1, 2]])}, _make)
    assert panel.last_update == {"a": "created"}
