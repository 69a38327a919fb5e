"""Native setting names per operating system, with units and the kernel's ranges.

Settings are named as the user meets them (sysctl
names, socket options, registry values), each in its native unit, and
converted to seconds once, here.  Every row cites where its default and range
come from (the rules: docs/mechanisms.md), and a test pins each default.

A table row maps one native name to one :class:`~kalab.settings.TcpSettings`
field.  ``scope`` is ``"sysctl"`` (host-wide: sysctls, registry values, ndd
tunables) or ``"socket"`` (per-socket options, which override the sysctls).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .mechanisms import tcp_keepalive as ka
from .mechanisms import tcp_retransmit as rt
from .mechanisms import time_wait as tw
from .units import UNIT_SECONDS

INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class NativeKey:
    """One native knob.  ``lo``/``hi`` are in the native unit, inclusive."""

    name: str
    field: str
    unit: str            # "s", "ms", "us", "count", "bool", "ports"
    lo: float
    hi: float
    source: str
    since: tuple[int, int] | None = None   # first Linux kernel that has it

    def to_internal(self, value):
        """Native value -> internal value (seconds, int count, bool): ``value * UNIT_SECONDS[unit]``
        for a time.  A numpy array (a sweep's axis) converts elementwise, as floats."""
        if isinstance(value, np.ndarray):
            return value * UNIT_SECONDS[self.unit] if self.unit in UNIT_SECONDS else value.astype(float)
        if self.unit == "bool":
            return bool(value)
        if self.unit == "count":
            return int(value)
        if self.unit == "ports":
            return value
        return float(value) * UNIT_SECONDS[self.unit]

    def describe_range(self) -> str:
        unit = "" if self.unit in ("count", "bool", "ports") else f" {self.unit}"
        if self.unit == "bool":
            return "0 or 1"
        return f"{_num(self.lo)}..{_num(self.hi)}{unit} ({self.source})"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _k(*a, **kw) -> NativeKey:
    return NativeKey(*a, **kw)


# ---------------------------------------------------------------- Linux
LINUX_SYSCTL = {k.name: k for k in [
    _k("net.ipv4.tcp_keepalive_time", "keepalive_idle_s", "s", 1, INT_MAX // 1000, "include/net/tcp.h TCP_KEEPALIVE_TIME"),
    _k("net.ipv4.tcp_keepalive_intvl", "keepalive_intvl_s", "s", 1, INT_MAX // 1000, "TCP_KEEPALIVE_INTVL"),
    _k("net.ipv4.tcp_keepalive_probes", "keepalive_count", "count", 0, 255, "u8 sysctl"),
    _k("net.ipv4.tcp_retries2", "retries2", "count", 0, 255, "u8 sysctl, TCP_RETR2"),
    _k("net.ipv4.tcp_retries1", "retries1", "count", 0, 255, "u8 sysctl; only triggers route re-lookup"),
    _k("net.ipv4.tcp_syn_retries", "syn_retries", "count", 1, rt.MAX_TCP_SYNCNT, "MAX_TCP_SYNCNT"),
    _k("net.ipv4.tcp_syn_linear_timeouts", "syn_linear_timeouts", "count", 0, rt.MAX_TCP_SYNCNT,
       "tcp_sk_init, kernels >= 6.5", since=rt.SYN_LINEAR_SINCE),
    _k("net.ipv4.tcp_orphan_retries", "orphan_retries", "count", 0, 255, "u8 sysctl; 0 means 8"),
    _k("net.ipv4.tcp_fin_timeout", "fin_timeout_s", "s", 1, INT_MAX // 1000, "TCP_FIN_TIMEOUT"),
    _k("net.ipv4.tcp_rto_max_ms", "rto_max_s", "ms", 1000, rt.TCP_RTO_MAX_S * 1000, "tcp_rto_max_ms, kernels >= 6.15",
       since=rt.RTO_MAX_MS_SINCE),
    _k("net.ipv4.ip_local_port_range", "port_range", "ports", 1, 65535, "ip-sysctl.rst, default 32768 60999"),
]}
LINUX_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "socket(7)"),
    _k("TCP_KEEPIDLE", "keepalive_idle_s", "s", 1, ka.MAX_TCP_KEEPIDLE, "MAX_TCP_KEEPIDLE"),
    _k("TCP_KEEPINTVL", "keepalive_intvl_s", "s", 1, ka.MAX_TCP_KEEPINTVL, "MAX_TCP_KEEPINTVL"),
    _k("TCP_KEEPCNT", "keepalive_count", "count", 1, ka.MAX_TCP_KEEPCNT, "MAX_TCP_KEEPCNT"),
    _k("TCP_USER_TIMEOUT", "user_timeout_s", "ms", 0, INT_MAX, "do_tcp_setsockopt: val < 0 is EINVAL"),
    _k("TCP_SYNCNT", "syn_retries", "count", 1, rt.MAX_TCP_SYNCNT, "MAX_TCP_SYNCNT"),
    _k("TCP_LINGER2", "fin_timeout_s", "s", 1, tw.TCP_FIN_TIMEOUT_MAX_S, "TCP_FIN_TIMEOUT_MAX 120 s"),
    _k("TCP_RTO_MAX_MS", "rto_max_s", "ms", 1000, rt.TCP_RTO_MAX_S * 1000, "kernels >= 6.15", since=rt.RTO_MAX_MS_SINCE),
]}

# ---------------------------------------------------------------- BSDs (docs/mechanisms.md)
_BSD_SYSCTL = [
    _k("net.inet.tcp.keepidle", "keepalive_idle_s", "ms", 1, INT_MAX, "TCPTV_KEEP_IDLE, ms"),
    _k("net.inet.tcp.keepintvl", "keepalive_intvl_s", "ms", 1, INT_MAX, "TCPTV_KEEPINTVL, ms"),
    _k("net.inet.tcp.keepcnt", "keepalive_count", "count", 1, INT_MAX, "TCPTV_KEEPCNT"),
    _k("net.inet.tcp.keepinit", "connect_timeout_s", "ms", 1, INT_MAX, "TCPTV_KEEP_INIT, ms"),
    _k("net.inet.tcp.always_keepalive", "keepalive_enabled", "bool", 0, 1, "tcp_always_keepalive"),
    _k("net.inet.tcp.msl", "msl_s", "ms", 1, INT_MAX, "TCPTV_MSL; TIME_WAIT = 2 x msl"),
]
MACOS_SYSCTL = {k.name: k for k in _BSD_SYSCTL}
FREEBSD_SYSCTL = {k.name: k for k in _BSD_SYSCTL}
MACOS_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "socket(2)"),
    _k("TCP_KEEPALIVE", "keepalive_idle_s", "s", 1, INT_MAX, "bsd/netinet/tcp.h TCP_KEEPALIVE 0x10 (idle seconds)"),
    _k("TCP_KEEPINTVL", "keepalive_intvl_s", "s", 1, INT_MAX, "TCP_KEEPINTVL 0x101"),
    _k("TCP_KEEPCNT", "keepalive_count", "count", 1, INT_MAX, "TCP_KEEPCNT 0x102"),
    _k("TCP_CONNECTIONTIMEOUT", "connect_timeout_s", "s", 1, INT_MAX, "TCP_CONNECTIONTIMEOUT 0x20"),
    _k("TCP_RXT_CONNDROPTIME", "abort_s", "s", 1, INT_MAX, "TCP_RXT_CONNDROPTIME 0x80"),
]}
FREEBSD_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "setsockopt(2)"),
    _k("TCP_KEEPIDLE", "keepalive_idle_s", "s", 1, INT_MAX, "tcp(4)"),
    _k("TCP_KEEPINTVL", "keepalive_intvl_s", "s", 1, INT_MAX, "tcp(4)"),
    _k("TCP_KEEPCNT", "keepalive_count", "count", 1, INT_MAX, "tcp(4)"),
    _k("TCP_KEEPINIT", "connect_timeout_s", "s", 1, INT_MAX, "tcp(4)"),
]}

# ---------------------------------------------------------------- Windows (registry values under "sysctl")
WINDOWS_SYSCTL = {k.name: k for k in [
    _k("KeepAliveTime", "keepalive_idle_s", "ms", 1, 0xFFFFFFFF, "Tcpip\\Parameters, default 7,200,000"),
    _k("KeepAliveInterval", "keepalive_intvl_s", "ms", 1, 0xFFFFFFFF, "Tcpip\\Parameters, default 1000"),
    _k("TcpTimedWaitDelay", "time_wait_s", "s", 30, 300, "Tcpip\\Parameters 0x1E-0x12C"),
    _k("TcpMaxDataRetransmissions", "max_shift", "count", 0, 0xFFFFFFFF, "Tcpip\\Parameters, default 5 (unverified)"),
]}
WINDOWS_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "Winsock"),
    _k("TCP_KEEPIDLE", "keepalive_idle_s", "s", 1, INT_MAX, "Windows 10 1709+"),
    _k("TCP_KEEPINTVL", "keepalive_intvl_s", "s", 1, INT_MAX, "Windows 10 1709+"),
    _k("TCP_KEEPCNT", "keepalive_count", "count", 1, 255, "Windows 10 1703+"),
    _k("TCP_MAXRT", "abort_s", "s", 1, INT_MAX, "Winsock TCP_MAXRT"),
]}

# ---------------------------------------------------------------- Solaris / illumos (ndd/ipadm tunables)
SOLARIS_SYSCTL = {k.name: k for k in [
    _k("tcp_keepalive_interval", "keepalive_idle_s", "ms", 10_000, 864_000_000, "Solaris Tunable Parameters: 10 s - 10 days"),
    _k("tcp_keepalive_abort_interval", "keepalive_abort_s", "ms", 0, 480_000, "0 - 8 min; 0 = probe forever"),
    _k("tcp_time_wait_interval", "time_wait_s", "ms", 1_000, 600_000, "Solaris Tunable Parameters"),
    _k("tcp_ip_abort_interval", "abort_s", "ms", 500, INT_MAX, "retransmission give-up"),
]}
SOLARIS_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "socket.h"),
    _k("TCP_KEEPALIVE_THRESHOLD", "keepalive_idle_s", "ms", 10_000, 864_000_000, "tcp(4P)"),
    _k("TCP_KEEPALIVE_ABORT_THRESHOLD", "keepalive_abort_s", "ms", 0, 480_000, "tcp(4P)"),
    _k("TCP_KEEPIDLE", "keepalive_idle_s", "s", 10, 864_000, "illumos tcp(4P)"),
    _k("TCP_KEEPINTVL", "keepalive_intvl_s", "s", 1, 480, "illumos; rewrites abort = cnt x intvl"),
    _k("TCP_KEEPCNT", "keepalive_count", "count", 1, INT_MAX, "illumos; rewrites abort = cnt x intvl"),
]}

# ---------------------------------------------------------------- SCO OpenServer
SCO_SYSCTL = {k.name: k for k in [
    # The article: "tcp_2msl (milliseconds) ... value between 1 and 65,535".  Its
    # 30-minute default cannot be written in that range; both are unverified.
    _k("tcp_2msl", "time_wait_s", "ms", 1, 65535, "source article (Lawrence, Keep in touch), unverified"),
]}
SCO_SOCKET = {k.name: k for k in [
    _k("SO_KEEPALIVE", "keepalive_enabled", "bool", 0, 1, "socket(3)"),
]}

TABLES: dict[str, dict[str, dict[str, NativeKey]]] = {
    "linux": {"sysctl": LINUX_SYSCTL, "socket": LINUX_SOCKET},
    "macos": {"sysctl": MACOS_SYSCTL, "socket": MACOS_SOCKET},
    "freebsd": {"sysctl": FREEBSD_SYSCTL, "socket": FREEBSD_SOCKET},
    "windows": {"sysctl": WINDOWS_SYSCTL, "socket": WINDOWS_SOCKET},
    "solaris": {"sysctl": SOLARIS_SYSCTL, "socket": SOLARIS_SOCKET},
    "sco-openserver": {"sysctl": SCO_SYSCTL, "socket": SCO_SOCKET},
}

#: Where a setting can be given, the one that wins first: a socket option overrides the host-wide
#: sysctl (``tp->x ?: sysctl``, e.g. ``keepalive_time_when``; :func:`kalab.scenario.load` applies it).
SCOPES = ("socket", "sysctl")


@lru_cache(maxsize=None)
def setting_keys(os_name: str, field: str) -> tuple[tuple[str, NativeKey], ...]:
    """The native settings of ``os_name`` that set :class:`~kalab.settings.TcpSettings` ``field``, as
    (scope, key), the winning one first (:data:`SCOPES`)."""
    tables = TABLES[os_name]
    return tuple((scope, k) for scope in SCOPES for k in tables[scope].values() if k.field == field)
