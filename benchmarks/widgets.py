"""Slider change -> updated figure, Python side (simulate + new figure dict for the live figure).  Prints figures.

Target (issue 4): under 50 ms for the notebook scenarios.  The end-to-end time in a real
browser is measured by tests/test_browser.py and printed there.

    python benchmarks/widgets.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from kalab.widgets import control, explore

ROOT = Path(__file__).resolve().parent.parent


def ex(name):
    return json.loads((ROOT / "examples" / f"{name}.json").read_text())


CASES = [
    ("00/03 ssh, cable unplugged", ex("ssh-serveralive-15-cable-unplugged"),
     control("client.app.options.ServerAliveInterval", 1, 120), [5, 15, 30, 60, 120]),
    ("01 Linux keepalive defaults", ex("linux-defaults-2h11m15s"),
     control("client.socket.TCP_KEEPIDLE", 1, 7200), [60, 600, 3600, 7200]),
    ("02 data in flight", ex("retransmission-tcp-retries2-default"),
     control("client.sysctl.net.ipv4.tcp_retries2", 1, 15), [3, 8, 15]),
    ("04 sshd ClientAlive", ex("sshd-9.2-clientalive-doubled"),
     control("server.app.options.ClientAliveInterval", 1, 120), [5, 15, 60]),
    ("05 AWS NAT", ex("aws-nat-with-serveralive"),
     control("client.app.options.ServerAliveInterval", 0, 600, 10), [0, 60, 300, 400]),
    ("07 lunch break", ex("laptop-lunch-with-clientalive"),
     control("faults.0.for_s", 60, 7200, 60), [600, 1800, 3600]),
    ("07 fresh data every 15 min", ex("fresh-data-every-15-minutes"),
     control("client.socket.TCP_USER_TIMEOUT", 0, 120000, 5000), [0, 30000, 120000]),
]


def main() -> None:
    for label, sc, ctl, values in CASES:
        e = explore(sc, ctl)
        times = []
        for _ in range(5):
            for v in values:
                e.set(ctl.key, v)
                times.append(e.last_update_s * 1e3)
        print(f"{label:<32} update: median {statistics.median(times):6.2f} ms, max {max(times):6.2f} ms "
              f"({len(e.result.events)} events)")


if __name__ == "__main__":
    main()
