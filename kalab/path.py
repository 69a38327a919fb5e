"""The path between the two hosts: a one-way delay of ``rtt/2``, a link that can be cut, middleboxes.

Rules (docs/scenarios.md, docs/mechanisms.md §Middleboxes):

* a ``link_down`` cut sits at the edge of the path: a segment sent while the link is down is lost
  before it reaches any middlebox, in both directions;
* middleboxes see a segment when it is sent, in order from client to server (reversed for the other
  direction); an expired mapping drops or answers with RST (:mod:`kalab.mechanisms.middlebox`); the
  RST reaches the sender ``rtt/2`` later;
* what arrives is handed to the destination host (:meth:`kalab.host.Host.receive`), which decides
  whether it is up and has a socket for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import engine as eng
from .mechanisms import middlebox as mbx
from .wire import Segment

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .host import Host
    from .record import Record
    from .scenario import Middlebox, PathSettings


class MiddleboxState:
    """One middlebox's mapping for the connection: when it last saw a segment, whether it expired,
    and (for a box with a shorter timeout for unacknowledged data) each side's data and ACK edges."""

    def __init__(self, index: int, box: "Middlebox") -> None:
        self.index = index
        self.box = box
        self.last_seen = 0.0
        self.expired = False
        self.check = None
        self.data_end = {"client": 1, "server": 1}   # highest data byte seen from each side
        self.acked = {"client": 1, "server": 1}      # highest ACK seen for each side's data
        self.unacked = False
        # Only a box whose unack timeout is shorter than its idle timeout cares about unacked data.
        self.tracks_unacked = box.unack_timeout_s is not None and box.unack_timeout_s < box.idle_timeout_s

    def timeout(self) -> float:
        return mbx.effective_timeout_s(self.box.idle_timeout_s, self.box.unack_timeout_s, self.unacked)


class Path:
    """The link and the middleboxes: ``transmit`` sends a segment on; ``cut`` is the ``link_down`` fault."""

    __slots__ = ("engine", "record", "rtt_s", "one_way_s", "link_down", "link_up_t", "boxes", "boxes_from", "hosts",
                 "_receive")

    def __init__(self, engine: "Engine", record: "Record", settings: "PathSettings") -> None:
        self.engine = engine
        self.record = record
        self.rtt_s = settings.rtt_s
        self.one_way_s = settings.rtt_s / 2
        self.link_down = False
        self.link_up_t: float | None = None          # when the link last came back (scenario time)
        self.boxes = [MiddleboxState(i, b) for i, b in enumerate(settings.middleboxes)]
        self.boxes_from = {"client": self.boxes, "server": self.boxes[::-1]}  # order a segment meets them
        self.hosts: dict[str, "Host"] = {}
        self._receive: dict[str, Callable[[Segment], None]] = {}

    def attach(self, hosts: dict[str, "Host"]) -> None:
        """The two hosts at the ends (each needs the path to send, the path needs them to deliver)."""
        self.hosts = hosts
        self._receive = {side: h.receive for side, h in hosts.items()}

    # ------------------------------------------------------------ segments
    def transmit(self, seg: Segment) -> None:
        """``seg`` leaves ``seg.src`` now: lost, answered by a middlebox, or delivered ``rtt/2`` later."""
        if not self.hosts[seg.src].up:
            return
        if self.link_down:
            self._drop(seg, "link down")
            return
        engine = self.engine
        for st in self.boxes_from[seg.src]:
            if st.expired:
                if st.box.on_expiry == "rst" and not seg.rst:
                    self.record.log("path", "path", "middlebox_rst",
                                    f"middlebox {st.index} answers {seg.describe()} with RST")
                    rst = Segment(src=seg.dst, dst=seg.src, seq=seg.ack or 0, ack=seg.seq + seg.length, rst=True,
                                  label="middlebox_rst")
                    engine.at_fixed(engine.now + self.one_way_s, eng.DELIVER, self._receive[rst.dst], rst)
                else:
                    self._drop(seg, f"middlebox {st.index} mapping expired")
                return
            self._refresh(st, seg)
        # Arrival: the destination host takes it (Host.receive), rtt/2 from now.
        engine.at_fixed(engine.now + self.one_way_s, eng.DELIVER, self._receive[seg.dst], seg)

    def _drop(self, seg: Segment, why: str) -> None:
        self.record.log("path", "path", "dropped", f"{seg.src}->{seg.dst} {seg.label}: {why}")

    # ------------------------------------------------------------ middleboxes
    def start(self) -> None:
        """The handshake passed every box at t = 0: their idle clocks start now."""
        for st in self.boxes:
            st.check = self.engine.at(st.timeout(), eng.FAULT, self._box_check, st)

    def _refresh(self, st: MiddleboxState, seg: Segment) -> None:
        now = self.engine.now
        st.last_seen = now
        if st.tracks_unacked:
            if seg.length:
                st.data_end[seg.src] = max(st.data_end[seg.src], seg.seq + seg.length)
            if seg.ack is not None:
                st.acked[seg.dst] = max(st.acked[seg.dst], seg.ack)
            st.unacked = st.data_end["client"] > st.acked["client"] or st.data_end["server"] > st.acked["server"]
            due = now + st.timeout()
            if st.check is not None and st.check.t > due + 1e-9:
                st.check.cancel()   # the timeout just got shorter (data now unacknowledged)
                st.check = None
        if st.check is None:
            st.check = self.engine.at(now + st.timeout(), eng.FAULT, self._box_check, st)

    def _box_check(self, st: MiddleboxState) -> None:
        """Expire the mapping if it has been idle for its timeout; else look again later.

        (One check per timeout period rather than one event per packet keeps long runs fast.)
        """
        st.check = None
        due = mbx.expires_at_s(st.last_seen, st.timeout())
        if mbx.expired(self.engine.now, due):
            st.expired = True
            b = st.box
            self.record.log("path", "path", "mapping_expired",
                            f"middlebox {st.index} ({b.preset or b.kind}) idle {st.timeout():g} s; then {b.on_expiry}")
        else:
            st.check = self.engine.at(due, eng.FAULT, self._box_check, st)

    # ------------------------------------------------------------ the link_down fault
    def cut(self, for_s: float | None) -> None:
        """The link goes down now, for ``for_s`` seconds (None: for good)."""
        self.link_down = True
        self.record.log("path", "path", "link_down", "for good" if for_s is None else f"for {for_s:g} s")
        if for_s is not None:
            self.engine.at(self.engine.now + for_s, eng.FAULT, self._link_up)

    def _link_up(self) -> None:
        self.link_down = False
        self.link_up_t = self.engine.now
        self.record.log("path", "path", "link_up", "")
