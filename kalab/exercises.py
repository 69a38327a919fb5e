"""Checks for the notebooks' "On your own" exercises: the answer is always the model's, never typed in."""

from __future__ import annotations

from typing import Mapping

from .simulate import simulate
from .errors import show
from .units import format_duration, parse_duration


def check_death(your_answer, scenario: Mapping, side: str = "client", tolerance_s: float = 1.0) -> bool:
    """Compare a student's predicted time of death (seconds or "2 h 11 min") with the model's."""
    r = simulate(scenario).side(side)
    if r.fate != "died":
        print(f"The {side} does not die in this scenario (it stays {r.fate.replace('_', '-')}).")
        return your_answer is None
    if your_answer is None:
        print(f"Not quite: the {side} dies at {format_duration(r.at_s)} ({r.by}).")
        return False
    try:
        guess = parse_duration(your_answer)
    except (ValueError, TypeError) as e:     # a typo in a notebook cell: say so, no traceback
        print(f"Not a time of death: {str(e)[:200]}")
        return False
    ok = abs(guess - r.at_s) <= tolerance_s
    if ok:
        print(f"Right: the {side} dies at {format_duration(r.at_s)} by {r.by}.")
    else:
        print(f"Not quite: you said {format_duration(guess)}; the model says {format_duration(r.at_s)} by {r.by}.")
    return ok


def check_mechanism(your_answer: str, scenario: Mapping, side: str = "client") -> bool:
    """Compare a student's guess of *which* mechanism ends the session (e.g. "ssh.server_alive")."""
    r = simulate(scenario).side(side)
    ok = your_answer == r.by
    print(("Right: " if ok else f"Not quite: you said {your_answer!r}; ") + f"the {side} ends by {r.by!r}.")
    return ok


def check_number(your_answer, model_value: float, what: str = "the model's value", rel_tolerance: float = 0.01) -> bool:
    """Compare a student's number with a value kalab computes (never a typed-in answer)."""
    if your_answer is None:
        print(f"Not answered yet: {what} is {model_value:.4g}.")
        return False
    try:
        guess = float(your_answer)
    except (ValueError, TypeError, OverflowError):     # a typo in a notebook cell: say so, no traceback
        print(f"Not a number: {show(your_answer)}; {what} is a number.")
        return False
    ok = abs(guess - model_value) <= rel_tolerance * max(abs(model_value), 1e-9)
    print(("Right: " if ok else f"Not quite: you said {guess:.4g}; ") + f"{what} is {model_value:.4g}.")
    return ok
