"""telnetd keepalive flags (timers.md §8).

* Linux (inetutils/netkit, BSD-derived) and FreeBSD: telnetd sets
  ``SO_KEEPALIVE`` unless ``-n`` is given; the OS keepalive then decides.
  (In BSD telnetd, ``-k`` is *kludge linemode*, not keepalive.)
* SCO UnixWare 7 / OpenServer ``in.telnetd``: ``-n`` disables keepalive;
  ``-k n`` idle seconds before the first probe, ``-K n`` seconds between probes,
  ``-N n`` unanswered probes before dropping.  Defaults: the system TCP values.
  The exact drop rule is unverified; kalab applies the host's rule with these values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TelnetdKeepalive:
    enabled: bool
    idle_s: float | None = None
    interval_s: float | None = None
    count: int | None = None


SCO_FLAGS = {"-k": "idle_s", "-K": "interval_s", "-N": "count"}


def parse_flags(flags: list[str], sco: bool) -> TelnetdKeepalive:
    """Interpret telnetd's command-line flags; raises ``ValueError`` naming the flag."""
    enabled, values = True, {}
    i = 0
    while i < len(flags):
        f = flags[i]
        if f in ("-n", "--no-keepalive"):
            enabled = False
        elif sco and f in SCO_FLAGS:
            if i + 1 >= len(flags):
                raise ValueError(f"{f} needs a number")
            try:
                n = int(flags[i + 1])
            except ValueError:
                raise ValueError(f"{f} needs a whole number, got {flags[i + 1]!r}") from None
            if n < 1:
                raise ValueError(f"{f} must be >= 1, got {n}")
            values[SCO_FLAGS[f]] = n
            i += 1
        elif f in SCO_FLAGS:
            raise ValueError(f"{f} is a keepalive flag only on SCO telnetd (os 'sco-openserver'); "
                             "on Linux/BSD telnetd only -n affects keepalive")
        elif not f.startswith("-"):
            raise ValueError(f"unexpected argument {f!r}")
        i += 1
    return TelnetdKeepalive(enabled=enabled, **values)
