"""One light copy of plotly's widget bundle per page, however many charts it shows.

plotly's ``FigureWidget`` is an anywidget whose ``_esm`` is its whole front end: plotly.js
and the widget code, 5 MB of JavaScript. Each ``FigureWidget`` carries it in its own state:
the explorer's four charts put 20 MB on the websocket on every visit and chromium evaluated
plotly.js four times, which was most of the 8–9 s before the web app showed anything.

Here the bundle travels once: :class:`PlotlyBundle` (one per kernel, :func:`plotly_bundle`)
holds it and imports it once per page; the charts are plotly's ``FigureWidget`` with a tiny
``_esm`` (:func:`figure_widget_class`) that waits for that import and hands over to plotly's
own widget code. Python API, messages and widget code stay plotly's.

And the bundle is light: plotly's widget code around plotly.js's *finance* build
(``static/plotly-finance.min.js``: scatter, bar, histogram, waterfall, pie… — 1.3 MB, which
chromium evaluates in a quarter of the full build's second). A figure with any other trace
type gets plotly's own ``FigureWidget`` (:func:`figure_widget`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

#: The page's one import of the bundle, shared by every chart of every kernel. It starts when
#: the first chart is rendered and the bundle's text has arrived, whichever comes last.
SLOT_JS = """
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
    SLOT_JS
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
    SLOT_JS
    + """
// After each redraw plotly's view diffs its full figure against the model and reports the
// result to Python: a few ms a chart, on the page's one thread. On a knob step the four
// charts' updates arrive a few ms apart, and a report run between them delays the next
// chart's redraw. Report once the chart has been quiet for QUIET_MS instead: only the last
// report counts (Python acts on the latest edit id alone), so the pending one is replaced.
const QUIET_MS = 250;
function reportLater(view) {
  for (const name of ["_sendTraceDeltas", "_sendLayoutDelta"]) {
    const now = view[name];
    if (typeof now !== "function" || now.later) continue;
    const key = Symbol(name);
    const later = function (...args) {
      const pending = this[key] || (this[key] = {timer: 0, args: null});
      pending.args = args;
      clearTimeout(pending.timer);
      pending.timer = setTimeout(() => now.apply(this, pending.args), QUIET_MS);
    };
    later.later = true;
    view[name] = later;
  }
}
export default () => {
  const s = slot();
  let ready = null;
  return {
    initialize(ctx) {
      ready = s.module.then((m) => {
        reportLater(m.FigureView.prototype);
        const w = m.default();
        w.initialize(ctx);
        return w;
      });
    },
    async render(ctx) { s.start(); return (await ready).render(ctx); },
  };
};
"""
)


#: plotly.js's finance build (npm ``plotly.js-finance-dist-min``, see static/README.md)
FINANCE_JS = Path(__file__).with_name("static") / "plotly-finance.min.js"
#: the trace types it draws
FINANCE_TRACES = frozenset(
    {"bar", "candlestick", "funnel", "funnelarea", "histogram", "indicator", "ohlc", "pie",
     "scatter", "waterfall"}
)  # fmt: skip
# plotly's widget bundle (esbuild) wraps plotly.js as one CommonJS module, first thing:
# ``var LQ=fbe((DQ,hA)=>{(function(…){…})(…,()=>{…;return window.Plotly=Q,Q})});``
_PLOTLY_MODULE = re.compile(r"var (\w+)=(\w+)\(\(\w+,\w+\)=>\{\(function\(")
_PLOTLY_MODULE_END = "return window.Plotly="

_BUNDLE: list[Any] = []  # this kernel's PlotlyBundle, once made


def with_plotly_js(widget_bundle: str, plotly_js: str) -> str | None:
    """plotly's widget bundle around another plotly.js build (a UMD file); None when the
    bundle is not laid out as expected (another plotly version): then keep plotly's own."""
    start = _PLOTLY_MODULE.search(widget_bundle)
    if start is None:
        return None
    tail = widget_bundle.find(_PLOTLY_MODULE_END, start.end())
    end = widget_bundle.find("});", tail) if tail >= 0 else -1
    name, wrap = start.group(1), start.group(2)
    rest = widget_bundle[end + 3 :]
    if end < 0 or f"({name}())" not in rest:
        return None
    # the UMD file sees a CommonJS `module` and exports Plotly there, as the full build did
    module = f"var {name}={wrap}((exports,module)=>{{\n{plotly_js}\n}});"
    return widget_bundle[: start.start()] + module + rest


def _base_widget_class() -> Any:
    from plotly.basewidget import BaseFigureWidget

    return BaseFigureWidget


@functools.cache
def finance_bundle() -> str | None:
    """plotly's widget code around the finance build, or None (see :func:`with_plotly_js`)."""
    return with_plotly_js(str(_base_widget_class()._esm), FINANCE_JS.read_text(encoding="utf-8"))


@functools.cache
def _bundle_class() -> Any:
    # deferred, as plotly's widget class is: anywidget is loaded only once a chart is drawn
    import anywidget
    import traitlets

    class PlotlyBundle(anywidget.AnyWidget):
        """Never displayed: its model brings the charts' widget bundle to the page, once."""

        _esm = _LOADER_JS
        bundle = traitlets.Unicode("").tag(sync=True)

    return PlotlyBundle


def plotly_bundle() -> Any:
    """This kernel's bundle widget (made on first use, and again if something closed it)."""
    if not _BUNDLE or _BUNDLE[0].comm is None:
        # plotly's own widget bundle (full plotly.js, 5 MB) when a plotly release lays it out
        # otherwise: the chart panel still draws; FigureWidgets then bring their own
        text = finance_bundle() or str(_base_widget_class()._esm)
        _BUNDLE[:] = [_bundle_class()(bundle=text)]
    return _BUNDLE[0]


@functools.cache
def figure_widget_class() -> Any:
    """plotly's ``FigureWidget`` whose front end comes from :func:`plotly_bundle`."""
    import plotly.graph_objects as go
    import traitlets
    from plotly.serializers import custom_serializers

    class SharedBundleFigureWidget(go.FigureWidget):
        _esm = _CHART_JS
        # What the browser reports after each redraw is for Python alone: ipywidgets
        # would echo it back to the page (6-8 kB per chart and step) for nothing.
        _js2py_traceDeltas = traitlets.Dict(allow_none=True).tag(
            sync=True, echo_update=False, **custom_serializers
        )
        _js2py_layoutDelta = traitlets.Dict(allow_none=True).tag(
            sync=True, echo_update=False, **custom_serializers
        )

    return SharedBundleFigureWidget


def shares_the_bundle(figure: Any) -> bool:
    """Whether the shared (finance) bundle can draw every trace of ``figure``."""
    return finance_bundle() is not None and {t.type for t in figure.data} <= FINANCE_TRACES


def can_draw(widget: Any, figure: Any) -> bool:
    """Whether ``widget`` (from :func:`figure_widget`) can draw ``figure``'s trace types."""
    return not isinstance(widget, figure_widget_class()) or shares_the_bundle(figure)


def figure_widget(figure: Any) -> Any:
    """A ``FigureWidget`` of ``figure``: on the page's one light bundle when it can draw it,
    else plotly's own (which brings the full plotly.js along)."""
    if not shares_the_bundle(figure):
        import plotly.graph_objects as go

        return go.FigureWidget(figure)
    plotly_bundle()  # before the chart: its model reaches the page first
    return figure_widget_class()(figure)
