"""What-if sweeps: the answer of :func:`kalab.simulate` over whole grids of settings.

``sweep(scenario, {"client.socket.TCP_KEEPIDLE": range(1, 3601), "faults.0.for_s": np.geomspace(1, 3600, 50)})``
returns, for every grid point, what ``simulate()`` would say for that scenario: per side the
nominal and latest time of death (NaN where the side does not die), the mechanism and the fate,
as arrays shaped like the grid (axes in the order given).

Exact by construction: a point is computed by a vectorized closed form only when it belongs to a
family whose formula is proven equal to the simulator (property test
``tests/test_sweep.py``); every other point is simulated.  Families so far:

* **keepalive** -- client with Linux keepalive (and ``TCP_USER_TIMEOUT``), plain programs, an
  idle connection, the server without keepalive, no middlebox, and one fault that starts no
  later than the first probe: ``link_down`` (transient or permanent), ``host_crash`` or
  ``host_reboot`` of the server.  Probe ``k`` goes out at ``I + (k-1) V``; it is answered once
  the path is back; without an answer the kernel gives up at ``I + N V`` (or, with
  ``TCP_USER_TIMEOUT``, at ``I + V max(1, ceil((UT - I) / V)))``; the RST it sends reaches the
  server if the link is up again; a rebooted server answers the first probe with RST.
  Lateness: ``granularity(I) + j granularity(V)`` after ``j`` probe intervals
  (:mod:`kalab.slack`).

The grid is processed in chunks, so memory stays proportional to the result.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from . import native
from .errors import ScenarioError
from .mechanisms import tcp_keepalive as ka
from .result import BY, FATES
from .scenario import load, split_key, with_value
from .simulate import simulate
from .slack import timer_slack_s_array

BY_CODES = [None] + sorted(BY)
FATE_CODES = list(FATES)
CHUNK_POINTS = 1 << 18


@dataclass(frozen=True)
class Axis:
    key: str
    values: np.ndarray
    unit: str


class SideView(Mapping):
    """One side's fields; ``by`` and ``fate`` are decoded to names only when asked for (big grids)."""

    def __init__(self, d: dict) -> None:
        self._d = d

    def __getitem__(self, field: str) -> np.ndarray:
        if field == "by":
            return np.asarray(BY_CODES, dtype=object)[self._d["by"]]
        if field == "fate":
            return np.asarray(FATE_CODES, dtype=object)[self._d["fate"]]
        return self._d[field]

    def __iter__(self):
        return iter(("at_s", "latest_s", "by", "fate"))

    def __len__(self) -> int:
        return 4


class SweepResult:
    """Arrays shaped like the grid: ``res["client"]["at_s"]``, ``["latest_s"]``, ``["by"]``, ``["fate"]``."""

    def __init__(self, axes: list[Axis], data: dict, stats: dict) -> None:
        self.axes = tuple(axes)
        self.shape = tuple(len(a.values) for a in axes)
        self._data = data
        self.stats = stats

    def __getitem__(self, side: str) -> "SideView":
        return SideView(self._data[side])

    def axis(self, key: str) -> Axis:
        for a in self.axes:
            if a.key == key:
                return a
        raise KeyError(f"{key} is not an axis of this sweep: {[a.key for a in self.axes]}")

    def select(self, side: str, field: str, keep: list[str], fixed: Mapping[str, Any] | None = None) -> np.ndarray:
        """The ``field`` of ``side`` over the axes ``keep`` (in that order); other axes held at ``fixed``
        values (the nearest grid value; the first value when not given)."""
        arr = self[side][field]
        fixed = dict(fixed or {})
        index: list[Any] = []
        for a in self.axes:
            if a.key in keep:
                index.append(slice(None))
            else:
                v = fixed.get(a.key, a.values[0])
                index.append(int(np.argmin(np.abs(a.values.astype(float) - float(v)))))
        out = arr[tuple(index)]
        order = [k for k in (a.key for a in self.axes) if k in keep]
        return np.transpose(out, [order.index(k) for k in keep])

    def codes(self, side: str) -> dict[str, np.ndarray]:
        """The compact form: ``by`` and ``fate`` as small integer codes (see ``BY_CODES``/``FATE_CODES``)."""
        return self._data[side]

    def to_pandas(self):
        """A long-form DataFrame, one row per point (pandas is optional, not a dependency)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas (pip install pandas)") from None
        grids = np.meshgrid(*[a.values for a in self.axes], indexing="ij")
        cols = {a.key: g.ravel() for a, g in zip(self.axes, grids)}
        for side in ("client", "server"):
            for field, arr in self[side].items():
                cols[f"{side}.{field}"] = arr.ravel()
        return pd.DataFrame(cols)


# ---------------------------------------------------------------- axes

def _unit_of(key: str) -> str:
    name = str(split_key(key)[-1])
    for tables in native.TABLES.values():
        for table in tables.values():
            if name in table:
                return table[name].unit
    if name.endswith("_s") or name.endswith("Interval") or name == "ConnectTimeout":
        return "s"
    if name.endswith("_ms"):
        return "ms"
    return ""


def _axes(base: Mapping, axes: Mapping[str, Iterable]) -> list[Axis]:
    out = []
    for key, values in axes.items():
        if not isinstance(key, str):
            raise ScenarioError(str(key), "axis keys are dotted scenario keys, e.g. 'client.socket.TCP_KEEPIDLE'")
        vals = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
        if vals.ndim != 1 or vals.size == 0:
            raise ScenarioError(key, "an axis needs a non-empty, one-dimensional range of values", value=list(vals[:5]))
        for v in np.unique(vals) if vals.dtype.kind in "iuf" else vals:
            # Each distinct value must make a valid scenario: the same errors as a scenario file.
            load(with_value(base, key, v.item() if hasattr(v, "item") else v))
        out.append(Axis(key, vals, _unit_of(key)))
    return out


# ---------------------------------------------------------------- the keepalive family

KA_KEYS = {"client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPCNT",
           "client.socket.TCP_USER_TIMEOUT", "client.sysctl.net.ipv4.tcp_keepalive_time",
           "client.sysctl.net.ipv4.tcp_keepalive_intvl", "client.sysctl.net.ipv4.tcp_keepalive_probes",
           "faults.0.at_s", "faults.0.for_s", "faults.0.down_s", "path.rtt_ms", "until_s"}


def _keepalive_family(base: Mapping, axes: list[Axis]) -> bool:
    """Does every point of this grid belong to the keepalive family (apart from the per-point condition)?"""
    if any(a.key not in KA_KEYS for a in axes):
        return False
    sc = load(base)
    c, s = sc.client, sc.server
    if sc.start != "established" or sc.traffic or sc.path.middleboxes or len(sc.faults) != 1:
        return False
    if c.os != "linux" or s.os != "linux" or c.app.kind != "plain" or s.app.kind != "plain":
        return False
    if not c.tcp.keepalive_enabled or s.tcp.keepalive_enabled or c.tcp.keepalive_rule != "linux":
        return False
    f = sc.faults[0]
    if f.kind == "link_down":
        return True
    return f.kind in ("host_crash", "host_reboot") and f.side == "server"


def _value(base: Mapping, key: str, cols: dict):
    """Values of a key: an axis (shaped to broadcast over the grid), else the scenario's scalar (or None)."""
    if key in cols:
        return cols[key]
    node: Any = base
    for p in split_key(key):
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _u8(code: int) -> np.uint8:
    return np.uint8(code)


def _keepalive_chunk(base: Mapping, cols: dict, hz: int):
    """Closed forms for one block of the grid; ``cols`` hold each axis shaped to broadcast.

    Returns (eligible mask, per-side field arrays), all broadcastable to the block's shape:
    per-axis quantities (slack, the effective settings) are computed once per axis value.
    """
    sc = load(base)
    t = sc.client.tcp

    def eff(sock_key, sysctl_key, default):
        v = _value(base, f"client.socket.{sock_key}", cols)
        if v is None:
            v = _value(base, f"client.sysctl.{sysctl_key}", cols)
        return np.asarray(default if v is None else v, dtype=float)

    idle = eff("TCP_KEEPIDLE", "net.ipv4.tcp_keepalive_time", t.keepalive_idle_s)
    intvl = eff("TCP_KEEPINTVL", "net.ipv4.tcp_keepalive_intvl", t.keepalive_intvl_s)
    cnt = eff("TCP_KEEPCNT", "net.ipv4.tcp_keepalive_probes", t.keepalive_count)
    ut_ms = _value(base, "client.socket.TCP_USER_TIMEOUT", cols)
    ut = np.asarray(0.0 if ut_ms is None else ut_ms, dtype=float) / 1000
    rtt_ms = _value(base, "path.rtt_ms", cols)
    h = np.asarray(1.0 if rtt_ms is None else rtt_ms, dtype=float) / 1000 / 2
    u = _value(base, "until_s", cols)
    until = np.asarray(sc.until_s if u is None else u, dtype=float)
    f = sc.faults[0]
    a = np.asarray(_value(base, "faults.0.at_s", cols), dtype=float)
    if f.kind == "link_down":
        d = _value(base, "faults.0.for_s", cols)
        d = np.asarray(np.inf if d is None else d, dtype=float)
    elif f.kind == "host_reboot":
        d = np.asarray(_value(base, "faults.0.down_s", cols), dtype=float)
    else:
        d = np.asarray(np.inf)
    back = a + d                                              # the path (or the server) answers again from here
    eligible = a <= idle                                      # the fault starts no later than the first probe
    if f.kind == "host_crash" or f.kind == "host_reboot":
        eligible = eligible & (a > 0)                         # (a crash at t = 0 races the start; simulate it)

    # Death by the rule (no answer at all): j intervals after keepidle; probes 1..j went out before it.
    j = ka.linux_keepalive_intervals(idle, intvl, cnt, ut, hz)
    death = idle + j * intvl
    last_probe = idle + (j - 1) * intvl                       # the last probe before the death firing
    slack_i = timer_slack_s_array(idle, hz)
    slack_v = timer_slack_s_array(intvl, hz)
    late = slack_i + j * slack_v
    by_rule = np.where(ut > 0, _u8(BY_CODES.index("tcp.user_timeout")), _u8(BY_CODES.index("tcp.keepalive")))
    if f.kind == "host_reboot":
        # The first probe after the reboot is answered with RST (if the rule has not killed first).
        k = np.maximum(1.0, np.ceil((back - idle) / intvl - 1e-9) + 1)      # first probe index at/after `back`
        t_k = idle + (k - 1) * intvl
        reset = ((cnt >= k) & (ut <= 0) | (ut > 0) & (t_k < death)) & np.isfinite(back)
        c_at = np.where(reset, (t_k + h) + h, death)
        c_late = np.where(reset, slack_i + (k - 1) * slack_v, late)
        c_by = np.where(reset, _u8(BY_CODES.index("tcp.reset_received")), by_rule)
        dies = np.asarray(True)
    elif f.kind == "host_crash":
        c_at, c_late, c_by = death, late, by_rule
        dies = np.asarray(True)
    else:
        dies = last_probe < back                               # every probe before the death went unanswered
        c_at, c_late, c_by = death, late, by_rule
    dies = dies & (c_at <= until)
    out = {"client": {}, "server": {}}
    cl = out["client"]
    cl["at_s"] = np.where(dies, c_at, np.nan)
    cl["latest_s"] = np.where(dies, c_at + c_late, np.nan)
    cl["by"] = np.where(dies, c_by, _u8(0))
    cl["fate"] = np.where(dies, _u8(FATE_CODES.index("died")), _u8(FATE_CODES.index("alive")))
    sv = out["server"]
    if f.kind in ("host_crash", "host_reboot"):
        in_run = a <= until
        sv["at_s"] = np.where(in_run, a, np.nan)
        sv["latest_s"] = sv["at_s"]
        sv["by"] = np.where(in_run, BY_CODES.index("host." + ("crash" if f.kind == "host_crash" else "reboot")),
                            0).astype(np.uint8)
        sv["fate"] = np.where(in_run, _u8(FATE_CODES.index("died")), _u8(FATE_CODES.index("alive")))
        cl["fate"] = np.where(~dies & in_run, FATE_CODES.index("half_open"), cl["fate"]).astype(np.uint8)
    else:
        # The client's RST reaches the server if the link is back when it is sent.
        rst_arrives = dies & (death >= back) & ((death + h) <= until)
        sv["at_s"] = np.where(rst_arrives, death + h, np.nan)
        sv["latest_s"] = np.where(rst_arrives, death + h + late, np.nan)
        sv["by"] = np.where(rst_arrives, _u8(BY_CODES.index("tcp.reset_received")), _u8(0))
        sv["fate"] = np.where(rst_arrives, FATE_CODES.index("died"),
                              np.where(dies, FATE_CODES.index("half_open"), FATE_CODES.index("alive"))).astype(np.uint8)
    return eligible, out


# ---------------------------------------------------------------- the sweep

def _simulate_point(base: Mapping, axes: list[Axis], idx: tuple[int, ...]) -> dict:
    sc = base
    for ax, i in zip(axes, idx):
        v = ax.values[i]
        sc = with_value(sc, ax.key, v.item() if hasattr(v, "item") else v)
    r = simulate(sc)
    return {side: r.side(side) for side in ("client", "server")}


FIELDS = {"at_s": np.float64, "latest_s": np.float64, "by": np.uint8, "fate": np.uint8}


class _DiskArray:
    """A result field written slab by slab into an ``.npy`` file with plain writes.

    (Writing through a memory map would keep every dirty page resident; plain writes keep the
    process's memory at one slab, whatever the grid size.)
    """

    def __init__(self, path, shape, dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        m = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
        self.offset = m.offset
        del m
        self.f = open(path, "r+b")

    def write_flat(self, start: int, values: np.ndarray) -> None:
        self.f.seek(self.offset + start * self.dtype.itemsize)
        self.f.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())

    def close(self) -> np.ndarray:
        self.f.close()
        return np.load(self.path, mmap_mode="r")


def sweep(scenario: Mapping, axes: Mapping[str, Iterable], *, progress: bool | None = None,
          chunk_points: int = CHUNK_POINTS, out: str | None = None) -> SweepResult:
    """Answer ``scenario`` at every point of the grid ``axes`` (keys -> values), exactly as simulate() would.

    ``out``: a directory; the result arrays are then written there (``client.at_s.npy`` ...) slab by
    slab and returned memory-mapped, so memory stays bounded for any grid size (10^8 points and more).
    """
    base = dict(scenario)
    load(base)
    ax = _axes(base, axes)
    shape = tuple(len(a.values) for a in ax)
    total = int(np.prod(shape, dtype=np.int64))
    disk = None
    if out is not None:
        import os
        os.makedirs(out, exist_ok=True)
        disk = {side: {f: _DiskArray(os.path.join(out, f"{side}.{f}.npy"), shape, dt) for f, dt in FIELDS.items()}
                for side in ("client", "server")}
        data = None
    else:
        data = {side: {"at_s": np.full(shape, np.nan), "latest_s": np.full(shape, np.nan),
                       "by": np.zeros(shape, dtype=np.uint8), "fate": np.zeros(shape, dtype=np.uint8)}
                for side in ("client", "server")}
    family = _keepalive_family(base, ax)
    hz = load(base).client.hz
    fallback: list[tuple[int, ...]] = []
    t0 = time.perf_counter()
    if family:
        rest = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
        rows = max(1, chunk_points // max(rest, 1))
        nd = len(shape)
        for r0 in range(0, shape[0], rows):
            sl = slice(r0, min(shape[0], r0 + rows))
            block = (sl.stop - sl.start, *shape[1:])
            cols = {}
            for j, a in enumerate(ax):
                v = a.values[sl] if j == 0 else a.values
                cols[a.key] = np.asarray(v).reshape([-1 if k == j else 1 for k in range(nd)])
            ok, res = _keepalive_chunk(base, cols, hz)
            ok = np.broadcast_to(ok, block)
            everywhere = bool(ok.all())
            for side in ("client", "server"):
                for field in FIELDS:
                    if disk is not None:
                        # Ineligible points are written too (as computed) and overwritten by the fallback.
                        disk[side][field].write_flat(r0 * (total // shape[0]),
                                                     np.broadcast_to(res[side][field], block).ravel())
                    elif everywhere:
                        data[side][field][sl] = res[side][field]
                    else:
                        np.copyto(data[side][field][sl], np.broadcast_to(res[side][field], block), where=ok)
            if not everywhere:
                for idx in np.argwhere(~ok):
                    fallback.append((int(idx[0]) + r0, *map(int, idx[1:])))
    else:
        fallback = [tuple(map(int, i)) for i in np.ndindex(*shape)]
    vectorized = total - len(fallback)
    show = progress if progress is not None else (len(fallback) > 2000 and sys.stderr.isatty())
    t1 = time.perf_counter()
    for n, f in enumerate(fallback):
        res = _simulate_point(base, ax, f)
        for side, r in res.items():
            vals = {"at_s": np.nan if r.at_s is None else r.at_s,
                    "latest_s": np.nan if r.latest_s is None else r.latest_s,
                    "by": BY_CODES.index(r.by), "fate": FATE_CODES.index(r.fate)}
            for field, v in vals.items():
                if disk is not None:
                    disk[side][field].write_flat(int(np.ravel_multi_index(f, shape)), np.asarray([v]))
                else:
                    data[side][field][f] = v
        if show and (n % 500 == 0 or n == len(fallback) - 1):
            print(f"\rsweep: simulating {n + 1}/{len(fallback)} points outside the vectorized families",
                  end="", file=sys.stderr, flush=True)
    if show and fallback:
        print(file=sys.stderr)
    if disk is not None:
        data = {side: {f: d.close() for f, d in fields.items()} for side, fields in disk.items()}
    stats = {"points": total, "vectorized": vectorized, "simulated": len(fallback),
             "vectorized_s": t1 - t0, "simulated_s": time.perf_counter() - t1}
    return SweepResult(ax, data, stats)
