"""Every recorded measurement in data/measured/ still agrees with the current model.

Rule (issue 3): same fate, same mechanism, same error, and the measured death inside
[at_s - 20 ms, latest_s + 20 ms]; and every segment the capture shows (keepalive probes,
retransmissions, SYNs, FINs, RSTs, data) paired with the model's, inside its window.
"""

import json
from pathlib import Path

import pytest

import kalab
from kalab.compare import summary_lines
from kalab.lab.matrix import MATRIX

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
    assert not list(DATA.glob("*.pcap"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_recording_agrees_with_the_model(path):
    m = json.loads(path.read_text())
    assert m["scenario"]["name"] == MATRIX[path.stem]["name"], "recorded from the current matrix"
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
