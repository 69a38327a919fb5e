"""What the lab can build on this machine, and for how long it watches: refusals with their reason.

The lab has one real kernel, so a scenario is refused when it asks for what that kernel is not
(another OS, another ``CONFIG_HZ`` or release: :mod:`kalab.lab.host`) or for what one kernel
cannot show (``sleep``: the namespaces share one clock, and a suspended host's stopped clocks are
what matters).  It plays plain programs (:mod:`kalab.lab.sockprog`) or ssh/sshd, idle, of an
OpenSSH version it has a build of (:func:`openssh_versions`), and at most one middlebox on its
router (:mod:`kalab.lab.router`).  How long it watches is the scenario's ``until_s``
(:func:`observation_s`) -- the run ends sooner when every side has reached its end -- never the
model's prediction, so a wrong prediction shows up as a measured time; a run of more than about a
minute must be asked for.
"""

from __future__ import annotations

from ..scenario import load
from .host import _version_key, kernel_hz, kernel_version, missing_requirements, openssh_builds
from .netns import LabError

#: A run longer than this (seconds of observation) must be asked for with allow_long.
DEFAULT_MAX_S = 75.0
HARD_MAX_S = 900.0


def openssh_versions(src: dict, builds: dict | None = None) -> dict[str, str]:
    """The OpenSSH version each ssh/sshd side runs (``{"client": "10.0", "server": "9.2"}``): its
    ``app.version``, or, where none is given, the system's build's (Debian's 9.2); refused with the
    versions the lab has when it has no build of the one asked for."""
    sc = load(src)
    builds = openssh_builds() if builds is None else builds
    have = ", ".join(sorted(builds, key=_version_key)) or "none"
    out = {}
    for side in ("client", "server"):
        app = sc.host(side).app
        if app.kind not in ("ssh", "sshd"):
            continue
        if "version" in ((src.get(side) or {}).get("app") or {}):
            v = f"{app.version[0]}.{app.version[1]}"
            if v not in builds:
                raise LabError(f"{side}.app.version is {v!r}, but the lab has no OpenSSH {v}: it has {have} "
                               "(scripts/install-system-deps.sh provides 9.2 and 10.0 when run as root)")
        else:
            system = [b.version for b in builds.values() if b.sshd == "/usr/sbin/sshd"]
            if not system:
                raise LabError(f"{side}.app.version: none given and no system OpenSSH; the lab has {have}")
            v = system[0]
        out[side] = v
    return out


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
    if "ssh" in kinds and any(t.side != "client" or t.close or t.reply_bytes or t.every_s for t in sc.traffic):
        raise LabError("traffic: the lab's ssh sessions take only single keystrokes from the client (typing into "
                       "the session's terminal); use plain programs for other traffic")
    if sc.server.logind_stop_idle_s:
        raise LabError("server.logind: systemd-logind cannot run in the lab's namespaces (StopIdleSessionSec is "
                       "modelled from its source, not measured)")
    if "ssh" in kinds and sc.start == "connect" and not any(f.kind == "link_down" and f.at_s == 0 for f in sc.faults):
        raise LabError("start: 'connect' with ssh needs the path cut at t = 0 (a link_down at_s 0: ConnectTimeout "
                       "or the SYN retries); a connection that succeeds is an ssh session, started as usual")
    if "ssh" in kinds:
        openssh_versions(src)


def observation_s(src: dict) -> float:
    """How long to watch after t = 0: the scenario's ``until_s``.  The run ends sooner when every
    side has reached its end (:func:`kalab.lab.programs.all_settled`); what the model predicts plays
    no part, so a side that outlives its predicted death is seen doing so."""
    return load(src).until_s


def admit(src: dict, *, ssh: bool, allow_long: bool = False) -> float:
    """The seconds of observation this scenario needs here, or :class:`LabError` saying why it cannot
    run: a missing tool or privilege first, then what one kernel cannot show, then its length."""
    missing = missing_requirements(ssh=ssh, openssh=())   # the versions: check_supported, with the list
    if missing:
        raise LabError("the lab needs " + ", ".join(missing))
    check_supported(src)
    horizon = observation_s(src)
    if horizon > HARD_MAX_S or (horizon > DEFAULT_MAX_S and not allow_long):
        raise LabError(f"this scenario's until_s is {horizon:.0f} s, and the lab watches until then unless "
                       f"every side ends sooner (more than {DEFAULT_MAX_S:.0f} s); set a shorter until_s, use "
                       "settings in seconds, or allow_long / --allow-long"
                       + (f" (hard limit {HARD_MAX_S:.0f} s)" if horizon > HARD_MAX_S else ""))
    return horizon
