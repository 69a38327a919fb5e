"""This machine, as the lab sees it: its kernel, its OpenSSH, and what the lab needs here to run.

Every value is read from the running system, never assumed: ``CONFIG_HZ`` from the kernel's own
configuration (``/proc/config.gz``, present with ``CONFIG_IKCONFIG_PROC``), the kernel release as
uname(2) reports it, each OpenSSH build's version as its own ``sshd -V`` and ``ssh -V`` print it
(sshd(8), ssh(1)).  The scenario checks (:mod:`kalab.lab.supported`) hold a scenario against them,
and the measured result records them (``meta``).

OpenSSH builds (:func:`openssh_builds`): the system's (Debian 12's ``/usr/sbin/sshd`` and ``ssh``,
9.2p1) and each private one ``scripts/provision-openssh.sh`` unpacked under ``.lab/openssh-*/`` of
this repository (bookworm-backports' 10.0p2).  Each is known by the ``major.minor`` its sshd
reports, which is what a scenario's ``app.version`` names.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


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


#: Where scripts/provision-openssh.sh unpacks private OpenSSH builds: ``.lab/openssh-X.Y/`` in the
#: repository holding this ``kalab`` (git ignores it).
LAB_DIR = Path(__file__).resolve().parents[2] / ".lab"
SYSTEM_SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class OpenSSHBuild:
    """One OpenSSH the lab can run: its programs and what they say they are."""

    #: ``major.minor`` as a scenario's ``app.version`` names it ("9.2", "10.0").
    version: str
    #: The server's exact build, its release as sshd prints it ("OpenSSH_10.0p2 Debian-7~bpo12+1").
    build: str
    #: The client's own ``ssh -V`` (the same build, read separately).
    ssh_build: str
    sshd: str
    ssh: str
    #: OpenSSH >= 9.8 splits the server: an unpacked copy is pointed at its own helpers
    #: (sshd_config ``SshdSessionPath``/``SshdAuthPath``); None for a build that finds its own.
    sshd_session: str | None = None
    sshd_auth: str | None = None
    #: Where it comes from, in words.
    origin: str = ""


def _version_line(*cmd: str) -> str | None:
    """``OpenSSH_9.2p1 Debian-2+deb12u10`` as a program prints it (stderr, up to the comma); None
    when it cannot run or says something else."""
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^(OpenSSH_[\d.]+p?\d*[^,\n]*)", p.stderr + p.stdout, re.M)
    return m.group(1).strip() if m else None


def _sshd_release(sshd: str) -> str | None:
    """sshd's exact release.  ``sshd -V`` prints only ``OpenSSH_9.2`` on 9.2 (SSH_VERSION), but the
    usage message every sshd prints on an unknown option starts with the full release
    (SSH_RELEASE, the identification string it sends: ``OpenSSH_9.2p1 Debian-2+deb12u10``)."""
    return _version_line(sshd, "-_") or _version_line(sshd, "-V")


def _major_minor(build: str) -> str | None:
    m = re.match(r"OpenSSH_(\d+)\.(\d+)", build)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def openssh_builds() -> dict[str, OpenSSHBuild]:
    """The OpenSSH builds on this machine, by ``major.minor``: the system's, then the private ones
    under :data:`LAB_DIR`.  Read from the programs every time (a provisioning in between counts)."""
    out: dict[str, OpenSSHBuild] = {}
    ssh = shutil.which("ssh")
    if os.path.exists(SYSTEM_SSHD) and ssh:
        build, ssh_build = _sshd_release(SYSTEM_SSHD), _version_line(ssh, "-V")
        v = build and _major_minor(build)
        if v and ssh_build:
            out[v] = OpenSSHBuild(v, build, ssh_build, SYSTEM_SSHD, ssh, origin=f"the system's ({SYSTEM_SSHD})")
    for prefix in sorted(LAB_DIR.glob("openssh-*")):
        sshd, ssh = prefix / "usr/sbin/sshd", prefix / "usr/bin/ssh"
        helpers = prefix / "usr/lib/openssh"
        if not (sshd.exists() and ssh.exists() and (prefix / ".kalab-build").exists()):
            continue   # not (completely) provisioned
        build, ssh_build = _sshd_release(str(sshd)), _version_line(str(ssh), "-V")
        v = build and _major_minor(build)
        if not v or not ssh_build or v in out:
            continue
        split = (helpers / "sshd-session").exists()
        out[v] = OpenSSHBuild(v, build, ssh_build, str(sshd), str(ssh),
                              str(helpers / "sshd-session") if split else None,
                              str(helpers / "sshd-auth") if (helpers / "sshd-auth").exists() else None,
                              origin=f"unpacked in {prefix}")
    return out


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


#: The OpenSSH versions the lab is meant to have (scripts/install-system-deps.sh provides both).
WANTED_OPENSSH = ("9.2", "10.0")
PROVIDED_BY = {"9.2": "openssh-server and openssh-client (Debian 12)",
               "10.0": "OpenSSH 10.0 in .lab/openssh-10.0 (scripts/provision-openssh.sh, run by make test as root)"}


def missing_requirements(ssh: bool = False, openssh: tuple[str, ...] | None = None) -> list[str]:
    """What stops the lab from running here (empty when it can run).  ``openssh``: the OpenSSH
    versions needed (``ssh=True`` alone: all of :data:`WANTED_OPENSSH`)."""
    out = []
    if os.geteuid() != 0:
        out.append("root (network namespaces and nftables need it)")
    for tool in ("ip", "nft", "tcpdump") + (("ssh-keygen",) if ssh else ()):
        if not shutil.which(tool):
            out.append(tool)
    if ssh:
        have = openssh_builds()
        for v in (WANTED_OPENSSH if openssh is None else openssh):
            if v not in have:
                out.append(PROVIDED_BY.get(v, f"OpenSSH {v}"))
    return out
