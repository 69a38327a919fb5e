"""This machine, as the lab sees it: its kernel, its OpenSSH, and what the lab needs here to run.

Every value is read from the running system, never assumed: ``CONFIG_HZ`` from the kernel's own
configuration (``/proc/config.gz``, present with ``CONFIG_IKCONFIG_PROC``), the kernel release as
uname(2) reports it, OpenSSH's version as ``ssh -V`` prints it (ssh(1)).  The scenario checks
(:mod:`kalab.lab.supported`) hold a scenario against them, and the measured result records them
(``meta``).
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
import subprocess


def kernel_hz() -> int:
    """CONFIG_HZ of the running kernel, from /proc/config.gz (250 if unknown)."""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                if line.startswith("CONFIG_HZ="):
                    return int(line.split("=")[1])
    except OSError:
        pass
    return 250


def kernel_version() -> tuple[int, int]:
    """(major, minor) of the running kernel, from its release string (uname -r); (0, 0) if unreadable."""
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def openssh_version() -> str | None:
    """The installed OpenSSH client's version (``9.2p1``), or None without one."""
    if not shutil.which("ssh"):
        return None
    p = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
    m = re.search(r"OpenSSH_([\d.]+p?\d*)", p.stderr + p.stdout)
    return m.group(1) if m else None


def missing_requirements(ssh: bool = False) -> list[str]:
    """What stops the lab from running here (empty when it can run)."""
    out = []
    if os.geteuid() != 0:
        out.append("root (network namespaces and nftables need it)")
    for tool in ("ip", "nft", "tcpdump") + (("ssh", "ssh-keygen") if ssh else ()):
        if not shutil.which(tool):
            out.append(tool)
    if ssh and not os.path.exists("/usr/sbin/sshd"):
        out.append("/usr/sbin/sshd (openssh-server)")
    return out
