"""TCP keepalive: when an idle connection probes its peer, and when it gives up.

Three families of rules exist in the wild; each is written here once.

**Linux** (``net/ipv4/tcp_timer.c:tcp_keepalive_timer``; docs/mechanisms.md §Keepalive).  One
timer per socket.  When it fires:

1. if data is in flight (``packets_out`` or a non-empty write queue) it
   re-arms for a full ``keepidle`` from *now* -- keepalive is suspended and the
   retransmission timer decides instead ("It is alive without keepalive 8)");
2. ``elapsed`` = time since the last segment *received* (``rcv_tstamp`` /
   ``lrcvtime``; sending does not reset it);
3. if ``elapsed < keepidle`` it re-arms for the remainder;
4. else it kills the connection (RST + ``ETIMEDOUT``) when
   ``probes_out >= keepalive_probes`` -- or, if ``TCP_USER_TIMEOUT`` is set,
   when ``elapsed >= user_timeout and probes_out > 0`` (the count is then
   ignored) -- otherwise it sends probe ``probes_out + 1`` and re-arms for
   ``keepintvl``.

Defaults (``include/net/tcp.h``): 7200 s, 75 s, 9 probes, so an idle
connection to a vanished peer dies after 7200 + 9 x 75 = 7875 s = 2 h 11 min 15 s.

**BSD total-idle rule** (FreeBSD ``tcp_timer_keep``, XNU ``tcp_timers``
``TCPT_KEEP``; docs/mechanisms.md §Keepalive): probes at ``keepidle + k*keepintvl``; drop when
``idle >= keepidle + keepcnt*keepintvl``.  Default keepcnt is 8: 7800 s.

**Solaris / illumos** (``tcp_timers.c:tcp_keepalive_timer``): drop when
``idle > ka_interval + ka_abort_threshold`` (strictly greater); re-probe every
``keepintvl`` if set, else an interval starting at the RTO and doubling, capped
at ``tcp_rexmit_interval_max`` (60 s) and ``ka_interval - 1``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..slack import timer_slack_s_array
from ..units import DEFAULT_HZ, ceil_ticks

#: ``TCP_KEEPALIVE_TIME (120*60*HZ)`` -- two hours [s] (include/net/tcp.h).
LINUX_KEEPALIVE_TIME_S = 7200.0
#: ``TCP_KEEPALIVE_INTVL (75*HZ)`` [s] (include/net/tcp.h).
LINUX_KEEPALIVE_INTVL_S = 75.0
#: ``TCP_KEEPALIVE_PROBES 9`` (include/net/tcp.h).
LINUX_KEEPALIVE_PROBES = 9
#: ``MAX_TCP_KEEPIDLE 32767`` [s]: the largest ``TCP_KEEPIDLE`` setsockopt accepts.
MAX_TCP_KEEPIDLE = 32767
#: ``MAX_TCP_KEEPINTVL 32767`` [s].
MAX_TCP_KEEPINTVL = 32767
#: ``MAX_TCP_KEEPCNT 127``.
MAX_TCP_KEEPCNT = 127

#: Floating-point tolerance for "elapsed >= limit" comparisons [s]; far below a tick.
EPS_S = 1e-9


class KeepaliveAction(NamedTuple):
    """What the keepalive timer does when it fires.

    ``kind`` is ``"rearm"`` (nothing due yet; fire again in ``delay_s``),
    ``"probe"`` (send probe number ``probe_number``, fire again in ``delay_s``)
    or ``"die"`` (send RST, report ``ETIMEDOUT``).
    """

    kind: str
    delay_s: float = 0.0
    probe_number: int = 0
    relative: bool = True  # False: delay is a remainder to a fixed deadline


def linux_keepalive_fire(*, elapsed_s: float, idle_s: float, intvl_s: float, probes: int,
                         probes_out: int, user_timeout_s: float, data_in_flight: bool,
                         hz: int) -> KeepaliveAction:
    """The Linux ``tcp_keepalive_timer`` decision, verbatim in structure.

    Parameters: ``elapsed_s`` [s] since the last received segment; ``idle_s``,
    ``intvl_s`` [s] and ``probes`` the effective keepidle/keepintvl/keepcnt;
    ``probes_out`` unanswered probes so far; ``user_timeout_s`` [s]
    (``TCP_USER_TIMEOUT``/1000, 0 = off), compared in whole jiffies as the kernel
    does (``msecs_to_jiffies`` rounds up).
    """
    if data_in_flight:
        return KeepaliveAction("rearm", idle_s)
    if elapsed_s + EPS_S >= idle_s:
        if user_timeout_s > 0:
            if elapsed_s + EPS_S >= user_timeout_jiffies_s(user_timeout_s, hz) and probes_out > 0:
                return KeepaliveAction("die")
        elif probes_out >= probes:
            return KeepaliveAction("die")
        return KeepaliveAction("probe", intvl_s, probes_out + 1)
    return KeepaliveAction("rearm", idle_s - elapsed_s, relative=False)


def bsd_keepalive_fire(*, elapsed_s: float, idle_s: float, intvl_s: float, count: int,
                       probes_out: int, data_in_flight: bool) -> KeepaliveAction:
    """The FreeBSD/XNU total-idle rule: drop once ``idle >= keepidle + keepcnt*keepintvl``.

    (XNU and FreeBSD also probe while data is outstanding; kalab keeps the
    Linux/RFC 9293 MUST-26 suspension for all systems -- noted in docs.)
    """
    if data_in_flight:
        return KeepaliveAction("rearm", idle_s)
    if elapsed_s + EPS_S >= idle_s + count * intvl_s:
        return KeepaliveAction("die")
    if elapsed_s + EPS_S >= idle_s:
        return KeepaliveAction("probe", intvl_s, probes_out + 1)
    return KeepaliveAction("rearm", idle_s - elapsed_s, relative=False)


def solaris_keepalive_fire(*, elapsed_s: float, idle_s: float, abort_s: float,
                           intvl_s: float | None, last_interval_s: float, rto_s: float,
                           rto_max_s: float, probes_out: int,
                           data_in_flight: bool) -> KeepaliveAction:
    """The illumos rule: drop when ``idle > ka_interval + ka_abort_thres`` (strict).

    ``abort_s == 0`` means probe forever.  Without ``TCP_KEEPINTVL`` the
    re-probe interval starts at the RTO and doubles:
    ``MIN(ka_intrvl - 1, last << 1)`` capped at ``tcp_rexmit_interval_max``.
    """
    if data_in_flight:
        return KeepaliveAction("rearm", idle_s)
    if abort_s > 0 and elapsed_s > idle_s + abort_s + EPS_S:
        return KeepaliveAction("die")
    if elapsed_s + EPS_S >= idle_s:
        if intvl_s:
            nxt = intvl_s
        elif probes_out == 0:
            nxt = rto_s
        else:
            nxt = min(idle_s - 1, last_interval_s * 2, rto_max_s)
        return KeepaliveAction("probe", nxt, probes_out + 1)
    return KeepaliveAction("rearm", idle_s - elapsed_s, relative=False)


# --------------------------------------------------------------------------
# Closed forms (numpy-broadcasting), checked against the event simulator.
# --------------------------------------------------------------------------

def user_timeout_jiffies_s(user_timeout_s, hz: int = DEFAULT_HZ):
    """``TCP_USER_TIMEOUT`` [s] as the keepalive timer compares it: rounded up to whole jiffies
    (``msecs_to_jiffies``), in seconds.  A number or a numpy array."""
    return ceil_ticks(user_timeout_s, hz) / hz


def linux_keepalive_intervals(idle_s, intvl_s, probes, user_timeout_s=0.0, hz: int = DEFAULT_HZ):
    """How many probe intervals after ``keepidle`` the Linux rule gives up (arrays broadcast).

    Without ``TCP_USER_TIMEOUT``: ``probes`` (the firing that finds ``probes_out >= probes``).
    With ``UT > 0`` (count ignored, at least one probe): ``max(1, ceil((UT - idle) / intvl))``,
    UT rounded up to jiffies.  Probes ``1..j`` go out at ``idle + (k - 1) * intvl``
    (:func:`linux_keepalive_firing_s`).
    """
    idle = np.asarray(idle_s, dtype=float)
    intvl = np.asarray(intvl_s, dtype=float)
    ut = user_timeout_jiffies_s(np.asarray(user_timeout_s, dtype=float), hz)
    if ut.ndim == 0 and ut <= 0:                  # one user timeout, unset: the count (no pass over the grid)
        return np.asarray(probes, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        k_ut = (ut - idle) / intvl                   # (then in place: one array of the settings' grid, not four)
        k_ut = np.maximum(1.0, np.ceil(np.subtract(k_ut, 1e-9, out=k_ut), out=k_ut), out=k_ut) if k_ut.ndim \
            else np.maximum(1.0, np.ceil(k_ut - 1e-9))
    return k_ut if ut.ndim == 0 else np.where(ut > 0, k_ut, np.asarray(probes, dtype=float))


def linux_keepalive_firing_s(idle_s, intvl_s, k, out=None):
    """When the keepalive timer fires the ``k``-th time after ``keepidle`` [s after the last
    received segment]: ``idle + k * intvl`` (arrays broadcast).

    Nothing answered: probe ``k + 1`` goes out at firing ``k`` (probe 1 at ``keepidle``), and
    firing ``j`` (:func:`linux_keepalive_intervals`) gives up.  Worked defaults: probe 9 at
    ``7200 + 8 * 75 = 7800 s``, the give-up at 7875 s.  docs/mechanisms.md §Keepalive.

    ``out``: an array of the broadcast shape to write the answer into (the sweep families' reused
    arrays, :func:`kalab.families.grid.scratch`); the same sum, the same bits.
    """
    if out is None:
        return idle_s + k * intvl_s
    return np.add(idle_s, np.multiply(k, intvl_s, out=out), out=out)


def linux_keepalive_firing_late_s(idle_s, intvl_s, k, hz: int = DEFAULT_HZ, out=None):
    """How late firing ``k`` (:func:`linux_keepalive_firing_s`) may come [s]: the ``keepidle`` timer
    and each of the ``k`` ``keepintvl`` timers after it may each fire one timer-wheel granularity
    late, and lateness adds up along the chain (:func:`kalab.slack.timer_slack_s_array`;
    docs/mechanisms.md §Timer slack).  Worked defaults (HZ = 250): the give-up (``k = 9``) up to
    ``131.072 + 9 * 2.048 = 149.504 s`` late.  ``out`` as for :func:`linux_keepalive_firing_s`.
    """
    if out is None:
        return timer_slack_s_array(idle_s, hz) + k * timer_slack_s_array(intvl_s, hz)
    return np.add(timer_slack_s_array(idle_s, hz), np.multiply(k, timer_slack_s_array(intvl_s, hz), out=out), out=out)


def linux_keepalive_death_s(idle_s, intvl_s, probes, user_timeout_s=0.0, hz: int = DEFAULT_HZ):
    """Nominal death time [s] after the last received segment, Linux rule.

    ``idle + j * intvl`` with ``j`` from :func:`linux_keepalive_intervals`:
    without ``TCP_USER_TIMEOUT`` ``idle + probes * intvl``; with ``UT > 0``
    ``idle + intvl * max(1, ceil((UT - idle) / intvl))``.

    Worked defaults: ``7200 + 9 * 75 = 7875 s`` (2 h 11 min 15 s).
    Source: ``net/ipv4/tcp_timer.c:tcp_keepalive_timer``; docs/mechanisms.md §Keepalive.
    Scalars or arrays broadcast (pvlib style).
    """
    j = linux_keepalive_intervals(idle_s, intvl_s, probes, user_timeout_s, hz)
    out = linux_keepalive_firing_s(np.asarray(idle_s, dtype=float), np.asarray(intvl_s, dtype=float), j)
    return out if out.ndim else float(out)


def linux_first_probe_from(t_s, idle_s, intvl_s, out=None):
    """The number ``k >= 1`` of the first probe sent at or after ``t_s`` [s after the last received
    segment] (probe ``k`` at firing ``k - 1``, :func:`linux_keepalive_firing_s`), the count
    notwithstanding: ``max(1, ceil((t - idle) / intvl) + 1)`` (arrays broadcast).  A peer back at
    ``t_s`` -- a rebooted host that answers with RST -- first hears this probe.  ``out``: an array
    of the broadcast shape to write it into (the same steps, in place).
    """
    if out is None:
        return np.maximum(1.0, np.ceil((t_s - idle_s) / intvl_s - 1e-9) + 1)
    np.divide(np.subtract(t_s, idle_s), intvl_s, out=out)
    np.subtract(out, 1e-9, out=out)
    np.ceil(out, out=out)
    np.add(out, 1, out=out)
    return np.maximum(1.0, out, out=out)


def linux_probe_sent(k, probe_s, probes, user_timeout_s, death_s, out=None):
    """Does probe ``k``, due at ``probe_s`` [s], go out before the Linux rule gives up at ``death_s``?

    Without ``TCP_USER_TIMEOUT`` while ``k <= probes``; with it (``user_timeout_s > 0``; the count
    is then ignored) while it is due before the give-up.  Arrays broadcast; ``out``: a bool array
    to write the answer into (the sweep families' reused arrays).
    """
    if np.ndim(user_timeout_s) == 0:              # one user timeout: one of the two conditions
        if user_timeout_s > 0:
            return np.less(probe_s, death_s, out=out)
        return np.greater_equal(probes, k, out=out)
    sent = ((probes >= k) & (user_timeout_s <= 0)) | ((user_timeout_s > 0) & (probe_s < death_s))
    return sent if out is None else np.copyto(out, sent) or out


def bsd_keepalive_death_s(idle_s, intvl_s, count):
    """Nominal death [s] after the last received segment, FreeBSD/XNU: ``idle + count * intvl``.

    Defaults: 7200 + 8 x 75 = 7800 s (2 h 10 min).  docs/mechanisms.md §Keepalive.
    """
    out = np.asarray(idle_s, dtype=float) + np.asarray(count, dtype=float) * np.asarray(intvl_s, dtype=float)
    return out if out.ndim else float(out)
