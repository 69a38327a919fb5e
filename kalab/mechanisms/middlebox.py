"""NAT and firewall idle timers on the path (docs/mechanisms.md §Middleboxes).

A middlebox keeps one mapping for the connection.  Every packet that reaches
it refreshes the mapping; once a mapping has been idle for its timeout it
expires, and from then on (``on_expiry``):

* ``"drop"`` -- every later packet is silently discarded (GCP Cloud NAT,
  Azure defaults, Linux conntrack with ``nf_conntrack_tcp_loose=0``);
* ``"rst"`` -- every later packet is answered with an RST to its sender (AWS
  NAT gateway: "returns an RST packet to any resources ... that attempt to
  continue the connection"; AWS NLB).

Linux conntrack shortens the established timeout to
``nf_conntrack_tcp_timeout_unacknowledged`` (300 s) while data is
unacknowledged (``nf_conntrack_tcp_packet``); ``unack_timeout_s`` models it.
Keepalive probes are packets like any other and refresh the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

ON_EXPIRY = ("drop", "rst")


@dataclass(frozen=True)
class MiddleboxPreset:
    """A documented default.  ``source`` cites where the numbers come from."""

    idle_timeout_s: float
    on_expiry: str
    unack_timeout_s: float | None
    source: str
    configurable: str = ""


#: Presets by name; each value is pinned by a test.
PRESETS: dict[str, MiddleboxPreset] = {
    "linux-conntrack": MiddleboxPreset(
        432000, "drop", 300,
        "nf_conntrack_tcp_timeout_established 432000 s (5 days), _unacknowledged 300 s "
        "(net/netfilter/nf_conntrack_proto_tcp.c tcp_timeouts[])",
        "net.netfilter.nf_conntrack_tcp_timeout_established"),
    "openwrt": MiddleboxPreset(
        7440, "drop", 300,
        "OpenWrt sysctl-nf-conntrack.conf: nf_conntrack_tcp_timeout_established=7440 (2 h 4 min, RFC 5382 REQ-5 minimum)"),
    "aws-nat": MiddleboxPreset(
        350, "rst", None,
        "AWS NAT gateway: 350 s idle timeout, not configurable; RST to the inside host afterwards "
        "(AWS Knowledge Center lambda-vpc-timeout; RST wording unconfirmed, docs/mechanisms.md)"),
    "aws-nlb": MiddleboxPreset(
        350, "rst", None,
        "AWS Network Load Balancer: default TCP idle timeout 350 s (tcp.idle_timeout.seconds 60-6000)",
        "60..6000 s"),
    "aws-network-firewall": MiddleboxPreset(
        350, "drop", None,
        "AWS Network Firewall TcpIdleTimeoutSeconds default 350 (60-6000); data packets dropped after",
        "60..6000 s"),
    "gcp-cloud-nat": MiddleboxPreset(
        1200, "drop", None,
        "GCP Cloud NAT tcpEstablishedIdleTimeoutSec defaults to 1200 s; silent drop (secondary sources)"),
    "azure-lb": MiddleboxPreset(
        240, "drop", None,
        "Azure Load Balancer: default idle timeout 4 min (4-100 min); silently drops unless TCP reset is enabled",
        "240..6000 s"),
    "azure-nat": MiddleboxPreset(
        240, "drop", None,
        "Azure NAT gateway idleTimeoutInMinutes: 4 to 120, default 4 minutes",
        "240..7200 s"),
}


def effective_timeout_s(idle_timeout_s: float, unack_timeout_s: float | None, data_unacked: bool) -> float:
    """The timeout that applies after a packet: conntrack uses the unack timeout if shorter."""
    if data_unacked and unack_timeout_s is not None and unack_timeout_s < idle_timeout_s:
        return unack_timeout_s
    return idle_timeout_s


#: Floating-point tolerance [s] of "idle for its timeout": far below a tick.
EPS_S = 1e-9


def expires_at_s(last_seen_s, timeout_s):
    """When a mapping last refreshed at ``last_seen_s`` expires [s]: ``last_seen + timeout`` (arrays broadcast)."""
    return last_seen_s + timeout_s


def expired(now_s, expires_s):
    """Has the mapping expired at ``now_s`` [s]?  Once idle for its timeout (:func:`expires_at_s`) it
    is gone: a packet at the expiry itself already meets the expired mapping (the expiry check runs
    first).  ``now + 1e-9 >= expiry``; arrays broadcast.  docs/mechanisms.md §Middleboxes
    (measured: ``nat-expiry-drop-keepalive-too-slow.json``).
    """
    return now_s + EPS_S >= expires_s
