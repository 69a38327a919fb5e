"""OpenSSH server: ``ClientAliveInterval``/``ClientAliveCountMax`` (docs/mechanisms.md §sshd ClientAlive).

``serverloop.c:wait_until_can_do_something`` waits a *relative* full interval
(``ptimeout_deadline_sec``), restarted on every loop iteration; when ``ppoll``
times out it compares whole-second ``monotime()`` values and, if due, calls
``client_alive_check``: ``if (count_max > 0 && ++timeouts > count_max)`` log
``Timeout, client not responding from ...`` and exit 255, else send
``keepalive@openssh.com`` (want-reply).

Version table (the check condition):

=============  ====================================================  ===========================
version        condition                                             death (idle, dead client)
=============  ====================================================  ===========================
<= 9.1         ``now >= last_client_time + I`` (or select() timed     (N + 1) x I
               out after a full idle I, <= 7.5)
9.2 - 9.4      ``now > last_client_time + I`` (strict, whole s)       probes every 2 I: 2 (N + 1) x I
>= 9.5         ``now >= last_client_time + I``                        (N + 1) x I
=============  ====================================================  ===========================

``ClientAliveCountMax 0``: >= 8.2 never terminates (probes still sent);
<= 8.1 kills at the first check, I after the last client data.
"""

from __future__ import annotations

import numpy as np

CLIENT_ALIVE_INTERVAL_DEFAULT_S = 0
CLIENT_ALIVE_COUNT_MAX_DEFAULT = 3
EXIT_CODE = 255

#: 9.2 (d478cdc7a) made the due-check strict; 9.5 (9d7193a83) fixed it.
STRICT_CHECK_SINCE = (9, 2)
STRICT_CHECK_FIXED = (9, 5)
#: 8.2 (69334996a): ClientAliveCountMax=0 disables termination.
COUNT_MAX_ZERO_NEVER_SINCE = (8, 2)


def intervals_per_probe(version: tuple[int, int]) -> int:
    """How many ClientAliveIntervals pass per probe of a silent client: 2 for 9.2-9.4, whose strict
    check finds the first timeout not yet due (``now > last + I`` with whole seconds), else 1."""
    return 2 if STRICT_CHECK_SINCE <= version < STRICT_CHECK_FIXED else 1


def check_due(now_mono_s: int, last_client_mono_s: int, interval_s: int, version: tuple[int, int]) -> bool:
    """Is a probe due when ppoll timed out?  ``>=`` except the strict ``>`` of 9.2-9.4."""
    if STRICT_CHECK_SINCE <= version < STRICT_CHECK_FIXED:
        return now_mono_s > last_client_mono_s + interval_s
    return now_mono_s >= last_client_mono_s + interval_s


def check_kills(counter_before: int, count_max: int, version: tuple[int, int]) -> bool:
    """Does this check terminate the session?  Handles CountMax=0 per version."""
    if count_max == 0:
        return version < COUNT_MAX_ZERO_NEVER_SINCE
    return counter_before + 1 > count_max


def timeout_message(remote: str) -> str:
    return f"Timeout, client not responding from {remote}"


def client_alive_death_s(t_last_rx_s, interval_s, count_max, version: tuple[int, int] = (9, 6)):
    """Nominal death [s] of an idle session whose client vanished (arrays broadcast).

    ``t_last + (N + 1) * I``; doubled for 9.2-9.4; NaN where CountMax = 0 never kills.
    """
    t = np.asarray(t_last_rx_s, dtype=float)
    i = np.asarray(interval_s, dtype=float)
    n = np.asarray(count_max, dtype=float)
    mult = intervals_per_probe(version)
    if version < COUNT_MAX_ZERO_NEVER_SINCE:
        out = t + mult * (np.maximum(n, 0) + 1) * i
    else:
        out = np.where(n > 0, t + mult * (n + 1) * i, np.nan)
    out = np.where(i > 0, out, np.nan)
    return out if out.ndim else float(out)
