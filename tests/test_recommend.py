"""kalab explain and kalab recommend: every recommendation re-checked here by simulate().

The re-check does not reuse recommend's own checks: it draws its own failure and outage phases.
"""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalab import simulate
from kalab.cli import main
from kalab.recommend import (Goal, answer, host_retries2, probe_event, recommend, retransmission_give_up_s,
                             scenario_for)
from kalab.recommend.verification import _first_interval

D = os.path.join(os.path.dirname(__file__), "..", "examples", "configs")


def recheck(goal: Goal, rec, phase: float):
    """The constraints, simulated at a phase of the first probe interval chosen by the test."""
    base = scenario_for(goal, rec.side, rec.mechanism, rec.settings)
    first = _first_interval(rec.mechanism, rec.settings, goal)
    a = round(phase * first, 3)
    r = simulate(dict(base, faults=[{"kind": "link_down", "at_s": a}], until_s=a + goal.detect_within_s * 3 + 60))
    side = r.side(rec.side)
    assert side.fate == "died" and side.latest_s - a <= goal.detect_within_s + 1e-9, (rec, a, side)
    # ... at every timing corner too (kalab.timing): never a knife-edge.
    assert side.worst.fate == "died" and side.worst.latest_s - a <= goal.detect_within_s + 1e-9, (rec, a, side)
    if goal.survive_outage_s:
        r = simulate(dict(base, faults=[{"kind": "link_down", "at_s": a, "for_s": goal.survive_outage_s}],
                          until_s=a + goal.survive_outage_s + goal.detect_within_s * 3 + 60))
        assert r.client.fate == "alive" and r.server.fate == "alive", (rec, a, r.client, r.server)
        assert not r.client.timing_sensitive and not r.server.timing_sensitive, (rec, a, r.client.timing_detail)
    # The side's own data in flight when the link goes: the give-up, counted from the send, fits too.
    r = simulate(dict(base, traffic=[{"at_s": a, "from": rec.side}], faults=[{"kind": "link_down", "at_s": a}],
                      until_s=a + goal.detect_within_s * 3 + 1000))
    side = r.side(rec.side)
    assert side.fate == "died" and side.latest_s - a <= goal.detect_within_s + 1e-9, (rec, a, side)
    assert side.worst.fate == "died" and side.worst.latest_s - a <= goal.detect_within_s + 1e-9, (rec, a, side)
    if goal.survive_outage_s:
        r = simulate(dict(base, traffic=[{"at_s": a, "from": rec.side}],
                          faults=[{"kind": "link_down", "at_s": a, "for_s": goal.survive_outage_s}],
                          until_s=a + goal.survive_outage_s + goal.detect_within_s * 3 + 1000))
        assert r.client.fate == "alive" and r.server.fate == "alive", (rec, a, r.client, r.server)
    if goal.nat_idle_s:
        nat = dict(base, until_s=goal.nat_idle_s * 5)
        nat["path"] = dict(base["path"], middleboxes=[{"kind": "nat", "idle_timeout_s": goal.nat_idle_s,
                                                         "on_expiry": "drop"}])
        r = simulate(nat)
        assert r.client.fate == "alive" and r.server.fate == "alive", rec
        assert not r.client.timing_sensitive and not r.server.timing_sensitive, (rec, r.client.timing_detail)
    if goal.max_probes_per_hour:
        r = simulate(dict(base, until_s=3600))
        assert sum(e.side == rec.side and e.kind == probe_event(rec.mechanism) for e in r.events) \
            <= goal.max_probes_per_hour


@settings(max_examples=15, deadline=None)
@given(d=st.integers(20, 900), o_frac=st.sampled_from([0, 0.2, 0.45]), nat=st.one_of(st.none(), st.integers(120, 900)),
       side=st.sampled_from(["client", "server", "both"]), phase=st.floats(0, 0.999), rtt=st.sampled_from([1.0, 50.0]),
       probes=st.one_of(st.none(), st.integers(5, 200)), version=st.sampled_from(["9.2", "9.6"]))
def test_every_recommendation_meets_its_goal_when_simulated(d, o_frac, nat, side, phase, rtt, probes, version):
    goal = Goal(detect_within_s=float(d), survive_outage_s=float(int(d * o_frac)), nat_idle_s=nat, side=side,
                max_probes_per_hour=probes, rtt_ms=rtt, sshd_version=version)
    for rec in recommend(goal):
        recheck(goal, rec, phase)


def test_behind_a_350_s_nat_the_proposed_keepalive_fires_before_350_s_even_at_its_latest():
    """The knife-edge the issue measured: TCP_KEEPIDLE 347 sits on the wheel level of 16.384 s
    granularity and may fire at 363.4 s, after the NAT has forgotten.  The proposal keeps the latest
    firing one RTT and a second inside the timeout, and says so."""
    from kalab.slack import timer_slack_s
    goal = Goal(detect_within_s=900, nat_idle_s=350)
    recs = [r for r in recommend(goal) if r.mechanism.startswith("tcp-keepalive")]
    assert recs
    for r in recs:
        idle = r.settings["idle"]
        assert idle + timer_slack_s(idle, 250) <= 350 - (goal.rtt_ms / 1000 + 1.0), r.settings
        nat = next(c for c in r.checks if c.name.startswith("NAT"))
        assert nat.passed and "at the latest the path is silent for 5 min 48.384 s at most" in nat.detail


def test_a_knife_edge_candidate_fails_its_nat_check():
    from kalab.recommend import verify
    goal = Goal(detect_within_s=900, nat_idle_s=350)
    ok, _det, _p, checks = verify(goal, "client", "tcp-keepalive", {"idle": 347, "intvl": 1, "cnt": 3,
                                                                   "user_timeout_ms": 350000})
    nat = next(c for c in checks if c.name.startswith("NAT"))
    assert not ok and not nat.passed and "at the latest" in nat.detail


def test_an_everyday_goal_is_met_by_each_mechanism():
    goal = Goal(detect_within_s=300, survive_outage_s=120, nat_idle_s=350)
    recs, trades = answer(goal)
    assert {(r.side, r.mechanism) for r in recs} == {
        ("client", "tcp-keepalive"), ("client", "tcp-keepalive-sysctl"), ("client", "ssh-serveralive"),
        ("server", "tcp-keepalive"), ("server", "tcp-keepalive-sysctl"), ("server", "sshd-clientalive")}
    assert trades == {}
    for r in recs:
        recheck(goal, r, 0.9)
        assert r.detect_s <= 300 and all(c.passed for c in r.checks)


def test_contradiction_says_so_and_offers_simulated_trade_offs(capsys):
    assert main(["recommend", "--detect-within", "30s", "--survive-outage", "2m", "--side", "client"]) == 1
    out = capsys.readouterr().out
    assert "contradict" in out and "rebooted one answers with RST" in out
    recs, trades = answer(Goal(detect_within_s=30, survive_outage_s=120, side="client"))
    assert recs == [] and 0 < trades["survive_outage_s"] < 30 and 120 < trades["detect_within_s"] < 200
    # each trade-off is itself achievable, and the next step beyond it is not
    assert recommend(Goal(detect_within_s=30, survive_outage_s=trades["survive_outage_s"], side="client"))
    assert not recommend(Goal(detect_within_s=30, survive_outage_s=trades["survive_outage_s"] + 1, side="client"))
    assert recommend(Goal(detect_within_s=trades["detect_within_s"], survive_outage_s=120, side="client"))


def test_recommend_prints_paste_ready_lines(capsys):
    assert main(["recommend", "--detect-within", "2m", "--survive-outage", "30s", "--side", "client"]) == 0
    out = capsys.readouterr().out
    assert "net.ipv4.tcp_keepalive_time = " in out and "sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE" in out
    assert "    ServerAliveInterval " in out and "[FAIL]" not in out
    assert main(["recommend", "--detect-within", "2m", "--side", "server", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["mechanism"] for r in doc["recommendations"]} == {"tcp-keepalive", "tcp-keepalive-sysctl",
                                                                "sshd-clientalive"}


def test_unacknowledged_data_gives_up_within_the_goal_per_socket_and_host_wide():
    """Keepalive is suspended while data is outstanding, so keepalive settings alone leave a send into a
    dead path to tcp_retries2 (~15 min): per socket TCP_USER_TIMEOUT, host-wide a lower tcp_retries2,
    chosen so the latest give-up after the send (UT counts from the first retransmission; the long
    backoff steps carry timer-wheel slack) fits the goal."""
    goal = Goal(detect_within_s=120, survive_outage_s=30, side="client")
    recs = {r.mechanism: r for r in recommend(goal)}
    ut = recs["tcp-keepalive"].settings["user_timeout_ms"]
    assert ut < 115_000                                         # below the keepalive deadline idle + cnt x intvl
    assert retransmission_give_up_s(goal, user_timeout_ms=ut)[0] <= 120
    assert retransmission_give_up_s(goal, user_timeout_ms=ut + 2000)[0] > 120      # and not much below
    host = recs["tcp-keepalive-sysctl"]
    r2 = host.settings["tcp_retries2"]
    assert r2 == host_retries2(goal) and retransmission_give_up_s(goal, retries2=r2)[0] <= 120
    assert retransmission_give_up_s(goal, retries2=r2 + 1)[0] > 120
    assert any(line.startswith(f"net.ipv4.tcp_retries2 = {r2} ") and "below RFC 1122's 100 s" in line
               for line in host.lines["sysctl.conf"])
    # Keepalive settings without the retransmission bound really would miss the goal with data in flight.
    base = scenario_for(goal, "client", "tcp-keepalive-sysctl", dict(host.settings, tcp_retries2=15))
    r = simulate(dict(base, traffic=[{"at_s": 10, "from": "client"}], faults=[{"kind": "link_down", "at_s": 10}],
                      until_s=5000))
    assert r.client.by == "tcp.retransmission" and r.client.at_s - 10 > 900


def test_a_slow_goal_keeps_the_default_tcp_retries2():
    goal = Goal(detect_within_s=3600, side="server")
    host = next(r for r in recommend(goal) if r.mechanism == "tcp-keepalive-sysctl")
    assert host.settings["tcp_retries2"] == 15
    assert host.lines["sysctl.conf"][-1].startswith("# net.ipv4.tcp_retries2 = 15    (the default)")


@pytest.mark.parametrize("argv", [["recommend", "--detect-within", "soon"], ["recommend", "--detect-within", "0"],
                                  ["recommend", "--detect-within", "1m", "--rtt-ms", "-3"],
                                  ["explain", "--ssh-config", os.path.join(D, "ssh", "config")],
                                  ["explain", "--fault", "meteor@5"],
                                  ["explain", "--client-sysctl", "/nonexistent/sysctl.txt"],
                                  ["explain", "--middlebox", "aws-nta"]])
def test_bad_arguments_exit_2_without_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kalab: error:") and "Traceback" not in err


def test_explain_names_the_deciding_settings_and_what_would_change_them(capsys):
    argv = ["explain", "--client-sysctl", os.path.join(D, "proc-sys-dump.txt"),
            "--ssh-config", os.path.join(D, "ssh", "config"), "--host", "db1.prod.example.org",
            "--server-sshd-config", os.path.join(D, "sshd_config"), "--fault", "link_down@60"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # ServerAliveInterval 15 (config:12) x (CountMax 5 + 1) after the last server packet (the reply at 45 s).
    assert "the client dies at 2 min 15 s" in out
    assert "ServerAliveCountMax = 5 (" in out and "conf.d/10-db.conf:3)" in out
    assert "ClientAliveInterval = 120 s (" in out and "50-cloud.conf:2)" in out
    assert "ServerAliveCountMax 5 -> 10: the client dies at" in out
    assert "What would change it (each line simulated):" in out
    assert main(argv + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["client"]["by"] == "ssh.server_alive" and doc["client"]["at_s"] == 135.0
    assert doc["sources"]["client.app.options.ServerAliveInterval"].endswith("ssh/config:12")


def test_explain_half_open_side_gets_switches(capsys):
    assert main(["explain", "--ssh-config", os.path.join(D, "ssh-G.txt"), "--host", "db.example.org",
                 "--fault", "link_down@10", "--until", "1h"]) == 0
    out = capsys.readouterr().out
    assert "server: nothing killed it (half-open)" in out
    assert "ClientAliveInterval 15: the server dies at" in out


def test_explain_behind_a_nat_points_at_what_keeps_the_mapping(capsys):
    """Default ssh behind an AWS NAT: the 7200 s keepalive meets an expired mapping; levers that
    refresh it within 350 s keep the session (simulated), the NAT's own timeout does not matter."""
    assert main(["explain", "--ssh-version", "9.6", "--middlebox", "aws-nat"]) == 0
    out = capsys.readouterr().out
    assert "client: middlebox.reset -- aws-nat idle timeout = 350 s (--middlebox aws-nat)" in out
    assert "aws-nat idle timeout 350 s -> 700 s: no change" in out
    assert "ServerAliveInterval 175: the client stays alive" in out
    assert "ClientAliveInterval 175: the server stays alive" in out


def test_explain_a_program_that_never_notices_gets_keepalive_in_its_os_names(capsys):
    """A plain program without SO_KEEPALIVE never notices a dead link: the levers switch probing on,
    per socket and -- where the OS can force it -- host-wide, in that OS's own names and units
    (macOS: keepidle in ms; death at idle + keepcnt x keepintvl after the last packet)."""
    assert main(["explain", "--client-sysctl", os.path.join(D, "sysctl-macos.txt"), "--fault", "link_down@10",
                 "--until", "4h"]) == 0
    out = capsys.readouterr().out
    assert "client: nothing killed it (alive)" in out
    assert "setsockopt SO_KEEPALIVE 1: the client dies at 2 h 10 min by tcp.keepalive" in out      # 7200 + 8 x 75
    assert "setsockopt SO_KEEPALIVE 1 and TCP_KEEPALIVE 60: the client dies at 11 min" in out       # 60 + 8 x 75
    assert "net.inet.tcp.always_keepalive = 1 and net.inet.tcp.keepidle = 60000: the client dies at 11 min" in out
    assert "setsockopt SO_KEEPALIVE 1 and TCP_KEEPIDLE 60: the server dies at 12 min 15 s" in out   # Linux: 60 + 9 x 75
