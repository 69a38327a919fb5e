"""A scenario run N times (issue 14): the repeat recording, how ``lab report`` counts it, the CLI's
``--repeat`` refusals, and the series' clean-up.  No root needed: the runs here are synthetic (the
live ones are in test_live.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import kalab
from kalab.compare import (allowed_outcomes, compare_recorded, compare_repeat, counts_text, repeat_summary_lines,
                           report_table, worst_window)
from kalab.errors import ScenarioError
from kalab.lab import LabStopped
from kalab.lab.repeat import MAX_REPEAT, check_repeat, first_times, run_repeat, write_atomically
from kalab.lab.matrix import MATRIX, REPEAT

REPO = Path(__file__).resolve().parents[2]
KNIFE = MATRIX["nat-knife-edge-keepalive-20-1-3"]


# -- synthetic model and runs: the knife-edge, NAT 21 s, first probe due at 20 s (<= 22.048 s) --------

def _side(fate="alive", at=None, by=None, sees=None):
    return {"fate": fate, "at_s": at, "latest_s": at, "by": by, "sees": sees, "exit_code": None}


def model(sensitive=True, worst=True, nominal=None, events=None):
    """A prediction as the model gives it once it carries the worst corner (issue 14, item 1)."""
    client = dict(nominal or _side())
    server = _side("half_open" if client["fate"] == "died" else "alive")
    if worst:
        client["worst"] = {"fate": "died", "at_s": 22.048, "latest_s": 22.048, "by": "middlebox.reset",
                           "sees": "ECONNRESET"}
        server["worst"] = {"fate": "half_open", "at_s": None, "latest_s": None, "by": None, "sees": None}
    client["timing_sensitive"] = server["timing_sensitive"] = sensitive
    return {"client": client, "server": server, "until_s": 26.0, "warnings": [],
            "events": [{"t_s": 0.0, "side": "client", "layer": "tcp", "kind": "established", "latest_s": 0.0},
                       {"t_s": 20.0, "side": "client", "layer": "tcp", "kind": "keepalive_probe", "latest_s": 22.048},
                       *(events if events is not None else
                         [{"t_s": 20.0, "side": "client", "layer": "tcp", "kind": "keepalive_ack", "latest_s": 22.048}])]}


def measured_run(probe_s: float, died: bool | None = None, by="middlebox.reset", at=None):
    """One measured run: the first probe at ``probe_s``; after 21 s the NAT answers it with RST."""
    died = probe_s > 21.0 if died is None else died
    events = [{"t_s": probe_s, "side": "client", "layer": "tcp", "kind": "keepalive_probe", "detail": "wire",
               "latest_s": probe_s}]
    if died:
        t = probe_s + 0.0002 if at is None else at
        client, server = _side("died", round(t, 6), by, "ECONNRESET"), _side("half_open")
        if by == "middlebox.reset":
            events.append({"t_s": probe_s + 0.0001, "side": "path", "layer": "path", "kind": "middlebox_rst",
                           "detail": "wire", "latest_s": probe_s + 0.0001})
    else:
        client, server = _side(), _side()
        events.append({"t_s": probe_s + 0.0001, "side": "client", "layer": "tcp", "kind": "keepalive_ack",
                       "detail": "wire", "latest_s": probe_s + 0.0001})
    return {"name": KNIFE["name"], "client": client, "server": server, "events": events, "until_s": 26.0,
            "warnings": [], "measured": True, "watched": {"time_wait": []}, "scenario": copy.deepcopy(KNIFE),
            "meta": {"kernel": "6.18", "hz": 250, "openssh": None, "date": "2026-12-02T08:00:00+00:00"}}


def recording(runs):
    return {"name": KNIFE["name"], "measured": True, "repeat": len(runs), "runs": runs, "model": model(),
            "scenario": copy.deepcopy(KNIFE), "meta": runs[0]["meta"]}


def judge(runs, **kw):
    return compare_repeat(recording(runs), predict=lambda sc: model(**kw))


# -- counting ---------------------------------------------------------------------------------------

def test_all_runs_nominal_agree_and_are_counted():
    cr = judge([measured_run(t) for t in (20.1, 20.5, 20.9)])
    assert cr["ok"] and cr["n"] == 3
    assert cr["counts"]["client"] == {"alive": 3}
    assert all(r["sides"]["client"]["corner"] == "nominal" and r["wire_judged"] for r in cr["runs"])


def test_nominal_and_worst_outcomes_mixed_agree_when_the_side_is_timing_sensitive():
    runs = [measured_run(t) for t in (20.694, 20.016, 21.264, 20.411, 21.9)]
    cr = judge(runs)
    assert cr["ok"], "\n".join(repeat_summary_lines(cr))
    assert cr["counts"]["client"] == {"alive": 3, "died by middlebox.reset": 2}
    assert cr["counts"]["server"] == {"alive": 3, "half_open": 2}
    assert counts_text(cr["counts"]["client"], cr["n"]) == "alive 3/5, died by middlebox.reset 2/5"
    assert [r["sides"]["client"]["corner"] for r in cr["runs"]] == ["nominal", "nominal", "worst", "nominal", "worst"]
    assert not cr["runs"][2]["wire_judged"]   # the flipped run followed another schedule than the nominal timeline


def test_the_same_runs_disagree_when_the_model_does_not_say_timing_decides():
    runs = [measured_run(t) for t in (20.694, 21.264)]
    assert not judge(runs, sensitive=False)["ok"]
    assert not judge(runs, worst=False)["ok"]     # a model without the worst corner allows the nominal outcome only
    assert judge(runs[:1], worst=False)["ok"]


def test_an_outcome_neither_corner_allows_disagrees():
    cr = judge([measured_run(20.5), measured_run(21.5, by="tcp.keepalive")])
    assert not cr["ok"]
    assert cr["runs"][1]["sides"]["client"]["corner"] is None
    assert "(not allowed)" in repeat_summary_lines(cr)[1]


def test_a_flipped_outcome_outside_its_window_disagrees():
    assert judge([measured_run(21.5, at=22.06)])["ok"]            # 12 ms late: inside the 20 ms tolerance
    assert not judge([measured_run(21.5, at=22.2)])["ok"]         # after the worst corner's latest time
    assert not judge([measured_run(21.5, at=19.9)])["ok"]         # before the racing probe was due


def test_a_nominal_death_outside_its_window_disagrees_as_for_a_single_run():
    nominal = _side("died", 21.0, "middlebox.reset", "ECONNRESET")
    nominal["latest_s"] = 22.048
    rst = {"t_s": 21.0, "side": "path", "layer": "path", "kind": "middlebox_rst", "latest_s": 22.048}
    ok = judge([measured_run(21.5)], nominal=nominal, worst=False, events=[rst])
    assert ok["ok"], "\n".join(repeat_summary_lines(ok))
    late = judge([measured_run(21.5, at=22.5)], nominal=nominal, worst=False, events=[rst])
    assert not late["ok"]


def test_a_wire_segment_outside_the_window_fails_a_nominal_run():
    run = measured_run(20.5)
    run["events"][0]["t_s"] = run["events"][0]["latest_s"] = 22.5   # the probe after its latest time
    assert not judge([run])["ok"]


def test_the_worst_window_is_bracketed_by_the_corners():
    """[min(nominal at_s, worst at_s), worst latest_s]; with no nominal death, from the racing event's
    nominal time (the probe due at 20.000 s, as late as 22.048 s)."""
    assert worst_window(model(), "client") == (20.0, 22.048)
    died = model(nominal=_side("died", 5.0, "tcp.keepalive"))
    died["client"]["worst"].update(at_s=8.0, latest_s=9.0)
    assert worst_window(died, "client") == (5.0, 9.0)
    assert worst_window(model(), "server") is None      # half_open: no time
    raced = model()
    raced["races"] = [{"side": "client", "event": 1, "timer": "client keepalive probe 1", "t_s": 19.5,
                       "latest_s": 22.048, "deadline": "middlebox 0 (nat) forgets the flow", "deadline_s": 21.0,
                       "deadline_latest_s": 21.0}]
    assert worst_window(raced, "client") == (19.5, 22.048)   # the race the model names, where it names one
    assert [o["corner"] for o in allowed_outcomes(model(), "client")] == ["nominal", "worst"]
    assert [o["corner"] for o in allowed_outcomes(model(sensitive=False), "client")] == ["nominal"]


def test_report_prints_the_counts_and_the_models_window():
    rec = recording([measured_run(t) for t in (20.694, 20.016, 21.264, 20.411)])
    table = report_table({"knife": rec}, predict=lambda sc: model())
    row = next(line for line in table.splitlines() if line.startswith("| knife | client"))
    assert "alive 3/4, died by middlebox.reset 1/4" in row
    assert "died by middlebox.reset in [20.000, 22.048] s" in row
    assert "| 20.000 .. 22.048; 20.016 .. 21.264 |" in row and row.endswith("| 4/4 |")


def test_compare_recorded_takes_single_runs_and_series():
    single = json.loads((REPO / "data" / "measured" / "keepalive-3-1-3.json").read_text())
    assert compare_recorded(single)["ok"] == kalab.compare(kalab.simulate(single["scenario"]), single)["ok"]
    assert "runs" in compare_recorded(recording([measured_run(20.5)]))


# -- the record ------------------------------------------------------------------------------------

class FakeLab:
    """Stands in for kalab.lab.run: one measured run per call, probes at the given times; notes
    whether a run started while another was still up (each real run builds and removes its own
    topology)."""

    def __init__(self, probes, fail_at=None):
        self.probes, self.fail_at, self.up, self.calls, self.overlap = list(probes), fail_at, False, [], False

    def __call__(self, scenario, *, allow_long=False, stop=None):
        self.overlap |= self.up
        self.up = True
        try:
            i = len(self.calls)
            self.calls.append(scenario)
            scenario["client"]["socket"]["TCP_KEEPIDLE"] = -1     # a run's changes must not reach the next
            if i == self.fail_at:
                raise RuntimeError("run failed")
            return measured_run(self.probes[i])
        finally:
            self.up = False


def test_a_series_records_every_run_with_the_model_and_the_scenario():
    lab = FakeLab([20.7, 21.3, 20.2])
    seen = []
    rec = run_repeat(KNIFE, 3, run=lab, on_run=lambda i, m: seen.append((i, lab.up)))
    assert set(rec) >= {"runs", "model", "scenario", "meta", "repeat", "measured", "name"}
    assert rec["repeat"] == len(rec["runs"]) == 3 and rec["measured"] is True
    assert rec["scenario"] == KNIFE and rec["model"] == kalab.simulate(KNIFE).to_dict()
    assert {"kernel", "hz", "date", "date_last_run"} <= set(rec["meta"])
    assert [first_times(m)["client"] for m in rec["runs"]] == [20.7, 21.3, 20.2]
    assert seen == [(0, False), (1, False), (2, False)] and not lab.overlap   # each ended before the next
    assert all(c["client"]["socket"]["TCP_KEEPIDLE"] == -1 for c in lab.calls)
    assert KNIFE["client"]["socket"]["TCP_KEEPIDLE"] == 20
    json.dumps(rec)


def test_a_stop_mid_series_starts_no_further_run():
    stop = threading.Event()
    lab = FakeLab([20.1] * 5)
    with pytest.raises(LabStopped, match="after 2 of 5"):
        run_repeat(KNIFE, 5, run=lab, stop=stop, on_run=lambda i, m: i == 1 and stop.set())
    assert len(lab.calls) == 2


def test_a_failed_run_ends_the_series():
    lab = FakeLab([20.1] * 4, fail_at=1)
    with pytest.raises(RuntimeError, match="run failed"):
        run_repeat(KNIFE, 4, run=lab)
    assert len(lab.calls) == 2 and not lab.up


def test_a_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "rec.json"
    out.write_text("old")
    import os

    def boom(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(out, "new")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["rec.json"]
    monkeypatch.undo()
    write_atomically(out, "new")
    assert out.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["rec.json"]
    write_atomically(tmp_path / "fresh.json", "{}")
    assert (tmp_path / "fresh.json").stat().st_mode & 0o777 == 0o644   # readable, as data/measured/ is


def test_the_matrix_records_its_knife_edges_as_series_not_live():
    from kalab.lab.matrix import LIVE, LIVE_REPEAT
    assert set(REPEAT) <= set(MATRIX) and all(n >= 10 for n in REPEAT.values())
    assert not set(REPEAT) & LIVE
    assert LIVE_REPEAT[0] in MATRIX and LIVE_REPEAT[0] not in REPEAT and 2 <= LIVE_REPEAT[1] <= 3


# -- --repeat refusals -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1, 7, MAX_REPEAT, "3", " 10 "])
def test_repeat_counts_in_range_are_accepted(value):
    assert check_repeat(value) == int(value)


@pytest.mark.parametrize("value", [0, -1, MAX_REPEAT + 1, "0", "101", "x", "2.5", "", "1e3", "-3", True, 3.0, None,
                                   "9" * 5000, "٣"])
def test_bad_repeat_counts_are_refused_naming_the_option(value):
    with pytest.raises(ScenarioError) as e:
        check_repeat(value)
    text = str(e.value)
    assert text.startswith("--repeat") and "1 .. 100" in text and "\n" not in text and len(text) < 300


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(), st.none()))
def test_fuzz_repeat_is_a_count_in_range_or_one_line_naming_the_option(value):
    try:
        n = check_repeat(value)
    except ScenarioError as e:
        assert str(e).startswith("--repeat") and "\n" not in str(e)
    else:
        assert type(n) is int and 1 <= n <= MAX_REPEAT


@pytest.mark.parametrize("value", ["0", "101", "many", "-2"])
def test_cli_refuses_a_bad_repeat_with_one_line_and_exit_2(tmp_path, value):
    """Before anything runs, before the file is read, without root."""
    r = subprocess.run([sys.executable, "-m", "kalab", "lab", "run", str(tmp_path / "absent.json"), f"--repeat={value}",
                        "--out", str(tmp_path / "out.json")], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--repeat" in lines[0] and "1 .. 100" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.json").exists()


def test_cli_repeat_without_a_value_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kalab", "lab", "run", "x.json", "--repeat"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "--repeat" in r.stderr and "Traceback" not in r.stderr


# -- the CLI's series, with the lab faked (kalab.cli._lab: no signal handlers installed here) ------

@pytest.fixture
def fake_lab(monkeypatch):
    from kalab import lab as lab_pkg
    from kalab.lab import runner
    fake = FakeLab([20.7, 21.3, 20.2, 20.5])
    monkeypatch.setattr(lab_pkg, "run", fake)
    monkeypatch.setattr(runner, "run", fake)
    return fake


def _cli(argv, stop=None):
    from kalab.cli import _lab, build_parser
    return _lab(build_parser().parse_args(argv), stop)


def test_cli_series_prints_each_run_and_writes_the_recording(fake_lab, tmp_path, capsys):
    sc, out = tmp_path / "s.json", tmp_path / "rec.json"
    sc.write_text(json.dumps(KNIFE))
    assert _cli(["lab", "run", str(sc), "--repeat", "3", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run 1/3: client alive; server alive; first client keepalive probe 20.700 s"
    assert lines[1].startswith("run 2/3: client died by middlebox.reset at 21.300 s; server half_open")
    assert any(line.startswith("XX client: measured alive 2/3, died by middlebox.reset 1/3") or
               line.startswith("OK client: measured alive 2/3, died by middlebox.reset 1/3") for line in lines)
    rec = json.loads(out.read_text())
    assert rec["repeat"] == len(rec["runs"]) == 3 and rec["scenario"] == KNIFE


def test_cli_repeat_1_records_one_run_as_before(fake_lab, tmp_path, capsys):
    sc, out = tmp_path / "s.json", tmp_path / "one.json"
    sc.write_text(json.dumps(KNIFE))
    assert _cli(["lab", "run", str(sc), "--repeat", "1", "--out", str(out)]) == 0
    one = json.loads(out.read_text())
    assert "runs" not in one and one["client"]["fate"] == "alive" and one["measured"] is True
    assert len(fake_lab.calls) == 1


def test_cli_series_stopped_half_way_writes_nothing(fake_lab, tmp_path, capsys):
    sc, out = tmp_path / "s.json", tmp_path / "rec.json"
    sc.write_text(json.dumps(KNIFE))
    stop = threading.Event()
    real = FakeLab.__call__

    def stop_after_first(self, scenario, **kw):
        m = real(self, scenario, **kw)
        stop.set()
        return m
    fake_lab.__class__ = type("StoppingLab", (FakeLab,), {"__call__": stop_after_first})
    assert _cli(["lab", "run", str(sc), "--repeat", "4", "--out", str(out)], stop) == 2
    assert "stopped on request after 1 of 4 runs" in capsys.readouterr().err
    assert len(fake_lab.calls) == 1 and list(tmp_path.iterdir()) == [sc]


def test_cli_one_run_of_a_knife_edge_that_flipped_says_timing_allows_it(fake_lab, tmp_path, capsys, monkeypatch):
    """A single run that took the worst corner's outcome: XX against the nominal prediction, then a
    line saying the model allows it when the timers fire late (and naming the race)."""
    import sys as _sys
    from kalab import cli

    def predict(sc):
        m = model()
        m["client"]["timing_detail"] = m["server"]["timing_detail"] = \
            "client keepalive probe 1 fires in [20.000, 22.048] s; middlebox 0 (nat) forgets the flow at 21.000 s"
        return m
    monkeypatch.setattr(cli, "simulate", predict)
    monkeypatch.setattr(_sys.modules["kalab.simulate"], "simulate", predict)
    fake_lab.probes = [21.3]
    sc = tmp_path / "s.json"
    sc.write_text(json.dumps(KNIFE))
    assert _cli(["lab", "run", str(sc)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("XX client predicted alive/None")
    assert out[-1] == ("timing: the model allows this outcome when the kernel's timers fire late -- client keepalive "
                       "probe 1 fires in [20.000, 22.048] s; middlebox 0 (nat) forgets the flow at 21.000 s; run it N "
                       "times with --repeat N")
