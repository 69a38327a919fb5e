"""``python -m kalab``: simulate a scenario file and print the answer.

Bad input exits 2 with one clear line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import sys

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
