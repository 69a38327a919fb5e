"""What the lab can build on this machine, and for how long it watches: refusals with their reason.

The lab has one real kernel, so a scenario is refused when it asks for what that kernel is not
(another OS, another ``CONFIG_HZ`` or release: :mod:`kalab.lab.host`) or for what one kernel
cannot show (``sleep``: the namespaces share one clock, and a suspended host's stopped clocks are
what matters).  It plays plain programs (:mod:`kalab.lab.sockprog`) or Debian's ssh/sshd, idle, and
at most one middlebox on its router (:mod:`kalab.lab.router`).  How long it watches comes from the
model's own prediction (:func:`observation_s`), bounded so that a run is about a minute unless asked.
"""

from __future__ import annotations

from ..scenario import load
from ..simulate import simulate
from .host import kernel_hz, kernel_version, missing_requirements
from .netns import LabError

#: A run longer than this (seconds of observation) must be asked for with allow_long.
DEFAULT_MAX_S = 75.0
HARD_MAX_S = 900.0


def check_supported(src: dict) -> None:
    """Refuse, with the reason, what the lab cannot build on one real kernel."""
    sc = load(src)
    for side in ("client", "server"):
        h = sc.host(side)
        if h.os != "linux":
            raise LabError(f"{side}.os is {h.os!r}: the lab runs the real Linux kernel only")
        if h.hz != kernel_hz():
            raise LabError(f"{side}.hz is {h.hz}, but this kernel runs with HZ={kernel_hz()}")
        if "kernel" in src[side] and sc.host(side).kernel != kernel_version():
            k = kernel_version()
            raise LabError(f"{side}.kernel is {src[side]['kernel']}, but this machine runs Linux {k[0]}.{k[1]}")
        if h.app.kind in ("telnet", "telnetd"):
            raise LabError(f"{side}.app.kind {h.app.kind!r}: the lab has no telnet daemon; use plain or ssh/sshd")
        if h.app.kind in ("ssh", "sshd") and src[side].get("socket"):
            raise LabError(f"{side}.socket: ssh/sshd set their own socket options; use app.options (TCPKeepAlive)")
        if "TCP_RTO_MAX_MS" in (src[side].get("socket") or {}):
            raise LabError(f"{side}.socket.TCP_RTO_MAX_MS is not supported by the lab's socket program")
    kinds = {sc.client.app.kind, sc.server.app.kind}
    if kinds not in ({"plain"}, {"ssh", "sshd"}):
        raise LabError("the lab runs plain <-> plain or ssh <-> sshd")
    if len(sc.path.middleboxes) > 1:
        raise LabError("the lab's router plays at most one middlebox")
    for f in sc.faults:
        if f.kind == "sleep":
            raise LabError("faults: 'sleep' cannot be shown on one kernel: the namespaces share one clock, "
                           "and a suspended host's stopped clocks are exactly what matters")
    if "ssh" in kinds and sc.traffic:
        raise LabError("traffic: the lab's ssh sessions are idle (alive messages only); use plain programs for traffic")
    if "ssh" in kinds and sc.start == "connect":
        raise LabError("start: 'connect' is supported for plain programs only")


def observation_s(src: dict) -> float:
    """How long to watch after t = 0: until both predicted deaths (plus a margin) or until_s."""
    sc = load(src)
    pred = simulate(sc)
    ends = []
    for side in ("client", "server"):
        r = pred.side(side)
        if r.fate != "died":
            return sc.until_s
        ends.append(r.latest_s)
    # A closed connection may still have TIME_WAIT to show.
    ends += [e.latest_s for e in pred.events if e.kind in ("time_wait", "time_wait_end")]
    last = max(ends)
    return min(sc.until_s, last + max(3.0, 0.1 * last))


def admit(src: dict, *, ssh: bool, allow_long: bool = False) -> float:
    """The seconds of observation this scenario needs here, or :class:`LabError` saying why it cannot
    run: a missing tool or privilege first, then what one kernel cannot show, then its length."""
    missing = missing_requirements(ssh=ssh)
    if missing:
        raise LabError("the lab needs " + ", ".join(missing))
    check_supported(src)
    horizon = observation_s(src)
    if horizon > HARD_MAX_S or (horizon > DEFAULT_MAX_S and not allow_long):
        raise LabError(f"this scenario needs {horizon:.0f} s of observation (more than "
                       f"{DEFAULT_MAX_S:.0f} s); use settings in seconds, or allow_long / --allow-long"
                       + (f" (hard limit {HARD_MAX_S:.0f} s)" if horizon > HARD_MAX_S else ""))
    return horizon
