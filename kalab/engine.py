"""A small deterministic discrete-event queue (after SimPy's ``core.py``).

Events are ordered by ``(time, priority, sequence)``: same-instant events
come out in a fixed, documented order, so the same scenario always gives the
same timeline, byte for byte.  The priorities, lowest first:

* ``FAULT`` -- the world changes first: a link that goes down at t drops a
  segment sent at t; a host that crashes at t does not act at t;
* ``DELIVER`` -- segments arriving at a host;
* ``TIMER`` -- kernel timers (keepalive, retransmission, TIME_WAIT);
* ``APP`` -- application actions: scheduled sends, closes, ssh/sshd checks.

Within a priority, insertion order decides.  Each event also carries
``late_s``: how much later than nominal the real system may run it (the
timer-wheel slack accumulated along its causal chain, :mod:`kalab.slack`).
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable

FAULT, DELIVER, TIMER, APP = 0, 1, 2, 3


class Handle:
    """A scheduled event; ``cancel()`` makes it a no-op (lazy deletion)."""

    __slots__ = ("t", "prio", "seq", "fn", "args", "late_s", "owner", "cancelled")

    def __init__(self, t: float, prio: int, seq: int, fn: Callable, args: tuple, late_s: float, owner: Any):
        self.t, self.prio, self.seq, self.fn, self.args = t, prio, seq, fn, args
        self.late_s, self.owner, self.cancelled = late_s, owner, False

    def __lt__(self, other: "Handle") -> bool:
        return (self.t, self.prio, self.seq) < (other.t, other.prio, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class Engine:
    def __init__(self) -> None:
        self._heap: list[Handle] = []
        self._seq = 0
        self.now = 0.0
        self.late_s = 0.0          # lateness of the event being processed
        self.steps = 0

    def at(self, t: float, prio: int, fn: Callable, *args, late_s: float | None = None, owner: Any = None) -> Handle:
        """Schedule ``fn(*args)`` at absolute time ``t`` [s] (not before now)."""
        if not math.isfinite(t):
            raise ValueError(f"event time must be finite, got {t!r}")
        if t < self.now - 1e-12:
            raise ValueError(f"cannot schedule in the past: {t!r} < now {self.now!r}")
        h = Handle(max(t, self.now), prio, self._seq, fn, args,
                   self.late_s if late_s is None else late_s, owner)
        self._seq += 1
        heapq.heappush(self._heap, h)
        return h

    def postpone(self, owner: Any, delay_s: float) -> int:
        """Shift every pending event of ``owner`` by ``delay_s`` (a sleeping host's clocks stop)."""
        moved = [h for h in self._heap if h.owner is owner and not h.cancelled]
        for h in moved:
            h.cancel()
            self.at(h.t + delay_s, h.prio, h.fn, *h.args, late_s=h.late_s, owner=owner)
        return len(moved)

    def cancel_owner(self, owner: Any) -> None:
        for h in self._heap:
            if h.owner is owner:
                h.cancel()

    def run(self, until_s: float, max_steps: int = 5_000_000) -> None:
        """Process events with ``t <= until_s``; bounded by ``max_steps``."""
        heap = self._heap
        while heap and self.steps < max_steps:
            h = heap[0]
            if h.t > until_s:
                break
            heapq.heappop(heap)
            if h.cancelled:
                continue
            self.now, self.late_s = h.t, h.late_s
            self.steps += 1
            h.fn(*h.args)
        if self.steps >= max_steps:
            raise RuntimeError(f"simulation exceeded {max_steps} events; shorten until_s")
