"""The ``middlebox`` family: client keepalive behind one NAT/firewall idle timer.

Client keepalive behind one NAT/firewall idle timer (drop or RST), idle plain programs, no fault:
the mapping survives while ``keepidle + rtt/2 < timeout``; else the first probe meets an expired
mapping.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..mechanisms import middlebox as mbx
from ..scenario import Scenario
from ..slack import timer_slack_s_array
from .grid import (TIE_S, Family, apart, by_code, clear_of, finish, keepalive_settings, linux_established, one_way_s,
                   per_point, run_until_s)
from .keepalive import KEEPALIVE_AXES, keepalive_rule

def _middlebox_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= KEEPALIVE_AXES | {"path.middleboxes.0.idle_timeout_s", "until_s"}:
        return False
    if not linux_established(sc) or sc.faults or sc.traffic or len(sc.path.middleboxes) != 1:
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "plain" and s.app.kind == "plain" and c.tcp.keepalive_enabled \
        and c.tcp.keepalive_rule == "linux" and not s.tcp.keepalive_enabled


def _middlebox_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """The mapping is refreshed by every packet when it is sent (the handshake at 0, each probe,
    each ACK).  The first probe leaves at ``keepidle``; if the mapping has been idle for its
    timeout by then (``keepidle >= timeout``: the expiry check runs first) the probe is dropped --
    and so is every later one: death by the keepalive rule -- or answered with an RST that reaches
    the client ``rtt/2`` later.  Later gaps, from an ACK to the next probe, are at most
    ``max(keepintvl - rtt/2, keepidle + rtt/2)`` (``tcp_keepalive_timer`` re-arms ``keepintvl`` after a
    probe, then waits out ``keepidle`` since the ACK); below the timeout (with a tick to spare) the
    connection survives for good; in between the simulator decides.
    """
    hz = sc.client.hz
    box = sc.path.middleboxes[0]
    timeout = per_point(cols, "path.middleboxes.0.idle_timeout_s", box.idle_timeout_s)
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, "client")
    h = one_way_s(cols, sc)
    until = run_until_s(cols, sc)
    shape = np.broadcast_shapes(timeout.shape, idle.shape, intvl.shape, cnt.shape, ut.shape, until.shape,
                                *(c.shape for c in cols.values()))
    d, late, by, j = keepalive_rule(idle, intvl, cnt, ut, hz)

    def first_expired(first):
        """The first probe, at ``first``, meets an expired mapping (the expiry check runs first)."""
        return mbx.expired(first, mbx.expires_at_s(0.0, timeout))

    def kept_alive(first, gap):
        """After an answered probe at p the timer fires again at p + intvl (``gap``) and probes if the
        last ACK is older than keepidle, else at p + rtt + keepidle (``first``): the mapping idles at
        most the larger, from the ACK; below the timeout, with a tick to spare, it survives for good."""
        return np.maximum(gap - h, first + h) + 1 / hz < timeout - TIE_S

    expired, survives = first_expired(idle), kept_alive(idle, intvl)
    # At the latest timing corner (kalab.timing) each of those timers fires one wheel granularity
    # late: the first probe at idle + slack, the gaps as long again.  The knife-edge: survives at
    # nominal timing, the first probe meets the expired mapping at the latest.
    idle_slack = timer_slack_s_array(idle, hz)
    first_late = idle + idle_slack
    expired_late = first_expired(first_late)
    survives_late = kept_alive(first_late, intvl + timer_slack_s_array(intvl, hz))
    if box.on_expiry == "rst":
        c_at, c_late, c_by = idle + h, idle_slack, by_code("middlebox.reset")
        expired = expired & (j >= 1)
        expired_late = expired_late & (j >= 1)
        late_death = first_late + h                                # the RST at the latest corner
    else:
        c_at, c_late, c_by = d, late, by
        late_death = d + late
    # Timing decides where nominal timing survives and the latest corner dies within the run; it does not
    # where both corners survive, or both meet the expired mapping with the death on the same side of
    # the run's end.  Every other point is left to the simulator.
    flips = survives & expired_late & apart(first_late, timeout) & (late_death < until - TIE_S)
    steady = (survives & survives_late) | (expired & clear_of(c_at, c_at + c_late, until))
    eligible = np.broadcast_to(flips | steady, shape)
    nan = np.full(shape, np.nan)
    c_at = np.where(expired, c_at, np.nan)
    # The server (no timers of its own) is left half open when the client dies of the flip.
    flips = np.broadcast_to(flips, shape)
    return eligible, finish(np.broadcast_to(c_at, shape), np.broadcast_to(c_late, shape), np.broadcast_to(c_by, shape),
                            nan, nan, by_code(None), until, dest, sensitive={"client": flips, "server": flips})


MIDDLEBOX = Family("middlebox", _middlebox_matches, _middlebox_block)
