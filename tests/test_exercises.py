"""The notebooks' exercises, every one of them, and the checks they call (kalab/exercises.py).

Every code cell of every notebook that assigns ``my_answer`` and ends with a ``check_*`` call is an
exercise; they are found in the notebooks themselves, so a new exercise or notebook is covered without
touching this file.  Each notebook's code runs in-process, top to bottom, in its own folder (the
notebooks have no ``def``s and run in a few seconds); each exercise cell runs as written (it must ship with
``my_answer = None``), then its check is called again with an invalid answer, a wrong answer, the right one,
and nothing with ``reveal=True``:

* no answer: "Not answered yet." with a hint, never "Right", never the model's answer, and false;
* an invalid or wrong answer: the hint, not the answer, and false;
* the right answer (the model's, from the check itself): "Right:", and true;
* ``reveal=True``: the model's answer.

And every hint leads to its answer: :data:`BY_HAND` works each exercise out the way its hint says,
and the model must agree.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import kalab
from kalab import exercises
from kalab.exercises import CHECKS, NEVER, STATUSES, Check, check_death, check_mechanism, check_number, exercise_call, status_of

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

CRASH = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 5}},
         "server": {}, "faults": [{"kind": "host_crash", "side": "server", "at_s": 0}]}
IDLE = {"client": {}, "server": {}, "until_s": 100}


# ---------------------------------------------------------------- the exercises, found in the notebooks

@dataclass
class Exercise:
    notebook: str
    number: int              # 1, 2, ... within the notebook
    kind: str                # check_death, check_mechanism, check_number
    hint: str
    unanswered: Check
    invalid: Check
    wrong: Check
    wrong_answer: object
    right: Check
    revealed: Check

    @property
    def answer(self):
        return self.unanswered.answer


def wrong_for(kind: str, answer):
    if kind == "check_mechanism":
        return next(b for b in kalab.BY if b != answer) if answer == NEVER else NEVER
    if answer == NEVER:
        return 60
    return answer * 2 + 100


def run_exercises(path: Path) -> list[Exercise]:
    """Run the notebook's code in-process in its folder; at each exercise cell, every variant."""
    nb = json.loads(path.read_text())
    ns: dict = {"__name__": "__main__"}
    found: list[Exercise] = []
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nb["cells"]:
                if cell["cell_type"] != "code":
                    continue
                src = "".join(cell["source"])
                call = exercise_call(src)
                if call is None:
                    exec(compile(src, path.name, "exec"), ns)
                    continue
                kind = call.func.id
                first = call.args[0] if call.args else None
                assert isinstance(first, ast.Name) and first.id == "my_answer", f"{path.name}: check_*(my_answer, ...)"
                hint = next((ast.literal_eval(k.value) for k in call.keywords if k.arg == "hint"), "")
                # The cell as written (my_answer = None), then its check's other arguments evaluated once (notebook
                # 10's model answer takes seconds), and the check called again with each answer.
                exec(compile(src, path.name, "exec"), ns)
                rest = ast.fix_missing_locations(ast.Expression(ast.Tuple(call.args[1:], ast.Load())))
                args = eval(compile(rest, path.name, "eval"), ns)
                kwargs = {k.arg: eval(compile(ast.Expression(k.value), path.name, "eval"), ns) for k in call.keywords}
                check = ns[kind]

                def run(answer, reveal=False):
                    return check(answer, *args, **kwargs, **({"reveal": True} if reveal else {}))
                unanswered = run(ns["my_answer"])
                assert ns["my_answer"] is None, f"{path.name}: an exercise ships without an answer (my_answer = None)"
                wrong_answer = wrong_for(kind, unanswered.answer)
                found.append(Exercise(path.stem, len(found) + 1, kind, hint, unanswered,
                                      run("no.such answer"), run(wrong_answer), wrong_answer,
                                      run(unanswered.answer), run(None, reveal=True)))
    finally:
        os.chdir(cwd)
    return found


_runs: dict[str, list[Exercise]] = {}


def exercises_of(stem: str) -> list[Exercise]:
    if stem not in _runs:
        _runs[stem] = run_exercises(ROOT / "notebooks" / f"{stem}.ipynb")
    return _runs[stem]


def shows(text: str, answer) -> bool:
    """Does ``text`` state the model's answer?"""
    if answer == NEVER:
        return "does not die" in text
    if isinstance(answer, str):
        return answer in text
    forms = {f"{answer:g}", f"{answer:.4g}", kalab.format_duration(answer)}
    return any(re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", text) for f in forms)


STEMS = [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("stem", STEMS)
def test_every_notebook_has_an_exercise_with_a_hint(stem):
    found = exercises_of(stem)
    assert found, f"{stem}: no exercise cell (assigns my_answer, ends with one of {CHECKS})"
    for ex in found:
        assert len(ex.hint) > 20, f"{stem} exercise {ex.number}: hint={ex.hint!r}: say the rule that leads to the answer"


@pytest.mark.parametrize("stem", STEMS)
def test_an_unanswered_exercise_says_so_with_its_hint_and_never_the_answer(stem):
    for ex in exercises_of(stem):
        c = ex.unanswered
        where = f"{stem} exercise {ex.number}: {c.text}"
        assert c.status == "unanswered" and not c, where
        assert c.text.startswith("Not answered yet.") and "Hint: " + ex.hint.rstrip(".") in c.text, where
        assert "Right" not in c.text, where
        assert not shows(c.text, ex.answer), where
        assert "reveal=True" in c.text, where


@pytest.mark.parametrize("stem", STEMS)
def test_an_invalid_or_wrong_answer_gets_the_hint_not_the_answer(stem):
    for ex in exercises_of(stem):
        for c in (ex.invalid, ex.wrong):
            where = f"{stem} exercise {ex.number} ({ex.wrong_answer!r}): {c.text}"
            assert c.status in ("invalid", "wrong") and not c, where
            assert "Hint: " in c.text and "Right" not in c.text and not shows(c.text, ex.answer), where
        assert ex.invalid.status == "invalid" and ex.wrong.status == "wrong"


@pytest.mark.parametrize("stem", STEMS)
def test_the_right_answer_is_right(stem):
    for ex in exercises_of(stem):
        assert ex.right.status == "right" and ex.right, f"{stem} exercise {ex.number}: {ex.right.text}"
        assert ex.right.text.startswith("Right:")
        for c in (ex.unanswered, ex.invalid, ex.wrong, ex.right, ex.revealed):
            assert status_of(c.text) == c.status, c.text         # what grade_exercises.py reads back


@pytest.mark.parametrize("stem", STEMS)
def test_reveal_shows_the_models_answer(stem):
    for ex in exercises_of(stem):
        c = ex.revealed
        assert c.status == "unanswered" and not c
        assert "The model's answer: " in c.text and shows(c.text.split("The model's answer: ")[1], ex.answer), c.text


# ---------------------------------------------------------------- every hint leads to its answer

#: Each exercise worked out the way its hint says, by hand (numbers from the notebooks' rules):
#: {notebook: [answer of exercise 1, answer of exercise 2, ...]}.  A notebook not listed here is still
#: run by every test above.
BY_HAND = {
    # (ServerAliveCountMax + 1) x ServerAliveInterval after the server's last packet at 0
    "00-start-here": [(0 + 1) * 15],
    # TCP_KEEPIDLE + TCP_KEEPCNT x TCP_KEEPINTVL after the crash at 0
    "01-idle-peer": [60 + 5 * 10],
    # TLP at 10.204, first RTO retransmission at 10.408; RTO doubling from 0.408; the first firing 12.6 s after it
    "02-data-in-flight": [10.408 + next(sum(0.408 * 2 ** i for i in range(k)) for k in range(1, 20)
                                        if sum(0.408 * 2 ** i for i in range(k)) >= (2 ** 6 - 1) * 0.2)],
    # ServerAlive off, TCPKeepAlive yes: the client's kernel keepalive
    "03-ssh-drops": ["tcp.keepalive"],
    # 8.1: one interval after the client was last heard; 9.6: the first alive message + the default give-up
    "04-server-beliefs": [0 + 30, 30 + 928.896],
    # 300 < 350: kept alive; 240 < 300: dropped, (3 + 1) x 300 after the server's last packet
    "05-middleboxes": [NEVER, (3 + 1) * 300],
    # ports / TIME_WAIT
    "06-time-wait": [(65535 - 49152 + 1) / 30],
    # the retransmission after 220 s is answered before (3 + 1) x 60 after 60 s; the NAT last saw 60 s
    "07-who-first": [NEVER],
    # the table's diff [ms] for retransmission-retries2-5: measured 14.326 s - nominal 14.056 s
    "08-measured": [(14.326 - 14.056) * 1000],
    # the third probe, at 10 + 2 x i, after the link is back at 301 s; the grid steps by 10
    "09-what-if": [next(i for i in range(10, 301, 10) if 10 + 2 * i > 301)],
    # retransmissions at about 0.25 x 2^k s after the send; the last within 60 s
    "10-what-should-i-set": [int(max(0.252 * 2 ** k for k in range(12) if 0.252 * 2 ** k < 60))],
    # TMOUT off, logind off, the session has a channel: ChannelTimeout, which alive messages do not reset
    "11-who-else-hangs-up": ["sshd.channel_timeout"],
    # a timer of 16.1-129 s fires up to 2.048 s late (HZ 250); its latest firing must come by 120 - 1 s
    "12-not-a-stopwatch": [int(120 - 1 - 2.048)],
}


@pytest.mark.parametrize("stem", sorted(BY_HAND))
def test_every_hint_leads_to_its_answer(stem):
    found = exercises_of(stem)
    assert len(found) == len(BY_HAND[stem]), f"{stem}: {len(found)} exercises, {len(BY_HAND[stem])} worked by hand"
    for ex, hand in zip(found, BY_HAND[stem]):
        model = ex.answer
        if isinstance(hand, str) or isinstance(model, str):
            assert model == hand, (stem, ex.number, model, hand)
        else:
            assert model == pytest.approx(hand, rel=0.01, abs=0.05), (stem, ex.number, model, hand)


# ---------------------------------------------------------------- the checks themselves

def test_check_death_right_within_the_tolerance_and_in_any_duration_form():
    assert check_death(110, CRASH, hint="idle + count x interval")
    assert check_death("1 min 50 s", CRASH, hint="idle + count x interval")
    assert check_death(110.9, CRASH, hint="idle + count x interval")
    assert not check_death(111.5, CRASH, hint="idle + count x interval")
    assert check_death(110.05, CRASH, hint="h", tolerance_s=0.1) and not check_death(110.2, CRASH, hint="h", tolerance_s=0.1)


def test_a_side_that_survives_is_answered_never_and_none_is_not_an_answer():
    """07's old bug: nobody dies, and check_death(None, ...) said True."""
    c = check_death(None, IDLE, hint="nothing ends an idle connection without keepalive")
    assert c.status == "unanswered" and not c and c.answer == NEVER
    assert check_death("never", IDLE, hint="h") and check_death(" Never ", IDLE, hint="h")
    assert not check_death(50, IDLE, hint="h")
    assert not check_death("never", CRASH, hint="h")


def test_check_mechanism_takes_names_from_by():
    assert check_mechanism("tcp.keepalive", CRASH, hint="h")
    wrong = check_mechanism("ssh.server_alive", CRASH, hint="the kernel")
    assert wrong.status == "wrong" and "tcp.keepalive" not in wrong.text
    assert check_mechanism("tcp.keepalives", CRASH, hint="h").status == "invalid"
    assert check_mechanism(NEVER, IDLE, hint="h")


def test_check_number_relative_tolerance_and_bad_numbers():
    assert check_number("546.1", 546.13, hint="h") and check_number(546, 546.13, hint="h")
    assert not check_number(500, 546.13, hint="h")
    for bad in ("five hundred", float("nan"), [1], True + 0j):
        assert check_number(bad, 546.13, hint="h").status == "invalid"


def test_a_check_needs_a_hint():
    with pytest.raises(ValueError, match="hint"):
        check_death(None, CRASH, hint=" ")
    with pytest.raises(TypeError):
        check_number(None, 1.0)       # hint is required


def test_a_check_shows_as_its_text_and_reveal_adds_the_answer():
    c = check_number(None, 546.13, "the rate", hint="ports / TIME_WAIT")
    assert repr(c) == c.text and "546" not in c.text and c.text.startswith("Not answered yet. Hint: ports / TIME_WAIT.")
    r = check_number(None, 546.13, "the rate", hint="ports / TIME_WAIT", reveal=True)
    assert r.text.endswith("The model's answer: the rate is 546.1.")
    right = check_number(546.1, 546.13, "the rate", hint="h", reveal=True)
    assert right.text == "Right: the rate is 546.1." and right.text.count("546.1") == 1
    assert set(STATUSES) == {"unanswered", "invalid", "wrong", "right"} and exercises.NEVER == "never"


answers = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(allow_nan=True), st.booleans(),
                    st.lists(st.integers(), max_size=3), st.sampled_from(["never", "2 h", "5m", "1h30m", "-3", "inf"]))


@given(answers)
def test_any_answer_gets_a_check_never_an_exception(answer):
    """A typo in a notebook cell: one line saying so, no traceback (fuzzed)."""
    for c in (check_death(answer, CRASH, hint="h"), check_mechanism(answer, CRASH, hint="h"),
              check_number(answer, 110.0, hint="h")):
        assert isinstance(c, Check) and c.status in STATUSES and "\n" not in c.text
        assert bool(c) == (c.status == "right")
        if c.status != "right":
            assert "Hint: h." in c.text


# ---------------------------------------------------------------- grading a class's notebooks

GRADER = ROOT / "scripts" / "grade_exercises.py"


def test_the_grader_finds_every_exercise_of_the_executed_notebooks_unanswered(executed):
    sys.path.insert(0, str(ROOT / "scripts"))
    from grade_exercises import grade
    for stem, (nb, _) in executed.items():
        rows = grade(nb)
        assert [(r["status"], r["revealed"]) for r in rows] == [("unanswered", False)] * len(exercises_of(stem)), rows


def test_the_grader_runs_a_students_notebook_and_reads_right_wrong_and_unanswered(tmp_path):
    """A copy of notebook 00 with the right answer, run in a kernel; a file that is no notebook: exit 2."""
    import subprocess
    nb = json.loads((ROOT / "notebooks" / "00-start-here.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and exercise_call("".join(cell["source"])):
            cell["source"] = "".join(cell["source"]).replace("my_answer = None", "my_answer = 15")
    (tmp_path / "alice-00.ipynb").write_text(json.dumps(nb))
    proc = subprocess.run([sys.executable, str(GRADER), "--execute", "--json", str(tmp_path / "alice-00.ipynb")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)[str(tmp_path / "alice-00.ipynb")]
    assert rows == [{"exercise": 1, "answer": "my_answer = 15", "status": "right", "revealed": False}]
    (tmp_path / "bad.ipynb").write_text("{not json")
    proc = subprocess.run([sys.executable, str(GRADER), str(tmp_path / "bad.ipynb")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
