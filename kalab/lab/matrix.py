"""The measurement matrix: scenarios the lab runs live in CI and records to ``data/measured/``.

Settings are in seconds so each run takes at most about a minute; the two that
cannot be shortened (``tcp_retries2 = 8``: a 102.2 s budget; TIME_WAIT: a fixed
60 s) are marked ``long``.  All use a 0.1 ms path RTT (veth) and Linux defaults
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


def _ssh(name, interval, count, until):
    return {"name": name,
            "client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": interval,
                                                           "ServerAliveCountMax": count, "TCPKeepAlive": "no"}}},
            "server": {"app": {"kind": "sshd", "version": "9.2", "options": {"TCPKeepAlive": "no"}}},
            "path": dict(RTT), "faults": [{"kind": "link_down", "at_s": 0.5, "for_s": None}], "until_s": until}


def _sshd(name, interval, count, until):
    return {"name": name,
            "client": {"app": {"kind": "ssh", "options": {"TCPKeepAlive": "no"}}},
            "server": {"app": {"kind": "sshd", "version": "9.2",
                               "options": {"ClientAliveInterval": interval, "ClientAliveCountMax": count,
                                           "TCPKeepAlive": "no"}}},
            "path": dict(RTT), "faults": [{"kind": "link_down", "at_s": 0.5, "for_s": None}], "until_s": until}


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
    # OpenSSH client
    "ssh-serveralive-2-3": _ssh("ssh ServerAliveInterval 2, CountMax 3", 2, 3, 11),
    "ssh-serveralive-2-0": _ssh("ssh ServerAliveInterval 2, CountMax 0", 2, 0, 5),
    "ssh-serveralive-3-1": _ssh("ssh ServerAliveInterval 3, CountMax 1", 3, 1, 9),
    "ssh-serveralive-1-5": _ssh("ssh ServerAliveInterval 1, CountMax 5", 1, 5, 9),
    # OpenSSH server (Debian's 9.2: the every-2xI probing)
    "sshd-clientalive-2-2": _sshd("sshd 9.2 ClientAliveInterval 2, CountMax 2", 2, 2, 15),
    "sshd-clientalive-3-1": _sshd("sshd 9.2 ClientAliveInterval 3, CountMax 1", 3, 1, 15),
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


def scenarios() -> dict[str, dict]:
    return copy.deepcopy(MATRIX)
