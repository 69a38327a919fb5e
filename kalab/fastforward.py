"""Fast-forward: a steady state that repeats exactly is jumped over; what cannot be answered is refused at once.

"Is this idle session alive after a year?" with keepalive probes every second is 10^8 probes: too
many to simulate one by one, and all alike.  A run whose :func:`estimate` is over
:data:`PLAIN_LIMIT` steps is therefore simulated with a watch for *exact* repetition:

1. **Snapshots.**  Just before certain recurring events (anchors: a kernel or program timer, a
   traffic send) the whole world is written down *relative to that instant*: every pending event
   (time from now, priority, what it does, with which segment), both endpoints (TCP state, sequence
   numbers relative to each byte stream's unacknowledged start, timers, counters, idleness in jiffies
   from now), both programs (counters, ssh's whole-second clock), middleboxes (idle time from now),
   faults that already happened, and the two clock phases that make the model depend on absolute
   time: each host's position inside its jiffy (HZ) and, where ssh/sshd alive timers run, inside the
   whole second of OpenSSH's ``monotime()``.  Fields that are never read again (a closed socket's,
   an expired mapping's, the send time of data already acknowledged) are left out.
2. **A cycle** is found when the snapshot at ``t2`` equals the one at ``t1`` and the one at ``t1`` equals
   the one at ``t0 = t1 - P``: two identical cycles of ``P`` in a row, each listing the same events at
   the same offsets.  ``P`` must lie on the exact lattice of the run's clocks -- whole jiffies of both
   hosts, whole seconds where ``monotime()`` matters, whole periods of every repeating traffic entry
   as written (``0.1`` is one tenth) -- and is snapped onto it (a :class:`~fractions.Fraction`), so N
   cycles are ``N * P`` with one rounding, not N.
3. **Lateness** (``latest_s``) is the one quantity allowed to change from cycle to cycle: a chain of
   relative kernel timers adds one timer-wheel granularity per probe, for ever.  It never steers the
   simulation; it is built by ``+ constant`` and by two comparisons (a keepalive deadline's ``max``,
   ssh's whole-second carry).  Each lateness must grow by the same amount in both cycles, and every
   comparison must go the same way in both; the jump stops before the first cycle in which a
   comparison could go the other way (its margin changes linearly per cycle).  With the comparisons
   fixed the cycle is an affine map on the lateness vector, so ``N`` cycles add exactly ``N`` times the
   growth.
4. **The jump** moves every pending event, stamp and sequence number on by ``N`` cycles (traffic
   send times are recomputed from their formula), adds ``N`` times each lateness growth, and puts one
   event of kind ``repeated`` on the timeline instead of the ``N`` cycles' events
   (:class:`~kalab.result.Repeat` in ``Result.repeats``).  ``N`` stops short of ``until_s``, of the next
   fault or scheduled close (which are not part of the cycle), of the last send of a repeating traffic
   entry, and of a lateness comparison turning.  The simulation then goes on event by event, and
   may find the next steady state after the next fault.

Two snapshots count as equal when every time in them agrees to within ``max(1 ns, 16 ulp(t))``: 1 ns
is the model's own resolution (every timer comparison allows ``1e-9``); 16 ulp is what binary floats
can tell apart at time ``t``.  Periods are exact; a per-cycle difference below that tolerance between
two clocks that are *not* on the lattice (a path delay of 1.0000000001 ms against whole seconds)
could not be seen.

A run that is not answered this way -- no exact repetition within :data:`BUDGET` simulated steps
(well under a second), or a minimal cycle that is provably too long (incommensurate traffic
periods) -- is refused with a :class:`~kalab.errors.ScenarioError` naming the estimate and the way
out, before the budget is spent where that can be known from the scenario alone.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .apps import App, SshClient, Sshd
from .engine import RESOLUTION_S, Handle
from .errors import ScenarioError
from .host import AppTimers, Host
from .mechanisms import ssh_alive
from .path import MiddleboxState, Path
from .result import Event, Repeat
from .stack import Endpoint
from .wire import Segment

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario
    from .simulate import World

#: Estimated steps above which fast-forward is tried (below, every run is simulated event by event).
FF_FROM = 200_000
#: Estimated steps up to which a run that fast-forward cannot answer is still simulated event by
#: event (seconds: 5 to 25 us a step); above, it is refused.
PLAIN_LIMIT = 1_000_000
#: The engine's own step limit for a run simulated event by event (a safety net: the estimate is an
#: upper bound, so only a run with fast-forward turned off can reach it).
MAX_STEPS = 5_000_000
#: What a fast-forwarded run may cost before it gives up (transients, two cycles per steady state, the
#: rest), in units of about 5-10 us: engine steps + events logged + heap entries walked by snapshots.
BUDGET = 100_000
#: The fewest cycles worth a jump (and a summary on the timeline).
MIN_JUMP = 2
#: Anchors watched at once, and how many steps one may go without recurring before it is dropped.
MAX_ANCHORS = 4
ANCHOR_PATIENCE = 60_000
#: Snapshot times are hashed on this grid (offset so that round decimals never sit on a boundary);
#: equality itself is checked with the tolerance below.
QUANTUM_S = 1e-7
_OFFSET = 0.3183098861837907


# ---------------------------------------------------------------------------- the estimate

@dataclass(frozen=True)
class Term:
    """One part of an estimate."""

    steps: float
    what: str       # "client keepalive every 1 s"
    lever: str      # what to make longer: "the client's keepalive interval"


class GaveUp(ScenarioError):
    """Fast-forward found no exactly repeating cycle within :data:`BUDGET` (the run may still be
    simulated event by event if it is small enough)."""


@dataclass(frozen=True)
class Estimate:
    """How many engine steps a run to ``until_s`` takes, at most (a cheap bound from the scenario)."""

    steps: int
    terms: tuple[Term, ...]     # largest first


def estimate(sc: "Scenario") -> Estimate:
    """A cheap upper bound on the engine steps of ``sc``, from its periodic rates times ``until_s``.

    Per mechanism: an answered keepalive probe is at most two timer firings and two segments per
    ``max(idle, interval)``; an ssh/sshd alive exchange at most eight steps per interval; a traffic
    send five (eight with a reply); a middlebox two checks per timeout; plus the one-off work of
    set-up and of every fault (retransmissions, probes, RSTs).  Arithmetic only: no send is listed.
    """
    u = sc.until_s
    terms: list[Term] = []
    for side in ("client", "server"):
        h = sc.host(side)
        t = h.tcp
        tick = 1 / h.hz
        if t.keepalive_enabled:
            iv = t.keepalive_intvl_s
            if t.keepalive_rule == "solaris" and not t.keepalive_intvl_set:
                iv = min(t.rto_min_s, t.rexmt_max_s)   # the backing-off re-probe starts at the RTO
            iv = max(iv, tick)
            period = max(t.keepalive_idle_s, iv)
            steps = 4 * u / period
            if t.keepalive_rule == "solaris" and t.keepalive_abort_s == 0:
                steps += 3 * u / iv                     # probes for ever, even unanswered
            lever = "time" if t.keepalive_idle_s >= iv else "interval"
            terms.append(Term(steps, f"{side} keepalive every {period:g} s", f"the {side}'s keepalive {lever}"))
        app = h.app
        if app.kind in ("ssh", "sshd") and app.alive_interval_s > 0:
            name = "ServerAliveInterval" if app.kind == "ssh" else "ClientAliveInterval"
            terms.append(Term(8 * u / app.alive_interval_s, f"{name} {app.alive_interval_s:g} s", name))
    traffic = []
    for i, tr in enumerate(sc.traffic):
        if not tr.close:
            n = tr.send_count(u)
            if n:
                traffic.append(Term(n * (8 if tr.reply_bytes else 5), f"traffic.{i} ({n:,} sends)",
                                    f"traffic.{i}.every_s" if tr.every_s is not None else f"traffic.{i}"))
    if len(traffic) > 3:   # many entries: together
        sends = sum(tr.send_count(u) for tr in sc.traffic if not tr.close)
        traffic = [Term(sum(x.steps for x in traffic), f"{len(traffic):,} traffic entries ({sends:,} sends)",
                        "the traffic's every_s")]
    terms += traffic
    for i, b in enumerate(sc.path.middleboxes):
        timeout = min(b.idle_timeout_s, b.unack_timeout_s or math.inf)
        terms.append(Term(2 * u / timeout + 2, f"middlebox {i} checks every {timeout:g} s",
                          f"path.middleboxes.{i}.idle_timeout_s"))
    once = sum(4 * (h.tcp.retries2 + h.tcp.syn_retries + h.tcp.keepalive_count + 40) for h in (sc.client, sc.server))
    closes = sum(1 for tr in sc.traffic if tr.close)
    terms.append(Term(200 + once * (1 + len(sc.faults) + closes), "set-up and faults", "until_s"))
    terms.sort(key=lambda x: -x.steps)
    total = sum(x.steps for x in terms)
    return Estimate(int(min(total, 1e18)), tuple(terms))


def refusal(sc: "Scenario", est: Estimate, why: str, limit: int = PLAIN_LIMIT, cls=ScenarioError) -> ScenarioError:
    """The one-line refusal: the estimate, why it cannot be fast-forwarded, and the way out."""
    main = est.terms[0]
    fits = sc.until_s * limit / max(est.steps, 1)
    fits = max(0.001, float(f"{fits:.2g}") if fits >= 1 else round(fits, 3))
    msg = (f"about {est.steps:,} simulation steps to {sc.until_s:g} s ({main.what}: {main.steps:,.0f}), over the "
           f"{limit:,} kalab simulates one by one, and no fast-forward: {why}")
    hint = f"or make {main.lever} longer" if main.lever != "until_s" else None
    return cls("until_s", msg, value=sc.until_s, allowed=f"at most about {fits:g} s here", hint=hint)


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


def _decimal(x: float) -> Fraction:
    """A time as written: ``0.1`` is one tenth (the shortest repr), not the nearest binary float."""
    return Fraction(repr(float(x)))


def static_obstacle(sc: "Scenario") -> str | None:
    """Why ``sc`` cannot be fast-forwarded within :data:`BUDGET`, if the scenario alone proves it.

    A lower bound on the steps any fast-forward must simulate, from the traffic alone (each send is
    one engine step, whatever becomes of the connection).  Sound, not tight:

    * every start and end of a traffic entry, fault and scheduled close ends a steady state: between
      two of them the run is simulated in full, or for at least two cycles of some period ``P``;
    * an entry sending every ``e <= 2 P`` sends inside those two cycles, so ``P`` is a multiple of
      ``e`` (as written) and of both hosts' jiffies; an entry with ``e > 2 P`` may wait untouched, but
      each of its sends then ends the steady state again, so all of them are simulated.
    """
    u = sc.until_s
    lam0 = _lcm(Fraction(1, sc.client.hz), Fraction(1, sc.server.hz))
    if any(h.app.kind in ("ssh", "sshd") and h.app.alive_interval_s > 0 for h in (sc.client, sc.server)):
        lam0 = _lcm(lam0, Fraction(1))
    runs = []
    bounds = {0.0, u}
    for tr in sc.traffic:
        n = 1 if tr.close else tr.send_count(u)
        if n == 0:
            continue
        bounds.add(tr.at_s)
        if not tr.close and tr.every_s is not None and n > 1:
            last = tr.time_of(n - 1)
            bounds.add(last)
            runs.append((tr.at_s, last, tr.every_s))
    bounds.update(f.at_s for f in sc.faults)
    edges = sorted(b for b in bounds if b <= u)
    if len(edges) > BUDGET:
        return f"{len(edges):,} traffic starts and ends, faults and closes each end a steady state"
    lb = len(edges) - 2
    starts: dict[float, list] = {}
    ends: dict[float, list] = {}
    for r in runs:
        starts.setdefault(r[0], []).append(r[2])
        ends.setdefault(r[1], []).append(r[2])
    active: dict[float, int] = {}
    ops = 0
    worst = (0.0, 0.0, ())
    for t0, t1 in zip(edges, edges[1:]):
        for e in ends.get(t0, ()):
            active[e] -= 1
            if not active[e]:
                del active[e]
        for e in starts.get(t0, ()):
            active[e] = active.get(e, 0) + 1
        g = t1 - t0
        if not active or g <= 0:
            continue
        es = sorted(active)
        # Sends of entries that wait untouched: any window of length g holds floor(g / e) of them.
        frozen = [active[e] * math.floor(g / e + 1e-9) for e in es]
        rest = [0.0] * (len(es) + 1)                             # suffix sums of `frozen`
        for j in range(len(es) - 1, -1, -1):
            rest[j] = rest[j + 1] + frozen[j]
        best = rest[0]                                           # no jump at all
        lam, cyc, per = lam0, 0.0, 0.0
        for j in range(len(es) + 1):
            # P = lam = lcm(jiffies, es[:j]): those entries cycle (2 P / e sends each in two cycles);
            # es[j:] must be able to wait untouched through two cycles (e >= 2 P).
            if 2 * lam <= g and (j == len(es) or es[j] >= 2 * lam):
                best = min(best, cyc + rest[j])
            if j == len(es):
                break
            lam = _lcm(lam, _decimal(es[j]))
            ops += 1
            if ops > 100_000:
                return None
            if 2 * lam > g:
                break
            per += active[es[j]] / es[j]
            cyc = 2 * float(lam) * per
        lb += best
        if best > worst[0]:
            worst = (best, g, tuple(es))
        if lb > BUDGET:
            break
    if lb <= BUDGET:
        return None
    best, g, es = worst
    if best > BUDGET / 2:
        shown = ", ".join(f"{e:g}" for e in es[:4]) + (", ..." if len(es) > 4 else "")
        return f"traffic every {shown} s does not repeat together within {g:g} s ({best:,.0f} sends to simulate)"
    return (f"at least {lb:,.0f} steps before any steady state could be skipped ({len(edges) - 2:,} traffic starts "
            f"and ends, faults and closes each end one)")


# ---------------------------------------------------------------------------- snapshots

class _NoSnapshot(Exception):
    """Something in the world that the canonical form does not know: no fast-forward from here."""


_K: dict[str, Any] = {}


def _kinds() -> dict[str, Any]:
    """The simulator's classes and its external events (imported late: simulate imports this module)."""
    if not _K:
        import importlib
        sim = importlib.import_module("kalab.simulate")   # (kalab.simulate the name is the function)
        _K.update(World=sim.World, TrafficRun=sim.TrafficRun, Host=Host, AppTimers=AppTimers, Path=Path,
                  Box=MiddleboxState, external=(sim.World.apply_fault, Host.program_close),
                  box_check=Path._box_check)
    return _K


class _Snap:
    """One snapshot: ``key`` (hashable: everything discrete, other times on a grid), ``vals`` (those
    times exactly), the pending events (object, time from now, absolute time, may it be frozen),
    ``lates``, stream bases and where the event and comparison logs stood."""

    __slots__ = ("t", "key", "vals", "objs", "rel", "abs", "freezable", "lates", "bases", "ei", "ci", "match", "frozen")

    def __init__(self, c: "_Canon", ei: int, ci: int) -> None:
        self.t, self.key, self.vals, self.lates, self.bases = c.t, tuple(c.key), c.vals, c.lates, c.bases
        self.objs, self.rel, self.abs, self.freezable = c.objs, c.rel, c.abs, c.freezable
        self.ei, self.ci = ei, ci
        self.match: _Snap | None = None
        self.frozen: frozenset[int] = frozenset()


class _Canon:
    """Builds one snapshot of the world at ``t``, relative to ``t``; also keeps, for a jump, the pending
    heap entries in order and the object each lateness belongs to."""

    def __init__(self, world: "World", t: float) -> None:
        self.w, self.t = world, t
        self.key: list = []
        self.vals: list[float] = []
        self.lates: list[float] = []
        self.slots: list = []            # per lateness: an entry index, or the endpoint whose last receipt it is
        self.entries: list = []          # pending, non-external heap entries, in the order they will run
        self.objs: list = []             # per entry: its Handle (None for a segment in flight)
        self.rel: list[float] = []       # per entry: time from now
        self.abs: list[float] = []       # per entry: time
        self.freezable: list[bool] = []  # per entry: may it wait, untouched, through the cycles
        self.ext_times: list[float] = []
        self.bases: dict[str, int] = {}
        self.ids: dict[int, int] = {}

    def time(self, x: float) -> None:
        self.key.append(math.floor(x / QUANTUM_S + _OFFSET))
        self.vals.append(x)

    def ref(self, h) -> Any:
        return None if h is None else self.ids.get(id(h), -1)

    def role(self, obj) -> Any:
        k = _kinds()
        w = self.w
        cls = obj.__class__
        if obj is None or cls in (bool, int, str):
            return obj
        if cls is float:
            self.time(obj)
            return "f"
        if cls is Segment:
            return self.segment(obj)
        if cls is k["TrafficRun"]:
            return ("tr", obj.index)
        if cls is k["Host"]:
            return ("host", obj.side)
        if cls is k["AppTimers"]:
            return ("appt", obj.host.side)
        if cls is k["Path"]:
            return "path"
        if cls is k["Box"]:
            return ("box", obj.index)
        if obj is w:
            return "W"
        if isinstance(obj, Endpoint) and w.hosts[obj.side].endpoint is obj:
            return ("ep", obj.side)
        if isinstance(obj, App) and w.hosts[obj.side].app is obj:
            return ("app", obj.side)
        raise _NoSnapshot(type(obj).__name__)

    def segment(self, seg: Segment) -> tuple:
        b = self.bases
        bs, bd = b[seg.src], b[seg.dst]
        return (seg.src, seg.dst, seg.seq - bs, None if seg.ack is None else seg.ack - bd, seg.length, seg.syn,
                seg.fin, seg.rst, seg.label, tuple((e - bs, m.kind, m.nbytes, m.reply_bytes) for e, m in seg.msgs))


def _stream_base(w: "World", side: str) -> int:
    """Where ``side``'s byte stream stands: its unacknowledged start (or what the peer expects next)."""
    ep = w.hosts[side].endpoint
    if ep is not None and ep.state != "CLOSED":
        return ep.snd_una
    peer = w.hosts["server" if side == "client" else "client"].endpoint
    if peer is not None and peer.state != "CLOSED":
        return peer.rcv_nxt
    return 0


def _monotime_matters(w: "World", side: str) -> bool:
    app = w.hosts[side].app
    return isinstance(app, (SshClient, Sshd)) and app.running and app.settings.alive_interval_s > 0


def canonical(w: "World", t: float) -> _Canon:
    """The world at ``t`` (just before the event at the top of the heap), relative to ``t``."""
    k = _kinds()
    ext, box_check = k["external"], k["box_check"]
    c = _Canon(w, t)
    key = c.key
    for side in ("client", "server"):
        c.bases[side] = _stream_base(w, side)
    key.append((w.path.link_down, tuple(sorted(w.record.deaths)),
                tuple(x for x in ("client", "server") if w.hosts[x].lost_state)))
    for side in ("client", "server"):
        h = w.hosts[side]
        if h.asleep or h.sleep_started is not None:
            raise _NoSnapshot("asleep")
        key.append((h.up, h.listening, h.had_session))
        x = h.mono(t) * h.hz
        c.time((x - h.jiffies(t)) / h.hz)                   # where in its jiffy the host is
        if _monotime_matters(w, side):
            m = t + h.settings.monotime_phase_s
            c.time(m - ssh_alive.monotime_s(t, h.settings.monotime_phase_s))   # and in OpenSSH's second
    # Pending events, in the order the engine will run them.
    entries = sorted(e for e in w.engine._heap if not (e[3].__class__ is Handle and e[3].cancelled))
    for e in entries:
        h = e[3]
        if h.__class__ is Handle and getattr(h.fn, "__func__", None) in ext:
            c.ext_times.append(h.t)
            continue
        c.ids[id(h)] = len(c.entries)
        c.entries.append(e)
    for i, e in enumerate(c.entries):
        _, prio, _, h = e
        t_e = h.t if h.__class__ is Handle else h[3]
        c.rel.append(t_e - t)
        c.abs.append(t_e)
        if h.__class__ is Handle:
            fn, args, late, owner = h.fn, h.args, h.late_s, c.role(h.owner)
            c.objs.append(h)
            func = getattr(fn, "__func__", fn)
            # A middlebox check's time is read (a shorter timeout cancels it): it may not wait frozen.
            c.freezable.append(not (func is box_check and args[0].tracks_unacked))
        else:
            fn, args, late, _ = h
            owner = "fixed"
            func = getattr(fn, "__func__", fn)
            c.objs.append(None)
            c.freezable.append(False)
        key.append((prio, func, c.role(getattr(fn, "__self__", None)), tuple(c.role(a) for a in args), owner))
        c.lates.append(late)
        c.slots.append(i)
    for side in ("client", "server"):
        _endpoint(c, w, side, t)
        _app(c, w, side, t)
    for st in w.path.boxes:
        if st.expired:
            key.append("expired")     # nothing of it is read again
            continue
        key.append((c.ref(st.check), st.unacked))
        c.time(st.last_seen - t)
        if st.tracks_unacked:
            key.append(tuple(st.data_end[s] - c.bases[s] for s in ("client", "server")) +
                       tuple(st.acked[s] - c.bases[s] for s in ("client", "server")))
    return c


def _endpoint(c: _Canon, w: "World", side: str, t: float) -> None:
    host = w.hosts[side]
    ep = host.endpoint
    if ep is None or ep.state == "CLOSED":
        c.key.append(None if ep is None else "CLOSED")   # a closed socket's fields are never read again
        return
    bx, by = c.bases[side], c.bases[ep.peer]
    c.key.append((ep.state, ep.snd_una - bx, ep.snd_nxt - bx, ep.rcv_nxt - by,
                  None if ep.fin_seq is None else ep.fin_seq - bx, ep.close_pending,
                  tuple((e - bx, m.kind, m.nbytes, m.reply_bytes) for e, m in ep.out_msgs),
                  tuple((m.kind, m.nbytes, m.reply_bytes) for m in ep.unsent),
                  ep.retransmits, ep.total_rto, ep.tlp_done, c.ref(ep.rtx_timer), ep.rtx_kind, c.ref(ep.ka_timer),
                  ep.probes_out, c.ref(ep.misc_timer), tuple(ep.fin_wait2_stages), ep.orphan,
                  ep.connect_stamp is not None, ep.retrans_stamp is not None))
    for x in (ep.srtt_s, ep.rto_s, ep.rto0_s, ep.ka_last_intvl):
        c.time(x)
    mono = host.mono(t)
    if ep.packets_out():                 # head_sent_s is rewritten before it is read again otherwise
        c.time(ep.head_sent_s - t)
    if ep.retrans_stamp is not None:
        c.time(ep.retrans_stamp - mono)
    if ep.state == "SYN_SENT" and ep.connect_stamp is not None:
        c.time(ep.connect_stamp - mono)
    if ep.s.keepalive_enabled:           # idleness is read by the keepalive timer only
        c.key.append(ep.last_rx - host.jiffies(t))
        c.lates.append(ep.last_rx_late)
        c.slots.append(ep)


def _app(c: _Canon, w: "World", side: str, t: float) -> None:
    app = w.hosts[side].app
    if app is None or not app.running:
        c.key.append("stopped")
        return
    c.key.append((type(app).__name__, app.started))
    if isinstance(app, (SshClient, Sshd)):
        c.key.append((app.counter, c.ref(app.timer)))
    if isinstance(app, Sshd) and _monotime_matters(w, side):
        c.key.append(app.last_client_mono - ssh_alive.monotime_s(t, w.hosts[side].settings.monotime_phase_s))


def _match(p: _Snap, s: _Snap, tol: float) -> frozenset[int] | None:
    """Is ``s`` the state of ``p`` again?  Returns the pending events that waited untouched in between
    (frozen: the same timer, not re-armed), or None."""
    if any(abs(x - y) > tol for x, y in zip(p.vals, s.vals)):
        return None
    frozen = []
    for j, (hp, hs, rp, rs, ok) in enumerate(zip(p.objs, s.objs, p.rel, s.rel, s.freezable)):
        if hp is not None and hp is hs:
            if not ok:
                return None
            frozen.append(j)
        elif abs(rp - rs) > tol:
            return None
    return frozenset(frozen)


# ---------------------------------------------------------------------------- the detector

class Detector:
    """Watches a run for two identical cycles in a row and jumps over the ones that must follow."""

    def __init__(self, world: "World") -> None:
        self.w = world
        self.anchors: dict[tuple, int] = {}
        self.table: dict[tuple, list[_Snap]] = {}
        self.n_snaps = 0
        self.work = 0                          # snapshot work, charged to the budget like engine steps
        # Snapshots are taken at every `stride`-th occurrence of an anchor: a repeat then shows at a
        # multiple of the period (still exact).  The stride doubles while snapshots cost more than
        # the simulation they watch (a state that grows, like data queued to a dead peer, never repeats).
        self.stride = 1
        self.occurrences: dict[tuple, int] = {}
        self.last_t = -1.0
        self.ext = _kinds()["external"]
        self.expanded: dict[int, int] = {}     # id(summary event) -> how many plain events it stands for

    def reset(self) -> None:
        """A fault or a scheduled close happened: no cycle spans it."""
        self.table.clear()
        self.n_snaps = 0
        self.w.record.late_log.clear()

    def before(self, t: float, h: Handle, steps: int) -> bool:
        """Called before each timer/program event; True if the world jumped (the heap changed)."""
        fn = h.fn
        key = (getattr(fn, "__func__", fn), getattr(fn, "__self__", None))
        anchors = self.anchors
        if key not in anchors:
            for k, seen in list(anchors.items()):
                if steps - seen > ANCHOR_PATIENCE:
                    del anchors[k]
            if len(anchors) >= MAX_ANCHORS or h.prio < 0 or key[0] in self.ext:
                return False
        anchors[key] = steps
        n = self.occurrences[key] = self.occurrences.get(key, 0) + 1
        if n % self.stride or t == self.last_t:   # (one snapshot per instant is enough)
            return False
        self.last_t = t
        if self.work > steps + len(self.w.record.events) + 10_000 and self.stride < 1 << 16:
            self.stride *= 2
        return self._snapshot(t)

    def _snapshot(self, t: float) -> bool:
        w = self.w
        try:
            c = canonical(w, t)
        except _NoSnapshot:
            return False
        s = _Snap(c, len(w.record.events), len(w.record.late_log))
        heap = w.engine._heap
        self.work += len(heap) + sum(len(ep.out_msgs) + len(ep.unsent) for ep in
                                     (w.hosts[x].endpoint for x in ("client", "server")) if ep is not None)
        if len(heap) > 2 * len(c.entries) + 100:   # mostly cancelled timers: drop them (lazy deletion)
            heap[:] = [e for e in heap if not (e[3].__class__ is Handle and e[3].cancelled)]
            heapq.heapify(heap)
        tol = max(RESOLUTION_S, 16 * math.ulp(t))
        same = self.table.setdefault(s.key, [])
        for p in reversed(same):
            frozen = _match(p, s, tol)
            if frozen is not None:
                s.match, s.frozen = p, frozen
                break
        same.append(s)
        if len(same) > 8:
            del same[0]
        self.n_snaps += 1
        if self.n_snaps > 20_000:        # memory: start afresh
            self.reset()
            return False
        b = s.match
        if b is None or b.match is None or b.frozen != s.frozen:
            return False
        return self._try_jump(c, b.match, b, s, tol)

    # -- the checks of two identical cycles [a, b) and [b, s)
    def _try_jump(self, c: _Canon, a: _Snap, b: _Snap, s: _Snap, tol: float) -> bool:
        w = self.w
        p1, p2 = b.t - a.t, s.t - b.t
        if p2 <= 0 or abs(p1 - p2) > tol:
            return False
        if any(a.objs[j] is not b.objs[j] for j in s.frozen):
            return False
        period = self._snap_period(s, p2, tol)
        if period is None:
            return False
        deltas = {x: s.bases[x] - b.bases[x] for x in ("client", "server")}
        if any(b.bases[x] - a.bases[x] != deltas[x] for x in deltas):
            return False
        e1, e2 = w.record.events[a.ei:b.ei], w.record.events[b.ei:s.ei]
        if len(e1) != len(e2):
            return False
        growth = 0.0
        for x, y in zip(e1, e2):
            if (x.side, x.layer, x.kind, x.detail) != (y.side, y.layer, y.kind, y.detail) or \
                    abs((y.t_s - b.t) - (x.t_s - a.t)) > tol:
                return False
            growth = max(growth, (y.latest_s - y.t_s) - (x.latest_s - x.t_s))
        d = [z - y for y, z in zip(b.lates, s.lates)]
        if any(abs((y - x) - dz) > tol for x, y, dz in zip(a.lates, b.lates, d)):
            return False
        c1, c2 = w.record.late_log[a.ci:b.ci], w.record.late_log[b.ci:s.ci]
        if len(c1) != len(c2):
            return False
        k, guards = self._cycles(c, s, period, c1, c2)
        if k < MIN_JUMP:
            return False
        self._jump(c, s, period, k, d, deltas, e2, growth, guards)
        return True

    def _snap_period(self, s: _Snap, p: float, tol: float) -> Fraction | None:
        """``p`` on the exact lattice of the clocks involved, or None if it is not a lattice point."""
        w = self.w
        lam = _lcm(Fraction(1, w.hosts["client"].hz), Fraction(1, w.hosts["server"].hz))
        if any(_monotime_matters(w, x) for x in ("client", "server")):
            lam = _lcm(lam, Fraction(1))
        for run in w.traffic_runs:
            if run.k < run.n and run.tr.every_s is not None and not self._frozen_run(run, s):
                lam = _lcm(lam, _decimal(run.tr.every_s))
                if lam > 10 * p + 1:
                    return None
        n = round(Fraction(p) / lam)
        if n < 1:
            return None
        exact = n * lam
        return exact if abs(float(exact) - p) <= tol else None

    @staticmethod
    def _frozen_run(run, s: _Snap) -> bool:
        return any(s.objs[j] is not None and getattr(s.objs[j].fn, "__self__", None) is run for j in s.frozen)

    def _cycles(self, c: _Canon, s: _Snap, period: Fraction, c1, c2) -> tuple[int, list]:
        """How many further cycles are provably identical (the bounds of the module docstring), and the
        lateness comparisons that must keep their outcome for that number to stay the same."""
        w = self.w
        sc = w.scenario
        p = float(period)
        t = s.t
        k = math.floor((sc.until_s - t) / p)
        while k > 0 and t + k * p > sc.until_s:
            k -= 1
        # Faults, scheduled closes, and timers waiting untouched: the span must end before them.
        for te in c.ext_times + [s.abs[j] for j in s.frozen]:
            tol = max(RESOLUTION_S, 16 * math.ulp(te))
            k = min(k, math.floor((te - tol - t) / p))
            while k > 0 and t + k * p >= te - tol:
                k -= 1
        for run in w.traffic_runs:   # a repeating entry must still be sending after the span
            if run.k < run.n and run.tr.every_s is not None and not self._frozen_run(run, s):
                m = period / _decimal(run.tr.every_s)
                if m.denominator != 1:
                    return 0, []
                k = min(k, (run.n - 1 - run.k) // int(m))
        # Lateness comparisons keep their outcome: margin m2 + j r for the j-th cycle after this one.
        bounds = []
        for (a1, b1), (a2, b2) in zip(c1, c2):
            m1, m2 = a1 - b1, a2 - b2
            if (m1 >= 0) != (m2 >= 0):
                return 0, []
            r = m2 - m1
            if abs(r) <= 1e-12:
                continue
            if m2 >= 0 and r < 0:
                bounds.append((math.floor(m2 / -r) - 1, m2, r, 1))
            elif m2 < 0 and r > 0:
                bounds.append((math.ceil(-m2 / r) - 2, -m2, -r, -1))
        if bounds:
            k = min(k, min(x[0] for x in bounds))
        # For a jump inside a larger cycle to be the same jump every time round, each bound must stay
        # at least k (and a binding one exactly k): comparisons of lateness, logged for the outer cycle.
        guards = []
        for kappa, m, r, _ in bounds:        # margin m >= 0 shrinking by -r per cycle
            guards.append((m + (k + 1) * r, 0.0))
            if kappa == k:
                guards.append((0.0, m + (k + 2) * r))
        return max(k, 0), guards

    def _jump(self, c: _Canon, s: _Snap, period: Fraction, k: int, d: list[float], deltas: dict[str, int],
              cycle: list[Event], growth: float, guards: list) -> None:
        w = self.w
        TrafficRun = _kinds()["TrafficRun"]
        engine = w.engine
        span = k * period
        shift = float(span)
        ds = {x: k * deltas[x] for x in deltas}
        entry_drift = {}
        for late_d, slot in zip(d, c.slots):
            if isinstance(slot, int):
                entry_drift[slot] = k * late_d
            else:                      # an endpoint's last receipt
                slot.last_rx_late += k * late_d
        heap = []
        for e in engine._heap:
            if e[3].__class__ is Handle and e[3].cancelled:
                continue               # (and the heap is compacted)
            i = c.ids.get(id(e[3]))
            if i is None or i in s.frozen:   # faults, closes, timers waiting untouched: they stay
                heap.append(e)
                continue
            _, prio, seq, h = e
            if h.__class__ is Handle:
                run = getattr(h.fn, "__self__", None)
                if run.__class__ is TrafficRun:
                    run.k += k * int(period / _decimal(run.tr.every_s))
                    h.t = run.tr.time_of(run.k)
                else:
                    h.t += shift
                h.late_s += entry_drift[i]
                heap.append((engine.instant(h.t), prio, seq, h))
            else:
                fn, args, late, t_e = h
                seg = args[0]
                if seg.__class__ is Segment:
                    seg.seq += ds[seg.src]
                    if seg.ack is not None:
                        seg.ack += ds[seg.dst]
                    seg.msgs = tuple((end + ds[seg.src], m) for end, m in seg.msgs)
                heap.append((engine.instant(t_e + shift), prio, seq, (fn, args, late + entry_drift[i], t_e + shift)))
        heapq.heapify(heap)
        engine._heap[:] = heap
        engine.now += shift
        for side in ("client", "server"):
            host = w.hosts[side]
            ep = host.endpoint
            if ep is not None:
                dx, dy = ds[side], ds[ep.peer]
                ep.snd_una += dx
                ep.snd_nxt += dx
                ep.rcv_nxt += dy
                if ep.fin_seq is not None:
                    ep.fin_seq += dx
                ep.out_msgs = [(end + dx, m) for end, m in ep.out_msgs]
                ep.head_sent_s += shift
                for name in ("retrans_stamp", "first_retx_t", "connect_stamp"):
                    if getattr(ep, name) is not None:
                        setattr(ep, name, getattr(ep, name) + shift)
                ticks = span * host.hz            # whole jiffies: the period is on the lattice
                ep.last_rx += int(ticks)
            app = host.app
            if isinstance(app, Sshd) and span.denominator == 1:
                app.last_client_mono += int(span)
        for st in w.path.boxes:
            st.last_seen += shift
            for x in ("client", "server"):
                st.data_end[x] += ds[x]
                st.acked[x] += ds[x]
        per_cycle = sum(self.expanded.get(id(e), 1) for e in cycle)
        text = _summary(k, float(period), cycle, per_cycle, growth)
        w.record.repeats.append(Repeat(s.t, s.t + shift, float(period), k, per_cycle, text))
        if cycle:
            ev = Event(s.t, "path", "sim", "repeated", text, s.t)
            w.record.events.append(ev)
            self.expanded[id(ev)] = k * per_cycle
        w.record.late_log.extend(guards)


def _summary(k: int, period: float, cycle: list[Event], per_cycle: int, growth: float) -> str:
    """The summary event's text: relative only (a jump inside a larger cycle says the same every time)."""
    from .units import format_duration
    counts: dict[tuple[str, str], int] = {}
    for e in cycle:
        counts[(e.side, e.kind)] = counts.get((e.side, e.kind), 0) + 1
    items = [f"{n:,} x {side} {kind}" if n > 1 else f"{side} {kind}" for (side, kind), n in counts.items()]
    if len(items) > 6:
        items = items[:6] + [f"{len(items) - 6} more kinds"]
    text = f"{k:,} identical cycles of {period:g} s ({format_duration(k * period)})"
    text += f": {', '.join(items)} ({per_cycle:,} events per cycle)" if cycle else ": nothing happens"
    if growth > 1e-9:
        text += f"; the latest times grow by {growth:.6g} s per cycle"
    return text


# ---------------------------------------------------------------------------- the run

def run(w: "World", est: Estimate | None) -> None:
    """Simulate ``w`` to ``until_s``, jumping over exactly repeating cycles (see the module docstring).

    Raises :class:`~kalab.errors.ScenarioError` (a refusal) when the run is not answered within
    :data:`BUDGET` simulated steps -- up front when the scenario alone shows that it cannot be.
    """
    sc = w.scenario
    if est is not None and est.steps > PLAIN_LIMIT:
        why = static_obstacle(sc)
        if why:
            raise refusal(sc, est, why)
    det = Detector(w)
    w.record.late_log = []
    engine = w.engine
    heap = engine._heap
    pop = heapq.heappop
    until = engine.instant(sc.until_s)
    ext = det.ext
    steps = engine.steps
    events = w.record.events
    while heap:
        top = heap[0]
        if top[0] > until:
            break
        h = top[3]
        if steps + len(events) + det.work >= BUDGET:
            engine.steps = steps
            raise refusal(sc, est or estimate(sc), f"no cycle repeated exactly in the first {steps:,} steps "
                          f"({engine.now:g} s)", cls=GaveUp)
        if h.__class__ is Handle:
            if h.cancelled:
                pop(heap)
                continue
            t = h.t
            if det.before(t, h, steps):
                continue
            pop(heap)
            if t > engine.now:
                engine.now = t
            engine.late_s = h.late_s
            steps += 1
            fn = h.fn
            fn(*h.args)
            if getattr(fn, "__func__", None) in ext:
                det.reset()
        else:
            pop(heap)
            fn, args, engine.late_s, t = h
            if t > engine.now:
                engine.now = t
            steps += 1
            fn(*args)
    engine.steps = steps
    w.record.late_log = None
