"""Dotted keys: one place in a scenario dict named as text (``client.socket.TCP_KEEPIDLE``,
``faults.0.for_s``), as sweeps, levers, widgets and notebooks name what they vary."""

from __future__ import annotations

import copy
from typing import Any, Mapping

from .errors import ScenarioError, show


def split_key(key: str) -> list[str | int]:
    """``"client.sysctl.net.ipv4.tcp_keepalive_time"`` -> ``["client", "sysctl", "net.ipv4.tcp_keepalive_time"]``.

    Sysctl names contain dots, so everything after ``sysctl`` is one key; list
    positions are numbers (``"faults.0.for_s"``).
    """
    parts = key.split(".")
    out: list[str | int] = []
    for i, p in enumerate(parts):
        if out and out[-1] == "sysctl":
            out.append(".".join(parts[i:]))
            break
        out.append(int(p) if p.isascii() and p.isdigit() and len(p) <= 9 else p)   # (no int() of "²" or 5,000 digits)
    return out


def with_value(source: Mapping, key: str, value: Any) -> dict:
    """A copy of a scenario dict with one dotted key set; missing objects on the way are created.

    >>> with_value({"client": {}, "server": {}}, "client.socket.TCP_KEEPIDLE", 60)["client"]
    {'socket': {'TCP_KEEPIDLE': 60}}
    """
    return with_values(source, ((key, value),))


def with_values(source: Mapping, items) -> dict:
    """A copy of a scenario dict with several dotted keys set (``items``: (key, value) pairs, in
    order), copied once: what ``with_value`` one key after the other gives.

    >>> with_values({"client": {}, "server": {}}, [("client.hz", 1000), ("until_s", 60)])["until_s"]
    60
    """
    items = list(items)
    try:
        out = copy.deepcopy(dict(source))
    except RecursionError:
        raise ScenarioError(items[0][0] if items else "", "the scenario is nested too deeply to copy",
                            allowed="at most 32 levels") from None
    for key, value in items:
        _set(out, key, value)
    return out


def _set(out: dict, key: str, value: Any) -> None:
    """Set one dotted key of ``out`` in place (objects on the way created)."""
    node: Any = out
    parts = split_key(key)
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(p, int):
            if not isinstance(node, list) or p >= len(node):
                raise ScenarioError(key, f"no item {p} at {'.'.join(map(str, parts[:i]))}")
            node = node[p]
        else:
            if not isinstance(node, dict):
                raise ScenarioError(key, f"{'.'.join(map(str, parts[:i]))} is not an object")
            node = node.setdefault(p, [] if isinstance(nxt, int) else {})
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(key, f"no item {last}")
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise ScenarioError(key, f"{'.'.join(map(str, parts[:-1]))} is {show(node)}, not an object, so it has "
                                     f"no key {show(last)}")
        node[last] = value


__all__ = ["split_key", "with_value", "with_values"]
