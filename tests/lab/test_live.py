"""The live matrix on this machine's kernel and OpenSSH builds (root; runs in CI): every scenario
without OpenSSH, and one short ssh case per OpenSSH version (``kalab.lab.matrix.LIVE``); the other
ssh/sshd scenarios and the series (``REPEAT``) are recorded in data/measured/ and replayed by
test_recorded.py.  One short series (``LIVE_REPEAT``) runs live through ``python -m kalab lab run
--repeat``."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import kalab
from kalab import lab
from kalab.compare import summary_lines
from kalab.lab.host import WANTED_OPENSSH
from kalab.lab.matrix import LIVE, LIVE_REPEAT, LONG, MATRIX

_results: dict = {}


@pytest.fixture(scope="session")
def live(lab_ready):
    """Run every live scenario once, in parallel (unique namespaces per run)."""
    if not _results:
        def one(name):
            try:
                return name, lab.run(MATRIX[name], allow_long=name in LONG)
            except Exception as e:  # reported per scenario below
                return name, e
        with ThreadPoolExecutor(8) as ex:
            _results.update(ex.map(one, sorted(LIVE)))
    return _results


@pytest.mark.parametrize("name", sorted(LIVE))
def test_live_measurement_agrees_with_the_model(live, name):
    m = live[name]
    if isinstance(m, Exception):
        raise m
    c = kalab.compare(kalab.simulate(m["scenario"]), m, tolerance_s=0.020)
    report = "\n".join(summary_lines(c))
    for s in c["sides"].values():
        assert s["same_fate"] and s["same_by"] and s["same_sees"], report
        assert s["inside_window"] in (True, None), report
    assert not [w for w in c["wire"] if w["inside"] is False], report


def test_one_live_ssh_case_per_openssh_version_and_each_ran_its_build(live):
    """Each OpenSSH version the lab has is measured live, and the result names that very build."""
    by_version = {}
    for name in LIVE:
        app = MATRIX[name]["server"].get("app") or {}
        if app.get("kind") == "sshd":
            by_version.setdefault(app["version"], []).append(name)
    assert sorted(by_version) == sorted(WANTED_OPENSSH) and all(len(v) >= 1 for v in by_version.values())
    for version, names in by_version.items():
        for name in names:
            m = live[name]
            if isinstance(m, Exception):
                raise m
            for side in ("client", "server"):
                assert m["meta"]["openssh"][side].startswith(f"OpenSSH_{version}p"), m["meta"]
                assert m["scenario"][side]["app"]["version"] == version


def test_a_version_the_lab_has_no_build_of_is_refused_with_those_it_has(lab_ready):
    sc = dict(MATRIX["ssh-serveralive-2-0"])
    sc["server"] = {"app": {"kind": "sshd", "version": "9.6"}}
    with pytest.raises(lab.LabError, match=r"no OpenSSH 9\.6: it has 9\.2, 10\.0"):
        lab.run(sc)


def test_runs_leave_no_namespace_behind(live):
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert f"kl{os.getpid()}x" not in names


def test_sleep_is_refused_with_the_reason(lab_ready):
    sc = {"client": {}, "server": {}, "faults": [{"kind": "sleep", "side": "client", "at_s": 1, "for_s": 5}]}
    with pytest.raises(lab.LabError, match="cannot be shown on one kernel"):
        lab.run(sc)


def test_long_runs_need_to_be_asked_for(lab_ready):
    sc = {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}, "faults": [{"kind": "link_down", "at_s": 1}],
          "until_s": 9000}
    with pytest.raises(lab.LabError, match="allow_long"):
        lab.run(sc)



def test_the_cli_records_a_short_series_one_topology_at_a_time(lab_ready, tmp_path):
    """``python -m kalab lab run S.json --repeat N --out F`` (``LIVE_REPEAT``): the repeat recording,
    every run agreeing with the model; each run's namespaces (``kl<PID>x<n>-c/r/s``, one n per run)
    are gone before the next run's appear, and none is left at the end."""
    import json
    import sys
    import threading
    import time
    from pathlib import Path

    from kalab.compare import compare_repeat, repeat_summary_lines
    name, n = LIVE_REPEAT
    sc, out = tmp_path / "s.json", tmp_path / "rec.json"
    sc.write_text(json.dumps(MATRIX[name]))
    proc = subprocess.Popen([sys.executable, "-m", "kalab", "lab", "run", str(sc), "--repeat", str(n), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    seen, together, done = set(), [], threading.Event()

    def watch():
        while not done.is_set():
            runs = {ns.rsplit("-", 1)[0] for ns in _own_namespaces(proc.pid)}
            seen.update(runs)
            if len(runs) > 1:
                together.append(sorted(runs))
            done.wait(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stdout, stderr = proc.communicate(timeout=60 * n)
    finally:
        done.set()
        watcher.join(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0 and stderr == "", stdout + stderr
    assert len(seen) == n and not together, (seen, together)    # one topology per run, never two at once
    assert _own_namespaces(proc.pid) == []
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:n]] == [f"run {i}/{n}" for i in range(1, n + 1)], stdout
    rec = json.loads(out.read_text())
    assert rec["repeat"] == len(rec["runs"]) == n and rec["measured"] is True
    assert rec["model"] == kalab.simulate(MATRIX[name]).to_dict() and rec["scenario"] == MATRIX[name]
    assert all(m["measured"] is True and {"scenario", "meta", "events"} <= set(m) for m in rec["runs"])
    cr = compare_repeat(rec)
    assert cr["ok"], "\n".join(repeat_summary_lines(cr))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.json", "s.json"]   # no temporary file left


def _own_namespaces(pid: int) -> list[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return [line.split()[0] for line in names.splitlines() if line.startswith(f"kl{pid}x")]
