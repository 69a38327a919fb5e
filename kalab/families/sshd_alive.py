"""The ``sshd_alive`` family: sshd's ClientAlive against a client that went silent.

``sshd`` with ``ClientAliveInterval`` (per OpenSSH version) against a client without
``ServerAlive``; the link goes down for good (or the client crashes or reboots) by the first probe.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..mechanisms import sshd_alive
from ..scenario import Scenario
from ..slack import poll_timeout_slack_s, timer_slack_s_array
from .grid import (TIE_S, Family, apart, by_code, clear_of, finish, host_fault_death, linux_established, lost_peer_fault, one_way_s,
                   outage, per_point, reset_arrives, run_until_s, windows_apart)
from .keepalive import own_keepalive
from .template import retx

SSHD_AXES = {"server.app.options.ClientAliveInterval", "server.app.options.ClientAliveCountMax",
             "server.sysctl.net.ipv4.tcp_retries2"}


def _sshd_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= SSHD_AXES | {"faults.0.at_s", "faults.0.down_s", "until_s"}:
        return False
    if not linux_established(sc) or sc.path.middleboxes or sc.traffic or len(sc.faults) != 1:
        return False
    f = sc.faults[0]
    if not lost_peer_fault(sc, "client") or (f.kind == "link_down" and f.for_s is not None):
        return False
    c, s = sc.client, sc.server
    client_quiet = c.app.kind == "plain" or (c.app.kind == "ssh" and c.app.alive_interval_s == 0)
    return s.app.kind == "sshd" and client_quiet and s.monotime_phase_s == 0 and c.tcp.keepalive_rule == "linux" \
        and s.tcp.keepalive_rule == "linux"


def _sshd_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """ClientAlive (phase 0, a client that went silent at 0): sshd waits a relative ``I`` each time;
    each wait may be one poll slack late and the slack adds up.  Probes from ``I`` (``2I`` for
    9.2-9.4, whose strict check skips every other timeout); death at ``(N+1) I`` (``2 (N+1) I``),
    never for ``CountMax 0`` since 8.2, at the first timeout before 8.2
    (:func:`kalab.mechanisms.sshd_alive.client_alive_death_s`).  The first probe's retransmission
    death may come first.  The link is down for good, so the client only has its own keepalive --
    or the client crashed (the same silence; it died at the fault) or rebooted: then the first probe
    (or its retransmission) to reach it once it is back is answered with RST, one RTT later.
    """
    app = sc.server.app
    v = app.version
    i = per_point(cols, "server.app.options.ClientAliveInterval", app.alive_interval_s)
    n = per_point(cols, "server.app.options.ClientAliveCountMax", app.alive_count_max)
    a, back, kind = outage(cols, sc)
    until = run_until_s(cols, sc)
    shape = np.broadcast_shapes(i.shape, n.shape, a.shape, back.shape, until.shape, *(c.shape for c in cols.values()))
    mult = sshd_alive.intervals_per_probe(v)
    poll = poll_timeout_slack_s(i)
    first_kills = sshd_alive.check_kills(0, n, v)
    # NaN where CountMax 0 never terminates (>= 8.2): no death by ClientAlive.
    d_sshd = np.nan_to_num(sshd_alive.client_alive_death_s(0.0, i, n, v), nan=np.inf)
    t0 = mult * i                                            # the first probe (none if the first check kills)
    rx = retx(base, cols, "server", t0, back, shape)
    d_rt, late_rt, by_rt, first, first_late = rx[:5]
    d_rt = np.where(first_kills, np.inf, d_rt)
    by_sshd = d_sshd < d_rt
    s_at = np.where(by_sshd, d_sshd, d_rt)
    waits = np.where(by_sshd, d_sshd, t0) / np.where(i > 0, i, 1)
    s_late = np.where(by_sshd, waits * poll, late_rt + waits * poll)
    s_by = np.where(by_sshd, by_code("sshd.client_alive"), by_rt)
    s_idle = own_keepalive(base, cols, sc, "server", shape)[3]
    first_event = np.where(first_kills, i, t0)
    eligible = (i > 0) & (a <= first_event) & (s_idle > first_event) & (apart(d_sshd, d_rt))
    # Timing (kalab.timing): every comparison of a timer-driven time with a fixed instant or another
    # timer goes the same way at every corner (windows [t, latest] apart), or the simulator decides.
    w_sshd = (d_sshd, d_sshd + waits_all(d_sshd, i) * poll)
    w_rt = (np.where(first_kills, np.inf, rx.death_lo), np.where(first_kills, np.inf, rx.death_hi + mult * poll))
    w_first_event = (first_event, first_event + mult * poll)
    s_slack = timer_slack_s_array(s_idle, sc.server.hz)
    # 9.2-9.4's strict check compares whole seconds of monotime(): each wait may be one poll slack
    # late, and once the slack has added up to a second a check comes due one interval sooner -- the
    # latest corner's ClientAlive then kills early.  Leave that to the simulator.
    drift_ok = (mult == 1) | (waits_all(np.fmin(s_at, until), i) * poll < 1 - TIE_S)
    eligible = eligible & drift_ok & rx.by_steady & windows_apart(*w_sshd, *w_rt) \
        & windows_apart(s_idle, s_idle + s_slack, *w_first_event) & clear_of(s_at, s_at + s_late, until)
    if kind == "link_down":
        c_d, c_late, c_by, c_idle = own_keepalive(base, cols, sc, "client", shape)
        eligible = eligible & (a <= c_idle) & clear_of(c_d, c_d + c_late, until)
        return eligible, finish(c_d, c_late, c_by, s_at, s_late, s_by, until, dest)
    if kind == "host_reboot":
        rst = reset_arrives(first, one_way_s(cols, sc))
        reset = ~first_kills & (rst < np.minimum(d_sshd, d_rt))
        w_rst = (rst, rst + first_late + mult * poll)
        eligible = eligible & apart(first, back) & apart(rst, d_sshd) & apart(rst, d_rt) \
            & clear_of(rx.prev, rx.prev + rx.prev_late + mult * poll, back) \
            & clear_of(first, first + first_late + mult * poll, back) & windows_apart(*w_rst, *w_sshd) \
            & windows_apart(*w_rst, *w_rt)
        s_at = np.where(reset, rst, s_at)
        s_late = np.where(reset, first_late + mult * poll, s_late)     # the probe left after `mult` poll waits
        s_by = np.where(reset, by_code("tcp.reset_received"), s_by)
    c_at, c_late, c_by = host_fault_death(kind, a)
    eligible = eligible & clear_of(s_at, s_at + s_late, until)
    return eligible & (a > 0), finish(np.broadcast_to(c_at, shape), c_late, c_by, s_at, s_late, s_by, until, dest)


def waits_all(d, i):
    """How many ClientAliveInterval waits come before ``d`` [s] (each may be one poll slack late)."""
    return np.where(np.isfinite(d), d, 0.0) / np.where(i > 0, i, 1)


SSHD_ALIVE = Family("sshd_alive", _sshd_matches, _sshd_block)
