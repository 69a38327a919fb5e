"""systemd-logind ``StopIdleSessionSec`` (docs/mechanisms.md §systemd-logind idle sessions).

systemd >= 252 (logind.conf(5): "StopIdleSessionSec= Specifies a timeout in seconds, or a time span
value after which systemd-logind checks the idle state of all sessions.  Every session that is idle
for longer than the timeout will be stopped.  Defaults to infinity").  ``logind-session.c``:

* ``session_setup_stop_on_idle_timer`` arms a ``CLOCK_MONOTONIC`` timer ``StopIdleSessionSec`` after
  the session is created;
* ``session_dispatch_stop_on_idle``: if ``session_get_idle_hint`` says idle, ``session_stop(s,
  force)`` -- logs ``Session "N" of user "U" is idle, stopping.`` and kills the session's scope
  (the shell and the session's ``sshd`` process); otherwise re-arms at ``idle-hint timestamp +
  StopIdleSessionSec``;
* a terminal session's idle hint is the **atime of its TTY** (input, not output, updates it); it is
  idle when that is older than ``min(IdleActionSec, StopIdleSessionSec)`` (IdleActionSec 30 min).

So with the last keypress at ``t_key`` (or none after the start ``t0``):

    **stop = max(t0, t_key) + StopIdleSessionSec**

-- typing, even without Enter, postpones it (unlike bash's TMOUT); output does not.  Only sessions
with a terminal (a pty: an interactive login) have a TTY to be idle on.  sd-event's default
accuracy (250 ms) is the timer's slack.  **Not measured**: logind cannot run in the lab's
containers; the rule is read from the source (systemd ``src/login/logind-session.c``,
``src/login/logind-core.c``; not pinned to a release tag).
"""

from __future__ import annotations

#: systemd 252 added StopIdleSessionSec.
STOP_IDLE_SINCE = 252
#: sd-event's default timer accuracy (``DEFAULT_ACCURACY_USEC``, 250 ms): how late the check may run.
ACCURACY_S = 0.25
#: IdleActionSec's default (``logind-core.c``: 30 min): the idle threshold is the smaller of the two.
IDLE_ACTION_DEFAULT_S = 1800


def stop_s(start_s: float, last_key_s: float | None, stop_idle_s: float):
    """Scenario time [s] logind stops an idle terminal session (None when ``stop_idle_s`` is 0 or
    infinite): ``max(start, last keypress) + StopIdleSessionSec``.  Worked: start 0, keys at 300 s,
    900 s -> 1200 s."""
    if not stop_idle_s:
        return None
    return max(start_s, last_key_s if last_key_s is not None else start_s) + stop_idle_s


def message(session_id: str = "1", user: str = "root") -> str:
    return f'Session "{session_id}" of user "{user}" is idle, stopping.'
