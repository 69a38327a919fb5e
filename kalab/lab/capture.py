"""What the lab reads from the kernel while a run goes on: the wire, and the RTT estimate.

* The wire: tcpdump(8) on both router interfaces, writing a pcap file each (``-w``), packets handed
  over as they come (``-U``, ``--immediate-mode``: no buffer timeout to lose at exit), headers only
  (``-s 128``).  Each host's own segments are those entering the router from it.  A rebooted host's
  link is a new interface, so its capture starts again in a new file.  :mod:`kalab.lab.pcap` reads
  the files back.
* The smoothed RTT the kernel holds for the connection (``ss -ti``, ss(8): ``rtt:SRTT/RTTVAR`` in
  ms), which the model takes as given: the RTO of lost segments grows from it.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from .lines import Lines
from .netns import Topology, sh
from .pcap import Packet, read_pcap


class Capture:
    """tcpdump on the router's interfaces; started one by one, stopped and read back together."""

    def __init__(self, topo: Topology, work: Path, lines: Lines) -> None:
        self.topo, self.work, self.lines = topo, work, lines
        self.caps: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, iface: str) -> None:
        """Capture on ``iface`` (a new file if it was captured before), once tcpdump says it listens."""
        n = sum(1 for c in self.caps if c[0] == iface)
        f = self.work / f"{iface}{n}.pcap"
        p = self.topo.popen("router", ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "128",
                                       "-w", str(f), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        who = f"tcpdump-{iface}{n}"
        self.lines.add(p.stderr, who)
        self.caps.append((iface, p, f))
        self.lines.wait_for(who, "listening on", 10)

    def stop(self) -> None:
        time.sleep(0.2)  # let the capture take the last packets
        for _, p, _ in self.caps:
            self.topo.end(p)

    def packets(self) -> list[tuple[str, Packet]]:
        """Every captured segment with the interface it was seen on, file by file."""
        packets = []
        for iface, _, f in self.caps:
            if f.exists():
                packets += [(iface, pk) for pk in read_pcap(f)]
        return packets


def srtt_ms(topo: Topology, side: str, port: int) -> float | None:
    """The connection's smoothed RTT as the kernel has it now (``ss -ti``: ``rtt:SRTT/RTTVAR``)."""
    out = sh("ip", "netns", "exec", topo.ns[side], "ss", "-tinH", "state", "established",
             f"( sport = :{port} or dport = :{port} )", check=False).stdout
    m = re.search(r"\brtt:([\d.]+)/([\d.]+)", out)
    return float(m.group(1)) if m else None
