"""What a run writes down: the timeline, each side's death, and what fast-forward needs to watch.

The hosts, the path and the programs write here; :meth:`Record.result` turns it into the immutable
:class:`~kalab.result.Result`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .result import Event, Repeat, Result, SideResult

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine


class Record:
    """The run's record: ``events`` (the timeline), ``deaths`` (the first per side), ``repeats`` (one
    per fast-forward jump) and ``late_log`` (while fast-forwarding: the ``(a, b)`` of every lateness
    comparison, which :mod:`kalab.fastforward` checks goes the same way in every cycle; else None)."""

    __slots__ = ("engine", "events", "deaths", "repeats", "late_log")

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.events: list[Event] = []
        self.deaths: dict[str, SideResult] = {}
        self.repeats: list[Repeat] = []
        self.late_log: list[tuple[float, float]] | None = None

    def log(self, side: str, layer: str, kind: str, detail: str = "") -> None:
        """An event on the timeline, now; it may really happen up to the current lateness later."""
        t = self.engine.now
        self.events.append(Event(t, side, layer, kind, detail, t + self.engine.late_s))

    def compared(self, a: float, b: float) -> None:
        """A decision took ``max(a, b)`` (or ``a >= b``) of lateness: noted while fast-forwarding."""
        if self.late_log is not None:
            self.late_log.append((a, b))

    def death(self, side: str, layer: str, by: str, sees: str | None, exit_code: int | None) -> None:
        """``side`` dies now, by ``by`` (a :data:`~kalab.result.BY` value); the first death counts."""
        if side in self.deaths:
            return
        t = self.engine.now
        self.deaths[side] = SideResult("died", t, t + self.engine.late_s, by, sees, exit_code)
        self.log(side, layer, "died", f"{by}: {sees}" if sees else by)

    def result(self, hosts: Mapping[str, Any], until_s: float, name: str, warnings: tuple[str, ...]) -> Result:
        """Each side's fate: died (its first death), none (its host never had the connection
        established: ``hosts[side].had_session``), half_open (the other side died or lost the
        connection's state: ``.lost_state``) or alive."""
        out = {}
        for side in ("client", "server"):
            other = "server" if side == "client" else "client"
            if side in self.deaths:
                out[side] = self.deaths[side]
            elif not hosts[side].had_session:
                out[side] = SideResult("none")
            elif other in self.deaths or hosts[other].lost_state:
                out[side] = SideResult("half_open")
            else:
                out[side] = SideResult("alive")
        return Result(client=out["client"], server=out["server"], events=tuple(self.events), until_s=until_s,
                      name=name, warnings=warnings, repeats=tuple(self.repeats))
