"""Closing: FIN exchange, TIME_WAIT, FIN_WAIT_2, port exhaustion (docs/mechanisms.md §Closing)."""

import pytest

from helpers import kinds, run
from kalab.mechanisms import time_wait as tw


def test_active_closer_holds_time_wait_for_60s_on_linux():
    r = run(traffic=[{"at_s": 2, "from": "client", "close": True}], until_s=120)
    tw_ev = kinds(r, "client", "tcp", "time_wait")[0]
    end = kinds(r, "client", "tcp", "time_wait_end")[0]
    assert end.t_s - tw_ev.t_s == pytest.approx(60.0, abs=1 / 250)  # expires on a jiffy boundary
    assert not kinds(r, "server", "tcp", "time_wait")
    assert r.client.by == "app.exit" and r.server.by == "tcp.fin_received" and r.server.sees == "EOF"


@pytest.mark.parametrize("os,expected", [("linux", 60), ("freebsd", 60), ("macos", 30), ("windows", 120),
                                         ("solaris", 60), ("sco-openserver", 1800)])
def test_time_wait_length_per_os(os, expected):
    r = run({"os": os}, traffic=[{"at_s": 2, "from": "client", "close": True}], until_s=4000)
    tw_ev = kinds(r, "client", "tcp", "time_wait")[0]
    assert tw_ev.detail.startswith(f"{expected} s")


def test_sco_tcp_2msl_is_settable_and_the_30_minutes_are_flagged():
    r = run({"os": "sco-openserver"}, traffic=[{"at_s": 2, "from": "client", "close": True}], until_s=4000)
    assert "unverified" in kinds(r, "client", "tcp", "time_wait")[0].detail
    r = run({"os": "sco-openserver", "sysctl": {"tcp_2msl": 60000}}, traffic=[{"at_s": 2, "from": "client", "close": True}])
    assert kinds(r, "client", "tcp", "time_wait")[0].detail.startswith("60 s")


def test_macos_msl_sysctl_sets_time_wait_to_twice_msl():
    r = run({"os": "macos", "sysctl": {"net.inet.tcp.msl": 5000}}, traffic=[{"at_s": 2, "from": "client", "close": True}])
    assert kinds(r, "client", "tcp", "time_wait")[0].detail.startswith("10 s")


def test_port_exhaustion_rate():
    """28232 ports / 60 s = 470.5 new connections per second to one destination; macOS 16384 / 30 s."""
    assert tw.max_connection_rate_per_s() == pytest.approx(28232 / 60)
    assert tw.max_connection_rate_per_s(tw.BSD_PORT_RANGE, 30) == pytest.approx(546.13, abs=0.01)


def test_orphaned_fin_wait_2_lasts_tcp_fin_timeout():
    assert tw.fin_wait2_orphan_s(60, 0.204) == 60
    assert tw.fin_wait2_orphan_s(120, 0.204) == 120   # 60 + 60 (measured on 6.18: 123.1 s)
    assert tw.fin_wait2_orphan_s(90, 0.204) == 60     # 30 + 30 (measured: 61.6 s)
    # The peer never closes: the closer's orphan goes away silently after tcp_fin_timeout.
    r = run({"sysctl": {"net.ipv4.tcp_fin_timeout": 30}}, {"app": {"kind": "telnetd", "flags": ["-n"]}},
            traffic=[{"at_s": 2, "from": "client", "close": True}, {"at_s": 2.0004, "from": "server", "bytes": 1}])
    assert r.client.by == "app.exit"
    # A real orphaned FIN_WAIT_2: the server still has unacknowledged data when the client's FIN
    # arrives, so its own FIN waits behind it -- and a second cut loses both for good.
    r = run({"sysctl": {"net.ipv4.tcp_fin_timeout": 30}},
            traffic=[{"at_s": 1, "from": "server"}, {"at_s": 1.6, "from": "client", "close": True}],
            faults=[{"kind": "link_down", "at_s": 0.9, "for_s": 0.6}, {"kind": "link_down", "at_s": 1.7}], until_s=100)
    fw2 = kinds(r, "client", "tcp", "fin_wait_2")[0]
    gone = kinds(r, "client", "tcp", "fin_wait2_timeout")[0]
    assert gone.t_s - fw2.t_s == pytest.approx(30.0, abs=1 / 250)   # on a jiffy boundary
    assert not kinds(r, "client", "tcp", "rst_sent") and not kinds(r, "client", "tcp", "time_wait")


def test_fin_timeout_above_60_s_runs_two_timers_each_with_its_own_slack():
    """Above 60 s the orphan is kept (tmo - 60) by the full socket, then (tmo - 60) by a mini-socket:
    tcp_fin_timeout 90 s lasts 60 s, not 90 s (measured on 6.18: 61.6 s) -- and each of the two
    timers may be one timer-wheel granularity late."""
    from kalab.slack import timer_slack_s
    assert tw.fin_wait2_orphan_stages_s(90, 0.204) == (30, 30)
    assert tw.fin_wait2_orphan_stages_s(70, 0.204) == (10, 10)          # 20 s: shorter than the default 60 s
    assert tw.fin_wait2_orphan_stages_s(60.5, 0.204) == (0.5, 3.5 * 0.204)   # the mini-socket's RTO floor
    r = run({"sysctl": {"net.ipv4.tcp_fin_timeout": 90}},
            traffic=[{"at_s": 1, "from": "server"}, {"at_s": 1.6, "from": "client", "close": True}],
            faults=[{"kind": "link_down", "at_s": 0.9, "for_s": 0.6}, {"kind": "link_down", "at_s": 1.7}], until_s=200)
    fw2 = kinds(r, "client", "tcp", "fin_wait_2")[0]
    mini = kinds(r, "client", "tcp", "fin_wait2_mini")[0]
    gone = kinds(r, "client", "tcp", "fin_wait2_timeout")[0]
    assert mini.t_s - fw2.t_s == pytest.approx(30.0, abs=1 / 250) and gone.t_s - fw2.t_s == pytest.approx(60.0, abs=2 / 250)
    assert gone.latest_s - gone.t_s == pytest.approx(fw2.latest_s - fw2.t_s + 2 * timer_slack_s(30, 250))


def test_orphan_fin_retries_give_up_after_the_orphan_model():
    """An orphan retransmitting its FIN on a dead path uses tcp_orphan_retries (0 -> 8: 102.2 s)."""
    r = run(traffic=[{"at_s": 2, "from": "client", "close": True}], faults=[{"kind": "link_down", "at_s": 1}],
            until_s=600)
    gave_up = kinds(r, "client", "tcp", "retransmission_timeout")[0]
    first = kinds(r, "client", "tcp", "retransmit")[0]
    assert "orphaned" in gave_up.detail
    assert 102.2 <= gave_up.t_s - first.t_s < 102.2 + 120
