"""A static SVG drawing of kalab's figure dicts, for readers without a live kernel.

GitHub's notebook viewer, nbviewer, a printout or a PDF cannot run plotly.js or ipywidgets, so a
timeline shown only as a plotly figure or a widget is a blank placeholder there.  Each kalab figure
therefore also carries this drawing (``image/svg+xml`` in the notebook output): same lanes, markers,
shaded faults, death stars with their slack bars, heatmaps and legend, without hover or zoom.

It draws only what :mod:`kalab.plot` builds (scatter with markers/lines and x error bars, categorical
or numeric y, heatmap, contour levels, rectangles, text annotations), in pure Python: no browser, no
kaleido, no extra dependency.  Output is deterministic (same figure, same bytes) and small: the
timeline already aggregates long runs to at most 300 markers per lane, and a heatmap bigger than
:data:`MAX_CELLS` is drawn from every k-th row and column.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any, Sequence
from xml.sax.saxutils import escape

WIDTH = 900
MAX_CELLS = 12_000
#: plotly's Viridis, sampled at 0, 0.25, 0.5, 0.75, 1.
VIRIDIS = [[0.0, "#440154"], [0.25, "#3b528b"], [0.5, "#21918c"], [0.75, "#5ec962"], [1.0, "#fde725"]]
_DEFAULT_COLOURS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a"]


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(v) -> str:
    if isinstance(v, dict):
        v = v.get("text", "")
    return escape(str(v or ""))


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    if not (hi > lo):
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.3g}"


def _interp(scale: Sequence, t: float) -> str:
    """Colour at t in [0, 1] on a plotly colourscale ([[pos, "#rrggbb"], ...]), linear in RGB."""
    t = min(max(t, 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(scale, scale[1:]):
        if t <= p1:
            f = 0.0 if p1 == p0 else (t - p0) / (p1 - p0)
            a = [int(c0[i:i + 2], 16) for i in (1, 3, 5)]
            b = [int(c1[i:i + 2], 16) for i in (1, 3, 5)]
            return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))
    return scale[-1][1]


class _Axis:
    """Maps data values to pixels: numeric (linear) or categorical (one band per category)."""

    def __init__(self, lo_px: float, hi_px: float, categories: list | None, lo: float, hi: float) -> None:
        self.lo_px, self.hi_px, self.categories = lo_px, hi_px, categories
        self.lo, self.hi = (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)

    def __call__(self, v) -> float | None:
        if self.categories is not None:
            if v not in self.categories:
                return None
            v = self.categories.index(v)
        f = _num(v)
        if f is None:
            return None
        return self.lo_px + (f - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)


def _extent(values: list[float], pad: float = 0.04) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(hi) or 1.0
    return lo - pad * span, hi + pad * span


def _marker(symbol: str, x: float, y: float, size: float, colour: str) -> str:
    r = size / 2
    open_ = symbol.endswith("-open")
    fill, stroke = ("none", colour) if open_ else (colour, colour)
    base = symbol.replace("-open", "").replace("-dot", "")
    if base == "x":
        return (f'<path d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}M{x - r:.1f},{y + r:.1f}'
                f'L{x + r:.1f},{y - r:.1f}" stroke="{colour}" stroke-width="2"/>')
    if base == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{size:.1f}" height="{size:.1f}" fill="{fill}" stroke="{stroke}"/>'
    if base == "hourglass":
        return (f'<path d="M{x - r:.1f},{y - r:.1f}H{x + r:.1f}L{x - r:.1f},{y + r:.1f}H{x + r:.1f}Z" '
                f'fill="{fill}" stroke="{stroke}"/>')
    if base in ("diamond", "triangle-down", "triangle-right", "star"):
        if base == "diamond":
            pts = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
        elif base == "triangle-down":
            pts = [(x - r, y - r), (x + r, y - r), (x, y + r)]
        elif base == "triangle-right":
            pts = [(x - r, y - r), (x + r, y), (x - r, y + r)]
        else:
            pts = [(x + (r if k % 2 == 0 else r / 2.5) * math.sin(k * math.pi / 5),
                    y - (r if k % 2 == 0 else r / 2.5) * math.cos(k * math.pi / 5)) for k in range(10)]
        d = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        return f'<polygon points="{d}" fill="{fill}" stroke="{stroke}"/>'
    if base == "line-ns":
        return f'<path d="M{x:.1f},{y - r:.1f}V{y + r:.1f}" stroke="{colour}" stroke-width="2"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'


def render(spec: dict[str, Any], width: int = WIDTH, caption: Sequence[str] = ()) -> str:
    """An SVG document (a string) drawing a plotly figure dict as :mod:`kalab.plot` builds them.

    ``caption``: lines of plain text above the plot (the notebooks put the verdict there).
    """
    data: list[dict] = list(spec.get("data", []))
    layout: dict = dict(spec.get("layout", {}))
    # Only what the drawing shows (a timeline's fixed traces are often empty; plotly's legend lists them too,
    # but on paper an entry with nothing to point at only puzzles the reader).  A region map's legend
    # traces hold one null point on purpose: they stay.
    legend = [(t.get("name", ""), t) for t in data if t.get("name") and t.get("type", "scatter") == "scatter"
              and len(t.get("x") or []) > 0]
    # Long lines (a verdict, the sliders' note) wrap at about the drawing's width (12 px text: ~7 px a letter).
    caption = [part for line in caption for part in (textwrap.wrap(line, max(40, width // 7)) or [""])]
    cap_h = 18 * len(caption)
    height = int(layout.get("height") or 400)
    m = dict(l=90, r=20, t=60, b=50)
    m.update({k: v for k, v in (layout.get("margin") or {}).items() if k in m})
    m["l"] = max(m["l"], 90)
    legend_rows = math.ceil(len(legend) / 4)
    top = cap_h + m["t"]
    plot_h = max(height - m["t"] - m["b"], 120)
    total_h = top + plot_h + 45 + 18 * legend_rows
    x0, x1 = m["l"], width - m["r"]
    scaled = [t for t in data if t.get("type") == "heatmap" and t.get("showscale", True) is not False]
    if scaled:
        x1 -= 70   # room for the colour bar
    y0, y1 = top + plot_h, top     # pixel rows of the bottom and top of the plot area

    xaxis, yaxis = layout.get("xaxis") or {}, layout.get("yaxis") or {}
    heat = [t for t in data if t.get("type") in ("heatmap", "contour")]
    xs_all = [v for t in data for v in map(_num, t.get("x") or []) if v is not None]
    if yaxis.get("type") == "category":
        cats = list(yaxis.get("categoryarray") or [])
        for t in data:
            cats += [c for c in t.get("y") or [] if c is not None and c not in cats]
        ylo, yhi = -0.5, len(cats) - 0.5
    else:
        cats = None
        ys_all = [v for t in data for v in map(_num, t.get("y") or []) if v is not None]
        ylo, yhi = _extent(ys_all, 0.0 if heat else 0.06)
    xlo, xhi = _extent(xs_all, 0.0 if heat else 0.04)
    if heat:   # cells are centred on their coordinates: widen by half a cell
        t = heat[0]
        for vals, setter in ((t.get("x") or [], "x"), (t.get("y") or [], "y")):
            nums = [v for v in map(_num, vals) if v is not None]
            if len(nums) > 1:
                half = (nums[-1] - nums[0]) / (len(nums) - 1) / 2
                if setter == "x":
                    xlo, xhi = nums[0] - half, nums[-1] + half
                else:
                    ylo, yhi = nums[0] - half, nums[-1] + half
    if isinstance(xaxis.get("range"), (list, tuple)) and len(xaxis["range"]) == 2:
        xlo, xhi = (_num(xaxis["range"][0]) or 0.0), (_num(xaxis["range"][1]) or 1.0)
    X = _Axis(x0, x1, None, xlo, xhi)
    Y = _Axis(y0, y1, cats, ylo, yhi)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
           f'viewBox="0 0 {width} {total_h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{total_h}" fill="white"/>']
    for i, line in enumerate(caption):
        out.append(f'<text x="10" y="{16 + 18 * i}" font-size="13">{escape(line)}</text>')
    if layout.get("title"):
        out.append(f'<text x="10" y="{cap_h + 24}" font-size="14" font-weight="bold">{_text(layout["title"])}</text>')
    out.append(f'<defs><clipPath id="plot"><rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}"/></clipPath></defs>')
    out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#ccc"/>')

    # grid and ticks
    for v in nice_ticks(xlo, xhi):
        px = X(v)
        out.append(f'<line x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y0}" stroke="#eee"/>')
        out.append(f'<text x="{px:.1f}" y="{y0 + 16}" text-anchor="middle" fill="#444">{_fmt(v)}</text>')
    if cats is not None:
        for c in cats:
            py = Y(c)
            out.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end" fill="#444">{escape(str(c))}</text>')
    else:
        for v in nice_ticks(ylo, yhi):
            py = Y(v)
            out.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end" fill="#444">{_fmt(v)}</text>')
    if xaxis.get("title"):
        out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{y0 + 34}" text-anchor="middle">{_text(xaxis["title"])}</text>')
    if yaxis.get("title"):
        out.append(f'<text transform="translate(16,{(y0 + y1) / 2:.0f}) rotate(-90)" text-anchor="middle">'
                   f'{_text(yaxis["title"])}</text>')

    body = []
    for shape in layout.get("shapes") or []:
        if shape.get("type") == "rect":
            a, b = X(shape.get("x0")), X(shape.get("x1"))
            if a is None or b is None:
                continue
            a, b = max(min(a, b), x0 - 1), min(max(a, b), x1 + 1)
            if b > a:
                body.append(f'<rect x="{a:.1f}" y="{y1}" width="{b - a:.1f}" height="{y0 - y1}" '
                            f'fill="{shape.get("fillcolor", "#eee")}" opacity="{shape.get("opacity", 0.5)}"/>')
    for i, t in enumerate(data):
        kind = t.get("type", "scatter")
        if kind == "heatmap":
            body += _heatmap(t, X, Y)
        elif kind == "contour":
            body += _contour(t, X, Y)
        else:
            body += _scatter(t, X, Y, _DEFAULT_COLOURS[i % len(_DEFAULT_COLOURS)])
    out.append('<g clip-path="url(#plot)">' + "".join(body) + "</g>")

    for t in scaled[:1]:
        out += _colour_bar(t, x1 + 20, y1, y0)
    for a in layout.get("annotations") or []:
        ax = (x0 + float(a.get("x", 0)) * (x1 - x0)) if a.get("xref") == "paper" else X(a.get("x"))
        ay = (y0 - float(a.get("y", 0)) * (y0 - y1)) if a.get("yref") == "paper" else Y(a.get("y"))
        if ax is None or ay is None:
            continue
        anchor = {"left": "start", "right": "end"}.get(a.get("xanchor"), "middle")
        colour = (a.get("font") or {}).get("color", "#333")
        out.append(f'<text x="{ax:.1f}" y="{ay - 2:.1f}" text-anchor="{anchor}" fill="{colour}" font-size="11">'
                   f'{_text(a.get("text"))}</text>')

    ly = y0 + 50
    for k, (name, t) in enumerate(legend):
        lx, row = x0 + (k % 4) * ((x1 - x0) / 4), ly + 18 * (k // 4)
        mk = t.get("marker") or {}
        out.append(_marker(mk.get("symbol", "circle"), lx + 6, row - 4, 9, mk.get("color", "#444")))
        out.append(f'<text x="{lx + 16:.1f}" y="{row}">{escape(str(name))}</text>')
    out.append("</svg>")
    return "".join(out)


def _scatter(t: dict, X: _Axis, Y: _Axis, default_colour: str) -> list[str]:
    mk = t.get("marker") or {}
    colour, size, symbol = mk.get("color", default_colour), float(mk.get("size", 8)), mk.get("symbol", "circle")
    xs, ys = list(t.get("x") or []), list(t.get("y") or [])
    mode = t.get("mode", "markers")
    out = []
    if "lines" in mode:
        path, pen = [], "M"
        for x, y in zip(xs, ys):
            px, py = X(x), Y(y)
            if px is None or py is None:
                pen = "M"
                continue
            path.append(f"{pen}{px:.1f},{py:.1f}")
            pen = "L"
        if path:
            out.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    plus = (t.get("error_x") or {}).get("array") or []
    for i, (x, y) in enumerate(zip(xs, ys)):
        px, py = X(x), Y(y)
        if px is None or py is None:
            continue
        if i < len(plus) and _num(plus[i]):
            pe = X(_num(x) + _num(plus[i]))
            out.append(f'<path d="M{px:.1f},{py:.1f}H{pe:.1f}M{pe:.1f},{py - 4:.1f}V{py + 4:.1f}" stroke="#000" '
                       'stroke-width="3"/>')
        if "markers" in mode:
            out.append(_marker(symbol, px, py, size, colour))
    return out


def _grid(t: dict):
    """x, y, z of a heatmap, every k-th row and column when it has more than MAX_CELLS cells."""
    xs, ys, z = list(t.get("x") or []), list(t.get("y") or []), list(t.get("z") or [])
    if not z:
        return [], [], []
    xs = xs or list(range(len(z[0])))
    ys = ys or list(range(len(z)))
    k = max(1, math.ceil(math.sqrt(len(xs) * len(ys) / MAX_CELLS)))
    return xs[::k], ys[::k], [row[::k] for row in z[::k]]


def _heatmap(t: dict, X: _Axis, Y: _Axis) -> list[str]:
    xs, ys, z = _grid(t)
    if not z:
        return []
    lo, hi = _zrange(t)
    scale = t.get("colorscale")
    scale = scale if isinstance(scale, list) else VIRIDIS
    out = []
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            v = _num(z[j][i])
            if v is None:
                continue
            xa = X(_mid(xs, i, -1)), X(_mid(xs, i, 1))
            ya = Y(_mid(ys, j, -1)), Y(_mid(ys, j, 1))
            if None in xa or None in ya:
                continue
            colour = _interp(scale, 0.5 if hi == lo else (v - lo) / (hi - lo))
            out.append(f'<rect x="{min(xa):.1f}" y="{min(ya):.1f}" width="{abs(xa[1] - xa[0]) + 0.3:.1f}" '
                       f'height="{abs(ya[1] - ya[0]) + 0.3:.1f}" fill="{colour}"/>')
    return out


def _zrange(t: dict) -> tuple[float, float]:
    vals = [v for row in t.get("z") or [] for v in map(_num, row) if v is not None]
    lo = _num(t.get("zmin")) if t.get("zmin") is not None else (min(vals) if vals else 0.0)
    hi = _num(t.get("zmax")) if t.get("zmax") is not None else (max(vals) if vals else 1.0)
    return lo, hi


def _colour_bar(t: dict, x: float, top: float, bottom: float, steps: int = 24) -> list[str]:
    lo, hi = _zrange(t)
    scale = t.get("colorscale") if isinstance(t.get("colorscale"), list) else VIRIDIS
    h = (bottom - top) / steps
    out = [f'<rect x="{x}" y="{bottom - (k + 1) * h:.1f}" width="14" height="{h + 0.5:.1f}" '
           f'fill="{_interp(scale, k / (steps - 1))}"/>' for k in range(steps)]
    out.append(f'<text x="{x + 18}" y="{bottom:.0f}" fill="#444">{_fmt(lo)}</text>')
    out.append(f'<text x="{x + 18}" y="{top + 10:.0f}" fill="#444">{_fmt(hi)}</text>')
    return out


def _mid(vals: list, i: int, side: int) -> float:
    """The boundary between cell i and its neighbour on ``side`` (-1 or +1), in data units."""
    v = float(vals[i])
    j = i + side
    if 0 <= j < len(vals):
        return (v + float(vals[j])) / 2
    k = i - side
    return v + (v - float(vals[k])) / 2 if 0 <= k < len(vals) else v + 0.5 * side


def _contour(t: dict, X: _Axis, Y: _Axis) -> list[str]:
    """A contour level as the cell edges between values at or below it and values above it."""
    level = _num((t.get("contours") or {}).get("start"))
    xs, ys, z = _grid(t)
    if level is None or not z:
        return []
    colour = (t.get("line") or {}).get("color", "white")

    def above(v):
        f = _num(v)
        return None if f is None else f > level
    segs = []
    for j in range(len(ys)):
        for i in range(len(xs)):
            a = above(z[j][i])
            if a is None:
                continue
            if i + 1 < len(xs) and above(z[j][i + 1]) not in (None, a):
                px = X(_mid(xs, i, 1))
                segs.append(f"M{px:.1f},{Y(_mid(ys, j, -1)):.1f}V{Y(_mid(ys, j, 1)):.1f}")
            if j + 1 < len(ys) and above(z[j + 1][i]) not in (None, a):
                py = Y(_mid(ys, j, 1))
                segs.append(f"M{X(_mid(xs, i, -1)):.1f},{py:.1f}H{X(_mid(xs, i, 1)):.1f}")
    return [f'<path d="{"".join(segs)}" stroke="{colour}" stroke-width="2" fill="none"/>'] if segs else []
