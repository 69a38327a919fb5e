"""sysctl dumps: ``sysctl -a`` / ``sysctl net.ipv4`` and ``/proc/sys`` listings (Linux),
``sysctl net.inet.tcp`` (macOS, FreeBSD).

Accepted line shapes (one setting per line; ``#`` and ``;`` start comments, as in sysctl.conf):

* ``net.ipv4.tcp_keepalive_time = 7200``  (Linux ``sysctl -a``, sysctl.conf)
* ``net.inet.tcp.keepidle: 7200000``      (BSD ``sysctl``; note: milliseconds)
* ``/proc/sys/net/ipv4/tcp_keepalive_time:7200`` (``grep -r . /proc/sys/net/ipv4``) or
  ``/proc/sys/net/ipv4/tcp_keepalive_time 7200``

Keys kalab models (:mod:`kalab.native`) are validated like scenario keys; every other key is kept
in ``ignored`` (a full ``sysctl -a`` has a thousand).  Lines such as ``sysctl: permission denied on
key ...`` are reported in ``problems`` with their line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import native
from ..errors import ScenarioError, show
from ..validate import port_range
from .common import ConfigError, Origin, Problem, read_text

_KEY = re.compile(r"[A-Za-z0-9_./-]+")
#: A sysctl value kalab uses: an integer as the kernel's proc_dointvec reads it (ASCII digits, optional
#: minus sign; Python's int() would also take "7_200", "+5" and non-ASCII digits).
_INT = re.compile(r"-?[0-9]{1,20}")


def _split(s: str) -> tuple[str, str] | None:
    """``key = value``, ``key: value`` or ``key value`` -> (key, value); None if not that shape.

    By hand, not one regular expression: ``key\\s*[=:\\s]\\s*(.*?)\\s*$`` backtracks quadratically
    over a long run of spaces (a 100 kB line took a minute).  ``s`` is stripped.
    """
    m = _KEY.match(s)
    if not m:
        return None
    rest = s[m.end():]
    after = rest.lstrip()
    if after[:1] in ("=", ":"):
        return m.group(), after[1:].strip()
    if after != rest:                 # whitespace alone separates them
        return m.group(), after.strip()
    return None


@dataclass(frozen=True)
class SysctlDump:
    """A host's sysctls as read: ``values`` (native name -> value, in the native unit) with origins."""

    os: str
    values: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    ignored: tuple = ()
    problems: tuple = ()
    os_guessed: bool = False

    def scenario_sysctl(self) -> dict:
        return dict(self.values)


def _guess_os(keys: dict, given: str | None) -> tuple[str, bool]:
    if given:
        return given, False
    ostype = str(keys.get("kern.ostype", "")).lower()
    if "darwin" in ostype:
        return "macos", False
    if "freebsd" in ostype:
        return "freebsd", False
    if any(k.startswith("net.inet.") for k in keys):
        return "macos", True
    return "linux", not any(k.startswith(("net.ipv4.", "net.core.", "kernel.")) for k in keys)


def parse_sysctl(text: str, name: str = "<sysctl>", os_name: str | None = None) -> SysctlDump:
    """Parse a dump's text; ``os_name`` forces the OS (else ``kern.ostype`` or the key prefixes decide)."""
    raw: dict[str, tuple[str, Origin]] = {}
    problems: list[Problem] = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if s.startswith(";") or not s:
            continue
        if s.startswith("sysctl:") or s.startswith("grep:"):
            problems.append(Problem(Origin(name, n), f"not a setting: {show(s)}"))
            continue
        kv = _split(s)
        if kv is None or (not kv[1] and not s.endswith(("=", ":"))):
            problems.append(Problem(Origin(name, n), f"cannot read {show(s)} (expected 'key = value')"))
            continue
        key, value = kv
        if key.startswith("/proc/sys/"):
            key = key[len("/proc/sys/"):].replace("/", ".")
        key = key.lstrip("-")                     # sysctl.conf's '-key = value' (ignore errors) form
        raw.setdefault(key, (value, Origin(name, n)))  # a dump has each key once; keep the first
    os_guess, guessed = _guess_os({k: v for k, (v, _) in raw.items()}, os_name)
    table = native.TABLES[os_guess]["sysctl"]
    values, origins, ignored = {}, {}, []
    for key, (value, origin) in raw.items():
        spec = table.get(key)
        if spec is None:
            ignored.append(key)
            continue
        try:
            if spec.unit == "ports":
                port_range(value, key)
                v: object = " ".join(value.split())
            else:
                if not _INT.fullmatch(value):
                    raise ValueError(value)
                v = int(value)
                if not spec.lo <= v <= spec.hi:
                    raise ConfigError(origin, key, f"{v} is out of range", value=v, allowed=spec.describe_range())
        except ValueError as e:
            if isinstance(e, ConfigError):
                raise
            msg = str(e) if isinstance(e, ScenarioError) else f"must be an integer, got {show(value)}"
            raise ConfigError(origin, key, msg, value=value, allowed=spec.describe_range()) from None
        values[key], origins[key] = v, origin
    return SysctlDump(os_guess, values, origins, tuple(ignored), tuple(problems), guessed)


def read_sysctl(path: str, os_name: str | None = None) -> SysctlDump:
    """Read a dump file (see :func:`parse_sysctl`)."""
    return parse_sysctl(read_text(path), path, os_name)
