"""What a notebook costs a classroom: bytes over the kernel WebSocket, time to the first figure, and the
kernel's peak memory.  Prints figures; asserts nothing (times are noisy on shared machines; the bytes
bound is asserted by tests/test_browser.py).

    python benchmarks/notebooks.py                 # every notebook, JupyterLab + Chromium, then memory
    python benchmarks/notebooks.py 03 07           # only these
    python benchmarks/notebooks.py --memory-only   # kernel peak memory only (no browser)

Slider: notebook 03's ServerAliveInterval moved 7 times, milliseconds from Enter to the moved death
marker on screen.  Bytes: every frame, both directions, on the kernel WebSockets while the notebook is opened and Run All
is clicked in JupyterLab (Debian's Chromium, Playwright).  "first figure": from the click on Run All
Cells to the first plotly figure with data on the page.  Memory: each notebook executed headless
(nbclient), then the kernel process's peak resident set (``VmHWM`` in /proc/PID/status, see proc(5)).
Binder gives a user 1-2 GB.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import jupyter_browser as jb  # noqa: E402


def notebooks(prefixes: list[str]) -> list[Path]:
    all_ = sorted((ROOT / "notebooks").glob("*.ipynb"))
    return [p for p in all_ if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def browser(paths: list[Path]) -> None:
    why = jb.missing_browser()
    if why:
        print(f"(skipping the browser part: {why})")
        return
    print(f"{'notebook':<28}{'kernel WS bytes':>16}{'figures':>9}{'bytes/figure':>14}{'first figure':>14}"
          f"{'all drawn':>11}")
    for p in paths:
        with tempfile.TemporaryDirectory() as tmp:
            with jb.jupyter_server(Path(tmp)) as server:
                errors: list[str] = []
                with jb.browser_page(errors) as page:
                    r = jb.run_all_in_lab(page, server, p.name)
        print(f"{p.stem:<28}{r.wire.total:>16,}{r.figures:>9}{r.bytes_per_figure:>14,.0f}"
              f"{r.first_figure_s:>12.2f} s{r.all_done_s:>9.1f} s" + (f"  ({len(errors)} console errors)"
                                                                        if errors else ""))


def slider(moves: int = 7) -> None:
    """Notebook 03 in JupyterLab: ServerAliveInterval moved back and forth; ms from Enter to the moved
    death marker on screen (see jupyter_browser.move_slider)."""
    import statistics
    if jb.missing_browser():
        return
    with tempfile.TemporaryDirectory() as tmp, jb.jupyter_server(Path(tmp)) as server:
        errors: list[str] = []
        with jb.browser_page(errors) as page:
            jb.run_all_in_lab(page, server, "03-ssh-drops.ipynb")
            times = [jb.move_slider(page, "ServerAliveInterval", str(v)) for v in [30, 15] * (moves // 2 + 1)][:moves]
    print(f"03 slider change to updated figure: median {statistics.median(times):.0f} ms, "
          f"min {min(times):.0f}, max {max(times):.0f} ({moves} moves)")


def memory(paths: list[Path]) -> None:
    import nbformat
    from nbclient import NotebookClient
    print(f"{'notebook':<28}{'kernel peak RSS':>16}")
    for p in paths:
        nb = nbformat.read(p, 4)
        client = NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(p.parent)}})
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):   # inside setup_kernel the kernel stays up to be read
                client.execute_cell(cell, i)
            pid = client.km.provisioner.process.pid
            status = Path(f"/proc/{pid}/status").read_text()
        peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        print(f"{p.stem:<28}{peak_kib / 1024:>12.0f} MiB")


def main(argv: list[str]) -> None:
    memory_only = "--memory-only" in argv
    paths = notebooks([a for a in argv if not a.startswith("--")])
    if not memory_only:
        browser(paths)
        slider()
        print()
    memory(paths)


if __name__ == "__main__":
    main(sys.argv[1:])
