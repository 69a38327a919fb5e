"""Closing: TIME_WAIT, FIN_WAIT_2 and the port-exhaustion rate (docs/mechanisms.md §Closing).

* Linux: ``TCP_TIMEWAIT_LEN (60*HZ)`` -- 60 s, fixed, no sysctl; a
  retransmitted FIN received in TIME_WAIT re-arms the 60 s.  ``tcp_fin_timeout``
  is *not* 2MSL; it bounds orphaned FIN_WAIT_2.
* FreeBSD: 2 x ``net.inet.tcp.msl`` (30000 ms) = 60 s.
* macOS/XNU: 2 x ``net.inet.tcp.msl`` (15000 ms) = 30 s.
* Windows: ``TcpTimedWaitDelay`` 30-300 s; 120 s since Server 2003 (240 s in
  Windows 2000); the modern default is unverified.
* Solaris: ``tcp_time_wait_interval`` 60000 ms (Oracle Solaris Tunable
  Parameters Reference Manual).
* SCO OpenServer: ``tcp_2msl`` -- the source article's "30 minutes if I remember
  correctly" is **unverified** folklore (no primary source found).
"""

from __future__ import annotations

import numpy as np

#: Linux ``TCP_TIMEWAIT_LEN`` [s].
LINUX_TIME_WAIT_S = 60.0
#: Linux ``TCP_FIN_TIMEOUT`` (= TCP_TIMEWAIT_LEN) [s]; per socket ``TCP_LINGER2``, max 120 s.
LINUX_FIN_TIMEOUT_S = 60.0
TCP_FIN_TIMEOUT_MAX_S = 120.0
#: Linux ``ip_local_port_range`` default "32768 60999" (28232 ports).
LINUX_PORT_RANGE = (32768, 60999)
#: macOS/FreeBSD ephemeral range 49152-65535 (``ipport_firstauto = 49152``).
BSD_PORT_RANGE = (49152, 65535)


def fin_wait2_orphan_stages_s(fin_timeout_s: float, rto_s: float) -> tuple[float, ...]:
    """The kernel timers an orphaned FIN_WAIT_2 runs through, in order [s]; it then silently disappears.

    ``tmo = max(fin_timeout, 3.5 * RTO)`` (``tcp_fin_time``).  ``tmo <= 60 s``: one timer, the
    FIN_WAIT_2 mini-socket's, of ``tmo`` (``__tcp_close``: ``tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)``).
    Above 60 s: the full socket is kept by the keepalive timer for ``tmo - 60``, and then
    ``tcp_keepalive_timer`` hands it to a mini-socket for a further ``tmo - 60`` (at least
    ``3.5 RTO``) -- two timers, each with its own timer-wheel slack.  The total was an inference
    from reading the code until measured on Linux 6.18 (docs/lab.md,
    ``tests/lab/test_fin_wait2.py``): ``tcp_fin_timeout`` 90 s -> 61.6 s, 120 s -> 123.1 s,
    70 s -> about 20 s, shorter than the default's 60 s.

    >>> fin_wait2_orphan_stages_s(60, 0.2), fin_wait2_orphan_stages_s(90, 0.2)
    ((60,), (30.0, 30.0))
    """
    tmo = max(fin_timeout_s, 3.5 * rto_s)
    if tmo <= LINUX_TIME_WAIT_S:
        return (tmo,)
    rest = tmo - LINUX_TIME_WAIT_S
    return (rest, max(rest, 3.5 * rto_s))


def fin_wait2_orphan_s(fin_timeout_s: float, rto_s: float) -> float:
    """How long an orphaned FIN_WAIT_2 lasts [s] (nominal): the sum of :func:`fin_wait2_orphan_stages_s`."""
    return sum(fin_wait2_orphan_stages_s(fin_timeout_s, rto_s))


def port_count(port_range: tuple[int, int]) -> int:
    lo, hi = port_range
    return hi - lo + 1


def max_connection_rate_per_s(port_range=LINUX_PORT_RANGE, time_wait_s=LINUX_TIME_WAIT_S):
    """Highest sustainable new-connection rate [1/s] to ONE destination (IP, port).

    When the client closes first, each connection parks its local port in
    TIME_WAIT for ``time_wait_s``; with ``N`` ephemeral ports the steady-state
    limit is ``N / time_wait_s`` (``tcp_tw_reuse`` off).  Linux defaults:
    28232 / 60 s = 470.5 connections/s; macOS 16384 / 30 s = 546/s.
    Arrays broadcast over ``time_wait_s``.
    """
    out = port_count(port_range) / np.asarray(time_wait_s, dtype=float)
    return out if out.ndim else float(out)
