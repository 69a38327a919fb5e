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
import threading
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


def shape_of(*values) -> tuple[int, ...]:
    """The shape ``values`` (arrays or numbers) broadcast to -- ``np.broadcast``'s, which builds no
    dummy arrays as ``np.broadcast_shapes`` does (a block asks a dozen times; in small blocks the
    fixed cost counts).  At most 64 values.

    >>> shape_of(np.ones((3, 1)), 2.0, np.ones(4))
    (3, 4)
    """
    return np.broadcast(*values).shape


def clear_of(t, latest, deadline, out=None, spare=None):
    """The window ``[t, latest]`` (when a timer-driven event may really happen) does not contain
    ``deadline`` (a fixed instant, or another host's event), with :data:`TIE_S` to spare: the two
    keep their order at every timing corner (:mod:`kalab.timing`).  NaN or infinite: never happens,
    clear.  ``out`` and ``spare`` as for :func:`window_holds`."""
    inside = window_holds(t, latest, deadline, out, spare)
    return np.logical_not(inside) if out is None else np.logical_not(inside, out=inside)


def window_holds(t, latest, deadline, out=None, spare=None):
    """Not :func:`clear_of`: the window ``[t, latest]`` may hold ``deadline`` (within :data:`TIE_S`).
    With ``out`` and ``spare`` (bool arrays of the broadcast shape; :func:`versus` gives them)
    nothing of that size is allocated: the answer is ``out``.  (``good & ~holds`` is one pass as
    ``np.greater(good, holds)``.)"""
    t, latest, deadline = (np.asarray(x, dtype=float) for x in (t, latest, deadline))
    # TIE_S on the deadline's side: a fixed instant, or a pivot of a few values (no array of t's size).
    with np.errstate(invalid="ignore"):
        inside = np.less_equal(t, deadline + TIE_S, out=out)
        inside &= np.greater_equal(latest, deadline - TIE_S, out=spare)
        return inside


def windows_apart(t1, latest1, t2, latest2):
    """Two events' windows ``[t, latest]`` do not overlap (with :data:`TIE_S` to spare): no timing
    corner swaps them."""
    return np.logical_not(windows_overlap(t1, latest1, t2, latest2))


def windows_overlap(t1, latest1, t2, latest2, out=None, spare=None):
    """Not :func:`windows_apart`.  ``out`` and ``spare`` as for :func:`window_holds`."""
    t1, latest1, t2, latest2 = (np.asarray(x, dtype=float) for x in (t1, latest1, t2, latest2))
    with np.errstate(invalid="ignore"):
        overlap = np.less_equal(t1, latest2 + TIE_S, out=out)
        overlap &= np.less_equal(t2, latest1 + TIE_S, out=spare)
        return overlap


#: ``np.nan``'s bits (a quiet NaN, sign bit clear): what a point the side does not die at holds.
NAN_BITS = np.array(np.nan).view(np.uint64)[()]


def side_fields(dies, at, late, by, half_open=None, shape=None, dest: dict | None = None, sensitive=None) -> dict:
    """One side's fields from ``dies`` (a mask over the block, or broadcastable to it; ``shape``: the
    block's shape, where ``dies`` and the rest do not span it) and the death's time, lateness and
    cause (any broadcastable shape), ``half_open`` (the peer gone: half open where the side lives),
    and ``sensitive`` (timing_sensitive; False if not given).  With ``dest`` (the block's slices of
    the result arrays) the fields are written there directly.

    Few passes over the block and no temporaries (a fresh array of a block's size costs its page
    faults, more than the arithmetic on it): ``fate`` first holds "lives" (``dies ^ 1``), whose
    bytes times ``np.nan``'s bits make ``latest_s`` a mask of NaN (lives) and +0.0 (dies); the
    death's time is *copied* into ``at_s`` (unless it is ``at_s``) and the mask added -- not at all
    when the side dies everywhere; the latest time is ``late + at_s`` (the same sum as ``at + late``,
    and NaN where ``at_s`` is); codes are ``mask * code``.  A NaN operand of an addition is its
    result, so every NaN written is ``np.nan``, the NaN a simulated point holds.

    A ufunc with a broadcast operand runs its inner loop over the last axis only, often a few values,
    where a copy is cheaper: so where every input varies over a fraction of the block (the settings'
    grid, with the outage innermost), the fields are worked out there and each *copied* into the
    block; and a mask that does not span the block is copied out whole once, before the passes.
    """
    block = dest["at_s"].shape if dest else shape_of(dies if shape is None else np.broadcast_to(dies, shape), at,
                                                      late, by)
    every = bool(np.asarray(dies).all())        # (on ``dies`` as given: often a few values, or one)
    small = shape_of(*(x for x in (dies, at, late, by, half_open, sensitive) if x is not None))
    if dest and not every and 4 * math.prod(small) <= math.prod(block):
        little = {f: scratch("side_fields.small." + f, small, dt) for f, dt in
                  (("at_s", float), ("latest_s", float), ("by", np.uint8), ("fate", np.uint8),
                   ("timing_sensitive", bool))}
        side_fields(dies, at, late, by, half_open, small, little, sensitive)
        for f, a in little.items():
            if f == "timing_sensitive" and sensitive is None:
                dest[f].fill(False)
            else:
                np.copyto(dest[f], a)
        return dest
    if not every and np.shape(dies) != block:
        dies = _whole("side_fields.dies", dies, block)
    if not every and half_open is not None and np.shape(half_open) != block:
        half_open = _whole("side_fields.half_open", half_open, block)
    dies = np.broadcast_to(dies, block)
    dest = dest or {}
    d8 = dies.view(np.uint8)
    at_s, latest, by8, fate, ts = (dest.get(f) for f in ("at_s", "latest_s", "by", "fate", "timing_sensitive"))
    at_s = np.empty(block) if at_s is None else at_s
    latest = np.empty(block) if latest is None else latest
    by8 = np.empty(block, dtype=np.uint8) if by8 is None else by8
    fate = np.empty(block, dtype=np.uint8) if fate is None else fate
    ts = np.empty(block, dtype=bool) if ts is None else ts
    if at is not at_s:
        np.copyto(at_s, at)
    if not every:                               # (where every point dies, no NaN to put in)
        np.bitwise_xor(d8, np.uint8(1), out=fate)           # (fate: "lives" for a moment)
        nan_or_zero = latest.view(np.uint64)
        np.copyto(nan_or_zero, fate)
        np.multiply(nan_or_zero, NAN_BITS, out=nan_or_zero)
        np.add(at_s, latest, out=at_s)
    if every and math.prod(shape_of(at, late)) < at_s.size:
        np.copyto(latest, np.add(late, at))                 # (the same sum, on the small grid)
    else:
        if late is not latest:
            np.copyto(latest, late)
        elif not every:
            raise ValueError("side_fields: late may be latest_s only where every point dies")
        np.add(latest, at_s, out=latest)
    if every:
        if by is not by8:
            np.copyto(by8, by, casting="unsafe")
        fate.fill(DIED)
    elif np.ndim(by) == 0:
        np.multiply(d8, np.uint8(by), out=by8)
    else:
        if by is not by8:
            np.copyto(by8, by, casting="unsafe")
        np.multiply(by8, d8, out=by8)
    if every:
        pass
    elif half_open is None:
        np.copyto(fate, d8)
    else:
        # died 1, half open 2 (alive, the peer gone), alive 0: 2 * (dies | half_open) - dies.
        np.bitwise_or(np.broadcast_to(half_open, block).view(np.uint8), d8, out=fate)
        np.add(fate, fate, out=fate)                        # (not a shift: numpy's are slow on bytes)
        np.subtract(fate, d8, out=fate)
    # timing_sensitive: what the family knows (``sensitive``); a family leaves to the simulator every
    # point where it cannot tell, so elsewhere it is False.
    np.copyto(ts, False if sensitive is None else sensitive)
    return {"at_s": at_s, "latest_s": latest, "by": by8, "fate": fate, "timing_sensitive": ts}


def _moved(v: np.ndarray, perm: list[int], block: tuple[int, ...], name: str) -> np.ndarray:
    """``v`` in :func:`versus`'s moved layout: a view -- or, where that view is strided and ``v`` is
    small beside the block (a quarter or less), a contiguous copy (a reused array): every pass over
    the block reads it, and a strided read costs a cache line a value."""
    m = v.transpose(perm)
    if m.flags.c_contiguous or 4 * m.size > math.prod(block):
        return m
    return _whole(name, m, m.shape, m.dtype)


def select_into(out: np.ndarray, mask, a, b, not_mask=None) -> np.ndarray:
    """``np.where(mask, a, b)`` written into ``out`` (``np.where`` would allocate an array of its
    size): a copy of one and a masked copy of the other over it.  The masked copy takes the operand
    that is the same along the last axis, where one is -- a masked copy of a value repeated along its
    inner loop runs at ~60 % the time of one that varies there (measured on 10^6 points); it then
    needs ``~mask``: ``not_mask`` where the caller has it."""
    a_flat = np.ndim(a) == 0 or np.shape(a)[-1] == 1
    b_flat = np.ndim(b) == 0 or np.shape(b)[-1] == 1
    if b_flat and not a_flat:
        np.copyto(out, a)
        np.copyto(out, b, where=np.logical_not(mask) if not_mask is None else not_mask)
    else:
        np.copyto(out, b)
        np.copyto(out, a, where=mask)
    return out


def _whole(name: str, x, shape: tuple[int, ...], dtype=bool) -> np.ndarray:
    """``x`` copied out over the whole of ``shape``, contiguous, into a :func:`scratch` array."""
    whole = scratch(name, shape, dtype)
    np.copyto(whole, x)
    return whole


#: Blocks smaller than this [points] compute :func:`versus`'s masks in their own layout: moving axes
#: costs more than it saves there.  (Tests set it to 0 to run every grid through the moved layout.)
MOVE_MIN_POINTS = 4096


#: numpy's ufunc buffer [elements] while :func:`versus`'s ``fn`` runs in the moved layout.  There the
#: inner loop is the settings' axes, often a few thousand points; below the buffer's size (8192 by
#: default) numpy 2 copies the operands through its buffers to make longer loops, which for a plain
#: comparison costs four to five times the comparison (0.45 against 0.1 ns a point, measured here).
#: A smaller buffer leaves loops of 1024 points and more unbuffered.  (``np.setbufsize`` is
#: context-local: other threads and the caller's own setting are untouched.)
MOVED_BUFSIZE = 1024


#: :func:`versus` puts its packed masks back a pivot value at a time up to this many values.
TRANSPOSE_BY_PIVOT = 16


class _Scratch(threading.local):
    """Arrays reused from one block to the next, one set a thread (:func:`scratch`)."""

    def __init__(self):
        self.buffers: dict[str, np.ndarray] = {}
        self.views: dict[tuple, np.ndarray] = {}       # (name, shape, dtype): the last few views given
        self.last: dict[str, tuple] = {}               # same_as_last: name -> (key, answer)


_scratch = _Scratch()


def scratch(name: str, shape: tuple[int, ...], dtype=bool) -> np.ndarray:
    """An array of ``shape`` for the block this thread computes, the same memory from block to block.

    Why: a fresh array of a block's size (a few hundred KiB) is a fresh ``mmap`` from the C
    allocator, and its first touch costs a page fault a 4 KiB page -- measured here, a keepalive
    block's dozen temporaries cost as much as its arithmetic.  Its contents are the caller's until
    the next call with the same ``name`` on this thread; what a family returns from one (the
    ``ok`` mask) is read by :func:`kalab.sweep._compute_block` before the next block.  In all
    proportional to a block (:data:`kalab.sweep.CHUNK_POINTS` points): up to ~80 MB a thread, which
    :func:`release` drops (a sweep ends with it).
    """
    key = (name, shape, dtype)
    view = _scratch.views.get(key)
    if view is not None and view.base is _scratch.buffers.get(name):
        return view
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    buf = _scratch.buffers.get(name)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buffers[name] = np.empty(nbytes, dtype=np.uint8)
        _scratch.views.clear()                     # (views of the old buffer)
    view = _scratch.views[key] = buf[:nbytes].view(dt).reshape(shape)
    return view


def same_as_last(name: str, key, compute):
    """``compute()`` -- or, when this thread's last call with ``name`` had an equal ``key``, that
    call's answer again.

    For what a family derives from the settings' axes alone (the keepalive rule's times over the
    block, say), keyed by those axes' values (:func:`values_key`): where the grid's outer axes are
    an outage or a run's end, block after block has the same settings, and the rule is worked out
    once a sweep, not once a block.  The answer may hold :func:`scratch` arrays: ``compute`` must be
    the only writer of their names.  :func:`forget` drops every answer (a sweep starts with it).
    """
    last = _scratch.last.get(name)
    if last is not None and last[0] == key:
        return last[1]
    answer = compute()
    _scratch.last[name] = (key, answer)
    return answer


def values_key(*values) -> tuple:
    """An exact key for :func:`same_as_last`: each value's shape and bytes (settings' axes are small)."""
    return tuple((np.shape(v), np.asarray(v, dtype=float).tobytes()) for v in values)


def forget() -> None:
    """Drop this thread's :func:`same_as_last` answers (and the arrays they hold)."""
    _scratch.last.clear()


def release() -> None:
    """Drop this thread's reused arrays (:func:`scratch`) and answers (:func:`forget`): a sweep ends
    with it, so its memory goes with it."""
    forget()
    _scratch.views.clear()
    _scratch.buffers.clear()


def versus(fn, *values, masks: int, pivots: int = 1, name: str = "versus"):
    """Masks over the block (``masks`` of them, at most 8) from ``fn(out, *values)``, which writes
    them into ``out[:masks]`` (``out[masks:]``: two spare arrays for :func:`clear_of`), computed with
    the *pivot* axes moved outermost and returned in the block's layout, C-contiguous, in
    :func:`scratch` arrays.  The pivots are the last ``pivots`` values (what the keepalive settings
    are compared against: an outage's end, the run's end, the rtt); the axes along which any of them
    varies are the pivot axes.

    The same booleans as ``fn`` on the block as it is (only the memory order of the work differs).
    Why: a ufunc over a broadcast block runs its inner loop along the last axis; when a pivot varies
    there, over a few values, every comparison is ~10^5 loops of ~10 elements, ten times slower than
    one long loop.  Moved outermost, the settings' axes make one long contiguous inner loop.  The
    masks come back as the bits of one byte a point, so putting them in the block's layout is one
    transposing copy, not one a mask; each mask is then two cheap passes over bytes.  Every array of
    the block's size is a :func:`scratch` array, named after ``name``: the masks are the caller's until
    the next call with the same ``name`` on this thread.  Used only when the pivot axes are not
    already the outermost ones (else ``fn`` on the block as it is).

    >>> a, b = np.arange(6.0).reshape(3, 2, 1), np.array([1.5, 3.5, 9.0])
    >>> (versus(lambda out, x, y: np.less(x, y, out=out[0]), a, b, masks=1)[0] == (a < b)).all()
    np.True_
    """
    assert 1 <= masks <= 8, "versus packs its masks into the bits of one byte"
    shape = shape_of(*values)
    nd = len(shape)
    values = [np.asarray(v) for v in values]
    values = [v if v.ndim == nd else v.reshape((1,) * (nd - v.ndim) + v.shape) for v in values]
    lead = sorted({i for v in values[len(values) - pivots:] for i, n in enumerate(v.shape) if n > 1})
    if not lead or lead == list(range(len(lead))) or math.prod(shape) < MOVE_MIN_POINTS:
        out = [scratch(f"{name}.{i}", shape) for i in range(masks + 2)]
        fn(out, *values)
        return tuple(out[:masks])
    # (Transposed views by one permutation: np.moveaxis checks its axes on every call, which was a
    # tenth of a small block's time.)
    perm = lead + [i for i in range(nd) if i not in lead]
    moved_shape = tuple(shape[i] for i in perm)
    work = [scratch(f"{name}.moved.{i}", moved_shape) for i in range(masks + 2)]
    old_bufsize = np.setbufsize(MOVED_BUFSIZE)
    try:
        fn(work, *(_moved(v, perm, shape, f"{name}.value.{i}") for i, v in enumerate(values)))
    finally:
        np.setbufsize(old_bufsize)
    # Pack (u8 multiplications and additions, not shifts: numpy's shifts of bytes are not vectorised,
    # ten times slower here), transpose once, unpack.
    bits, spare = (w.view(np.uint8) for w in work[masks:])
    np.copyto(bits, work[0].view(np.uint8))
    for i in range(1, masks):
        bits += np.multiply(work[i].view(np.uint8), np.uint8(1 << i), out=spare)
    packed = scratch(f"{name}.packed", shape, np.uint8)
    # The one transposing copy: a pivot value at a time where they are few (a contiguous read and a
    # strided write each; a third faster than numpy's copy, whose inner loop is then a few bytes).
    lead_shape = moved_shape[:len(lead)]
    if math.prod(lead_shape) <= TRANSPOSE_BY_PIVOT:
        at = [slice(None)] * nd
        for idx in np.ndindex(*lead_shape):
            for i, j in zip(lead, idx):
                at[i] = j
            packed[tuple(at)] = bits[idx]
    else:
        np.copyto(packed, bits.transpose(np.argsort(perm)))
    out = []
    for i in range(masks):
        mask = scratch(f"{name}.{i}", shape)
        np.bitwise_and(packed, np.uint8(1 << i), out=mask.view(np.uint8))
        out.append(np.not_equal(mask.view(np.uint8), 0, out=mask) if i else mask)
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


def reset_arrives(sent, h, out=None):
    """When the RST of a rebooted host reaches the sender [s]: the host has no connection any more
    and answers the first segment that reaches it (sent at ``sent``) with RST -- ``h`` (= rtt / 2)
    there, ``h`` back (docs/mechanisms.md §Host faults; measured:
    data/measured/rebooted-peer-rst.json).  ``out``: an array to write it into (:func:`scratch`)."""
    return sent + 2 * h if out is None else np.add(sent, 2 * h, out=out)


def host_fault_death(kind: str, a):
    """The crashed or rebooted side's own fields: it dies at the fault, with no slack (``World``)."""
    return a, 0.0, by_code("host." + ("crash" if kind == "host_crash" else "reboot"))
