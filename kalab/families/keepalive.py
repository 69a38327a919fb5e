"""The ``keepalive`` family: Linux keepalive on the client against a vanished peer.

Linux keepalive (with ``TCP_USER_TIMEOUT``) on the client, idle plain programs, one ``link_down``
(transient or permanent) or a server crash/reboot that starts by the first probe.  Also the
keepalive of one side over a block (:func:`keepalive_rule`, :func:`own_keepalive`), which the
ssh, sshd and middlebox families use.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import numpy as np

from ..mechanisms import tcp_keepalive as ka
from ..mechanisms import tcp_retransmit as rt
from ..scenario import Scenario
from . import grid
from .grid import (FAULT_AXES, TIE_S, Family, by_code, clear_of, host_fault_death, keepalive_settings,
                   linux_established, lost_peer_fault, one_way_s, outage, reset_arrives, run_until_s, shape_of,
                   side_fields, versus, window_holds, windows_overlap)

KEEPALIVE_AXES = {"client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPCNT",
                  "client.socket.TCP_USER_TIMEOUT", "client.sysctl.net.ipv4.tcp_keepalive_time",
                  "client.sysctl.net.ipv4.tcp_keepalive_intvl", "client.sysctl.net.ipv4.tcp_keepalive_probes"}


def keepalive_rule(idle, intvl, cnt, ut, hz: int, scratch: bool = False):
    """Death by the Linux keepalive rule after the last segment received at 0 (no probe answered).

    Returns (nominal death [s], lateness [s], by code, intervals ``j``): the give-up firing ``j``
    (:func:`~kalab.mechanisms.tcp_keepalive.linux_keepalive_intervals`), when it comes and how late
    (``linux_keepalive_firing_s``, ``linux_keepalive_firing_late_s``), and what it is reported as
    (:func:`~kalab.mechanisms.tcp_retransmit.linux_give_up_by`).  With ``scratch`` the death and
    its lateness are in arrays reused from block to block (:func:`_settings_scratch`): the keepalive
    family's, which calls this once a block.
    """
    j = ka.linux_keepalive_intervals(idle, intvl, cnt, ut, hz)
    def reuse(name):
        return _settings_scratch(name, idle, intvl, j) if scratch else None

    death = ka.linux_keepalive_firing_s(idle, intvl, j, out=reuse("death"))
    late = ka.linux_keepalive_firing_late_s(idle, intvl, j, hz, out=reuse("late"))
    by = rt.linux_give_up_by(ut, by_code("tcp.keepalive"), by_code(rt.USER_TIMEOUT_BY))
    return death, late, by, j


def _settings_scratch(name: str, *values) -> np.ndarray:
    """A reused float array shaped like ``values`` broadcast (:func:`~kalab.families.grid.scratch`):
    the settings' own grid, a tenth of a block or more, would be a fresh allocation every block."""
    return grid.scratch("keepalive." + name, grid.shape_of(*values), float)


def give_up_steady(ut, j, prev, prev_latest, hz: int):
    """Where the give-up firing ``j`` is the same at every timing corner (:mod:`kalab.timing`), given
    the window ``[prev, prev_latest]`` of firing ``j - 1`` (:func:`keepalive_rule`).

    Without ``TCP_USER_TIMEOUT`` it is the ``probes``-th firing whenever it comes.  With it, the
    first firing that finds ``elapsed >= UT``: at the latest corner each firing is later
    (:func:`~kalab.mechanisms.tcp_keepalive.linux_keepalive_firing_late_s`), so firing ``j - 1`` may
    already find the user timeout spent -- unless its window ends before UT (rounded up to jiffies).
    """
    ut_s = ka.user_timeout_jiffies_s(np.asarray(ut, dtype=float), hz)
    if ut_s.ndim == 0 and ut_s <= 0:
        return np.asarray(True)                   # no user timeout anywhere: the count decides
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
    rule_key = (hz, grid.values_key(idle, intvl, cnt, ut))
    rule = grid.same_as_last("keepalive.rule", rule_key, lambda: _rule_over(idle, intvl, cnt, ut, hz))
    if f.kind == "link_down":
        return _link_down(rule, rule_key, idle, back, until, a, h, dest)
    return _server_lost(f.kind, rule, idle, intvl, cnt, ut, hz, back, until, a, h, dest)


def _spread(x, settings: tuple[int, ...]):
    """``x`` over every settings axis after the outermost one along which the settings vary,
    contiguous -- where ``x`` does not vary along that outermost axis (else as it is, as is a
    number).  A small copy: those inner axes hold a fraction of the settings' grid."""
    x = np.asarray(x, dtype=float)
    first = next((i for i, n in enumerate(settings) if n > 1), None)
    if x.ndim != len(settings) or first is None or x.shape[first] != 1:
        return x
    inner = (1,) * (first + 1) + settings[first + 1:]
    return x if x.shape == inner else np.ascontiguousarray(np.broadcast_to(x, inner))


class _Rule(NamedTuple):
    """The keepalive rule over a block's settings [s] (:func:`_rule_over`)."""

    death: np.ndarray              # the give-up firing j (keepalive_rule)
    late: np.ndarray               # how late it may come
    death_latest: np.ndarray       # death + late
    by: np.ndarray                 # its cause's code
    j: np.ndarray
    last_probe: np.ndarray         # firing j - 1, the last probe
    last_probe_latest: np.ndarray
    steady: np.ndarray             # give_up_steady
    max_death: float
    max_late: float
    max_death_latest: float


def _rule_over(idle, intvl, cnt, ut, hz: int) -> _Rule:
    """What the keepalive family needs of the rule over the block's settings alone: computed once for
    a run of blocks with the same settings (:func:`~kalab.families.grid.same_as_last`), into reused
    arrays -- the settings' grid is a tenth of a block or more.

    Timing (kalab.timing): every comparison the family makes of a probe or the death with a fixed
    instant (the path back, the run's end) must go the same way at the latest corner; where one
    might not, the point is left to the simulator, so every point kept is not timing-sensitive.
    """
    # Each setting that varies along an inner axis, spread over every settings axis but the first
    # (a small copy): then numpy coalesces those axes and each pass over the settings' grid is a few
    # long loops, not one loop of a few values (the last settings axis) per point of the others.
    settings = shape_of(idle, intvl, cnt, ut)
    idle, intvl, cnt, ut = (_spread(x, settings) for x in (idle, intvl, cnt, ut))
    death, late, by_rule, j = keepalive_rule(idle, intvl, cnt, ut, hz, scratch=True)
    jm1 = j - 1
    last_probe = ka.linux_keepalive_firing_s(idle, intvl, jm1,          # the last probe before the death firing
                                             out=_settings_scratch("last_probe", idle, intvl, jm1))
    late_jm1 = ka.linux_keepalive_firing_late_s(idle, intvl, jm1, hz,
                                               out=_settings_scratch("last_probe_latest", idle, intvl, jm1))
    last_probe_latest = np.add(last_probe, late_jm1, out=late_jm1)
    steady = give_up_steady(ut, j, last_probe, last_probe_latest, hz)
    death_latest = np.add(death, late, out=_settings_scratch("death_latest", death, late))
    with np.errstate(invalid="ignore"):
        tops = float(np.max(death)), float(np.max(late)), float(np.max(death_latest))
    return _Rule(death, late, death_latest, by_rule, j, last_probe, last_probe_latest, steady, *tops)


def _server_lost(kind, rule: _Rule, idle, intvl, cnt, ut, hz, back, until, a, h, dest):
    """The server crashes (``host_crash``) or reboots (``host_reboot``) at ``a``: the client's
    keepalive gives up by the rule; a rebooted server answers the first probe after it is back
    with RST (if the rule has not killed first), which the client has ``2 h`` after sending it."""
    # The fault starts no later than the first probe (a crash at t = 0 races the start: simulated).
    starts_in_time = (a <= idle) & (a > 0)
    if kind == "host_reboot":
        c_at, c_late, c_by, eligible, latest_bound = _reboot(rule, idle, intvl, cnt, ut, hz, back, until, a, h,
                                                             starts_in_time, dest)
    else:
        c_at, c_late, c_by = rule.death, rule.late, rule.by
        eligible = starts_in_time & rule.steady
        latest_bound = rule.max_death_latest
    # The client dies within the run, and its death is clear of the run's end (kalab.timing): where
    # the run ends after every death's latest time (a bound from the small grids), no pass over the
    # block tells so.
    with np.errstate(invalid="ignore"):
        after_all = latest_bound + 2 * TIE_S < np.min(until)
    if after_all:
        dies = np.asarray(True)
    else:
        c_latest = rule.death_latest if c_at is rule.death else c_at + c_late

        def decide(out, c_at, c_latest, ok, u):
            dies, good, spare, spare2 = out
            np.less_equal(c_at, u, out=dies)
            np.copyto(good, ok)
            np.greater(good, window_holds(c_at, c_latest, u, out=spare, spare=spare2), out=good)   # good & ~holds

        dies, eligible = versus(decide, c_at, c_latest, eligible, until, masks=2, name="keepalive.run_end")
    in_run = a <= until
    shape = grid.shape_of(dies, c_at, until, back, a)
    s_at, s_late, s_by = host_fault_death(kind, a)
    out = {"client": side_fields(dies, c_at, c_late, c_by, in_run, shape=shape, dest=dest and dest["client"]),
           "server": side_fields(in_run, s_at, s_late, s_by, shape=shape, dest=dest and dest["server"])}
    return eligible, out


def _reboot(rule: _Rule, idle, intvl, cnt, ut, hz, back, until, a, h, starts_in_time, dest):
    """The rebooted server answers the first probe after it is back (probe ``k``) with RST, if the
    rule has not killed first (``reset``): then the client dies ``2 h`` after sending it, else by the
    rule.  Returns the client's death, its lateness and cause, and where no timing corner changes
    that (the probe before ``k`` stays before the reboot's end, probe ``k`` after it and apart from
    the give-up).  What depends on the reboot's end and the count together (the block, often with
    the reboot's length innermost) is worked out by versus; the rest on its own smaller grid."""
    # Probe k's times over their own grid (the settings' and the reboot's end's), into reused arrays,
    # the reboot's end and the interval spread over its inner axes first (long loops; see _spread).
    small = shape_of(back, idle, intvl)
    back_s, idle_s, intvl_s = (_spread(x, small) for x in (back, idle, intvl))

    def reuse(name):
        return grid.scratch("keepalive.reboot." + name, small, float)

    k = ka.linux_first_probe_from(back_s, idle_s, intvl_s, out=reuse("k"))
    km1 = np.subtract(k, 1, out=reuse("k-1"))
    km2 = np.subtract(k, 2, out=reuse("k-2"))
    t_k = ka.linux_keepalive_firing_s(idle_s, intvl_s, km1, out=reuse("t_k"))
    t_k_late = ka.linux_keepalive_firing_late_s(idle, intvl, km1, hz, out=reuse("t_k_late"))
    t_k_latest = np.add(t_k, t_k_late, out=reuse("t_k_latest"))
    t_prev = ka.linux_keepalive_firing_s(idle_s, intvl_s, km2, out=reuse("t_prev"))
    t_prev_latest = np.add(t_prev, ka.linux_keepalive_firing_late_s(idle, intvl, km2, hz, out=reuse("t_prev_late")),
                           out=reuse("t_prev_latest"))
    ok = starts_in_time & ((k < 2) | clear_of(t_prev, t_prev_latest, back)) & clear_of(t_k, t_k_latest, back) \
        & np.isfinite(back)

    def decide(out, k, t_k, t_k_latest, d, d_latest, ok, steady, cnt, _back):
        reset, good, spare, spare2 = out
        ka.linux_probe_sent(k, t_k, cnt, ut, d, out=reset)
        np.copyto(good, ok & steady)
        np.greater(good, windows_overlap(t_k, t_k_latest, d, d_latest, out=spare, spare=spare2), out=good)

    # (The count's axis and the reboot's end outermost: probe k's times vary with the one, the
    # give-up's with the other, both with the idle time and interval -- the long inner loop.)
    reset, steady = versus(decide, k, t_k, t_k_latest, rule.death, rule.death_latest, ok, rule.steady, cnt, back,
                           masks=2, pivots=2, name="keepalive.reboot")
    with np.errstate(invalid="ignore"):          # (a bound: max t_k + 2 max h >= every RST's arrival)
        bound = max(float(reset_arrives(np.max(t_k), np.max(h))), rule.max_death) \
            + max(float(np.max(t_k_late)), rule.max_late)
    # The client's death (it varies with the rtt too): into the result where there is one (side_fields
    # then leaves it), else into a reused array.  Its cause and lateness on their own grid (the
    # settings', and the reboot's end's) -- into the result too where that is the block's, the
    # lateness only where the run ends after every death (side_fields then adds the death to it in
    # place; else it writes NaN there first).
    block = dest["client"]["at_s"].shape if dest else shape_of(reset, h, until, a)
    full = dest and reset.shape == block                # (else the small grid's, copied in by side_fields)
    in_place = full and bound + 2 * TIE_S < np.min(until)
    c_at = dest["client"]["at_s"] if dest else grid.scratch("keepalive.reboot.at_s", block, float)
    no_reset = np.logical_not(reset, out=grid.scratch("keepalive.reboot.no_reset", reset.shape))
    arrives = reset_arrives(t_k, h, out=grid.scratch("keepalive.reboot.arrives", shape_of(t_k, h), float))
    grid.select_into(c_at, reset, arrives, rule.death, not_mask=no_reset)
    c_late = dest["client"]["latest_s"] if in_place else grid.scratch("keepalive.reboot.late", reset.shape, float)
    grid.select_into(c_late, reset, t_k_late, rule.late, not_mask=no_reset)
    c_by = dest["client"]["by"] if full else grid.scratch("keepalive.reboot.by", reset.shape, np.uint8)
    rst = by_code("tcp.reset_received")
    if np.ndim(rule.by) == 0:
        # One cause by the rule (one user timeout): by + reset * (RST - by), in bytes (mod 256,
        # exact) -- two passes without branches, where a masked copy tests every point.
        np.multiply(reset.view(np.uint8), np.uint8((int(rst) - int(rule.by)) % 256), out=c_by)
        c_by += np.uint8(rule.by)
    else:
        np.copyto(c_by, rule.by)
        np.copyto(c_by, rst, where=reset)
    return c_at, c_late, c_by, steady, bound


def _link_down(rule: _Rule, rule_key, idle, back, until, a, h, dest):
    """The ``link_down`` case: every probe before the death went unanswered (the client dies); its RST
    reaches the server if the link is back when it is sent; and the point is the family's only where
    neither the last probe nor the death is within a timing window of the link's return or the run's
    end (kalab.timing).  All that is compared against the outage, the run's end and the rtt is
    computed in one :func:`~kalab.families.grid.versus` (those axes outermost)."""
    # The RST reaches the server h after the death (the settings' grid, and the rtt's where swept).
    def rst_arrives():
        return grid.same_as_last("keepalive.rst_arrives", (rule_key, grid.values_key(h)),
                                 lambda: np.add(rule.death, h, out=_settings_scratch("rst_arrives", rule.death, h)))

    # Where the run ends after every RST's latest arrival (a long run: the usual case), the run's
    # end decides nothing and is clear of every window -- no check at all.  (max(death + late) + max(h)
    # bounds every (death + h) + late, to the last bit with TIE_S to spare.)
    with np.errstate(invalid="ignore"):
        run_is_long = bool(rule.max_death_latest + np.max(h) + 2 * TIE_S < np.min(until))
    # What is compared with the run's end (and the rtt, through the RST's arrival) only where the run
    # is not long: then versus moves their axes too; else the masks need not span them.
    values = [rule.last_probe, rule.last_probe_latest, rule.death, rule.death_latest, rule.steady, idle]
    if run_is_long:
        values += [back, a]
        pivots = 2
    else:
        dh = rst_arrives()
        dh_late = np.add(dh, rule.late, out=_settings_scratch("rst_arrives_latest", dh, rule.late))
        values += [dh, dh_late, back, a, until, h]
        pivots = 4

    def decide(out, lp, lp_late, d, d_late, ok, i, *rest):
        # Into versus's arrays, no temporary of the block's size, and as few passes over it as can
        # be: what depends on the settings alone is small, and computed first.
        dies, rst, good, spare, spare2 = out
        if run_is_long:
            b, a_ = rest
        else:
            dh, dh_late, b, a_, u, _ = rest
        np.less(lp, b, out=dies)
        np.greater_equal(d, b, out=rst)
        rst &= dies
        np.copyto(good, (a_ <= i) & ok)
        if not run_is_long:
            dies &= np.less_equal(d, u, out=spare)
            rst &= np.less_equal(dh, u, out=spare)
            # The death's window and its RST's arrival's, as one: [death, RST's latest arrival] holds
            # both (the RST leaves at the death, h before it arrives) -- a run's end in the gap between
            # them, less than h wide where there is one, is left to the simulator too (exact there).
            np.greater(good, window_holds(d, dh_late, u, out=spare, spare=spare2), out=good)    # good & ~holds
        np.greater(good, window_holds(lp, lp_late, b, out=spare, spare=spare2), out=good)
        np.greater(good, window_holds(d, d_late, b, out=spare, spare=spare2), out=good)

    dies, rst, eligible = versus(decide, *values, masks=3, pivots=pivots)
    client = side_fields(dies, rule.death, rule.late, rule.by, dest=dest and dest["client"])
    if dest:
        # The RST's arrival from the client's death just written: one pass over the block, not a copy
        # of the settings' grid into it (death + 0.0 + h is death + h, to the bit; NaN stays NaN).
        rst_at = np.add(client["at_s"], h, out=dest["server"]["at_s"])
    else:
        rst_at = rst_arrives()
    server = side_fields(rst, rst_at, rule.late, by_code("tcp.reset_received"), dies, dest=dest and dest["server"])
    return eligible, {"client": client, "server": server}


KEEPALIVE = Family("keepalive", _keepalive_matches, _keepalive_block)
