"""Checks for the notebooks' "On your own" exercises: the answer is always the model's, never typed in.

Each check takes the student's answer (``my_answer``), what to compute the model's answer from, and a
**hint**: the rule that leads to the answer.  It returns a :class:`Check`, which a notebook shows as
one line of text:

* no answer yet (``None``): ``Not answered yet.`` and the hint -- never the answer, never "Right";
* an answer that is not a time, name or number: ``Not a ...`` and what is expected, and the hint;
* a wrong answer: ``Not quite: you said X.`` and the hint -- not the model's answer;
* the right answer: ``Right:`` and the model's answer with its mechanism;
* ``reveal=True`` adds ``The model's answer: ...`` to any of them (the answer shows only when asked).

A :class:`Check` is true only when the answer is right, so ``assert check_death(...)`` grades a cell.
A side that does not die within the run is answered ``"never"``: ``None`` is always "not answered".

An exercise cell assigns ``my_answer`` and ends with a ``check_*`` call (:func:`exercise_call`): that is how
``tests/test_exercises.py`` finds every exercise of every notebook, and how ``scripts/grade_exercises.py``
grades a class's notebooks (:func:`status_of` reads a check's status back from its output).

>>> sc = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 5}},
...       "server": {}, "faults": [{"kind": "host_crash", "side": "server", "at_s": 0}]}
>>> check_death(None, sc, hint="idle + count x interval")
Not answered yet. Hint: idle + count x interval. Put your answer into my_answer and run the cell again (reveal=True shows the model's answer).
>>> bool(check_death(110, sc, hint="idle + count x interval"))
True
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import show
from .result import BY
from .simulate import simulate
from .units import format_duration, parse_duration

#: What a :class:`Check` can say; only ``"right"`` is true.
STATUSES = ("unanswered", "invalid", "wrong", "right")
#: The checks an exercise cell may end with.
CHECKS = ("check_death", "check_mechanism", "check_number")
#: How each status's text begins (:func:`status_of`).
PREFIXES = {"Not answered yet.": "unanswered", "Not a ": "invalid", "Not quite:": "wrong", "Right:": "right"}
#: The answer for "this side does not die within the run".
NEVER = "never"
_ASK = "(reveal=True shows the model's answer)"


@dataclass(frozen=True)
class Check:
    """The outcome of one exercise check: ``status`` (one of :data:`STATUSES`), the ``text`` the notebook
    shows, and the model's ``answer`` (kept out of the text unless revealed or answered right)."""

    status: str
    text: str
    answer: Any = field(repr=False, default=None)

    def __bool__(self) -> bool:
        return self.status == "right"

    def __repr__(self) -> str:
        return self.text


def _check(status: str, text: str, answer: Any, shown: str, hint: str, reveal: bool) -> Check:
    """Add the hint (unless right) and the revealed answer (when asked) to ``text``."""
    if not hint or not hint.strip():
        raise ValueError("an exercise check needs a hint: the rule that leads to its answer")
    hint = hint.strip().rstrip(".")
    if status == "unanswered":
        text += f" Hint: {hint}. Put your answer into my_answer and run the cell again {_ASK}."
    elif status != "right":
        text += f" Hint: {hint}." + ("" if reveal else f" Try again {_ASK}.")
    if reveal and status != "right":
        text += f" The model's answer: {shown}."
    return Check(status, text, answer)


def check_death(your_answer, scenario: Mapping, side: str = "client", *, hint: str, tolerance_s: float = 1.0,
                reveal: bool = False) -> Check:
    """When does ``side`` die in ``scenario``?  The answer: seconds (``42``, ``"2 h 11 min"``, ``"5m"``),
    or ``"never"`` if it does not die within the run; right within ``tolerance_s`` [s] of ``simulate()``."""
    r = simulate(scenario).side(side)
    dies = r.fate == "died"
    answer = r.at_s if dies else NEVER
    shown = (f"the {side} dies at {format_duration(r.at_s)} ({r.at_s:g} s) by {r.by}" if dies else
             f"the {side} does not die within the run (it stays {r.fate.replace('_', '-')})")
    if your_answer is None:
        return _check("unanswered", "Not answered yet.", answer, shown, hint, reveal)
    if isinstance(your_answer, str) and your_answer.strip().lower() == NEVER:
        ok = not dies
        said = "never"
    else:
        try:
            if isinstance(your_answer, bool) or not isinstance(your_answer, (str, int, float)):
                raise ValueError
            guess = parse_duration(your_answer)
        except (ValueError, TypeError):     # a typo in a notebook cell: say so, no traceback
            return _check("invalid", f"Not a time of death: {show(your_answer)}; answer in seconds (a number, or a "
                          "duration as the notebooks print them), or \"never\".", answer, shown, hint, reveal)
        ok = dies and abs(guess - r.at_s) <= tolerance_s
        said = format_duration(guess)
    if ok:
        return _check("right", f"Right: {shown}.", answer, shown, hint, reveal)
    return _check("wrong", f"Not quite: you said {said}.", answer, shown, hint, reveal)


def check_mechanism(your_answer, scenario: Mapping, side: str = "client", *, hint: str,
                    reveal: bool = False) -> Check:
    """*Which* mechanism ends ``side``'s session: a name from ``kalab.BY`` (e.g. ``"ssh.server_alive"``),
    or ``"never"`` if it does not die within the run."""
    r = simulate(scenario).side(side)
    answer = r.by if r.fate == "died" else NEVER
    shown = (f"the {side} ends by {r.by!r} ({BY[r.by]})" if r.fate == "died" else
             f"the {side} does not die within the run")
    if your_answer is None:
        return _check("unanswered", "Not answered yet.", answer, shown, hint, reveal)
    if not isinstance(your_answer, str) or (your_answer != NEVER and your_answer not in BY):
        return _check("invalid", f"Not a name from kalab.BY: {show(your_answer)}; print(kalab.BY) lists them "
                      "(or answer \"never\").", answer, shown, hint, reveal)
    if your_answer == answer:
        return _check("right", f"Right: {shown}.", answer, shown, hint, reveal)
    return _check("wrong", f"Not quite: you said {your_answer!r}.", answer, shown, hint, reveal)


def check_number(your_answer, model_value: float, what: str = "the model's value", *, hint: str,
                 rel_tolerance: float = 0.01, reveal: bool = False) -> Check:
    """A number kalab computes (``model_value``, never typed in), right within ``rel_tolerance`` of it."""
    model_value = float(model_value)
    shown = f"{what} is {model_value:.4g}"
    if your_answer is None:
        return _check("unanswered", "Not answered yet.", model_value, shown, hint, reveal)
    try:
        guess = float(your_answer)
        if guess != guess:
            raise ValueError
    except (ValueError, TypeError, OverflowError):     # a typo in a notebook cell: say so, no traceback
        return _check("invalid", f"Not a number: {show(your_answer)}; {what} is a number.", model_value, shown,
                      hint, reveal)
    if abs(guess - model_value) <= rel_tolerance * max(abs(model_value), 1e-9):
        return _check("right", f"Right: {shown}.", model_value, shown, hint, reveal)
    return _check("wrong", f"Not quite: you said {guess:.4g}.", model_value, shown, hint, reveal)


def exercise_call(source: str) -> ast.Call | None:
    """The ``check_*(...)`` call an exercise cell ends with, if ``source`` (a code cell) assigns ``my_answer``
    and ends with one of :data:`CHECKS`; else None.

    >>> exercise_call("my_answer = None\\ncheck_number(my_answer, 1.0, hint='h')").func.id
    'check_number'
    >>> exercise_call("print(1)") is None
    True
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    assigns = any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "my_answer" for t in n.targets)
                  for n in tree.body)
    last = tree.body[-1] if tree.body else None
    if (assigns and isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and isinstance(last.value.func, ast.Name) and last.value.func.id in CHECKS):
        return last.value
    return None


def status_of(text: str) -> str | None:
    """A check's status read back from the text it showed (an executed notebook's output), else None.

    >>> status_of("Right: the rate is 546.1."), status_of("Not answered yet. Hint: ..."), status_of("42")
    ('right', 'unanswered', None)
    """
    return next((status for prefix, status in PREFIXES.items() if text.startswith(prefix)), None)
