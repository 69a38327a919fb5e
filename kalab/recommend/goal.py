"""The goal ``kalab recommend`` answers, its bounds, and the mechanisms that may meet it per side.

A goal says how fast a dead peer (or path) must be noticed (``detect_within_s``), how long an
outage must be survived (``survive_outage_s``), the idle timeout of a NAT on the path, who must
notice, and how many probes per idle hour are acceptable; and the path's RTT and the OpenSSH
server version the advice is for.  It is met on Linux at :data:`HZ`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..mechanisms import sshd_alive
from ..settings import DEFAULT_HZ, DEFAULT_OPENSSH, version_text

if TYPE_CHECKING:
    from .search import Recommendation

HZ = DEFAULT_HZ
TICK_S = 1 / HZ
#: The mechanisms per side (see :mod:`kalab.recommend`).
KEEPALIVE_MECHANISMS = ("tcp-keepalive", "tcp-keepalive-sysctl")
MECHANISMS = {"client": (*KEEPALIVE_MECHANISMS, "ssh-serveralive"),
              "server": (*KEEPALIVE_MECHANISMS, "sshd-clientalive")}

#: The longest goal durations (--detect-within, --survive-outage) [s].
MAX_GOAL_S = 86400.0
#: The longest --nat-idle [s] (~317 years; any NAT slower than the detection goal is met alike).
MAX_NAT_S = 1e10
#: The OpenSSH server versions a goal may name (``X.Y``, lowest and highest).
SSHD_VERSIONS = ((5, 0), (10, 99))


@dataclass(frozen=True)
class Goal:
    detect_within_s: float
    survive_outage_s: float = 0.0
    nat_idle_s: float | None = None
    side: str = "both"
    max_probes_per_hour: float | None = None
    rtt_ms: float = 50.0
    sshd_version: str = version_text(DEFAULT_OPENSSH)
    #: An idle spell the session must survive [s] ("an idle lunch break"), and the server's idle
    #: timers that may defeat it (kalab.recommend.idle; issue 15): ChannelTimeout as sshd_config
    #: writes it, UnusedConnectionTimeout, the shell's TMOUT, logind's StopIdleSessionSec [s].
    survive_idle_s: float | None = None
    channel_timeout: str | None = None
    unused_connection_timeout_s: float = 0.0
    shell_tmout_s: float = 0.0
    logind_stop_idle_s: float = 0.0

    def sides(self) -> tuple[str, ...]:
        return ("client", "server") if self.side == "both" else (self.side,)


def parse_sshd_version(text, key: str) -> tuple[int, int]:
    """``text`` as an OpenSSH server version ``(major, minor)``, through the scenario's version grammar;
    a bad one is a ScenarioError naming ``key``."""
    from ..validate import version
    return version(text, key, *SSHD_VERSIONS)


def sshd_version(goal: Goal) -> tuple[int, int]:
    return parse_sshd_version(goal.sshd_version, "sshd_version")


def intervals_per_probe(goal: Goal) -> int:
    """ClientAliveIntervals per probe of the goal's sshd: 2 for 9.2-9.4, else 1
    (:func:`kalab.mechanisms.sshd_alive.intervals_per_probe`)."""
    return sshd_alive.intervals_per_probe(sshd_version(goal))


def unmet(goal: Goal, recs: Sequence[Recommendation]) -> list[str]:
    """The goal's sides that no recommendation in ``recs`` covers."""
    return [s for s in goal.sides() if not any(r.side == s for r in recs)]
