"""``kalab recommend``: settings that meet a goal, each checked by :func:`kalab.simulate`.

A goal says how fast a dead peer (or path) must be noticed (``detect_within_s``), how long an
outage must be survived (``survive_outage_s``), the idle timeout of a NAT on the path, who must
notice, and how many probes per idle hour are acceptable.  Three mechanisms can meet it:

``tcp-keepalive``
    the kernel's probes set per socket (``setsockopt``), for a program you can change; with
    ``TCP_USER_TIMEOUT`` so that unacknowledged data gives up in time too.
``tcp-keepalive-sysctl``
    the same probes host-wide (``sysctl.conf``), for every socket with ``SO_KEEPALIVE`` (ssh and sshd
    set it by default); there is no host-wide ``TCP_USER_TIMEOUT``, so ``net.ipv4.tcp_retries2`` is
    lowered where unacknowledged data would otherwise take ~15 min to give up.
``ssh-serveralive`` (client) / ``sshd-clientalive`` (server)
    OpenSSH's encrypted keepalive messages, which also pass proxies that answer TCP for the peer.

Candidates come from the closed forms (:mod:`kalab.mechanisms`): keepalive gives up
``idle + cnt x intvl`` after the last segment and survives an outage that ends before its last
probe, so ``(cnt - 1) x intvl`` must exceed the outage; ServerAlive gives up ``(N + 1) x I`` after the
last server packet, and its first message, retransmitted by TCP, must get through after the outage
(retransmission backoff from the simulator's own template) with time to spare.  Preference: the
fewest probes per idle hour (keepalive: with at most 10 probes per failure when possible), then
the fastest detection.  Every candidate is then *simulated*:
permanent link loss at several phases (detection), the outage at several phases, including just
before the first probe (survival), the same two with the side's own data in flight when the link goes
(detection counted from the unacknowledged send: keepalive is suspended while data is outstanding,
so the retransmission rules decide), the NAT with no traffic for several timeouts, and one idle hour
(probe count).  Only candidates that pass every check are printed.

Times are the *latest* the real system may act (timer-wheel and poll slack, :mod:`kalab.slack`): a
long retransmission backoff may land seconds after its nominal time, and the goal is met only if
the latest time fits.

Detecting faster than an outage you want to survive is impossible: until the path is back, a dead
peer and a broken path look the same to every probe (so does a crashed peer; a *rebooted* peer is
different -- it answers the first probe with RST).  Then the closest trade-offs are computed: the
longest outage survivable with the detection asked for, and the fastest detection that survives
the outage asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from .errors import ScenarioError, show
from .families import retx_template
from .mechanisms import ssh_alive, sshd_alive
from .mechanisms import tcp_keepalive as ka
from .mechanisms import tcp_retransmit as rt
from .settings import DEFAULT_HZ
from .simulate import simulate
from .slack import poll_timeout_slack_s, timer_slack_s
from .units import format_duration, parse_duration

HZ = DEFAULT_HZ
TICK_S = 1 / HZ
#: Outage phases tried, as fractions of the first probe/check interval (plus "one tick before it").
PHASES = (0.0, 0.5)
#: How many analytic candidates are simulated per mechanism before giving up.
MAX_VERIFIED = 12
#: The mechanisms per side (see the module docstring).
KEEPALIVE_MECHANISMS = ("tcp-keepalive", "tcp-keepalive-sysctl")
MECHANISMS = {"client": (*KEEPALIVE_MECHANISMS, "ssh-serveralive"),
              "server": (*KEEPALIVE_MECHANISMS, "sshd-clientalive")}


@dataclass(frozen=True)
class Goal:
    detect_within_s: float
    survive_outage_s: float = 0.0
    nat_idle_s: float | None = None
    side: str = "both"
    max_probes_per_hour: float | None = None
    rtt_ms: float = 50.0
    sshd_version: str = "9.6"

    def sides(self) -> tuple[str, ...]:
        return ("client", "server") if self.side == "both" else (self.side,)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Recommendation:
    side: str
    mechanism: str
    settings: dict
    detect_s: float               # worst latest detection over the simulated failures
    probes_per_hour: float        # probes (or alive messages) sent by this side in an idle hour
    checks: tuple = ()
    lines: dict = field(default_factory=dict)


# ---------------------------------------------------------------- candidates from the closed forms

def _keepalive_candidates(goal: Goal, mech: str):
    d, o = goal.detect_within_s, goal.survive_outage_s
    margin = goal.rtt_ms / 1000 + 1.0              # the probe after the outage must be answered in time
    out = []
    retries2 = host_retries2(goal) if mech == "tcp-keepalive-sysctl" else None
    if mech == "tcp-keepalive-sysctl" and retries2 is None:
        return []
    for intvl in range(1, int(d) + 1):
        cnt = max(1, math.ceil((o + margin) / intvl) + 1) if o > 0 else 3
        if cnt > 127 or cnt * intvl >= d:
            continue
        # The largest idle whose death plus timer-wheel slack fits: start below it, then step down.
        idle = int(d - cnt * intvl - cnt * timer_slack_s(intvl, HZ))
        idle -= int(timer_slack_s(max(idle, 1), HZ))
        while idle >= 1 and ka.linux_keepalive_death_s(idle, intvl, cnt) + timer_slack_s(idle, HZ) \
                + cnt * timer_slack_s(intvl, HZ) > d:
            idle -= 1
        if goal.nat_idle_s is not None:
            idle = min(idle, int(goal.nat_idle_s - margin - 1))
            if intvl > goal.nat_idle_s - margin - 1:
                continue
        if mech == "tcp-keepalive":
            if intvl > ka.MAX_TCP_KEEPINTVL:
                break
            idle = min(idle, ka.MAX_TCP_KEEPIDLE)    # setsockopt refuses more (a longer goal is met earlier)
        if idle < 1:
            continue
        rate = 3600 / max(idle, intvl)
        if goal.max_probes_per_hour is not None and rate > goal.max_probes_per_hour:
            continue
        deadline = ka.linux_keepalive_death_s(idle, intvl, cnt)
        s = {"idle": idle, "intvl": intvl, "cnt": cnt}
        if mech != "tcp-keepalive":
            s["tcp_retries2"] = retries2
        out.append((rate, deadline, s))
    # Fewest probes per idle hour; but a failure should not cost more than ~10 probes if avoidable.
    out.sort(key=lambda c: (c[2]["cnt"] > 10, c[0], c[1]))
    if mech != "tcp-keepalive":
        return [c[2] for c in out]
    # TCP_USER_TIMEOUT at most the keepalive deadline -- then the keepalive rule with UT
    # (``ceil((UT - idle) / intvl)`` intervals) ends no later -- and small enough that unacknowledged
    # data gives up in time, slack included.  Found for the best candidates only: each costs up to 8
    # retransmission schedules, and a one-day goal has ~30,000 candidates.
    best = []
    for _rate, deadline, s in out:
        ut = _user_timeout_ms(goal, int(deadline * 1000))
        if ut is not None:
            best.append({**s, "user_timeout_ms": ut})
            if len(best) >= MAX_VERIFIED:
                break
    return best


def retransmission_give_up_s(goal: Goal, *, retries2: int | None = None, user_timeout_ms: int | None = None):
    """A lone unacknowledged segment into a dead path: (latest give-up [s] after the send, send times
    [s] after the first).  The schedule is the simulator's own (:func:`kalab.families.retx_template`:
    RTO backoff from the connection's RTT, tail loss probe, ``tcp_retries2`` time model, UT clamp),
    with the timer-wheel slack of every backoff step added up."""
    ov: dict = {}
    if retries2 is not None:
        ov["sysctl.net.ipv4.tcp_retries2"] = retries2
    if user_timeout_ms:
        ov["socket.TCP_USER_TIMEOUT"] = user_timeout_ms
    death, late, _by, sends, _ = retx_template({}, goal.rtt_ms, ov)
    return death + late, sends


def _user_timeout_ms(goal: Goal, start_ms: int) -> int | None:
    """The largest ``TCP_USER_TIMEOUT`` [ms] <= ``start_ms`` whose data-in-flight give-up fits the goal.

    UT counts from the first retransmission (``retrans_stamp``, docs/mechanisms.md
    §Retransmission), not from the send, and the backoff steps carry slack: so the give-up after the
    send is later than UT.  Step UT down by the overshoot until it fits.
    """
    ut = start_ms
    for _ in range(8):
        latest, _ = retransmission_give_up_s(goal, user_timeout_ms=ut)
        over = latest - goal.detect_within_s
        if over <= 0:
            return ut
        ut -= math.ceil(over * 1000) + 1
        if ut < 1:
            return None
    return None


#: ``net.ipv4.tcp_retries2`` default (``TCP_RETR2``): about 924.6 s of retransmissions at the minimum RTO.
DEFAULT_RETRIES2 = rt.TCP_RETR2


def host_retries2(goal: Goal) -> int | None:
    """The largest ``tcp_retries2`` (at most the default 15) whose data-in-flight give-up fits the goal,
    or None when even 1 is too slow."""
    for r2 in range(DEFAULT_RETRIES2, 0, -1):
        if retransmission_give_up_s(goal, retries2=r2)[0] <= goal.detect_within_s:
            return r2
    return None


def _first_retransmission_at_or_after(offset_s: float, rtt_ms: float) -> float | None:
    """Offset [s] of the first (re)transmission at or after ``offset_s`` of a lone segment (template)."""
    sends = retx_template({}, rtt_ms, {})[3]
    for x in sends:
        if x >= offset_s - 1e-9:
            return x
    return None


def _alive_candidates(goal: Goal, mech: str):
    """ServerAlive / ClientAlive: (I, N) best first.  Deaths from :mod:`kalab.mechanisms.ssh_alive` and
    :mod:`kalab.mechanisms.sshd_alive` (9.2-9.4 check every other interval: ``mult`` 2)."""
    d, o = goal.detect_within_s, goal.survive_outage_s
    rtt = goal.rtt_ms / 1000
    mult = _mult(goal) if mech == "sshd-clientalive" else 1
    version = _version(goal)

    def death(i: int, n: int) -> float:      # after the peer's last packet at 0
        if mech == "ssh-serveralive":
            return ssh_alive.server_alive_death_s(0.0, i, n)
        return sshd_alive.client_alive_death_s(0.0, i, n, version)

    x = _first_retransmission_at_or_after(o, goal.rtt_ms) if o > 0 else 0.0
    if x is None:
        return []
    out = []
    for i in range(int(d // (2 * mult)), 0, -1):
        n = max(1, math.floor((x + rtt) / (mult * i)) + 1)
        if o == 0:
            n = max(n, 2)
            while n > 1 and death(i, n) + 1 > d:
                n -= 1
        # + 1 s: the whole-second clock; plus one poll slack per wait.
        if death(i, n) + 1 + poll_timeout_slack_s(i) * mult * (n + 1) > d:
            continue
        if goal.nat_idle_s is not None and mult * i > goal.nat_idle_s - rtt - 1:
            continue
        rate = 3600 / (mult * i)
        if goal.max_probes_per_hour is not None and rate > goal.max_probes_per_hour:
            continue
        out.append((rate, death(i, n), {"interval": i, "count": n}))
    out.sort(key=lambda c: (c[0], c[1]))
    return [c[2] for c in out]


# ---------------------------------------------------------------- scenarios and checks

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
    return float(s["interval"] * (_mult(goal) if mech == "sshd-clientalive" else 1))


def _version(goal: Goal) -> tuple[int, int]:
    from .scenario import _version as version
    return version(goal.sshd_version, "sshd_version", (5, 0), (10, 99))


def _mult(goal: Goal) -> int:
    return sshd_alive.intervals_per_probe(_version(goal))


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


# ---------------------------------------------------------------- the search

def probe_event(mech: str) -> str:
    """The timeline event kind that counts as one probe of ``mech``."""
    return "keepalive_probe" if mech in KEEPALIVE_MECHANISMS else "alive_sent"


def _candidates(goal: Goal, mech: str):
    if mech in KEEPALIVE_MECHANISMS:
        return _keepalive_candidates(goal, mech)
    return _alive_candidates(goal, mech)


def best_for(goal: Goal, side: str, mech: str) -> Recommendation | None:
    for s in _candidates(goal, mech)[:MAX_VERIFIED]:
        ok, det, probes, checks = verify(goal, side, mech, s)
        if ok:
            return Recommendation(side, mech, s, det, probes, checks, lines(side, mech, s, goal))
    return None


def recommend(goal: Goal) -> list[Recommendation]:
    """Every mechanism that meets the goal, per side (best candidate of each, simulated)."""
    out = []
    for side in goal.sides():
        for mech in MECHANISMS[side]:
            r = best_for(goal, side, mech)
            if r is not None:
                out.append(r)
    return out


def feasible(goal: Goal) -> bool:
    return all(any(best_for(goal, side, m) for m in MECHANISMS[side]) for side in goal.sides())


def longest_survivable_outage(goal: Goal) -> float | None:
    """The longest outage [whole s, at most the goal's] that settings meeting the rest of the goal
    survive (simulated); None when even no outage at all cannot be met."""
    if not feasible(Goal(**{**asdict(goal), "survive_outage_s": 0.0})):
        return None
    lo, hi = 0, int(min(goal.survive_outage_s, goal.detect_within_s))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if feasible(Goal(**{**asdict(goal), "survive_outage_s": float(mid)})):
            lo = mid
        else:
            hi = mid - 1
    return float(lo)


def trade_offs(goal: Goal) -> dict:
    """When the goal cannot be met: the longest survivable outage at the asked detection, and the
    fastest detection that survives the asked outage (each simulated; integer seconds)."""
    out: dict = {"survive_outage_s": longest_survivable_outage(goal)}
    lo, hi = max(2, int(goal.survive_outage_s)), int(max(goal.survive_outage_s * 4, goal.detect_within_s) + 600)
    hi = max(lo, min(hi, int(MAX_GOAL_S)))       # (the longest goal there is)
    if not feasible(Goal(**{**asdict(goal), "detect_within_s": float(hi)})):
        out["detect_within_s"] = None
    else:
        while lo < hi:                                 # smallest feasible detection
            mid = (lo + hi) // 2
            if feasible(Goal(**{**asdict(goal), "detect_within_s": float(mid)})):
                hi = mid
            else:
                lo = mid + 1
        out["detect_within_s"] = float(lo)
    if goal.max_probes_per_hour is not None:
        free = recommend(Goal(**{**asdict(goal), "max_probes_per_hour": None}))
        per_side = [min((r.probes_per_hour for r in free if r.side == s), default=None) for s in goal.sides()]
        out["max_probes_per_hour"] = None if None in per_side else max(per_side)
    return out


# ---------------------------------------------------------------- ready-to-paste lines

def lines(side: str, mech: str, s: dict, goal: Goal) -> dict:
    """Config lines by file, each with a one-line reason."""
    if mech == "tcp-keepalive":
        i, v, c, ut_ms = s["idle"], s["intvl"], s["cnt"], s["user_timeout_ms"]
        return {"setsockopt": [
            f"# per socket, on the {side}, after connect()/accept(); Python (C: the same names with setsockopt(2))",
            "sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)    # switch probing on",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, {i})    # first probe after {i} s idle",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, {v})    # every {v} s after",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, {c})    # {c} unanswered: dead "
            f"({i} + {c} x {v} = {i + c * v} s after the last packet)",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, {ut_ms})    # [ms] unacknowledged data "
            f"gives up {ut_ms / 1000:g} s after its first retransmission (default: ~15 min)"]}
    if mech == "tcp-keepalive-sysctl":
        i, v, c, r2 = s["idle"], s["intvl"], s["cnt"], s["tcp_retries2"]
        give_up = retransmission_give_up_s(goal, retries2=r2)[0]
        if r2 == DEFAULT_RETRIES2:
            r2_line = (f"# net.ipv4.tcp_retries2 = {r2}    (the default) unacknowledged data gives up within "
                       f"{format_duration(give_up)}")
        else:
            # RFC 1122 4.2.3.5 (SHLD-11): R2 should correspond to at least 100 s.
            rfc = " -- below RFC 1122's 100 s, for every connection of the host" if give_up < 100 else \
                " (for every connection of the host)"
            r2_line = (f"net.ipv4.tcp_retries2 = {r2}    # unacknowledged data gives up within "
                       f"{format_duration(give_up)} (default 15: ~15 min){rfc}")
        return {"sysctl.conf": [
            f"# /etc/sysctl.d/90-kalab-keepalive.conf on the {side}; apply with `sysctl --system` (host-wide; "
            "probes only sockets with SO_KEEPALIVE, which ssh and sshd set with TCPKeepAlive yes, the default)",
            f"net.ipv4.tcp_keepalive_time = {i}    # first probe after {i} s without traffic",
            f"net.ipv4.tcp_keepalive_intvl = {v}    # then one probe every {v} s",
            f"net.ipv4.tcp_keepalive_probes = {c}    # give up after {c} unanswered: "
            f"{i} + {c} x {v} = {i + c * v} s after the last packet",
            r2_line]}
    if mech == "ssh-serveralive":
        i, n = s["interval"], s["count"]
        return {"ssh_config": ["# ~/.ssh/config (or /etc/ssh/ssh_config); first value wins: put it near the top",
                               "Host *",
                               f"    ServerAliveInterval {i}    # an encrypted keepalive after {i} s without data "
                               "from the server",
                               f"    ServerAliveCountMax {n}    # exit after {n + 1} silent intervals: "
                               f"{(n + 1) * i} s after the server's last packet"]}
    i, n = s["interval"], s["count"]
    m = _mult(goal)
    note = f" (OpenSSH {goal.sshd_version} checks every other interval: x2)" if m == 2 else ""
    return {"sshd_config": ["# /etc/ssh/sshd_config, before any Match block; then reload sshd",
                            f"ClientAliveInterval {i}    # a keepalive to the client after {i} s of silence{note}",
                            f"ClientAliveCountMax {n}    # disconnect after {n} unanswered: "
                            f"{m * (n + 1) * i} s after the client's last packet"]}


# ---------------------------------------------------------------- CLI

#: The longest goal durations (--detect-within, --survive-outage) [s].
MAX_GOAL_S = 86400.0
#: The longest --nat-idle [s] (~317 years; any NAT slower than the detection goal is met alike).
MAX_NAT_S = 1e10


def _duration(text: str | None, flag: str, hi: float = MAX_GOAL_S) -> float | None:
    if text is None:
        return None
    allowed = f"more than 0 s .. {format_duration(hi)}, e.g. 30s, 2m, 1h30m"
    try:
        v = parse_duration(text)
    except ValueError as e:
        raise ScenarioError(flag, str(e), value=text, allowed=allowed) from None
    if not 0 < v <= hi:
        raise ScenarioError(flag, f"{show(text)} is out of range", value=text, allowed=allowed)
    return v


def goal_from_args(args) -> Goal:
    """The goal of ``kalab recommend``'s options; a bad one is refused naming the option typed."""
    d = _duration(args.detect_within, "--detect-within")
    if d is None:
        raise ScenarioError("--detect-within", "is required", allowed="more than 0 s .. 1 d, e.g. 30s, 2m")
    probes = args.max_probes_per_hour
    if probes is not None and (isinstance(probes, bool) or not isinstance(probes, (int, float))
                               or not 0 < probes < math.inf):
        raise ScenarioError("--max-probes-per-hour", f"{show(probes)} is out of range", value=probes,
                            allowed="a positive finite number")
    rtt = args.rtt_ms
    if isinstance(rtt, bool) or not isinstance(rtt, (int, float)) or not 0 < rtt <= 10_000:
        raise ScenarioError("--rtt-ms", f"{show(rtt)} is out of range", value=rtt, allowed="0 < rtt <= 10000 ms")
    if args.side not in ("client", "server", "both"):
        raise ScenarioError("--side", f"{show(args.side)} is not valid", value=args.side, allowed="client, server, both")
    from .scenario import _version as version
    version(args.sshd_version, "--sshd-version", (5, 0), (10, 99))
    return Goal(detect_within_s=d, survive_outage_s=_duration(args.survive_outage, "--survive-outage") or 0.0,
                nat_idle_s=_duration(args.nat_idle, "--nat-idle", hi=MAX_NAT_S), side=args.side,
                max_probes_per_hour=args.max_probes_per_hour, rtt_ms=args.rtt_ms, sshd_version=args.sshd_version)


def report(goal: Goal, recs: list[Recommendation], trades: dict) -> str:
    """The recommendations in plain words with their config lines (the CLI and notebook 10 print this)."""
    out = [f"Goal: notice a dead peer within {format_duration(goal.detect_within_s)} on the "
           f"{' and '.join(goal.sides())}"
           + (f", survive {format_duration(goal.survive_outage_s)} outages" if goal.survive_outage_s else "")
           + (f", through a NAT that forgets idle sessions after {format_duration(goal.nat_idle_s)}"
              if goal.nat_idle_s else "")
           + (f", at most {goal.max_probes_per_hour:g} probes per idle hour" if goal.max_probes_per_hour else "")
           + f" (RTT {goal.rtt_ms:g} ms)."]
    for r in recs:
        out += ["", f"== {r.side}: {r.mechanism} -- detects within {format_duration(r.detect_s)}, "
                    f"{r.probes_per_hour:g} probes per idle hour; checked by simulate():"]
        out += [f"   [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in r.checks]
        for name, ls in r.lines.items():
            out.append(f"-- {name}")
            out += ls
    missing = unmet(goal, recs)
    if missing:
        out += ["", f"No setting meets every constraint on the {' and '.join(missing)}."]
        if 0 < goal.survive_outage_s and goal.survive_outage_s >= goal.detect_within_s - 1:
            out += ["  The goals contradict each other: until the path is back, a dead peer and a broken path look",
                    "  the same to every probe (a crashed peer too; a rebooted one answers with RST and is noticed",
                    f"  at the first probe). Noticing within {format_duration(goal.detect_within_s)} means giving up "
                    f"on outages longer than that."]
        out.append("Closest trade-offs (each simulated):")
        o, d = trades.get("survive_outage_s"), trades.get("detect_within_s")
        if o is not None:
            out.append(f"  keep detection within {format_duration(goal.detect_within_s)}: survive outages up to "
                       f"{format_duration(o)}")
        else:
            why = (f" with at most {goal.max_probes_per_hour:g} probes per idle hour"
                   if goal.max_probes_per_hour is not None else "")
            out.append(f"  no setting found that detects within {format_duration(goal.detect_within_s)}{why}, "
                       "even with no outage to survive")
        if goal.survive_outage_s:
            out.append(f"  keep surviving {format_duration(goal.survive_outage_s)}: the fastest detection is "
                       + (format_duration(d) if d is not None else "not found"))
        if goal.max_probes_per_hour is not None:
            p = trades.get("max_probes_per_hour")
            out.append(f"  keep detection and survival: allow {p:g} probes per idle hour" if p is not None else
                       "  even without a probe limit the other constraints cannot be met")
    return "\n".join(out)


def unmet(goal: Goal, recs: list[Recommendation]) -> list[str]:
    return [s for s in goal.sides() if not any(r.side == s for r in recs)]


def answer(goal: Goal) -> tuple[list[Recommendation], dict]:
    """Recommendations, and the trade-offs when some side cannot meet the goal."""
    recs = recommend(goal)
    return recs, (trade_offs(goal) if unmet(goal, recs) else {})


def main(args) -> int:
    goal = goal_from_args(args)
    recs, trades = answer(goal)
    missing = unmet(goal, recs)
    if args.json:
        print(json.dumps({"goal": asdict(goal), "recommendations": [asdict(r) for r in recs],
                          "unmet_sides": missing, "trade_offs": trades}, indent=2))
    else:
        print(report(goal, recs, trades))
    return 1 if missing else 0
