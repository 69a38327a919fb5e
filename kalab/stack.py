"""One host's TCP endpoint for the connection: a small state machine over segments.

The endpoint is faithful where timers are concerned and abstract elsewhere:

* sequence numbers are byte counts (ISS 0, the SYN and the FIN take one each);
  a retransmission re-sends everything outstanding as one segment, so the
  receiver never has to reorder (out-of-order data is dropped and dup-ACKed);
* every in-window segment is ACKed at once (no delayed ACK, no Nagle);
* the timer decisions themselves are not written here: they are calls into
  :mod:`kalab.mechanisms` (keepalive, retransmission, SYN, TIME_WAIT).

What counts as "received" for keepalive follows the kernel: a segment that
fails the sequence check (a peer's keepalive probe, ``seq = snd_una - 1``, or an
old duplicate) is only answered with a duplicate ACK; it updates neither
``lrcvtime`` nor ``rcv_tstamp`` (``tcp_validate_incoming``).  The ACK that
answers our own probe is in window and acceptable, so it resets idleness and
``probes_out`` (``tcp_ack``).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Protocol

from .mechanisms import tcp_keepalive as ka
from .mechanisms import tcp_retransmit as rt
from .mechanisms import time_wait as tw
from .wire import Msg, Segment

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Clock, Handle
    from .settings import HostSettings


def _end_seq(m: tuple) -> int:
    return m[0]


#: Established-like states in which the application can use the socket.
OPEN_STATES = ("ESTABLISHED", "CLOSE_WAIT")


class Kernel(Protocol):
    """What an :class:`Endpoint` needs of its host: the whole interface (:class:`kalab.host.Host`;
    tests use a fake).  Times are scenario seconds; ``mono``/``jiffies`` are the host's own clocks."""

    side: str                    # "client" or "server"
    settings: "HostSettings"     # .tcp (the socket's settings) and .hz
    clock: "Clock"

    def mono(self, t: float) -> float:
        """CLOCK_MONOTONIC at ``t`` [s] (stopped while the host sleeps)."""

    def jiffies(self, t: float) -> int:
        """The kernel's tick counter at ``t``."""

    def kernel_timer(self, delay_s: float, fn, *args, deadline_late_s: float | None = None) -> "Handle":
        """Run ``fn(*args)`` after ``delay_s`` rounded up to jiffies, with timer-wheel slack; ``cancel()``-able."""

    def transmit(self, seg: Segment) -> None:
        """Send ``seg`` onto the path now."""

    def log(self, layer: str, kind: str, detail: str = "") -> None:
        """An event of this host on the timeline, now."""

    def link_up_t(self) -> float | None:
        """When the path's link last came back up, for the timeline's words only (None: never went down)."""


class SocketUser(Protocol):
    """What an :class:`Endpoint` tells the program holding it (:class:`kalab.apps.App`)."""

    def established(self) -> None:
        """The handshake completed."""

    def readable(self, msgs: list[Msg]) -> None:
        """Whole messages arrived, in order."""

    def eof(self) -> None:
        """The peer's FIN arrived (after all its data)."""

    def error(self, errno: str, by: str) -> None:
        """The socket is gone with ``errno``; ``by`` is the cause (a :data:`kalab.result.BY` value)."""


class Endpoint:
    """The TCP control block of one side."""

    def __init__(self, kernel: Kernel, state: str, srtt_s: float, user: SocketUser) -> None:
        """``srtt_s``: the smoothed RTT the connection starts with (the path's, or what the scenario
        says the connection has estimated); ``user``: the program told of data, EOF and errors."""
        self.k = kernel
        self.clock = kernel.clock
        self.user = user
        self.s = kernel.settings.tcp
        self.hz = kernel.settings.hz
        self.side = kernel.side
        self.peer = "server" if self.side == "client" else "client"
        self.state = state
        self.snd_una = self.snd_nxt = 1
        self.rcv_nxt = 1
        self.fin_seq: int | None = None
        self.close_pending = False
        self.out_msgs: list[tuple[int, Msg]] = []     # (end_seq, msg) not yet acknowledged
        self.unsent: list[Msg] = []
        # RTO and TLP follow the kernel's smoothed RTT.
        self.srtt_s = srtt_s
        self.rto_s = rt.initial_rto_s(srtt_s, self.hz, self.s.rto_min_s, self.s.rto_max_s)
        self.rto0_s = self.rto_s
        self.head_sent_s = 0.0
        self.retransmits = 0
        self.total_rto = 0
        self.retrans_stamp: float | None = None        # host monotonic seconds
        self.first_retx_t: float | None = None         # scenario time, for messages
        self.tlp_done = False
        self.rtx_timer = None
        self.rtx_kind = ""
        self.ka_timer = None
        self.probes_out = 0
        self.ka_last_intvl = 0.0
        self.misc_timer = None                         # TIME_WAIT / FIN_WAIT_2
        self.fin_wait2_stages: list[float] = []        # an orphan's FIN_WAIT_2 timers still to run [s]
        self.last_rx = kernel.jiffies(kernel.clock.now)  # jiffies of the last received segment
        self.last_rx_late = kernel.clock.late_s         # how late (at most) that receipt really was
        self.orphan = False
        self.connect_stamp: float | None = None
        s = self.s
        self._ka_limit = "" if s.keepalive_rule != "linux" else (
            f" of {s.keepalive_count}" if s.user_timeout_s == 0 else f", TCP_USER_TIMEOUT {s.user_timeout_s:g} s")

    # ------------------------------------------------------------ helpers
    @property
    def alive(self) -> bool:
        return self.state != "CLOSED"

    def packets_out(self) -> int:
        """Segments in flight (``tp->packets_out``): one per unacknowledged message, plus the FIN."""
        fin = 1 if self.fin_seq is not None and self.fin_seq >= self.snd_una else 0
        return len(self.out_msgs) + fin

    def _log(self, kind: str, detail: str = "") -> None:
        self.k.log("tcp", kind, detail)

    def _send(self, seq: int, ack: int | None, length: int = 0, syn: bool = False, fin: bool = False,
              rst: bool = False, label: str = "ack", msgs: tuple = ()) -> Segment:
        seg = Segment(self.side, self.peer, seq, ack, length, syn, fin, rst, label, msgs)
        self.k.transmit(seg)
        return seg

    def _send_ack(self) -> None:
        self._send(seq=self.snd_nxt, ack=self.rcv_nxt, label="ack")

    def _outstanding_segment(self, label: str) -> None:
        """(Re)send everything from snd_una: data and, if sent, our FIN."""
        fin = self.fin_seq is not None and self.fin_seq < self.snd_nxt
        length = self.snd_nxt - self.snd_una - (1 if fin else 0)
        msgs = tuple(m for m in self.out_msgs if m[0] > self.snd_una)
        self._send(seq=self.snd_una, ack=self.rcv_nxt, length=max(length, 0), fin=fin, syn=self.state == "SYN_SENT",
                   label=label, msgs=msgs)

    def _cancel(self, name: str) -> None:
        h = getattr(self, name)
        if h is not None:
            h.cancel()
            setattr(self, name, None)

    def _cancel_all(self) -> None:
        for n in ("rtx_timer", "ka_timer", "misc_timer"):
            self._cancel(n)

    # ------------------------------------------------------------ set-up
    def start_established(self) -> None:
        self.state = "ESTABLISHED"
        self.last_rx = self.k.jiffies(self.clock.now)
        self.last_rx_late = self.clock.late_s
        self.arm_keepalive(self.s.keepalive_idle_s)

    def connect(self) -> None:
        """Active open: SYN at now; the SYN timer follows tcp_syn_retries (docs/mechanisms.md §Connection
        set-up)."""
        self.state = "SYN_SENT"
        self.snd_una, self.snd_nxt = 0, 1
        self.connect_stamp = self.k.mono(self.clock.now)
        self.rto_s = rt.TCP_TIMEOUT_INIT_S
        self._send(seq=0, ack=None, syn=True, label="syn")
        self._log("syn_sent", "connect()")
        self._arm_rtx(self.rto_s, "syn")

    def accept(self, syn: Segment) -> None:
        """A listener's new socket answers ``syn`` with a SYN-ACK (SYN-ACK retransmission is not modelled)."""
        self.snd_una, self.snd_nxt = 0, 1
        self.rcv_nxt = syn.seq + 1
        self._send(seq=0, ack=self.rcv_nxt, syn=True, label="synack")

    # ------------------------------------------------------------ application calls
    def can_send(self) -> bool:
        return self.state in OPEN_STATES and not self.close_pending

    def send(self, msg: Msg) -> bool:
        if not self.can_send():
            return False
        if self.retransmits or self.unsent or self.rtx_kind == "rto":
            # In loss recovery cwnd is 1: new data waits behind the retransmission.
            self.unsent.append(msg)
            return True
        self._transmit_new(msg)
        return True

    def _transmit_new(self, msg: Msg) -> None:
        was_idle = self.packets_out() == 0
        seq = self.snd_nxt
        self.snd_nxt += msg.nbytes
        self.out_msgs.append((self.snd_nxt, msg))
        self._log("data_sent", f"{msg.nbytes} bytes ({msg.kind})")
        self._send(seq=seq, ack=self.rcv_nxt, length=msg.nbytes, label=msg.kind, msgs=((self.snd_nxt, msg),))
        if was_idle:
            self.head_sent_s = self.clock.now
        self._arm_after_send()

    def _arm_after_send(self) -> None:
        """Arm the TLP (Linux) or the RTO after new data leaves (``tcp_schedule_loss_probe``)."""
        if self.s.retransmit_rule == "linux" and not self.tlp_done and self.retransmits == 0:
            # rto - (now - head): the two times are close, so their difference is exact; head + rto - now
            # lost the last digits at large times (0.2010000038 s at 3e7 s: one jiffy more at HZ=1000).
            rto_left = max(self.rto_s - (self.clock.now - self.head_sent_s), 1 / self.hz)
            pto = rt.tlp_timeout_s(self.srtt_s, rto_left, self.packets_out(), self.hz)
            self._arm_rtx(pto, "tlp")
        elif self.rtx_timer is None:
            self._arm_rtx(self.rto_s, "rto")

    def close(self) -> None:
        """The application closes (or dies): FIN after queued data; the socket is orphaned."""
        self.orphan = True
        if self.state == "SYN_SENT":
            self._gone("aborted connect")
            return
        if self.state == "ESTABLISHED":
            self.state = "FIN_WAIT_1"
        elif self.state == "CLOSE_WAIT":
            self.state = "LAST_ACK"
        else:
            return
        self.close_pending = True
        if not self.unsent and not self.retransmits:
            self._send_fin()

    def _send_fin(self) -> None:
        self.close_pending = False
        was_idle = self.packets_out() == 0
        self.fin_seq = self.snd_nxt
        self.snd_nxt += 1
        self._log("fin_sent", self.state)
        self._send(seq=self.fin_seq, ack=self.rcv_nxt, fin=True, label="fin")
        if was_idle:
            self.head_sent_s = self.clock.now
        self._cancel("ka_timer")
        self._arm_after_send()

    # ------------------------------------------------------------ timers
    def _arm_rtx(self, delay_s: float, kind: str) -> None:
        self._cancel("rtx_timer")
        self.rtx_kind = kind
        self.rtx_timer = self.k.kernel_timer(delay_s, self._on_rtx)

    def arm_keepalive(self, delay_s: float, deadline: bool = False) -> None:
        self._cancel("ka_timer")
        if self.s.keepalive_enabled:
            self.ka_timer = self.k.kernel_timer(delay_s, self._on_keepalive,
                                                deadline_late_s=self.last_rx_late if deadline else None)

    def _on_keepalive(self) -> None:
        self.ka_timer = None
        if self.state not in ("ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_2") or self.orphan:
            return
        s = self.s
        elapsed = (self.k.jiffies(self.clock.now) - self.last_rx) / self.hz  # keepalive_time_elapsed, in jiffies
        busy = self.packets_out() > 0 or bool(self.unsent)
        if s.keepalive_rule == "bsd":
            act = ka.bsd_keepalive_fire(elapsed_s=elapsed, idle_s=s.keepalive_idle_s, intvl_s=s.keepalive_intvl_s,
                                        count=s.keepalive_count, probes_out=self.probes_out, data_in_flight=busy)
        elif s.keepalive_rule == "solaris":
            act = ka.solaris_keepalive_fire(elapsed_s=elapsed, idle_s=s.keepalive_idle_s, abort_s=s.keepalive_abort_s,
                                            intvl_s=s.keepalive_intvl_s if s.keepalive_intvl_set else None,
                                            last_interval_s=self.ka_last_intvl, rto_s=self.rto_s,
                                            rto_max_s=s.rexmt_max_s, probes_out=self.probes_out, data_in_flight=busy)
        else:
            act = ka.linux_keepalive_fire(elapsed_s=elapsed, idle_s=s.keepalive_idle_s, intvl_s=s.keepalive_intvl_s,
                                          probes=s.keepalive_count, probes_out=self.probes_out,
                                          user_timeout_s=s.user_timeout_s, data_in_flight=busy, hz=self.hz)
        if act.kind == "die":
            by = rt.linux_give_up_by(s.user_timeout_s, "tcp.keepalive") if s.keepalive_rule == "linux" else "tcp.keepalive"
            self._log("keepalive_timeout", f"{self.probes_out} probes unanswered, idle {elapsed:g} s")
            self._log("rst_sent", "tcp_send_active_reset")
            self._send(seq=self.snd_nxt, ack=self.rcv_nxt, rst=True, label="rst")
            self._error("ETIMEDOUT", by)
            return
        if act.kind == "probe":
            self.probes_out = act.probe_number
            self.ka_last_intvl = act.delay_s
            # tcp_write_wakeup -> tcp_xmit_probe_skb: seq = snd_una - 1, no data.
            self._log("keepalive_probe", f"probe {act.probe_number}{self._ka_limit}")
            self._send(seq=self.snd_una - 1, ack=self.rcv_nxt, label="keepalive")
        self.arm_keepalive(act.delay_s, deadline=not act.relative)

    def _on_rtx(self) -> None:
        self.rtx_timer = None
        kind, self.rtx_kind = self.rtx_kind, ""
        if self.state == "CLOSED":
            return
        if self.state == "SYN_SENT":
            self._on_syn_timer()
            return
        if self.packets_out() == 0:
            return
        if kind == "tlp":
            self.tlp_done = True
            self._log("tlp", "tail loss probe")
            self._outstanding_segment("tlp")
            self._arm_rtx(self.rto_s, "rto")
            return
        if self._write_timeout():
            return
        if self.retrans_stamp is None:
            self.retrans_stamp = self.k.mono(self.clock.now)
            self.first_retx_t = self.clock.now
        self.retransmits += 1
        self.total_rto += 1
        self._log("retransmit", f"#{self.retransmits}, RTO {self.rto_s:g} s")
        self._outstanding_segment("retransmit")
        s = self.s
        if s.retransmit_rule == "bsd":
            self.rto_s = rt.bsd_rto_s(self.rto0_s, self.retransmits, s.backoff)
            nxt = self.rto_s
        else:
            cap = s.rexmt_max_s if s.retransmit_rule == "solaris" else s.rto_max_s
            self.rto_s = rt.backoff_rto_s(self.rto_s, cap)
            nxt = rt.clamp_rto_to_user_timeout_s(rto_s=self.rto_s, now_s=self.k.mono(self.clock.now),
                                                 retrans_stamp_s=self.retrans_stamp, user_timeout_s=s.user_timeout_s,
                                                 hz=self.hz) if s.retransmit_rule == "linux" else self.rto_s
        self._arm_rtx(nxt, "rto")

    def _write_timeout(self) -> bool:
        """``tcp_write_timeout``: give up?  (Checked only when the RTO fires.)"""
        s = self.s
        now = self.k.mono(self.clock.now)
        if s.retransmit_rule == "linux":
            boundary = s.retries2
            if self.orphan:
                boundary = rt.orphan_retries(s.orphan_retries, self.rto_s < s.rto_max_s)
            expired = rt.retransmits_timed_out(now_s=now, retrans_stamp_s=self.retrans_stamp,
                                               retransmits=self.retransmits, boundary=boundary,
                                               user_timeout_s=s.user_timeout_s, rto_base_s=rt.TCP_RTO_MIN_S,
                                               rto_max_s=s.rto_max_s, hz=self.hz)
            by = rt.linux_give_up_by(s.user_timeout_s, "tcp.retransmission")
        elif s.retransmit_rule == "bsd":
            expired = rt.bsd_retransmits_timed_out(now_s=now, retrans_stamp_s=self.retrans_stamp,
                                                   retransmits=self.retransmits, max_shift=s.max_shift,
                                                   abort_s=s.abort_s)
            by = "tcp.retransmission"
        else:  # solaris: tcp_ip_abort_interval from the first retransmission
            expired = rt.solaris_retransmits_timed_out(now_s=now, retrans_stamp_s=self.retrans_stamp,
                                                       abort_s=s.abort_s)
            by = "tcp.retransmission"
        if not expired:
            return False
        who = "orphaned socket " if self.orphan else ""
        self._log("retransmission_timeout", f"{who}gave up after {self.retransmits} retransmissions, "
                  f"{now - (self.retrans_stamp or now):g} s after the first; no RST")
        self._error("ETIMEDOUT", by)
        return True

    def _on_syn_timer(self) -> None:
        s = self.s
        now = self.k.mono(self.clock.now)
        expired = rt.syn_expired(retransmits=self.retransmits, syn_retries=s.syn_retries,
                                 linear_timeouts=s.syn_linear_timeouts)
        if not expired:
            expired = rt.retransmits_timed_out(now_s=now, retrans_stamp_s=self.connect_stamp,
                                               retransmits=self.retransmits, boundary=s.syn_retries,
                                               user_timeout_s=s.user_timeout_s, rto_base_s=rt.TCP_TIMEOUT_INIT_S,
                                               rto_max_s=s.rto_max_s, hz=self.hz)
        if expired:
            self._log("syn_timeout", f"no SYN-ACK after {self.retransmits} SYN retransmissions")
            self._error("ETIMEDOUT", "tcp.syn_timeout")
            return
        self.retransmits += 1
        self.total_rto += 1
        self._log("syn_retransmit", f"#{self.retransmits}, RTO {self.rto_s:g} s")
        self._send(seq=0, ack=None, syn=True, label="syn")
        if rt.syn_backs_off(self.total_rto, s.syn_linear_timeouts):
            self.rto_s = rt.backoff_rto_s(self.rto_s, s.rto_max_s)
        nxt = rt.clamp_rto_to_user_timeout_s(rto_s=self.rto_s, now_s=now, retrans_stamp_s=self.connect_stamp,
                                             user_timeout_s=s.user_timeout_s, hz=self.hz)
        self._arm_rtx(nxt, "syn")

    def _on_misc(self) -> None:
        self.misc_timer = None
        if self.state == "FIN_WAIT_2" and self.fin_wait2_stages:
            # tcp_fin_timeout above 60 s: the full socket's keepalive timer ran out; a FIN_WAIT_2
            # mini-socket takes over for the rest (a second timer, with its own slack).
            rest = self.fin_wait2_stages.pop(0)
            self._log("fin_wait2_mini", f"orphaned FIN_WAIT_2 becomes a mini-socket for {rest:g} s more")
            self.misc_timer = self.k.kernel_timer(rest, self._on_misc)
            return
        if self.state == "TIME_WAIT":
            self._log("time_wait_end", "TIME_WAIT over: the connection is gone")
        else:
            self._log("fin_wait2_timeout", "orphaned FIN_WAIT_2 expired (tcp_fin_timeout); silent")
        self.state = "CLOSED"
        self._cancel_all()

    def _enter_time_wait(self) -> None:
        self.state = "TIME_WAIT"
        self._cancel_all()
        flag = " (unverified value)" if self.s.time_wait_unverified else ""
        self._log("time_wait", f"{self.s.time_wait_s:g} s{flag}")
        self.misc_timer = self.k.kernel_timer(self.s.time_wait_s, self._on_misc)

    # ------------------------------------------------------------ receive path
    def receive(self, seg: Segment) -> None:
        if seg.rst:
            by = "middlebox.reset" if seg.label == "middlebox_rst" else "tcp.reset_received"
            self._log("rst_received", "from a middlebox" if by == "middlebox.reset" else "")
            if self.state == "SYN_SENT":
                self._error("ECONNREFUSED", by)
            elif self.state in ("TIME_WAIT",):
                self.state = "CLOSED"
                self._cancel_all()
            else:
                self._error("ECONNRESET", by)
            return
        if self.state == "SYN_SENT":
            if seg.syn and seg.ack == self.snd_nxt:
                self.snd_una = self.snd_nxt
                self.rcv_nxt = seg.seq + 1
                self.retransmits = self.total_rto = 0
                self._cancel("rtx_timer")
                self.rto_s = self.rto0_s = rt.initial_rto_s(self.srtt_s, self.hz, self.s.rto_min_s, self.s.rto_max_s)
                self.state = "ESTABLISHED"
                self.last_rx = self.k.jiffies(self.clock.now)
                self.last_rx_late = self.clock.late_s
                self._send_ack()
                self._log("established", "SYN-ACK received")
                self.arm_keepalive(self.s.keepalive_idle_s)
                self.user.established()
            return
        if seg.syn:  # a duplicate SYN-ACK: our ACK was lost
            self._send_ack()
            return
        if self.state == "SYN_RECV":
            if seg.ack == self.snd_nxt:
                self.snd_una = self.snd_nxt
                self.state = "ESTABLISHED"
                self._cancel("rtx_timer")
                self.last_rx = self.k.jiffies(self.clock.now)
                self.last_rx_late = self.clock.late_s
                self._log("established", "handshake ACK received")
                self.arm_keepalive(self.s.keepalive_idle_s)
                self.user.established()
            else:
                return
        end = seg.seq + seg.length
        in_window = end > self.rcv_nxt or (seg.seq == self.rcv_nxt) or (seg.fin and end >= self.rcv_nxt)
        if not in_window:
            # Old duplicate or a keepalive probe (seq = rcv_nxt - 1): dup ACK only.
            self._send_ack()
            return
        now_j = self.k.jiffies(self.clock.now)
        if seg.ack is not None and seg.ack >= self.snd_una:
            if self.probes_out and not seg.length and not seg.fin:
                self._log("keepalive_ack", f"probe {self.probes_out} answered")
            self.last_rx = now_j
            self.last_rx_late = self.clock.late_s
            self.probes_out = 0
            if seg.ack > self.snd_una:
                self._ack_advanced(min(seg.ack, self.snd_nxt))
                if self.state == "CLOSED":
                    return
        need_ack = False
        readable: list[Msg] = []
        if seg.length and seg.seq <= self.rcv_nxt < end:
            if self.orphan and self.state in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "LAST_ACK"):
                # New data for a socket the application has closed: tcp_reset.
                self._send(seq=self.snd_nxt, ack=end, rst=True, label="rst")
                self._log("rst_sent", "data arrived after close()")
                self._gone("reset after close")
                return
            readable = [m for (e, m) in seg.msgs if self.rcv_nxt < e <= end]
            self.rcv_nxt = end
            self.last_rx = now_j
            self.last_rx_late = self.clock.late_s
            need_ack = True
        elif seg.length:
            need_ack = True
        got_fin = False
        if seg.fin and end == self.rcv_nxt:
            self.rcv_nxt += 1
            need_ack = got_fin = True
        elif seg.fin and end < self.rcv_nxt and self.state == "TIME_WAIT":
            need_ack = True
            self._log("fin_received", "retransmitted FIN in TIME_WAIT: re-ACK, restart TIME_WAIT")
            self._cancel("misc_timer")
            self.misc_timer = self.k.kernel_timer(self.s.time_wait_s, self._on_misc)
        if need_ack:
            self._send_ack()
        if readable:
            self.user.readable(readable)
        if got_fin:
            self._on_fin()

    def _ack_advanced(self, ack: int) -> None:
        self.snd_una = ack
        # out_msgs is in send order, end sequence numbers increasing: the acknowledged ones are a prefix
        # (a bisect, not a scan: 1000 messages in flight made every ACK cost 1000 comparisons).
        cut = bisect.bisect_right(self.out_msgs, ack, key=_end_seq)
        if cut:
            self.out_msgs = self.out_msgs[cut:]
        if self.snd_una < self.snd_nxt:
            # Partial ACK: restart the RTO for what is left.
            self.head_sent_s = self.clock.now
            if self.rtx_kind != "rto" or self.retransmits == 0:
                self._arm_rtx(self.rto_s, "rto")
            return
        self._cancel("rtx_timer")
        self.rtx_kind = ""
        if self.retransmits:
            since = self.k.link_up_t()
            lag = f", {self.clock.now - since:g} s after the link came back" if since is not None and since <= self.clock.now else ""
            self._log("acked", f"outstanding data acknowledged after {self.retransmits} retransmissions{lag}")
        self.retransmits = 0
        self.retrans_stamp = None
        self.tlp_done = False
        self.rto_s = self.rto0_s
        fin_acked = self.fin_seq is not None and ack > self.fin_seq
        if fin_acked:
            if self.state == "FIN_WAIT_1":
                self.state = "FIN_WAIT_2"
                self._log("fin_wait_2", "our FIN was acknowledged")
                if self.orphan:
                    self.fin_wait2_stages = list(tw.fin_wait2_orphan_stages_s(self.s.fin_timeout_s, self.rto_s))
                    self.misc_timer = self.k.kernel_timer(self.fin_wait2_stages.pop(0), self._on_misc)
            elif self.state == "CLOSING":
                self._enter_time_wait()
            elif self.state == "LAST_ACK":
                self._log("closed", "our FIN was acknowledged")
                self.state = "CLOSED"
                self._cancel_all()
            return
        while self.unsent and self.packets_out() == 0:
            self._transmit_new(self.unsent.pop(0))
        if self.close_pending and not self.unsent and self.packets_out() == 0:
            self._send_fin()
        if self.state in OPEN_STATES and self.packets_out() == 0 and self.ka_timer is None:
            self.arm_keepalive(self.s.keepalive_idle_s)

    def _on_fin(self) -> None:
        self._log("fin_received", "")
        if self.state == "ESTABLISHED":
            self.state = "CLOSE_WAIT"
            self.user.eof()
        elif self.state == "FIN_WAIT_1":
            self.state = "CLOSING"
        elif self.state == "FIN_WAIT_2":
            self._enter_time_wait()

    # ------------------------------------------------------------ endings
    def _error(self, errno: str, by: str) -> None:
        """``tcp_write_err`` / ``tcp_reset``: the socket is gone; the application is told."""
        was_orphan = self.orphan
        self._gone(errno)
        if not was_orphan:
            self.user.error(errno, by)

    def _gone(self, why: str) -> None:
        self.state = "CLOSED"
        self._cancel_all()
        self.unsent.clear()


__all__: list[Any] = ["Endpoint", "Kernel", "SocketUser", "OPEN_STATES"]
