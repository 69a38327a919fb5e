"""The programs a lab run starts in the hosts' namespaces, and when they are done.

* Plain: the socket program of :mod:`kalab.lab.sockprog` on each side, told its socket options at
  start and its schedule (what to send when, what to answer, when to close) once t = 0 is known;
  it reports every event as a JSON line stamped with ``CLOCK_MONOTONIC``.
* ssh: Debian's ``sshd`` (``-D -e``: in the foreground, its log on stderr; sshd(8)) and ``ssh``
  with throw-away ed25519 keys and a config of their own (no PAM, no known_hosts, ``BatchMode``;
  ssh_config(5), sshd_config(5)); the scenario's ``app.options`` are passed as ``-o``/config lines.
  The session runs ``echo kalab-ready; exec sleep ...``: the ready line marks the session set up,
  and the session stays idle, so only alive messages cross it.

What they write is read by :class:`kalab.lab.lines.Lines`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .lines import Lines
from .netns import SERVER_ADDR, Topology, sh

PLAIN_PORT = 5000
SSH_PORT = 22
#: The directory holding this ``kalab``: on the socket program's PYTHONPATH, so that
#: ``python -m kalab.lab.sockprog`` runs this very copy, whatever the working directory.
REPO = Path(__file__).resolve().parents[2]


def reported_t(line: str) -> float:
    """The CLOCK_MONOTONIC stamp the socket program put on one of its lines."""
    return json.loads(line)["t"]


# ---------------------------------------------------------------- plain

def start_plain(topo: Topology, side: str, src: dict, lines: Lines) -> subprocess.Popen:
    """One side's socket program: the server listens, the client connects (both report it)."""
    cfg = {"role": side, "addr": SERVER_ADDR, "port": PLAIN_PORT, "socket": (src[side].get("socket") or {}),
           "accept_timeout_s": 30}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = topo.popen(side, [sys.executable, "-m", "kalab.lab.sockprog", json.dumps(cfg)], stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines.add(p.stdout, side)
    lines.add(p.stderr, f"{side}-err")
    return p


def send_plans(procs: dict, sc, t0: float, horizon: float) -> None:
    """Tell each running socket program its schedule, in absolute CLOCK_MONOTONIC seconds: the
    scenario's traffic from its side, the answers it owes the other side's messages, and a deadline
    one second past the observation (so it is still there when the runner stops watching)."""
    deadline = t0 + horizon
    for side in ("client", "server"):
        other = "server" if side == "client" else "client"
        sends, replies, cum = [], [], 0
        for tr in sc.traffic:
            if tr.side == side:
                sends += [{"at": t0 + at, "bytes": tr.bytes, "close": tr.close} for at in tr.times(horizon)]
        # The receiver answers per message: cumulative byte counts, in the order they were sent.
        incoming = sorted((at, tr.bytes, tr.reply_bytes) for tr in sc.traffic
                          if tr.side == other and not tr.close for at in tr.times(horizon))
        for _, nbytes, reply in incoming:
            cum += nbytes
            replies.append([cum, reply])
        plan = {"sends": sends, "replies": replies, "deadline": deadline + 1,
                "watch_time_wait": any(t.close and t.side == side for t in sc.traffic)}
        if side in procs and procs[side].poll() is None:
            procs[side].stdin.write(json.dumps(plan) + "\n")
            procs[side].stdin.flush()


# ---------------------------------------------------------------- ssh

def start_ssh(topo: Topology, src: dict, work: Path, lines: Lines) -> dict[str, subprocess.Popen]:
    """sshd in the server's namespace (waited for until it listens), then ssh from the client's."""
    for name in ("hostkey", "userkey"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name))
    (work / "authorized_keys").write_text((work / "userkey.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    server_opts = dict(src["server"].get("app", {}).get("options", {}) or {})
    cfg = [f"ListenAddress {SERVER_ADDR}", f"Port {SSH_PORT}", f"HostKey {work / 'hostkey'}", "PidFile none",
           "UsePAM no", "PermitRootLogin yes", "StrictModes no", f"AuthorizedKeysFile {work / 'authorized_keys'}",
           "PasswordAuthentication no", "KbdInteractiveAuthentication no", "LogLevel INFO"]
    cfg += [f"{k} {v}" for k, v in server_opts.items()]
    (work / "sshd_config").write_text("\n".join(cfg) + "\n")
    sshd = topo.popen("server", ["/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")],
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines.add(sshd.stderr, "server-err")
    lines.wait_for("server-err", "Server listening on", 10)
    opts = []
    for k, v in (src["client"].get("app", {}).get("options", {}) or {}).items():
        opts += ["-o", f"{k}={v}"]
    ssh = topo.popen("client", ["ssh", "-F", "/dev/null", "-T", "-i", str(work / "userkey"),
                                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                "-o", "BatchMode=yes", "-o", "LogLevel=INFO", *opts,
                                f"root@{SERVER_ADDR}", "echo kalab-ready; exec sleep 100000"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines.add(ssh.stdout, "client-out")
    lines.add(ssh.stderr, "client-err")
    return {"client": ssh, "server": sshd}


# ---------------------------------------------------------------- the end

def all_settled(procs: dict, lines: Lines, sc, ssh: bool) -> bool:
    """Both ends are finished (exited or reported their end) -- nothing more to see."""
    done = 0
    for side in ("client", "server"):
        p = procs.get(side)
        if p is None or p.poll() is not None:
            done += 1
        elif not ssh and any(w == side and '"closed"' in l for _, w, l in lines.lines) and \
                not any(t.close and t.side == side for t in sc.traffic):
            done += 1
    return done == 2
