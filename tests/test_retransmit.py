"""Retransmission, the give-up test and connection set-up (docs/mechanisms.md §Retransmission,
§Connection set-up)."""

import pytest

from helpers import kinds, run
from kalab.mechanisms import tcp_retransmit as rt

CUT = [{"kind": "link_down", "at_s": 1, "for_s": None}]
SEND = [{"at_s": 2, "from": "client", "bytes": 100}]


def test_model_timeout_for_tcp_retries2_15_is_924_6_s():
    """tcp_model_timeout(15) = 1023 x 0.2 + 6 x 120 = 924.6 s; 8 (orphans) gives 102.2 s; 3 gives 3 s."""
    assert rt.tcp_model_timeout_s(15) == pytest.approx(924.6)
    assert rt.tcp_model_timeout_s(8) == pytest.approx(102.2)
    assert rt.tcp_model_timeout_s(3) == pytest.approx(3.0)


@pytest.mark.parametrize("rto0,death,count", [
    (0.200, 1044.6, 16), (0.201, 925.6, 15), (0.21, 934.8, 15), (0.3, 993.3, 15), (1.0, 967.0, 13), (3.0, 1029.0, 12)])
def test_rto_schedule_table(rto0, death, count):
    """Worked values: death after the original send and retransmission count per initial RTO (HZ=1000)."""
    times, d = rt.rto_schedule(rto0, 15, hz=1000)
    assert d == pytest.approx(death, abs=0.05)
    assert len(times) == count


def test_rto_is_rtt_plus_200ms_rounded_to_jiffies():
    """RTO = srtt + max(2 srtt, TCP_RTO_MIN), rounded up to 4 ms ticks at HZ = 250."""
    assert rt.initial_rto_s(0.001, 250) == pytest.approx(0.204)
    assert rt.initial_rto_s(0.150, 250) == pytest.approx(0.452)


def test_data_in_flight_dies_by_time_model_without_rst():
    """Give-up checked at RTO firings against retrans_stamp (first RTO retransmission); no RST; ETIMEDOUT."""
    r = run(traffic=SEND, faults=CUT, until_s=3000)
    tlp = kinds(r, "client", kind="tlp")[0]
    first = kinds(r, "client", kind="retransmit")[0]
    assert tlp.t_s == pytest.approx(2.204) and first.t_s == pytest.approx(2.408)
    assert r.client.by == "tcp.retransmission" and r.client.sees == "ETIMEDOUT"
    assert r.client.at_s - first.t_s >= 924.6
    assert r.client.at_s - first.t_s < 924.6 + 120
    assert not [e for e in kinds(r, "path", kind="dropped") if "rst" in e.detail]


@pytest.mark.parametrize("retries2", [3, 5, 8])
def test_tcp_retries2_matches_the_closed_schedule(retries2):
    r = run({"sysctl": {"net.ipv4.tcp_retries2": retries2}}, traffic=SEND, faults=CUT, until_s=3000)
    times, death = rt.rto_schedule(0.204, retries2, first_fire_s=0.408)
    assert r.client.at_s == pytest.approx(2 + death)
    assert len(kinds(r, "client", kind="retransmit")) == len(times)


def test_user_timeout_replaces_tcp_retries2_and_lands_at_first_retransmission_plus_ut():
    """TCP_USER_TIMEOUT: death at retrans_stamp + UT (tcp_clamp_rto_to_user_timeout), retries2 ignored."""
    r = run({"socket": {"TCP_USER_TIMEOUT": 30000}, "sysctl": {"net.ipv4.tcp_retries2": 3}},
            traffic=SEND, faults=CUT, until_s=3000)
    first = kinds(r, "client", kind="retransmit")[0]
    assert r.client.by == "tcp.user_timeout"
    assert r.client.at_s == pytest.approx(first.t_s + 30.0)


def test_recovery_lags_after_the_link_returns():
    """After an outage the data waits for the next (backed-off) retransmission: up to 2 minutes."""
    r = run(traffic=[{"at_s": 10, "from": "client"}], faults=[{"kind": "link_down", "at_s": 5, "for_s": 300}],
            until_s=1200)
    up = kinds(r, "path", kind="link_up")[0]
    acked = kinds(r, "client", kind="acked")[0]
    assert r.client.fate == "alive"
    assert 0 < acked.t_s - up.t_s <= 120
    assert "after the link came back" in acked.detail


def test_an_outage_shorter_than_every_detection_path_is_survived():
    r = run({"socket": {"SO_KEEPALIVE": 1}}, traffic=[{"at_s": 10, "from": "client"}],
            faults=[{"kind": "link_down", "at_s": 5, "for_s": 60}], until_s=86400)
    assert r.client.fate == r.server.fate == "alive"


@pytest.mark.parametrize("kernel,death", [("6.18", 131.0), ("6.1", 127.0)])
def test_syn_give_up_127_or_131_s(kernel, death):
    """tcp_syn_retries = 6: 127 s before the linear timeouts of ~6.5, 131 s after."""
    r = run({"kernel": kernel}, start="connect", faults=[{"kind": "link_down", "at_s": 0}], until_s=600)
    assert r.client.at_s == pytest.approx(death)
    assert r.client.by == "tcp.syn_timeout" and r.server.fate == "none"
    assert rt.syn_schedule(6, 4 if kernel == "6.18" else 0)[1] == death


def test_syn_linear_timeouts_schedule():
    """SYN retransmissions at 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s with tcp_syn_linear_timeouts = 4."""
    r = run(start="connect", faults=[{"kind": "link_down", "at_s": 0}], until_s=600)
    assert [round(e.t_s) for e in kinds(r, "client", kind="syn_retransmit")] == [1, 2, 3, 4, 5, 7, 11, 19, 35, 67]


def test_connect_succeeds_when_the_path_is_up():
    r = run(start="connect", traffic=[{"at_s": 1, "from": "client"}], until_s=10)
    assert [e.side for e in kinds(r, kind="established")] == ["client", "server"]
    assert r.client.fate == r.server.fate == "alive"


def test_rto_max_ms_needs_kernel_6_15():
    import kalab
    with pytest.raises(kalab.ScenarioError, match="kernel >= 6.15"):
        kalab.load({"client": {"kernel": "6.1", "sysctl": {"net.ipv4.tcp_rto_max_ms": 5000}}, "server": {}})
    r = run({"sysctl": {"net.ipv4.tcp_rto_max_ms": 5000}}, traffic=SEND, faults=CUT, until_s=3000)
    gaps = [b.t_s - a.t_s for a, b in zip(kinds(r, "client", kind="retransmit"), kinds(r, "client", kind="retransmit")[1:])]
    assert max(gaps) == pytest.approx(5.0)
