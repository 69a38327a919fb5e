"""One host during a run: its clocks, whether it is up, its socket and its program.

A :class:`Host` is what its TCP endpoint and its program see of the world -- it implements
:class:`kalab.stack.Kernel` and :class:`kalab.apps.System`: the time and how late the current event
may really run, kernel timers (jiffy rounding, timer-wheel slack) and program timers (``ppoll``
slack), sending a segment onto the path, and writing the timeline.  It also does what happens to
the host itself: receiving a segment, crashing, rebooting, sleeping and waking.

Sleep: the sleeping host's clocks stop.  Its pending kernel and program timers are shifted by the
sleep (CLOCK_MONOTONIC does not advance in suspend), and its kernel measures elapsed time on that
clock (docs/mechanisms.md §Host faults); OpenSSH compares ``CLOCK_BOOTTIME``, which does advance,
but waits with ``ppoll`` on the monotonic clock, so after waking its pending check runs once.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

from . import engine as eng
from .slack import granularity_s, poll_timeout_slack_s
from .stack import Endpoint
from .units import ceil_ticks
from .wire import Segment

if TYPE_CHECKING:  # pragma: no cover
    from .apps import App
    from .engine import Engine, Handle
    from .path import Path
    from .record import Record
    from .settings import HostSettings


class AppTimers:
    """A tag for engine events so a host's program timers can be shifted or cancelled together."""

    __slots__ = ("host",)

    def __init__(self, host: "Host") -> None:
        self.host = host


class Host:
    """A host during the run: up/down/asleep, its monotonic clock and jiffies, endpoint and program."""

    __slots__ = ("side", "settings", "hz", "engine", "clock", "record", "path", "log", "transmit", "srtt0_s", "up",
                 "asleep", "slept_s", "sleep_started", "endpoint", "app", "listening", "had_session", "lost_state",
                 "app_timers", "corner", "slack_added_s")

    def __init__(self, side: str, settings: "HostSettings", engine: "Engine", record: "Record", path: "Path") -> None:
        self.side = side
        self.settings = settings
        self.hz = settings.hz
        self.engine = engine
        self.clock = engine                 # .now and .late_s (kalab.stack.Clock)
        self.record = record
        self.path = path
        # log(layer, kind, detail=""): an event of this host on the timeline, now (no call in between).
        self.log = partial(record.log, side)
        self.transmit = path.transmit       # (kalab.stack.Kernel.transmit, without a call in between)
        # The smoothed RTT a new connection starts from: the path's unless the scenario says what the
        # connection has actually estimated (delayed ACKs during set-up inflate it).
        self.srtt0_s = settings.srtt_s if settings.srtt_s is not None else path.rtt_s
        self.up = True
        self.asleep = False
        self.slept_s = 0.0
        self.sleep_started: float | None = None
        self.endpoint: Endpoint | None = None
        self.app: App | None = None
        self.listening = side == "server"
        self.had_session = False            # reached ESTABLISHED at some point
        self.lost_state = False             # crashed or rebooted: the connection's state is gone
        self.app_timers = AppTimers(self)   # program timers, cancelled when the program ends
        # The timing corner (kalab.timing): None -- the nominal run: timers fire at their nominal time
        # and carry their slack as lateness (``latest_s``); "latest" -- they fire at the latest they
        # may; "on_time" -- at their nominal time.  At a corner nothing carries lateness: the corner
        # *is* one realisation of the timing, whose outcome is all it is for.
        self.corner: str | None = None
        self.slack_added_s = 0.0            # the slack this host's timers added (0: timing cannot matter here)

    # ------------------------------------------------------------ clocks
    @property
    def now(self) -> float:
        """Scenario time [s]."""
        return self.engine.now

    @property
    def late_s(self) -> float:
        """How much later than nominal the current event may really run [s]."""
        return self.engine.late_s

    def mono(self, t: float) -> float:
        """This host's CLOCK_MONOTONIC at scenario time ``t`` (stopped while asleep) [s]."""
        if self.sleep_started is not None:
            return self.sleep_started - self.slept_s
        return t - self.slept_s

    def jiffies(self, t: float) -> int:
        """The kernel tick counter at ``t``: TCP timers and idleness are kept in jiffies (HZ).

        A time within 1e-6 tick below a tick boundary is on it -- or within 16 ulp, what floats can
        tell apart at that size: at 1e8 s, ``j / 1000 * 1000`` may come out 1.5e-5 below ``j``."""
        mono = self.sleep_started - self.slept_s if self.sleep_started is not None else t - self.slept_s
        x = mono * self.hz
        return math.floor(x + max(1e-6, 16 * math.ulp(x)))

    def jiffy_time_s(self, j: int) -> float:
        """Scenario time [s] at which this (awake) host's tick counter reaches ``j``."""
        return j / self.hz + self.slept_s

    # ------------------------------------------------------------ timers
    def kernel_timer(self, delay_s: float, fn, *args, deadline_late_s: float | None = None) -> "Handle":
        """Arm a kernel timer ``delay_s`` ahead, rounded up to jiffies, carrying wheel slack.

        Lateness adds up along a chain: this timer may fire ``granularity`` later
        than nominal, on top of how late the event arming it already was.
        ``deadline_late_s``: the delay is the remainder to a deadline that was
        itself fixed by an earlier event (keepalive: ``last_rx + keepidle``) which
        may have been that late; the real timer then fires at the real deadline
        (plus slack), or at once if the real "now" is already past it.
        """
        hz = self.hz
        ticks = max(1, ceil_ticks(delay_s, hz))          # msecs_to_jiffies rounds up; >= 1 tick
        engine = self.engine
        now = engine.now
        # mod_timer(jiffies + ticks): the expiry is a tick boundary, not now + delay.
        t_fire = max(self.jiffy_time_s(self.jiffies(now) + ticks), now)
        late = engine.late_s
        slack = granularity_s(ticks, hz)
        self.slack_added_s += slack
        if self.corner is not None:
            # A timing corner: at the latest, the wheel fires it one whole granularity late (its
            # level's bucket boundary is a tick boundary, so the firing stays on the jiffy lattice).
            if self.corner == "latest":
                t_fire += slack
            return engine.at(t_fire, eng.TIMER, fn, *args, late_s=0.0, owner=self)
        if deadline_late_s is None:
            late += slack
        else:
            a, b = late - ticks / hz, deadline_late_s + slack
            self.record.compared(a, b)
            late = max(a, b)
        return engine.at(t_fire, eng.TIMER, fn, *args, late_s=late, owner=self)

    def app_timer(self, t_abs: float, fn, *args, base_late_s: float | None = None) -> "Handle":
        """A program's ``ppoll`` timeout ending at ``t_abs``: precise hrtimer, but with select's slack.

        Lateness: ``base_late_s`` (how late the deadline itself may be; by default the
        lateness of the event that starts the wait) plus the poll slack of this wait.
        """
        engine = self.engine
        now = engine.now
        base = engine.late_s if base_late_s is None else base_late_s
        slack = poll_timeout_slack_s(max(t_abs - now, 0.0))
        self.slack_added_s += slack
        if self.corner is not None:
            t = t_abs + slack if self.corner == "latest" else t_abs
            return engine.at(t, eng.APP, fn, *args, late_s=0.0, owner=self.app_timers)
        return engine.at(t_abs, eng.APP, fn, *args, late_s=base + slack, owner=self.app_timers)

    def cancel_app_timers(self) -> None:
        self.engine.cancel_owner(self.app_timers)

    # ------------------------------------------------------------ the timeline
    def compared(self, a: float, b: float) -> None:
        """A decision on lateness (``max(a, b)``, ``a >= b``): noted for :mod:`kalab.fastforward`."""
        self.record.compared(a, b)

    def link_up_t(self) -> float | None:
        """When the path's link last came back up (scenario time), for the timeline's words only."""
        return self.path.link_up_t

    def peer_by(self) -> str | None:
        """How the other side died, if it has (``by``), else None: ssh reports the server's idle
        timers as its own cause (docs/contract.md, "the root cause on both sides")."""
        d = self.record.deaths.get("server" if self.side == "client" else "client")
        return d.by if d is not None else None

    def death(self, by: str, sees: str | None, exit_code: int | None) -> None:
        """This side dies now (the first death counts), logged at its program's layer."""
        self.record.death(self.side, self.app.layer if self.app else "app", by, sees, exit_code)

    # ------------------------------------------------------------ the socket
    def open_socket(self, state: str) -> Endpoint:
        """A new endpoint for the connection, reporting to this host's program."""
        self.endpoint = Endpoint(self, state, self.srtt0_s, self.app)
        return self.endpoint

    def receive(self, seg: Segment) -> None:
        """A segment arrives: dropped if the host is down; a listener accepts a SYN; with no socket for
        it the stack answers anything but an RST with an RST (``tcp_v4_send_reset``)."""
        if not self.up:
            why = "asleep" if self.asleep else "down"
            self.record.log("path", "path", "dropped", f"{seg.src}->{seg.dst} {seg.label}: {seg.dst} is {why}")
            return
        ep = self.endpoint
        if ep is None or not ep.alive:
            if seg.syn and not seg.ack and self.listening and ep is None:
                self.open_socket("SYN_RECV").accept(seg)
                return
            if not seg.rst:
                self.log("tcp", "rst_sent", f"no connection for {seg.label}")
                rst = Segment(src=seg.dst, dst=seg.src, seq=seg.ack or 0, ack=seg.seq + seg.length + (1 if seg.syn else 0),
                              rst=True, label="rst")
                self.transmit(rst)
            return
        ep.receive(seg)

    # ------------------------------------------------------------ the scenario's traffic
    def program_send(self, nbytes: int, reply_bytes: int, kind: str = "data") -> None:
        """The scenario's traffic: the program sends, if the host is up and the program runs
        (``kind`` "line": typing that ends with Enter, for a remote shell)."""
        app = self.app
        if self.up and app is not None and app.running:
            app.send(nbytes, reply_bytes, kind)

    def program_close(self) -> None:
        """The scenario closes the connection: the program calls ``close()``, if it runs."""
        app = self.app
        if self.up and app is not None and app.running:
            app.close()

    # ------------------------------------------------------------ host faults
    def crash(self) -> None:
        self.log("host", "crash", "silent from now on")
        self.death("host.crash", None, None)
        self._down()

    def reboot(self, down_s: float) -> None:
        self.log("host", "reboot", f"down for {down_s:g} s, then up without the connection")
        self.death("host.reboot", None, None)
        self._down()
        self.engine.at(self.engine.now + down_s, eng.FAULT, self._rebooted)

    def _down(self) -> None:
        self.up = False
        self.engine.cancel_owner(self)
        self.engine.cancel_owner(self.app_timers)
        if self.app is not None:
            self.app.running = False
        self.endpoint = None
        self.lost_state = True

    def _rebooted(self) -> None:
        self.up = True
        self.listening = False
        self.log("host", "up", "rebooted: answers old segments with RST")

    def kill_program(self) -> None:
        if not self.up or self.app is None or not self.app.running:
            return
        self.log("app", "killed", "the kernel closes the socket")
        self.app.kill()

    def sleep(self, for_s: float) -> None:
        if not self.up:
            return
        self.up = False
        self.asleep = True
        now = self.engine.now
        self.sleep_started = now
        self.log("host", "sleep", f"for {for_s:g} s: clocks stop")
        self.engine.postpone(self, for_s)
        self.engine.postpone(self.app_timers, for_s)
        self.engine.at(now + for_s, eng.FAULT, self._wake, for_s)

    def _wake(self, slept_s: float) -> None:
        self.up = True
        self.asleep = False
        self.sleep_started = None
        self.slept_s += slept_s
        self.log("host", "wake", "")
