"""One scenario run N times on the real kernel: what the timer wheel's lateness does to the outcome.

A kernel timer fires anywhere in ``[at_s, latest_s]`` (the timer wheel: a 20 s keepalive timer sits
on the level with 2.048 s granularity at HZ 250, so it fires in [20.000, 22.048) s depending on the
jiffies phase when it was armed).  Where the model says the outcome depends on that lateness
(``timing_sensitive``, issue 14), one run proves little: :func:`run_repeat` runs the scenario
``n`` times, each on a fresh topology that :func:`kalab.lab.run` builds and tears down completely
before the next one starts, and returns the *repeat recording*::

    {"name", "measured": true, "repeat": n, "runs": [measured result, ...],
     "model": simulate(scenario).to_dict(), "scenario": the scenario as given, "meta": {...}}

Each run is a complete measured result (its own ``scenario`` as run, with the clock phase and the
srtt that run had, and its ``meta``); :func:`kalab.compare.compare_repeat` judges every run against
the current model of its own scenario.  ``model`` is the model's answer, when recorded, for the
scenario as given (for reading the file; the judgement is redone with the current model).

A stop (``stop`` set, SIGINT/SIGTERM in ``python -m kalab lab``) or a failure in any run ends the
series: that run tears down as any run does (:mod:`kalab.lab.netns`), no further run starts, and
nothing is returned -- the CLI writes the recording only once every run has finished, in one
``rename``, so a file is either a complete series or absent.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import ScenarioError, show
from ..scenario import load
from .netns import LabStopped

#: How many runs ``--repeat`` / :func:`run_repeat` accepts: a series of the longest admitted
#: scenario (75 s without allow_long) is then at most about two hours.
MAX_REPEAT = 100


def check_repeat(value, option: str = "--repeat") -> int:
    """``value`` as a run count in 1 .. :data:`MAX_REPEAT`, else :class:`~kalab.errors.ScenarioError`
    naming ``option`` (one line).  Accepts an int or the decimal text of one (the CLI's argument)."""
    allowed = f"a whole number of runs, 1 .. {MAX_REPEAT}"
    n = value
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            raise ScenarioError(option, f"{show(value)} is not a whole number", value=value, allowed=allowed)
        n = int(text)
    if isinstance(n, bool) or not isinstance(n, int):
        raise ScenarioError(option, f"{show(value)} is not a whole number", value=value, allowed=allowed)
    if not 1 <= n <= MAX_REPEAT:
        raise ScenarioError(option, f"{show(value)} is out of range", value=value, allowed=allowed)
    return n


def model_scenario(scenario: dict, first_run: dict | None = None) -> dict:
    """The scenario as given, with each ssh/sshd side's ``app.version`` as the lab ran it (a side that
    named none runs the system's build, and the model must be asked about what ran)."""
    sc = copy.deepcopy(scenario)
    if first_run is not None:
        for side in ("client", "server"):
            v = ((first_run["scenario"].get(side) or {}).get("app") or {}).get("version")
            if v is not None and (sc.get(side) or {}).get("app") is not None:
                sc[side]["app"].setdefault("version", v)
    return sc


def repeat_record(scenario: dict, runs: list[dict]) -> dict:
    """The repeat recording of ``runs`` (complete measured results of ``scenario``): see the module."""
    from ..simulate import simulate
    if not runs:
        raise ValueError("a repeat recording needs at least one run")
    sc = model_scenario(scenario, runs[0])
    meta = dict(runs[0]["meta"])   # the first run's date; the last run's beside it
    meta["date_last_run"] = runs[-1]["meta"]["date"]
    return {"name": runs[0].get("name", sc.get("name", "")), "measured": True, "repeat": len(runs),
            "runs": runs, "model": simulate(sc).to_dict(), "scenario": sc, "meta": meta}


def run_repeat(scenario: dict, n, *, allow_long: bool = False, stop=None,
               on_run: Callable[[int, dict], None] | None = None, run: Callable | None = None) -> dict:
    """Run ``scenario`` ``n`` times (1 .. :data:`MAX_REPEAT`), one after another, each on a fresh
    topology torn down before the next starts; return the repeat recording (module docstring).

    ``on_run(i, measured)`` is called after run ``i`` (0-based) has ended and torn down (the CLI
    prints a line; a test checks that nothing of it remains).  ``stop``: a
    :class:`threading.Event`; set, it ends the current run (torn down) and starts no other, with
    :class:`~kalab.lab.LabStopped`.  ``run``: the single-run function (:func:`kalab.lab.run`; a
    test passes a fake)."""
    n = check_repeat(n, "repeat")
    if run is None:
        from .runner import run
    src = copy.deepcopy(scenario)
    load(src)   # a bad scenario is refused before anything runs
    runs = []
    for i in range(n):
        if stop is not None and stop.is_set():
            raise LabStopped(f"stopped on request after {i} of {n} runs")
        m = run(copy.deepcopy(src), allow_long=allow_long, stop=stop)
        runs.append(m)
        if on_run is not None:
            on_run(i, m)
    return repeat_record(src, runs)


def write_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and one rename: a
    reader (or a stop half-way) sees the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # mkstemp makes it 0600: give it the mode the file had, else rw-r--r-- as write_text would
        # under the usual umask (data/measured/ is committed and read by anyone)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def first_times(measured: dict, kind: str = "keepalive_probe") -> dict[str, float]:
    """``{side: t_s}`` of each side's first captured segment of ``kind`` in a measured run (its
    wire schedule: events with ``detail`` ``"wire"``)."""
    out: dict[str, float] = {}
    for e in measured.get("events", []):
        if e.get("kind") == kind and str(e.get("detail", "")).startswith("wire") and e["side"] not in out:
            out[e["side"]] = e["t_s"]
    return out
