"""Plotly figures from a result: the timeline with one lane per side and layer.

Every figure is first built as a plain plotly figure dict (``*_spec`` functions: JSON-ready lists,
no plotly import), then wrapped: :func:`figure` makes a ``plotly.graph_objects.Figure`` that also
carries a static SVG (:mod:`kalab.svg`) for readers without a kernel; :mod:`kalab.livefigure` shows
the same dict live in a notebook and takes a new dict on each slider change.  plotly is imported
lazily (``import kalab`` stays numpy-only).  The timeline has a *fixed* set of traces
(:data:`TRACES`), so an update only replaces their data.

Lanes, top to bottom: client program, client TCP, path, server TCP, server
program.  Every probe, retransmission, alive message, RST and FIN is a marker;
fault intervals are shaded; each death is a star with a bar from its nominal
time ``at_s`` to ``latest_s`` (timer slack).  Long runs stay readable: the view
starts zoomed on the interesting part, and a lane with thousands of markers of
one kind is aggregated into bins ("512 probes").
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .result import Result

LANES = ["client app", "client tcp", "path", "server tcp", "server app"]

#: (name, event kinds, marker symbol, colour).  Order and count are fixed.
TRACES: list[tuple[str, tuple[str, ...], str, str]] = [
    ("keepalive probe", ("keepalive_probe",), "circle-open", "#1f77b4"),
    ("keepalive answered", ("keepalive_ack",), "circle", "#9ecae1"),
    ("retransmission", ("retransmit", "tlp", "syn_retransmit"), "x", "#d62728"),
    ("data", ("data_sent", "send"), "square", "#7f7f7f"),
    ("ssh alive message", ("alive_sent", "alive_answer", "alive_reply"), "diamond", "#9467bd"),
    ("RST", ("rst_sent", "rst_received", "middlebox_rst"), "triangle-down", "#e377c2"),
    ("FIN / TIME_WAIT", ("fin_sent", "fin_received", "time_wait", "time_wait_end", "fin_wait_2"),
     "triangle-right", "#2ca02c"),
    ("path", ("dropped", "mapping_expired", "link_down", "link_up"), "line-ns-open", "#8c564b"),
    ("repeated cycles", ("repeated",), "hourglass", "#17becf"),
    ("other", (), "circle-dot", "#bcbd22"),
    # Timing (kalab.timing): the timer whose lateness decides an outcome (a bar to its latest firing),
    # and the deadline it races (Result.races; no timeline kind of their own).
    ("timing race", (), "diamond-wide-open", "#ff7f0e"),
    ("race deadline", (), "line-ns", "#ff7f0e"),
    ("death", ("died",), "star", "#000000"),
]
_KIND_TO_TRACE = {k: i for i, (_, kinds, _, _) in enumerate(TRACES) for k in kinds}
MAX_MARKERS_PER_LANE = 300


def lane_of(event) -> str:
    if event.side == "path":
        return "path"
    return f"{event.side} {'tcp' if event.layer == 'tcp' else 'app'}"


def _go():
    import plotly.graph_objects as go
    return go


def _aggregate(xs: list[float], texts: list[str], limit: int) -> tuple[list[float], list[str]]:
    """Keep at most ``limit`` markers: bin by time and say how many each stands for."""
    if len(xs) <= limit:
        return xs, texts
    x = np.asarray(xs)
    edges = np.linspace(x.min(), x.max(), limit + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, limit - 1)
    out_x, out_t = [], []
    for b in np.unique(idx):
        sel = np.nonzero(idx == b)[0]
        out_x.append(float(x[sel[0]]))
        out_t.append(f"{len(sel)} x {texts[sel[0]].split(':')[0]} between {x[sel[0]]:.1f} and {x[sel[-1]]:.1f} s")
    return out_x, out_t


def trace_data(result: Result) -> list[dict[str, Any]]:
    """x, y, hover text (and death error bars) for each of :data:`TRACES`, from a result."""
    buckets: list[dict[str, list]] = [{"x": [], "y": [], "text": []} for _ in TRACES]
    for e in result.events:
        i = _KIND_TO_TRACE.get(e.kind)
        if i is None:
            if e.kind in ("established", "syn_sent", "acked", "timeout", "connect_timeout", "keepalive_timeout",
                          "retransmission_timeout", "syn_timeout", "crash", "reboot", "up", "killed", "sleep",
                          "wake", "close", "closed", "fin_wait2_timeout", "fin_wait2_mini"):
                i = _KIND_TO_TRACE.get("other", len(TRACES) - 2)
            else:
                continue
        if e.kind == "died":
            continue  # deaths come from the side results (with their slack window)
        b = buckets[i]
        b["x"].append(e.t_s)
        b["y"].append(lane_of(e))
        b["text"].append(f"{e.kind}: {e.detail}" if e.detail else e.kind)
    out = []
    for i, b in enumerate(buckets):
        xs, ys, ts = b["x"], b["y"], b["text"]
        if len(xs) > MAX_MARKERS_PER_LANE:
            nx, ny, nt = [], [], []
            for lane in LANES:
                sel = [k for k, y in enumerate(ys) if y == lane]
                ax, at = _aggregate([xs[k] for k in sel], [ts[k] for k in sel], MAX_MARKERS_PER_LANE)
                nx += ax
                ny += [lane] * len(ax)
                nt += at
            xs, ys, ts = nx, ny, nt
        out.append({"x": xs, "y": ys, "text": ts})
    race, deadline = out[-3], out[-2]
    race["error_plus"] = []
    for rc in dict.fromkeys((x.event, x.timer, x.t_s, x.latest_s, x.deadline, x.deadline_s) for x in
                            getattr(result, "races", ())):
        i, timer, t, latest, what, when = rc
        lane = lane_of(result.events[i]) if 0 <= i < len(result.events) else "path"
        race["x"].append(t)
        race["y"].append(lane)
        race["text"].append(f"{timer}: may fire as late as {latest:.3f} s, racing {what} at {when:.3f} s")
        race["error_plus"].append(latest - t)
        deadline["x"].append(when)
        deadline["y"].append("path" if "forgets" in what or what.startswith("the path") else lane)
        deadline["text"].append(f"{what} at {when:.3f} s: the outcome flips if {timer} comes later")
    deaths = out[-1]
    plus = []
    for side in ("client", "server"):
        r = result.side(side)
        if r.fate == "died":
            deaths["x"].append(r.at_s)
            deaths["y"].append(f"{side} app")
            deaths["text"].append(f"{side} dies by {r.by}" + (f": {r.sees}" if r.sees else "")
                                  + f" (nominal {r.at_s:g} s, latest {r.latest_s:g} s)")
            plus.append((r.latest_s or r.at_s) - r.at_s)
    deaths["error_plus"] = plus
    return out


def fault_spans(result: Result, until_s: float) -> list[tuple[float, float, str]]:
    """(start, end, label) of every outage/sleep/down interval, from the timeline."""
    spans, open_ = [], {}
    for e in result.events:
        if e.kind == "link_down":
            open_["link"] = (e.t_s, "link down")
        elif e.kind == "link_up" and "link" in open_:
            s, lab = open_.pop("link")
            spans.append((s, e.t_s, lab))
        elif e.kind in ("sleep", "reboot"):
            open_[e.side] = (e.t_s, f"{e.side} {e.kind}")
        elif e.kind in ("wake", "up") and e.side in open_:
            s, lab = open_.pop(e.side)
            spans.append((s, e.t_s, lab))
        elif e.kind == "crash":
            spans.append((e.t_s, until_s, f"{e.side} crashed"))
    spans += [(s, until_s, lab) for s, lab in open_.values()]
    return spans


def interesting_range(result: Result) -> tuple[float, float]:
    """The default x range: from 0 to a little after the last thing that decides the outcome."""
    key = [e.t_s for e in result.events if e.kind in ("died", "link_down", "link_up", "crash", "reboot", "sleep",
                                                       "wake", "mapping_expired", "rst_sent", "middlebox_rst")]
    key += [result.side(s).latest_s for s in ("client", "server") if result.side(s).latest_s is not None]
    key += [x for rc in getattr(result, "races", ()) for x in (rc.latest_s, rc.deadline_s)
            if x <= result.until_s]
    if not key:
        # Nothing decisive happened: show the first stretch that has activity, not days of repetition.
        ts = [e.t_s for e in result.events]
        end = min(result.until_s, ts[min(len(ts) - 1, 40)] if ts else result.until_s)
        return (0.0, max(end, 1.0) * 1.05)
    end = max(key)
    deaths = sorted(result.side(s).latest_s for s in ("client", "server") if result.side(s).fate == "died"
                    and result.side(s).by not in ("host.crash", "host.reboot", "app.exit"))  # the fault itself
    if len(deaths) == 2 and deaths[1] > 5 * deaths[0] + 60:
        # Two stories on very different scales (ssh after a minute, the kernel after hours):
        # open on the first; the other is announced at the edge (zoom out to see it).
        end = max(deaths[0], max((t for t in key if t <= deaths[0] * 1.2), default=deaths[0]))
    return (-0.02 * max(end, 1.0), max(end, 1.0) * 1.12)


def timeline_spec(result: Result, title: str | None = None) -> dict[str, Any]:
    """The timeline as a plain plotly figure dict (``{"data": [...], "layout": {...}}``, JSON-ready).

    The traces are always :data:`TRACES`, in order, so a live figure can be updated by sending a new
    spec (plotly.js ``Plotly.react`` redraws only what changed).  Building dicts, not
    ``plotly.graph_objects``, keeps a slider update cheap and lets the widget run without importing
    plotly in the kernel at all.
    """
    data = trace_data(result)
    traces = []
    for (name, _, symbol, colour), d in zip(TRACES, data):
        traces.append({"type": "scatter", "x": d["x"], "y": d["y"], "hovertext": d["text"], "mode": "markers",
                       "name": name, "hoverinfo": "text+x",
                       "marker": {"symbol": symbol, "color": colour, "size": 14 if name == "death" else 9,
                                  "line": {"width": 1.5}}})
    plus = data[-1].get("error_plus", [])
    traces[-1]["error_x"] = {"type": "data", "symmetric": False, "array": plus, "arrayminus": [0] * len(plus),
                             "thickness": 3, "width": 6, "color": "#000000"}
    plus = data[-3].get("error_plus", [])
    traces[-3]["error_x"] = {"type": "data", "symmetric": False, "array": plus, "arrayminus": [0] * len(plus),
                             "thickness": 2, "width": 6, "color": "#ff7f0e"}
    traces[-2]["marker"]["size"] = 22
    spans = fault_spans(result, result.until_s)
    x0, x1 = interesting_range(result)
    # A steady state the simulator jumped over (kalab.fastforward): one band, its summary as the label.
    repeats = getattr(result, "repeats", ()) or ()
    notes = [dict(x=s, y=1.02, xref="x", yref="paper", text=lab, showarrow=False,
                  xanchor="left", font=dict(size=10, color="#a94442")) for s, _, lab in spans if s <= x1]
    for rep in repeats:
        if rep.from_s <= x1:
            notes.append(dict(x=rep.from_s, y=0.0, xref="x", yref="paper", yanchor="bottom", xanchor="left",
                              showarrow=False, text=f"{rep.cycles:,} identical cycles of {rep.period_s:g} s",
                              font=dict(size=10, color="#0f6b78")))
    for side in ("client", "server"):
        r = result.side(side)
        if r.fate == "died" and r.at_s > x1:
            from .units import format_duration
            notes.append(dict(x=1.0, y=f"{side} app", xref="paper", yref="y", xanchor="right", showarrow=False,
                              text=f"{side} dies at {format_duration(r.at_s)} \u2192 (zoom out)",
                              font=dict(size=11)))
    layout = {
        "height": 380, "margin": dict(l=90, r=20, t=60, b=40), "legend": dict(orientation="h", y=-0.2),
        "xaxis": dict(title=dict(text="time since the connection was established [s]"), range=[x0, x1]),
        "yaxis": dict(categoryorder="array", categoryarray=list(reversed(LANES)), type="category",
                      range=[-0.5, len(LANES) - 0.5]),
        "template": "plotly_white",
        "shapes": [dict(type="rect", xref="x", yref="paper", x0=s, x1=e, y0=0, y1=1, fillcolor="#f4cccc",
                        opacity=0.45, line=dict(width=0), layer="below") for s, e, _ in spans]
        + [dict(type="rect", xref="x", yref="paper", x0=r.from_s, x1=r.to_s, y0=0, y1=1, fillcolor="#d6f1f5",
                opacity=0.6, line=dict(width=0), layer="below") for r in repeats],
        "annotations": notes,
    }
    if title is not None:
        layout["title"] = dict(text=title, font=dict(size=13), x=0.01)
    return {"data": traces, "layout": layout}


def timeline_figure(result: Result, title: str | None = None, widget: bool = False):
    """The timeline as a ``plotly.graph_objects.Figure`` (``widget=True``: a light live figure,
    :class:`kalab.livefigure.LiveFigure`, that a slider app updates in place)."""
    spec = timeline_spec(result, title)
    if widget:
        from .livefigure import LiveFigure
        return LiveFigure(spec)
    return figure(spec)


def figure(spec: dict[str, Any]):
    """A ``plotly.graph_objects.Figure`` of one of kalab's figure dicts.

    In a notebook it shows as a :class:`~kalab.livefigure.LiveFigure` (the kernel sends the figure's
    data, the Jupyter server plotly.js; it works the same in JupyterLab, Voila and other front ends) and
    also carries a static SVG drawing of itself (:mod:`kalab.svg`) and its figure dict, which is what
    GitHub, nbviewer, printouts and ``make site`` show.  As a Python object it is a plain plotly Figure
    (``update_layout``, ``write_html``, ``show`` all work).
    """
    return _figure_class()(spec)


@functools.cache
def _figure_class():
    go = _go()

    class Figure(go.Figure):
        """A plotly Figure shown through kalab's live figure, with a static fallback (see :func:`figure`)."""

        def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
            import json

            import plotly.io as pio
            spec = json.loads(pio.to_json(self, validate=False))
            try:
                from .livefigure import LiveFigure
                from .widgets import static_bundle
            except ImportError:   # no ipywidgets/anywidget: plotly's own output, and the drawing
                from .svg import render
                bundle = super()._repr_mimebundle_(include, exclude, validate, **kwargs) or {}
                bundle.setdefault("image/svg+xml", render(spec))
                return bundle
            return static_bundle(LiveFigure(spec), [spec])

        def _ipython_display_(self):
            # plotly's Figure displays itself through its renderers (plotly's own MIME type, which
            # IPython prefers over _repr_mimebundle_); kalab's figures go through the bundle above.
            from IPython.display import display
            display(self._repr_mimebundle_(), raw=True)

    Figure.__module__ = __name__
    return Figure


# ---------------------------------------------------------------- sweeps

def _axis_title(res, key: str) -> str:
    a = res.axis(key)
    name = key.split(".")[-1] if "sysctl" not in key else key.split("sysctl.")[-1]
    return f"{name} [{a.unit}]" if a.unit and a.unit not in ("count", "bool") else name


def _json(a) -> list:
    """A numpy array as nested lists, NaN as None (JSON has no NaN; plotly draws None as a gap)."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return np.where(np.isnan(a), None, a).tolist()
    return a.tolist()


def sweep_heatmap_spec(res, x: str, y: str, side: str = "client", field: str = "at_s", limits=(), fixed=None,
                       title: str | None = None) -> dict[str, Any]:
    """The figure dict of :func:`sweep_heatmap`."""
    z = _json(res.select(side, field, [y, x], fixed))
    xs, ys = _json(res.axis(x).values), _json(res.axis(y).values)
    data = [{"type": "heatmap", "x": xs, "y": ys, "z": z, "colorscale": "Viridis",
             "colorbar": {"title": {"text": f"{side} {field}"}},
             "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>{field}=%{{z:.1f}} s<extra></extra>"}]
    for lim in limits:
        data.append({"type": "contour", "x": xs, "y": ys, "z": z, "showscale": False,
                     "contours": {"start": lim, "end": lim, "size": 1, "coloring": "none", "showlabels": True},
                     "line": {"color": "white", "width": 2}, "name": f"{lim:g} s", "hoverinfo": "skip"})
    layout = {"title": {"text": title or f"{side} {field} (blank: does not die)"},
              "xaxis": {"title": {"text": _axis_title(res, x)}}, "yaxis": {"title": {"text": _axis_title(res, y)}},
              "template": "plotly_white", "height": 420}
    return {"data": data, "layout": layout}


def sweep_heatmap(res, x: str, y: str, side: str = "client", field: str = "at_s", limits=(), fixed=None,
                  title: str | None = None):
    """Heatmap of a side's death time over two axes, with contour lines at ``limits`` [s]."""
    return figure(sweep_heatmap_spec(res, x, y, side, field, limits, fixed, title))


REGION_LABELS = ("misses a real failure", "detects in time, but dies in the outage",
                 "detects in time and survives the outage", "depends on timing (the kernel's lateness decides)")
REGION_COLOURS = ("#d9d9d9", "#fdae6b", "#31a354", "#9e9ac8")


def sweep_regions(failure, outage, x: str, y: str, detect_within_s: float, failure_at_s: float = 0.0,
                  side: str = "client", fixed=None):
    """Region codes (0, 1, 2, 3 = :data:`REGION_LABELS`) from two sweeps over the same axes.

    ``failure``: a sweep where the peer really fails at ``failure_at_s``; ``outage``: one with a
    transient outage.  A setting is good when it detects the failure within ``detect_within_s``
    and survives the outage; where either outcome depends on timing (``timing_sensitive``) it is 3.
    """
    died_f = failure.select(side, "at_s", [y, x], fixed)
    detected = np.nan_to_num(died_f - failure_at_s, nan=np.inf) <= detect_within_s
    survived = np.isnan(outage.select(side, "at_s", [y, x], fixed))
    codes = np.where(~detected, 0, np.where(survived, 2, 1))
    # Where either outcome flips with the kernel's own lateness (kalab.timing), no answer is safe.
    timing = failure.select(side, "timing_sensitive", [y, x], fixed) | outage.select(side, "timing_sensitive",
                                                                                     [y, x], fixed)
    return np.where(timing, 3, codes)


def region_map_spec(codes, xs, ys, x: str, y: str, x_title: str, y_title: str, detect_within_s: float,
                    title: str | None = None) -> dict[str, Any]:
    """The region map's figure dict from region codes (see :func:`sweep_regions`)."""
    codes = np.asarray(codes)
    c = REGION_COLOURS
    n = len(c)
    scale = [[edge, colour] for k, colour in enumerate(c) for edge in (k / n, (k + 1) / n)]
    data = [{"type": "heatmap", "x": _json(xs), "y": _json(ys), "z": codes.tolist(), "zmin": -0.5, "zmax": n - 0.5,
             "colorscale": scale, "customdata": np.asarray(REGION_LABELS, dtype=object)[codes].tolist(),
             "showscale": False, "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{customdata}}<extra></extra>"}]
    for code, (label, colour) in enumerate(zip(REGION_LABELS, c)):
        data.append({"type": "scatter", "x": [None], "y": [None], "mode": "markers",
                     "marker": {"color": colour, "size": 12, "symbol": "square"},
                     "name": f"{label} ({int((codes == code).sum())})"})
    layout = {"title": {"text": title or f"detect within {detect_within_s:g} s and survive the outage"},
              "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}},
              "template": "plotly_white", "height": 420, "legend": {"orientation": "h", "y": -0.25}}
    return {"data": data, "layout": layout}


def sweep_region_map_spec(failure, outage, x: str, y: str, detect_within_s: float, failure_at_s: float = 0.0,
                          side: str = "client", fixed=None, title: str | None = None) -> dict[str, Any]:
    """The figure dict of :func:`sweep_region_map`."""
    codes = sweep_regions(failure, outage, x, y, detect_within_s, failure_at_s, side, fixed)
    return region_map_spec(codes, failure.axis(x).values, failure.axis(y).values, x, y, _axis_title(failure, x),
                           _axis_title(failure, y), detect_within_s, title)


def sweep_region_map(failure, outage, x: str, y: str, detect_within_s: float, failure_at_s: float = 0.0,
                     side: str = "client", fixed=None, title: str | None = None):
    """The region map: survives / dies / detected in time, over two axes."""
    return figure(sweep_region_map_spec(failure, outage, x, y, detect_within_s, failure_at_s, side, fixed, title))


def sweep_line_spec(res, x: str, side: str = "client", field: str = "at_s", fixed=None,
                    title: str | None = None) -> dict[str, Any]:
    """The figure dict of :func:`sweep_line`."""
    y = res.select(side, field, [x], fixed)
    data = [{"type": "scatter", "x": _json(res.axis(x).values), "y": _json(y), "mode": "lines+markers",
             "name": f"{side} {field}"}]
    layout = {"title": {"text": title or f"{side} {field} over {x}"}, "xaxis": {"title": {"text": _axis_title(res, x)}},
              "yaxis": {"title": {"text": f"{side} {field} [s]"}}, "template": "plotly_white", "height": 360}
    return {"data": data, "layout": layout}


def sweep_line(res, x: str, side: str = "client", field: str = "at_s", fixed=None, title: str | None = None):
    """A line over one axis: a side's death time (gaps where it does not die)."""
    return figure(sweep_line_spec(res, x, side, field, fixed, title))


# ---------------------------------------------------------------- repeated lab runs

def runs_spec(recording: dict, side: str = "client", kind: str = "keepalive_probe",
              title: str | None = None) -> dict[str, Any]:
    """Repeated runs of one scenario on the real kernel (``lab run --repeat``) against the model's window.

    One row per run: when the run's first ``kind`` segment of ``side`` went out (captured on the wire),
    coloured by the run's outcome; shaded, the model's window for it (nominal time to the latest the
    timer wheel may fire it); the tick, the deadline it races (``Result.races``), if the model names one.
    """
    from .simulate import simulate
    model = simulate(recording["scenario"])
    first = next((e for e in model.events if e.side == side and e.kind == kind), None)
    race = next((r for r in model.races if r.side == side), None)
    groups: dict[str, dict[str, list]] = {}
    for i, run in enumerate(recording.get("runs", []), start=1):
        sent = next((e for e in run["events"] if e["side"] == side and e["kind"] == kind), None)
        if sent is None:
            continue
        r = run[side]
        label = r["fate"] + (f" by {r['by']}" if r["by"] else "")
        g = groups.setdefault(label, {"x": [], "y": [], "text": []})
        g["x"].append(sent["t_s"])
        g["y"].append(i)
        g["text"].append(f"run {i}: {kind.replace('_', ' ')} at {sent['t_s']:.3f} s; {side} {label}")
    colours = {"alive": "#31a354", "died": "#d62728", "half_open": "#fdae6b", "none": "#7f7f7f"}
    data = [{"type": "scatter", "mode": "markers", "name": f"{label} ({len(g['x'])})", "x": g["x"], "y": g["y"],
             "hovertext": g["text"], "hoverinfo": "text",
             "marker": {"symbol": "circle", "size": 11, "color": colours.get(label.split()[0], "#444")}}
            for label, g in sorted(groups.items())]
    shapes, notes = [], []
    if first is not None:
        latest = first.latest_s if first.latest_s is not None else first.t_s
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=first.t_s, x1=latest, y0=0, y1=1,
                           fillcolor="#c6dbef", opacity=0.6, line=dict(width=0), layer="below"))
        notes.append(dict(x=first.t_s, y=1.02, xref="x", yref="paper", xanchor="left", showarrow=False,
                          text=f"model: {first.t_s:.3f} .. {latest:.3f} s", font=dict(size=10, color="#08519c")))
    if race is not None:
        width = max(0.004, 0.002 * (race.latest_s - race.t_s))
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=race.deadline_s - width / 2,
                           x1=race.deadline_s + width / 2, y0=0, y1=1, fillcolor="#ff7f0e", opacity=0.9,
                           line=dict(width=0), layer="below"))
        notes.append(dict(x=race.deadline_s, y=1.02, xref="x", yref="paper", xanchor="left", showarrow=False,
                          text=f"{race.deadline} ({race.deadline_s:g} s)", font=dict(size=10, color="#b35806")))
    xs = [x for g in groups.values() for x in g["x"]] + ([first.t_s, first.latest_s or first.t_s] if first else [])
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = 0.05 * max(hi - lo, 1e-3)
    layout = {"title": {"text": title or f"{len(recording.get('runs', []))} runs on the real kernel: "
                                         f"the {side}'s first {kind.replace('_', ' ')}"},
              "xaxis": {"title": {"text": f"time the first {kind.replace('_', ' ')} went out [s]"},
                        "range": [lo - pad, hi + pad]},
              "yaxis": {"title": {"text": "run"}, "dtick": 1}, "template": "plotly_white", "height": 360,
              "shapes": shapes, "annotations": notes, "legend": {"orientation": "h", "y": -0.3}}
    return {"data": data, "layout": layout}


def runs_figure(recording: dict, side: str = "client", kind: str = "keepalive_probe", title: str | None = None):
    """:func:`runs_spec` as a figure (live in a notebook, with its static drawing)."""
    return figure(runs_spec(recording, side, kind, title))
