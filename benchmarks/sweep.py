"""Sweep speed: points per second on a 10^6-point keepalive x outage grid, against a numpy floor.

Target (issue 5): >= 10^7 points/s on one core and within 5x of the floor measured in the same run
(a plain numpy expression touching the same per-point arrays).  Also the fallback's points/s.
``--memory``: a 10^8-point grid written to disk (``sweep(out=...)``), peak memory (target 1 GiB).

    python benchmarks/sweep.py
    python benchmarks/sweep.py --memory
"""

from __future__ import annotations

import time

import numpy as np

from kalab.sweep import sweep

BASE = {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
        "faults": [{"kind": "link_down", "at_s": 1, "for_s": 60}], "until_s": 1e6}
AXES = {"client.socket.TCP_KEEPIDLE": np.arange(1, 101), "client.socket.TCP_KEEPINTVL": np.arange(1, 11),
        "client.socket.TCP_KEEPCNT": np.arange(1, 11), "faults.0.for_s": np.geomspace(1, 3600, 100).round(3)}


def best(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = fn()
        out.append(time.perf_counter() - t)
    return min(out), r


def main() -> None:
    pts = int(np.prod([len(v) for v in AXES.values()]))
    t_sweep, res = best(lambda: sweep(BASE, AXES))
    g = np.meshgrid(*[np.asarray(v, dtype=float) for v in AXES.values()], indexing="ij")
    idle, intvl, cnt, out = (x.ravel() for x in g)
    t_floor, _ = best(lambda: (1 + out) > idle + intvl * (cnt - 1))
    print(f"grid: {pts:,} points ({res.stats['vectorized']:,} vectorized, {res.stats['simulated']:,} simulated)")
    print(f"sweep (incl. axis validation and chunking): {t_sweep:.3f} s = {pts / t_sweep:,.0f} points/s "
          f"(vectorized part {res.stats['vectorized_s']:.3f} s = {pts / res.stats['vectorized_s']:,.0f} points/s)")
    print(f"numpy floor (idle + intvl*(cnt-1) < outage end on the same arrays): {t_floor:.4f} s = "
          f"{pts / t_floor:,.0f} points/s; sweep / floor = {res.stats['vectorized_s'] / t_floor:.1f}x")
    small = {"client.app.options.ServerAliveInterval": np.arange(1, 41)}
    ssh = {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd"}},
           "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 3000}
    t_fb, r = best(lambda: sweep(ssh, small), 1)
    print(f"fallback (simulate per point, ssh ServerAlive): {r.stats['points'] / t_fb:,.0f} points/s")


if __name__ == "__main__" and "--memory" not in __import__("sys").argv:
    main()


def memory_1e8(directory: str) -> None:
    """A 10^8-point grid written to disk: peak memory of the process (target: within 1 GiB)."""
    import resource
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 101), "client.socket.TCP_KEEPINTVL": np.arange(1, 101),
            "client.socket.TCP_KEEPCNT": np.arange(1, 101), "faults.0.for_s": np.arange(1, 101)}
    t = time.perf_counter()
    res = sweep(BASE, axes, out=directory)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sample = res["client"]["at_s"][0, 0, 0, :5]   # reading a few values touches a few pages only
    print(f"10^8 points to {directory}: {dt:.1f} s ({1e8 / dt:,.0f} points/s), peak RSS {peak:,.0f} MiB "
          f"(target 1024 MiB); sample client at_s {sample}")


if __name__ == "__main__" and "--memory" in __import__("sys").argv:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="kalab-sweep-") as d:
        memory_1e8(d)
