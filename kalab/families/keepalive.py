"""The ``keepalive`` family: Linux keepalive on the client against a vanished peer.

Linux keepalive (with ``TCP_USER_TIMEOUT``) on the client, idle plain programs, one ``link_down``
(transient or permanent) or a server crash/reboot that starts by the first probe.  Also the
keepalive of one side over a block (:func:`keepalive_rule`, :func:`own_keepalive`), which the
ssh, sshd and middlebox families use.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..mechanisms import tcp_keepalive as ka
from ..mechanisms import tcp_retransmit as rt
from ..scenario import Scenario
from .grid import (FAULT_AXES, Family, by_code, clear_of, host_fault_death, keepalive_settings, linux_established,
                   lost_peer_fault, one_way_s, outage, reset_arrives, run_until_s, side_fields, versus,
                   where_also, windows_apart)

KEEPALIVE_AXES = {"client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPCNT",
                  "client.socket.TCP_USER_TIMEOUT", "client.sysctl.net.ipv4.tcp_keepalive_time",
                  "client.sysctl.net.ipv4.tcp_keepalive_intvl", "client.sysctl.net.ipv4.tcp_keepalive_probes"}


def keepalive_rule(idle, intvl, cnt, ut, hz: int):
    """Death by the Linux keepalive rule after the last segment received at 0 (no probe answered).

    Returns (nominal death [s], lateness [s], by code, intervals ``j``): the give-up firing ``j``
    (:func:`~kalab.mechanisms.tcp_keepalive.linux_keepalive_intervals`), when it comes and how late
    (``linux_keepalive_firing_s``, ``linux_keepalive_firing_late_s``), and what it is reported as
    (:func:`~kalab.mechanisms.tcp_retransmit.linux_give_up_by`).
    """
    j = ka.linux_keepalive_intervals(idle, intvl, cnt, ut, hz)
    death = ka.linux_keepalive_firing_s(idle, intvl, j)
    late = ka.linux_keepalive_firing_late_s(idle, intvl, j, hz)
    by = rt.linux_give_up_by(ut, by_code("tcp.keepalive"), by_code(rt.USER_TIMEOUT_BY))
    return death, late, by, j


def give_up_steady(idle, intvl, ut, j, hz: int):
    """Where the give-up firing ``j`` is the same at every timing corner (:mod:`kalab.timing`).

    Without ``TCP_USER_TIMEOUT`` it is the ``probes``-th firing whenever it comes.  With it, the
    first firing that finds ``elapsed >= UT``: at the latest corner each firing is later
    (:func:`~kalab.mechanisms.tcp_keepalive.linux_keepalive_firing_late_s`), so firing ``j - 1`` may
    already find the user timeout spent -- unless its window ends before UT (rounded up to jiffies).
    """
    ut_s = ka.user_timeout_jiffies_s(np.asarray(ut, dtype=float), hz)
    prev = ka.linux_keepalive_firing_s(idle, intvl, j - 1)
    prev_latest = prev + ka.linux_keepalive_firing_late_s(idle, intvl, j - 1, hz)
    return (ut_s <= 0) | (j < 2) | clear_of(prev, prev_latest, ut_s)


def own_keepalive(base: Mapping, cols: dict, sc: Scenario, side: str, shape: tuple):
    """``side``'s own keepalive from its last segment at 0, all probes lost: (death, late, by, idle);
    infinite death and idle when keepalive is off."""
    tcp = sc.host(side).tcp
    if not tcp.keepalive_enabled:
        inf = np.full(shape, np.inf)
        return inf, np.zeros(shape), np.zeros(shape, dtype=np.uint8), inf
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, side)
    d, late, by, _ = keepalive_rule(idle, intvl, cnt, ut, sc.host(side).hz)
    return (np.broadcast_to(d, shape), np.broadcast_to(late, shape), np.broadcast_to(by, shape),
            np.broadcast_to(idle, shape))


def _keepalive_matches(sc: Scenario, keys: set) -> bool:
    c, s = sc.client, sc.server
    if not keys <= KEEPALIVE_AXES | FAULT_AXES | {"path.rtt_ms", "until_s"}:
        return False
    if not linux_established(sc) or sc.traffic or sc.path.middleboxes or len(sc.faults) != 1:
        return False
    if c.app.kind != "plain" or s.app.kind != "plain":
        return False
    if not c.tcp.keepalive_enabled or s.tcp.keepalive_enabled or c.tcp.keepalive_rule != "linux":
        return False
    return lost_peer_fault(sc, "server")


def _keepalive_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """Probe ``k`` goes out at ``I + (k-1) V``; it is answered once the path is back; without an answer
    the kernel gives up by :func:`keepalive_rule`; its RST reaches the server if the link is up again;
    a rebooted server answers the first probe after it is back with RST.
    """
    hz = sc.client.hz
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, "client")
    h = one_way_s(cols, sc)
    until = run_until_s(cols, sc)
    f = sc.faults[0]
    a, back, _ = outage(cols, sc)
    eligible = a <= idle                                      # the fault starts no later than the first probe
    if f.kind in ("host_crash", "host_reboot"):
        eligible = eligible & (a > 0)                         # (a crash at t = 0 races the start; simulate it)
    death, late, by_rule, j = keepalive_rule(idle, intvl, cnt, ut, hz)
    last_probe = ka.linux_keepalive_firing_s(idle, intvl, j - 1)   # the last probe before the death firing
    last_probe_latest = last_probe + ka.linux_keepalive_firing_late_s(idle, intvl, j - 1, hz)
    # Timing (kalab.timing): every comparison below of a probe or the death with a fixed instant (the
    # path back, the run's end) must go the same way at the latest corner; where one might not, the
    # point is left to the simulator, so every point kept here is not timing-sensitive.
    steady = give_up_steady(idle, intvl, ut, j, hz)
    if f.kind == "host_reboot":
        # The first probe after the reboot is answered with RST (if the rule has not killed first).
        k = ka.linux_first_probe_from(back, idle, intvl)
        t_k = ka.linux_keepalive_firing_s(idle, intvl, k - 1)
        reset = ka.linux_probe_sent(k, t_k, cnt, ut, death) & np.isfinite(back)
        c_at = np.where(reset, reset_arrives(t_k, h), death)
        c_late = np.where(reset, ka.linux_keepalive_firing_late_s(idle, intvl, k - 1, hz), late)
        c_by = np.where(reset, by_code("tcp.reset_received"), by_rule)
        dies = np.asarray(True)
        # The probe before k must stay before the reboot's end, probe k after it and before the give-up.
        t_prev = ka.linux_keepalive_firing_s(idle, intvl, k - 2)
        steady = steady & ((k < 2) | clear_of(t_prev, t_prev + ka.linux_keepalive_firing_late_s(idle, intvl, k - 2, hz),
                                              back)) \
            & clear_of(t_k, t_k + ka.linux_keepalive_firing_late_s(idle, intvl, k - 1, hz), back) \
            & windows_apart(t_k, t_k + ka.linux_keepalive_firing_late_s(idle, intvl, k - 1, hz), death, death + late)
    elif f.kind == "host_crash":
        c_at, c_late, c_by = death, late, by_rule
        dies = np.asarray(True)
    else:
        # Every probe before the death went unanswered (dies); the RST goes out once the link is back
        # (back_by_death); neither the last probe nor the death is within a timing window of the
        # link's return (kalab.timing) -- all against ``back``, computed in its layout (versus).
        dies, back_by_death, clear = versus(
            lambda lp, lpl, d, dl, b: (lp < b, d >= b, clear_of(lp, lpl, b) & clear_of(d, dl, b)),
            last_probe, last_probe_latest, death, death + late, back)
        c_at, c_late, c_by = death, late, by_rule
        steady = steady & clear & clear_of(death + h, death + h + late, until)
    shape = np.broadcast_shapes(np.shape(dies), np.shape(c_at), np.shape(until), np.shape(back), np.shape(a))
    dies = np.broadcast_to(where_also(dies, c_at <= until), shape)
    eligible = eligible & steady & clear_of(c_at, c_at + c_late, until)
    if f.kind in ("host_crash", "host_reboot"):
        in_run = a <= until
        s_at, s_late, s_by = host_fault_death(f.kind, a)
        out = {"client": side_fields(dies, c_at, c_late, c_by, in_run, dest=dest and dest["client"]),
               "server": side_fields(in_run, s_at, s_late, s_by, shape=shape, dest=dest and dest["server"])}
    else:
        # The client's RST reaches the server if the link is back when it is sent.
        rst_arrives = where_also(dies & back_by_death, (death + h) <= until)
        out = {"client": side_fields(dies, c_at, c_late, c_by, dest=dest and dest["client"]),
               "server": side_fields(rst_arrives, death + h, late, by_code("tcp.reset_received"), dies,
                                     dest=dest and dest["server"])}
    return eligible, out


KEEPALIVE = Family("keepalive", _keepalive_matches, _keepalive_block)
