"""A small deterministic discrete-event queue (after SimPy's ``core.py``).

Events are ordered by ``(time, priority, sequence)``: same-instant events
come out in a fixed, documented order, so the same scenario always gives the
same timeline, byte for byte.  The priorities, lowest first:

* ``FAULT`` -- the world changes first: a link that goes down at t drops a
  segment sent at t; a host that crashes at t does not act at t;
* ``DELIVER`` -- segments arriving at a host;
* ``TIMER`` -- kernel timers (keepalive, retransmission, TIME_WAIT);
* ``APP`` -- application actions: scheduled sends, closes, ssh/sshd checks.

Within a priority, insertion order decides.  "The same instant" is the same to the run's time
resolution (:func:`resolution_s`: 1.9 ns for runs up to 12 days, growing with ``until_s`` to
0.24 us at 1e8 s, so that it stays above what binary floats can tell apart there): a sshd wait of
``29.4995 + 6`` s and a message sent at ``35.499`` s arriving ``0.0005`` s later meet at 35.4995 s,
and the arrival goes first, whichever of the two sums rounding happens to make a few 1e-15 s
smaller.  (The event keeps its exact time; time never runs backwards within an instant.)  Each
event also carries
``late_s``: how much later than nominal the real system may run it (the
timer-wheel slack accumulated along its causal chain, :mod:`kalab.slack`).
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable, Protocol

FAULT, DELIVER, TIMER, APP = 0, 1, 2, 3
#: The model's finest time resolution [s] (every timer comparison allows 1e-9 s).
RESOLUTION_S = 1e-9


def resolution_s(until_s: float) -> float:
    """The instant of a run to ``until_s``: the smallest power of two >= max(1 ns, 16 ulp(until_s)).

    A power of two, so that ``t / resolution`` is exact; 16 units in the last place, so that the
    rounding of a sum like ``0.3 + k * 0.7`` near ``until_s`` stays inside one instant.  Instants
    written in decimals (ms, us) sit at the centre of theirs, never near a boundary.
    """
    q = max(RESOLUTION_S, 16 * math.ulp(max(until_s, 1.0)))
    return 2.0 ** math.ceil(math.log2(q))


class Clock(Protocol):
    """The time of the event being processed, as a host's stack and programs read it (an
    :class:`Engine` is one)."""

    now: float        # scenario time [s]
    late_s: float     # how much later than nominal the real system may run this event [s]


class StepLimit(RuntimeError):
    """More than ``max_steps`` events: :class:`kalab.simulate.World` turns it into a ScenarioError."""


class Handle:
    """A scheduled event; ``cancel()`` makes it a no-op (lazy deletion)."""

    __slots__ = ("t", "prio", "fn", "args", "late_s", "owner", "cancelled")

    def __init__(self, t: float, prio: int, fn: Callable, args: tuple, late_s: float, owner: Any):
        self.t, self.prio, self.fn, self.args = t, prio, fn, args
        self.late_s, self.owner, self.cancelled = late_s, owner, False

    def cancel(self) -> None:
        self.cancelled = True


class Engine:
    def __init__(self, until_s: float = 1e8) -> None:
        """``until_s``: how far the run may go; it sets the time resolution (:func:`resolution_s`)."""
        self.scale = 1.0 / resolution_s(until_s)
        # (self.instant(time), priority, sequence, Handle or (fn, args, late_s, time) for a fixed event)
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self.now = 0.0
        self.late_s = 0.0          # lateness of the event being processed
        self.steps = 0

    def instant(self, t: float) -> int:
        """The heap key of time ``t``: whole resolution units (monotone in ``t``)."""
        return math.floor(t * self.scale + 0.5)

    def at(self, t: float, prio: int, fn: Callable, *args, late_s: float | None = None, owner: Any = None,
           seq: int | None = None) -> Handle:
        """Schedule ``fn(*args)`` at absolute time ``t`` [s] (not before now).

        ``seq``: a fixed place among same-instant, same-priority events instead of "after every
        event scheduled so far" -- a scenario's traffic, scheduled one send at a time, keeps the
        place it would have had had every send been scheduled at the start (negative, by entry).
        """
        now = self.now
        if not now - 1e-12 <= t < math.inf:  # also rejects NaN and infinity
            raise ValueError(f"event time must be finite and not in the past: {t!r} (now {now!r})")
        if t < now:
            t = now
        h = Handle(t, prio, fn, args, self.late_s if late_s is None else late_s, owner)
        if seq is None:
            self._seq += 1
            seq = self._seq
        heapq.heappush(self._heap, (math.floor(t * self.scale + 0.5), prio, seq, h))
        return h

    def at_fixed(self, t: float, prio: int, fn: Callable, *args) -> None:
        """Like :meth:`at` for an event nobody will cancel or shift (a segment in flight):
        no Handle is made, which matters in runs of tens of thousands of segments."""
        now = self.now
        if not now - 1e-12 <= t < math.inf:
            raise ValueError(f"event time must be finite and not in the past: {t!r} (now {now!r})")
        self._seq += 1
        t = t if t >= now else now
        heapq.heappush(self._heap, (math.floor(t * self.scale + 0.5), prio, self._seq, (fn, args, self.late_s, t)))

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
        until = self.instant(until_s)
        while heap and steps < max_steps:
            if heap[0][0] > until:
                break
            h = pop(heap)[3]
            if h.__class__ is Handle:
                if h.cancelled:
                    continue
                t, self.late_s = h.t, h.late_s
                fn, args = h.fn, h.args
            else:
                fn, args, self.late_s, t = h
            if t > self.now:       # (an event of the same instant may be a few 1e-15 s "earlier")
                self.now = t
            steps += 1
            fn(*args)
        self.steps = steps
        if self.steps >= max_steps:
            raise StepLimit(f"simulation exceeded {max_steps} events; shorten until_s")
