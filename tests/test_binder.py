"""Binder builds: repo2docker's own build plan for this repository, checked without Docker.

mybinder.org builds images with repo2docker (https://repo2docker.readthedocs.io).  With ``--no-build
--no-run --debug`` it prints the Dockerfile it would build and logs the Python it picked, in well
under a second and without Docker.  These tests run it on a copy of the tracked files of the
working tree (``git ls-files``: a change is tested before it is committed, untracked junk is not
seen) and check what Binder will really do:

* (a) the Python of the plan is the one the tests run on.  ``binder/runtime.txt`` (``python-3.11``)
  pins it; without it repo2docker 2026.4.0 says "Python version unspecified, using Python version
  3.10" and ``numpy==2.4.6`` (``Requires-Python >=3.11``) cannot install -- issue 11.  runtime.txt,
  not environment.yml: an environment.yml would move Binder to conda's solver and conda-forge
  builds, so Binder would no longer install the file ``make test`` installs.  When ``binder/``
  exists repo2docker reads its configuration from there only (and ignores pyproject's
  requires-python), so both files live in ``binder/``;
* (b) every pin of ``binder/requirements.txt`` has a distribution on PyPI for that Python on
  linux x86_64 (a wheel whose tags fit CPython 3.11 on the image's glibc, a pure wheel or an
  sdist, and a ``Requires-Python`` that admits the plan's exact Python);
* (c) the project's ``requires-python`` admits it;
* (d) what the plan installs is what ``make test`` installs: its only pip step is ``pip install
  -r binder/requirements.txt`` (no postBuild, no other file of ours), the Makefile installs the
  same file, and every pin equals the version installed in the environment running the tests.

What the plan does not pin: repo2docker's base environment (its conda lock for the chosen Python,
e.g. jupyterlab 4.4.9, notebook 7.4.7, ipywidgets 8.1.7, tornado 6.5.2, jupyterhub-singleuser)
is installed first; pip then upgrades what the pins need.  So the pins are the same as in CI;
unpinned dependencies that the base environment already satisfies may be at other versions.

repo2docker is pinned in the ``test`` extra (it only adds docker, escapism, semver and a few small
packages; nothing of the Jupyter stack moves) rather than in a throwaway venv: no second install per
run, and an exact version because the plan's text is what these tests read.  mybinder.org deploys
newer repo2docker releases over time; bump the pin to follow it.

Only (b) needs the network (PyPI's JSON API).  Without it the test skips with the reason on a
user's machine; under ``CI=true`` nothing here skips.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging import tags
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "binder/requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;#]+)\s*(?:#.*)?$")
# glibc of the plan's base image (buildpack-deps:<ubuntu release>): decides which manylinux wheels
# pip accepts there.  Ubuntu's glibc per release: https://launchpad.net/ubuntu/+source/glibc
UBUNTU_GLIBC = {"18.04": (2, 27), "20.04": (2, 31), "22.04": (2, 35), "24.04": (2, 39)}
PYPI = "https://pypi.org/pypi"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _cannot_run(reason: str):
    if _in_ci():
        pytest.fail("CI=true: the Binder test must run, but " + reason)
    pytest.skip(reason)


# ---------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Plan:
    dockerfile: str
    log: str

    def lines(self) -> list[str]:
        """Dockerfile instructions, continuation lines joined."""
        return re.sub(r"\\\n\s*", " ", self.dockerfile).splitlines()


def tracked_copy(dest: Path) -> Path:
    """The tracked files of the working tree (as edited, not as committed) copied under ``dest``."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as e:
        _cannot_run(f"needs a git checkout to know the tracked files ({e})")
    for name in out.stdout.decode().split("\0"):
        src = ROOT / name
        if name and (src.exists() or src.is_symlink()):   # a tracked file deleted in the tree is gone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    return dest


def build_plan(tree: Path, cwd: Path) -> Plan:
    """repo2docker's plan for ``tree``: the Dockerfile it prints and its log.

    ``platform=linux/amd64`` is mybinder.org's (repo2docker otherwise takes the host's); ``cwd`` is a
    scratch directory because repo2docker loads a ``repo2docker_config.py`` from its working directory.
    """
    cmd = [sys.executable, "-m", "repo2docker", "--Repo2Docker.platform=linux/amd64", "--no-build", "--no-run",
           "--debug", "--user-id", "1000", "--user-name", "jovyan", str(tree)]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"repo2docker refused the repository:\n{out.stderr[-3000:]}"
    assert "FROM " in out.stdout, f"no Dockerfile in repo2docker's output:\n{out.stdout[-2000:]}"
    return Plan(out.stdout, out.stderr)


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Plan:
    tree = tracked_copy(tmp_path_factory.mktemp("repo"))
    return build_plan(tree, tmp_path_factory.mktemp("cwd"))


def plan_python(plan: Plan) -> Version:
    """The exact Python of the image: the one in the conda lock the plan copies to
    /tmp/env/environment.lock (repo2docker's frozen base environment for the chosen Python).

    The copied file is named ``build_script_files/<escaped path, maybe truncated>-<sha256(path)[:6]>``
    (repo2docker.buildpacks.base.generate_build_context_filename), so the lock is found by its hash.
    """
    m = re.search(r"^COPY \S+ build_script_files/\S+-([0-9a-f]{6}) /tmp/env/environment\.lock$",
                  plan.dockerfile, re.M)
    assert m, "the plan installs no conda base environment (/tmp/env/environment.lock): not the Python buildpack?"
    # repo2docker's directory, found without importing it (its import warns of a deprecated logger)
    spec = importlib.util.find_spec("repo2docker")
    assert spec and spec.submodule_search_locations, "repo2docker is not installed (test extra)"
    here = os.path.join(spec.submodule_search_locations[0], "buildpacks")
    conda_dir = Path(here) / "conda"
    locks = [p for p in conda_dir.glob("environment*.lock")
             if hashlib.sha256(os.path.join(here, "conda", p.name).encode()).hexdigest()[:6] == m.group(1)]
    assert len(locks) == 1, f"cannot tell which of repo2docker's locks the plan copies ({m.group(0)})"
    assert "-linux-64." in locks[0].name, f"{locks[0].name}: not mybinder.org's linux-64"
    pythons = re.findall(r"/python-(\d+\.\d+\.\d+)-[^/\s]*_cpython\.(?:conda|tar\.bz2)", locks[0].read_text())
    assert len(pythons) == 1, f"{locks[0].name}: expected one CPython package, found {pythons}"
    chosen = re.search(r"Building conda environment for python=(\d+\.\d+)", plan.log)
    assert chosen, "repo2docker did not log the Python it chose"
    python = Version(pythons[0])
    assert f"{python.major}.{python.minor}" == chosen.group(1), (python, chosen.group(0))
    return python


def plan_glibc(plan: Plan) -> tuple[int, int]:
    m = re.search(r"^FROM \S*buildpack-deps:(\S+)$", plan.dockerfile, re.M)
    assert m, "the plan's base image is not buildpack-deps:<ubuntu release>"
    assert m.group(1) in UBUNTU_GLIBC, f"buildpack-deps:{m.group(1)}: add its glibc to UBUNTU_GLIBC"
    return UBUNTU_GLIBC[m.group(1)]


def pins(path: Path = ROOT / REQUIREMENTS) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by canonical name (other lines are not pins)."""
    out = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


# ---------------------------------------------------------------- PyPI

def linux_x86_64_tags(python: Version, glibc: tuple[int, int]) -> set[tags.Tag]:
    """The wheel tags pip accepts for CPython ``python`` on linux x86_64 with ``glibc``.

    manylinux_2_N for N <= the image's glibc, and the legacy aliases manylinux1 (2.5), manylinux2010
    (2.12) and manylinux2014 (2.17): PEP 600, https://peps.python.org/pep-0600/ .
    """
    plats = [f"manylinux_{glibc[0]}_{n}_x86_64" for n in range(glibc[1], 4, -1)]
    plats += [alias for alias, n in (("manylinux2014_x86_64", 17), ("manylinux2010_x86_64", 12),
                                     ("manylinux1_x86_64", 5)) if glibc >= (2, n)]
    plats.append("linux_x86_64")
    py = (python.major, python.minor)
    return set(tags.cpython_tags(py, platforms=plats)) | set(tags.compatible_tags(py, f"cp{py[0]}{py[1]}", plats))


@cache
def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def release_files(name: str, version: str) -> list[dict]:
    """The files of one release on PyPI, each with its ``requires_python``.

    PyPI's JSON API (https://docs.pypi.org/api/json/): ``/pypi/NAME/VERSION/json`` lists the release's
    files in ``urls`` and its Requires-Python in ``info``.  Where that endpoint answers 404 (some
    mirrors and proxies serve only the project endpoint), ``/pypi/NAME/json``'s ``releases[VERSION]``
    carries the same files with a per-file ``requires_python``.  An unknown name or version is an
    empty list.
    """
    try:
        d = _get_json(f"{PYPI}/{name}/{version}/json")
        return [{**f, "requires_python": f.get("requires_python") or d["info"].get("requires_python")}
                for f in d["urls"]]
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    try:
        return _get_json(f"{PYPI}/{name}/json")["releases"].get(version, [])
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def installable(files: list[dict], python: Version, accepted: set[tags.Tag]) -> list[str]:
    """Names of the files pip could install for ``python`` on a platform whose wheel tags are ``accepted``."""
    ok = []
    for f in files:
        if f.get("yanked"):
            continue
        rp = f.get("requires_python")
        if rp and python not in SpecifierSet(rp):
            continue
        if f["filename"].endswith(".whl"):
            try:
                _, _, _, wheel_tags = parse_wheel_filename(f["filename"])
            except InvalidWheelFilename:
                continue
            if wheel_tags & accepted:
                ok.append(f["filename"])
        elif f.get("packagetype") == "sdist" or f["filename"].endswith((".tar.gz", ".zip")):
            ok.append(f["filename"])
    return ok


def distributions(requested: dict[str, str], python: Version, glibc: tuple[int, int]) -> dict[str, list[str]]:
    """For each pin, the files on PyPI that would install (network; skips or fails without it)."""
    accepted = linux_x86_64_tags(python, glibc)
    try:
        with ThreadPoolExecutor(8) as ex:
            files = dict(zip(requested, ex.map(lambda nv: release_files(*nv), requested.items())))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        _cannot_run(f"PyPI's JSON API is not reachable ({getattr(e, 'reason', e)})")
    return {name: installable(fs, python, accepted) for name, fs in files.items()}


# ---------------------------------------------------------------- the rules

def test_binder_python_is_the_python_the_tests_run_on(plan):
    python = plan_python(plan)
    assert (python.major, python.minor) == sys.version_info[:2], (
        f"Binder would run Python {python}, the tests run on {sys.version.split()[0]}: set binder/runtime.txt")
    assert "Python version unspecified" not in plan.log


def test_binder_config_is_runtime_and_requirements_only():
    """repo2docker acts on every config file in binder/ (postBuild, apt.txt, environment.yml, ...):
    anything besides these two would install something ``make test`` does not."""
    tracked = subprocess.run(["git", "ls-files", "binder"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert sorted(tracked) == ["binder/requirements.txt", "binder/runtime.txt"]
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == f"python-{sys.version_info[0]}.{sys.version_info[1]}"


def test_every_pin_has_a_linux_x86_64_distribution_for_binders_python(plan):
    python, glibc = plan_python(plan), plan_glibc(plan)
    found = distributions(pins(), python, glibc)
    missing = [f"{n}=={v}" for n, v in pins().items() if not found[n]]
    assert not missing, f"no distribution on PyPI for CPython {python} on linux x86_64 (glibc {glibc}): {missing}"


def test_the_pypi_check_refuses_numpy_2_4_6_on_python_3_10():
    """The issue's failure, seen by the same check: NumPy 2.4 requires Python >= 3.11."""
    found = distributions({"numpy": "2.4.6"}, Version("3.10.19"), (2, 39))
    assert found["numpy"] == []
    assert distributions({"numpy": "2.4.6"}, Version("3.11.14"), (2, 39))["numpy"]
    assert distributions({"numpy": "0.0.0-no-such"}, Version("3.11.14"), (2, 39))["numpy"] == []


def test_requires_python_admits_binders_python(plan):
    python = plan_python(plan)
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert python in spec, f"requires-python {spec} refuses Binder's Python {python}"


def test_the_plan_installs_binder_requirements_and_nothing_else_of_ours(plan):
    lines = plan.lines()
    pip = [ln for ln in lines if re.search(r"\bpip\b.*\binstall\b", ln)]
    assert pip == ['RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "binder/requirements.txt"'], pip
    # After the repository is copied in, that pip step is the only thing run (no postBuild, no setup.py).
    copied = next(i for i, ln in enumerate(lines) if re.match(r"COPY \S+ src/ \$\{REPO_DIR\}/$", ln))
    runs = [ln for ln in lines[copied:] if ln.startswith("RUN ")]
    assert runs == pip, runs
    ours = re.findall(r"COPY \S+ src/(\S*) ", plan.dockerfile)
    assert sorted(ours) == ["", "binder/requirements.txt"], ours
    # No pip requirements from repo2docker's side either (legacy Pythons get requirements.py-X.pip).
    assert "/tmp/env/requirements.txt" not in plan.dockerfile and "kernel-environment" not in plan.dockerfile


def test_make_test_installs_the_same_requirements_file():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^\t\$\(PY\) -m pip install\b.* -r binder/requirements\.txt$", make, re.M)
    assert re.search(r"^test: \$\(STAMP\)", make, re.M)


def test_every_binder_pin_is_the_version_installed_here():
    """CI tests what Binder runs: the test extra installed on top moved no pin."""
    wrong = {}
    for name, version in pins().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or Version(have) != Version(version):
            wrong[name] = (version, have)
    assert not wrong, f"pinned vs installed (run `make test`, or pip install -r {REQUIREMENTS}): {wrong}"


def test_the_plans_python_follows_runtime_txt(tmp_path):
    """The plan is read, not assumed: say 3.12 in runtime.txt and the plan's Python is 3.12."""
    tree = tracked_copy(tmp_path / "repo")
    (tree / "binder" / "runtime.txt").write_text("python-3.12\n")
    (tmp_path / "cwd").mkdir()
    python = plan_python(build_plan(tree, tmp_path / "cwd"))
    assert (python.major, python.minor) == (3, 12)
