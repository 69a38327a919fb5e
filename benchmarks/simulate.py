"""How fast is simulate()?  Prints figures; not a test (shared machines are noisy).

Targets (issue 2): a run of ~10^4 events (5 days behind a NAT with 75 s keepalives)
in under 50 ms; an ordinary scenario in under 2 ms.  Issue 12: "is this idle session alive after a
year?" answered by fast-forward in well under a second, at small memory.

    python benchmarks/simulate.py
"""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc
from pathlib import Path

import kalab
from kalab.scenario import load

ROOT = Path(__file__).resolve().parent.parent

LONG = {
    "name": "5 days behind a NAT with 75 s keepalives",
    "client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 75, "TCP_KEEPINTVL": 75}},
    "server": {},
    "path": {"middleboxes": [{"preset": "aws-nat"}]},
    "until_s": 5 * 86400,
}


def bench(label: str, scenario, repeat: int) -> None:
    sc = load(scenario)  # parse once: we time the simulation
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = kalab.simulate(sc)
        times.append(time.perf_counter() - t0)
    n = len(r.events)
    best, med = min(times), statistics.median(times)
    print(f"{label:<52} {n:>7} events  best {best * 1e3:8.2f} ms  median {med * 1e3:8.2f} ms  "
          f"({best / max(n, 1) * 1e6:.2f} us/event = {best / max(n, 1) * 1e4 * 1e3:.1f} ms per 10^4 events)")


YEAR = 365 * 86400
IDLE_YEAR = {
    "name": "idle ssh session for a year (ServerAlive 15 s)",
    "client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}},
    "server": {"app": {"kind": "sshd"}},
    "until_s": YEAR,
}
PROBES_YEAR = {
    "name": "idle session for a year, keepalive probes every 1 s",
    "client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 1}},
    "server": {},
    "until_s": YEAR,
}


def bench_fast_forward(scenario, repeat: int = 5) -> None:
    """Time (best of ``repeat``, without tracemalloc) and peak memory (one more run, traced)."""
    sc = load(scenario)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = kalab.simulate(sc)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    kalab.simulate(sc)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    skipped = sum(x.cycles * x.events_per_cycle for x in r.repeats if x.events_per_cycle)
    print(f"{scenario['name']:<52} {len(r.events):>7} events  best {min(times) * 1e3:8.2f} ms  "
          f"peak {peak / 1e6:6.2f} MB  (fast-forward: {len(r.repeats)} jumps over {skipped:,} events; "
          f"client {r.client.fate}, server {r.server.fate})")


def main() -> None:
    bench_fast_forward(IDLE_YEAR)
    bench_fast_forward(PROBES_YEAR)
    bench(LONG["name"], LONG, 25)
    for name in ("ssh-serveralive-15-cable-unplugged", "user-timeout-below-keepidle", "graceful-close-time-wait",
                 "aws-nat-idle-ssh", "syn-timeout-6.18", "linux-defaults-2h11m15s"):
        bench(name, json.loads((ROOT / "examples" / f"{name}.json").read_text()), 50)
    t0 = time.perf_counter()
    for _ in range(200):
        load(json.loads((ROOT / "examples/design-contract-example.json").read_text()))
    print(f"{'load() of examples/design-contract-example.json':<52} {'':>7}         {(time.perf_counter() - t0) / 200 * 1e3:8.3f} ms each")


if __name__ == "__main__":
    main()
