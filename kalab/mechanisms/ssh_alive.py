"""OpenSSH client: ``ServerAliveInterval``/``ServerAliveCountMax`` (docs/mechanisms.md §ssh ServerAlive).

``clientloop.c`` (OpenSSH >= 8.4): ``server_alive_time = monotime() + I`` is set
whenever the server socket becomes readable and after each keepalive sent.
``monotime()`` returns *whole seconds* of ``CLOCK_BOOTTIME``.  When the deadline
passes, ``server_alive_check`` increments the counter; if it now exceeds
``ServerAliveCountMax`` ssh logs ``Timeout, server HOST not responding.`` and
exits 255; otherwise it sends ``keepalive@openssh.com`` (an encrypted SSH
packet, i.e. ordinary TCP data) and reschedules.  Any complete SSH packet from
the server resets the counter.

Death = ``floor(t_last_rx) + (CountMax + 1) * I`` on the whole-second clock:
with I = 15, N = 3 that is 60 s after the last byte from the server, 45 s after
the first unanswered keepalive (the man page's "approximately 45 seconds").
CountMax = 0: the first check kills, no keepalive is ever sent.
"""

from __future__ import annotations

import math

import numpy as np

#: ssh_config(5) defaults (``readconf.c:fill_default_options``).
SERVER_ALIVE_INTERVAL_DEFAULT_S = 0
SERVER_ALIVE_COUNT_MAX_DEFAULT = 3
TCP_KEEPALIVE_DEFAULT = True
#: Bytes on the wire of one keepalive@openssh.com request or its reply (order of magnitude; any size works).
ALIVE_PACKET_BYTES = 52
#: ssh exits 255 on every error: a timeout, a lost or refused connection (ssh(1) EXIT STATUS).
EXIT_CODE = 255


def monotime_s(t_s, phase_s: float):
    """OpenSSH's ``monotime()``: whole seconds of the host's boot clock at scenario time ``t_s`` [s].

    ``phase_s`` in [0, 1) is the fractional second of ``CLOCK_BOOTTIME`` at t = 0:
    ``floor(t + phase)``.  A time within 1 ns below a whole second -- or 16 ulp, what floats can
    tell apart at that size -- is on it.  The one whole-second clock in kalab: ssh's ServerAlive
    deadline (:func:`next_check_s`), sshd's ``last_client_time`` and :func:`server_alive_death_s`
    read it.  ``t_s`` a number (an ``int`` back) or a numpy array (whole seconds as floats).
    Source: ``misc.c`` ``monotime()``/``monotime_ts()``; docs/mechanisms.md §ssh ServerAlive.

    >>> monotime_s(20.301, 0.0), monotime_s(20.301, 0.75), monotime_s(19.9999999995, 0.0)
    (20, 21, 20)
    """
    x = t_s + phase_s
    if isinstance(x, np.ndarray):
        return np.floor(x + np.maximum(1e-9, 16 * np.spacing(np.abs(x))))
    return math.floor(x + max(1e-9, 16 * math.ulp(x)))


def second_fraction_s(t_s: float, phase_s: float) -> float:
    """How far into its current second the boot clock is at ``t_s`` [s, in [0, 1)]: ``(t + phase) mod 1``.

    A deadline of ``monotime() + I`` set this far into a second moves to the next whole second
    if the event setting it ran more than ``1 - fraction`` late (:class:`kalab.apps.SshClient`).
    """
    return (t_s + phase_s) % 1.0


def next_check_s(t_s: float, interval_s: int, phase_s: float) -> float:
    """Scenario time [s] of the next ServerAlive check scheduled at ``t_s``.

    ``server_alive_time = monotime() + I``; ``ppoll`` then waits until the boot
    clock reaches that whole second (``ptimeout_deadline_monotime``).
    """
    return monotime_s(t_s, phase_s) + interval_s - phase_s


def check_kills(counter_after_increment: int, count_max: int) -> bool:
    """``ssh_packet_inc_alive_timeouts(ssh) > options.server_alive_count_max``."""
    return counter_after_increment > count_max


def timeout_message(host: str) -> str:
    return f"Timeout, server {host} not responding."


def server_alive_death_s(t_last_rx_s, interval_s, count_max, phase_s=0.0):
    """Nominal death [s] of ssh whose server went silent at ``t_last_rx_s`` (arrays broadcast).

    ``monotime(t_last) - phase + (N + 1) * I`` on the whole-second clock (:func:`monotime_s`):
    ``N`` alive messages go unanswered and the ``N + 1``-th check kills.  Worked default:
    ``I = 15, N = 3`` and the last byte at 20.301 s -> 80 s.  Source: ``clientloop.c``
    ``server_alive_check``; docs/mechanisms.md §ssh ServerAlive (measured: ``ssh-serveralive-2-3.json``).
    """
    t = np.asarray(t_last_rx_s, dtype=float)
    out = monotime_s(t, phase_s) - phase_s + (np.asarray(count_max, dtype=float) + 1) * np.asarray(interval_s, dtype=float)
    return out if np.ndim(out) else float(out)
