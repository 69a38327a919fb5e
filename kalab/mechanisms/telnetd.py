"""telnetd keepalive flags (docs/mechanisms.md §telnetd).

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
#: Flags that take no argument and leave keepalive alone, accepted on every telnetd (inetutils/netkit
#: and BSD): -h (no host info before login), -l (linemode), -U (reverse lookup must succeed).
#: Any other flag is refused: kalab would not know whether it changes keepalive.
NEUTRAL_FLAGS = ("-h", "--no-hostinfo", "-l", "--linemode", "-U", "--reverse-lookup")
OFF_FLAGS = ("-n", "--no-keepalive")
#: The largest -k/-K/-N value (an int socket option).
MAX_SCO_VALUE = 2**31 - 1


def describe(sco: bool) -> str:
    """The flags kalab reads, for error messages."""
    extra = ", -k N, -K N, -N N (N: 1..2147483647)" if sco else ""
    return ", ".join(OFF_FLAGS + NEUTRAL_FLAGS) + extra


def parse_flags(flags: list[str], sco: bool) -> TelnetdKeepalive:
    """Interpret telnetd's command-line flags; raises ``ValueError`` naming the flag."""
    enabled, values = True, {}
    i = 0
    while i < len(flags):
        f = flags[i]
        if f in OFF_FLAGS:
            enabled = False
        elif sco and f in SCO_FLAGS:
            if i + 1 >= len(flags):
                raise ValueError(f"{f} needs a number")
            arg = flags[i + 1]
            # ASCII digits, at most 10 of them (int() would take "7_200", "+5", non-ASCII digits and
            # 5,000 digits; the value is an int socket option).
            if not (isinstance(arg, str) and arg.isascii() and arg.isdigit() and len(arg.lstrip("0")) <= 10):
                raise ValueError(f"{f} needs a whole number of at most 10 digits, got {_short(arg)}")
            n = int(arg)
            if not 1 <= n <= MAX_SCO_VALUE:
                raise ValueError(f"{f} must be 1..{MAX_SCO_VALUE}, got {n}")
            values[SCO_FLAGS[f]] = n
            i += 1
        elif f in SCO_FLAGS:
            raise ValueError(f"{f} is a keepalive flag only on SCO telnetd (os 'sco-openserver'); "
                             "on Linux/BSD telnetd only -n affects keepalive")
        elif f in NEUTRAL_FLAGS:
            pass
        elif isinstance(f, str) and f.startswith("-"):
            raise ValueError(f"unknown telnetd flag {_short(f)} (kalab cannot tell whether it changes keepalive; "
                             "leave out flags that do not)")
        else:
            raise ValueError(f"unexpected argument {_short(f)}")
        i += 1
    return TelnetdKeepalive(enabled=enabled, **values)


def _short(x) -> str:
    r = repr(x)
    return r if len(r) <= 60 else r[:50] + f"... ({len(r):,} characters)"
