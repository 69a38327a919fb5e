"""What-if sweeps: the answer of :func:`kalab.simulate` over whole grids of settings.

``sweep(scenario, {"client.socket.TCP_KEEPIDLE": range(1, 3601), "faults.0.for_s": np.geomspace(1, 3600, 50)})``
returns, for every grid point, what ``simulate()`` would say for that scenario: per side the
nominal and latest time of death (NaN where the side does not die), the mechanism and the fate,
as arrays shaped like the grid (axes in the order given).

Exact by construction: a point is computed by a vectorized closed form only when it belongs to a
family whose formula is proven equal to the simulator (:mod:`kalab.families`: keepalive,
retransmission, ssh ServerAlive, sshd ClientAlive, middlebox expiry; property tests in
``tests/test_sweep.py``); every other point is simulated, with a progress bar on a terminal.

The grid is processed in blocks, so memory stays proportional to the result.  The blocks can run
on any :class:`concurrent.futures.Executor` -- worker processes, a Dask cluster -- with the same
answer bit for bit (``executor=``); the result can be written to a Zarr store that a restarted sweep
resumes (``out="NAME.zarr"``) and read as an ``xarray.Dataset`` (:meth:`SweepResult.to_xarray`;
both in :mod:`kalab.sweepdata`, with the optional ``sweep`` extra).
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from . import native
from .errors import ScenarioError, show
from .families import BY_CODES, FATE_CODES, family_for
from .families.grid import forget, release, scratch
from .dotted import with_values
from .scenario import load, split_key, with_value
from .simulate import simulate

#: The most points in a block (a serial sweep's block; with an executor or a store, the cap).  Each
#: block of a vectorized family pays a fixed ~0.2 ms of Python and the first touch of its reused
#: arrays: measured with ``benchmarks/sweep.py --floor --orders`` (one run each), 2^20 points a block
#: put the keepalive family 1-25 % nearer its numpy floor than 2^18 on all eleven layouts (10 % the
#: median), for ~40 MB of result and at most ~80 MB of reused arrays (kalab.families.grid.scratch,
#: dropped when the sweep ends).
CHUNK_POINTS = 1 << 20
#: The fallback collects the simulations' garbage cycles every this many points (about 1 ms per ~0.6 s).
GC_EVERY_POINTS = 1000
#: The progress line appears only once a sweep has run this long [s].
PROGRESS_AFTER_S = 1.0


@dataclass(frozen=True)
class Axis:
    key: str
    values: np.ndarray
    unit: str


#: The two sides, in the order of every result.
SIDES = ("client", "server")

#: Each side's result arrays and their types: the nominal time of death and its latest, the
#: mechanism and the fate (codes), and whether timing decides the outcome (kalab.timing).  The one
#: list the blocks, the in-memory, ``.npy``, xarray and Zarr results all follow: a simulated point
#: gives each from its :class:`~kalab.result.SideResult` attribute of the same name
#: (:func:`_point_value`); a family returns each for its block.
FIELDS = {"at_s": np.float64, "latest_s": np.float64, "by": np.uint8, "fate": np.uint8, "timing_sensitive": np.bool_}

#: The fields held as small integer codes, and the name of each code.
CATEGORIES = {"by": BY_CODES, "fate": FATE_CODES}


def _decode(field: str, arr):
    """A field as the user reads it: a category's codes turned into its names (big grids: only when asked)."""
    if field in CATEGORIES:
        return np.asarray(CATEGORIES[field], dtype=object)[np.asarray(arr)]
    return arr if isinstance(arr, np.ndarray) else np.asarray(arr)


class SideView(Mapping):
    """One side's fields; ``by`` and ``fate`` are decoded to names only when asked for (big grids)."""

    def __init__(self, d: dict) -> None:
        self._d = d

    def __getitem__(self, field: str) -> np.ndarray:
        return _decode(field, self._d[field])

    def __iter__(self):
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


class SweepResult:
    """Arrays shaped like the grid: ``res["client"]["at_s"]``, ``["latest_s"]``, ``["by"]``, ``["fate"]``,
    ``["timing_sensitive"]`` (every field of :data:`FIELDS`).  ``scenario``: the base scenario swept; ``store``: the Zarr store
    it was written to, if any."""

    def __init__(self, axes: list[Axis], data: dict, stats: dict, *, scenario: Mapping | None = None,
                 store: str | None = None) -> None:
        self.axes = tuple(axes)
        self.shape = tuple(len(a.values) for a in axes)
        self._data = data
        self.stats = stats
        self.scenario = scenario
        self.store = store

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
        arr = self._data[side][field]          # (a store's field is read only where selected)
        fixed = dict(fixed or {})
        index: list[Any] = []
        for a in self.axes:
            if a.key in keep:
                index.append(slice(None))
            else:
                v = fixed.get(a.key, a.values[0])
                index.append(int(np.argmin(np.abs(a.values.astype(float) - float(v)))))
        out = _decode(field, arr[tuple(index)])
        order = [k for k in (a.key for a in self.axes) if k in keep]
        return np.transpose(out, [order.index(k) for k in keep])

    def codes(self, side: str) -> dict[str, np.ndarray]:
        """The compact form: ``by`` and ``fate`` as small integer codes (see ``BY_CODES``/``FATE_CODES``)."""
        return {f: _decode("", a) for f, a in self._data[side].items()}

    def to_xarray(self):
        """The result as an ``xarray.Dataset`` (``pip install 'kalab[sweep]'``): a dimension per axis named
        by its key (coordinates its values, ``units`` in the attributes) and ``side``; a variable per
        field of :data:`FIELDS` (``by`` and ``fate`` as codes with CF ``flag_values``/``flag_meanings``);
        the scenario (JSON) in the attributes.  Lazy (Dask arrays) when the result is a Zarr store."""
        from . import sweepdata
        return sweepdata.dataset(self)

    def to_pandas(self):
        """A long-form DataFrame, one row per point (pandas is optional, not a dependency)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas (pip install pandas)") from None
        grids = np.meshgrid(*[a.values for a in self.axes], indexing="ij")
        cols = {a.key: g.ravel() for a, g in zip(self.axes, grids)}
        for side in SIDES:
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

def _simulate_point(base: Mapping, axes: Iterable[Axis], idx: tuple[int, ...]) -> dict:
    sc = with_values(base, ((ax.key, v.item() if hasattr(v, "item") else v)
                            for ax, v in ((ax, ax.values[i]) for ax, i in zip(axes, idx))))
    r = simulate(sc)
    return {side: r.side(side) for side in SIDES}


def _point_value(side_result, field: str):
    """``field`` of a simulated point's :class:`~kalab.result.SideResult` as the result arrays hold it:
    a category's code (:data:`CATEGORIES`), NaN for a time that does not happen (None)."""
    v = getattr(side_result, field)
    if field in CATEGORIES:
        return CATEGORIES[field].index(v)
    return np.nan if v is None else v


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


#: Result bytes per grid point: both sides' fields (38: at_s, latest_s float64, by, fate uint8, timing_sensitive bool).
BYTES_PER_POINT = len(SIDES) * sum(np.dtype(dt).itemsize for dt in FIELDS.values())
#: The largest result kept in memory (the issue's budget); beyond it, ``out=DIR`` is required.
MAX_RESULT_BYTES = 1 << 30


def _is_zarr(out) -> bool:
    import os
    return out is not None and os.fspath(out).rstrip("/\\").endswith(".zarr")


def _check_arguments(scenario, axes, progress, chunk_points, out, max_result_bytes, executor):
    """Every argument of :func:`sweep` checked before any work: a ScenarioError naming the argument.
    Returns the scenario as a dict and the executor (a Dask ``Client`` becomes its ``get_executor()``)."""
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
        if v is None and name == "chunk_points":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= 2**62:
            raise ScenarioError(name, f"must be a whole number, got {show(v)}", value=v, allowed=f"{lo}..2^62")
    if out is not None:
        import os
        if not isinstance(out, (str, os.PathLike)):
            raise ScenarioError("out", f"must be a directory path, got {type(out).__name__} {show(out)}", value=out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise ScenarioError("out", f"{show(str(out))} exists and is not a directory", value=out,
                                hint="give a new or an existing directory (a Zarr store is one: NAME.zarr)")
    if executor is not None and not isinstance(executor, Executor):
        if callable(getattr(executor, "get_executor", None)):      # a dask.distributed.Client
            executor = executor.get_executor()
        if not isinstance(executor, Executor):
            raise ScenarioError("executor", f"must be a concurrent.futures.Executor (or a dask.distributed.Client), "
                                            f"got {type(executor).__name__}", value=None,
                                hint="e.g. ProcessPoolExecutor(4), or client.get_executor() of a Dask cluster")
    return base, executor


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


# ---------------------------------------------------------------- blocks

#: Blocks per worker an executor's sweep is cut into by default (load balance: simulated points
#: cluster in parts of a grid), and the fewest points of such a block.
BLOCKS_PER_WORKER = 8
MIN_BLOCK_POINTS = 1
#: A Zarr store's sweep without an executor is cut into about this many blocks (what a restart resumes from).
STORE_BLOCKS = 64
#: Results of blocks submitted to an executor and not yet written: at most this many bytes, beyond one
#: block per worker (and one).
MAX_INFLIGHT_BYTES = 1 << 28


def block_shape(shape: tuple[int, ...], points: int) -> tuple[int, ...]:
    """The shape of the grid's blocks: at most ``points`` points, in C order -- the last axes whole while
    they fit, a run of the next, 1 along the others -- so a block is one contiguous run of the flat
    grid, and the blocks tile it regularly (the Zarr store's chunks).

    >>> block_shape((100, 10, 10), 250)
    (2, 10, 10)
    >>> block_shape((3, 1000), 64)
    (1, 64)
    """
    out, size = [1] * len(shape), 1
    for j in reversed(range(len(shape))):
        if size * shape[j] <= points:
            out[j], size = shape[j], size * shape[j]
        else:
            out[j] = max(1, points // size)
            break
    return tuple(out)


def blocks(shape: tuple[int, ...], bshape: tuple[int, ...]):
    """``(index, slices)`` of every block, in C order (``index`` counts from 0)."""
    counts = [-(-n // b) for n, b in zip(shape, bshape)]
    for i, pos in enumerate(np.ndindex(*counts)):
        yield i, tuple(slice(p * b, min(n, (p + 1) * b)) for p, b, n in zip(pos, bshape, shape))


def n_blocks(shape: tuple[int, ...], bshape: tuple[int, ...]) -> int:
    return math.prod(-(-n // b) for n, b in zip(shape, bshape))


def _workers(executor) -> int:
    """How many tasks the executor runs at once (a guess where it does not say: this machine's cores)."""
    import os
    n = getattr(executor, "_max_workers", None)                    # concurrent.futures pools
    client = getattr(executor, "_client", None)                    # dask.distributed's ClientExecutor
    if client is not None:
        try:
            n = sum(client.nthreads().values())
        except Exception:  # pragma: no cover - a client that cannot say
            n = None
    return max(1, int(n or os.cpu_count() or 1))


#: Process-wide: simulated points since the last garbage collection (each worker process has its own).
_simulated_since_gc = 0


def _compute_block(base: Mapping, sc, family, ax: tuple[Axis, ...], dest: dict | None = None,
                   on_point=None) -> tuple[dict, int, float]:
    """One block of the grid (``ax``: each axis's values over the block): the family's closed form where
    it holds, every other point simulated.  Returns the fields ``{side: {field: array}}`` shaped like
    the block (``dest``'s arrays when given: the family writes there directly), how many points were
    simulated and the seconds that took.  The same for every executor: a block is a pure function of
    the scenario and its axis values, so the result does not depend on how the grid was cut."""
    global _simulated_since_gc
    shape = tuple(len(a.values) for a in ax)
    nd = len(shape)
    if family:
        cols = {a.key: np.asarray(a.values).reshape([-1 if k == j else 1 for k in range(nd)])
                for j, a in enumerate(ax)}
        with np.errstate(invalid="ignore"):        # inf - inf where a side never acts
            ok, res = family.block(base, cols, sc, dest)
        all_ok = bool(np.all(ok))                  # (before broadcasting: ``ok`` has a few values, often)
        if dest is None:
            # Own, writable arrays (a family's fields may be broadcast views, or share memory).
            out = {side: {f: np.array(np.broadcast_to(res[side][f], shape), dtype=dt) for f, dt in FIELDS.items()}
                   for side in SIDES}
        else:
            out = dest
            for side in SIDES:
                for f in FIELDS:
                    if res[side][f] is not dest[side][f]:
                        np.copyto(dest[side][f], res[side][f])
        # (The points left, into a reused array: a fresh one of the block's size costs page faults.)
        left = () if all_ok else np.logical_not(np.broadcast_to(ok, shape), out=scratch("sweep.left", shape))
        todo = () if all_ok else (tuple(map(int, i)) for i in np.argwhere(left))
    else:
        out = dest if dest is not None else {side: {f: np.empty(shape, dtype=dt) for f, dt in FIELDS.items()}
                                             for side in SIDES}
        todo = np.ndindex(*shape)
    n, t = 0, time.perf_counter()
    for idx in todo:
        r = _simulate_point(base, ax, idx)
        for side in SIDES:
            for f in FIELDS:
                out[side][f][idx] = _point_value(r[side], f)
        n += 1
        _simulated_since_gc += 1
        if _simulated_since_gc >= GC_EVERY_POINTS:
            # A simulation leaves reference cycles (the world and its endpoints); collected only
            # by a full collection, which Python defers in proportion to the heap.  Collect them
            # here so the fallback's memory stays flat however many points it simulates.
            _simulated_since_gc = 0
            gc.collect()
        if on_point is not None:
            on_point(n)
    return out, n, (time.perf_counter() - t if n else 0.0)


#: A worker's loaded scenarios and families, by the sweep's token (a few: one sweep at a time, mostly).
_loaded: dict[str, tuple] = {}


def _block_task(token: str, base: Mapping, ax: tuple[Axis, ...]) -> tuple[dict, int, float, float]:
    """What an executor runs: one block, with the scenario loaded once per worker process and sweep.
    Returns (fields, points simulated, seconds simulating, seconds in all)."""
    t = time.perf_counter()
    if token not in _loaded:
        while len(_loaded) >= 4:
            _loaded.pop(next(iter(_loaded)))
        sc = load(base)
        _loaded[token] = (sc, family_for(sc, {a.key for a in ax}))
    sc, family = _loaded[token]
    out, n, t_sim = _compute_block(base, sc, family, ax)
    return out, n, t_sim, time.perf_counter() - t


def sweep(scenario: Mapping, axes: Mapping[str, Iterable], *, progress: bool | None = None,
          chunk_points: int | None = None, out: str | None = None,
          max_result_bytes: int = MAX_RESULT_BYTES, executor=None) -> SweepResult:
    """Answer ``scenario`` at every point of the grid ``axes`` (keys -> values), exactly as simulate() would.

    ``out``: a directory; the result arrays are then written there (``client.at_s.npy`` ...) block by
    block and returned memory-mapped, so memory stays bounded for any grid size (10^8 points and more).
    A path ending in ``.zarr`` is a Zarr store instead (``pip install 'kalab[sweep]'``): one chunk per
    block, readable with ``xarray.open_zarr`` while the sweep runs; the same call on an unfinished
    store resumes it (blocks already written are not computed again).
    Without ``out`` the result is held in memory (38 bytes per point); a grid whose result would
    exceed ``max_result_bytes`` (1 GiB: about 3 x 10^7 points) is refused before anything is allocated.

    ``executor``: a :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, a Dask cluster's
    ``client.get_executor()``) or a ``dask.distributed.Client``; the grid's blocks (closed form and
    simulated points together) then run there.  The answer is the same, bit for bit, whatever the
    executor, ``chunk_points`` (the most points of a block; by default 2^20, and with an executor
    or a store enough blocks to share out) or the number of workers.
    """
    base, executor = _check_arguments(scenario, axes, progress, chunk_points, out, max_result_bytes, executor)
    load(base)
    zarr_out = _is_zarr(out)
    if zarr_out:
        from . import sweepdata
        sweepdata.require("zarr", "sweep(out=NAME.zarr)")

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
        if out is not None and not zarr_out and total > _disk_points(out):
            raise ScenarioError("out", f"{grid} needs {need / 2**30:,.1f} GiB on disk, more than is free there",
                                value=out)

    ax = _axes(base, axes, check_size, max_result_bytes // BYTES_PER_POINT if out is None
               else min(MAX_POINTS, _disk_points(out)))
    shape = tuple(len(a.values) for a in ax)
    check_size(shape)                      # (again: an axis given as an iterator is known only now)
    total = math.prod(shape)
    sc = load(base)
    family = family_for(sc, {a.key for a in ax})
    forget()                               # (what an earlier sweep's blocks left to reuse: its arrays)
    workers = _workers(executor) if executor is not None else 1
    if chunk_points is not None:
        points = chunk_points
    elif executor is not None:
        points = min(CHUNK_POINTS, max(MIN_BLOCK_POINTS, -(-total // (BLOCKS_PER_WORKER * workers))))
    elif zarr_out:
        points = min(CHUNK_POINTS, max(MIN_BLOCK_POINTS, -(-total // STORE_BLOCKS)))
    else:
        points = CHUNK_POINTS
    bshape = block_shape(shape, points)

    store, done, disk, data = None, {}, None, None
    if zarr_out:
        store = sweepdata.ZarrSweep.open(out, base, ax, bshape, family.name if family else None)
        bshape, done = store.bshape, store.done()
    elif out is not None:
        import os
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise ScenarioError("out", f"cannot make the directory {show(str(out))}: {e.strerror or e}",
                                value=out) from None
        disk = {side: {f: _DiskArray(os.path.join(out, f"{side}.{f}.npy"), shape, dt) for f, dt in FIELDS.items()}
                for side in SIDES}
    else:
        # Every point is written, by a family or by the fallback: no need to fill.
        data = {side: {f: np.empty(shape, dtype=dt) for f, dt in FIELDS.items()} for side in SIDES}
    nb = n_blocks(shape, bshape)
    strides = np.cumprod((1,) + shape[:0:-1])[::-1]               # flat index of a block's first point

    def write(sl: tuple[slice, ...], fields: dict) -> None:
        """A computed block into the result (memory and ``.npy``; the store writes its own)."""
        if disk is not None:
            start = int(sum(s.start * int(k) for s, k in zip(sl, strides)))
            for side in SIDES:
                for f in FIELDS:
                    disk[side][f].write_flat(start, fields[side][f].ravel())
        elif data is not None:
            for side in SIDES:
                for f in FIELDS:
                    data[side][f][sl] = fields[side][f]

    # A progress line on a terminal or in a notebook (ipykernel), but only for a sweep that has run
    # a second already: quick sweeps stay quiet.  progress=True/False forces it on or off.
    show_progress = progress if progress is not None else (sys.stderr.isatty() or "ipykernel" in sys.modules)
    quiet_until = time.perf_counter() + (0.0 if progress else PROGRESS_AFTER_S)
    st = {"at": 0.0, "any": False, "grid_done": 0, "blocks_done": len(done), "simulated": 0,
          "simulated_s": 0.0, "block_s": 0.0}

    def report(final: bool = False) -> None:
        """The progress line (stderr), at most five times a second."""
        now = time.perf_counter()
        if not show_progress:
            return
        if final:
            if not (st["any"] or progress):   # a quick sweep showed nothing: no closing line either
                return
        elif now < quiet_until or now - st["at"] <= 0.2:
            return
        st["at"], st["any"] = now, True
        print(f"\rsweep: {st['grid_done']:,}/{total:,} grid points, {st['simulated']:,} simulated outside the "
              f"vectorized families; {st['blocks_done']:,}/{nb:,} blocks", end="\n" if final else "",
              file=sys.stderr, flush=True)

    def finished(i: int, sl: tuple[slice, ...], fields: dict, n_sim: int, t_sim: float, t_all: float) -> None:
        if store is not None:
            store.write(i, sl, fields, n_sim)
        elif fields is not None:
            write(sl, fields)
        st["simulated"] += n_sim
        st["simulated_s"] += t_sim
        st["block_s"] += t_all
        st["blocks_done"] += 1
        if family is not None or executor is not None:   # (else counted point by point)
            st["grid_done"] += math.prod(s.stop - s.start for s in sl)
        report()

    resumed_points = sum(math.prod(s.stop - s.start for s in sl) for i, sl in blocks(shape, bshape) if i in done) \
        if done else 0
    st["grid_done"] = resumed_points
    todo = ((i, sl) for i, sl in blocks(shape, bshape) if i not in done)
    t0 = time.perf_counter()
    if executor is None:
        def on_point(n: int) -> None:
            if family is None:               # (with a family, whole blocks are counted)
                st["grid_done"] += 1
            st["simulated"] += 1
            report()

        for i, sl in todo:
            bax = tuple(Axis(a.key, a.values[s], a.unit) for a, s in zip(ax, sl))
            # In memory the block's fields are written straight into the result (the family's too).
            dest = None if data is None else {side: {f: data[side][f][sl] for f in FIELDS} for side in SIDES}
            t, before = time.perf_counter(), st["simulated"]
            fields, n_sim, t_sim = _compute_block(base, sc, family, bax, dest, on_point)
            st["simulated"] = before          # (counted point by point for the progress line; again below)
            finished(i, sl, None if dest is not None else fields, n_sim, t_sim, time.perf_counter() - t)
    else:
        _run_on_executor(executor, workers, base, ax, todo, bshape, finished)
    wall = time.perf_counter() - t0
    n_simulated = st["simulated"] + sum(done.values())
    if n_simulated:
        report(final=True)
    release()                              # (this thread's reused arrays: a sweep's worth of memory)
    if disk is not None:
        data = {side: {f: d.close() for f, d in fields.items()} for side, fields in disk.items()}
    elif store is not None:
        data = store.fields()
    stats = {"family": family.name if family else None, "points": total, "vectorized": total - n_simulated,
             "simulated": n_simulated, "vectorized_s": max(0.0, (wall if executor is None else st["block_s"])
                                                             - st["simulated_s"]),
             "simulated_s": st["simulated_s"], "blocks": nb, "resumed_blocks": len(done),
             "workers": workers, "wall_s": wall}
    return SweepResult(ax, data, stats, scenario=base, store=store.path if store is not None else None)


def _run_on_executor(executor, workers: int, base: Mapping, ax: list[Axis], todo, bshape, finished) -> None:
    """Ship the blocks ``todo`` to ``executor``, a bounded number at a time, and hand each result to
    ``finished`` as it comes back (any order: blocks do not overlap).  A failed block cancels the rest
    and raises its error."""
    token = uuid.uuid4().hex
    block_bytes = max(1, math.prod(bshape) * BYTES_PER_POINT)
    # Every worker busy, with one more block queued each while memory allows (the results held here).
    most = max(workers + 1, min(2 * workers, MAX_INFLIGHT_BYTES // block_bytes))
    pending: dict = {}
    todo = iter(todo)
    more = True
    try:
        while more or pending:
            while more and len(pending) < most:
                nxt = next(todo, None)
                if nxt is None:
                    more = False
                    break
                i, sl = nxt
                bax = tuple(Axis(a.key, a.values[s], a.unit) for a, s in zip(ax, sl))
                pending[executor.submit(_block_task, token, base, bax)] = (i, sl)
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i, sl = pending.pop(fut)
                fields, n_sim, t_sim, t_all = fut.result()
                finished(i, sl, fields, n_sim, t_sim, t_all)
    finally:
        for fut in pending:
            fut.cancel()
