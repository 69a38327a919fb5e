"""Run a scenario on the real Linux kernel (and real OpenSSH) in network namespaces.

:func:`run` takes the same scenario as :func:`kalab.simulate`, builds it for
real (client, router and server namespaces; per-namespace sysctls; the small
socket program of :mod:`kalab.lab.sockprog`, or Debian's ``sshd``/``ssh`` with
throw-away keys), injects the faults from the router with nftables, captures
the wire with tcpdump, and returns what happened in the result contract, plus
the wire schedule and metadata.  Root only.

How the lab plays each fault (the router sits between the two hosts):

* ``link_down``: the router drops everything it receives, both ways, at
  ``prerouting`` priority -300 -- before conntrack, so a cut link does not
  refresh a NAT mapping (as in the model);
* ``host_crash``: the same, for good; the crashed side's own processes keep
  running behind the cut, so the lab records that side as dead at the crash
  (``host.crash``), which is what a crash is, and ignores its later packets;
* ``host_reboot``: cut, kill the host's processes, delete its namespace (all
  its sockets), build it again with the same address, and restore the link
  after ``down_s``: the fresh stack answers old segments with RST;
* ``process_kill``: SIGKILL to the program's PID; its kernel closes the socket;
* NAT: masquerade on the router, conntrack timeouts from the middlebox,
  ``nf_conntrack_tcp_loose=0`` so an expired flow is INVALID, then dropped or
  rejected with a TCP reset (``on_expiry``);
* ``sleep``: refused -- one kernel cannot stop one namespace's clocks.

Time: ``t = 0`` is when the connection is established (the client's
``connect()`` returning; for ssh the last packet of the session set-up from the
server).  Program reports are stamped with ``CLOCK_MONOTONIC``; capture times
are ``CLOCK_REALTIME``; both are mapped to t with a pair of readings taken
together.  The fractional second of ``CLOCK_BOOTTIME`` at t = 0 is recorded as
``monotime_phase_s`` in the scenario as run, because OpenSSH's whole-second
clock depends on it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import gzip
import json
import os
import platform
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..scenario import load
from ..simulate import simulate
from .netns import CLIENT_ADDR, SERVER_ADDR, LabError, LabStopped, Topology, sh
from .pcap import classify, read_pcap, seq_before

#: A run longer than this (seconds of observation) must be asked for with allow_long.
DEFAULT_MAX_S = 75.0
HARD_MAX_S = 900.0
PLAIN_PORT = 5000
REPO = Path(__file__).resolve().parents[2]

WIRE_LAYER = {"keepalive_probe": "tcp", "keepalive_ack": "tcp", "retransmit": "tcp", "syn": "tcp",
              "syn_retransmit": "tcp", "fin": "tcp", "rst": "tcp", "data": "tcp"}
WIRE_KIND = {"syn": "syn_sent", "fin": "fin_sent", "rst": "rst_sent", "data": "data_sent"}


# ---------------------------------------------------------------- environment

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
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def openssh_version() -> str | None:
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


# ---------------------------------------------------------------- checks

def check_supported(src: dict) -> None:
    """Refuse, with the reason, what the lab cannot build on one real kernel."""
    sc = load(src)
    for side in ("client", "server"):
        h = sc.host(side)
        if h.os != "linux":
            raise LabError(f"{side}.os is {h.os!r}: the lab runs the real Linux kernel only")
        if h.hz != kernel_hz():
            raise LabError(f"{side}.hz is {h.hz}, but this kernel runs with HZ={kernel_hz()}")
        if "kernel" in src[side] and sc.host(side).kernel != kernel_version():
            k = kernel_version()
            raise LabError(f"{side}.kernel is {src[side]['kernel']}, but this machine runs Linux {k[0]}.{k[1]}")
        if h.app.kind in ("telnet", "telnetd"):
            raise LabError(f"{side}.app.kind {h.app.kind!r}: the lab has no telnet daemon; use plain or ssh/sshd")
        if h.app.kind in ("ssh", "sshd") and src[side].get("socket"):
            raise LabError(f"{side}.socket: ssh/sshd set their own socket options; use app.options (TCPKeepAlive)")
        if "TCP_RTO_MAX_MS" in (src[side].get("socket") or {}):
            raise LabError(f"{side}.socket.TCP_RTO_MAX_MS is not supported by the lab's socket program")
    kinds = {sc.client.app.kind, sc.server.app.kind}
    if kinds not in ({"plain"}, {"ssh", "sshd"}):
        raise LabError("the lab runs plain <-> plain or ssh <-> sshd")
    if len(sc.path.middleboxes) > 1:
        raise LabError("the lab's router plays at most one middlebox")
    for f in sc.faults:
        if f.kind == "sleep":
            raise LabError("faults: 'sleep' cannot be shown on one kernel: the namespaces share one clock, "
                           "and a suspended host's stopped clocks are exactly what matters")
    if "ssh" in kinds and sc.traffic:
        raise LabError("traffic: the lab's ssh sessions are idle (alive messages only); use plain programs for traffic")
    if "ssh" in kinds and sc.start == "connect":
        raise LabError("start: 'connect' is supported for plain programs only")


def observation_s(src: dict) -> float:
    """How long to watch after t = 0: until both predicted deaths (plus a margin) or until_s."""
    sc = load(src)
    pred = simulate(sc)
    ends = []
    for side in ("client", "server"):
        r = pred.side(side)
        if r.fate != "died":
            return sc.until_s
        ends.append(r.latest_s)
    # A closed connection may still have TIME_WAIT to show.
    ends += [e.latest_s for e in pred.events if e.kind in ("time_wait", "time_wait_end")]
    last = max(ends)
    return min(sc.until_s, last + max(3.0, 0.1 * last))


# ---------------------------------------------------------------- the run

class _Lines:
    """Non-blocking line reader over several pipes, each line stamped with CLOCK_MONOTONIC.

    ``stop``: a :class:`threading.Event`; once set, the next poll raises :class:`LabStopped`, so a
    run in a worker thread ends (and tears down) within one poll of being asked to."""

    def __init__(self, stop=None) -> None:
        self.sel = selectors.DefaultSelector()
        self.buf: dict = {}
        self.lines: list[tuple[float, str, str]] = []   # (t_mono, who, line)
        self.stop = stop

    def add(self, stream, who: str) -> None:
        os.set_blocking(stream.fileno(), False)
        self.sel.register(stream, selectors.EVENT_READ, who)
        self.buf[stream] = b""

    def poll(self, timeout: float) -> list[tuple[float, str, str]]:
        if self.stop is not None and self.stop.is_set():
            raise LabStopped("stopped on request")
        new = []
        for key, _ in self.sel.select(min(max(0.0, timeout), 0.5)):  # stop is seen within 0.5 s
            now = time.monotonic()
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.sel.unregister(key.fileobj)
                continue
            data = self.buf[key.fileobj] + chunk
            *complete, rest = data.split(b"\n")
            self.buf[key.fileobj] = rest
            for raw in complete:
                item = (now, key.data, raw.decode(errors="replace"))
                new.append(item)
        self.lines += new
        return new

    def wait_for(self, who: str, pattern: str, timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        for t, w, line in self.lines:
            if w == who and pattern in line:
                return t, line
        while time.monotonic() < deadline:
            for t, w, line in self.poll(deadline - time.monotonic()):
                if w == who and pattern in line:
                    return t, line
        raise LabError(f"{who} did not report {pattern!r} within {timeout} s; saw: "
                       + " | ".join(l for _, w, l in self.lines if w == who)[-600:])


def run(scenario: dict, *, allow_long: bool = False, keep_dir: str | None = None, stop=None) -> dict:
    """Measure a scenario on the real kernel; return the measured result (a dict, the result contract).

    ``stop``: an optional :class:`threading.Event`; setting it (from another thread, e.g. a signal
    handler) ends the run within a fraction of a second with :class:`LabStopped`, after tearing
    everything down -- as any exception or KeyboardInterrupt does (see :mod:`kalab.lab.netns`)."""
    src = copy.deepcopy(scenario)
    sc = load(src)
    ssh = sc.client.app.kind == "ssh"
    missing = missing_requirements(ssh=ssh)
    if missing:
        raise LabError("the lab needs " + ", ".join(missing))
    check_supported(src)
    horizon = observation_s(src)
    if horizon > HARD_MAX_S or (horizon > DEFAULT_MAX_S and not allow_long):
        raise LabError(f"this scenario needs {horizon:.0f} s of observation (more than "
                       f"{DEFAULT_MAX_S:.0f} s); use settings in seconds, or allow_long / --allow-long"
                       + (f" (hard limit {HARD_MAX_S:.0f} s)" if horizon > HARD_MAX_S else ""))
    if stop is not None and stop.is_set():
        raise LabStopped("stopped on request")
    work = Path(keep_dir or tempfile.mkdtemp(prefix="kalab-lab-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with Topology() as topo:
            return _run(topo, src, sc, horizon, work, stop)
    finally:
        if keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(topo: Topology, src: dict, sc, horizon: float, work: Path, stop=None) -> dict:
    ssh = sc.client.app.kind == "ssh"
    topo.ssh = ssh
    # -- per-namespace sysctls (each new netns starts from the compile-time defaults)
    for side in ("client", "server"):
        for key, value in (src[side].get("sysctl") or {}).items():
            topo.sysctl(side, key, value)
    # -- router: link faults before conntrack; NAT if asked
    topo.nft("""
table inet kalab {
  set blocked { type ifname; }
  chain pre { type filter hook prerouting priority -300; policy accept; iifname @blocked drop; }
}
""")
    box = sc.path.middleboxes[0] if sc.path.middleboxes else None
    if box is not None:
        idle = int(round(box.idle_timeout_s))
        unack = int(round(box.unack_timeout_s)) if box.unack_timeout_s else max(idle, 300)
        for key, value in (("nf_conntrack_tcp_timeout_established", idle),
                           ("nf_conntrack_tcp_timeout_unacknowledged", unack),
                           ("nf_conntrack_tcp_timeout_max_retrans", unack),
                           ("nf_conntrack_tcp_loose", 0)):
            topo.sysctl("router", f"net.netfilter.{key}", value)
        verdict = "drop" if box.on_expiry == "drop" else "reject with tcp reset"
        topo.nft(f"""
table ip kalabnat {{
  chain post {{ type nat hook postrouting priority 100; oifname "rs" masquerade; }}
  chain forwarding {{ type filter hook forward priority 0; ct state invalid {verdict}; }}
  chain inbound {{ type filter hook input priority 0; ct state invalid {verdict}; }}
}}
""")
    # -- capture on both router interfaces
    caps: list[tuple[str, subprocess.Popen, Path]] = []
    lines = _Lines(stop)

    def capture(iface: str) -> None:
        n = sum(1 for c in caps if c[0] == iface)
        f = work / f"{iface}{n}.pcap"
        # --immediate-mode: hand every packet over at once (no 1 s buffer timeout to lose at exit).
        p = topo.popen("router", ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "128",
                                  "-w", str(f), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        who = f"tcpdump-{iface}{n}"
        lines.add(p.stderr, who)
        caps.append((iface, p, f))
        lines.wait_for(who, "listening on", 10)

    for iface in ("rc", "rs"):
        capture(iface)

    blocked: dict[str, int] = {"rc": 0, "rs": 0}

    def block(on: bool) -> None:
        for iface in ("rc", "rs"):
            blocked[iface] += 1 if on else -1
            op = "add" if on and blocked[iface] == 1 else ("delete" if not on and blocked[iface] == 0 else None)
            if op:
                topo.nft(f'{op} element inet kalab blocked {{ "{iface}" }}\n')

    procs: dict[str, subprocess.Popen] = {}
    t_ready = None
    if ssh:
        procs.update(_start_ssh(topo, sc, src, work, lines))
        t_ready, _ = lines.wait_for("client-out", "kalab-ready", 20)
    else:
        procs["server"] = _start_plain(topo, "server", src, lines)
        lines.wait_for("server", '"listening"', 10)
        if sc.start == "connect":
            for f in sc.faults:
                if f.kind in ("link_down", "host_crash") and f.at_s == 0:
                    block(True)
        procs["client"] = _start_plain(topo, "client", src, lines)
    # -- t = 0
    mono0, real0, boot0 = time.monotonic(), time.time(), time.clock_gettime(time.CLOCK_BOOTTIME)
    if not ssh:
        if sc.start == "connect":
            t0, _ = lines.wait_for("client", '"connecting"', 10)
        else:
            t0 = _json_t(lines.wait_for("client", '"established"', 10)[1])
            lines.wait_for("server", '"established"', 10)
    else:
        t0 = t_ready
    real_at_t0 = real0 - (mono0 - t0)
    phase = (boot0 - (mono0 - t0)) % 1.0
    srtt = {side: _srtt_ms(topo, side) for side in ("client", "server")} if sc.start != "connect" else {}

    # -- schedules for the plain programs
    deadline = t0 + horizon
    if not ssh:
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

    # -- faults, in time order, while reading what the programs say
    actions = []
    fault_log: list[tuple[float, str, dict]] = []   # (CLOCK_MONOTONIC, action, {"side", "index"})
    for i, f in enumerate(sc.faults):
        if f.kind in ("link_down", "host_crash") and sc.start == "connect" and f.at_s == 0:
            fault_log.append((t0, f.kind, {"side": f.side, "index": i}))   # applied before connect()
            if f.kind == "link_down" and f.for_s is not None:
                actions.append((f.for_s, "unblock", (i, f)))
            continue
        actions.append((f.at_s, f.kind, (i, f)))
        if f.kind == "link_down" and f.for_s is not None:
            actions.append((f.at_s + f.for_s, "unblock", (i, f)))
        if f.kind == "host_reboot":
            actions.append((f.at_s + f.for_s, "reboot_up", (i, f)))
    actions.sort(key=lambda a: a[0])
    cut_seen = False
    while True:
        now = time.monotonic()
        if actions and t0 + actions[0][0] <= now:
            at, what, (i, f) = actions.pop(0)
            if what in CUTS and srtt and not cut_seen:
                # The model keeps srtt constant; what the lost segments' RTO grows from is the
                # estimate at the cut (an RTT sample taken after t = 0 under load moves it).
                cut_seen = True
                srtt.update({k: v for k, v in ((side, _srtt_ms(topo, side)) for side in srtt) if v})
            fault_log.append((time.monotonic(), what, {"side": f.side, "index": i}))  # the cut comes first
            _apply(topo, what, f, block, procs)
            if what == "host_reboot":   # the router's end of the link was rebuilt: capture it again
                capture("rc" if f.side == "client" else "rs")
            continue
        if now >= deadline:
            break
        nxt = min(deadline, t0 + actions[0][0]) if actions else deadline
        lines.poll(min(0.05, nxt - now))
        if _all_settled(procs, lines, sc, ssh):
            # Both programs are done; keep watching a little for trailing packets.
            lines.poll(0.3)
            break
    t_end = time.monotonic()   # observation over: what the teardown causes is not part of the scenario
    # Both hosts' processes at once (the programs and whatever they forked: sshd's session and its
    # command), so that none is orphaned and left to exit on its own (netns.py, issue 12).
    for side in ("client", "server"):
        topo.end_host(side)
    time.sleep(0.2)  # let the capture take the last packets
    for _, p, _ in caps:
        topo._end(p)
    packets = []
    for iface, _, f in caps:
        if f.exists():
            packets += [(iface, pk) for pk in read_pcap(f)]
    extra_traffic = []
    if ssh:
        anchor = ssh_setup_anchor(packets, real_at_t0)
        if anchor is not None:
            tc, answers = anchor
            shift = real_at_t0 - tc
            t0, real_at_t0 = t0 - shift, tc
            phase = (phase - shift) % 1.0
            extra_traffic = [{"at_s": round(pk.ts - tc, 6), "from": "server", "bytes": pk.length} for pk in answers]
    fault_times = [(t - t0, what, d) for t, what, d in fault_log]
    return _measure(sc, src, lines.lines, packets, fault_times, t0, real_at_t0, phase, t_end, ssh, srtt,
                    extra_traffic)


def _json_t(line: str) -> float:
    return json.loads(line)["t"]


def _start_plain(topo: Topology, side: str, src: dict, lines: _Lines) -> subprocess.Popen:
    cfg = {"role": side, "addr": SERVER_ADDR, "port": PLAIN_PORT, "socket": (src[side].get("socket") or {}),
           "accept_timeout_s": 30}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = topo.popen(side, [sys.executable, "-m", "kalab.lab.sockprog", json.dumps(cfg)], stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines.add(p.stdout, side)
    lines.add(p.stderr, f"{side}-err")
    return p


def _start_ssh(topo: Topology, sc, src: dict, work: Path, lines: _Lines) -> dict:
    for name in ("hostkey", "userkey"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name))
    (work / "authorized_keys").write_text((work / "userkey.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    server_opts = dict(src["server"].get("app", {}).get("options", {}) or {})
    cfg = [f"ListenAddress {SERVER_ADDR}", "Port 22", f"HostKey {work / 'hostkey'}", "PidFile none",
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


def _apply(topo, what, f, block, procs) -> None:
    if what in ("link_down", "host_crash"):
        block(True)
    elif what == "unblock":
        block(False)
    elif what == "host_reboot":
        block(True)
        topo.reboot(f.side)
        if f.side in procs:
            procs.pop(f.side)
    elif what == "reboot_up":
        block(False)
    elif what == "process_kill":
        p = procs.get(f.side)
        if p is not None:
            topo.kill(p)


def _all_settled(procs, lines, sc, ssh: bool) -> bool:
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


# ---------------------------------------------------------------- what was measured

SSH_PATTERNS = [
    (re.compile(r"Timeout, server \S+ not responding"), "ssh.server_alive"),
    (re.compile(r"Connection to \S+ closed by remote host"), "tcp.fin_received"),
    (re.compile(r"Connection reset|Broken pipe"), "tcp.reset_received"),
    (re.compile(r"Connection timed out"), "tcp.timeout"),
]
SSHD_PATTERNS = [
    (re.compile(r"Timeout, client not responding from"), "sshd.client_alive"),
    (re.compile(r"Connection closed by"), "tcp.fin_received"),
    (re.compile(r"Connection reset by"), "tcp.reset_received"),
    (re.compile(r"Read error from remote host .*: Connection timed out"), "tcp.timeout"),
]


def ssh_setup_anchor(packets: list, ready_real: float):
    """t = 0 of an ssh run and the server's answers that follow it, from the capture.

    ``packets``: ``[(iface, Packet)]``; ``ready_real``: when the client said the session was
    ready (CLOCK_REALTIME).  t = 0 is the client's last data of the set-up (sshd stamps
    ``last_client_time`` then); the server's answers (the command's output) become server
    traffic: they restart sshd's relative wait without being client data, as ppoll does.
    Only the set-up's own answers count: new data only (a spurious retransmission under load is
    the kernel's, which the model derives itself), up to the client's next data (its first alive
    message, which the model answers itself) and at most 50 ms after the ready line.
    Returns ``(tc, [Packet])`` or None when the capture shows no client data.
    """
    c_data = [pk.ts for i, pk in packets if i == "rc" and pk.src == CLIENT_ADDR and pk.length and pk.ts <= ready_real]
    if not c_data:
        return None
    tc = max(c_data)
    c_next = min((pk.ts for i, pk in packets if i == "rc" and pk.src == CLIENT_ADDR and pk.length and pk.ts > tc),
                 default=float("inf"))
    answers, sent_end = [], None
    for pk in sorted((pk for i, pk in packets if i == "rs" and pk.src == SERVER_ADDR and pk.length),
                     key=lambda pk: pk.ts):
        end = (pk.seq + pk.length) % 2**32
        fresh = sent_end is None or seq_before(sent_end, end)
        if fresh:
            sent_end = end
        if fresh and tc < pk.ts <= ready_real + 0.05 and pk.ts < c_next:
            answers.append(pk)
    return tc, answers


#: Faults after which no RTT sample reaches the host whose segments are lost.
CUTS = ("link_down", "host_crash", "host_reboot")


def _srtt_ms(topo: Topology, side: str) -> float | None:
    """The connection's smoothed RTT as the kernel has it now (``ss -ti``: ``rtt:SRTT/RTTVAR``)."""
    port = "22" if topo.ssh else str(PLAIN_PORT)
    out = sh("ip", "netns", "exec", topo.ns[side], "ss", "-tinH", "state", "established",
             f"( sport = :{port} or dport = :{port} )", check=False).stdout
    m = re.search(r"\brtt:([\d.]+)/([\d.]+)", out)
    return float(m.group(1)) if m else None


def _measure(sc, src, lines, packets, fault_log, t0, real_at_t0, phase, t_end, ssh, srtt, extra_traffic) -> dict:
    side_of = {CLIENT_ADDR: "client", SERVER_ADDR: "server"}
    # Each host's own segments: client's as they enter the router on rc, server's on rs.
    own = sorted((pk for iface, pk in packets if (iface, pk.src) in (("rc", CLIENT_ADDR), ("rs", SERVER_ADDR))),
                 key=lambda p: p.ts)
    wire = [(ts - real_at_t0, side, kind) for ts, side, kind in classify(own, side_of)]
    server_rsts = [pk.ts for iface, pk in packets if iface == "rs" and pk.src == SERVER_ADDR and pk.rst]
    router_rsts = []
    for iface, pk in packets:
        if pk.rst and iface == "rc" and pk.dst == CLIENT_ADDR and not any(abs(pk.ts - s) < 0.005 for s in server_rsts):
            router_rsts.append((pk.ts - real_at_t0, "client"))
        elif pk.rst and iface == "rs" and pk.dst == SERVER_ADDR and pk.src != CLIENT_ADDR and \
                not any(abs(pk.ts - c.ts) < 0.005 for i, c in packets if i == "rc" and c.src == CLIENT_ADDR and c.rst):
            router_rsts.append((pk.ts - real_at_t0, "server"))
    crash = {d["side"]: t for t, what, d in fault_log if what in ("host_crash", "host_reboot")}
    back_up = {d["side"]: t for t, what, d in fault_log if what == "reboot_up"}
    killed = {d["side"]: t for t, what, d in fault_log if what == "process_kill"}
    t_stop = t_end - t0
    events = []
    for t, side, kind in wire:
        if ssh and side == "client" and kind == "data" and abs(t) < 1e-6:
            continue  # the anchor of t = 0: the client's last data of the ssh set-up
        if kind == "ack" or (t < 0 and sc.start != "connect") or t >= t_stop:
            continue  # pure ACKs are not events; the handshake precedes t = 0; the teardown follows the end
        if side in crash and crash[side] <= t < back_up.get(side, float("inf")):
            continue  # a crashed (or rebooting) host is silent: what its processes do behind the cut is not
            # part of the scenario
        events.append({"t_s": round(t, 6), "side": side, "layer": WIRE_LAYER.get(kind, "tcp"),
                       "kind": WIRE_KIND.get(kind, kind), "detail": "wire", "latest_s": round(t, 6)})
    for t, side in router_rsts:
        if t >= t_stop:
            continue
        events.append({"t_s": round(t, 6), "side": "path", "layer": "path", "kind": "middlebox_rst",
                       "detail": f"wire: RST to the {side} from the router", "latest_s": round(t, 6)})
    for t, what, d in fault_log:
        events.append({"t_s": round(t, 6), "side": d["side"] or "path", "layer": "path" if not d["side"] else "host",
                       "kind": what, "detail": "lab", "latest_s": round(t, 6)})

    def wire_before(side, t):
        kinds = [k for tt, s, k in wire if s == side and tt <= t + 0.002 and k not in ("ack", "keepalive_ack")]
        return kinds[-1] if kinds else None

    def timeout_by(side, t, phase_hint=None):
        opts = src[side].get("socket") or {}
        if phase_hint == "connect":
            return "tcp.syn_timeout"
        if opts.get("TCP_USER_TIMEOUT"):
            return "tcp.user_timeout"
        return "tcp.keepalive" if wire_before(side, t) in ("keepalive_probe", "rst") else "tcp.retransmission"

    def reset_by(side, t):
        return "middlebox.reset" if any(abs(t - rt) < 0.05 and s == side for rt, s in router_rsts) \
            else "tcp.reset_received"

    res = {}
    for side in ("client", "server"):
        r = {"fate": None, "at_s": None, "latest_s": None, "by": None, "sees": None, "exit_code": None}
        if side in crash:
            r.update(fate="died", at_s=crash[side], by="host." + ("crash" if any(
                w == "host_crash" and d["side"] == side for _, w, d in fault_log) else "reboot"))
        elif side in killed:
            r.update(fate="died", at_s=killed[side], by="app.exit", sees="killed (SIGKILL)", exit_code=137)
        elif not ssh:
            for t, who, line in lines:
                if who != side or not line.startswith("{"):
                    continue
                msg = json.loads(line)
                ts = msg["t"] - t0
                if msg["ev"] == "error":
                    err = msg["errno"]
                    by = timeout_by(side, ts, msg.get("phase")) if err == "ETIMEDOUT" else \
                        reset_by(side, ts) if err in ("ECONNRESET", "ECONNREFUSED", "EPIPE") else "unknown"
                    r.update(fate="died", at_s=ts, by=by, sees=err)
                    break
                if msg["ev"] == "eof":
                    r.update(fate="died", at_s=ts, by="tcp.fin_received", sees="EOF")
                    break
                if msg["ev"] == "closed":
                    r.update(fate="died", at_s=ts, by="app.exit", sees="closed")
                    break
        else:
            who = "client-err" if side == "client" else "server-err"
            patterns = SSH_PATTERNS if side == "client" else SSHD_PATTERNS
            for t, w, line in lines:
                if w != who or t < t0:
                    continue
                for rx, by in patterns:
                    if rx.search(line):
                        ts = t - t0
                        if by == "tcp.timeout":
                            by = timeout_by(side, ts)
                        elif by == "tcp.reset_received":
                            by = reset_by(side, ts)
                        r.update(fate="died", at_s=ts, by=by, sees=line.strip(), exit_code=255)
                        break
                if r["fate"]:
                    break
        for tt, w, line in lines:
            if w == side and '"time_wait"' in line:
                m = json.loads(line)
                events.append({"t_s": round(m["t"] - t0, 6), "side": side, "layer": "tcp",
                               "kind": "time_wait" if m["state"] == "start" else "time_wait_end",
                               "detail": "lab: /proc/net/tcp", "latest_s": round(m["t"] - t0, 6)})
        if r["at_s"] is not None:
            r["at_s"] = round(r["at_s"], 6)
            r["latest_s"] = r["at_s"]
            events.append({"t_s": r["at_s"], "side": side, "layer": "app", "kind": "died",
                           "detail": f"{r['by']}: {r['sees']}" if r["sees"] else r["by"], "latest_s": r["at_s"]})
        res[side] = r
    for side in ("client", "server"):
        other = "server" if side == "client" else "client"
        if res[side]["fate"] is None:
            res[side]["fate"] = "half_open" if res[other]["fate"] == "died" else "alive"
    if sc.start == "connect" and res["client"]["by"] == "tcp.syn_timeout" and \
            not any(s == "server" for _, s, _ in wire):
        res["server"]["fate"] = "none"
    events.sort(key=lambda e: (e["t_s"], e["side"]))
    as_run = copy.deepcopy(src)
    # The scenario as run: faults at the times the lab really applied them.
    for t, what, d in fault_log:
        f = as_run["faults"][d["index"]]
        if what in ("link_down", "host_crash", "host_reboot", "process_kill"):
            f["at_s"] = round(max(t, 0.0), 6)
        elif what == "unblock":
            f["for_s"] = round(t - f["at_s"], 6)
        elif what == "reboot_up":
            f["down_s"] = round(t - f["at_s"], 6)
    if extra_traffic:
        as_run["traffic"] = list(as_run.get("traffic", [])) + extra_traffic
    for side in ("client", "server"):
        as_run[side]["monotime_phase_s"] = round(phase, 6)
        if srtt.get(side):
            as_run[side]["srtt_ms"] = srtt[side]
    return {
        "name": sc.name,
        "client": res["client"],
        "server": res["server"],
        "events": events,
        "until_s": round(t_end - t0, 3),
        "warnings": [],
        "measured": True,
        # What the lab watched beyond the wire: TIME_WAIT only where its own program closed.
        "watched": {"time_wait": sorted({t.side for t in sc.traffic if t.close and not ssh})},
        "scenario": as_run,
        "meta": {"kernel": platform.release(), "hz": kernel_hz(), "openssh": openssh_version(),
                 "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "python": platform.python_version(), "tool": "kalab.lab"},
    }
