"""A sweep's result as an ``xarray.Dataset`` and as a Zarr store (the optional ``sweep`` extra).

``pip install 'kalab[sweep]'`` brings xarray, zarr and dask[distributed]; ``import kalab`` and a sweep
held in memory or in ``.npy`` files need none of them (this module imports them when used).

One layout for both (:func:`dataset`, :class:`ZarrSweep`):

* a dimension per axis, named by its dotted key, its coordinate the axis values with ``units`` in
  the attributes (``s``, ``ms``, ``count`` ...: :func:`kalab.sweep._unit_of`), and a dimension
  ``side`` (``client``, ``server``);
* a variable per field of :data:`kalab.sweep.FIELDS` over (``side``, axes...): ``at_s`` and
  ``latest_s`` in seconds (NaN: the side does not die), ``by`` and ``fate`` as ``uint8`` codes
  labelled the CF way (``flag_values``, ``flag_meanings``; ``categories`` lists the names, ``by``'s
  code 0 is None: no death);
* the base scenario as JSON in the attributes (``scenario``), with the family that computed the
  closed-form points and kalab's version.

The store is chunked like the computation: one chunk per block of the grid and variable, written
once, when the block is done, by the process that called :func:`kalab.sweep` (workers only
compute).  ``xarray.open_zarr`` reads it while it is written: chunks not yet written read as the
fill value (NaN; 255 for codes).  After each block its entry in ``kalab_progress/done`` (a group
xarray does not read) records it, with how many of its points were simulated; the same ``sweep``
call on the store skips those blocks -- resume after a kill -- and refuses a store written for
another scenario or other axes (their fingerprint is in the attributes).  zarr's local store writes
every file to a temporary name and renames it, so a kill leaves no torn chunk: at worst a block
written and not yet marked done, which the restart computes again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Mapping

import numpy as np

from . import __version__
from .errors import ScenarioError, show

#: Where the per-block progress lives inside a store (a group: ``xarray.open_zarr`` does not read it).
PROGRESS = "kalab_progress"
SIDE_DIM = "side"
#: What each field is, for its attributes.
DESCRIPTIONS = {
    "at_s": "nominal time of death [s] (NaN: the side does not die)",
    "latest_s": "the latest the real system may act [s]: timer-wheel and poll slack (NaN: no death)",
    "by": "the mechanism that ended the side (kalab.BY); code 0: none",
    "fate": "alive, died, half_open or none",
    "timing_sensitive": "whether the outcome changes when the timers fire at the latest they may (kalab.timing)",
}


def require(module: str, what: str):
    """Import an optional dependency, or say plainly which extra brings it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}: pip install 'kalab[sweep]'") from None


def _jsonable(v: Any):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    return str(v)


def scenario_json(base: Mapping) -> str:
    """The base scenario as canonical JSON (sorted keys), for the attributes and the fingerprint."""
    return json.dumps(base, sort_keys=True, default=_jsonable)


def field_attrs(field: str) -> dict:
    """A variable's attributes: units for times, CF flags for categories."""
    from .sweep import CATEGORIES, FIELDS
    attrs: dict = {"description": DESCRIPTIONS.get(field, field)}
    if field in CATEGORIES:
        names = ["none" if n is None else str(n) for n in CATEGORIES[field]]
        attrs.update(flag_values=list(range(len(names))), flag_meanings=" ".join(names), categories=names)
    elif field.endswith("_s") and np.dtype(FIELDS[field]).kind == "f":
        attrs["units"] = "s"
    return attrs


def fill_value(dtype) -> Any:
    """What a chunk not yet written reads as: NaN, the largest code, False."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return np.nan
    if dt.kind in "iu":
        return np.iinfo(dt).max
    return dt.type(0)


def coord_values(values: np.ndarray) -> np.ndarray:
    """An axis's values as a coordinate: numbers as they are, anything else as text."""
    if values.dtype.kind in "iufb":
        return values
    return np.asarray([str(v) for v in values])


def global_attrs(base: Mapping, family: str | None) -> dict:
    return {"scenario": scenario_json(base), "family": "" if family is None else family,
            "kalab_version": __version__,
            "description": "kalab.sweep: what kalab.simulate() says at every point of the grid"}


def dataset(res):
    """:meth:`kalab.SweepResult.to_xarray`: the store opened lazily, or the arrays in memory."""
    xr = require("xarray", "SweepResult.to_xarray()")
    if res.store is not None:
        return xr.open_zarr(res.store)
    from .sweep import FIELDS, SIDES
    keys = [a.key for a in res.axes]
    coords = {a.key: (a.key, coord_values(np.asarray(a.values)), {"units": a.unit} if a.unit else {})
              for a in res.axes}
    coords[SIDE_DIM] = (SIDE_DIM, np.asarray(SIDES))
    data = {f: ((SIDE_DIM, *keys), np.stack([np.asarray(res.codes(side)[f]) for side in SIDES]), field_attrs(f))
            for f in FIELDS}
    scenario = res.scenario if res.scenario is not None else {}
    return xr.Dataset(data, coords=coords, attrs=global_attrs(scenario, res.stats.get("family")))


def _axis_digest(values: np.ndarray) -> str:
    if values.dtype.kind in "iufb":
        b = np.ascontiguousarray(values).tobytes()
    else:
        b = json.dumps([_jsonable(v) if not isinstance(v, (str, int, float, bool)) else v for v in values]).encode()
    return hashlib.sha256(b).hexdigest()


def fingerprint(base: Mapping, axes) -> str:
    """What makes two sweeps the same: the scenario, each axis (key, dtype, values), the fields and
    kalab's version.  (Not the block size, the executor or the workers: they do not change the answer.)"""
    from .sweep import FIELDS
    spec = {"scenario": scenario_json(base),
            "axes": [[a.key, np.asarray(a.values).dtype.str, _axis_digest(np.asarray(a.values))] for a in axes],
            "fields": [[f, np.dtype(dt).str] for f, dt in FIELDS.items()], "kalab": __version__}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _zarr_dtype(v: np.ndarray):
    """Text as zarr's variable-length UTF-8 (in the v3 spec; fixed-length numpy text is not)."""
    return str if v.dtype.kind in "US" else v.dtype


class _Field:
    """One side's field of a store, read where indexed (``np.asarray`` reads it whole)."""

    def __init__(self, arr, side: int) -> None:
        self.arr, self.side = arr, side
        self.shape, self.dtype, self.ndim = tuple(arr.shape[1:]), arr.dtype, arr.ndim - 1

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        return self.arr[(self.side, *idx)]

    def __array__(self, dtype=None, copy=None):
        a = self.arr[self.side]
        return a if dtype is None else a.astype(dtype)


class ZarrSweep:
    """A sweep's Zarr store (see the module's docstring): created, or opened to resume."""

    def __init__(self, path: str, group, bshape: tuple[int, ...]) -> None:
        self.path, self.group, self.bshape = path, group, bshape
        self.arrays = {f: group[f] for f in _fields()}
        self._done = group[PROGRESS]["done"]

    @classmethod
    def open(cls, path, base: Mapping, axes, bshape: tuple[int, ...], family: str | None) -> "ZarrSweep":
        """The store at ``path``: resumed if it holds this sweep (its own block shape kept), created if
        the path is new or an empty directory; a ScenarioError if it holds something else."""
        zarr = require("zarr", "sweep(out=NAME.zarr)")
        path = os.fspath(path)
        fp = fingerprint(base, axes)
        if os.path.isdir(path) and os.listdir(path):
            try:
                group = zarr.open_group(path, mode="r+")
                theirs = group.attrs.get("kalab_sweep", {})
            except Exception:  # noqa: BLE001 - not a zarr store at all
                theirs = None
            if not theirs:
                raise ScenarioError("out", f"{show(path)} exists and is not a kalab sweep's Zarr store", value=None,
                                    hint="give a new path, or remove it")
            if theirs.get("fingerprint") != fp:
                raise ScenarioError("out", f"{show(path)} holds another sweep (another scenario, other axes or "
                                           "another kalab): it is resumed only by the same call", value=None,
                                    hint="give a new path, or remove it to start again")
            return cls(path, group, tuple(theirs["block_shape"]))
        return cls._create(zarr, path, base, axes, bshape, family, fp)

    @classmethod
    def _create(cls, zarr, path: str, base, axes, bshape, family, fp) -> "ZarrSweep":
        from .sweep import FIELDS, SIDES, n_blocks
        shape = tuple(len(a.values) for a in axes)
        keys = [a.key for a in axes]
        group = zarr.open_group(path, mode="w", zarr_format=3)
        for a in axes:
            v = coord_values(np.asarray(a.values))
            c = group.create_array(a.key, shape=v.shape, dtype=_zarr_dtype(v), chunks=v.shape,
                                   dimension_names=[a.key])
            c[...] = v
            if a.unit:
                c.attrs["units"] = a.unit
        side = group.create_array(SIDE_DIM, shape=(len(SIDES),), dtype=str,
                                  chunks=(len(SIDES),), dimension_names=[SIDE_DIM])
        side[...] = np.asarray(SIDES)
        for f, dt in FIELDS.items():
            arr = group.create_array(f, shape=(len(SIDES), *shape), dtype=dt, chunks=(len(SIDES), *bshape),
                                     fill_value=fill_value(dt), dimension_names=[SIDE_DIM, *keys])
            arr.attrs.update(field_attrs(f))
        progress = group.create_group(PROGRESS)
        progress.create_array("done", shape=(n_blocks(shape, bshape),), dtype=np.int64, chunks=(1,), fill_value=-1)
        progress.attrs["description"] = ("per block of the grid (C order of the chunks): -1 not written yet, "
                                         "else how many of its points were simulated")
        group.attrs.update(global_attrs(base, family))
        group.attrs["kalab_sweep"] = {"fingerprint": fp, "block_shape": list(bshape)}
        with warnings.catch_warnings():
            # (consolidated metadata is zarr-python's, not yet in the v3 spec; xarray reads it at once)
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(path)
        return cls(path, zarr.open_group(path, mode="r+"), tuple(bshape))

    def done(self) -> dict[int, int]:
        """The blocks already written: block index -> points of it that were simulated."""
        d = self._done[...]
        return {int(i): int(d[i]) for i in np.flatnonzero(d >= 0)}

    def write(self, index: int, sl: tuple[slice, ...], fields: dict, n_simulated: int) -> None:
        """One block's fields (``{side: {field: array}}``), then its entry in ``done``."""
        from .sweep import SIDES
        for f, arr in self.arrays.items():
            arr[(slice(None), *sl)] = np.stack([fields[side][f] for side in SIDES])
        self._done[index] = n_simulated

    def fields(self) -> dict:
        """The result's fields as :class:`kalab.SweepResult` holds them: read from the store when indexed."""
        from .sweep import SIDES
        return {side: {f: _Field(arr, i) for f, arr in self.arrays.items()} for i, side in enumerate(SIDES)}


def _fields():
    from .sweep import FIELDS
    return FIELDS
