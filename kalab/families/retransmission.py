"""The ``retransmission`` family: one message into a dead path, no keepalive.

The client sends one message at ``t`` into a ``link_down`` that started by then (transient or
permanent), or to a server that crashed or rebooted.  Death: ``t + template``
(:mod:`kalab.families.template`); it survives if a (re)transmission falls after the link is back;
a rebooted server answers the first one after it is back with RST (one RTT later).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..scenario import Scenario
from .grid import (FAULT_AXES, Family, apart, by_code, clear_of, finish, host_fault_death, jiffy_aligned, linux_established,
                   lost_peer_fault, one_way_s, outage, per_point, reset_arrives, run_until_s, windows_apart)
from .template import RETX_AXES_CLIENT, retx

def _retransmission_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= RETX_AXES_CLIENT | FAULT_AXES | {"traffic.0.at_s", "path.rtt_ms", "until_s"}:
        return False
    if not linux_established(sc) or sc.path.middleboxes or len(sc.faults) != 1 or not lost_peer_fault(sc, "server"):
        return False
    if len(sc.traffic) != 1:
        return False
    tr = sc.traffic[0]
    if tr.side != "client" or tr.close or tr.every_s is not None or tr.reply_bytes:
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "plain" and s.app.kind == "plain" and not c.tcp.keepalive_enabled \
        and not s.tcp.keepalive_enabled


def _retransmission_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """The client's message at ``t`` meets the dead link (or a crashed or rebooting server): it is
    re-sent on the template's schedule from ``t``.  Once the link is back the first (re)transmission
    delivers it; once a rebooted server is back the first one is answered with RST (ECONNRESET, one
    RTT later); if none comes before the give-up, the client dies (ETIMEDOUT, no RST) and the server
    is left half open (or is dead itself).
    """
    hz = sc.client.hz
    t = per_point(cols, "traffic.0.at_s", sc.traffic[0].at_s)
    a, back, kind = outage(cols, sc)
    h = one_way_s(cols, sc)
    until = run_until_s(cols, sc)
    shape = np.broadcast_shapes(t.shape, a.shape, back.shape, until.shape, h.shape,
                                *(c.shape for c in cols.values()))
    rx = retx(base, cols, "client", t, back, shape)
    death, late, by, first, first_late = rx[:5]
    eligible = jiffy_aligned(t, hz) & (a <= t) & (apart(first, back))
    # Timing (kalab.timing): the sends around the return of the path keep their side of it, the first
    # after it keeps its side of the give-up, and the give-up (whose firing may come one sooner at the
    # latest corner) keeps its by and its side of the run's end; else the simulator decides.
    eligible = eligible & rx.by_steady & clear_of(rx.prev, rx.prev + rx.prev_late, back) \
        & clear_of(first, first + first_late, back) & windows_apart(first, first + first_late, rx.death_lo, rx.death_hi) \
        & clear_of(rx.death_lo, rx.death_hi, until)
    nan = np.full(shape, np.nan)
    if kind == "link_down":
        c_at = np.where(first < death, np.nan, death)
        return eligible, finish(c_at, late, by, nan, nan, by_code(None), until, dest)
    s_at, s_late, s_by = host_fault_death(kind, a)
    if kind == "host_reboot":
        rst = reset_arrives(first, h)
        reset = rst < death
        eligible = eligible & (a > 0) & apart(rst, death) & windows_apart(rst, rst + first_late, rx.death_lo, rx.death_hi) \
            & clear_of(rst, rst + first_late, until)
        c_at, late = np.where(reset, rst, death), np.where(reset, first_late, late)
        by = np.where(reset, by_code("tcp.reset_received"), by)
    else:
        eligible = eligible & (a > 0)
        c_at = death
    return eligible, finish(c_at, late, by, np.broadcast_to(s_at, shape), s_late, s_by, until, dest)


RETRANSMISSION = Family("retransmission", _retransmission_matches, _retransmission_block)
