"""TCP keepalive (docs/mechanisms.md §Keepalive): when an idle connection probes, and when it gives up."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import ka_socket, kinds, run
from kalab.mechanisms import tcp_keepalive as ka

CRASH = [{"kind": "host_crash", "side": "server", "at_s": 0}]
CUT = [{"kind": "link_down", "at_s": 1, "for_s": None}]


def test_linux_defaults_die_after_2h11m15s():
    """7200 s idle + 9 probes x 75 s = 7875 s, after exactly 9 unanswered probes."""
    r = run({"socket": {"SO_KEEPALIVE": 1}}, faults=CRASH)
    assert r.client.at_s == 7875.0
    assert r.client.by == "tcp.keepalive" and r.client.sees == "ETIMEDOUT"
    assert len(kinds(r, "client", kind="keepalive_probe")) == 9
    assert ka.linux_keepalive_death_s(7200, 75, 9) == 7875.0


def test_keepalive_is_off_by_default():
    """RFC 1122: keepalives MUST default to off -- a plain socket to a crashed peer never notices."""
    r = run(faults=CRASH, until_s=86400)
    assert r.client.fate == "half_open"
    assert not kinds(r, kind="keepalive_probe")


def test_keepalive_death_sends_rst():
    """tcp_keepalive_timer kills with tcp_send_active_reset: an RST goes out (and is lost on a dead path)."""
    r = run({"socket": ka_socket()}, faults=CUT)
    assert any("rst" in e.detail for e in kinds(r, "path", kind="dropped") if e.t_s >= r.client.at_s)


def test_idleness_is_measured_from_the_last_segment_received_not_sent():
    """Sending does not reset keepalive idleness; receiving does (keepalive_time_elapsed)."""
    # Data from the client at 3 s is acknowledged at 3.001 s: that ACK is the last receipt.
    r = run({"socket": ka_socket(idle=5, intvl=2, cnt=3)}, traffic=[{"at_s": 3, "from": "client"}],
            faults=[{"kind": "link_down", "at_s": 4, "for_s": None}])
    # (The re-armed remainder is rounded up to whole 4 ms jiffies, as msecs_to_jiffies does.)
    assert r.client.at_s == pytest.approx(3.001 + 5 + 3 * 2, abs=1 / 250)
    # Data the client only *sends* while the link is down does not postpone probing... but it
    # suspends it (data in flight), so the retransmission timer decides instead:
    r2 = run({"socket": ka_socket(idle=5, intvl=2, cnt=3)}, traffic=[{"at_s": 4.5, "from": "client"}],
             faults=[{"kind": "link_down", "at_s": 4, "for_s": None}])
    assert r2.client.by == "tcp.retransmission"
    assert not kinds(r2, "client", kind="keepalive_probe")


def test_probes_are_suspended_while_data_is_in_flight():
    """It is alive without keepalive 8): packets_out re-arms the timer for a full keepidle."""
    r = run({"socket": ka_socket(idle=5, intvl=2, cnt=3)}, traffic=[{"at_s": 2, "from": "client"}],
            faults=[{"kind": "link_down", "at_s": 1, "for_s": None}], until_s=3000)
    assert r.client.by == "tcp.retransmission"
    assert not kinds(r, "client", kind="keepalive_probe")


def test_peer_probe_does_not_reset_the_receivers_idleness():
    """A keepalive probe (seq = snd_una - 1) fails the receiver's sequence check: it is only dup-ACKed."""
    r = run({"socket": ka_socket(idle=10, intvl=2, cnt=3)}, {"socket": ka_socket(idle=15, intvl=2, cnt=3)},
            until_s=40)
    server_probes = kinds(r, "server", kind="keepalive_probe")
    assert server_probes and server_probes[0].t_s == pytest.approx(15.0)


@pytest.mark.parametrize("ut_ms,expected", [
    (4000, 7.0),      # UT <= idle: death after one probe, at idle + intvl
    (5000, 7.0),      # UT == idle
    (6000, 7.0),      # kink: ceil((6-5)/2) = 1
    (7001, 9.0),      # just past the first firing: one more interval
    (11000, 11.0),    # exactly idle + cnt*intvl: no change
    (20000, 21.0),    # beyond: probes continue past TCP_KEEPCNT, 8 probes
])
def test_user_timeout_overrides_the_probe_count_on_both_sides_of_the_kink(ut_ms, expected):
    """With TCP_USER_TIMEOUT: death at idle + intvl * max(1, ceil((UT - idle) / intvl)); the count is ignored."""
    r = run({"socket": ka_socket(idle=5, intvl=2, cnt=3, ut_ms=ut_ms)}, faults=CUT)
    assert r.client.at_s == pytest.approx(expected)
    assert r.client.by == "tcp.user_timeout"
    assert ka.linux_keepalive_death_s(5, 2, 3, ut_ms / 1000) == pytest.approx(expected)


def test_user_timeout_can_make_keepalive_death_later():
    """60/10/3 dies at 90 s; with UT = 300 s death moves to 300 s after 24 probes."""
    r = run({"socket": ka_socket(idle=60, intvl=10, cnt=3, ut_ms=300000)}, faults=CUT, until_s=600)
    assert r.client.at_s == pytest.approx(300.0)
    assert len(kinds(r, "client", kind="keepalive_probe")) == 24


def test_rebooted_peer_answers_the_first_probe_with_rst():
    """A peer without the connection answers probe 1 with RST: ECONNRESET at t_last_rx + keepidle."""
    r = run({"socket": ka_socket(idle=60, intvl=10, cnt=3)},
            faults=[{"kind": "host_reboot", "side": "server", "at_s": 5, "down_s": 30}], until_s=600)
    assert r.client.by == "tcp.reset_received" and r.client.sees == "ECONNRESET"
    assert r.client.at_s == pytest.approx(60.001)
    assert len(kinds(r, "client", kind="keepalive_probe")) == 1


def test_bsd_total_idle_rule_drops_at_7800s():
    """FreeBSD/macOS: drop when idle >= keepidle + keepcnt * keepintvl; default 8 probes."""
    r = run({"os": "macos", "socket": {"SO_KEEPALIVE": 1}}, faults=CRASH)
    assert r.client.at_s == 7800.0
    assert ka.bsd_keepalive_death_s(7200, 75, 8) == 7800.0


def test_macos_sysctls_are_in_milliseconds():
    """net.inet.tcp.keepidle is in ms on macOS (native units at the edge)."""
    r = run({"os": "macos", "sysctl": {"net.inet.tcp.keepidle": 10000, "net.inet.tcp.keepintvl": 1000,
                                      "net.inet.tcp.keepcnt": 3}, "socket": {"SO_KEEPALIVE": 1}}, faults=CRASH)
    assert r.client.at_s == pytest.approx(13.0)


def test_windows_probes_ten_times_a_second_apart():
    """Windows: KeepAliveTime 2 h, KeepAliveInterval 1 s, 10 probes fixed: 7210 s."""
    r = run({"os": "windows", "socket": {"SO_KEEPALIVE": 1}}, faults=CRASH)
    assert r.client.at_s == pytest.approx(7210.0)


def test_solaris_drops_strictly_after_the_abort_interval():
    """illumos: drop when idle > interval + abort (strict), probes from the RTO doubling to 60 s."""
    r = run({"os": "solaris", "socket": {"SO_KEEPALIVE": 1}}, faults=CRASH)
    assert r.client.at_s > 7200 + 480
    probes = kinds(r, "client", kind="keepalive_probe")
    gaps = np.diff([p.t_s for p in probes])
    assert gaps.max() == pytest.approx(60.0) and np.all(np.diff(gaps) >= -1e-9)


@given(idle=st.integers(1, 3000), intvl=st.integers(1, 300), cnt=st.integers(1, 20),
       more=st.integers(1, 5), longer=st.integers(1, 100))
def test_more_probes_or_a_longer_interval_never_make_death_earlier(idle, intvl, cnt, more, longer):
    """Monotonicity of the keepalive rule, checked on the event simulator itself."""
    def death(i, n):
        return run({"socket": ka_socket(idle, i, n)}, faults=CRASH, until_s=1e6).client.at_s
    base = death(intvl, cnt)
    assert death(intvl, min(cnt + more, 127)) >= base
    assert death(intvl + longer, cnt) >= base


@given(idle=st.integers(1, 5000), intvl=st.integers(1, 500), cnt=st.integers(1, 127),
       ut=st.one_of(st.just(0), st.integers(1, 2_000_000)))
def test_closed_form_agrees_with_the_simulator(idle, intvl, cnt, ut):
    """The vectorised formula and the event simulator are two implementations of one rule."""
    r = run({"socket": ka_socket(idle, intvl, cnt, ut_ms=ut)}, faults=CRASH, until_s=1e7)
    assert r.client.at_s == pytest.approx(ka.linux_keepalive_death_s(idle, intvl, cnt, ut / 1000), abs=1e-6)
