"""``make site``: the notebooks as a static site that reads without a kernel, offline.

    python scripts/build_site.py [--out site] [--repo URL] [--ref REF] [--executed DIR] [--jobs N]

Writes ``site/index.html`` and one page per notebook, ``site/<notebook stem>.html``: executed top to
bottom (nbclient), every figure drawn with plotly.js (hover and zoom work; a live app is shown at its
default settings, with its verdict above it), a bar with the links that open the page on Binder
(JupyterLab and app mode), and nothing fetched from the network: plotly.js is copied once into
``site/plotly.min.js`` (from the plotly package) and shared by every page; nbconvert's CDN scripts
(require.js, MathJax, Mermaid, the widget manager) are left out by the template in
``scripts/site-template/``.  Every ``docs/*.md`` becomes ``site/docs/<name>.html`` (the glossary and the sources
the notebooks link to), and the notebooks' links to ``../docs/<name>.md`` point there.

Why nbconvert: it is already installed with JupyterLab, so the site needs nothing beyond what
``make test`` installs, and it lets the page choose which of an output's MIME types to draw
(kalab's figure dict rather than the widget placeholder or the SVG fallback).  Jupyter Book 2/MyST
would bring a Node.js tool chain and its own theme assets for eleven pages.

The Binder links name the published repository: ``--repo`` (e.g. ``make site REPO=https://github.com/
you/kalab``) or, by default, the checkout's git remote, as ``python -m kalab links`` finds it.
``--executed DIR`` takes notebooks already executed (the test suite does this, to execute once).
"""

from __future__ import annotations

import argparse
import html
import json
import multiprocessing
import re
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "site-template"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_LOCAL_NOTEBOOK_LINK = re.compile(r"\]\((\d\d-[A-Za-z0-9_-]+)\.ipynb(#[^)]*)?\)")
_DOC_LINK = re.compile(r"\]\(\.\./docs/([A-Za-z0-9_-]+)\.md(#[^)]*)?\)")
_SIBLING_DOC_HREF = re.compile(r'href="([A-Za-z0-9_-]+)\.md(#[^"]*)?"')


def execute(path: Path, timeout_s: int = 120):
    """Run a notebook top to bottom in its own folder (as a student would) and return it."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, 4)
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _figure_html(specs: list[dict], caption: list[str], counter: list[int]) -> str:
    out = []
    if caption:
        out.append('<div class="kalab-figure-caption">' + "<br>".join(html.escape(c) for c in caption) + "</div>")
    for spec in specs:
        counter[0] += 1
        fid = f"kalab-figure-{counter[0]}"
        blob = json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        out.append(f'<div class="kalab-figure" id="{fid}"></div>'
                   f'<script type="application/json" class="kalab-figure-spec" data-target="{fid}">{blob}</script>')
    return "".join(out)


def prepare(nb) -> int:
    """Make an executed notebook's outputs static: figures become plotly divs drawn by the site's script,
    widgets give way to what they show without a kernel, notebook links point at the site's pages.
    Returns the number of figures."""
    from kalab.widgets import FIGURE_MIME
    counter = [0]
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _LOCAL_NOTEBOOK_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", cell.source)
            cell.source = _DOC_LINK.sub(lambda m: f"](docs/{m.group(1)}.html{m.group(2) or ''})", cell.source)
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if FIGURE_MIME in data:
                body = data[FIGURE_MIME]
                out["data"] = {"text/html": _figure_html(body["figures"], body.get("caption", []), counter)}
            elif PLOTLY_MIME in data:
                out["data"] = {"text/html": _figure_html([data[PLOTLY_MIME]], [], counter)}
            else:
                data.pop(WIDGET_MIME, None)   # its text/html or text/plain fallback is shown instead
    return counter[0]


def heading_id(text: str) -> str:
    """The anchor GitHub gives a Markdown heading (lower case, punctuation dropped, spaces to hyphens), so a
    link like ``glossary.md#time_wait`` or ``mechanisms.md#keepalive--kalabmechanismstcp_keepalivepy`` works
    on GitHub and on the site alike.

    >>> heading_id("Keepalive — <code>kalab/mechanisms/tcp_keepalive.py</code>"), heading_id("TIME_WAIT")
    ('keepalive--kalabmechanismstcp_keepalivepy', 'time_wait')
    """
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def doc_pages(out: Path) -> list[Path]:
    """Every ``docs/*.md`` as ``out/docs/<name>.html`` (headings with GitHub's anchors, links between the docs
    kept), so the glossary and the sources the notebooks link to read offline too."""
    import mistune

    class Renderer(mistune.HTMLRenderer):
        def heading(self, text, level, **attrs):
            return f'<h{level} id="{heading_id(text)}">{text}</h{level}>\n'

    md = mistune.create_markdown(renderer=Renderer(escape=False), plugins=["table", "url", "strikethrough"])
    (out / "docs").mkdir(parents=True, exist_ok=True)
    pages = []
    for src in sorted((ROOT / "docs").glob("*.md")):
        text = src.read_text(encoding="utf-8")
        body = _SIBLING_DOC_HREF.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', md(text))
        title = text.splitlines()[0].lstrip("# ").strip() if text else src.stem
        page = out / "docs" / f"{src.stem}.html"
        page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
 body {{ font-family: sans-serif; max-width: 900px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
 table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
 code {{ background: #f4f4f4; }} pre {{ background: #f4f4f4; padding: 0.5em; overflow-x: auto; }}
</style></head><body>
<p><a href="../index.html">kalab notebooks</a> &middot; docs/{html.escape(src.name)}</p>
{body}
</body></html>
""", encoding="utf-8")
        pages.append(page)
    return pages


def title_and_summary(nb) -> tuple[str, str]:
    first = nb.cells[0].source
    title = first.splitlines()[0].lstrip("# ").strip()
    m = re.search(r"\*\*What you'll learn:\*\*\s*(.+)", first)
    return title, (m.group(1).strip() if m else "")


def _plain(markdown: str) -> str:
    """Inline Markdown (code, bold, italics) as escaped HTML, for the index."""
    text = html.escape(markdown)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


def index_page(entries: list[tuple[str, str, str, str, str]], repo_url: str, start_binder: str) -> str:
    rows = "".join(
        f'<li><a href="{stem}.html"><b>{html.escape(stem[:2])}</b> {html.escape(title)}</a>'
        f'<div class="learn">{_plain(learn)}</div>'
        f'<div class="links"><a href="{html.escape(binder)}">open on Binder</a> &middot; '
        f'<a href="{html.escape(app)}">as an app</a></div></li>'
        for stem, title, learn, binder, app in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kalab: when does a network session die, and why?</title>
<style>
 body {{ font-family: sans-serif; max-width: 900px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
 li {{ margin: 0 0 1em 0; list-style: none; }} ul {{ padding: 0; }}
 .learn {{ color: #444; font-size: 14px; }} .links {{ font-size: 13px; }} a {{ text-decoration: none; }}
</style></head><body>
<h1>kalab: when does a network session die, and why?</h1>
<p>TCP keepalive, retransmission and <code>TCP_USER_TIMEOUT</code>, TIME_WAIT, OpenSSH
<code>ServerAlive*</code>/<code>ClientAlive*</code>, telnetd and NAT/firewall idle timers, on both ends at once.
Each page below is a notebook, executed when this site was built; to move its sliders,
<a href="{html.escape(start_binder)}">open it on Binder</a>. Source: <a href="{html.escape(repo_url)}">{html.escape(repo_url)}</a>.</p>
<ul>{rows}</ul>
<p>Words: the <a href="docs/glossary.html">glossary</a>. For instructors: the
<a href="docs/teaching.html">guide</a> (lab session plans, questions with answers, grading). The rules and their
sources: <a href="docs/mechanisms.html">mechanisms</a>.</p>
</body></html>
"""


def build(out: Path, repo_url: str, ref: str, executed: Path | None, jobs: int) -> list[Path]:
    import nbformat
    from nbconvert import HTMLExporter

    from kalab.livefigure import plotly_js_path
    from kalab.links import binder_url, parse_repo_url
    repo = parse_repo_url(repo_url, "--repo")
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if executed is not None:
        missing = [p.name for p in sources if not (executed / p.name).exists()]
        if missing:
            raise SystemExit(f"build_site: --executed {executed}: missing {', '.join(missing)}")
        nbs = [nbformat.read(executed / p.name, 4) for p in sources]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            nbs = list(ex.map(execute, sources))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plotly_js_path(), out / "plotly.min.js")
    shutil.copyfile(TEMPLATES / "kalab-site" / "kalab-site.js", out / "kalab-site.js")
    exporter = HTMLExporter(template_name="kalab-site", extra_template_basedirs=[str(TEMPLATES)])
    pages, entries = [], []
    for src, nb in zip(sources, nbs):
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))   # a private copy: prepare() rewrites outputs
        title, learn = title_and_summary(nb)
        prepare(nb)
        lab = binder_url(repo, ref, f"lab/tree/notebooks/{src.name}")
        app = binder_url(repo, ref, f"voila/render/notebooks/{src.name}")
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title},
                                                             "kalab": {"binder": lab, "app": app}})
        page = out / f"{src.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        entries.append((src.stem, title, learn, lab, app))
    (out / "index.html").write_text(index_page(entries, repo.url, binder_url(repo, ref)), encoding="utf-8")
    doc_pages(out)
    return pages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_site", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "site"))
    p.add_argument("--repo", help="the published repository (default: the checkout's git remote)")
    p.add_argument("--ref", default="HEAD", help="branch, tag or commit for the Binder links (default HEAD)")
    p.add_argument("--executed", help="a folder of already executed notebooks (same names)")
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from kalab.errors import ScenarioError
    from kalab.links import check_ref, git_remote
    try:
        repo_url = a.repo
        if repo_url is None:
            remote = git_remote(ROOT)
            if remote is None:
                raise ScenarioError("--repo", "this checkout has no git remote; name the published repository: "
                                    "make site REPO=https://github.com/OWNER/REPO")
            repo_url = remote[1]
        ref = check_ref(a.ref)
        pages = build(Path(a.out), repo_url, ref, Path(a.executed) if a.executed else None, max(1, a.jobs))
    except ScenarioError as e:
        print(f"build_site: error: {e}", file=sys.stderr)
        return 2
    print(f"site: {len(pages)} pages and index.html in {a.out} (open {Path(a.out) / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
