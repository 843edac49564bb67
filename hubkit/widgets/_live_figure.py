"""A chart that stays one plotly ``FigureWidget``: a new figure patches it in place.

Re-creating a chart on every knob step (a new output bundle, a full ``Plotly.newPlot``)
costs the browser a second or more for four charts and makes the page jump while they
arrive. A :class:`LiveFigure` keeps its widget: a figure of the same shape (same traces,
same types) becomes one ``batch_update`` of trace data and layout, which plotly.js applies
with ``Plotly.update`` to the plot already on the page. Only a change of shape (e.g. another
number of sample users) replaces the traces.

Charts redrawn on every knob step (the scenario explorer's) go further: one
:class:`hubkit.widgets._chart_panel.ChartPanel` sends all of them their numbers alone, in
one message.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np

from hubkit.widgets._chart_panel import sendable
from hubkit.widgets._plotly_bundle import can_draw, figure_widget

#: what a trace update must not carry (plotly sets them; ``type`` cannot be reassigned)
_TRACE_KEYS_KEPT = ("type", "uid")
_CONFIG = {"responsive": True, "displaylogo": False}


class LiveFigure:
    """One chart slot of fixed height; :meth:`show` draws, re-draws in place, or hides."""

    def __init__(self, css_class: str, *, width: str = "50%", height: int = 400) -> None:
        self.box = widgets.Box(layout=widgets.Layout(width=width, min_height=f"{height}px"))
        self.box.add_class(css_class)
        self.widget: Any = None  # plotly.graph_objects.FigureWidget once drawn
        #: how the last figure reached the widget: "created", "patched" or "replaced"
        self.last_update = ""

    def show(self, figure: Any | None) -> None:
        if figure is None:
            # hidden, not removed: the page keeps its height (no jump when it comes back)
            self.box.layout.visibility = "hidden"
            return
        times_as_text(figure)
        self.box.layout.visibility = "visible"
        if self.widget is None or not can_draw(self.widget, figure):
            if self.widget is not None:
                self.widget.close()  # its bundle cannot draw these trace types
            self.widget = figure_widget(figure)
            self.widget._config = {**self.widget._config, **_CONFIG}
            self.box.children = (self.widget,)
            self.last_update = "created"
            return
        self.last_update = patch_figure(self.widget, figure)

    def figure_json(self) -> dict[str, Any] | None:
        """What the chart shows now (plotly JSON), None while hidden or never drawn."""
        if self.widget is None or self.box.layout.visibility == "hidden":
            return None
        return dict(self.widget.to_plotly_json())


def times_as_text(figure: Any) -> None:
    """Replace the traces' datetime64 arrays by ISO text (UTC, milliseconds), in place.

    The widget sends a numpy array it cannot pass as a typed array with ``tolist()``, and
    a ``datetime64[ns]`` array's ``tolist()`` is integers (nanoseconds since 1970): plotly.js
    then draws times as numbers (1.736×10¹⁸). Static figures (``to_json``) are not affected.
    """
    for trace in figure.data:
        for key in ("x", "y", "base"):
            value = getattr(trace, key, None)
            if isinstance(value, np.ndarray) and value.dtype.kind == "M":
                trace[key] = sendable(value)  # as the chart panel sends times


def patch_figure(widget: Any, figure: Any) -> str:
    """Make ``widget`` show ``figure``: in place when the traces keep their shape."""
    new = list(figure.data)
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)  # set once at creation; re-sending it is 10 kB a step
    same_shape = len(widget.data) == len(new) and all(
        old.type == t.type for old, t in zip(widget.data, new, strict=True)
    )
    if same_shape:
        with widget.batch_update():
            for old, t in zip(widget.data, new, strict=True):
                props = {k: v for k, v in t.to_plotly_json().items() if k not in _TRACE_KEYS_KEPT}
                old.update(props, overwrite=True)
            widget.layout.update(layout, overwrite=True)
        return "patched"
    with widget.batch_update():
        widget.layout.update(layout, overwrite=True)
    widget.data = ()
    widget.add_traces(new)
    return "replaced"
