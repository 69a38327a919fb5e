"""Every candidate simulated: a recommendation is printed only if :func:`verify` passes it.

Permanent link loss at several phases (detection), the outage at several phases, including just
before the first probe (survival), the same two with the side's own data in flight when the link goes
(detection counted from the unacknowledged send: keepalive is suspended while data is outstanding,
so the retransmission rules decide), the NAT with no traffic for several timeouts, and one idle hour
(probe count).  Detection is measured by the *latest* time the real system may act, and every check
must pass at every timing corner (:mod:`kalab.timing`: ``worst``): a candidate that meets the goal
only if the kernel fires its timers on time is a knife-edge, and is not proposed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..result import Result
from ..scenario import load
from ..simulate import World
from ..timing import at_corner, longest_silence_s, with_corners
from ..units import format_duration
from .candidates import nat_margin_s
from .goal import KEEPALIVE_MECHANISMS, TICK_S, Goal, intervals_per_probe

def _simulated(sc: dict, on_time_ok: Callable[[Result], bool]) -> Result:
    """``simulate(sc)``, with the timing corners (:mod:`kalab.timing`) only when the run on time
    passes ``on_time_ok``: a check that fails with every timer on time fails, and the corners, which
    can only add failures, are not needed to say so (a search tries many such candidates)."""
    scenario = load(sc)
    world = World(scenario)
    nominal = world.run()
    return with_corners(scenario, nominal, world) if on_time_ok(nominal) else nominal


#: Outage phases tried, as fractions of the first probe/check interval (plus "one tick before it").
PHASES = (0.0, 0.5)


def _both_alive(res: Result) -> bool:
    return res.client.fate == "alive" and res.server.fate == "alive"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def scenario_for(goal: Goal, side: str, mech: str, s: dict) -> dict:
    """The scenario a candidate's checks start from: ``mech`` with settings ``s`` on ``side``, the goal's RTT."""
    sc: dict = {"client": {}, "server": {}, "path": {"rtt_ms": goal.rtt_ms}}
    if mech == "tcp-keepalive":
        sock = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": s["idle"], "TCP_KEEPINTVL": s["intvl"], "TCP_KEEPCNT": s["cnt"],
                "TCP_USER_TIMEOUT": s["user_timeout_ms"]}
        sc[side]["socket"] = sock
    elif mech == "tcp-keepalive-sysctl":
        sc[side]["socket"] = {"SO_KEEPALIVE": 1}
        sc[side]["sysctl"] = {"net.ipv4.tcp_keepalive_time": s["idle"], "net.ipv4.tcp_keepalive_intvl": s["intvl"],
                              "net.ipv4.tcp_keepalive_probes": s["cnt"], "net.ipv4.tcp_retries2": s["tcp_retries2"]}
    elif mech == "ssh-serveralive":
        sc["client"]["app"] = {"kind": "ssh", "options": {"ServerAliveInterval": s["interval"],
                                                          "ServerAliveCountMax": s["count"], "TCPKeepAlive": "no"}}
        sc["server"]["app"] = {"kind": "sshd", "version": goal.sshd_version, "options": {"TCPKeepAlive": "no"}}
    else:
        sc["client"]["app"] = {"kind": "ssh", "options": {"TCPKeepAlive": "no"}}
        sc["server"]["app"] = {"kind": "sshd", "version": goal.sshd_version,
                               "options": {"ClientAliveInterval": s["interval"], "ClientAliveCountMax": s["count"],
                                           "TCPKeepAlive": "no"}}
    return sc


def _first_interval(mech: str, s: dict, goal: Goal) -> float:
    if mech in KEEPALIVE_MECHANISMS:
        return float(s["idle"])
    return float(s["interval"] * (intervals_per_probe(goal) if mech == "sshd-clientalive" else 1))


def probe_event(mech: str) -> str:
    """The timeline event kind that counts as one probe of ``mech``."""
    return "keepalive_probe" if mech in KEEPALIVE_MECHANISMS else "alive_sent"


def _detection(goal: Goal, base: dict, side: str, a: float, data: bool) -> tuple[float, Check]:
    """The link is lost for good at ``a`` (``data``: just as ``side`` sends): how long ``side`` takes
    to give up, by the latest time the real system may act [s], and the check against the goal."""
    extra = {"traffic": [{"at_s": a, "from": side}]} if data else {}
    r = _simulated(dict(base, faults=[{"kind": "link_down", "at_s": a}], until_s=a + goal.detect_within_s * 4 + 1000,
                        **extra), lambda res: res.side(side).fate == "died"
                   and res.side(side).latest_s - a <= goal.detect_within_s).side(side)
    # At every timing corner (kalab.timing): the nominal run's latest time, and the worst corner's.
    det = (r.latest_s - a) if r.fate == "died" else math.inf
    if r.worst is not None:
        det = max(det, (r.worst.latest_s - a) if r.worst.fate == "died" else math.inf)
    took = format_duration(det) if det < math.inf else "never"
    by = f" by {r.by}" if r.by else ""
    if data:
        return det, Check(f"data in flight, link lost for good at {a:g} s", det <= goal.detect_within_s,
                          f"the {side} gives up {took} after its send{by} (latest, at every timing corner)")
    return det, Check(f"link lost for good at {a:g} s", det <= goal.detect_within_s,
                      f"the {side} gives up {took} later{by} (latest, at every timing corner)")


def _survival(goal: Goal, base: dict, side: str, a: float, data: bool) -> Check:
    """The outage of the goal from ``a`` (``data``: ``side`` sends as it starts): both sides alive after."""
    extra = {"traffic": [{"at_s": a, "from": side}]} if data else {}
    res = _simulated(dict(base, faults=[{"kind": "link_down", "at_s": a, "for_s": goal.survive_outage_s}],
                          until_s=a + goal.survive_outage_s + goal.detect_within_s * 4 + 1000, **extra), _both_alive)
    ok = _both_alive(res) and all(res.side(s).worst.fate == "alive" for s in ("client", "server"))
    name = f"{format_duration(goal.survive_outage_s)} outage from {a:g} s" + (", data in flight" if data else "")
    good = "delivered after the link is back, both sides alive" if data else "both sides alive afterwards"
    bad = f"client {res.client.fate} ({res.client.by}), server {res.server.fate} ({res.server.by})"
    if not ok and res.client.fate == res.server.fate == "alive":
        bad = "alive only if the kernel is on time: " + (res.client.timing_detail or res.server.timing_detail or "")
    return Check(name, ok, good if ok else bad)


def verify(goal: Goal, side: str, mech: str, s: dict,
           stop_at_first_failure: bool = False) -> tuple[bool, float, float, tuple[Check, ...]]:
    """Simulate the candidate: (all passed, worst detection [s], probes per idle hour, checks).

    ``stop_at_first_failure``: return as soon as a check fails (a search that only wants to know).

    Idle, then with the side's own data in flight when the link goes (keepalive is suspended while
    data is outstanding, so retransmission -- tcp_retries2 or TCP_USER_TIMEOUT -- or the ssh/sshd
    timer decides); detection at each phase, survival at each phase and just before the first probe.
    """
    base = scenario_for(goal, side, mech, s)
    first = _first_interval(mech, s, goal)
    checks: list[Check] = []
    worst = 0.0
    phases = [round(ph * first, 3) for ph in PHASES]
    def failed() -> bool:
        return stop_at_first_failure and not checks[-1].passed

    for data in (False, True):
        for a in phases:
            det, check = _detection(goal, base, side, a, data)
            worst = max(worst, det)
            checks.append(check)
            if failed():
                return False, worst, math.nan, tuple(checks)
        if goal.survive_outage_s > 0:
            outage_at = sorted(set(phases) | {max(round(first - TICK_S, 3), 0.0)}) if not data else phases[-1:]
            for a in outage_at:
                checks.append(_survival(goal, base, side, a, data))
                if failed():
                    return False, worst, math.nan, tuple(checks)
    if goal.nat_idle_s is not None:
        # A NAT that waits longer is never the first to expire: a setting that keeps a NAT of
        # (detection goal + 60 s) alive keeps this one alive too (its probes come more often than
        # the goal), so that one is simulated -- a 100-year NAT needs no 400-year run.
        # It is simulated nat_margin_s shorter, at every timing corner: kept alive there, the real one
        # is kept alive with that margin however late the kernel fires its timers.
        nat_s = min(goal.nat_idle_s, goal.detect_within_s + 60)
        margin = nat_margin_s(goal)
        nat = dict(base, until_s=nat_s * 4 + 60)
        nat["path"] = dict(base["path"], middleboxes=[{"kind": "nat", "idle_timeout_s": max(nat_s - margin, TICK_S),
                                                         "on_expiry": "drop"}])
        res = _simulated(nat, _both_alive)
        ok = _both_alive(res) and all(res.side(s).worst.fate == "alive" for s in ("client", "server"))
        silence = longest_silence_s(at_corner(dict(base, until_s=nat_s * 4 + 60)))
        said = (f"at the latest the path is silent for {format_duration(round(silence, 3))} at most, "
                f"{format_duration(round(goal.nat_idle_s - silence, 3))} before the NAT forgets "
                f"(margin {format_duration(margin)})")
        checks.append(Check(f"NAT idle timeout {format_duration(goal.nat_idle_s)}, idle session", ok,
                            f"mapping kept alive: {said}" if ok else
                            f"client {(res.client.worst or res.client).fate} ({(res.client.worst or res.client).by})"
                            f"{' at the latest timing' if res.client.worst else ''}: {said}"))
    idle = _simulated(dict(base, until_s=3600), lambda res: False)      # (a count: the run on time)
    probes = sum(1 for e in idle.events if e.side == side and e.kind == probe_event(mech))
    if goal.max_probes_per_hour is not None:
        checks.append(Check("probes in an idle hour", probes <= goal.max_probes_per_hour,
                            f"{probes} sent by the {side} (limit {goal.max_probes_per_hour:g})"))
    return all(c.passed for c in checks), worst, float(probes), tuple(checks)

