"""Timing corners: when the kernels' and programs' own lateness can flip an outcome.

A kernel timer fires anywhere in ``[nominal, nominal + one granularity of its timer-wheel level]``
(``kernel/time/timer.c``, :mod:`kalab.slack`); an ssh or sshd ``ppoll`` wait in ``[t, t + poll
slack]`` (``fs/select.c``).  Where in that window it fires depends on the phase of the host's
jiffies when it was armed, which no scenario knows.  The nominal run fires every timer at its
nominal time and writes how late each event may really be (``latest_s``) -- but that window says
nothing about whether the *outcome* depends on it.  Measured here (data/measured/,
``nat-knife-edge-keepalive-20-1-3.json``): a client keepalive probe due at 20 s, behind a NAT that
forgets the flow after 21 s, went out between 20.092 and 21.812 s in ten runs; the five that went
out after 21 s met the NAT's RST.

So :func:`with_corners` runs the same world again at its **corners**:

* **all latest** -- every kernel timer and every program wait of both hosts fires at the latest it
  may (:attr:`kalab.host.Host.corner`);
* **one host latest, the other on time**, both ways -- the corners where two hosts' timers race
  each other (ssh's ServerAlive against sshd's ClientAlive, the client's keepalive against the
  server's: which side's timer comes first is what flips).  All-latest shifts both and may keep
  their order; these two swap it.  A host whose timers added no slack in the nominal run has no
  corner of its own (its mixed corner *is* the nominal or the all-latest run) and is skipped.

Per side, ``worst`` is the outcome of the first corner (in that order) whose fate or mechanism
(``by``) differs from the nominal one, else the all-latest corner's; ``timing_sensitive`` says
whether it differs.  ``timing_detail`` names the race: the first point where the corner's timeline
departs from the nominal one (the same events, by side, layer and kind, in the same order up to
there), the timer-driven event that moved, its window, and the deadline it lost against.

Why corners: every decision in the model compares a timer's firing with a fixed instant (a fault,
a middlebox's expiry, the end of the run) or with another host's timer, and a timer's firing moves
monotonically with its lateness, so each comparison flips, if at all, between the earliest and
the latest firing -- the corners.  What corners do not find: an outcome that differs only when a
timer fires strictly inside its window and not at either end, e.g. a link that is down only from
20.5 s to 21.5 s against a probe in [20.000, 22.048] s.  Nor, in a run so long that it is
fast-forwarded (:mod:`kalab.fastforward`) and in which nobody dies, the mixed corners: two hosts'
keepalive timers late by different amounts drift apart at different periods (7331.072 s against
7200 s), never repeat exactly, and so cannot be fast-forwarded; such a run is checked at the
all-latest corner only.  A corner that cannot be answered is named in the result's warnings.
``docs/contract.md`` §Timing says all this.

At a corner nothing carries lateness (:attr:`kalab.host.Host.corner`): the corner is one
realisation of the timing, and its outcome is all that is read from it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import ScenarioError
from .result import Event, Race, Result, SideResult

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario
    from .simulate import World

SIDES = ("client", "server")

#: The corners, in the order ``worst`` is chosen from: whose timers fire at the latest they may.
CORNERS: tuple[frozenset[str], ...] = (frozenset(SIDES), frozenset({"client"}), frozenset({"server"}))

#: Plain words for the timeline kinds a race is told in (the rest: the kind with spaces).
WORDS = {"keepalive_probe": "keepalive probe", "keepalive_ack": "keepalive ACK", "retransmit": "retransmission",
         "tlp": "tail loss probe", "data_sent": "data segment", "syn_sent": "SYN", "syn_retransmit": "SYN retransmission",
         "alive_sent": "alive message", "alive_reply": "alive reply", "alive_answer": "alive answer",
         "timeout": "timeout", "died": "death", "middlebox_rst": "middlebox RST", "link_up": "link coming back",
         "link_down": "link going down", "time_wait_end": "end of TIME_WAIT", "fin_sent": "FIN", "rst_sent": "RST",
         "connect_timeout": "ConnectTimeout"}


def with_corners(sc: "Scenario", nominal: Result, world: "World") -> Result:
    """``nominal`` (the result of ``world``, just run) with each side's ``worst``, ``timing_sensitive``
    and ``timing_detail``, and the result's ``races``."""
    from .simulate import World

    slack = {side: world.hosts[side].slack_added_s > 0 for side in SIDES}
    corners: list[tuple[frozenset[str], Result]] = []
    unchecked: list[str] = []
    for corner in CORNERS:
        if not any(slack[s] for s in corner):
            continue                      # nothing of these hosts can be late: the nominal run again
        if corner != CORNERS[0] and not all(slack.values()):
            continue                      # one host has no slack: this corner is the all-latest one
        if corner != CORNERS[0] and nominal.repeats and not any(nominal.side(s).fate == "died" for s in SIDES):
            continue                      # a steady state nobody leaves: see "what corners do not find"
        try:
            corners.append((corner, World(sc, at_latest=corner).run()))
        except ScenarioError as e:
            # A long run whose corner fast-forward cannot answer (shifted timers need not repeat
            # exactly, e.g. sshd's 2.002 s waits against traffic every 0.7 s): said, never guessed.
            unchecked.append(f"{_corner_name(corner)}: {str(e).split(';')[0]}")
    sides: dict[str, SideResult] = {}
    races: list[Race] = []
    for side in SIDES:
        nom = nominal.side(side)
        chosen = next(((c, r) for c, r in corners if r.side(side).outcome() != nom.outcome()), None)
        if chosen is None:
            worst = corners[0][1].side(side) if corners else nom
            sides[side] = replace(nom, worst=_plain(worst), timing_sensitive=False, timing_detail=None)
            continue
        corner, res = chosen
        race = find_race(side, nominal, res)
        races.append(race)
        sides[side] = replace(nom, worst=_plain(res.side(side)), timing_sensitive=True,
                              timing_detail=detail(race, corner))
    warnings = nominal.warnings + tuple(f"timing corner not simulated ({u}): worst and timing_sensitive do not "
                                        f"cover it" for u in unchecked)
    return replace(nominal, client=sides["client"], server=sides["server"], races=tuple(races), warnings=warnings)


def _corner_name(corner: frozenset[str]) -> str:
    return "every timer late" if len(corner) == 2 else f"the {next(iter(corner))}'s timers late"


def at_corner(scenario, late: frozenset[str] = frozenset(SIDES)) -> Result:
    """The run at one timing corner: the timers of the sides in ``late`` fire at the latest they may,
    the others' on time; nothing carries lateness.  (``recommend`` reads the silences a NAT sees here.)"""
    from .scenario import load
    from .simulate import World
    return World(load(scenario), at_latest=frozenset(late)).run()


#: Timeline kinds that are a segment on the wire (what refreshes a NAT's mapping).
SEGMENT_KINDS = frozenset({"keepalive_probe", "keepalive_ack", "data_sent", "retransmit", "tlp", "syn_sent",
                           "syn_retransmit", "fin_sent", "rst_sent"})


def longest_silence_s(result: Result) -> float:
    """The longest time [s] between two segments on the wire (from t = 0 to the end of the run):
    what a NAT or firewall on the path sees as idle."""
    times = [0.0] + [e.t_s for e in result.events if e.kind in SEGMENT_KINDS and e.side != "path"] + [result.until_s]
    return max(b - a for a, b in zip(times, times[1:]))


def _plain(r: SideResult) -> SideResult:
    return replace(r, worst=None, timing_sensitive=False, timing_detail=None)


def _key(e: Event) -> tuple[str, str, str]:
    return e.side, e.layer, e.kind


def divergence(a: tuple[Event, ...], b: tuple[Event, ...]) -> int:
    """The first index where two timelines differ in what happens (side, layer, kind), not when."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if _key(a[i]) != _key(b[i])), n)


def words(events: tuple[Event, ...], i: int) -> str:
    """``events[i]`` in plain words: whose, what, and which one ("client keepalive probe 1")."""
    e = events[i]
    if e.kind == "mapping_expired":
        return f"{e.detail.split(' idle')[0]} forgets the flow"
    nth = sum(1 for x in events[:i + 1] if _key(x) == _key(e))
    who = "the path's" if e.side == "path" else e.side
    what = WORDS.get(e.kind, e.kind.replace("_", " "))
    return f"{who} {what}" + (f" {nth}" if e.kind not in ("died", "timeout", "connect_timeout") else "")


def find_race(side: str, nominal: Result, corner: Result) -> Race:
    """The race that the corner run lost: where its timeline first departs from the nominal one."""
    ne, ce = nominal.events, corner.events
    i = divergence(ne, ce)
    a = ne[i] if i < len(ne) else None             # what came next nominally
    b = ce[i] if i < len(ce) else None             # what came first at the corner instead
    if b is None:                                  # the corner's run ended first: the race was the run's end
        assert a is not None
        return Race(side, i, words(ne, i), a.t_s, _latest(a), "the end of the run", nominal.until_s, nominal.until_s)
    # Corner times are never earlier than nominal ones, so the event that moved is a, nominally first:
    # it raced b, whose own nominal occurrence (if it has one: the same event, later) gives its time.
    j = next((k for k in range(i, len(ne)) if _key(ne[k]) == _key(b)), None)
    b_t, b_late = (ne[j].t_s, _latest(ne[j])) if j is not None else (b.t_s, _latest(b))
    b_words = words(ne, j) if j is not None else words(ce, i)
    if a is None:                                  # (the nominal run ended first: b is all there is to tell)
        return Race(side, -1 if j is None else j, b_words, b_t, b_late, "the end of the run",
                    nominal.until_s, nominal.until_s)
    return Race(side, i, words(ne, i), a.t_s, _latest(a), b_words, b_t, b_late)


def _latest(e: Event) -> float:
    return e.t_s if e.latest_s is None else e.latest_s


def detail(race: Race, corner: frozenset[str]) -> str:
    """The race in one line: "client keepalive probe 1 fires in [20.000, 22.048] s; middlebox 0 (nat)
    forgets the flow at 21.000 s"."""
    dl = f" (<= {race.deadline_latest_s:.3f})" if race.deadline_latest_s - race.deadline_s > 1e-6 else ""
    text = (f"{race.timer} fires in [{race.t_s:.3f}, {race.latest_s:.3f}] s; "
            f"{race.deadline} at {race.deadline_s:.3f} s{dl}")
    if len(corner) == 1:
        (late,) = corner
        text += f" (when the {late}'s timers are late and the {'server' if late == 'client' else 'client'}'s on time)"
    return text
