"""Idle hangups against a goal: the server timers no keepalive setting can beat (issue 15).

sshd's ``ChannelTimeout`` and ``UnusedConnectionTimeout``, the shell's ``TMOUT`` and systemd-logind's
``StopIdleSessionSec`` end a *healthy* session that is idle.  Keepalive probes, ``ServerAlive`` and
``ClientAlive`` messages are not channel data and not terminal input (measured:
docs/mechanisms.md §Who else hangs up), so nothing ``kalab recommend`` proposes changes them.  When
the goal is to survive an idle spell (``--survive-idle``, "an idle lunch break"), :func:`idle_warnings`
simulates an idle ssh session on the goal's sshd with those timers -- and with ServerAlive and
ClientAlive messages flowing, to show they do not help -- and says which timer ends it, when.
"""

from __future__ import annotations

from ..simulate import simulate
from ..units import format_duration
from .goal import Goal

#: Alive messages in the idle session (s): any interval shows they do not reset the timers.
ALIVE_INTERVAL_S = 15
#: How each idle hangup is named to the user, and the setting to change.
NAMES = {"sshd.channel_timeout": ("sshd's ChannelTimeout", "raise or remove ChannelTimeout's session pattern"),
         "sshd.unused_connection_timeout": ("sshd's UnusedConnectionTimeout", "raise or remove UnusedConnectionTimeout"),
         "shell.tmout": ("the shell's TMOUT", "raise or unset TMOUT (/etc/profile.d)"),
         "logind.idle": ("systemd-logind's StopIdleSessionSec", "raise StopIdleSessionSec in logind.conf")}


def has_idle_timers(goal: Goal) -> bool:
    return bool(goal.channel_timeout or goal.unused_connection_timeout_s or goal.shell_tmout_s
                or goal.logind_stop_idle_s)


def idle_scenario(goal: Goal) -> dict:
    """An idle interactive ssh session (a bash prompt on a terminal) with the goal's server timers and
    alive messages both ways, watched for the idle spell the goal must survive (or a day)."""
    opts: dict = {"ClientAliveInterval": ALIVE_INTERVAL_S}
    if goal.channel_timeout:
        opts["ChannelTimeout"] = goal.channel_timeout
    if goal.unused_connection_timeout_s:
        opts["UnusedConnectionTimeout"] = int(goal.unused_connection_timeout_s)
    server: dict = {"app": {"kind": "sshd", "version": goal.sshd_version, "options": opts,
                            "shell": {"name": "bash", "TMOUT": int(goal.shell_tmout_s or 0)}}}
    if goal.logind_stop_idle_s:
        server["logind"] = {"StopIdleSessionSec": goal.logind_stop_idle_s}
    horizon = (goal.survive_idle_s or 86400.0) + 1
    return {"name": "an idle ssh session, alive messages both ways",
            "client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": ALIVE_INTERVAL_S}}},
            "server": server, "path": {"rtt_ms": goal.rtt_ms}, "until_s": horizon}


def idle_warnings(goal: Goal) -> list[str]:
    """Plain-words warnings: the idle timer that ends an idle session before the goal's idle spell
    (or, without ``survive_idle_s``, when it ends one at all).  Empty when none does."""
    if not has_idle_timers(goal):
        return []
    r = simulate(idle_scenario(goal)).server
    if r.fate != "died" or r.by not in NAMES:
        return []
    name, fix = NAMES[r.by]
    when = format_duration(r.at_s)
    if goal.survive_idle_s and r.at_s < goal.survive_idle_s:
        return [f"{name} ends an idle session after {when}, before the {format_duration(goal.survive_idle_s)} "
                f"idle spell it must survive -- whatever keepalive you set: alive messages are not channel data "
                f"or terminal input (measured). {fix[0].upper() + fix[1:]}."]
    if not goal.survive_idle_s:
        return [f"{name} ends an idle session after {when}; no keepalive setting changes that."]
    return []
