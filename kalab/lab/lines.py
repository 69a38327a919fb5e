"""What the processes a run started say: their output, line by line, each line stamped when read.

The socket program reports events as JSON lines, ssh and sshd log to stderr, tcpdump says when it
listens.  The runner reads all their pipes at once, none blocking (``O_NONBLOCK`` and one
epoll(7) set, through :mod:`selectors`), and stamps each line with CLOCK_MONOTONIC as it is read:
the clock the socket program stamps its own reports with.
"""

from __future__ import annotations

import os
import selectors
import time

from .netns import LabError, LabStopped


class Lines:
    """Non-blocking line reader over several pipes, each line stamped with CLOCK_MONOTONIC.

    ``stop``: a :class:`threading.Event`; once set, the next poll raises :class:`LabStopped`, so a
    run in a worker thread ends (and tears down) within one poll of being asked to."""

    def __init__(self, stop=None) -> None:
        self.sel = selectors.DefaultSelector()
        self.buf: dict = {}
        self.lines: list[tuple[float, str, str]] = []   # (t_mono, who, line)
        self.stop = stop

    def add(self, stream, who: str) -> None:
        # A stream closed before its end was read (a rebooted host's programs are ended) stays
        # registered under its number, which the next pipe may reuse: the lowest free descriptor
        # (open(2)).  Its epoll entry went with the close (epoll(7)); drop what the selector keeps.
        for key in [k for k in self.sel.get_map().values() if k.fileobj.closed]:
            self.sel.unregister(key.fileobj)
            del self.buf[key.fileobj]
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
