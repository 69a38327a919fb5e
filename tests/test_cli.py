"""python -m kalab simulate: every example runs; bad input exits 2 without a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kalab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_there_are_at_least_ten_examples_with_the_article_cases():
    names = {p.stem for p in EXAMPLES}
    assert len(names) >= 10
    assert {"linux-defaults-2h11m15s", "ssh-serveralive-15-cable-unplugged", "laptop-asleep-over-lunch",
            "fresh-data-every-15-minutes"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_through_the_cli(path):
    out = cli("simulate", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Scenario:") and "Verdict:" in out.stdout and "Timeline:" in out.stdout
    js = cli("simulate", str(path), "--json")
    assert js.returncode == 0
    assert set(json.loads(js.stdout)) >= {"client", "server", "events"}


FAULTS = {"link_down": {}, "host_crash": {"side": "server"}, "host_reboot": {"side": "server", "down_s": 20},
          "process_kill": {"side": "server"}, "sleep": {"side": "client", "for_s": 600}}


@pytest.mark.parametrize("kind", FAULTS)
def test_the_verdict_needs_only_the_result(kind):
    """``verdict(result)`` (the notebooks) says what the CLI's ``verdict(result, scenario)`` says: the
    earliest fault of every kind is found on the result's timeline."""
    import kalab
    from kalab.explain import first_fault, verdict
    from kalab.scenario import FAULT_KINDS
    assert set(FAULTS) == set(FAULT_KINDS)
    sc = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}},
          "server": {"app": {"kind": "sshd", "options": {"ClientAliveInterval": 15}}},
          "faults": [{"kind": kind, "at_s": 10, **FAULTS[kind]}], "until_s": 3600}
    r = kalab.simulate(sc)
    assert first_fault(r) == first_fault(r, sc) == (10, kind)
    assert f"after the {kind.replace('_', ' ')}" in verdict(r) and verdict(r) == verdict(r, sc)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_examples_verdict_from_its_result_alone_is_the_clis(path):
    import kalab
    from kalab.explain import verdict
    sc = kalab.load_file(path)
    r = kalab.simulate(sc)
    assert verdict(r) == verdict(r, sc)


def test_article_headline_numbers_through_the_cli():
    d = json.loads(cli("simulate", str(ROOT / "examples/linux-defaults-2h11m15s.json"), "--json").stdout)
    assert d["client"]["at_s"] == 7875.0
    d = json.loads(cli("simulate", str(ROOT / "examples/ssh-serveralive-15-cable-unplugged.json"), "--json").stdout)
    assert d["client"]["at_s"] == 60.0 and d["client"]["exit_code"] == 255


@pytest.mark.parametrize("content,fragment", [
    ('{"client": {"socket": {"TCP_KEEPIDEL": 5}}, "server": {}}', "did you mean 'TCP_KEEPIDLE'"),
    ('{"client": {}, "server": {}', "malformed JSON at line 1"),
    ('{"client": {"socket": {"TCP_KEEPCNT": 0}}, "server": {}}', "1..127"),
    ('[1, 2]', "a scenario is a JSON object"),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path, content, fragment):
    f = tmp_path / "bad.json"
    f.write_text(content)
    out = cli("simulate", str(f))
    assert out.returncode == 2
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_missing_file_and_bad_usage_exit_2(tmp_path):
    assert cli("simulate", str(tmp_path / "nope.json")).returncode == 2
    out = cli("frobnicate")
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [("simulate", "examples/linux-defaults-2h11m15s.json"), ("lab", "report")],
                         ids=["simulate", "lab report"])
def test_a_reader_that_goes_away_is_not_an_error(args):
    """`kalab ... | head -1`: a closed pipe ends the CLI quietly (no "Broken pipe" error, exit 0).
    The pipe's read end is closed before the CLI writes, so every write meets EPIPE (no race)."""
    import os
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "kalab", *args],
                           cwd=ROOT, stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == "", p.stderr
