"""A scenario from real configuration files, and where each setting came from.

``build(...)`` turns a client sysctl dump, an ``ssh_config`` (or ``ssh -G`` output) for one host, a
server sysctl dump and an ``sshd_config`` (or ``sshd -T``) into the scenario contract of
``docs/scenarios.md``; ``sources`` maps each dotted scenario key that was set to its ``file:line``.
Faults come from the command line as ``KIND[:SIDE]@AT[+FOR]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ScenarioError
from ..mechanisms.middlebox import PRESETS
from ..scenario import FAULT_KEYS, load
from ..units import parse_duration
from .common import Origin
from .openssh import SshConfig, SshdConfig
from .sysctl import SysctlDump

_FAULT = re.compile(r"^(?P<kind>[a-z_]+)(?::(?P<side>client|server))?@(?P<at>[^+]+)(?:\+(?P<for>.+))?$")


def parse_fault(text: str) -> dict:
    """``link_down@60+30``, ``host_crash:client@10``, ``host_reboot:server@5+20`` -> a scenario fault.

    ``AT`` and ``FOR`` are durations (``90``, ``2m``, ``1h30m``).  ``FOR`` is how long the link stays
    down, the reboot takes (``down_s``) or the host sleeps; without it a link stays down for good.
    """
    m = _FAULT.match(text.strip())
    if not m:
        raise ScenarioError("--fault", f"cannot read {text!r}", value=text,
                            allowed="KIND[:SIDE]@AT[+FOR], e.g. link_down@60+30, host_crash:client@10")
    kind = m.group("kind")
    if kind not in FAULT_KEYS:
        raise ScenarioError("--fault", f"unknown fault kind {kind!r}", value=text, allowed=", ".join(FAULT_KEYS))
    out: dict = {"kind": kind}
    try:
        out["at_s"] = parse_duration(m.group("at"))
        dur = parse_duration(m.group("for")) if m.group("for") else None
    except ValueError as e:
        raise ScenarioError("--fault", str(e), value=text) from None
    side = m.group("side")
    if kind == "link_down":
        if side:
            raise ScenarioError("--fault", "link_down takes no side (the path between them goes down)", value=text)
        if dur is not None:
            out["for_s"] = dur
    else:
        out["side"] = side or "server"
        if kind == "host_reboot":
            if dur is None:
                raise ScenarioError("--fault", "host_reboot needs +DOWN (how long the host is down)", value=text)
            out["down_s"] = dur
        elif kind == "sleep":
            if dur is None:
                raise ScenarioError("--fault", "sleep needs +FOR", value=text)
            out["for_s"] = dur
        elif dur is not None:
            raise ScenarioError("--fault", f"{kind} takes no +FOR", value=text)
    return out


@dataclass(frozen=True)
class Built:
    scenario: dict
    sources: dict = field(default_factory=dict)      # dotted key -> Origin or a short text
    problems: tuple = ()                             # (Problem, ...) from every file
    notes: tuple = ()


def build(*, client_sysctl: SysctlDump | None = None, server_sysctl: SysctlDump | None = None,
          ssh: SshConfig | None = None, sshd: SshdConfig | None = None, middlebox: str | None = None,
          faults: list[dict] | None = None, until_s: float | None = None, ssh_version: str | None = None,
          sshd_version: str | None = None, rtt_ms: float | None = None) -> Built:
    """The scenario these files describe; validated by :func:`kalab.scenario.load`."""
    sc: dict = {"client": {}, "server": {}}
    sources: dict = {}
    problems: list = []
    notes: list = []
    for side, dump in (("client", client_sysctl), ("server", server_sysctl)):
        if dump is None:
            continue
        host = sc[side]
        host["os"] = dump.os
        if dump.os_guessed:
            notes.append(f"{side} sysctl dump: assumed {dump.os} from its keys")
        host["sysctl"] = dump.scenario_sysctl()
        for k, o in dump.origins.items():
            sources[f"{side}.sysctl.{k}"] = o
        problems += dump.problems
        if dump.ignored:
            notes.append(f"{side} sysctl dump: {len(dump.ignored)} keys without a timer role ignored")
    # ssh talks to an sshd, configured or not.
    for side, kind, conf, version in (("client", "ssh", ssh, ssh_version),
                                      ("server", "sshd", sshd, sshd_version)):
        if conf is None and not version and ssh is None and not ssh_version:
            continue
        app: dict = {"kind": kind}
        if conf is not None:
            app["options"] = dict(conf.options)
            for k, o in conf.origins.items():
                sources[f"{side}.app.options.{k}"] = o
            problems += conf.problems
        if version:
            app["version"] = version
        sc[side]["app"] = app
    if middlebox:
        if middlebox not in PRESETS:
            raise ScenarioError("--middlebox", f"unknown preset {middlebox!r}", value=middlebox,
                                allowed=", ".join(PRESETS))
        sc["path"] = {"middleboxes": [{"preset": middlebox}]}
        sources["path.middleboxes.0.idle_timeout_s"] = Origin(f"--middlebox {middlebox}", 0)
    if rtt_ms is not None:
        sc.setdefault("path", {})["rtt_ms"] = rtt_ms
    if faults:
        sc["faults"] = faults
    if until_s is not None:
        sc["until_s"] = until_s
    else:
        # Long enough for the slowest default (2 h 11 min keepalive) to play out after the last fault.
        last = max([f["at_s"] + (f.get("for_s") or f.get("down_s") or 0) for f in faults or []] + [0])
        sc["until_s"] = last + 3 * 3600
    load(sc)
    return Built(sc, sources, tuple(problems), tuple(notes))
