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


def report_table(measurements) -> str:
    """Markdown tables of every recorded measurement against the current model, one per OpenSSH
    build (the scenarios without OpenSSH first): one row per side that died or whose fate differs.
    ``measurements``: a directory of them (``data/measured``) or what :func:`load_measurements`
    returns (``python -m kalab lab report`` and notebook 08 print it)."""
    if not isinstance(measurements, Mapping):
        measurements = load_measurements(measurements)
    groups: dict[str | None, dict] = {}
    for name, m in measurements.items():
        groups.setdefault(openssh_build(m), {})[name] = m
    order = sorted(groups, key=lambda b: (b is not None, _build_key(b)))
    out = []
    for build in order:
        title = "**The kernel alone** (plain programs, no OpenSSH)" if build is None else \
            f"**{build}** (ssh and sshd)"
        out.append(title + "\n\n" + _table(groups[build]))
    return "\n\n".join(out)


def _build_key(build: str | None) -> tuple:
    m = re.search(r"(\d+)\.(\d+)", build or "")
    return (int(m.group(1)), int(m.group(2)), build) if m else (0, 0, build or "")


def _table(measurements: Mapping) -> str:
    from .simulate import simulate
    rows = ["| scenario | side | predicted | window [s] | measured [s] | diff [ms] | mechanism | wire |",
            "|---|---|---|---|---|---|---|---|"]
    for name, m in measurements.items():
        c = compare(simulate(m["scenario"]), m)
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
