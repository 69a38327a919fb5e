"""A live plotly figure that sends only its data over the kernel's WebSocket.

plotly's own ``FigureWidget`` (plotly >= 6) is an anywidget whose front-end code *is* the 5 MB
plotly.js bundle: every figure ships it through the kernel WebSocket (measured in Chromium: 5.3 MB for
notebook 03's one figure, 15.8 MB for notebook 07's three; ``benchmarks/notebooks.py``).  Thirty
students on one classroom link move half a gigabyte for one notebook.

:class:`LiveFigure` is an anywidget too, but its front-end code is a few kB: it asks the Jupyter
server for plotly.js at a fixed, versioned URL (``kalab/static/plotly.min.js?v=...``, served by the
server extension :mod:`kalab.jupyter` from the plotly package itself, cached by the browser for a year,
and fetched once per page however many figures it has); only where that extension is not installed
(VS Code, Colab) does it ask the kernel for the bundle, once per page.  The kernel then sends the figure
dict and, on each change, the new dict; the browser redraws with ``Plotly.react``, which only touches
what changed.

The figure is a plain plotly figure dict (``{"data": [...], "layout": {...}}``, see :mod:`kalab.plot`),
so nothing here imports plotly in the kernel.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import anywidget
import traitlets

#: The route :mod:`kalab.jupyter` serves plotly.js on, relative to the server's base URL.
STATIC_ROUTE = "kalab/static/plotly.min.js"

_ESM = r"""
// kalab LiveFigure: plotly.js comes from the Jupyter server (cached), never through the kernel socket
// unless the server cannot give it.
function baseUrl() {
  try {
    const el = document.getElementById("jupyter-config-data");
    if (el) { const b = JSON.parse(el.textContent).baseUrl; if (b) return b.endsWith("/") ? b : b + "/"; }
  } catch (e) { /* no page config: fall through */ }
  const b = document.body && document.body.dataset ? document.body.dataset.baseUrl : null;
  return b ? (b.endsWith("/") ? b : b + "/") : "/";
}
function evaluate(src) {
  // plotly.min.js is UMD: hand it a CommonJS `module` so it neither touches an AMD loader nor globals.
  const module = { exports: {} };
  new Function("module", "exports", "define", src)(module, module.exports, undefined);
  return module.exports;
}
async function fromServer(url) {
  const r = await fetch(baseUrl() + url, { credentials: "same-origin" });
  if (!r.ok) throw new Error("kalab: " + url + " answered " + r.status);
  return r.text();
}
function fromKernel(model) {
  return new Promise((resolve) => {
    model.on("msg:custom", (msg, buffers) => {
      if (msg && msg.kind === "plotly.js") resolve(new TextDecoder().decode(buffers[0]));
    });
    model.send({ kind: "need plotly.js" });
  });
}
function plotly(model) {
  if (!globalThis.__kalabPlotly) {
    globalThis.__kalabPlotly = fromServer(model.get("plotly_url")).catch(() => fromKernel(model)).then(evaluate);
  }
  return globalThis.__kalabPlotly;
}
export default {
  async render({ model, el }) {
    const div = document.createElement("div");
    div.className = "kalab-live-figure";
    el.appendChild(div);
    const Plotly = await plotly(model);
    const config = { displaylogo: false, responsive: true };
    const draw = () => { const s = model.get("spec"); return Plotly.react(div, s.data, s.layout, config); };
    await draw();
    model.on("change:spec", draw);
    return () => { model.off("change:spec", draw); Plotly.purge(div); };
  },
};
"""


def _plotly_version() -> str:
    try:
        return importlib.metadata.version("plotly")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def plotly_js_path() -> Path:
    """plotly.js as the plotly Python package ships it (``plotly/package_data/plotly.min.js``)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("plotly is not installed (pip install 'kalab[notebook]')")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


class LiveFigure(anywidget.AnyWidget):
    """A plotly figure dict shown live; assign a new dict to ``spec`` to redraw.

    >>> fig = LiveFigure({"data": [{"type": "scatter", "x": [1], "y": [2]}], "layout": {}})
    >>> fig.spec["data"][0]["x"]
    [1]
    """

    _esm = _ESM
    spec = traitlets.Dict().tag(sync=True)
    plotly_url = traitlets.Unicode(f"{STATIC_ROUTE}?v={_plotly_version()}").tag(sync=True)

    def __init__(self, spec: dict[str, Any], **kwargs) -> None:
        super().__init__(spec=spec, **kwargs)
        self.on_msg(self._on_custom)

    def _on_custom(self, _widget, content, _buffers) -> None:
        # The front end found no kalab server extension: send the bundle over this widget's comm, once
        # per page (the browser keeps it in a global for every other figure).
        if isinstance(content, dict) and content.get("kind") == "need plotly.js":
            self.send({"kind": "plotly.js"}, buffers=[plotly_js_path().read_bytes()])

    def svg(self, caption=()) -> str:
        """The figure as a static SVG (:mod:`kalab.svg`)."""
        from .svg import render
        return render(self.spec, caption=caption)

