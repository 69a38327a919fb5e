"""Plain words for a result: one verdict line, a per-side summary, a text timeline.

Shared by the CLI and the notebooks' widgets so the wording lives in one place.
"""

from __future__ import annotations

from typing import Mapping

from .result import BY, Result, SideResult
from .scenario import Scenario, load
from .simulate import FAULT_EVENTS
from .units import format_duration


def describe_host(sc: Scenario, side: str) -> str:
    h = sc.host(side)
    app = h.app.kind if h.app.kind not in ("ssh", "sshd") else f"{h.app.kind} {h.app.version[0]}.{h.app.version[1]}"
    osname = f"Linux {h.kernel[0]}.{h.kernel[1]}" if h.os == "linux" else h.os
    return f"{app} on {osname}"


def side_line(sc: Scenario, side: str, r: SideResult) -> str:
    who = f"{side} ({describe_host(sc, side)})"
    if r.fate == "alive":
        return f"{who}: still alive at {format_duration(sc.until_s)}"
    if r.fate == "none":
        return f"{who}: never had the session (the connection was not set up)"
    if r.fate == "half_open":
        return (f"{who}: half-open -- still believes in a session the other side has lost "
                f"(at {format_duration(sc.until_s)})")
    window = ""
    if r.latest_s is not None and r.latest_s - r.at_s > 1e-6:
        window = f" (the real kernel may act as late as {format_duration(r.latest_s)})"
    sees = f'; sees "{r.sees}"' if r.sees else ""
    code = f", exit {r.exit_code}" if r.exit_code is not None else ""
    return f"{who}: dies at {format_duration(r.at_s)}{window} by {r.by} -- {BY.get(r.by, '')}{sees}{code}"


def outcome_words(r: SideResult, until_s: float) -> str:
    """A side's outcome in a few words: "dies at 22.048 s by middlebox.reset", "is still alive"."""
    if r.fate == "died":
        return f"dies at {format_duration(r.at_s)} by {r.by}"
    if r.fate == "none":
        return "never sees the connection"
    if r.fate == "half_open":
        return f"holds a half-open session until the end ({format_duration(until_s)})"
    return f"is still alive at {format_duration(until_s)}"


def timing_clause(result: Result, side: str) -> str:
    """When timing decides ``side``'s outcome (:mod:`kalab.timing`), what it hangs on, in plain words:
    "but only if the client keepalive probe 1 comes before 21 s (middlebox 0 (nat) forgets the flow);
    it may come as late as 22.048 s, and then the client dies at 22.049 s by middlebox.reset".
    Empty when timing does not decide it."""
    r = result.side(side)
    if not r.timing_sensitive or r.worst is None:
        return ""
    race = next((x for x in result.races if x.side == side), None)
    then = f"and then the {side} {outcome_words(r.worst, result.until_s)}"
    if race is None:   # pragma: no cover - a sensitive side always has its race
        return f"but timing decides: {then}"
    if race.deadline == "the end of the run":
        return (f"but only if the {race.timer} comes before the run ends at {format_duration(race.deadline_s)}; "
                f"it may come as late as {format_duration(race.latest_s)}, {then}")
    return (f"but only if the {race.timer} comes before {format_duration(race.deadline_s)} ({race.deadline}); "
            f"it may come as late as {format_duration(race.latest_s)}, {then}")


def first_fault(result: Result, scenario: Scenario | Mapping | None = None) -> tuple[float, str] | None:
    """(time [s], kind) of the earliest fault, or None: from ``scenario``'s faults when it is given, else
    from the events the faults logged in ``result``.  (The two agree, except that a fault with nothing
    to act on -- ``process_kill`` of a program already gone -- logs no event.)"""
    if scenario is None:
        return next(((e.t_s, FAULT_EVENTS[e.layer, e.kind]) for e in result.events
                     if (e.layer, e.kind) in FAULT_EVENTS), None)
    faults = (scenario if isinstance(scenario, Scenario) else load(scenario)).faults
    if not faults:
        return None
    f = min(faults, key=lambda f: f.at_s)
    return f.at_s, f.kind


def verdict(result: Result, scenario: Scenario | Mapping | None = None) -> str:
    """One line in plain words: who dies first, when, why; what the other side believes.

    The result alone is enough: a death after a fault is also told as the time since the earliest
    fault, found on the result's timeline (:func:`first_fault`); ``scenario`` (a ``Scenario`` or the
    dict simulated) takes it from the scenario's list of faults instead.
    """
    r = result
    parts = []
    told: list = []     # the races already told (the other side's clause then says "if that race is lost")
    fault = first_fault(r, scenario)
    for side in sorted(("client", "server"), key=lambda s: (r.side(s).at_s is None, r.side(s).at_s or 0)):
        res = r.side(side)
        if res.fate == "died":
            when = format_duration(res.at_s)
            if fault is not None and res.at_s >= fault[0] and res.by not in ("host.crash", "host.reboot"):
                when += f" ({format_duration(res.at_s - fault[0])} after the {fault[1].replace('_', ' ')})"
            what = f": {res.sees.rstrip('.')}" if res.sees else ""   # ssh's message ends in '.'; '; ' follows
            parts.append(f"the {side} dies at {when} by {res.by}{what}")
        else:
            parts.append(f"the {side} {outcome_words(res, r.until_s)}")
        clause = timing_clause(r, side)
        if clause:
            race = next(x for x in r.races if x.side == side)
            if any(x.side != side and (x.timer, x.deadline) == (race.timer, race.deadline) for x in told):
                clause = f"if that race is lost, it then {outcome_words(res.worst, r.until_s)}"
            told.append(race)
            parts[-1] += " -- " + clause
    return "; ".join(parts)


def timeline(r: Result, limit: int | None = 200) -> list[str]:
    lines = []
    events = r.events if limit is None else r.events[:limit]
    racing = {x.event: x for x in r.races}
    for i, e in enumerate(events):
        late = f"  (<= {e.latest_s:.3f})" if e.latest_s is not None and e.latest_s - e.t_s > 1e-6 else ""
        race = f"  << races {racing[i].deadline} at {racing[i].deadline_s:.3f}" if i in racing else ""
        lines.append(f"{e.t_s:12.3f} s  {e.side:<6} {e.layer:<7} {e.kind:<22} {e.detail}{late}{race}")
    if limit is not None and len(r.events) > limit:
        lines.append(f"... {len(r.events) - limit} more events (use --all)")
    return lines


def report(sc: Scenario, r: Result, limit: int | None = 200) -> str:
    out = []
    if sc.name:
        out.append(f"Scenario: {sc.name}")
    out.append("Verdict: " + verdict(r, sc))
    out += [side_line(sc, s, r.side(s)) for s in ("client", "server")]
    out += [f"timing decides the {s}: {r.side(s).timing_detail}" for s in ("client", "server")
            if r.side(s).timing_sensitive]
    out += [f"warning: {w}" for w in r.warnings]
    out.append("")
    out.append("Timeline:")
    out += timeline(r, limit)
    return "\n".join(out)
