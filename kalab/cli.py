"""``python -m kalab``: simulate a scenario file and print the answer.

Bad input exits 2 with one clear line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ScenarioError
from .explain import report
from .scenario import load_file
from .simulate import simulate


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse already exits 2; keep the message short
        self.print_usage(sys.stderr)
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
    rec = labsub.add_parser("record", help="measure the matrix (kalab.lab.matrix) into data/measured/")
    rec.add_argument("--only", nargs="*", help="names from the matrix")
    rec.add_argument("--jobs", type=int, default=6)
    rec.add_argument("--dir", default="data/measured")
    rep = labsub.add_parser("report", help="table: recorded measurements vs the current model (no root needed)")
    rep.add_argument("--dir", default="data/measured")
    return p


def report_table(directory) -> str:
    """Markdown table of every recorded measurement against the current model."""
    import json

    from .compare import compare
    rows = ["| scenario | side | predicted | window [s] | measured [s] | diff [ms] | mechanism | wire |",
            "|---|---|---|---|---|---|---|---|"]
    for f in sorted(directory.glob("*.json")):
        m = json.loads(f.read_text())
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
            rows.append(f"| {f.stem} | {side} | {p['fate']} by {p['by']} | {window} | {meas} | {diff} | "
                        f"{same} | {wire_ok}/{wire_seen} |")
    return "\n".join(rows)


def _lab(args) -> int:
    import json

    from .compare import compare, summary_lines
    from .lab import LabError, run
    from .lab.matrix import LONG, scenarios
    if args.lab_command == "report":
        print(report_table(Path(args.dir)))
        return 0
    try:
        if args.lab_command == "run":
            sc = load_file(args.file)
            m = run(sc.source, allow_long=args.allow_long)
            if args.out:
                Path(args.out).write_text(json.dumps(m, indent=1) + "\n")
            if args.json:
                print(json.dumps(m, indent=1))
            else:
                print("\n".join(summary_lines(compare(simulate(m["scenario"]), m))))
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
            m = run(matrix[name], allow_long=name in LONG)
            m["matrix_name"] = name
            (out / f"{name}.json").write_text(json.dumps(m, indent=1) + "\n")
            return name, compare(simulate(m["scenario"]), m)

        bad = 0
        with ThreadPoolExecutor(max(1, args.jobs)) as ex:
            for name, c in ex.map(one, names):
                bad += not c["ok"]
                print(f"== {name}\n" + "\n".join(summary_lines(c)), flush=True)
        return 1 if bad else 0
    except LabError as e:
        print(f"kalab: lab: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "lab":
        import signal

        def _term(signum, frame):  # tear namespaces down on SIGTERM as on Ctrl-C
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, _term)
        try:
            return _lab(args)
        except ScenarioError as e:
            print(f"kalab: error: {e}", file=sys.stderr)
            return 2
    try:
        if args.command == "simulate":
            sc = load_file(args.file)
            result = simulate(sc)
            if args.json:
                print(result.to_json())
            else:
                print(report(sc, result, None if args.all else 200))
            return 0
    except ScenarioError as e:
        print(f"kalab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - e.g. `| head`
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
