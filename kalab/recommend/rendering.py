"""What ``kalab recommend`` prints: ready-to-paste config lines per recommendation, and the report
in plain words (the CLI and notebook 10 print it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..units import format_duration
from .candidates import DEFAULT_RETRIES2, retransmission_give_up_s
from .goal import Goal, intervals_per_probe, unmet

if TYPE_CHECKING:
    from .search import Recommendation


def lines(side: str, mech: str, s: dict, goal: Goal) -> dict:
    """Config lines by file, each with a one-line reason."""
    if mech == "tcp-keepalive":
        i, v, c, ut_ms = s["idle"], s["intvl"], s["cnt"], s["user_timeout_ms"]
        return {"setsockopt": [
            f"# per socket, on the {side}, after connect()/accept(); Python (C: the same names with setsockopt(2))",
            "sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)    # switch probing on",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, {i})    # first probe after {i} s idle",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, {v})    # every {v} s after",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, {c})    # {c} unanswered: dead "
            f"({i} + {c} x {v} = {i + c * v} s after the last packet)",
            f"sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, {ut_ms})    # [ms] unacknowledged data "
            f"gives up {ut_ms / 1000:g} s after its first retransmission (default: ~15 min)"]}
    if mech == "tcp-keepalive-sysctl":
        i, v, c, r2 = s["idle"], s["intvl"], s["cnt"], s["tcp_retries2"]
        give_up = retransmission_give_up_s(goal, retries2=r2)[0]
        if r2 == DEFAULT_RETRIES2:
            r2_line = (f"# net.ipv4.tcp_retries2 = {r2}    (the default) unacknowledged data gives up within "
                       f"{format_duration(give_up)}")
        else:
            # RFC 1122 4.2.3.5 (SHLD-11): R2 should correspond to at least 100 s.
            rfc = " -- below RFC 1122's 100 s, for every connection of the host" if give_up < 100 else \
                " (for every connection of the host)"
            r2_line = (f"net.ipv4.tcp_retries2 = {r2}    # unacknowledged data gives up within "
                       f"{format_duration(give_up)} (default 15: ~15 min){rfc}")
        return {"sysctl.conf": [
            f"# /etc/sysctl.d/90-kalab-keepalive.conf on the {side}; apply with `sysctl --system` (host-wide; "
            "probes only sockets with SO_KEEPALIVE, which ssh and sshd set with TCPKeepAlive yes, the default)",
            f"net.ipv4.tcp_keepalive_time = {i}    # first probe after {i} s without traffic",
            f"net.ipv4.tcp_keepalive_intvl = {v}    # then one probe every {v} s",
            f"net.ipv4.tcp_keepalive_probes = {c}    # give up after {c} unanswered: "
            f"{i} + {c} x {v} = {i + c * v} s after the last packet",
            r2_line]}
    if mech == "ssh-serveralive":
        i, n = s["interval"], s["count"]
        return {"ssh_config": ["# ~/.ssh/config (or /etc/ssh/ssh_config); first value wins: put it near the top",
                               "Host *",
                               f"    ServerAliveInterval {i}    # an encrypted keepalive after {i} s without data "
                               "from the server",
                               f"    ServerAliveCountMax {n}    # exit after {n + 1} silent intervals: "
                               f"{(n + 1) * i} s after the server's last packet"]}
    i, n = s["interval"], s["count"]
    m = intervals_per_probe(goal)
    note = f" (OpenSSH {goal.sshd_version} checks every other interval: x2)" if m == 2 else ""
    return {"sshd_config": ["# /etc/ssh/sshd_config, before any Match block; then reload sshd",
                            f"ClientAliveInterval {i}    # a keepalive to the client after {i} s of silence{note}",
                            f"ClientAliveCountMax {n}    # disconnect after {n} unanswered: "
                            f"{m * (n + 1) * i} s after the client's last packet"]}


def report(goal: Goal, recs: list[Recommendation], trades: dict) -> str:
    """The recommendations in plain words with their config lines (the CLI and notebook 10 print this)."""
    out = [f"Goal: notice a dead peer within {format_duration(goal.detect_within_s)} on the "
           f"{' and '.join(goal.sides())}"
           + (f", survive {format_duration(goal.survive_outage_s)} outages" if goal.survive_outage_s else "")
           + (f", through a NAT that forgets idle sessions after {format_duration(goal.nat_idle_s)}"
              if goal.nat_idle_s else "")
           + (f", at most {goal.max_probes_per_hour:g} probes per idle hour" if goal.max_probes_per_hour else "")
           + (f", survive {format_duration(goal.survive_idle_s)} idle" if goal.survive_idle_s else "")
           + f" (RTT {goal.rtt_ms:g} ms)."]
    for r in recs:
        out += ["", f"== {r.side}: {r.mechanism} -- detects within {format_duration(r.detect_s)}, "
                    f"{r.probes_per_hour:g} probes per idle hour; checked by simulate():"]
        out += [f"   [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in r.checks]
        for name, ls in r.lines.items():
            out.append(f"-- {name}")
            out += ls
    from .idle import idle_warnings
    for w in idle_warnings(goal):
        out += ["", "WARNING (an idle hangup, not a network timer): " + w]
    missing = unmet(goal, recs)
    if missing:
        out += ["", f"No setting meets every constraint on the {' and '.join(missing)}."]
        if 0 < goal.survive_outage_s and goal.survive_outage_s >= goal.detect_within_s - 1:
            out += ["  The goals contradict each other: until the path is back, a dead peer and a broken path look",
                    "  the same to every probe (a crashed peer too; a rebooted one answers with RST and is noticed",
                    f"  at the first probe). Noticing within {format_duration(goal.detect_within_s)} means giving up "
                    f"on outages longer than that."]
        out.append("Closest trade-offs (each simulated):")
        o, d = trades.get("survive_outage_s"), trades.get("detect_within_s")
        if o is not None:
            out.append(f"  keep detection within {format_duration(goal.detect_within_s)}: survive outages up to "
                       f"{format_duration(o)}")
        else:
            why = (f" with at most {goal.max_probes_per_hour:g} probes per idle hour"
                   if goal.max_probes_per_hour is not None else "")
            out.append(f"  no setting found that detects within {format_duration(goal.detect_within_s)}{why}, "
                       "even with no outage to survive")
        if goal.survive_outage_s:
            out.append(f"  keep surviving {format_duration(goal.survive_outage_s)}: the fastest detection is "
                       + (format_duration(d) if d is not None else "not found"))
        if goal.max_probes_per_hour is not None:
            p = trades.get("max_probes_per_hour")
            out.append(f"  keep detection and survival: allow {p:g} probes per idle hour" if p is not None else
                       "  even without a probe limit the other constraints cannot be met")
    return "\n".join(out)
