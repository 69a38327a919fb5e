"""The docs stay true to the code: docs/scenarios.md documents every key the loader accepts;
docs/mechanisms.md has a section per mechanism module and names only measurements that exist; the
map in docs/architecture.md names only files that exist; nothing cites a file outside the
repository (a reader of the published package could not follow it)."""

import re
import subprocess
from pathlib import Path

import pytest

from kalab import native, scenario, ssh_options
from kalab.mechanisms import middlebox

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "scenarios.md").read_text()
MECHANISMS = (ROOT / "docs" / "mechanisms.md").read_text()


def all_keys():
    keys = set(scenario.TOP_KEYS) | set(scenario.HOST_KEYS) | set(scenario.APP_KEYS) | set(scenario.PATH_KEYS)
    keys |= set(scenario.MIDDLEBOX_KEYS) | set(scenario.TRAFFIC_KEYS) | set(scenario.FAULT_KINDS)
    for kinds in scenario.FAULT_KEYS.values():
        keys |= set(kinds)
    for tables in native.TABLES.values():
        for table in tables.values():
            keys |= set(table)
    keys |= {v[0] for v in ssh_options.SSH_OPTIONS.values()} | {v[0] for v in ssh_options.SSHD_OPTIONS.values()}
    keys |= set(middlebox.PRESETS)
    return sorted(keys)


@pytest.mark.parametrize("key", all_keys())
def test_every_accepted_key_is_documented(key):
    assert f"`{key}`" in DOC


def test_readme_30_second_example_prints_what_it_says():
    import kalab
    r = kalab.simulate({
        "client": {"app": {"kind": "ssh", "options": {"TCPKeepAlive": "no", "ServerAliveInterval": 15}}},
        "server": {"app": {"kind": "sshd"}},
        "faults": [{"kind": "link_down", "at_s": 1}],
    })
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"# {r.client.at_s} {r.client.by} {r.client.sees}" in readme
    assert f"# {r.server.at_s} {r.server.by}" in readme


# ---------------------------------------------------------------- sources inside the repository

#: Files the project's developers read that are not part of the repository; citing them leaves a
#: reader of the published package with nothing to follow.
OUTSIDE = re.compile(r"timers\.md|design\.md|\.\./shared|/work/shared|keep-in-touch\.txt", re.IGNORECASE)
CHECKED = ("kalab/", "docs/", "notebooks/", "tests/", "benchmarks/", "examples/", "README.md")


def tracked_files() -> list[Path]:
    """The repository's tracked files under :data:`CHECKED` (all files there, outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *CHECKED], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout.decode()
        files = [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = [ROOT / "README.md"] + [f for d in CHECKED if d.endswith("/") for f in (ROOT / d).rglob("*")]
    return [f for f in files if f.is_file() and "__pycache__" not in f.parts and f.name != "test_docs.py"]


def test_nothing_cites_a_file_outside_the_repository():
    """No tracked file cites the developers' reading material (timers.md, DESIGN.md, ../shared):
    docs and docstrings cite docs/ and the primary sources (kernel, OpenSSH, RFC, vendor pages)."""
    files = tracked_files()
    assert any(f.name == "README.md" for f in files) and len(files) > 50
    bad = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not bad, "cite docs/ or the primary source instead:\n" + "\n".join(bad)


# ---------------------------------------------------------------- docs/mechanisms.md

def test_every_mechanism_module_has_a_section_in_mechanisms_md():
    """Each module under kalab/mechanisms/ is named in a heading of docs/mechanisms.md, where its rule,
    defaults, versions, source and measurement are written down."""
    headings = [line for line in MECHANISMS.splitlines() if line.startswith("#")]
    modules = sorted(p for p in (ROOT / "kalab" / "mechanisms").glob("*.py") if p.name != "__init__.py")
    assert modules
    missing = [m.name for m in modules if not any(f"`kalab/mechanisms/{m.name}`" in h for h in headings)]
    assert not missing, f"no section of docs/mechanisms.md is headed with these modules: {missing}"


MEASURED = ROOT / "data" / "measured"
JSON_NAME = re.compile(r"`(?:data/measured/)?([A-Za-z0-9_.*-]+\.json)`")


def test_measurements_named_in_mechanisms_md_exist():
    """Every data/measured/*.json that docs/mechanisms.md names as a confirmation exists."""
    names = set(JSON_NAME.findall(MECHANISMS))
    assert len(names) >= 20
    missing = sorted(n for n in names if not list(MEASURED.glob(n)))
    assert not missing, f"docs/mechanisms.md names measurements that are not in data/measured/: {missing}"


def test_every_recorded_measurement_is_indexed_in_mechanisms_md():
    """Every recorded lab measurement says, in docs/mechanisms.md, which rule it confirms."""
    named = set(JSON_NAME.findall(MECHANISMS))
    unnamed = sorted(f.name for f in MEASURED.glob("*.json") if f.name not in named)
    assert not unnamed, f"add these to the index of docs/mechanisms.md: {unnamed}"


# ---------------------------------------------------------------- the map

@pytest.mark.parametrize("doc", ["architecture.md", "mechanisms.md", "contract.md", "glossary.md", "teaching.md"])
def test_files_and_links_named_in_the_docs_exist(doc):
    """The Python files a doc names (``kalab/x.py``, or ``x.py`` somewhere under kalab/) and its relative
    links exist, so the map is updated when modules move."""
    text = (ROOT / "docs" / doc).read_text()
    missing = []
    for name in set(re.findall(r"`((?:[\w-]+/)*[\w-]+\.py)`", text)):
        if not ((ROOT / name).exists() or (ROOT / "kalab" / name).exists() or any((ROOT / "kalab").rglob(name))):
            missing.append(name)
    for link in set(re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)):
        if not (ROOT / "docs" / link).exists():
            missing.append(link)
    assert not missing, f"docs/{doc} names files that do not exist: {sorted(missing)}"
