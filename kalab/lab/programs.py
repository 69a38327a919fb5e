"""The programs a lab run starts in the hosts' namespaces, and when they are done.

* Plain: the socket program of :mod:`kalab.lab.sockprog` on each side, told its socket options at
  start and its schedule (what to send when, what to answer, when to close) once t = 0 is known;
  it reports every event as a JSON line stamped with ``CLOCK_MONOTONIC``.
* ssh: ``sshd`` (``-D -e``: in the foreground, its log on stderr; sshd(8)) and ``ssh`` of the
  OpenSSH build each side's ``app.version`` names (:func:`kalab.lab.host.openssh_builds`: Debian's
  9.2p1, or 10.0p2 unpacked in ``.lab/``, whose sshd is pointed at its own ``sshd-session`` and
  ``sshd-auth`` by ``SshdSessionPath``/``SshdAuthPath``), with throw-away ed25519 keys and a config
  of their own (no PAM, no known_hosts, ``BatchMode``; ssh_config(5), sshd_config(5)); the
  scenario's ``app.options`` are passed as ``-o``/config lines.  The session runs ``echo
  kalab-ready; exec sleep ...``: the ready line marks the session set up, and the session stays
  idle, so only alive messages cross it.  A scenario that starts with ``connect`` starts ssh
  towards a cut path (ConnectTimeout, the SYN retries): no session, no ready line.

What they write is read by :class:`kalab.lab.lines.Lines`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .host import OpenSSHBuild
from .lines import Lines
from .netns import LabError, SERVER_ADDR, Topology, sh

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

def start_sshd(topo: Topology, src: dict, work: Path, lines: Lines, build: OpenSSHBuild) -> subprocess.Popen:
    """sshd of ``build`` in the server's namespace, waited for until it listens."""
    for name in ("hostkey", "userkey"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name))
    (work / "authorized_keys").write_text((work / "userkey.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    server_opts = dict(src["server"].get("app", {}).get("options", {}) or {})
    cfg = [f"ListenAddress {SERVER_ADDR}", f"Port {SSH_PORT}", f"HostKey {work / 'hostkey'}", "PidFile none",
           "UsePAM no", "PermitRootLogin yes", "StrictModes no", f"AuthorizedKeysFile {work / 'authorized_keys'}",
           "PasswordAuthentication no", "KbdInteractiveAuthentication no", "LogLevel VERBOSE"]
    # An unpacked OpenSSH >= 9.8 runs its own session and auth helpers, not the system's.
    if build.sshd_session:
        cfg.append(f"SshdSessionPath {build.sshd_session}")
    if build.sshd_auth:
        cfg.append(f"SshdAuthPath {build.sshd_auth}")
    cfg += [f"{k} {v}" for k, v in server_opts.items()]
    (work / "sshd_config").write_text("\n".join(cfg) + "\n")
    sshd = topo.popen("server", [build.sshd, "-D", "-e", "-f", str(work / "sshd_config")],
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines.add(sshd.stderr, "server-err")
    lines.wait_for("server-err", "Server listening on", 10)
    return sshd


#: The session command of a scenario with ``server.app.shell``: an interactive bash with its TMOUT
#: on the session's terminal.  ``--noediting`` (no readline) and ``PS1=`` keep its output to the
#: terminal's own echo of what is typed (one segment per keystroke burst), and PROMPT_COMMAND says
#: ``kalab-ready`` once, just after bash armed its TMOUT alarm for the first prompt (eval.c
#: ``read_command``: alarm, then ``parse_command``, which runs PROMPT_COMMAND).
SHELL_COMMAND = ("PROMPT_COMMAND='echo kalab-ready; unset PROMPT_COMMAND' PS1= TMOUT={tmout} "
                 "exec bash --norc --noprofile --noediting -i")
IDLE_COMMAND = "echo kalab-ready; exec sleep 100000"


def session_command(src: dict) -> str | None:
    """What ssh asks the server to run: the idle command, the shell of ``server.app.shell``, or
    nothing (``SessionType none``: ssh -N)."""
    copts = {k.lower(): str(v).lower() for k, v in ((src["client"].get("app") or {}).get("options") or {}).items()}
    if copts.get("sessiontype") == "none":
        return None
    shell = (src["server"].get("app") or {}).get("shell")
    if shell is not None:
        if shell.get("name", "bash") != "bash":
            raise LabError(f"server.app.shell.name {shell.get('name')!r}: the lab has bash only")
        return SHELL_COMMAND.format(tmout=int(shell.get("TMOUT", 0)))
    return IDLE_COMMAND


def typed_text(nbytes: int, line: bool, command_s: float) -> bytes:
    """What the lab types for one client traffic entry: ``nbytes`` keys, ending with Enter when
    ``line`` -- the command line ``sleep command_s`` (a silent foreground program), else the no-op
    ``:`` padded with blanks; without Enter, letters the shell will not see complete."""
    if not line:
        return b"e" * nbytes
    cmd = f"sleep {command_s:g}" if command_s > 0 else ":"
    return (cmd + " " * max(0, nbytes - 1 - len(cmd)) + "\n").encode()


def start_ssh_client(topo: Topology, src: dict, work: Path, lines: Lines, build: OpenSSHBuild) -> subprocess.Popen:
    """ssh of ``build`` from the client's namespace, running the session's command (``session_command``);
    with a terminal when the server runs a shell or the client's ``RequestTTY`` asks for one."""
    opts = []
    for k, v in (src["client"].get("app", {}).get("options", {}) or {}).items():
        opts += ["-o", f"{k}={v}"]
    cmd = session_command(src)
    tty = ["-tt"] if (src["server"].get("app") or {}).get("shell") is not None else \
        [] if any(k.lower() == "requesttty" for k in (src["client"].get("app", {}).get("options", {}) or {})) else ["-T"]
    ssh = topo.popen("client", [build.ssh, "-F", "/dev/null", *tty, "-i", str(work / "userkey"),
                                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                "-o", "BatchMode=yes", "-o", "LogLevel=INFO", *opts,
                                f"root@{SERVER_ADDR}", *([cmd] if cmd is not None else [])],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines.add(ssh.stdout, "client-out")
    lines.add(ssh.stderr, "client-err")
    return ssh


# ---------------------------------------------------------------- the end

#: sshd's lines that end the session (sshd(8) logs them as the session process exits; the
#: listening ``sshd -D`` itself stays): the server side's end of an ssh run.
SSHD_SESSION_END = ("Timeout, client not responding", "Connection closed by", "Connection reset by",
                    "Read error from remote host", "Disconnected from", "Connection timed out",
                    "Broken pipe", "Received disconnect from", "terminating inactive connection")


def all_settled(procs: dict, lines: Lines, sc, ssh: bool) -> bool:
    """Every side has reached its end -- its program exited or reported its end (sshd: the session's
    last log line) -- so there is nothing more to see; a side still holding its connection (alive or
    half-open) keeps the run going until ``until_s``."""
    done = 0
    for side in ("client", "server"):
        p = procs.get(side)
        if p is None or p.poll() is not None:
            done += 1
        elif ssh and side == "server" and any(w == "server-err" and any(x in l for x in SSHD_SESSION_END)
                                              for _, w, l in lines.lines):
            done += 1
        elif ssh and side == "server" and sc.start == "connect":
            done += 1   # no session ever reached sshd: it has nothing to end
        elif not ssh and any(w == side and '"closed"' in l for _, w, l in lines.lines) and \
                not any(t.close and t.side == side for t in sc.traffic):
            done += 1
    return done == 2
