"""What-if sweeps: the answer of :func:`kalab.simulate` over whole grids of settings.

``sweep(scenario, {"client.socket.TCP_KEEPIDLE": range(1, 3601), "faults.0.for_s": np.geomspace(1, 3600, 50)})``
returns, for every grid point, what ``simulate()`` would say for that scenario: per side the
nominal and latest time of death (NaN where the side does not die), the mechanism and the fate,
as arrays shaped like the grid (axes in the order given).

Exact by construction: a point is computed by a vectorized closed form only when it belongs to a
family whose formula is proven equal to the simulator (:mod:`kalab.families`: keepalive,
retransmission, ssh ServerAlive, sshd ClientAlive, middlebox expiry; property tests in
``tests/test_sweep.py``); every other point is simulated, with a progress bar on a terminal.

The grid is processed in chunks, so memory stays proportional to the result.
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from . import native
from .errors import ScenarioError, show
from .families import BY_CODES, FATE_CODES, family_for
from .scenario import load, split_key, with_value
from .simulate import simulate

CHUNK_POINTS = 1 << 18
#: The fallback collects the simulations' garbage cycles every this many points (about 1 ms per ~0.6 s).
GC_EVERY_POINTS = 1000
#: The progress line appears only once a sweep has run this long [s].
PROGRESS_AFTER_S = 1.0


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
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


class SweepResult:
    """Arrays shaped like the grid: ``res["client"]["at_s"]``, ``["latest_s"]``, ``["by"]``, ``["fate"]``,
    ``["timing_sensitive"]``."""

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


#: The most values one axis may have (10^8 float64 values are 800 MB before any result).
MAX_AXIS_VALUES = 10**8
#: The most values an axis of non-numbers (choices such as ``client.os``) may have: each is loaded.
MAX_CHOICE_VALUES = 1000
#: The most grid points of any sweep (flat indices are int64).
MAX_POINTS = 2**62


def _axis_length(key: str, values: Any) -> int | None:
    """How many values an axis has, exactly and without materialising it (None for an iterator,
    which is read up to the limit).  Refuses what is not a one-dimensional sequence of values."""
    if values is None or isinstance(values, (str, bytes, Mapping, set, frozenset)) or np.isscalar(values) \
            or not (hasattr(values, "__iter__") or hasattr(values, "__getitem__")):
        raise ScenarioError(key, f"an axis is a list, range or 1-D array of values, got {type(values).__name__} "
                                 f"{show(values)}", value=values, hint="e.g. {'client.socket.TCP_KEEPIDLE': range(1, 3601)}")
    if isinstance(values, range):
        step = values.step
        n = (values.stop - values.start + step - (1 if step > 0 else -1)) // step   # (len() overflows past 2^63)
        return max(0, n)
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ScenarioError(key, f"an axis is one-dimensional, got an array of shape {values.shape}",
                                value=None)
        return int(values.shape[0])
    try:
        return len(values)
    except (TypeError, OverflowError):
        return None


def _axes(base: Mapping, axes: Mapping[str, Iterable], check_size=None, max_points: int = MAX_POINTS) -> list[Axis]:
    """The axes as arrays, each key and value checked.  Sizes first: the grid's point count is the
    product of the axes' lengths, computed with Python's exact integers before any axis is turned
    into an array (``range(1, 10**8 + 1)`` is refused in microseconds, and four axes of 65,536 values
    are 2^64 points, not an int64 that wrapped to 0)."""
    lengths: dict[str, int | None] = {}
    for key, values in axes.items():
        if not isinstance(key, str):
            raise ScenarioError(show(key), "axis keys are dotted scenario keys, e.g. 'client.socket.TCP_KEEPIDLE'",
                                value=key)
        n = lengths[key] = _axis_length(key, values)
        if n is not None and n > MAX_AXIS_VALUES:
            raise ScenarioError(key, f"an axis of {n:,} values is too long", allowed=f"at most {MAX_AXIS_VALUES:,}")
        if n == 0:
            raise ScenarioError(key, "an axis needs a non-empty, one-dimensional range of values", value=None)
    # Axes given as iterators (no len()) count as 1 here, and are read below only as far as the
    # budget left by the others allows.
    known = math.prod(n for n in lengths.values() if n is not None)
    if check_size is not None:
        check_size(tuple(1 if n is None else n for n in lengths.values()))
    # The keys, with each axis's first and last values, before any axis is materialised: a wrong
    # key, or a range past the key's limit, is refused at once whatever the axis's length.
    for end in (0, -1):
        point = base
        for key, values in axes.items():
            if lengths[key] and isinstance(values, (range, np.ndarray, list, tuple)) and getattr(values, "ndim", 1) == 1:
                v = values[end]
                point = with_value(point, key, v.item() if hasattr(v, "item") else v)
        load(point)
    out, checks = [], {}
    for key, values in axes.items():
        if isinstance(values, np.ndarray):
            vals = values
        elif isinstance(values, range) and -2**62 < values.start < 2**62 and -2**62 < values.stop < 2**62 \
                and abs(values.step) < 2**62:
            vals = np.arange(values.start, values.stop, values.step, dtype=np.int64)
        else:
            most = MAX_AXIS_VALUES if lengths[key] is not None else min(MAX_AXIS_VALUES, max_points // max(known, 1))
            items = list(itertools.islice(iter(values), most + 1))
            if len(items) > most:
                if check_size is not None and lengths[key] is None:
                    check_size(tuple(len(items) if k == key else (1 if n is None else n) for k, n in lengths.items()))
                raise ScenarioError(key, f"an axis of more than {most:,} values is too long",
                                    allowed=f"at most {most:,}")
            try:
                vals = np.asarray(items)
            except (ValueError, TypeError, OverflowError) as e:    # ragged lists, mixed objects
                vals = np.empty(len(items), dtype=object)
                try:
                    vals[:] = items
                except (ValueError, TypeError):
                    raise ScenarioError(key, f"cannot make a one-dimensional axis of {show(items)}: {e}",
                                        value=None) from None
        if vals.ndim != 1 or vals.size == 0:
            raise ScenarioError(key, "an axis needs a non-empty, one-dimensional range of values",
                                value=None, hint=f"got {show(vals.tolist() if vals.size < 10 else vals[:5].tolist())}")
        if vals.dtype.kind not in "iufb" and vals.size > MAX_CHOICE_VALUES:
            raise ScenarioError(key, f"an axis of {vals.size:,} non-numeric values (each is loaded to check it) "
                                     "is too long", allowed=f"at most {MAX_CHOICE_VALUES:,} such values")
        checks[key] = _values_to_check(key, vals)
        out.append(Axis(key, vals, _unit_of(key)))
    # The values must make valid scenarios -- the same errors as a scenario file, naming the key.
    # Grid points are loaded with every axis at its k-th value to check at once (the smallest values
    # together, then the largest, ...): a few loads for the whole grid, and each one a real point.
    for k in range(max(len(c) for c in checks.values())):
        point = base
        for key, c in checks.items():
            v = c[min(k, len(c) - 1)]
            point = with_value(point, key, v.item() if hasattr(v, "item") else v)
        load(point)
    return out


#: Numeric keys whose valid values are a set, not a range: every value is checked.
CHOICE_KEYS = ("hz",)


def _values_to_check(key: str, vals: np.ndarray) -> np.ndarray:
    """Which axis values must be loaded to know that all are valid.

    A numeric setting's valid values form a range -- of whole numbers where the kernel wants them
    (``validate.number``) -- so the smallest, the largest and the first fractional value settle it
    (NaN sorts last, so it is checked too).  Choices (``hz``) and non-numeric values: each distinct one.
    """
    if vals.dtype.kind not in "iuf" or str(split_key(key)[-1]) in CHOICE_KEYS:
        if vals.dtype.kind in "iuf":
            return np.unique(vals)
        if vals.dtype.kind == "O":
            return vals
        return np.unique(vals)
    # Linear, not a sort (np.unique of 10^8 values took seconds): the extremes, the smallest
    # fractional value, and NaN if there is one.
    if vals.dtype.kind in "iu":
        return np.unique(np.array([vals.min(), vals.max()]))
    nan = np.isnan(vals)
    finite_or_inf = vals[~nan] if nan.any() else vals
    picks = [finite_or_inf.min(), finite_or_inf.max()] if finite_or_inf.size else []
    frac = finite_or_inf[np.isfinite(finite_or_inf) & (finite_or_inf != np.round(finite_or_inf))]
    if frac.size:
        picks.append(frac.min())
    if nan.any():
        picks.append(np.nan)
    return np.unique(np.array(picks, dtype=vals.dtype))


# ---------------------------------------------------------------- the sweep

def _simulate_point(base: Mapping, axes: list[Axis], idx: tuple[int, ...]) -> dict:
    sc = base
    for ax, i in zip(axes, idx):
        v = ax.values[i]
        sc = with_value(sc, ax.key, v.item() if hasattr(v, "item") else v)
    r = simulate(sc)
    return {side: r.side(side) for side in ("client", "server")}


#: Each side's result arrays and their types: the nominal time of death and its latest, the
#: mechanism and the fate (codes), and whether timing decides the outcome (kalab.timing).
FIELDS = {"at_s": np.float64, "latest_s": np.float64, "by": np.uint8, "fate": np.uint8, "timing_sensitive": np.bool_}


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


#: Result bytes per grid point: both sides' at_s, latest_s (float64), by, fate (uint8), timing_sensitive (bool).
BYTES_PER_POINT = 2 * sum(np.dtype(dt).itemsize for dt in FIELDS.values())
#: The largest result kept in memory (the issue's budget); beyond it, ``out=DIR`` is required.
MAX_RESULT_BYTES = 1 << 30


def _check_arguments(scenario, axes, progress, chunk_points, out, max_result_bytes) -> dict:
    """Every argument of :func:`sweep` checked before any work: a ScenarioError naming the argument."""
    from .scenario import Scenario
    if isinstance(scenario, Scenario):
        base = scenario.source
    elif isinstance(scenario, Mapping):
        base = dict(scenario)
    else:
        raise ScenarioError("scenario", f"must be a scenario dict (or a loaded Scenario), got "
                                        f"{type(scenario).__name__} {show(scenario)}", value=scenario)
    if not isinstance(axes, Mapping):
        raise ScenarioError("axes", f"must be a dict of dotted keys to values, got {type(axes).__name__} {show(axes)}",
                            value=axes, hint="e.g. {'client.socket.TCP_KEEPIDLE': range(1, 3601)}")
    if not axes:
        raise ScenarioError("axes", "needs at least one axis", value=axes,
                            hint="e.g. {'client.socket.TCP_KEEPIDLE': range(1, 3601)}")
    if progress is not None and not isinstance(progress, bool):
        raise ScenarioError("progress", f"must be True, False or None, got {show(progress)}", value=progress)
    for name, v, lo in (("chunk_points", chunk_points, 1), ("max_result_bytes", max_result_bytes, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= 2**62:
            raise ScenarioError(name, f"must be a whole number, got {show(v)}", value=v, allowed=f"{lo}..2^62")
    if out is not None:
        import os
        if not isinstance(out, (str, os.PathLike)):
            raise ScenarioError("out", f"must be a directory path, got {type(out).__name__} {show(out)}", value=out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise ScenarioError("out", f"{show(str(out))} exists and is not a directory", value=out,
                                hint="give a new or an existing directory")
    return base


def _disk_points(out) -> int:
    """How many grid points' results fit in the free space where ``out`` is (or would be made)."""
    import os
    import shutil
    p = os.path.abspath(out)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    try:
        return shutil.disk_usage(p).free // BYTES_PER_POINT
    except OSError:
        return MAX_POINTS


def sweep(scenario: Mapping, axes: Mapping[str, Iterable], *, progress: bool | None = None,
          chunk_points: int = CHUNK_POINTS, out: str | None = None,
          max_result_bytes: int = MAX_RESULT_BYTES) -> SweepResult:
    """Answer ``scenario`` at every point of the grid ``axes`` (keys -> values), exactly as simulate() would.

    ``out``: a directory; the result arrays are then written there (``client.at_s.npy`` ...) slab by
    slab and returned memory-mapped, so memory stays bounded for any grid size (10^8 points and more).
    Without it the result is held in memory (38 bytes per point); a grid whose result would exceed
    ``max_result_bytes`` (1 GiB: about 3 x 10^7 points) is refused before anything is allocated.
    """
    base = _check_arguments(scenario, axes, progress, chunk_points, out, max_result_bytes)
    load(base)

    def check_size(shape: tuple[int, ...]) -> None:
        """Refuse a grid too big, from its shape alone (exact integers: no int64 wrap-around)."""
        total = math.prod(shape)
        grid = f"a {' x '.join(f'{n:,}' for n in shape)} grid ({total:,} points)"
        if total > MAX_POINTS:
            raise ScenarioError("axes", f"{grid} is too big", allowed=f"at most {MAX_POINTS:,} points")
        need = total * BYTES_PER_POINT
        if out is None and need > max_result_bytes:
            raise ScenarioError("axes", f"{grid} needs {need / 2**30:,.1f} GiB for its result in memory (limit "
                                f"{max_result_bytes / 2**30:.1f} GiB): pass out=DIR to write it to disk slab by slab "
                                "(bounded memory, memory-mapped result), or raise max_result_bytes")
        if out is not None and total > _disk_points(out):
            raise ScenarioError("out", f"{grid} needs {need / 2**30:,.1f} GiB on disk, more than is free there",
                                value=out)

    ax = _axes(base, axes, check_size, max_result_bytes // BYTES_PER_POINT if out is None
               else min(MAX_POINTS, _disk_points(out)))
    shape = tuple(len(a.values) for a in ax)
    check_size(shape)                      # (again: an axis given as an iterator is known only now)
    total = math.prod(shape)
    disk = None
    if out is not None:
        import os
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise ScenarioError("out", f"cannot make the directory {show(str(out))}: {e.strerror or e}",
                                value=out) from None
        disk = {side: {f: _DiskArray(os.path.join(out, f"{side}.{f}.npy"), shape, dt) for f, dt in FIELDS.items()}
                for side in ("client", "server")}
        data = None
    else:
        # Every point is written, by a family or by the fallback: no need to fill.
        data = {side: {f: np.empty(shape, dtype=dt) for f, dt in FIELDS.items()} for side in ("client", "server")}
    sc = load(base)
    family = family_for(sc, {a.key for a in ax})
    n_simulated = 0
    t_simulate = 0.0
    # A progress line on a terminal or in a notebook (ipykernel), but only for a sweep that has run
    # a second already: quick sweeps stay quiet.  progress=True/False forces it on or off.
    show = progress if progress is not None else (sys.stderr.isatty() or "ipykernel" in sys.modules)
    quiet_until = time.perf_counter() + (0.0 if progress else PROGRESS_AFTER_S)
    shown = {"at": 0.0, "grid_done": 0, "any": False}

    def report(grid_done: int, final: bool = False) -> None:
        """The progress line (stderr), at most five times a second."""
        now = time.perf_counter()
        if not show:
            return
        if final:
            if not (shown["any"] or progress):   # a quick sweep showed nothing: no closing line either
                return
        elif now < quiet_until or now - shown["at"] <= 0.2:
            return
        shown["at"], shown["any"] = now, True
        print(f"\rsweep: {grid_done:,}/{total:,} grid points, {n_simulated:,} simulated outside the vectorized "
              "families", end="\n" if final else "", file=sys.stderr, flush=True)

    def simulate_points(points) -> None:
        """Simulate the grid points ``points`` (an iterable of index tuples), writing each result at
        once: nothing is collected, so memory stays bounded however many points fall outside a family."""
        nonlocal n_simulated, t_simulate
        t = time.perf_counter()
        for f in points:
            res = _simulate_point(base, ax, f)
            for side, r in res.items():
                vals = {"at_s": np.nan if r.at_s is None else r.at_s,
                        "latest_s": np.nan if r.latest_s is None else r.latest_s,
                        "by": BY_CODES.index(r.by), "fate": FATE_CODES.index(r.fate),
                        "timing_sensitive": r.timing_sensitive}
                for field, v in vals.items():
                    if disk is not None:
                        disk[side][field].write_flat(int(np.ravel_multi_index(f, shape)), np.asarray([v]))
                    else:
                        data[side][field][f] = v
            n_simulated += 1
            if n_simulated % GC_EVERY_POINTS == 0:
                # A simulation leaves reference cycles (the world and its endpoints); collected only
                # by a full collection, which Python defers in proportion to the heap.  Collect them
                # here so the fallback's memory stays flat however many points it simulates.
                gc.collect()
            if not family:                      # (with a family, whole blocks are counted below)
                shown["grid_done"] += 1
            report(shown["grid_done"])
        t_simulate += time.perf_counter() - t

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
            # In memory the family writes straight into the result (ineligible points too: the
            # fallback below overwrites them); on disk it returns the block and it is written out.
            dest = None if disk is not None else {side: {f: data[side][f][sl] for f in FIELDS}
                                                  for side in ("client", "server")}
            with np.errstate(invalid="ignore"):        # inf - inf where a side never acts
                ok, res = family.block(base, cols, sc, dest)
            ok = np.broadcast_to(ok, block)
            for side in ("client", "server"):
                for field in FIELDS:
                    if disk is not None:
                        disk[side][field].write_flat(r0 * (total // shape[0]),
                                                     np.broadcast_to(res[side][field], block).ravel())
                    elif res[side][field] is not dest[side][field]:
                        np.copyto(dest[side][field], res[side][field])
            if not ok.all():
                # This block's ineligible points, simulated now (after the block is written).
                simulate_points((int(i[0]) + r0, *map(int, i[1:])) for i in np.argwhere(~ok))
            shown["grid_done"] += int(np.prod(block))
            report(shown["grid_done"])
    else:
        simulate_points(np.ndindex(*shape))
    if n_simulated:
        report(total, final=True)
    if disk is not None:
        data = {side: {f: d.close() for f, d in fields.items()} for side, fields in disk.items()}
    stats = {"family": family.name if family else None, "points": total, "vectorized": total - n_simulated,
             "simulated": n_simulated, "vectorized_s": time.perf_counter() - t0 - t_simulate, "simulated_s": t_simulate}
    return SweepResult(ax, data, stats)
