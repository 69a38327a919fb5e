"""Which settings decided an outcome, and what changing them would do -- answered by simulate().

``deciding(scenario, side, by)`` lists the settings behind a death (``by``) with their effective
values; ``levers(scenario, side, by)`` re-runs the scenario with each of them halved and doubled,
and ``switches(scenario, side)`` with a liveness check switched on where a side never notices its
peer is gone.  Used by ``kalab explain`` and notebook 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import native
from .families import lookup
from .scenario import load, with_value
from .ssh_options import SSH_OPTIONS, SSHD_OPTIONS
from .simulate import simulate
from .units import UNIT_SECONDS, format_duration


@dataclass(frozen=True)
class Setting:
    key: str           # dotted scenario key
    name: str          # as the user writes it
    value: Any         # effective value, native unit
    unit: str
    given: bool        # set in the scenario (else a default)


KEEPALIVE_FIELDS = ("keepalive_idle_s", "keepalive_intvl_s", "keepalive_count")


def _tcp_setting(source: Mapping, sc, side: str, field: str) -> Setting | None:
    """The knob behind a TcpSettings field: the socket option if one is set, else the sysctl."""
    h = sc.host(side)
    tables = native.TABLES[h.os]
    for scope in ("socket", "sysctl"):
        for name, spec in tables[scope].items():
            if spec.field != field:
                continue
            key = f"{side}.{scope}.{name}"
            if scope == "socket" and lookup(source, key) is None:
                continue
            value = getattr(h.tcp, field)
            if spec.unit in UNIT_SECONDS:
                value = round(value / UNIT_SECONDS[spec.unit])
            return Setting(key, name, value, spec.unit, lookup(source, key) is not None)
    return None


def _app_setting(source: Mapping, sc, side: str, canon: str) -> Setting:
    h = sc.host(side)
    table = SSH_OPTIONS if h.app.kind == "ssh" else SSHD_OPTIONS
    field = table[canon.lower()][1]
    key = f"{side}.app.options.{canon}"
    return Setting(key, canon, getattr(h.app, field), "s" if "Interval" in canon else "count",
                   lookup(source, key) is not None)


def deciding(source: Mapping, side: str, by: str | None) -> list[Setting]:
    """The settings that produced a death by ``by`` on ``side`` (empty when none applies)."""
    sc = load(source)
    h = sc.host(side)
    out: list[Setting | None] = []
    if by in ("tcp.keepalive", "tcp.user_timeout"):
        out += [_tcp_setting(source, sc, side, f) for f in KEEPALIVE_FIELDS]
    if by in ("tcp.user_timeout",):
        out.append(_tcp_setting(source, sc, side, "user_timeout_s"))
    if by == "tcp.retransmission":
        out.append(_tcp_setting(source, sc, side, "retries2"))
    if by == "tcp.syn_timeout":
        out.append(_tcp_setting(source, sc, side, "syn_retries"))
    if by == "ssh.server_alive" and h.app.kind == "ssh":
        out += [_app_setting(source, sc, side, "ServerAliveInterval"), _app_setting(source, sc, side, "ServerAliveCountMax")]
    if by == "sshd.client_alive" and h.app.kind == "sshd":
        out += [_app_setting(source, sc, side, "ClientAliveInterval"), _app_setting(source, sc, side, "ClientAliveCountMax")]
    # issue 15: the server's idle timers decide on both sides (ssh reports the server's cause)
    srv = sc.server
    if by == "sshd.channel_timeout":
        out.append(Setting("server.app.options.ChannelTimeout", "ChannelTimeout",
                           " ".join(f"{t}={v}" for t, v in srv.app.channel_timeouts), "text", True))
    if by == "sshd.unused_connection_timeout":
        out.append(Setting("server.app.options.UnusedConnectionTimeout", "UnusedConnectionTimeout",
                           srv.app.unused_connection_timeout_s, "s", True))
    if by == "shell.tmout" and srv.app.shell is not None:
        out.append(Setting("server.app.shell.TMOUT", f"{srv.app.shell.name} TMOUT", srv.app.shell.tmout_s, "s", True))
    if by == "logind.idle":
        out.append(Setting("server.logind.StopIdleSessionSec", "logind StopIdleSessionSec",
                           srv.logind_stop_idle_s, "s", True))
    if by in ("middlebox.reset", "tcp.reset_received") and sc.path.middleboxes:
        b = sc.path.middleboxes[0]
        out.append(Setting("path.middleboxes.0.idle_timeout_s", f"{b.preset or b.kind} idle timeout",
                           b.idle_timeout_s, "s", True))
    return [s for s in out if s is not None]


def outcome(source: Mapping, side: str) -> str:
    r = simulate(source).side(side)
    if r.fate == "died":
        return f"dies at {format_duration(r.at_s)} by {r.by}"
    return {"alive": "stays alive", "half_open": "is left half-open", "none": "never connects"}[r.fate]


def levers(source: Mapping, side: str, by: str | None) -> list[str]:
    """One line per deciding setting halved and doubled: what ``side`` would then do (simulated)."""
    lines = []
    now = outcome(source, side)
    for s in deciding(source, side, by):
        if isinstance(s.value, str):     # a pattern list (ChannelTimeout): named, not scaled
            continue
        for factor in (0.5, 2):
            v = s.value * factor
            v = int(round(v)) if isinstance(s.value, int) or float(s.value).is_integer() else v
            if v == s.value or v < (1 if s.unit != "count" else 0):
                continue
            try:
                alt = outcome(with_value(source, s.key, v), side)
            except ValueError:          # out of the kernel's range: not a lever
                continue
            unit = "" if s.unit in ("count", "bool") else f" {s.unit}"
            change = f"the {side} {alt} (now: {now})" if alt != now else f"no change (the {side} {now})"
            lines.append(f"{s.name} {s.value}{unit} -> {v}{unit}: {change}")
    return lines


def switches(source: Mapping, side: str) -> list[str]:
    """What a liveness check would change where ``side`` never notices a dead peer (half-open or alive
    through a fault), or where a NAT's idle timer killed it (then: traffic that keeps the mapping)."""
    sc = load(source)
    r = simulate(source).side(side)
    h = sc.host(side)
    if r.fate == "died" and r.by == "middlebox.reset" or (r.fate == "died" and sc.path.middleboxes and
                                                          r.by in ("tcp.keepalive", "tcp.user_timeout")):
        every = max(1, int(min(b.idle_timeout_s for b in sc.path.middleboxes) // 2))
    elif r.fate in ("half_open", "alive") and sc.faults:
        every = 15
    else:
        return []
    tries: list[tuple[str, dict]] = []
    if h.app.kind == "ssh":
        tries.append((f"ServerAliveInterval {every}", {f"{side}.app.options.ServerAliveInterval": every}))
    if h.app.kind == "sshd":
        tries.append((f"ClientAliveInterval {every}", {f"{side}.app.options.ClientAliveInterval": every}))
    tries += _keepalive_tries(sc, side, every if every != 15 else 60)
    out = []
    for label, changes in tries:
        alt_source = source
        try:
            for key, value in changes.items():
                alt_source = with_value(alt_source, key, value)
            alt = outcome(alt_source, side)
        except ValueError:
            continue
        out.append(f"{label}: the {side} {alt}")
    return out


def _native(tables: dict, scope: str, field: str):
    """The OS's own name for a TcpSettings field in ``scope`` (``socket`` or ``sysctl``), or None."""
    return next(((n, k) for n, k in tables[scope].items() if k.field == field), (None, None))


def _in_native_unit(spec, seconds: float):
    return round(seconds / UNIT_SECONDS[spec.unit]) if spec.unit in UNIT_SECONDS else seconds


def _keepalive_tries(sc, side: str, idle_s: int) -> list[tuple[str, dict]]:
    """Keepalive levers in the OS's own names: with probing off, switch it on (per socket for a plain
    program, which owns its socket; host-wide where the OS can force it: ``always_keepalive`` on the
    BSDs), also with a shorter idle; with probing on, a shorter idle host-wide."""
    h = sc.host(side)
    tables = native.TABLES[h.os]
    idle_sock, idle_sock_spec = _native(tables, "socket", "keepalive_idle_s")
    idle_sys, idle_sys_spec = _native(tables, "sysctl", "keepalive_idle_s")
    tries: list[tuple[str, dict]] = []
    if h.tcp.keepalive_enabled:
        if idle_sys:
            v = _in_native_unit(idle_sys_spec, idle_s)
            tries.append((f"{idle_sys} = {v}", {f"{side}.sysctl.{idle_sys}": v}))
        return tries
    if h.app.kind == "plain":
        tries.append(("setsockopt SO_KEEPALIVE 1", {f"{side}.socket.SO_KEEPALIVE": 1}))
        if idle_sock:
            v = _in_native_unit(idle_sock_spec, idle_s)
            tries.append((f"setsockopt SO_KEEPALIVE 1 and {idle_sock} {v}",
                          {f"{side}.socket.SO_KEEPALIVE": 1, f"{side}.socket.{idle_sock}": v}))
    always, _ = _native(tables, "sysctl", "keepalive_enabled")
    if always:
        tries.append((f"{always} = 1", {f"{side}.sysctl.{always}": 1}))
        if idle_sys:
            v = _in_native_unit(idle_sys_spec, idle_s)
            tries.append((f"{always} = 1 and {idle_sys} = {v}",
                          {f"{side}.sysctl.{always}": 1, f"{side}.sysctl.{idle_sys}": v}))
    return tries
