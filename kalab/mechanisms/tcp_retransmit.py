"""TCP retransmission: RTO, backoff, the give-up test, and connection set-up.

Linux (``net/ipv4/tcp_timer.c``, ``include/net/tcp.h``; docs/mechanisms.md §Retransmission,
§Connection set-up):

* RTO after the handshake's RTT sample ``m``: ``srtt = m``,
  ``rttvar = max(2m, rto_min)``, ``RTO = srtt + rttvar`` rounded up to jiffies
  (``tcp_rtt_estimator``, ``__tcp_set_rto``); the 200 ms floor is
  ``TCP_RTO_MIN``.  For a LAN (m = 1 ms, HZ = 250) that is 204 ms.
* A lone unacknowledged segment is first re-sent by the tail loss probe
  (``tcp_schedule_loss_probe``): ``PTO = 2*srtt + TCP_RTO_MIN`` (one packet
  out) or ``+ TCP_TIMEOUT_MIN`` (more), never later than the pending RTO.  The
  RTO timer is then re-armed from the probe.  A TLP does not start
  ``retrans_stamp``.
* Each RTO firing re-sends the head and doubles the RTO up to ``TCP_RTO_MAX``
  (120 s, or ``tcp_rto_max_ms`` since 6.15).  The first RTO retransmission
  sets ``retrans_stamp``.
* Give-up is *time based*: at an RTO firing (never in between), die when
  ``now - retrans_stamp >= tcp_model_timeout(tcp_retries2)`` -- 924.6 s for the
  default 15 -- or, if ``TCP_USER_TIMEOUT`` is set, ``>= UT`` (and then the
  next RTO is clamped so death lands at ``retrans_stamp + UT``,
  ``tcp_clamp_rto_to_user_timeout``).  No RST is sent; the app sees ETIMEDOUT.
* SYN_SENT: initial RTO 1 s (``TCP_TIMEOUT_INIT``); the first
  ``tcp_syn_linear_timeouts`` (4 since ~6.5) retries do not back off; give up
  when ``retransmits >= syn_retries + linear`` or by the time model with a 1 s
  base (127 s before 6.5, 131 s after, for the default 6 retries).
"""

from __future__ import annotations

import math

import numpy as np

from ..units import DEFAULT_HZ, ceil_ticks

#: ``TCP_RTO_MIN ((unsigned)(HZ/5))`` -- 200 ms [s].
TCP_RTO_MIN_S = 0.2
#: ``TCP_RTO_MAX ((unsigned)(120*HZ))`` [s].
TCP_RTO_MAX_S = 120.0
#: ``TCP_TIMEOUT_INIT (1*HZ)`` -- RFC 6298 initial RTO [s].
TCP_TIMEOUT_INIT_S = 1.0
#: ``TCP_RETR2 15`` -- default ``net.ipv4.tcp_retries2``.
TCP_RETR2 = 15
#: ``TCP_RETR1 3``.
TCP_RETR1 = 3
#: ``TCP_SYN_RETRIES 6``.
TCP_SYN_RETRIES = 6
#: ``MAX_TCP_SYNCNT 127``.
MAX_TCP_SYNCNT = 127
#: ``sysctl_tcp_syn_linear_timeouts = 4`` in ``tcp_sk_init`` (kernels >= 6.5).
TCP_SYN_LINEAR_TIMEOUTS = 4
#: First kernel with ``tcp_syn_linear_timeouts`` (6.5, inferred from the patch date; docs/mechanisms.md).
SYN_LINEAR_SINCE = (6, 5)
#: First kernel with ``net.ipv4.tcp_rto_max_ms`` (6.15, from the netdev series; docs/mechanisms.md).
RTO_MAX_MS_SINCE = (6, 15)
#: ``TCP_TIMEOUT_MIN (2U)`` jiffies -- added to the PTO when more than one packet is out.
TCP_TIMEOUT_MIN_TICKS = 2
#: Orphans: ``tcp_orphan_retries`` 0 means 8 ("8 corresponds to >100 seconds").
ORPHAN_RETRIES_DEFAULT = 8


def initial_rto_s(rtt_s: float, hz: int, rto_min_s: float = TCP_RTO_MIN_S,
                  rto_max_s: float = TCP_RTO_MAX_S) -> float:
    """RTO [s] after one RTT sample of ``rtt_s``: ``rtt + max(2*rtt, rto_min)`` in whole jiffies.

    >>> initial_rto_s(0.001, 250)   # 201 ms rounded up to 4 ms ticks
    0.204
    """
    rto = rtt_s + max(2 * rtt_s, rto_min_s)
    return min(ceil_ticks(rto, hz) / hz, rto_max_s)


def tlp_timeout_s(srtt_s: float, rto_s: float, packets_out: int, hz: int) -> float:
    """Tail-loss-probe timeout [s] (``tcp_schedule_loss_probe``), never past the RTO."""
    pto = ceil_ticks(2 * srtt_s, hz)
    pto += ceil_ticks(TCP_RTO_MIN_S, hz) if packets_out == 1 else TCP_TIMEOUT_MIN_TICKS
    return min(pto / hz, rto_s)


def tcp_model_timeout_s(boundary, rto_base_s: float = TCP_RTO_MIN_S,
                        rto_max_s: float = TCP_RTO_MAX_S, hz: int = DEFAULT_HZ):
    """``tcp_model_timeout`` [s]: the give-up budget for ``boundary`` retries.

    ``thresh = ilog2(rto_max / rto_base)`` (9 for 120 s / 200 ms);
    ``boundary <= thresh``: ``(2**(boundary+1) - 1) * rto_base``;
    else ``(2**(thresh+1) - 1) * rto_base + (boundary - thresh) * rto_max``.

    Worked default: ``tcp_retries2 = 15`` gives ``1023 * 0.2 + 6 * 120 = 924.6 s``;
    8 (orphans) gives 102.2 s; SYN base 1 s and 6 retries give 127 s.
    Source: ``net/ipv4/tcp_timer.c:tcp_model_timeout``; docs/mechanisms.md §Retransmission.
    Computed in jiffies like the kernel.
    """
    base = ceil_ticks(rto_base_s, hz)
    rmax = ceil_ticks(rto_max_s, hz)
    thresh = int(math.floor(math.log2(rmax / base)))
    if isinstance(boundary, (int, np.integer)) and 0 <= boundary < 2**31:
        # One number (the event path, at every RTO firing): Python's integers, not numpy's scalar
        # machinery -- the same integers, divided once, so the same float.
        b = int(boundary)
        if b <= thresh:
            return ((2 << b) - 1) * base / hz
        return (((2 << thresh) - 1) * base + (b - thresh) * rmax) / hz
    b = np.asarray(boundary, dtype=np.int64)
    lin = ((2 << np.minimum(b, thresh)) - 1) * base
    out = np.where(b <= thresh, lin, ((2 << thresh) - 1) * base + (b - thresh) * rmax) / hz
    return out if out.ndim else float(out)


def retransmits_timed_out(*, now_s: float, retrans_stamp_s: float | None, retransmits: int,
                          boundary: int, user_timeout_s: float, rto_base_s: float,
                          rto_max_s: float, hz: int) -> bool:
    """The kernel's give-up test (``retransmits_timed_out``), evaluated at an RTO firing.

    Compares in whole milliseconds as ``tcp_time_stamp`` does.
    """
    if retransmits == 0 or retrans_stamp_s is None:
        return False
    timeout_s = user_timeout_s if user_timeout_s > 0 else \
        tcp_model_timeout_s(boundary, rto_base_s, rto_max_s, hz)
    elapsed_ms = round((now_s - retrans_stamp_s) * 1000, 6)
    return elapsed_ms >= round(timeout_s * 1000, 6)


#: The ``by`` of a connection that ``TCP_USER_TIMEOUT`` ended (kalab.result.BY).
USER_TIMEOUT_BY = "tcp.user_timeout"


def linux_give_up_by(user_timeout_s, rule_by, user_timeout_by=USER_TIMEOUT_BY):
    """What a Linux give-up is reported as: ``TCP_USER_TIMEOUT`` when it is set (``> 0``), else the
    rule's own cause ``rule_by`` (``tcp.retransmission``, ``tcp.keepalive``).

    A set user timeout replaces both the retransmission budget (:func:`retransmits_timed_out`) and
    the keepalive probe count (``tcp_keepalive_timer``; :func:`kalab.mechanisms.tcp_keepalive.linux_keepalive_fire`),
    so it is the cause whichever timer ends the connection (RFC 5482; docs/mechanisms.md §Keepalive,
    §Retransmission).  ``user_timeout_s`` a number or a numpy array (then ``np.where``: the sweep
    families pass ``by`` codes as ``rule_by`` and ``user_timeout_by``).
    """
    if isinstance(user_timeout_s, np.ndarray):
        return np.where(user_timeout_s > 0, user_timeout_by, rule_by)
    return user_timeout_by if user_timeout_s > 0 else rule_by


def clamp_rto_to_user_timeout_s(*, rto_s: float, now_s: float, retrans_stamp_s: float,
                                user_timeout_s: float, hz: int) -> float:
    """``tcp_clamp_rto_to_user_timeout``: the next RTO never overshoots the user timeout."""
    if user_timeout_s <= 0:
        return rto_s
    remaining = user_timeout_s - (now_s - retrans_stamp_s)
    if remaining <= 1e-9:
        return 1 / hz  # "user timeout has passed; fire ASAP"
    return min(rto_s, ceil_ticks(remaining, hz) / hz)


def backoff_rto_s(rto_s: float, rto_max_s: float) -> float:
    """``icsk_rto = min(icsk_rto << 1, tcp_rto_max(sk))``."""
    return min(rto_s * 2, rto_max_s)


def syn_backs_off(total_rto: int, linear_timeouts: int) -> bool:
    """SYN_SENT: exponential backoff only once ``total_rto > tcp_syn_linear_timeouts``."""
    return total_rto > linear_timeouts


def syn_expired(*, retransmits: int, syn_retries: int, linear_timeouts: int) -> bool:
    """Count-based SYN give-up: ``retransmits >= syn_retries + syn_linear_timeouts``."""
    return retransmits >= syn_retries + linear_timeouts


def orphan_retries(sysctl_value: int, alive: bool) -> int:
    """``tcp_orphan_retries``: 0 means 8 while the RTO is below its cap (``alive``)."""
    if sysctl_value == 0 and alive:
        return ORPHAN_RETRIES_DEFAULT
    return sysctl_value


# --------------------------------------------------------------------------
# Closed-form schedules, used for tables, sweeps and cross-checks.
# --------------------------------------------------------------------------

def rto_schedule(rto0_s: float, retries2: int = TCP_RETR2, *, user_timeout_s: float = 0.0,
                 rto_max_s: float = TCP_RTO_MAX_S, hz: int = DEFAULT_HZ, first_fire_s: float | None = None):
    """Retransmission times and death [s] for a segment whose RTO timer was armed at 0.

    Returns ``(retransmit_times_s, death_s)`` following the kernel's rule (docs/mechanisms.md §Retransmission):
    fire_1 = ``first_fire_s`` (default ``rto0``) re-sends without a check and
    starts ``retrans_stamp``; each later firing first checks the give-up test.
    Worked values: rto0 = 0.201 s -> 925.6 s / 15 retransmissions (HZ=1000);
    1.0 s -> 967.0 s / 13.
    """
    rto = rto0_s
    t = rto0_s if first_fire_s is None else first_fire_s
    times: list[float] = []
    stamp = None
    for _ in range(10_000):
        if retransmits_timed_out(now_s=t, retrans_stamp_s=stamp, retransmits=len(times),
                                 boundary=retries2, user_timeout_s=user_timeout_s,
                                 rto_base_s=TCP_RTO_MIN_S, rto_max_s=rto_max_s, hz=hz):
            return times, t
        times.append(t)
        if stamp is None:
            stamp = t
        rto = backoff_rto_s(rto, rto_max_s)
        nxt = clamp_rto_to_user_timeout_s(rto_s=rto, now_s=t, retrans_stamp_s=stamp,
                                          user_timeout_s=user_timeout_s, hz=hz)
        t = t + nxt
    raise RuntimeError("retransmission schedule did not terminate")  # pragma: no cover


def syn_schedule(syn_retries: int = TCP_SYN_RETRIES, linear_timeouts: int = TCP_SYN_LINEAR_TIMEOUTS,
                 *, user_timeout_s: float = 0.0, hz: int = DEFAULT_HZ, init_rto_s: float = TCP_TIMEOUT_INIT_S):
    """SYN retransmission times and the give-up time [s] after ``connect()`` at 0.

    Defaults (>= 6.5): retransmissions at 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s,
    give-up at 131 s; with ``linear_timeouts=0`` (< 6.5): 1, 3, 7, 15, 31, 63 s
    and 127 s.  ``retrans_stamp`` is the original SYN (``tcp_connect``).
    """
    rto = init_rto_s
    t = rto
    times: list[float] = []
    for _ in range(10_000):
        expired = syn_expired(retransmits=len(times), syn_retries=syn_retries,
                              linear_timeouts=linear_timeouts)
        if not expired:
            expired = retransmits_timed_out(now_s=t, retrans_stamp_s=0.0, retransmits=len(times),
                                            boundary=syn_retries, user_timeout_s=user_timeout_s,
                                            rto_base_s=init_rto_s, rto_max_s=TCP_RTO_MAX_S, hz=hz)
        if expired:
            return times, t
        times.append(t)
        if syn_backs_off(len(times), linear_timeouts):
            rto = backoff_rto_s(rto, TCP_RTO_MAX_S)
        t = t + clamp_rto_to_user_timeout_s(rto_s=rto, now_s=t, retrans_stamp_s=0.0,
                                            user_timeout_s=user_timeout_s, hz=hz)
    raise RuntimeError("SYN schedule did not terminate")  # pragma: no cover


# --------------------------------------------------------------------------
# BSD / macOS retransmission (docs/mechanisms.md §Retransmission): a shift count, not a time model;
# Solaris: an abort interval.
# --------------------------------------------------------------------------

#: FreeBSD ``tcp_backoff[]`` multipliers, ``TCP_MAXRXTSHIFT 12``, ``TCPTV_REXMTMAX`` 64 s.
FREEBSD_BACKOFF = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512, 512)
#: XNU ``tcp_backoff[]``.
XNU_BACKOFF = (1, 2, 4, 8, 16, 32, 64, 64, 64, 64, 64, 64, 64)
BSD_MAXRXTSHIFT = 12
BSD_REXMTMAX_S = 64.0


def bsd_rto_s(rto0_s: float, shift: int, table: tuple[int, ...]) -> float:
    """RTO [s] after ``shift`` timeouts: ``min(rto0 * tcp_backoff[shift], 64 s)``."""
    return min(rto0_s * table[min(shift, len(table) - 1)], BSD_REXMTMAX_S)


def bsd_retransmits_timed_out(*, now_s: float, retrans_stamp_s: float | None, retransmits: int, max_shift: int,
                              abort_s: float) -> bool:
    """The BSD give-up test at an RTO firing: ``++t_rxtshift > TCP_MAXRXTSHIFT`` (``max_shift``, 12) --
    or, with macOS's ``TCP_RXT_CONNDROPTIME`` (``abort_s > 0`` [s]), once the first retransmission
    (``retrans_stamp_s``, host monotonic [s]) is that long ago.  Source: FreeBSD and XNU
    ``tcp_timer.c`` ``tcp_timer_rexmt``; docs/mechanisms.md §Retransmission.
    """
    return retransmits + 1 > max_shift or (
        abort_s > 0 and retrans_stamp_s is not None and now_s - retrans_stamp_s >= abort_s)


def solaris_retransmits_timed_out(*, now_s: float, retrans_stamp_s: float | None, abort_s: float) -> bool:
    """The Solaris give-up test at an RTO firing: ``tcp_ip_abort_interval`` (``abort_s`` [s], 5 min in
    Solaris 11.2) after the first retransmission (``retrans_stamp_s``, host monotonic [s]).
    Source: Oracle Solaris Tunable Parameters Reference Manual; docs/mechanisms.md §Retransmission.
    """
    return retrans_stamp_s is not None and now_s - retrans_stamp_s >= abort_s
