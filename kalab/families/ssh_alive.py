"""The ``ssh_alive`` family: ssh's ServerAlive against a server that went silent.

``ssh`` with ``ServerAliveInterval`` against ``sshd`` without ``ClientAlive``; the link goes down
(or the server crashes or reboots) by the first check.  Death: the earlier of ``(CountMax + 1) x I``
and the first keepalive message's retransmission death; survives a transient outage when a
retransmission after the link is back brings the server's reply before that; with ``CountMax 0``
the FIN of the exiting ssh may reach sshd after the outage (EOF); a rebooted server's RST ends ssh
when it comes first.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..mechanisms import ssh_alive
from ..mechanisms import tcp_retransmit as rt
from ..scenario import Scenario
from ..slack import poll_timeout_slack_s, timer_slack_s_array
from .grid import (FAULT_AXES, TIE_S, Family, apart, by_code, clear_of, finish, host_fault_death, linux_established,
                   lost_peer_fault, one_way_s, outage, per_point, reset_arrives, run_until_s, windows_apart)
from .keepalive import own_keepalive
from .template import RETX_AXES_CLIENT, retx

SSH_AXES = {"client.app.options.ServerAliveInterval", "client.app.options.ServerAliveCountMax"}


def _ssh_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= SSH_AXES | RETX_AXES_CLIENT | FAULT_AXES | {"until_s"}:
        return False
    if not linux_established(sc) or sc.path.middleboxes or sc.traffic or len(sc.faults) != 1 \
            or not lost_peer_fault(sc, "server"):
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "ssh" and s.app.kind == "sshd" and s.app.alive_interval_s == 0 \
        and c.monotime_phase_s == 0 and c.tcp.keepalive_rule == "linux" and s.tcp.keepalive_rule == "linux"


def _orphan_boundary(host) -> int:
    return rt.orphan_retries(host.tcp.orphan_retries, True)


def _ssh_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """ServerAlive on the whole-second clock (phase 0): checks at ``I, 2I, ...``; the ``k``-th check
    sends keepalive@openssh.com, the ``(N+1)``-th kills (``(N+1) I``, latest one poll slack of ``I``
    later).  The first message (sent at ``I``) is retransmitted by the kernel on the template's
    schedule and may kill first (ETIMEDOUT).  A transient outage is survived when the first
    retransmission after the link is back brings the server's reply (one RTT later) before either.
    """
    app = sc.client.app
    i = per_point(cols, "client.app.options.ServerAliveInterval", app.alive_interval_s)
    n = per_point(cols, "client.app.options.ServerAliveCountMax", app.alive_count_max)
    a, back, kind = outage(cols, sc)
    until = run_until_s(cols, sc)
    rtt = 2 * one_way_s(cols, sc)
    shape = np.broadcast_shapes(i.shape, n.shape, a.shape, back.shape, until.shape,
                                *(c.shape for c in cols.values()))
    poll = poll_timeout_slack_s(i)
    d_ssh = ssh_alive.server_alive_death_s(0.0, i, n)
    t0_or_i = i                                     # the first check: it sends the first message (CountMax >= 1) or kills
    rx = retx(base, cols, "client", t0_or_i, back, shape, before=d_ssh, t0_late=poll)
    d_rt, late_rt, by_rt, first, first_late, last_rt, last_before_exit, next_after_exit = rx[:8]
    d_rt = np.where(n >= 1, d_rt, np.inf)
    # After ssh exits its FIN (behind any unacknowledged data) is re-sent by the orphan until it gives up.
    orphan = retx(base, cols, "client", t0_or_i, back, shape, retries2=_orphan_boundary(sc.client))
    d_orphan, last_orphan = orphan.death, orphan.last
    s_d, s_late, s_by, s_idle = own_keepalive(base, cols, sc, "server", shape)
    c_idle = own_keepalive(base, cols, sc, "client", shape)[3]

    reply = first + rtt
    survives = (n >= 1) & (reply < np.minimum(d_ssh, d_rt))
    # Timing (kalab.timing).  The client's own race -- the server's reply against ServerAlive and the
    # retransmission give-up -- is evaluated again at the latest corner (every check one poll slack
    # late, the retransmissions on the latest template, :func:`~kalab.families.template.retx`); the
    # point is kept only where it comes out the same.  Every other comparison of a timer-driven time
    # with a fixed instant or the other host's timer must go the same way at every corner (windows
    # [t, latest] apart).  Else the simulator decides: every point kept here is not timing-sensitive.
    d_ssh_w = d_ssh + poll
    d_rt_w = np.where(n >= 1, rx.death_w, np.inf)
    reply_w = rx.first_w + rtt
    survives_w = (n >= 1) & (reply_w < np.minimum(d_ssh_w, d_rt_w))
    by_ssh_w = d_ssh_w < d_rt_w
    w_first = (first, np.maximum(first, rx.first_w))
    s_slack = timer_slack_s_array(s_idle, sc.server.hz)
    c_slack = timer_slack_s_array(c_idle, sc.client.hz)
    steady = rx.by_steady & (survives_w == survives) & (survives | (by_ssh_w == (d_ssh < d_rt))) \
        & apart(reply_w, d_ssh_w) & apart(reply_w, d_rt_w) & apart(d_ssh_w, d_rt_w) & apart(rx.first_w, back) \
        & windows_apart(c_idle, c_idle + c_slack, i, i + poll)
    by_ssh = d_ssh < d_rt
    c_at = np.where(by_ssh, d_ssh, d_rt)
    c_late = np.where(by_ssh, poll, late_rt + poll)
    c_by = np.where(by_ssh, by_code("ssh.server_alive"), by_rt)
    if kind != "link_down":
        # (The keepalive message leaves after a ppoll timeout: its whole schedule may be one poll slack late.)
        return _ssh_lost_server(kind, a, first, first_late + poll, rtt, n, d_ssh, d_rt, c_at, c_late, c_by,
                                (i > 0) & (a > 0) & (a <= t0_or_i) & apart(d_ssh, d_rt) & (c_idle > t0_or_i)
                                & apart(first, back) & steady, shape, until, dest, rx.first_w, d_ssh_w, d_rt_w)
    # The last segment the client ever sends: by ETIMEDOUT, the last retransmission; after ssh exits,
    # the orphan re-sends (FIN behind the data) on the same schedule until its own give-up -- or, if
    # that budget is already spent, dies at its next firing without sending (tcp_write_timeout:
    # tcp_orphan_retries), so the last send is the last (re)transmission before ssh exited.
    last_send = np.where(by_ssh, np.where(d_orphan > d_ssh, last_orphan, last_before_exit), last_rt)

    eligible = (i > 0) & (a <= t0_or_i) & (apart(d_ssh, d_rt)) & (c_idle > t0_or_i) \
        & (apart(reply, d_ssh)) & (apart(reply, d_rt)) & (apart(first, back))
    # Survives: the server heard nothing before the reply's trigger, so its keepalive has not started.
    ok_survive = survives & (first < s_idle)
    # Dies: the server's first probe is lost too, and once the link is back nothing may still be on
    # its way (the orphan's FIN; the server's probes, which a closed client would answer with RST).
    # If the link is back before the server's first probe and the client is gone by then, that probe
    # meets a host without the connection: RST, one RTT after the probe.
    # "Gone" is when the client's socket no longer exists, not its last send: after ssh exits, the
    # orphan lives (and ACKs the server's probe) until it gives up; where its budget was already spent
    # at the exit, it ends at its next timer firing (tcp_write_timeout: tcp_orphan_retries).
    gone = np.where(by_ssh, np.where(d_orphan > d_ssh, d_orphan, next_after_exit), c_at)
    probe_reset = np.isfinite(s_d) & (back <= s_idle) & (s_idle > last_send + TIE_S) & (s_idle > gone + TIE_S)
    server_done = ~np.isfinite(s_d) | (back > s_d + TIE_S) | probe_reset
    # CountMax 0: ssh exits at the first check having sent nothing, and closes: its lone FIN is re-sent
    # on the template's schedule; the first send after the link is back (before the orphan gives up)
    # reaches sshd, which sees EOF rtt/2 later -- unless the server's own keepalive ended it first.
    fin_delivered = (n == 0) & np.isfinite(back) & (first < d_orphan - TIE_S) & (s_d > first + rtt / 2 + TIE_S)
    ok_die = ~survives & (a <= s_idle) & (np.isinf(back) | ((back > last_send + TIE_S) & server_done)
                                          | fin_delivered)
    eligible = eligible & (ok_survive | ok_die)
    # ... and the comparisons with the server's keepalive, the path's return and the orphan's give-up.
    late_any = np.maximum(late_rt, orphan.late) + poll              # a bound on any client send's lateness
    w_last = (last_send, last_send + late_any)
    w_gone = (gone, gone + late_any)
    w_sidle = (s_idle, s_idle + s_slack)
    w_sd = (s_d, s_d + s_late)
    steady = steady & windows_apart(*w_first, *w_sidle) & clear_of(*w_sidle, back) & clear_of(*w_last, back) \
        & clear_of(*w_sd, back) & windows_apart(*w_sidle, *w_last) & windows_apart(*w_sidle, *w_gone) \
        & windows_apart(*w_first, orphan.death_lo, orphan.death_hi + poll) \
        & windows_apart(first + rtt / 2, first + rtt / 2 + first_late + poll, *w_sd)
    eligible = eligible & steady
    c_at = np.where(survives, np.nan, c_at)
    s_at = np.where(survives, np.nan, np.where(fin_delivered, first + rtt / 2, np.where(probe_reset, s_idle + rtt, s_d)))
    s_late = np.where(fin_delivered, first_late + poll,
                      np.where(probe_reset, timer_slack_s_array(s_idle, sc.server.hz), s_late))
    s_by = np.where(fin_delivered, by_code("tcp.fin_received"), np.where(probe_reset, by_code("tcp.reset_received"), s_by))
    c_at_w = np.where(survives, np.nan, np.where(by_ssh, d_ssh_w, d_rt_w))   # the death at the latest corner
    eligible = eligible & clear_of(np.fmin(c_at, c_at_w), np.fmax(c_at + c_late, c_at_w), until) \
        & clear_of(s_at, s_at + s_late, until)
    return eligible, finish(c_at, c_late, c_by, s_at, s_late, s_by, until, dest)


def _ssh_lost_server(kind, a, first, first_late, rtt, n, d_ssh, d_rt, c_at, c_late, c_by, eligible, shape, until,
                     dest, first_w, d_ssh_w, d_rt_w):
    """ServerAlive against a server that crashed (it never answers: as a link down for good) or
    rebooted: the first keepalive message (or its retransmission) to reach the server once it is back
    is answered with RST, which ends ssh one RTT later ("Connection reset by peer") unless ServerAlive
    or the retransmission give-up came first.  With ``CountMax 0`` ssh exits at the first check."""
    if kind == "host_reboot":
        rst = reset_arrives(first, rtt / 2)
        reset = (n >= 1) & (rst < np.minimum(d_ssh, d_rt))
        # ... and at the latest corner (kalab.timing) the RST still comes first, or still does not.
        rst_w = reset_arrives(first_w, rtt / 2)
        reset_w = (n >= 1) & (rst_w < np.minimum(d_ssh_w, d_rt_w))
        eligible = eligible & apart(rst, d_ssh) & apart(rst, d_rt) & (reset_w == reset) & apart(rst_w, d_ssh_w) \
            & apart(rst_w, d_rt_w)
        c_at = np.where(reset, rst, c_at)
        c_late = np.where(reset, first_late, c_late)
        c_by = np.where(reset, by_code("tcp.reset_received"), c_by)
    c_at_w = np.where(d_ssh_w < d_rt_w, d_ssh_w, d_rt_w)      # the client's death at the latest corner
    if kind == "host_reboot":
        c_at_w = np.where(reset, rst_w, c_at_w)
    s_at, s_late, s_by = host_fault_death(kind, a)
    eligible = eligible & clear_of(np.minimum(c_at, c_at_w), np.maximum(c_at + c_late, c_at_w), until)
    return eligible, finish(c_at, c_late, c_by, np.broadcast_to(s_at, shape), s_late, s_by, until, dest)


SSH_ALIVE = Family("ssh_alive", _ssh_matches, _ssh_block)
