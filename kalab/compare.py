"""Model vs measurement: :func:`compare` lines up a prediction and a lab run.

Per side: the difference in death time, whether the measured time lies inside
the model's window ``[at_s - tol, latest_s + tol]``, and whether fate,
mechanism (``by``) and what the program saw agree.  On the wire: the k-th
keepalive probe, retransmission, SYN, FIN, RST or data segment the model
predicts for a side is paired with the k-th one captured.

Messages are compared with addresses, ports and ``user NAME`` masked, since
the lab's NAT or an ephemeral port changes them without changing the meaning.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

#: Model timeline kinds -> the kind the capture can show for the same segment.
MODEL_TO_WIRE = {"keepalive_probe": "keepalive_probe", "keepalive_ack": "keepalive_ack",
                 "tlp": "retransmit", "retransmit": "retransmit", "syn_sent": "syn_sent",
                 "syn_retransmit": "syn_retransmit", "fin_sent": "fin_sent", "rst_sent": "rst_sent",
                 "data_sent": "data_sent", "middlebox_rst": "middlebox_rst",
                 "time_wait": "time_wait", "time_wait_end": "time_wait_end"}
DEFAULT_TOLERANCE_S = 0.020


def normalise_message(text: str | None) -> str | None:
    if text is None:
        return None
    s = re.sub(r"\buser \S+ ", "", text)
    s = re.sub(r"\b\d{1,3}(\.\d{1,3}){3}\b", "<ip>", s)
    s = re.sub(r"\bport \d+", "port <n>", s)
    return s.strip()


def _as_dict(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else x


def wire_events(result: dict, side: str) -> dict[str, list[tuple[float, float]]]:
    """``{kind: [(t_s, latest_s), ...]}`` of the segments a side sends, in time order."""
    out: dict[str, list] = {}
    for e in result["events"]:
        kind = MODEL_TO_WIRE.get(e["kind"])
        who = e["side"]
        if kind is None or (who != side and not (kind == "middlebox_rst" and side == "path")):
            continue
        if e.get("layer") not in ("tcp", "path"):
            continue
        out.setdefault(kind, []).append((e["t_s"], e.get("latest_s", e["t_s"])))
    return out


def compare(predicted: Any, measured: Any, tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict:
    """Compare a predicted result (``Result`` or dict) with a measured one (dict from the lab).

    Returns ``{"sides": {...}, "wire": [...], "ok": bool}``; ``ok`` means every side has the
    same fate, mechanism and message and a death time inside the model's window.
    """
    p, m = _as_dict(predicted), _as_dict(measured)
    sides = {}
    ok = True
    for side in ("client", "server"):
        ps, ms = p[side], m[side]
        same_fate = ps["fate"] == ms["fate"]
        same_by = ps["by"] == ms["by"]
        same_sees = normalise_message(ps["sees"]) == normalise_message(ms["sees"])
        diff = inside = None
        if ps["at_s"] is not None and ms["at_s"] is not None:
            diff = ms["at_s"] - ps["at_s"]
            inside = ps["at_s"] - tolerance_s <= ms["at_s"] <= (ps["latest_s"] or ps["at_s"]) + tolerance_s
        agree = same_fate and same_by and same_sees and (inside is not False) and \
            (ps["at_s"] is None) == (ms["at_s"] is None)
        ok = ok and agree
        sides[side] = {"predicted_at_s": ps["at_s"], "predicted_latest_s": ps["latest_s"], "measured_at_s": ms["at_s"],
                       "diff_s": diff, "inside_window": inside, "same_fate": same_fate, "same_by": same_by,
                       "same_sees": same_sees, "predicted": ps, "measured": ms, "agree": agree}
    wire = []
    observed_until = m.get("until_s")  # the lab stops watching here: later predictions cannot be seen
    predicted_until = p.get("until_s")  # the model stops here: later segments were not predicted either way
    watched = m.get("watched")
    wire_until = (watched or {}).get("wire_until_s")
    for side in ("client", "server", "path"):
        pw, mw = wire_events(p, side), wire_events(m, side)
        if wire_until is not None:
            # The lab compares the wire up to the first end of a session the server hung up on (the
            # teardown's chatter after it is not predicted); a margin keeps the ending segment out of both.
            cut = wire_until - 0.05
            pw = {k: [x for x in v if x[0] < cut] for k, v in pw.items()}
            mw = {k: [x for x in v if x[0] < cut] for k, v in mw.items()}
        if watched is not None and side not in watched.get("time_wait", []):
            for k in ("time_wait", "time_wait_end"):   # the lab did not watch this side's TIME_WAIT
                pw.pop(k, None)
                mw.pop(k, None)
        for kind in sorted(set(pw) | set(mw)):
            a, b = pw.get(kind, []), mw.get(kind, [])
            for k in range(max(len(a), len(b))):
                pt = a[k] if k < len(a) else (None, None)
                mt = b[k][0] if k < len(b) else None
                inside = None
                if pt[0] is not None and mt is not None:
                    inside = pt[0] - tolerance_s <= mt <= pt[1] + tolerance_s
                elif pt[0] is not None:
                    # Missing: a fault only if it must have happened while the lab was watching.
                    unobservable = observed_until is not None and pt[1] + tolerance_s >= observed_until
                    inside = None if unobservable else False
                elif predicted_until is not None and mt >= predicted_until:
                    inside = None    # after the model's horizon (the lab watched a little longer)
                else:
                    inside = False   # the real system did something the model did not predict
                wire.append({"side": side, "kind": kind, "k": k + 1, "predicted_t_s": pt[0],
                             "predicted_latest_s": pt[1], "measured_t_s": mt,
                             "diff_s": None if pt[0] is None or mt is None else mt - pt[0], "inside": inside})
    return {"sides": sides, "wire": wire, "ok": ok, "tolerance_s": tolerance_s}


def summary_lines(c: dict) -> list[str]:
    out = []
    for side, s in c["sides"].items():
        pa, ml = s["predicted_at_s"], s["measured_at_s"]
        window = "" if pa is None else f"[{pa:.3f}, {s['predicted_latest_s']:.3f}]"
        diff = "" if s["diff_s"] is None else f" diff {s['diff_s'] * 1000:+.1f} ms"
        flag = "OK " if s["agree"] else "XX "
        out.append(f"{flag}{side:<6} predicted {s['predicted']['fate']}/{s['predicted']['by']} {window}; "
                   f"measured {s['measured']['fate']}/{s['measured']['by']} "
                   f"{'' if ml is None else f'{ml:.3f}'}{diff}")
    bad = [w for w in c["wire"] if w["inside"] is False]
    seen = [w for w in c["wire"] if w["inside"] is not None]
    out.append(f"wire: {len(seen) - len(bad)} of {len(seen)} segments matched inside the window"
               + (f" ({len(c['wire']) - len(seen)} predicted after the lab stopped watching)"
                  if len(seen) < len(c["wire"]) else ""))
    for w in bad[:12]:
        out.append(f"   {w['side']} {w['kind']} #{w['k']}: predicted {w['predicted_t_s']} measured {w['measured_t_s']}")
    return out


# -- repeat recordings: one scenario, N runs (kalab.lab.repeat, issue 14) ---------------------------

SIDES = ("client", "server")


def is_repeat(recording: Mapping) -> bool:
    """A repeat recording (``{"runs": [...], "model", "scenario", "meta"}``), not a single run."""
    return isinstance(recording, Mapping) and "runs" in recording


def outcome_label(side: Mapping) -> str:
    """A side's outcome in words: ``alive``, ``half_open``, ``died by middlebox.reset``."""
    return f"died by {side.get('by')}" if side.get("fate") == "died" else str(side.get("fate"))


def _window(side: Mapping) -> tuple[float, float] | None:
    if side.get("at_s") is None:
        return None
    return side["at_s"], side["latest_s"] if side.get("latest_s") is not None else side["at_s"]


def worst_window(predicted: Mapping, side: str, tolerance_s: float = DEFAULT_TOLERANCE_S) -> tuple[float, float] | None:
    """When the *worst* outcome of a timing-sensitive side (every timer at its latest) may happen:
    ``[min(nominal at_s, worst at_s), worst latest_s]``, None if the worst outcome has no time.

    Why the corners bracket it: the flipped outcome happens when the racing timer fires past its
    deadline, somewhere between the two corners -- the nominal run's own time (with every timer on
    time) and the worst corner's latest time (every timer at its latest).  Where the nominal outcome
    has no time (``alive``: nothing ends it), the lower end is the nominal time of the racing event:
    the race the model names for this side (the result's ``races``: ``t_s`` of the timer-driven
    event that may come late) or, in a result without them, the earliest event of the nominal run
    whose own window ``[t_s, latest_s]`` reaches the worst corner's time.  A keepalive probe due at
    20.000 s that may fire as late as 22.048 s, racing a NAT that forgets at 21 s: the client dies
    by the NAT's RST somewhere in [21, 22.048] s, inside [20.000, 22.048]."""
    ps = predicted[side]
    w = ps.get("worst")
    if not w or w.get("at_s") is None:
        return None
    hi = w["latest_s"] if w.get("latest_s") is not None else w["at_s"]
    lows = [w["at_s"]]
    races = [r["t_s"] for r in predicted.get("races", ()) if r.get("side") == side and r.get("t_s") is not None]
    if ps.get("at_s") is not None:
        lows.append(ps["at_s"])
    elif races:
        lows += races
    else:
        lows += [e["t_s"] for e in predicted.get("events", ())
                 if e["t_s"] < w["at_s"] and e.get("latest_s", e["t_s"]) > e["t_s"]
                 and e.get("latest_s", e["t_s"]) + tolerance_s >= w["at_s"]]
    return min(lows), hi


def allowed_outcomes(predicted: Mapping, side: str, tolerance_s: float = DEFAULT_TOLERANCE_S) -> list[dict]:
    """The outcomes the model allows one side of a run: ``[{"corner", "fate", "by", "sees",
    "window"}]`` -- the nominal one and, when the side is ``timing_sensitive``, the ``worst`` one
    (:func:`worst_window`).  A prediction without ``worst`` (or not timing-sensitive) allows the
    nominal outcome only.  ``window`` is ``(lo, hi)`` [s] or None (the outcome has no time)."""
    ps = predicted[side]
    out = [{"corner": "nominal", "fate": ps["fate"], "by": ps["by"], "sees": ps["sees"], "window": _window(ps)}]
    w = ps.get("worst")
    if w and ps.get("timing_sensitive"):
        out.append({"corner": "worst", "fate": w["fate"], "by": w.get("by"), "sees": w.get("sees"),
                    "window": worst_window(predicted, side, tolerance_s)})
    return out


def _matches(outcome: Mapping, measured: Mapping, tolerance_s: float) -> bool:
    """Same fate, mechanism and message as ``outcome``, and the measured time inside its window
    (widened by ``tolerance_s``); an outcome without a time needs a measurement without one."""
    if outcome["fate"] != measured["fate"] or outcome["by"] != measured.get("by"):
        return False
    if normalise_message(outcome["sees"]) != normalise_message(measured.get("sees")):
        return False
    win, t = outcome["window"], measured.get("at_s")
    if win is None or t is None:
        return win is None and t is None
    return win[0] - tolerance_s <= t <= win[1] + tolerance_s


def compare_repeat(recording: Mapping, tolerance_s: float = DEFAULT_TOLERANCE_S, predict=None) -> dict:
    """Judge a repeat recording against the current model.

    Every run is compared with ``simulate`` of its own scenario as run (:func:`compare`).  A side of
    a run agrees when its outcome (fate, ``by``, what the program saw) and time are the nominal
    prediction's, as for a single run, or -- where the model marks the side ``timing_sensitive`` --
    the ``worst`` corner's, with its time in :func:`worst_window`.  A run agrees when both sides do
    and, if both took the nominal outcome, every captured segment pairs with the model's inside its
    window (a run that took the worst outcome followed another schedule than the nominal timeline,
    so its wire is not judged).  The recording agrees when every run does: a scenario that is not
    timing-sensitive must match the nominal prediction in every run.

    Returns ``{"runs": [{"ok", "sides": {side: {"corner", "agree", "label", "at_s"}}, "wire",
    "wire_judged", "compare"}], "counts": {side: {label: n}}, "n", "ok", "model", "allowed":
    {side: allowed_outcomes}, "tolerance_s"}``; ``model`` is the current model of the recording's
    scenario as given (for display: each run is judged against its own).  ``predict``: the model,
    scenario dict -> result (default :func:`kalab.simulate`; a test passes a synthetic one)."""
    if predict is None:
        from .simulate import simulate as predict
    runs, counts = [], {side: {} for side in SIDES}
    for m in recording["runs"]:
        p = _as_dict(predict(m["scenario"]))
        c = compare(p, m, tolerance_s)
        sides, nominal = {}, True
        for side in SIDES:
            ms = c["sides"][side]["measured"]
            corner = "nominal" if c["sides"][side]["agree"] else next(
                (o["corner"] for o in allowed_outcomes(p, side, tolerance_s)[1:] if _matches(o, ms, tolerance_s)),
                None)
            nominal = nominal and corner == "nominal"
            label = outcome_label(ms)
            counts[side][label] = counts[side].get(label, 0) + 1
            sides[side] = {"corner": corner, "agree": corner is not None, "label": label, "at_s": ms.get("at_s")}
        wire_ok = not nominal or not [w for w in c["wire"] if w["inside"] is False]
        runs.append({"ok": all(s["agree"] for s in sides.values()) and wire_ok, "sides": sides,
                     "wire": c["wire"], "wire_judged": nominal, "compare": c})
    model = _as_dict(predict(recording["scenario"]))
    return {"runs": runs, "counts": counts, "n": len(runs), "ok": bool(runs) and all(r["ok"] for r in runs),
            "model": model, "allowed": {side: allowed_outcomes(model, side, tolerance_s) for side in SIDES},
            "tolerance_s": tolerance_s}


def compare_recorded(recording: Mapping, tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict:
    """A recorded measurement, single run or repeat, against the current model: :func:`compare` of
    ``simulate(recording["scenario"])`` for a single run, :func:`compare_repeat` for a repeat
    recording.  Both return a dict whose ``ok`` says whether it agrees."""
    if is_repeat(recording):
        return compare_repeat(recording, tolerance_s)
    from .simulate import simulate
    return compare(simulate(recording["scenario"]), recording, tolerance_s)


def counts_text(counts: Mapping[str, int], n: int) -> str:
    """``alive 6/10, died by middlebox.reset 4/10`` (most frequent first)."""
    return ", ".join(f"{label} {k}/{n}" for label, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def allowed_text(allowed: list[dict]) -> str:
    """What the model allows a side, in words: ``alive; or, with timers late, died by
    middlebox.reset in [20.000, 22.048] s``."""
    out = []
    for o in allowed:
        text = ("or, with timers late, " if o["corner"] == "worst" else "") + outcome_label(o)
        if o["window"] is not None:
            text += f" in [{o['window'][0]:.3f}, {o['window'][1]:.3f}] s"
        out.append(text)
    return "; ".join(out)


def repeat_summary_lines(cr: dict, first_probe: bool = True) -> list[str]:
    """Lines for a judged repeat recording (:func:`compare_repeat`): one per run (its outcome per
    side, and each side's first captured keepalive probe), then, per side, the outcome counts
    against what the model allows."""
    out = []
    for i, r in enumerate(cr["runs"], 1):
        parts = []
        for side in SIDES:
            s = r["sides"][side]
            at = "" if s["at_s"] is None else f" at {s['at_s']:.3f} s"
            parts.append(f"{side} {s['label']}{at}" + ("" if s["agree"] else " (not allowed)"))
        probes = first_wire_times(r) if first_probe else {}
        extra = "".join(f"; first {side} keepalive probe {t:.3f} s" for side, t in probes.items())
        bad_wire = [] if not r["wire_judged"] else [w for w in r["wire"] if w["inside"] is False]
        out.append(f"{'OK' if r['ok'] else 'XX'} run {i}: " + "; ".join(parts) + extra
                   + (f"; {len(bad_wire)} segment(s) outside the model's window" if bad_wire else ""))
    for side in SIDES:
        agree = sum(r["sides"][side]["agree"] for r in cr["runs"])
        out.append(f"{'OK' if agree == cr['n'] else 'XX'} {side}: measured {counts_text(cr['counts'][side], cr['n'])}; "
                   f"the model allows {allowed_text(cr['allowed'][side])}; {agree}/{cr['n']} runs agree")
    return out


def first_wire_times(run: dict, kind: str = "keepalive_probe") -> dict[str, float]:
    """Each side's first captured segment of ``kind`` [s] in a judged run of :func:`compare_repeat`
    (its wire pairing: the capture's schedule)."""
    out: dict[str, float] = {}
    for w in run["wire"]:
        if w["kind"] == kind and w["k"] == 1 and w["measured_t_s"] is not None:
            out[w["side"]] = w["measured_t_s"]
    return out


def load_measurements(directory) -> dict[str, dict]:
    """Recorded lab measurements (``data/measured/*.json``) by name."""
    import json
    from pathlib import Path
    return {f.stem: json.loads(f.read_text()) for f in sorted(Path(directory).glob("*.json"))}


def _ssh_sides(m: dict) -> dict[str, str]:
    """``{side: "9.2"}`` for each ssh/sshd side of a measurement, the OpenSSH version it ran."""
    out = {}
    for side in ("client", "server"):
        app = (m["scenario"].get(side) or {}).get("app") or {}
        if app.get("kind") in ("ssh", "sshd"):
            out[side] = str(app.get("version", "?"))
    return out


def openssh_build(m: dict) -> str | None:
    """The OpenSSH build a measurement ran (``OpenSSH_10.0p2 Debian-7~bpo12+1``; ``ssh X, sshd Y``
    when the two sides differ), or None for plain programs.  Older recordings name one version."""
    sides = _ssh_sides(m)
    if not sides:
        return None
    meta = (m.get("meta") or {}).get("openssh")
    if isinstance(meta, dict):
        builds = [meta.get(side) or f"OpenSSH {sides[side]}" for side in ("client", "server") if side in sides]
        return builds[0] if len(set(builds)) == 1 else f"ssh {builds[0]}, sshd {builds[-1]}"
    return f"OpenSSH_{meta}" if meta else "OpenSSH " + "/".join(sorted(set(sides.values())))


def measured_openssh_versions(measurements) -> list[str]:
    """The OpenSSH versions (``"9.2"``, ``"10.0"``) the recorded measurements ran, oldest first."""
    if not isinstance(measurements, Mapping):
        measurements = load_measurements(measurements)
    found = {v for m in measurements.values() for v in _ssh_sides(m).values()}
    return sorted(found, key=lambda v: tuple(int(x) if x.isdigit() else 0 for x in v.split(".")))


def report_table(measurements, predict=None) -> str:
    """Markdown tables of every recorded measurement against the current model, one per OpenSSH
    build (the scenarios without OpenSSH first): one row per side that died or whose fate differs.
    ``measurements``: a directory of them (``data/measured``) or what :func:`load_measurements`
    returns (``python -m kalab lab report`` and notebook 08 print it).  Repeat recordings
    (:func:`is_repeat`) get a table of their own, last: per side the outcome counts, what the model
    allows (:func:`allowed_outcomes`) and the first captured keepalive probes.  ``predict``: as for
    :func:`compare_repeat`."""
    if not isinstance(measurements, Mapping):
        measurements = load_measurements(measurements)
    groups: dict[str | None, dict] = {}
    repeats = {name: m for name, m in measurements.items() if is_repeat(m)}
    for name, m in measurements.items():
        if name not in repeats:
            groups.setdefault(openssh_build(m), {})[name] = m
    order = sorted(groups, key=lambda b: (b is not None, _build_key(b)))
    out = []
    for build in order:
        title = "**The kernel alone** (plain programs, no OpenSSH)" if build is None else \
            f"**{build}** (ssh and sshd)"
        out.append(title + "\n\n" + _table(groups[build], predict))
    if repeats:
        out.append("**Repeated runs** (one scenario, N fresh runs; a run agrees when each side's outcome is one "
                   "the model allows, at a time inside that outcome's window)\n\n" + _repeat_table(repeats, predict))
    return "\n\n".join(out)


def _repeat_table(recordings: Mapping, predict=None) -> str:
    rows = ["| scenario | side | build | the model allows | measured | first keepalive probe [s]: model; measured "
            "| runs agreeing |",
            "|---|---|---|---|---|---|---|"]
    for name, m in recordings.items():
        cr = compare_repeat(m, predict=predict)
        probes: dict[str, list[float]] = {}
        for r in cr["runs"]:
            for side, t in first_wire_times(r).items():
                probes.setdefault(side, []).append(t)
        for side in SIDES:
            agree = sum(r["ok"] and r["sides"][side]["agree"] for r in cr["runs"])
            p = probes.get(side, [])
            model = next(((e["t_s"], e.get("latest_s", e["t_s"])) for e in cr["model"].get("events", ())
                          if e["kind"] == "keepalive_probe" and e["side"] == side), None)
            first = "-" if model is None and not p else \
                ("-" if model is None else f"{model[0]:.3f} .. {model[1]:.3f}") + "; " + \
                ("-" if not p else f"{min(p):.3f} .. {max(p):.3f}")
            rows.append(f"| {name} | {side} | {openssh_build(m) or '-'} | {allowed_text(cr['allowed'][side])} | "
                        f"{counts_text(cr['counts'][side], cr['n'])} | {first} | {agree}/{cr['n']} |")
    return "\n".join(rows)


def _build_key(build: str | None) -> tuple:
    m = re.search(r"(\d+)\.(\d+)", build or "")
    return (int(m.group(1)), int(m.group(2)), build) if m else (0, 0, build or "")


def _table(measurements: Mapping, predict=None) -> str:
    if predict is None:
        from .simulate import simulate as predict
    rows = ["| scenario | side | predicted | window [s] | measured [s] | diff [ms] | mechanism | wire |",
            "|---|---|---|---|---|---|---|---|"]
    for name, m in measurements.items():
        c = compare(predict(m["scenario"]), m)
        wire_ok = sum(1 for w in c["wire"] if w["inside"])
        wire_seen = sum(1 for w in c["wire"] if w["inside"] is not None)
        for side, s in c["sides"].items():
            p = s["predicted"]
            if p["fate"] != "died" and s["measured"]["fate"] == p["fate"]:
                continue
            window = "-" if p["at_s"] is None else f"{p['at_s']:.3f} .. {p['latest_s']:.3f}"
            meas = "-" if s["measured_at_s"] is None else f"{s['measured_at_s']:.3f}"
            diff = "-" if s["diff_s"] is None else f"{s['diff_s'] * 1000:+.1f}"
            same = "same" if s["same_by"] and s["same_sees"] else f"DIFFERS ({s['measured']['by']})"
            rows.append(f"| {name} | {side} | {p['fate']} by {p['by']} | {window} | {meas} | {diff} | "
                        f"{same} | {wire_ok}/{wire_seen} |")
    return "\n".join(rows)


def as_result(measured: dict):
    """A measured result (dict) as an immutable :class:`~kalab.result.Result`, e.g. to plot it."""
    from .result import Event, Result, SideResult
    sides = {}
    for side in ("client", "server"):
        d = measured[side]
        sides[side] = SideResult(d["fate"], d.get("at_s"), d.get("latest_s"), d.get("by"), d.get("sees"),
                                 d.get("exit_code"))
    events = tuple(Event(e["t_s"], e["side"], e["layer"], e["kind"], e.get("detail", ""), e.get("latest_s"))
                   for e in measured["events"])
    return Result(client=sides["client"], server=sides["server"], events=events,
                  until_s=measured.get("until_s", 0.0), name=measured.get("name", ""))
