"""The search: the best simulated candidate per side and mechanism, and the trade-offs when none is.

Detecting faster than an outage you want to survive is impossible: until the path is back, a dead
peer and a broken path look the same to every probe (so does a crashed peer; a *rebooted* peer is
different -- it answers the first probe with RST).  Then the closest trade-offs are computed: the
longest outage survivable with the detection asked for, and the fastest detection that survives
the outage asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .candidates import MAX_VERIFIED, candidates_for
from .goal import MAX_GOAL_S, MECHANISMS, Goal, unmet
from .rendering import lines
from .verification import verify


@dataclass(frozen=True)
class Recommendation:
    side: str
    mechanism: str
    settings: dict
    detect_s: float               # worst latest detection over the simulated failures
    probes_per_hour: float        # probes (or alive messages) sent by this side in an idle hour
    checks: tuple = ()
    lines: dict = field(default_factory=dict)


def best_for(goal: Goal, side: str, mech: str) -> Recommendation | None:
    for s in candidates_for(goal, mech)[:MAX_VERIFIED]:
        ok, det, probes, checks = verify(goal, side, mech, s, stop_at_first_failure=True)
        if ok:
            return Recommendation(side, mech, s, det, probes, checks, lines(side, mech, s, goal))
    return None


def recommend(goal: Goal) -> list[Recommendation]:
    """Every mechanism that meets the goal, per side (best candidate of each, simulated)."""
    out = []
    for side in goal.sides():
        for mech in MECHANISMS[side]:
            r = best_for(goal, side, mech)
            if r is not None:
                out.append(r)
    return out


def feasible(goal: Goal) -> bool:
    return all(any(best_for(goal, side, m) for m in MECHANISMS[side]) for side in goal.sides())


def longest_survivable_outage(goal: Goal) -> float | None:
    """The longest outage [whole s, at most the goal's] that settings meeting the rest of the goal
    survive (simulated); None when even no outage at all cannot be met."""
    if not feasible(Goal(**{**asdict(goal), "survive_outage_s": 0.0})):
        return None
    lo, hi = 0, int(min(goal.survive_outage_s, goal.detect_within_s))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if feasible(Goal(**{**asdict(goal), "survive_outage_s": float(mid)})):
            lo = mid
        else:
            hi = mid - 1
    return float(lo)


def trade_offs(goal: Goal) -> dict:
    """When the goal cannot be met: the longest survivable outage at the asked detection, and the
    fastest detection that survives the asked outage (each simulated; integer seconds)."""
    out: dict = {"survive_outage_s": longest_survivable_outage(goal)}
    lo, hi = max(2, int(goal.survive_outage_s)), int(max(goal.survive_outage_s * 4, goal.detect_within_s) + 600)
    hi = max(lo, min(hi, int(MAX_GOAL_S)))       # (the longest goal there is)
    if not feasible(Goal(**{**asdict(goal), "detect_within_s": float(hi)})):
        out["detect_within_s"] = None
    else:
        while lo < hi:                                 # smallest feasible detection
            mid = (lo + hi) // 2
            if feasible(Goal(**{**asdict(goal), "detect_within_s": float(mid)})):
                hi = mid
            else:
                lo = mid + 1
        out["detect_within_s"] = float(lo)
    if goal.max_probes_per_hour is not None:
        free = recommend(Goal(**{**asdict(goal), "max_probes_per_hour": None}))
        per_side = [min((r.probes_per_hour for r in free if r.side == s), default=None) for s in goal.sides()]
        out["max_probes_per_hour"] = None if None in per_side else max(per_side)
    return out


def answer(goal: Goal) -> tuple[list[Recommendation], dict]:
    """Recommendations, and the trade-offs when some side cannot meet the goal."""
    recs = recommend(goal)
    return recs, (trade_offs(goal) if unmet(goal, recs) else {})
