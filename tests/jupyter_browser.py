"""A real Jupyter server and Debian's Chromium, driven by Playwright: shared by the browser tests and
``benchmarks/notebooks.py``.

The server runs on a copy of ``notebooks/`` and ``data/`` in a temporary directory (the browser never
touches the repository), on 127.0.0.1 with a token, as JupyterLab or as Voila's app mode.  Every
WebSocket frame the page exchanges with a kernel is counted (Playwright sees each frame), so the bytes
a figure costs are measured, not estimated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As the machine's probe starts it: without the background-networking flags Chromium keeps trying
#: Google's hosts, which this closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

#: A figure is drawn when plotly has put at least one trace with points on it.
FIGURES_WITH_DATA = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(gd =>
  gd.data && gd.data.some(t => (t.x && t.x.length) || (t.z && t.z.length))).length"""

#: The x positions of the last trace (the death markers) of the first figure, as JSON.
DEATH_X = """() => { const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null; const d = gd.data[gd.data.length - 1];
  return JSON.stringify(Array.from(d.x || [])); }"""


ALL_CELLS_RUN = """() => { const p = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt'));
  return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim())); }"""


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append("chromium (Debian package; make test installs it when root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip, test extra)")
    return ("browser test needs " + ", ".join(missing)) if missing else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    token: str
    root: Path

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def sessions(self) -> list:
        with urllib.request.urlopen(self.url("api/sessions"), timeout=5) as r:
            return json.loads(r.read())

    def kernels(self) -> list:
        with urllib.request.urlopen(self.url("api/kernels"), timeout=5) as r:
            return json.loads(r.read())

    def shut_down_sessions(self) -> None:
        """End every notebook session (and its kernel): the next test starts from a clean server."""
        for s in self.sessions():
            req = urllib.request.Request(f"{self.base}/api/sessions/{s['id']}", method="DELETE",
                                         headers={"Authorization": f"token {self.token}"})
            urllib.request.urlopen(req, timeout=10).close()


@contextlib.contextmanager
def jupyter_server(tmp: Path, env: dict | None = None, startup_s: float = 90):
    """JupyterLab (with Voila at /voila/render/ when voila is installed) on a copy of the notebooks and
    the data and examples they read."""
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    shutil.copytree(ROOT / "data", tmp / "data")
    shutil.copytree(ROOT / "examples", tmp / "examples")   # notebook 10 reads the sample config files
    port, token = free_port(), "kalab-test-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}", "--allow-root",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp, env=env, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", token, tmp)
    try:
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the Jupyter server exited: " + proc.stderr.read().decode()[-2000:])
            try:
                with urllib.request.urlopen(server.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"the Jupyter server did not start within {startup_s} s")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_kernels_idle(server: Server, timeout_s: float = 90) -> None:
    """Until every kernel of the server exists and reports idle (the REST API)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ks = server.kernels()
            if ks and all(k["execution_state"] == "idle" for k in ks):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the kernel was not idle within {timeout_s} s")


@dataclass
class Wire:
    """Bytes over the kernel WebSockets, both directions, counted frame by frame."""

    received: int = 0
    sent: int = 0
    frames: int = 0
    sockets: list = field(default_factory=list)

    def attach(self, page) -> None:
        def on_ws(ws):
            if "/api/kernels/" not in ws.url:
                return
            self.sockets.append(ws.url)
            ws.on("framereceived", lambda p: self._count(p, "received"))
            ws.on("framesent", lambda p: self._count(p, "sent"))
        page.on("websocket", on_ws)

    def _count(self, payload, direction: str) -> None:
        n = len(payload.encode()) if isinstance(payload, str) else len(payload)
        setattr(self, direction, getattr(self, direction) + n)
        self.frames += 1

    @property
    def total(self) -> int:
        return self.received + self.sent


_CDN_ERROR = "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"


def without_cdn_failures(errors: list[str], external: list[str]) -> list[str]:
    """Console errors, less one "could not resolve" line per failed request to another host.

    Voila's own page template loads FontAwesome and MathJax from CDNs (cdn.jsdelivr.net,
    cdnjs.cloudflare.com); on Binder they load, on this closed test machine they fail.  That failure
    is the machine's, not the app's, and only it is forgiven: any other console error still counts.
    """
    out, budget = [], len(external)
    for e in errors:
        if e == _CDN_ERROR and budget:
            budget -= 1
            continue
        out.append(e)
    return out


def _watch(page, errors: list[str], external: list[str] | None) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    if external is not None:
        page.on("requestfailed", lambda r: None if r.url.startswith(("http://127.0.0.1", "file:"))
                else external.append(r.url))


@contextlib.contextmanager
def browser(viewport=(1400, 1100)):
    """Headless Chromium; yields ``new_page(errors, external=None)``, which opens a watched page (see
    :func:`browser_page`)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            def new_page(errors: list[str], external: list[str] | None = None):
                page = b.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                _watch(page, errors, external)
                return page
            yield new_page
        finally:
            b.close()


@contextlib.contextmanager
def browser_page(errors: list[str], viewport=(1400, 1100), external: list[str] | None = None):
    """A fresh headless Chromium page; console errors and page errors are appended to ``errors``, and the
    URLs of failed requests to hosts other than 127.0.0.1 to ``external``."""
    with browser(viewport) as new_page:
        yield new_page(errors, external)


def move_slider(page, label: str, value: str) -> float:
    """Type a value into a slider's readout, as a user would; returns the milliseconds from Enter until the
    death marker of the first figure has moved (drawn: checked on every animation frame)."""
    slider = page.locator(".widget-slider", has_text=label).first
    slider.locator(".widget-readout").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.evaluate(f"() => {{ window.__kalab_before = ({DEATH_X})(); window.__kalab_t0 = performance.now(); }}")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => {{ const x = ({DEATH_X})(); if (x && x !== window.__kalab_before) "
        "{ window.__kalab_t1 = performance.now(); return true; } return false; }", polling="raf", timeout=30_000)
    return page.evaluate("() => window.__kalab_t1 - window.__kalab_t0")


@dataclass
class RunAll:
    """What Run All in JupyterLab cost: bytes over the kernel socket, figures drawn, time to the first."""

    notebook: str
    wire: Wire
    figures: int
    first_figure_s: float
    all_done_s: float

    @property
    def bytes_per_figure(self) -> float:
        return self.wire.total / max(self.figures, 1)


def run_all_in_lab(page, server: Server, notebook: str, timeout_s: float = 120) -> RunAll:
    """Open ``notebooks/<notebook>`` in JupyterLab, wait for its kernel, Run All Cells, wait until the
    kernel is idle again and the figures are drawn.  Times run from the click on "Run All Cells"."""
    wire = Wire()
    wire.attach(page)
    server.shut_down_sessions()
    # ?reset: a fresh workspace, not the tabs an earlier test left open
    page.goto(server.url(f"lab/tree/notebooks/{notebook}") + "&reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    wait_kernels_idle(server)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    item = page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first
    item.wait_for(state="visible", timeout=10_000)
    page.evaluate("() => { window.__kalab_t0 = performance.now(); window.__kalab_first = null; }")
    item.click()
    page.wait_for_function(
        f"() => {{ if (({FIGURES_WITH_DATA})() > 0) {{ window.__kalab_first = performance.now(); return true; }}"
        " return false; }", polling="raf", timeout=timeout_s * 1000)
    first_s = page.evaluate("() => (window.__kalab_first - window.__kalab_t0) / 1000")
    # Done when every code cell shows its execution count ("[7]:"; "[*]:" while queued or running).
    # The kernel's own idle state is no sign: it is idle for a moment between any two cells.
    page.wait_for_function(ALL_CELLS_RUN, polling=200, timeout=timeout_s * 1000)
    wait_kernels_idle(server, timeout_s)
    # JupyterLab renders only the cells near the viewport (notebook windowing): bring each into view once,
    # so every figure is drawn, then let the count settle (bounded).
    cells = page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length")
    for i in range(min(cells, 200)):
        page.evaluate(f"() => {{ const c = document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[{i}]; "
                      "if (c) c.scrollIntoView(); }")
        time.sleep(0.05)
    n, stable, deadline = -1, 0, time.monotonic() + 20
    while stable < 3 and time.monotonic() < deadline:
        m = page.evaluate(FIGURES_WITH_DATA)
        stable = stable + 1 if m == n else 0
        n = m
        time.sleep(0.3)
    done_s = page.evaluate("() => (performance.now() - window.__kalab_t0) / 1000")
    return RunAll(notebook, wire, n, first_s, done_s)
