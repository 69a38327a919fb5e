"""The router between the two hosts: the link cut, the NAT, and the faults it plays, in time order.

How the lab plays each fault (nft(8) rules in the router's namespace, :mod:`kalab.lab.netns`):

* ``link_down``: the router drops everything it receives, both ways, at ``prerouting`` priority
  -300 -- before conntrack (``NF_IP_PRI_CONNTRACK`` = -200, ``include/uapi/linux/netfilter_ipv4.h``),
  so a cut link does not refresh a NAT mapping (as in the model);
* ``host_crash``: the same, for good; the crashed side's own processes keep running behind the
  cut, so the measurement records that side as dead at the crash (``host.crash``), which is what a
  crash is, and ignores its later packets;
* ``host_reboot``: cut, kill the host's processes, delete its namespace (all its sockets), build it
  again with the same address, and restore the link after ``down_s``: the fresh stack answers old
  segments with RST;
* ``process_kill``: SIGKILL to the program's PID; its kernel closes the socket;
* NAT: masquerade on the router, conntrack timeouts from the middlebox, ``nf_conntrack_tcp_loose=0``
  so an expired flow is INVALID, then dropped or rejected with a TCP reset (``on_expiry``)
  (kernel ``Documentation/networking/nf_conntrack-sysctl.rst``);
* ``sleep``: refused (:mod:`kalab.lab.supported`) -- one kernel cannot stop one namespace's clocks.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from .netns import Topology

if TYPE_CHECKING:
    from ..scenario import Fault, Middlebox, Scenario

#: Faults after which no RTT sample reaches the host whose segments are lost.
CUTS = ("link_down", "host_crash", "host_reboot")
#: The router's two interfaces: towards the client, towards the server.
IFACES = ("rc", "rs")


def iface_to(side: str) -> str:
    """The router's interface on the link to ``side``."""
    return "rc" if side == "client" else "rs"


class Router:
    """The router namespace's nftables: a set of blocked interfaces (the cut) and at most one NAT."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        # Cuts may overlap (a link_down during another): the link is restored when the last one ends.
        self.blocked: dict[str, int] = {iface: 0 for iface in IFACES}

    def build(self, box: Middlebox | None) -> None:
        """The cut's table, always; the NAT of middlebox ``box`` (or None) with its conntrack timeouts."""
        self.topo.nft("""
table inet kalab {
  set blocked { type ifname; }
  chain pre { type filter hook prerouting priority -300; policy accept; iifname @blocked drop; }
}
""")
        if box is None:
            return
        idle = int(round(box.idle_timeout_s))
        unack = int(round(box.unack_timeout_s)) if box.unack_timeout_s else max(idle, 300)
        for key, value in (("nf_conntrack_tcp_timeout_established", idle),
                           ("nf_conntrack_tcp_timeout_unacknowledged", unack),
                           ("nf_conntrack_tcp_timeout_max_retrans", unack),
                           ("nf_conntrack_tcp_loose", 0)):
            self.topo.sysctl("router", f"net.netfilter.{key}", value)
        verdict = "drop" if box.on_expiry == "drop" else "reject with tcp reset"
        self.topo.nft(f"""
table ip kalabnat {{
  chain post {{ type nat hook postrouting priority 100; oifname "rs" masquerade; }}
  chain forwarding {{ type filter hook forward priority 0; ct state invalid {verdict}; }}
  chain inbound {{ type filter hook input priority 0; ct state invalid {verdict}; }}
}}
""")

    def cut(self, on: bool) -> None:
        """Cut the link both ways (``on``) or end one cut."""
        for iface in IFACES:
            self.blocked[iface] += 1 if on else -1
            op = "add" if on and self.blocked[iface] == 1 else ("delete" if not on and self.blocked[iface] == 0 else None)
            if op:
                self.topo.nft(f'{op} element inet kalab blocked {{ "{iface}" }}\n')

    def play(self, what: str, f: Fault, procs: dict[str, subprocess.Popen]) -> None:
        """Apply one action of :func:`schedule`; a rebooted host's program leaves ``procs``."""
        if what in ("link_down", "host_crash"):
            self.cut(True)
        elif what == "unblock":
            self.cut(False)
        elif what == "host_reboot":
            self.cut(True)
            self.topo.reboot(f.side)
            if f.side in procs:
                procs.pop(f.side)
        elif what == "reboot_up":
            self.cut(False)
        elif what == "process_kill":
            p = procs.get(f.side)
            if p is not None:
                self.topo.kill(p)


def before_connect(sc: Scenario) -> list[tuple[int, Fault]]:
    """``(index, fault)`` of the cuts at t = 0 of a scenario that starts with ``connect()``: they are
    applied before the client connects, so its very first SYN is lost."""
    if sc.start != "connect":
        return []
    return [(i, f) for i, f in enumerate(sc.faults) if f.kind in ("link_down", "host_crash") and f.at_s == 0]


def schedule(sc: Scenario) -> list[tuple[float, str, tuple[int, Fault]]]:
    """Every fault's actions, ``(seconds after t = 0, action, (index, fault))``, in time order: the
    fault itself (its kind), and ``unblock`` after a finite ``link_down``, ``reboot_up`` after a
    ``host_reboot``'s ``down_s``.  A cut already made before connect contributes its end only."""
    early = {i for i, _ in before_connect(sc)}
    actions = []
    for i, f in enumerate(sc.faults):
        if i in early:
            if f.kind == "link_down" and f.for_s is not None:
                actions.append((f.for_s, "unblock", (i, f)))
            continue
        actions.append((f.at_s, f.kind, (i, f)))
        if f.kind == "link_down" and f.for_s is not None:
            actions.append((f.at_s + f.for_s, "unblock", (i, f)))
        if f.kind == "host_reboot":
            actions.append((f.at_s + f.for_s, "reboot_up", (i, f)))
    actions.sort(key=lambda a: a[0])
    return actions
