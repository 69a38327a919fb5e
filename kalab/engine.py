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

    __slots__ = ("t", "prio", "fn", "args", "late_s", "owner", "cancelled")

    def __init__(self, t: float, prio: int, fn: Callable, args: tuple, late_s: float, owner: Any):
        self.t, self.prio, self.fn, self.args = t, prio, fn, args
        self.late_s, self.owner, self.cancelled = late_s, owner, False

    def cancel(self) -> None:
        self.cancelled = True


class Engine:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Handle]] = []   # (time, priority, sequence, handle)
        self._seq = 0
        self.now = 0.0
        self.late_s = 0.0          # lateness of the event being processed
        self.steps = 0

    def at(self, t: float, prio: int, fn: Callable, *args, late_s: float | None = None, owner: Any = None) -> Handle:
        """Schedule ``fn(*args)`` at absolute time ``t`` [s] (not before now)."""
        now = self.now
        if not now - 1e-12 <= t < math.inf:  # also rejects NaN and infinity
            raise ValueError(f"event time must be finite and not in the past: {t!r} (now {now!r})")
        if t < now:
            t = now
        h = Handle(t, prio, fn, args, self.late_s if late_s is None else late_s, owner)
        self._seq += 1
        heapq.heappush(self._heap, (t, prio, self._seq, h))
        return h

    def at_fixed(self, t: float, prio: int, fn: Callable, *args) -> None:
        """Like :meth:`at` for an event nobody will cancel or shift (a segment in flight):
        no Handle is made, which matters in runs of tens of thousands of segments."""
        now = self.now
        if not now - 1e-12 <= t < math.inf:
            raise ValueError(f"event time must be finite and not in the past: {t!r} (now {now!r})")
        self._seq += 1
        heapq.heappush(self._heap, (t if t >= now else now, prio, self._seq, (fn, args, self.late_s)))

    def postpone(self, owner: Any, delay_s: float) -> int:
        """Shift every pending event of ``owner`` by ``delay_s`` (a sleeping host's clocks stop)."""
        moved = [e[3] for e in self._heap if e[3].__class__ is Handle and e[3].owner is owner and not e[3].cancelled]
        for h in moved:
            h.cancel()
            self.at(h.t + delay_s, h.prio, h.fn, *h.args, late_s=h.late_s, owner=owner)
        return len(moved)

    def cancel_owner(self, owner: Any) -> None:
        for e in self._heap:
            if e[3].__class__ is Handle and e[3].owner is owner:
                e[3].cancelled = True

    def run(self, until_s: float, max_steps: int = 5_000_000) -> None:
        """Process events with ``t <= until_s``; bounded by ``max_steps``."""
        heap = self._heap
        pop = heapq.heappop
        steps = self.steps
        while heap and steps < max_steps:
            if heap[0][0] > until_s:
                break
            t, _, _, h = pop(heap)
            if h.__class__ is Handle:
                if h.cancelled:
                    continue
                self.now, self.late_s = t, h.late_s
                fn, args = h.fn, h.args
            else:
                fn, args, self.late_s = h
                self.now = t
            steps += 1
            fn(*args)
        self.steps = steps
        if self.steps >= max_steps:
            raise RuntimeError(f"simulation exceeded {max_steps} events; shorten until_s")
