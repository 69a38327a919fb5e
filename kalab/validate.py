"""Checking one value against its key's type and range, for scenarios and config files alike: every
refusal is a :class:`~kalab.errors.ScenarioError` naming the key, the value and what is allowed."""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from .errors import ScenarioError, closest, show, unknown_key


def check_keys(d: Any, path: str, allowed) -> Mapping:
    """``d`` is an object whose keys are all in ``allowed`` (an unknown one is refused with the closest name)."""
    if not isinstance(d, Mapping):
        raise ScenarioError(path, f"must be an object, got {type(d).__name__} {show(d)}")
    for k in d:
        if not isinstance(k, str) or k not in allowed:
            raise unknown_key(path, str(k), allowed)
    return d


def number(value: Any, key: str, lo: float, hi: float, *, integer: bool = False, unit: str = "",
           source: str = "") -> float:
    """A number (a whole one if ``integer``) in ``lo..hi``, finite; not a bool.  ``unit`` and ``source``
    go into the refusal's range."""
    allowed = f"{fmt(lo)}..{fmt(hi)}{(' ' + unit) if unit else ''}" + (f" ({source})" if source else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(key, f"must be {'a whole number' if integer else 'a number'}, got "
                            f"{type(value).__name__} {show(value)}", value=value, allowed=allowed)
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(key, f"must be finite, got {value!r}", value=value, allowed=allowed)
    # The range first, compared exactly (int vs float): float() of a 400-digit int overflows, and a
    # 5,000-digit int cannot even be printed (show() gives its size instead).
    if not lo <= value <= hi:
        raise ScenarioError(key, f"{show(value)} is out of range", value=value, allowed=allowed)
    if integer and not float(value).is_integer():
        raise ScenarioError(key, f"must be a whole number, got {value!r}", value=value, allowed=allowed)
    return int(value) if integer else float(value)


def fmt(x: float) -> str:
    """``3.0`` as ``3``, ``0.5`` as ``0.5``: a range bound as a person writes it."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def choice(value: Any, key: str, choices) -> str:
    """One of ``choices`` (a near miss is refused with "did you mean")."""
    if not isinstance(value, str) or value not in choices:
        guess = closest(str(value), choices) if isinstance(value, str) else None
        raise ScenarioError(key, f"{show(value)} is not valid", value=value, allowed=", ".join(choices),
                            hint=f"did you mean {guess!r}?" if guess else None)
    return value


def boolean(value: Any, key: str) -> bool:
    """true/false, or 0/1 as sysctls and socket options write it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ScenarioError(key, f"must be true/false or 0/1, got {show(value)}", value=value, allowed="0 or 1")


_VERSION = re.compile(r"([0-9]{1,9})\.([0-9]{1,9})(?:\.[0-9]{1,9})*")


def version(value: Any, key: str, lo: tuple[int, int], hi: tuple[int, int]) -> tuple[int, int]:
    """``"6.10"`` -> (6, 10).  A string only: the JSON number 6.10 *is* 6.1, so a number is refused
    with that hint rather than read as the wrong version."""
    allowed = f"{lo[0]}.{lo[1]}..{hi[0]}.{hi[1]}, as a string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ScenarioError(key, f"must be a string like \"{lo[0]}.{lo[1]}\", got the number {show(value)}",
                            value=value, allowed=allowed,
                            hint="write versions as strings: the JSON number 6.10 is 6.1, not 6.10")
    m = _VERSION.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ScenarioError(key, f"must be a version like \"{lo[0]}.{lo[1]}\", got {show(value)}", value=value,
                            allowed=allowed)
    v = (int(m.group(1)), int(m.group(2)))
    if not lo <= v <= hi:
        raise ScenarioError(key, f"{show(value)} is out of range", value=value, allowed=allowed)
    return v


def port_range(value: Any, key: str) -> tuple[int, int]:
    """Two whole port numbers: ``[32768, 60999]`` or ``"32768 60999"`` (as /proc/sys prints it).
    Not ``[1.5, 2.7]`` (int() would truncate), not ``[true, true]``, not ``"7_200 8000"``."""
    parts = value.split() if isinstance(value, str) else value
    allowed = "1 <= low <= high <= 65535"
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise ScenarioError(key, f"must be two port numbers like '32768 60999', got {show(value)}", value=value,
                            allowed=allowed)
    ports = []
    for p in parts:
        if isinstance(p, str) and re.fullmatch(r"[0-9]{1,5}", p):
            p = int(p)
        if isinstance(p, bool) or not isinstance(p, int):
            raise ScenarioError(key, f"must be two whole port numbers, got {show(value)}", value=value,
                                allowed=allowed)
        ports.append(p)
    lo, hi = ports
    if not 1 <= lo <= hi <= 65535:
        raise ScenarioError(key, f"{show(value)} is not a valid range", value=value, allowed=allowed)
    return (lo, hi)


__all__ = ["check_keys", "number", "fmt", "choice", "boolean", "version", "port_range"]
