"""Sweep families: closed forms that give, for a whole block of a grid, what ``simulate()`` says.

A family is a shape of scenario whose outcome has a known formula in the swept settings.  Each
family says which scenarios it covers (``matches``: the base scenario and the axis keys), and for a
block of the grid returns an *eligible* mask and the per-side fields; points outside the mask are
simulated by :func:`kalab.sweep`.  Every formula is proven equal to the simulator by property tests
(``tests/test_sweep.py``), including the latest times (timer-wheel and poll slack).

Two tools keep the formulas honest:

* **Rules come from** :mod:`kalab.mechanisms` -- the same functions the event simulator calls.
* **Templates.**  Where the formula is a schedule that the kernel computes step by step (RTO
  backoff, the tail loss probe, the ``tcp_retries2`` time model, ``TCP_USER_TIMEOUT`` clamping),
  the family runs the simulator *once per distinct retransmission setting* on a one-segment
  scenario and shifts the answer: the schedule of a segment sent at a jiffy boundary ``t`` is the
  template's schedule moved by ``t`` (kernel timers are relative; timer-wheel slack depends on the
  delay, not the time).  A sweep over ``tcp_retries2`` x ``TCP_USER_TIMEOUT`` x outage therefore
  costs one tiny simulation per (retries2, UT) pair, and numpy for the rest.

Families (a point is in a family only when every condition holds; otherwise it is simulated):

``keepalive``
    Linux keepalive (with ``TCP_USER_TIMEOUT``) on the client, idle plain programs, one
    ``link_down`` (transient or permanent) or a server crash/reboot that starts by the first probe.
``retransmission``
    The client sends one message at ``t`` into a ``link_down`` that started by then (transient or
    permanent), or to a server that crashed or rebooted; no keepalive.  Death: ``t + template``; it
    survives if a (re)transmission falls after the link is back; a rebooted server answers the first
    one after it is back with RST (one RTT later).
``ssh_alive``
    ``ssh`` with ``ServerAliveInterval`` against ``sshd`` without ``ClientAlive``; the link goes
    down (or the server crashes or reboots) by the first check.  Death: the earlier of
    ``(CountMax + 1) x I`` and the first keepalive message's retransmission death; survives a
    transient outage when a retransmission after the link is back brings the server's reply before
    that; with ``CountMax 0`` the FIN of the exiting ssh may reach sshd after the outage (EOF); a
    rebooted server's RST ends ssh when it comes first.
``sshd_alive``
    ``sshd`` with ``ClientAliveInterval`` (per OpenSSH version) against a client without
    ``ServerAlive``; the link goes down for good (or the client crashes or reboots) by the first probe.
``middlebox``
    Client keepalive behind one NAT/firewall idle timer (drop or RST), idle plain programs, no fault:
    the mapping survives while ``keepidle + rtt/2 < timeout``; else the first probe meets an expired
    mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from .mechanisms import middlebox as mbx
from .mechanisms import ssh_alive, sshd_alive
from .mechanisms import tcp_keepalive as ka
from .mechanisms import tcp_retransmit as rt
from .result import BY, FATES
from . import native
from .scenario import Scenario, path_rtt_s, split_key
from .slack import poll_timeout_slack_s, timer_slack_s_array

BY_CODES = [None] + sorted(BY)
FATE_CODES = list(FATES)
#: Times closer than this to a tie between two events are left to the simulator (event order decides).
TIE_S = 1e-6


def by_code(name: str | None) -> np.uint8:
    return np.uint8(BY_CODES.index(name))


def fate_code(name: str) -> np.uint8:
    return np.uint8(FATE_CODES.index(name))


@dataclass(frozen=True)
class Family:
    """A closed form: ``matches(scenario, axis_keys)`` and ``block(base, cols, scenario, dest=None)``."""

    name: str
    matches: Callable[[Scenario, set], bool]
    block: Callable[..., tuple[np.ndarray, dict]]


# ---------------------------------------------------------------- shared pieces

def lookup(source: Mapping, key: str):
    """The value at a dotted key of a scenario dict, or None when it is not there."""
    node: Any = source
    for p in split_key(key):
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def per_point(cols: dict, key: str, loaded) -> np.ndarray:
    """``key``'s values over the block: its axis (shaped to broadcast), else ``loaded``, the value of
    the loaded scenario -- converted and checked by :mod:`kalab.scenario`, never read raw here."""
    return np.asarray(cols[key] if key in cols else loaded, dtype=float)


def tcp_setting(base: Mapping, cols: dict, sc: Scenario, side: str, field: str) -> np.ndarray:
    """``side``'s effective :class:`~kalab.settings.TcpSettings` ``field`` over the block [s, or a count].

    The native settings that set it (:func:`kalab.native.setting_keys`: the socket option, then the
    sysctl) are looked at in that order: the first that is an axis gives the values, converted to
    seconds as the loader does (:meth:`kalab.native.NativeKey.to_internal`); one set in the base
    scenario wins over the rest, and then -- as when none is given -- the loaded value holds.
    """
    host = sc.host(side)
    for scope, key in native.setting_keys(host.os, field):
        dotted = f"{side}.{scope}.{key.name}"
        if dotted in cols:
            return key.to_internal(np.asarray(cols[dotted], dtype=float))
        if lookup(base, dotted) is not None:
            break
    return np.asarray(getattr(host.tcp, field), dtype=float)


#: The TcpSettings fields of the Linux keepalive rule, as :func:`keepalive_settings` returns them.
KEEPALIVE_FIELDS = ("keepalive_idle_s", "keepalive_intvl_s", "keepalive_count", "user_timeout_s")


def keepalive_settings(base: Mapping, cols: dict, sc: Scenario, side: str) -> tuple[np.ndarray, ...]:
    """``side``'s effective (keepidle [s], keepintvl [s], probes, TCP_USER_TIMEOUT [s]) over the block."""
    return tuple(tcp_setting(base, cols, sc, side, f) for f in KEEPALIVE_FIELDS)


def keepalive_rule(idle, intvl, cnt, ut, hz: int):
    """Death by the Linux keepalive rule after the last segment received at 0 (no probe answered).

    Returns (nominal death [s], lateness [s], by code, intervals ``j``).  Probe ``k`` goes out at
    ``idle + (k-1) intvl``; lateness is ``granularity(idle) + j granularity(intvl)`` (:mod:`kalab.slack`).
    """
    j = ka.linux_keepalive_intervals(idle, intvl, cnt, ut, hz)
    death = ka.linux_keepalive_firing_s(idle, intvl, j)
    late = ka.linux_keepalive_firing_late_s(idle, intvl, j, hz)
    by = rt.linux_give_up_by(ut, by_code("tcp.keepalive"), by_code(rt.USER_TIMEOUT_BY))
    return death, late, by, j


ALIVE, DIED, HALF_OPEN = fate_code("alive"), fate_code("died"), fate_code("half_open")
assert (ALIVE, DIED, HALF_OPEN) == (0, 1, 2)       # side_fields builds fates arithmetically from these


def side_fields(dies, at, late, by, half_open=None, shape=None, dest: dict | None = None) -> dict:
    """One side's four fields from ``dies`` (full-block mask) and the death's time, lateness and
    cause (any broadcastable shape).  Arithmetic instead of ``np.where`` where it saves a pass over
    the block: NaN comes in as ``at + (0 or NaN)``, codes as ``mask * code``.  With ``dest`` (the
    block's slices of the result arrays) the fields are written there directly.
    """
    dies = np.broadcast_to(dies, shape) if shape is not None else dies
    dest = dest or {}
    z = np.where(dies, 0.0, np.nan)
    d8 = dies.view(np.uint8)
    at = np.asarray(at, dtype=float)
    out = {"at_s": np.add(at, z, out=dest.get("at_s")),
           "latest_s": np.add(at + late, z, out=dest.get("latest_s")),
           "by": np.multiply(d8, np.asarray(by, dtype=np.uint8), out=dest.get("by"))}
    if half_open is None:
        fate = d8
    else:
        fate = d8 + HALF_OPEN * (np.broadcast_to(half_open, dies.shape) & ~dies).view(np.uint8)
    if "fate" in dest:
        np.copyto(dest["fate"], fate)
        fate = dest["fate"]
    out["fate"] = fate
    return out


def finish(c_at, c_late, c_by, s_at, s_late, s_by, until, dest: dict | None = None) -> dict:
    """Per-side fields of two sides that die independently (NaN: does not die) within ``until``.

    A side that dies after ``until`` is alive; a living side whose peer died is half open
    (``World._result``).
    """
    shape = np.broadcast_shapes(np.shape(c_at), np.shape(s_at), np.shape(until))
    with np.errstate(invalid="ignore"):
        c_dies = np.broadcast_to(np.isfinite(c_at) & (c_at <= until), shape)
        s_dies = np.broadcast_to(np.isfinite(s_at) & (s_at <= until), shape)
    dest = dest or {}
    return {"client": side_fields(c_dies, np.where(c_dies, c_at, 0.0), c_late, c_by, s_dies, dest=dest.get("client")),
            "server": side_fields(s_dies, np.where(s_dies, s_at, 0.0), s_late, s_by, c_dies, dest=dest.get("server"))}


# ---------------------------------------------------------------- the retransmission template

T_REF_S = 1.0
#: Host keys that shape a retransmission schedule (everything else about the host is dropped).
RETX_HOST_KEYS = ("os", "kernel", "hz", "srtt_ms", "sysctl")


@lru_cache(maxsize=8192)
def _retx_template_json(host_json: str, rtt_ms: float | None) -> tuple:
    host = json.loads(host_json)
    sc = {"client": host, "server": {}, "traffic": [{"at_s": T_REF_S, "from": "client"}],
          "faults": [{"kind": "link_down", "at_s": T_REF_S}], "until_s": 10_000_000}
    if rtt_ms is not None:
        sc["path"] = {"rtt_ms": rtt_ms}
    from .simulate import simulate
    r = simulate(sc)
    c = r.client
    if c.fate != "died" or c.by not in ("tcp.retransmission", "tcp.user_timeout"):  # pragma: no cover - guard
        raise AssertionError(f"retransmission template did not die by retransmission: {c}")
    sent = [e for e in r.events
            if e.side == "client" and e.layer == "tcp" and e.kind in ("data_sent", "tlp", "retransmit")]
    return (c.at_s - T_REF_S, c.latest_s - c.at_s, c.by, tuple(e.t_s - T_REF_S for e in sent),
            tuple(e.latest_s - e.t_s for e in sent))


def retx_template(scenario_host: Mapping, rtt_ms, overrides: Mapping[str, Any]) -> tuple:
    """One segment sent at a jiffy boundary into a dead path: (death after the send [s], lateness of
    the death [s] beyond the sender's own, by, send times after the first [s], each send's lateness [s]).

    ``scenario_host`` is the host's part of the scenario (its sysctls, kernel, srtt); ``overrides``
    are dotted host keys (``sysctl.net.ipv4.tcp_retries2``, ``socket.TCP_USER_TIMEOUT``) from the grid.
    """
    host: dict = {k: scenario_host[k] for k in RETX_HOST_KEYS if k in scenario_host}
    # Keepalive is off in the template (data in flight suspends it anyway): its sysctls do not matter.
    host["sysctl"] = {k: v for k, v in host.get("sysctl", {}).items() if "keepalive" not in k}
    sock = scenario_host.get("socket", {})
    host["socket"] = {k: v for k, v in sock.items() if k == "TCP_USER_TIMEOUT"}
    for k, v in overrides.items():
        section, name = k.split(".", 1)
        host.setdefault(section, {})[name] = v
    return _retx_template_json(json.dumps(host, sort_keys=True), None if rtt_ms is None else float(rtt_ms))


def _host(base: Mapping, side: str) -> Mapping:
    return base.get(side, {}) or {}


RETX_AXES = ("sysctl.net.ipv4.tcp_retries2", "socket.TCP_USER_TIMEOUT")


class Retx(NamedTuple):
    """A segment's fate per block point (see :func:`retx`)."""

    death: np.ndarray        # when the sender gives up [s]
    late: np.ndarray         # how much later the kernel may give up, beyond the sender's own lateness [s]
    by: np.ndarray           # by code of the give-up
    first: np.ndarray        # the first (re)transmission at or after ``back`` [s] (inf: none before the give-up)
    first_late: np.ndarray   # its lateness [s]
    last: np.ndarray         # the last (re)transmission before the give-up [s]
    last_before: np.ndarray  # the last (re)transmission strictly before ``before`` [s] (-inf: none; NaN: not asked)


def retx(base: Mapping, cols: dict, side: str, t0, back, shape: tuple, retries2: int | None = None,
         before=None) -> Retx:
    """For a segment ``side`` sends at ``t0`` into a path that is back at ``back`` (inf: never).

    The schedule comes from :func:`retx_template`, once per distinct (retries2, UT, rtt) of the block.
    ``retries2`` forces ``tcp_retries2`` (the orphan bound).  ``before``: a time per point; the last
    send before it is returned too.
    """
    keys = [f"{side}.{k}" for k in RETX_AXES] + ["path.rtt_ms"]
    host = _host(base, side)
    base_rtt = (base.get("path") or {}).get("rtt_ms")
    present = [k for k in keys if k in cols]
    t0 = np.broadcast_to(np.asarray(t0, dtype=float), shape)
    back = np.broadcast_to(np.asarray(back, dtype=float), shape)
    out = Retx(np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.uint8), np.empty(shape), np.empty(shape),
               np.empty(shape), np.full(shape, np.nan))
    before = None if before is None else np.broadcast_to(np.asarray(before, dtype=float), shape)

    def fill(mask, vals):
        ov = {k.split(".", 1)[1]: int(v) for k, v in vals.items() if k != "path.rtt_ms"}
        if retries2 is not None:
            ov["sysctl.net.ipv4.tcp_retries2"] = retries2
        dd, ll, bb, sends, sends_late = retx_template(host, vals.get("path.rtt_ms", base_rtt), ov)
        sends, sends_late = np.asarray(sends), np.asarray(sends_late)
        t = t0[mask]
        out.death[mask], out.late[mask], out.by[mask] = t + dd, ll, by_code(bb)
        k = np.searchsorted(sends, back[mask] - t - 1e-9, side="left")
        found = k < len(sends)
        k = np.minimum(k, len(sends) - 1)
        out.first[mask] = np.where(found, t + sends[k], np.inf)
        out.first_late[mask] = np.where(found, sends_late[k], 0.0)
        out.last[mask] = t + sends[-1]
        if before is not None:
            j = np.searchsorted(sends, before[mask] - t - 1e-9, side="left") - 1
            out.last_before[mask] = np.where(j >= 0, t + sends[np.maximum(j, 0)], -np.inf)

    if not present:
        fill(Ellipsis, {})
        return out
    combos = np.stack([np.broadcast_to(cols[k], shape).astype(float).ravel() for k in present], axis=-1)
    uniq, inv = np.unique(combos, axis=0, return_inverse=True)
    inv = inv.reshape(shape)
    for u, row in enumerate(uniq):
        fill(inv == u, dict(zip(present, row)))
    return out


def apart(x, y):
    """Not within ``TIE_S`` of each other (two infinities are apart: neither happens)."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)) <= TIE_S)


def jiffy_aligned(t, hz: int):
    return np.abs(np.asarray(t, dtype=float) * hz - np.round(np.asarray(t, dtype=float) * hz)) < 1e-6


def _common(sc: Scenario) -> bool:
    return sc.start == "established" and sc.client.os == "linux" and sc.server.os == "linux" \
        and sc.client.tcp.retransmit_rule == "linux" and sc.server.tcp.retransmit_rule == "linux"


def _h(cols: dict, sc: Scenario):
    """Half the path's round-trip time [s], the one-way delay (``World.one_way_s``)."""
    r = cols.get("path.rtt_ms")
    return np.asarray(sc.path.rtt_s if r is None else path_rtt_s(np.asarray(r, dtype=float)), dtype=float) / 2


def _until(cols: dict, sc: Scenario):
    return per_point(cols, "until_s", sc.until_s)


def _link_down(cols: dict, sc: Scenario):
    f = sc.faults[0]
    a = per_point(cols, "faults.0.at_s", f.at_s)
    return a, a + per_point(cols, "faults.0.for_s", np.inf if f.for_s is None else f.for_s)


def _lost_peer_fault(sc: Scenario, lost: str) -> bool:
    """The family's one fault: the path goes down (``link_down``), or the host ``lost`` crashes or
    reboots.  To the other side all three look the same until the path or the host is back."""
    f = sc.faults[0]
    return f.kind == "link_down" or (f.kind in ("host_crash", "host_reboot") and f.side == lost)


def _outage(base: Mapping, cols: dict, sc: Scenario):
    """(start, back [s], kind) of the family's fault: ``back`` is when the path (``link_down``) or the
    rebooted host (``host_reboot``: ``down_s`` later) answers again; never (inf) for ``host_crash``."""
    f = sc.faults[0]
    if f.kind == "link_down":
        a, back = _link_down(cols, sc)
    elif f.kind == "host_reboot":
        a = per_point(cols, "faults.0.at_s", f.at_s)
        back = a + per_point(cols, "faults.0.down_s", f.for_s)
    else:
        a = per_point(cols, "faults.0.at_s", f.at_s)
        back = np.asarray(np.inf)
    return a, back, f.kind


def reset_arrives(sent, h):
    """When the RST of a rebooted host reaches the sender [s]: the host has no connection any more
    and answers the first segment that reaches it (sent at ``sent``) with RST -- ``h`` (= rtt / 2)
    there, ``h`` back (docs/mechanisms.md §Host faults; measured:
    data/measured/rebooted-peer-rst.json)."""
    return sent + 2 * h


def _host_fault_death(kind: str, a):
    """The crashed or rebooted side's own fields: it dies at the fault, with no slack (``World``)."""
    return a, 0.0, by_code("host." + ("crash" if kind == "host_crash" else "reboot"))


# ---------------------------------------------------------------- keepalive

KEEPALIVE_AXES = {"client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPCNT",
                  "client.socket.TCP_USER_TIMEOUT", "client.sysctl.net.ipv4.tcp_keepalive_time",
                  "client.sysctl.net.ipv4.tcp_keepalive_intvl", "client.sysctl.net.ipv4.tcp_keepalive_probes"}
FAULT_AXES = {"faults.0.at_s", "faults.0.for_s", "faults.0.down_s"}


def _keepalive_matches(sc: Scenario, keys: set) -> bool:
    c, s = sc.client, sc.server
    if not keys <= KEEPALIVE_AXES | FAULT_AXES | {"path.rtt_ms", "until_s"}:
        return False
    if not _common(sc) or sc.traffic or sc.path.middleboxes or len(sc.faults) != 1:
        return False
    if c.app.kind != "plain" or s.app.kind != "plain":
        return False
    if not c.tcp.keepalive_enabled or s.tcp.keepalive_enabled or c.tcp.keepalive_rule != "linux":
        return False
    f = sc.faults[0]
    return f.kind == "link_down" or (f.kind in ("host_crash", "host_reboot") and f.side == "server")


def _keepalive_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """Probe ``k`` goes out at ``I + (k-1) V``; it is answered once the path is back; without an answer
    the kernel gives up by :func:`keepalive_rule`; its RST reaches the server if the link is up again;
    a rebooted server answers the first probe after it is back with RST.
    """
    hz = sc.client.hz
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, "client")
    h = _h(cols, sc)
    until = _until(cols, sc)
    f = sc.faults[0]
    a, back, _ = _outage(base, cols, sc)
    eligible = a <= idle                                      # the fault starts no later than the first probe
    if f.kind in ("host_crash", "host_reboot"):
        eligible = eligible & (a > 0)                         # (a crash at t = 0 races the start; simulate it)
    death, late, by_rule, j = keepalive_rule(idle, intvl, cnt, ut, hz)
    last_probe = ka.linux_keepalive_firing_s(idle, intvl, j - 1)   # the last probe before the death firing
    if f.kind == "host_reboot":
        # The first probe after the reboot is answered with RST (if the rule has not killed first).
        k = ka.linux_first_probe_from(back, idle, intvl)
        t_k = ka.linux_keepalive_firing_s(idle, intvl, k - 1)
        reset = ka.linux_probe_sent(k, t_k, cnt, ut, death) & np.isfinite(back)
        c_at = np.where(reset, reset_arrives(t_k, h), death)
        c_late = np.where(reset, ka.linux_keepalive_firing_late_s(idle, intvl, k - 1, hz), late)
        c_by = np.where(reset, by_code("tcp.reset_received"), by_rule)
        dies = np.asarray(True)
    elif f.kind == "host_crash":
        c_at, c_late, c_by = death, late, by_rule
        dies = np.asarray(True)
    else:
        dies = last_probe < back                               # every probe before the death went unanswered
        c_at, c_late, c_by = death, late, by_rule
    shape = np.broadcast_shapes(np.shape(dies), np.shape(c_at), np.shape(until), np.shape(back), np.shape(a))
    dies = np.broadcast_to(dies & (c_at <= until), shape)
    if f.kind in ("host_crash", "host_reboot"):
        in_run = a <= until
        host = by_code("host." + ("crash" if f.kind == "host_crash" else "reboot"))
        out = {"client": side_fields(dies, c_at, c_late, c_by, in_run, dest=dest and dest["client"]),
               "server": side_fields(in_run, a, 0.0, host, shape=shape, dest=dest and dest["server"])}
    else:
        # The client's RST reaches the server if the link is back when it is sent.
        rst_arrives = dies & (death >= back) & ((death + h) <= until)
        out = {"client": side_fields(dies, c_at, c_late, c_by, dest=dest and dest["client"]),
               "server": side_fields(rst_arrives, death + h, late, by_code("tcp.reset_received"), dies,
                                     dest=dest and dest["server"])}
    return eligible, out


KEEPALIVE = Family("keepalive", _keepalive_matches, _keepalive_block)


# ---------------------------------------------------------------- retransmission with data in flight

RETX_AXES_CLIENT = {"client.sysctl.net.ipv4.tcp_retries2", "client.socket.TCP_USER_TIMEOUT"}


def _retransmission_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= RETX_AXES_CLIENT | FAULT_AXES | {"traffic.0.at_s", "path.rtt_ms", "until_s"}:
        return False
    if not _common(sc) or sc.path.middleboxes or len(sc.faults) != 1 or not _lost_peer_fault(sc, "server"):
        return False
    if len(sc.traffic) != 1:
        return False
    tr = sc.traffic[0]
    if tr.side != "client" or tr.close or tr.every_s is not None or tr.reply_bytes:
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "plain" and s.app.kind == "plain" and not c.tcp.keepalive_enabled \
        and not s.tcp.keepalive_enabled


def _retransmission_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """The client's message at ``t`` meets the dead link (or a crashed or rebooting server): it is
    re-sent on the template's schedule from ``t``.  Once the link is back the first (re)transmission
    delivers it; once a rebooted server is back the first one is answered with RST (ECONNRESET, one
    RTT later); if none comes before the give-up, the client dies (ETIMEDOUT, no RST) and the server
    is left half open (or is dead itself).
    """
    hz = sc.client.hz
    t = per_point(cols, "traffic.0.at_s", sc.traffic[0].at_s)
    a, back, kind = _outage(base, cols, sc)
    h = _h(cols, sc)
    until = _until(cols, sc)
    shape = np.broadcast_shapes(t.shape, a.shape, back.shape, until.shape, h.shape,
                                *(c.shape for c in cols.values()))
    death, late, by, first, first_late = retx(base, cols, "client", t, back, shape)[:5]
    eligible = jiffy_aligned(t, hz) & (a <= t) & (apart(first, back))
    nan = np.full(shape, np.nan)
    if kind == "link_down":
        c_at = np.where(first < death, np.nan, death)
        return eligible, finish(c_at, late, by, nan, nan, by_code(None), until, dest)
    s_at, s_late, s_by = _host_fault_death(kind, a)
    if kind == "host_reboot":
        rst = reset_arrives(first, h)
        reset = rst < death
        eligible = eligible & (a > 0) & apart(rst, death)
        c_at, late = np.where(reset, rst, death), np.where(reset, first_late, late)
        by = np.where(reset, by_code("tcp.reset_received"), by)
    else:
        eligible = eligible & (a > 0)
        c_at = death
    return eligible, finish(c_at, late, by, np.broadcast_to(s_at, shape), s_late, s_by, until, dest)


RETRANSMISSION = Family("retransmission", _retransmission_matches, _retransmission_block)


# ---------------------------------------------------------------- ssh ServerAlive

SSH_AXES = {"client.app.options.ServerAliveInterval", "client.app.options.ServerAliveCountMax"}


def _ssh_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= SSH_AXES | RETX_AXES_CLIENT | FAULT_AXES | {"until_s"}:
        return False
    if not _common(sc) or sc.path.middleboxes or sc.traffic or len(sc.faults) != 1 \
            or not _lost_peer_fault(sc, "server"):
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "ssh" and s.app.kind == "sshd" and s.app.alive_interval_s == 0 \
        and c.monotime_phase_s == 0 and c.tcp.keepalive_rule == "linux" and s.tcp.keepalive_rule == "linux"


def _own_keepalive(base, cols, sc: Scenario, side: str, shape):
    """``side``'s own keepalive from its last segment at 0, all probes lost: (death, late, by, idle);
    infinite death and idle when keepalive is off."""
    tcp = sc.host(side).tcp
    if not tcp.keepalive_enabled:
        inf = np.full(shape, np.inf)
        return inf, np.zeros(shape), np.zeros(shape, dtype=np.uint8), inf
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, side)
    d, late, by, _ = keepalive_rule(idle, intvl, cnt, ut, sc.host(side).hz)
    return (np.broadcast_to(d, shape), np.broadcast_to(late, shape), np.broadcast_to(by, shape),
            np.broadcast_to(idle, shape))


def _orphan_boundary(host) -> int:
    return rt.orphan_retries(host.tcp.orphan_retries, True)


def _ssh_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """ServerAlive on the whole-second clock (phase 0): checks at ``I, 2I, ...``; the ``k``-th check
    sends keepalive@openssh.com, the ``(N+1)``-th kills (``(N+1) I``, latest one poll slack of ``I``
    later).  The first message (sent at ``I``) is retransmitted by the kernel on the template's
    schedule and may kill first (ETIMEDOUT).  A transient outage is survived when the first
    retransmission after the link is back brings the server's reply (one RTT later) before either.
    """
    app = sc.client.app
    i = per_point(cols, "client.app.options.ServerAliveInterval", app.alive_interval_s)
    n = per_point(cols, "client.app.options.ServerAliveCountMax", app.alive_count_max)
    a, back, kind = _outage(base, cols, sc)
    until = _until(cols, sc)
    rtt = 2 * _h(cols, sc)
    shape = np.broadcast_shapes(i.shape, n.shape, a.shape, back.shape, until.shape,
                                *(c.shape for c in cols.values()))
    poll = poll_timeout_slack_s(i)
    d_ssh = ssh_alive.server_alive_death_s(0.0, i, n)
    t0_or_i = i                                     # the first check: it sends the first message (CountMax >= 1) or kills
    d_rt, late_rt, by_rt, first, first_late, last_rt, last_before_exit = \
        retx(base, cols, "client", t0_or_i, back, shape, before=d_ssh)
    d_rt = np.where(n >= 1, d_rt, np.inf)
    # After ssh exits its FIN (behind any unacknowledged data) is re-sent by the orphan until it gives up.
    orphan = retx(base, cols, "client", t0_or_i, back, shape, retries2=_orphan_boundary(sc.client))
    d_orphan, last_orphan = orphan.death, orphan.last
    s_d, s_late, s_by, s_idle = _own_keepalive(base, cols, sc, "server", shape)
    c_idle = _own_keepalive(base, cols, sc, "client", shape)[3]

    reply = first + rtt
    survives = (n >= 1) & (reply < np.minimum(d_ssh, d_rt))
    by_ssh = d_ssh < d_rt
    c_at = np.where(by_ssh, d_ssh, d_rt)
    c_late = np.where(by_ssh, poll, late_rt + poll)
    c_by = np.where(by_ssh, by_code("ssh.server_alive"), by_rt)
    if kind != "link_down":
        # (The keepalive message leaves after a ppoll timeout: its whole schedule may be one poll slack late.)
        return _ssh_lost_server(kind, a, first, first_late + poll, rtt, n, d_ssh, d_rt, c_at, c_late, c_by,
                                (i > 0) & (a > 0) & (a <= t0_or_i) & apart(d_ssh, d_rt) & (c_idle > t0_or_i)
                                & apart(first, back), shape, until, dest)
    # The last segment the client ever sends: by ETIMEDOUT, the last retransmission; after ssh exits,
    # the orphan re-sends (FIN behind the data) on the same schedule until its own give-up -- or, if
    # that budget is already spent, dies at its next firing without sending (tcp_write_timeout:
    # tcp_orphan_retries), so the last send is the last (re)transmission before ssh exited.
    last_send = np.where(by_ssh, np.where(d_orphan > d_ssh, last_orphan, last_before_exit), last_rt)

    eligible = (i > 0) & (a <= t0_or_i) & (apart(d_ssh, d_rt)) & (c_idle > t0_or_i) \
        & (apart(reply, d_ssh)) & (apart(reply, d_rt)) & (apart(first, back))
    # Survives: the server heard nothing before the reply's trigger, so its keepalive has not started.
    ok_survive = survives & (first < s_idle)
    # Dies: the server's first probe is lost too, and once the link is back nothing may still be on
    # its way (the orphan's FIN; the server's probes, which a closed client would answer with RST).
    # If the link is back before the server's first probe and the client is gone by then, that probe
    # meets a host without the connection: RST, one RTT after the probe.
    probe_reset = np.isfinite(s_d) & (back <= s_idle) & (s_idle > last_send + TIE_S) & (s_idle > c_at + TIE_S)
    server_done = ~np.isfinite(s_d) | (back > s_d + TIE_S) | probe_reset
    # CountMax 0: ssh exits at the first check having sent nothing, and closes: its lone FIN is re-sent
    # on the template's schedule; the first send after the link is back (before the orphan gives up)
    # reaches sshd, which sees EOF rtt/2 later -- unless the server's own keepalive ended it first.
    fin_delivered = (n == 0) & np.isfinite(back) & (first < d_orphan - TIE_S) & (s_d > first + rtt / 2 + TIE_S)
    ok_die = ~survives & (a <= s_idle) & (np.isinf(back) | ((back > last_send + TIE_S) & server_done)
                                          | fin_delivered)
    eligible = eligible & (ok_survive | ok_die)
    c_at = np.where(survives, np.nan, c_at)
    s_at = np.where(survives, np.nan, np.where(fin_delivered, first + rtt / 2, np.where(probe_reset, s_idle + rtt, s_d)))
    s_late = np.where(fin_delivered, first_late + poll,
                      np.where(probe_reset, timer_slack_s_array(s_idle, sc.server.hz), s_late))
    s_by = np.where(fin_delivered, by_code("tcp.fin_received"), np.where(probe_reset, by_code("tcp.reset_received"), s_by))
    return eligible, finish(c_at, c_late, c_by, s_at, s_late, s_by, until, dest)


def _ssh_lost_server(kind, a, first, first_late, rtt, n, d_ssh, d_rt, c_at, c_late, c_by, eligible, shape, until,
                     dest):
    """ServerAlive against a server that crashed (it never answers: as a link down for good) or
    rebooted: the first keepalive message (or its retransmission) to reach the server once it is back
    is answered with RST, which ends ssh one RTT later ("Connection reset by peer") unless ServerAlive
    or the retransmission give-up came first.  With ``CountMax 0`` ssh exits at the first check."""
    if kind == "host_reboot":
        rst = reset_arrives(first, rtt / 2)
        reset = (n >= 1) & (rst < np.minimum(d_ssh, d_rt))
        eligible = eligible & apart(rst, d_ssh) & apart(rst, d_rt)
        c_at = np.where(reset, rst, c_at)
        c_late = np.where(reset, first_late, c_late)
        c_by = np.where(reset, by_code("tcp.reset_received"), c_by)
    s_at, s_late, s_by = _host_fault_death(kind, a)
    return eligible, finish(c_at, c_late, c_by, np.broadcast_to(s_at, shape), s_late, s_by, until, dest)


SSH_ALIVE = Family("ssh_alive", _ssh_matches, _ssh_block)


# ---------------------------------------------------------------- sshd ClientAlive

SSHD_AXES = {"server.app.options.ClientAliveInterval", "server.app.options.ClientAliveCountMax",
             "server.sysctl.net.ipv4.tcp_retries2"}


def _sshd_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= SSHD_AXES | {"faults.0.at_s", "faults.0.down_s", "until_s"}:
        return False
    if not _common(sc) or sc.path.middleboxes or sc.traffic or len(sc.faults) != 1:
        return False
    f = sc.faults[0]
    if not _lost_peer_fault(sc, "client") or (f.kind == "link_down" and f.for_s is not None):
        return False
    c, s = sc.client, sc.server
    client_quiet = c.app.kind == "plain" or (c.app.kind == "ssh" and c.app.alive_interval_s == 0)
    return s.app.kind == "sshd" and client_quiet and s.monotime_phase_s == 0 and c.tcp.keepalive_rule == "linux" \
        and s.tcp.keepalive_rule == "linux"


def _sshd_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """ClientAlive (phase 0, a client that went silent at 0): sshd waits a relative ``I`` each time;
    each wait may be one poll slack late and the slack adds up.  Probes from ``I`` (``2I`` for
    9.2-9.4, whose strict check skips every other timeout); death at ``(N+1) I`` (``2 (N+1) I``),
    never for ``CountMax 0`` since 8.2, at the first timeout before 8.2
    (:func:`kalab.mechanisms.sshd_alive.client_alive_death_s`).  The first probe's retransmission
    death may come first.  The link is down for good, so the client only has its own keepalive --
    or the client crashed (the same silence; it died at the fault) or rebooted: then the first probe
    (or its retransmission) to reach it once it is back is answered with RST, one RTT later.
    """
    app = sc.server.app
    v = app.version
    i = per_point(cols, "server.app.options.ClientAliveInterval", app.alive_interval_s)
    n = per_point(cols, "server.app.options.ClientAliveCountMax", app.alive_count_max)
    a, back, kind = _outage(base, cols, sc)
    until = _until(cols, sc)
    shape = np.broadcast_shapes(i.shape, n.shape, a.shape, back.shape, until.shape, *(c.shape for c in cols.values()))
    mult = sshd_alive.intervals_per_probe(v)
    poll = poll_timeout_slack_s(i)
    first_kills = sshd_alive.check_kills(0, n, v)
    # NaN where CountMax 0 never terminates (>= 8.2): no death by ClientAlive.
    d_sshd = np.nan_to_num(sshd_alive.client_alive_death_s(0.0, i, n, v), nan=np.inf)
    t0 = mult * i                                            # the first probe (none if the first check kills)
    d_rt, late_rt, by_rt, first, first_late = retx(base, cols, "server", t0, back, shape)[:5]
    d_rt = np.where(first_kills, np.inf, d_rt)
    by_sshd = d_sshd < d_rt
    s_at = np.where(by_sshd, d_sshd, d_rt)
    waits = np.where(by_sshd, d_sshd, t0) / np.where(i > 0, i, 1)
    s_late = np.where(by_sshd, waits * poll, late_rt + waits * poll)
    s_by = np.where(by_sshd, by_code("sshd.client_alive"), by_rt)
    s_idle = _own_keepalive(base, cols, sc, "server", shape)[3]
    first_event = np.where(first_kills, i, t0)
    eligible = (i > 0) & (a <= first_event) & (s_idle > first_event) & (apart(d_sshd, d_rt))
    if kind == "link_down":
        c_d, c_late, c_by, c_idle = _own_keepalive(base, cols, sc, "client", shape)
        eligible = eligible & (a <= c_idle)
        return eligible, finish(c_d, c_late, c_by, s_at, s_late, s_by, until, dest)
    if kind == "host_reboot":
        rst = reset_arrives(first, _h(cols, sc))
        reset = ~first_kills & (rst < np.minimum(d_sshd, d_rt))
        eligible = eligible & apart(first, back) & apart(rst, d_sshd) & apart(rst, d_rt)
        s_at = np.where(reset, rst, s_at)
        s_late = np.where(reset, first_late + mult * poll, s_late)     # the probe left after `mult` poll waits
        s_by = np.where(reset, by_code("tcp.reset_received"), s_by)
    c_at, c_late, c_by = _host_fault_death(kind, a)
    return eligible & (a > 0), finish(np.broadcast_to(c_at, shape), c_late, c_by, s_at, s_late, s_by, until, dest)


SSHD_ALIVE = Family("sshd_alive", _sshd_matches, _sshd_block)


# ---------------------------------------------------------------- a middlebox idle timer

def _middlebox_matches(sc: Scenario, keys: set) -> bool:
    if not keys <= KEEPALIVE_AXES | {"path.middleboxes.0.idle_timeout_s", "until_s"}:
        return False
    if not _common(sc) or sc.faults or sc.traffic or len(sc.path.middleboxes) != 1:
        return False
    c, s = sc.client, sc.server
    return c.app.kind == "plain" and s.app.kind == "plain" and c.tcp.keepalive_enabled \
        and c.tcp.keepalive_rule == "linux" and not s.tcp.keepalive_enabled


def _middlebox_block(base: Mapping, cols: dict, sc: Scenario, dest: dict | None = None):
    """The mapping is refreshed by every packet when it is sent (the handshake at 0, each probe,
    each ACK).  The first probe leaves at ``keepidle``; if the mapping has been idle for its
    timeout by then (``keepidle >= timeout``: the expiry check runs first) the probe is dropped --
    and so is every later one: death by the keepalive rule -- or answered with an RST that reaches
    the client ``rtt/2`` later.  Later gaps, from an ACK to the next probe, are at most
    ``max(keepintvl - rtt/2, keepidle + rtt/2)`` (``tcp_keepalive_timer`` re-arms ``keepintvl`` after a
    probe, then waits out ``keepidle`` since the ACK); below the timeout (with a tick to spare) the
    connection survives for good; in between the simulator decides.
    """
    hz = sc.client.hz
    box = sc.path.middleboxes[0]
    timeout = per_point(cols, "path.middleboxes.0.idle_timeout_s", box.idle_timeout_s)
    idle, intvl, cnt, ut = keepalive_settings(base, cols, sc, "client")
    h = _h(cols, sc)
    until = _until(cols, sc)
    shape = np.broadcast_shapes(timeout.shape, idle.shape, intvl.shape, cnt.shape, ut.shape, until.shape,
                                *(c.shape for c in cols.values()))
    d, late, by, j = keepalive_rule(idle, intvl, cnt, ut, hz)
    expired = mbx.expired(idle, mbx.expires_at_s(0.0, timeout))     # the first probe, at keepidle
    # After an answered probe at p the timer fires again at p + intvl and probes if the last ACK is
    # older than keepidle, else at p + rtt + keepidle: the mapping idles at most the larger, from the ACK.
    survives = np.maximum(intvl - h, idle + h) + 1 / hz < timeout - TIE_S
    if box.on_expiry == "rst":
        c_at, c_late, c_by = idle + h, timer_slack_s_array(idle, hz), by_code("middlebox.reset")
        expired = expired & (j >= 1)
    else:
        c_at, c_late, c_by = d, late, by
    eligible = np.broadcast_to(expired | survives, shape)
    nan = np.full(shape, np.nan)
    c_at = np.where(expired, c_at, np.nan)
    return eligible, finish(np.broadcast_to(c_at, shape), np.broadcast_to(c_late, shape), np.broadcast_to(c_by, shape),
                            nan, nan, by_code(None), until, dest)


MIDDLEBOX = Family("middlebox", _middlebox_matches, _middlebox_block)

FAMILIES = (KEEPALIVE, RETRANSMISSION, SSH_ALIVE, SSHD_ALIVE, MIDDLEBOX)


def family_for(sc: Scenario, keys: set) -> Family | None:
    """The first family that covers this scenario and these axes (or None: every point is simulated)."""
    for f in FAMILIES:
        if f.matches(sc, keys):
            return f
    return None
