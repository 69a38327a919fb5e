"""Durations: parsing, formatting, and native-unit conversion at the edge.

Inside kalab every time is a float number of seconds (``_s`` suffix).  Users
meet timers in many units -- Linux sysctls in seconds, ``TCP_USER_TIMEOUT`` in
milliseconds, macOS ``net.inet.tcp.keepidle`` in milliseconds, AIX in
half-seconds -- so conversion happens once, when a scenario is loaded
(:mod:`kalab.native`), using the factors defined here.
"""

from __future__ import annotations

import math
import re

import numpy as np

#: Seconds per native unit, by unit name as written in the settings tables.
UNIT_SECONDS: dict[str, float] = {
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "min": 60.0,
    "half-s": 0.5,
}

_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|seconds?|secs|sec|s|minutes?|mins|min|m|hours?|h|days?|d|weeks?|w)?", re.I)
_FACTOR = {
    "ms": 1e-3, "us": 1e-6,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}


def parse_duration(text: str | int | float) -> float:
    """Parse a duration into seconds [s].

    Accepts plain numbers (seconds), OpenSSH's time format (``"5m"``,
    ``"1h30m"``, sshd_config(5) TIME FORMATS) and spaced forms
    (``"2 h 11 min 15 s"``).  Raises ``ValueError`` naming the text otherwise.

    >>> parse_duration("2 h 11 min 15 s")
    7875.0
    >>> parse_duration("1h30m")
    5400.0
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int) and not -2**1000 < text < 2**1000:     # (float() would overflow)
        raise ValueError(f"duration must be finite and >= 0, got an integer of {text.bit_length()} bits")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = text.strip()
        if not s:
            raise ValueError("empty duration")
        pos, total, parts = 0, 0.0, 0
        while pos < len(s):
            m = _PART.match(s, pos)
            if not m or m.end() == pos:
                raise ValueError(f"not a duration: {text!r} (e.g. '90', '1h30m', '2 h 11 min 15 s')")
            total += float(m.group(1)) * _FACTOR[(m.group(2) or "s").lower()]
            pos, parts = m.end(), parts + 1
            while pos < len(s) and s[pos] in " ,":
                pos += 1
        value = total
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"duration must be finite and >= 0, got {text!r}")
    return value


#: sshd_config(5) TIME FORMATS qualifiers, in seconds (misc.c: SECONDS .. WEEKS).
TIME_QUALIFIERS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_PART = re.compile(r"([0-9]+)([sSmMhHdDwW]?)")   # ASCII digits only, as isdigit() in misc.c
#: The largest total ``convtime`` returns (``INT_MAX``: misc.c refuses more).
_CONVTIME_MAX = 2**31 - 1


def convtime(text: str) -> int | None:
    """OpenSSH's ``convtime()`` (misc.c): seconds from a TIME FORMATS string, or None where OpenSSH
    returns -1 and refuses the configuration ("invalid time value").  The one grammar for OpenSSH
    times in kalab: ssh_config/sshd_config files and a scenario's ssh/sshd ``options`` both use it.

    A non-empty sequence of ``digits[qualifier]``; a qualifier is one of ``s m h d w`` (either case);
    digits without one are seconds.  No sign, no fraction, no spaces; the total must fit an ``int``.

    >>> convtime("1h30m"), convtime("90"), convtime("5M"), convtime("1h30")
    (5400, 90, 300, 3630)
    >>> convtime("1.5h") is None and convtime("") is None and convtime("-5") is None and convtime("5x") is None
    True
    """
    if not text or not isinstance(text, str):
        return None
    total, pos = 0, 0
    while pos < len(text):
        m = _TIME_PART.match(text, pos)
        digits = m.group(1).lstrip("0") if m else ""
        if m is None or len(digits) > 10:                # (past INT_MAX anyway: no int() of 5,000 digits)
            return None
        total += int(digits or "0") * TIME_QUALIFIERS[m.group(2).lower()]
        if total > _CONVTIME_MAX:
            return None
        pos = m.end()
        if not m.group(2) and pos < len(text):       # bare digits end the string (else: a bad qualifier)
            return None
    return total


#: What :func:`openssh_time` accepts, for error messages.
TIME_FORMATS_HELP = "TIME FORMATS: digits with an optional s, m, h, d or w each, e.g. 90, 5m, 1h30m"


def openssh_time(text: str) -> int | None:
    """An OpenSSH time option's value [s]: :func:`convtime`, and ``none`` as 0 (``ssh -G`` prints
    ``connecttimeout none``); None where ssh/sshd refuse the value."""
    if isinstance(text, str) and text.lower() == "none":
        return 0
    return convtime(text)


def format_duration(seconds: float | None) -> str:
    """Format seconds in words the article uses: ``7875 -> "2 h 11 min 15 s"``.

    Sub-second values keep milliseconds (``0.204 -> "204 ms"``, ``61.5 ->
    "1 min 1.5 s"``); ``None`` (no death) formats as ``"never"``.
    """
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "never"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        ms = round(seconds * 1000, 1)
        return f"{ms:g} ms"
    whole = int(seconds)
    frac = round(seconds - whole, 3)
    if frac >= 1:
        whole, frac = whole + 1, 0.0
    d, rem = divmod(whole, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    out = []
    if d:
        out.append(f"{d} d")
    if h:
        out.append(f"{h} h")
    if m:
        out.append(f"{m} min")
    sec = s + frac
    if sec or not out:
        out.append(f"{sec:g} s")
    return " ".join(out)


#: The kernel tick rate (``CONFIG_HZ``) of a host whose scenario does not say: 250, Debian's and
#: Ubuntu's kernels and the lab's (docs/lab.md).  One tick is 4 ms.
DEFAULT_HZ = 250


def ceil_ticks(seconds, hz: int):
    """Whole kernel ticks (jiffies) for a delay [s], rounded up as ``msecs_to_jiffies`` and
    ``usecs_to_jiffies`` do (``include/linux/jiffies.h``): ``max(0, ceil(seconds * hz))``.

    The one rounding to jiffies in kalab: the event path arms its timers with it
    (:meth:`kalab.host.Host.kernel_timer`), the mechanisms round ``TCP_USER_TIMEOUT`` and the
    RTO with it, and :mod:`kalab.slack` finds a timer's wheel level from it.  A tiny tolerance
    (1e-9 tick) keeps binary floating point from turning an exact ``0.2 s * 250 Hz = 50`` into 51
    (docs/mechanisms.md §Timer slack).

    ``seconds`` is a number (an ``int`` back) or a numpy array (an array of whole numbers back, as
    floats).

    >>> ceil_ticks(0.2, 250), ceil_ticks(0.201, 250), ceil_ticks(0, 1000)
    (50, 51, 0)
    """
    if isinstance(seconds, np.ndarray):
        return np.maximum(0, np.ceil(seconds * hz - 1e-9))
    return max(0, math.ceil(seconds * hz - 1e-9))
