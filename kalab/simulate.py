"""Run a scenario through the event engine and return an immutable :class:`~kalab.result.Result`.

The world is two hosts (:mod:`kalab.host`: each a kernel clock, one TCP endpoint, one program) and
the path between them (:mod:`kalab.path`: one-way delay ``rtt/2``, the link, middleboxes), on one
:class:`~kalab.engine.Engine`, writing one :class:`~kalab.record.Record`.  :class:`World` builds
them, schedules the scenario's traffic and faults (:data:`FAULTS`), starts the connection at t = 0
and runs the engine -- or :mod:`kalab.fastforward`, for a run too long to simulate event by event.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from . import engine as eng
from .apps import APPS
from .engine import Engine
from .host import Host
from .path import Path
from .record import Record
from .result import Result
from .scenario import Fault, Scenario, load


def _link_down(w: "World", f: Fault) -> None:
    w.path.cut(f.for_s)


def _host_crash(w: "World", f: Fault) -> None:
    w.hosts[f.side].crash()


def _host_reboot(w: "World", f: Fault) -> None:
    w.hosts[f.side].reboot(f.for_s)


def _process_kill(w: "World", f: Fault) -> None:
    w.hosts[f.side].kill_program()


def _sleep(w: "World", f: Fault) -> None:
    w.hosts[f.side].sleep(f.for_s)


#: What each fault kind does (docs/scenarios.md §Faults), by ``Fault.kind``.
FAULTS: dict[str, Callable[["World", Fault], None]] = {
    "link_down": _link_down, "host_crash": _host_crash, "host_reboot": _host_reboot,
    "process_kill": _process_kill, "sleep": _sleep}

#: The timeline event (layer, kind) each fault's handler logs when it strikes (Path.cut, Host.crash/reboot/
#: kill_program/sleep), by which a result alone tells its faults (``explain.first_fault``).
FAULT_EVENTS: dict[tuple[str, str], str] = {
    ("path", "link_down"): "link_down", ("host", "crash"): "host_crash", ("host", "reboot"): "host_reboot",
    ("app", "killed"): "process_kill", ("host", "sleep"): "sleep"}


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
        self.w.hosts[tr.side].program_send(tr.bytes, tr.reply_bytes, "line" if tr.line else "data")


class World:
    def __init__(self, scenario: Scenario, fast_forward: bool | None = None,
                 at_latest: frozenset[str] = frozenset()) -> None:
        """``fast_forward``: None (default) fast-forwards only a run too long to simulate event by
        event (:mod:`kalab.fastforward`); True always looks for exactly repeating cycles to jump
        over; False never does (a run over the step limit is then refused).  ``at_latest``: the
        sides whose timers fire at the latest they may (a timing corner, :mod:`kalab.timing`)."""
        self.scenario = scenario
        self.fast_forward = fast_forward
        self.at_latest = frozenset(at_latest)
        self.engine = Engine(scenario.until_s)
        self.record = Record(self.engine)
        self.traffic_runs: list[TrafficRun] = []
        self.path = Path(self.engine, self.record, scenario.path)
        self.hosts = {"client": Host("client", scenario.client, self.engine, self.record, self.path),
                      "server": Host("server", scenario.server, self.engine, self.record, self.path)}
        self.path.attach(self.hosts)
        if self.at_latest:
            for side, host in self.hosts.items():
                host.corner = "latest" if side in self.at_latest else "on_time"

    def apply_fault(self, f: Fault) -> None:
        FAULTS[f.kind](self, f)

    # ------------------------------------------------------------ run
    def run(self) -> Result:
        sc = self.scenario
        for side, host in self.hosts.items():
            host.app = APPS[host.settings.app.kind](host, sc.host("server" if side == "client" else "client"))
        for f in sc.faults:
            self.engine.at(f.at_s, eng.FAULT, self.apply_fault, f)
        n = len(sc.traffic)
        for i, tr in enumerate(sc.traffic):
            # Negative, increasing sequence numbers: same-instant program actions in the order of
            # the traffic list, before any the run itself schedules.
            if tr.close:
                self.engine.at(tr.at_s, eng.APP, self.hosts[tr.side].program_close, owner=None, seq=i - n)
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
                    plain = World(sc, fast_forward=False, at_latest=self.at_latest)  # small enough: event by event
                    result = plain.run()
                    self.hosts = plain.hosts
                    return result
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
        self.path.start()
        if self.scenario.start == "connect":
            c.open_socket("CLOSED").connect()
            c.app.connecting()
            return
        for host in (c, s):
            host.had_session = True
            host.open_socket("ESTABLISHED").start_established()
        self.record.log("client", "tcp", "established", "t = 0")
        self.record.log("server", "tcp", "established", "t = 0")
        for host in (c, s):
            host.app.started = True
            host.app.start()

    def _result(self) -> Result:
        sc = self.scenario
        return self.record.result(self.hosts, sc.until_s, sc.name, sc.warnings)


def simulate(scenario: Mapping[str, Any] | Scenario) -> Result:
    """Predict when each side of a session dies, by what, and what it sees.

    ``scenario`` is the JSON contract as a dict, or a :class:`~kalab.scenario.Scenario`.
    Deterministic: the same scenario always gives the same result.  A run too long to simulate
    event by event is fast-forwarded over its exactly repeating steady states
    (:attr:`Result.repeats`), or refused at once with a :class:`~kalab.errors.ScenarioError`
    naming the estimate and the way out (:mod:`kalab.fastforward`).

    Each side also says what happens when the kernels and programs are as late as they may be
    (``worst``, ``timing_sensitive``, ``timing_detail``): the same world run again at its timing
    corners (:mod:`kalab.timing`).
    """
    from .timing import with_corners
    sc = load(scenario)
    world = World(sc)
    return with_corners(sc, world.run(), world)
