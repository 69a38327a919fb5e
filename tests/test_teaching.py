"""The notebooks as teaching material: each ends with a Summary and Further reading, the words they use
are in docs/glossary.md and their links land on real headings, notebook 00 points at every notebook, and
docs/teaching.md covers every notebook.  (Their code and headlines: test_notebooks.py; their exercises:
test_exercises.py.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GLOSSARY = ROOT / "docs" / "glossary.md"
TEACHING = ROOT / "docs" / "teaching.md"

sys.path.insert(0, str(ROOT / "scripts"))
from build_site import heading_id  # noqa: E402  (the site's anchors are GitHub's)


def markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def anchors(doc: Path) -> set[str]:
    return {heading_id(line.lstrip("#").strip().replace("`", ""))
            for line in doc.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_ends_with_a_summary_and_further_reading(path):
    last = markdown(path)[-1]
    nb = json.loads(path.read_text())
    assert nb["cells"][-1]["cell_type"] == "markdown", "the last cell is the Summary and Further reading"
    assert "## Summary" in last and "## Further reading" in last and last.index("## Summary") < last.index(
        "## Further reading"), f"{path.name}: end with '## Summary' (rules, with numbers) then '## Further reading'"
    summary, reading = last.split("## Further reading")
    rules = [r for r in re.split(r"\n(?=[*-] )", summary.split("## Summary")[1].strip()) if r.startswith(("* ", "- "))]
    assert len(rules) >= 2, "the rules taught, one bullet each"
    assert sum(bool(re.search(r"\d", r)) for r in rules) >= len(rules) - 1, f"{path.name}: give each rule its numbers"
    sources = [r for r in re.split(r"\n(?=[*-] )", reading.strip()) if r.startswith(("* ", "- "))]
    assert len(sources) >= 2 and any("https://" in s for s in sources), "primary sources, with their addresses"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_links_to_the_docs_land_on_a_heading_and_each_notebook_links_the_glossary(path):
    text = "\n".join(markdown(path))
    links = re.findall(r"\]\(\.\./docs/([\w-]+\.md)(?:#([^)]+))?\)", text)
    assert any(doc == "glossary.md" for doc, _ in links), f"{path.name}: link the glossary at a word's first use"
    for doc, anchor in links:
        target = ROOT / "docs" / doc
        assert target.exists(), (path.name, doc)
        assert not anchor or anchor in anchors(target), f"{path.name}: {doc}#{anchor} is not a heading there"


def test_the_glossary_has_the_words_the_notebooks_rest_on_in_order():
    have = anchors(GLOSSARY)
    for term in ("rto", "tlp", "jiffy", "timer-wheel", "half-open", "conntrack", "keepalive", "time_wait", "msl",
                 "rst", "nat", "tcp_user_timeout", "tcp_retries2", "serveralive", "clientalive", "backoff"):
        assert term in have, term
    terms = [line[4:].strip().lower() for line in GLOSSARY.read_text().splitlines() if line.startswith("### ")]
    assert terms == sorted(terms), "alphabetical, so a new word has one place to go"
    for doc, anchor in re.findall(r"\]\(([\w-]+\.md)?#([^)]+)\)", GLOSSARY.read_text()):
        assert anchor in anchors(ROOT / "docs" / (doc or "glossary.md")), anchor


def test_notebook_00_points_at_every_notebook():
    """'Where to go next' in 00 lists every other notebook: a new notebook gets a row there."""
    text = "\n".join(markdown(NOTEBOOKS[0]))
    assert NOTEBOOKS[0].stem.startswith("00-")
    listed = set(re.findall(r"\]\((\d\d-[\w-]+)\.ipynb\)", text.split("## Where to go next")[1]))
    missing = [p.stem for p in NOTEBOOKS[1:] if p.stem not in listed]
    assert not missing, f"add to notebook 00's 'Where to go next': {missing}"


def test_the_instructor_guide_covers_every_notebook_and_the_ways_to_hand_them_out():
    guide = TEACHING.read_text()
    for p in NOTEBOOKS:
        assert f"{p.stem}.ipynb" in guide or p.stem in guide, f"docs/teaching.md does not mention {p.stem}"
    for needed in ("90-minute", "3-hour", "Binder", "nbgitpuller", "make site", "python -m kalab links",
                   "reveal=True", "scripts/grade_exercises.py", "45", "keepalive is on, so the NAT is fine"):
        assert needed in guide, needed
    for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", guide):
        assert (TEACHING.parent / link).resolve().exists(), link
