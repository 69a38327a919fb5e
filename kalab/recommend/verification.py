"""Every candidate simulated: a recommendation is printed only if :func:`verify` passes it.

Permanent link loss at several phases (detection), the outage at several phases, including just
before the first probe (survival), the same two with the side's own data in flight when the link goes
(detection counted from the unacknowledged send: keepalive is suspended while data is outstanding,
so the retransmission rules decide), the NAT with no traffic for several timeouts, and one idle hour
(probe count).  Detection is measured by the *latest* time the real system may act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..simulate import simulate
from ..units import format_duration
from .goal import KEEPALIVE_MECHANISMS, TICK_S, Goal, intervals_per_probe

#: Outage phases tried, as fractions of the first probe/check interval (plus "one tick before it").
PHASES = (0.0, 0.5)


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
    r = simulate(dict(base, faults=[{"kind": "link_down", "at_s": a}], until_s=a + goal.detect_within_s * 4 + 1000,
                      **extra)).side(side)
    det = (r.latest_s - a) if r.fate == "died" else math.inf
    took = format_duration(det) if det < math.inf else "never"
    by = f" by {r.by}" if r.by else ""
    if data:
        return det, Check(f"data in flight, link lost for good at {a:g} s", det <= goal.detect_within_s,
                          f"the {side} gives up {took} after its send{by} (latest)")
    return det, Check(f"link lost for good at {a:g} s", det <= goal.detect_within_s,
                      f"the {side} gives up {took} later{by} (latest, with timer slack)")


def _survival(goal: Goal, base: dict, side: str, a: float, data: bool) -> Check:
    """The outage of the goal from ``a`` (``data``: ``side`` sends as it starts): both sides alive after."""
    extra = {"traffic": [{"at_s": a, "from": side}]} if data else {}
    res = simulate(dict(base, faults=[{"kind": "link_down", "at_s": a, "for_s": goal.survive_outage_s}],
                        until_s=a + goal.survive_outage_s + goal.detect_within_s * 4 + 1000, **extra))
    ok = res.client.fate == "alive" and res.server.fate == "alive"
    name = f"{format_duration(goal.survive_outage_s)} outage from {a:g} s" + (", data in flight" if data else "")
    good = "delivered after the link is back, both sides alive" if data else "both sides alive afterwards"
    return Check(name, ok, good if ok else
                 f"client {res.client.fate} ({res.client.by}), server {res.server.fate} ({res.server.by})")


def verify(goal: Goal, side: str, mech: str, s: dict) -> tuple[bool, float, float, tuple[Check, ...]]:
    """Simulate the candidate: (all passed, worst detection [s], probes per idle hour, checks).

    Idle, then with the side's own data in flight when the link goes (keepalive is suspended while
    data is outstanding, so retransmission -- tcp_retries2 or TCP_USER_TIMEOUT -- or the ssh/sshd
    timer decides); detection at each phase, survival at each phase and just before the first probe.
    """
    base = scenario_for(goal, side, mech, s)
    first = _first_interval(mech, s, goal)
    checks: list[Check] = []
    worst = 0.0
    phases = [round(ph * first, 3) for ph in PHASES]
    for data in (False, True):
        for a in phases:
            det, check = _detection(goal, base, side, a, data)
            worst = max(worst, det)
            checks.append(check)
        if goal.survive_outage_s > 0:
            outage_at = sorted(set(phases) | {max(round(first - TICK_S, 3), 0.0)}) if not data else phases[-1:]
            checks += [_survival(goal, base, side, a, data) for a in outage_at]
    if goal.nat_idle_s is not None:
        # A NAT that waits longer is never the first to expire: a setting that keeps a NAT of
        # (detection goal + 60 s) alive keeps this one alive too (its probes come more often than
        # the goal), so that one is simulated -- a 100-year NAT needs no 400-year run.
        nat_s = min(goal.nat_idle_s, goal.detect_within_s + 60)
        nat = dict(base, until_s=nat_s * 4 + 60)
        nat["path"] = dict(base["path"], middleboxes=[{"kind": "nat", "idle_timeout_s": nat_s,
                                                         "on_expiry": "drop"}])
        res = simulate(nat)
        ok = res.client.fate == "alive" and res.server.fate == "alive"
        checks.append(Check(f"NAT idle timeout {format_duration(goal.nat_idle_s)}, idle session", ok,
                            "mapping kept alive" if ok else f"client {res.client.fate} ({res.client.by})"))
    idle = simulate(dict(base, until_s=3600))
    probes = sum(1 for e in idle.events if e.side == side and e.kind == probe_event(mech))
    if goal.max_probes_per_hour is not None:
        checks.append(Check("probes in an idle hour", probes <= goal.max_probes_per_hour,
                            f"{probes} sent by the {side} (limit {goal.max_probes_per_hour:g})"))
    return all(c.passed for c in checks), worst, float(probes), tuple(checks)

