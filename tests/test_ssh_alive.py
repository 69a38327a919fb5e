"""OpenSSH client ServerAlive and sshd ClientAlive (docs/mechanisms.md §ssh ServerAlive, §sshd ClientAlive)."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpers import kinds, run
from kalab.mechanisms import ssh_alive, sshd_alive
from kalab.mechanisms import tcp_retransmit as rt

CUT = [{"kind": "link_down", "at_s": 1, "for_s": None}]


def ssh(interval=15, count=3, tcpka="no", **extra):
    opts = {"ServerAliveInterval": interval, "ServerAliveCountMax": count, "TCPKeepAlive": tcpka}
    return {"app": {"kind": "ssh", "options": opts}, **extra}


def sshd(interval=15, count=3, version="9.6", tcpka="no"):
    return {"app": {"kind": "sshd", "version": version,
                    "options": {"ClientAliveInterval": interval, "ClientAliveCountMax": count, "TCPKeepAlive": tcpka}}}


def test_server_alive_15x3_dies_60s_after_the_last_reply():
    """Death = floor(t_last_rx) + (CountMax + 1) x Interval: 60 s, i.e. 45 s after the first unanswered message."""
    r = run(ssh(), {"app": {"kind": "sshd"}}, faults=CUT)
    assert r.client.at_s == 60.0
    assert r.client.by == "ssh.server_alive"
    assert r.client.sees == "Timeout, server 198.51.100.2 not responding."
    assert r.client.exit_code == 255
    sent = kinds(r, "client", "ssh", "alive_sent")
    assert [e.t_s for e in sent] == [15.0, 30.0, 45.0]
    assert r.client.at_s - sent[0].t_s == 45.0


def test_server_alive_counts_from_the_last_packet_from_the_server():
    """A reply from the server resets counter and schedule; on the whole-second clock."""
    r = run(ssh(), {"app": {"kind": "sshd"}}, traffic=[{"at_s": 20.3, "from": "client", "reply_bytes": 40}],
            faults=[{"kind": "link_down", "at_s": 21, "for_s": None}])
    assert r.client.at_s == 20.0 + 60.0          # floor(20.301) + 4 x 15
    assert ssh_alive.server_alive_death_s(20.301, 15, 3) == 80.0


def test_monotime_phase_shifts_the_whole_second_clock():
    r = run(ssh(monotime_phase_s=0.75), {"app": {"kind": "sshd"}}, faults=CUT)
    assert r.client.at_s == pytest.approx(60.0 - 0.75)


def test_server_alive_count_max_zero_kills_at_the_first_check_without_sending():
    r = run(ssh(count=0), {"app": {"kind": "sshd"}}, faults=CUT)
    assert r.client.at_s == 15.0
    assert not kinds(r, "client", "ssh", "alive_sent")


def test_live_server_answers_and_session_stays_up():
    r = run(ssh(interval=5), {"app": {"kind": "sshd"}}, until_s=100.5)
    assert r.client.fate == "alive"
    assert len(kinds(r, "client", "ssh", "alive_reply")) == len(kinds(r, "client", "ssh", "alive_sent")) > 10


def test_tcpkeepalive_yes_gives_the_kernel_rule_to_ssh():
    """TCPKeepAlive=yes sets SO_KEEPALIVE: without ServerAlive the OS keepalive decides (7875 s)."""
    r = run({"app": {"kind": "ssh"}}, {"app": {"kind": "sshd"}}, faults=CUT)
    assert r.client.by == "tcp.keepalive" and r.client.at_s == 7875.0
    assert r.client.sees == "Read from remote host 198.51.100.2: Connection timed out"


def test_connect_timeout_beats_the_syn_timeout():
    r = run(ssh(ConnectTimeout=None) if False else {"app": {"kind": "ssh", "options": {"ConnectTimeout": 10}}},
            {"app": {"kind": "sshd"}}, start="connect", faults=[{"kind": "link_down", "at_s": 0}], until_s=600)
    assert r.client.by == "ssh.connect_timeout" and r.client.at_s == 10.0
    assert r.client.sees == "ssh: connect to host 198.51.100.2 port 22: Connection timed out"


def test_ssh_sees_the_remote_close():
    r = run({"app": {"kind": "ssh"}}, {"app": {"kind": "sshd"}}, traffic=[{"at_s": 3, "from": "server", "close": True}])
    assert r.client.sees == "Connection to 198.51.100.2 closed by remote host." and r.client.exit_code == 255


@pytest.mark.parametrize("version,death", [("7.4", 60.0), ("9.1", 60.0), ("9.2", 120.0), ("9.4", 120.0),
                                           ("9.5", 60.0), ("10.0", 60.0)])
def test_sshd_client_alive_versions(version, death):
    """(N + 1) x I, except the strict check of 9.2-9.4 that probes every 2 x I."""
    r = run({}, sshd(version=version), faults=CUT)
    assert r.server.at_s == death and r.server.by == "sshd.client_alive"
    assert r.server.sees == "Timeout, client not responding from 192.0.2.2 port 50000"
    v = tuple(int(x) for x in version.split("."))
    assert sshd_alive.client_alive_death_s(0, 15, 3, v) == death


@pytest.mark.parametrize("version,fate", [("8.1", "died"), ("8.2", "alive")])
def test_client_alive_count_max_zero_changed_meaning_in_8_2(version, fate):
    """<= 8.1: CountMax 0 kills at the first check; >= 8.2: it never terminates (probes still sent)."""
    r = run({}, sshd(count=0, version=version), faults=CUT, until_s=600)
    assert r.server.fate == fate
    if fate == "died":
        assert r.server.at_s == 15.0
    else:
        assert len(kinds(r, "server", "sshd", "alive_sent")) >= 30


def test_session_output_postpones_the_92_check():
    """9.2+: the check needs ppoll to time out; output from the session restarts the wait."""
    traffic = [{"at_s": 10, "from": "server", "every_s": 10, "count": 10}]
    late = run({}, sshd(version="9.6"), traffic=traffic, faults=CUT, until_s=600)
    idle = run({}, sshd(version="9.6"), faults=CUT, until_s=600)
    assert late.server.at_s > idle.server.at_s


@given(i=st.integers(1, 600), n=st.integers(0, 10), last=st.floats(0, 50))
def test_server_alive_closed_form_agrees_with_the_simulator(i, n, last):
    assume(round(last, 3) + 0.001 < i)  # the reply must arrive before the first check
    sc_traffic = [{"at_s": round(last, 3), "from": "client", "reply_bytes": 40}]
    r = run(ssh(interval=i, count=n), {"app": {"kind": "sshd"}}, traffic=sc_traffic,
            faults=[{"kind": "link_down", "at_s": round(last, 3) + 0.01, "for_s": None}], until_s=1e6)
    ssh_death = ssh_alive.server_alive_death_s(round(last, 3) + 0.001, i, n)
    # The first unanswered alive message is TCP data: the kernel's retransmission give-up runs too.
    first_alive = ssh_alive.server_alive_death_s(round(last, 3) + 0.001, i, 0)
    _, rto_death = rt.rto_schedule(0.204, 15, first_fire_s=0.408)
    if ssh_death <= first_alive + rto_death:
        assert (r.client.by, r.client.at_s) == ("ssh.server_alive", ssh_death)
    else:
        assert r.client.by == "tcp.retransmission"
        assert r.client.at_s == pytest.approx(first_alive + rto_death)


def test_an_old_sshd_has_one_ppoll_timeout_at_a_time():
    """sshd <= 9.1 checks ClientAlive when session output goes out a full interval after the client's
    last message; that check replaces the pending ppoll timeout.  (It used to leave it armed: one more
    live timer per such send, each checking on its own: 127,683 engine steps here instead of 7,878.)"""
    from kalab.scenario import load
    from kalab.simulate import World
    sc = load({"client": {"app": {"kind": "ssh"}}, "until_s": 2000, "path": {"rtt_ms": 40},
               "server": {"app": {"kind": "sshd", "version": "7.4", "options": {"ClientAliveInterval": 4}}},
               "traffic": [{"at_s": 43.291, "from": "server", "every_s": 1}]})
    w = World(sc)
    w.run()
    assert w.engine.steps < 12_000
