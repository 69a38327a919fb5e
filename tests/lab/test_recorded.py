"""Every recorded measurement in data/measured/ still agrees with the current model.

Rule (issue 3): same fate, same mechanism, same error, and the measured death inside
[at_s - 20 ms, latest_s + 20 ms]; and every segment the capture shows (keepalive probes,
retransmissions, SYNs, FINs, RSTs, data) paired with the model's, inside its window.
A series (issue 14, ``REPEAT`` in the matrix): every run's outcome is one the model allows, the
nominal or, where timing decides, the worst corner's, inside that outcome's window
(kalab.compare.compare_repeat).
"""

import json
from pathlib import Path

import pytest

import kalab
from kalab.compare import compare_repeat, first_wire_times, is_repeat, repeat_summary_lines, summary_lines
from kalab.lab.matrix import MATRIX, REPEAT

DATA = Path(__file__).resolve().parents[2] / "data" / "measured"
FILES = sorted(DATA.glob("*.json"))


def test_at_least_twenty_recorded_scenarios_cover_the_matrix():
    assert len(FILES) >= 20
    assert {f.stem for f in FILES} == set(MATRIX)


def test_recordings_are_small_json_with_metadata():
    for f in FILES:
        assert f.stat().st_size < 100_000
        m = json.loads(f.read_text())
        assert m["measured"] is True
        assert {"kernel", "hz", "openssh", "date"} <= set(m["meta"])
        assert is_repeat(m) == (f.stem in REPEAT)
        for run in m.get("runs", ()):
            assert run["measured"] is True and {"kernel", "hz", "date"} <= set(run["meta"])
            assert run["scenario"]["name"] == m["scenario"]["name"]
    assert not list(DATA.glob("*.pcap"))


def test_series_have_their_runs():
    for name, n in REPEAT.items():
        m = json.loads((DATA / f"{name}.json").read_text())
        assert m["repeat"] == len(m["runs"]) >= n
        assert m["model"]["name"] == m["scenario"]["name"] and {"client", "server", "events"} <= set(m["model"])


def _series(name):
    m = json.loads((DATA / f"{name}.json").read_text())
    cr = compare_repeat(m)
    probes = [first_wire_times(r)["client"] for r in cr["runs"]]
    return m, cr, probes


def test_the_knife_edge_flips_on_the_real_kernel():
    """Keepalive 20/1/3 behind a NAT that forgets after 21 s: both fates were measured, and the
    probe time decides -- before 21 s the client lives, after it the NAT's RST kills it."""
    m, cr, probes = _series("nat-knife-edge-keepalive-20-1-3")
    assert set(cr["counts"]["client"]) == {"alive", "died by middlebox.reset"}, cr["counts"]
    assert all(20.0 - 0.02 <= t <= 22.048 + 0.02 for t in probes), probes    # the timer wheel's window
    # The model: alive on time; reset by the NAT when the probe fires late -- every run is one of the two.
    assert cr["model"]["client"]["timing_sensitive"] and cr["model"]["client"]["worst"]["by"] == "middlebox.reset"
    corners = [r["sides"]["client"]["corner"] for r in cr["runs"]]
    assert sorted(set(corners)) == ["nominal", "worst"] and cr["ok"], "\n".join(repeat_summary_lines(cr))
    for r, t in zip(cr["runs"], probes):
        if abs(t - 21.0) > 0.010:   # (the NAT's clock starts at the handshake's last segment, just before t = 0)
            assert (r["sides"]["client"]["label"] == "alive") == (t < 21.0), (t, r["sides"]["client"])


def test_with_idle_18_s_the_probe_always_comes_first():
    m, cr, probes = _series("nat-kept-alive-keepalive-18-1-3")
    assert cr["counts"]["client"] == {"alive": cr["n"]} and cr["counts"]["server"] == {"alive": cr["n"]}
    assert all(18.0 - 0.02 <= t <= 20.048 + 0.02 for t in probes), probes
    assert cr["ok"], "\n".join(repeat_summary_lines(cr))
    assert not cr["model"]["client"]["timing_sensitive"]      # the latest probe, 20.048 s, beats the NAT's 21 s


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_recording_agrees_with_the_model(path):
    m = json.loads(path.read_text())
    assert m["scenario"]["name"] == MATRIX[path.stem]["name"], "recorded from the current matrix"
    if is_repeat(m):
        cr = compare_repeat(m, tolerance_s=0.020)
        assert cr["ok"], "\n".join(repeat_summary_lines(cr))
        return
    c = kalab.compare(kalab.simulate(m["scenario"]), m, tolerance_s=0.020)
    report = "\n".join(summary_lines(c))
    for side, s in c["sides"].items():
        assert s["same_fate"], report
        assert s["same_by"], report
        assert s["same_sees"], report
        assert s["inside_window"] in (True, None), report
    assert not [w for w in c["wire"] if w["inside"] is False], report


def test_docs_lab_table_is_the_current_report():
    """docs/lab.md shows exactly what `python -m kalab lab report` prints now."""
    from kalab.compare import report_table
    doc = (Path(__file__).resolve().parents[2] / "docs" / "lab.md").read_text()
    assert report_table(DATA) in doc
