"""The interactive figure, driven without a browser."""

import json
from pathlib import Path

import pytest

import kalab
from kalab import plot
from kalab.widgets import control, effective_value, explore

ROOT = Path(__file__).resolve().parent.parent
SSH = json.loads((ROOT / "examples" / "ssh-serveralive-15-cable-unplugged.json").read_text())


def test_moving_a_slider_moves_the_death_marker():
    ex = explore(SSH, control("client.app.options.ServerAliveInterval", 0, 120),
                 control("client.app.options.ServerAliveCountMax", 0, 10))
    before = list(ex.fig.spec["data"][-1]["x"])
    ex.sliders["client.app.options.ServerAliveInterval"].value = 30   # as a user would
    after = list(ex.fig.spec["data"][-1]["x"])
    assert before[0] == 60 and after[0] == 120
    assert "2 min" in ex.verdict.value
    assert ex.last_update_s > 0


def test_figure_keeps_a_fixed_set_of_traces():
    ex = explore(SSH, control("client.app.options.ServerAliveCountMax", 0, 10))
    n = len(ex.fig.spec["data"])
    ex.set("client.app.options.ServerAliveCountMax", 0)
    assert len(ex.fig.spec["data"]) == n == len(plot.TRACES)
    assert [t["name"] for t in ex.fig.spec["data"]] == [t[0] for t in plot.TRACES]


def test_labels_use_the_real_knob_names_and_units():
    assert control("client.socket.TCP_USER_TIMEOUT").label == "TCP_USER_TIMEOUT [ms]"
    assert control("client.sysctl.net.ipv4.tcp_keepalive_time").label == "net.ipv4.tcp_keepalive_time [s]"
    assert control("client.socket.TCP_KEEPCNT").label == "TCP_KEEPCNT"
    assert control("client.app.options.ServerAliveInterval").label == "ServerAliveInterval [s]"


def test_the_scenarios_own_keys_are_labelled_in_words_never_as_a_key_path():
    """Notebooks 05, 07 and 09 once showed 'path.middleboxes.0.idle_timeout_s [s]' and 'faults.0.for_s [s]'."""
    assert control("path.middleboxes.0.idle_timeout_s").label == "middlebox idle timeout [s]"
    assert control("faults.0.for_s").label == "fault lasts [s]"
    assert control("outage:faults.0.for_s").label == "fault lasts [s]"
    assert control("faults.2.at_s").label == "fault 3 at [s]"
    assert control("client.os", options=("linux", "macos")).label == "client OS"
    assert control("server.app.version", options=("9.2", "10.0")).label == "server version"
    assert control("path.rtt_ms").label == "round-trip time [ms]"
    assert control("until_s").label == "run until [s]"
    assert control("server.app.options.ClientAliveCountMax").label == "ClientAliveCountMax"


def test_no_notebook_slider_is_labelled_with_a_key_path():
    """Every control() in every notebook gets a label without dots, except the sysctl names (net.ipv4.x)."""
    import ast
    import json
    from pathlib import Path
    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "control":
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                label = control(*args, **kwargs).label
                assert "." not in label.replace("net.ipv4.", "").replace("net.inet.", ""), (path.name, label)


def test_sliders_start_at_the_effective_defaults():
    sc = {"client": {}, "server": {}}
    assert effective_value(sc, "client.socket.TCP_KEEPIDLE") == 7200
    assert effective_value({"client": {"app": {"kind": "ssh"}}, "server": {}},
                           "client.app.options.ServerAliveCountMax") == 3
    with pytest.raises(KeyError):
        effective_value(sc, "faults.0.for_s")


def test_faults_are_shaded_and_deaths_carry_their_slack_window():
    r = kalab.simulate(json.loads((ROOT / "examples" / "linux-defaults-2h11m15s.json").read_text()))
    fig = plot.timeline_figure(r)
    death = fig.data[-1]
    i = list(death.y).index("client app")
    assert death.x[i] == 7875 and death.error_x.array[i] == pytest.approx(r.client.latest_s - 7875)
    assert fig.layout.shapes and fig.layout.xaxis.range[1] > r.client.latest_s


def test_thousands_of_probes_are_aggregated_and_the_view_is_zoomed():
    r = kalab.simulate({"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 75, "TCP_KEEPINTVL": 75}},
                        "server": {}, "until_s": 5 * 86400})
    data = plot.trace_data(r)
    probes = data[0]
    assert sum(1 for e in r.events if e.kind == "keepalive_probe") > 5000
    assert len(probes["x"]) <= plot.MAX_MARKERS_PER_LANE * len(plot.LANES)
    assert any(t.split()[0].isdigit() and int(t.split()[0]) > 1 for t in probes["text"])
    assert plot.interesting_range(r)[1] < 86400


def test_region_explorer_recomputes_the_map_when_a_slider_moves():
    import numpy as np
    from kalab.widgets import RegionExplorer
    base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPCNT": 3}}, "server": {}, "until_s": 100000}
    reboot = dict(base, faults=[{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 20}])
    outage = dict(base, faults=[{"kind": "link_down", "at_s": 1, "for_s": 300}])
    ex = RegionExplorer(reboot, outage, ("client.socket.TCP_KEEPIDLE", np.arange(1, 61, 5)),
                        ("client.socket.TCP_KEEPINTVL", np.arange(10, 301, 30)), 30,
                        [control("client.socket.TCP_KEEPCNT", 1, 20), control("outage:faults.0.for_s", 10, 900, 10)],
                        failure_at_s=21)
    before = np.asarray(ex.fig.spec["data"][0]["z"]).copy()
    ex.sliders["outage:faults.0.for_s"].value = 20      # a short outage: far more settings survive it
    after = np.asarray(ex.fig.spec["data"][0]["z"])
    assert (after == 2).sum() > (before == 2).sum()
    assert ex.sliders["outage:faults.0.for_s"].description == "fault lasts [s]"     # the prefix is not shown


def test_recommend_explorer_follows_its_sliders():
    from kalab.recommend import Goal, answer, report
    from kalab.widgets import RecommendExplorer
    r = RecommendExplorer(detect_within_s=300, survive_outage_s=120, nat_idle_s=0, side="client")
    assert r.text == report(Goal(300, 120, None, "client"), *answer(Goal(300, 120, None, "client")))
    r.set("detect_within_s", 30)
    assert "contradict" in r.text and r.recommendations == []
    r.set("side", "server")
    assert r.goal().side == "server" and "on the server" in r.text


def test_a_live_figure_sends_its_data_not_plotly_js():
    """The widget's synced state is the figure dict and a few kB of front-end code: plotly.js comes from
    the Jupyter server (kalab.jupyter), so a figure costs the kernel socket kilobytes, not 5 MB."""
    from kalab.livefigure import LiveFigure, plotly_js_path
    ex = explore(SSH, control("client.app.options.ServerAliveInterval", 0, 120))
    state = ex.fig.get_state()
    size = len(json.dumps({k: v for k, v in state.items() if isinstance(v, (str, dict, list, int, float))}))
    assert size < 50_000 < plotly_js_path().stat().st_size
    assert isinstance(ex.fig, LiveFigure) and "plotly.min.js?v=" in state["plotly_url"]


def test_without_the_server_extension_the_kernel_sends_plotly_js_once_asked():
    """Where no kalab server extension serves plotly.js (VS Code, Colab), the front end asks the kernel."""
    from kalab.livefigure import LiveFigure, plotly_js_path
    fig = LiveFigure({"data": [], "layout": {}})
    sent = []
    fig.send = lambda content, buffers=None: sent.append((content, buffers))
    fig._on_custom(fig, {"kind": "something else"}, [])
    assert sent == []
    fig._on_custom(fig, {"kind": "need plotly.js"}, [])
    assert sent[0][0] == {"kind": "plotly.js"} and sent[0][1][0] == plotly_js_path().read_bytes()


def test_every_app_shows_without_a_kernel():
    """A notebook output of an app carries a static SVG with the verdict, and the figure dict for the site."""
    from kalab.widgets import FIGURE_MIME
    ex = explore(SSH, control("client.app.options.ServerAliveInterval", 0, 120))
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/svg+xml"].startswith("<svg") and "ssh.server_alive" in bundle["image/svg+xml"]
    assert bundle[FIGURE_MIME]["figures"][0] == ex.fig.spec
    assert "client dies at 1 min" in bundle["text/plain"]
    json.dumps(bundle[FIGURE_MIME])   # JSON-ready: no numpy values, no NaN


def test_static_figures_show_as_live_figures_with_an_svg():
    """plot.* figures are plotly Figures that a notebook shows through kalab's light live figure (one
    renderer everywhere: JupyterLab, Voila, VS Code), with an SVG drawing of themselves for readers
    without a kernel."""
    import plotly.graph_objects as go
    from kalab.widgets import FIGURE_MIME
    r = kalab.simulate(SSH)
    fig = plot.timeline_figure(r, title="t")
    assert isinstance(fig, go.Figure)
    bundle = fig._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "application/vnd.plotly.v1+json" not in bundle   # no second copy of plotly.js to load
    svg = bundle["image/svg+xml"]
    assert svg.count("<polygon") >= 1 and "client app" in svg
    assert bundle[FIGURE_MIME]["figures"][0]["data"][-1]["x"] == [60.0, 7875.0]


def test_a_fast_forwarded_steady_state_is_one_labelled_band_on_the_timeline():
    """A run the simulator jumped over (kalab.fastforward) is drawn as one band with its cycle count, and the
    'repeated' event has its own trace, not thousands of markers."""
    r = kalab.simulate({"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 1,
                                              "TCP_KEEPCNT": 9}}, "server": {}, "until_s": 1e8})
    assert r.repeats
    spec = plot.timeline_spec(r)
    bands = [s for s in spec["layout"]["shapes"] if s["x0"] == r.repeats[0].from_s]
    assert bands and bands[0]["x1"] == r.repeats[0].to_s
    assert any(f"{r.repeats[0].cycles:,} identical cycles" in a["text"] for a in spec["layout"]["annotations"])
    names = [t["name"] for t in spec["data"]]
    assert spec["data"][names.index("repeated cycles")]["x"] == [r.repeats[0].from_s]
    assert "identical cycles" in __import__("kalab.svg").svg.render(spec)


def test_without_a_kernel_the_output_says_which_sliders_a_live_notebook_shows():
    """The static drawing and the site's caption name each slider with its value and range, so text that says
    "move the slider" does not point at nothing."""
    from kalab.widgets import FIGURE_MIME, RecommendExplorer
    ex = explore(SSH, control("client.app.options.ServerAliveInterval", 0, 120))
    bundle = ex._repr_mimebundle_()
    note = bundle[FIGURE_MIME]["caption"][-1]
    assert note.startswith("Sliders here") and "ServerAliveInterval [s] = 15 (0..120)" in note
    assert "Binder" in bundle["image/svg+xml"]
    rec = RecommendExplorer(detect_within_s=300, survive_outage_s=120, nat_idle_s=0, side="client")
    assert "notice a dead peer within [s] = 300" in rec._repr_mimebundle_()["text/html"]
