"""Grade the notebooks' exercises: which of a student's "On your own" answers are right.

    python scripts/grade_exercises.py [--execute] [--json] NOTEBOOK.ipynb ...

An exercise is a code cell that sets ``my_answer`` and ends with a ``check_*`` call
(``kalab.exercises.exercise_call``); its output says ``Right:``, ``Not quite:``, ``Not a ...`` or ``Not answered
yet.`` (``kalab.exercises.status_of``); an output that shows ``The model's answer:`` ran with ``reveal=True``.  Without ``--execute`` the notebooks' saved outputs are read (a student
hands in an executed notebook); with it each notebook is first run top to bottom in its own folder, as the
student would (errors in a cell are recorded, not fatal), so a notebook handed in unexecuted, or edited after it
ran, is graded on what it computes now.  A check whose output is missing counts as ``no output``.

Prints one line per exercise and a total per notebook; ``--json`` prints the same as JSON, for a gradebook.
Exit status 0, or 2 for a file that cannot be read as a notebook.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, timeout_s: int = 120):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, 4)
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def grade(nb) -> list[dict]:
    """One row per exercise: its number, the answer line as written, and the status its output shows."""
    from kalab.exercises import exercise_call, status_of
    rows = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if exercise_call(src) is None:
            continue
        texts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                texts.append(f"error: {out.get('ename')}: {out.get('evalue')}")
            data = out.get("data", {}).get("text/plain")
            if data:
                texts.append(data if isinstance(data, str) else "".join(data))
        status = next((s for s in map(status_of, texts) if s), "error" if any(t.startswith("error:") for t in texts)
                      else "no output")
        answer = next((line.split("#")[0].strip() for line in src.splitlines() if line.startswith("my_answer")), "")
        revealed = any("The model's answer: " in t for t in texts)
        rows.append({"exercise": len(rows) + 1, "answer": answer, "status": status, "revealed": revealed})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="grade_exercises", description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="+", help="notebooks (.ipynb) to grade")
    p.add_argument("--execute", action="store_true", help="run each notebook first (needs a Jupyter kernel)")
    p.add_argument("--json", action="store_true", help="print JSON: {notebook: [{exercise, answer, status, revealed}]}")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    report = {}
    for name in a.notebooks:
        path = Path(name)
        try:
            nb = execute(path) if a.execute else json.loads(path.read_text(encoding="utf-8"))
            rows = grade(nb)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"grade_exercises: error: {name}: not a readable notebook ({type(e).__name__})", file=sys.stderr)
            return 2
        report[name] = rows
    if a.json:
        print(json.dumps(report, indent=1))
        return 0
    for name, rows in report.items():
        for r in rows:
            print(f"{name}  exercise {r['exercise']}  {r['status']:10}  {r['answer']}"
                  + ("  (ran with reveal=True)" if r["revealed"] else ""))
        print(f"{name}: {sum(r['status'] == 'right' for r in rows)} of {len(rows)} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
