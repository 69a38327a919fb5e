"""Sliders -> scenario -> simulate -> timeline, for the notebooks.

The logic lives in kalab (``simulate``, ``explain.verdict``, ``plot``); this
module only wires ipywidgets to it.  :class:`Explorer` keeps one
:class:`~kalab.livefigure.LiveFigure` (a few kB of front-end code; plotly.js comes
from the Jupyter server, not the kernel) with a fixed set of traces and sends it a
new figure dict on each change.  Tests drive it without a browser:
``ex.set("client.socket.TCP_KEEPIDLE", 60)``.

Every app also shows without a live kernel: its notebook output carries, besides
the widget, a static drawing at its current settings (``image/svg+xml``, what
GitHub, nbviewer, an HTML export or a printout shows), the figure dict under
:data:`FIGURE_MIME` (what ``make site`` draws with plotly.js) and the verdict as
plain text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .plot import timeline_spec
from .scenario import load, split_key, with_value
from .settings import version_text
from .simulate import simulate
from .units import format_duration


#: The notebook-output MIME type carrying kalab's figure dicts (and the caption shown above them) for
#: readers without a kernel: ``{"figures": [spec, ...], "caption": [line, ...]}``.  No Jupyter front end
#: renders it (they show the widget or the SVG); ``kalab.site`` draws it with plotly.js.
FIGURE_MIME = "application/vnd.kalab.figure+json"


def controls_note(controls: Sequence["Control"], values: Mapping[str, Any]) -> str:
    """One line for readers without a kernel: the sliders a live notebook shows here, at their values."""
    def one(c):
        v = values.get(c.key)
        span = f"{'/'.join(map(str, c.options))}" if c.options else f"{c.lo:g}..{c.hi:g}"
        return f"{c.label} = {v} ({span})"
    return ("Sliders here in a live notebook (open it on Binder to move them): "
            + "; ".join(one(c) for c in controls)) if controls else ""


def static_bundle(widget, specs: Sequence[dict], caption: Sequence[str] = (), html: str | None = None,
                  note: str = "") -> dict:
    """A widget's MIME bundle plus what shows without a kernel (see the module docstring).  ``note``: the
    line that says which sliders a live notebook shows here (:func:`controls_note`)."""
    from .svg import render
    bundle = widget._repr_mimebundle_() or {}
    if isinstance(bundle, tuple):   # anywidget answers (data, metadata)
        bundle = bundle[0]
    bundle = dict(bundle)
    lines = [*caption, note] if note else list(caption)
    if specs:
        bundle["image/svg+xml"] = "".join(render(sp, caption=lines if i == 0 else ()) for i, sp in enumerate(specs))
        bundle[FIGURE_MIME] = {"figures": list(specs), "caption": lines}
    if html is not None:
        import html as _html
        bundle["text/html"] = html + (f"<p><i>{_html.escape(note)}</i></p>" if note else "")
    bundle["text/plain"] = "\n".join(caption) or bundle.get("text/plain", "")
    return bundle


@dataclass(frozen=True)
class Control:
    """One knob: the scenario key it sets, how it is labelled, and its range.

    ``options`` makes a dropdown; otherwise a slider from ``lo`` to ``hi`` by ``step``.
    """

    key: str
    label: str
    lo: float = 0
    hi: float = 100
    step: float = 1
    options: tuple | None = None


def control(key: str, lo: float = 0, hi: float = 100, step: float = 1, label: str | None = None,
            options: Sequence | None = None) -> Control:
    """A control labelled with the real knob name and unit, e.g. ``TCP_USER_TIMEOUT [ms]``."""
    plain = key.split(":", 1)[-1]
    return Control(key, label or default_label(plain), lo, hi, step, tuple(options) if options else None)


#: Words for the scenario's own keys, so that no slider is labelled with a raw key path
#: (``faults.0.for_s`` -> "fault lasts [s]").  The knobs of the systems modelled keep their real names.
_LIST_WORDS = {"faults": "fault", "middleboxes": "middlebox", "traffic": "traffic"}
_FIELD_WORDS = {"for_s": "lasts", "at_s": "at", "down_s": "down for", "idle_timeout_s": "idle timeout",
                "unack_timeout_s": "idle timeout with data unacknowledged", "every_s": "every", "until_s": "run until",
                "rtt_ms": "round-trip time", "os": "OS", "version": "version", "kernel": "kernel", "hz": "HZ",
                "on_expiry": "on expiry", "preset": "preset"}


def default_label(key: str) -> str:
    """A slider's label: the real knob name with its unit (``TCP_USER_TIMEOUT [ms]``,
    ``ServerAliveInterval [s]``), else words for the scenario's own keys (``fault lasts [s]``,
    ``middlebox idle timeout [s]``, ``server version``) -- never a raw key path.

    >>> default_label("path.middleboxes.0.idle_timeout_s"), default_label("faults.1.for_s")
    ('middlebox idle timeout [s]', 'fault 2 lasts [s]')
    """
    from . import native
    parts = split_key(key)
    name = str(parts[-1])
    for tables in native.TABLES.values():
        for table in tables.values():
            if name in table:
                unit = table[name].unit
                return name if unit in ("count", "bool", "ports") else f"{name} [{unit}]"
    if name.endswith("Interval") or name == "ConnectTimeout":
        return f"{name} [s]"
    if name not in _FIELD_WORDS and not name.endswith(("_s", "_ms")):
        return name                                          # an option's own name (ServerAliveCountMax)
    words = []
    for i, p in enumerate(parts[:-1]):
        if p in ("client", "server"):
            words.append(str(p))
        elif p in _LIST_WORDS:
            index = parts[i + 1] if i + 1 < len(parts) - 1 else None
            words.append(_LIST_WORDS[p] + (f" {index + 1}" if isinstance(index, int) and index > 0 else ""))
    words.append(_FIELD_WORDS.get(name, name.removesuffix("_s").removesuffix("_ms").replace("_", " ")))
    unit = " [s]" if name.endswith("_s") else " [ms]" if name.endswith("_ms") else ""
    return " ".join(words) + unit


def effective_value(source: Mapping, key: str) -> Any:
    """The value a key has in a scenario: as given, or the effective default the model uses.

    ``client.socket.TCP_KEEPIDLE`` absent -> the sysctl or OS default, in the option's native
    unit; ``client.app.options.ServerAliveCountMax`` absent -> 3.
    """
    node: Any = source
    for p in split_key(key):
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            break
    else:
        return node
    from . import native, ssh_options
    from .units import UNIT_SECONDS
    parts = split_key(key)
    sc = load(source)
    if parts[0] == "path" and len(parts) == 4 and parts[1] == "middleboxes":
        return getattr(sc.path.middleboxes[parts[2]], str(parts[3]))
    if parts[0] in ("client", "server") and len(parts) == 2:
        host = sc.host(parts[0])
        if parts[1] == "kernel":
            return version_text(host.kernel)
        if parts[1] in ("os", "hz", "monotime_phase_s"):
            return getattr(host, str(parts[1]))
    if parts[0] in ("client", "server") and len(parts) == 3 and parts[1] == "app" and parts[2] == "version":
        return version_text(sc.host(parts[0]).app.version)
    if parts[0] in ("client", "server") and len(parts) >= 3:
        host = sc.host(parts[0])
        name = str(parts[-1])
        if parts[1] in ("sysctl", "socket"):
            spec = native.TABLES[host.os][parts[1]].get(name)
            if spec is not None and hasattr(host.tcp, spec.field):
                v = getattr(host.tcp, spec.field)
                if spec.unit in ("count", "bool"):
                    return int(v)
                return v / UNIT_SECONDS[spec.unit] if spec.unit in UNIT_SECONDS else v
        if parts[1] == "app" and parts[2] == "options":
            table = ssh_options.SSH_OPTIONS if host.app.kind == "ssh" else ssh_options.SSHD_OPTIONS
            row = table.get(name.lower())
            if row is not None:
                v = getattr(host.app, row[1])
                return ("yes" if v else "no") if row[2] == "yesno" else v
    raise KeyError(f"{key}: not in the scenario and no default known; give the scenario a value for it")


class Explorer:
    """An interactive timeline for one scenario with sliders for some of its keys."""

    def __init__(self, scenario: Mapping, controls: Sequence[Control], title: str | None = None) -> None:
        import ipywidgets as w
        self.base = dict(scenario)
        load(self.base)  # fail early, with the scenario's own error
        self.controls = list(controls)
        self.title = title
        self.values = {c.key: effective_value(self.base, c.key) for c in self.controls}
        self.scenario = self._build()
        self.result = simulate(self.scenario)
        from .livefigure import LiveFigure
        self.fig = LiveFigure(timeline_spec(self.result, title=self._title()))
        self.verdict = w.HTML(self._verdict_html())
        self.last_update_s = 0.0
        self.sliders = {}
        for c in self.controls:
            v = self.values[c.key]
            if c.options:
                s = w.Dropdown(options=list(c.options), value=v, description=c.label)
            elif float(c.step).is_integer() and float(c.lo).is_integer():
                s = w.IntSlider(value=int(v), min=int(c.lo), max=int(c.hi), step=int(c.step), description=c.label,
                                continuous_update=False)
            else:
                s = w.FloatSlider(value=float(v), min=c.lo, max=c.hi, step=c.step, description=c.label,
                                  continuous_update=False)
            s.style.description_width = "initial"
            s.layout.width = "520px"
            s.observe(self._on_change(c.key), names="value")
            self.sliders[c.key] = s
        self.widget = w.VBox([*self.sliders.values(), self.verdict, self.fig])

    # -- model
    def _build(self) -> dict:
        sc = self.base
        for k, v in self.values.items():
            sc = with_value(sc, k, v)
        return sc

    def _title(self) -> str:
        return self.title or self.base.get("name") or "timeline"

    def _verdict_parts(self) -> list[tuple[str, ...]]:
        """Per side: (side, fate or death time, slack window, mechanism, what it sees)."""
        parts = []
        for side in ("client", "server"):
            r = self.result.side(side)
            if r.fate == "died":
                window = f" (real kernel: by {format_duration(r.latest_s)})" if r.latest_s - r.at_s > 1e-6 else ""
                parts.append((side, format_duration(r.at_s), window, r.by, r.sees or ""))
            else:
                parts.append((side, r.fate.replace("_", "-")))
        return parts

    def _timing(self, side: str) -> str:
        """When the kernel's lateness decides this side's outcome, what it hangs on (kalab.timing)."""
        from .explain import timing_clause
        return timing_clause(self.result, side)

    def _verdict_html(self) -> str:
        import html
        out = []
        for p in self._verdict_parts():
            if len(p) == 2:
                line = f"<b>{p[0]}</b>: {p[1]}"
            else:
                side, at, window, by, sees = (html.escape(x) for x in p)
                line = (f"<b>{side}</b> dies at <b>{at}</b>{window} by <code>{by}</code>"
                        + (f": <i>{sees}</i>" if sees else ""))
            timing = self._timing(p[0])
            out.append(line + (f" &mdash; <span style='color:#b35806'>&#9888; {html.escape(timing)}</span>"
                               if timing else ""))
        return "<br>".join(out)

    def verdict_lines(self) -> list[str]:
        """The verdict as plain text, one line per side (shown above the static drawing)."""
        out = []
        for p in self._verdict_parts():
            if len(p) == 2:
                line = f"{p[0]}: {p[1]}"
            else:
                side, at, window, by, sees = p
                line = f"{side} dies at {at}{window} by {by}" + (f": {sees}" if sees else "")
            timing = self._timing(p[0])
            out.append(line + (f" -- {timing}" if timing else ""))
        return out

    def _on_change(self, key: str):
        def handler(change):
            self.set(key, change["new"], _from_widget=True)
        return handler

    def set(self, key: str, value: Any, _from_widget: bool = False) -> None:
        """Set a control's value (as a user moving the slider would) and update the figure."""
        if not _from_widget and key in self.sliders:
            self.sliders[key].value = value  # fires the observer, which calls back here
            return
        t0 = time.perf_counter()
        self.values[key] = value
        self.scenario = self._build()
        self.result = simulate(self.scenario)
        self.fig.spec = timeline_spec(self.result, title=self._title())
        self.verdict.value = self._verdict_html()
        self.last_update_s = time.perf_counter() - t0

    def _repr_mimebundle_(self, **kwargs):
        return static_bundle(self.widget, [self.fig.spec], self.verdict_lines(),
                             note=controls_note(self.controls, self.values))


def explore(scenario: Mapping, *controls: Control, title: str | None = None) -> Explorer:
    """Build an :class:`Explorer` (display it as the last expression of a cell)."""
    return Explorer(scenario, controls, title)


class RegionExplorer:
    """Sliders for the remaining parameters above a live region map (two sweeps over the same axes).

    ``failure`` and ``outage`` are scenarios: the peer really fails in the first, the path is only
    interrupted in the second; a grid setting is good when it detects the failure within
    ``detect_within_s`` and survives the outage.  A slider sets its key in both scenarios, or in
    one when the key is prefixed ``failure:`` or ``outage:`` (e.g. ``outage:faults.0.for_s``).
    """

    def __init__(self, failure: Mapping, outage: Mapping, x: tuple[str, Sequence], y: tuple[str, Sequence],
                 detect_within_s: float, controls: Sequence[Control], failure_at_s: float = 0.0) -> None:
        import ipywidgets as w

        from .livefigure import LiveFigure
        self.failure, self.outage = dict(failure), dict(outage)
        self.x, self.y = x, y
        self.detect_within_s, self.failure_at_s = detect_within_s, failure_at_s
        self.controls = list(controls)
        self.values = {c.key: effective_value(self._target(c.key)[0], self._target(c.key)[1]) for c in self.controls}
        self._sweeps()
        self.fig = LiveFigure(self._spec())
        self.sliders = {}
        for c in self.controls:
            s = w.IntSlider(value=int(self.values[c.key]), min=int(c.lo), max=int(c.hi), step=int(c.step),
                            description=c.label, continuous_update=False, style={"description_width": "initial"},
                            layout=w.Layout(width="520px"))
            s.observe(lambda ch, key=c.key: self.set(key, ch["new"], _from_widget=True), names="value")
            self.sliders[c.key] = s
        self.widget = w.VBox([*self.sliders.values(), self.fig])

    def _target(self, key: str) -> tuple[Mapping, str]:
        if key.startswith("outage:"):
            return self.outage, key[len("outage:"):]
        if key.startswith("failure:"):
            return self.failure, key[len("failure:"):]
        return self.failure, key

    def _sweeps(self):
        from .sweep import sweep
        fa, ou = self.failure, self.outage
        for k, v in self.values.items():
            if not k.startswith("outage:"):
                fa = with_value(fa, k.removeprefix("failure:"), v)
            if not k.startswith("failure:"):
                ou = with_value(ou, k.removeprefix("outage:"), v)
        axes = {self.x[0]: self.x[1], self.y[0]: self.y[1]}
        self.last = (sweep(fa, axes), sweep(ou, axes))
        return self.last

    def codes(self):
        from .plot import sweep_regions
        return sweep_regions(*self.last, self.x[0], self.y[0], self.detect_within_s, self.failure_at_s)

    def _spec(self) -> dict:
        from .plot import sweep_region_map_spec
        return sweep_region_map_spec(*self.last, self.x[0], self.y[0], self.detect_within_s, self.failure_at_s)

    def set(self, key: str, value: Any, _from_widget: bool = False) -> None:
        if not _from_widget and key in self.sliders:
            self.sliders[key].value = value
            return
        self.values[key] = value
        self._sweeps()
        self.fig.spec = self._spec()

    def _repr_mimebundle_(self, **kwargs):
        return static_bundle(self.widget, [self.fig.spec], [], note=controls_note(self.controls, self.values))


class RecommendExplorer:
    """``kalab recommend`` with sliders: the goal on the left, the simulated recommendations below.

    Zero on the NAT and probe sliders means "no such constraint".  ``set(name, value)`` does what a
    slider does (tests and the browser use it); ``text`` is what is shown.
    """

    FIELDS = (("detect_within_s", "notice a dead peer within [s]", 10, 1800, 10),
              ("survive_outage_s", "survive outages of [s]", 0, 900, 10),
              ("nat_idle_s", "NAT idle timeout [s] (0: none)", 0, 3600, 10),
              ("max_probes_per_hour", "max probes per idle hour (0: any)", 0, 600, 5))

    def __init__(self, detect_within_s: float = 300, survive_outage_s: float = 120, nat_idle_s: float = 350,
                 side: str = "both", max_probes_per_hour: float = 0) -> None:
        import ipywidgets as w
        self.values = {"detect_within_s": detect_within_s, "survive_outage_s": survive_outage_s,
                       "nat_idle_s": nat_idle_s, "max_probes_per_hour": max_probes_per_hour, "side": side}
        self.sliders = {}
        for name, label, lo, hi, step in self.FIELDS:
            s = w.IntSlider(value=int(self.values[name]), min=lo, max=hi, step=step, description=label,
                            continuous_update=False, style={"description_width": "initial"},
                            layout=w.Layout(width="560px"))
            s.observe(lambda ch, name=name: self.set(name, ch["new"], _from_widget=True), names="value")
            self.sliders[name] = s
        side_w = w.ToggleButtons(options=["client", "server", "both"], value=side, description="who must notice")
        side_w.observe(lambda ch: self.set("side", ch["new"], _from_widget=True), names="value")
        self.sliders["side"] = side_w
        self.out = w.HTML()
        self.widget = w.VBox([*self.sliders.values(), self.out])
        self._update()

    def goal(self):
        from .recommend import Goal
        v = self.values
        return Goal(detect_within_s=float(v["detect_within_s"]), survive_outage_s=float(v["survive_outage_s"]),
                    nat_idle_s=float(v["nat_idle_s"]) or None, side=v["side"],
                    max_probes_per_hour=float(v["max_probes_per_hour"]) or None)

    def _update(self) -> None:
        import html

        from .recommend import answer, report
        goal = self.goal()
        recs, trades = answer(goal)
        self.recommendations, self.trade_offs = recs, trades
        self.text = report(goal, recs, trades)
        self.out.value = f"<pre style='font-size: 12px'>{html.escape(self.text)}</pre>"

    def set(self, name: str, value: Any, _from_widget: bool = False) -> None:
        if not _from_widget and name in self.sliders:
            self.sliders[name].value = value
            return
        self.values[name] = value
        self._update()

    def _repr_mimebundle_(self, **kwargs):
        import html
        sliders = [Control(n, label, lo, hi, step) for n, label, lo, hi, step in self.FIELDS]
        sliders.append(Control("side", "who must notice", options=("client", "server", "both")))
        return static_bundle(self.widget, [], self.text.splitlines(),
                             html=f"<pre style='font-size: 12px'>{html.escape(self.text)}</pre>",
                             note=controls_note(sliders, self.values))
