"""Faults: link_down, host_crash, host_reboot, process_kill, sleep (docs/scenarios.md, "Faults")."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import ka_socket, kinds, run
from kalab.mechanisms.tcp_retransmit import rto_schedule


def test_process_kill_closes_the_socket_with_fin():
    r = run(faults=[{"kind": "process_kill", "side": "server", "at_s": 3}])
    assert r.server.by == "app.exit" and r.server.sees == "killed (SIGKILL)"
    assert r.client.by == "tcp.fin_received" and r.client.at_s == pytest.approx(3.0005)


def test_host_crash_is_silent_and_leaves_the_other_side_half_open():
    r = run(faults=[{"kind": "host_crash", "side": "client", "at_s": 3}], until_s=1000)
    assert r.client.by == "host.crash" and r.server.fate == "half_open"


def test_sleeping_host_timers_do_not_advance():
    """A suspended host's keepalive resumes where it stopped: death is shifted by exactly the sleep."""
    base = run({"socket": ka_socket(idle=100, intvl=10, cnt=3)}, faults=[{"kind": "link_down", "at_s": 1}])
    slept = run({"socket": ka_socket(idle=100, intvl=10, cnt=3)},
                faults=[{"kind": "link_down", "at_s": 1}, {"kind": "sleep", "side": "client", "at_s": 50, "for_s": 500}])
    assert slept.client.at_s == pytest.approx(base.client.at_s + 500)


def test_the_awake_side_keeps_counting_while_the_other_sleeps():
    r = run({}, {"socket": ka_socket(idle=100, intvl=10, cnt=3)},
            faults=[{"kind": "sleep", "side": "client", "at_s": 50, "for_s": 500}], until_s=2000)
    assert r.server.by == "tcp.keepalive" and r.server.at_s == pytest.approx(130.0)


def test_ssh_sends_one_alive_message_after_waking_not_a_burst():
    """ppoll waits on the monotonic clock: after resume one check runs, the counter goes up by one."""
    r = run({"app": {"kind": "ssh", "options": {"ServerAliveInterval": 10}}}, {"app": {"kind": "sshd"}},
            faults=[{"kind": "sleep", "side": "client", "at_s": 15, "for_s": 1000}], until_s=1100)
    assert r.client.fate == "alive"
    # The check due at 20 s had 5 s left when the laptop slept at 15 s: it runs 5 s after waking.
    after = [e.t_s for e in kinds(r, "client", "ssh", "alive_sent") if 1015 <= e.t_s < 1030]
    assert after == [1020.0]


@given(idle=st.integers(10, 600), intvl=st.integers(1, 60), cnt=st.integers(1, 9),
       at=st.floats(1, 500), sleep=st.floats(1, 5000))
def test_sleeping_hosts_own_timers_do_not_advance(idle, intvl, cnt, at, sleep):
    """Property: a sleep before death delays the sleeper's keepalive death by exactly the sleep."""
    at, sleep = round(at, 3), round(sleep, 3)
    sock = ka_socket(idle, intvl, cnt)
    cut = {"kind": "link_down", "at_s": 0.5}
    base = run({"socket": sock}, faults=[cut], until_s=1e6).client.at_s
    if at >= base:
        return
    slept = run({"socket": sock}, faults=[cut, {"kind": "sleep", "side": "client", "at_s": at, "for_s": sleep}],
                until_s=1e6).client.at_s
    assert slept == pytest.approx(base + sleep, abs=1e-6)


def _last_retransmission_s(send_at=2.0):
    """When the default schedule sends its last retransmission (TLP at +RTO, first RTO at +2 RTO)."""
    times, _ = rto_schedule(0.204, 15, first_fire_s=0.408)
    return send_at + times[-1]


def test_an_outage_ending_after_the_last_retransmission_kills_even_though_the_link_is_back():
    """The give-up test runs only at RTO firings: no retransmission between link-up and the check -> death."""
    last = _last_retransmission_s()
    r = run(traffic=[{"at_s": 2, "from": "client"}], faults=[{"kind": "link_down", "at_s": 1, "for_s": last - 1 + 1}],
            until_s=4000)
    assert r.client.by == "tcp.retransmission"
    assert kinds(r, "path", kind="link_up")[0].t_s < r.client.at_s


@given(outage=st.floats(0.01, 2000), send=st.booleans())
def test_an_outage_shorter_than_every_detection_path_is_survived_property(outage, send):
    """Survived iff the link is back before the last retransmission (data) or before keepalive gives up (idle)."""
    outage = round(outage, 3)
    if send and 1 + outage >= _last_retransmission_s():
        return
    traffic = [{"at_s": 2, "from": "client"}] if send else []
    r = run({"socket": {"SO_KEEPALIVE": 1}}, traffic=traffic,
            faults=[{"kind": "link_down", "at_s": 1, "for_s": outage}], until_s=4000)
    assert r.client.fate == "alive" and r.server.fate == "alive"
