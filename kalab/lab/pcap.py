"""Read a tcpdump capture and name each TCP segment the way the model's timeline does.

Only the classic pcap format with Ethernet frames (``tcpdump -i IFACE -w``) is
read: a 24-byte file header, then per packet a 16-byte record header, an
Ethernet header, IPv4 and TCP.  Standard library only.

Classification, per sender, from what the capture itself shows:

* ``syn`` / ``syn_retransmit``: a SYN (a repeat of the same ISN is a retransmission);
* ``keepalive_probe``: no data, no SYN/FIN/RST, and ``seq == peer's last ACK - 1``
  (Linux ``tcp_xmit_probe_skb`` sends ``snd_una - 1``);
* ``retransmit``: data (or a FIN) starting below what this side already sent;
* ``data``: new data; ``fin``: a new FIN; ``rst``: an RST;
* pure ACKs are not events (``ack``), except that an ACK answering a
  keepalive probe is reported as ``keepalive_ack`` for the prober's side.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Packet:
    ts: float           # capture time (CLOCK_REALTIME) [s]
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    length: int         # TCP payload bytes

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def fin(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def rst(self) -> bool:
        return bool(self.flags & 0x04)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & 0x10)


def read_pcap(path: str | Path) -> list[Packet]:
    data = Path(path).read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        ts = sec + frac / (1e9 if nano else 1e6)
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6 or len(ip) < ihl + 20:
            continue
        tcp = ip[ihl:]
        sport, dport, seq, ack, off_flags = struct.unpack("!HHIIH", tcp[:14])
        thl = (off_flags >> 12) * 4
        flags = off_flags & 0x1FF
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        out.append(Packet(ts, src, dst, sport, dport, seq, ack, flags, max(0, total - ihl - thl)))
    return out


def classify(packets: list[Packet], side_of: dict[str, str]) -> list[tuple[float, str, str]]:
    """Name each segment: ``[(ts, side, kind), ...]`` in capture order.

    ``side_of`` maps a source address to ``"client"``/``"server"``; packets
    from other addresses are ignored (the caller handles the router's own).
    """
    sent_end: dict[str, int] = {}      # per side: highest seq + len (+SYN/FIN) seen
    peer_ack: dict[str, int] = {}      # per side: last ACK number the OTHER side sent
    syn_seq: dict[str, int] = {}
    probe_pending: dict[str, bool] = {}
    events = []
    for p in packets:
        side = side_of.get(p.src)
        if side is None:
            continue
        other = "server" if side == "client" else "client"
        end = (p.seq + p.length + (1 if p.syn else 0) + (1 if p.fin else 0)) % 2**32
        if p.rst:
            kind = "rst"
        elif p.syn:
            kind = "syn_retransmit" if syn_seq.get(side) == p.seq else "syn"
            syn_seq[side] = p.seq
        elif p.length == 0 and not p.fin and side in peer_ack and p.seq == (peer_ack[side] - 1) % 2**32:
            kind = "keepalive_probe"
            probe_pending[side] = True
        elif (p.length or p.fin) and side in sent_end and seq_before(p.seq, sent_end[side]):
            kind = "retransmit"
        elif p.length:
            kind = "data"
        elif p.fin:
            kind = "fin"
        else:
            kind = "ack"
        if p.has_ack:
            if probe_pending.get(other) and kind in ("ack", "data"):
                events.append((p.ts, other, "keepalive_ack"))
                probe_pending[other] = False
            peer_ack[other] = p.ack
        if side not in sent_end or seq_before(sent_end[side], end):
            sent_end[side] = end
        events.append((p.ts, side, kind))
    return events


def seq_before(a: int, b: int) -> bool:
    """TCP sequence comparison (wrap-around safe): a < b."""
    return ((a - b) & 0xFFFFFFFF) > 0x7FFFFFFF
