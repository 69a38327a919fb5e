"""What a run measured: its raw readings (:class:`Observation`) turned into the result contract.

The runner (:mod:`kalab.lab.runner`) only records; this module interprets, from the readings alone:

* the wire: each host's own segments (the client's as they enter the router on ``rc``, the
  server's on ``rs``), named by :func:`kalab.lab.pcap.classify`; RSTs the router generates (the
  NAT's ``reject with tcp reset``) are told apart from the hosts' by not having been seen leaving
  the other host;
* each side's end: the socket program's JSON lines (``error`` with its errno, ``eof``, ``closed``)
  or ssh's and sshd's log lines (ssh(1) ``Timeout, server ... not responding``, sshd(8) ``Timeout,
  client not responding``, ...); a timeout or reset is attributed to the mechanism the wire shows
  (keepalive probes or retransmissions before it; a router RST within 50 ms);
* the faults at the times they were applied, and the scenario as run (``scenario``: those times,
  ``monotime_phase_s``, each side's ``srtt_ms``), so that the model is asked about what really ran.

Time: ``t = 0`` is when the connection is established (the client's ``connect()`` returning; for
ssh the client's last data of the session set-up, :func:`ssh_setup_anchor`).  Program reports are
stamped with ``CLOCK_MONOTONIC``, captures with ``CLOCK_REALTIME``; the runner takes one reading of
each (and of ``CLOCK_BOOTTIME``) together to map them (clock_gettime(2)).  The fractional second
of ``CLOCK_BOOTTIME`` at t = 0 is recorded as ``monotime_phase_s``, because OpenSSH's whole-second
clock (``monotime()``, misc.c) depends on it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import platform
import re
from dataclasses import dataclass, field

from ..scenario import Scenario
from .host import kernel_hz
from .netns import CLIENT_ADDR, SERVER_ADDR
from .pcap import Packet, classify, seq_before

SIDES = ("client", "server")
WIRE_LAYER = {"keepalive_probe": "tcp", "keepalive_ack": "tcp", "retransmit": "tcp", "syn": "tcp",
              "syn_retransmit": "tcp", "fin": "tcp", "rst": "tcp", "data": "tcp"}
WIRE_KIND = {"syn": "syn_sent", "fin": "fin_sent", "rst": "rst_sent", "data": "data_sent"}

#: ssh(1) prints the same line whether ConnectTimeout or the kernel's SYN retries gave up
#: (``timeout_connect``, misc.c, returns ETIMEDOUT for both): :func:`_ssh_end` tells them apart.
SSH_CONNECT_FAILED = re.compile(r"ssh: connect to host \S+ port \d+: (.*)")
SSH_PATTERNS = [
    (SSH_CONNECT_FAILED, "ssh.connect"),
    (re.compile(r"Timeout, server \S+ not responding"), "ssh.server_alive"),
    (re.compile(r"Connection to \S+ closed by remote host"), "tcp.fin_received"),
    # the server closed the session's channel (a terminal session): its idle timer, or the shell's
    (re.compile(r"Connection to \S+ closed\.\s*$"), "ssh.session_closed"),
    (re.compile(r"Connection reset|Broken pipe"), "tcp.reset_received"),
    (re.compile(r"Connection timed out"), "tcp.timeout"),
]
SSHD_PATTERNS = [
    (re.compile(r"Timeout, client not responding from"), "sshd.client_alive"),
    (re.compile(r"channel \d+: closing after \d+ seconds of inactivity"), "sshd.channel_timeout"),
    (re.compile(r"terminating inactive connection from"), "sshd.unused_connection_timeout"),
    (re.compile(r"Connection closed by"), "tcp.fin_received"),
    (re.compile(r"Connection reset by"), "tcp.reset_received"),
    (re.compile(r"Read error from remote host .*: Connection timed out"), "tcp.timeout"),
]


@dataclass(frozen=True)
class Observation:
    """One run's raw readings, as the runner took them; nothing in it is interpreted yet."""

    scenario: Scenario
    #: The scenario dict as given (a copy): the scenario as run is built from it.
    source: dict
    #: Every line the programs and tcpdump wrote: ``(CLOCK_MONOTONIC when read, who, line)``.
    lines: list[tuple[float, str, str]]
    #: The capture: ``(router interface, segment)``, segment times in CLOCK_REALTIME.
    packets: list[tuple[str, Packet]]
    #: The fault actions as applied: ``(CLOCK_MONOTONIC, action, {"side", "index"})``.
    faults: list[tuple[float, str, dict]]
    #: CLOCK_MONOTONIC at t = 0 as the programs reported it (ssh: the ready line, refined here).
    t0: float
    #: CLOCK_REALTIME at ``t0``, from one pair of readings taken together.
    real_at_t0: float
    #: The fractional second of CLOCK_BOOTTIME at ``t0``.
    phase: float
    #: CLOCK_MONOTONIC when the observation ended: what the teardown causes is not part of it.
    end: float
    #: Each side's smoothed RTT [ms] (``ss -ti``) at the first cut, else at t = 0; empty for a
    #: scenario that starts with connect() (no connection to read).
    srtt_ms: dict[str, float | None]
    #: Each ssh/sshd side's exact OpenSSH build (``OpenSSH_10.0p2 Debian-7~bpo12+1``); empty for plain.
    openssh: dict[str, str] = field(default_factory=dict)
    #: Each program's exit status, where it had exited by itself when the observation ended.
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def ssh(self) -> bool:
        return self.scenario.client.app.kind == "ssh"


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


def _anchored(obs: Observation) -> tuple[float, float, float, list[dict]]:
    """``(t0, real_at_t0, phase, extra server traffic)``: the readings as taken, or, for ssh, moved
    to the client's last set-up data (:func:`ssh_setup_anchor`)."""
    t0, real_at_t0, phase = obs.t0, obs.real_at_t0, obs.phase
    if obs.ssh and obs.scenario.start == "connect":
        # t = 0 is the client's connect(): its first SYN (the model's SYN at t = 0).
        syns = [pk.ts for i, pk in obs.packets if i == "rc" and pk.src == CLIENT_ADDR and pk.syn]
        if syns:
            shift = real_at_t0 - min(syns)
            return t0 - shift, min(syns), (phase - shift) % 1.0, []
        return t0, real_at_t0, phase, []
    server_app = obs.source["server"].get("app") or {}
    if obs.ssh and server_app.get("shell") is not None:
        # A shell session: t = 0 is its first prompt -- the segment carrying the ready line, which
        # bash's PROMPT_COMMAND prints just after it armed TMOUT (kalab.lab.programs.SHELL_COMMAND).
        out = [pk.ts for i, pk in obs.packets if i == "rs" and pk.src == SERVER_ADDR and pk.length
               and pk.ts <= real_at_t0 + 0.002]
        if out:
            shift = real_at_t0 - max(out)
            return t0 - shift, max(out), (phase - shift) % 1.0, []
    copts = {k.lower(): str(v).lower() for k, v in ((obs.source["client"].get("app") or {}).get("options") or {}).items()}
    if obs.ssh and copts.get("sessiontype") == "none":
        # ssh -N: no session; t = 0 is the client's last data of the authentication, and what both
        # sides send just after it (the post-authentication global requests) is traffic of the
        # scenario as run: data, but no channel's.
        c_data = [pk.ts for i, pk in obs.packets if i == "rc" and pk.src == CLIENT_ADDR and pk.length
                  and pk.ts <= real_at_t0]
        if c_data:
            tc = max(c_data)
            extra = [{"at_s": round(pk.ts - tc, 6), "from": "client" if pk.src == CLIENT_ADDR else "server",
                      "bytes": pk.length}
                     for i, pk in sorted(obs.packets, key=lambda x: x[1].ts)
                     if pk.length and tc < pk.ts <= tc + 0.5 and
                     ((i == "rc" and pk.src == CLIENT_ADDR) or (i == "rs" and pk.src == SERVER_ADDR))]
            shift = real_at_t0 - tc
            return t0 - shift, tc, (phase - shift) % 1.0, extra
    if obs.ssh:
        anchor = ssh_setup_anchor(obs.packets, real_at_t0)
        if anchor is not None:
            tc, answers = anchor
            shift = real_at_t0 - tc
            t0, real_at_t0 = t0 - shift, tc
            phase = (phase - shift) % 1.0
            return t0, real_at_t0, phase, [{"at_s": round(pk.ts - tc, 6), "from": "server", "bytes": pk.length}
                                           for pk in answers]
    return t0, real_at_t0, phase, []


@dataclass(frozen=True)
class _Wire:
    """The capture from t = 0: each host's own segments and the RSTs the router sent."""

    segments: list[tuple[float, str, str]]   # (t [s], side, kind)
    router_rsts: list[tuple[float, str]]     # (t [s], the side it was sent to)

    @classmethod
    def read(cls, packets: list[tuple[str, Packet]], real_at_t0: float) -> _Wire:
        side_of = {CLIENT_ADDR: "client", SERVER_ADDR: "server"}
        # Each host's own segments: client's as they enter the router on rc, server's on rs.
        own = sorted((pk for iface, pk in packets if (iface, pk.src) in (("rc", CLIENT_ADDR), ("rs", SERVER_ADDR))),
                     key=lambda p: p.ts)
        segments = [(ts - real_at_t0, side, kind) for ts, side, kind in classify(own, side_of)]
        server_rsts = [pk.ts for iface, pk in packets if iface == "rs" and pk.src == SERVER_ADDR and pk.rst]
        router_rsts = []
        for iface, pk in packets:
            if pk.rst and iface == "rc" and pk.dst == CLIENT_ADDR and \
                    not any(abs(pk.ts - s) < 0.005 for s in server_rsts):
                router_rsts.append((pk.ts - real_at_t0, "client"))
            elif pk.rst and iface == "rs" and pk.dst == SERVER_ADDR and pk.src != CLIENT_ADDR and \
                    not any(abs(pk.ts - c.ts) < 0.005 for i, c in packets if i == "rc" and c.src == CLIENT_ADDR and c.rst):
                router_rsts.append((pk.ts - real_at_t0, "server"))
        return cls(segments, router_rsts)

    def last_kind(self, side: str, t: float) -> str | None:
        """What ``side`` last sent by ``t`` (2 ms of capture jitter allowed), ACKs aside."""
        kinds = [k for tt, s, k in self.segments if s == side and tt <= t + 0.002 and k not in ("ack", "keepalive_ack")]
        return kinds[-1] if kinds else None

    def timeout_by(self, socket: dict, side: str, t: float, phase_hint: str | None = None) -> str:
        """The mechanism behind an ETIMEDOUT at ``t``: the SYN retries, TCP_USER_TIMEOUT when set,
        else keepalive if probes (or the RST ending them) came last, else retransmission."""
        if phase_hint == "connect":
            return "tcp.syn_timeout"
        if socket.get("TCP_USER_TIMEOUT"):
            return "tcp.user_timeout"
        return "tcp.keepalive" if self.last_kind(side, t) in ("keepalive_probe", "rst") else "tcp.retransmission"

    def reset_by(self, side: str, t: float) -> str:
        """Who reset ``side``'s connection at ``t``: the router (a NAT) if it sent ``side`` an RST then."""
        return "middlebox.reset" if any(abs(t - rt) < 0.05 and s == side for rt, s in self.router_rsts) \
            else "tcp.reset_received"


def _program_end(lines, side: str, t0: float, wire: _Wire, socket: dict) -> dict | None:
    """How the socket program on ``side`` ended, from its first error, EOF or close report."""
    for _, who, line in lines:
        if who != side or not line.startswith("{"):
            continue
        msg = json.loads(line)
        ts = msg["t"] - t0
        if msg["ev"] == "error":
            err = msg["errno"]
            by = wire.timeout_by(socket, side, ts, msg.get("phase")) if err == "ETIMEDOUT" else \
                wire.reset_by(side, ts) if err in ("ECONNRESET", "ECONNREFUSED", "EPIPE") else "unknown"
            return dict(fate="died", at_s=ts, by=by, sees=err)
        if msg["ev"] == "eof":
            return dict(fate="died", at_s=ts, by="tcp.fin_received", sees="EOF")
        if msg["ev"] == "closed":
            return dict(fate="died", at_s=ts, by="app.exit", sees="closed")
    return None


def _ssh_end(lines, side: str, t0: float, wire: _Wire, socket: dict, connect_timeout_s: float = 0.0) -> dict | None:
    """How ssh (client) or sshd (server) ended, from the first of its log lines that says so.

    A failed connect: ``ConnectTimeout`` when the error came within 0.5 s of its deadline (ssh's
    line is the same either way), else the kernel's SYN retries."""
    who = "client-err" if side == "client" else "server-err"
    patterns = SSH_PATTERNS if side == "client" else SSHD_PATTERNS
    for t, w, line in lines:
        if w != who or t < t0:
            continue
        for rx, by in patterns:
            if rx.search(line):
                ts = t - t0
                if by == "ssh.connect":
                    timed_out = "timed out" in rx.search(line).group(1)
                    by = "ssh.connect_timeout" if timed_out and connect_timeout_s > 0 and \
                        abs(ts - connect_timeout_s) < 0.5 else "tcp.syn_timeout" if timed_out else \
                        wire.reset_by(side, ts) if "refused" in line else "unknown"
                elif by == "tcp.timeout":
                    by = wire.timeout_by(socket, side, ts)
                elif by == "tcp.reset_received":
                    by = wire.reset_by(side, ts)
                return dict(fate="died", at_s=ts, by=by, sees=line.strip(), exit_code=255)
    return None


#: The server's causes that end a healthy idle session (kalab.apps.IDLE_HANGUPS): ssh reports them too.
IDLE_HANGUPS = ("sshd.channel_timeout", "sshd.unused_connection_timeout", "shell.tmout", "logind.idle")
#: bash's line on the session's terminal when its TMOUT ends it (eval.c ``alrm_catcher``).
TMOUT_LINE = re.compile(r"timed out waiting for input: auto-logout")
#: sshd's lines once the session's program has exited and ssh has gone (VERBOSE).
SSHD_SESSION_GONE = re.compile(r"Close session: |Received disconnect from|Disconnected from")


def _idle_hangup(res: dict, obs: Observation, t0: float) -> None:
    """The server's idle hangups, read together: bash's TMOUT (its line on the client's terminal;
    the server's end is sshd's first line after the shell exited), and ssh's end reported as the
    server's cause when the server closed the session (``Connection to HOST closed.``) or the
    connection (``closed by remote host``)."""
    if not obs.ssh:
        return
    srv, cli = res["server"], res["client"]
    tm = next((line for t, w, line in obs.lines if w == "client-out" and t >= t0 and TMOUT_LINE.search(line)), None)
    if tm is not None and srv["by"] is None:
        t_end = next((t for t, w, line in obs.lines if w == "server-err" and t >= t0 and SSHD_SESSION_GONE.search(line)),
                     None)
        if t_end is not None:
            srv.update(fate="died", at_s=t_end - t0, by="shell.tmout", sees=TMOUT_LINE.search(tm).group(0),
                       exit_code=None)
    if srv["by"] in ("sshd.channel_timeout", "shell.tmout"):
        srv["exit_code"] = None   # sshd's session process ends with the session, not by an error
    if srv["by"] in IDLE_HANGUPS and cli["by"] in ("ssh.session_closed", "tcp.fin_received"):
        cli["by"] = srv["by"]
    if cli["by"] in IDLE_HANGUPS and "client" in obs.exit_codes:
        cli["exit_code"] = obs.exit_codes["client"]


def _event(t: float, side: str, layer: str, kind: str, detail: str) -> dict:
    return {"t_s": round(t, 6), "side": side, "layer": layer, "kind": kind, "detail": detail,
            "latest_s": round(t, 6)}


def measure(obs: Observation) -> dict:
    """The measured result of one run: the result contract, plus ``scenario`` (as run) and ``meta``."""
    sc, ssh = obs.scenario, obs.ssh
    t0, real_at_t0, phase, extra_traffic = _anchored(obs)
    fault_log = [(t - t0, what, d) for t, what, d in obs.faults]   # (t [s], action, {"side", "index"})
    wire = _Wire.read(obs.packets, real_at_t0)
    crash = {d["side"]: t for t, what, d in fault_log if what in ("host_crash", "host_reboot")}
    events = _wire_events(wire, obs, crash, fault_log, obs.end - t0)
    events += [_event(t, d["side"] or "path", "path" if not d["side"] else "host", what, "lab")
               for t, what, d in fault_log]
    res = {}
    for side in SIDES:
        r = _side_end(side, obs, t0, wire, crash, fault_log)
        for _, w, line in obs.lines:
            if w == side and '"time_wait"' in line:
                m = json.loads(line)
                events.append(_event(m["t"] - t0, side, "tcp", "time_wait" if m["state"] == "start" else "time_wait_end",
                                     "lab: /proc/net/tcp"))
        if r["at_s"] is not None:
            r["at_s"] = round(r["at_s"], 6)
            r["latest_s"] = r["at_s"]
            events.append({"t_s": r["at_s"], "side": side, "layer": "app", "kind": "died",
                           "detail": f"{r['by']}: {r['sees']}" if r["sees"] else r["by"], "latest_s": r["at_s"]})
        res[side] = r
    _idle_hangup(res, obs, t0)
    for side in SIDES:
        other = "server" if side == "client" else "client"
        if res[side]["fate"] is None:
            res[side]["fate"] = "half_open" if res[other]["fate"] == "died" else "alive"
    if sc.start == "connect" and res["client"]["by"] in ("tcp.syn_timeout", "ssh.connect_timeout") and \
            not any(s == "server" for _, s, _ in wire.segments):
        res["server"]["fate"] = "none"
    events.sort(key=lambda e: (e["t_s"], e["side"]))
    watched = {"time_wait": sorted({t.side for t in sc.traffic if t.close and not ssh})}
    if any(res[s]["by"] in IDLE_HANGUPS for s in SIDES):
        # The server ended a healthy session: what follows its end (SSH channel close, disconnect,
        # FINs) is the programs' teardown chatter, which the model does not predict segment by
        # segment -- the wire is compared up to the first end (kalab.compare).
        watched["wire_until_s"] = round(min(res[s]["at_s"] for s in SIDES if res[s]["at_s"] is not None), 6)
    return {
        "name": sc.name,
        "client": res["client"],
        "server": res["server"],
        "events": events,
        "until_s": round(obs.end - t0, 3),
        "warnings": [],
        "measured": True,
        # What the lab watched beyond the wire: TIME_WAIT only where its own program closed.
        "watched": watched,
        "scenario": _as_run(obs.source, fault_log, extra_traffic, phase, obs.srtt_ms),
        # The exact OpenSSH build of each ssh/sshd side (None for plain programs).
        "meta": {"kernel": platform.release(), "hz": kernel_hz(), "openssh": dict(obs.openssh) or None,
                 "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "python": platform.python_version(), "tool": "kalab.lab"},
    }


def _wire_events(wire: _Wire, obs: Observation, crash: dict, fault_log, t_stop: float) -> list[dict]:
    """The segments that are events of the scenario, and the router's RSTs, up to ``t_stop``."""
    back_up = {d["side"]: t for t, what, d in fault_log if what == "reboot_up"}
    events = []
    for t, side, kind in wire.segments:
        if obs.ssh and kind == "data" and abs(t) < 1e-6:
            continue  # the anchor of t = 0: the client's last data of the ssh set-up (a shell's first prompt)
        if kind == "ack" or (t < 0 and obs.scenario.start != "connect") or t >= t_stop:
            continue  # pure ACKs are not events; the handshake precedes t = 0; the teardown follows the end
        if side in crash and crash[side] <= t < back_up.get(side, float("inf")):
            continue  # a crashed (or rebooting) host is silent: what its processes do behind the cut is not
            # part of the scenario
        events.append(_event(t, side, WIRE_LAYER.get(kind, "tcp"), WIRE_KIND.get(kind, kind), "wire"))
    for t, side in wire.router_rsts:
        if t >= t_stop:
            continue
        events.append(_event(t, "path", "path", "middlebox_rst", f"wire: RST to the {side} from the router"))
    return events


def _side_end(side: str, obs: Observation, t0: float, wire: _Wire, crash: dict, fault_log) -> dict:
    """One side's result: a crash or reboot, a killed program, else what its program reported."""
    r = {"fate": None, "at_s": None, "latest_s": None, "by": None, "sees": None, "exit_code": None}
    killed = {d["side"]: t for t, what, d in fault_log if what == "process_kill"}
    if side in crash:
        r.update(fate="died", at_s=crash[side], by="host." + ("crash" if any(
            w == "host_crash" and d["side"] == side for _, w, d in fault_log) else "reboot"))
    elif side in killed:
        r.update(fate="died", at_s=killed[side], by="app.exit", sees="killed (SIGKILL)", exit_code=137)
    elif obs.ssh:
        r.update(_ssh_end(obs.lines, side, t0, wire, {}, obs.scenario.host(side).app.connect_timeout_s) or {})
    else:
        r.update(_program_end(obs.lines, side, t0, wire, obs.source[side].get("socket") or {}) or {})
    return r


def _as_run(src: dict, fault_log, extra_traffic: list[dict], phase: float, srtt: dict) -> dict:
    """The scenario as run: faults at the times the lab really applied them (t from t = 0), the ssh
    set-up's answers as server traffic, the clock phase and the RTT estimate each side had."""
    as_run = copy.deepcopy(src)
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
    for side in SIDES:
        as_run[side]["monotime_phase_s"] = round(phase, 6)
        if srtt.get(side):
            as_run[side]["srtt_ms"] = srtt[side]
    return as_run
