"""Notebooks: committed clean, importing only from kalab, executed top to bottom, headlines checked.

Each notebook runs headless (nbclient) within 30 s; the cells tagged "headline" must print what
the model says for the same scenarios (computed here with kalab, not typed in).
"""

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

import kalab
from kalab import format_duration
from kalab.mechanisms import tcp_retransmit, time_wait

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED = ["00-start-here", "01-idle-peer", "02-data-in-flight", "03-ssh-drops", "04-server-beliefs",
            "05-middleboxes", "06-time-wait", "07-who-first", "08-measured", "09-what-if", "10-what-should-i-set",
            "11-who-else-hangs-up"]


def test_the_notebooks_exist_and_titles_are_questions():
    assert [p.stem for p in NOTEBOOKS][:len(REQUIRED)] == REQUIRED
    for p in NOTEBOOKS:
        first = nbformat.read(p, 4).cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# ")
        title = first.source.splitlines()[0]
        assert title.endswith("?") or "vs" in title, title
        for part in ("What you'll do", "What you'll learn", "What you need", "Time to learn"):
            assert part in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean_with_kalab_imports_only_and_no_defs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs") and cell.get("execution_count") is None, "outputs must be stripped"
        src = "".join(cell["source"])
        tree = ast.parse(src)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda)), "no logic in notebooks"
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "kalab" for a in node.names)
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] == "kalab"
    text = path.read_text()
    assert "On your own" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_imports_what_it_uses_and_nothing_else(path):
    """Every name a notebook imports is used, and ``kalab.X`` is only one of kalab's public names: a
    module reached as an attribute (``kalab.plot``) works only if something else imported it."""
    nb = json.loads(path.read_text())
    tree = ast.parse("\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"))
    imported, used, reached = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "kalab":
            reached.add(node.attr)
    assert imported <= used, f"imported but not used: {sorted(imported - used)}"
    assert reached <= set(kalab.__all__), f"import these instead: {sorted(reached - set(kalab.__all__))}"


def headlines(nb) -> str:
    out = []
    for cell in nb.cells:
        if "headline" in cell.metadata.get("tags", []):
            out += [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
    return "".join(out)


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_an_executed_notebook_stays_small(executed, name):
    """Outputs hold figure dicts and an SVG drawing, never plotly.js (was 5-15 MB per executed notebook)."""
    nb, _ = executed[name]
    size = len(json.dumps(nb))
    print(f"{name}: {size:,} bytes executed")
    assert size < 1_000_000


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_every_figure_shows_live_and_without_a_kernel(executed, name):
    """Each figure output is kalab's live figure (a widget) with an SVG drawing and the figure dict beside it;
    none is plotly's own MIME type (a second renderer and a second plotly.js; it fails in Voila)."""
    from kalab.widgets import FIGURE_MIME
    nb, _ = executed[name]
    outputs = [o for c in nb.cells for o in c.get("outputs", []) if o.get("data")]
    assert not any("application/vnd.plotly.v1+json" in o["data"] for o in outputs)
    for o in outputs:
        if FIGURE_MIME in o["data"]:
            assert o["data"]["image/svg+xml"].startswith("<svg")
            assert "application/vnd.jupyter.widget-view+json" in o["data"]
    assert any(FIGURE_MIME in o["data"] for o in outputs), "every notebook shows at least one figure"


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_within_30_s(executed, name):
    nb, seconds = executed[name]
    print(f"{name}: {seconds:.1f} s")
    assert seconds < 30
    for cell in nb.cells:
        assert not any(o.output_type == "error" for o in cell.get("outputs", []))


def _sim(sc):
    return kalab.simulate(sc)


def expected_headlines():
    ex = {n: json.loads((ROOT / "examples" / f"{n}.json").read_text()) for n in
          ("linux-defaults-2h11m15s", "ssh-serveralive-15-cable-unplugged", "retransmission-tcp-retries2-default",
           "transient-glitch-survived", "user-timeout-below-keepidle", "aws-nat-idle-ssh", "fresh-data-every-15-minutes",
           "sshd-9.2-clientalive-doubled", "hardened-server-idle-lunch-break")}
    ssh = _sim(ex["ssh-serveralive-15-cable-unplugged"])
    glitch = _sim(ex["transient-glitch-survived"])
    acked = [e.detail for e in glitch.events if e.kind == "acked"][0]
    sshd = ex["sshd-9.2-clientalive-doubled"]
    measured = kalab.load_measurements(ROOT / "data" / "measured")
    import numpy as np
    from kalab.plot import sweep_regions
    from kalab.scenario import with_value
    base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPCNT": 3}}, "server": {}, "until_s": 100000}
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 61), "client.socket.TCP_KEEPINTVL": np.arange(10, 301, 10)}
    out = kalab.sweep(with_value(base, "faults", [{"kind": "link_down", "at_s": 1, "for_s": 300}]), axes)
    crash = kalab.sweep(with_value(base, "faults", [{"kind": "host_crash", "side": "server", "at_s": 1}]), axes)
    reboot = kalab.sweep(with_value(base, "faults", [{"kind": "host_reboot", "side": "server", "at_s": 1,
                                                       "down_s": 20}]), axes)
    keys = ("client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL")
    crash_ok = int((sweep_regions(crash, out, *keys, 30, failure_at_s=1) == 2).sum())
    reboot_ok = int((sweep_regions(reboot, out, *keys, 30, failure_at_s=21) == 2).sum())
    agree = sum(kalab.compare_recorded(m)["ok"] for m in measured.values())
    from kalab.configs import read_ssh_config, read_sshd_config, read_sysctl
    from kalab.configs.build import build, parse_fault
    from kalab.recommend import Goal, answer, report
    cfg = ROOT / "examples" / "configs"
    built = build(client_sysctl=read_sysctl(str(cfg / "proc-sys-dump.txt")),
                  ssh=read_ssh_config(str(cfg / "ssh" / "config"), "db1.prod.example.org"),
                  sshd=read_sshd_config(str(cfg / "sshd_config")), faults=[parse_fault("link_down@60")])
    mine = _sim(built.scenario)
    everyday = Goal(detect_within_s=300, survive_outage_s=120, nat_idle_s=350)
    hardened = ex["hardened-server-idle-lunch-break"]
    hard = _sim(hardened)
    busy = _sim(kalab.with_value(kalab.with_value(hardened, "server.app.shell.command_s", 2400), "traffic",
                                 [{"at_s": 300, "from": "client", "bytes": 12, "line": True}]))
    tight = Goal(detect_within_s=30, survive_outage_s=120, side="client")
    return {
        "10-what-should-i-set": [f"the client dies at {format_duration(mine.client.at_s)}", "ServerAliveCountMax = 5 from",
                                 "conf.d/10-db.conf:3", report(everyday, *answer(everyday)),
                                 report(tight, *answer(tight))],
        "00-start-here": [f"ssh gives up after {format_duration(ssh.client.at_s)}",
                          f"sshd gives up after {format_duration(ssh.server.at_s)}"],
        "01-idle-peer": [f"Linux gives up after {format_duration(_sim(ex['linux-defaults-2h11m15s']).client.at_s)}",
                         "(7875 s)", "half_open"],
        "02-data-in-flight": [f"= {tcp_retransmit.tcp_model_timeout_s(15)} s",
                              format_duration(_sim(ex["retransmission-tcp-retries2-default"]).client.at_s), acked,
                              f"dies at {_sim(ex['user-timeout-below-keepidle']).client.at_s} s after 1 probe"],
        "03-ssh-drops": [f"ssh gives up at {ssh.client.at_s} s"],
        "04-server-beliefs": [f"9.2: sshd ends the session at {_sim(sshd).server.at_s:g} s"],
        "05-middleboxes": [f"expires at {[e.t_s for e in _sim(ex['aws-nat-idle-ssh']).events if e.kind == 'mapping_expired'][0]:g} s"],
        "06-time-wait": [f"{time_wait.max_connection_rate_per_s():.1f} new connections per second", "macos           TIME_WAIT 30 s"],
        "07-who-first": [f"finds out at {format_duration(_sim(ex['fresh-data-every-15-minutes']).client.at_s)}"],
        "08-measured": [f"{agree} of {len(measured)} agree"],
        "09-what-if": [f"survive a 5-minute outage: {crash_ok} of 1800", f"survive a 5-minute outage: {reboot_ok} of 1800"],
        "11-who-else-hangs-up": [f"the session ends after {format_duration(hard.client.at_s)} by {hard.client.by}",
                                 f"ends after {format_duration(busy.client.at_s)} by {busy.client.by}"],
    }


@pytest.mark.parametrize("name", REQUIRED)
def test_headline_numbers_are_the_models(executed, name):
    text = headlines(executed[name][0])
    for want in expected_headlines()[name]:
        assert want in text, f"{name}: expected {want!r} in\n{text}"


def test_binder_pins_satisfy_the_package_ranges():
    """One dependency truth: Binder's exact pins must fall inside pyproject's ranges."""
    import tomllib
    from packaging.requirements import Requirement
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ranges = {Requirement(r).name: Requirement(r).specifier
              for r in pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["notebook"]}
    pins = {}
    for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([\w.]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    assert set(ranges) <= set(pins), "every notebook dependency is pinned for Binder"
    for name, spec in ranges.items():
        assert spec.contains(pins[name]), f"{name}=={pins[name]} outside {spec}"
    assert "." in (ROOT / "binder" / "requirements.txt").read_text().split(), "Binder installs the package itself"
