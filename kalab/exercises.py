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


def check_mechanism(your_answer: str, scenario: Mapping, side: str = "client", *, hint: str = "",
                    reveal: bool = False) -> bool:
    """Compare a student's guess of *which* mechanism ends the session (e.g. "ssh.server_alive").

    Unanswered (``None``) or wrong, it says so (and the ``hint``) without the model's answer;
    ``reveal=True`` shows the answer.  Only a right answer says "Right"."""
    r = simulate(scenario).side(side)
    shown = f"the {side} ends by {r.by!r}" if r.fate == "died" else f"the {side} does not die within the run"
    ok = your_answer is not None and your_answer == r.by
    if your_answer is None:
        text = "Not answered yet."
    elif ok:
        text = f"Right: {shown}."
    else:
        text = f"Not quite: you said {your_answer!r}."
    if hint and not ok:
        text += f" Hint: {hint}" + ("" if hint[-1] in ".?!" else ".")
    if reveal and not ok:
        text += f" The model's answer: {shown}."
    elif not ok:
        text += " (reveal=True shows the model's answer)"
    print(text)
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
