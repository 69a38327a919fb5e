"""Run a scenario through the event engine and return an immutable :class:`~kalab.result.Result`.

The world has two hosts (each: a kernel clock, one TCP endpoint, one program)
and a path between them (one-way delay ``rtt/2``, link faults, middleboxes).

Path rules (documented in docs/scenarios.md):

* a ``link_down`` cut sits at the edge of the path: a segment sent while the
  link is down is lost before it reaches any middlebox, in both directions;
* middleboxes see a segment when it is sent, in order from client to server
  (reversed for the other direction); an expired mapping drops or answers with
  RST (:mod:`kalab.mechanisms.middlebox`); the RST reaches the sender ``rtt/2``
  later;
* a host that is down (crashed, rebooting, asleep) neither sends nor receives;
  a host that is up but has no socket for the connection answers every segment
  except an RST with an RST.

Sleep: the sleeping host's clocks stop.  Its pending kernel and program timers
are shifted by the sleep (CLOCK_MONOTONIC does not advance in suspend), and its
kernel measures elapsed time on that clock (docs/mechanisms.md §Host faults); OpenSSH compares
``CLOCK_BOOTTIME``, which does advance, but waits with ``ppoll`` on the
monotonic clock, so after waking its pending check runs once.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from . import engine as eng
from .apps import APPS, App
from .engine import Engine
from .mechanisms import middlebox as mbx
from .result import Event, Result, SideResult
from .scenario import Fault, Scenario, load
from .settings import HostSettings
from .slack import granularity_s, poll_timeout_slack_s
from .units import ceil_ticks
from .stack import Endpoint, Segment, listening_accept


class HostRuntime:
    """A host during the run: up/down/asleep, its monotonic clock, endpoint and program."""

    def __init__(self, side: str, settings: HostSettings) -> None:
        self.side = side
        self.settings = settings
        self.hz = settings.hz
        self.up = True
        self.asleep = False
        self.slept_s = 0.0
        self.sleep_started: float | None = None
        self.endpoint: Endpoint | None = None
        self.app: App | None = None
        self.listening = side == "server"
        self.had_session = False            # reached ESTABLISHED at some point
        self.app_timers = _Owner(self)      # program timers, cancelled when the program ends

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
        return j / self.settings.hz + self.slept_s


class _Owner:
    """A tag for engine events so a host's program timers can be shifted or cancelled together."""

    def __init__(self, host: HostRuntime) -> None:
        self.host = host


class MiddleboxState:
    def __init__(self, index: int, box) -> None:
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


class TrafficRun:
    """One traffic entry's sends, scheduled one at a time (the next when this one fires): the send
    times are ``at_s + k * every_s`` (:meth:`~kalab.scenario.Traffic.time_of`), never a list.  Each keeps
    the tie order it would have had had every send been scheduled at the start (``seq``)."""

    __slots__ = ("w", "index", "tr", "k", "n", "seq")

    def __init__(self, world: "World", index: int, tr, seq: int) -> None:
        self.w, self.index, self.tr, self.seq = world, index, tr, seq
        self.k = 0                                   # the index of the next send
        self.n = tr.send_count(world.scenario.until_s)

    def schedule(self) -> None:
        if self.k < self.n:
            self.w.engine.at(self.tr.time_of(self.k), eng.APP, self.fire, late_s=0.0, seq=self.seq)

    def fire(self) -> None:
        self.k += 1
        self.schedule()
        tr = self.tr
        self.w.app_send(tr.side, tr.bytes, tr.reply_bytes)


class World:
    def __init__(self, scenario: Scenario, fast_forward: bool | None = None) -> None:
        """``fast_forward``: None (default) fast-forwards only a run too long to simulate event by
        event (:mod:`kalab.fastforward`); True always looks for exactly repeating cycles to jump
        over; False never does (a run over the step limit is then refused)."""
        self.scenario = scenario
        self.fast_forward = fast_forward
        self.engine = Engine(scenario.until_s)
        self.events: list[Event] = []
        self.repeats: list = []                      # kalab.result.Repeat, one per jump
        self.late_log: list | None = None            # (a, b) of every lateness comparison, while fast-forwarding
        self.traffic_runs: list[TrafficRun] = []
        self.deaths: dict[str, SideResult] = {}
        self.lost_state: set[str] = set()
        self.hosts = {s: HostRuntime(s, scenario.host(s)) for s in ("client", "server")}
        self.one_way_s = scenario.path.rtt_s / 2
        self.link_down = False
        self.link_up_t: float | None = None
        self.boxes = [MiddleboxState(i, b) for i, b in enumerate(scenario.path.middleboxes)]
        self.boxes_from = {"client": self.boxes, "server": self.boxes[::-1]}  # order a segment meets them

    # ------------------------------------------------------------ plumbing
    @property
    def now(self) -> float:
        return self.engine.now

    def log(self, side: str, layer: str, kind: str, detail: str = "") -> None:
        t = self.engine.now
        self.events.append(Event(t, side, layer, kind, detail, t + self.engine.late_s))

    def kernel_timer(self, host: HostRuntime, delay_s: float, fn, *args, deadline_late_s: float | None = None):
        """Arm a kernel timer ``delay_s`` ahead, rounded up to jiffies, carrying wheel slack.

        Lateness adds up along a chain: this timer may fire ``granularity`` later
        than nominal, on top of how late the event arming it already was.
        ``deadline_late_s``: the delay is the remainder to a deadline that was
        itself fixed by an earlier event (keepalive: ``last_rx + keepidle``) which
        may have been that late; the real timer then fires at the real deadline
        (plus slack), or at once if the real "now" is already past it.
        """
        hz = host.settings.hz
        ticks = max(1, ceil_ticks(delay_s, hz))          # msecs_to_jiffies rounds up; >= 1 tick
        now = self.engine.now
        # mod_timer(jiffies + ticks): the expiry is a tick boundary, not now + delay.
        t_fire = max(host.jiffy_time_s(host.jiffies(now) + ticks), now)
        late = self.engine.late_s
        if deadline_late_s is None:
            late += granularity_s(ticks, hz)
        else:
            a, b = late - ticks / hz, deadline_late_s + granularity_s(ticks, hz)
            if self.late_log is not None:
                self.late_log.append((a, b))
            late = max(a, b)
        return self.engine.at(t_fire, eng.TIMER, fn, *args, late_s=late, owner=host)

    def app_timer(self, host: HostRuntime, t_abs: float, fn, *args, base_late_s: float | None = None):
        """A program's ``ppoll`` timeout ending at ``t_abs``: precise hrtimer, but with select's slack.

        Lateness: ``base_late_s`` (how late the deadline itself may be; by default the
        lateness of the event that starts the wait) plus the poll slack of this wait.
        """
        now = self.engine.now
        base = self.engine.late_s if base_late_s is None else base_late_s
        late = base + poll_timeout_slack_s(max(t_abs - now, 0.0))
        return self.engine.at(t_abs, eng.APP, fn, *args, late_s=late, owner=host.app_timers)

    def cancel_app_timers(self, host: HostRuntime) -> None:
        self.engine.cancel_owner(host.app_timers)

    # ------------------------------------------------------------ the path
    def transmit(self, seg: Segment) -> None:
        src = self.hosts[seg.src]
        if not src.up:
            return
        if self.link_down:
            self._drop(seg, "link down")
            return
        for st in self.boxes_from[seg.src]:
            if st.expired:
                if st.box.on_expiry == "rst" and not seg.rst:
                    self.log("path", "path", "middlebox_rst", f"middlebox {st.index} answers {seg.describe()} with RST")
                    rst = Segment(src=seg.dst, dst=seg.src, seq=seg.ack or 0, ack=seg.seq + seg.length, rst=True,
                                  label="middlebox_rst")
                    self.engine.at_fixed(self.engine.now + self.one_way_s, eng.DELIVER, self._deliver, rst, True)
                else:
                    self._drop(seg, f"middlebox {st.index} mapping expired")
                return
            self._refresh(st, seg)
        self.engine.at_fixed(self.engine.now + self.one_way_s, eng.DELIVER, self._deliver, seg, False)

    def _drop(self, seg: Segment, why: str) -> None:
        self.log("path", "path", "dropped", f"{seg.src}->{seg.dst} {seg.label}: {why}")

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
        if mbx.expired(self.now, due):
            st.expired = True
            b = st.box
            self.log("path", "path", "mapping_expired",
                     f"middlebox {st.index} ({b.preset or b.kind}) idle {st.timeout():g} s; then {b.on_expiry}")
        else:
            st.check = self.engine.at(due, eng.FAULT, self._box_check, st)

    def _deliver(self, seg: Segment, from_box: bool) -> None:
        host = self.hosts[seg.dst]
        if not host.up:
            why = "asleep" if host.asleep else "down"
            self.log("path", "path", "dropped", f"{seg.src}->{seg.dst} {seg.label}: {seg.dst} is {why}")
            return
        ep = host.endpoint
        if ep is None or not ep.alive:
            if seg.syn and not seg.ack and host.listening and ep is None:
                host.endpoint = listening_accept(self, host, seg)
                return
            if not seg.rst:
                # No socket for this connection: the stack answers with RST (tcp_v4_send_reset).
                self.log(seg.dst, "tcp", "rst_sent", f"no connection for {seg.label}")
                rst = Segment(src=seg.dst, dst=seg.src, seq=seg.ack or 0, ack=seg.seq + seg.length + (1 if seg.syn else 0),
                              rst=True, label="rst")
                self.transmit(rst)
            return
        ep.receive(seg)

    # ------------------------------------------------------------ host callbacks
    def on_established(self, side: str) -> None:
        self.hosts[side].had_session = True
        app = self.hosts[side].app
        if app is not None and app.running:
            app.started = True
            app.start()

    def app_data(self, side: str, msgs) -> None:
        app = self.hosts[side].app
        if app is not None and app.running:
            app.on_data(msgs)

    def app_eof(self, side: str) -> None:
        app = self.hosts[side].app
        if app is not None and app.running:
            app.on_eof()

    def app_error(self, side: str, errno: str, by: str) -> None:
        app = self.hosts[side].app
        if app is not None and app.running:
            app.on_error(errno, by)

    def death(self, side: str, by: str, sees: str | None, exit_code: int | None) -> None:
        if side in self.deaths:
            return
        t = self.engine.now
        self.deaths[side] = SideResult("died", t, t + self.engine.late_s, by, sees, exit_code)
        self.log(side, self.hosts[side].app.layer if self.hosts[side].app else "app", "died",
                 f"{by}: {sees}" if sees else by)

    # ------------------------------------------------------------ faults
    def apply_fault(self, f: Fault) -> None:
        getattr(self, "_f_" + f.kind)(f)

    def _f_link_down(self, f: Fault) -> None:
        self.link_down = True
        self.log("path", "path", "link_down", "for good" if f.for_s is None else f"for {f.for_s:g} s")
        if f.for_s is not None:
            self.engine.at(self.now + f.for_s, eng.FAULT, self._link_up)

    def _link_up(self) -> None:
        self.link_down = False
        self.link_up_t = self.now
        self.log("path", "path", "link_up", "")

    def _host_down(self, host: HostRuntime) -> None:
        host.up = False
        self.engine.cancel_owner(host)
        self.engine.cancel_owner(host.app_timers)
        if host.app is not None:
            host.app.running = False
        host.endpoint = None
        self.lost_state.add(host.side)

    def _f_host_crash(self, f: Fault) -> None:
        host = self.hosts[f.side]
        self.log(f.side, "host", "crash", "silent from now on")
        self.death(f.side, "host.crash", None, None)
        self._host_down(host)

    def _f_host_reboot(self, f: Fault) -> None:
        host = self.hosts[f.side]
        self.log(f.side, "host", "reboot", f"down for {f.for_s:g} s, then up without the connection")
        self.death(f.side, "host.reboot", None, None)
        self._host_down(host)
        self.engine.at(self.now + f.for_s, eng.FAULT, self._rebooted, host)

    def _rebooted(self, host: HostRuntime) -> None:
        host.up = True
        host.listening = False
        self.log(host.side, "host", "up", "rebooted: answers old segments with RST")

    def _f_process_kill(self, f: Fault) -> None:
        host = self.hosts[f.side]
        if not host.up or host.app is None or not host.app.running:
            return
        self.log(f.side, "app", "killed", "the kernel closes the socket")
        host.app.kill()

    def _f_sleep(self, f: Fault) -> None:
        host = self.hosts[f.side]
        if not host.up:
            return
        host.up = False
        host.asleep = True
        host.sleep_started = self.now
        self.log(f.side, "host", "sleep", f"for {f.for_s:g} s: clocks stop")
        self.engine.postpone(host, f.for_s)
        self.engine.postpone(host.app_timers, f.for_s)
        self.engine.at(self.now + f.for_s, eng.FAULT, self._wake, host, f.for_s)

    def _wake(self, host: HostRuntime, slept_s: float) -> None:
        host.up = True
        host.asleep = False
        host.sleep_started = None
        host.slept_s += slept_s
        self.log(host.side, "host", "wake", "")

    # ------------------------------------------------------------ traffic
    def app_send(self, side: str, nbytes: int, reply_bytes: int) -> None:
        host = self.hosts[side]
        if host.up and host.app is not None and host.app.running:
            host.app.send(nbytes, reply_bytes)

    def app_close(self, side: str) -> None:
        host = self.hosts[side]
        if host.up and host.app is not None and host.app.running:
            host.app.close()

    # ------------------------------------------------------------ run
    def run(self) -> Result:
        sc = self.scenario
        for side, host in self.hosts.items():
            host.app = APPS[host.settings.app.kind](self, host)
        for f in sc.faults:
            self.engine.at(f.at_s, eng.FAULT, self.apply_fault, f)
        n = len(sc.traffic)
        for i, tr in enumerate(sc.traffic):
            # Negative, increasing sequence numbers: same-instant program actions in the order of
            # the traffic list, before any the run itself schedules.
            if tr.close:
                self.engine.at(tr.at_s, eng.APP, self.app_close, tr.side, owner=None, seq=i - n)
                continue
            run = TrafficRun(self, i, tr, seq=i - n)
            self.traffic_runs.append(run)
            run.schedule()
        self.engine.at(0.0, -1, self._start)
        from . import fastforward as ff
        mode = self.fast_forward
        estimate = ff.estimate(sc)
        if mode is None:
            mode = estimate.steps > ff.FF_FROM
        if mode:
            try:
                ff.run(self, estimate)
            except ff.GaveUp:
                if self.fast_forward is None and estimate.steps <= ff.PLAIN_LIMIT:
                    return World(sc, fast_forward=False).run()   # small enough: event by event, as always
                raise
        else:
            if estimate.steps > ff.MAX_STEPS:
                raise ff.refusal(sc, estimate, "fast-forward is off", limit=ff.MAX_STEPS)
            try:
                self.engine.run(sc.until_s, max_steps=ff.MAX_STEPS)
            except eng.StepLimit:
                raise ff.refusal(sc, estimate, f"it ran past {self.engine.steps:,} steps", limit=ff.MAX_STEPS) from None
        return self._result()

    def _start(self) -> None:
        c, s = self.hosts["client"], self.hosts["server"]
        for st in self.boxes:  # the handshake passed every box at t = 0: their idle clocks start now
            st.check = self.engine.at(st.timeout(), eng.FAULT, self._box_check, st)
        if self.scenario.start == "connect":
            c.endpoint = Endpoint(self, c, "CLOSED")
            c.endpoint.connect()
            app = c.app
            if app.settings.kind == "ssh" and app.settings.connect_timeout_s > 0:
                self.app_timer(c, self.now + app.settings.connect_timeout_s, app.connect_timeout)
            return
        for host in (c, s):
            host.had_session = True
            host.endpoint = Endpoint(self, host, "ESTABLISHED")
            host.endpoint.start_established()
        self.log("client", "tcp", "established", "t = 0")
        self.log("server", "tcp", "established", "t = 0")
        for host in (c, s):
            host.app.started = True
            host.app.start()

    def _result(self) -> Result:
        out = {}
        for side in ("client", "server"):
            other = "server" if side == "client" else "client"
            if side in self.deaths:
                out[side] = self.deaths[side]
            elif not self.hosts[side].had_session:
                out[side] = SideResult("none")
            elif other in self.deaths or other in self.lost_state:
                out[side] = SideResult("half_open")
            else:
                out[side] = SideResult("alive")
        return Result(client=out["client"], server=out["server"], events=tuple(self.events),
                      until_s=self.scenario.until_s, name=self.scenario.name, warnings=self.scenario.warnings,
                      repeats=tuple(self.repeats))


def simulate(scenario: Mapping[str, Any] | Scenario) -> Result:
    """Predict when each side of a session dies, by what, and what it sees.

    ``scenario`` is the JSON contract as a dict, or a :class:`~kalab.scenario.Scenario`.
    Deterministic: the same scenario always gives the same result.  A run too long to simulate
    event by event is fast-forwarded over its exactly repeating steady states
    (:attr:`Result.repeats`), or refused at once with a :class:`~kalab.errors.ScenarioError`
    naming the estimate and the way out (:mod:`kalab.fastforward`).
    """
    return World(load(scenario)).run()
