"""The scenario contract (docs/contract.md, docs/scenarios.md) <-> settings, with errors that name the key.

:func:`load` takes the JSON-shaped dict (or :func:`load_file` a path) and
returns an immutable :class:`Scenario`.  Every key is checked: unknown keys are
rejected with the closest valid name, values of the wrong type, NaN, infinite
or outside the kernel's own range are rejected naming key, value and range.
Nothing is half-applied: either a whole Scenario comes back or
:class:`~kalab.errors.ScenarioError` is raised.  Every key and default is
documented in ``docs/scenarios.md``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import native, ssh_options
from .dotted import split_key, with_value
from .errors import ScenarioError, show
from .inputs import MAX_SCENARIO_BYTES, check_tree, parse_json, read_regular_file
from .mechanisms import middlebox as mb
from .mechanisms import logind_idle, shell_tmout, ssh_alive, sshd_alive, sshd_idle
from .mechanisms import telnetd as telnetd_flags
from .presets import os_defaults
from .settings import (APP_KINDS, DEFAULT_HZ, DEFAULT_KERNEL, DEFAULT_OPENSSH, OS_NAMES, AppSettings,
                       HostSettings, ShellSettings, TcpSettings)
from .ssh_options import SSH_OPTIONS, SSHD_OPTIONS
from .validate import boolean as _bool
from .validate import check_keys as _check_keys
from .validate import choice as _choice
from .validate import fmt as _fmt
from .validate import number as _number
from .validate import port_range as _port_range
from .validate import version as _version

SIDES = ("client", "server")
FAULT_KINDS = ("link_down", "host_crash", "host_reboot", "process_kill", "sleep")
START_MODES = ("established", "connect")
MIDDLEBOX_KINDS = ("nat", "firewall", "load_balancer")
HZ_VALUES = (100, 250, 300, 1000)
DEFAULT_UNTIL_S = 86400.0
MAX_UNTIL_S = 1e8
DEFAULT_RTT_MS = 1.0
DEFAULT_TRAFFIC_BYTES = 64

#: Documentation addresses (RFC 5737) used in messages and in the lab.
ADDRESSES = {"client": "192.0.2.2", "server": "198.51.100.2"}
CLIENT_PORT = 50000
SERVER_PORTS = {"ssh": 22, "sshd": 22, "telnet": 23, "telnetd": 23, "plain": 5000}

TOP_KEYS = ("name", "description", "client", "server", "path", "traffic", "faults", "until_s", "start")
HOST_KEYS = ("os", "kernel", "hz", "monotime_phase_s", "srtt_ms", "sysctl", "socket", "app", "logind")
APP_KEYS = ("kind", "version", "options", "flags", "shell")
SHELL_KEYS = ("name", "TMOUT", "command_s")
LOGIND_KEYS = ("StopIdleSessionSec", "systemd")
PATH_KEYS = ("rtt_ms", "middleboxes")
MIDDLEBOX_KEYS = ("kind", "preset", "idle_timeout_s", "on_expiry", "unack_timeout_s")
TRAFFIC_KEYS = ("at_s", "from", "bytes", "close", "reply_bytes", "every_s", "count", "line")
FAULT_KEYS = {"link_down": ("kind", "at_s", "for_s"),
              "host_crash": ("kind", "at_s", "side"),
              "host_reboot": ("kind", "at_s", "side", "down_s"),
              "process_kill": ("kind", "at_s", "side"),
              "sleep": ("kind", "at_s", "side", "for_s")}



@dataclass(frozen=True, kw_only=True)
class Middlebox:
    """A NAT/firewall/load balancer on the path, with its idle timer [s]."""

    kind: str
    preset: str | None
    idle_timeout_s: float
    on_expiry: str
    unack_timeout_s: float | None


@dataclass(frozen=True, kw_only=True)
class PathSettings:
    rtt_s: float = DEFAULT_RTT_MS / 1000
    middleboxes: tuple[Middlebox, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """An application send: ``bytes`` from ``side`` at ``at_s`` (repeating ``every_s``, ``count`` times)."""

    at_s: float
    side: str
    bytes: int = DEFAULT_TRAFFIC_BYTES
    close: bool = False
    reply_bytes: int = 0
    every_s: float | None = None
    count: int | None = None
    #: typing that ends with Enter: a complete command line for a remote shell (else keys without Enter)
    line: bool = False

    def time_of(self, k: int) -> float:
        """The ``k``-th send time [s] (from 0): ``at_s + k * every_s``, computed afresh, never summed up."""
        return self.at_s if self.every_s is None else self.at_s + k * self.every_s

    def send_count(self, until_s: float) -> int:
        """How many sends this entry makes up to ``until_s``: arithmetic, nothing is listed."""
        if self.every_s is None:
            return 1 if self.at_s <= until_s else 0
        n = int((until_s - self.at_s) // self.every_s) + 1
        if self.count is not None:   # count sends, those up to until_s (floor division may be one short)
            n = min(self.count, n + 1)
        while n > 0 and self.time_of(n - 1) > until_s:   # float rounding at the end
            n -= 1
        return n

    def times(self, until_s: float) -> Iterator[float]:
        """Every send time [s] of this entry up to ``until_s`` (one, or ``count`` every ``every_s``), lazily:
        ``every_s`` 0.001 with ``until_s`` 1e8 is 10^11 sends, which no list could hold."""
        return map(self.time_of, range(self.send_count(until_s)))


@dataclass(frozen=True, kw_only=True)
class Fault:
    kind: str
    at_s: float
    for_s: float | None = None   # link_down (None = forever), sleep, host_reboot (down_s)
    side: str | None = None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A loaded, validated scenario.  ``source`` is the input dict, normalised."""

    name: str
    client: HostSettings
    server: HostSettings
    path: PathSettings
    traffic: tuple[Traffic, ...]
    faults: tuple[Fault, ...]
    until_s: float
    start: str
    warnings: tuple[str, ...]
    source_json: str

    def host(self, side: str) -> HostSettings:
        return self.client if side == "client" else self.server

    @property
    def source(self) -> dict:
        """The input as a fresh dict (safe to modify)."""
        return json.loads(self.source_json)


# ---------------------------------------------------------------- hosts

def _native_values(d: Any, path: str, table: dict, os_name: str, kernel: tuple[int, int]) -> dict:
    if d is None:
        return {}
    _check_keys(d, path, table)
    out = {}
    for name, value in d.items():
        spec: native.NativeKey = table[name]
        key = f"{path}.{name}"
        if spec.since and os_name == "linux" and kernel < spec.since:
            raise ScenarioError(key, f"does not exist on Linux {kernel[0]}.{kernel[1]}",
                                allowed=f"kernel >= {spec.since[0]}.{spec.since[1]}")
        if spec.unit == "bool":
            out[spec.field] = _bool(value, key)
        elif spec.unit == "ports":
            out[spec.field] = _port_range(value, key)
        else:
            # Every sysctl, socket option and registry value here is an integer in its native unit.
            v = _number(value, key, spec.lo, spec.hi, integer=True, unit="" if spec.unit == "count" else spec.unit,
                        source=spec.source)
            out[spec.field] = spec.to_internal(v)
    return out


def _app(d: Any, path: str, os_name: str) -> AppSettings:
    if d is None:
        return AppSettings()
    _check_keys(d, path, APP_KEYS)
    kind = _choice(d.get("kind", "plain"), f"{path}.kind", APP_KINDS)
    version = DEFAULT_OPENSSH
    if "version" in d:
        if kind not in ("ssh", "sshd"):
            raise ScenarioError(f"{path}.version", f"only ssh and sshd have a modelled version, not {kind!r}")
        version = _version(d["version"], f"{path}.version", (5, 0), (10, 99))
    fields: dict[str, Any] = {}
    given = []
    options = d.get("options")
    if options is not None:
        if kind not in ("ssh", "sshd"):
            raise ScenarioError(f"{path}.options", f"only ssh and sshd take options; {kind!r} takes 'flags'")
        opt_fields, given = ssh_options.parse(options, f"{path}.options", kind, version)
        fields.update(opt_fields)
    flags = d.get("flags")
    if flags is not None:
        if kind not in ("telnetd", "telnet"):
            raise ScenarioError(f"{path}.flags", f"only telnetd takes flags; {kind!r} takes 'options'")
        if not isinstance(flags, list) or not all(isinstance(f, str) or (isinstance(f, int) and not isinstance(f, bool)
                                                                          and abs(f) < 2**63) for f in flags):
            raise ScenarioError(f"{path}.flags", f"must be a list of strings, got {show(flags)}")
        flags = [str(f) for f in flags]
        if kind == "telnetd":
            try:
                tk = telnetd_flags.parse_flags(flags, sco=os_name == "sco-openserver")
            except ValueError as e:
                raise ScenarioError(f"{path}.flags", str(e), value=flags,
                                    allowed=telnetd_flags.describe(sco=os_name == "sco-openserver")) from None
            fields.update(tcp_keepalive=tk.enabled, keepalive_idle_s=tk.idle_s,
                          keepalive_intvl_s=tk.interval_s, keepalive_count=tk.count)
        fields["flags"] = tuple(flags)
    if "shell" in d:
        if kind != "sshd":
            raise ScenarioError(f"{path}.shell", f"only an sshd session runs a shell, not {kind!r}")
        fields["shell"] = _shell(d["shell"], f"{path}.shell")
    if kind in ("ssh", "sshd"):       # ssh and sshd set SO_KEEPALIVE themselves (TCPKeepAlive)
        fields.setdefault("tcp_keepalive", (ssh_alive if kind == "ssh" else sshd_alive).TCP_KEEPALIVE_DEFAULT)
    if kind == "telnetd":
        fields.setdefault("tcp_keepalive", True)
    return AppSettings(kind=kind, version=version, options=tuple(given), **fields)


def _shell(d: Any, path: str) -> ShellSettings:
    """``server.app.shell``: the session's interactive shell and its TMOUT (kalab.mechanisms.shell_tmout)."""
    _check_keys(d, path, SHELL_KEYS)
    name = _choice(d.get("name", "bash"), f"{path}.name", shell_tmout.SHELLS)
    tmout = _number(d.get("TMOUT", 0), f"{path}.TMOUT", 0, 2**31 - 1, integer=True, unit="s")
    command = _number(d.get("command_s", 0), f"{path}.command_s", 0, 1e8, unit="s")
    return ShellSettings(name=name, tmout_s=int(tmout), command_s=float(command))


def _logind(d: Any, path: str) -> float:
    """``server.logind``: systemd-logind's ``StopIdleSessionSec`` [s] (0 or "infinity": off)."""
    _check_keys(d, path, LOGIND_KEYS)
    if "systemd" in d:
        v = _number(d["systemd"], f"{path}.systemd", 1, 10000, integer=True)
        if v < logind_idle.STOP_IDLE_SINCE:
            raise ScenarioError(f"{path}.StopIdleSessionSec", f"arrived in systemd {logind_idle.STOP_IDLE_SINCE}; "
                                f"systemd {int(v)} ignores it", value=v, allowed=f"systemd >= {logind_idle.STOP_IDLE_SINCE}")
    value = d.get("StopIdleSessionSec", "infinity")
    if isinstance(value, str) and value.strip().lower() == "infinity":
        return 0.0
    return float(_number(value, f"{path}.StopIdleSessionSec", 1, 1e8, unit="s"))


def _host(d: Any, role: str, warnings: list[str]) -> HostSettings:
    path = role
    _check_keys(d, path, HOST_KEYS)
    os_name = _choice(d.get("os", "linux"), f"{path}.os", OS_NAMES)
    kernel = DEFAULT_KERNEL
    if "kernel" in d:
        if os_name != "linux":
            raise ScenarioError(f"{path}.kernel", f"is a Linux setting; os is {os_name!r}")
        kernel = _version(d["kernel"], f"{path}.kernel", (2, 6), (7, 99))
    hz = DEFAULT_HZ
    if "hz" in d:
        hz = d["hz"]
        if isinstance(hz, bool) or hz not in HZ_VALUES:
            raise ScenarioError(f"{path}.hz", f"{show(hz)} is not a kernel HZ", value=hz,
                                allowed=", ".join(map(str, HZ_VALUES)))
    phase = 0.0
    if "monotime_phase_s" in d:
        phase = _number(d["monotime_phase_s"], f"{path}.monotime_phase_s", 0, 0.999999, unit="s")
    srtt = None
    if "srtt_ms" in d:
        srtt = _number(d["srtt_ms"], f"{path}.srtt_ms", 0.001, 60000, unit="ms") / 1000
    tables = native.TABLES[os_name]
    sysctl = _native_values(d.get("sysctl"), f"{path}.sysctl", tables["sysctl"], os_name, kernel)
    sock = _native_values(d.get("socket"), f"{path}.socket", tables["socket"], os_name, kernel)
    app = _app(d.get("app"), f"{path}.app", os_name)
    logind = 0.0
    if "logind" in d:
        if role != "server":
            raise ScenarioError(f"{path}.logind", "systemd-logind stops sessions on the server: server.logind")
        logind = _logind(d["logind"], f"{path}.logind")
    if role == "client" and app.kind in ("sshd", "telnetd"):
        raise ScenarioError(f"{path}.app.kind", f"{app.kind!r} is a server program; the client runs ssh, telnet or plain")
    if role == "server" and app.kind in ("ssh", "telnet"):
        raise ScenarioError(f"{path}.app.kind", f"{app.kind!r} is a client program; the server runs sshd, telnetd or plain")

    tcp = _effective_tcp(os_defaults(os_name, kernel), sysctl, sock, app, path, warnings)
    port = CLIENT_PORT if role == "client" else SERVER_PORTS[app.kind]
    return HostSettings(role=role, os=os_name, kernel=kernel, hz=hz, monotime_phase_s=phase, srtt_s=srtt,
                        address=ADDRESSES[role], port=port, tcp=tcp, app=app, logind_stop_idle_s=logind)


def _effective_tcp(base: TcpSettings, sysctl: dict, sock: dict, app: AppSettings, path: str,
                   warnings: list[str]) -> TcpSettings:
    """Defaults <- sysctls <- socket options <- what the application itself sets."""
    values = dict(sysctl)
    always = values.pop("keepalive_enabled", base.keepalive_enabled)  # BSD always_keepalive
    msl = values.pop("msl_s", None)
    if msl is not None:
        values["time_wait_s"] = 2 * msl
    so_keepalive = sock.pop("keepalive_enabled", None)
    values.update(sock)
    if app.tcp_keepalive is not None:
        name = {"ssh": "TCPKeepAlive", "sshd": "TCPKeepAlive", "telnetd": "-n"}[app.kind]
        if so_keepalive is not None and so_keepalive != app.tcp_keepalive:
            warnings.append(f"{path}.socket.SO_KEEPALIVE={int(so_keepalive)} is overridden: {app.kind} sets "
                            f"SO_KEEPALIVE itself from {name} ({'on' if app.tcp_keepalive else 'off'})")
        so_keepalive = app.tcp_keepalive
    for field, v in (("keepalive_idle_s", app.keepalive_idle_s), ("keepalive_intvl_s", app.keepalive_intvl_s),
                     ("keepalive_count", app.keepalive_count)):
        if v is not None:
            values[field] = v
    if base.keepalive_rule == "solaris":
        if "keepalive_intvl_s" in values:
            values["keepalive_intvl_set"] = True
        if "keepalive_count" in values or "keepalive_intvl_s" in values:
            cnt = values.get("keepalive_count", base.keepalive_count)
            intvl = values.get("keepalive_intvl_s", base.keepalive_intvl_s)
            values["keepalive_abort_s"] = cnt * intvl
    values["keepalive_enabled"] = bool(always or so_keepalive)
    return replace(base, **values)


# ---------------------------------------------------------------- path, traffic, faults

def path_rtt_s(rtt_ms):
    """The path's round-trip time [s] from ``path.rtt_ms`` [ms], a number or a numpy array (a sweep's axis)."""
    return rtt_ms / 1000


def _path(d: Any) -> PathSettings:
    if d is None:
        return PathSettings()
    _check_keys(d, "path", PATH_KEYS)
    rtt_ms = _number(d.get("rtt_ms", DEFAULT_RTT_MS), "path.rtt_ms", 0.001, 60000, unit="ms")
    boxes = d.get("middleboxes", [])
    if not isinstance(boxes, list):
        raise ScenarioError("path.middleboxes", f"must be a list, got {show(boxes)}")
    return PathSettings(rtt_s=path_rtt_s(rtt_ms), middleboxes=tuple(_middlebox(b, f"path.middleboxes.{i}")
                                                              for i, b in enumerate(boxes)))


def _middlebox(d: Any, path: str) -> Middlebox:
    _check_keys(d, path, MIDDLEBOX_KEYS)
    kind = _choice(d.get("kind", "nat"), f"{path}.kind", MIDDLEBOX_KINDS)
    preset = None
    idle = on_exp = unack = None
    if "preset" in d:
        preset = _choice(d["preset"], f"{path}.preset", tuple(mb.PRESETS))
        p = mb.PRESETS[preset]
        idle, on_exp, unack = p.idle_timeout_s, p.on_expiry, p.unack_timeout_s
    if "idle_timeout_s" in d:
        idle = _number(d["idle_timeout_s"], f"{path}.idle_timeout_s", 1, 1e8, unit="s")
    if idle is None:
        raise ScenarioError(f"{path}.idle_timeout_s", "is required when no preset is given",
                            allowed="1..1e8 s, or a preset: " + ", ".join(mb.PRESETS))
    if "on_expiry" in d:
        on_exp = _choice(d["on_expiry"], f"{path}.on_expiry", mb.ON_EXPIRY)
    if "unack_timeout_s" in d:
        unack = None if d["unack_timeout_s"] is None else _number(d["unack_timeout_s"], f"{path}.unack_timeout_s",
                                                                 1, 1e8, unit="s")
    return Middlebox(kind=kind, preset=preset, idle_timeout_s=idle, on_expiry=on_exp or "drop",
                     unack_timeout_s=unack)


def _traffic(d: Any, path: str, until_s: float) -> Traffic:
    _check_keys(d, path, TRAFFIC_KEYS)
    if "at_s" not in d:
        raise ScenarioError(f"{path}.at_s", "is required", allowed=f"0..{_fmt(until_s)} s")
    at = _number(d["at_s"], f"{path}.at_s", 0, until_s, unit="s")
    side = _choice(d.get("from", "client"), f"{path}.from", SIDES)
    close = _bool(d.get("close", False), f"{path}.close")
    nbytes = _number(d.get("bytes", 0 if close else DEFAULT_TRAFFIC_BYTES), f"{path}.bytes", 0 if close else 1,
                     1e9, integer=True)
    reply = _number(d.get("reply_bytes", 0), f"{path}.reply_bytes", 0, 1e9, integer=True)
    line = _bool(d.get("line", False), f"{path}.line")
    every = count = None
    if "every_s" in d:
        every = _number(d["every_s"], f"{path}.every_s", 0.001, until_s, unit="s")
        if close:
            raise ScenarioError(f"{path}.every_s", "a closing entry cannot repeat")
    if "count" in d:
        if every is None:
            raise ScenarioError(f"{path}.count", "only makes sense with every_s")
        count = _number(d["count"], f"{path}.count", 1, 1e6, integer=True)
    return Traffic(at_s=at, side=side, bytes=nbytes, close=close, reply_bytes=reply, every_s=every, count=count,
                   line=line)


def _fault(d: Any, path: str, until_s: float) -> Fault:
    if not isinstance(d, Mapping):
        raise ScenarioError(path, f"must be an object, got {show(d)}")
    kind = _choice(d.get("kind"), f"{path}.kind", FAULT_KINDS)
    _check_keys(d, path, FAULT_KEYS[kind])
    if "at_s" not in d:
        raise ScenarioError(f"{path}.at_s", "is required", allowed=f"0..{_fmt(until_s)} s")
    at = _number(d["at_s"], f"{path}.at_s", 0, until_s, unit="s")
    side = None
    if kind != "link_down":
        if "side" not in d:
            raise ScenarioError(f"{path}.side", f"is required for {kind}", allowed="client, server")
        side = _choice(d["side"], f"{path}.side", SIDES)
    dur = None
    if kind == "link_down" and d.get("for_s") is not None:
        dur = _number(d["for_s"], f"{path}.for_s", 0.001, 1e8, unit="s")
    if kind == "sleep":
        if d.get("for_s") is None:
            raise ScenarioError(f"{path}.for_s", "is required for sleep (a sleep that never ends is a host_crash)",
                                allowed="0.001..1e8 s")
        dur = _number(d["for_s"], f"{path}.for_s", 0.001, 1e8, unit="s")
    if kind == "host_reboot":
        if "down_s" not in d:
            raise ScenarioError(f"{path}.down_s", "is required for host_reboot", allowed="0.001..1e8 s")
        dur = _number(d["down_s"], f"{path}.down_s", 0.001, 1e8, unit="s")
    return Fault(kind=kind, at_s=at, for_s=dur, side=side)


def _idle_warnings(client: HostSettings, server: HostSettings) -> list[str]:
    """Idle-timer settings that cannot act (docs/mechanisms.md §sshd idle timers, §logind)."""
    out = []
    app = server.app
    bad = sshd_idle.unmatched_session_patterns(app.channel_timeouts)
    if bad:
        out.append(f"server.app.options.ChannelTimeout: {', '.join(bad)} matches no session channel: sshd names "
                   f"them session:shell and session:command (measured on 9.2 and 10.0); use session:*")
    if server.logind_stop_idle_s and app.shell is None and client.app.request_tty not in ("yes", "force"):
        out.append("server.logind.StopIdleSessionSec applies to sessions with a terminal only; this session has "
                   "none (give server.app.shell or the client's RequestTTY)")
    return out


# ---------------------------------------------------------------- entry points

def load(data: Mapping | Scenario) -> Scenario:
    """Validate a scenario dict (the JSON contract) into a :class:`Scenario`."""
    if isinstance(data, Scenario):
        return data
    _check_keys(data, "", TOP_KEYS)
    check_tree(data)      # nesting, lone surrogates (before deepcopy/json.dumps/printing meet them)
    src = copy.deepcopy(dict(data))
    for side in SIDES:
        if side not in data:
            raise ScenarioError(side, "is required (the settings of that host; {} means Linux defaults)")
    warnings: list[str] = []
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ScenarioError("name", f"must be a string, got {show(name)}")
    if "description" in data and not isinstance(data["description"], str):
        raise ScenarioError("description", f"must be a string, got {show(data['description'])}")
    until = _number(data.get("until_s", DEFAULT_UNTIL_S), "until_s", 0.001, MAX_UNTIL_S, unit="s")
    start = _choice(data.get("start", "established"), "start", START_MODES)
    client = _host(data["client"], "client", warnings)
    server = _host(data["server"], "server", warnings)
    path = _path(data.get("path"))
    traffic = data.get("traffic", [])
    if not isinstance(traffic, list):
        raise ScenarioError("traffic", f"must be a list, got {show(traffic)}")
    faults = data.get("faults", [])
    if not isinstance(faults, list):
        raise ScenarioError("faults", f"must be a list, got {show(faults)}")
    tr = tuple(_traffic(t, f"traffic.{i}", until) for i, t in enumerate(traffic))
    warnings += _idle_warnings(client, server)
    fl = tuple(_fault(f, f"faults.{i}", until) for i, f in enumerate(faults))
    try:
        source_json = json.dumps(src, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:  # pragma: no cover - values were checked above
        raise ScenarioError("", f"not JSON-serialisable: {e}") from None
    return Scenario(name=name, client=client, server=server, path=path, traffic=tr, faults=fl, until_s=until,
                    start=start, warnings=tuple(warnings), source_json=source_json)


def loads(text: str) -> Scenario:
    """Parse JSON text; malformed JSON is reported with line and column, and the limits of
    :func:`kalab.inputs.parse_json` apply (size, nesting depth, number length, no duplicate keys)."""
    data = parse_json(text, MAX_SCENARIO_BYTES, "scenario")
    if not isinstance(data, dict):
        raise ScenarioError("", f"a scenario is a JSON object, got {type(data).__name__}")
    return load(data)


def load_file(path: str | Path) -> Scenario:
    """A scenario file: a regular file of at most :data:`~kalab.inputs.MAX_SCENARIO_BYTES` (a FIFO,
    a device or a directory is refused at once), UTF-8 JSON, then :func:`loads`."""
    p = Path(path) if not isinstance(path, Path) else path
    data = read_regular_file(p, MAX_SCENARIO_BYTES, "scenario")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(str(p), f"is not UTF-8 text (byte {e.start:,})") from None
    return loads(text)


# Also here, for code that names them kalab.scenario.X: split_key and with_value (kalab.dotted),
# SSH_OPTIONS and SSHD_OPTIONS (kalab.ssh_options).
__all__ = ["Scenario", "Traffic", "Fault", "Middlebox", "PathSettings", "load", "loads", "load_file",
           "DEFAULT_KERNEL", "DEFAULT_OPENSSH", "split_key", "with_value", "SSH_OPTIONS", "SSHD_OPTIONS"]
