"""One copy of plotly's widget bundle per page, however many charts it shows.

plotly's ``FigureWidget`` is an anywidget whose ``_esm`` is its whole front end: plotly.js
and the widget code, 5 MB of JavaScript. Each ``FigureWidget`` carries it in its own state:
the explorer's four charts put 20 MB on the websocket on every visit and chromium compiles
plotly.js four times, which is most of the 8–9 s before the web app shows anything.

Here the bundle travels once: :class:`PlotlyBundle` (one per kernel, :func:`plotly_bundle`)
holds it and imports it once per page; the charts are plotly's ``FigureWidget`` with a tiny
``_esm`` (:func:`figure_widget_class`) that waits for that import and hands over to plotly's
own widget code. Python API, messages and browser code stay plotly's.
"""

from __future__ import annotations

import functools
from typing import Any

#: The page's one import of the bundle, shared by every chart of every kernel. It starts when
#: the first chart is rendered and the bundle's text has arrived, whichever comes last.
_SLOT_JS = """
const KEY = Symbol.for("hubkit.plotly-widget-bundle");
function slot() {
  let s = globalThis[KEY];
  if (!s) {
    s = {text: null, wanted: false, started: false};
    s.module = new Promise((resolve, reject) => { s.resolve = resolve; s.reject = reject; });
    s.start = () => {
      s.wanted = true;
      if (s.text === null || s.started) return;
      s.started = true;
      load(s);
    };
    globalThis[KEY] = s;
  }
  return s;
}
async function load(s) {
  // Evaluating plotly.js holds the page's one thread for a second: let the page paint
  // what needs no plotly first (the KPI cards above the charts), then import.
  await new Promise((go) => {
    requestAnimationFrame(() => setTimeout(go, 0));
    setTimeout(go, 250);  // a hidden tab has no frames
  });
  const url = URL.createObjectURL(new Blob([s.text], {type: "text/javascript"}));
  try { s.resolve(await import(url)); } catch (e) { s.reject(e); }
  finally { URL.revokeObjectURL(url); s.text = ""; }
}
"""
_LOADER_JS = (
    _SLOT_JS
    + """
export default {
  initialize({ model }) {
    const s = slot();
    if (s.text !== null) return;  // another kernel's bundle came first
    s.text = model.get("bundle");
    if (s.wanted) s.start();
  },
};
"""
)
#: a chart: plotly's own widget (initialize, render) once the page has the bundle
_CHART_JS = (
    _SLOT_JS
    + """
export default () => {
  const s = slot();
  let ready = null;
  return {
    initialize(ctx) {
      ready = s.module.then((m) => { const w = m.default(); w.initialize(ctx); return w; });
    },
    async render(ctx) { s.start(); return (await ready).render(ctx); },
  };
};
"""
)


_BUNDLE: list[Any] = []  # this kernel's PlotlyBundle, once made


@functools.cache
def _bundle_class() -> Any:
    # deferred, as plotly's widget class is: anywidget is loaded only once a chart is drawn
    import anywidget
    import traitlets

    class PlotlyBundle(anywidget.AnyWidget):
        """Never displayed: its model brings plotly's widget bundle to the page, once."""

        _esm = _LOADER_JS
        bundle = traitlets.Unicode("").tag(sync=True)

    return PlotlyBundle


def plotly_bundle() -> Any:
    """This kernel's bundle widget (made on first use, and again if something closed it)."""
    if not _BUNDLE or _BUNDLE[0].comm is None:
        from plotly.basewidget import BaseFigureWidget

        _BUNDLE[:] = [_bundle_class()(bundle=str(BaseFigureWidget._esm))]
    return _BUNDLE[0]


@functools.cache
def figure_widget_class() -> Any:
    """plotly's ``FigureWidget`` whose front end comes from :func:`plotly_bundle`."""
    import plotly.graph_objects as go

    class SharedBundleFigureWidget(go.FigureWidget):
        _esm = _CHART_JS

    return SharedBundleFigureWidget


def figure_widget(figure: Any) -> Any:
    """A ``FigureWidget`` of ``figure`` that shares the page's one plotly bundle."""
    plotly_bundle()  # before the chart: its model reaches the page first
    return figure_widget_class()(figure)
