"""Sweep speed: points per second of the vectorized families against a numpy floor, the per-point
fallback, and the fallback on several cores (processes, a Dask cluster).

Targets: >= 10^7 points/s on one core (issue 5); the keepalive family within 4x of the floor on any
of its grids (issue 18: the floor is a plain numpy expression over the same per-point arrays,
``(1 + outage) > idle + intvl * (cnt - 1)``, warm -- run once first, into arrays made once as the
family writes into the result's; the allocating expression is printed beside it -- and the best of
ROUNDS runs interleaved with the family's, so both see the same machine); a grid of simulated points >= 1.7x
faster on 2 processes than on one (issue 18).  The machine is shared: the load average is printed
with the figures.  ``--memory``: a 10^8-point grid written to disk (``sweep(out=...)``), peak
memory (target 1 GiB); and the fallback's allocation peak at two numbers of simulated points (it
streams: no growth).  ``--parallel``: only the executor figures; ``--floor``: only the keepalive
family against its floor (its closed form, block by block as sweep() cuts the grid, into warm result
arrays; the points it leaves to the simulator are counted, not simulated); with ``--orders`` also on
the same points in other layouts (GRID_ORDERS).  The allocating floor is timed after the interleaved
rounds, not among them: its 8 MB temporaries grow and trim the C heap, which would then fault in
whatever runs next.

    python benchmarks/sweep.py
    python benchmarks/sweep.py --floor [--orders]
    python benchmarks/sweep.py --parallel
    python benchmarks/sweep.py --memory
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from kalab.sweep import sweep

BASE = {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
        "faults": [{"kind": "link_down", "at_s": 1, "for_s": 60}], "until_s": 1e6}
AXES = {"client.socket.TCP_KEEPIDLE": np.arange(1, 101), "client.socket.TCP_KEEPINTVL": np.arange(1, 11),
        "client.socket.TCP_KEEPCNT": np.arange(1, 11), "faults.0.for_s": np.geomspace(1, 3600, 100).round(3)}


SSH = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}}, "server": {"app": {"kind": "sshd"}},
       "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 20000}
#: One grid per vectorized family (printed with the share of points the closed form covered).
FAMILY_GRIDS = {
    "retransmission": ({"client": {}, "server": {}, "traffic": [{"at_s": 1, "from": "client"}],
                        "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 100000},
                       {"client.sysctl.net.ipv4.tcp_retries2": np.arange(3, 16), "traffic.0.at_s": np.arange(1, 101),
                        "faults.0.for_s": np.geomspace(1, 3600, 200).round(3)}),
    "ssh ServerAlive": (SSH, {"client.app.options.ServerAliveInterval": np.arange(1, 301),
                              "client.app.options.ServerAliveCountMax": np.arange(0, 11),
                              "faults.0.for_s": np.geomspace(1, 3600, 100).round(3)}),
    "sshd ClientAlive": ({"client": {"app": {"kind": "ssh"}},
                          "server": {"app": {"kind": "sshd", "options": {"ClientAliveInterval": 10}}},
                          "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 20000},
                         {"server.app.options.ClientAliveInterval": np.arange(1, 1001),
                          "server.app.options.ClientAliveCountMax": np.arange(0, 11),
                          "server.sysctl.net.ipv4.tcp_retries2": np.arange(5, 16)}),
    "retx, srv reboot": ({"client": {}, "server": {}, "traffic": [{"at_s": 1, "from": "client"}],
                          "faults": [{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 60}],
                          "until_s": 100000},
                         {"client.sysctl.net.ipv4.tcp_retries2": np.arange(3, 16), "traffic.0.at_s": np.arange(1, 101),
                          "faults.0.down_s": np.geomspace(1, 3600, 200).round(3)}),
    "ssh, srv reboot": (dict(SSH, faults=[{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 60}]),
                        {"client.app.options.ServerAliveInterval": np.arange(1, 301),
                         "client.app.options.ServerAliveCountMax": np.arange(0, 11),
                         "faults.0.down_s": np.geomspace(1, 3600, 100).round(3)}),
    "sshd, cli crash": ({"client": {"app": {"kind": "ssh"}},
                         "server": {"app": {"kind": "sshd", "options": {"ClientAliveInterval": 10}}},
                         "faults": [{"kind": "host_crash", "side": "client", "at_s": 1}], "until_s": 20000},
                        {"server.app.options.ClientAliveInterval": np.arange(1, 1001),
                         "server.app.options.ClientAliveCountMax": np.arange(0, 11),
                         "server.sysctl.net.ipv4.tcp_retries2": np.arange(5, 16)}),
    "NAT expiry": ({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
                    "path": {"middleboxes": [{"preset": "aws-nat"}]}, "until_s": 20000},
                   {"client.socket.TCP_KEEPIDLE": np.arange(1, 1001), "client.socket.TCP_KEEPINTVL": np.arange(1, 101),
                    "path.middleboxes.0.idle_timeout_s": np.arange(60, 660, 60)}),
}


#: Rounds of the interleaved speed measurement (best of each).
ROUNDS = 15


def best(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = fn()
        out.append(time.perf_counter() - t)
    return min(out), r


#: The issue-18 grid: idle 1-100 s x interval 1-100 s x count 1-10 x outage 5-500 s (10^6 points).
ISSUE18_AXES = {"client.socket.TCP_KEEPIDLE": np.arange(1, 101), "client.socket.TCP_KEEPINTVL": np.arange(1, 101),
                "client.socket.TCP_KEEPCNT": np.arange(1, 11), "faults.0.for_s": np.linspace(5, 500, 10)}
#: The keepalive family's other faults, over the same 10^6-point settings (the rtt in place of the outage).
HOST_FAULT_AXES = {k: v for k, v in ISSUE18_AXES.items() if k != "faults.0.for_s"} | \
    {"path.rtt_ms": np.linspace(0.1, 50, 10)}


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def keepalive_vs_floor(label: str, base: dict, axes: dict) -> None:
    """The family's closed form against the floor on the same grid: the family's blocks as sweep() cuts
    them (``block_shape``), written into warm result arrays, and the floor, both warm, best of ROUNDS,
    interleaved.  The points the family leaves to the simulator (timing corners, races) are counted,
    not simulated: that is the fallback's figure, below."""
    from kalab.families import family_for
    from kalab.families.grid import forget
    from kalab.scenario import load

    ks = sys.modules["kalab.sweep"]
    g = np.meshgrid(*[np.asarray(v, dtype=float) for v in axes.values()], indexing="ij")
    idle, intvl, cnt, last = (x.ravel() for x in g)
    pts = idle.size
    sc = load(base)
    fam = family_for(sc, set(axes))
    assert fam is not None and fam.name == "keepalive", fam
    shape = tuple(len(v) for v in axes.values())
    data = {side: {f: np.empty(shape, dt) for f, dt in ks.FIELDS.items()} for side in ks.SIDES}
    work = []
    for _, sl in ks.blocks(shape, ks.block_shape(shape, ks.CHUNK_POINTS)):
        cols = {k: np.asarray(v)[s].reshape([-1 if i == j else 1 for i in range(len(shape))])
                for j, ((k, v), s) in enumerate(zip(axes.items(), sl))}
        work.append((cols, {side: {f: data[side][f][sl] for f in ks.FIELDS} for side in ks.SIDES}, sl))

    def family() -> int:
        forget()                                                # as a sweep starts: nothing to reuse
        left = 0
        with np.errstate(invalid="ignore"):
            for cols, dest, sl in work:
                ok, res = fam.block(base, cols, sc, dest)
                for side in ks.SIDES:
                    for f in ks.FIELDS:
                        if res[side][f] is not dest[side][f]:
                            np.copyto(dest[side][f], res[side][f])
                if not np.all(ok):
                    ok = np.broadcast_to(ok, tuple(s.stop - s.start for s in sl))
                    left += ok.size - int(np.count_nonzero(ok))
        return left

    t1, t2, b = np.empty_like(idle), np.empty_like(idle), np.empty(idle.shape, dtype=bool)

    def floor():
        """The floor at its warmest: into arrays made once, as the family writes into the result's
        (an expression that allocates its temporaries pays their page faults on every call)."""
        np.add(last, 1, out=t1)
        np.subtract(cnt, 1, out=t2)
        np.multiply(intvl, t2, out=t2)
        np.add(idle, t2, out=t2)
        return np.greater(t1, t2, out=b)

    def floor_allocating():
        return (1 + last) > idle + intvl * (cnt - 1)

    left = family()
    floor()                                                     # all warm
    fams, floors, allocs = [], [], []
    for _ in range(ROUNDS):
        for fn, times in ((family, fams), (floor, floors)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    # The allocating floor after, not interleaved: its three 8 MB temporaries grow the C heap past
    # its trim threshold, and the heap given back would be faulted in again by whatever runs next --
    # a cost of the floor's, not of the family's.
    floor_allocating()
    for _ in range(ROUNDS):
        t = time.perf_counter()
        floor_allocating()
        allocs.append(time.perf_counter() - t)
    t_fam, t_floor, t_alloc = min(fams), min(floors), min(allocs)
    print(f"{label}: {pts:,} points, {left:,} left to the simulator; closed form {t_fam * 1e3:.1f} ms = "
          f"{pts / t_fam:,.0f} points/s; floor {t_floor * 1e3:.2f} ms (allocating its temporaries: "
          f"{t_alloc * 1e3:.2f} ms); closed form / floor = {t_fam / t_floor:.2f}x (/ allocating floor "
          f"{t_fam / t_alloc:.2f}x)")


_I, _V, _C = np.arange(1, 101), np.arange(1, 101), np.arange(1, 11)
_REBOOT = dict(BASE, faults=[{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 60}])
#: "Any grid of the family": the same 10^6 points with other axes innermost or outermost (the layout
#: is what costs: an innermost axis of few values is the hard case), the user timeout swept, the fault's
#: start swept.
GRID_ORDERS = {
    "outage outermost": (BASE, {"faults.0.for_s": np.linspace(5, 500, 10), "client.socket.TCP_KEEPIDLE": _I,
                                "client.socket.TCP_KEEPINTVL": _V, "client.socket.TCP_KEEPCNT": _C}),
    "run's end innermost": (BASE, {"client.socket.TCP_KEEPIDLE": _I, "client.socket.TCP_KEEPINTVL": _V,
                                   "client.socket.TCP_KEEPCNT": _C, "until_s": np.linspace(100, 2000, 10)}),
    "rtt innermost": (BASE, {"client.socket.TCP_KEEPIDLE": _I, "client.socket.TCP_KEEPINTVL": _V,
                             "client.socket.TCP_KEEPCNT": _C, "path.rtt_ms": np.linspace(0.1, 50, 10)}),
    "TCP_USER_TIMEOUT axis": (BASE, {"client.socket.TCP_KEEPIDLE": _I, "client.socket.TCP_KEEPINTVL": _V,
                                     "client.socket.TCP_USER_TIMEOUT": np.linspace(0, 600_000, 10),
                                     "faults.0.for_s": np.linspace(5, 500, 10)}),
    "outage start and length": (BASE, {"client.socket.TCP_KEEPIDLE": _I, "client.socket.TCP_KEEPINTVL": _V,
                                       "faults.0.at_s": np.arange(0, 10), "faults.0.for_s": np.linspace(5, 500, 10)}),
    "server crash, run's end innermost": (dict(BASE, faults=[{"kind": "host_crash", "side": "server", "at_s": 1}]),
                                          {"client.socket.TCP_KEEPIDLE": _I, "client.socket.TCP_KEEPINTVL": _V,
                                           "client.socket.TCP_KEEPCNT": _C, "until_s": np.linspace(100, 2000, 10)}),
    "server reboot, its length innermost": (_REBOOT, {"client.socket.TCP_KEEPIDLE": _I,
                                                      "client.socket.TCP_KEEPINTVL": _V, "client.socket.TCP_KEEPCNT": _C,
                                                      "faults.0.down_s": np.linspace(5, 500, 10)}),
}


def floors(orders: bool = False) -> None:
    """The keepalive family against the floor on four grids -- with ``orders``, also on GRID_ORDERS
    (interleaved, best of ROUNDS each: the family and its floor see the same machine, shared and noisy)."""
    keepalive_vs_floor("keepalive, outage 1-3600 s (100 values)", BASE, AXES)
    keepalive_vs_floor("keepalive, issue-18 grid (outage 5-500 s)", BASE, ISSUE18_AXES)
    for kind in ({"kind": "host_crash", "side": "server", "at_s": 1},
                 {"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 60}):
        keepalive_vs_floor(f"keepalive, server {kind['kind'][5:]}, rtt axis", dict(BASE, faults=[kind]),
                           HOST_FAULT_AXES)
    for name, (base, axes) in GRID_ORDERS.items() if orders else ():
        keepalive_vs_floor(f"keepalive, {name}", base, axes)


def main() -> None:
    print(load_average())
    floors()
    for name, (base, axes) in FAMILY_GRIDS.items():
        t, r = best(lambda: sweep(base, axes), 2)
        st = r.stats
        print(f"family {name:15s} {st['points']:>9,} points ({st['family']}: {st['vectorized'] / st['points']:.2%} "
              f"vectorized, {st['simulated']:,} simulated): {st['points'] / t:,.0f} points/s")
    small = {"client.app.options.ServerAliveInterval": np.arange(1, 41)}
    ssh = dict(SSH, client={"app": {"kind": "ssh"}, "monotime_phase_s": 0.5})  # a phase: outside the family
    sweep(ssh, small)
    t_fb, r = best(lambda: sweep(ssh, small), 3)
    print(f"fallback (simulate per point, ssh ServerAlive): {r.stats['points'] / t_fb:,.0f} points/s "
          f"({t_fb / r.stats['points'] * 1e6:.0f} us a point)")
    parallel()
    print(load_average())


#: A grid of simulated points (ssh's monotonic-clock phase puts it outside every family): 1,200 points.
SIMULATED_BASE = dict(SSH, client={"app": {"kind": "ssh"}, "monotime_phase_s": 0.5})
SIMULATED_AXES = {"client.app.options.ServerAliveInterval": np.arange(1, 121),
                  "client.app.options.ServerAliveCountMax": np.arange(0, 10)}
#: Runs of each way, best taken (interleaved: serial, processes, cluster, again).
PARALLEL_ROUNDS = 3


def parallel() -> None:
    """Serial points/s on a grid of simulated points, and the speed-up with 2 processes and with a
    LocalCluster of 2 single-threaded worker processes (pools started and warmed outside the timing)."""
    from concurrent.futures import ProcessPoolExecutor
    print(load_average(), "(before the executor figures)")
    base, axes = SIMULATED_BASE, SIMULATED_AXES
    pts = int(np.prod([len(v) for v in axes.values()]))
    times: dict[str, list[float]] = {"serial": [], "processes": [], "dask": []}
    cluster = client = None
    try:
        from dask.distributed import Client, LocalCluster
        t = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        print(f"LocalCluster (2 worker processes) up in {time.perf_counter() - t:.1f} s")
    except ImportError:
        print("dask.distributed is not installed (pip install 'kalab[sweep]'): no cluster figure")
    with ProcessPoolExecutor(2) as pool:
        ways = {"serial": None, "processes": pool, "dask": client}
        ref = sweep(base, axes)
        for ex in (pool, client):
            if ex is not None:
                sweep(base, {k: v[:4] for k, v in axes.items()}, executor=ex)           # warm the workers
        for _ in range(PARALLEL_ROUNDS):
            for name, ex in ways.items():
                if name == "dask" and ex is None:
                    continue
                t = time.perf_counter()
                r = sweep(base, axes, executor=ex)
                times[name].append(time.perf_counter() - t)
                assert r.stats["simulated"] == pts
                for side in ("client", "server"):
                    for f in ("at_s", "latest_s", "by", "fate"):
                        assert np.asarray(r.codes(side)[f]).tobytes() == np.asarray(ref.codes(side)[f]).tobytes()
        blocks = r.stats["blocks"]
    if client is not None:
        client.close()
        cluster.close()
    serial = min(times["serial"])
    print(f"simulated grid: {pts:,} points, every one simulated; serial {pts / serial:,.0f} points/s "
          f"({serial / pts * 1e6:.0f} us a point)")
    p = min(times["processes"])
    print(f"  ProcessPoolExecutor(2): {pts / p:,.0f} points/s, speed-up {serial / p:.2f}x (target >= 1.7x)")
    if times["dask"]:
        d = min(times["dask"])
        print(f"  dask LocalCluster, 2 worker processes: {pts / d:,.0f} points/s, speed-up {serial / d:.2f}x "
              f"({blocks} blocks of the grid; every result identical to the serial sweep, byte for byte)")
    print(load_average(), "(after)")


if __name__ == "__main__" and "--parallel" in sys.argv:
    parallel()
elif __name__ == "__main__" and "--floor" in sys.argv:
    print(load_average())
    floors(orders="--orders" in sys.argv)
    print(load_average())
elif __name__ == "__main__" and "--memory" not in sys.argv:
    main()


def memory_1e8(directory: str) -> None:
    """A 10^8-point grid written to disk: peak memory of the process (target: within 1 GiB).

    The link stays down and the rtt is the fourth axis: no point races a timer against the link's
    return (kalab.timing), so none is simulated and the figure is the closed form's and the disk's.
    (With the outage swept instead, as before the timing corners, points race the link's return:
    0.26 % of the grid's first tenth goes to the simulator, and the run takes most of an hour.)"""
    import resource
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 101), "client.socket.TCP_KEEPINTVL": np.arange(1, 101),
            "client.socket.TCP_KEEPCNT": np.arange(1, 101), "path.rtt_ms": np.arange(1, 101)}
    t = time.perf_counter()
    res = sweep(dict(BASE, faults=[{"kind": "link_down", "at_s": 1, "for_s": None}]), axes, out=directory)
    assert res.stats["simulated"] == 0, res.stats
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sample = res["client"]["at_s"][0, 0, 0, :5]   # reading a few values touches a few pages only
    print(f"10^8 points to {directory}: {dt:.1f} s ({1e8 / dt:,.0f} points/s), peak RSS {peak:,.0f} MiB "
          f"(target 1024 MiB); sample client at_s {sample}")


def fallback_memory(directory: str) -> None:
    """The per-point fallback streams: its allocation peak (tracemalloc) does not grow with the number
    of simulated points (the result arrays are on disk, ``out=``)."""
    import os
    import tracemalloc
    ssh = dict(SSH, client={"app": {"kind": "ssh"}, "monotime_phase_s": 0.5})   # outside every family
    peaks = {}
    for n in (1500, 6000):
        axes = {"client.app.options.ServerAliveInterval": np.arange(1, n + 1)}
        tracemalloc.start()
        t = time.perf_counter()
        sweep(ssh, axes, out=os.path.join(directory, str(n)), progress=False)
        dt = time.perf_counter() - t
        peaks[n] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"fallback, {n:,} simulated points: {dt:.1f} s, allocation peak {peaks[n]:.2f} MiB")
    print(f"fallback peak ratio 6000/1500 points: {peaks[6000] / peaks[1500]:.2f} (1.0 = independent of the count)")


if __name__ == "__main__" and "--memory" in sys.argv:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="kalab-sweep-") as d:
        memory_1e8(d)
        fallback_memory(d)
