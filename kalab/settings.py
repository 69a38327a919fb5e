"""Frozen, keyword-only settings, in seconds, after native names have been converted.

These are what the simulator reads.  Users never write them directly: the
scenario loader (:mod:`kalab.scenario`) builds them from native names via the
tables in :mod:`kalab.native`, so every value here has passed a range check.
Vary them with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .mechanisms import ssh_alive, sshd_alive
from .mechanisms import tcp_keepalive as ka
from .mechanisms import tcp_retransmit as rt
from .mechanisms import time_wait as tw
from .units import DEFAULT_HZ

OS_NAMES = ("linux", "macos", "freebsd", "windows", "solaris", "sco-openserver")
APP_KINDS = ("plain", "ssh", "sshd", "telnet", "telnetd")
#: The Linux kernel of a host whose scenario does not say (the lab's: docs/lab.md).
DEFAULT_KERNEL = (6, 18)
#: The OpenSSH version of ssh and sshd when the scenario does not say.
DEFAULT_OPENSSH = (9, 6)


def version_text(version: tuple[int, int]) -> str:
    """A ``(major, minor)`` version as it is written in a scenario and on the command line: ``"9.6"``."""
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True, kw_only=True)
class TcpSettings:
    """One host's TCP timers [s], as its kernel will apply them to this socket.

    ``keepalive_rule``: ``"linux"`` (count, TCP_USER_TIMEOUT aware), ``"bsd"``
    (total idle) or ``"solaris"`` (strict total idle, backing-off probes).
    ``retransmit_rule``: ``"linux"`` (time model), ``"bsd"`` (shift count with
    ``backoff`` table) or ``"solaris"`` (abort interval).
    """

    keepalive_enabled: bool = False
    keepalive_idle_s: float = ka.LINUX_KEEPALIVE_TIME_S
    keepalive_intvl_s: float = ka.LINUX_KEEPALIVE_INTVL_S
    keepalive_count: int = ka.LINUX_KEEPALIVE_PROBES
    keepalive_rule: str = "linux"
    keepalive_abort_s: float = 0.0            # solaris: tcp_keepalive_abort_interval
    keepalive_intvl_set: bool = True          # solaris: TCP_KEEPINTVL given?
    user_timeout_s: float = 0.0
    retries2: int = rt.TCP_RETR2
    retries1: int = rt.TCP_RETR1
    rto_min_s: float = rt.TCP_RTO_MIN_S
    rto_max_s: float = rt.TCP_RTO_MAX_S
    syn_retries: int = rt.TCP_SYN_RETRIES
    syn_linear_timeouts: int = rt.TCP_SYN_LINEAR_TIMEOUTS
    orphan_retries: int = 0
    fin_timeout_s: float = tw.LINUX_FIN_TIMEOUT_S
    time_wait_s: float = tw.LINUX_TIME_WAIT_S
    port_range: tuple[int, int] = tw.LINUX_PORT_RANGE
    retransmit_rule: str = "linux"
    backoff: tuple[int, ...] = ()              # bsd rule: tcp_backoff[] multipliers
    max_shift: int = rt.BSD_MAXRXTSHIFT       # bsd rule: give up when ++shift > max_shift
    rexmt_max_s: float = rt.BSD_REXMTMAX_S    # bsd/solaris: RTO cap
    abort_s: float = 0.0                      # solaris: tcp_ip_abort_interval; macOS TCP_RXT_CONNDROPTIME
    connect_timeout_s: float = 0.0            # BSD keepinit / macOS TCP_CONNECTIONTIMEOUT (0 = SYN rule)
    time_wait_unverified: bool = False


#: ssh's ServerAlive* and sshd's ClientAlive* share AppSettings' fields: their defaults agree (off, 3).
assert (ssh_alive.SERVER_ALIVE_INTERVAL_DEFAULT_S, ssh_alive.SERVER_ALIVE_COUNT_MAX_DEFAULT) == \
    (sshd_alive.CLIENT_ALIVE_INTERVAL_DEFAULT_S, sshd_alive.CLIENT_ALIVE_COUNT_MAX_DEFAULT)


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """The application holding the socket, with its own timers [s].

    Fields not used by ``kind`` keep their defaults.  ``version`` is the
    OpenSSH version as a tuple (e.g. ``(9, 2)``) for ssh/sshd.
    """

    kind: str = "plain"
    version: tuple[int, int] = DEFAULT_OPENSSH
    tcp_keepalive: bool | None = None          # ssh/sshd TCPKeepAlive; telnetd: not -n
    alive_interval_s: int = ssh_alive.SERVER_ALIVE_INTERVAL_DEFAULT_S     # ServerAliveInterval / ClientAliveInterval
    alive_count_max: int = ssh_alive.SERVER_ALIVE_COUNT_MAX_DEFAULT       # ServerAliveCountMax / ClientAliveCountMax
    connect_timeout_s: float = 0.0            # ssh ConnectTimeout (0 = none)
    keepalive_idle_s: float | None = None     # SCO telnetd -k
    keepalive_intvl_s: float | None = None    # SCO telnetd -K
    keepalive_count: int | None = None        # SCO telnetd -N
    flags: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()  # as given, for display
    # sshd >= 9.2 idle timers (kalab.mechanisms.sshd_idle): ChannelTimeout ((pattern, s), ...) and
    # UnusedConnectionTimeout [s] (0 = none)
    channel_timeouts: tuple[tuple[str, int], ...] = ()
    unused_connection_timeout_s: int = 0
    # ssh: SessionType ("default", "none" = ssh -N: no session channel) and RequestTTY as given
    session_type: str = "default"
    request_tty: str = "auto"
    # sshd: the interactive shell of the session (server.app.shell), None for a command session
    shell: "ShellSettings | None" = None


@dataclass(frozen=True, kw_only=True)
class ShellSettings:
    """The remote shell of an sshd session (kalab.mechanisms.shell_tmout): ``name`` (bash, ksh,
    zsh), ``tmout_s`` (TMOUT [s], 0 = off) and ``command_s`` (how long each command line typed at
    the prompt runs in the foreground [s]; 0 = returns at once)."""

    name: str = "bash"
    tmout_s: int = 0
    command_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class HostSettings:
    """One end of the session: OS, kernel clock, TCP timers, and its application."""

    role: str                                  # "client" or "server"
    os: str = "linux"
    kernel: tuple[int, int] = DEFAULT_KERNEL
    hz: int = DEFAULT_HZ
    monotime_phase_s: float = 0.0              # fractional second of CLOCK_BOOTTIME at t=0
    srtt_s: float | None = None                # the kernel's smoothed RTT, held constant (None: the path RTT)
    address: str = ""
    port: int = 0
    tcp: TcpSettings = field(default_factory=TcpSettings)
    app: AppSettings = field(default_factory=AppSettings)
    # systemd-logind StopIdleSessionSec [s] on this host (kalab.mechanisms.logind_idle); 0 = infinity
    logind_stop_idle_s: float = 0.0
