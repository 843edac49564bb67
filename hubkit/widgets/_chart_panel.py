"""Several live plotly charts in one widget: a knob step redraws them all from one message.

Four ``FigureWidget`` charts cost a knob step sixteen kernel messages (plotly's widget
sends each update as four trait changes), four browser tasks each followed by its own
paint, and four reports back to the kernel after the redraws. On a 2-core machine shared
by browser, server and kernel, that traffic — not the drawing — was most of the time
from the slider to the last chart on screen.

A :class:`ChartPanel` draws its charts with plotly.js itself (from the page's one light
bundle, :mod:`hubkit.widgets._plotly_bundle`) and takes a step as one ``patch`` message
holding each chart's new numbers (:class:`hubkit.charts.ChartData`); the page applies
them with ``Plotly.update`` in one task, so the charts change together in one frame.
A patch carries the traces that changed since the last one; a chart whose shape changed
(other traces, other data keys) is sent whole instead. A page that opens the panel after
patches were sent (a second view, a reload) tells the kernel, which sends every chart whole
again, so each page shows what the kernel holds.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hubkit.widgets._plotly_bundle import SLOT_JS, plotly_bundle

_CONFIG = {"responsive": True, "displaylogo": False}

_PANEL_JS = (
    SLOT_JS
    + """
const CONFIG = __CONFIG__;
export default {
  async render({ model, el }) {
    const s = slot();
    s.start();
    const plots = {};
    el.style.cssText = "display:flex;flex-wrap:wrap;width:100%";
    for (const name of model.get("names")) {
      const box = document.createElement("div");
      box.className = model.get("css_prefix") + name;
      // fixed size from the start: the page does not move while the charts arrive
      box.style.cssText = `width:${model.get("width")};height:${model.get("height")}px;` +
        "box-sizing:border-box;visibility:hidden";
      const plot = document.createElement("div");
      plot.style.cssText = "width:100%;height:100%";
      box.appendChild(plot);
      el.appendChild(box);
      plots[name] = plot;
    }
    await s.module;
    const Plotly = window.Plotly;
    const drawn = {};  // chart -> revision of the whole figure on the page
    let patched = null;
    const sync = () => {
      const figures = model.get("figures") || {};
      for (const [name, f] of Object.entries(figures)) {
        const plot = plots[name];
        if (!plot || drawn[name] === f.rev) continue;
        drawn[name] = f.rev;
        plot.parentElement.style.visibility = f.figure ? "visible" : "hidden";
        // a copy: plotly keeps (and a patch changes) the arrays it is given
        if (f.figure) Plotly.react(plot, structuredClone(f.figure.data),
                                   structuredClone(f.figure.layout), CONFIG);
      }
      const p = model.get("patch");
      if (!p || !p.charts || p.seq === patched) return;
      patched = p.seq;
      for (const [name, u] of Object.entries(p.charts)) {
        // a patch of another revision of the figure: a whole one replaces it anyway
        if (plots[name] && drawn[name] === u.rev) {
          Plotly.update(plots[name], u.restyle, u.relayout, u.traces);
        }
      }
    };
    sync();
    model.on("change", sync);
    model.send({event: "view"});
    return () => {
      model.off("change", sync);
      for (const plot of Object.values(plots)) Plotly.purge(plot);
    };
  },
};
"""
).replace("__CONFIG__", json.dumps(_CONFIG))


@functools.cache
def _panel_class() -> Any:
    # deferred like plotly's own widget: anywidget loads only once a chart is drawn
    import anywidget
    import traitlets

    class ChartPanelWidget(anywidget.AnyWidget):
        """The page side of a :class:`ChartPanel`."""

        _esm = _PANEL_JS
        names = traitlets.List(traitlets.Unicode()).tag(sync=True)
        css_prefix = traitlets.Unicode("").tag(sync=True)
        width = traitlets.Unicode("50%").tag(sync=True)
        height = traitlets.Int(400).tag(sync=True)
        #: chart → {"rev": n, "figure": plotly JSON or None (hidden)}
        figures = traitlets.Dict().tag(sync=True)
        #: {"seq": n, "charts": {chart: {"rev", "restyle", "relayout", "traces"}}}
        patch = traitlets.Dict().tag(sync=True)

    return ChartPanelWidget


#: numpy dtypes plotly.js takes as typed arrays (base64), by its short names
_TYPED = {"float64": "f8", "float32": "f4", "int32": "i4", "int16": "i2", "int8": "i1",
          "uint32": "u4", "uint16": "u2", "uint8": "u1"}  # fmt: skip
_INT32 = np.iinfo(np.int32)


def sendable(value: Any) -> Any:
    """``value`` as the page takes it: numbers as base64 typed arrays (a float as text is
    three times its 8 bytes, and the kernel spent longer writing it than plotly.js takes to
    draw it), times as ISO text (UTC, ms), other arrays as lists."""
    if isinstance(value, pd.Series | pd.Index):
        value = value.to_numpy()
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="ms"))
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return np.datetime_as_string(value, unit="ms").tolist()
        if value.dtype.kind == "m":  # durations as milliseconds, as plotly takes them
            value = value / np.timedelta64(1, "ms")
        if value.ndim != 1:
            return value.tolist()
        if (
            value.dtype == np.int64
            and value.size
            and _INT32.min <= value.min() <= value.max() <= _INT32.max
        ):
            value = value.astype(np.int32)
        code = _TYPED.get(str(value.dtype))
        if code is None or not value.size:
            return value.tolist()
        return {
            "dtype": code,
            "bdata": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode(),
        }
    if isinstance(value, Mapping):
        return {k: sendable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sendable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def figure_dict(figure: Any) -> dict[str, Any]:
    """A plotly figure as the page draws it (its JSON, arrays as base64 typed arrays)."""
    import plotly.io as pio

    return dict(json.loads(pio.to_json(figure, validate=False)))


def _with_data(figure: dict[str, Any], data: Any) -> dict[str, Any]:
    """``figure`` with ``data``'s keys in :func:`sendable` form: patches are compared with it."""
    for trace, values in zip(figure["data"], data.traces, strict=True):
        for key in data.keys():
            trace[key] = sendable(values[key])
    for key, value in data.layout.items():
        figure["layout"][key] = sendable(value)
    return figure


def _patch(figure: dict[str, Any], data: Any) -> dict[str, Any]:
    """What changed from ``figure`` (the page's) to ``data``: the traces that changed, each
    with all its data keys, and the layout keys that changed. ``figure`` becomes ``data``."""
    keys = data.keys()
    changed: list[int] = []
    for i, (trace, values) in enumerate(zip(figure["data"], data.traces, strict=True)):
        new = {key: sendable(values[key]) for key in keys}
        if any(trace.get(key) != value for key, value in new.items()):
            changed.append(i)
            trace.update(new)
    restyle = {key: [figure["data"][i][key] for i in changed] for key in keys} if changed else {}
    relayout = {}
    for key, value in data.layout.items():
        value = sendable(value)
        if value != figure["layout"].get(key):
            relayout[key] = value
            figure["layout"][key] = value
    return {"restyle": restyle, "relayout": relayout, "traces": changed}


class ChartPanel:
    """Charts ``names`` side by side (``width`` each, ``height`` px), drawn by one widget.

    ``panel.show({name: ChartData or None}, make)`` shows each chart's data: patched into
    the figure on the page when it has that shape, else drawn whole from ``make(name,
    data)``; None hides the chart (its place stays, so the page does not jump).
    """

    def __init__(
        self, names: Sequence[str], css_prefix: str, *, width: str = "50%", height: int = 400
    ) -> None:
        plotly_bundle()  # before the panel: the bundle's model reaches the page first
        self.names = tuple(names)
        self.widget = _panel_class()(
            names=list(self.names), css_prefix=css_prefix, width=width, height=height
        )
        self._rev = 0
        self._seq = 0
        self._figures: dict[str, dict[str, Any] | None] = dict.fromkeys(self.names)
        self._shapes: dict[str, tuple[Any, ...]] = {}
        self._patched = False  # patches sent since the page got whole figures
        self.widget.on_msg(self._on_msg)
        #: per chart, how the last :meth:`show` reached the page: "created", "patched",
        #: "hidden" or "" (never shown)
        self.last_update: dict[str, str] = dict.fromkeys(self.names, "")

    def show(self, charts: Mapping[str, Any], make: Callable[[str, Any], Any]) -> None:
        """Show each chart's :class:`hubkit.charts.ChartData` (None hides it), one message."""
        figures = dict(self.widget.figures)
        patches: dict[str, dict[str, Any]] = {}
        try:
            self._update(charts, make, figures, patches)
        finally:
            # what was changed here is sent even when a later chart failed: the kernel's
            # figures and the page's stay the same
            with self.widget.hold_sync():
                if figures != self.widget.figures:
                    self.widget.figures = figures
                if patches:
                    self._seq += 1
                    self.widget.patch = {"seq": self._seq, "charts": patches}

    def _update(
        self,
        charts: Mapping[str, Any],
        make: Callable[[str, Any], Any],
        figures: dict[str, Any],
        patches: dict[str, dict[str, Any]],
    ) -> None:
        for name, data in charts.items():
            if name not in self._figures:
                raise ValueError(f"unknown chart {name!r}; one of {', '.join(self.names)}")
            figure = self._figures[name]
            if data is None:
                if figure is None and self.last_update[name] == "hidden":
                    continue
                self._figures[name] = None
                figures[name] = self._whole(None)
                self.last_update[name] = "hidden"
                continue
            shape = (len(data.traces), data.keys(), tuple(data.layout))
            if figure is None or not data.traces or self._shapes.get(name) != shape:
                self._figures[name] = _with_data(figure_dict(make(name, data)), data)
                self._shapes[name] = shape
                figures[name] = self._whole(self._figures[name])
                self.last_update[name] = "created"
                continue
            patch = _patch(figure, data)
            if patch["traces"] or patch["relayout"]:
                patches[name] = {"rev": figures[name]["rev"], **patch}
                self._patched = True
            self.last_update[name] = "patched"

    def _whole(self, figure: dict[str, Any] | None) -> dict[str, Any]:
        self._rev += 1
        # the page gets its own copy: the kernel's is patched in place from now on
        return {"rev": self._rev, "figure": copy.deepcopy(figure)}

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # A page that opened the panel after patches were sent has the whole figures of
        # before them: send today's (each page redraws once; patches follow as usual).
        if isinstance(content, dict) and content.get("event") == "view" and self._patched:
            self._patched = False
            self.widget.figures = {name: self._whole(f) for name, f in self._figures.items()}

    def figure_json(self, name: str) -> dict[str, Any] | None:
        """What chart ``name`` shows now (plotly JSON), None while hidden or never drawn."""
        return self._figures[name]
