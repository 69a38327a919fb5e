"""Network namespaces for the lab: client -- router -- server, torn down whatever happens.

Topology (documentation addresses, RFC 5737)::

    client ns               router ns                         server ns
    eth0 192.0.2.2/24 ---- rc 192.0.2.1/24 | rs 198.51.100.1/24 ---- eth0 198.51.100.2/24

Every run gets unique namespace names (``kl<pid>x<n>-c/r/s``), so two runs
never collide.  Interfaces are created directly inside the namespaces, so no
name is ever taken in the host's namespace, and the links and nftables rules
go with the namespaces.

Leaving nothing behind (issue 12).  ``ip netns del`` only removes a namespace's
*name*: the namespace itself lives on while any process is in it
(namespaces(7)), and with it its links, rules and sockets.  sshd forks its
session processes into a new session (setsid(2)), so ending the programs the
lab started left ``sshd: root@notty`` and the session's ``sleep`` running, in a
namespace without a name.  So, before a namespace is deleted, every process in
it is found by its namespace inode (``readlink /proc/PID/ns/net`` equals the
inode of ``/run/netns/NAME``) and ended by its own PID -- pinned with
pidfd_open(2) and signalled with pidfd_send_signal(2), so a PID reused in the
meantime is never hit; never by name.  While a topology exists this process is
a child subreaper (prctl(2) ``PR_SET_CHILD_SUBREAPER``): orphans of the lab's
programs are re-parented to it instead of PID 1, and the ones it ends are reaped
by it (waitid(2) ``P_PIDFD``), so none is left even as a zombie.  Programs run in
their own session (``start_new_session``): Ctrl-C in a terminal reaches the
runner only, which tears down in order.  Clean-up is idempotent, and while it
runs in the main thread SIGINT, SIGTERM and SIGHUP are held and delivered once it
is done (signal(7)), so a second Ctrl-C cannot cut it short.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import select
import signal
import subprocess
import threading
import time
import warnings

CLIENT_ADDR, ROUTER_C_ADDR = "192.0.2.2", "192.0.2.1"
SERVER_ADDR, ROUTER_S_ADDR = "198.51.100.2", "198.51.100.1"
NETNS_DIR = "/run/netns"   # where ip-netns(8) names namespaces (bind mounts of nsfs files)
_counter = itertools.count()


class LabError(RuntimeError):
    """The lab cannot run this (not root, a missing tool, an unsupported scenario)."""


class LabStopped(LabError):
    """A run was asked to stop (its ``stop`` event was set) and has torn everything down."""


def sh(*args: str, check: bool = True, timeout: float = 20, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (bounded in time); raise LabError with its stderr on failure."""
    try:
        p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout} s: {' '.join(args)}") from None
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


# ---------------------------------------------------------------- processes in a namespace

def netns_inode(name: str) -> int | None:
    """Inode of a named network namespace (the nsfs file ip-netns(8) bind-mounts); None if unnamed."""
    try:
        return os.stat(os.path.join(NETNS_DIR, name)).st_ino
    except OSError:
        return None


def _netns_of(pid: int) -> int | None:
    """Inode of a process's network namespace: ``/proc/PID/ns/net`` reads ``net:[INODE]`` (namespaces(7)).
    None when the process is gone or a zombie (its namespaces are released at exit)."""
    try:
        return int(os.readlink(f"/proc/{pid}/ns/net")[5:-1])
    except (OSError, ValueError):
        return None


def _foreign(inodes) -> set[int]:
    """The given namespaces minus this process's own: whatever a caller passes, the sweep never
    touches the namespace the runner itself lives in (the host's, normally).  Empty if this
    process's own namespace cannot be read (then nothing is safe to sweep)."""
    own = _netns_of(os.getpid())
    return set() if own is None else {i for i in inodes if i is not None and i != own}


def pids_in(inodes: set[int]) -> list[int]:
    """PIDs of the processes in these network namespaces (never this process's own namespace, never
    PID 1 or this process): one pass over /proc (proc(5)).

    Processes are matched by their thread-group leader; the lab's programs do not move single
    threads between namespaces (setns(2))."""
    inodes = _foreign(inodes)
    if not inodes:
        return []
    me = os.getpid()
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) not in (1, me) and _netns_of(int(entry.name)) in inodes:
            out.append(int(entry.name))
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read(200).replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


def end_all_in(inodes: set[int], *, spare: set[int] = frozenset(), timeout_s: float = 5.0,
               rounds: int = 20) -> tuple[list[str], list[int]]:
    """SIGKILL every process in these network namespaces, by its own PID; wait for them; reap ours.

    Each PID is pinned with pidfd_open(2) and its namespace read again before the signal, so a
    process that exited and whose PID was reused after the scan is never hit; pidfd_send_signal(2)
    then signals exactly that process.  Its pidfd turns readable when it has exited (pidfd_open(2)),
    which is what the wait polls.  Processes forked meanwhile are found by the next round (SIGKILL
    cannot be caught, so a handful of rounds suffices; both rounds and time are bounded).  Those
    that are now our children (we are their subreaper, or their parent) are reaped with
    waitid(2) ``P_PIDFD`` -- except ``spare`` (PIDs a subprocess.Popen owns and reaps itself).
    Returns what was killed (``"PID command"``) and the PIDs still there at the end.
    """
    inodes = _foreign(inodes)
    deadline = time.monotonic() + timeout_s
    fds: dict[int, int] = {}
    killed: list[str] = []
    try:
        for _ in range(rounds):
            fresh = [pid for pid in pids_in(inodes) if pid not in fds]
            for pid in fresh:
                what = f"{pid} {_comm(pid)}"
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:
                    continue
                except OSError:       # no pidfds (Linux < 5.3): kill(2) right after the namespace check
                    if _netns_of(pid) in inodes:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                            killed.append(what)
                    continue
                if _netns_of(pid) not in inodes:        # not the process we scanned (or already gone)
                    os.close(fd)
                    continue
                fds[pid] = fd
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    killed.append(what)
            running = [fd for fd in fds.values() if not select.select([fd], [], [], 0)[0]]
            if not fresh and not running:
                break
            if time.monotonic() >= deadline:
                break
            if running:
                select.select(running, [], [], min(0.2, max(0.0, deadline - time.monotonic())))
    finally:
        for pid, fd in fds.items():
            if pid not in spare:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
            os.close(fd)
    return killed, pids_in(inodes)


# ---------------------------------------------------------------- this process as subreaper

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37   # <linux/prctl.h>
_subreaper_lock = threading.Lock()
_subreaper = {"users": 0, "before": False}


def _prctl(option: int, arg) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return 0


def _hold_subreaper(on: bool) -> None:
    """Be a child subreaper while any topology exists (prctl(2) PR_SET_CHILD_SUBREAPER), then restore
    the flag as it was.  Counted, because the matrix runs topologies in parallel threads."""
    with _subreaper_lock:
        try:
            if on:
                if _subreaper["users"] == 0:
                    was = ctypes.c_int(0)
                    _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(was))
                    _subreaper["before"] = bool(was.value)
                    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
                _subreaper["users"] += 1
            else:
                _subreaper["users"] -= 1
                if _subreaper["users"] == 0 and not _subreaper["before"]:
                    _prctl(_PR_SET_CHILD_SUBREAPER, 0)
        except OSError:
            pass  # not Linux >= 3.4: orphans go to PID 1, and the namespace sweep still ends them


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP while tearing down; deliver the first one afterwards.

    Python runs signal handlers in the main thread only, so only there can a second Ctrl-C cut the
    clean-up short (in other threads this does nothing).  A signal whose handler was not set from
    Python, or is ignored, is left alone.  After the clean-up the previous handlers are back and a
    held signal is raised again (signal.raise_signal), so the caller sees it as if it had come then.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {}
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        h = signal.getsignal(s)
        if h is None or h == signal.SIG_IGN:
            continue
        old[s] = h
        signal.signal(s, lambda n, _f: got.append(n))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            signal.raise_signal(got[0])


# ---------------------------------------------------------------- the topology

class Topology:
    """Three namespaces joined by two veth pairs; use as a context manager."""

    def __init__(self) -> None:
        tag = f"kl{os.getpid()}x{next(_counter)}"
        self.ns = {"client": f"{tag}-c", "router": f"{tag}-r", "server": f"{tag}-s"}
        self.created: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.stray: list[str] = []         # processes the teardown found and ended ("PID command")
        self.sysctls: dict[str, dict[str, str]] = {}   # per role, set again when the host reboots
        self._reaping = False

    # ------------------------------------------------------------ set-up / tear-down
    def __enter__(self) -> "Topology":
        _hold_subreaper(True)
        self._reaping = True
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

    def __exit__(self, exc_type, *exc) -> None:
        problems = self.close()
        if problems:
            msg = "lab clean-up incomplete: " + "; ".join(problems)
            if exc_type is None:
                raise LabError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)   # do not hide the exception in flight

    def _add_ns(self, name: str) -> None:
        # Listed before it exists: if `ip netns add` is interrupted after creating it, close() still
        # deletes it (deleting a name that does not exist is harmless).
        self.created.append(name)
        sh("ip", "netns", "add", name)
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
        self.end_host(role)
        # Delete the router's end first: namespace teardown is asynchronous, and the
        # new link must be able to take the same name at once.
        sh("ip", "-n", self.ns["router"], "link", "del", "rc" if role == "client" else "rs")
        sh("ip", "netns", "del", ns)
        self.created.remove(ns)
        self._add_ns(ns)
        for k, v in self.sysctls.get(role, {}).items():
            self.sysctl(role, k, v)
        self.build_host(role)

    def end_host(self, role: str) -> None:
        """End every process in a host's namespace at once: the programs the lab started and whatever
        they forked (sshd's session processes and their commands), so none is orphaned to exit later."""
        ino = netns_inode(self.ns[role])
        if ino is not None:
            self.stray += end_all_in({ino}, spare={p.pid for p in self.procs})[0]
        for p in [p for p in self.procs if getattr(p, "kalab_ns", None) == self.ns[role]]:
            self.end(p)

    def close(self) -> list[str]:
        """Tear everything down: processes, then namespaces (with their links and nftables rules).

        Idempotent; never raises for what it cannot remove, but returns it (empty: nothing left).
        Every process in the topology's namespaces is killed at once, before any namespace is
        deleted: killing the programs one by one would orphan sshd's session processes, and
        deleting a namespace with a process in it only removes its name (namespaces(7))."""
        problems: list[str] = []
        with signals_held():
            # By the names only: a name pins its namespace, so the inode cannot have been freed and
            # handed to someone else's new namespace (inode numbers are reused at once).
            inodes = {i for i in map(netns_inode, self.created) if i is not None}
            if inodes:
                killed, left = end_all_in(inodes, spare={p.pid for p in self.procs})
                self.stray += killed
                if left:
                    problems.append(f"processes {left} did not end")
            for p in list(self.procs):
                self.end(p)
                if p.returncode is None:
                    problems.append(f"process {p.pid} did not end")
            for ns in reversed(self.created):
                try:
                    sh("ip", "netns", "del", ns, check=False)
                except LabError as e:
                    problems.append(str(e))
                if netns_inode(ns) is not None:
                    problems.append(f"namespace {ns} is still there")
            self.created.clear()
            if self._reaping:
                self._reaping = False
                _hold_subreaper(False)
        return problems

    # ------------------------------------------------------------ processes
    def popen(self, role: str, args: list[str], **kw) -> subprocess.Popen:
        """Start a program in a namespace, in its own session (setsid(2)): a terminal's Ctrl-C goes to
        the runner, which ends the programs itself, in order.  ``ip netns exec`` execs the program
        without forking (ip-netns(8)), so the PID is the program's."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *args], start_new_session=True, **kw)
        p.kalab_ns = self.ns[role]  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    def end(self, p: subprocess.Popen) -> None:
        """End a process by its own PID (kill(2)): TERM, then KILL, each wait bounded; reap it."""
        try:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return  # unkillable (uninterruptible sleep): close() reports it
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def kill(self, p: subprocess.Popen) -> None:
        """SIGKILL to one program, as a ``process_kill`` fault: its kernel closes its sockets."""
        if p.poll() is None:
            p.kill()

    # ------------------------------------------------------------ knobs
    def sysctl(self, role: str, key: str, value) -> None:
        value = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        sh("ip", "netns", "exec", self.ns[role], "sysctl", "-qw", f"{key}={value}")
        self.sysctls.setdefault(role, {})[key] = value

    def nft(self, script: str) -> None:
        sh("ip", "netns", "exec", self.ns["router"], "nft", "-f", "-", input=script)
