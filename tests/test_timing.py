"""Timing corners (kalab.timing): when the kernels' own lateness can flip an outcome, the result says so.

The knife-edge is the one measured in the lab (data/measured/knife-edge-*.json): a client keepalive
probe due at 20 s behind a NAT that forgets the flow after 21 s and answers with RST.
"""

import json
import subprocess
import sys

import pytest

import kalab
from kalab.explain import report, verdict
from kalab.scenario import load
from kalab.simulate import World


def knife_edge(idle_s=20, timeout_s=21, until_s=40):
    return {"name": "knife-edge", "client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": idle_s, "TCP_KEEPINTVL": 1,
                                                         "TCP_KEEPCNT": 3}}, "server": {},
            "path": {"middleboxes": [{"kind": "nat", "idle_timeout_s": timeout_s, "on_expiry": "rst"}]},
            "until_s": until_s}


def test_a_probe_whose_wheel_window_crosses_the_nat_timeout_is_timing_sensitive():
    r = kalab.simulate(knife_edge())
    c = r.client
    assert (c.fate, c.by) == ("alive", None)
    assert c.timing_sensitive
    assert (c.worst.fate, c.worst.by) == ("died", "middlebox.reset")
    # The level-3 wheel (512 ticks of 4 ms) may fire the 20 s timer 2.048 s late; the RST comes rtt/2 later.
    assert c.worst.at_s == pytest.approx(22.048 + 0.0005)
    assert c.timing_detail == ("client keepalive probe 1 fires in [20.000, 22.048] s; "
                               "middlebox 0 (nat) forgets the flow at 21.000 s")
    # The server keeps a half-open session when the client dies of it.
    assert r.server.timing_sensitive and r.server.worst.fate == "half_open"


def test_a_probe_whose_whole_window_ends_before_the_nat_timeout_is_not():
    r = kalab.simulate(knife_edge(idle_s=18))
    for side in ("client", "server"):
        s = r.side(side)
        assert s.fate == "alive" and not s.timing_sensitive and s.timing_detail is None
        assert s.worst.fate == "alive"
    assert r.races == ()


def test_the_race_marks_the_racing_event_on_the_timeline():
    r = kalab.simulate(knife_edge())
    (race,) = {x.event for x in r.races}
    e = r.events[race]
    assert (e.side, e.kind, e.t_s, e.latest_s) == ("client", "keepalive_probe", 20.0, pytest.approx(22.048))
    assert "<< races middlebox 0 (nat) forgets the flow at 21.000" in report(load(knife_edge()), r)


def test_the_verdict_says_in_plain_words_what_the_outcome_hangs_on():
    v = verdict(kalab.simulate(knife_edge()))
    assert "the client is still alive at 40 s -- but only if the client keepalive probe 1 comes before 21 s" in v
    assert "it may come as late as 22.048 s, and then the client dies at 22.049 s by middlebox.reset" in v


def test_a_race_between_the_two_hosts_timers_needs_the_mixed_corners():
    """Both sides' keepalive give up on a link that comes back at 13 s: nominally both at 13.000 s. With
    every timer late both still do; with only one side's late, the other's RST comes first."""
    sc = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 12, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 1}},
          "server": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 12, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 1}},
          "faults": [{"kind": "link_down", "at_s": 1, "for_s": 12}], "until_s": 100}
    r = kalab.simulate(sc)
    all_late = World(load(sc), at_latest=frozenset({"client", "server"})).run()
    assert (all_late.client.by, all_late.server.by) == ("tcp.keepalive", "tcp.keepalive")
    for side in ("client", "server"):
        s = r.side(side)
        assert (s.fate, s.by) == ("died", "tcp.keepalive")
        assert s.timing_sensitive and s.worst.by == "tcp.reset_received"
        assert f"(when the {side}'s timers are late" in s.timing_detail


def test_the_contract_carries_the_timing_fields_on_every_model_result():
    d = kalab.simulate(knife_edge()).to_dict()
    for side in ("client", "server"):
        assert set(d[side]["worst"]) == {"fate", "at_s", "latest_s", "by", "sees"}
        assert isinstance(d[side]["timing_sensitive"], bool)
    assert d["races"][0]["deadline_s"] == 21.0
    json.dumps(d, allow_nan=False)
    quiet = kalab.simulate(knife_edge(idle_s=18)).to_dict()
    assert "races" not in quiet and quiet["client"]["timing_detail"] is None


def test_a_corner_is_one_realisation_of_the_timing_with_nothing_left_late():
    w = World(load(knife_edge()), at_latest=frozenset({"client", "server"})).run()
    assert all(e.latest_s == e.t_s for e in w.events)
    probe = next(e for e in w.events if e.kind == "keepalive_probe")
    assert probe.t_s == pytest.approx(22.048)


def test_a_long_steady_state_is_checked_at_the_all_latest_corner_without_refusal():
    r = kalab.simulate({"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 1}}},
                        "server": {"app": {"kind": "sshd"}}, "until_s": 1e8})
    assert r.warnings == () and not r.client.timing_sensitive and r.client.worst.fate == "alive"


def test_the_cli_prints_the_race(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(knife_edge()))
    out = subprocess.run([sys.executable, "-m", "kalab", "simulate", str(f)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "timing decides the client: client keepalive probe 1 fires in [20.000, 22.048] s" in out.stdout
