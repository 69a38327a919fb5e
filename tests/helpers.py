"""Small builders for scenario dicts used across tests, and the notebook runner the tests share."""

import time

import kalab


def ka_socket(idle=5, intvl=2, cnt=3, ut_ms=None):
    s = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": intvl, "TCP_KEEPCNT": cnt}
    if ut_ms is not None:
        s["TCP_USER_TIMEOUT"] = ut_ms
    return s


def run(client=None, server=None, **top):
    sc = {"client": client or {}, "server": server or {}}
    sc.update(top)
    return kalab.simulate(sc)


def kinds(result, side=None, layer=None, kind=None):
    return [e for e in result.events
            if (side is None or e.side == side) and (layer is None or e.layer == layer)
            and (kind is None or e.kind == kind)]


def execute_notebook(path):
    """(executed notebook, seconds): a notebook run top to bottom in its own folder, 30 s per cell.

    Here, not in conftest.py, because it is pickled to worker processes by module and name, and two
    conftest.py files (tests/, tests/lab/) cannot both be the module ``conftest``.
    """
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, 4)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=30, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, time.monotonic() - t0
