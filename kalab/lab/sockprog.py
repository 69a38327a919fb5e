"""The lab's socket program: one end of a plain TCP connection, inside a namespace.

Run as ``python -m kalab.lab.sockprog CONFIG_JSON``.  It applies the socket
options, connects (client) or accepts (server), then reads one JSON line on
stdin -- the schedule, in absolute ``CLOCK_MONOTONIC`` seconds -- and follows
it, reporting everything it sees as JSON lines on stdout, each stamped with
``time.monotonic()``:

``{"ev": "established"}``, ``{"ev": "sent", "bytes": n}``, ``{"ev": "eof"}``,
``{"ev": "error", "errno": "ETIMEDOUT"}``, ``{"ev": "closed"}``,
``{"ev": "time_wait", "state": "start"|"end"}``.

It is what a "plain" program is in the model: it holds the socket, sends what
it is told, answers requests with ``reply_bytes``, closes on EOF, and reports
the errno.  Standard library only, so it runs anywhere Python does.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import sys
import time

OPTS = {
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", 18)),
    "TCP_SYNCNT": (socket.IPPROTO_TCP, getattr(socket, "TCP_SYNCNT", 7)),
    "TCP_LINGER2": (socket.IPPROTO_TCP, getattr(socket, "TCP_LINGER2", 8)),
}


def emit(ev: str, **kw) -> None:
    kw.update(ev=ev, t=time.monotonic())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def apply_options(sock: socket.socket, options: dict) -> None:
    for name, value in options.items():
        level, opt = OPTS[name]
        sock.setsockopt(level, opt, int(value))


def errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, str(e.errno))


def time_wait_watch(local: tuple[str, int], remote: tuple[str, int], deadline: float) -> None:
    """Poll /proc/net/tcp (this namespace's) for our 4-tuple in TIME_WAIT (state 06)."""
    def key(addr):
        ip, port = addr
        return "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), "little"), port)
    want = (key(local), key(remote))
    seen = False
    while time.monotonic() < deadline:
        present = False
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if (parts[1], parts[2]) == want and parts[3] == "06":
                    present = True
                    break
        if present and not seen:
            emit("time_wait", state="start")
            seen = True
        elif seen and not present:
            emit("time_wait", state="end")
            return
        time.sleep(0.002)


def main() -> int:
    cfg = json.loads(sys.argv[1])
    role = cfg["role"]
    options = cfg.get("socket", {})
    if role == "server":
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((cfg["addr"], cfg["port"]))
        lsock.listen(1)
        emit("listening")
        r, _, _ = select.select([lsock], [], [], cfg.get("accept_timeout_s", 30))
        if not r:
            emit("error", errno="accept-timeout")
            return 1
        sock, _ = lsock.accept()
        lsock.close()
        apply_options(sock, options)
        emit("established")
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        apply_options(sock, options)
        emit("connecting")
        try:
            sock.connect((cfg["addr"], cfg["port"]))
        except OSError as e:
            emit("error", errno=errname(e), phase="connect")
            return 0
        emit("established")
    local, remote = sock.getsockname(), sock.getpeername()

    line = sys.stdin.readline()
    plan = json.loads(line) if line.strip() else {}
    sends = sorted(plan.get("sends", []), key=lambda s: s["at"])   # [{"at", "bytes", "close"}]
    replies = list(plan.get("replies", []))                        # [[cumulative_end, reply_bytes]]
    deadline = plan.get("deadline", time.monotonic() + 600)
    received = 0
    closed = False
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    while time.monotonic() < deadline:
        now = time.monotonic()
        while sends and sends[0]["at"] <= now:
            s = sends.pop(0)
            if s.get("close"):
                sock.close()
                emit("closed")
                closed = True
                if plan.get("watch_time_wait"):
                    time_wait_watch(local, remote, deadline)
                return 0
            try:
                sock.send(b"k" * s["bytes"])
                emit("sent", bytes=s["bytes"])
            except OSError as e:
                emit("error", errno=errname(e), phase="send")
                return 0
        wait = (sends[0]["at"] - now) if sends else (deadline - now)
        events = poller.poll(max(0, min(wait, deadline - now)) * 1000)
        if not events:
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except OSError as e:
            emit("error", errno=errname(e), phase="recv")
            return 0
        if not data:
            emit("eof")
            sock.close()
            emit("closed")
            return 0
        received += len(data)
        while replies and replies[0][0] <= received:
            _, n = replies.pop(0)
            if n:
                sock.send(b"r" * n)
                emit("sent", bytes=n)
    if not closed:
        emit("deadline")
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
