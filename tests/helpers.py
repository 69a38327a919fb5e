"""Small builders for scenario dicts used across tests."""

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
