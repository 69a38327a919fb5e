"""Candidate settings for a goal, from the closed forms (:mod:`kalab.mechanisms`), best first.

Keepalive gives up ``idle + cnt x intvl`` after the last segment and survives an outage that ends
before its last probe, so ``(cnt - 1) x intvl`` must exceed the outage; ServerAlive gives up
``(N + 1) x I`` after the last server packet, and its first message, retransmitted by TCP, must get
through after the outage (retransmission backoff from the simulator's own template) with time to
spare.  Preference: the fewest probes per idle hour (keepalive: with at most 10 probes per failure
when possible), then the fastest detection.  Each candidate still has to pass
:func:`kalab.recommend.verification.verify`.

Times are the *latest* the real system may act (timer-wheel and poll slack, :mod:`kalab.slack`): a
long retransmission backoff may land seconds after its nominal time, and the goal is met only if
the latest time fits.
"""

from __future__ import annotations

import math

from ..families import retx_template
from ..mechanisms import ssh_alive, sshd_alive
from ..mechanisms import tcp_keepalive as ka
from ..mechanisms import tcp_retransmit as rt
from ..slack import poll_timeout_slack_s, timer_slack_s
from .goal import HZ, KEEPALIVE_MECHANISMS, Goal, intervals_per_probe, sshd_version

#: How many analytic candidates are simulated per mechanism before giving up.
MAX_VERIFIED = 12


def _keepalive_candidates(goal: Goal, mech: str):
    d, o = goal.detect_within_s, goal.survive_outage_s
    margin = goal.rtt_ms / 1000 + 1.0              # the probe after the outage must be answered in time
    out = []
    retries2 = host_retries2(goal) if mech == "tcp-keepalive-sysctl" else None
    if mech == "tcp-keepalive-sysctl" and retries2 is None:
        return []
    for intvl in range(1, int(d) + 1):
        cnt = max(1, math.ceil((o + margin) / intvl) + 1) if o > 0 else 3
        if cnt > ka.MAX_TCP_KEEPCNT or cnt * intvl >= d:
            continue
        # The largest idle whose death plus timer-wheel slack fits: start below it, then step down.
        idle = int(d - cnt * intvl - cnt * timer_slack_s(intvl, HZ))
        idle -= int(timer_slack_s(max(idle, 1), HZ))
        while idle >= 1 and ka.linux_keepalive_death_s(idle, intvl, cnt) + timer_slack_s(idle, HZ) \
                + cnt * timer_slack_s(intvl, HZ) > d:
            idle -= 1
        if goal.nat_idle_s is not None:
            # The NAT must never see an idle gap within nat_margin_s of its timeout, with every timer as
            # late as the wheel may fire it: the first probe at idle + its slack (a 347 s timer may
            # fire 16.384 s late, after a 350 s NAT has forgotten), and a probe interval as late.
            room = goal.nat_idle_s - nat_margin_s(goal)
            idle = min(idle, int(room))
            while idle >= 1 and idle + timer_slack_s(idle, HZ) > room:
                idle -= 1
            if intvl + timer_slack_s(intvl, HZ) > room:
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


def nat_margin_s(goal: Goal) -> float:
    """How far below a NAT/firewall's idle timeout the latest refresh of the mapping must stay [s]:
    one round trip (the answer to a probe refreshes it too, half an RTT later) plus one second."""
    return goal.rtt_ms / 1000 + 1.0


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
    death, late, _by, sends = retx_template({}, goal.rtt_ms, ov)[:4]
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
    mult = intervals_per_probe(goal) if mech == "sshd-clientalive" else 1
    version = sshd_version(goal)

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
        # The longest gap the NAT sees: mult intervals, each up to one poll slack late, and up to a
        # second more for the whole-second clock; kept nat_margin_s below the NAT's timeout.
        if goal.nat_idle_s is not None and mult * (i + poll_timeout_slack_s(i)) + 1 > goal.nat_idle_s - nat_margin_s(goal):
            continue
        rate = 3600 / (mult * i)
        if goal.max_probes_per_hour is not None and rate > goal.max_probes_per_hour:
            continue
        out.append((rate, death(i, n), {"interval": i, "count": n}))
    out.sort(key=lambda c: (c[0], c[1]))
    return [c[2] for c in out]


def candidates_for(goal: Goal, mech: str) -> list[dict]:
    """The settings of ``mech`` that the closed forms say meet ``goal``, best first."""
    if mech in KEEPALIVE_MECHANISMS:
        return _keepalive_candidates(goal, mech)
    return _alive_candidates(goal, mech)
