import os
import time

import pytest

from kalab.lab import missing_requirements


def _netns(pid) -> int | None:
    try:
        return int(os.readlink(f"/proc/{pid}/ns/net")[5:-1])
    except (OSError, ValueError):
        return None


def _in_other_namespaces() -> dict[int, int]:
    """pid -> network namespace inode, for every process outside this process's own namespace."""
    own = _netns("self")
    out = {}
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            ns = _netns(e.name)
            if ns not in (None, own):
                out[int(e.name)] = ns
    return out


def _named() -> set[int]:
    out = set()
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else ():
        try:
            out.add(os.stat(f"/run/netns/{name}").st_ino)
        except OSError:
            pass
    return out


def _unnamed_new(before: dict[int, int]) -> dict[int, int]:
    """Processes that appeared since ``before`` in a namespace without a name: what a lab run that
    leaks leaves (``ip netns del`` removes the name; the namespace lives on with its processes)."""
    named = _named()
    return {pid: ns for pid, ns in _in_other_namespaces().items()
            if pid not in before and ns not in named and ns not in before.values()}


@pytest.fixture(scope="session")
def lab_ready():
    """Root and the lab's tools; skip with the reason on a user's machine, fail under CI=true.

    At the end of the session, the lab tests themselves must have left nothing: no namespace named
    after this process (``kl<PID>x``), and no new process in a namespace without a name (seen twice,
    a second apart, so a concurrent run's ``ip netns add`` caught mid-way does not count)."""
    missing = missing_requirements(ssh=True)
    if missing:
        reason = "the real-kernel lab needs " + ", ".join(missing) + " (make test installs the tools when root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: lab tests must run, but " + reason)
        pytest.skip(reason)
    before = _in_other_namespaces()
    yield True
    first = _unnamed_new(before)
    if first:
        time.sleep(1)
    left = {pid: ns for pid, ns in _unnamed_new(before).items() if first.get(pid) == ns}
    names = [n for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else ())
             if n.startswith(f"kl{os.getpid()}x")]
    assert not left and not names, f"the lab tests left processes {left} and namespaces {names}"
