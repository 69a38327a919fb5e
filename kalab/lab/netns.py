"""Network namespaces for the lab: client -- router -- server, torn down whatever happens.

Topology (documentation addresses, RFC 5737)::

    client ns               router ns                         server ns
    eth0 192.0.2.2/24 ---- rc 192.0.2.1/24 | rs 198.51.100.1/24 ---- eth0 198.51.100.2/24

Every run gets unique namespace names (``kl<pid>x<n>-c/r/s``), so two runs
never collide.  Interfaces are created directly inside the namespaces, so no
name is ever taken in the host's namespace.  Processes are started with
``ip netns exec`` and ended by their own PID only.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time

CLIENT_ADDR, ROUTER_C_ADDR = "192.0.2.2", "192.0.2.1"
SERVER_ADDR, ROUTER_S_ADDR = "198.51.100.2", "198.51.100.1"
_counter = itertools.count()


class LabError(RuntimeError):
    """The lab cannot run this (not root, a missing tool, an unsupported scenario)."""


def sh(*args: str, check: bool = True, timeout: float = 20, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (bounded in time); raise LabError with its stderr on failure."""
    try:
        p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout} s: {' '.join(args)}") from None
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


class Topology:
    """Three namespaces joined by two veth pairs; use as a context manager."""

    def __init__(self) -> None:
        tag = f"kl{os.getpid()}x{next(_counter)}"
        self.ns = {"client": f"{tag}-c", "router": f"{tag}-r", "server": f"{tag}-s"}
        self.created: list[str] = []
        self.procs: list[subprocess.Popen] = []

    # ------------------------------------------------------------ set-up / tear-down
    def __enter__(self) -> "Topology":
        try:
            for role in ("router", "client", "server"):
                self._add_ns(self.ns[role])
            sh("ip", "netns", "exec", self.ns["router"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.build_host("client")
            self.build_host("server")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build_host(self, role: str) -> None:
        """(Re)create a host's link to the router and its address and route."""
        ns, r = self.ns[role], self.ns["router"]
        peer = "rc" if role == "client" else "rs"
        addr, gw = (CLIENT_ADDR, ROUTER_C_ADDR) if role == "client" else (SERVER_ADDR, ROUTER_S_ADDR)
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", r)
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", gw)
        sh("ip", "-n", r, "addr", "add", f"{gw}/24", "dev", peer)
        sh("ip", "-n", r, "link", "set", peer, "up")
        # Never let ARP resolution add its own delays or failures to a measurement.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "UP" in sh("ip", "-n", r, "link", "show", peer).stdout and "UP" in sh("ip", "-n", ns, "link", "show", "eth0").stdout:
                break
            time.sleep(0.02)

    def reboot(self, role: str) -> None:
        """Destroy a host's namespace (all its sockets) and build it again with the same address."""
        ns = self.ns[role]
        self.kill_in(ns)
        # Delete the router's end first: namespace teardown is asynchronous, and the
        # new link must be able to take the same name at once.
        sh("ip", "-n", self.ns["router"], "link", "del", "rc" if role == "client" else "rs")
        sh("ip", "netns", "del", ns)
        self.created.remove(ns)
        self._add_ns(ns)
        for k, v in getattr(self, "sysctls", {}).get(role, {}).items():
            self.sysctl(role, k, v)
        self.build_host(role)

    def close(self) -> None:
        for p in list(self.procs):
            self._end(p)
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created.clear()

    # ------------------------------------------------------------ processes
    def popen(self, role: str, args: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *args], **kw)
        p.kalab_ns = self.ns[role]  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    def _end(self, p: subprocess.Popen) -> None:
        """End a process by its own PID: TERM, then KILL, each wait bounded."""
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def kill_in(self, ns: str) -> None:
        for p in [p for p in self.procs if getattr(p, "kalab_ns", None) == ns]:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)

    def kill(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.kill()

    # ------------------------------------------------------------ knobs
    def sysctl(self, role: str, key: str, value) -> None:
        value = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        sh("ip", "netns", "exec", self.ns[role], "sysctl", "-qw", f"{key}={value}")
        self.sysctls = getattr(self, "sysctls", {})
        self.sysctls.setdefault(role, {})[key] = value

    def nft(self, script: str) -> None:
        sh("ip", "netns", "exec", self.ns["router"], "nft", "-f", "-", input=script)
