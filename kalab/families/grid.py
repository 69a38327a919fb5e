"""What every sweep family shares: the block's values, the ``by``/``fate`` codes, a side's fields.

A family (:class:`Family`) sees a *block* of the grid: ``cols``, each swept key's values shaped to
broadcast over the block, beside the base scenario -- as a dict (``base``) and loaded
(:class:`~kalab.scenario.Scenario`).  Every value a family reads comes from here: an axis, or the
value the loader made of the scenario (:func:`per_point`, :func:`tcp_setting`), never the raw
dict.  Its answer, per side, is four arrays (:func:`side_fields`, :func:`finish`): ``fate`` and
``by`` as small codes (:data:`FATE_CODES`, :data:`BY_CODES`), ``at_s`` and ``latest_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .. import native
from ..result import BY, FATES
from ..scenario import Scenario, path_rtt_s, split_key

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


ALIVE, DIED, HALF_OPEN = fate_code("alive"), fate_code("died"), fate_code("half_open")
assert (ALIVE, DIED, HALF_OPEN) == (0, 1, 2)       # side_fields builds fates arithmetically from these


def clear_of(t, latest, deadline):
    """The window ``[t, latest]`` (when a timer-driven event may really happen) does not contain
    ``deadline`` (a fixed instant, or another host's event), with :data:`TIE_S` to spare: the two
    keep their order at every timing corner (:mod:`kalab.timing`).  NaN or infinite: never happens,
    clear."""
    t, latest, deadline = (np.asarray(x, dtype=float) for x in (t, latest, deadline))
    with np.errstate(invalid="ignore"):
        return ~((deadline >= t - TIE_S) & (deadline <= latest + TIE_S))


def windows_apart(t1, latest1, t2, latest2):
    """Two events' windows ``[t, latest]`` do not overlap (with :data:`TIE_S` to spare): no timing
    corner swaps them."""
    t1, latest1, t2, latest2 = (np.asarray(x, dtype=float) for x in (t1, latest1, t2, latest2))
    with np.errstate(invalid="ignore"):
        return ~((t1 <= latest2 + TIE_S) & (t2 <= latest1 + TIE_S))


def side_fields(dies, at, late, by, half_open=None, shape=None, dest: dict | None = None, sensitive=None) -> dict:
    """One side's fields from ``dies`` (full-block mask) and the death's time, lateness and cause
    (any broadcastable shape), and ``sensitive`` (timing_sensitive; False if not given).  With ``dest`` (the block's slices of the result arrays) the
    fields are written there directly.

    Few passes over the block, each over contiguous arrays where it can be (a ufunc with a broadcast
    operand runs its inner loop over the last axis only, often a few values; a copy does not): the
    death's time and lateness are *copied* into the result, NaN comes in as ``+ -(0/dies)`` (-0 where
    the side dies, NaN elsewhere; ``np.where`` costs more than both passes), the latest time as
    ``late + at_s`` (the same sum as ``at + late``, and NaN where ``at_s`` is), codes as ``mask * code``.
    """
    dies = np.broadcast_to(dies, shape) if shape is not None else np.asarray(dies)
    full = np.broadcast_shapes(dies.shape, np.shape(at), np.shape(late), np.shape(by))
    dies = np.broadcast_to(dies, full)
    dest = dest or {}
    d8 = dies.view(np.uint8)
    at_s, latest = dest.get("at_s"), dest.get("latest_s")
    at_s = np.empty(full) if at_s is None else at_s
    latest = np.empty(full) if latest is None else latest
    np.copyto(at_s, at)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(0.0, d8, out=latest)                      # (latest_s holds 0/NaN for a moment: no temporary)
    # 0/0 is the processor's default NaN, whose sign bit is set on x86: negated, it is np.nan's bits,
    # the NaN a simulated point holds (and -0.0 where the side dies adds nothing to ``at``).
    np.negative(latest, out=latest)
    np.add(at_s, latest, out=at_s)
    np.copyto(latest, late)
    np.add(latest, at_s, out=latest)
    by8 = dest.get("by")
    by8 = np.empty(full, dtype=np.uint8) if by8 is None else by8
    if np.ndim(by) == 0:
        np.multiply(d8, np.uint8(by), out=by8)
    else:
        np.copyto(by8, by, casting="unsafe")
        np.multiply(by8, d8, out=by8)
    fate = dest.get("fate")
    fate = np.empty(full, dtype=np.uint8) if fate is None else fate
    np.copyto(fate, d8)
    if half_open is not None:
        fate += HALF_OPEN * (np.broadcast_to(half_open, full) & ~dies).view(np.uint8)
    # timing_sensitive: what the family knows (``sensitive``); a family leaves to the simulator every
    # point where it cannot tell, so elsewhere it is False.
    ts = dest.get("timing_sensitive")
    ts = np.empty(full, dtype=bool) if ts is None else ts
    np.copyto(ts, False if sensitive is None else sensitive)
    return {"at_s": at_s, "latest_s": latest, "by": by8, "fate": fate, "timing_sensitive": ts}


def versus(fn, *values):
    """``fn(*values)``: masks over the block from ``values`` that broadcast over it, the last of which
    (the *pivot*: an outage's end, say) varies along a few axes only -- computed with the pivot's axes
    moved outermost and returned in the block's layout, C-contiguous.

    The same booleans as ``fn(*values)`` (only the memory order of the work differs).  Why: a ufunc
    over a broadcast block runs its inner loop along the last axis; when the pivot varies there, over
    a few values, every comparison is ~10^5 loops of ~10 elements.  Moved outermost, the other
    operands' axes make one long contiguous inner loop, and one transposing copy per mask puts the
    result back.  Used only when the pivot's axes are the innermost ones (else ``fn`` as it is).

    >>> a, b = np.arange(6.0).reshape(3, 2, 1), np.array([1.5, 3.5, 9.0])
    >>> (versus(lambda x, y: (x < y,), a, b)[0] == (a < b)).all()
    np.True_
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    nd = len(shape)
    pivot = (1,) * (nd - np.ndim(values[-1])) + np.shape(values[-1])
    lead = [i for i in range(nd) if pivot[i] > 1]
    if not lead or lead == list(range(len(lead))) or math.prod(shape) < 4096:
        return tuple(np.broadcast_to(m, shape) for m in fn(*values))
    to = list(range(len(lead)))

    def moved(v):
        v = np.asarray(v)
        return np.moveaxis(v.reshape((1,) * (nd - v.ndim) + v.shape), lead, to)

    moved_shape = tuple(shape[i] for i in lead) + tuple(n for i, n in enumerate(shape) if i not in lead)
    out = []
    for m in fn(*(moved(v) for v in values)):
        mask = np.empty(shape, dtype=bool)
        np.copyto(mask, np.moveaxis(np.broadcast_to(m, moved_shape), to, lead))
        out.append(mask)
    return tuple(out)


def where_also(mask, cond):
    """``mask & cond``, without the pass over the block when ``cond`` (often of a few values: the run
    is long enough everywhere) holds everywhere.

    >>> where_also(np.array([True, False]), np.array(True))
    array([ True, False])
    """
    return mask if np.all(cond) else mask & cond


def finish(c_at, c_late, c_by, s_at, s_late, s_by, until, dest: dict | None = None, sensitive=None) -> dict:
    """Per-side fields of two sides that die independently (NaN: does not die) within ``until``.

    A side that dies after ``until`` is alive; a living side whose peer died is half open
    (``kalab.record.Record.result``).
    """
    shape = np.broadcast_shapes(np.shape(c_at), np.shape(s_at), np.shape(until))
    with np.errstate(invalid="ignore"):
        c_dies = np.broadcast_to(np.isfinite(c_at) & (c_at <= until), shape)
        s_dies = np.broadcast_to(np.isfinite(s_at) & (s_at <= until), shape)
    dest = dest or {}
    sens = sensitive or {}
    return {"client": side_fields(c_dies, np.where(c_dies, c_at, 0.0), c_late, c_by, s_dies, dest=dest.get("client"),
                                  sensitive=sens.get("client")),
            "server": side_fields(s_dies, np.where(s_dies, s_at, 0.0), s_late, s_by, c_dies, dest=dest.get("server"),
                                  sensitive=sens.get("server"))}


#: The fault keys a family may sweep (its one fault: ``faults.0``).
FAULT_AXES = {"faults.0.at_s", "faults.0.for_s", "faults.0.down_s"}


def apart(x, y):
    """Not within ``TIE_S`` of each other (two infinities are apart: neither happens)."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)) <= TIE_S)


def jiffy_aligned(t, hz: int):
    """``t`` [s] on a tick boundary (within 1e-6 tick)."""
    return np.abs(np.asarray(t, dtype=float) * hz - np.round(np.asarray(t, dtype=float) * hz)) < 1e-6


def linux_established(sc: Scenario) -> bool:
    """Both hosts Linux with the Linux retransmission rule, the connection established at t = 0, and
    none of the server's idle hangups set (sshd's ChannelTimeout/UnusedConnectionTimeout, the shell's
    TMOUT, logind: no family knows them, so such points are simulated)."""
    return sc.start == "established" and sc.client.os == "linux" and sc.server.os == "linux" \
        and sc.client.tcp.retransmit_rule == "linux" and sc.server.tcp.retransmit_rule == "linux" \
        and not idle_hangups_set(sc)


def idle_hangups_set(sc: Scenario) -> bool:
    """Does the server run an idle timer of issue 15 (kalab.mechanisms.sshd_idle, shell_tmout, logind_idle)?"""
    app = sc.server.app
    return bool(app.channel_timeouts or app.unused_connection_timeout_s or sc.server.logind_stop_idle_s
                or (app.shell is not None and app.shell.tmout_s) or sc.client.app.session_type == "none")


def one_way_s(cols: dict, sc: Scenario):
    """Half the path's round-trip time [s], the one-way delay (``World.one_way_s``)."""
    r = cols.get("path.rtt_ms")
    return np.asarray(sc.path.rtt_s if r is None else path_rtt_s(np.asarray(r, dtype=float)), dtype=float) / 2


def run_until_s(cols: dict, sc: Scenario):
    """``until_s`` over the block [s]."""
    return per_point(cols, "until_s", sc.until_s)


def link_down(cols: dict, sc: Scenario):
    """(start, end [s]; inf: for good) of the family's ``link_down``."""
    f = sc.faults[0]
    a = per_point(cols, "faults.0.at_s", f.at_s)
    return a, a + per_point(cols, "faults.0.for_s", np.inf if f.for_s is None else f.for_s)


def lost_peer_fault(sc: Scenario, lost: str) -> bool:
    """The family's one fault: the path goes down (``link_down``), or the host ``lost`` crashes or
    reboots.  To the other side all three look the same until the path or the host is back."""
    f = sc.faults[0]
    return f.kind == "link_down" or (f.kind in ("host_crash", "host_reboot") and f.side == lost)


def outage(cols: dict, sc: Scenario):
    """(start, back [s], kind) of the family's fault: ``back`` is when the path (``link_down``) or the
    rebooted host (``host_reboot``: ``down_s`` later) answers again; never (inf) for ``host_crash``."""
    f = sc.faults[0]
    if f.kind == "link_down":
        a, back = link_down(cols, sc)
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


def host_fault_death(kind: str, a):
    """The crashed or rebooted side's own fields: it dies at the fault, with no slack (``World``)."""
    return a, 0.0, by_code("host." + ("crash" if kind == "host_crash" else "reboot"))
