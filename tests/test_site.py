"""The static site (``make site``): every page reads without a kernel and without the network.

Built from the notebooks the test session already executed (``--executed``), with the same builder
``make site`` runs; then every page is opened in Chromium from ``file://`` with every other request
blocked (as if offline): each notebook page shows at least one plotly figure with data, the console
stays clean, plotly.js is loaded once per site (one file, one ``<script>`` per page, no CDN), and each
page links to itself on Binder.  Skips without Chromium; must run when CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import jupyter_browser as jb

REPO = "https://github.com/example/kalab"


@pytest.fixture(scope="module")
def site(executed, tmp_path_factory):
    src = tmp_path_factory.mktemp("executed")
    import nbformat
    for name, (nb, _) in executed.items():
        nbformat.write(nb, src / f"{name}.ipynb")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, str(jb.ROOT / "scripts" / "build_site.py"), "--out", str(out),
                           "--repo", REPO, "--executed", str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_site_has_an_index_and_a_page_per_notebook_and_plotly_once(site, executed):
    pages = sorted(p.stem for p in site.glob("*.html"))
    assert pages == sorted([*executed, "index"])
    assert sorted(p.name for p in site.glob("*.js")) == ["kalab-site.js", "plotly.min.js"]
    for page in site.glob("*.html"):
        html = page.read_text()
        scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html)
        assert all(not s.startswith(("http:", "https:", "//")) for s in scripts), (page.name, scripts)
        assert not re.search(r"<link[^>]+href=\"(https?:)?//", html), page.name
        if page.stem != "index":
            assert scripts.count("plotly.min.js") == 1, page.name
            assert "plotly.js v" not in html, "plotly.js must not be inlined into a page"


def test_the_docs_the_notebooks_link_to_are_pages_of_the_site(site, executed):
    """The glossary and the docs are pages of the site: every link a notebook page (or the index) makes into
    docs/ lands on a file there and on a heading of it, as the same link does on GitHub."""
    import html as _html
    pages = sorted(site.glob("*.html"))
    checked = 0
    for page in pages:
        for href in re.findall(r'href="(docs/[^"]+)"', page.read_text()):
            target, _, anchor = _html.unescape(href).partition("#")
            assert (site / target).exists(), (page.name, href)
            if anchor:
                assert f'id="{anchor}"' in (site / target).read_text(), (page.name, href)
            checked += 1
    assert checked > 20
    assert (site / "docs" / "glossary.html").exists() and (site / "docs" / "teaching.html").exists()
    assert "../docs/" not in "".join(p.read_text() for p in pages if p.stem != "index"), "a link left unrewritten"


def test_make_site_without_a_repository_is_refused_in_one_line(tmp_path):
    """The Binder links need the published address: with no remote and no --repo, one line says how."""
    import shutil
    shutil.copytree(jb.ROOT / "scripts", tmp_path / "scripts")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    proc = subprocess.run([sys.executable, str(tmp_path / "scripts" / "build_site.py"), "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(jb.ROOT)})
    assert proc.returncode == 2 and "make site REPO=" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_every_page_shows_a_figure_offline_with_a_clean_console(site, executed):
    why = jb.missing_browser()
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: the site test must run in Chromium, but " + why)
        pytest.skip(why)
    errors: list[str] = []
    blocked: list[str] = []
    with jb.browser_page(errors) as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                   else (blocked.append(route.request.url), route.abort()))
        for name in sorted(executed):
            page.goto((site / f"{name}.html").as_uri(), wait_until="load")
            try:
                page.wait_for_function(f"() => ({jb.FIGURES_WITH_DATA})() > 0", polling=100, timeout=30_000)
            except Exception as e:
                raise AssertionError(f"{name}: no figure with data within 30 s; console: {errors}") from e
            figures = page.evaluate(jb.FIGURES_WITH_DATA)
            binder = page.get_attribute("a.kalab-binder", "href")
            assert binder == f"https://mybinder.org/v2/gh/example/kalab/HEAD?urlpath=lab/tree/notebooks/{name}.ipynb"
            assert page.get_attribute("a.kalab-binder-app", "href").endswith(f"voila/render/notebooks/{name}.ipynb")
            assert figures >= 1, name
            print(f"{name}: {figures} figure(s)")
            if name == "03-ssh-drops":
                (jb.ROOT / "artifacts").mkdir(exist_ok=True)
                page.screenshot(path=str(jb.ROOT / "artifacts" / "site-03.png"), full_page=True)
        page.goto((site / "index.html").as_uri(), wait_until="load")
        links = page.evaluate("() => Array.from(document.querySelectorAll('li > a')).map(a => a.getAttribute('href'))")
        assert links == [f"{n}.html" for n in sorted(executed)]
    assert not blocked, blocked
    assert not errors, errors
