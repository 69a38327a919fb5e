"""How late the Linux timer wheel may fire a kernel timer.

The kernel keeps ``timer_list`` timers (all TCP timers: keepalive,
retransmission, TIME_WAIT) in a hierarchical wheel, ``kernel/time/timer.c``:

* ``LVL_BITS = 6`` (64 buckets per level), ``LVL_CLK_SHIFT = 3`` (each level is
  8x coarser), ``LVL_DEPTH = 9`` when ``HZ > 100`` else 8;
* a timer due ``delta`` ticks from now goes to the first level ``n`` with
  ``delta < LVL_START(n + 1)``, ``LVL_START(n) = 63 << 3*(n - 1)``
  (``calc_wheel_index``);
* its expiry is rounded *up* to that level's granularity ``8**n`` ticks
  (``calc_index``: "The timer wheel has to guarantee that a timer does not
  fire early ... Round up with level granularity to prevent this.").

So a timer never fires early, and fires late by at most one granularity of
its level.  With HZ=250 (4 ms ticks): a 75 s keepalive interval lands at level 3
(2.048 s granularity), the 7200 s keepalive idle time at level 5 (131.072 s).
Lateness adds up along a chain of timers each armed from the previous one's
firing (keepalive probes, RTO backoff), which is why kalab reports both the
nominal time ``at_s`` and ``latest_s``.

userspace timeouts (ssh's ``ppoll``) run on hrtimers and are not subject to
this; OpenSSH's whole-second clock is modelled separately
(:mod:`kalab.mechanisms.ssh_alive`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .units import ceil_ticks

LVL_CLK_SHIFT = 3
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS


def lvl_depth(hz: int) -> int:
    """Number of wheel levels: 9 if HZ > 100 else 8 (``kernel/time/timer.c``)."""
    return 9 if hz > 100 else 8


def lvl_start(n: int) -> int:
    """First delta [ticks] that lands on level ``n`` (``LVL_START``)."""
    return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)


def wheel_level(delta_ticks: int, hz: int) -> int:
    """The wheel level a timer ``delta_ticks`` ahead is queued on."""
    depth = lvl_depth(hz)
    for n in range(1, depth):
        if delta_ticks < lvl_start(n):
            return n - 1
    return depth - 1


def granularity_ticks(delta_ticks: int, hz: int) -> int:
    """Granularity [ticks] of the level a ``delta_ticks`` timer is queued on."""
    return 1 << (wheel_level(delta_ticks, hz) * LVL_CLK_SHIFT)


@lru_cache(maxsize=4096)
def granularity_s(ticks: int, hz: int) -> float:
    """Granularity [s] of the wheel level a ``ticks``-ahead timer lands on (cached)."""
    return granularity_ticks(ticks, hz) / hz


def timer_slack_s(delay_s: float, hz: int) -> float:
    """Latest extra delay [s] of a kernel timer armed ``delay_s`` ahead.

    ``delay_s`` is first rounded up to whole ticks (``msecs_to_jiffies``); the
    result is one granularity of the level that delay lands on.

    >>> timer_slack_s(75, 250)    # level 3: 512 ticks of 4 ms
    2.048
    >>> timer_slack_s(7200, 250)  # level 5
    131.072
    """
    return granularity_s(ceil_ticks(delay_s, hz), hz)


@lru_cache(maxsize=8)
def _wheel_levels(hz: int) -> tuple[np.ndarray, np.ndarray]:
    """(``LVL_START(1..depth-1)`` [ticks], each level's granularity [s]) for :func:`timer_slack_s_array`."""
    depth = lvl_depth(hz)
    return (np.array([lvl_start(n) for n in range(1, depth)], dtype=np.int64),
            np.array([(1 << (n * LVL_CLK_SHIFT)) / hz for n in range(depth)]))


def timer_slack_s_array(delay_s, hz: int) -> np.ndarray:
    """Vectorised :func:`timer_slack_s` over an array of delays [s]: the level is how many level starts
    the delay's ticks reach (:func:`wheel_level`, one binary search a delay)."""
    ticks = ceil_ticks(np.asarray(delay_s, dtype=float), hz).astype(np.int64)
    starts, granularity = _wheel_levels(hz)
    return granularity[np.searchsorted(starts, ticks, side="right")]


#: ``MAX_SLACK`` in ``fs/select.c``: 100 ms.
POLL_MAX_SLACK_S = 0.1
#: Default ``timer_slack_ns`` of a task: 50 us.
DEFAULT_TIMER_SLACK_S = 50e-6


def poll_timeout_slack_s(timeout_s: float, timer_slack_s: float = DEFAULT_TIMER_SLACK_S) -> float:
    """How late a ``poll``/``ppoll``/``select`` timeout may fire [s] (userspace timers: ssh, sshd).

    ``fs/select.c:select_estimate_accuracy``: the hrtimer behind the timeout gets
    a slack of 0.1 % of the timeout (``divfactor`` 1000; 0.5 % for niced tasks),
    at least the task's ``timer_slack_ns`` (50 us) and at most ``MAX_SLACK``
    (100 ms).  Measured here: 1 s -> 0.62 ms, 2 s -> 2.18 ms, 3 s -> 3.16 ms late.

    >>> poll_timeout_slack_s(2.0)
    0.002

    Arrays broadcast (sweeps).
    """
    out = np.minimum(np.maximum(np.asarray(timeout_s, dtype=float) * 1e-3, timer_slack_s), POLL_MAX_SLACK_S)
    return out if out.ndim else float(out)
