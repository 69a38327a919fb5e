"""sweep() beyond one core and one process's memory: executors, xarray, Zarr, resume (issue 18).

* ``executor=``: the grid's blocks (closed form and simulated points together) run on a
  ``ProcessPoolExecutor`` or a Dask cluster; the answer is the serial sweep's, byte for byte, for any
  block size and either way of passing Dask (its ``Client`` or ``client.get_executor()``).
* ``to_xarray()`` and ``out="NAME.zarr"``: the same Dataset from memory and from the store, read
  while it is written, and a killed sweep restarted with the same call resumes without computing
  again what was written.

Pools and clusters are made once per module and shut down by their fixtures.  xarray, zarr and
dask come with the ``sweep`` extra (the ``test`` extra includes it); without them these tests skip
on a user's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab import ScenarioError, sweep
from kalab.sweep import FIELDS, SIDES


def need(module: str):
    if os.environ.get("CI", "").lower() == "true":
        return __import__(module)          # CI installs the test extra: a missing module is a failure
    return pytest.importorskip(module)


#: A grid the keepalive family covers in part: a server rebooted at 2 s races the first probe of
#: TCP_KEEPIDLE 1 s, so those points are simulated (26 of 78), the rest computed by the closed form.
MIXED = ({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}, "path": {"rtt_ms": 1.0},
          "faults": [{"kind": "host_reboot", "side": "server", "at_s": 2, "down_s": 30}], "until_s": 100_000},
         {"client.socket.TCP_KEEPIDLE": [1, 5, 50], "client.socket.TCP_KEEPINTVL": np.arange(1, 40, 3),
          "client.socket.TCP_KEEPCNT": [1, 5]})
#: A grid no family covers (a monotonic-clock phase): every point simulated.
SIMULATED = ({"client": {"app": {"kind": "ssh"}, "monotime_phase_s": 0.5}, "server": {"app": {"kind": "sshd"}},
              "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 2000},
             {"client.app.options.ServerAliveInterval": np.arange(1, 31)})


@pytest.fixture(scope="module")
def serial():
    out = {name: sweep(*grid) for name, grid in (("mixed", MIXED), ("simulated", SIMULATED))}
    assert 0 < out["mixed"].stats["simulated"] < out["mixed"].stats["points"]
    assert out["simulated"].stats["family"] is None
    return out


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def dask_client():
    need("dask")
    distributed = need("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        yield client


def assert_identical(a, b):
    """Every field of both sides equal byte for byte (NaN included), same dtype and shape."""
    assert a.shape == b.shape
    for side in SIDES:
        for f in FIELDS:
            x, y = np.asarray(a.codes(side)[f]), np.asarray(b.codes(side)[f])
            assert x.dtype == y.dtype and x.shape == y.shape, (side, f)
            assert x.tobytes() == y.tobytes(), (side, f)


@pytest.mark.parametrize("chunk_points", [None, 1, 7, 26, 10_000])
def test_process_pool_gives_the_serial_answer_bit_for_bit(serial, pool, chunk_points):
    for name, grid in (("mixed", MIXED), ("simulated", SIMULATED)):
        res = sweep(*grid, executor=pool, chunk_points=chunk_points)
        assert_identical(serial[name], res)
        assert res.stats["workers"] == 2 and res.stats["simulated"] == serial[name].stats["simulated"]
        assert res.stats["blocks"] >= (2 if chunk_points in (None, 1, 7) else 1)   # shared out
        if chunk_points == 7:
            assert res.stats["blocks"] == -(-res.stats["points"] // 7) or res.stats["blocks"] > 10


@pytest.mark.parametrize("chunk_points", [1, 7, 13, 10_000])
def test_the_serial_answer_does_not_depend_on_the_block_size(serial, chunk_points):
    assert_identical(serial["mixed"], sweep(*MIXED, chunk_points=chunk_points))


def test_a_dask_cluster_gives_the_serial_answer_bit_for_bit(serial, dask_client):
    """Two worker processes of a LocalCluster, given as the Client itself and as its executor."""
    for executor in (dask_client, dask_client.get_executor()):
        for name, grid in (("mixed", MIXED), ("simulated", SIMULATED)):
            res = sweep(*grid, executor=executor, chunk_points=9)
            assert_identical(serial[name], res)
            assert res.stats["workers"] == 2 and res.stats["blocks"] > 2
    workers = dask_client.run(lambda: os.getpid())
    assert len(set(workers.values()) - {os.getpid()}) == 2       # two processes, neither this one


def test_progress_counts_blocks(pool, capsys):
    sweep(*SIMULATED, executor=pool, chunk_points=10, progress=True)
    err = capsys.readouterr().err
    assert "30/30 grid points, 30 simulated" in err and "3/3 blocks" in err


def test_an_executor_must_be_an_executor():
    with pytest.raises(ScenarioError) as e:
        sweep(*MIXED, executor=4)
    assert e.value.key == "executor" and "concurrent.futures.Executor" in str(e.value)


def test_a_failing_block_raises_its_error_and_cancels_the_rest(monkeypatch):
    """A block's error comes back as the sweep's; blocks not started are cancelled (any Executor:
    here threads, so the broken block can be patched in)."""
    from concurrent.futures import ThreadPoolExecutor
    ks = sys.modules["kalab.sweep"]                # (kalab.sweep the function hides the module)
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("block failed")

    monkeypatch.setattr(ks, "_block_task", broken)
    with ThreadPoolExecutor(1) as ex, pytest.raises(RuntimeError, match="block failed"):
        sweep(*MIXED, executor=ex, chunk_points=1)
    assert len(calls) < 78


# ---------------------------------------------------------------- xarray and Zarr

def test_to_xarray_labels_every_axis_side_and_field(serial):
    need("xarray")
    base, axes = MIXED
    res = serial["mixed"]
    ds = res.to_xarray()
    assert list(ds.dims) == ["side", *axes] and list(ds["side"].values) == ["client", "server"]
    for a in res.axes:
        np.testing.assert_array_equal(ds[a.key].values, np.asarray(axes[a.key]))
        assert ds[a.key].attrs["units"] == a.unit
    assert ds["client.socket.TCP_KEEPCNT"].attrs["units"] == "count"
    assert set(ds.data_vars) == set(FIELDS)
    for f in FIELDS:
        assert ds[f].dims == ("side", *axes) and ds[f].dtype == FIELDS[f]
        for i, side in enumerate(SIDES):
            got = ds[f].values[i]
            if f in ("by", "fate"):
                names = np.asarray(ds[f].attrs["categories"], dtype=object)[got]
                want = np.asarray([("none" if v is None else v) for v in res[side][f].ravel()], dtype=object)
                assert (names.ravel() == want).all()
                meanings = ds[f].attrs["flag_meanings"].split()
                assert meanings == ds[f].attrs["categories"] and ds[f].attrs["flag_values"] == list(range(len(meanings)))
            else:
                assert got.tobytes() == res[side][f].tobytes()
    assert ds["at_s"].attrs["units"] == "s" and ds["latest_s"].attrs["units"] == "s"
    assert json.loads(ds.attrs["scenario"]) == base and ds.attrs["family"] == "keepalive"
    # labelled selection is simulate() at that point (TCP_KEEPIDLE 5 s, KEEPINTVL 1 s, KEEPCNT 5: 10 s)
    point = {"client.socket.TCP_KEEPIDLE": 5, "client.socket.TCP_KEEPINTVL": 1, "client.socket.TCP_KEEPCNT": 5}
    sc = base
    for k, v in point.items():
        sc = kalab.with_value(sc, k, v)
    assert float(ds["at_s"].sel(side="client").sel(point)) == kalab.simulate(sc).client.at_s == 10.0


def test_zarr_store_round_trips_through_xarray(serial, tmp_path):
    xr = need("xarray")
    need("zarr")
    path = tmp_path / "mixed.zarr"
    res = sweep(*MIXED, out=str(path), chunk_points=10)
    assert_identical(serial["mixed"], res)
    assert res.store == str(path) and res.stats["blocks"] == res.stats["blocks"] > 1
    opened = xr.open_zarr(path)
    assert opened["at_s"].chunks is not None                        # lazy, chunked like the computation
    assert opened["at_s"].encoding["chunks"] == (2, 1, 5, 2)
    xr.testing.assert_equal(opened.load(), serial["mixed"].to_xarray())
    for f in FIELDS:
        assert opened[f].attrs == serial["mixed"].to_xarray()[f].attrs
    assert json.loads(opened.attrs["scenario"]) == MIXED[0]
    xr.testing.assert_equal(res.to_xarray().load(), opened.load())
    # select() on a store reads what it selects
    keep = ["client.socket.TCP_KEEPINTVL"]
    for f in FIELDS:
        np.testing.assert_array_equal(res.select("server", f, keep), serial["mixed"].select("server", f, keep))


def test_a_store_written_from_a_process_pool_and_resumed_serially(serial, pool, tmp_path):
    """Workers compute, the caller writes: a pool's store is the serial answer, and a serial call on it
    finds every block done (the store's block shape, not this call's, decides)."""
    need("zarr")
    path = tmp_path / "pool.zarr"
    res = sweep(*MIXED, executor=pool, out=str(path), chunk_points=6)
    assert_identical(serial["mixed"], res)
    again = sweep(*MIXED, out=str(path))
    assert again.stats["resumed_blocks"] == again.stats["blocks"] == res.stats["blocks"]
    assert_identical(serial["mixed"], again)


def test_zarr_store_refuses_another_sweep(tmp_path):
    need("zarr")
    path = tmp_path / "s.zarr"
    sweep(*MIXED, out=str(path))
    other = dict(MIXED[0], until_s=50_000)
    with pytest.raises(ScenarioError) as e:
        sweep(other, MIXED[1], out=str(path))
    assert e.value.key == "out" and "another sweep" in str(e.value)
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "notes.txt").write_text("mine")
    with pytest.raises(ScenarioError, match="not a kalab sweep"):
        sweep(*MIXED, out=str(tmp_path / "junk.zarr"))
    assert (tmp_path / "junk.zarr" / "notes.txt").read_text() == "mine"


def test_out_directory_still_writes_npy(tmp_path, serial):
    res = sweep(*MIXED, out=str(tmp_path / "npy"), chunk_points=5)
    assert (tmp_path / "npy" / "client.at_s.npy").exists() and not (tmp_path / "npy" / "zarr.json").exists()
    assert_identical(serial["mixed"], res)


#: The sweep the resume test kills: 600 simulated points in blocks of 4 (about a second of work).
KILLED = textwrap.dedent("""
    import sys, numpy as np
    from kalab import sweep
    base = {"client": {"app": {"kind": "ssh"}, "monotime_phase_s": 0.5}, "server": {"app": {"kind": "sshd"}},
            "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 2000}
    sweep(base, {"client.app.options.ServerAliveInterval": np.arange(1, 601)}, out=sys.argv[1], chunk_points=4)
""")


def _done(path) -> np.ndarray | None:
    import zarr
    try:
        return zarr.open_group(str(path), mode="r")["kalab_progress"]["done"][...]
    except Exception:          # not created yet
        return None


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    xr = need("xarray")
    need("zarr")
    path = tmp_path / "killed.zarr"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            d = _done(path)
            if d is not None and (d >= 0).sum() >= 3:
                break
            time.sleep(0.01)
        # Read while it runs: the blocks written are there, the others are the fill value.
        before = _done(path)
        during = xr.open_zarr(path)["at_s"].values
        assert proc.poll() is None, "the sweep finished before it could be killed: " + proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    proc.stderr.close()
    done = _done(path)
    written = np.flatnonzero(done >= 0)
    assert 3 <= len(written) < 150
    chunks = {int(i): (path / "at_s" / "c" / "0" / str(i)).stat().st_mtime_ns for i in written}
    base = {"client": {"app": {"kind": "ssh"}, "monotime_phase_s": 0.5}, "server": {"app": {"kind": "sshd"}},
            "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 2000}
    axes = {"client.app.options.ServerAliveInterval": np.arange(1, 601)}
    res = sweep(base, axes, out=str(path), chunk_points=4)
    assert res.stats["resumed_blocks"] == len(written) and res.stats["blocks"] == 150
    assert res.stats["simulated"] == 600                           # the whole grid, resumed blocks included
    for i, mtime in chunks.items():                                # not written again
        assert (path / "at_s" / "c" / "0" / str(i)).stat().st_mtime_ns == mtime
    assert (_done(path) >= 0).all()
    whole = sweep(base, axes)
    assert_identical(whole, res)
    # What was read during the run: the blocks written by then, NaN (the fill value) or, for a block
    # written while it was read, the final values elsewhere.
    w = whole["client"]["at_s"]
    for i in range(150):
        block, want = during[0, 4 * i:4 * i + 4], w[4 * i:4 * i + 4]
        if before[i] >= 0:
            assert block.tobytes() == want.tobytes()
        else:
            assert np.isnan(block).all() or block.tobytes() == want.tobytes()
    assert np.isnan(during).any() and (before >= 0).sum() >= 3
    # the same call again: nothing left to do
    again = sweep(base, axes, out=str(path))
    assert again.stats["resumed_blocks"] == 150 and again.stats["blocks"] == 150


def test_plain_sweeps_need_numpy_only(tmp_path):
    """import kalab, a sweep in memory, to .npy files and on a process pool: no xarray, zarr, dask, pandas."""
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from concurrent.futures import ProcessPoolExecutor
        import kalab
        base = {MIXED[0]!r}
        axes = {{"client.socket.TCP_KEEPIDLE": [1, 5, 50]}}
        kalab.sweep(base, axes)
        kalab.sweep(base, axes, out={str(tmp_path / "npy")!r})
        if __name__ == "__main__":
            with ProcessPoolExecutor(1) as ex:
                kalab.sweep(base, axes, executor=ex)
        bad = [m for m in ("xarray", "zarr", "dask", "distributed", "pandas") if m in sys.modules]
        print(bad)
        sys.exit(1 if bad else 0)
    """)
    script = tmp_path / "plain.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_to_xarray_without_xarray_says_which_extra(monkeypatch, serial):
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"pip install 'kalab\[sweep\]'"):
        serial["mixed"].to_xarray()
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ImportError, match=r"kalab\[sweep\]"):
        kalab.sweep(*MIXED, out="/nonexistent-kalab-dir/x.zarr")


# ---------------------------------------------------------------- the keepalive family's passes

def test_a_familys_nan_is_the_nan_of_a_simulated_point():
    """side_fields makes NaN as -(0/dies) (no np.where): the same bits as np.nan, which a simulated
    point writes -- results compare byte for byte whichever way a point was computed."""
    res = sweep({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
                 "faults": [{"kind": "link_down", "at_s": 1, "for_s": 60}], "until_s": 100_000},
                {"client.socket.TCP_KEEPIDLE": [1, 30, 100], "faults.0.for_s": [5, 50, 5000]})
    assert res.stats["family"] == "keepalive" and res.stats["simulated"] == 0
    nan_bits = np.array([np.nan]).view(np.uint64)[0]
    for side in SIDES:
        for f in ("at_s", "latest_s"):
            a = res[side][f]
            assert np.isnan(a).any()
            assert (a.view(np.uint64)[np.isnan(a)] == nan_bits).all(), (side, f)


@pytest.mark.parametrize("fault,most", [({"kind": "link_down", "at_s": 1, "for_s": 60}, 32),
                                        ({"kind": "host_crash", "side": "server", "at_s": 1}, 10),
                                        ({"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 60}, 33.5)])
def test_the_keepalive_family_writes_into_the_result_with_few_temporaries(fault, most):
    """A deterministic count instead of a timing: the peak of what a whole-grid block allocates besides
    the result it writes into, in bytes per point.  side_fields no longer makes a temporary float array
    per side (np.where's): before issue 18 29.5, 6.8 and 30.8, after it 14.3, 6.3 and 15.5; the timing
    checks of issue 14 (full-block windows where the rtt is an axis) brought them to 31.4, 9.35 and
    32.8 (32.5, 9.35 and 33.8 with the old side_fields)."""
    import tracemalloc
    from kalab.families import KEEPALIVE
    from kalab.scenario import load
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 51), "client.socket.TCP_KEEPINTVL": np.arange(1, 51),
            "client.socket.TCP_KEEPCNT": np.arange(1, 11), "path.rtt_ms": np.linspace(0.1, 50, 8)}
    base = {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}, "faults": [fault], "until_s": 1e6}
    sc, shape = load(base), tuple(len(v) for v in axes.values())
    cols = {k: v.reshape([-1 if i == j else 1 for i in range(4)]) for j, (k, v) in enumerate(axes.items())}
    dest = {s: {f: np.empty(shape, dt) for f, dt in FIELDS.items()} for s in SIDES}
    with np.errstate(invalid="ignore"):
        KEEPALIVE.block(base, cols, sc, dest)
        tracemalloc.start()
        try:
            ok, out = KEEPALIVE.block(base, cols, sc, dest)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert all(out[s][f] is dest[s][f] for s in SIDES for f in FIELDS)      # written in place
    assert peak / math.prod(shape) <= most


# ---------------------------------------------------------------- blocks

@given(shape=st.lists(st.integers(1, 12), min_size=1, max_size=4).map(tuple), points=st.integers(1, 3000))
def test_blocks_tile_the_grid_once_each_a_contiguous_run(shape, points):
    """Every point of the grid is in exactly one block, a block has at most ``points`` points (at least
    one), and each block is one run of the flat grid in C order (what .npy slabs and Zarr chunks need)."""
    ks = sys.modules["kalab.sweep"]
    b = ks.block_shape(shape, points)
    assert all(1 <= x <= n for x, n in zip(b, shape)) and math.prod(b) <= max(points, 1)
    seen = np.zeros(shape, dtype=np.int64)
    flat = np.arange(math.prod(shape)).reshape(shape)
    n = 0
    for i, sl in ks.blocks(shape, b):
        assert i == n
        n += 1
        seen[sl] += 1
        run = flat[sl].ravel()
        assert (np.diff(run) == 1).all()
    assert (seen == 1).all() and n == ks.n_blocks(shape, b)


@pytest.mark.parametrize("move_min_points", [0, 10**9])
@pytest.mark.parametrize("shape,pivot", [((6, 5, 4, 3), (1, 1, 1, 3)), ((6, 5, 4, 3), (1, 5, 1, 3)),
                                         ((6, 5, 4, 3), (6, 1, 1, 1)), ((3, 70, 40), (1, 1, 40)),
                                         ((4, 9, 5, 7), (1, 9, 1, 7))])
def test_versus_gives_the_masks_of_a_plain_comparison(shape, pivot, move_min_points, monkeypatch):
    """kalab.families.grid.versus computes masks against a pivot in the pivot's layout (moved, or not:
    small blocks are computed as they are), and puts them back a pivot value at a time or in one
    transposing copy (more than TRANSPOSE_BY_PIVOT values): the same booleans."""
    from kalab.families import grid
    from kalab.families.grid import clear_of, versus
    monkeypatch.setattr(grid, "MOVE_MIN_POINTS", move_min_points)
    rng = np.random.default_rng(7)
    t = rng.integers(0, 50, size=shape[:-1] + (1,) if pivot[-1] > 1 else shape).astype(float)
    late = t + rng.integers(0, 3, size=t.shape)
    back = rng.integers(0, 50, size=pivot).astype(float)

    def fn(out, x, xl, b):
        np.less(x, b, out=out[0])
        clear_of(x, xl, b, out=out[1], spare=out[2])

    got = versus(fn, t, late, back, masks=2)
    want = (t < back, clear_of(t, late, back))
    for g, w in zip(got, want):
        assert g.shape == np.broadcast_shapes(t.shape, back.shape) and g.flags.c_contiguous
        assert (g == np.broadcast_to(w, g.shape)).all()


@pytest.mark.parametrize("a_shape,b_shape", [((4, 5, 1, 6), (4, 5, 3, 1)), ((4, 5, 3, 1), (4, 5, 1, 6)),
                                             ((4, 5, 3, 6), ()), ((), (4, 5, 3, 6))])
def test_select_into_is_np_where_whichever_operand_it_copies_under_the_mask(a_shape, b_shape):
    """kalab.families.grid.select_into: np.where written in place, either order of its two copies."""
    from kalab.families.grid import select_into
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=a_shape), rng.uniform(size=b_shape)
    mask = rng.uniform(size=(4, 5, 3, 6)) < 0.5
    out = np.empty(mask.shape)
    select_into(out, mask, a, b)
    assert out.tobytes() == np.where(mask, a, b).tobytes()
    select_into(out, mask, a, b, not_mask=~mask)
    assert out.tobytes() == np.where(mask, a, b).tobytes()
