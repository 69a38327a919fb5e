"""Per-OS TCP defaults, each value citing its source (docs/mechanisms.md §Per-OS defaults).

``os_defaults(os, kernel)`` returns the :class:`~kalab.settings.TcpSettings` a
fresh socket has on that system before any sysctl or socket option is applied.
Values whose source is unverified are flagged in ``UNVERIFIED``; the
docs and the timeline say so where they decide an outcome.
"""

from __future__ import annotations

from dataclasses import replace

from .mechanisms import tcp_retransmit as rt
from .mechanisms import time_wait as tw
from .settings import DEFAULT_KERNEL, TcpSettings

#: Linux: include/net/tcp.h defaults (docs/mechanisms.md).
LINUX = TcpSettings()

#: macOS/XNU: keepidle 2 h, keepintvl 75 s, keepcnt 8 (TCPTV_KEEPCNT), total-idle
#: rule, always_keepalive 0; TIME_WAIT 2 x msl 15 s = 30 s; tcp_backoff[] capped 64 s;
#: keepinit 75 s (XNU bsd/netinet/tcp_timer.h; docs/mechanisms.md).
MACOS = TcpSettings(keepalive_count=8, keepalive_rule="bsd", time_wait_s=30.0,
                    port_range=tw.BSD_PORT_RANGE, retransmit_rule="bsd", backoff=rt.XNU_BACKOFF,
                    connect_timeout_s=75.0, syn_linear_timeouts=0)

#: FreeBSD: as macOS but ``net.inet.tcp.always_keepalive = 1`` (every connection
#: is kept alive) and TIME_WAIT 2 x 30 s = 60 s (sys/netinet/tcp_timer.[ch]; docs/mechanisms.md).
FREEBSD = replace(MACOS, keepalive_enabled=True, time_wait_s=60.0, backoff=rt.FREEBSD_BACKOFF)

#: Windows: KeepAliveTime 7,200,000 ms, KeepAliveInterval 1000 ms, 10 probes
#: fixed (Vista+); TcpTimedWaitDelay 120 s (Server 2003+, modern default
#: unverified); retransmission: TcpMaxDataRetransmissions 5 (unverified).
WINDOWS = TcpSettings(keepalive_intvl_s=1.0, keepalive_count=10, time_wait_s=120.0,
                      port_range=tw.BSD_PORT_RANGE, retransmit_rule="bsd",
                      backoff=(1, 2, 4, 8, 16, 32, 64, 128), max_shift=5, rexmt_max_s=240.0,
                      syn_linear_timeouts=0, time_wait_unverified=True)

#: Solaris 11: tcp_keepalive_interval 2 h, tcp_keepalive_abort_interval 8 min,
#: probes from the RTO doubling to 60 s; tcp_ip_abort_interval 5 min (11.2 docs);
#: tcp_time_wait_interval 60 s (Oracle tunables manual; docs/mechanisms.md).
SOLARIS = TcpSettings(keepalive_rule="solaris", keepalive_abort_s=480.0, keepalive_intvl_set=False,
                      retransmit_rule="solaris", abort_s=300.0, rexmt_max_s=60.0,
                      syn_linear_timeouts=0)

#: SCO OpenServer: BSD-style defaults assumed (unverified); TIME_WAIT 30 min from
#: the source article, "if I remember correctly" -- folklore (docs/mechanisms.md §Closing).
SCO_OPENSERVER = replace(FREEBSD, keepalive_enabled=False, time_wait_s=1800.0,
                         time_wait_unverified=True)

BY_OS = {"linux": LINUX, "macos": MACOS, "freebsd": FREEBSD, "windows": WINDOWS,
         "solaris": SOLARIS, "sco-openserver": SCO_OPENSERVER}

#: Values that rest on unverified sources, by OS (shown in docs and results).
UNVERIFIED = {
    "windows": "10-probe off-by-one, modern TcpTimedWaitDelay default and the retransmission give-up are unverified",
    "sco-openserver": "TIME_WAIT 30 min (article folklore), keepalive defaults and drop rule are unverified",
}


def os_defaults(os: str, kernel: tuple[int, int] = DEFAULT_KERNEL) -> TcpSettings:
    """Fresh-socket TCP settings for ``os``; Linux depends on the kernel version."""
    base = BY_OS[os]
    if os == "linux" and kernel < rt.SYN_LINEAR_SINCE:
        base = replace(base, syn_linear_timeouts=0)
    return base
