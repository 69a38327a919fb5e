"""The result contract (docs/contract.md): fate per side, the mechanism, what the app saw, events.

``by`` comes from one fixed vocabulary, :data:`BY`.  The first contract's list is kept
as is and extended with the host-level causes a fault can have and ssh's own
connect timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

#: The fixed vocabulary of causes of death (docs/contract.md).
BY = {
    "tcp.keepalive": "the kernel's keepalive probes went unanswered",
    "tcp.retransmission": "unacknowledged data was retransmitted until the kernel gave up (tcp_retries2)",
    "tcp.user_timeout": "TCP_USER_TIMEOUT expired while data or keepalive probes went unanswered",
    "tcp.reset_received": "the peer (or a host without the connection) answered with RST",
    "tcp.fin_received": "the peer closed the connection (FIN)",
    "tcp.syn_timeout": "connect() gave up: no answer to the SYN (tcp_syn_retries)",
    "ssh.server_alive": "ssh's ServerAlive messages went unanswered",
    "ssh.connect_timeout": "ssh's ConnectTimeout expired before the connection was set up",
    "sshd.client_alive": "sshd's ClientAlive messages went unanswered",
    "telnetd.keepalive": "telnetd's keepalive probes went unanswered",
    "middlebox.reset": "a NAT/firewall on the path answered with RST after its mapping expired",
    "app.exit": "the application closed the connection or was killed",
    "host.crash": "the host crashed and lost all state",
    "host.reboot": "the host rebooted and lost all state",
    "sshd.channel_timeout": "sshd's ChannelTimeout closed the idle session channel (ssh then exits)",
    "sshd.unused_connection_timeout": "sshd's UnusedConnectionTimeout ended a connection with no open channel",
    "shell.tmout": "the remote shell's TMOUT logged out an idle prompt (ssh then exits)",
    "logind.idle": "systemd-logind's StopIdleSessionSec stopped the idle terminal session",
}

#: The first contract's fates plus ``none``: this side never had the session (a connect() that never reached it).
FATES = ("alive", "died", "half_open", "none")


class Event(NamedTuple):
    """One thing that happened, at ``t_s`` (nominal) and no later than ``latest_s``.

    (A NamedTuple rather than a dataclass: long runs create tens of thousands.)
    """

    t_s: float
    side: str           # "client", "server" or "path"
    layer: str          # "tcp", "ssh", "sshd", "telnetd", "app", "path", "host"
    kind: str
    detail: str = ""
    latest_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": _r(self.t_s), "side": self.side, "layer": self.layer, "kind": self.kind,
                "detail": self.detail, "latest_s": _r(self.latest_s if self.latest_s is not None else self.t_s)}


class Repeat(NamedTuple):
    """A fast-forwarded steady state: ``cycles`` identical cycles of ``period_s`` from ``from_s`` to ``to_s``.

    The events of those cycles are not listed one by one: the timeline has one event of kind
    ``repeated`` at ``from_s`` instead (its ``detail`` is ``summary``), and the cycle just before it
    is listed in full.  Nothing else differs from the plain simulation (:mod:`kalab.fastforward`).
    """

    from_s: float
    to_s: float
    period_s: float
    cycles: int
    events_per_cycle: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"from_s": _r(self.from_s), "to_s": _r(self.to_s), "period_s": _r(self.period_s),
                "cycles": self.cycles, "events_per_cycle": self.events_per_cycle, "summary": self.summary}


class Race(NamedTuple):
    """Two things whose order the kernels' and programs' lateness can swap, and so the outcome.

    ``event`` is the index in :attr:`Result.events` of the timer-driven event that may come late
    (``timer``, nominally at ``t_s``, at the latest ``latest_s``); ``deadline`` is what it races,
    at ``deadline_s`` (its own latest: ``deadline_latest_s``).  Found by :mod:`kalab.timing`.
    """

    side: str            # whose outcome it decides
    event: int
    timer: str
    t_s: float
    latest_s: float
    deadline: str
    deadline_s: float
    deadline_latest_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "event": self.event, "timer": self.timer, "t_s": _r(self.t_s),
                "latest_s": _r(self.latest_s), "deadline": self.deadline, "deadline_s": _r(self.deadline_s),
                "deadline_latest_s": _r(self.deadline_latest_s)}


@dataclass(frozen=True)
class SideResult:
    """One side's fate.  A model result also carries the timing corner (:mod:`kalab.timing`):
    ``worst``, the outcome when every kernel timer and program wait fires at the latest it may (a
    SideResult without a ``worst`` of its own); ``timing_sensitive``, whether that outcome differs
    from this one in fate or ``by``; ``timing_detail``, the race in words (None when not sensitive).
    """

    fate: str
    at_s: float | None = None
    latest_s: float | None = None
    by: str | None = None
    sees: str | None = None
    exit_code: int | None = None
    worst: "SideResult | None" = None
    timing_sensitive: bool = False
    timing_detail: str | None = None

    def outcome(self) -> tuple[str, str | None]:
        """(fate, by): what timing may change (docs/contract.md §Timing)."""
        return self.fate, self.by

    def to_dict(self) -> dict[str, Any]:
        d = {"fate": self.fate, "at_s": _r(self.at_s), "latest_s": _r(self.latest_s), "by": self.by,
             "sees": self.sees, "exit_code": self.exit_code}
        if self.worst is not None:
            w = self.worst
            d["worst"] = {"fate": w.fate, "at_s": _r(w.at_s), "latest_s": _r(w.latest_s), "by": w.by, "sees": w.sees}
            d["timing_sensitive"] = self.timing_sensitive
            d["timing_detail"] = self.timing_detail
        return d


@dataclass(frozen=True)
class Result:
    """Immutable simulation result; :meth:`to_dict` is exactly the JSON contract."""

    client: SideResult
    server: SideResult
    events: tuple[Event, ...]
    until_s: float
    name: str = ""
    warnings: tuple[str, ...] = ()
    #: Steady states jumped over (fast-forward); empty for a run simulated event by event.
    repeats: tuple[Repeat, ...] = ()
    #: The races timing decides (:mod:`kalab.timing`): empty unless a side is timing-sensitive.
    races: tuple[Race, ...] = ()

    def side(self, name: str) -> SideResult:
        return self.client if name == "client" else self.server

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "client": self.client.to_dict(), "server": self.server.to_dict(),
             "events": [e.to_dict() for e in self.events], "until_s": _r(self.until_s),
             "warnings": list(self.warnings)}
        if self.repeats:   # only when fast-forwarded: every other result is unchanged, byte for byte
            d["repeats"] = [r.to_dict() for r in self.repeats]
        if self.races:     # only when timing decides an outcome
            d["races"] = [r.to_dict() for r in self.races]
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _r(x: float | None) -> float | None:
    """Round to the microsecond so float noise never reaches the JSON (determinism)."""
    return None if x is None else round(float(x), 6)
