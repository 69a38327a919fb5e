"""NAT/firewall idle timers (docs/mechanisms.md §Middleboxes)."""

import pytest

from helpers import kinds, run
from kalab.mechanisms import middlebox as mb


@pytest.mark.parametrize("name,idle,on_expiry", [
    ("linux-conntrack", 432000, "drop"), ("openwrt", 7440, "drop"), ("aws-nat", 350, "rst"), ("aws-nlb", 350, "rst"),
    ("aws-network-firewall", 350, "drop"), ("gcp-cloud-nat", 1200, "drop"), ("azure-lb", 240, "drop"),
    ("azure-nat", 240, "drop")])
def test_presets_are_pinned(name, idle, on_expiry):
    p = mb.PRESETS[name]
    assert (p.idle_timeout_s, p.on_expiry) == (idle, on_expiry)
    assert p.source


def test_aws_nat_answers_after_350s_with_rst():
    r = run(path={"middleboxes": [{"preset": "aws-nat"}]}, traffic=[{"at_s": 400, "from": "client"}])
    assert kinds(r, "path", kind="mapping_expired")[0].t_s == 350.0
    assert r.client.by == "middlebox.reset" and r.client.sees == "ECONNRESET"
    assert r.server.fate == "half_open"


def test_traffic_just_inside_the_timeout_keeps_the_mapping():
    r = run(path={"middleboxes": [{"preset": "aws-nat"}]},
            traffic=[{"at_s": 349, "from": "client"}, {"at_s": 698, "from": "client"}], until_s=700)
    assert not kinds(r, "path", kind="mapping_expired") and r.client.fate == "alive"


def test_keepalive_shorter_than_the_middlebox_timeout_refreshes_it():
    """Keepalive probes are packets like any other: they refresh the mapping."""
    short = run({"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 300}}, path={"middleboxes": [{"preset": "aws-nat"}]},
                until_s=4000)
    long_ = run({"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 400}}, path={"middleboxes": [{"preset": "aws-nat"}]},
                until_s=4000)
    assert short.client.fate == "alive" and not kinds(short, "path", kind="mapping_expired")
    assert long_.client.by == "middlebox.reset" and long_.client.at_s == pytest.approx(400.0005)


def test_drop_mode_makes_the_peer_find_out_by_its_own_timers():
    r = run({"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 400, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}},
            path={"middleboxes": [{"kind": "nat", "idle_timeout_s": 350, "on_expiry": "drop"}]}, until_s=4000)
    assert r.client.by == "tcp.keepalive" and r.client.at_s == pytest.approx(430.0)


def test_conntrack_uses_300s_while_data_is_unacknowledged():
    """nf_conntrack_tcp_timeout_unacknowledged: the 5-day entry expires 300 s after the last packet with unacked data."""
    r = run({"sysctl": {"net.ipv4.tcp_retries2": 15}}, path={"middleboxes": [{"preset": "linux-conntrack"}]},
            traffic=[{"at_s": 10, "from": "server"}], faults=[{"kind": "sleep", "side": "client", "at_s": 5, "for_s": 5000}],
            until_s=6000)
    exp = kinds(r, "path", kind="mapping_expired")
    assert exp and "idle 300 s" in exp[0].detail
