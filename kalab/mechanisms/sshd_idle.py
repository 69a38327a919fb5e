"""OpenSSH server: ``ChannelTimeout`` and ``UnusedConnectionTimeout`` (docs/mechanisms.md §sshd idle timers).

Both arrived in OpenSSH 9.2 (``channels.c``, ``serverloop.c``, ``servconf.c``; commit
"Implement channel inactivity timeouts", 2023-01-06).  They are not keepalive timers: they end a
*healthy* session that has been idle.

**ChannelTimeout** ``type=interval ...``: each open channel whose type matches a pattern (the
first matching pair wins) is closed once it has seen no data for the interval.  ``channels.c``
keeps ``c->lastused = monotime()`` (whole seconds of ``CLOCK_BOOTTIME``) when the channel is set
up and whenever data moves through it in either direction (read from or written to the session's
descriptors); ``channel_handler`` closes it when ``now >= lastused + interval`` and makes
``ppoll`` wake at that whole second (``ptimeout_deadline_monotime``).  So

    **close = floor(t_last + phase) - phase + interval**  (between ``interval - 1`` and
    ``interval`` seconds after the last data)

Measured on 9.2 and 10.0 (``data/measured/sshd-channeltimeout-*.json``): sshd's and ssh's
keepalive messages (``ClientAlive*``, ``ServerAlive*``: channel and global requests, not data)
do **not** reset it.  sshd logs ``channel N: closing after I seconds of inactivity``; ssh, with
its only session channel closed, exits (255; with a terminal it prints ``Connection to HOST
closed.``).

The channel types are the ones each version's sshd_config(5) lists.  sshd names its session
channels ``session:shell``, ``session:command`` and ``session:subsystem:NAME`` (9.2's list); 10.0's
manual lists ``session`` instead, but sshd 10.0p2 still names the channels ``session:shell``/
``session:command``: ``session=3`` closed nothing there while ``session:*=3`` did (measured,
``sshd10-channeltimeout-session-name.json``).  ``global`` (all channels taken together, not
matched by wildcards) is accepted from **9.7** (the OpenBSD commit "add a 'global'
ChannelTimeout type ...", in the 9.7 release notes).

**UnusedConnectionTimeout** ``interval``: a connection with no open channel is closed.
``serverloop.c`` ``wait_until_can_do_something`` sets ``expiry = monotime() + interval`` on
every pass while a channel is open (and once at the start), and ends the connection when
``now > expiry`` with no channel open -- strictly greater, on whole seconds, so

    **end = floor(t_pass + phase) + interval + 1 - phase**  (for ``strict``; else ``+ 0``)

``t_pass``: the last loop pass with a channel open, or the start of the session.  sshd logs
``terminating inactive connection from user USER ADDR port PORT`` and exits 255; ssh prints
``Connection to HOST closed by remote host.`` (exit 255).
"""

from __future__ import annotations

import fnmatch

from .ssh_alive import monotime_s

#: 9.2 introduced both keywords; older sshd refuses them ("Bad configuration option").
CHANNEL_TIMEOUT_SINCE = (9, 2)
UNUSED_CONNECTION_TIMEOUT_SINCE = (9, 2)
#: The ``global`` type: OpenSSH 9.7 (release notes: "add a 'global' ChannelTimeout type").
GLOBAL_SINCE = (9, 7)
#: sshd's exit status when it ends the connection itself (``cleanup_exit(255)``).
EXIT_CODE = 255

#: sshd_config(5) of 9.2 (Debian 12's OpenSSH 9.2p1 manual page), ``ChannelTimeout`` types.
TYPES_9_2 = ("agent-connection", "direct-tcpip", "direct-streamlocal@openssh.com", "forwarded-tcpip",
             "forwarded-streamlocal@openssh.com", "session:command", "session:shell", "session:subsystem:*",
             "x11-connection")
#: sshd_config(5) of 10.0 (bookworm-backports' 10.0p2 manual page): ``session`` and
#: ``tun-connection`` listed, plus the special ``global``.
TYPES_10_0 = ("agent-connection", "direct-tcpip", "direct-streamlocal@openssh.com", "forwarded-tcpip",
              "forwarded-streamlocal@openssh.com", "session", "tun-connection", "x11-connection")
#: The names sshd really gives its session channels (``session.c`` ``channel_set_xtype``), on 9.2
#: and 10.0 alike (measured): what a ChannelTimeout pattern must match to close a session.
SESSION_XTYPES = {"shell": "session:shell", "command": "session:command"}


def listed_types(version: tuple[int, int]) -> tuple[str, ...]:
    """The channel types sshd_config(5) of ``version`` lists.  Read: 9.2 and 10.0; the versions
    between take 9.2's list before 9.7 (``global``) and 10.0's from it -- the release that moved the
    manual from ``session:*`` to ``session`` was not located (docs/mechanisms.md)."""
    return TYPES_10_0 if version >= GLOBAL_SINCE else TYPES_9_2


def parse_channel_timeout(text: str, version: tuple[int, int]) -> tuple[tuple[str, int], ...]:
    """``ChannelTimeout`` as sshd reads it: ``type=interval`` pairs separated by whitespace.

    Returns ``((pattern, seconds), ...)`` in order; raises ``ValueError`` (one line naming the pair
    and what is allowed) for a pair without ``=``, a bad interval (OpenSSH TIME FORMATS), ``global``
    before 9.7, or a pattern that matches no channel type of ``version``.  ``none`` (as ``sshd -T``
    prints an unset option) is no timeout at all.
    """
    from ..units import openssh_time
    if not isinstance(text, str) or not text.strip():
        raise ValueError("is empty; give type=interval pairs such as session:*=15m")
    if text.strip().lower() == "none":
        return ()
    out = []
    names = listed_types(version) + tuple(SESSION_XTYPES.values())
    for pair in text.split():
        typ, eq, val = pair.partition("=")
        if not eq or not typ:
            raise ValueError(f"{pair!r} is not type=interval")
        secs = openssh_time(val)
        if secs is None:
            raise ValueError(f"{pair!r}: invalid interval {val!r} (OpenSSH TIME FORMATS: 90, 5m, 1h30m)")
        if typ == "global":
            if version < GLOBAL_SINCE:
                raise ValueError(f"{pair!r}: the 'global' type needs OpenSSH >= 9.7, not "
                                 f"{version[0]}.{version[1]}")
        elif not any(fnmatch.fnmatchcase(n, typ) or fnmatch.fnmatchcase(typ, n) for n in names):
            raise ValueError(f"{pair!r}: {typ!r} matches no channel type of sshd {version[0]}.{version[1]} "
                             f"({', '.join(listed_types(version))}"
                             f"{', global' if version >= GLOBAL_SINCE else ''})")
        out.append((typ, int(secs)))
    return tuple(out)


def session_timeout_s(pairs, session: str) -> int:
    """The interval [s] that applies to sshd's session channel of kind ``session`` (``"shell"`` or
    ``"command"``): the first pattern matching its name (``channels.c`` ``lookup_timeout``,
    ``match_pattern``), else 0 (none).  ``global`` is never matched by a pattern."""
    name = SESSION_XTYPES[session]
    for typ, secs in pairs:
        if typ != "global" and fnmatch.fnmatchcase(name, typ):
            return secs
    return 0


def global_timeout_s(pairs) -> int:
    """The ``global`` interval [s] (all channels taken together), else 0."""
    for typ, secs in pairs:
        if typ == "global":
            return secs
    return 0


def unmatched_session_patterns(pairs) -> list[str]:
    """Patterns naming sessions (``session``, ``session:...``) that match neither of sshd's session
    channel names: ``session`` as 10.0's manual lists it closes nothing (measured)."""
    return [typ for typ, _ in pairs if typ.startswith("session")
            and not any(fnmatch.fnmatchcase(n, typ) for n in SESSION_XTYPES.values())]


def channel_close_s(t_last_s, interval_s, phase_s: float = 0.0):
    """Scenario time [s] at which an idle channel is closed: ``floor(t_last + phase) - phase + I``.

    ``t_last_s``: the channel's last data (or its set-up); ``lastused`` is whole seconds of
    ``monotime()``.  Worked: data last at 20.3 s, I = 900, phase 0 -> 920 s.  Numbers or numpy
    arrays.  Source: ``channels.c`` ``channel_handler`` (``now >= lastused + inactive_deadline``,
    ``ptimeout_deadline_monotime``); measured ``sshd-channeltimeout-3.json``.
    """
    return monotime_s(t_last_s, phase_s) - phase_s + interval_s


def unused_strict(version: tuple[int, int]) -> bool:
    """Does the ``now > expiry`` test of 9.2 hold for ``version``?  Read in 9.2's loop; measured on
    9.2 and 10.0 (``sshd-unused-connection-3.json``, ``sshd10-unused-connection-3.json``)."""
    return True


def unused_close_s(t_pass_s, interval_s, version: tuple[int, int], phase_s: float = 0.0):
    """Scenario time [s] at which a connection without channels is ended: ``floor(t_pass + phase) + I
    (+ 1 where the test is strict) - phase``.  Worked: session start at 0, I = 3, phase 0 -> 4 s."""
    return monotime_s(t_pass_s, phase_s) + interval_s + (1 if unused_strict(version) else 0) - phase_s


def channel_close_message(channel: int, interval_s: int) -> str:
    """sshd's log line (``channels.c``); for the ``global`` timeout it prints the channel's own
    interval, 0 when it has none (as measured on 10.0)."""
    return f"channel {channel}: closing after {interval_s} seconds of inactivity"


def unused_message(remote: str) -> str:
    """sshd's log line (``serverloop.c``); ``remote`` is ``ADDR port PORT``."""
    return f"terminating inactive connection from user root {remote}"


def format_pairs(pairs) -> str:
    return " ".join(f"{t}={s}" for t, s in pairs)


__all__ = ["CHANNEL_TIMEOUT_SINCE", "UNUSED_CONNECTION_TIMEOUT_SINCE", "GLOBAL_SINCE", "listed_types",
           "parse_channel_timeout", "session_timeout_s", "global_timeout_s", "channel_close_s", "unused_close_s",
           "unmatched_session_patterns"]
