"""``python -m kalab``: simulate a scenario file and print the answer.

Bad input exits 2 with one clear line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ScenarioError
from .explain import report
from .scenario import load, load_file
from .settings import DEFAULT_OPENSSH, version_text
from .simulate import simulate


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse already exits 2; keep the message short
        from .errors import clip
        self.print_usage(sys.stderr)
        # One line, however hostile the argument it quotes: control characters escaped, length cut.
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in clip(message))
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kalab", description="When does a network session die, and why?")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("simulate", help="predict both sides' fate for a scenario JSON file")
    s.add_argument("file", help="scenario JSON (see docs/scenarios.md)")
    s.add_argument("--json", action="store_true", help="print the result contract as JSON")
    s.add_argument("--all", action="store_true", help="print every event of the timeline")
    lab = sub.add_parser("lab", help="run scenarios on the real kernel (root only)")
    labsub = lab.add_subparsers(dest="lab_command", required=True, parser_class=_Parser)
    lr = labsub.add_parser("run", help="measure one scenario and compare it with the model")
    lr.add_argument("file")
    lr.add_argument("--out", help="write the measurement (JSON) here")
    lr.add_argument("--allow-long", action="store_true", help="allow runs longer than about a minute")
    lr.add_argument("--json", action="store_true", help="print the measurement as JSON")
    lr.add_argument("--repeat", metavar="N", help="run it N times (1-100), each on a fresh topology, and record "
                                                  "all runs with the model's answer (docs/lab.md; N = 1: one run, "
                                                  "recorded as without --repeat)")
    rec = labsub.add_parser("record", help="measure the matrix (kalab.lab.matrix) into data/measured/")
    rec.add_argument("--only", nargs="*", help="names from the matrix")
    rec.add_argument("--jobs", type=int, default=6)
    rec.add_argument("--repeat", metavar="N", help="runs for each scenario the matrix records as a series "
                                                   "(default: its own count in kalab.lab.matrix.REPEAT)")
    rec.add_argument("--dir", default="data/measured")
    rep = labsub.add_parser("report", help="table: recorded measurements vs the current model (no root needed)")
    rep.add_argument("--dir", default="data/measured")
    ex = sub.add_parser("explain", help="who dies when and why, from your sysctl dump, ssh_config and sshd_config")
    ex.add_argument("--client-sysctl", metavar="F", help="client's `sysctl -a` / `sysctl net.inet.tcp` / /proc/sys dump")
    ex.add_argument("--server-sysctl", metavar="F", help="server's sysctl dump")
    ex.add_argument("--client-os", choices=["linux", "macos", "freebsd"], help="override the OS guessed from the dump")
    ex.add_argument("--ssh-config", metavar="F", help="ssh_config file or `ssh -G HOST` output")
    ex.add_argument("--host", help="the host given to ssh (for Host/Match blocks)")
    ex.add_argument("--ssh-version", help="OpenSSH client version, e.g. 9.6")
    ex.add_argument("--server-sshd-config", metavar="F", help="sshd_config file or `sshd -T` output")
    ex.add_argument("--sshd-version", help="OpenSSH server version, e.g. 9.2")
    ex.add_argument("--sshd-match", action="append", default=[], metavar="CRIT=VALUE",
                    help="the connection for sshd Match blocks, e.g. user=alice or address=203.0.113.7")
    ex.add_argument("--middlebox", help="a NAT/firewall preset on the path, e.g. aws-nat")
    ex.add_argument("--rtt-ms", type=float, help="round-trip time of the path [ms]")
    ex.add_argument("--fault", action="append", default=[], metavar="KIND[:SIDE]@AT[+FOR]",
                    help="e.g. link_down@60+30, host_crash:client@10, host_reboot:server@5+20 (repeatable)")
    ex.add_argument("--until", help="how long to watch (default: 3 h after the last fault)")
    ex.add_argument("--json", action="store_true", help="print the result contract (plus scenario and sources)")
    rc = sub.add_parser("recommend", help="settings that meet your goal, each checked by simulate()")
    rc.add_argument("--detect-within", required=True, metavar="DURATION",
                    help="a dead peer or path must be noticed within this (e.g. 30s, 2m)")
    rc.add_argument("--survive-outage", metavar="DURATION", help="outages this long must not kill the session")
    rc.add_argument("--nat-idle", metavar="DURATION", help="idle timeout of a NAT/firewall on the path")
    rc.add_argument("--side", choices=["client", "server", "both"], default="both", help="who must notice")
    rc.add_argument("--max-probes-per-hour", type=float, metavar="N", help="at most N probes per idle hour per side")
    rc.add_argument("--rtt-ms", type=float, default=50.0, help="round-trip time of the path [ms] (default 50)")
    rc.add_argument("--sshd-version", default=version_text(DEFAULT_OPENSSH),
                    help="OpenSSH server version (9.2-9.4 probe every 2 intervals)")
    rc.add_argument("--survive-idle", metavar="DURATION",
                    help="an idle spell the session must survive (e.g. 1h: a lunch break); warns about server "
                         "idle timers no keepalive can beat")
    rc.add_argument("--server-sshd-config", metavar="F",
                    help="sshd_config file or `sshd -T` output: its ChannelTimeout and UnusedConnectionTimeout")
    rc.add_argument("--shell-tmout", metavar="DURATION", help="the server's shell TMOUT (e.g. 900, 15m)")
    rc.add_argument("--logind-stop-idle", metavar="DURATION", help="the server's logind StopIdleSessionSec")
    rc.add_argument("--json", action="store_true", help="print the recommendations as JSON")
    li = sub.add_parser("links", help="Binder and course-hub links to notebook 00 where this repository is published")
    li.add_argument("repo_url", nargs="?", metavar="REPO_URL",
                    help="the published repository (default: this checkout's git remote, origin or the only one)")
    li.add_argument("--ref", help="branch, tag or commit (default: HEAD on Binder, the default branch; on the hub, "
                                  "the remote's default branch, else main); nbgitpuller needs a branch")
    li.add_argument("--hub", metavar="HUB_URL", help="a JupyterHub with nbgitpuller, e.g. https://hub.example.edu: "
                                                     "the link that pulls the repository into each student's server")
    return p


class _Signalled(BaseException):
    """SIGINT, SIGTERM or SIGHUP during ``kalab lab``, raised in the main thread so that every
    ``finally`` runs and the lab tears down.  A BaseException, as KeyboardInterrupt is, so that no
    ``except Exception`` swallows it."""


def _lab_main(args) -> int:
    """``kalab lab``: a signal ends it cleanly -- the lab ends and removes everything it started --
    and exits 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP: what a shell reports
    for a process killed by it) with one line on stderr, not a traceback.  A second signal while
    tearing down is ignored, so it cannot cut the clean-up short."""
    import signal
    import threading

    stop = threading.Event()   # `lab record`'s runs in worker threads see it within half a second

    def on_signal(signum, frame):
        if stop.is_set():
            return
        stop.set()
        raise _Signalled(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) != signal.SIG_IGN:   # as started with nohup, or `&` in a script: keep ignoring
            signal.signal(s, on_signal)
    try:
        return _lab(args, stop)
    except _Signalled as e:
        try:
            print(f"kalab: lab: stopped by {signal.Signals(e.args[0]).name}; the run's processes and "
                  "namespaces were removed", file=sys.stderr)
        except OSError:   # the terminal that hung up
            pass
        return 128 + e.args[0]
    except ScenarioError as e:
        print(f"kalab: error: {e}", file=sys.stderr)
        return 2


def _lab(args, stop=None) -> int:
    import json

    from .compare import compare, compare_repeat, repeat_summary_lines, report_table, summary_lines
    from .lab import LabError, run
    from .lab.matrix import LONG, REPEAT, scenarios
    from .lab.repeat import check_repeat, first_times, run_repeat, write_atomically
    if args.lab_command == "report":
        print(report_table(Path(args.dir)))
        return 0
    # A bad --repeat is refused before anything runs (and without root).
    repeat = None if getattr(args, "repeat", None) is None else check_repeat(args.repeat)
    try:
        if args.lab_command == "run":
            sc = load_file(args.file)
            if repeat is None or repeat == 1:   # one run: recorded as ever (a single measured result)
                repeat = None
                m = run(sc.source, allow_long=args.allow_long, stop=stop)
            else:
                progress = sys.stderr if args.json else sys.stdout

                def one_done(i, r):
                    print(_run_line(i, repeat, r, first_times(r)), file=progress, flush=True)
                m = run_repeat(sc.source, repeat, allow_long=args.allow_long, stop=stop, on_run=one_done)
            if args.out:   # only once every run has ended: the file is a whole series or absent
                write_atomically(args.out, json.dumps(m, indent=1) + "\n")
            if args.json:
                print(json.dumps(m, indent=1))
            elif repeat is None:
                c = compare(simulate(m["scenario"]), m)
                print("\n".join(summary_lines(c)))
                late = compare_repeat({"runs": [m], "scenario": m["scenario"]}) if not c["ok"] else None
                if late and late["ok"]:   # one run of a knife-edge that took the other outcome
                    details = sorted({d for d in (late["model"][side].get("timing_detail") for side in ("client", "server"))
                                      if d})
                    print("timing: the model allows this outcome when the kernel's timers fire late"
                          + "".join(f" -- {d}" for d in details) + "; run it N times with --repeat N")
            else:
                print("\n".join(repeat_summary_lines(compare_repeat(m))))
            return 0
        from concurrent.futures import ThreadPoolExecutor
        matrix = scenarios()
        names = args.only or sorted(matrix)
        unknown = [n for n in names if n not in matrix]
        if unknown:
            raise ScenarioError("--only", f"not in the matrix: {', '.join(unknown)}", allowed=", ".join(sorted(matrix)))
        out = Path(args.dir)
        out.mkdir(parents=True, exist_ok=True)

        def one(name):
            if name in REPEAT:
                n = repeat or REPEAT[name]

                def one_done(i, r):
                    print(f"{name}: {_run_line(i, n, r, first_times(r))}", flush=True)
                m = run_repeat(matrix[name], n, allow_long=name in LONG, stop=stop, on_run=one_done)
            else:
                m = run(matrix[name], allow_long=name in LONG, stop=stop)
            m["matrix_name"] = name
            write_atomically(out / f"{name}.json", json.dumps(m, indent=1) + "\n")
            if name in REPEAT:
                c = compare_repeat(m)
                return name, c, repeat_summary_lines(c)
            c = compare(simulate(m["scenario"]), m)
            return name, c, summary_lines(c)

        bad = 0
        with ThreadPoolExecutor(max(1, args.jobs)) as ex:
            for name, c, lines in ex.map(one, names):
                bad += not c["ok"]
                print(f"== {name}\n" + "\n".join(lines), flush=True)
        return 1 if bad else 0
    except LabError as e:
        print(f"kalab: lab: {e}", file=sys.stderr)
        return 2


def _run_line(i: int, n: int, m: dict, probes: dict) -> str:
    """One line per finished run of a series: each side's outcome, and its first keepalive probe."""
    sides = "; ".join(f"{side} {m[side]['fate'] if m[side]['fate'] != 'died' else 'died by ' + str(m[side]['by'])}"
                      + ("" if m[side].get("at_s") is None else f" at {m[side]['at_s']:.3f} s")
                      for side in ("client", "server"))
    first = "".join(f"; first {side} keepalive probe {t:.3f} s" for side, t in probes.items())
    return f"run {i + 1}/{n}: {sides}{first}"


def _explain(args) -> int:
    """``kalab explain``: a scenario from the user's files, simulated and explained in plain words."""
    import json

    from . import levers
    from .configs import read_ssh_config, read_sshd_config, read_sysctl
    from .configs.build import build, parse_fault
    from .units import parse_duration

    if args.ssh_config and not args.host:
        raise ScenarioError("--host", "--ssh-config needs --host (the name given to ssh)")
    match = {}
    for m in args.sshd_match:
        k, sep, v = m.partition("=")
        if not sep or not k or not v:
            raise ScenarioError("--sshd-match", f"expected CRIT=VALUE, got {m!r}", value=m)
        match[k.lower()] = v
    try:
        until = parse_duration(args.until) if args.until else None
    except ValueError as e:
        raise ScenarioError("--until", str(e), value=args.until) from None
    def read(option: str, path: str | None, reader, *a, **kw):
        """A file given with ``option``: an error reading the file itself names the option (a bad
        value inside it is a ConfigError naming file:line, and stays so)."""
        if not path:
            return None
        try:
            return reader(path, *a, **kw)
        except ScenarioError as e:
            if type(e) is not ScenarioError or e.key != path:
                raise
            raise ScenarioError(option, str(e)) from None

    files = dict(
        client_sysctl=read("--client-sysctl", args.client_sysctl, read_sysctl, args.client_os),
        server_sysctl=read("--server-sysctl", args.server_sysctl, read_sysctl),
        ssh=read("--ssh-config", args.ssh_config, read_ssh_config, args.host),
        sshd=read("--server-sshd-config", args.server_sshd_config, read_sshd_config, match=match))
    try:
        built = build(**files, middlebox=args.middlebox, faults=[parse_fault(f) for f in args.fault], until_s=until,
                      ssh_version=args.ssh_version, sshd_version=args.sshd_version, rtt_ms=args.rtt_ms)
    except ScenarioError as e:
        # A scenario key set from an option: the error names the option the user typed.
        key = e.key if type(e) is ScenarioError else ""
        parts = key.split(".")
        given = {"path.rtt_ms": ("--rtt-ms", args.rtt_ms), "client.app.version": ("--ssh-version", args.ssh_version),
                 "server.app.version": ("--sshd-version", args.sshd_version)}
        if key in given:
            raise ScenarioError(given[key][0], e.detail, value=given[key][1]) from None
        if key == "until_s":
            if args.until:
                raise ScenarioError("--until", f"{args.until!r}: {e.detail}", value=args.until) from None
            raise ScenarioError("--fault", f"kalab watches until 3 h after the last fault ends, and that is past "
                                           f"the longest run: {e.detail}", value=args.fault) from None
        if parts[0] == "faults" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(args.fault):
            text = args.fault[int(parts[1])]
            raise ScenarioError("--fault", f"{text!r}: {parts[-1]}: {e.detail}", value=text) from None
        raise
    sc = load(built.scenario)
    result = simulate(sc)
    if args.json:
        out = result.to_dict()
        out["scenario"] = built.scenario
        out["sources"] = {k: str(v) for k, v in built.sources.items()}
        out["problems"] = [str(p) for p in built.problems]
        print(json.dumps(out, indent=2))
        return 0
    print(report(sc, result, limit=40).split("\nTimeline:")[0].rstrip())
    print()
    print("Decided by:")
    for side in ("client", "server"):
        r = result.side(side)
        if r.fate != "died":
            print(f"  {side}: nothing killed it ({r.fate.replace('_', '-')})")
            continue
        settings = levers.deciding(built.scenario, side, r.by)
        what = ", ".join(f"{s.name} = {s.value}{'' if s.unit in ('count', 'bool') else ' ' + s.unit} "
                         f"({built.sources.get(s.key, 'default') if s.given else 'default'})" for s in settings)
        print(f"  {side}: {r.by}" + (f" -- {what}" if what else ""))
    lines = []
    for side in ("client", "server"):
        r = result.side(side)
        lines += levers.levers(built.scenario, side, r.by) if r.fate == "died" else []
        lines += levers.switches(built.scenario, side)
    if lines:
        print()
        print("What would change it (each line simulated):")
        for line in lines:
            print(f"  {line}")
    if built.problems or built.notes:
        print()
        print("Read with notes:")
        for p in built.problems:
            print(f"  {p}")
        for n in built.notes:
            print(f"  {n}")
    return 0


def _goal_duration(text: str | None, flag: str, hi: float) -> float | None:
    """A duration option of ``kalab recommend``, more than 0 s and at most ``hi``; None if not given."""
    from .errors import show
    from .units import format_duration, parse_duration
    if text is None:
        return None
    allowed = f"more than 0 s .. {format_duration(hi)}, e.g. 30s, 2m, 1h30m"
    try:
        v = parse_duration(text)
    except ValueError as e:
        raise ScenarioError(flag, str(e), value=text, allowed=allowed) from None
    if not 0 < v <= hi:
        raise ScenarioError(flag, f"{show(text)} is out of range", value=text, allowed=allowed)
    return v


def goal_from_args(args):
    """The :class:`~kalab.recommend.Goal` of ``kalab recommend``'s options; a bad one is refused naming
    the option typed."""
    import math

    from .errors import show
    from .recommend import MAX_GOAL_S, MAX_NAT_S, Goal, parse_sshd_version
    d = _goal_duration(args.detect_within, "--detect-within", MAX_GOAL_S)
    if d is None:
        raise ScenarioError("--detect-within", "is required", allowed="more than 0 s .. 1 d, e.g. 30s, 2m")
    probes = args.max_probes_per_hour
    if probes is not None and (isinstance(probes, bool) or not isinstance(probes, (int, float))
                               or not 0 < probes < math.inf):
        raise ScenarioError("--max-probes-per-hour", f"{show(probes)} is out of range", value=probes,
                            allowed="a positive finite number")
    rtt = args.rtt_ms
    if isinstance(rtt, bool) or not isinstance(rtt, (int, float)) or not 0 < rtt <= 10_000:
        raise ScenarioError("--rtt-ms", f"{show(rtt)} is out of range", value=rtt, allowed="0 < rtt <= 10000 ms")
    if args.side not in ("client", "server", "both"):
        raise ScenarioError("--side", f"{show(args.side)} is not valid", value=args.side, allowed="client, server, both")
    version = parse_sshd_version(args.sshd_version, "--sshd-version")
    idle = _idle_timers(args, version)
    return Goal(**idle,detect_within_s=d,
                survive_outage_s=_goal_duration(args.survive_outage, "--survive-outage", MAX_GOAL_S) or 0.0,
                nat_idle_s=_goal_duration(args.nat_idle, "--nat-idle", MAX_NAT_S), side=args.side,
                max_probes_per_hour=args.max_probes_per_hour, rtt_ms=args.rtt_ms, sshd_version=args.sshd_version)


def _idle_timers(args, version) -> dict:
    """The goal's idle spell and the server's idle timers (issue 15), each checked, naming the option."""
    from .configs import read_sshd_config
    from .mechanisms import sshd_idle
    from .recommend import MAX_GOAL_S
    out = {"survive_idle_s": _goal_duration(getattr(args, "survive_idle", None), "--survive-idle", MAX_GOAL_S),
           "shell_tmout_s": _goal_duration(getattr(args, "shell_tmout", None), "--shell-tmout", MAX_GOAL_S) or 0.0,
           "logind_stop_idle_s": _goal_duration(getattr(args, "logind_stop_idle", None), "--logind-stop-idle",
                                                MAX_GOAL_S) or 0.0}
    path = getattr(args, "server_sshd_config", None)
    if path:
        try:
            opts = read_sshd_config(path).options
        except ScenarioError as e:
            if type(e) is not ScenarioError or e.key != path:
                raise
            raise ScenarioError("--server-sshd-config", str(e)) from None
        ct, uct = opts.get("ChannelTimeout"), opts.get("UnusedConnectionTimeout")
        if (ct or uct) and version < sshd_idle.CHANNEL_TIMEOUT_SINCE:
            raise ScenarioError("--server-sshd-config", f"ChannelTimeout/UnusedConnectionTimeout arrived in OpenSSH 9.2; "
                                f"sshd {version[0]}.{version[1]} refuses them", allowed="--sshd-version 9.2 or later")
        if ct:
            try:
                sshd_idle.parse_channel_timeout(ct, version)
            except ValueError as e:
                raise ScenarioError("--server-sshd-config", f"ChannelTimeout {e}", value=ct) from None
            out["channel_timeout"] = ct
        if uct:
            out["unused_connection_timeout_s"] = float(uct)
    for key in ("shell_tmout_s", "logind_stop_idle_s"):
        if out[key] and not float(out[key]).is_integer():
            flag = "--shell-tmout" if key == "shell_tmout_s" else "--logind-stop-idle"
            raise ScenarioError(flag, f"must be whole seconds, got {out[key]:g} s", value=out[key])
    return out


def _recommend(args) -> int:
    """``kalab recommend``: the recommendations (or the trade-offs) for the goal; exit 1 if a side is unmet."""
    import json
    from dataclasses import asdict

    from .recommend import answer, report, unmet
    goal = goal_from_args(args)
    recs, trades = answer(goal)
    missing = unmet(goal, recs)
    if args.json:
        from .recommend import idle_warnings
        print(json.dumps({"goal": asdict(goal), "recommendations": [asdict(r) for r in recs],
                          "unmet_sides": missing, "trade_offs": trades, "idle_warnings": idle_warnings(goal)},
                         indent=2))
    else:
        print(report(goal, recs, trades))
    return 1 if missing else 0


def _reader_gone() -> int:
    """The reader went away (`kalab explain ... | head`): not an error of the user's.  Point stdout at
    devnull so that Python's flush at exit does not fail again (the recipe in the `signal` module's docs)."""
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    # A file name or value from argv that is not valid UTF-8 (surrogate-escaped) must not crash the
    # output: show it escaped (stderr does this already).
    if hasattr(sys.stdout, "reconfigure") and getattr(sys.stdout, "errors", None) == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    if args.command == "lab":
        try:
            return _lab_main(args)
        except BrokenPipeError:   # `kalab lab report | head`
            return _reader_gone()
    try:
        if args.command == "explain":
            return _explain(args)
        if args.command == "links":
            from .links import main as links_main
            return links_main(args)
        if args.command == "recommend":
            return _recommend(args)
        if args.command == "simulate":
            try:
                sc = load_file(args.file)
            except ScenarioError as e:    # the file itself (not a key in it): name the argument
                if type(e) is ScenarioError and e.key == str(args.file):
                    raise ScenarioError("FILE", str(e)) from None
                raise
            result = simulate(sc)
            if args.json:
                print(result.to_json())
            else:
                print(report(sc, result, None if args.all else 200))
            return 0
    except ScenarioError as e:
        print(f"kalab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # before the OSError clause: BrokenPipeError is one
        return _reader_gone()
    except OSError as e:  # a config file that cannot be read
        print(f"kalab: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
