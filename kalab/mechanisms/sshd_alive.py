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

#: sshd_config(5) defaults (``servconf.c:fill_default_server_options``).
CLIENT_ALIVE_INTERVAL_DEFAULT_S = 0
CLIENT_ALIVE_COUNT_MAX_DEFAULT = 3
TCP_KEEPALIVE_DEFAULT = True
#: sshd's session process exits 255 when it ends the session on an error or a timeout.
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


def terminates(count_max, version: tuple[int, int]):
    """Can ClientAlive end the session at all, and does a check count a timeout?

    ``client_alive_check`` (>= 8.2): ``if (count_max > 0 && ++timeouts > count_max)`` -- with
    ``ClientAliveCountMax 0`` the counter is never incremented and the session never ended
    (probes are still sent); up to 8.1 (``++timeouts > count_max``) every check counts, and
    ``CountMax 0`` ends the session at the first check.  ``count_max`` a number or a numpy array.
    Source: openssh-portable ``serverloop.c``, 8.2 commit 69334996a; docs/mechanisms.md §sshd ClientAlive.
    """
    return (count_max > 0) | (version < COUNT_MAX_ZERO_NEVER_SINCE)


def check_kills(counter_before, count_max, version: tuple[int, int]):
    """Does a due check end the session, after ``counter_before`` unanswered probes?

    ``++timeouts > count_max`` where the check counts (:func:`terminates`).  A number or a numpy
    array (``count_max``): the first check (``counter_before`` 0) kills only with ``CountMax 0``
    before 8.2.
    """
    return terminates(count_max, version) & (counter_before + 1 > count_max)


def output_runs_check(now_mono_s: int, last_client_mono_s: int, interval_s: int, version: tuple[int, int]) -> bool:
    """Does session output, waking ``ppoll`` (``ret != 0``), run the check?

    7.6-9.1 check on ``ret == 0 || last_client_time + I <= now``: output runs it once the client has
    been silent a full interval (whole seconds of ``monotime()``); from 9.2 only a timeout does.
    (kalab models <= 7.5 like 7.6-9.1; docs/mechanisms.md §sshd ClientAlive.)
    """
    return version < STRICT_CHECK_SINCE and now_mono_s >= last_client_mono_s + interval_s


def timeout_message(remote: str) -> str:
    return f"Timeout, client not responding from {remote}"


def client_alive_death_s(t_last_rx_s, interval_s, count_max, version: tuple[int, int]):
    """Nominal death [s] of an idle session whose client vanished at ``t_last_rx_s`` (arrays broadcast).

    ``t_last + m (N + 1) I`` with ``m`` = :func:`intervals_per_probe` (2 for 9.2-9.4, else 1);
    NaN where ClientAlive never ends the session (:func:`terminates`: ``CountMax 0`` since 8.2) or
    is off (``I = 0``).  Worked: ``I = 15, N = 3`` -> 60 s (9.6), 120 s (9.2); ``N = 0`` -> 15 s
    (8.1), never (9.6).  Source: ``serverloop.c`` ``client_alive_check``; docs/mechanisms.md
    §sshd ClientAlive (measured: ``sshd-clientalive-2-2.json``).
    """
    t = np.asarray(t_last_rx_s, dtype=float)
    i = np.asarray(interval_s, dtype=float)
    n = np.asarray(count_max, dtype=float)
    mult = intervals_per_probe(version)
    out = np.where(terminates(n, version), t + mult * (n + 1) * i, np.nan)
    out = np.where(i > 0, out, np.nan)
    return out if out.ndim else float(out)
