"""The measurement matrix: scenarios the lab runs live in CI and records to ``data/measured/``.

Settings are in seconds so each run takes at most about a minute; the two that
cannot be shortened (``tcp_retries2 = 8``: a 102.2 s budget; TIME_WAIT: a fixed
60 s) are marked ``long``.  The ones in ``REPEAT`` are recorded as a series of runs
(:mod:`kalab.lab.repeat`).  All use a 0.1 ms path RTT (veth) and Linux defaults
otherwise.
"""

from __future__ import annotations

import copy

RTT = {"rtt_ms": 0.1}
CUT = [{"kind": "link_down", "at_s": 1, "for_s": None}]


def _ka(idle, intvl, cnt, ut=None):
    s = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": intvl, "TCP_KEEPCNT": cnt}
    if ut is not None:
        s["TCP_USER_TIMEOUT"] = ut
    return s


def _plain_ka(name, sock, until, faults=CUT, **extra):
    sc = {"name": name, "client": {"socket": sock}, "server": {}, "path": dict(RTT), "faults": faults,
          "until_s": until}
    sc.update(extra)
    return sc


def _retx(name, until, sysctl=None, sock=None):
    return {"name": name, "client": {"sysctl": sysctl or {}, "socket": sock or {}}, "server": {}, "path": dict(RTT),
            "traffic": [{"at_s": 1, "from": "client", "bytes": 100}],
            "faults": [{"kind": "link_down", "at_s": 0.5, "for_s": None}], "until_s": until}


#: The OpenSSH versions the lab has a build of (kalab.lab.host): every ssh/sshd scenario is
#: measured on each, named ``ssh-...``/``sshd-...`` on 9.2 and ``ssh10-...``/``sshd10-...`` on 10.0.
OPENSSH = {"9.2": "", "10.0": "10"}


def _openssh(version, name, client_opts, server_opts, until, faults=None, **extra):
    sc = {"name": f"OpenSSH {version}: {name}",
          "client": {"app": {"kind": "ssh", "version": version, "options": client_opts}},
          "server": {"app": {"kind": "sshd", "version": version, "options": server_opts}},
          "path": dict(RTT), "faults": faults or [{"kind": "link_down", "at_s": 0.5, "for_s": None}],
          "until_s": until}
    sc.update(extra)
    return sc


def _ssh(version, interval, count, until):
    return _openssh(version, f"ssh ServerAliveInterval {interval}, CountMax {count}",
                    {"ServerAliveInterval": interval, "ServerAliveCountMax": count, "TCPKeepAlive": "no"},
                    {"TCPKeepAlive": "no"}, until)


def _sshd(version, interval, count, until):
    return _openssh(version, f"sshd ClientAliveInterval {interval}, CountMax {count}", {"TCPKeepAlive": "no"},
                    {"ClientAliveInterval": interval, "ClientAliveCountMax": count, "TCPKeepAlive": "no"}, until)


def _openssh_matrix() -> dict[str, dict]:
    """The ssh/sshd scenarios, on every OpenSSH version the lab has."""
    out = {}
    for v, tag in OPENSSH.items():
        ssh, sshd = f"ssh{tag}", f"sshd{tag}"
        out.update({
            # ServerAlive: floor(t_last_rx) + (N + 1) x I on the whole-second clock; CountMax 0 kills at once
            f"{ssh}-serveralive-2-3": _ssh(v, 2, 3, 11),
            f"{ssh}-serveralive-2-0": _ssh(v, 2, 0, 5),
            f"{ssh}-serveralive-3-1": _ssh(v, 3, 1, 9),
            f"{ssh}-serveralive-1-5": _ssh(v, 1, 5, 9),
            # ClientAlive on a dead client: every 2 x I on 9.2-9.4, every I from 9.5
            f"{sshd}-clientalive-2-2": _sshd(v, 2, 2, 15),
            f"{sshd}-clientalive-3-1": _sshd(v, 3, 1, 15),
            # ClientAliveCountMax 0 (>= 8.2): probes, never a ClientAlive timeout; the first probe's
            # retransmissions end the session.  tcp_retries2 = 2 on the server: with ssh's RTO of
            # 212 ms the third retransmission comes 1.27 s into the 1.4 s budget and the give-up
            # 2.97 s in; with 3, the fourth would come 2.97 s into a 3.0 s budget -- the timer
            # wheel's few ms decide, and the kernel gave up without it.
            f"{sshd}-clientalive-2-0": _sshd_retries(v, 2, 0, 16),
            # sshd's TCPKeepAlive yes: the kernel's keepalive with the server namespace's sysctls.
            # (ssh's side is not in the matrix: its socket is set up ~0.4 s before t = 0, so its
            # keepalive re-arm lands on another timer-wheel level than the model's; docs/lab.md.)
            f"{sshd}-tcpkeepalive": _openssh(
                v, "sshd TCPKeepAlive yes, keepalive 3/1/2", {"TCPKeepAlive": "no"}, {"TCPKeepAlive": "yes"}, 10),
            # ConnectTimeout with the server unreachable: ssh gives up between the SYN retries
            # (6.18: linear 1 s, so at 1..5 s, then 7 s: a timeout of 6 s ties with none)
            f"{ssh}-connecttimeout-6": _openssh(
                v, "ssh ConnectTimeout 6, server unreachable", {"ConnectTimeout": 6}, {}, 9,
                faults=[{"kind": "link_down", "at_s": 0, "for_s": None}], start="connect"),
        })
        out[f"{sshd}-tcpkeepalive"]["server"]["sysctl"] = _ka_sysctl(3, 1, 2)
    return out


def _idle(version, name, client_opts, server_opts, until, shell=None, traffic=None):
    """A healthy ssh session the server hangs up on (issue 15): no fault; sshd's ChannelTimeout /
    UnusedConnectionTimeout or the shell's TMOUT ends it.  The client asks for a terminal, as an
    interactive user's ssh does, so it says "Connection to HOST closed." when its session ends."""
    sc = _openssh(version, name, dict(client_opts), dict(server_opts), until, faults=[])
    sc["faults"] = []
    if shell is not None:
        sc["server"]["app"]["shell"] = shell
    elif client_opts.get("SessionType") != "none":
        sc["client"]["app"]["options"].setdefault("RequestTTY", "force")
    if traffic:
        sc["traffic"] = traffic
    return sc


def _idle_matrix() -> dict[str, dict]:
    """Who else hangs up: sshd's idle timers on 9.2 and 10.0, bash's TMOUT (issue 15)."""
    ct = {"9.2": "session:*=3", "10.0": "session:*=3"}
    out = {}
    for v, tag in OPENSSH.items():
        sshd = f"sshd{tag}"
        out.update({
            # ChannelTimeout alone: the session channel closes between 2 and 3 s after its last data
            f"{sshd}-channeltimeout-3": _idle(v, "sshd ChannelTimeout session:*=3, idle session", {},
                                              {"ChannelTimeout": ct[v]}, 8),
            # keepalive messages are not channel data: they do not reset it (measured both ways)
            f"{sshd}-channeltimeout-3-clientalive-1": _idle(
                v, "sshd ChannelTimeout session:*=3 with ClientAliveInterval 1", {},
                {"ChannelTimeout": ct[v], "ClientAliveInterval": 1, "ClientAliveCountMax": 10}, 8),
            f"{sshd}-channeltimeout-3-serveralive-1": _idle(
                v, "sshd ChannelTimeout session:*=3 with ssh ServerAliveInterval 1", {"ServerAliveInterval": 1},
                {"ChannelTimeout": ct[v]}, 8),
            # with UnusedConnectionTimeout as well: ssh exits when its session channel closes, first
            f"{sshd}-channeltimeout-3-unused-2": _idle(
                v, "sshd ChannelTimeout session:*=3 and UnusedConnectionTimeout 2", {},
                {"ChannelTimeout": ct[v], "UnusedConnectionTimeout": 2}, 8),
            # ssh -N: no channel ever; UnusedConnectionTimeout ends the connection (strict on whole seconds)
            f"{sshd}-unused-connection-3": _idle(v, "sshd UnusedConnectionTimeout 3, ssh -N",
                                                 {"SessionType": "none"}, {"UnusedConnectionTimeout": 3}, 8),
        })
    # 10.0's manual lists the type 'session', but sshd 10.0 still names the channels session:shell /
    # session:command: 'session=3' closes nothing (measured), and the model says so with a warning.
    out["sshd10-channeltimeout-session-name"] = _idle("10.0", "sshd 10.0 ChannelTimeout session=3 (the manual's name)",
                                                      {}, {"ChannelTimeout": "session=3"}, 6)
    # 9.7's 'global' type: all channels taken together
    out["sshd10-channeltimeout-global-3"] = _idle("10.0", "sshd ChannelTimeout global=3, idle session", {},
                                                  {"ChannelTimeout": "global=3"}, 8)
    bash = {"name": "bash", "TMOUT": 3}
    out.update({
        # bash's TMOUT at an idle prompt: TMOUT after the prompt
        "shell-tmout-idle": _idle("9.2", "bash TMOUT 3 at an idle prompt", {}, {}, 8, shell=bash),
        # keys without Enter do not reset it
        "shell-tmout-partial-typing": _idle("9.2", "bash TMOUT 3, a key typed (no Enter) at 1 s and 2 s", {}, {}, 8,
                                            shell=bash, traffic=[{"at_s": 1, "from": "client", "bytes": 1},
                                                                 {"at_s": 2, "from": "client", "bytes": 1}]),
        # a foreground program is not affected: 'sleep 4' typed at 1 s; TMOUT restarts at its end (5 s)
        "shell-tmout-foreground": _idle("9.2", "bash TMOUT 3, 'sleep 4' in the foreground from 1 s", {}, {}, 11,
                                        shell=dict(bash, command_s=4),
                                        traffic=[{"at_s": 1, "from": "client", "bytes": 8, "line": True}]),
        # keepalive traffic both ways does not reach the shell
        "shell-tmout-alive-traffic": _idle("9.2", "bash TMOUT 3 with ServerAliveInterval 1 and ClientAliveInterval 1",
                                           {"ServerAliveInterval": 1},
                                           {"ClientAliveInterval": 1, "ClientAliveCountMax": 10}, 8, shell=bash),
    })
    return out


def _ka_sysctl(idle, intvl, cnt):
    return {"net.ipv4.tcp_keepalive_time": idle, "net.ipv4.tcp_keepalive_intvl": intvl,
            "net.ipv4.tcp_keepalive_probes": cnt}


def _sshd_retries(version, interval, count, until):
    sc = _sshd(version, interval, count, until)
    sc["name"] += ", tcp_retries2 = 2"
    sc["server"]["sysctl"] = {"net.ipv4.tcp_retries2": 2}
    return sc


def _recommended(mech: str) -> dict:
    """What ``kalab recommend --detect-within 10s --survive-outage 3s --side client`` proposes as
    ``mech``, with data in flight when the cable is cut: the give-up must come within 10 s of the
    send (keepalive is suspended while data is unacknowledged; TCP_USER_TIMEOUT or tcp_retries2
    decides).  The settings are in the name, so a recording of older advice no longer matches."""
    from ..recommend import Goal, recommend, scenario_for
    goal = Goal(detect_within_s=10, survive_outage_s=3, side="client", rtt_ms=RTT["rtt_ms"])
    rec = next(r for r in recommend(goal) if r.mechanism == mech)
    sc = scenario_for(goal, "client", mech, rec.settings)
    settings = ", ".join(f"{k} {v}" for k, v in rec.settings.items())
    sc.update(name=f"recommend 10 s / 3 s: {mech} ({settings}); data in flight, cable cut",
              traffic=[{"at_s": 1, "from": "client", "bytes": 100}],
              faults=[{"kind": "link_down", "at_s": 0.5, "for_s": None}], until_s=13)
    return sc


MATRIX: dict[str, dict] = {
    # keepalive: idle / interval / count
    "keepalive-3-1-3": _plain_ka("keepalive 3/1/3, cable cut", _ka(3, 1, 3), 9),
    "keepalive-2-1-5": _plain_ka("keepalive 2/1/5, cable cut", _ka(2, 1, 5), 10),
    "keepalive-5-2-2": _plain_ka("keepalive 5/2/2, cable cut", _ka(5, 2, 2), 12),
    # keepalive + TCP_USER_TIMEOUT: below idle, between, beyond idle + cnt x intvl
    "keepalive-user-timeout-below-idle": _plain_ka("keepalive 3/1/3 + TCP_USER_TIMEOUT 2000 ms", _ka(3, 1, 3, 2000), 8),
    "keepalive-user-timeout-between": _plain_ka("keepalive 3/1/3 + TCP_USER_TIMEOUT 4500 ms", _ka(3, 1, 3, 4500), 9),
    "keepalive-user-timeout-beyond": _plain_ka("keepalive 3/1/3 + TCP_USER_TIMEOUT 8000 ms", _ka(3, 1, 3, 8000), 12),
    # retransmission
    "retransmission-retries2-3": _retx("tcp_retries2 = 3, data in flight, cable cut", 10,
                                       {"net.ipv4.tcp_retries2": 3}),
    "retransmission-retries2-5": _retx("tcp_retries2 = 5, data in flight, cable cut", 18,
                                       {"net.ipv4.tcp_retries2": 5}),
    "retransmission-retries2-8": _retx("tcp_retries2 = 8, data in flight, cable cut", 115,
                                       {"net.ipv4.tcp_retries2": 8}),
    "retransmission-user-timeout-5000": _retx("TCP_USER_TIMEOUT 5000 ms, data in flight, cable cut", 10,
                                              sock={"TCP_USER_TIMEOUT": 5000}),
    # connection set-up
    "syn-retries-2": {"name": "tcp_syn_retries = 2, unreachable server", "start": "connect",
                      "client": {"sysctl": {"net.ipv4.tcp_syn_retries": 2}}, "server": {}, "path": dict(RTT),
                      "faults": [{"kind": "link_down", "at_s": 0, "for_s": None}], "until_s": 10},
    "syn-retries-3": {"name": "tcp_syn_retries = 3, unreachable server", "start": "connect",
                      "client": {"sysctl": {"net.ipv4.tcp_syn_retries": 3}}, "server": {}, "path": dict(RTT),
                      "faults": [{"kind": "link_down", "at_s": 0, "for_s": None}], "until_s": 23},
    # OpenSSH: ssh and sshd, on 9.2 (Debian 12) and 10.0 (bookworm-backports)
    **_openssh_matrix(),
    # who else hangs up: sshd's idle timers and the shell's TMOUT on a healthy session (issue 15)
    **_idle_matrix(),
    # closing
    "time-wait": {"name": "client closes: TIME_WAIT", "client": {}, "server": {}, "path": dict(RTT),
                  "traffic": [{"at_s": 1, "from": "client", "close": True}], "until_s": 66},
    # NAT expiry with and without keepalive
    "nat-expiry-rst-without-keepalive": {
        "name": "NAT 4 s idle, RST on expiry, no keepalive; data at 6 s", "client": {}, "server": {},
        "path": dict(RTT, middleboxes=[{"kind": "nat", "idle_timeout_s": 4, "on_expiry": "rst"}]),
        "traffic": [{"at_s": 6, "from": "client"}], "until_s": 8},
    "nat-expiry-drop-keepalive-too-slow": {
        "name": "NAT 5 s idle, drop on expiry, keepalive 8/1/2", "client": {"socket": _ka(8, 1, 2)}, "server": {},
        "path": dict(RTT, middleboxes=[{"kind": "nat", "idle_timeout_s": 5, "on_expiry": "drop"}]), "until_s": 12},
    "nat-kept-alive-by-keepalive": {
        "name": "NAT 5 s idle, keepalive 2/1/3 keeps it; data at 9 s", "client": {"socket": _ka(2, 1, 3)},
        "server": {}, "path": dict(RTT, middleboxes=[{"kind": "nat", "idle_timeout_s": 5, "on_expiry": "rst"}]),
        "traffic": [{"at_s": 9, "from": "client", "bytes": 50, "reply_bytes": 50}], "until_s": 11},
    # Issue 14: a NAT that forgets after 21 s and a first keepalive probe due at 20 s.  A 20 s timer
    # sits on the timer wheel's level with 2.048 s granularity (HZ 250), so the probe fires anywhere
    # in [20.000, 22.048) s: before 21 s it refreshes the mapping (alive), after it the NAT answers
    # with RST (the client dies by middlebox.reset) -- the outcome flips from run to run.  With idle
    # 18 s the probe fires in [18.000, 20.048) s, always before the NAT forgets.  Recorded N times
    # each (REPEAT); replayed by tests/lab/test_recorded.py, not measured live.
    "nat-knife-edge-keepalive-20-1-3": {
        "name": "NAT 21 s idle, RST on expiry, keepalive 20/1/3, idle: the first probe races the NAT",
        "client": {"socket": _ka(20, 1, 3)}, "server": {},
        "path": dict(RTT, middleboxes=[{"kind": "nat", "idle_timeout_s": 21, "on_expiry": "rst"}]), "until_s": 26},
    "nat-kept-alive-keepalive-18-1-3": {
        "name": "NAT 21 s idle, RST on expiry, keepalive 18/1/3, idle: the first probe always comes first",
        "client": {"socket": _ka(18, 1, 3)}, "server": {},
        "path": dict(RTT, middleboxes=[{"kind": "nat", "idle_timeout_s": 21, "on_expiry": "rst"}]), "until_s": 26},
    # outages
    "outage-survived": {
        "name": "3 s outage with data in flight is survived", "client": {"socket": _ka(5, 1, 3)}, "server": {},
        "path": dict(RTT), "traffic": [{"at_s": 1.5, "from": "client"}],
        "faults": [{"kind": "link_down", "at_s": 1, "for_s": 3}], "until_s": 9},
    "outage-not-survived": {
        "name": "permanent outage, keepalive 2/1/2", "client": {"socket": _ka(2, 1, 2)}, "server": {},
        "path": dict(RTT), "faults": CUT, "until_s": 7},
    # peers that lose the connection
    "rebooted-peer-rst": {
        "name": "server reboots; the first keepalive probe gets RST", "client": {"socket": _ka(4, 1, 3)},
        "server": {}, "path": dict(RTT), "faults": [{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 1}],
        "until_s": 7},
    "killed-process": {
        "name": "server process killed", "client": {}, "server": {}, "path": dict(RTT),
        "faults": [{"kind": "process_kill", "side": "server", "at_s": 1}], "until_s": 4},
    # kalab recommend's own advice, on the real kernel
    "recommend-per-socket-data-in-flight": _recommended("tcp-keepalive"),
    "recommend-host-wide-data-in-flight": _recommended("tcp-keepalive-sysctl"),
}

#: Scenarios whose observation necessarily exceeds about a minute.
LONG = {"retransmission-retries2-8", "time-wait"}

#: Scenarios recorded as a series of runs (``lab record`` runs each this many times, at least;
#: ``--repeat`` asks for more): the timer wheel's lateness decides their outcome, or, for the
#: control, would if the margin were smaller (kalab.lab.repeat, issue 14).
REPEAT = {"nat-knife-edge-keepalive-20-1-3": 10, "nat-kept-alive-keepalive-18-1-3": 10}

#: The short series the live CI run measures through ``python -m kalab lab run --repeat``
#: (tests/lab/test_live.py): a scenario that ends about 6 s in, this many times.  Its death lies in
#: a 352 ms timer-wheel window, not at one instant that a loaded machine's scheduling can miss
#: (killed-process's FIN was once read 45 ms after the kill under load: outside its 20 ms tolerance).
LIVE_REPEAT = ("keepalive-3-1-3", 2)

#: What the live CI run measures (tests/lab/test_live.py): every scenario without OpenSSH but the
#: series (``REPEAT``), and of the ssh/sshd ones one short case per OpenSSH version (the others are
#: recorded in data/measured/ and replayed against the model by tests/lab/test_recorded.py).
LIVE_OPENSSH = {"ssh-serveralive-2-0", "ssh10-serveralive-2-0",
                # issue 15: about 4 s each (session set-up included): ChannelTimeout on 9.2, on 10.0 with
                # ServerAlive messages that do not reset it, and bash's TMOUT
                "sshd-channeltimeout-3", "sshd10-channeltimeout-3-serveralive-1", "shell-tmout-idle"}
LIVE = {name for name, sc in MATRIX.items() if name not in REPEAT
        and (name in LIVE_OPENSSH or (sc["client"].get("app") or {}).get("kind") != "ssh")}


def scenarios() -> dict[str, dict]:
    return copy.deepcopy(MATRIX)
